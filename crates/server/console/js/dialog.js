// @ts-check
/**
 * The console's one dialog: a native modal `<dialog>` (focus trap, Esc closes) and a
 * confirmation built on it.
 */

import { html, useEffect, useRef, useState } from './ui.js';
import { t } from './i18n.js';

/**
 * @param {{open: boolean, title: string, onClose: () => void, wide?: boolean, testid?: string, children?: any}} props
 */
export function Dialog({ open, title, onClose, wide, testid, children }) {
  /** @type {{current: HTMLDialogElement | null}} */
  const ref = useRef(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    if (open && !el.open) el.showModal();
    if (!open && el.open) el.close();
  }, [open]);
  // Esc fires `cancel` then `close`; both end in onClose.
  const onNativeClose = () => {
    if (open) onClose();
  };
  const onBackdrop = (/** @type {MouseEvent} */ e) => {
    if (e.target === ref.current) onClose();
  };
  return html`
    <dialog ref=${ref} class=${wide ? 'dialog dialog-wide' : 'dialog'} onClose=${onNativeClose}
      onClick=${onBackdrop} aria-label=${title} data-testid=${testid}>
      <div class="dialog-head">
        <h2>${title}</h2>
        <button type="button" class="icon-button" onClick=${onClose} aria-label=${t('common.close')}
          data-testid="dialog-close">×</button>
      </div>
      <div class="dialog-body">${open ? children : null}</div>
    </dialog>`;
}

/**
 * A confirmation dialog: `ask({...})` resolves to whether the user confirmed.
 * @returns {[any, (o: {title: string, message: string, confirm: string, danger?: boolean}) => Promise<boolean>]}
 */
export function useConfirm() {
  /** @type {[null | {title: string, message: string, confirm: string, danger?: boolean, resolve: (v: boolean) => void}, any]} */
  const [state, setState] = useState(null);
  const ask = (/** @type {{title: string, message: string, confirm: string, danger?: boolean}} */ o) =>
    new Promise((resolve) => setState({ ...o, resolve }));
  /** @param {boolean} v */
  const finish = (v) => {
    state?.resolve(v);
    setState(null);
  };
  const element = html`
    <${Dialog} open=${state !== null} title=${state?.title ?? ''} onClose=${() => finish(false)} testid="confirm-dialog">
      <p>${state?.message}</p>
      <div class="actions">
        <button type="button" class="button" onClick=${() => finish(false)} data-testid="confirm-cancel">${t('common.cancel')}</button>
        <button type="button" class=${state?.danger ? 'button danger' : 'button primary'} onClick=${() => finish(true)}
          data-testid="confirm-ok">${state?.confirm}</button>
      </div>
    <//>`;
  return [element, ask];
}
