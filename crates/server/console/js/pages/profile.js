// @ts-check
/** The caller's profile: plan, usage against its limits, segmentation credits. */

import { html } from '../ui.js';
import { t } from '../i18n.js';
import { api } from '../app.js';
import { formatDate, formatNumber } from '../format.js';
import { ErrorBox, Loading, ProgressBar, useAsync } from '../components.js';

/**
 * Workflows a plan may train at once. `GET /user/profile` does not return it; these are the
 * server's plan limits (domain `Plan::limits`).
 */
export const CONCURRENT_WORKFLOWS = /** @type {Record<string, number>} */ ({ free: 1, pro: 5, enterprise: 20 });

/**
 * @param {{label: string, used: number, limit: number | null, unit: string, testid: string}} props
 */
function Meter({ label, used, limit, unit, testid }) {
  const pct = limit ? (used / limit) * 100 : null;
  return html`
    <div class="meter" data-testid=${testid}>
      <div class="meter-head"><span>${label}</span>
        <strong>${formatNumber(used)}${limit !== null ? ` / ${formatNumber(limit)}` : ''} ${unit}</strong></div>
      ${limit !== null ? html`<${ProgressBar} value=${pct} label=${label} />` : null}
    </div>`;
}

export function ProfilePage() {
  const profile = useAsync(() => api.get('/user/profile'), []);
  const training = useAsync(() => api.get('/workflows', { status: 'training', limit: 1 }), []);
  const p = profile.data;
  return html`
    <div class="page">
      <h1>${t('profile.title')}</h1>
      <${ErrorBox} error=${profile.error} />
      ${!p ? (profile.loading ? html`<${Loading} />` : null) : html`
        <div class="grid-2">
          <section class="card">
            <h2>${p.name}</h2>
            <dl class="kv">
              <dt>${t('profile.email')}</dt><dd data-testid="profile-email">${p.email}</dd>
              <dt>${t('profile.plan')}</dt><dd><span class="badge badge-plan" data-testid="profile-plan">${p.plan}</span></dd>
              <dt>${t('profile.member_since')}</dt><dd>${formatDate(p.created_at)}</dd>
              <dt>${t('profile.user_id')}</dt><dd><code>${p.user_id}</code></dd>
            </dl>
          </section>
          <section class="card">
            <h2>${t('profile.usage')}</h2>
            <${Meter} label=${t('profile.compute_hours')} used=${p.usage.gpu_hours_used} limit=${p.usage.gpu_hours_limit}
              unit=${t('profile.hours')} testid="usage-compute" />
            <${Meter} label=${t('profile.storage')} used=${p.usage.storage_gb_used} limit=${p.usage.storage_gb_limit}
              unit="GB" testid="usage-storage" />
            <${Meter} label=${t('profile.concurrent')} used=${training.data?.total ?? 0}
              limit=${CONCURRENT_WORKFLOWS[p.plan] ?? null} unit="" testid="usage-concurrent" />
            <div class="meter" data-testid="usage-credits">
              <div class="meter-head"><span>${t('profile.credits')}</span><strong data-testid="profile-credits">${formatNumber(p.credits, 0)}</strong></div>
              <p class="muted small">${t('profile.credits_hint')}</p>
            </div>
          </section>
        </div>`}
    </div>`;
}
