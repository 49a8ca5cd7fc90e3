// @ts-check
/** Entry point: the shell (header, navigation, language, sign-out) and the routed page. */

import { html, render, useEffect, useState } from './ui.js';
import { auth } from './app.js';
import { parseHash, navigate } from './router.js';
import { t, getLang, setLang, onLangChange } from './i18n.js';
import { Loading, Toasts } from './components.js';
import { LoginPage } from './pages/login.js';
import { ProfilePage } from './pages/profile.js';
import { ChatPage } from './pages/chat.js';
import { DatasetsPage } from './pages/datasets.js';
import { DatasetPage } from './pages/dataset.js';
import { WorkflowsPage } from './pages/workflows.js';
import { NewWorkflowPage } from './pages/workflow-new.js';
import { WorkflowPage } from './pages/workflow.js';
import { ModelsPage, ModelPage } from './pages/models.js';
import { PredictPage } from './pages/predict.js';
import { SegmentPage } from './pages/segment.js';

/** Navigation entries: route path, text key, routes that highlight it. */
const NAV = [
  ['/chat', 'nav.chat', ['chat']],
  ['/datasets', 'nav.datasets', ['datasets', 'dataset']],
  ['/workflows', 'nav.workflows', ['workflows', 'workflow', 'workflowNew']],
  ['/models', 'nav.models', ['models', 'model']],
  ['/predict', 'nav.predict', ['predict']],
  ['/segment', 'nav.segment', ['segment']],
  ['/profile', 'nav.profile', ['profile']],
];

/** @type {Record<string, (p: {route: import('./router.js').Route}) => any>} */
const PAGES = {
  chat: ChatPage,
  datasets: DatasetsPage,
  dataset: DatasetPage,
  workflows: WorkflowsPage,
  workflowNew: NewWorkflowPage,
  workflow: WorkflowPage,
  models: ModelsPage,
  model: ModelPage,
  predict: PredictPage,
  segment: SegmentPage,
  profile: ProfilePage,
};

function useRoute() {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const fn = () => setRoute(parseHash(location.hash));
    addEventListener('hashchange', fn);
    return () => removeEventListener('hashchange', fn);
  }, []);
  return route;
}

/** @param {{lang: string}} props */
function LangSwitch({ lang }) {
  return html`
    <label class="lang-switch">
      <span class="visually-hidden">${t('nav.language')}</span>
      <select value=${lang} onChange=${(/** @type {Event} */ e) => setLang(/** @type {any} */ (/** @type {HTMLSelectElement} */ (e.currentTarget).value))}
        data-testid="lang-switch">
        <option value="ko">한국어</option>
        <option value="en">English</option>
      </select>
    </label>`;
}

/** @param {{route: import('./router.js').Route, lang: string}} props */
function Shell({ route, lang }) {
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => setMenuOpen(false), [route]);
  const Page = PAGES[route.name];
  const signOut = async () => {
    await auth.signOut();
    navigate('/login');
  };
  return html`
    <a class="skip-link" href="#main" onClick=${(/** @type {Event} */ e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>${t('nav.skip')}</a>
    <header class="topbar">
      <a class="brand" href="#/chat" data-testid="brand">${t('app.name')}</a>
      <button type="button" class="menu-toggle" aria-expanded=${menuOpen} aria-controls="main-nav"
        onClick=${() => setMenuOpen(!menuOpen)} data-testid="nav-toggle">${t('nav.menu')}</button>
      <nav id="main-nav" class=${menuOpen ? 'nav open' : 'nav'} aria-label=${t('nav.main')}>
        ${NAV.map(([path, key, names]) => html`
          <a href=${`#${path}`} class=${names.includes(route.name) ? 'active' : ''}
            aria-current=${names.includes(route.name) ? 'page' : undefined}
            data-testid=${`nav-${String(path).slice(1)}`}>${t(String(key))}</a>`)}
        <div class="nav-tools">
          <${LangSwitch} lang=${lang} />
          <button type="button" class="button small" onClick=${signOut} data-testid="sign-out">${t('nav.sign_out')}</button>
        </div>
      </nav>
    </header>
    <main id="main" tabindex="-1">
      ${Page ? html`<${Page} key=${route.name + JSON.stringify(route.params)} route=${route} />`
        : html`<div class="page"><h1>${t('common.not_found')}</h1><p><a href="#/chat">${t('nav.chat')}</a></p></div>`}
    </main>`;
}

function App() {
  const route = useRoute();
  const [lang, setLangState] = useState(getLang());
  const [session, setSession] = useState(auth.hasStoredSession() ? 'restoring' : 'out');
  useEffect(() => onLangChange((l) => setLangState(l)), []);
  useEffect(() => {
    const off = auth.subscribe((signedIn) => setSession(signedIn ? 'in' : 'out'));
    if (session === 'restoring') auth.refresh().then((ok) => setSession(ok ? 'in' : 'out'));
    return off;
  }, []);
  useEffect(() => {
    if (session === 'in' && route.name === 'login') navigate('/chat');
  }, [session, route.name]);

  let body;
  if (session === 'restoring') body = html`<div class="center-page"><${Loading} /></div>`;
  else if (session === 'out') body = html`<${LoginPage} lang=${lang}><${LangSwitch} lang=${lang} /><//>`;
  else body = html`<${Shell} route=${route} lang=${lang} />`;
  return html`<div class="app">${body}<${Toasts} /></div>`;
}

document.documentElement.lang = getLang();
const root = document.getElementById('app');
if (root) render(html`<${App} />`, root);
