// @ts-check
/** Training workflows: filtered, paged list, refreshed while any is running. */

import { html } from '../ui.js';
import { t } from '../i18n.js';
import { api } from '../app.js';
import { replaceQuery } from '../router.js';
import { formatDate } from '../format.js';
import { Empty, ErrorBox, Field, Loading, Pager, ProgressBar, StatusBadge, useAsync, useInterval } from '../components.js';

export const WORKFLOW_STATUSES = ['pending', 'training', 'completed', 'failed', 'cancelled'];
const LIMIT = 20;

/** @param {{route: import('../router.js').Route}} props */
export function WorkflowsPage({ route }) {
  const status = route.query.status ?? '';
  const page = Number(route.query.page ?? 1) || 1;
  const list = useAsync(() => api.get('/workflows', { status, page, limit: LIMIT }), [status, page]);
  const workflows = list.data?.workflows ?? [];
  useInterval(list.reload, 5000, workflows.some((/** @type {any} */ w) => w.status === 'training' || w.status === 'pending'));

  return html`
    <div class="page">
      <div class="page-head">
        <h1>${t('workflows.title')}</h1>
        <a class="button primary" href="#/workflows/new" data-testid="workflow-new">${t('workflows.new')}</a>
      </div>
      <section class="card">
        <div class="filters">
          <${Field} label=${t('common.status')}>
            <select value=${status} data-testid="workflow-status-filter"
              onChange=${(/** @type {any} */ e) => replaceQuery('/workflows', { status: e.currentTarget.value, page: 1 })}>
              <option value="">${t('common.all')}</option>
              ${WORKFLOW_STATUSES.map((s) => html`<option value=${s}>${t(`status.${s}`)}</option>`)}
            </select>
          <//>
        </div>
        <${ErrorBox} error=${list.error} />
        ${list.loading && !list.data ? html`<${Loading} />` : null}
        ${list.data && !workflows.length ? html`
          <${Empty} title=${t('workflows.empty')}><p><a href="#/chat">${t('workflows.empty_hint')}</a></p><//>` : null}
        ${workflows.length ? html`
          <div class="table-wrap">
            <table class="table" data-testid="workflow-table">
              <thead><tr><th>${t('workflows.name')}</th><th>${t('common.status')}</th><th>${t('workflows.progress')}</th>
                <th>${t('common.created')}</th><th>${t('workflows.started')}</th></tr></thead>
              <tbody>
                ${workflows.map((/** @type {any} */ w) => html`
                  <tr key=${w.workflow_id} data-testid="workflow-row" data-workflow-id=${w.workflow_id}>
                    <td><a href=${`#/workflows/${w.workflow_id}`}>${w.name}</a></td>
                    <td><${StatusBadge} status=${w.status} testid="workflow-status" /></td>
                    <td class="progress-cell"><${ProgressBar} value=${w.progress} label=${t('workflows.progress')} /><span class="small">${w.progress}%</span></td>
                    <td>${formatDate(w.created_at)}</td>
                    <td>${formatDate(w.started_at)}</td>
                  </tr>`)}
              </tbody>
            </table>
          </div>
          <${Pager} page=${page} limit=${LIMIT} total=${list.data.total}
            onPage=${(/** @type {number} */ p) => replaceQuery('/workflows', { status, page: p })} />` : null}
      </section>
    </div>`;
}
