import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MESSAGES } from '../console/js/messages.js';
import { detectLang, translate } from '../console/js/i18n.js';
import { FRIENDLY_CODES } from '../console/js/api.js';
import { HYPER_FIELDS } from '../console/js/hyper.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'console', 'js');

test('every key exists in both languages and no text is empty', () => {
  const ko = Object.keys(MESSAGES.ko).sort();
  const en = Object.keys(MESSAGES.en).sort();
  assert.deepEqual(ko, en);
  for (const lang of ['ko', 'en']) {
    for (const [k, v] of Object.entries(MESSAGES[lang])) {
      assert.ok(typeof v === 'string' && v.trim() !== '', `${lang}.${k} is empty`);
    }
  }
});

test('placeholders match between the languages', () => {
  const names = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
  for (const k of Object.keys(MESSAGES.en)) assert.deepEqual(names(MESSAGES.ko[k]), names(MESSAGES.en[k]), k);
});

/** @param {string} dir */
function sources(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.js') ? [p] : [];
  });
}

test('every literal key used in the code exists', () => {
  const used = new Set();
  for (const file of sources(root)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\bt\(\s*'([a-z_]+\.[A-Za-z0-9_.]+)'/g)) used.add(m[1]);
    for (const m of text.matchAll(/'((?:nav|chat|chart|hyper)\.[a-z_0-9]+)'/g)) used.add(m[1]);
  }
  assert.ok(used.size > 100);
  for (const key of used) assert.ok(key in MESSAGES.en, `missing key ${key}`);
});

test('keys built at run time exist', () => {
  const dynamic = [
    ...FRIENDLY_CODES.map((c) => `errors.${c}`),
    ...HYPER_FIELDS.map((f) => `hyper.${f.name}`),
    ...['processing', 'ready', 'failed', 'pending', 'training', 'completed', 'cancelled', 'done', 'error'].map((s) => `status.${s}`),
    ...['classification', 'detection', 'segmentation'].map((s) => `task.${s}`),
    ...['train', 'val', 'test'].map((s) => `split.${s}`),
    ...['error', 'warning', 'info'].map((s) => `severity.${s}`),
    ...['idle', 'connecting', 'open', 'waiting', 'closed'].map((s) => `socket.${s}`),
    ...['auto', 'imagefolder', 'coco', 'yolo', 'voc'].map((s) => `format.${s}`),
    'common.true', 'common.false', 'chart.loss', 'chart.accuracy', 'chart.map', 'chart.lr',
  ];
  for (const key of dynamic) assert.ok(key in MESSAGES.en, `missing key ${key}`);
});

test('language comes from the stored choice, then the browser', () => {
  assert.equal(detectLang(['ko-KR', 'en'], null), 'ko');
  assert.equal(detectLang(['fr-FR', 'en-US'], null), 'en');
  assert.equal(detectLang(['fr'], null), 'en');
  assert.equal(detectLang(['en-US'], 'ko'), 'ko');
});

test('placeholders are filled', () => {
  assert.equal(translate({ x: 'Page {page} of {pages}' }, 'x', { page: 2, pages: 5 }), 'Page 2 of 5');
  assert.equal(translate({}, 'nope.key'), 'nope.key');
});
