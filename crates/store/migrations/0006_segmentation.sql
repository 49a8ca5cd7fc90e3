-- Segmentation service: uploaded images, segmentation tasks (which are also their results, as
-- the spec's task and result ids name the same row) and each user's credit balance.
ALTER TABLE usage ADD COLUMN credits BIGINT NOT NULL DEFAULT 0;
UPDATE usage SET credits = CASE (SELECT plan FROM users WHERE users.id = usage.user_id)
    WHEN 'enterprise' THEN 20000 WHEN 'pro' THEN 2000 ELSE 100 END;

CREATE TABLE seg_images (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id   TEXT REFERENCES projects(id) ON DELETE SET NULL,
    object_key   TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes   BIGINT NOT NULL,
    width        BIGINT NOT NULL,
    height       BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX seg_images_by_user ON seg_images(user_id, created_at);

CREATE TABLE seg_tasks (
    id                TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id        TEXT REFERENCES projects(id) ON DELETE SET NULL,
    image_id          TEXT REFERENCES seg_images(id) ON DELETE SET NULL,
    source_image_url  TEXT NOT NULL,
    text_prompt       TEXT NOT NULL,
    status            TEXT NOT NULL,
    error_message     TEXT,
    credits           BIGINT NOT NULL,
    labels            TEXT NOT NULL DEFAULT '[]',
    instances         TEXT NOT NULL DEFAULT '[]',
    mask_key          TEXT,
    inference_time_ms DOUBLE PRECISION,
    confidence        DOUBLE PRECISION,
    model_version     TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX seg_tasks_by_user ON seg_tasks(user_id, created_at);
CREATE INDEX seg_tasks_by_project ON seg_tasks(project_id, created_at);
