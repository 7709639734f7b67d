"""Storage: one schema over SQLite or PostgreSQL, one write path, the read queries."""
