// @ts-check
/**
 * The image browser of a dataset: thumbnails paged through `GET /datasets/{id}/items`, filtered
 * by class and split, annotations drawn over each; a click opens the full-size view.
 */

import { html, useState } from '../ui.js';
import { t } from '../i18n.js';
import { api } from '../app.js';
import { drawShapes } from '../draw.js';
import { AnnotatedImage, Empty, ErrorBox, Field, Loading, Pager, useAsync } from '../components.js';
import { Dialog } from '../dialog.js';

const LIMIT = 48;
const SPLITS = ['train', 'val', 'test'];

/**
 * @typedef {{id: number, file_name: string, width: number, height: number, split: string,
 *   annotations: {class_id: number, class_name: string, bbox: number[] | null}[],
 *   thumbnail_url: string, image_url: string}} Item
 */

/** @param {Item} item */
const shapesOf = (item) => item.annotations.map((a) => ({ label: a.class_name, bbox: a.bbox }));

/** @param {{item: Item, large?: boolean}} props */
function ItemImage({ item, large }) {
  return html`
    <${AnnotatedImage} src=${large ? item.image_url : item.thumbnail_url} alt=${item.file_name}
      sourceWidth=${item.width} sourceHeight=${item.height} className=${large ? 'large-view' : 'thumb'}
      canvasTestid=${large ? 'item-large-canvas' : 'item-canvas'}
      draw=${(/** @type {CanvasRenderingContext2D} */ ctx, /** @type {import('../draw.js').Fit} */ fit) =>
        drawShapes(ctx, shapesOf(item), fit, large ? { fontPx: 14, lineWidth: 2.5 } : { fontPx: 10, lineWidth: 1.5 })} />`;
}

/** @param {{datasetId: string, classes: string[]}} props */
export function DatasetBrowser({ datasetId, classes }) {
  const [split, setSplit] = useState('');
  const [cls, setCls] = useState('');
  const [page, setPage] = useState(1);
  /** @type {[Item | null, any]} */
  const [open, setOpen] = useState(null);
  const items = useAsync(
    () => api.get(`/datasets/${encodeURIComponent(datasetId)}/items`, { split, class: cls, page, limit: LIMIT }),
    [datasetId, split, cls, page],
  );
  /** @type {Item[]} */
  const list = items.data?.items ?? [];

  return html`
    <section class="card" data-testid="image-browser">
      <div class="section-head">
        <h2>${t('browser.title')}</h2>
        <div class="filters">
          <${Field} label=${t('browser.class')}>
            <select value=${cls} onChange=${(/** @type {any} */ e) => { setCls(e.currentTarget.value); setPage(1); }} data-testid="browser-class">
              <option value="">${t('browser.all_classes')}</option>
              ${classes.map((c) => html`<option value=${c}>${c}</option>`)}
            </select>
          <//>
          <${Field} label=${t('browser.split')}>
            <select value=${split} onChange=${(/** @type {any} */ e) => { setSplit(e.currentTarget.value); setPage(1); }} data-testid="browser-split">
              <option value="">${t('browser.all_splits')}</option>
              ${SPLITS.map((s) => html`<option value=${s}>${t(`split.${s}`)}</option>`)}
            </select>
          <//>
        </div>
      </div>
      <${ErrorBox} error=${items.error} />
      ${items.loading && !items.data ? html`<${Loading} />` : null}
      ${items.data && !list.length ? html`<${Empty} title=${t('browser.empty')} />` : null}
      <ul class=${items.loading ? 'thumb-grid stale' : 'thumb-grid'} data-testid="thumb-grid">
        ${list.map((item) => html`
          <li key=${item.id}>
            <button type="button" class="thumb-button" onClick=${() => setOpen(item)} data-testid="browser-item"
              aria-label=${`${item.file_name} — ${item.annotations.map((a) => a.class_name).join(', ')}`}>
              <${ItemImage} item=${item} />
              <span class="thumb-caption">${item.file_name}</span>
            </button>
          </li>`)}
      </ul>
      ${items.data ? html`<${Pager} page=${page} limit=${LIMIT} total=${items.data.total} onPage=${setPage} />` : null}
      <${Dialog} open=${open !== null} title=${open?.file_name ?? ''} onClose=${() => setOpen(null)} wide testid="item-dialog">
        ${open ? html`
          <${ItemImage} item=${open} large />
          <p class="muted small">${open.width} × ${open.height} · ${t(`split.${open.split}`)} ·
            ${open.annotations.map((a) => a.class_name).join(', ') || t('browser.no_annotations')}</p>` : null}
      <//>
    </section>`;
}
