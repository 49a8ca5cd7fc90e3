// @ts-check
/**
 * UI text in Korean and English. The language defaults to the browser's and the choice is kept
 * in localStorage.
 */

import { MESSAGES } from './messages.js';

/** @typedef {'ko' | 'en'} Lang */

/** Supported languages. */
export const LANGS = /** @type {Lang[]} */ (['ko', 'en']);

/** localStorage key of the chosen language. */
export const LANG_KEY = 'vp.lang';

/**
 * The language to start with: the stored choice, else the first browser language we have.
 * @param {readonly string[]} browserLangs `navigator.languages`
 * @param {string | null} stored
 * @returns {Lang}
 */
export function detectLang(browserLangs, stored) {
  if (stored === 'ko' || stored === 'en') return stored;
  for (const l of browserLangs ?? []) {
    const base = String(l).toLowerCase().split('-')[0];
    if (base === 'ko' || base === 'en') return base;
  }
  return 'en';
}

/**
 * Looks up `key` and fills `{name}` placeholders; a missing key shows as itself.
 * @param {Record<string, string>} dict
 * @param {string} key
 * @param {Record<string, string | number>} [params]
 */
export function translate(dict, key, params) {
  const text = dict[key] ?? MESSAGES.en[key] ?? key;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

function storage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null;
  }
}

/** @type {Lang} */
let current = detectLang(globalThis.navigator?.languages ?? [globalThis.navigator?.language ?? 'en'], storage()?.getItem(LANG_KEY) ?? null);
/** @type {Set<(l: Lang) => void>} */
const listeners = new Set();

/** The current language. */
export const getLang = () => current;

/**
 * Switches and remembers the language.
 * @param {Lang} lang
 */
export function setLang(lang) {
  if (!LANGS.includes(lang) || lang === current) return;
  current = lang;
  storage()?.setItem(LANG_KEY, lang);
  if (globalThis.document) globalThis.document.documentElement.lang = lang;
  for (const fn of listeners) fn(lang);
}

/** @param {(l: Lang) => void} fn */
export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/**
 * Text of `key` in the current language.
 * @param {string} key
 * @param {Record<string, string | number>} [params]
 */
export function t(key, params) {
  return translate(MESSAGES[current], key, params);
}
