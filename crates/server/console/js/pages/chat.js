// @ts-check
/**
 * Chat: describe a training job in words. The assistant asks for what is missing
 * (`clarification_needed`, questions with suggestion buttons) or returns the configuration
 * (`intent_complete`), shown as an editable card whose "start" creates the workflow.
 */

import { html, useEffect, useRef, useState } from '../ui.js';
import { t } from '../i18n.js';
import { api } from '../app.js';
import { fieldErrors } from '../api.js';
import { navigate } from '../router.js';
import { fieldsFor, buildHyperparameters, hyperToForm } from '../hyper.js';
import { ErrorBox, Field, Loading, notify, useAsync } from '../components.js';
import { HyperFields } from './hyper-fields.js';
import { RecipeList } from './recipe.js';

/** localStorage key of the conversation to continue. */
const SESSION_KEY = 'vp.chat.session';

/** @typedef {{role: string, content: string, reply?: any}} Message */

/**
 * What the assistant understood so far, as chips.
 * @param {{intent: any}} props
 */
function IntentSummary({ intent }) {
  if (!intent) return null;
  const items = [
    ['chat.task', intent.task_type],
    ['chat.model', intent.model_name ?? intent.model],
    ['chat.classes', intent.class_names?.join(', ') ?? intent.num_classes],
    ['chat.dataset', intent.dataset_id],
    ['hyper.epochs', intent.epochs],
    ['hyper.batch_size', intent.batch_size],
    ['hyper.learning_rate', intent.learning_rate],
  ].filter(([, v]) => v !== undefined && v !== null && v !== '');
  if (!items.length) return null;
  return html`
    <div class="chips" data-testid="chat-intent">
      ${items.map(([k, v]) => html`<span class="chip"><span class="muted">${t(String(k))}</span> ${String(v)}</span>`)}
      ${intent.model_supported === false ? html`<span class="chip chip-warn">${t('chat.model_unsupported')}</span>` : null}
    </div>`;
}

/**
 * The editable configuration of an `intent_complete` reply and its start button.
 * @param {{config: any, workflowId?: string | null}} props
 */
function ConfigCard({ config, workflowId }) {
  const task = config.task_type;
  const models = useAsync(() => api.get('/models', { task_type: task, limit: 100 }), [task]);
  const datasets = useAsync(() => api.get('/datasets', { limit: 100 }), []);
  const [model, setModel] = useState(config.model_name);
  const [datasetId, setDatasetId] = useState(config.dataset?.dataset_id ?? '');
  const [classes, setClasses] = useState((config.class_names ?? []).join(', '));
  const [hyper, setHyper] = useState(() => hyperToForm(config.hyperparameters));
  const [busy, setBusy] = useState(false);
  /** @type {[unknown, any]} */
  const [error, setError] = useState(null);
  const errors = fieldErrors(error);
  const fields = fieldsFor(task, true);

  const start = async () => {
    setBusy(true);
    setError(null);
    const classList = classes.split(',').map((c) => c.trim()).filter(Boolean);
    try {
      const created = await api.post('/workflows', {
        name: `${model} (${classList.join(', ')})`.slice(0, 200),
        description: t('chat.created_from_chat'),
        config: { task_type: task, model, dataset_id: datasetId, hyperparameters: buildHyperparameters(hyper, fields) },
      });
      notify(t('chat.started'), 'success');
      navigate(`/workflows/${created.workflow_id}`);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  const readyDatasets = (datasets.data?.datasets ?? []).filter((/** @type {any} */ d) => d.status === 'ready');
  return html`
    <div class="card config-card" data-testid="chat-config">
      <h3>${t('chat.config_title')}</h3>
      <div class="form-grid">
        <${Field} label=${t('chat.model')} error=${errors.model}>
          <select value=${model} onChange=${(/** @type {any} */ e) => setModel(e.currentTarget.value)} data-testid="chat-config-model">
            ${(models.data?.models ?? [{ model_id: model, name: model }]).map((/** @type {any} */ m) =>
              html`<option value=${m.model_id}>${m.name} (${m.model_id})</option>`)}
          </select>
        <//>
        <${Field} label=${t('chat.dataset')} error=${errors.dataset_id}>
          <select value=${datasetId} onChange=${(/** @type {any} */ e) => setDatasetId(e.currentTarget.value)} data-testid="chat-config-dataset">
            ${readyDatasets.some((/** @type {any} */ d) => d.dataset_id === datasetId) ? null : html`<option value=${datasetId}>${datasetId}</option>`}
            ${readyDatasets.map((/** @type {any} */ d) => html`<option value=${d.dataset_id}>${d.name}</option>`)}
          </select>
        <//>
        <${Field} label=${t('chat.classes')} hint=${t('chat.classes_hint')} wide>
          <input type="text" value=${classes} onInput=${(/** @type {any} */ e) => setClasses(e.currentTarget.value)} data-testid="chat-config-classes" />
        <//>
      </div>
      <${HyperFields} fields=${fields} values=${hyper} errors=${errors} prefix="chat-config"
        onChange=${(/** @type {string} */ k, /** @type {string} */ v) => setHyper({ ...hyper, [k]: v })} />
      ${config.recipe ? html`<${RecipeList} recipe=${config.recipe} />` : null}
      <${ErrorBox} error=${Object.keys(errors).length ? null : error} testid="chat-config-error" />
      <div class="actions">
        ${workflowId ? html`<a class="button" href=${`#/workflows/${workflowId}`} data-testid="chat-open-workflow">${t('chat.open_workflow')}</a>` : null}
        <button type="button" class="button primary" disabled=${busy || !datasetId} onClick=${start} data-testid="chat-start">
          ${busy ? t('common.working') : t('chat.start')}
        </button>
      </div>
    </div>`;
}

export function ChatPage() {
  const [sessionId, setSessionId] = useState(() => localStorage.getItem(SESSION_KEY));
  /** @type {[Message[], (m: Message[] | ((m: Message[]) => Message[])) => void]} */
  const [messages, setMessages] = useState(/** @type {Message[]} */ ([]));
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  const [loading, setLoading] = useState(Boolean(sessionId));
  /** @type {[unknown, any]} */
  const [error, setError] = useState(null);
  /** @type {{current: HTMLDivElement | null}} */
  const listRef = useRef(null);

  useEffect(() => {
    if (!sessionId) return;
    api.get(`/chat/sessions/${encodeURIComponent(sessionId)}`).then(
      (s) => {
        setMessages(s.messages.map((/** @type {any} */ m) => ({ role: m.role, content: m.content })));
        setLoading(false);
      },
      () => {
        localStorage.removeItem(SESSION_KEY);
        setSessionId(null);
        setLoading(false);
      },
    );
  }, []);

  useEffect(() => {
    const el = listRef.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [messages, busy]);

  /** @param {string} message */
  const send = async (message) => {
    const body = message.trim();
    if (!body || busy) return;
    setBusy(true);
    setError(null);
    setMessages((m) => [...m, { role: 'user', content: body }]);
    setText('');
    try {
      const reply = await api.post('/chat/message', { message: body, session_id: sessionId ?? undefined, context: {} });
      if (reply.session_id && reply.session_id !== sessionId) {
        localStorage.setItem(SESSION_KEY, reply.session_id);
        setSessionId(reply.session_id);
      }
      setMessages((m) => [...m, { role: 'assistant', content: reply.message, reply }]);
      if (reply.workflow_id) notify(t('chat.started'), 'success');
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const reset = async () => {
    if (sessionId) api.del(`/chat/sessions/${encodeURIComponent(sessionId)}`).catch(() => {});
    localStorage.removeItem(SESSION_KEY);
    setSessionId(null);
    setMessages([]);
    setError(null);
  };

  const lastIndex = messages.length - 1;
  return html`
    <div class="page chat-page">
      <div class="page-head">
        <h1>${t('chat.title')}</h1>
        <button type="button" class="button" onClick=${reset} data-testid="chat-new">${t('chat.new')}</button>
      </div>
      <div class="chat-log" ref=${listRef} aria-live="polite" data-testid="chat-messages">
        ${loading ? html`<${Loading} />` : null}
        ${!loading && !messages.length ? html`
          <div class="empty">
            <p class="empty-title">${t('chat.empty')}</p>
            <div class="chips">
              ${['chat.example1', 'chat.example2'].map((k) => html`
                <button type="button" class="chip chip-button" onClick=${() => send(t(k))} data-testid="chat-example">${t(k)}</button>`)}
            </div>
          </div>` : null}
        ${messages.map((m, i) => html`
          <div class=${`msg msg-${m.role}`} data-testid=${`chat-message-${m.role}`}>
            <div class="bubble">${m.content}</div>
            ${m.reply?.type === 'clarification_needed' ? html`
              <${IntentSummary} intent=${m.reply.parsed_intent} />
              ${m.reply.questions.map((/** @type {any} */ q) => html`
                <div class="question" data-testid="chat-question">
                  <p>${q.question}${q.required ? html` <span class="muted small">${t('chat.required')}</span>` : null}</p>
                  <div class="chips">
                    ${q.suggestions.map((/** @type {string} */ s) => html`
                      <button type="button" class="chip chip-button" disabled=${busy || i !== lastIndex}
                        onClick=${() => send(s)} data-testid="chat-suggestion">${s}</button>`)}
                  </div>
                </div>`)}` : null}
            ${m.reply?.type === 'intent_complete' && i === lastIndex ? html`
              <${ConfigCard} config=${m.reply.training_config} workflowId=${m.reply.workflow_id} />` : null}
          </div>`)}
        ${busy ? html`<div class="msg msg-assistant"><div class="bubble typing">${t('chat.thinking')}</div></div>` : null}
      </div>
      <${ErrorBox} error=${error} testid="chat-error" />
      <form class="chat-input" onSubmit=${(/** @type {Event} */ e) => { e.preventDefault(); send(text); }}>
        <label class="visually-hidden" for="chat-text">${t('chat.input_label')}</label>
        <textarea id="chat-text" rows="2" maxlength="4000" value=${text} placeholder=${t('chat.placeholder')}
          onInput=${(/** @type {any} */ e) => setText(e.currentTarget.value)}
          onKeyDown=${(/** @type {KeyboardEvent} */ e) => {
            if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
              e.preventDefault();
              send(text);
            }
          }} data-testid="chat-input"></textarea>
        <button type="submit" class="button primary" disabled=${busy || !text.trim()} data-testid="chat-send">${t('chat.send')}</button>
      </form>
    </div>`;
}
