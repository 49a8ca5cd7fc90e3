// @ts-check
/**
 * The training hyper-parameters the forms offer (`Hyperparameters` of the OpenAPI) and how form
 * text becomes the request's `hyperparameters` object. Blank fields are left out, so the
 * server's training recipe chooses them from the dataset.
 *
 * @typedef {{name: string, kind: 'int' | 'float' | 'bool' | 'select', min?: number, max?: number, step?: string, options?: string[], tasks?: string[], basic?: boolean}} HyperField
 */

/** @type {HyperField[]} */
export const HYPER_FIELDS = [
  { name: 'epochs', kind: 'int', min: 1, max: 1000, basic: true },
  { name: 'batch_size', kind: 'int', min: 1, max: 1024, basic: true },
  { name: 'learning_rate', kind: 'float', min: 0, max: 1, step: 'any', basic: true },
  { name: 'optimizer', kind: 'select', options: ['adam', 'adamw', 'sgd'], basic: true },
  { name: 'image_size', kind: 'int', min: 16, max: 1024, basic: true },
  { name: 'lr_schedule', kind: 'select', options: ['constant', 'step', 'cosine'] },
  { name: 'weight_decay', kind: 'float', min: 0, max: 1, step: 'any' },
  { name: 'momentum', kind: 'float', min: 0, max: 1, step: 'any' },
  { name: 'warmup_epochs', kind: 'float', min: 0, max: 100, step: 'any' },
  { name: 'early_stopping_patience', kind: 'int', min: 0, max: 1000 },
  { name: 'val_fraction', kind: 'float', min: 0, max: 0.9, step: 'any' },
  { name: 'augment', kind: 'bool' },
  { name: 'hflip_probability', kind: 'float', min: 0, max: 1, step: 'any' },
  { name: 'translate', kind: 'float', min: 0, max: 0.5, step: 'any' },
  { name: 'crop_min_scale', kind: 'float', min: 0, max: 1, step: 'any', tasks: ['classification'] },
  { name: 'mosaic', kind: 'float', min: 0, max: 1, step: 'any', tasks: ['detection'] },
  { name: 'scale_jitter', kind: 'float', min: 0, max: 1, step: 'any', tasks: ['detection'] },
  { name: 'seed', kind: 'int', min: 0 },
];

/**
 * The fields that apply to a task.
 * @param {string} task
 * @param {boolean} [basicOnly]
 */
export function fieldsFor(task, basicOnly = false) {
  return HYPER_FIELDS.filter((f) => (!f.tasks || f.tasks.includes(task)) && (!basicOnly || f.basic));
}

/**
 * Form text → `hyperparameters`. Unparseable numbers are sent as they are so the server's
 * validation names them.
 * @param {Record<string, string>} values
 * @param {HyperField[]} [fields]
 * @returns {Record<string, string | number | boolean>}
 */
export function buildHyperparameters(values, fields = HYPER_FIELDS) {
  /** @type {Record<string, string | number | boolean>} */
  const out = {};
  for (const f of fields) {
    const raw = String(values[f.name] ?? '').trim();
    if (raw === '') continue;
    if (f.kind === 'int' || f.kind === 'float') {
      const n = Number(raw);
      out[f.name] = Number.isFinite(n) ? n : raw;
    } else if (f.kind === 'bool') {
      out[f.name] = raw === 'true';
    } else {
      out[f.name] = raw;
    }
  }
  return out;
}

/**
 * Form text from a hyper-parameters object (chat's `training_config.hyperparameters`, whose
 * `image_size` is `[width, height]`).
 * @param {Record<string, unknown> | null | undefined} hyper
 * @returns {Record<string, string>}
 */
export function hyperToForm(hyper) {
  /** @type {Record<string, string>} */
  const out = {};
  for (const [k, v] of Object.entries(hyper ?? {})) {
    if (v === null || v === undefined) continue;
    out[k] = Array.isArray(v) ? String(v[0]) : String(v);
  }
  return out;
}

/**
 * The task a dataset is annotated for. The API does not report it; the format implies it
 * (an image folder is classification, COCO / YOLO / VOC are detection).
 * @param {{format?: string, task_type?: string} | null | undefined} dataset
 */
export function datasetTask(dataset) {
  if (dataset?.task_type) return dataset.task_type;
  return dataset?.format === 'imagefolder' ? 'classification' : 'detection';
}
