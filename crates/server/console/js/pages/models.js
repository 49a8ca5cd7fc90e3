// @ts-check
/** The model catalogue and one model's detail. */

import { html, useEffect, useState } from '../ui.js';
import { t } from '../i18n.js';
import { api } from '../app.js';
import { replaceQuery } from '../router.js';
import { formatNumber } from '../format.js';
import { Empty, ErrorBox, Field, Loading, useAsync } from '../components.js';

const TASKS = ['classification', 'detection', 'segmentation'];

/** @param {{metrics: Record<string, unknown> | undefined}} props */
function Metrics({ metrics }) {
  const entries = Object.entries(metrics ?? {});
  if (!entries.length) return null;
  return html`<dl class="kv kv-inline small">${entries.map(([k, v]) => html`<dt>${k}</dt><dd>${typeof v === 'number' ? formatNumber(v, 4) : String(v)}</dd>`)}</dl>`;
}

/** @param {{route: import('../router.js').Route}} props */
export function ModelsPage({ route }) {
  const search = route.query.search ?? '';
  const task = route.query.task ?? '';
  const [text, setText] = useState(search);
  const list = useAsync(() => api.get('/models', { search, task_type: task, limit: 100 }), [search, task]);
  // Search as the user types, after a short pause.
  useEffect(() => {
    if (text === search) return undefined;
    const id = setTimeout(() => replaceQuery('/models', { search: text, task }), 300);
    return () => clearTimeout(id);
  }, [text]);
  const models = list.data?.models ?? [];
  return html`
    <div class="page">
      <h1>${t('models.title')}</h1>
      <form class="filters card" role="search" onSubmit=${(/** @type {Event} */ e) => { e.preventDefault(); replaceQuery('/models', { search: text, task }); }}>
        <${Field} label=${t('models.search')}>
          <input type="search" value=${text} onInput=${(/** @type {any} */ e) => setText(e.currentTarget.value)} data-testid="models-search" />
        <//>
        <${Field} label=${t('dataset.task')}>
          <select value=${task} onChange=${(/** @type {any} */ e) => replaceQuery('/models', { search: text, task: e.currentTarget.value })} data-testid="models-task">
            <option value="">${t('common.all')}</option>
            ${TASKS.map((x) => html`<option value=${x}>${t(`task.${x}`)}</option>`)}
          </select>
        <//>
      </form>
      <${ErrorBox} error=${list.error} />
      ${list.loading && !list.data ? html`<${Loading} />` : null}
      ${list.data && !models.length ? html`<${Empty} title=${t('models.empty')} />` : null}
      <ul class="card-grid" data-testid="model-list">
        ${models.map((/** @type {any} */ m) => html`
          <li key=${m.model_id} class="card model-card" data-testid="model-card">
            <h2><a href=${`#/models/${m.model_id}`}>${m.name}</a></h2>
            <p class="muted small"><code>${m.model_id}</code> · ${m.parameters} · ${m.framework}</p>
            <div class="chips">${m.task_types.map((/** @type {string} */ x) => html`<span class="chip">${t(`task.${x}`)}</span>`)}</div>
            <p>${m.description}</p>
            <${Metrics} metrics=${m.metrics} />
          </li>`)}
      </ul>
    </div>`;
}

/** @param {{route: import('../router.js').Route}} props */
export function ModelPage({ route }) {
  const id = route.params.id;
  const model = useAsync(() => api.get(`/models/${encodeURIComponent(id)}`), [id]);
  const m = model.data;
  return html`
    <div class="page">
      <p class="crumbs"><a href="#/models">${t('nav.models')}</a> /</p>
      <${ErrorBox} error=${model.error} />
      ${!m ? (model.loading ? html`<${Loading} />` : null) : html`
        <h1>${m.name}</h1>
        <section class="card" data-testid="model-detail">
          <p>${m.description}</p>
          <dl class="kv kv-grid">
            <dt>ID</dt><dd><code>${m.model_id}</code></dd>
            <dt>${t('models.framework')}</dt><dd>${m.framework}</dd>
            <dt>${t('models.parameters')}</dt><dd>${m.parameters}</dd>
            <dt>${t('models.tasks')}</dt><dd>${m.task_types.map((/** @type {string} */ x) => t(`task.${x}`)).join(', ')}</dd>
            <dt>${t('models.input_size')}</dt><dd>${(m.input_size ?? []).join(' × ') || '—'}</dd>
            <dt>${t('models.pretrained')}</dt><dd>${m.pretrained_weights.join(', ') || '—'}</dd>
            <dt>${t('models.backends')}</dt><dd>${(m.supported_backends ?? []).join(', ') || '—'}</dd>
            ${m.documentation_url ? html`<dt>${t('models.docs')}</dt><dd><a href=${m.documentation_url} target="_blank" rel="noopener noreferrer">${m.documentation_url}</a></dd>` : null}
          </dl>
          <${Metrics} metrics=${m.metrics} />
          ${m.example_usage ? html`<h2>${t('models.example')}</h2><pre>${m.example_usage}</pre>` : null}
          ${m.task_types.some((/** @type {string} */ x) => x !== 'segmentation')
            ? html`<p><a class="button primary" href="#/workflows/new">${t('workflows.new')}</a></p>` : null}
        </section>`}
    </div>`;
}
