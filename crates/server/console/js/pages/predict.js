// @ts-check
/** Predict playground: one image (file, paste or URL) or a batch, with a completed workflow. */

import { html, useEffect, useState } from '../ui.js';
import { t } from '../i18n.js';
import { api } from '../app.js';
import { readAsDataUrl } from '../files.js';
import { colorFor, drawShapes, formatScore } from '../draw.js';
import { formatNumber } from '../format.js';
import { AnnotatedImage, Bar, DropZone, Empty, ErrorBox, Field, Loading, ProgressBar, StatusBadge, useAsync, useInterval } from '../components.js';

/** @typedef {{class: string, class_id: number, confidence: number, bbox?: number[]}} Prediction */

/** @param {{predictions: Prediction[], image: string | null}} props */
function Predictions({ predictions, image }) {
  const boxes = predictions.some((p) => Array.isArray(p.bbox));
  if (!predictions.length) return html`<p class="muted">${t('predict.nothing')}</p>`;
  const shapes = predictions.map((p) => ({ label: p.class, score: p.confidence, bbox: p.bbox ?? null, color: colorFor(p.class) }));
  return html`
    ${boxes && image ? html`
      <${AnnotatedImage} src=${image} alt=${t('predict.image')} className="preview" canvasTestid="predict-overlay"
        draw=${(/** @type {CanvasRenderingContext2D} */ ctx, /** @type {any} */ fit) => drawShapes(ctx, shapes, fit, { fontPx: 13 })} />` : null}
    <div class="bars" data-testid="predict-classes">
      ${predictions.map((p, i) => html`
        <${Bar} key=${i} label=${p.class} value=${p.confidence} max=${1} text=${formatScore(p.confidence)} color=${colorFor(p.class)} />`)}
    </div>`;
}

/** @param {{workflowId: string}} props */
function Single({ workflowId }) {
  /** @type {[{kind: 'data', src: string, name: string} | {kind: 'url', url: string} | null, any]} */
  const [image, setImage] = useState(null);
  const [url, setUrl] = useState('');
  /** @type {[any, any]} */
  const [result, setResult] = useState(null);
  const [busy, setBusy] = useState(false);
  /** @type {[unknown, any]} */
  const [error, setError] = useState(null);

  /** @param {File} file */
  const pickFile = async (file) => {
    setImage({ kind: 'data', src: await readAsDataUrl(file), name: file.name });
    setResult(null);
  };
  // Paste an image from the clipboard anywhere on the page.
  useEffect(() => {
    const onPaste = (/** @type {ClipboardEvent} */ e) => {
      const file = [...(e.clipboardData?.files ?? [])].find((f) => f.type.startsWith('image/'));
      if (file) {
        e.preventDefault();
        pickFile(file);
      }
    };
    document.addEventListener('paste', onPaste);
    return () => document.removeEventListener('paste', onPaste);
  }, []);

  const predict = async () => {
    if (!image) return;
    setBusy(true);
    setError(null);
    const started = performance.now();
    try {
      const body = image.kind === 'data' ? { image_base64: image.src } : { image_url: image.url };
      const res = await api.post(`/inference/${encodeURIComponent(workflowId)}/predict`, body);
      setResult({ ...res, roundTripMs: performance.now() - started });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return html`
    <section class="card">
      <h2>${t('predict.single')}</h2>
      <div class="grid-2">
        <div>
          <${DropZone} accept="image/png,image/jpeg,image/webp" label=${t('predict.drop')} onFiles=${(/** @type {File[]} */ f) => pickFile(f[0])} testid="predict-input" />
          <form class="inline-form" onSubmit=${(/** @type {Event} */ e) => { e.preventDefault(); if (url.trim()) { setImage({ kind: 'url', url: url.trim() }); setResult(null); } }}>
            <${Field} label=${t('predict.url')}>
              <input type="url" value=${url} placeholder="https://…" onInput=${(/** @type {any} */ e) => setUrl(e.currentTarget.value)} data-testid="predict-url" />
            <//>
            <button type="submit" class="button" data-testid="predict-url-use">${t('predict.use_url')}</button>
          </form>
          ${image ? html`
            <p class="muted small" data-testid="predict-selected">${image.kind === 'data' ? image.name : image.url}</p>
            ${image.kind === 'data' && !result ? html`<img class="preview-img" src=${image.src} alt=${t('predict.image')} />` : null}
            ${image.kind === 'url' ? html`<p class="muted small">${t('predict.url_no_preview')}</p>` : null}` : null}
          <div class="actions">
            <button type="button" class="button primary" disabled=${!image || busy || !workflowId} onClick=${predict} data-testid="predict-submit">
              ${busy ? t('common.working') : t('predict.run')}</button>
          </div>
          <${ErrorBox} error=${error} testid="predict-error" />
        </div>
        <div data-testid="predict-result">
          ${result ? html`
            <p class="latency" data-testid="predict-latency">${t('predict.latency', { model: formatNumber(result.inference_time_ms, 1), total: formatNumber(result.roundTripMs, 0) })}
              · <code>${result.model_version}</code></p>
            <${Predictions} predictions=${result.predictions} image=${image?.kind === 'data' ? image.src : null} />`
            : html`<${Empty} title=${t('predict.no_result')}><p class="muted small">${t('predict.paste_hint')}</p><//>`}
        </div>
      </div>
    </section>`;
}

/** @param {{workflowId: string}} props */
function Batch({ workflowId }) {
  /** @type {[{name: string, src: string}[], any]} */
  const [files, setFiles] = useState([]);
  /** @type {[any, any]} */
  const [job, setJob] = useState(null);
  const [busy, setBusy] = useState(false);
  /** @type {[unknown, any]} */
  const [error, setError] = useState(null);

  const poll = async () => {
    try {
      setJob(await api.get(`/inference/${encodeURIComponent(workflowId)}/batch/${encodeURIComponent(job.job_id)}`));
    } catch (err) {
      setError(err);
    }
  };
  useInterval(poll, 1500, Boolean(job) && job.status === 'processing');

  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      const accepted = await api.post(`/inference/${encodeURIComponent(workflowId)}/batch`, {
        images: files.map((f) => ({ image_base64: f.src })),
      });
      setJob({ ...accepted, completed_images: 0, results: [] });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  /** @param {any} r @param {number} i */
  const fileOf = (r, i) => files[typeof r.index === 'number' ? r.index : i];
  return html`
    <section class="card" data-testid="batch">
      <h2>${t('predict.batch')}</h2>
      <${DropZone} accept="image/png,image/jpeg,image/webp" multiple label=${files.length ? t('predict.batch_count', { n: files.length }) : t('predict.batch_drop')}
        onFiles=${async (/** @type {File[]} */ list) => {
          setFiles(await Promise.all(list.slice(0, 100).map(async (f) => ({ name: f.name, src: await readAsDataUrl(f) }))));
          setJob(null);
        }} testid="batch-input" />
      <div class="actions">
        <button type="button" class="button primary" disabled=${!files.length || busy || !workflowId || job?.status === 'processing'}
          onClick=${submit} data-testid="batch-submit">${t('predict.batch_run')}</button>
      </div>
      <${ErrorBox} error=${error} testid="batch-error" />
      ${job ? html`
        <p><${StatusBadge} status=${job.status} testid="batch-status" /> ${t('predict.batch_progress', { done: job.completed_images, total: job.total_images })}</p>
        <${ProgressBar} value=${job.total_images ? (job.completed_images / job.total_images) * 100 : null} label=${t('predict.batch')} />
        <ul class="batch-results" data-testid="batch-results">
          ${job.results.map((/** @type {any} */ r, /** @type {number} */ i) => {
            const f = fileOf(r, i);
            const top = r.predictions?.[0];
            return html`
              <li key=${i} class="batch-item">
                ${f ? html`<img src=${f.src} alt=${f.name} />` : null}
                <div><strong>${f?.name ?? r.image_url ?? `#${i + 1}`}</strong>
                  ${r.error ? html`<p class="field-error">${typeof r.error === 'string' ? r.error : r.error.message ?? JSON.stringify(r.error)}</p>`
                    : html`<p>${top ? `${top.class} · ${formatScore(top.confidence)}` : t('predict.nothing')}
                      ${r.predictions?.length > 1 ? html`<span class="muted small"> (+${r.predictions.length - 1})</span>` : null}</p>`}
                </div>
              </li>`;
          })}
        </ul>` : null}
    </section>`;
}

/** @param {{route: import('../router.js').Route}} props */
export function PredictPage({ route }) {
  const list = useAsync(() => api.get('/workflows', { status: 'completed', limit: 100 }), []);
  const [workflowId, setWorkflowId] = useState(route.query.workflow ?? '');
  const workflows = list.data?.workflows ?? [];
  useEffect(() => {
    if (!workflowId && workflows.length) setWorkflowId(workflows[0].workflow_id);
  }, [workflows.length]);
  return html`
    <div class="page">
      <h1>${t('predict.title')}</h1>
      <${ErrorBox} error=${list.error} />
      ${list.loading && !list.data ? html`<${Loading} />` : null}
      ${list.data && !workflows.length ? html`<${Empty} title=${t('predict.no_workflows')}><p><a href="#/workflows">${t('nav.workflows')}</a></p><//>` : null}
      ${workflows.length ? html`
        <div class="card filters">
          <${Field} label=${t('predict.workflow')}>
            <select value=${workflowId} onChange=${(/** @type {any} */ e) => setWorkflowId(e.currentTarget.value)} data-testid="predict-workflow">
              ${workflows.map((/** @type {any} */ w) => html`<option value=${w.workflow_id}>${w.name} (${w.workflow_id})</option>`)}
            </select>
          <//>
        </div>
        <${Single} workflowId=${workflowId} />
        <${Batch} workflowId=${workflowId} />` : null}
    </div>`;
}
