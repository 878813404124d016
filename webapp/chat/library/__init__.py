"""Conversations people keep: the sidebar (groups, pages, pins, rename, delete with undo,
search), shared snapshots, and export and import."""
