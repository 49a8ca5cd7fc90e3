// @ts-check
/** Datasets: upload an archive (with progress) and the list, refreshed while any is processing. */

import { html, useState } from '../ui.js';
import { t } from '../i18n.js';
import { api } from '../app.js';
import { fieldErrors } from '../api.js';
import { replaceQuery } from '../router.js';
import { formatDate, formatMb, formatNumber, formatBytes } from '../format.js';
import { DropZone, Empty, ErrorBox, Field, Loading, Pager, ProgressBar, StatusBadge, notify, useAsync, useInterval } from '../components.js';

const FORMATS = ['auto', 'imagefolder', 'coco', 'yolo', 'voc'];
const LIMIT = 20;

/** @param {{onUploaded: () => void}} props */
function UploadCard({ onUploaded }) {
  /** @type {[File | null, any]} */
  const [file, setFile] = useState(null);
  const [name, setName] = useState('');
  const [format, setFormat] = useState('auto');
  const [description, setDescription] = useState('');
  /** @type {[number | null, any]} */
  const [progress, setProgress] = useState(null);
  /** @type {[unknown, any]} */
  const [error, setError] = useState(null);
  const errors = fieldErrors(error);

  const submit = async (/** @type {Event} */ e) => {
    e.preventDefault();
    if (!file) return;
    const form = new FormData();
    form.append('name', name.trim() || file.name);
    form.append('format', format);
    if (description.trim()) form.append('description', description.trim());
    form.append('file', file, file.name);
    setError(null);
    setProgress(0);
    try {
      await api.upload('/datasets/upload', form, (f) => setProgress(f * 100));
      notify(t('datasets.uploaded'), 'success');
      setFile(null);
      setName('');
      setDescription('');
      onUploaded();
    } catch (err) {
      setError(err);
    } finally {
      setProgress(null);
    }
  };

  return html`
    <section class="card">
      <h2>${t('datasets.upload')}</h2>
      <form class="form" onSubmit=${submit} data-testid="upload-form">
        <${DropZone} accept=".zip,.tar,.tar.gz,.tgz,application/zip,application/x-tar,application/gzip"
          label=${file ? `${file.name} · ${formatBytes(file.size)}` : t('datasets.drop')}
          onFiles=${(/** @type {File[]} */ files) => {
            setFile(files[0]);
            if (!name) setName(files[0].name.replace(/\.(zip|tar|tar\.gz|tgz)$/i, ''));
          }} testid="upload-input" />
        ${errors.file ? html`<span class="field-error" role="alert">${errors.file}</span>` : null}
        <div class="form-grid">
          <${Field} label=${t('datasets.name')} error=${errors.name}>
            <input type="text" maxlength="200" required value=${name} onInput=${(/** @type {any} */ e) => setName(e.currentTarget.value)} data-testid="upload-name" />
          <//>
          <${Field} label=${t('datasets.format')} error=${errors.format}>
            <select value=${format} onChange=${(/** @type {any} */ e) => setFormat(e.currentTarget.value)} data-testid="upload-format">
              ${FORMATS.map((f) => html`<option value=${f}>${t(`format.${f}`)}</option>`)}
            </select>
          <//>
          <${Field} label=${t('datasets.description')} error=${errors.description} wide>
            <input type="text" maxlength="2000" value=${description} onInput=${(/** @type {any} */ e) => setDescription(e.currentTarget.value)} data-testid="upload-description" />
          <//>
        </div>
        ${progress !== null ? html`<${ProgressBar} value=${progress} label=${t('datasets.uploading')} testid="upload-progress" />
          <p class="muted small">${t('datasets.uploading')} ${formatNumber(progress, 0)}%</p>` : null}
        <${ErrorBox} error=${Object.keys(errors).length ? null : error} testid="upload-error" />
        <div class="actions">
          <button type="submit" class="button primary" disabled=${!file || progress !== null} data-testid="upload-submit">${t('datasets.upload_button')}</button>
        </div>
      </form>
    </section>`;
}

/** @param {{route: import('../router.js').Route}} props */
export function DatasetsPage({ route }) {
  const page = Number(route.query.page ?? 1) || 1;
  const list = useAsync(() => api.get('/datasets', { page, limit: LIMIT }), [page]);
  const datasets = list.data?.datasets ?? [];
  useInterval(list.reload, 3000, datasets.some((/** @type {any} */ d) => d.status === 'processing'));

  return html`
    <div class="page">
      <h1>${t('datasets.title')}</h1>
      <${UploadCard} onUploaded=${list.reload} />
      <section class="card">
        <h2>${t('datasets.list')}</h2>
        <${ErrorBox} error=${list.error} />
        ${list.loading && !list.data ? html`<${Loading} />` : null}
        ${list.data && !datasets.length ? html`<${Empty} title=${t('datasets.empty')}><p>${t('datasets.empty_hint')}</p><//>` : null}
        ${datasets.length ? html`
          <div class="table-wrap">
            <table class="table" data-testid="dataset-table">
              <thead><tr>
                <th>${t('datasets.name')}</th><th>${t('datasets.format')}</th><th class="num">${t('datasets.images')}</th>
                <th class="num">${t('datasets.size')}</th><th>${t('common.status')}</th><th>${t('common.created')}</th>
              </tr></thead>
              <tbody>
                ${datasets.map((/** @type {any} */ d) => html`
                  <tr key=${d.dataset_id} data-testid="dataset-row" data-dataset-id=${d.dataset_id}>
                    <td><a href=${`#/datasets/${d.dataset_id}`} data-testid="dataset-link">${d.name}</a></td>
                    <td>${d.format}</td>
                    <td class="num">${formatNumber(d.file_count, 0)}</td>
                    <td class="num">${formatMb(d.size_mb)}</td>
                    <td><${StatusBadge} status=${d.status} testid="dataset-status" /></td>
                    <td>${formatDate(d.created_at)}</td>
                  </tr>`)}
              </tbody>
            </table>
          </div>
          <${Pager} page=${page} limit=${LIMIT} total=${list.data.total} onPage=${(/** @type {number} */ p) => replaceQuery('/datasets', { page: p })} />` : null}
      </section>
    </div>`;
}
