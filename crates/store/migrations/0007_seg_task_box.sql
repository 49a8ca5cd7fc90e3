-- An optional box prompt of a segmentation task: `[x, y, width, height]` in the image's pixels,
-- as JSON; NULL for text-only prompts.
ALTER TABLE seg_tasks ADD COLUMN box_prompt TEXT;
