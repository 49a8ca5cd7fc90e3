import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, connectWorkflow, workflowSocketUrl } from '../console/js/ws.js';

test('back-off doubles from 1 s and is capped at 30 s', () => {
  const noJitter = { jitter: 0 };
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 10].map((a) => backoffDelay(a, noJitter)), [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
});

test('jitter stays within ±20 %', () => {
  assert.equal(backoffDelay(2, { random: () => 0 }), 3200);
  assert.equal(backoffDelay(2, { random: () => 1 }), 4800);
});

test('socket URLs follow the page scheme and carry the token', () => {
  assert.equal(workflowSocketUrl({ protocol: 'https:', host: 'vp.example' }, 'wf_1', 'a b'), 'wss://vp.example/api/v1/ws/workflows/wf_1?token=a%20b');
  assert.equal(workflowSocketUrl({ protocol: 'http:', host: 'localhost:8000' }, 'wf_1', 't'), 'ws://localhost:8000/api/v1/ws/workflows/wf_1?token=t');
});

/** A controllable fake WebSocket environment. */
function env() {
  const sockets = [];
  const timers = [];
  const deps = {
    create: (url) => {
      const s = { url, closed: false, close() { this.closed = true; } };
      sockets.push(s);
      return s;
    },
    token: () => 'tok',
    refreshed: 0,
    refresh: async () => { deps.refreshed++; return true; },
    location: { protocol: 'http:', host: 'h' },
    setTimer: (fn, ms) => { timers.push({ fn, ms }); return timers.length; },
    clearTimer: () => {},
    delay: (a) => backoffDelay(a, { jitter: 0 }),
  };
  return { sockets, timers, deps };
}

test('abnormal closes reconnect with growing delays; a successful open resets them', async () => {
  const { sockets, timers, deps } = env();
  const events = [];
  connectWorkflow('wf_1', { onEvent: (e) => events.push(e.type) }, deps);
  sockets[0].onclose({ code: 1006 });
  sockets.length === 1 && (await timers[0].fn());
  sockets[1].onclose({ code: 1006 });
  await timers[1].fn();
  assert.deepEqual(timers.map((x) => x.ms), [1000, 2000]);
  sockets[2].onopen();
  sockets[2].onmessage({ data: JSON.stringify({ type: 'training_progress', data: { step: 5 } }) });
  sockets[2].onclose({ code: 1006 });
  assert.equal(timers[2].ms, 1000);
  assert.deepEqual(events, ['training_progress']);
});

test('a policy close (expired token) refreshes before reconnecting', async () => {
  const { sockets, timers, deps } = env();
  connectWorkflow('wf_1', { onEvent: () => {} }, deps);
  sockets[0].onclose({ code: 1008 });
  await timers[0].fn();
  assert.equal(deps.refreshed, 1);
  assert.equal(sockets.length, 2);
});

test('no reconnect after the final event or a normal close', () => {
  const { sockets, timers, deps } = env();
  let ended = 0;
  connectWorkflow('wf_1', { onEvent: () => {}, onEnd: () => ended++ }, deps);
  sockets[0].onmessage({ data: JSON.stringify({ type: 'training_complete', data: {} }) });
  sockets[0].onclose({ code: 1006 });
  assert.equal(timers.length, 0);
  assert.equal(ended, 1);

  const b = env();
  connectWorkflow('wf_2', { onEvent: () => {} }, b.deps);
  b.sockets[0].onclose({ code: 1000, reason: 'cancelled' });
  assert.equal(b.timers.length, 0);
});

test('close() stops everything', () => {
  const { sockets, timers, deps } = env();
  const conn = connectWorkflow('wf_1', { onEvent: () => {} }, deps);
  conn.close();
  assert.ok(sockets[0].closed);
  assert.equal(timers.length, 0);
});
