import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildHyperparameters, hyperToForm, fieldsFor, datasetTask } from '../console/js/hyper.js';
import { cocoFromResult, segmentRequest } from '../console/js/coco.js';

test('blank hyper-parameters are left to the recipe; numbers and booleans are typed', () => {
  assert.deepEqual(buildHyperparameters({ epochs: '20', learning_rate: '0.001', batch_size: '', augment: 'false', optimizer: 'sgd' }),
    { epochs: 20, learning_rate: 0.001, augment: false, optimizer: 'sgd' });
  assert.deepEqual(buildHyperparameters({ epochs: 'abc' }), { epochs: 'abc' });
});

test('chat configs fill the form; image_size [w, h] becomes one side', () => {
  assert.deepEqual(hyperToForm({ epochs: 10, batch_size: 32, learning_rate: 0.001, optimizer: 'adamw', image_size: [64, 64] }),
    { epochs: '10', batch_size: '32', learning_rate: '0.001', optimizer: 'adamw', image_size: '64' });
});

test('task-specific fields', () => {
  const cls = fieldsFor('classification').map((f) => f.name);
  const det = fieldsFor('detection').map((f) => f.name);
  assert.ok(cls.includes('crop_min_scale') && !cls.includes('mosaic'));
  assert.ok(det.includes('mosaic') && !det.includes('crop_min_scale'));
  assert.equal(datasetTask({ format: 'imagefolder' }), 'classification');
  assert.equal(datasetTask({ format: 'coco' }), 'detection');
  assert.equal(datasetTask({ format: 'coco', task_type: 'classification' }), 'classification');
});

test('segment requests carry a box only when one was dragged', () => {
  assert.deepEqual(segmentRequest('/u', ' cat '), { image_url: '/u', text_prompt: 'cat' });
  assert.deepEqual(segmentRequest('/u', 'cat', [1, 2, 30, 40]), { image_url: '/u', text_prompt: 'cat', box: [1, 2, 30, 40] });
  assert.deepEqual(segmentRequest('/u', 'cat', [1, 2, 0, 40]), { image_url: '/u', text_prompt: 'cat' });
});

test('results export as COCO with the selected instances', () => {
  const inst = (label, score) => ({ label, score, area: 3, bbox: [0, 0, 1, 3], segmentation: { size: [4, 5], counts: [0, 3, 17] }, polygons: [] });
  const coco = cocoFromResult({ id: 'r1', source_image_url: '/api/v1/files/images/abc?expires=1&signature=x', text_prompt: 'cat', instances: [inst('cat', 0.9), inst('cat', 0.5)] }, [1]);
  assert.deepEqual(coco.images, [{ id: 1, file_name: 'abc', height: 4, width: 5 }]);
  assert.deepEqual(coco.categories, [{ id: 1, name: 'cat' }]);
  assert.equal(coco.annotations.length, 1);
  assert.equal(coco.annotations[0].id, 2);
  assert.equal(coco.annotations[0].score, 0.5);
});
