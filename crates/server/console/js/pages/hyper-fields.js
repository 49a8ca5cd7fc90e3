// @ts-check
/** The hyper-parameter inputs shared by the training form and the chat's configuration card. */

import { html } from '../ui.js';
import { t } from '../i18n.js';
import { Field } from '../components.js';

/**
 * @param {{fields: import('../hyper.js').HyperField[], values: Record<string, string>,
 *   onChange: (name: string, value: string) => void, errors: Record<string, string>,
 *   placeholders?: Record<string, string>, prefix: string}} props
 */
export function HyperFields({ fields, values, onChange, errors, placeholders, prefix }) {
  return html`
    <div class="form-grid">
      ${fields.map((f) => {
        const value = values[f.name] ?? '';
        const set = (/** @type {any} */ e) => onChange(f.name, e.currentTarget.value);
        const testid = `${prefix}-${f.name}`;
        let control;
        if (f.kind === 'select' || f.kind === 'bool') {
          const options = f.kind === 'bool' ? ['true', 'false'] : f.options ?? [];
          control = html`
            <select value=${value} onChange=${set} data-testid=${testid} name=${f.name}>
              <option value="">${t('hyper.auto')}</option>
              ${options.map((o) => html`<option value=${o}>${f.kind === 'bool' ? t(`common.${o}`) : o}</option>`)}
            </select>`;
        } else {
          control = html`
            <input type="number" inputmode="decimal" name=${f.name} min=${f.min} max=${f.max}
              step=${f.step ?? (f.kind === 'int' ? '1' : 'any')} value=${value}
              placeholder=${placeholders?.[f.name] ?? t('hyper.auto')} onInput=${set} data-testid=${testid} />`;
        }
        return html`<${Field} key=${f.name} label=${t(`hyper.${f.name}`)} error=${errors[f.name]}>${control}<//>`;
      })}
    </div>`;
}
