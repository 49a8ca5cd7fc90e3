// @ts-check
/** Small shared building blocks of the pages. */

import { html, useEffect, useRef, useState } from './ui.js';
import { t } from './i18n.js';
import { errorMessage } from './api.js';
import { fitContain, prepareCanvas, viewToSource } from './draw.js';

/**
 * Loads data and keeps the last answer while reloading (no flashing on polls).
 * @template T
 * @param {() => Promise<T>} fn
 * @param {unknown[]} deps
 * @returns {{data: T | null, error: unknown, loading: boolean, reload: () => void, setData: (d: T) => void}}
 */
export function useAsync(fn, deps) {
  const [state, setState] = useState(/** @type {{data: T | null, error: unknown, loading: boolean}} */ ({ data: null, error: null, loading: true }));
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    fn().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error) => live && setState((s) => ({ data: s.data, error, loading: false })),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return {
    ...state,
    reload: () => setTick((x) => x + 1),
    setData: (data) => setState({ data, error: null, loading: false }),
  };
}

/**
 * Calls `fn` every `ms` while `active`.
 * @param {() => void} fn
 * @param {number} ms
 * @param {boolean} active
 */
export function useInterval(fn, ms, active) {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    if (!active) return undefined;
    const id = setInterval(() => saved.current(), ms);
    return () => clearInterval(id);
  }, [ms, active]);
}

/** @param {{status: string, testid?: string}} props */
export function StatusBadge({ status, testid }) {
  return html`<span class=${`badge badge-${status}`} data-testid=${testid} data-status=${status}>${t(`status.${status}`)}</span>`;
}

/** @param {{label?: string}} props */
export function Loading({ label }) {
  return html`<div class="loading" role="status" aria-live="polite"><span class="spinner" aria-hidden="true"></span>${label ?? t('common.loading')}</div>`;
}

/** @param {{title: string, children?: any}} props */
export function Empty({ title, children }) {
  return html`<div class="empty"><p class="empty-title">${title}</p>${children}</div>`;
}

/** @param {{error: unknown, testid?: string}} props */
export function ErrorBox({ error, testid }) {
  if (!error) return null;
  return html`<div class="alert alert-error" role="alert" data-testid=${testid ?? 'error'}>${errorMessage(error, t)}</div>`;
}

/**
 * @param {{value: number | null, label?: string, testid?: string}} props value in 0–100
 */
export function ProgressBar({ value, label, testid }) {
  const v = value === null ? null : Math.max(0, Math.min(100, value));
  return html`
    <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow=${v ?? undefined}
      aria-label=${label} data-testid=${testid}>
      <div class=${v === null ? 'progress-fill indeterminate' : 'progress-fill'} style=${{ width: `${v ?? 30}%` }}></div>
    </div>`;
}

/**
 * A labelled horizontal bar (histograms, probabilities).
 * @param {{label: string, value: number, max: number, text: string, color?: string}} props
 */
export function Bar({ label, value, max, text, color }) {
  const pct = max > 0 ? (value / max) * 100 : 0;
  return html`
    <div class="bar-row">
      <span class="bar-label" title=${label}>${label}</span>
      <span class="bar-track"><span class="bar-fill" style=${{ width: `${pct}%`, background: color }}></span></span>
      <span class="bar-value">${text}</span>
    </div>`;
}

/**
 * A form field: label, control, hint and the server's message for it.
 * @param {{label: string, error?: string, hint?: string, children?: any, wide?: boolean}} props
 */
export function Field({ label, error, hint, children, wide }) {
  return html`
    <label class=${`field${error ? ' field-invalid' : ''}${wide ? ' field-wide' : ''}`}>
      <span class="field-label">${label}</span>
      ${children}
      ${hint && !error ? html`<span class="field-hint">${hint}</span>` : null}
      ${error ? html`<span class="field-error" role="alert">${error}</span>` : null}
    </label>`;
}

/**
 * Previous / next paging.
 * @param {{page: number, limit: number, total: number, onPage: (p: number) => void}} props
 */
export function Pager({ page, limit, total, onPage }) {
  const pages = Math.max(1, Math.ceil(total / limit));
  if (pages <= 1) return null;
  return html`
    <nav class="pager" aria-label=${t('common.pages')}>
      <button type="button" class="button" disabled=${page <= 1} onClick=${() => onPage(page - 1)} data-testid="pager-prev">${t('common.prev')}</button>
      <span>${t('common.page_of', { page, pages })}</span>
      <button type="button" class="button" disabled=${page >= pages} onClick=${() => onPage(page + 1)} data-testid="pager-next">${t('common.next')}</button>
    </nav>`;
}

/**
 * An image with a canvas over it for annotations. Shapes are given in pixels of the *source*
 * image (`sourceWidth × sourceHeight`, default the image's natural size), which may be larger
 * than the picture shown (thumbnails).
 *
 * @param {{src: string, alt: string, sourceWidth?: number, sourceHeight?: number,
 *   draw: (ctx: CanvasRenderingContext2D, fit: import('./draw.js').Fit, w: number, h: number) => void,
 *   className?: string, testid?: string, canvasTestid?: string,
 *   onPointer?: (kind: 'down' | 'move' | 'up', point: number[]) => void,
 *   onSize?: (w: number, h: number) => void}} props
 */
export function AnnotatedImage({ src, alt, sourceWidth, sourceHeight, draw, className, testid, canvasTestid, onPointer, onSize }) {
  /** @type {{current: HTMLDivElement | null}} */
  const wrap = useRef(null);
  /** @type {{current: HTMLCanvasElement | null}} */
  const canvas = useRef(null);
  const [box, setBox] = useState({ w: 0, h: 0 });
  const [natural, setNatural] = useState({ w: 0, h: 0 });
  const sw = sourceWidth || natural.w;
  const sh = sourceHeight || natural.h;

  useEffect(() => {
    const el = wrap.current;
    if (!el) return undefined;
    const measure = () => setBox({ w: el.clientWidth, h: el.clientHeight });
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  useEffect(() => {
    const c = canvas.current;
    if (!c || !box.w || !box.h) return;
    const ctx = prepareCanvas(c, box.w, box.h);
    if (ctx && sw && sh) draw(ctx, fitContain(sw, sh, box.w, box.h), sw, sh);
  });

  /** @param {'down' | 'move' | 'up'} kind @param {PointerEvent} e */
  const pointer = (kind, e) => {
    if (!onPointer || !sw || !sh || !canvas.current) return;
    const r = canvas.current.getBoundingClientRect();
    if (kind === 'down') canvas.current.setPointerCapture(e.pointerId);
    onPointer(kind, viewToSource(e.clientX - r.left, e.clientY - r.top, fitContain(sw, sh, box.w, box.h), sw, sh));
  };

  return html`
    <div ref=${wrap} class=${`annotated ${className ?? ''}`} data-testid=${testid}>
      <img src=${src} alt=${alt} loading="lazy" decoding="async"
        onLoad=${(/** @type {Event} */ e) => {
          const img = /** @type {HTMLImageElement} */ (e.currentTarget);
          setNatural({ w: img.naturalWidth, h: img.naturalHeight });
          onSize?.(img.naturalWidth, img.naturalHeight);
        }} />
      <canvas ref=${canvas} class=${onPointer ? 'overlay interactive' : 'overlay'} data-testid=${canvasTestid} aria-hidden="true"
        onPointerDown=${(/** @type {PointerEvent} */ e) => pointer('down', e)}
        onPointerMove=${(/** @type {PointerEvent} */ e) => pointer('move', e)}
        onPointerUp=${(/** @type {PointerEvent} */ e) => pointer('up', e)}></canvas>
    </div>`;
}

/**
 * A drop zone around a file input (click, keyboard, drag and drop).
 * @param {{accept: string, multiple?: boolean, label: string, onFiles: (files: File[]) => void, testid?: string}} props
 */
export function DropZone({ accept, multiple, label, onFiles, testid }) {
  const [over, setOver] = useState(false);
  return html`
    <label class=${over ? 'dropzone over' : 'dropzone'}
      onDragOver=${(/** @type {DragEvent} */ e) => { e.preventDefault(); setOver(true); }}
      onDragLeave=${() => setOver(false)}
      onDrop=${(/** @type {DragEvent} */ e) => {
        e.preventDefault();
        setOver(false);
        const files = [...(e.dataTransfer?.files ?? [])];
        if (files.length) onFiles(multiple ? files : files.slice(0, 1));
      }}>
      <input type="file" accept=${accept} multiple=${multiple} class="visually-hidden-input" data-testid=${testid}
        onChange=${(/** @type {Event} */ e) => {
          const input = /** @type {HTMLInputElement} */ (e.currentTarget);
          const files = [...(input.files ?? [])];
          if (files.length) onFiles(files);
          input.value = '';
        }} />
      <span class="dropzone-text">${label}</span>
    </label>`;
}

/** @type {{id: number, text: string, kind: string}[]} */
let toasts = [];
/** @type {Set<() => void>} */
const toastListeners = new Set();
let toastId = 0;

/** Toasts shown at once. */
const MAX_TOASTS = 3;

/**
 * Shows a short message in the corner for a few seconds.
 * @param {string} text
 * @param {'info' | 'success' | 'error'} [kind]
 */
export function notify(text, kind = 'info') {
  const id = ++toastId;
  // A few at a time: a burst of events must not cover the page.
  toasts = [...toasts, { id, text, kind }].slice(-MAX_TOASTS);
  toastListeners.forEach((fn) => fn());
  setTimeout(() => {
    toasts = toasts.filter((x) => x.id !== id);
    toastListeners.forEach((fn) => fn());
  }, kind === 'error' ? 8000 : 4000);
}

/** The corner where {@link notify} messages appear. */
export function Toasts() {
  const [, setTick] = useState(0);
  useEffect(() => {
    const fn = () => setTick((x) => x + 1);
    toastListeners.add(fn);
    return () => toastListeners.delete(fn);
  }, []);
  return html`
    <div class="toasts" aria-live="polite" data-testid="toasts">
      ${toasts.map((x) => html`<div key=${x.id} class=${`toast toast-${x.kind}`} role=${x.kind === 'error' ? 'alert' : 'status'}>${x.text}</div>`)}
    </div>`;
}
