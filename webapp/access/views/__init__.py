"""Pages of gated access: public, the requester's, the reviewers', staff's."""
