// @ts-check
/** Number, date and size formatting in the current language. */

import { getLang } from './i18n.js';

const locale = () => (getLang() === 'ko' ? 'ko-KR' : 'en-US');

/** @param {string | null | undefined} iso */
export function formatDate(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(locale(), { dateStyle: 'medium', timeStyle: 'short' });
}

/**
 * @param {number | null | undefined} n
 * @param {number} [digits]
 */
export function formatNumber(n, digits = 2) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  return n.toLocaleString(locale(), { maximumFractionDigits: digits });
}

/** @param {number | null | undefined} mb */
export function formatMb(mb) {
  if (mb === null || mb === undefined) return '—';
  return mb >= 1024 ? `${formatNumber(mb / 1024, 1)} GB` : `${formatNumber(mb, 1)} MB`;
}

/** @param {number} bytes */
export function formatBytes(bytes) {
  return formatMb(bytes / (1024 * 1024));
}

/**
 * Minutes as `1h 5m` / `5m` / `30s`.
 * @param {number | null | undefined} minutes
 */
export function formatMinutes(minutes) {
  if (minutes === null || minutes === undefined || !Number.isFinite(minutes)) return '—';
  if (minutes < 1) return `${Math.max(0, Math.round(minutes * 60))}s`;
  const h = Math.floor(minutes / 60);
  const m = Math.round(minutes % 60);
  return h ? `${h}h ${m}m` : `${m}m`;
}

/** @param {number | null | undefined} fraction 0–1 */
export function formatPercent(fraction) {
  if (fraction === null || fraction === undefined || !Number.isFinite(fraction)) return '—';
  return `${formatNumber(fraction * 100, 1)}%`;
}
