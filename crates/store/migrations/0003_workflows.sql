-- Training workflows: their configuration and live progress, metric history and log lines;
-- a per-user concurrency cap on jobs; measured training throughput for estimates.
ALTER TABLE workflows ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE workflows ADD COLUMN task_type TEXT NOT NULL DEFAULT '';
ALTER TABLE workflows ADD COLUMN model TEXT NOT NULL DEFAULT '';
ALTER TABLE workflows ADD COLUMN dataset_id TEXT NOT NULL DEFAULT '';
ALTER TABLE workflows ADD COLUMN config TEXT NOT NULL DEFAULT '{}';
ALTER TABLE workflows ADD COLUMN current_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE workflows ADD COLUMN total_epochs BIGINT NOT NULL DEFAULT 0;
ALTER TABLE workflows ADD COLUMN step BIGINT NOT NULL DEFAULT 0;
ALTER TABLE workflows ADD COLUMN total_steps BIGINT NOT NULL DEFAULT 0;
ALTER TABLE workflows ADD COLUMN metrics TEXT;
ALTER TABLE workflows ADD COLUMN resources TEXT;
ALTER TABLE workflows ADD COLUMN estimated_seconds DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE workflows ADD COLUMN error TEXT;
ALTER TABLE workflows ADD COLUMN exported_epoch BIGINT;
ALTER TABLE workflows ADD COLUMN started_at BIGINT;
ALTER TABLE workflows ADD COLUMN completed_at BIGINT;
ALTER TABLE workflows ADD COLUMN cancelled_at BIGINT;
CREATE INDEX workflows_by_status ON workflows(user_id, status, created_at);

CREATE TABLE workflow_metrics (
    workflow_id TEXT NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
    recorded_at BIGINT NOT NULL,
    epoch       BIGINT NOT NULL,
    step        BIGINT NOT NULL,
    metric_values TEXT NOT NULL,
    PRIMARY KEY (workflow_id, epoch, step)
);

CREATE TABLE workflow_logs (
    workflow_id TEXT NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    logged_at   BIGINT NOT NULL,
    level       TEXT NOT NULL,
    message     TEXT NOT NULL,
    PRIMARY KEY (workflow_id, seq)
);

ALTER TABLE jobs ADD COLUMN max_concurrent BIGINT;
CREATE INDEX jobs_by_user ON jobs(user_id, kind, started_at);

CREATE TABLE model_throughput (
    model          TEXT NOT NULL,
    device         TEXT NOT NULL,
    image_size     BIGINT NOT NULL,
    images_per_sec DOUBLE PRECISION NOT NULL,
    samples        BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (model, device, image_size)
);
