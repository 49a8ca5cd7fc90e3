// @ts-check
/** The "new training" form: dataset, model of the dataset's task, hyper-parameters. */

import { html, useEffect, useState } from '../ui.js';
import { t } from '../i18n.js';
import { api } from '../app.js';
import { fieldErrors } from '../api.js';
import { navigate } from '../router.js';
import { buildHyperparameters, datasetTask, fieldsFor } from '../hyper.js';
import { ErrorBox, Field, Loading, notify, useAsync } from '../components.js';
import { HyperFields } from './hyper-fields.js';

/** @param {{route: import('../router.js').Route}} props */
export function NewWorkflowPage({ route }) {
  const datasets = useAsync(() => api.get('/datasets', { limit: 100 }), []);
  const ready = (datasets.data?.datasets ?? []).filter((/** @type {any} */ d) => d.status === 'ready');
  const [datasetId, setDatasetId] = useState(route.query.dataset ?? '');
  const dataset = ready.find((/** @type {any} */ d) => d.dataset_id === datasetId) ?? null;
  const task = datasetTask(dataset);
  const models = useAsync(() => (dataset ? api.get('/models', { task_type: task, limit: 100 }) : Promise.resolve(null)), [task, Boolean(dataset)]);
  const [model, setModel] = useState('');
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [hyper, setHyper] = useState(/** @type {Record<string, string>} */ ({}));
  const [busy, setBusy] = useState(false);
  /** @type {[unknown, any]} */
  const [error, setError] = useState(null);
  const errors = fieldErrors(error);

  useEffect(() => {
    if (!datasetId && ready.length) setDatasetId(ready[0].dataset_id);
  }, [ready.length]);
  useEffect(() => {
    const list = models.data?.models ?? [];
    if (list.length && !list.some((/** @type {any} */ m) => m.model_id === model)) setModel(list[0].model_id);
  }, [models.data]);

  const fields = fieldsFor(task);
  const known = new Set(['name', 'description', 'model', 'dataset_id', 'task_type', ...fields.map((f) => f.name)]);
  const other = Object.entries(errors).filter(([k]) => !known.has(k));

  const submit = async (/** @type {Event} */ e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const created = await api.post('/workflows', {
        name: name.trim() || `${model} · ${dataset?.name ?? datasetId}`,
        description: description.trim(),
        config: { task_type: task, model, dataset_id: datasetId, hyperparameters: buildHyperparameters(hyper, fields) },
      });
      notify(t('workflows.created', { n: created.queue_position }), 'success');
      navigate(`/workflows/${created.workflow_id}`);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  const selected = (models.data?.models ?? []).find((/** @type {any} */ m) => m.model_id === model);
  const basic = fields.filter((f) => f.basic);
  const advanced = fields.filter((f) => !f.basic);
  /** @param {string} k @param {string} v */
  const setField = (k, v) => setHyper({ ...hyper, [k]: v });
  return html`
    <div class="page">
      <p class="crumbs"><a href="#/workflows">${t('nav.workflows')}</a> /</p>
      <h1>${t('workflows.new')}</h1>
      ${datasets.loading && !datasets.data ? html`<${Loading} />` : null}
      ${datasets.data && !ready.length ? html`<div class="alert">${t('workflows.no_ready_dataset')} <a href="#/datasets">${t('nav.datasets')}</a></div>` : null}
      <form class="card form" onSubmit=${submit} data-testid="workflow-form">
        <div class="form-grid">
          <${Field} label=${t('chat.dataset')} error=${errors.dataset_id}>
            <select value=${datasetId} required onChange=${(/** @type {any} */ e) => setDatasetId(e.currentTarget.value)} data-testid="workflow-dataset">
              ${ready.map((/** @type {any} */ d) => html`<option value=${d.dataset_id}>${d.name} (${d.format}, ${d.file_count})</option>`)}
            </select>
          <//>
          <${Field} label=${t('chat.model')} error=${errors.model} hint=${dataset ? t('workflows.models_for', { task: t(`task.${task}`) }) : undefined}>
            <select value=${model} required onChange=${(/** @type {any} */ e) => setModel(e.currentTarget.value)} data-testid="workflow-model">
              ${(models.data?.models ?? []).map((/** @type {any} */ m) => html`<option value=${m.model_id}>${m.name} · ${m.parameters}</option>`)}
            </select>
          <//>
          <${Field} label=${t('workflows.name')} error=${errors.name}>
            <input type="text" maxlength="200" value=${name} placeholder=${model ? `${model} · ${dataset?.name ?? ''}` : ''}
              onInput=${(/** @type {any} */ e) => setName(e.currentTarget.value)} data-testid="workflow-name" />
          <//>
          <${Field} label=${t('datasets.description')} error=${errors.description}>
            <input type="text" maxlength="2000" value=${description} onInput=${(/** @type {any} */ e) => setDescription(e.currentTarget.value)} data-testid="workflow-description" />
          <//>
        </div>
        ${selected ? html`<p class="muted small">${selected.description}</p>` : null}
        <h2>${t('workflows.hyperparameters')}</h2>
        <p class="muted small">${t('workflows.hyper_hint')}</p>
        <${HyperFields} fields=${basic} values=${hyper} errors=${errors} onChange=${setField} prefix="workflow" />
        <details class="advanced" open=${advanced.some((f) => errors[f.name])}>
          <summary>${t('workflows.advanced')}</summary>
          <${HyperFields} fields=${advanced} values=${hyper} errors=${errors} onChange=${setField} prefix="workflow" />
        </details>
        ${other.length ? html`<div class="alert alert-error" role="alert"><ul>${other.map(([k, v]) => html`<li><code>${k}</code>: ${v}</li>`)}</ul></div>` : null}
        <${ErrorBox} error=${Object.keys(errors).length ? null : error} testid="workflow-error" />
        <div class="actions">
          <button type="submit" class="button primary" disabled=${busy || !datasetId || !model} data-testid="workflow-submit">
            ${busy ? t('common.working') : t('workflows.start')}</button>
        </div>
      </form>
    </div>`;
}
