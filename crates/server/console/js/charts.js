// @ts-check
/**
 * Chart data of a workflow: seeded from `GET /workflows/{id}/metrics` (one point per epoch:
 * `timestamp`, `epoch`, `step` and the metric values) and extended by the WebSocket's
 * `training_progress` events (`data.step`, `data.epoch`, `data.metrics`). The x axis is the
 * optimisation step, so step samples and epoch summaries share one axis; an epoch summary
 * replaces a step sample of the same step.
 */

/**
 * @typedef {{id: string, title: string, metrics: string[]}} ChartGroup
 * @typedef {{points: Map<number, Record<string, number>>, epochs: Map<number, number>}} SeriesState
 * @typedef {{series: string[], data: (number | null)[][]}} ChartData  `data[0]` is the x axis
 */

/** The charts of the workflow page and the metrics each plots (absent ones are skipped). */
export const CHART_GROUPS = /** @type {ChartGroup[]} */ ([
  { id: 'loss', title: 'chart.loss', metrics: ['loss', 'val_loss', 'box_loss', 'cls_loss', 'dfl_loss'] },
  { id: 'accuracy', title: 'chart.accuracy', metrics: ['accuracy', 'val_accuracy', 'val_top5_accuracy'] },
  { id: 'map', title: 'chart.map', metrics: ['val_map50', 'val_map50_95'] },
  { id: 'lr', title: 'chart.lr', metrics: ['learning_rate'] },
]);

/** @returns {SeriesState} */
export function emptySeries() {
  return { points: new Map(), epochs: new Map() };
}

/**
 * Adds one point; non-numeric values are ignored.
 * @param {SeriesState} state
 * @param {number} step
 * @param {number | undefined} epoch
 * @param {Record<string, unknown>} values
 * @returns {boolean} whether anything was added
 */
export function addPoint(state, step, epoch, values) {
  if (!Number.isFinite(step)) return false;
  const point = { ...(state.points.get(step) ?? {}) };
  let changed = false;
  for (const [k, v] of Object.entries(values ?? {})) {
    if (typeof v === 'number' && Number.isFinite(v)) {
      point[k] = v;
      changed = true;
    }
  }
  if (!changed) return false;
  state.points.set(step, point);
  if (typeof epoch === 'number') state.epochs.set(step, epoch);
  return true;
}

/**
 * The series of a metrics history.
 * @param {Array<Record<string, unknown>>} history the `metrics` array of the metrics response
 * @returns {SeriesState}
 */
export function seriesFromHistory(history) {
  const state = emptySeries();
  for (const row of history ?? []) {
    const { timestamp, epoch, step, ...values } = row;
    const x = typeof step === 'number' ? step : Number(epoch);
    addPoint(state, x, typeof epoch === 'number' ? epoch : undefined, values);
  }
  return state;
}

/**
 * Folds a WebSocket event into the series.
 * @param {SeriesState} state
 * @param {{type: string, data?: any}} event
 * @returns {boolean} whether the charts changed
 */
export function applyEvent(state, event) {
  if (event.type !== 'training_progress' || !event.data) return false;
  const { step, epoch, metrics } = event.data;
  if (typeof step !== 'number' || !metrics) return false;
  return addPoint(state, step, typeof epoch === 'number' ? epoch : undefined, metrics);
}

/**
 * The uPlot data of one chart: x = steps in order, one y series per metric of the group that
 * has at least one value (gaps as null).
 * @param {SeriesState} state
 * @param {ChartGroup} group
 * @returns {ChartData}
 */
export function chartData(state, group) {
  const steps = [...state.points.keys()].sort((a, b) => a - b);
  const series = group.metrics.filter((m) => steps.some((s) => state.points.get(s)?.[m] !== undefined));
  const rows = steps.filter((s) => series.some((m) => state.points.get(s)?.[m] !== undefined));
  return {
    series,
    data: [rows, ...series.map((m) => rows.map((s) => state.points.get(s)?.[m] ?? null))],
  };
}

/**
 * Progress figures of a `training_progress` event.
 * @param {any} data the event's `data`
 * @returns {{epoch: number | null, step: number | null, totalSteps: number | null, percent: number | null, etaMinutes: number | null}}
 */
export function progressOf(data) {
  const num = (/** @type {unknown} */ v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const step = num(data?.step);
  const totalSteps = num(data?.total_steps);
  const percent = step !== null && totalSteps ? Math.min(100, Math.round((step / totalSteps) * 100)) : null;
  return { epoch: num(data?.epoch), step, totalSteps, percent, etaMinutes: num(data?.eta_minutes) };
}
