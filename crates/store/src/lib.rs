//! Repository traits and their SQLite/PostgreSQL implementation.
