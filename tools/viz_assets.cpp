// The script and style sheet of `ingotc viz`'s page (tools/viz_command.cpp). Plain JavaScript and
// CSS, no library: the page must work from file:// with no network, so everything is inline.
#include "tools/viz_command.h"

namespace ingot {

const char* const kVizStyle = R"CSS(
* { box-sizing: border-box; }
body { margin: 0; font: 13px/1.4 Helvetica, Arial, sans-serif; color: #222; display: grid; height: 100vh;
  grid-template-columns: 260px 1fr 360px; grid-template-rows: auto 1fr; }
header { grid-column: 1 / 4; display: flex; gap: 10px; align-items: center; padding: 6px 10px;
  background: #2e3440; color: #eee; }
header h1 { font-size: 15px; margin: 0 12px 0 0; font-weight: 600; white-space: nowrap; }
header input { width: 260px; padding: 3px 6px; }
header button, header select { padding: 2px 8px; white-space: nowrap; }
header .hint { color: #aab; font-size: 11px; margin-left: auto; min-width: 0; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; }
#steps { overflow: auto; border-right: 1px solid #ccc; padding: 6px; background: #fafafa; }
#steps h2, #details h2 { font-size: 13px; margin: 6px 0; }
#steps .phase { font-weight: 600; margin-top: 8px; color: #444; }
#steps .step { padding: 2px 6px; cursor: pointer; border-radius: 3px; display: flex; justify-content: space-between; }
#steps .step:hover { background: #e8eef8; }
#steps .step.current { background: #3465a4; color: white; }
#steps .step .delta { font-family: monospace; font-size: 11px; }
#steps .step.nochange { color: #999; }
#main { overflow: auto; position: relative; }
#banner { position: sticky; top: 0; left: 0; background: #fffbe6; border-bottom: 1px solid #e5d58a; padding: 4px 8px; z-index: 2; }
#banner:empty { display: none; }
#graph svg { display: block; margin: 8px auto; }
#details { overflow: auto; border-left: 1px solid #ccc; padding: 8px; }
#details table { border-collapse: collapse; width: 100%; }
#details td { border-top: 1px solid #eee; padding: 2px 4px; vertical-align: top; word-break: break-all; }
#details td:first-child { color: #666; white-space: nowrap; word-break: normal; }
#results { position: absolute; top: 34px; left: 300px; background: white; color: #222; border: 1px solid #999;
  max-height: 300px; overflow: auto; z-index: 5; min-width: 300px; }
#results div { padding: 2px 6px; cursor: pointer; }
#results div.active, #results div:hover { background: #dbeafc; }
g.node { cursor: pointer; }
g.node.sel path, g.node.sel polygon { stroke: #000; stroke-width: 3px; }
g.node.hl-added path, g.node.hl-added polygon { stroke: #1a7f37; stroke-width: 3px; fill: #d6f5dc; }
g.node.hl-removed path, g.node.hl-removed polygon { stroke: #c62828; stroke-width: 3px; fill: #fde0e0; }
g.node.hl-changed path, g.node.hl-changed polygon { stroke: #e08a00; stroke-width: 3px; fill: #fff1d6; }
g.node.hl-match path, g.node.hl-match polygon { stroke: #7b1fa2; stroke-width: 3px; }
g.cluster { cursor: pointer; }
.legend span { display: inline-block; padding: 0 6px; margin-right: 4px; border: 2px solid; border-radius: 3px; }
.mono { font-family: monospace; }
.bar { height: 8px; background: #3465a4; }
)CSS";

const char* const kVizScript = R"JS(
'use strict';
const D = JSON.parse(document.getElementById('ingot-data').textContent);
const M = D.meta;
const byName = new Map();
D.nodes.forEach((n, i) => byName.set(n.n, i));
// Layer k's nodes in order; node i of layer k is drawn as node layerNodes[0][pos] of layer 0.
const layerNodes = [];
const posInLayer = new Map();
D.nodes.forEach((n, i) => {
  if (n.c || n.l < 0) return;
  while (layerNodes.length <= n.l) layerNodes.push([]);
  posInLayer.set(i, layerNodes[n.l].length);
  layerNodes[n.l].push(i);
});
const profileByNode = new Map();
if (D.profile && D.profile.calls) for (const k of D.profile.calls) profileByNode.set(k.node, k);

const state = { view: M.layers > 0 ? 'folded' : 'expanded', layer: 0, step: -1, after: false, sel: -1, order: [] };

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'onclick') e.addEventListener('click', v); else if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of kids) e.append(c);
  return e;
}
function fmtBytes(b) {
  if (b == null) return '';
  const u = ['B', 'KiB', 'MiB', 'GiB']; let i = 0; let x = b;
  while (x >= 1024 && i < 3) { x /= 1024; i++; }
  return (i ? x.toFixed(1) : x) + ' ' + u[i] + (i ? ' (' + b + ' B)' : '');
}

// ---------------------------------------------------------------- layout of the page
const header = el('header', {});
const title = el('h1', { text: 'Ingot: ' + (M.model || M.source) + ' (' + M.kind + ')' });
const search = el('input', { id: 'search', type: 'search', placeholder: 'search node or tensor  ( / )', autocomplete: 'off' });
const results = el('div', { id: 'results' });
results.style.display = 'none';
const foldBtn = el('button', { id: 'toggle-fold', text: 'expand layers (e)' });
const layerSel = el('select', { id: 'layer', title: 'layer shown in the expanded block ( , . )' });
for (let k = 0; k < Math.max(M.layers, 1); k++) layerSel.append(el('option', { value: k, text: 'layer ' + k }));
const modelBtn = el('button', { id: 'model-view', text: 'model (Esc)' });
const beforeAfter = el('button', { id: 'before-after', text: 'show after' });
header.append(title, search, foldBtn, layerSel, modelBtn, beforeAfter,
  el('span', { class: 'hint', text: '/ search, j k next/previous node, e fold, [ ] steps, , . layers, Esc model' }));
const steps = el('div', { id: 'steps' });
const main = el('div', { id: 'main' });
const banner = el('div', { id: 'banner' });
const graph = el('div', { id: 'graph' });
main.append(banner, graph);
const details = el('div', { id: 'details' });
document.body.append(header, steps, main, details, results);
if (M.layers === 0) { foldBtn.disabled = true; layerSel.disabled = true; }

// ---------------------------------------------------------------- the step timeline
function stepDelta(s) { return '+' + s.added.length + ' \u2212' + s.removed.length + (s.changed.length ? ' ~' + s.changed.length : ''); }
function buildSteps() {
  steps.append(el('h2', { text: 'Compile pipeline' }));
  if (!D.steps.length) steps.append(el('p', { text: M.note }));
  let phase = '';
  D.steps.forEach((s, i) => {
    if (s.phase !== phase) { phase = s.phase; steps.append(el('div', { class: 'phase', text: phase })); }
    const changed = s.added.length + s.removed.length + s.changed.length > 0;
    const row = el('div', { class: 'step' + (changed ? '' : ' nochange'), id: 'step-' + i, 'data-step': s.name,
      title: s.ms.toFixed(1) + ' ms, nodes ' + s.before + ' -> ' + s.after, onclick: () => showStep(i) },
      el('span', { text: s.name === s.phase ? '(phase)' : s.name }), el('span', { class: 'delta', text: stepDelta(s) }));
    steps.append(row);
  });
  const info = el('div', {});
  info.append(el('h2', { text: 'Model' }));
  const t = el('table', {});
  const rows = [['source', M.source], ['layers', M.layers], ['nodes', D.nodes.filter(n => !n.c).length],
    ['arena', fmtBytes(M.arena_bytes)], ['KV state', fmtBytes(M.state_bytes)], ['max batch', M.max_batch],
    ['max context', M.max_context], ['CPU tiers', (M.tiers || []).join(', ') || 'not compiled'], ['this host runs', M.host_tier]];
  for (const [k, v] of M.provenance) rows.push([k, v]);
  for (const [k, v] of rows) t.append(el('tr', {}, el('td', { text: k }), el('td', { text: String(v) })));
  info.append(t);
  if (D.steps.length) info.append(el('p', { text: M.note }));
  steps.append(info);
  if (D.accuracy && D.accuracy.end_to_end) {
    const e = D.accuracy.end_to_end;
    steps.append(el('h2', { text: 'Quantization accuracy' }));
    const a = el('table', { id: 'accuracy-table' });
    for (const [k, v] of [['calibration tokens', D.accuracy.calib_tokens], ['KL mean / max', e.kl_mean.toFixed(4) + ' / ' + e.kl_max.toFixed(4)],
      ['top-1 agreement', (100 * e.top1_agreement).toFixed(1) + ' %'],
      ['perplexity', e.perplexity_reference.toFixed(3) + ' \u2192 ' + e.perplexity_quantized.toFixed(3)],
      ['matmuls measured', D.accuracy.matmuls.length]])
      a.append(el('tr', {}, el('td', { text: k }), el('td', { text: String(v) })));
    steps.append(a);
  }
  if (D.profile && D.profile.kernels) {
    const P = D.profile, h = P.host;
    steps.append(el('h2', { text: 'Profile (decode step)' }));
    steps.append(el('p', { text: P.step_ms.toFixed(2) + ' ms per step at ' + P.context + ' cached tokens, ' + P.threads +
      ' thread(s), tier ' + P.tier + '; kernels sum to ' + P.kernel_sum_ms.toFixed(2) + ' ms. Host (measured): ' +
      h.read_gbps.toFixed(1) + ' GB/s read, ' + h.f32_gops.toFixed(0) + ' G f32 ops/s, ' + h.int8_gops.toFixed(0) + ' G int8 ops/s.' }));
    const pt = el('table', { id: 'profile-table' });
    pt.append(el('tr', {}, el('td', { text: 'kernel' }), el('td', { text: 'share, GB/s, G ops/s' })));
    for (const k of P.kernels) {
      const bar = el('div', { class: 'bar' }); bar.style.width = Math.max(1, Math.round(100 * k.share)) + '%';
      const cell = el('td', { title: k.desc });
      cell.append((100 * k.share).toFixed(1) + ' %, ' + k.gbps.toFixed(1) + ' GB/s (' + (100 * k.bw_fraction).toFixed(0) + ' %), ' +
        k.gops.toFixed(1) + ' G ops/s', bar);
      pt.append(el('tr', {}, el('td', { text: k.symbol + ' (' + k.calls + ')' }), cell));
    }
    steps.append(pt);
  }
}

// ---------------------------------------------------------------- drawing
let current = { nodes: D.nodes, svgIds: null };
function svgNode(i) { return document.getElementById('n' + i); }
function draw(svg, nodes, bannerText, highlights) {
  graph.innerHTML = svg;
  current = { nodes: nodes };
  banner.textContent = '';
  if (bannerText) banner.append(bannerText);
  const order = [];
  graph.querySelectorAll('g.node').forEach(g => {
    if (g.id === 'fold') { g.addEventListener('click', () => setFold(false)); order.push(g.id); return; }
    const i = +g.id.slice(1);
    order.push(g.id);
    g.addEventListener('click', () => select(i));
  });
  const cl = document.getElementById('clust_layer');
  if (cl && !state.snapView) cl.querySelector('text') && cl.querySelector('text').addEventListener('click', () => setFold(true));
  state.order = order;
  let first = null;
  if (highlights) for (const [cls, names] of highlights) {
    const wanted = new Set(names);
    nodes.forEach((n, i) => {
      if (n && wanted.has(n.n) && svgNode(i)) { svgNode(i).classList.add(cls); if (!first) first = svgNode(i); }
    });
  }
  if (first) first.scrollIntoView({ block: 'center', inline: 'center' });
}
function indexIn(nodes, name) {
  if (nodes === D.nodes) return byName.has(name) ? byName.get(name) : -1;
  for (let i = 0; i < nodes.length; i++) if (nodes[i] && nodes[i].n === name) return i;
  return -1;
}
function showModel() {
  state.step = -1; state.snapView = false;
  document.querySelectorAll('#steps .step').forEach(s => s.classList.remove('current'));
  beforeAfter.disabled = true;
  const folded = state.view === 'folded' && D.views.folded;
  foldBtn.textContent = folded ? 'expand layers (e)' : 'fold layers (e)';
  draw(folded ? D.views.folded : D.views.expanded, D.nodes, null, null);
  if (profileByNode.size) heat();
  if (state.sel >= 0) markSelected(state.sel);
}
// With a profile: each drawn node filled by its share of the step time (a layer-0 node by the
// sum over every layer's node at its place; the folded block by all the layers' nodes).
function heat() {
  const share = new Map();
  let max = 0;
  D.nodes.forEach((n, i) => {
    const p = profileByNode.get(n.n);
    if (!p) return;
    let id = 'n' + i;
    if (n.l >= 0 && M.layers > 0) id = state.view === 'folded' ? 'fold' : (posInLayer.has(i) && layerNodes[0][posInLayer.get(i)] != null ? 'n' + layerNodes[0][posInLayer.get(i)] : id);
    share.set(id, (share.get(id) || 0) + p.share);
  });
  for (const v of share.values()) max = Math.max(max, v);
  for (const [id, v] of share) {
    const g = document.getElementById(id);
    if (!g || !max) continue;
    const shape = g.querySelector('path, polygon');
    if (shape) shape.style.fill = 'rgba(230, 120, 0, ' + (0.1 + 0.8 * v / max).toFixed(3) + ')';
    g.setAttribute('data-share', v.toFixed(4));
  }
  banner.textContent = 'Filled by share of the decode step time (ingot bench --profile): darker is slower.';
}
function setFold(folded) { state.view = folded ? 'folded' : 'expanded'; showModel(); }

// Step i: the graph before it, the nodes it removed or changed highlighted; "after": the graph it
// left, the nodes it added or changed highlighted. From the snapshots the pipeline recorded.
function showStep(i) {
  if (i < 0 || i >= D.steps.length) return;
  state.step = i; state.snapView = true;
  document.querySelectorAll('#steps .step').forEach(s => s.classList.remove('current'));
  const row = document.getElementById('step-' + i);
  row.classList.add('current'); row.scrollIntoView({ block: 'nearest' });
  const s = D.steps[i];
  let before = -1;
  for (let j = i - 1; j >= 0; j--) if (D.steps[j].snap >= 0) { before = D.steps[j].snap; break; }
  const showAfter = state.after || before < 0 || s.snap < 0;
  const snapIndex = showAfter ? (s.snap >= 0 ? s.snap : before) : before;
  beforeAfter.disabled = !(before >= 0 && s.snap >= 0);
  beforeAfter.textContent = showAfter ? 'show before' : 'show after';
  const legend = el('span', { class: 'legend' });
  const what = s.name === s.phase ? 'phase ' + s.name : 'pass ' + s.name + ' (phase ' + s.phase + ')';
  if (snapIndex < 0) { draw('', [], 'No snapshot for ' + what, null); return; }
  const snap = D.snaps[snapIndex];
  const hl = [];
  if (showAfter) {
    hl.push(['hl-added', s.added], ['hl-changed', s.changed]);
    legend.append(el('span', { style: 'border-color:#1a7f37', text: 'added ' + s.added.length }),
      el('span', { style: 'border-color:#e08a00', text: 'changed ' + s.changed.length }));
  } else {
    hl.push(['hl-removed', s.removed], ['hl-changed', s.changed]);
    legend.append(el('span', { style: 'border-color:#c62828', text: 'removed ' + s.removed.length }),
      el('span', { style: 'border-color:#e08a00', text: 'changed ' + s.changed.length }));
  }
  const text = el('span', {});
  text.append((showAfter ? 'After ' : 'Before ') + what + ' (' + s.before + ' \u2192 ' + s.after + ' nodes in all layers' +
    (snap.layers ? '; layer 0 of ' + snap.layers + ' drawn' : '') + '): ', legend);
  draw(snap.svg, snap.nodes, text, hl);
  showStepDetails(s);
}

function nameList(title, names) {
  const d = el('details', {});
  d.append(el('summary', { text: title + ' (' + names.length + ')' }));
  const shown = names.slice(0, 400);
  d.append(el('div', { class: 'mono', text: shown.join(', ') + (names.length > shown.length ? ', \u2026' : '') }));
  return d;
}
function showStepDetails(s) {
  details.innerHTML = '';
  details.append(el('h2', { text: s.name === s.phase ? 'Phase ' + s.name : 'Pass ' + s.name }));
  const t = el('table', {});
  for (const [k, v] of [['phase', s.phase], ['time', s.ms.toFixed(2) + ' ms'], ['nodes', s.before + ' \u2192 ' + s.after],
    ['added', s.added.length], ['removed', s.removed.length], ['changed', s.changed.length]])
    t.append(el('tr', {}, el('td', { text: k }), el('td', { text: String(v) })));
  details.append(t, nameList('added', s.added), nameList('removed', s.removed), nameList('changed', s.changed));
}

// ---------------------------------------------------------------- node details
function markSelected(i) {
  graph.querySelectorAll('g.node.sel').forEach(g => g.classList.remove('sel'));
  let shown = i;
  if (current.nodes === D.nodes && D.nodes[i] && D.nodes[i].l > 0 && posInLayer.has(i)) shown = layerNodes[0][posInLayer.get(i)];
  if (svgNode(shown)) { svgNode(shown).classList.add('sel'); svgNode(shown).scrollIntoView({ block: 'nearest', inline: 'nearest' }); }
}
// Node i of the current view; in the model view, a layer-0 node stands for the chosen layer's.
function select(i) {
  let nodes = current.nodes, k = i;
  if (nodes === D.nodes && D.nodes[i] && D.nodes[i].l === 0 && state.layer > 0 && layerNodes[state.layer]) {
    const p = posInLayer.get(i);
    if (p != null && p < layerNodes[state.layer].length) k = layerNodes[state.layer][p];
  }
  state.sel = k;
  markSelected(nodes === D.nodes ? k : i);
  showNode(nodes, k);
}
function row(t, k, v) { if (v !== undefined && v !== null && v !== '') t.append(el('tr', {}, el('td', { text: k }), el('td', { text: String(v) }))); }
function accuracyFor(weightName) {
  if (!D.accuracy || !D.accuracy.matmuls) return [];
  const base = weightName.replace(/\.merged$/, '');
  const m = base.match(/^(.*\.)(attn_q|ffn_gate)(\.weight)$/);
  return D.accuracy.matmuls.filter(a => a.weight === weightName || a.weight === base ||
    (weightName.endsWith('.merged') && m && (m[2] === 'attn_q' ? ['attn_q', 'attn_k', 'attn_v'] : ['ffn_gate', 'ffn_up'])
      .some(x => a.weight === m[1] + x + m[3])));
}
function showNode(nodes, i) {
  const n = nodes[i];
  details.innerHTML = '';
  if (!n) return;
  details.append(el('h2', { id: 'node-title', text: n.n }));
  const t = el('table', { id: 'node-table' });
  row(t, 'op', n.o);
  row(t, 'layer', n.l >= 0 ? n.l + ' of ' + M.layers : 'outside the layers');
  (n.t || []).forEach((ty, k) => row(t, 'output ' + k, ty));
  (n.a || []).forEach(([k, v]) => row(t, 'attr ' + k, v));
  (n.i || []).forEach((inp, k) => {
    const p = inp.split(':')[0];
    const pi = indexIn(nodes, p);
    const pn = pi >= 0 ? nodes[pi] : null;
    row(t, 'input ' + k, inp + (pn && pn.t ? '  ' + pn.t[inp.includes(':') ? +inp.split(':')[1] : 0] : ''));
    const w = D.weights[p];
    if (w && pn && pn.c) {
      row(t, 'weight', p);
      row(t, 'weight type', w.type + (w.layout && w.layout !== 'ggml' ? ' (' + w.layout + ')' : ''));
      row(t, 'weight bytes', fmtBytes(w.bytes));
      for (const a of accuracyFor(p))
        row(t, 'SQNR ' + a.weight, (a.sqnr_db == null ? 'exact' : a.sqnr_db.toFixed(1) + ' dB') + ', cosine ' +
          (a.cosine != null ? a.cosine.toFixed(6) : '') + ' (' + a.reference_type + ' \u2192 ' + a.quantized_type + ')');
    }
  });
  // Packed copies of a weight in a bundle are keyed "name@layout:kernel".
  for (const [key, w] of Object.entries(D.weights)) {
    if (!key.includes('@')) continue;
    const base = key.split('@')[0];
    if ((n.i || []).some(x => x.split(':')[0] === base)) { row(t, 'packed weight', key); row(t, 'packed type', w.type + ', ' + fmtBytes(w.bytes)); }
  }
  if (n.c && D.weights[n.n]) { const w = D.weights[n.n]; row(t, 'type', w.type); row(t, 'bytes', fmtBytes(w.bytes)); }
  if (nodes === D.nodes || D.kernels[n.n]) {
    const k = D.kernels[n.n];
    if (k) {
      row(t, 'kernel', k.symbol);
      row(t, 'kernel kind', k.kind);
      row(t, 'kernel spec', k.desc);
      row(t, 'CPU tier', M.kind === 'bundle' ? (M.host_tier || 'none on this host') + ' (this host; sets: ' + M.tiers.join(', ') + ')'
        : 'not compiled (this host\'s best: ' + M.host_tier + ')');
    } else if (!n.c && nodes === D.nodes) row(t, 'kernel', 'none (a view or I/O: no call)');
    const a = D.arena[n.n];
    if (a) {
      row(t, 'arena offset', a.offset + ' (' + fmtBytes(a.bytes) + ')');
      row(t, 'live steps', a.first + '..' + a.last + (a.in_place_of ? ', in place of ' + a.in_place_of : '') + (a.view ? ', view' : ''));
    }
    const p = profileByNode.get(n.n);
    if (p) {
      row(t, 'measured time', (p.ms * 1000).toFixed(1) + ' \u00b5s per step (' + (100 * p.share).toFixed(1) + ' %)');
      row(t, 'bandwidth', p.gbps.toFixed(2) + ' GB/s (' + (100 * p.bw_fraction).toFixed(0) + ' % of measured peak)');
      row(t, 'arithmetic', p.gops.toFixed(2) + ' G ops/s (' + (100 * p.ops_fraction).toFixed(0) + ' % of measured peak)');
    }
  }
  details.append(t);
  const users = [];
  nodes.forEach((m, j) => { if (m && (m.i || []).some(x => x.split(':')[0] === n.n)) users.push(m.n); });
  if (users.length) details.append(nameList('used by', users));
}

// ---------------------------------------------------------------- search
let hits = [], hitActive = 0;
function runSearch(q) {
  results.innerHTML = ''; hits = []; hitActive = 0;
  q = q.trim().toLowerCase();
  if (!q) { results.style.display = 'none'; return; }
  D.nodes.forEach((n, i) => {
    if (n.n.toLowerCase().includes(q)) {
      if (n.c) { D.nodes.forEach((m, j) => { if (!m.c && (m.i || []).some(x => x.split(':')[0] === n.n)) hits.push([j, n.n + ' \u2192 ' + m.o + ' ' + m.n]); }); }
      else hits.push([i, n.o + ' ' + n.n + (n.l >= 0 ? '  (layer ' + n.l + ')' : '')]);
    }
  });
  hits = hits.slice(0, 200);
  hits.forEach(([i, text], k) => {
    const d = el('div', { text: text, 'data-node': D.nodes[i].n, onclick: () => goto(k) });
    results.append(d);
  });
  if (!hits.length) results.append(el('div', { text: 'no node or tensor matches' }));
  results.style.display = 'block';
  markHit();
}
function markHit() { [...results.children].forEach((d, k) => d.classList.toggle('active', k === hitActive)); }
function goto(k) {
  if (!hits[k]) return;
  const i = hits[k][0];
  const n = D.nodes[i];
  results.style.display = 'none';
  if (n.l >= 0 && M.layers > 0) { state.layer = n.l; layerSel.value = n.l; state.view = 'expanded'; }
  showModel();
  // The chosen layer's node, drawn as its layer-0 counterpart.
  state.sel = i; markSelected(i); showNode(D.nodes, i);
}
search.addEventListener('input', () => runSearch(search.value));
search.addEventListener('keydown', e => {
  if (e.key === 'ArrowDown') { hitActive = Math.min(hitActive + 1, hits.length - 1); markHit(); e.preventDefault(); }
  else if (e.key === 'ArrowUp') { hitActive = Math.max(hitActive - 1, 0); markHit(); e.preventDefault(); }
  else if (e.key === 'Enter') { goto(hitActive); search.blur(); }
  else if (e.key === 'Escape') { results.style.display = 'none'; search.blur(); }
});

// ---------------------------------------------------------------- keyboard
function moveSel(d) {
  const ids = state.order.filter(x => x !== 'fold');
  if (!ids.length) return;
  let cur = -1;
  const selEl = graph.querySelector('g.node.sel');
  if (selEl) cur = ids.indexOf(selEl.id);
  const next = Math.max(0, Math.min(ids.length - 1, cur + d));
  select(+ids[next].slice(1));
}
document.addEventListener('keydown', e => {
  if (e.target === search || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === '/') { search.focus(); e.preventDefault(); }
  else if (e.key === 'j' || e.key === 'ArrowDown') { moveSel(1); e.preventDefault(); }
  else if (e.key === 'k' || e.key === 'ArrowUp') { moveSel(-1); e.preventDefault(); }
  else if (e.key === 'e' && M.layers > 0) setFold(state.view !== 'folded');
  else if (e.key === ']') showStep(state.step + 1);
  else if (e.key === '[') showStep(state.step < 0 ? D.steps.length - 1 : state.step - 1);
  else if (e.key === '.' && M.layers > 0) setLayer(Math.min(state.layer + 1, M.layers - 1));
  else if (e.key === ',' && M.layers > 0) setLayer(Math.max(state.layer - 1, 0));
  else if (e.key === 'a' && state.step >= 0) { state.after = !state.after; showStep(state.step); }
  else if (e.key === 'Escape') showModel();
});
function setLayer(k) {
  state.layer = k; layerSel.value = k;
  if (state.sel >= 0 && D.nodes[state.sel] && D.nodes[state.sel].l >= 0) {
    const p = posInLayer.get(state.sel);
    if (p != null && layerNodes[k] && p < layerNodes[k].length) { state.sel = layerNodes[k][p]; showNode(D.nodes, state.sel); }
  }
}
layerSel.addEventListener('change', () => setLayer(+layerSel.value));
foldBtn.addEventListener('click', () => setFold(state.view !== 'folded'));
modelBtn.addEventListener('click', showModel);
beforeAfter.addEventListener('click', () => { state.after = !state.after; showStep(state.step); });

buildSteps();
showModel();
details.append(el('p', { text: 'Click a node for its details; click the decoder block to expand it; choose a pipeline step on the left to see what it changed.' }));
document.body.setAttribute('data-ready', '1');
)JS";

}  // namespace ingot
