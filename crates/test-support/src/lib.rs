//! Helpers for black-box tests: spawn_app(), fresh databases, clients.
