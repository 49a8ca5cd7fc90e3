// @ts-check
/**
 * Drawing of annotations, predictions and masks over images: the geometry (pure, tested) and the
 * canvas calls, shared by the dataset browser and both playgrounds.
 *
 * Coordinates come in pixels of the *source* image (`[x, y, w, h]` boxes, flat polygons); a view
 * shows that image scaled with `object-fit: contain` into a box of its own, so every shape goes
 * through one {@link Fit}.
 *
 * @typedef {{scale: number, dx: number, dy: number}} Fit  view = source × scale + (dx, dy)
 * @typedef {{label: string, bbox?: number[] | null, score?: number | null, color?: string}} Shape
 */

import { decodeRle } from './rle.js';

/** Distinct colours for classes and instances (colour-blind friendly first). */
export const PALETTE = [
  '#0072b2', '#e69f00', '#009e73', '#d55e00', '#cc79a7', '#56b4e9', '#f0e442', '#7f3c8d',
  '#11a579', '#3969ac', '#f2b701', '#e73f74', '#80ba5a', '#e68310', '#008695', '#cf1c90',
];

/**
 * A stable colour for an index or a name.
 * @param {number | string} key
 */
export function colorFor(key) {
  let i = typeof key === 'number' ? key : 0;
  if (typeof key === 'string') {
    for (const ch of key) i = (i * 31 + ch.charCodeAt(0)) >>> 0;
  }
  return PALETTE[Math.abs(i) % PALETTE.length];
}

/**
 * How a `srcW × srcH` image sits in a `boxW × boxH` view with `object-fit: contain`.
 * @param {number} srcW
 * @param {number} srcH
 * @param {number} boxW
 * @param {number} boxH
 * @returns {Fit}
 */
export function fitContain(srcW, srcH, boxW, boxH) {
  if (!(srcW > 0 && srcH > 0 && boxW > 0 && boxH > 0)) return { scale: 0, dx: 0, dy: 0 };
  const scale = Math.min(boxW / srcW, boxH / srcH);
  return { scale, dx: (boxW - srcW * scale) / 2, dy: (boxH - srcH * scale) / 2 };
}

/**
 * A source `[x, y, w, h]` box in view coordinates.
 * @param {number[]} bbox
 * @param {Fit} fit
 * @returns {number[]}
 */
export function scaleBox(bbox, fit) {
  const [x, y, w, h] = bbox;
  return [x * fit.scale + fit.dx, y * fit.scale + fit.dy, w * fit.scale, h * fit.scale];
}

/**
 * A flat source polygon `[x1, y1, x2, y2, …]` in view coordinates.
 * @param {number[]} flat
 * @param {Fit} fit
 * @returns {number[]}
 */
export function scalePolygon(flat, fit) {
  return flat.map((v, i) => v * fit.scale + (i % 2 === 0 ? fit.dx : fit.dy));
}

/**
 * A view point back in source pixels, clamped to the image.
 * @param {number} vx
 * @param {number} vy
 * @param {Fit} fit
 * @param {number} srcW
 * @param {number} srcH
 * @returns {number[]}
 */
export function viewToSource(vx, vy, fit, srcW, srcH) {
  if (fit.scale <= 0) return [0, 0];
  const clamp = (/** @type {number} */ v, /** @type {number} */ max) => Math.min(Math.max(v, 0), max);
  return [clamp((vx - fit.dx) / fit.scale, srcW), clamp((vy - fit.dy) / fit.scale, srcH)];
}

/**
 * The `[x, y, w, h]` box spanned by two corner points (in any order), rounded to pixels.
 * @param {number[]} a
 * @param {number[]} b
 * @returns {number[]}
 */
export function boxFromCorners(a, b) {
  const x0 = Math.round(Math.min(a[0], b[0]));
  const y0 = Math.round(Math.min(a[1], b[1]));
  const x1 = Math.round(Math.max(a[0], b[0]));
  const y1 = Math.round(Math.max(a[1], b[1]));
  return [x0, y0, x1 - x0, y1 - y0];
}

/**
 * Where a box's label goes: above the box when there is room, else inside its top edge.
 * @param {number[]} viewBox
 * @param {number} labelHeight
 * @returns {number[]} `[x, y]` of the label's top-left corner
 */
export function labelPosition(viewBox, labelHeight) {
  const [x, y] = viewBox;
  return [Math.max(0, x), y >= labelHeight ? y - labelHeight : Math.max(0, y)];
}

/** @param {number} score */
export function formatScore(score) {
  return `${Math.round(score * 100)}%`;
}

/**
 * Text of a shape's label.
 * @param {Shape} s
 */
export function shapeText(s) {
  return s.score == null ? s.label : `${s.label} ${formatScore(s.score)}`;
}

/**
 * Prepares a canvas to cover a `w × h` CSS-pixel view sharply on high-DPI screens.
 * @param {HTMLCanvasElement} canvas
 * @param {number} w
 * @param {number} h
 * @returns {CanvasRenderingContext2D | null}
 */
export function prepareCanvas(canvas, w, h) {
  const ratio = (typeof devicePixelRatio === 'number' && devicePixelRatio) || 1;
  canvas.width = Math.max(1, Math.round(w * ratio));
  canvas.height = Math.max(1, Math.round(h * ratio));
  const ctx = canvas.getContext('2d');
  if (!ctx) return null;
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return ctx;
}

/**
 * Draws a label chip with its top-left corner at (x, y).
 * @param {CanvasRenderingContext2D} ctx
 * @param {string} text
 * @param {number} x
 * @param {number} y
 * @param {string} color
 * @param {number} fontPx
 */
export function drawChip(ctx, text, x, y, color, fontPx) {
  ctx.font = `600 ${fontPx}px system-ui, "Noto Sans KR", "Nanum Gothic", sans-serif`;
  const pad = Math.round(fontPx / 3);
  const w = ctx.measureText(text).width + pad * 2;
  const h = fontPx + pad * 2;
  ctx.fillStyle = color;
  ctx.fillRect(x, y, w, h);
  ctx.fillStyle = '#fff';
  ctx.textBaseline = 'top';
  ctx.fillText(text, x + pad, y + pad);
  return h;
}

/**
 * Draws boxes with labels; shapes without a box become label chips stacked at the top left
 * (classification).
 * @param {CanvasRenderingContext2D} ctx
 * @param {Shape[]} shapes
 * @param {Fit} fit
 * @param {{fontPx?: number, lineWidth?: number}} [opts]
 */
export function drawShapes(ctx, shapes, fit, opts = {}) {
  const fontPx = opts.fontPx ?? 11;
  const lineWidth = opts.lineWidth ?? 2;
  const chipH = fontPx + 2 * Math.round(fontPx / 3);
  let chipY = fit.dy + 4;
  for (const s of shapes) {
    const color = s.color ?? colorFor(s.label);
    if (s.bbox && s.bbox.length === 4) {
      const vb = scaleBox(s.bbox, fit);
      ctx.strokeStyle = color;
      ctx.lineWidth = lineWidth;
      ctx.strokeRect(vb[0], vb[1], vb[2], vb[3]);
      const [lx, ly] = labelPosition(vb, chipH);
      drawChip(ctx, shapeText(s), lx, ly, color, fontPx);
    } else {
      drawChip(ctx, shapeText(s), fit.dx + 4, chipY, color, fontPx);
      chipY += chipH + 4;
    }
  }
}

/**
 * Parses a CSS hex colour (`#rgb` or `#rrggbb`) into `[r, g, b]`.
 * @param {string} hex
 * @returns {number[]}
 */
export function hexToRgb(hex) {
  let h = hex.replace('#', '');
  if (h.length === 3) h = [...h].map((c) => c + c).join('');
  const n = parseInt(h, 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/**
 * Paints decoded masks, each in its colour, into RGBA pixels (`width × height × 4`) at source
 * resolution: later masks cover earlier ones.
 * @param {{mask: Uint8Array, color: string}[]} masks
 * @param {number} width
 * @param {number} height
 * @param {number} alpha 0–255
 * @returns {Uint8ClampedArray}
 */
export function paintMasks(masks, width, height, alpha) {
  const out = new Uint8ClampedArray(width * height * 4);
  for (const { mask, color } of masks) {
    const [r, g, b] = hexToRgb(color);
    for (let i = 0; i < mask.length; i++) {
      if (!mask[i]) continue;
      const o = i * 4;
      out[o] = r;
      out[o + 1] = g;
      out[o + 2] = b;
      out[o + 3] = alpha;
    }
  }
  return out;
}

/**
 * Draws instance masks (COCO RLE) with their outlines and labels.
 * @param {CanvasRenderingContext2D} ctx
 * @param {{segmentation: import('./rle.js').Rle, polygons?: number[][], bbox?: number[], label: string, score?: number, color: string}[]} instances
 * @param {Fit} fit
 */
export function drawMasks(ctx, instances, fit) {
  if (instances.length === 0 || typeof document === 'undefined') return;
  const [height, width] = instances[0].segmentation.size;
  const decoded = instances.map((inst) => ({ mask: decodeRle(inst.segmentation).mask, color: inst.color }));
  const layer = document.createElement('canvas');
  layer.width = width;
  layer.height = height;
  const lctx = layer.getContext('2d');
  if (!lctx) return;
  lctx.putImageData(new ImageData(paintMasks(decoded, width, height, 110), width, height), 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(layer, fit.dx, fit.dy, width * fit.scale, height * fit.scale);
  for (const inst of instances) {
    ctx.strokeStyle = inst.color;
    ctx.lineWidth = 2;
    for (const poly of inst.polygons ?? []) {
      const pts = scalePolygon(poly, fit);
      if (pts.length < 6) continue;
      ctx.beginPath();
      ctx.moveTo(pts[0], pts[1]);
      for (let i = 2; i < pts.length; i += 2) ctx.lineTo(pts[i], pts[i + 1]);
      ctx.closePath();
      ctx.stroke();
    }
  }
  const labels = instances.map((i) => ({ label: i.label, score: i.score, bbox: i.bbox ?? null, color: i.color }));
  drawShapes(ctx, labels, fit, { lineWidth: 1 });
}

/**
 * Draws the box the user is dragging (dashed).
 * @param {CanvasRenderingContext2D} ctx
 * @param {number[]} bbox source pixels
 * @param {Fit} fit
 */
export function drawDragBox(ctx, bbox, fit) {
  const vb = scaleBox(bbox, fit);
  ctx.save();
  ctx.setLineDash([6, 4]);
  ctx.strokeStyle = '#ffffff';
  ctx.lineWidth = 3;
  ctx.strokeRect(vb[0], vb[1], vb[2], vb[3]);
  ctx.strokeStyle = '#111827';
  ctx.lineWidth = 1.5;
  ctx.strokeRect(vb[0], vb[1], vb[2], vb[3]);
  ctx.restore();
}
