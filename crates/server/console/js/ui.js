// @ts-check
/** Preact and htm from the vendored single-file build (no bare imports). */
export {
  html,
  render,
  useState,
  useEffect,
  useRef,
  useMemo,
  useCallback,
  useLayoutEffect,
} from '../vendor/htm-preact-standalone.module.js';
