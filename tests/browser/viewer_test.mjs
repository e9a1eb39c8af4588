// Drives the page `ingotc viz` wrote in headless Chromium (the system /usr/bin/chromium, through
// the DevTools protocol with puppeteer-core) and asserts what issue 19 asks of it.
//
// usage: node viewer_test.mjs PAGE.html LAYERS MATMUL_WEIGHT_TYPE SCREENSHOT_PREFIX [bundle]
//   LAYERS: the decoder layers the folded block must show (x5, x22)
//   MATMUL_WEIGHT_TYPE: the weight type the first matmul of a layer must report (q4_0, f32, ...)
//   bundle: the page is a bundle's with a profile (ingotc viz BUNDLE --profile): instead of the
//   pipeline steps (a bundle has none), the profile's panel and node fill are checked
// Exit status 0 when every check passes; otherwise each failure is printed and the status is 1.
import puppeteer from 'puppeteer-core';
import { pathToFileURL } from 'node:url';
import { statSync } from 'node:fs';

const [page_path, layers_arg, weight_type, shot_prefix, mode] = process.argv.slice(2);
const bundle = mode === 'bundle';
if (!shot_prefix) {
  console.error('usage: node viewer_test.mjs PAGE.html LAYERS MATMUL_WEIGHT_TYPE SCREENSHOT_PREFIX');
  process.exit(2);
}
const layers = Number(layers_arg);
const url = pathToFileURL(page_path).href;
const failures = [];
function check(ok, what) {
  console.log((ok ? 'ok   ' : 'FAIL ') + what);
  if (!ok) failures.push(what);
}

const bytes = statSync(page_path).size;
check(bytes < 5 * 1024 * 1024, `page size ${(bytes / 1048576).toFixed(2)} MiB < 5 MiB`);

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  defaultViewport: { width: 1600, height: 1000 },
});
try {
  const page = await browser.newPage();
  const console_errors = [], network = [];
  page.on('console', m => { if (m.type() === 'error') console_errors.push(m.text()); });
  page.on('pageerror', e => console_errors.push('page error: ' + e.message));
  await page.setRequestInterception(true);
  page.on('request', r => {
    // The page itself is the only request allowed; anything else (http, another file) is a failure.
    if (r.url() === url || r.url().startsWith('data:')) r.continue();
    else { network.push(r.url()); r.abort(); }
  });

  const t0 = Date.now();
  try {
    await page.goto(url, { waitUntil: 'load', timeout: 10000 });
    await page.waitForSelector('body[data-ready="1"]', { timeout: 10000 });
  } catch (e) {
    check(false, `the page becomes ready (${e.message})`);
    check(console_errors.length === 0, `no console error (${console_errors.join(' | ')})`);
    check(network.length === 0, `no network request (${network.join(', ')})`);
    throw new Error('the page did not load');
  }
  const load_ms = Date.now() - t0;
  check(load_ms < 2000, `page loads and is ready in ${load_ms} ms < 2000 ms`);

  // ------------------------------------------------------------ the folded view
  const folded = await page.evaluate(() => {
    const fold = document.querySelectorAll('g.node#fold');
    const drawn = [...document.querySelectorAll('g.node')].map(g => g.id).filter(id => id.startsWith('n'));
    const D = JSON.parse(document.getElementById('ingot-data').textContent);
    return { count: fold.length, text: fold.length ? fold[0].textContent.replace(/\s+/g, ' ').trim() : '',
             layer_nodes_drawn: drawn.filter(id => D.nodes[+id.slice(1)].l >= 0).length };
  });
  check(folded.count === 1, `folded view has one decoder block (found ${folded.count})`);
  check(folded.text.includes('x' + layers), `the block is labelled x${layers} ("${folded.text}")`);
  check(folded.layer_nodes_drawn === 0, `no layer node is drawn outside the block (${folded.layer_nodes_drawn})`);
  await page.screenshot({ path: shot_prefix + '-folded.png' });

  // ------------------------------------------------------------ expanding it
  await page.click('g.node#fold');
  const expanded = await page.evaluate(() => {
    const D = JSON.parse(document.getElementById('ingot-data').textContent);
    const cl = document.getElementById('clust_layer');
    if (!cl) return null;
    const box = cl.getBoundingClientRect();
    const ops = new Set(), outside = [];
    for (const g of document.querySelectorAll('g.node')) {
      if (!g.id.startsWith('n')) continue;
      const n = D.nodes[+g.id.slice(1)];
      if (n.l !== 0) continue;
      ops.add(n.o);
      const r = g.getBoundingClientRect();
      if (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1) outside.push(n.n);
    }
    return { label: cl.textContent.replace(/\s+/g, ' ').trim(), ops: [...ops], outside };
  });
  check(expanded !== null, 'clicking the block expands it into a layer cluster');
  if (expanded) {
    check(expanded.label.includes('x' + layers), `the cluster is labelled with x${layers} ("${expanded.label}")`);
    for (const op of ['RMSNorm', 'FusedMatMul', 'Attention'])
      check(expanded.ops.includes(op), `the expanded layer shows fused op ${op} (ops: ${expanded.ops.join(', ')})`);
    check(expanded.outside.length === 0, `every layer-0 node lies inside the cluster (${expanded.outside.join(', ')})`);
  }

  // ------------------------------------------------------------ clicking a matmul
  const matmul = await page.evaluate(() => {
    const D = JSON.parse(document.getElementById('ingot-data').textContent);
    for (const g of document.querySelectorAll('g.node')) {
      if (!g.id.startsWith('n')) continue;
      const n = D.nodes[+g.id.slice(1)];
      if (n.l === 0 && (n.o === 'FusedMatMul' || n.o === 'WeightMatMul' || n.o === 'MatMul')) return { id: g.id, name: n.n };
    }
    return null;
  });
  check(matmul !== null, 'the expanded layer has a matmul node');
  if (matmul) {
    await page.click('g.node#' + matmul.id);
  }
  if (matmul) {
    const rows = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll('#node-table tr')]
      .map(tr => [tr.children[0].textContent, tr.children[1].textContent])));
    const title = await page.$eval('#node-title', e => e.textContent);
    check(title === matmul.name, `clicking ${matmul.name} shows its details (title "${title}")`);
    check((rows['weight type'] || '').split(' ')[0] === weight_type, `its weight type is ${weight_type} ("${rows['weight type']}")`);
    check(/\d/.test(rows['weight bytes'] || ''), `its weight bytes are shown ("${rows['weight bytes']}")`);
    check(rows['kernel kind'] === 'matmul', `its kernel is a matmul ("${rows['kernel kind']}")`);
    check((rows['kernel spec'] || '').startsWith('matmul ' + weight_type) || (rows['kernel spec'] || '').startsWith(weight_type),
          `its kernel spec names the weight type ("${rows['kernel spec']}")`);
    check(!!rows['kernel'] && !!rows['CPU tier'], `kernel and CPU tier rows ("${rows['kernel']}", "${rows['CPU tier']}")`);
    check(/^\d+ /.test(rows['arena offset'] || ''), `its arena offset is shown ("${rows['arena offset']}")`);
    const sel = await page.$eval('g.node#' + matmul.id, g => g.classList.contains('sel'));
    check(sel, 'the clicked node is marked selected');
  }
  await page.screenshot({ path: shot_prefix + '.png' });

  // ------------------------------------------------------------ keyboard and search
  const before_title = await page.$eval('#node-title', e => e.textContent).catch(() => '');
  await page.keyboard.press('j');
  const after_title = await page.$eval('#node-title', e => e.textContent).catch(() => '');
  check(after_title !== '' && after_title !== before_title, `j moves to the next node ("${before_title}" -> "${after_title}")`);
  await page.keyboard.press('/');
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
  check(focused === 'search', '/ focuses the search box');
  await page.keyboard.type('attn_output');
  const hits = await page.$$eval('#results div[data-node]', ds => ds.length);
  check(hits >= layers, `searching "attn_output" finds a node per layer (${hits})`);
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  const found = await page.evaluate(() => ({ title: document.getElementById('node-title')?.textContent,
    table: document.getElementById('node-table')?.textContent || '' }));
  check(found.table.includes('attn_output'), `Enter on a result shows a node reading attn_output ("${found.title}")`);
  const layer_shown = await page.$eval('#layer', s => s.value);
  check(layer_shown === '1', `the second result is in layer 1 and the layer selector follows (${layer_shown})`);

  // ------------------------------------------------------------ a bundle's profile
  if (bundle) {
    await page.keyboard.press('Escape');
    const prof = await page.evaluate(() => ({
      rows: document.querySelectorAll('#profile-table tr').length,
      filled: [...document.querySelectorAll('g.node[data-share]')].length,
      kernel: document.getElementById('node-table')?.textContent || '',
      steps: document.querySelectorAll('#steps .step').length }));
    check(prof.rows > 1, `the profile panel lists the kernels (${prof.rows - 1})`);
    check(prof.filled > 0, `drawn nodes are filled by their time share (${prof.filled})`);
    check(prof.steps === 0, 'a bundle has no pipeline steps to show');
    if (matmul) {
      await page.click('g.node#' + matmul.id);
      const rows = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll('#node-table tr')]
        .map(tr => [tr.children[0].textContent, tr.children[1].textContent])));
      check(/ingot_k\d+_matmul/.test(rows['kernel'] || ''), `a bundle's matmul names its compiled kernel ("${rows['kernel']}")`);
      check(/µs per step/.test(rows['measured time'] || ''), `and its measured time ("${rows['measured time']}")`);
      check(/GB\/s/.test(rows['bandwidth'] || ''), `and its bandwidth ("${rows['bandwidth']}")`);
    }
    await page.screenshot({ path: shot_prefix + '-profile.png' });
  }

  // ------------------------------------------------------------ the fusion pass
  await page.keyboard.press('Escape');
  for (const pass of bundle ? [] : ['fuse-rms-norm', 'fuse-attention']) {
    await page.click(`#steps .step[data-step="${pass}"]`);
    const r = await page.evaluate((pass) => {
      const D = JSON.parse(document.getElementById('ingot-data').textContent);
      const i = D.steps.findIndex(s => s.name === pass);
      const s = D.steps[i];
      let before = -1;
      for (let j = i - 1; j >= 0; j--) if (D.steps[j].snap >= 0) { before = D.steps[j].snap; break; }
      const snap = D.snaps[before].nodes;
      const hl = [...document.querySelectorAll('g.node.hl-removed')].map(g => snap[+g.id.slice(1)]);
      const removed = new Set(s.removed);
      const drawn_removed = snap.filter(n => n && !n.c && n.l <= 0 && removed.has(n.n) &&
        document.getElementById('n' + snap.indexOf(n))).length;
      return { removed: s.removed.length, hl: hl.map(n => n.n), hl_ops: [...new Set(hl.map(n => n.o))],
               all_removed: hl.every(n => removed.has(n.n)), drawn_removed,
               banner: document.getElementById('banner').textContent };
    }, pass);
    check(r.hl.length > 0, `${pass}: ${r.hl.length} replaced nodes highlighted (${r.removed} removed in all layers)`);
    check(r.all_removed, `${pass}: every highlighted node is one the pass removed`);
    check(r.hl.length === r.drawn_removed, `${pass}: every removed node drawn is highlighted (${r.hl.length} of ${r.drawn_removed})`);
    check(r.hl_ops.every(o => !['RMSNorm', 'Attention', 'FusedMatMul'].includes(o)) || pass !== 'fuse-rms-norm',
          `${pass}: the replaced nodes are the primitive ops (${r.hl_ops.join(', ')})`);
    if (pass === 'fuse-rms-norm') {
      await page.screenshot({ path: shot_prefix + '-pass.png' });
      await page.click('#before-after');
      const added = await page.evaluate(() => {
        const D = JSON.parse(document.getElementById('ingot-data').textContent);
        const s = D.steps.find(s => s.name === 'fuse-rms-norm');
        const snap = D.snaps[s.snap].nodes;
        return [...document.querySelectorAll('g.node.hl-added')].map(g => snap[+g.id.slice(1)].o);
      });
      check(added.length > 0 && added.every(o => o === 'RMSNorm'), `fuse-rms-norm, after: the added nodes are RMSNorm (${added.join(', ')})`);
      await page.click('#before-after');
    }
  }

  check(console_errors.length === 0, `no console error (${console_errors.join(' | ')})`);
  check(network.length === 0, `no network request (${network.join(', ')})`);
} catch (e) {
  if (!failures.length) failures.push(e.message);
  console.error('FAIL ' + e.message);
} finally {
  await browser.close();
}
if (failures.length) {
  console.error(`${failures.length} check(s) failed`);
  process.exit(1);
}
console.log('all checks passed');
