// Pre-warming: the namespace's ImagePullJobs, and one job's node × image grid (phase, bytes,
// duration, error), read again every second while the page is open.
import { api } from './api.js';
import { current } from './namespace.js';
import { h } from './dom.js';
import { formatDuration, parseTime, relativeTime } from './format.js';

const GROUP = '/apis/apps.kruise.io/v1alpha1';
const jobsBase = () => `${GROUP}/namespaces/${encodeURIComponent(current())}/imagepulljobs`;
const PHASE_CLASS = { Succeeded: 'st-succeeded', Failed: 'st-failed', Pulling: 'st-running', Waiting: 'st-pending' };

/** Repeats `draw` every second until the page goes; returns the cleanup. */
function live(draw) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    await draw();
    if (!stopped) timer = setTimeout(tick, 1000);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

/** The list of jobs. */
export function mountList(el) {
  document.title = 'Pre-warming · Slipway';
  const body = h('div', {});
  el.append(h('h1', {}, 'Pre-warming'), body);
  return live(async () => {
    try {
      const list = await api(jobsBase());
      const rows = (list.items || []).map((j) => {
        const s = j.status || {};
        return h('tr', { 'data-testid': 'prewarm-job' },
          h('td', {}, h('a', { href: `/ui/prewarm/${encodeURIComponent(j.metadata.name)}` }, j.metadata.name)),
          h('td', {}, j.spec?.image || ''),
          h('td', {}, `${s.succeeded ?? 0}/${s.desired ?? 0}`),
          h('td', {}, String(s.failed ?? 0)),
          h('td', {}, s.message || ''),
          h('td', {}, relativeTime(j.metadata.creationTimestamp)));
      });
      body.replaceChildren(rows.length
        ? h('table', { class: 'table' },
          h('thead', {}, h('tr', {}, ...['Job', 'Image', 'Succeeded', 'Failed', 'Message', 'Age'].map((t) => h('th', {}, t)))),
          h('tbody', {}, rows))
        : h('p', { class: 'empty' }, 'No ImagePullJobs in this namespace. Create one with `slipway prewarm IMAGE`.'));
    } catch (e) {
      body.replaceChildren(h('div', { class: 'banner error' }, `Could not list jobs: ${e.message}`));
    }
  });
}

/** NodeImage's key and tag of an image reference. */
export function splitImage(image) {
  const at = image.lastIndexOf('@');
  if (at >= 0) return [image.slice(0, at), image.slice(at + 1)];
  const slash = image.lastIndexOf('/') + 1;
  const colon = image.slice(slash).lastIndexOf(':');
  return colon < 0 ? [image, 'latest'] : [image.slice(0, slash + colon), image.slice(slash + colon + 1)];
}

const mb = (b) => `${(b / 1e6).toFixed(1)} MB`;

/** One cell: the job's tag on one node, as its agent reported it. */
function cell(ni, image, uid) {
  const [name, tag] = splitImage(image);
  const entry = (ni.spec?.images?.[name]?.tags || []).find((t) => t.tag === tag
    && (t.ownerReferences || []).some((r) => r.uid === uid));
  if (!entry) return null;
  const reported = (ni.status?.imageStatuses?.[name]?.tags || []).find((t) => t.tag === tag);
  const st = reported?.version === entry.version ? reported : null;
  const phase = st?.phase || 'Waiting';
  // A failed node the job asks again: its last failure stays in view until the retry reports.
  const retrying = !st && reported?.phase === 'Failed' ? reported.message : '';
  const bytes = st?.totalBytes ? `${mb(st.completedBytes || 0)} / ${mb(st.totalBytes)}` : '';
  const start = parseTime(st?.startTime);
  const end = parseTime(st?.completionTime);
  const took = start !== null ? formatDuration((end ?? Date.now()) - start) : '';
  return h('td', { class: `prewarm-cell ${PHASE_CLASS[phase] || ''}`, 'data-testid': 'prewarm-cell', 'data-phase': phase },
    h('span', { class: `badge ${PHASE_CLASS[phase] || ''}`, 'data-testid': 'prewarm-phase' }, phase),
    bytes && h('div', { class: 'prewarm-bytes', 'data-testid': 'prewarm-bytes' }, bytes),
    took && h('div', { class: 'prewarm-took' }, took),
    phase === 'Failed' && st?.message && h('div', { class: 'prewarm-error', 'data-testid': 'prewarm-error' }, st.message),
    retrying && h('div', { class: 'prewarm-error', 'data-testid': 'prewarm-error' }, `retrying after: ${retrying}`));
}

/** One job: its status and the grid. */
export function mountJob(el, name) {
  document.title = `${name} · Pre-warming · Slipway`;
  const head = h('div', {});
  const grid = h('div', {});
  el.append(h('p', {}, h('a', { href: '/ui/prewarm' }, '← Pre-warming')), head, grid);
  return live(async () => {
    try {
      const job = await api(`${jobsBase()}/${encodeURIComponent(name)}`);
      const images = await api(`${GROUP}/nodeimages`);
      const s = job.status || {};
      const image = job.spec?.image || '';
      head.replaceChildren(
        h('h1', { 'data-testid': 'prewarm-title' }, name),
        h('p', { 'data-testid': 'prewarm-summary' },
          `${image} · ${s.succeeded ?? 0} of ${s.desired ?? 0} nodes succeeded, ${s.active ?? 0} active, ${s.failed ?? 0} failed`,
          s.message ? ` · ${s.message}` : ''));
      const rows = [];
      for (const ni of images.items || []) {
        const c = cell(ni, image, job.metadata.uid);
        if (c) rows.push(h('tr', { 'data-testid': 'prewarm-row', 'data-node': ni.metadata.name }, h('th', { scope: 'row' }, ni.metadata.name), c));
      }
      for (const n of s.failedNodes || []) {
        if (!rows.some((r) => r.dataset.node === n)) {
          rows.push(h('tr', { 'data-testid': 'prewarm-row', 'data-node': n }, h('th', { scope: 'row' }, n),
            h('td', { class: 'prewarm-cell st-failed', 'data-testid': 'prewarm-cell', 'data-phase': 'Failed' },
              h('span', { class: 'badge st-failed' }, 'Failed'))));
        }
      }
      grid.replaceChildren(rows.length
        ? h('table', { class: 'table prewarm-grid', 'data-testid': 'prewarm-grid' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Node'), h('th', {}, image))), h('tbody', {}, rows))
        : h('p', { class: 'empty' }, 'No node has been asked yet.'));
    } catch (e) {
      head.replaceChildren(h('div', { class: 'banner error', 'data-testid': 'prewarm-error-banner' }, `Could not read the job: ${e.message}`));
    }
  });
}
