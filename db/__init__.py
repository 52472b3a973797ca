"""Storage: SQLModel tables, the engine and sessions, every query, migrations."""
