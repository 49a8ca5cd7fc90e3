// @ts-check
/**
 * Sign-in state: the access token lives in memory only, the (single-use) refresh token in
 * localStorage so a reload can sign back in. The access token is refreshed shortly before it
 * expires and, through the API client, whenever a call answers 401.
 */

import { API_BASE, ApiError, readResponse } from './api.js';

/** localStorage key of the refresh token. */
export const REFRESH_KEY = 'vp.refresh_token';

/**
 * When to refresh proactively: a minute before expiry, or at 80 % of short lifetimes.
 * @param {number} expiresInSecs
 * @returns {number} milliseconds from now
 */
export function refreshDelay(expiresInSecs) {
  const ms = Math.max(0, expiresInSecs) * 1000;
  return Math.max(1000, ms - 60_000, ms * 0.8);
}

/**
 * @typedef {{getItem(k: string): string | null, setItem(k: string, v: string): void, removeItem(k: string): void}} KeyValueStore
 * @typedef {{access_token: string, refresh_token: string, expires_in: number}} TokenPair
 */

/**
 * @param {{fetch?: typeof fetch, storage?: KeyValueStore | null, setTimer?: (fn: () => void, ms: number) => any, clearTimer?: (id: any) => void, base?: string}} [deps]
 */
export function createAuth(deps = {}) {
  const fetchImpl = deps.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const storage = deps.storage === undefined ? safeLocalStorage() : deps.storage;
  const setTimer = deps.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
  const clearTimer = deps.clearTimer ?? ((id) => clearTimeout(id));
  const base = deps.base ?? API_BASE;

  /** @type {string | null} */
  let access = null;
  /** @type {any} */
  let timer = null;
  /** @type {Promise<boolean> | null} */
  let refreshing = null;
  /** @type {Set<(signedIn: boolean) => void>} */
  const listeners = new Set();

  const storedRefresh = () => storage?.getItem(REFRESH_KEY) ?? null;

  /**
   * @param {string} path
   * @param {unknown} body
   * @param {string | null} [bearer]
   */
  async function post(path, body, bearer = null) {
    /** @type {Record<string, string>} */
    const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    let res;
    try {
      res = await fetchImpl(base + path, { method: 'POST', headers, body: JSON.stringify(body) });
    } catch (e) {
      throw new ApiError({ status: 0, code: 'NETWORK_ERROR', message: String(e) });
    }
    return readResponse(res);
  }

  /** @param {boolean} signedIn */
  function emit(signedIn) {
    for (const fn of listeners) fn(signedIn);
  }

  /** @param {TokenPair} pair */
  function accept(pair) {
    const wasSignedIn = access !== null;
    access = pair.access_token;
    storage?.setItem(REFRESH_KEY, pair.refresh_token);
    if (timer !== null) clearTimer(timer);
    timer = setTimer(() => {
      timer = null;
      refresh();
    }, refreshDelay(pair.expires_in));
    if (!wasSignedIn) emit(true);
  }

  function clear() {
    const wasSignedIn = access !== null;
    access = null;
    storage?.removeItem(REFRESH_KEY);
    if (timer !== null) clearTimer(timer);
    timer = null;
    if (wasSignedIn) emit(false);
  }

  /**
   * Exchanges the refresh token; concurrent callers share one exchange.
   * @returns {Promise<boolean>} whether a new access token was obtained
   */
  function refresh() {
    if (refreshing) return refreshing;
    refreshing = (async () => {
      const token = storedRefresh();
      if (!token) {
        clear();
        return false;
      }
      try {
        accept(await post('/auth/refresh', { refresh_token: token }));
        return true;
      } catch (err) {
        // Another tab may have rotated the single-use token meanwhile: use its replacement.
        const now = storedRefresh();
        if (err instanceof ApiError && err.status === 401 && now && now !== token) {
          try {
            accept(await post('/auth/refresh', { refresh_token: now }));
            return true;
          } catch {
            /* fall through */
          }
        }
        if (err instanceof ApiError && err.status === 0) return false; // offline: keep the token
        clear();
        return false;
      }
    })().finally(() => {
      refreshing = null;
    });
    return refreshing;
  }

  return {
    /** The in-memory access token. */
    accessToken: () => access,
    isSignedIn: () => access !== null,
    hasStoredSession: () => storedRefresh() !== null,
    refresh,
    /**
     * @param {string} email
     * @param {string} password
     */
    async signIn(email, password) {
      accept(await post('/auth/token', { email, password }));
    },
    /**
     * Creates the account, then signs in with it.
     * @param {string} email
     * @param {string} password
     * @param {string} name
     */
    async register(email, password, name) {
      await post('/auth/register', { email, password, name });
      accept(await post('/auth/token', { email, password }));
    },
    /** Revokes the refresh token (best effort) and forgets both tokens. */
    async signOut() {
      const token = storedRefresh();
      const bearer = access;
      clear();
      if (token) {
        try {
          await post('/auth/revoke', { refresh_token: token }, bearer);
        } catch {
          /* the tokens are gone locally either way */
        }
      }
    },
    /** @param {(signedIn: boolean) => void} fn */
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
}

/** localStorage when the browser allows it. */
function safeLocalStorage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null;
  }
}

/** @typedef {ReturnType<typeof createAuth>} Auth */
