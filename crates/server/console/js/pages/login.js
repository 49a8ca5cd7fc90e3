// @ts-check
/** Sign in and register. */

import { html, useState } from '../ui.js';
import { t } from '../i18n.js';
import { auth } from '../app.js';
import { fieldErrors } from '../api.js';
import { ErrorBox, Field } from '../components.js';

/** @param {{lang: string, children?: any}} props the children are the language switch */
export function LoginPage({ children }) {
  const [mode, setMode] = useState(/** @type {'signin' | 'register'} */ ('signin'));
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  /** @type {[unknown, any]} */
  const [error, setError] = useState(null);
  const fields = fieldErrors(error);

  const submit = async (/** @type {Event} */ e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (mode === 'signin') await auth.signIn(email.trim(), password);
      else await auth.register(email.trim(), password, name.trim());
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  const isRegister = mode === 'register';
  return html`
    <div class="center-page">
      <div class="card login-card">
        <div class="login-head">
          <h1>${t('app.name')}</h1>
          ${children}
        </div>
        <div class="tabs" role="tablist">
          <button type="button" role="tab" aria-selected=${!isRegister} class=${!isRegister ? 'tab active' : 'tab'}
            onClick=${() => { setMode('signin'); setError(null); }} data-testid="login-tab-signin">${t('login.sign_in')}</button>
          <button type="button" role="tab" aria-selected=${isRegister} class=${isRegister ? 'tab active' : 'tab'}
            onClick=${() => { setMode('register'); setError(null); }} data-testid="login-tab-register">${t('login.register')}</button>
        </div>
        <form onSubmit=${submit} class="form" data-testid="login-form">
          ${isRegister ? html`
            <${Field} label=${t('login.name')} error=${fields.name}>
              <input type="text" required maxlength="100" autocomplete="name" value=${name}
                onInput=${(/** @type {any} */ e) => setName(e.currentTarget.value)} data-testid="login-name" />
            <//>` : null}
          <${Field} label=${t('login.email')} error=${fields.email}>
            <input type="email" required autocomplete="email" value=${email}
              onInput=${(/** @type {any} */ e) => setEmail(e.currentTarget.value)} data-testid="login-email" />
          <//>
          <${Field} label=${t('login.password')} error=${fields.password} hint=${isRegister ? t('login.password_hint') : undefined}>
            <input type="password" required minlength=${isRegister ? 8 : undefined} autocomplete=${isRegister ? 'new-password' : 'current-password'}
              value=${password} onInput=${(/** @type {any} */ e) => setPassword(e.currentTarget.value)} data-testid="login-password" />
          <//>
          ${Object.keys(fields).length ? null : html`<${ErrorBox} error=${error} testid="login-error" />`}
          <button type="submit" class="button primary block" disabled=${busy} data-testid="login-submit">
            ${busy ? t('common.working') : isRegister ? t('login.create_account') : t('login.sign_in')}
          </button>
        </form>
      </div>
    </div>`;
}
