import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createApi, ApiError, errorFromBody, errorMessage, fieldErrors, fieldKey, withQuery } from '../console/js/api.js';
import { createAuth, refreshDelay, REFRESH_KEY } from '../console/js/auth.js';

/** A JSON Response. */
const json = (status, body, headers = {}) =>
  new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

/** A fake fetch answering from a queue and recording calls. */
function fakeFetch(answers) {
  const calls = [];
  const fn = async (url, init = {}) => {
    calls.push({ url, init, body: init.body ? JSON.parse(init.body) : undefined, auth: init.headers?.Authorization });
    const next = answers.shift();
    if (!next) throw new Error(`unexpected call ${url}`);
    return typeof next === 'function' ? next(url, init) : next;
  };
  return { fn, calls };
}

const memoryStorage = () => {
  const m = new Map();
  return { getItem: (k) => m.get(k) ?? null, setItem: (k, v) => m.set(k, v), removeItem: (k) => m.delete(k), m };
};

const t = (key, params) => `[${key}${params ? JSON.stringify(params) : ''}]`;

test('the platform error envelope becomes a readable ApiError', () => {
  const err = errorFromBody(404, { error: { code: 'NOT_FOUND', message: 'Dataset ds_1 not found', details: {}, request_id: 'r1' } });
  assert.equal(err.code, 'NOT_FOUND');
  assert.equal(err.requestId, 'r1');
  assert.equal(errorMessage(err, t), 'Dataset ds_1 not found');
});

test('the segmentation envelope error is read too, 402 maps to the out-of-credits text', () => {
  const body = { success: false, data: null, error: { code: 'INSUFFICIENT_CREDITS', message: 'no credits' }, meta: { request_id: 'u', timestamp: 'x' } };
  const err = errorFromBody(402, body);
  assert.equal(err.code, 'INSUFFICIENT_CREDITS');
  assert.equal(err.requestId, 'u');
  assert.equal(errorMessage(err, t), '[errors.INSUFFICIENT_CREDITS]');
});

test('non-JSON failures still give a message, never raw JSON', () => {
  const err = errorFromBody(502, null, 'Bad Gateway');
  assert.equal(err.code, 'HTTP_502');
  assert.equal(errorMessage(err, t), 'Bad Gateway');
  assert.equal(errorMessage(new Error('boom'), t), 'boom');
});

test('validation errors are keyed by the field the form shows', () => {
  assert.equal(fieldKey('config.hyperparameters.epochs'), 'epochs');
  assert.equal(fieldKey('config.dataset_id'), 'dataset_id');
  assert.equal(fieldKey('images[3].image_url'), 'image_url');
  const err = new ApiError({
    status: 422, code: 'VALIDATION_ERROR', message: 'Request validation failed',
    details: { errors: [{ field: 'epochs', message: 'Must be between 1 and 1000', value: 5000 }, { field: 'config.dataset_id', message: 'not ready' }] },
  });
  assert.deepEqual(fieldErrors(err), { epochs: 'Must be between 1 and 1000', dataset_id: 'not ready' });
  assert.match(errorMessage(err, t), /epochs — Must be between 1 and 1000/);
  assert.deepEqual(fieldErrors(new Error('x')), {});
});

test('query strings skip empty values', () => {
  assert.equal(withQuery('/datasets/ds_1/items', { split: 'train', class: '', page: 2, limit: undefined }), '/datasets/ds_1/items?split=train&page=2');
  assert.equal(withQuery('/a', { class: 'a b&c' }), '/a?class=a%20b%26c');
});

test('success envelopes are unwrapped and the bearer token is sent', async () => {
  const { fn, calls } = fakeFetch([json(200, { success: true, data: { task_id: 't1', status: 'pending' }, error: null, meta: {} })]);
  const api = createApi({ fetch: fn, tokens: { accessToken: () => 'A1', refresh: async () => false }, lang: () => 'ko' });
  assert.deepEqual(await api.post('/segment', { image_url: 'u', text_prompt: 'cat' }), { task_id: 't1', status: 'pending' });
  assert.equal(calls[0].url, '/api/v1/segment');
  assert.equal(calls[0].auth, 'Bearer A1');
  assert.equal(calls[0].init.headers['Accept-Language'], 'ko');
});

test('401 TOKEN_EXPIRED refreshes once and retries once with the new token', async () => {
  const storage = memoryStorage();
  storage.setItem(REFRESH_KEY, 'R0');
  const { fn, calls } = fakeFetch([
    json(200, { access_token: 'A0', refresh_token: 'R1', token_type: 'bearer', expires_in: 3600 }), // restore
    json(401, { error: { code: 'TOKEN_EXPIRED', message: 'Access token has expired', details: {} } }),
    json(200, { access_token: 'A1', refresh_token: 'R2', token_type: 'bearer', expires_in: 3600 }),
    json(200, { datasets: [], total: 0, page: 1, limit: 20 }),
  ]);
  const timers = [];
  const auth = createAuth({ fetch: fn, storage, setTimer: (f, ms) => timers.push(ms), clearTimer: () => {} });
  const api = createApi({ fetch: fn, tokens: auth });
  assert.equal(await auth.refresh(), true);
  const res = await api.get('/datasets');
  assert.equal(res.total, 0);
  assert.deepEqual(calls.map((c) => c.url), ['/api/v1/auth/refresh', '/api/v1/datasets', '/api/v1/auth/refresh', '/api/v1/datasets']);
  assert.deepEqual(calls[2].body, { refresh_token: 'R1' });
  assert.equal(calls[1].auth, 'Bearer A0');
  assert.equal(calls[3].auth, 'Bearer A1');
  assert.equal(storage.getItem(REFRESH_KEY), 'R2');
  assert.equal(timers.at(-1), refreshDelay(3600));
});

test('the server\'s UNAUTHORIZED with expired_at is handled the same way', async () => {
  let refreshed = 0;
  const { fn, calls } = fakeFetch([
    json(401, { error: { code: 'UNAUTHORIZED', message: 'Access token has expired', details: { expired_at: '2026-01-01T00:00:00Z' } } }),
    json(200, { ok: true }),
  ]);
  let token = 'old';
  const api = createApi({ fetch: fn, tokens: { accessToken: () => token, refresh: async () => { refreshed++; token = 'new'; return true; } } });
  assert.deepEqual(await api.get('/user/profile'), { ok: true });
  assert.equal(refreshed, 1);
  assert.equal(calls[1].auth, 'Bearer new');
});

test('a second 401 after the refresh is not retried again', async () => {
  let refreshed = 0;
  const err401 = () => json(401, { error: { code: 'UNAUTHORIZED', message: 'Invalid token', details: {} } });
  const { fn, calls } = fakeFetch([err401(), err401()]);
  const api = createApi({ fetch: fn, tokens: { accessToken: () => 'x', refresh: async () => { refreshed++; return true; } } });
  await assert.rejects(api.get('/workflows'), (e) => e instanceof ApiError && e.status === 401);
  assert.equal(refreshed, 1);
  assert.equal(calls.length, 2);
});

test('a failed refresh signs out and reports an expired session', async () => {
  const storage = memoryStorage();
  storage.setItem(REFRESH_KEY, 'R0');
  const { fn } = fakeFetch([
    json(401, { error: { code: 'UNAUTHORIZED', message: 'expired', details: {} } }),
    json(401, { error: { code: 'UNAUTHORIZED', message: 'Refresh token has expired', details: {} } }),
  ]);
  const auth = createAuth({ fetch: fn, storage, setTimer: () => 0, clearTimer: () => {} });
  const api = createApi({ fetch: fn, tokens: auth });
  await assert.rejects(api.get('/workflows'), (e) => e.code === 'SESSION_EXPIRED');
  assert.equal(storage.getItem(REFRESH_KEY), null);
});

test('concurrent 401s share one refresh', async () => {
  const storage = memoryStorage();
  storage.setItem(REFRESH_KEY, 'R0');
  let refreshCalls = 0;
  const fn = async (url, init) => {
    if (url.endsWith('/auth/refresh')) {
      refreshCalls++;
      await new Promise((r) => setTimeout(r, 5));
      return json(200, { access_token: 'A1', refresh_token: 'R1', token_type: 'bearer', expires_in: 600 });
    }
    return init.headers.Authorization === 'Bearer A1' ? json(200, { ok: 1 }) : json(401, { error: { code: 'TOKEN_EXPIRED', message: 'x', details: {} } });
  };
  const auth = createAuth({ fetch: fn, storage, setTimer: () => 0, clearTimer: () => {} });
  const api = createApi({ fetch: fn, tokens: auth });
  const results = await Promise.all([api.get('/a'), api.get('/b'), api.get('/c')]);
  assert.deepEqual(results, [{ ok: 1 }, { ok: 1 }, { ok: 1 }]);
  assert.equal(refreshCalls, 1);
});

test('sign-in keeps the refresh token only in storage; sign-out revokes and clears', async () => {
  const storage = memoryStorage();
  const { fn, calls } = fakeFetch([
    json(200, { access_token: 'A', refresh_token: 'R', token_type: 'bearer', expires_in: 3600 }),
    json(204),
  ]);
  const events = [];
  const auth = createAuth({ fetch: fn, storage, setTimer: () => 1, clearTimer: () => {} });
  auth.subscribe((s) => events.push(s));
  await auth.signIn('a@b.c', 'password1');
  assert.equal(auth.accessToken(), 'A');
  assert.equal(storage.getItem(REFRESH_KEY), 'R');
  assert.ok(![...storage.m.values()].includes('A'), 'access token must not be stored');
  await auth.signOut();
  assert.equal(calls[1].url, '/api/v1/auth/revoke');
  assert.deepEqual(calls[1].body, { refresh_token: 'R' });
  assert.equal(calls[1].auth, 'Bearer A');
  assert.equal(auth.accessToken(), null);
  assert.equal(storage.getItem(REFRESH_KEY), null);
  assert.deepEqual(events, [true, false]);
});

test('the proactive refresh runs shortly before expiry', () => {
  assert.equal(refreshDelay(3600), 3_540_000);
  assert.equal(refreshDelay(100), 80_000);
  assert.equal(refreshDelay(0), 1000);
});

test('network failures become NETWORK_ERROR', async () => {
  const api = createApi({ fetch: async () => { throw new TypeError('Failed to fetch'); } });
  await assert.rejects(api.get('/models'), (e) => e.code === 'NETWORK_ERROR' && errorMessage(e, t) === '[errors.NETWORK_ERROR]');
});
