-- Batch inference requests and their per-image results (JSON array).
CREATE TABLE inference_batches (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    workflow_id      TEXT NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
    status           TEXT NOT NULL,
    total_images     BIGINT NOT NULL,
    completed_images BIGINT NOT NULL DEFAULT 0,
    results          TEXT NOT NULL DEFAULT '[]',
    created_at       BIGINT NOT NULL,
    completed_at     BIGINT
);
CREATE INDEX inference_batches_by_workflow ON inference_batches(workflow_id, created_at);
