// A screenshot of an `ingotc viz` page for the docs (docs/images/): loads PAGE, optionally expands
// the decoder block, selects the first drawn node whose name or op is SELECT (or that reads SELECT), or opens pipeline step
// STEP; then saves OUT.png.
// usage: node screenshot.mjs PAGE.html OUT.png [--expand] [--select TEXT] [--step PASS] [--width W --height H]
import puppeteer from 'puppeteer-core';
import { pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const [page_path, out] = args;
const opt = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : null; };
const browser = await puppeteer.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu'],
  defaultViewport: { width: Number(opt('--width') || 1400), height: Number(opt('--height') || 900) } });
const page = await browser.newPage();
await page.goto(pathToFileURL(page_path).href, { waitUntil: 'load' });
await page.waitForSelector('body[data-ready="1"]');
if (args.includes('--expand')) await page.click('g.node#fold');
const sel = opt('--select');
if (sel) {
  const id = await page.evaluate((sel) => {
    const D = JSON.parse(document.getElementById('ingot-data').textContent);
    for (const g of document.querySelectorAll('g.node')) {
      if (!g.id.startsWith('n')) continue;
      const n = D.nodes[+g.id.slice(1)];
      if (n.n === sel || n.o === sel || (n.i || []).includes(sel)) return g.id;
    }
    return null;
  }, sel);
  if (!id) { console.error('no drawn node matches ' + sel); process.exit(1); }
  await page.click('g.node#' + id);
}
const step = opt('--step');
if (step) await page.click(`#steps .step[data-step="${step}"]`);
await page.screenshot({ path: out });
await browser.close();
