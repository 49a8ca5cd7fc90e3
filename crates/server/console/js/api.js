// @ts-check
/**
 * The one API client of the console.
 *
 * Two error shapes reach it: the platform API's `{"error": {code, message, details, request_id}}`
 * and the segmentation API's envelope `{success: false, data: null, error: {code, message}, meta}`
 * (whose successes are `{success: true, data, …}` and are unwrapped here). Both become an
 * {@link ApiError}. A 401 on an authenticated call triggers one token refresh and one retry.
 */

/** Base path of the API. */
export const API_BASE = '/api/v1';

/** An error answer of the API (or a network failure, code `NETWORK_ERROR`). */
export class ApiError extends Error {
  /**
   * @param {{status: number, code: string, message: string, details?: any, requestId?: string | null}} e
   */
  constructor(e) {
    super(e.message);
    this.name = 'ApiError';
    this.status = e.status;
    this.code = e.code;
    this.details = e.details ?? {};
    this.requestId = e.requestId ?? null;
  }
}

/**
 * Builds the error of a failed response from its parsed body (either envelope, or anything else).
 * @param {number} status
 * @param {any} body parsed JSON, or null
 * @param {string} [statusText]
 * @param {string | null} [requestId] the `X-Request-Id` header
 */
export function errorFromBody(status, body, statusText = '', requestId = null) {
  const e = body && typeof body === 'object' ? body.error : null;
  if (e && typeof e === 'object' && typeof e.code === 'string') {
    return new ApiError({
      status,
      code: e.code,
      message: typeof e.message === 'string' && e.message ? e.message : e.code,
      details: e.details,
      requestId: e.request_id ?? body?.meta?.request_id ?? requestId,
    });
  }
  // Not an envelope (a proxy's error page, the backend's `{detail, code}` …).
  const detail = body && typeof body === 'object' && typeof body.detail === 'string' ? body.detail : '';
  return new ApiError({
    status,
    code: (body && typeof body.code === 'string' && body.code) || `HTTP_${status}`,
    message: detail || statusText || `Request failed (${status})`,
    requestId,
  });
}

/**
 * The key a validation error's `field` names, as the console's forms use it: the last segment
 * of a dotted path (`config.hyperparameters.epochs` → `epochs`, `config.dataset_id` →
 * `dataset_id`), without array indices.
 * @param {string} field
 */
export function fieldKey(field) {
  const parts = String(field).replace(/\[\d+\]/g, '').split('.').filter(Boolean);
  return parts.length ? parts[parts.length - 1] : '';
}

/**
 * The per-field messages of a 422 (`details.errors[{field, message}]`), keyed by
 * {@link fieldKey}; several messages for one field are joined.
 * @param {unknown} err
 * @returns {Record<string, string>}
 */
export function fieldErrors(err) {
  /** @type {Record<string, string>} */
  const out = {};
  if (!(err instanceof ApiError)) return out;
  const list = Array.isArray(err.details?.errors) ? err.details.errors : [];
  for (const item of list) {
    if (!item || typeof item.field !== 'string') continue;
    const key = fieldKey(item.field);
    const message = String(item.message ?? '');
    out[key] = out[key] ? `${out[key]}; ${message}` : message;
  }
  return out;
}

/** Codes whose translated text reads better than the server's message. */
export const FRIENDLY_CODES = [
  'NETWORK_ERROR', 'RATE_LIMIT_EXCEEDED', 'RATE_LIMITED', 'INSUFFICIENT_CREDITS', 'FORBIDDEN',
  'PAYLOAD_TOO_LARGE', 'FILE_TOO_LARGE', 'SERVICE_UNAVAILABLE', 'MODEL_NOT_LOADED',
  'INTERNAL_ERROR', 'INFERENCE_FAILED', 'REQUEST_TIMEOUT', 'AUTH_REQUIRED', 'SESSION_EXPIRED',
];

/**
 * A readable message for any error: a translation for the codes in {@link FRIENDLY_CODES},
 * else the server's message, with the fields of a validation error appended.
 * @param {unknown} err
 * @param {(key: string, params?: Record<string, string | number>) => string} t
 */
export function errorMessage(err, t) {
  if (!(err instanceof ApiError)) {
    return err instanceof Error && err.message ? err.message : t('errors.UNKNOWN');
  }
  let text = FRIENDLY_CODES.includes(err.code) ? t(`errors.${err.code}`) : err.message;
  if (err.code === 'RATE_LIMIT_EXCEEDED' && err.details?.reset_at) {
    text += ` (${t('errors.retry_at', { time: new Date(err.details.reset_at).toLocaleTimeString() })})`;
  }
  const list = Array.isArray(err.details?.errors) ? err.details.errors : [];
  if (list.length) {
    text += ': ' + list.map((/** @type {any} */ e) => `${e.field} — ${e.message}`).join('; ');
  }
  return text;
}

/**
 * A URL with query parameters; empty values are left out.
 * @param {string} path
 * @param {Record<string, unknown>} [query]
 */
export function withQuery(path, query) {
  const parts = [];
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v === undefined || v === null || v === '') continue;
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  }
  return parts.length ? `${path}${path.includes('?') ? '&' : '?'}${parts.join('&')}` : path;
}

/**
 * Unwraps the segmentation API's success envelope; other bodies are returned as they are.
 * @param {any} body
 */
export function unwrapEnvelope(body) {
  if (body && typeof body === 'object' && typeof body.success === 'boolean' && 'data' in body && 'meta' in body) {
    return body.data;
  }
  return body;
}

/**
 * Reads a response: parsed JSON (unwrapped) on success, an {@link ApiError} thrown otherwise.
 * @param {Response} res
 */
export async function readResponse(res) {
  if (res.status === 204) return null;
  const text = await res.text();
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (!res.ok) {
    throw errorFromBody(res.status, body, res.statusText, res.headers?.get?.('x-request-id') ?? null);
  }
  return unwrapEnvelope(body);
}

/**
 * @typedef {object} TokenSource
 * @property {() => string | null} accessToken the current access token
 * @property {() => Promise<boolean>} refresh gets a new access token; false when signed out
 *
 * @typedef {object} RequestOptions
 * @property {Record<string, unknown>} [query]
 * @property {unknown} [body] JSON body, or FormData
 * @property {boolean} [auth] send the bearer token (default true)
 * @property {boolean} [raw] return the Response (for downloads)
 * @property {AbortSignal} [signal]
 */

/**
 * Creates the client.
 * @param {{fetch?: typeof fetch, tokens?: TokenSource, lang?: () => string, base?: string, xhr?: () => XMLHttpRequest}} [deps]
 */
export function createApi(deps = {}) {
  const fetchImpl = deps.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const base = deps.base ?? API_BASE;
  const lang = deps.lang ?? (() => 'en');
  const tokens = deps.tokens;

  /** @param {boolean} auth */
  function headers(auth) {
    /** @type {Record<string, string>} */
    const h = { Accept: 'application/json', 'Accept-Language': lang() };
    const token = auth && tokens ? tokens.accessToken() : null;
    if (token) h.Authorization = `Bearer ${token}`;
    return h;
  }

  /**
   * Runs `attempt` and, after a 401 on an authenticated call, refreshes once and retries once.
   * @template T
   * @param {boolean} auth
   * @param {() => Promise<T>} attempt
   * @returns {Promise<T>}
   */
  async function withRefresh(auth, attempt) {
    try {
      return await attempt();
    } catch (err) {
      if (!(auth && tokens && err instanceof ApiError && err.status === 401)) throw err;
      if (!(await tokens.refresh())) {
        throw new ApiError({ status: 401, code: 'SESSION_EXPIRED', message: err.message, details: err.details });
      }
      return attempt();
    }
  }

  /**
   * @param {string} method
   * @param {string} path relative to the API base
   * @param {RequestOptions} [opts]
   * @returns {Promise<any>}
   */
  function request(method, path, opts = {}) {
    const auth = opts.auth ?? true;
    const url = withQuery(base + path, opts.query);
    const isForm = typeof FormData !== 'undefined' && opts.body instanceof FormData;
    return withRefresh(auth, async () => {
      const h = headers(auth);
      /** @type {RequestInit} */
      const init = { method, headers: h, signal: opts.signal, credentials: 'same-origin' };
      if (opts.body !== undefined) {
        if (isForm) {
          init.body = /** @type {FormData} */ (opts.body);
        } else {
          h['Content-Type'] = 'application/json';
          init.body = JSON.stringify(opts.body);
        }
      }
      let res;
      try {
        res = await fetchImpl(url, init);
      } catch (e) {
        if (e instanceof Error && e.name === 'AbortError') throw e;
        throw new ApiError({ status: 0, code: 'NETWORK_ERROR', message: String(e instanceof Error ? e.message : e) });
      }
      if (opts.raw) {
        if (!res.ok) await readResponse(res); // throws
        return res;
      }
      return readResponse(res);
    });
  }

  /**
   * Uploads a form with progress (XMLHttpRequest reports upload progress, fetch does not).
   * @param {string} path
   * @param {FormData} form
   * @param {(fraction: number) => void} [onProgress]
   * @returns {Promise<any>}
   */
  function upload(path, form, onProgress) {
    const makeXhr = deps.xhr ?? (() => new XMLHttpRequest());
    return withRefresh(true, () =>
      new Promise((resolve, reject) => {
        const xhr = makeXhr();
        xhr.open('POST', base + path);
        for (const [k, v] of Object.entries(headers(true))) xhr.setRequestHeader(k, v);
        xhr.upload.onprogress = (e) => {
          if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total);
        };
        xhr.onerror = () => reject(new ApiError({ status: 0, code: 'NETWORK_ERROR', message: 'network error' }));
        xhr.onload = () => {
          let body = null;
          try {
            body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
          } catch {
            body = null;
          }
          if (xhr.status >= 200 && xhr.status < 300) resolve(unwrapEnvelope(body));
          else reject(errorFromBody(xhr.status, body, xhr.statusText, xhr.getResponseHeader('x-request-id')));
        };
        xhr.send(form);
      }),
    );
  }

  /**
   * Downloads a protected file as a blob with its file name (from `Content-Disposition`).
   * @param {string} path
   * @param {Record<string, unknown>} [query]
   * @returns {Promise<{blob: Blob, filename: string | null}>}
   */
  async function blob(path, query) {
    const res = await request('GET', path, { query, raw: true });
    const disposition = res.headers.get('content-disposition') ?? '';
    const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
    return { blob: await res.blob(), filename: m ? decodeURIComponent(m[1]) : null };
  }

  return {
    request,
    upload,
    blob,
    /** @param {string} path @param {Record<string, unknown>} [query] */
    get: (path, query) => request('GET', path, { query }),
    /** @param {string} path @param {unknown} [body] */
    post: (path, body) => request('POST', path, { body: body ?? {} }),
    /** @param {string} path @param {unknown} [body] */
    patch: (path, body) => request('PATCH', path, { body }),
    /** @param {string} path */
    del: (path) => request('DELETE', path),
  };
}

/** @typedef {ReturnType<typeof createApi>} Api */
