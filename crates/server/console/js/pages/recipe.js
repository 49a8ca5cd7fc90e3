// @ts-check
/** The training recipe's echo: each setting, its value and why. */

import { html } from '../ui.js';
import { t } from '../i18n.js';

/**
 * The training recipe's choices with their reasons.
 * @param {{recipe: any[]}} props
 */
export function RecipeList({ recipe }) {
  if (!Array.isArray(recipe) || !recipe.length) return null;
  return html`
    <details class="recipe" data-testid="recipe">
      <summary>${t('workflow.recipe', { n: recipe.length })}</summary>
      <table class="table compact">
        <thead><tr><th>${t('workflow.setting')}</th><th>${t('workflow.value')}</th><th>${t('workflow.reason')}</th></tr></thead>
        <tbody>
          ${recipe.map((c) => html`
            <tr>
              <td><code>${c.field}</code></td>
              <td><code>${JSON.stringify(c.value)}</code></td>
              <td>${c.source === 'user' ? html`<span class="badge">${t('workflow.set_by_you')}</span> ` : null}${c.reason}</td>
            </tr>`)}
        </tbody>
      </table>
    </details>`;
}
