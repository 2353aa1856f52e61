// cdcflow dashboard: tables and SVG charts of the views' current documents, kept live through
// server-sent events. No libraries: everything the page needs is in this file.
'use strict';

const params = new URLSearchParams(location.search);
const token = params.get('token');
const live = params.get('live') !== '0';
const SVG = 'http://www.w3.org/2000/svg';
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2',
  '#7f7f7f', '#bcbd22', '#17becf', '#393b79', '#637939'];
const MAX_SERIES = 12;

// Adds the token (when the page was opened with one) to an API path.
function api(path) {
  if (!token) return path;
  return path + (path.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token);
}

// Parses documents keeping each number's exact digits (a DECIMAL 35.20 shows as 35.20).
function parseExact(text) {
  return JSON.parse(text, function (key, value, context) {
    if (typeof value === 'number') {
      const source = context && typeof context.source === 'string' ? context.source : String(value);
      return { num: value, text: source };
    }
    return value;
  });
}

// One cell: its text as shown (and in the CSV), and its number when it is one.
function cell(value) {
  if (value === null || value === undefined) return { text: '', num: null, isNull: true };
  if (typeof value === 'object' && 'num' in value) return { text: value.text, num: value.num };
  if (typeof value === 'boolean') return { text: value ? 'true' : 'false', num: null };
  return { text: String(value), num: null };
}

function el(tag, attrs, children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children || []) e.append(c);
  return e;
}

function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function utc(ms) {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

function duration(ms) {
  const neg = ms < 0;
  let s = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const parts = d ? [d + ' d', h + ' h'] : h ? [h + ' h', m + ' min'] : m ? [m + ' min', s + ' s'] : [s + ' s'];
  return (neg ? '-' : '') + parts.join(' ');
}

// A number as a chart label: at most 9 decimals, no float noise.
function shown(n) {
  return String(Number(n.toFixed(9)));
}

const state = { views: [], byName: new Map(), frontier: null };

function showFrontier(f) {
  const box = document.getElementById('frontier');
  state.frontier = f;
  box.dataset.done = f.done ? '1' : '0';
  if (f.done) {
    box.textContent = 'input complete' + (f.last_change !== null ? ' · last change at ' + utc(f.last_change) : '');
    box.title = 'every input was read to its end; the documents are final';
  } else if (f.frontier === null) {
    box.textContent = 'no complete time yet';
  } else {
    const lag = Date.now() - f.frontier;
    box.textContent = 'frontier ' + utc(f.frontier) + ' · lag ' + duration(lag);
    box.title = 'every source commit time before the frontier is complete; lag: how far it is behind the wall clock';
    box.dataset.frontier = String(f.frontier);
  }
}

function viewState(meta) {
  let v = state.byName.get(meta.name);
  if (!v) {
    v = { meta, docs: [], sort: null, filter: '', chart: null, section: null };
    state.byName.set(meta.name, v);
  }
  v.meta = meta;
  return v;
}

function buildNav() {
  const nav = document.getElementById('views');
  nav.replaceChildren(...state.views.map(v => el('a', { href: '#view-' + v.meta.name, 'data-view': v.meta.name },
    [v.meta.name + ' ', el('span', { class: 'count', text: String(v.docs.length) })])));
}

function buildSection(v) {
  const name = v.meta.name;
  const filter = el('input', { class: 'filter', type: 'search', placeholder: 'filter rows…', 'aria-label': 'filter ' + name });
  filter.addEventListener('input', () => { v.filter = filter.value; renderTable(v); });
  const section = el('section', { class: 'view', id: 'view-' + name, 'data-view': name }, [
    el('h2', {}, [name + ' ', el('span', { class: 'count' }),
      el('a', { class: 'csv', href: api('/api/views/' + encodeURIComponent(name) + '.csv'), download: name + '.csv', text: 'CSV' })]),
    el('div', { class: 'chart-box' }),
    filter,
    el('div', { class: 'table-box' }, [el('table', { 'data-view': name }, [el('thead'), el('tbody')])]),
  ]);
  v.section = section;
  return section;
}

function compareCells(a, b) {
  if (a.isNull || b.isNull) return (a.isNull ? 1 : 0) - (b.isNull ? 1 : 0);
  if (a.num !== null && b.num !== null) return a.num - b.num;
  return a.text < b.text ? -1 : a.text > b.text ? 1 : 0;
}

function renderTable(v) {
  const table = v.section.querySelector('table');
  const cols = v.meta.columns;
  const head = el('tr', {}, cols.map((c, i) => {
    const arrow = v.sort && v.sort.col === i ? (v.sort.dir > 0 ? ' ▲' : ' ▼') : '';
    const th = el('th', { 'data-col': c.name, class: c.role, title: c.type + (c.role === 'key' ? ', group key' : ', measure'), text: c.name + arrow });
    th.addEventListener('click', () => {
      v.sort = v.sort && v.sort.col === i ? { col: i, dir: -v.sort.dir } : { col: i, dir: 1 };
      renderTable(v);
    });
    return th;
  }));
  table.tHead.replaceChildren(head);
  const needle = v.filter.trim().toLowerCase();
  let rows = v.docs.filter(r => !needle || r.some(c => c.text.toLowerCase().includes(needle)));
  if (v.sort) {
    const { col, dir } = v.sort;
    rows = rows.slice().sort((a, b) => dir * compareCells(a[col], b[col]));
  }
  table.tBodies[0].replaceChildren(...rows.map(r => el('tr', {}, r.map((c, i) =>
    el('td', { class: (cols[i].role === 'measure' || c.num !== null ? 'num' : '') + (c.isNull ? ' null' : ''), text: c.text })))));
  v.section.querySelector('h2 .count').textContent =
    (rows.length === v.docs.length ? v.docs.length : rows.length + ' of ' + v.docs.length) + ' documents';
}

// The series a chart can split by for a measure: each key column (other than the day) whose
// remaining keys the measure can combine over, every key together, and the total.
function seriesChoices(v, measure) {
  const cols = v.meta.columns;
  const keys = cols.map((c, i) => i).filter(i => cols[i].role === 'key' && i !== v.dayIndex);
  const combinable = cols[measure].combine !== null;
  const out = [];
  for (const k of keys) {
    if (combinable || keys.length === 1) out.push({ value: String(k), label: 'per ' + cols[k].name, keys: [k] });
  }
  if (keys.length > 1) out.push({ value: 'all', label: 'per ' + keys.map(k => cols[k].name).join(' × '), keys });
  if (combinable || keys.length === 0) out.push({ value: 'total', label: 'total', keys: [] });
  return out;
}

function combine(how, a, b) {
  if (a === undefined) return b;
  if (how === 'min') return Math.min(a, b);
  if (how === 'max') return Math.max(a, b);
  return a + b;
}

// series label -> day -> value, and the days.
function chartData(v, measure, choice) {
  const how = v.meta.columns[measure].combine || 'sum';
  const series = new Map();
  const days = new Set();
  for (const r of v.docs) {
    const day = r[v.dayIndex];
    const value = r[measure];
    if (day.isNull || value.num === null) continue;
    const label = choice.keys.length ? choice.keys.map(k => r[k].isNull ? 'NULL' : r[k].text).join(' | ') : 'total';
    if (!series.has(label)) series.set(label, new Map());
    const points = series.get(label);
    points.set(day.text, combine(how, points.get(day.text), value.num));
    days.add(day.text);
  }
  return { series, days: [...days].sort() };
}

function renderChart(v) {
  const box = v.section.querySelector('.chart-box');
  if (v.dayIndex === undefined || v.dayIndex === null) { box.hidden = true; return; }
  const cols = v.meta.columns;
  const measures = cols.map((c, i) => i).filter(i => cols[i].role === 'measure' && ['int', 'decimal', 'double'].includes(cols[i].type));
  if (!measures.length) { box.hidden = true; return; }
  if (!v.chart) v.chart = { measure: measures[0], series: null, picked: null };
  const ch = v.chart;
  const choices = seriesChoices(v, ch.measure);
  let choice = choices.find(c => c.value === ch.series) || choices[0];
  ch.series = choice.value;
  const data = chartData(v, ch.measure, choice);
  const labels = [...data.series.keys()].sort();
  if (!ch.picked) {
    const total = l => [...data.series.get(l).values()].reduce((a, b) => a + Math.abs(b), 0);
    ch.picked = new Set(labels.slice().sort((a, b) => total(b) - total(a)).slice(0, MAX_SERIES));
  }
  const measureSelect = el('select', { class: 'measure', 'aria-label': 'measure' },
    measures.map(i => el('option', { value: String(i), text: cols[i].name })));
  measureSelect.value = String(ch.measure);
  measureSelect.addEventListener('change', () => { ch.measure = Number(measureSelect.value); ch.picked = null; renderChart(v); });
  const seriesSelect = el('select', { class: 'series', 'aria-label': 'series' },
    choices.map(c => el('option', { value: c.value, text: c.label })));
  seriesSelect.value = ch.series;
  seriesSelect.addEventListener('change', () => { ch.series = seriesSelect.value; ch.picked = null; renderChart(v); });
  const picks = el('div', { class: 'picks' }, labels.map((l, i) => {
    const box = el('input', { type: 'checkbox', value: l });
    box.checked = ch.picked.has(l);
    box.addEventListener('change', () => { if (box.checked) ch.picked.add(l); else ch.picked.delete(l); renderChart(v); });
    return el('label', { style: 'border-color:' + COLORS[i % COLORS.length] }, [box, ' ' + l]);
  }));
  const how = cols[ch.measure].combine;
  const note = choice.keys.length + 1 < cols.filter(c => c.role === 'key').length
    ? ' (' + (how || 'sum') + ' over the other group columns)' : '';
  box.hidden = false;
  box.replaceChildren(
    el('div', { class: 'controls' }, [measureSelect, ' per ', el('b', { text: cols[v.dayIndex].name }), ', ', seriesSelect,
      el('span', { class: 'note', text: note })]),
    picks,
    drawChart(v, data, labels, ch));
}

function drawChart(v, data, labels, ch) {
  const W = 900, H = 280, L = 70, R = 20, T = 14, B = 34;
  const svg = svgEl('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img',
    'data-view': v.meta.name, 'data-measure': v.meta.columns[ch.measure].name, 'data-series': ch.series });
  const shownLabels = labels.filter(l => ch.picked.has(l));
  const values = shownLabels.flatMap(l => [...data.series.get(l).values()]);
  if (!data.days.length || !values.length) {
    svg.append(Object.assign(svgEl('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty' }), { textContent: 'no data' }));
    return svg;
  }
  let lo = Math.min(0, ...values), hi = Math.max(0, ...values);
  if (hi === lo) hi = lo + 1;
  // Round the axis to a step of 1, 2 or 5 times a power of ten.
  const raw = (hi - lo) / 4, pow = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map(m => m * pow).find(s => s >= raw);
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil(hi / step) * step;
  const ticks = Math.round((hi - lo) / step);
  const x = i => data.days.length === 1 ? (L + W - R) / 2 : L + i * (W - L - R) / (data.days.length - 1);
  const y = val => T + (hi - val) * (H - T - B) / (hi - lo);
  for (let k = 0; k <= ticks; k++) {
    const val = lo + k * step;
    svg.append(svgEl('line', { x1: L, x2: W - R, y1: y(val), y2: y(val), class: 'grid' }));
    svg.append(Object.assign(svgEl('text', { x: L - 6, y: y(val) + 4, 'text-anchor': 'end', class: 'tick' }), { textContent: shown(val) }));
  }
  const every = Math.max(1, Math.ceil(data.days.length / 10));
  data.days.forEach((d, i) => {
    if (i % every === 0 || i === data.days.length - 1) {
      const anchor = data.days.length > 1 && i === data.days.length - 1 ? 'end' : i === 0 && data.days.length > 1 ? 'start' : 'middle';
      svg.append(Object.assign(svgEl('text', { x: x(i), y: H - B + 18, 'text-anchor': anchor, class: 'tick' }), { textContent: d }));
    }
  });
  labels.forEach((l, si) => {
    if (!ch.picked.has(l)) return;
    const color = COLORS[si % COLORS.length];
    const points = data.series.get(l);
    const g = svgEl('g', { class: 'series', 'data-series': l });
    const coords = data.days.map((d, i) => points.has(d) ? [x(i), y(points.get(d)), d, points.get(d)] : null).filter(Boolean);
    g.append(svgEl('polyline', { points: coords.map(c => c[0] + ',' + c[1]).join(' '), fill: 'none', stroke: color, 'stroke-width': 2 }));
    for (const [cx, cy, d, val] of coords) {
      const dot = svgEl('circle', { cx, cy, r: 3.5, fill: color, 'data-day': d, 'data-value': shown(val) });
      dot.append(Object.assign(svgEl('title'), { textContent: `${l} · ${d}: ${shown(val)}` }));
      g.append(dot);
    }
    svg.append(g);
  });
  return svg;
}

async function fetchText(path) {
  const r = await fetch(api(path), { cache: 'no-store' });
  if (!r.ok) throw new Error(path + ': ' + r.status + ' ' + (await r.text()));
  return r.text();
}

let refreshing = null, again = false;

async function refresh() {
  if (refreshing) { again = true; return refreshing; }
  refreshing = (async () => {
    try {
      const list = JSON.parse(await fetchText('/api/views'));
      const main = document.getElementById('main');
      const views = list.views.map(viewState);
      const fresh = views.filter(v => !v.section);
      state.views = views;
      for (const v of fresh) main.append(buildSection(v));
      await Promise.all(views.map(async v => {
        const body = parseExact(await fetchText('/api/views/' + encodeURIComponent(v.meta.name)));
        v.dayIndex = body.day === null ? null : body.columns.findIndex(c => c.name === body.day);
        v.docs = body.documents.map(doc => body.columns.map(c => cell(doc[c.name])));
        showFrontier({ frontier: body.frontier === null ? null : body.frontier.num, done: body.done,
          last_change: body.last_change === null ? null : body.last_change.num });
        renderTable(v);
        renderChart(v);
      }));
      buildNav();
      document.body.dataset.ready = '1';
      document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
    } catch (e) {
      document.getElementById('frontier').textContent = 'error: ' + e.message;
    }
  })();
  await refreshing;
  refreshing = null;
  if (again) { again = false; return refresh(); }
}

function connect() {
  const badge = document.getElementById('live');
  const source = new EventSource(api('/api/events'));
  source.addEventListener('update', () => refresh());
  source.onopen = () => { badge.textContent = 'live'; badge.className = 'live on'; };
  source.onerror = () => { badge.textContent = 'reconnecting…'; badge.className = 'live off'; };
}

refresh().then(() => {
  if (live) connect();
  // The lag grows with the wall clock even when nothing changes.
  setInterval(() => { if (state.frontier) showFrontier(state.frontier); }, 1000);
});
