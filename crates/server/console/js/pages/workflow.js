// @ts-check
/**
 * One workflow: live progress and charts (seeded from the metrics history, fed by the
 * WebSocket), the log tail, the effective configuration with the recipe's reasons, cancel.
 */

import { html, useEffect, useMemo, useRef, useState } from '../ui.js';
import { t } from '../i18n.js';
import { api, auth } from '../app.js';
import { CHART_GROUPS, applyEvent, chartData, progressOf, seriesFromHistory, emptySeries } from '../charts.js';
import { connectWorkflow } from '../ws.js';
import { formatDate, formatMinutes, formatNumber } from '../format.js';
import { ErrorBox, Loading, ProgressBar, StatusBadge, notify, useAsync, useInterval } from '../components.js';
import { useConfirm } from '../dialog.js';
import { LineChart } from '../chart-view.js';
import { RecipeList } from './recipe.js';

const ACTIVE = ['pending', 'training'];

/** @param {{config: any}} props */
function ConfigView({ config }) {
  if (!config || typeof config !== 'object') return null;
  const { recipe, ...rest } = config;
  const scalars = Object.entries(rest).filter(([, v]) => v === null || typeof v !== 'object');
  const nested = Object.entries(rest).filter(([, v]) => v !== null && typeof v === 'object');
  return html`
    <section class="card" data-testid="workflow-config">
      <h2>${t('workflow.config')}</h2>
      <dl class="kv kv-grid">
        ${scalars.map(([k, v]) => html`<dt>${k}</dt><dd><code>${v === null ? '—' : String(v)}</code></dd>`)}
      </dl>
      ${nested.map(([k, v]) => html`
        <details><summary>${k}</summary><pre>${JSON.stringify(v, null, 2)}</pre></details>`)}
      <${RecipeList} recipe=${recipe} />
    </section>`;
}

/** @param {{workflowId: string, active: boolean}} props */
function LogTail({ workflowId, active }) {
  const logs = useAsync(() => api.get(`/workflows/${encodeURIComponent(workflowId)}/logs`, { tail: 200 }), [workflowId]);
  useInterval(logs.reload, 4000, active);
  /** @type {{current: HTMLPreElement | null}} */
  const ref = useRef(null);
  useEffect(() => {
    if (ref.current) ref.current.scrollTop = ref.current.scrollHeight;
  }, [logs.data]);
  const lines = logs.data?.logs ?? [];
  return html`
    <section class="card">
      <h2>${t('workflow.logs')} ${logs.data ? html`<span class="muted small">${t('workflow.log_lines', { n: logs.data.total_lines })}</span>` : null}</h2>
      <${ErrorBox} error=${logs.error} />
      <pre class="log" ref=${ref} tabindex="0" data-testid="workflow-logs">${lines.map((/** @type {any} */ l) =>
        html`<span class=${`log-${String(l.level).toLowerCase()}`}>${new Date(l.timestamp).toLocaleTimeString()} ${l.level.padEnd(5)} ${l.message}\n</span>`)}${!lines.length && logs.data ? t('workflow.no_logs') : ''}</pre>
    </section>`;
}

/** @param {{route: import('../router.js').Route}} props */
export function WorkflowPage({ route }) {
  const id = route.params.id;
  const detail = useAsync(() => api.get(`/workflows/${encodeURIComponent(id)}`), [id]);
  const w = detail.data;
  const series = useRef(emptySeries());
  const [version, setVersion] = useState(0);
  /** @type {[ReturnType<typeof progressOf> | null, any]} */
  const [live, setLive] = useState(null);
  const [socketState, setSocketState] = useState(/** @type {{state: string, delayMs?: number}} */ ({ state: 'idle' }));
  /** @type {[unknown, any]} */
  const [error, setError] = useState(null);
  const [confirmElement, confirm] = useConfirm();
  const active = w ? ACTIVE.includes(w.status) : false;

  // Charts: history first, then live events (a reload rebuilds from the history).
  useEffect(() => {
    api.get(`/workflows/${encodeURIComponent(id)}/metrics`).then(
      (m) => {
        const seeded = seriesFromHistory(m.metrics);
        // Keep live points that arrived while the history was loading.
        for (const [step, values] of series.current.points) {
          if (!seeded.points.has(step)) seeded.points.set(step, values);
        }
        series.current = seeded;
        setVersion((v) => v + 1);
      },
      (err) => setError(err),
    );
  }, [id]);

  // Live events while the workflow can still change.
  useEffect(() => {
    if (!active) return undefined;
    const conn = connectWorkflow(
      id,
      {
        onEvent: (e) => {
          if (applyEvent(series.current, e)) setVersion((v) => v + 1);
          if (e.type === 'training_progress') setLive(progressOf(e.data));
          if (e.type === 'training_complete' || e.type === 'training_error') detail.reload();
        },
        onState: (state, info) => setSocketState({ state, delayMs: info?.delayMs }),
        onEnd: () => detail.reload(),
      },
      { token: auth.accessToken, refresh: auth.refresh },
    );
    return () => conn.close();
  }, [id, active]);

  // A pending workflow says nothing on the socket until it starts: poll its status meanwhile.
  useInterval(detail.reload, 5000, w?.status === 'pending');

  const charts = useMemo(
    () => CHART_GROUPS.map((g) => ({ group: g, chart: chartData(series.current, g) })).filter((c) => c.chart.series.length),
    [version],
  );

  const cancel = async () => {
    const ok = await confirm({ title: t('workflow.cancel'), message: t('workflow.cancel_confirm', { name: w.name }), confirm: t('workflow.cancel'), danger: true });
    if (!ok) return;
    try {
      await api.del(`/workflows/${encodeURIComponent(id)}`);
      notify(t('workflow.cancelled'), 'success');
      detail.reload();
    } catch (err) {
      setError(err);
    }
  };

  if (!w) return html`<div class="page">${detail.loading ? html`<${Loading} />` : html`<${ErrorBox} error=${detail.error} />`}</div>`;

  const percent = active && live?.percent != null ? live.percent : w.progress.percentage;
  const epoch = active && live?.epoch != null ? live.epoch : w.progress.current_epoch;
  return html`
    <div class="page">
      <p class="crumbs"><a href="#/workflows">${t('nav.workflows')}</a> /</p>
      <div class="page-head">
        <h1>${w.name} <${StatusBadge} status=${w.status} testid="workflow-detail-status" /></h1>
        <div class="actions">
          ${w.status === 'completed' ? html`<a class="button primary" href=${`#/predict?workflow=${encodeURIComponent(id)}`} data-testid="workflow-predict">${t('workflow.try')}</a>` : null}
          ${active ? html`<button type="button" class="button danger" onClick=${cancel} data-testid="workflow-cancel">${t('workflow.cancel')}</button>` : null}
        </div>
      </div>
      <${ErrorBox} error=${error} />
      <section class="card" data-testid="workflow-progress">
        <div class="progress-head">
          <span>${t('workflow.epoch', { epoch, total: w.progress.total_epochs })}</span>
          ${active && live?.step != null ? html`<span>${t('workflow.step', { step: live.step, total: live.totalSteps ?? '?' })}</span>` : null}
          ${active && live?.etaMinutes != null ? html`<span>${t('workflow.eta', { eta: formatMinutes(live.etaMinutes) })}</span>`
            : w.estimated_completion_at && active ? html`<span>${t('workflow.eta', { eta: formatDate(w.estimated_completion_at) })}</span>` : null}
          <strong data-testid="workflow-percent">${percent}%</strong>
        </div>
        <${ProgressBar} value=${percent} label=${t('workflows.progress')} testid="workflow-progress-bar" />
        <p class="muted small">
          ${w.status === 'pending' && w.queue_position ? t('workflow.queue', { n: w.queue_position }) + ' · ' : ''}
          ${active ? html`<span data-testid="socket-state" data-state=${socketState.state}>${socketState.state === 'waiting'
            ? t('workflow.reconnecting', { s: Math.round((socketState.delayMs ?? 0) / 1000) })
            : t(`socket.${socketState.state}`)}</span>` : null}
        </p>
        ${w.error ? html`<div class="alert alert-error" role="alert">${w.error}</div>` : null}
        <dl class="kv kv-inline">
          <dt>${t('chat.model')}</dt><dd><a href=${`#/models/${w.model}`}>${w.model}</a></dd>
          <dt>${t('chat.dataset')}</dt><dd><a href=${`#/datasets/${w.dataset_id}`}>${w.dataset_id}</a></dd>
          <dt>${t('dataset.task')}</dt><dd>${t(`task.${w.task_type}`)}</dd>
          <dt>${t('common.created')}</dt><dd>${formatDate(w.created_at)}</dd>
          <dt>${t('workflows.started')}</dt><dd>${formatDate(w.started_at)}</dd>
          <dt>${t('workflow.finished')}</dt><dd>${formatDate(w.completed_at ?? w.cancelled_at)}</dd>
        </dl>
        ${Object.keys(w.metrics ?? {}).length ? html`
          <div class="stat-row" data-testid="workflow-metrics">
            ${Object.entries(w.metrics).map(([k, v]) => html`
              <div class="stat"><span class="stat-value">${typeof v === 'number' ? formatNumber(v, 4) : String(v)}</span><span class="stat-label">${k}</span></div>`)}
          </div>` : null}
        ${w.resources ? html`<details><summary>${t('workflow.resources')}</summary><pre>${JSON.stringify(w.resources, null, 2)}</pre></details>` : null}
      </section>
      <section class="card">
        <h2>${t('workflow.charts')}</h2>
        ${charts.length ? html`
          <div class="charts">
            ${charts.map(({ group, chart }) => html`<${LineChart} key=${group.id} id=${group.id} title=${t(group.title)} chart=${chart} />`)}
          </div>` : html`<p class="muted">${active ? t('workflow.waiting_metrics') : t('workflow.no_metrics')}</p>`}
      </section>
      <${LogTail} workflowId=${id} active=${active} />
      <${ConfigView} config=${w.config} />
      ${confirmElement}
    </div>`;
}
