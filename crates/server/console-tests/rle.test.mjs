import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeCountsString, encodeCountsString, decodeRle, encodeRle, rleArea } from '../console/js/rle.js';

test('uncompressed counts decode column-major into a row-major mask', () => {
  // 2 rows × 3 columns; column-major pixels: (0,0) (1,0) (0,1) (1,1) (0,2) (1,2)
  const { width, height, mask } = decodeRle({ size: [2, 3], counts: [1, 2, 3] });
  assert.equal(width, 3);
  assert.equal(height, 2);
  // ones at column-major positions 1 and 2: (y=1,x=0) and (y=0,x=1)
  assert.deepEqual([...mask], [0, 1, 0, 1, 0, 0]);
});

test('a mask starting with ones has a leading zero run', () => {
  const { mask } = decodeRle({ size: [2, 2], counts: [0, 4] });
  assert.deepEqual([...mask], [1, 1, 1, 1]);
});

test('compressed strings decode to the counts of pycocotools', () => {
  assert.deepEqual(decodeCountsString('231'), [2, 3, 1]);
  // 100 needs two 5-bit groups; the 4th count is stored as a difference to the 2nd.
  assert.deepEqual(decodeCountsString('05T30'), [0, 5, 100, 5]);
});

test('compressed encoding round-trips, including negative differences and large counts', () => {
  for (const counts of [[0, 5, 100, 5], [3, 1, 1, 40, 2, 7], [123456, 7, 1, 99999, 0, 3], [5]]) {
    assert.deepEqual(decodeCountsString(encodeCountsString(counts)), counts);
  }
  assert.equal(encodeCountsString([0, 5, 100, 5]), '05T30');
});

test('compressed and uncompressed forms decode to the same mask', () => {
  const counts = [3, 4, 2, 3];
  const a = decodeRle({ size: [3, 4], counts });
  const b = decodeRle({ size: [3, 4], counts: encodeCountsString(counts) });
  assert.deepEqual(a.mask, b.mask);
  assert.equal(rleArea({ size: [3, 4], counts }), 7);
});

test('encodeRle is the inverse of decodeRle', () => {
  const mask = Uint8Array.from([0, 1, 1, 0, 1, 0, 1, 1, 1, 0, 0, 1]);
  const rle = encodeRle(mask, 4, 3);
  assert.deepEqual(decodeRle(rle).mask, mask);
});

test('counts that exceed the mask are rejected', () => {
  assert.throws(() => decodeRle({ size: [2, 2], counts: [1, 9] }));
  assert.throws(() => decodeCountsString('\u0020'));
});
