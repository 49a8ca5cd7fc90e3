import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHash, href } from '../console/js/router.js';

test('hash routes resolve with params and query', () => {
  assert.deepEqual(parseHash('#/datasets/ds_1'), { name: 'dataset', params: { id: 'ds_1' }, query: {} });
  assert.deepEqual(parseHash('#/workflows/new?dataset=ds_2'), { name: 'workflowNew', params: {}, query: { dataset: 'ds_2' } });
  assert.equal(parseHash('#/workflows/wf_9').name, 'workflow');
  assert.equal(parseHash('').name, 'chat');
  assert.equal(parseHash('#/nope/1/2').name, 'notFound');
});

test('href leaves out empty query values', () => {
  assert.equal(href('/workflows', { status: '', page: 2 }), '#/workflows?page=2');
  assert.equal(href('/models'), '#/models');
});
