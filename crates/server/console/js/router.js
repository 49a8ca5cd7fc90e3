// @ts-check
/**
 * Hash routing (`#/datasets/ds_1?tab=items`), so the server serves one page at `/`.
 *
 * @typedef {{name: string, params: Record<string, string>, query: Record<string, string>}} Route
 */

/** Route patterns, most specific first; `:name` matches one path segment. */
export const ROUTES = [
  ['login', '/login'],
  ['chat', '/chat'],
  ['datasets', '/datasets'],
  ['dataset', '/datasets/:id'],
  ['workflows', '/workflows'],
  ['workflowNew', '/workflows/new'],
  ['workflow', '/workflows/:id'],
  ['models', '/models'],
  ['model', '/models/:id'],
  ['predict', '/predict'],
  ['segment', '/segment'],
  ['profile', '/profile'],
];

/** Where an empty hash leads. */
export const DEFAULT_ROUTE = '/chat';

/**
 * Parses a location hash.
 * @param {string} hash e.g. `#/workflows/wf_1?x=1`
 * @returns {Route}
 */
export function parseHash(hash) {
  const raw = hash.replace(/^#/, '') || DEFAULT_ROUTE;
  const [pathPart, queryPart = ''] = raw.split('?');
  const segments = pathPart.split('/').filter(Boolean);
  /** @type {Record<string, string>} */
  const query = {};
  for (const [k, v] of new URLSearchParams(queryPart)) query[k] = v;
  for (const [name, pattern] of ROUTES) {
    const parts = pattern.split('/').filter(Boolean);
    if (parts.length !== segments.length) continue;
    /** @type {Record<string, string>} */
    const params = {};
    const ok = parts.every((p, i) => {
      if (p.startsWith(':')) {
        params[p.slice(1)] = decodeURIComponent(segments[i]);
        return true;
      }
      return p === segments[i];
    });
    if (ok) return { name, params, query };
  }
  return { name: 'notFound', params: {}, query };
}

/**
 * The hash of a path with query parameters (empty values left out).
 * @param {string} path
 * @param {Record<string, string | number | null | undefined>} [query]
 */
export function href(path, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return `#${path}${s ? `?${s}` : ''}`;
}

/**
 * Navigates (adds a history entry).
 * @param {string} path
 * @param {Record<string, string | number | null | undefined>} [query]
 */
export function navigate(path, query) {
  globalThis.location.hash = href(path, query);
}

/**
 * Changes the query of the current route without a new history entry (filters, pages).
 * @param {string} path
 * @param {Record<string, string | number | null | undefined>} query
 */
export function replaceQuery(path, query) {
  const url = new URL(globalThis.location.href);
  url.hash = href(path, query);
  globalThis.history.replaceState(null, '', url);
  globalThis.dispatchEvent(new HashChangeEvent('hashchange'));
}
