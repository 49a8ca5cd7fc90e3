import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fitContain, scaleBox, scalePolygon, viewToSource, boxFromCorners, labelPosition, colorFor, PALETTE, paintMasks, hexToRgb, shapeText } from '../console/js/draw.js';

test('a wide image letterboxes vertically in a square view', () => {
  const fit = fitContain(640, 480, 256, 256);
  assert.equal(fit.scale, 0.4);
  assert.equal(fit.dx, 0);
  assert.equal(fit.dy, (256 - 192) / 2);
});

test('a tall image pillarboxes horizontally', () => {
  const fit = fitContain(300, 600, 200, 200);
  assert.equal(fit.scale, 1 / 3);
  assert.equal(fit.dy, 0);
  assert.equal(fit.dx, 50);
});

test('full-image pixel boxes scale onto a thumbnail view', () => {
  // Detection box in full-image pixels (640×480), shown in a 256×256 thumbnail cell.
  const fit = fitContain(640, 480, 256, 256);
  assert.deepEqual(scaleBox([100, 50, 200, 100], fit), [40, 52, 80, 40]);
});

test('polygons scale x and y with their own offsets', () => {
  const fit = { scale: 2, dx: 10, dy: 20 };
  assert.deepEqual(scalePolygon([1, 1, 3, 4], fit), [12, 22, 16, 28]);
});

test('view points map back to clamped source pixels', () => {
  const fit = fitContain(640, 480, 320, 320);
  assert.deepEqual(viewToSource(160, 160, fit, 640, 480), [320, 240]);
  assert.deepEqual(viewToSource(-5, 0, fit, 640, 480), [0, 0]);
  assert.deepEqual(viewToSource(400, 400, fit, 640, 480), [640, 480]);
});

test('dragged corners in any order make a positive box', () => {
  assert.deepEqual(boxFromCorners([50.4, 80], [10, 20.6]), [10, 21, 40, 59]);
});

test('labels sit above boxes unless the box touches the top', () => {
  assert.deepEqual(labelPosition([10, 30, 5, 5], 16), [10, 14]);
  assert.deepEqual(labelPosition([10, 4, 5, 5], 16), [10, 4]);
});

test('colours are stable and from the palette', () => {
  assert.equal(colorFor('cat'), colorFor('cat'));
  assert.ok(PALETTE.includes(colorFor('dog')));
  assert.equal(colorFor(1), PALETTE[1]);
});

test('masks paint RGBA pixels in their colour, later ones on top', () => {
  assert.deepEqual(hexToRgb('#0072b2'), [0, 114, 178]);
  const px = paintMasks([{ mask: Uint8Array.from([1, 1, 0]), color: '#ff0000' }, { mask: Uint8Array.from([0, 1, 0]), color: '#00f' }], 3, 1, 100);
  assert.deepEqual([...px], [255, 0, 0, 100, 0, 0, 255, 100, 0, 0, 0, 0]);
});

test('labels carry the score as a percentage', () => {
  assert.equal(shapeText({ label: 'cat', score: 0.876 }), 'cat 88%');
  assert.equal(shapeText({ label: 'cat', bbox: null }), 'cat');
});
