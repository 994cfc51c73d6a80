"""File-system helpers every resource shares: atomic writes and bounded backups."""
