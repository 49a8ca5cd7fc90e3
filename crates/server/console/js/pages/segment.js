// @ts-check
/**
 * Segmentation playground: upload an image, type a prompt (optionally drag a box), follow the
 * task from pending to done, see the instance masks, toggle and download them; history and
 * credits.
 */

import { html, useEffect, useMemo, useRef, useState } from '../ui.js';
import { t } from '../i18n.js';
import { api } from '../app.js';
import { boxFromCorners, colorFor, drawDragBox, drawMasks, formatScore } from '../draw.js';
import { cocoFromResult, segmentRequest } from '../coco.js';
import { saveJson } from '../files.js';
import { formatDate, formatNumber } from '../format.js';
import { AnnotatedImage, DropZone, Empty, ErrorBox, Field, Loading, Pager, ProgressBar, StatusBadge, notify, useAsync } from '../components.js';

const HISTORY_LIMIT = 10;
const POLL_MS = 1000;

/** @param {{result: any, preview: string | null, box: number[] | null}} props */
function ResultView({ result, preview, box }) {
  const [hidden, setHidden] = useState(/** @type {number[]} */ ([]));
  useEffect(() => setHidden([]), [result.id]);
  const instances = useMemo(
    () => result.instances.map((/** @type {any} */ inst, /** @type {number} */ i) => ({ ...inst, color: colorFor(i) })),
    [result],
  );
  const visible = instances.filter((/** @type {any} */ _, /** @type {number} */ i) => !hidden.includes(i));
  const shown = instances.map((/** @type {any} */ _, /** @type {number} */ i) => i).filter((/** @type {number} */ i) => !hidden.includes(i));
  /** @param {number} i */
  const toggle = (i) => setHidden(hidden.includes(i) ? hidden.filter((x) => x !== i) : [...hidden, i]);
  return html`
    <div class="grid-2" data-testid="segment-result">
      <${AnnotatedImage} src=${preview ?? result.source_image_url} alt=${result.text_prompt} className="preview"
        canvasTestid="mask-overlay"
        draw=${(/** @type {CanvasRenderingContext2D} */ ctx, /** @type {any} */ fit) => {
          drawMasks(ctx, visible, fit);
          if (box) drawDragBox(ctx, box, fit);
        }} />
      <div>
        <p class="latency">${t('segment.found', { n: instances.length })}
          ${result.metadata?.inference_time_ms != null ? ` · ${formatNumber(result.metadata.inference_time_ms, 0)} ms` : ''}
          ${result.metadata?.model_version ? html` · <code>${result.metadata.model_version}</code>` : null}</p>
        ${instances.length ? html`
          <ul class="instances" data-testid="segment-instances">
            ${instances.map((/** @type {any} */ inst, /** @type {number} */ i) => html`
              <li key=${i}>
                <label class="check">
                  <input type="checkbox" checked=${!hidden.includes(i)} onChange=${() => toggle(i)} data-testid="segment-instance-toggle" />
                  <span class="swatch" style=${{ background: inst.color }}></span>
                  ${inst.label} · ${formatScore(inst.score)} <span class="muted small">${formatNumber(inst.area, 0)} px</span>
                </label>
              </li>`)}
          </ul>` : html`<p class="muted">${t('segment.none')}</p>`}
        <div class="actions">
          ${result.mask_image_url ? html`<a class="button" href=${result.mask_image_url} download=${`mask-${result.id}.png`} data-testid="segment-download-png">${t('segment.download_png')}</a>` : null}
          <button type="button" class="button" disabled=${!instances.length}
            onClick=${() => saveJson(cocoFromResult(result, shown), `segmentation-${result.id}.json`)} data-testid="segment-download-json">${t('segment.download_json')}</button>
        </div>
      </div>
    </div>`;
}

export function SegmentPage() {
  const profile = useAsync(() => api.get('/user/profile'), []);
  const [page, setPage] = useState(1);
  const history = useAsync(() => api.get('/results', { page, limit: HISTORY_LIMIT }), [page]);
  /** @type {[{file: File, preview: string, imageUrl: string | null} | null, any]} */
  const [upload, setUpload] = useState(null);
  /** @type {[number | null, any]} */
  const [uploadProgress, setUploadProgress] = useState(null);
  const [prompt, setPrompt] = useState('');
  /** @type {[number[] | null, any]} */
  const [box, setBox] = useState(null);
  /** @type {{current: number[] | null}} */
  const dragStart = useRef(null);
  /** @type {[{task_id: string, status: string, error_message?: string | null} | null, any]} */
  const [task, setTask] = useState(null);
  /** @type {[any, any]} */
  const [result, setResult] = useState(null);
  /** @type {[unknown, any]} */
  const [error, setError] = useState(null);

  // Keyed on the preview URL, not the upload object: the object is replaced when the upload
  // finishes, and the same preview must survive that.
  const previewUrl = upload?.preview;
  useEffect(() => () => { if (previewUrl) URL.revokeObjectURL(previewUrl); }, [previewUrl]);

  /** @param {File} file */
  const pickImage = async (file) => {
    setError(null);
    setResult(null);
    setTask(null);
    setBox(null);
    const preview = URL.createObjectURL(file);
    setUpload({ file, preview, imageUrl: null });
    const form = new FormData();
    form.append('file', file, file.name);
    setUploadProgress(0);
    try {
      const res = await api.upload('/upload', form, (f) => setUploadProgress(f * 100));
      setUpload({ file, preview, imageUrl: res.image_url });
    } catch (err) {
      setError(err);
    } finally {
      setUploadProgress(null);
    }
  };

  // Follow the task until it is done or failed.
  useEffect(() => {
    if (!task || task.status === 'done' || task.status === 'error') return undefined;
    const id = setTimeout(async () => {
      try {
        const next = await api.get(`/tasks/${encodeURIComponent(task.task_id)}`);
        if (next.status === 'done' && next.result_id) {
          setResult(await api.get(`/results/${encodeURIComponent(next.result_id)}`));
          profile.reload();
          history.reload();
        }
        if (next.status === 'error') profile.reload();
        setTask(next);
      } catch (err) {
        setError(err);
        setTask({ ...task, status: 'error' });
      }
    }, POLL_MS);
    return () => clearTimeout(id);
  }, [task]);

  const submit = async (/** @type {Event} */ e) => {
    e.preventDefault();
    if (!upload?.imageUrl || !prompt.trim()) return;
    setError(null);
    setResult(null);
    try {
      const accepted = await api.post('/segment', segmentRequest(upload.imageUrl, prompt, box));
      setTask(accepted);
      profile.reload();
    } catch (err) {
      setError(err);
      profile.reload();
    }
  };

  /** @param {any} summary */
  const openHistory = async (summary) => {
    setError(null);
    setUpload(null);
    setBox(null);
    setTask(null);
    try {
      setResult(await api.get(`/results/${encodeURIComponent(summary.id)}`));
    } catch (err) {
      setError(err);
    }
  };

  /** @param {'down' | 'move' | 'up'} kind @param {number[]} p */
  const onPointer = (kind, p) => {
    if (kind === 'down') {
      dragStart.current = p;
      setBox(null);
    } else if (dragStart.current) {
      const b = boxFromCorners(dragStart.current, p);
      setBox(b[2] > 2 && b[3] > 2 ? b : null);
      if (kind === 'up') dragStart.current = null;
    }
  };

  const pending = task && (task.status === 'pending' || task.status === 'processing');
  const credits = profile.data?.credits;
  return html`
    <div class="page">
      <div class="page-head">
        <h1>${t('segment.title')}</h1>
        <span class="credits" data-testid="segment-credits">${t('segment.credits', { n: credits === undefined ? '…' : formatNumber(credits, 0) })}</span>
      </div>
      <section class="card">
        <div class="grid-2">
          <div>
            <${DropZone} accept="image/png,image/jpeg,image/webp" label=${upload ? upload.file.name : t('segment.drop')} onFiles=${(/** @type {File[]} */ f) => pickImage(f[0])} testid="segment-input" />
            ${uploadProgress !== null ? html`<${ProgressBar} value=${uploadProgress} label=${t('datasets.uploading')} testid="segment-upload-progress" />` : null}
            <form class="form" onSubmit=${submit}>
              <${Field} label=${t('segment.prompt')} hint=${t('segment.prompt_hint')}>
                <input type="text" maxlength="200" value=${prompt} placeholder=${t('segment.prompt_placeholder')}
                  onInput=${(/** @type {any} */ e) => setPrompt(e.currentTarget.value)} data-testid="segment-prompt" />
              <//>
              <p class="muted small">${box ? t('segment.box', { box: box.join(', ') }) : t('segment.box_hint')}
                ${box ? html` <button type="button" class="link-button" onClick=${() => setBox(null)} data-testid="segment-clear-box">${t('segment.clear_box')}</button>` : null}</p>
              <div class="actions">
                <button type="submit" class="button primary" disabled=${!upload?.imageUrl || !prompt.trim() || Boolean(pending)} data-testid="segment-submit">
                  ${pending ? t('common.working') : t('segment.run')}</button>
              </div>
            </form>
            ${task ? html`<p data-testid="segment-task">${t('segment.task')} <${StatusBadge} status=${task.status} testid="segment-status" />
              ${task.error_message ? html`<span class="field-error">${task.error_message}</span>` : null}</p>` : null}
            <${ErrorBox} error=${error} testid="segment-error" />
          </div>
          <div>
            ${upload && !result ? html`
              <${AnnotatedImage} src=${upload.preview} alt=${upload.file.name} className="preview" canvasTestid="segment-box-canvas"
                onPointer=${onPointer} draw=${(/** @type {CanvasRenderingContext2D} */ ctx, /** @type {any} */ fit) => { if (box) drawDragBox(ctx, box, fit); }} />`
              : !result ? html`<${Empty} title=${t('segment.empty')} />` : null}
          </div>
        </div>
        ${result ? html`<${ResultView} result=${result} preview=${upload?.preview ?? null} box=${box} />` : null}
      </section>
      <section class="card">
        <h2>${t('segment.history')}</h2>
        <${ErrorBox} error=${history.error} />
        ${history.loading && !history.data ? html`<${Loading} />` : null}
        ${history.data && !history.data.results.length ? html`<p class="muted">${t('segment.history_empty')}</p>` : null}
        <ul class="history" data-testid="segment-history">
          ${(history.data?.results ?? []).map((/** @type {any} */ r) => html`
            <li key=${r.id}>
              <button type="button" class="history-item" onClick=${() => openHistory(r)} data-testid="segment-history-item">
                <span>${r.text_prompt}</span> <${StatusBadge} status=${r.status} /> <span class="muted small">${formatDate(r.created_at)}</span>
              </button>
            </li>`)}
        </ul>
        ${history.data ? html`<${Pager} page=${page} limit=${HISTORY_LIMIT} total=${history.data.total} onPage=${setPage} />` : null}
      </section>
    </div>`;
}
