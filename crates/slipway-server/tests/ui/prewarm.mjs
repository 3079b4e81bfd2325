// The pre-warming page in real headless Chromium: a job's node × image grid shows what the
// nodes' agents reported (phase, bytes, error) and follows changes live. Run by
// crates/slipway/tests/cli/ui.rs against a server whose controller spread job JOB over two
// nodes; this script plays node-b's agent to change its status while the page is open.
//
// Env: BASE_URL, SLIPWAY_TOKEN, JOB, ARTIFACTS, SLIPWAY_UI_NODE_MODULES (see e2e.mjs).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const BASE = (process.env.BASE_URL || '').replace(/\/$/, '');
const TOKEN = process.env.SLIPWAY_TOKEN || '';
const JOB = process.env.JOB || '';
const ART = process.env.ARTIFACTS || join(tmpdir(), 'slipway-ui-artifacts');
mkdirSync(ART, { recursive: true });
const modules = process.env.SLIPWAY_UI_NODE_MODULES || join(homedir(), '.cache/slipway/ui-node/node_modules');
const { chromium } = await import(pathToFileURL(join(modules, 'playwright-core', 'index.mjs')).href);
const deadline = setTimeout(() => { console.error('FAIL: did not finish within 90 s'); process.exit(1); }, 90_000);

function assert(cond, message) { if (!cond) throw new Error(message); }
async function api(path, init = {}) {
  const headers = new Headers(init.headers || {});
  headers.set('Authorization', `Bearer ${TOKEN}`);
  const res = await fetch(BASE + path, { ...init, headers });
  const text = await res.text();
  assert(res.ok, `${init.method || 'GET'} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

const userData = mkdtempSync(join(tmpdir(), 'slipway-ui-chromium-'));
const context = await chromium.launchPersistentContext(userData, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  viewport: { width: 1200, height: 700 },
});
const page = context.pages()[0] || await context.newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(e.message));
let failed = false;
try {
  await page.goto(`${BASE}/ui/prewarm#token=${encodeURIComponent(TOKEN)}`);
  await page.getByTestId('prewarm-job').filter({ hasText: JOB }).waitFor({ timeout: 15_000 });
  await page.getByRole('link', { name: JOB }).click();
  await page.getByTestId('prewarm-grid').waitFor({ timeout: 15_000 });
  const cell = (node) => page.locator(`[data-testid="prewarm-row"][data-node="${node}"] [data-testid="prewarm-cell"]`);
  await cell('node-a').and(page.locator('[data-phase="Succeeded"]')).waitFor({ timeout: 15_000 });
  const a = await cell('node-a').innerText();
  assert(a.includes('125.9 MB / 125.9 MB'), `node-a shows ${a}`);
  const b = await cell('node-b').innerText();
  assert(b.includes('Pulling') && b.includes('50.0 MB / 125.9 MB'), `node-b shows ${b}`);
  await page.screenshot({ path: join(ART, 'prewarm-job.png'), fullPage: true });

  // node-b's agent reports a failure: the page shows it without a reload.
  const ni = await api('/apis/apps.kruise.io/v1alpha1/nodeimages/node-b');
  for (const image of Object.values(ni.status.imageStatuses)) {
    for (const t of image.tags) {
      t.phase = 'Failed';
      t.message = 'failed to resolve reference: not found';
      t.completionTime = new Date().toISOString();
    }
  }
  delete ni.metadata.resourceVersion;
  await api('/apis/apps.kruise.io/v1alpha1/nodeimages/node-b/status', {
    method: 'PUT', body: JSON.stringify(ni), headers: { 'Content-Type': 'application/json' },
  });
  // The controller retries a failed node after a backoff; the failure shows either way.
  await cell('node-b').getByTestId('prewarm-error').waitFor({ timeout: 10_000 });
  const err = await cell('node-b').getByTestId('prewarm-error').innerText();
  assert(err.includes('failed to resolve reference: not found'), `node-b's error reads ${err}`);
  await page.screenshot({ path: join(ART, 'prewarm-job-failed.png'), fullPage: true });
  assert(!errors.length, errors.join('\n'));
  console.log('ok: the pre-warming page shows the grid and follows it live');
} catch (e) {
  failed = true;
  console.error(`FAIL: ${e.message}`);
  await page.screenshot({ path: join(ART, 'fail-prewarm.png'), fullPage: true }).catch(() => {});
}
await context.close();
rmSync(userData, { recursive: true, force: true });
clearTimeout(deadline);
process.exit(failed ? 1 : 0);
