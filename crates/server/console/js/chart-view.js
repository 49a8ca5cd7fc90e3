// @ts-check
/** A uPlot line chart; uPlot (≈145 KB) is loaded on first use only. */

import { html, useEffect, useRef } from './ui.js';
import { t } from './i18n.js';
import { PALETTE } from './draw.js';

/** @type {Promise<any> | null} */
let uplot = null;

/** Loads uPlot and its stylesheet once, relative to this module (the hashed asset prefix). */
function loadUPlot() {
  if (!uplot) {
    const link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = new URL('../vendor/uPlot.min.css', import.meta.url).href;
    document.head.append(link);
    uplot = import('../vendor/uPlot.esm.js').then((m) => m.default);
  }
  return uplot;
}

/**
 * @param {{id: string, title: string, chart: import('./charts.js').ChartData}} props
 */
export function LineChart({ id, title, chart }) {
  /** @type {{current: HTMLDivElement | null}} */
  const box = useRef(null);
  /** @type {{current: any}} */
  const plot = useRef(null);
  const seriesKey = chart.series.join(',');

  // (Re)create when the set of series changes.
  useEffect(() => {
    let cancelled = false;
    /** @type {ResizeObserver | null} */
    let ro = null;
    loadUPlot().then((UPlot) => {
      const el = box.current;
      if (cancelled || !el) return;
      const opts = {
        width: Math.max(200, el.clientWidth),
        height: 220,
        scales: { x: { time: false } },
        legend: { live: true },
        cursor: { drag: { x: true, y: false } },
        axes: [{ label: t('chart.step'), size: 40 }, { size: 56 }],
        series: [
          { label: t('chart.step') },
          ...chart.series.map((name, i) => ({
            label: name,
            stroke: PALETTE[i % PALETTE.length],
            width: 2,
            spanGaps: true,
            points: { show: chart.data[0].length < 40 },
          })),
        ],
      };
      plot.current = new UPlot(opts, chart.data, el);
      plot.current.root.querySelector('canvas')?.setAttribute('data-testid', `chart-canvas-${id}`);
      ro = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(200, el.clientWidth), height: 220 }));
      ro.observe(el);
    });
    return () => {
      cancelled = true;
      ro?.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [seriesKey]);

  // New points: update in place.
  useEffect(() => {
    plot.current?.setData(chart.data);
  }, [chart]);

  return html`
    <figure class="chart" data-testid=${`chart-${id}`} data-points=${chart.data[0].length}>
      <figcaption>${title}</figcaption>
      <div ref=${box} class="chart-box"></div>
    </figure>`;
}
