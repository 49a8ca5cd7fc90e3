-- Dataset details and the durable job queue shared by every kind of background work.
ALTER TABLE datasets ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE datasets ADD COLUMN format TEXT NOT NULL DEFAULT '';
ALTER TABLE datasets ADD COLUMN size_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE datasets ADD COLUMN file_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE datasets ADD COLUMN statistics TEXT;
ALTER TABLE datasets ADD COLUMN report TEXT;
ALTER TABLE datasets ADD COLUMN error TEXT;

CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    subject_id       TEXT NOT NULL,
    payload          TEXT NOT NULL DEFAULT '{}',
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    max_attempts     BIGINT NOT NULL DEFAULT 3,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT
);
CREATE INDEX jobs_claim ON jobs(kind, status, created_at);
CREATE INDEX jobs_by_subject ON jobs(subject_id);
