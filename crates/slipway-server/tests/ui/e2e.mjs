// End-to-end test of Slipway's web UI in real headless Chromium (Debian's /usr/bin/chromium driven
// by playwright-core; see scripts/ui-env.sh). Run by crates/slipway/tests/cli/ui.rs against a
// server seeded with real runs; it can also be run by hand:
//
//   BASE_URL=http://127.0.0.1:7999 ARTIFACTS=/tmp/ui node crates/slipway-server/tests/ui/e2e.mjs
//
// Env: BASE_URL (required), SLIPWAY_TOKEN (the server's admin token, printed at its first start;
// empty for a server run with --no-auth), ARTIFACTS (screenshot dir), SLIPWAY_UI_NODE_MODULES or
// NODE_PATH (where playwright-core is), RUN_OK / RUN_FAIL / RUN_LIVE / RUN_SOLO (seeded run names),
// SLIPWAY_BIN and SLIPWAY_SERVER_HOME (the binary and the server's data directory, for the check that
// revokes a token while its log stream is open).
// A missing endpoint is a failure: every check runs against the real server.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, homedir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const BASE = (process.env.BASE_URL || '').replace(/\/$/, '');
if (!BASE) { console.error('BASE_URL is required'); process.exit(2); }
const ART = process.env.ARTIFACTS || join(tmpdir(), 'slipway-ui-artifacts');
mkdirSync(ART, { recursive: true });
const RUN_OK = process.env.RUN_OK || 'ui-fanin';
const RUN_FAIL = process.env.RUN_FAIL || 'ui-broken';
const RUN_LIVE = process.env.RUN_LIVE || 'ui-live';
const RUN_SOLO = process.env.RUN_SOLO || 'ui-solo';
const RUN_OTHER_NS = process.env.RUN_OTHER_NS || 'ui-elsewhere'; // a TaskRun in namespace ui-team
const TOKEN = process.env.SLIPWAY_TOKEN || '';
// The binary and the server's data directory, to make and revoke tokens as an operator would.
const BIN = process.env.SLIPWAY_BIN || '';
const SERVER_HOME = process.env.SLIPWAY_SERVER_HOME || '';

// The test's own API calls carry the token, as the CLI's do.
function apiFetch(url, init = {}) {
  const headers = new Headers(init.headers || {});
  if (TOKEN) headers.set('Authorization', `Bearer ${TOKEN}`);
  return fetch(url, { ...init, headers });
}

const modules = process.env.SLIPWAY_UI_NODE_MODULES || (process.env.NODE_PATH || '').split(':').find(Boolean)
  || join(homedir(), '.cache/slipway/ui-node/node_modules');
const { chromium } = await import(pathToFileURL(join(modules, 'playwright-core', 'index.mjs')).href);

// The whole run has a deadline so that a hang fails clearly instead of stalling the suite.
const deadline = setTimeout(() => { console.error('FAIL: e2e did not finish within 240 s'); process.exit(1); }, 240_000);

const results = { passed: 0, failed: 0, skipped: 0 };
const failures = [];
const pageErrors = [];

class Skip extends Error {}
const skipMissing = (what) => { throw new Error(`endpoint missing: ${what}`); };

function assert(cond, message) { if (!cond) throw new Error(message); }

async function status(path, init) {
  const res = await apiFetch(BASE + path, init);
  await res.arrayBuffer();
  return res.status;
}

async function waitFor(what, fn, timeout = 10_000, every = 200) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

const userData = mkdtempSync(join(tmpdir(), 'slipway-ui-chromium-'));
const context = await chromium.launchPersistentContext(userData, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
  viewport: { width: 1400, height: 900 },
  acceptDownloads: true,
  colorScheme: 'light',
});
const page = context.pages()[0] || await context.newPage();
page.setDefaultTimeout(10_000);
page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));

async function shot(name) { await page.screenshot({ path: join(ART, `${name}.png`), fullPage: true }); }

async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.passed += 1;
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    if (e instanceof Skip) { results.skipped += 1; console.log(`${e.message} — ${name}`); return; }
    results.failed += 1;
    failures.push(`${name}: ${e.message}`);
    console.log(`FAIL ${name}: ${e.message}`);
    await page.screenshot({ path: join(ART, `fail-${name.replace(/\W+/g, '-')}.png`), fullPage: true }).catch(() => {});
  }
}

const row = (name) => page.locator(`[data-testid="run-row"][data-name="${name}"]`);
const node = (task) => page.locator(`[data-testid="dag-node"][data-task="${task}"]`);
const visibleRowNames = () => page.locator('[data-testid="run-row"]').evaluateAll((rs) => rs.map((r) => r.dataset.name));

// ---------------------------------------------------------------------------------------------
const stored = () => page.evaluate(() => localStorage.getItem('slipway.token'));

await check('login page: without a token the UI asks for one', async () => {
  if (!TOKEN) throw new Skip('skipped: the server runs with --no-auth');
  await page.goto(`${BASE}/ui/`);
  await page.getByTestId('login-page').waitFor();
  assert(await page.locator('[data-testid="run-row"]').count() === 0, 'runs are shown without a token');
  await shot('login');
});

await check('login page: a wrong or revoked token is refused with a clear message', async () => {
  if (!TOKEN) throw new Skip('skipped: the server runs with --no-auth');
  await page.getByTestId('login-token').fill('slw_0000wrong');
  await page.getByTestId('login-submit').click();
  const error = page.getByTestId('login-error');
  await error.waitFor({ state: 'visible' });
  assert(/not valid/.test(await error.innerText()), `error: ${await error.innerText()}`);
  assert(await stored() === null, 'a wrong token was kept');
  // A token kept from before that the server no longer knows: the login page says so.
  await page.evaluate(() => localStorage.setItem('slipway.token', 'slw_revoked'));
  await page.goto(`${BASE}/ui/`);
  const message = page.getByTestId('login-message');
  await message.waitFor();
  assert(/refused the stored token/.test(await message.innerText()), `message: ${await message.innerText()}`);
  await page.evaluate(() => localStorage.removeItem('slipway.token'));
});

await check('the printed #token= link signs in and leaves the address bar', async () => {
  if (!TOKEN) throw new Skip('skipped: the server runs with --no-auth');
  // Opened as a new page, as the link printed in a terminal is.
  await page.goto('about:blank');
  await page.goto(`${BASE}/ui/#token=${TOKEN}`);
  await row(RUN_OK).waitFor();
  assert(!page.url().includes('token'), `the token stays in the address bar: ${page.url()}`);
  assert(await stored() === TOKEN, 'the token was not kept');
  await waitFor('who is signed in', async () => /admin \(write\)/.test(await page.getByTestId('who').innerText()));
  assert(await page.getByTestId('logout').isVisible(), 'no logout button');
  const history = await page.evaluate(() => history.length);
  await page.goBack().catch(() => {});
  assert(!page.url().includes('token'), `the token is in the history (${history} entries): ${page.url()}`);
});

// ---------------------------------------------------------------------------------------------
await check('seeded runs are served, the live one is printing', async () => {
  for (const r of [RUN_OK, RUN_FAIL, RUN_SOLO]) {
    const kind = r === RUN_SOLO ? 'taskruns' : 'pipelineruns';
    assert(await status(`/apis/tekton.dev/v1/namespaces/default/${kind}/${r}`) === 200, `${r} is not served`);
  }
  await waitFor(`${RUN_LIVE} to print`, async () => (await (await apiFetch(`${BASE}/api/v1/runs/${RUN_LIVE}/logs`)).text()).includes('tick'), 30_000);
});

await check('live run: status running, new log lines arrive, follow keeps the end in view', async () => {
  await page.goto(`${BASE}/ui/runs/${RUN_LIVE}`);
  await page.locator('[data-testid="run-head"] [data-testid="status-badge"][data-status="running"]').waitFor();
  await page.locator('[data-testid="dag-node"][data-task="ticker"][data-status="running"]').waitFor();
  const lines = page.locator('[data-testid="log-view"] [data-testid="log-line"]');
  await waitFor('first log lines', async () => (await lines.count()) > 0);
  const before = await lines.count();
  await waitFor('new log lines while following', async () => (await lines.count()) >= before + 3, 8_000);
  assert(await page.getByTestId('log-follow').getAttribute('aria-pressed') === 'true', 'follow is not on');
  // Wait until the log overflows its box, then check the newest line is in view.
  await waitFor('the log to overflow', () => page.getByTestId('log-view').evaluate((v) => v.scrollHeight > v.clientHeight + 40), 25_000);
  await page.waitForTimeout(700);
  const atEnd = await page.getByTestId('log-view').evaluate((v) => v.scrollTop + v.clientHeight >= v.scrollHeight - 40);
  assert(atEnd, 'follow did not keep the newest line in view');
  const text = await lines.last().innerText();
  assert(/tick \d+/.test(text), `unexpected live line: ${text}`);
  const colored = await page.locator('[data-testid="log-view"] .ansi-fg-2').count();
  assert(colored > 0, 'the green "tick" of the live run is not coloured');
  await shot('run-live');
});

await check('runs list shows the seeded runs with their statuses', async () => {
  await page.goto(`${BASE}/ui/`);
  await row(RUN_OK).waitFor();
  const want = { [RUN_OK]: 'succeeded', [RUN_FAIL]: 'failed', [RUN_SOLO]: 'succeeded' };
  for (const [name, st] of Object.entries(want)) {
    assert(await row(name).getAttribute('data-status') === st, `${name} should be ${st}, is ${await row(name).getAttribute('data-status')}`);
  }
  const live = await row(RUN_LIVE).getAttribute('data-status');
  assert(live === 'running' || live === 'cancelled' || live === 'succeeded', `${RUN_LIVE} has status ${live}`);
  assert(await row(RUN_SOLO).getAttribute('data-kind') === 'TaskRun', `${RUN_SOLO} is not listed as a TaskRun`);
  const failColor = await row(RUN_FAIL).locator('.status').evaluate((e) => getComputedStyle(e).color);
  assert(failColor === 'rgb(207, 34, 46)', `failed status colour is ${failColor}`);
  assert(await row(RUN_FAIL).locator('.status').innerText() === 'Failed', 'failed label');
  await shot('runs');
});

await check('runs list filters by status, text and kind, in the URL', async () => {
  await page.goto(`${BASE}/ui/`);
  await row(RUN_OK).waitFor();
  await page.getByTestId('filter-status-failed').click();
  await waitFor('only failed rows', async () => {
    const names = await visibleRowNames();
    return names.length > 0 && names.includes(RUN_FAIL) && !names.includes(RUN_OK);
  });
  assert(new URL(page.url()).searchParams.get('status') === 'failed', `URL has no status filter: ${page.url()}`);
  await page.reload();
  await row(RUN_FAIL).waitFor();
  assert(await page.getByTestId('filter-status-failed').getAttribute('aria-pressed') === 'true', 'status filter lost on reload');
  assert(!(await visibleRowNames()).includes(RUN_OK), 'succeeded run shown under Failed after reload');
  await page.getByTestId('filter-status-all').click();
  await page.getByTestId('filter-text').fill(RUN_OK.slice(3));
  await waitFor('text filter', async () => { const n = await visibleRowNames(); return n.length === 1 && n[0] === RUN_OK; });
  assert(new URL(page.url()).searchParams.get('q') === RUN_OK.slice(3), 'text filter is not in the URL');
  await page.getByTestId('filter-text').fill('');
  await page.getByTestId('filter-kind').selectOption('TaskRun');
  await waitFor('kind filter', async () => { const n = await visibleRowNames(); return n.length >= 1 && n.includes(RUN_SOLO) && !n.includes(RUN_OK); });
  await shot('runs-filtered');
});

await check('run page: DAG nodes, edges, matrix fan-out and critical path', async () => {
  await page.goto(`${BASE}/ui/runs/${RUN_OK}`);
  await node('package').waitFor();
  const nodes = await page.locator('[data-testid="dag-node"]').evaluateAll((ns) => ns.map((n) => [n.dataset.task, n.dataset.status, n.dataset.critical]));
  const names = nodes.map((n) => n[0]).sort();
  assert(JSON.stringify(names) === JSON.stringify(['build', 'fetch', 'lint', 'package', 'report']), `nodes: ${names}`);
  for (const [t, st] of nodes) assert(st === 'succeeded', `${t} is ${st}`);
  const edges = await page.locator('[data-testid="dag-edge"]').evaluateAll((es) => es.map((e) => `${e.dataset.from}>${e.dataset.to}:${e.dataset.kind}`));
  for (const e of ['fetch>build:order', 'fetch>lint:order', 'build>package:order', 'lint>package:order', 'fetch>package:data', 'package>report:data']) {
    assert(edges.includes(e), `missing edge ${e}; have ${edges}`);
  }
  assert(edges.length === 6, `unexpected edges: ${edges}`);
  const crit = Object.fromEntries(nodes.map(([t, , c]) => [t, c === 'true']));
  assert(crit.fetch && crit.build && crit.package && crit.report && !crit.lint, `critical path: ${JSON.stringify(crit)}`);
  const critEdges = await page.locator('[data-testid="dag-edge"][data-critical="true"]').evaluateAll((es) => es.map((e) => `${e.dataset.from}>${e.dataset.to}`));
  assert(critEdges.includes('build>package') && !critEdges.includes('lint>package'), `critical edges: ${critEdges}`);
  const stroke = await page.locator('[data-testid="dag-edge"][data-from="build"][data-to="package"]').evaluate((e) => getComputedStyle(e).stroke);
  assert(stroke === 'rgb(217, 72, 15)', `critical edge colour is ${stroke}`);
  const list = await page.getByTestId('critical-list').innerText();
  assert(/fetch[\s\S]*build[\s\S]*package[\s\S]*report/.test(list), `critical path list: ${list}`);
  assert((await node('build').textContent()).includes('2 runs'), 'matrix node does not say 2 runs');
  const dur = Number(await node('build').getAttribute('data-duration'));
  assert(dur >= 1000, `build duration ${dur} ms`);
  await node('build').click();
  await page.locator('[data-testid="instance"]').nth(1).waitFor();
  assert(await page.locator('[data-testid="instance"]').count() === 2, 'two matrix TaskRuns expected');
  await page.locator('[data-testid="instance"]').nth(1).click();
  await waitFor('the second instance log', async () => (await page.getByTestId('log-view').innerText()).includes('building for'));
  assert(new URL(page.url()).searchParams.get('task') === 'build', 'selection is not in the URL');
  await node('package').focus();
  await page.keyboard.press('Enter');
  await waitFor('keyboard selection', async () => (await page.getByTestId('task-head').innerText()).includes('package'));
  assert((await page.getByTestId('run-params').innerText()).includes('platforms'), 'params table lacks platforms');
  assert((await page.getByTestId('run-results').innerText()).includes('abc123'), 'results table lacks the pipeline result');
  await shot('run-succeeded');
});

await check('run page: failed node is red, ANSI colours render, download works', async () => {
  await page.goto(`${BASE}/ui/runs/${RUN_FAIL}`);
  await node('unit-tests').waitFor();
  assert(await node('unit-tests').getAttribute('data-status') === 'failed', 'unit-tests is not failed');
  assert(await node('deploy').getAttribute('data-status') === 'skipped', 'deploy is not skipped');
  assert(await node('cleanup').getAttribute('data-finally') === 'true', 'cleanup is not a finally task');
  const box = await node('unit-tests').locator('rect.box').evaluate((r) => getComputedStyle(r).stroke);
  assert(box === 'rgb(207, 34, 46)', `failed node outline is ${box}`);
  assert(await page.locator('[data-testid="run-head"] [data-testid="status-badge"]').getAttribute('data-status') === 'failed', 'run badge');
  // The failed task is selected on arrival, with its failed step's log.
  await waitFor('the failed step log', async () => (await page.getByTestId('log-view').innerText()).includes('red'));
  const red = page.locator('[data-testid="log-view"] .ansi-fg-1', { hasText: 'red' });
  assert(await red.count() === 1, 'the red text is not in a red span');
  assert(await red.evaluate((e) => getComputedStyle(e).color) === 'rgb(255, 123, 114)', 'red span colour');
  const bold = page.locator('[data-testid="log-view"] .ansi-bold', { hasText: 'bold green' });
  assert(await bold.evaluate((e) => getComputedStyle(e).fontWeight) === '700', 'bold is not bold');
  const html = await page.getByTestId('log-view').innerHTML();
  assert(!html.includes('\u001b') && !html.includes('[31m'), 'raw escape codes leaked into the page');
  assert(html.includes('&lt;b&gt;not html&lt;/b&gt;'), 'HTML in logs is not escaped');
  const [dl] = await Promise.all([page.waitForEvent('download'), page.getByTestId('log-download').click()]);
  assert(dl.suggestedFilename().endsWith('.log'), `download name ${dl.suggestedFilename()}`);
  const file = join(ART, dl.suggestedFilename());
  await dl.saveAs(file);
  const text = readFileSync(file, 'utf8');
  assert(text.includes('red') && text.includes('bold green') && !text.includes('\u001b'), `downloaded log: ${JSON.stringify(text)}`);
  assert(await page.locator('[data-testid="step-tab"][data-status="failed"]').count() === 1, 'the failed step tab');
  await shot('run-failed');
});

await check('standalone TaskRun page draws one node', async () => {
  await page.goto(`${BASE}/ui/runs/${RUN_SOLO}`);
  await node(RUN_SOLO).or(page.locator('[data-testid="dag-node"]')).first().waitFor();
  assert(await page.locator('[data-testid="dag-node"]').count() === 1, 'one node expected');
  await waitFor('solo log', async () => (await page.getByTestId('log-view').innerText()).includes('solo'));
  await shot('run-taskrun');
});

// ---- the YAML editor ----
async function openNewTask() {
  await page.goto(`${BASE}/ui/resources/new?kind=tasks`);
  await page.getByTestId('editor-input').waitFor();
  await page.waitForTimeout(100);
}
async function caretAfter(needle) {
  await page.getByTestId('editor-input').evaluate((ta, n) => {
    const i = ta.value.indexOf(n) + n.length;
    ta.focus();
    ta.setSelectionRange(i, i);
  }, needle);
}

await check('editor: completion offers Tekton fields at the cursor path', async () => {
  await openNewTask();
  await caretAfter('default: hello');
  await page.keyboard.press('Enter');
  await page.keyboard.press('Shift+Tab');
  await page.keyboard.press('Shift+Tab');
  await page.keyboard.type('wor');
  await page.getByTestId('completion').waitFor();
  const labels = await page.getByTestId('completion-item').evaluateAll((ls) => ls.map((l) => l.dataset.label));
  assert(labels.includes('workspaces'), `completion items at spec: ${labels}`);
  await shot('editor-completion');
  await page.keyboard.press('Enter');
  await waitFor('snippet offer in the new list', async () => {
    const ls = await page.getByTestId('completion-item').evaluateAll((x) => x.map((l) => l.dataset.label));
    return ls.includes('workspace') && ls.includes('name');
  }, 3_000);
  await page.keyboard.press('Escape');
  assert((await page.getByTestId('editor-input').inputValue()).includes('  workspaces:\n    - '), 'completion did not insert the field');
  // Ctrl-Space inside a step offers step fields, not ones already there.
  await caretAfter('image: alpine');
  await page.keyboard.press('Enter');
  await page.keyboard.press('Control+Space');
  await page.getByTestId('completion').waitFor();
  const stepFields = await page.getByTestId('completion-item').evaluateAll((ls) => ls.map((l) => l.dataset.label));
  assert(stepFields.includes('workingDir') && stepFields.includes('env') && !stepFields.includes('image'), `step fields: ${stepFields}`);
  await page.keyboard.press('Escape');
});

await check('editor: hovering a field shows its docs', async () => {
  await openNewTask();
  const ta = page.getByTestId('editor-input');
  const { x, y } = await ta.evaluate((el) => {
    const lines = el.value.split('\n');
    const li = lines.findIndex((l) => l.includes('image:'));
    const col = lines[li].indexOf('image') + 2;
    const probe = document.createElement('span');
    probe.textContent = 'x'.repeat(100);
    el.parentElement.querySelector('pre').append(probe);
    const cw = probe.getBoundingClientRect().width / 100;
    probe.remove();
    const r = el.getBoundingClientRect();
    return { x: r.left + 12 + col * cw, y: r.top + 8 + li * 20 + 10 };
  });
  await page.mouse.move(x, y);
  const tip = page.getByTestId('editor-tooltip');
  await tip.waitFor({ state: 'visible' });
  const text = await tip.innerText();
  assert(text.includes('image') && /container image/i.test(text), `hover text: ${text}`);
  await shot('editor-hover');
});

await check('editor: server diagnostics appear as markers while typing', async () => {
  if (await status('/api/v1/validate', { method: 'POST', body: 'kind: Task\n', headers: { 'Content-Type': 'application/yaml' } }) === 404) skipMissing('POST /api/v1/validate');
  await openNewTask();
  await caretAfter('image: alpine');
  await page.keyboard.press('Enter');
  await page.keyboard.type('imagePullPolicyy: Always', { delay: 15 });
  const marker = page.locator('[data-testid="diag-marker"]').first();
  await marker.waitFor({ timeout: 8_000 });
  assert(await page.getByTestId('gutter-marker').count() > 0, 'no gutter marker');
  const problems = await page.getByTestId('problems').innerText();
  assert(/imagePullPolicyy/.test(problems), `problems panel: ${problems}`);
  const box = await marker.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.getByTestId('editor-tooltip').waitFor({ state: 'visible' });
  await shot('editor-diagnostics');
  // Fixing the field clears the marker.
  await caretAfter('imagePullPolicyy');
  await page.keyboard.press('Backspace');
  await waitFor('the marker to clear', async () => (await page.locator('[data-testid="diag-marker"]').count()) === 0, 8_000);
});

await check('resources: create, list, open and delete a Task', async () => {
  if (await status('/apis/tekton.dev/v1/namespaces/default/tasks') === 404) skipMissing('/apis/tekton.dev/v1/namespaces/default/tasks');
  await openNewTask();
  const ta = page.getByTestId('editor-input');
  const yaml = (await ta.inputValue()).replace('name: my-task', 'name: ui-e2e-task');
  await ta.fill(yaml);
  await page.getByTestId('resource-save').click();
  await page.waitForURL(/\/ui\/resources\/tasks\/ui-e2e-task$/, { timeout: 10_000 });
  await waitFor('the stored YAML in the editor', async () => (await page.getByTestId('editor-input').inputValue()).includes('ui-e2e-task'));
  await page.goto(`${BASE}/ui/resources/tasks`);
  await page.locator('[data-testid="resource-row"][data-name="ui-e2e-task"]').waitFor();
  await shot('resources');
  await page.locator('[data-testid="resource-row"][data-name="ui-e2e-task"] a').click();
  await page.getByTestId('resource-delete').click();
  await page.getByTestId('confirm-ok').click();
  await page.waitForURL(/\/ui\/resources\/tasks$/);
  await waitFor('the deleted task to go', async () => (await page.locator('[data-testid="resource-row"][data-name="ui-e2e-task"]').count()) === 0);
});

await check('run page: Run again starts a new run', async () => {
  await page.goto(`${BASE}/ui/runs/${RUN_SOLO}`);
  await page.getByTestId('run-rerun').click();
  const outcome = await waitFor('rerun outcome', async () => {
    if (!page.url().endsWith(`/ui/runs/${RUN_SOLO}`)) return 'navigated';
    const t = await page.locator('[data-testid="toast"]').allInnerTexts();
    return t.find((x) => /Run again failed/.test(x));
  });
  if (outcome !== 'navigated' && /endpoint missing/.test(outcome)) skipMissing('POST /api/v1/runs/{name}/rerun');
  assert(outcome === 'navigated', `rerun: ${outcome}`);
  await page.locator('[data-testid="dag-node"]').waitFor();
});

await check('runs list: Cancel stops a running run', async () => {
  // A run the server itself started (runs begun by `slipway run` belong to that process).
  const name = 'ui-cancel-me';
  const yaml = readFileSync(new URL('./fixtures/live.yaml', import.meta.url), 'utf8').replace('name: ui-live', `name: ${name}`);
  const created = await apiFetch(`${BASE}/apis/tekton.dev/v1/namespaces/default/pipelineruns`, {
    method: 'POST', body: yaml, headers: { 'Content-Type': 'application/yaml' } });
  // 405: the old server routes GET on this path but not POST yet.
  if (created.status === 404 || created.status === 405) skipMissing('POST /apis/tekton.dev/v1/namespaces/default/pipelineruns');
  assert(created.ok, `creating ${name}: HTTP ${created.status} ${await created.text()}`);
  await page.goto(`${BASE}/ui/`);
  await row(name).waitFor();
  await waitFor(`${name} to run`, async () => ['running', 'pending'].includes(await row(name).getAttribute('data-status')), 15_000);
  await row(name).getByTestId('cancel').click();
  await page.getByTestId('confirm-ok').click();
  const outcome = await waitFor('cancel outcome', async () => {
    const t = await page.locator('[data-testid="toast"]').allInnerTexts();
    return t.find((x) => /Cancel/.test(x));
  });
  if (/endpoint missing/.test(outcome)) skipMissing('POST /api/v1/runs/{name}/cancel');
  assert(!/failed/.test(outcome), `cancel: ${outcome}`);
  await waitFor('the run to be cancelled', async () => (await row(name).getAttribute('data-status')) === 'cancelled', 20_000);
  const color = await row(name).locator('.status').evaluate((e) => getComputedStyle(e).color);
  assert(color === 'rgb(154, 103, 0)', `cancelled status colour is ${color}`);
  await shot('runs-cancelled');
});

await check('held run: shows Held, does not start, Release on its run page starts it', async () => {
  const name = 'ui-held';
  const yaml = `apiVersion: tekton.dev/v1
kind: PipelineRun
metadata:
  name: ${name}
spec:
  status: PipelineRunPending
  pipelineSpec:
    tasks:
      - name: quick
        taskSpec:
          steps:
            - name: say
              image: busybox
              script: |
                echo released and running
`;
  const created = await apiFetch(`${BASE}/apis/tekton.dev/v1/namespaces/default/pipelineruns`, {
    method: 'POST', body: yaml, headers: { 'Content-Type': 'application/yaml' } });
  if (created.status === 404 || created.status === 405) skipMissing('POST /apis/tekton.dev/v1/namespaces/default/pipelineruns');
  assert(created.ok, `creating ${name}: HTTP ${created.status} ${await created.text()}`);
  const runUrl = `/apis/tekton.dev/v1/namespaces/default/pipelineruns/${name}`;
  const heldCondition = async () => {
    const r = await (await apiFetch(BASE + runUrl)).json();
    return { run: r, c: (r.status?.conditions || []).find((x) => x.type === 'Succeeded') };
  };

  // The list: Held (still under the Pending filter), with a Release button next to Cancel.
  await page.goto(`${BASE}/ui/`);
  await row(name).waitFor();
  assert(await row(name).getAttribute('data-status') === 'pending', `${name} is ${await row(name).getAttribute('data-status')}`);
  assert(await row(name).getAttribute('data-held') === 'true', `${name} is not marked held`);
  assert(await row(name).locator('.status').innerText() === 'Held', `status label: ${await row(name).locator('.status').innerText()}`);
  assert(/held by spec\.status/.test(await row(name).locator('.status').getAttribute('title') || ''), 'the held tooltip lacks the condition message');
  assert(await row(name).getByTestId('release').count() === 1, 'no Release button in the list');
  assert(await row(name).getByTestId('cancel').count() === 1, 'no Cancel button beside Release');
  const notHeld = await page.locator('[data-testid="run-row"]:not([data-held]) [data-testid="release"]').count();
  assert(notHeld === 0, `${notHeld} runs that are not held offer Release`);

  // Held means held: 1.5 s later it has not started.
  await page.waitForTimeout(1_500);
  const { run: still, c } = await heldCondition();
  assert(c?.status === 'Unknown' && c?.reason === 'PipelineRunPending' && /^held by spec\.status/.test(c?.message || ''),
    `the held run moved: ${JSON.stringify(c)}`);
  assert(!still.status?.startTime, `the held run has a start time: ${still.status?.startTime}`);
  const kids = (await (await apiFetch(`${BASE}/api/v1/runs/${name}/taskruns`)).json()).items || [];
  assert(kids.length === 0, `the held run has TaskRuns: ${kids.map((k) => k.metadata?.name)}`);
  assert(await row(name).locator('.status').innerText() === 'Held', 'the row no longer says Held');
  await shot('runs-held');

  // The run page: a Held badge and Release, which PATCHes spec.status and the run goes on to succeed.
  await page.goto(`${BASE}/ui/runs/${name}`);
  const headBadge = page.locator('[data-testid="run-head"] [data-testid="status-badge"]');
  await headBadge.waitFor();
  assert(await headBadge.getAttribute('data-status') === 'pending' && await headBadge.getAttribute('data-held') === 'true', 'run badge is not held');
  assert(await headBadge.innerText() === 'Held', `run badge: ${await headBadge.innerText()}`);
  assert(await page.getByTestId('run-cancel').count() === 1, 'no Cancel beside Release');
  await shot('run-held');
  const patched = page.waitForResponse((r) => r.request().method() === 'PATCH' && r.url().endsWith(runUrl));
  await page.locator('[data-testid="run-head"] [data-testid="release"]').click();
  const reply = await patched;
  assert(reply.status() === 200, `PATCH ${runUrl}: HTTP ${reply.status()} ${await reply.text()}`);
  assert(JSON.parse(reply.request().postData() || '{}').spec?.status === '', `PATCH body: ${reply.request().postData()}`);
  assert(/^application\/(merge-patch\+)?json/.test(reply.request().headers()['content-type'] || ''), `PATCH type: ${reply.request().headers()['content-type']}`);
  assert((await reply.json()).metadata?.name === name, 'the PATCH reply is not the run');
  await page.locator('[data-testid="run-head"] [data-testid="status-badge"][data-status="succeeded"]').waitFor({ timeout: 30_000 });
  assert(await page.locator('[data-testid="run-head"] [data-testid="release"]').count() === 0, 'Release is still offered after the run ended');
  const { c: end } = await heldCondition();
  assert(end?.status === 'True', `the released run did not succeed: ${JSON.stringify(end)}`);
  const logs = await (await apiFetch(`${BASE}/api/v1/runs/${name}/logs`)).text();
  assert(logs.includes('released and running'), `logs: ${logs}`);
  await shot('run-released');
});

// ---- Start run: the dialog built from a Pipeline's / Task's params and workspaces ----
const START_DEFS = `apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: ui-greet
spec:
  description: Greets someone in several languages.
  params:
    - name: who
      type: string
      description: Whom to greet.
    - name: langs
      type: array
      default: [en, fr]
  workspaces:
    - name: scratch
      description: Scratch space for the greeting.
  tasks:
    - name: hi
      params:
        - name: who
          value: $(params.who)
        - name: langs
          value: ["$(params.langs[*])"]
      workspaces:
        - name: w
          workspace: scratch
      taskSpec:
        params:
          - name: who
          - name: langs
            type: array
        workspaces:
          - name: w
        steps:
          - name: say
            image: busybox
            args: ["$(params.langs[*])"]
            script: |
              echo "hello $(params.who) in $*" | tee $(workspaces.w.path)/greeting
---
apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: ui-hello-task
spec:
  params:
    - name: greeting
      description: What to say.
    - name: opts
      type: object
      properties:
        color: {type: string}
        size: {type: string}
      default: {color: red, size: M}
  workspaces:
    - name: config
      readOnly: true
    - name: cache
      optional: true
  steps:
    - name: say
      image: busybox
      script: |
        echo "$(params.greeting) $(params.opts.color) $(params.opts.size) cache-bound=$(workspaces.cache.bound)"
        cat $(workspaces.config.path)/suffix
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: ui-settings
data:
  suffix: from-the-configmap
---
apiVersion: v1
kind: Secret
metadata:
  name: ui-creds
stringData:
  token: not-shown
`;

async function applyYaml(yaml) {
  const res = await apiFetch(`${BASE}/api/v1/apply`, { method: 'POST', body: yaml, headers: { 'Content-Type': 'application/yaml' } });
  const text = await res.text();
  if (res.status === 404 || res.status === 405) skipMissing('POST /api/v1/apply');
  assert(res.ok, `apply: HTTP ${res.status} ${text}`);
}
const runNameFromUrl = () => decodeURIComponent(new URL(page.url()).pathname.split('/').pop());
const startDialog = () => page.getByTestId('start-dialog');
async function openStart(kind, name) {
  await page.goto(`${BASE}/ui/resources/${kind}/${name}`);
  await page.getByTestId('resource-run').click();
  await startDialog().waitFor({ state: 'visible' });
  // The Secret / ConfigMap lists arrive after the dialog opens.
  await waitFor('stored Secrets and ConfigMaps in the workspace choices', () => startDialog().locator('select[data-workspace] option[value="configMap:ui-settings"]').first().count());
}
async function waitForRunState(plural, name, timeout = 40_000) {
  return waitFor(`${name} to finish`, async () => {
    const r = await (await apiFetch(`${BASE}/apis/tekton.dev/v1/namespaces/default/${plural}/${name}`)).json();
    const c = (r.status?.conditions || []).find((x) => x.type === 'Succeeded');
    return c && c.status !== 'Unknown' ? { run: r, condition: c } : null;
  }, timeout, 500);
}

await check('start run: a Pipeline dialog checks required params, shows server errors, starts the run with the values typed', async () => {
  await applyYaml(START_DEFS);
  await openStart('pipelines', 'ui-greet');
  const dlg = startDialog();
  // Focus is inside the modal dialog; Esc closes it and gives focus back to the button.
  assert(await page.evaluate(() => !!document.activeElement?.closest('[data-testid="start-dialog"]')), 'focus did not move into the dialog');
  assert(await page.evaluate(() => document.activeElement?.dataset.testid) === 'param-who', 'the first required param is not focused');
  await page.keyboard.press('Escape');
  await dlg.waitFor({ state: 'detached' });
  assert(await page.evaluate(() => document.activeElement?.dataset.testid) === 'resource-run', 'focus did not return to Start run');
  await page.getByTestId('resource-run').click();
  await dlg.waitFor({ state: 'visible' });

  // Labels, defaults and the workspace choices come from the Pipeline.
  const who = page.getByTestId('param-who');
  const langs = page.getByTestId('param-langs');
  assert((await page.locator(`label[for="${await who.getAttribute('id')}"]`).innerText()).includes('required'), 'who is not marked required');
  assert(await who.inputValue() === '', 'who should start empty');
  assert(await langs.inputValue() === 'en\nfr', `langs default: ${JSON.stringify(await langs.inputValue())}`);
  assert((await dlg.innerText()).includes('Whom to greet.'), 'the param description is not shown');
  assert(/one value per line/i.test(await dlg.locator('[data-testid="param-field"][data-name="langs"]').innerText()), 'the array format is not explained');
  const ws = page.getByTestId('workspace-scratch');
  assert(await ws.inputValue() === 'emptyDir', `workspace default: ${await ws.inputValue()}`);
  const choices = await ws.locator('option').evaluateAll((os) => os.map((o) => o.value));
  for (const c of ['emptyDir', 'volumeClaimTemplate', 'secret:ui-creds', 'configMap:ui-settings']) assert(choices.includes(c), `workspace choices lack ${c}: ${choices}`);
  assert(!choices.includes(''), 'a required workspace can be left unbound');
  assert(await page.getByTestId('start-generate-name').inputValue() === 'ui-greet-run-', 'generateName default');

  // Submitting with the required param empty stays in the dialog and says what is missing.
  await page.getByTestId('start-submit').click();
  await page.getByTestId('param-error-who').waitFor({ state: 'visible' });
  assert(/required/i.test(await page.getByTestId('param-error-who').innerText()), 'no required message on who');
  assert(/who/.test(await page.getByTestId('start-invalid').innerText()), 'the summary does not name who');
  assert(await who.getAttribute('aria-invalid') === 'true', 'who is not aria-invalid');
  assert(await page.evaluate(() => document.activeElement?.dataset.testid) === 'param-who', 'focus did not go to the missing param');
  assert(new URL(page.url()).pathname === '/ui/resources/pipelines/ui-greet', 'left the page on an invalid submit');
  await shot('start-run-required');

  await who.fill('Ada Lovelace');
  await langs.fill('en\nde\n\nja');
  await ws.selectOption('volumeClaimTemplate');
  await page.locator('summary', { hasText: 'Options' }).click();
  await page.getByTestId('start-priority').fill('3');
  assert(await page.getByTestId('start-hold').count() === 1, 'a PipelineRun offers hold');
  await page.locator('summary', { hasText: 'YAML' }).click();
  const preview = await page.getByTestId('start-yaml').innerText();
  assert(preview.includes('Ada Lovelace') && preview.includes('volumeClaimTemplate') && preview.includes('slipway.dev/priority'), `YAML preview: ${preview}`);
  await shot('start-run-dialog');

  // A refusal (here the Pipeline went away meanwhile) is shown in the dialog, which stays open.
  assert(await status('/apis/tekton.dev/v1/namespaces/default/pipelines/ui-greet', { method: 'DELETE' }) < 300, 'deleting ui-greet');
  await page.getByTestId('start-submit').click();
  const err = page.getByTestId('start-error');
  await err.waitFor({ state: 'visible' });
  assert(/not found/i.test(await page.getByTestId('start-error-message').innerText()), `error message: ${await err.innerText()}`);
  assert(await page.getByTestId('start-diagnostic').count() >= 1, 'no diagnostics listed');
  assert(/apply it first|\d+:\d+/.test(await page.getByTestId('start-diagnostic').first().innerText()), `diagnostic: ${await page.getByTestId('start-diagnostic').first().innerText()}`);
  assert(await dlg.isVisible(), 'the dialog closed on a refusal');
  assert(await who.inputValue() === 'Ada Lovelace', 'typed values were lost');
  await shot('start-run-error');

  await applyYaml(START_DEFS);
  const posted = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/namespaces/default/pipelineruns'));
  await page.getByTestId('start-submit').click();
  const reply = await posted;
  assert(reply.status() === 201, `POST pipelineruns: HTTP ${reply.status()}`);
  // The priority is an annotation of the run as queued (the 201 reply shows it).
  const queued = await reply.json();
  assert(queued.metadata?.annotations?.['slipway.dev/priority'] === '3', `annotations: ${JSON.stringify(queued.metadata?.annotations)}`);
  assert(/metadata:\n {2}generateName: ui-greet-run-\n/.test(reply.request().postData() || ''), `the body sent: ${reply.request().postData()}`);
  await page.waitForURL(/\/ui\/runs\/ui-greet-run-[a-z0-9]+$/, { timeout: 10_000 });
  const name = runNameFromUrl();
  await page.locator('[data-testid="run-head"] [data-testid="status-badge"][data-status="succeeded"]').waitFor({ timeout: 40_000 });
  const { run } = await waitForRunState('pipelineruns', name);
  const params = Object.fromEntries((run.spec?.params || []).map((p) => [p.name, p.value]));
  assert(params.who === 'Ada Lovelace', `spec.params who: ${JSON.stringify(params.who)}`);
  assert(JSON.stringify(params.langs) === '["en","de","ja"]', `spec.params langs: ${JSON.stringify(params.langs)}`);
  assert(run.spec?.workspaces?.[0]?.volumeClaimTemplate, `spec.workspaces: ${JSON.stringify(run.spec?.workspaces)}`);
  const logs = await (await apiFetch(`${BASE}/api/v1/runs/${name}/logs`)).text();
  assert(logs.includes('hello Ada Lovelace in en de ja'), `logs: ${logs}`);
});

await check('start run: a Task dialog creates a TaskRun with taskRef, an object param and a ConfigMap workspace', async () => {
  await openStart('tasks', 'ui-hello-task');
  assert(await page.getByTestId('start-hold').count() === 0, 'a TaskRun offers hold');
  assert(await page.getByTestId('param-opts').inputValue() === 'color: red\nsize: M', `opts default: ${await page.getByTestId('param-opts').inputValue()}`);
  const cache = page.getByTestId('workspace-cache');
  assert((await cache.locator('option').evaluateAll((os) => os.map((o) => o.value))).includes(''), 'an optional workspace cannot be left unbound');
  await page.getByTestId('start-submit').click();
  await page.getByTestId('param-error-greeting').waitFor({ state: 'visible' });
  await page.getByTestId('param-greeting').fill('howdy');
  await page.getByTestId('start-invalid').waitFor({ state: 'hidden' });
  assert(!(await page.getByTestId('param-error-greeting').isVisible()), 'the required message stays once filled in');
  await page.getByTestId('param-opts').fill('color: blue\nsize: L');
  await page.getByTestId('workspace-config').selectOption('configMap:ui-settings');
  await cache.selectOption('');
  await shot('start-run-task');
  await page.getByTestId('start-submit').click();
  await page.waitForURL(/\/ui\/runs\/ui-hello-task-run-[a-z0-9]+$/, { timeout: 10_000 });
  const name = runNameFromUrl();
  await page.locator('[data-testid="dag-node"]').first().waitFor();
  const { run, condition } = await waitForRunState('taskruns', name);
  assert(condition.status === 'True', `the TaskRun did not succeed: ${condition.reason} ${condition.message}`);
  assert(run.spec?.taskRef?.name === 'ui-hello-task', `taskRef: ${JSON.stringify(run.spec?.taskRef)}`);
  const params = Object.fromEntries((run.spec?.params || []).map((p) => [p.name, p.value]));
  assert(params.greeting === 'howdy', `greeting: ${JSON.stringify(params.greeting)}`);
  assert(JSON.stringify(params.opts) === '{"color":"blue","size":"L"}', `opts: ${JSON.stringify(params.opts)}`);
  const ws = run.spec?.workspaces || [];
  assert(ws.length === 1 && ws[0].name === 'config' && ws[0].configMap?.name === 'ui-settings', `workspaces: ${JSON.stringify(ws)}`);
  const logs = await (await apiFetch(`${BASE}/api/v1/runs/${name}/logs`)).text();
  assert(logs.includes('howdy blue L cache-bound=false') && logs.includes('from-the-configmap'), `logs: ${logs}`);
  await page.locator('[data-testid="run-head"] [data-testid="status-badge"][data-status="succeeded"]').waitFor({ timeout: 10_000 });
});

await check('namespace selector: runs of another namespace appear only under it, kept in the URL', async () => {
  await page.goto(`${BASE}/ui/`);
  await row(RUN_OK).waitFor();
  assert(await row(RUN_OTHER_NS).count() === 0, `${RUN_OTHER_NS} (namespace ui-team) is listed under default`);
  const select = page.getByTestId('namespace-select');
  await waitFor('ui-team in the selector', async () => (await select.locator('option').evaluateAll((os) => os.map((o) => o.value))).includes('ui-team'));
  assert(await select.inputValue() === 'default', `selected: ${await select.inputValue()}`);
  await select.selectOption('ui-team');
  await page.waitForURL(/[?&]ns=ui-team/);
  await row(RUN_OTHER_NS).waitFor();
  assert(await row(RUN_OK).count() === 0, `${RUN_OK} (namespace default) is listed under ui-team`);
  assert(await row(RUN_OTHER_NS).getAttribute('data-status') === 'succeeded', `${RUN_OTHER_NS} status`);
  await shot('runs-namespace');
  // Its run page keeps the namespace and reads the run from it; a reload keeps both.
  await row(RUN_OTHER_NS).locator('a.run-name').click();
  await page.waitForURL(new RegExp(`/ui/runs/${RUN_OTHER_NS}\\?ns=ui-team$`));
  await page.locator('[data-testid="run-head"] [data-testid="status-badge"][data-status="succeeded"]').waitFor();
  await page.reload();
  await page.locator('[data-testid="run-head"] [data-testid="status-badge"][data-status="succeeded"]').waitFor();
  assert(await select.inputValue() === 'ui-team', `after reload: ${await select.inputValue()}`);
  // Resources follow the namespace too: a Task stored in ui-team is listed there only.
  const res = await apiFetch(`${BASE}/apis/tekton.dev/v1/namespaces/ui-team/tasks`, {
    method: 'POST', headers: { 'Content-Type': 'application/yaml' },
    body: 'apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: ui-team-task}\nspec:\n  steps: [{name: s, image: busybox, script: "true"}]\n',
  });
  assert(res.status === 201, `storing a Task in ui-team: ${res.status} ${await res.text()}`);
  await page.getByTestId('nav-resources').click();
  await page.waitForURL(/\/ui\/resources\?ns=ui-team$/);
  await page.locator('[data-testid="resource-row"][data-name="ui-team-task"]').waitFor();
  assert(await page.locator('[data-testid="resource-row"][data-name="ui-hello-task"]').count() === 0, 'a Task of default is listed under ui-team');
  await select.selectOption('default');
  await page.waitForURL(/\/ui\/resources\?ns=default$/);
  await page.locator('[data-testid="resource-row"]').first().waitFor();
  assert(await page.locator('[data-testid="resource-row"][data-name="ui-team-task"]').count() === 0, 'the ui-team Task is listed under default');
  await page.goto(`${BASE}/ui/runs/${RUN_OTHER_NS}?ns=ui-team`);
  await page.locator('[data-testid="run-head"] [data-testid="status-badge"][data-status="succeeded"]').waitFor();
  // The same name under default is not found there.
  await page.goto(`${BASE}/ui/runs/${RUN_OTHER_NS}`);
  await waitFor('the run to be missing from default', () => page.getByTestId('run-error').isVisible());
  assert(await page.locator('[data-testid="run-head"] [data-testid="status-badge"]').count() === 0, `${RUN_OTHER_NS} shows under default`);
  await select.selectOption('default');
  await page.waitForURL(/\/ui\/\?ns=default$/);
  await row(RUN_OK).waitFor();
});

await check('revoking the token of an open page ends its live log and shows the login page', async () => {
  if (!TOKEN || !BIN || !SERVER_HOME) throw new Skip('skipped: needs SLIPWAY_TOKEN, SLIPWAY_BIN and SLIPWAY_SERVER_HOME');
  const slipway = (...args) => execFileSync(BIN, args, { env: { ...process.env, SLIPWAY_HOME: SERVER_HOME }, encoding: 'utf8' });
  const viewer = slipway('token', 'create', 'ui-viewer', '--scope', 'read').trim();
  const name = 'ui-revoked-viewer';
  const yaml = `apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: ${name}}\nspec:\n  taskSpec:\n    steps:\n    - name: tick\n      image: busybox\n      script: 'for i in $(seq 1 300); do echo tick $i; sleep 0.1; done'\n`;
  const created = await apiFetch(`${BASE}/apis/tekton.dev/v1/namespaces/default/taskruns`, {
    method: 'POST', body: yaml, headers: { 'Content-Type': 'application/yaml' } });
  assert(created.ok, `creating ${name}: HTTP ${created.status} ${await created.text()}`);
  try {
    await page.evaluate((t) => localStorage.setItem('slipway.token', t), viewer);
    await page.goto(`${BASE}/ui/runs/${name}`);
    const lines = page.locator('[data-testid="log-view"] [data-testid="log-line"]');
    await waitFor('live lines for the viewer', async () => (await lines.count()) >= 3, 15_000);
    await waitFor('who is signed in', async () => /ui-viewer \(read\)/.test(await page.getByTestId('who').innerText()));
    slipway('token', 'revoke', 'ui-viewer');
    const revoked = Date.now();
    const message = page.getByTestId('login-message');
    await message.waitFor({ timeout: 5_000 });
    assert(/revoked/.test(await message.innerText()), `message: ${await message.innerText()}`);
    assert(Date.now() - revoked < 4_000, `the login page came ${Date.now() - revoked} ms after the revocation`);
    await shot('login-revoked');
  } finally {
    await page.evaluate((t) => localStorage.setItem('slipway.token', t), TOKEN);
    await apiFetch(`${BASE}/api/v1/runs/${name}/cancel`, { method: 'POST' });
  }
});

await check('logout forgets the token; signing in with the form brings the page back', async () => {
  if (!TOKEN) throw new Skip('skipped: the server runs with --no-auth');
  await page.goto(`${BASE}/ui/runs/${RUN_OK}`);
  await page.locator('[data-testid="dag-node"]').first().waitFor();
  await page.getByTestId('logout').click();
  await page.getByTestId('login-page').waitFor();
  assert(await stored() === null, 'the token is still kept after logout');
  await page.reload();
  await page.getByTestId('login-page').waitFor();
  await page.getByTestId('login-token').fill(TOKEN);
  await page.getByTestId('login-submit').click();
  await page.locator('[data-testid="dag-node"]').first().waitFor();
  assert(page.url().endsWith(`/ui/runs/${RUN_OK}`), `signed in to ${page.url()}`);
  assert(await stored() === TOKEN, 'the token was not kept');
});

await check('no uncaught script errors', async () => {
  assert(!pageErrors.length, pageErrors.join('\n'));
});

await context.close();
rmSync(userData, { recursive: true, force: true });
clearTimeout(deadline);
console.log(`screenshots in ${ART}`);
if (failures.length) console.log(`\nFailed checks:\n  ${failures.join('\n  ')}`);
console.log(`${results.passed} passed, ${results.failed} failed, ${results.skipped} skipped`);
process.exit(results.failed ? 1 : 0);
