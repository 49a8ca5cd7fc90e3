// @ts-check
/**
 * Live events of one workflow over `/api/v1/ws/workflows/{id}?token=…`, reconnecting with
 * exponential back-off.
 *
 * The server closes with 1000 once the workflow finished or was cancelled (no reconnect then)
 * and with 1008 when the token is bad or expired (the token is refreshed before reconnecting).
 */

/** Events after which the server closes the stream for good. */
export const FINAL_EVENTS = ['training_complete', 'training_error'];

/**
 * Delay before reconnect attempt `attempt` (0-based): `base · 2^attempt`, capped at `max`, with
 * up to ±`jitter` (fraction) of random spread so many tabs do not reconnect in step.
 * @param {number} attempt
 * @param {{base?: number, max?: number, jitter?: number, random?: () => number}} [opts]
 */
export function backoffDelay(attempt, opts = {}) {
  const base = opts.base ?? 1000;
  const max = opts.max ?? 30_000;
  const jitter = opts.jitter ?? 0.2;
  const random = opts.random ?? Math.random;
  const raw = Math.min(max, base * 2 ** Math.max(0, attempt));
  return Math.round(raw * (1 - jitter + 2 * jitter * random()));
}

/**
 * The socket URL for a workflow on the page's origin.
 * @param {{protocol: string, host: string}} location
 * @param {string} workflowId
 * @param {string} token
 */
export function workflowSocketUrl(location, workflowId, token) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/api/v1/ws/workflows/${encodeURIComponent(workflowId)}?token=${encodeURIComponent(token)}`;
}

/**
 * @typedef {{type: string, workflow_id: string, timestamp: string, data: any}} WorkflowEvent
 * @typedef {'connecting' | 'open' | 'waiting' | 'closed'} SocketState
 *
 * @typedef {object} SocketDeps
 * @property {(url: string) => WebSocket} [create]
 * @property {() => string | null} token current access token
 * @property {() => Promise<boolean>} refresh refresh the access token
 * @property {{protocol: string, host: string}} [location]
 * @property {(fn: () => void, ms: number) => any} [setTimer]
 * @property {(id: any) => void} [clearTimer]
 * @property {(attempt: number) => number} [delay]
 */

/**
 * Opens and keeps open the event stream of a workflow.
 * @param {string} workflowId
 * @param {{onEvent: (e: WorkflowEvent) => void, onState?: (s: SocketState, info?: {attempt: number, delayMs?: number}) => void, onEnd?: () => void}} handlers
 * @param {SocketDeps} deps
 * @returns {{close: () => void}}
 */
export function connectWorkflow(workflowId, handlers, deps) {
  const create = deps.create ?? ((url) => new WebSocket(url));
  const setTimer = deps.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
  const clearTimer = deps.clearTimer ?? ((id) => clearTimeout(id));
  const delay = deps.delay ?? ((a) => backoffDelay(a));
  const location = deps.location ?? globalThis.location;
  const onState = handlers.onState ?? (() => {});

  let attempt = 0;
  let stopped = false;
  let finished = false;
  /** @type {WebSocket | null} */
  let socket = null;
  /** @type {any} */
  let timer = null;

  function open() {
    if (stopped) return;
    const token = deps.token();
    if (!token) {
      retry(true);
      return;
    }
    onState('connecting', { attempt });
    const ws = create(workflowSocketUrl(location, workflowId, token));
    socket = ws;
    ws.onopen = () => {
      attempt = 0;
      onState('open', { attempt });
    };
    ws.onmessage = (msg) => {
      let event;
      try {
        event = JSON.parse(String(msg.data));
      } catch {
        return;
      }
      if (!event || typeof event.type !== 'string') return;
      if (FINAL_EVENTS.includes(event.type)) finished = true;
      handlers.onEvent(event);
    };
    ws.onclose = (e) => {
      socket = null;
      if (stopped) return;
      if (finished || e.code === 1000) {
        stopped = true;
        onState('closed', { attempt });
        handlers.onEnd?.();
        return;
      }
      retry(e.code === 1008);
    };
  }

  /** @param {boolean} needsToken */
  function retry(needsToken) {
    const ms = delay(attempt);
    onState('waiting', { attempt, delayMs: ms });
    attempt += 1;
    timer = setTimer(async () => {
      timer = null;
      if (needsToken) await deps.refresh();
      open();
    }, ms);
  }

  open();
  return {
    close() {
      stopped = true;
      if (timer !== null) clearTimer(timer);
      timer = null;
      if (socket) {
        socket.onclose = null;
        socket.close(1000);
        socket = null;
      }
    },
  };
}
