import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHART_GROUPS, seriesFromHistory, applyEvent, chartData, progressOf } from '../console/js/charts.js';

const group = (id) => CHART_GROUPS.find((g) => g.id === id);

const history = [
  { timestamp: '2026-01-01T00:00:00Z', epoch: 1, step: 100, loss: 2.4, accuracy: 0.3, val_loss: 2.2, val_accuracy: 0.35, learning_rate: 0.01 },
  { timestamp: '2026-01-01T00:05:00Z', epoch: 2, step: 200, loss: 1.1, accuracy: 0.6, val_loss: 1.3, val_accuracy: 0.55, learning_rate: 0.009 },
];

test('history seeds the charts by step with only the metrics present', () => {
  const s = seriesFromHistory(history);
  const loss = chartData(s, group('loss'));
  assert.deepEqual(loss.series, ['loss', 'val_loss']);
  assert.deepEqual(loss.data, [[100, 200], [2.4, 1.1], [2.2, 1.3]]);
  assert.deepEqual(chartData(s, group('map')).series, []);
});

test('live step events extend the series with gaps for missing metrics', () => {
  const s = seriesFromHistory(history);
  const changed = applyEvent(s, { type: 'training_progress', data: { epoch: 3, step: 250, total_steps: 500, metrics: { loss: 0.9, accuracy: 0.7 } } });
  assert.ok(changed);
  const loss = chartData(s, group('loss'));
  assert.deepEqual(loss.data, [[100, 200, 250], [2.4, 1.1, 0.9], [2.2, 1.3, null]]);
});

test('an epoch summary replaces the step sample of the same step; other events are ignored', () => {
  const s = seriesFromHistory([]);
  applyEvent(s, { type: 'training_progress', data: { step: 300, metrics: { loss: 1.0 } } });
  applyEvent(s, { type: 'training_progress', data: { epoch: 3, step: 300, metrics: { loss: 0.8, val_loss: 0.9, val_map50: 0.4, val_map50_95: 0.2 } } });
  assert.equal(applyEvent(s, { type: 'checkpoint_saved', data: { epoch: 3 } }), false);
  assert.equal(applyEvent(s, { type: 'training_progress', data: { step: 301, metrics: { loss: 'x' } } }), false);
  assert.deepEqual(chartData(s, group('loss')).data, [[300], [0.8], [0.9]]);
  assert.deepEqual(chartData(s, group('map')).data, [[300], [0.4], [0.2]]);
});

test('out-of-order points are sorted by step', () => {
  const s = seriesFromHistory([]);
  applyEvent(s, { type: 'training_progress', data: { step: 20, metrics: { loss: 2 } } });
  applyEvent(s, { type: 'training_progress', data: { step: 10, metrics: { loss: 3 } } });
  assert.deepEqual(chartData(s, group('loss')).data, [[10, 20], [3, 2]]);
});

test('progress figures come from the event', () => {
  assert.deepEqual(progressOf({ epoch: 3, step: 250, total_steps: 1000, eta_minutes: 4.5 }), { epoch: 3, step: 250, totalSteps: 1000, percent: 25, etaMinutes: 4.5 });
  assert.deepEqual(progressOf({}), { epoch: null, step: null, totalSteps: null, percent: null, etaMinutes: null });
});
