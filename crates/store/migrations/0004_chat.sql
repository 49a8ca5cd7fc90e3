-- Chat sessions: the dialogue state (JSON) of the natural-language → training-config chat.
CREATE TABLE chat_sessions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    state      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX chat_sessions_by_user ON chat_sessions(user_id, updated_at);
