// @ts-check
/** One dataset: statistics, validation, export, delete and the image browser. */

import { html, useState } from '../ui.js';
import { t } from '../i18n.js';
import { api } from '../app.js';
import { navigate } from '../router.js';
import { formatDate, formatMb, formatNumber } from '../format.js';
import { saveBlob } from '../files.js';
import { colorFor } from '../draw.js';
import { datasetTask } from '../hyper.js';
import { Bar, ErrorBox, Loading, StatusBadge, notify, useAsync, useInterval } from '../components.js';
import { useConfirm } from '../dialog.js';
import { DatasetBrowser } from './dataset-browser.js';

const EXPORT_FORMATS = ['coco', 'yolo', 'voc', 'imagefolder'];

/** @param {{stats: any}} props */
function Statistics({ stats }) {
  const max = Math.max(1, ...stats.classes.map((/** @type {any} */ c) => c.count));
  const splits = [
    ['split.train', stats.train_images],
    ['split.val', stats.val_images],
    ['split.test', stats.test_images],
  ];
  return html`
    <section class="card">
      <h2>${t('dataset.statistics')}</h2>
      <div class="stat-row" data-testid="dataset-splits">
        <div class="stat"><span class="stat-value">${formatNumber(stats.total_images, 0)}</span><span class="stat-label">${t('dataset.total_images')}</span></div>
        ${splits.map(([k, v]) => html`
          <div class="stat"><span class="stat-value">${formatNumber(Number(v), 0)}</span><span class="stat-label">${t(String(k))}</span></div>`)}
      </div>
      <h3>${t('dataset.classes', { n: stats.classes.length })}</h3>
      <div class="bars" data-testid="class-histogram">
        ${stats.classes.map((/** @type {any} */ c) => html`
          <${Bar} key=${c.name} label=${c.name} value=${c.count} max=${max} text=${formatNumber(c.count, 0)} color=${colorFor(c.name)} />`)}
      </div>
    </section>`;
}

/** @param {{result: any}} props */
function Validation({ result }) {
  return html`
    <section class="card" data-testid="validation-result">
      <h2>${t('dataset.validation')} ${result.valid
        ? html`<span class="badge badge-ready">${t('dataset.valid')}</span>`
        : html`<span class="badge badge-failed">${t('dataset.invalid')}</span>`}</h2>
      ${result.issues.length ? html`
        <ul class="issues">
          ${result.issues.map((/** @type {any} */ i) => html`
            <li class=${`issue issue-${i.severity}`}>
              <span class=${`badge badge-${i.severity}`}>${t(`severity.${i.severity}`)}</span> ${i.message}
              ${i.details && Object.keys(i.details).length ? html`
                <details><summary>${t('common.details')}</summary><pre>${JSON.stringify(i.details, null, 2)}</pre></details>` : null}
            </li>`)}
        </ul>` : html`<p class="muted">${t('dataset.no_issues')}</p>`}
      ${result.recommendations.length ? html`
        <h3>${t('dataset.recommendations')}</h3>
        <ul>${result.recommendations.map((/** @type {string} */ r) => html`<li>${r}</li>`)}</ul>` : null}
    </section>`;
}

/** @param {{route: import('../router.js').Route}} props */
export function DatasetPage({ route }) {
  const id = route.params.id;
  const detail = useAsync(() => api.get(`/datasets/${encodeURIComponent(id)}`), [id]);
  const d = detail.data;
  useInterval(detail.reload, 3000, d?.status === 'processing');
  const [exportFormat, setExportFormat] = useState('');
  const [busy, setBusy] = useState('');
  /** @type {[any, any]} */
  const [validation, setValidation] = useState(null);
  /** @type {[unknown, any]} */
  const [error, setError] = useState(null);
  const [confirmElement, confirm] = useConfirm();

  /** @param {string} what @param {() => Promise<void>} fn */
  const run = async (what, fn) => {
    setBusy(what);
    setError(null);
    try {
      await fn();
    } catch (err) {
      setError(err);
    } finally {
      setBusy('');
    }
  };

  const doExport = () => run('export', async () => {
    const format = exportFormat || d.format;
    const { blob, filename } = await api.blob(`/datasets/${encodeURIComponent(id)}/export`, { format });
    saveBlob(blob, filename ?? `${d.name}-${format}.zip`);
  });
  const doValidate = () => run('validate', async () => {
    setValidation(await api.post(`/datasets/${encodeURIComponent(id)}/validate`, {}));
  });
  const doDelete = async () => {
    const ok = await confirm({ title: t('dataset.delete'), message: t('dataset.delete_confirm', { name: d.name }), confirm: t('common.delete'), danger: true });
    if (!ok) return;
    run('delete', async () => {
      await api.del(`/datasets/${encodeURIComponent(id)}`);
      notify(t('dataset.deleted'), 'success');
      navigate('/datasets');
    });
  };

  if (!d) {
    return html`<div class="page">${detail.loading ? html`<${Loading} />` : html`<${ErrorBox} error=${detail.error} />`}</div>`;
  }
  const ready = d.status === 'ready';
  return html`
    <div class="page">
      <p class="crumbs"><a href="#/datasets">${t('nav.datasets')}</a> /</p>
      <div class="page-head">
        <h1>${d.name} <${StatusBadge} status=${d.status} testid="dataset-detail-status" /></h1>
        <div class="actions">
          ${ready ? html`
            <a class="button primary" href=${`#/workflows/new?dataset=${encodeURIComponent(id)}`} data-testid="dataset-train">${t('dataset.train')}</a>
            <button type="button" class="button" onClick=${doValidate} disabled=${busy !== ''} data-testid="dataset-validate">
              ${busy === 'validate' ? t('common.working') : t('dataset.validate')}</button>
            <span class="inline-group">
              <label class="visually-hidden" for="export-format">${t('dataset.export_format')}</label>
              <select id="export-format" value=${exportFormat} onChange=${(/** @type {any} */ e) => setExportFormat(e.currentTarget.value)} data-testid="export-format">
                <option value="">${t('dataset.export_own', { format: d.format })}</option>
                ${EXPORT_FORMATS.map((f) => html`<option value=${f}>${t(`format.${f}`)}</option>`)}
              </select>
              <button type="button" class="button" onClick=${doExport} disabled=${busy !== ''} data-testid="dataset-export">
                ${busy === 'export' ? t('common.working') : t('dataset.export')}</button>
            </span>` : null}
          <button type="button" class="button danger" onClick=${doDelete} disabled=${busy !== ''} data-testid="dataset-delete">${t('common.delete')}</button>
        </div>
      </div>
      <${ErrorBox} error=${error} testid="dataset-error" />
      <section class="card">
        <dl class="kv kv-inline">
          <dt>${t('datasets.format')}</dt><dd>${d.format}</dd>
          <dt>${t('dataset.task')}</dt><dd>${t(`task.${datasetTask(d)}`)}</dd>
          <dt>${t('datasets.images')}</dt><dd>${formatNumber(d.file_count, 0)}</dd>
          <dt>${t('datasets.size')}</dt><dd>${formatMb(d.size_mb)}</dd>
          <dt>${t('common.created')}</dt><dd>${formatDate(d.created_at)}</dd>
          <dt>ID</dt><dd><code>${d.dataset_id}</code></dd>
        </dl>
        ${d.description ? html`<p>${d.description}</p>` : null}
        ${d.status === 'processing' ? html`<p class="muted">${t('dataset.processing')}</p>` : null}
        ${d.error ? html`<div class="alert alert-error" role="alert">${d.error}</div>` : null}
      </section>
      ${d.statistics ? html`<${Statistics} stats=${d.statistics} />` : null}
      ${validation ? html`<${Validation} result=${validation} />` : null}
      ${ready ? html`<${DatasetBrowser} datasetId=${id} classes=${(d.statistics?.classes ?? []).map((/** @type {any} */ c) => c.name)} />` : null}
      ${confirmElement}
    </div>`;
}
