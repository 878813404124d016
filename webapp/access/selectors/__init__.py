"""Read access to gates, requests, grants and the audit log."""
