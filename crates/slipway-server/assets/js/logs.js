// Live logs: one Server-Sent Events stream per run page feeds a store of lines keyed by TaskRun
// and step; the viewer shows one step with ANSI colours, line numbers, follow (auto-scroll that
// pauses when you scroll up, as in GitLab) and a download of the step's log as a .log file.
import { h, downloadText } from './dom.js';
import { runsApi, streamEvents, describeError } from './api.js';
import { ansiToHtml, newState, stripAnsi } from './ansi.js';

const key = (taskRun, step) => `${taskRun}\u0000${step}`;

export class LogStore {
  constructor(run) {
    this.run = run;
    this.lines = new Map();
    this.listeners = new Set();
    this.ended = false;
    this.error = null;
    this.abort = new AbortController();
  }

  start() {
    streamEvents(runsApi.logsUrl(this.run, true), {
      signal: this.abort.signal,
      onEvent: (type, data) => {
        if (type === 'log' && data && typeof data === 'object') this.add(data);
        else if (type === 'end') { this.ended = true; this.emit(null); }
      },
      onError: (e) => { this.error = describeError(e, 'Live logs'); this.emit(null); },
    }).then(() => { if (!this.abort.signal.aborted) { this.ended = true; this.emit(null); } });
    return this;
  }

  stop() { this.abort.abort(); this.listeners.clear(); }

  add(ev) {
    const k = key(ev.taskRun || ev.task || this.run, ev.step || '');
    if (!this.lines.has(k)) this.lines.set(k, []);
    const entry = { line: String(ev.line ?? ''), stream: ev.stream || 'stdout', ts: ev.ts };
    if (typeof ev.ts === 'number' && !this.firstTs) this.firstTs = ev.ts;
    this.lines.get(k).push(entry);
    this.emit(k, entry);
  }

  get(taskRun, step) { return this.lines.get(key(taskRun, step)) || []; }

  /** Steps of a TaskRun that have printed something, in order of first output. */
  stepsOf(taskRun) {
    const out = [];
    for (const k of this.lines.keys()) {
      const [tr, step] = k.split('\u0000');
      if (tr === taskRun) out.push(step);
    }
    return out;
  }

  subscribe(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); }
  emit(k, entry) { for (const fn of this.listeners) fn(k, entry); }
}

/** The log panel for one step at a time. */
export class LogViewer {
  constructor(store) {
    this.store = store;
    this.taskRun = null;
    this.step = null;
    this.follow = true;
    this.ansi = newState();
    this.count = 0;
    this.programmatic = false;
    this.followBtn = h('button', { type: 'button', class: 'btn btn-small toggle', 'aria-pressed': 'true', 'data-testid': 'log-follow',
      title: 'Keep the newest line in view', onclick: () => this.setFollow(!this.follow) }, 'Follow');
    this.downloadBtn = h('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'log-download',
      onclick: () => this.download() }, 'Download');
    this.info = h('span', { 'data-testid': 'log-info' });
    this.view = h('div', { class: 'log-view', 'data-testid': 'log-view', tabindex: 0, role: 'log', 'aria-label': 'Step log',
      'aria-live': 'off' });
    this.view.addEventListener('scroll', () => {
      if (this.programmatic) { this.programmatic = false; return; }
      const atBottom = this.view.scrollTop + this.view.clientHeight >= this.view.scrollHeight - 24;
      if (this.follow !== atBottom) this.setFollow(atBottom, false);
    });
    this.el = h('div', { class: 'logs', 'data-testid': 'logs' },
      h('div', { class: 'log-toolbar' }, this.info, h('span', { class: 'spacer' }), this.followBtn, this.downloadBtn),
      this.view);
    this.unsub = store.subscribe((k, entry) => this.onLine(k, entry));
    this.state = 'pending';
  }

  destroy() { this.unsub(); }

  setFollow(on, scroll = true) {
    this.follow = on;
    this.followBtn.setAttribute('aria-pressed', String(on));
    if (on && scroll) this.scrollToEnd();
  }

  scrollToEnd() {
    if (this.view.scrollTop + this.view.clientHeight >= this.view.scrollHeight) return;
    this.programmatic = true;
    this.view.scrollTop = this.view.scrollHeight;
  }

  /** Shows a step; `state` is the step's state, used for the empty message. */
  show(taskRun, step, state) {
    const same = taskRun === this.taskRun && step === this.step;
    this.state = state;
    if (same) { this.updateInfo(); return; }
    this.taskRun = taskRun;
    this.step = step;
    this.ansi = newState();
    this.count = 0;
    this.view.replaceChildren();
    const frag = document.createDocumentFragment();
    for (const entry of this.store.get(taskRun, step)) frag.append(this.lineEl(entry));
    this.view.append(frag);
    this.updateInfo();
    if (this.follow) this.scrollToEnd();
  }

  lineEl(entry) {
    this.count += 1;
    const lt = h('span', { class: 'lt' });
    lt.innerHTML = ansiToHtml(entry.line, this.ansi);
    return h('div', { class: `log-line ${entry.stream}`, 'data-testid': 'log-line' }, h('span', { class: 'ln' }, String(this.count)), lt);
  }

  onLine(k, entry) {
    if (k === null) { this.updateInfo(); return; }
    if (k !== key(this.taskRun, this.step)) return;
    this.view.querySelector('.log-empty')?.remove();
    this.view.append(this.lineEl(entry));
    this.updateInfo();
    if (this.follow) this.scrollToEnd();
  }

  updateInfo() {
    const n = this.store.get(this.taskRun, this.step).length;
    const live = !this.store.ended && (this.state === 'running' || this.state === 'pending');
    this.info.textContent = `${this.step || 'step'} · ${n} line${n === 1 ? '' : 's'}${live ? ' · streaming' : ''}${this.store.error ? ` · ${this.store.error}` : ''}`;
    if (!n && !this.view.querySelector('.log-empty')) {
      this.view.append(h('div', { class: 'log-empty', 'data-testid': 'log-empty' },
        this.state === 'pending' ? 'Waiting for this step to start…' : live ? 'Waiting for output…' : 'This step printed nothing.'));
    } else if (!n) {
      this.view.querySelector('.log-empty').textContent = this.state === 'pending' ? 'Waiting for this step to start…'
        : live ? 'Waiting for output…' : 'This step printed nothing.';
    }
  }

  download() {
    const text = this.store.get(this.taskRun, this.step).map((e) => stripAnsi(e.line)).join('\n');
    const safe = (s) => String(s || '').replace(/[^A-Za-z0-9._-]+/g, '_');
    downloadText(`${safe(this.taskRun)}-${safe(this.step)}.log`, text ? `${text}\n` : '');
  }
}
