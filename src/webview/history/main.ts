// Front end of the Run History panel: a filterable list of runs (newest first) and a detail pane. It builds
// the DOM with textContent only (run output is hostile text), says `ready` once listening, and asks the host
// for every action; it has no network and no other page to talk to.
import type { EgressHostSummary, HistoryFileChange, HistoryRecord } from '../../core/history/historyRecord';
import { egressLine, hostDetail } from '../../core/history/egressSummary';
import { imageFacts } from '../../core/history/imageFacts';
import {
  ClearCommand,
  CopyCommandCommand,
  ExportCommand,
  OpenDiffCommand,
  ReadyCommand,
  RecordChangedNotification,
  RecordsNotification,
  RerunCommand,
} from './protocol';
import {
  decisionSummary,
  filterRuns,
  formatDuration,
  OUTCOME_FILTERS,
  outcomeGroup,
  outcomeLabel,
  SOURCE_FILTERS,
  sourceLabel,
  type OutcomeFilter,
  type SourceFilter,
} from './runFilter';
import { vscode, type ViewState } from './vscodeApi';

/** Rows rendered at most; beyond it the list says how many more match. */
const MAX_ROWS = 500;

type Attrs = Record<string, string | boolean | undefined>;

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Node | string | undefined | false)[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    element.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children) {
    if (child === undefined || child === false) continue;
    element.append(child);
  }
  return element;
}

function icon(name: string, extra = ''): HTMLElement {
  return h('i', { class: `codicon codicon-${name} ${extra}`.trim(), 'aria-hidden': 'true' });
}

/** Codicon and colour class for a run's status. */
function statusIcon(record: HistoryRecord): HTMLElement {
  switch (outcomeGroup(record)) {
    case 'succeeded':
      return icon('pass', 'status ok');
    case 'failed':
      return icon('error', 'status failed');
    case 'timeout':
      return icon('watch', 'status warn');
    case 'oom':
      return icon('flame', 'status failed');
    case 'cancelled':
      return icon('circle-slash', 'status muted');
    case 'engine-error':
      return icon('warning', 'status failed');
    case 'running':
      return icon('loading', 'status running codicon-modifier-spin');
    case 'interrupted':
      return icon('debug-disconnect', 'status muted');
  }
}

function formatTime(epochMs: number): string {
  const date = new Date(epochMs);
  const today = new Date();
  const time = date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  if (date.toDateString() === today.toDateString()) return time;
  return `${date.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })} ${time}`;
}

function fileCountLabel(record: HistoryRecord): string {
  const n = record.files.length;
  return n === 0 ? 'no files changed' : `${n} file${n === 1 ? '' : 's'} changed`;
}

function kindLetter(file: HistoryFileChange): string {
  return { added: 'A', modified: 'M', deleted: 'D', renamed: 'R', mode: 'P' }[file.kind];
}

function decisionLabel(file: HistoryFileChange): { text: string; className: string } {
  const summary = decisionSummary(file);
  return { text: summary.at === undefined ? summary.text : `${summary.text} ${formatTime(summary.at)}`, className: summary.className };
}

class HistoryApp {
  private records: HistoryRecord[] = [];
  private visible: HistoryRecord[] = [];
  private state: ViewState;
  private loaded = false;

  private readonly filterInput: HTMLInputElement;
  private readonly outcomeSelect: HTMLSelectElement;
  private readonly sourceSelect: HTMLSelectElement;
  private readonly count: HTMLElement;
  private readonly list: HTMLElement;
  private readonly detail: HTMLElement;

  constructor(private readonly root: HTMLElement) {
    this.state = { text: '', outcome: 'all', source: 'all', ...vscode.getState() };

    this.filterInput = h('input', {
      type: 'search',
      class: 'filter-input',
      placeholder: 'Filter runs: command, file, host, output…',
      'aria-label': 'Filter runs by text',
      spellcheck: 'false',
    });
    this.filterInput.value = this.state.text;
    this.outcomeSelect = h(
      'select',
      { 'aria-label': 'Filter by outcome', class: 'outcome-filter' },
      ...OUTCOME_FILTERS.map((o) => h('option', { value: o.value }, o.label)),
    );
    this.outcomeSelect.value = this.state.outcome;
    this.sourceSelect = h(
      'select',
      { 'aria-label': 'Filter by source', class: 'source-filter' },
      ...SOURCE_FILTERS.map((o) => h('option', { value: o.value }, o.label)),
    );
    this.sourceSelect.value = this.state.source;
    this.count = h('span', { class: 'count', role: 'status', 'aria-live': 'polite' });
    const exportButton = h(
      'button',
      { class: 'icon-button', title: 'Export as JSON…', 'aria-label': 'Export the run history as JSON', 'data-action': 'export' },
      icon('export'),
    );
    const clearButton = h(
      'button',
      { class: 'icon-button', title: 'Clear history…', 'aria-label': 'Clear the run history', 'data-action': 'clear' },
      icon('clear-all'),
    );
    exportButton.addEventListener('click', () => vscode.postMessage(ExportCommand.message({})));
    clearButton.addEventListener('click', () => vscode.postMessage(ClearCommand.message({})));

    this.list = h('div', { class: 'run-list', role: 'listbox', tabindex: '0', 'aria-label': 'Runs, newest first' });
    this.detail = h('section', { class: 'run-detail', role: 'region', 'aria-label': 'Run details', tabindex: '-1' });

    const toolbar = h(
      'div',
      { class: 'toolbar', role: 'toolbar', 'aria-label': 'Filter and actions' },
      h('div', { class: 'filter-box' }, icon('filter'), this.filterInput),
      this.outcomeSelect,
      this.sourceSelect,
      this.count,
      h('span', { class: 'spacer' }),
      exportButton,
      clearButton,
    );
    root.replaceChildren(toolbar, h('div', { class: 'panes' }, this.list, this.detail));

    this.filterInput.addEventListener('input', () => this.onFilterChanged());
    this.outcomeSelect.addEventListener('change', () => this.onFilterChanged());
    this.sourceSelect.addEventListener('change', () => this.onFilterChanged());
    this.list.addEventListener('keydown', (e) => this.onListKey(e));
    this.list.addEventListener('click', (e) => {
      const row = (e.target as HTMLElement).closest<HTMLElement>('[role="option"]');
      if (row?.dataset.id) this.select(row.dataset.id, { focusList: true });
    });
    this.detail.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        this.list.focus();
      }
    });

    window.addEventListener('message', (event: MessageEvent<unknown>) => this.onMessage(event.data));
    this.render();
    vscode.postMessage(ReadyCommand.message({}));
  }

  private onMessage(message: unknown): void {
    if (RecordsNotification.is(message)) {
      this.records = [...message.params.records];
      this.loaded = true;
      this.root.removeAttribute('aria-busy');
    } else if (RecordChangedNotification.is(message)) {
      const record = message.params.record;
      const index = this.records.findIndex((r) => r.id === record.id);
      if (index >= 0) this.records[index] = record;
      else this.records.push(record);
      this.records.sort((a, b) => b.startedAt - a.startedAt);
    } else {
      return;
    }
    this.render();
  }

  private onFilterChanged(): void {
    this.state = { ...this.state, text: this.filterInput.value, outcome: this.outcomeSelect.value, source: this.sourceSelect.value };
    vscode.setState(this.state);
    this.render();
  }

  private render(): void {
    this.visible = filterRuns(this.records, {
      text: this.state.text,
      outcome: this.state.outcome as OutcomeFilter,
      source: this.state.source as SourceFilter,
    });
    const total = this.records.length;
    this.count.textContent = !this.loaded
      ? ''
      : this.visible.length === total
        ? `${total} run${total === 1 ? '' : 's'}`
        : `${this.visible.length} of ${total} runs`;
    this.renderList();
    this.renderDetail();
  }

  private renderList(): void {
    if (!this.loaded) {
      this.list.replaceChildren(h('div', { class: 'empty' }, 'Loading…'));
      return;
    }
    if (this.visible.length === 0) {
      this.list.removeAttribute('aria-activedescendant');
      this.list.replaceChildren(
        h(
          'div',
          { class: 'empty' },
          this.records.length === 0
            ? 'No runs yet. Run a command in the sandbox (Agent Sandbox: Run Command in Sandbox…) and it appears here.'
            : 'No run matches the filter.',
        ),
      );
      return;
    }
    const rows = this.visible.slice(0, MAX_ROWS).map((record) => this.row(record));
    const more = this.visible.length - rows.length;
    this.list.replaceChildren(
      ...rows,
      ...(more > 0 ? [h('div', { class: 'empty' }, `${more} more runs match; narrow the filter to see them.`)] : []),
    );
    const selected = this.state.selectedId && this.visible.some((r) => r.id === this.state.selectedId) ? this.state.selectedId : undefined;
    if (selected) this.list.setAttribute('aria-activedescendant', rowId(selected));
    else this.list.removeAttribute('aria-activedescendant');
  }

  private row(record: HistoryRecord): HTMLElement {
    const selected = record.id === this.state.selectedId;
    const duration = record.outcome === 'running' ? 'running…' : formatDuration(record.durationMs);
    const egress = egressLine(record.egress);
    const label = `${record.command}: ${outcomeLabel(record)}, ${sourceLabel(record)}, ${formatTime(record.startedAt)}${duration ? `, ${duration}` : ''}, ${fileCountLabel(record)}${egress ? `, ${egress}` : ''}`;
    return h(
      'div',
      {
        id: rowId(record.id),
        class: `run-row${selected ? ' selected' : ''}${egress ? ' has-egress' : ''}`,
        role: 'option',
        'aria-selected': selected ? 'true' : 'false',
        'aria-label': label,
        'data-id': record.id,
        'data-outcome': outcomeGroup(record),
      },
      statusIcon(record),
      h('span', { class: 'run-command' }, record.command),
      h(
        'span',
        { class: 'run-meta' },
        [
          record.source === 'command' ? undefined : sourceLabel(record),
          record.files.length ? `${record.files.length} file${record.files.length === 1 ? '' : 's'}` : undefined,
          duration,
        ]
          .filter(Boolean)
          .join(' · '),
      ),
      h('span', { class: 'run-time' }, formatTime(record.startedAt)),
      egress ? h('span', { class: 'run-egress', title: egress }, icon('globe'), ' ', egress) : undefined,
    );
  }

  private select(id: string, options: { focusList?: boolean; focusDetail?: boolean } = {}): void {
    const changed = id !== this.state.selectedId;
    this.state = { ...this.state, selectedId: id };
    vscode.setState(this.state);
    this.render();
    if (changed) this.detail.scrollTop = 0;
    document.getElementById(rowId(id))?.scrollIntoView({ block: 'nearest' });
    if (options.focusList) this.list.focus();
    if (options.focusDetail) this.detail.focus();
  }

  private onListKey(event: KeyboardEvent): void {
    if (this.visible.length === 0) return;
    const shown = this.visible.slice(0, MAX_ROWS);
    const current = shown.findIndex((r) => r.id === this.state.selectedId);
    const page = Math.max(1, Math.floor(this.list.clientHeight / 24) - 1);
    let next: number | undefined;
    switch (event.key) {
      case 'ArrowDown':
        next = current < 0 ? 0 : Math.min(shown.length - 1, current + 1);
        break;
      case 'ArrowUp':
        next = current < 0 ? 0 : Math.max(0, current - 1);
        break;
      case 'Home':
        next = 0;
        break;
      case 'End':
        next = shown.length - 1;
        break;
      case 'PageDown':
        next = Math.min(shown.length - 1, Math.max(0, current) + page);
        break;
      case 'PageUp':
        next = Math.max(0, current - page);
        break;
      case 'Enter':
      case ' ':
        event.preventDefault();
        this.select(shown[Math.max(0, current)].id, { focusDetail: true });
        return;
      default:
        return;
    }
    event.preventDefault();
    this.select(shown[next].id, { focusList: true });
  }

  private renderDetail(): void {
    const record = this.records.find((r) => r.id === this.state.selectedId);
    if (!record || !this.visible.includes(record)) {
      this.detail.replaceChildren(
        h('div', { class: 'empty' }, this.visible.length ? 'Select a run to see its output, policy, image and files.' : ''),
      );
      this.detail.setAttribute('aria-label', 'Run details');
      return;
    }
    this.detail.setAttribute('aria-label', `Details of ${record.command}`);
    const rerun = h(
      'button',
      { class: 'text-button', 'data-action': 'rerun', title: 'Run this command again in the box' },
      icon('debug-rerun'),
      'Re-run',
    );
    const copy = h('button', { class: 'text-button', 'data-action': 'copy', title: 'Copy the command' }, icon('copy'), 'Copy');
    rerun.addEventListener('click', () => vscode.postMessage(RerunCommand.message({ runId: record.id })));
    copy.addEventListener('click', () => vscode.postMessage(CopyCommandCommand.message({ runId: record.id })));

    const facts: [string, string][] = [
      ['Outcome', outcomeLabel(record) + (record.error ? ` — ${record.error.message}` : '')],
      ['Source', sourceLabel(record)],
      ['Started', new Date(record.startedAt).toLocaleString()],
      ['Duration', record.outcome === 'running' ? 'running…' : formatDuration(record.durationMs)],
      ['Folder', record.cwd ? `${record.folder} (cwd ${record.cwd})` : record.folder],
    ];
    if (record.image) facts.push(...imageFacts(record.image));
    if (record.policy) {
      const p = record.policy;
      facts.push(['Runtime', p.runtime]);
      facts.push([
        'Policy',
        `network ${p.network}${p.offline ? " (offline run: the box's gateway refused everything while it ran)" : ''} · user ${p.user} · ${p.memoryMiB} MiB · ${p.cpus} CPU · ${p.pidsLimit} pids`,
      ]);
      facts.push(['Host variables', p.envNames.length ? `${p.envNames.join(', ')} (values not recorded)` : 'none']);
    }
    if (record.conflicts?.length) facts.push(['Conflicts', record.conflicts.join(', ')]);
    if (record.refused) facts.push(['Refused', `${record.refused} unsafe entr${record.refused === 1 ? 'y' : 'ies'} from the box`]);

    const children: Node[] = [
      h(
        'header',
        { class: 'detail-header' },
        statusIcon(record),
        h('h2', { class: 'detail-command', title: record.command }, record.command),
        h('span', { class: 'spacer' }),
        rerun,
        copy,
      ),
      h('dl', { class: 'facts' }, ...facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
      this.filesSection(record),
    ];
    if (record.egress) children.push(this.egressSection(record));
    if (record.output) {
      children.push(this.outputSection('Output', record.output.stdout, 'stdout'));
      if (record.output.stderr) children.push(this.outputSection('Errors (stderr)', record.output.stderr, 'stderr'));
      if (record.output.truncated)
        children.push(h('p', { class: 'note' }, icon('info'), ' Output was cut; the run history keeps at most 64 KiB of each stream.'));
    }
    this.detail.replaceChildren(...children);
  }

  private filesSection(record: HistoryRecord): HTMLElement {
    const heading = h('h3', {}, `Files (${record.files.length})`);
    if (record.files.length === 0)
      return h(
        'div',
        { class: 'files' },
        heading,
        h('p', { class: 'note' }, record.outcome === 'running' ? 'Not collected yet.' : 'This run changed no files.'),
      );
    const rows = record.files.map((file) => {
      const decision = decisionLabel(file);
      const open = h(
        'button',
        { class: 'link-button', title: `Open the diff of ${file.path}`, 'aria-label': `Open diff of ${file.path}, ${file.kind}, ${decision.text}` },
        file.fromPath ? `${file.fromPath} → ${file.path}` : file.path,
      );
      open.addEventListener('click', () => vscode.postMessage(OpenDiffCommand.message({ runId: record.id, path: file.path })));
      const counts =
        file.added !== undefined
          ? h('span', { class: 'counts' }, h('span', { class: 'added' }, `+${file.added}`), ' ', h('span', { class: 'removed' }, `−${file.removed}`))
          : h('span', { class: 'counts muted' }, file.binary ? 'binary' : '');
      return h(
        'li',
        { class: 'file-row' },
        h('span', { class: `kind kind-${file.kind}`, title: file.kind }, kindLetter(file)),
        open,
        file.flags.length ? h('span', { class: 'flag', title: `Needs a deliberate approval: ${file.flags.join(', ')}` }, icon('shield')) : undefined,
        counts,
        h('span', { class: `decision ${decision.className}` }, decision.text),
      );
    });
    return h('div', { class: 'files' }, heading, h('ul', { class: 'file-list', 'aria-label': 'Files changed' }, ...rows));
  }

  /** Every host the run tried to reach, then those the box reached naming no run while it ran, labelled as such. */
  private egressSection(record: HistoryRecord): HTMLElement {
    const list = (hosts: EgressHostSummary[], label: string) =>
      h(
        'ul',
        { class: 'egress-list', 'aria-label': label },
        ...hosts.map((s) => h('li', { class: `egress-row${s.denied || s.failed ? ' refused' : ''}` }, hostDetail(s))),
      );
    const egress = record.egress!;
    return h(
      'div',
      { class: 'egress' },
      h('h3', {}, `Network (${egress.hosts.length} host${egress.hosts.length === 1 ? '' : 's'})`),
      egress.hosts.length ? list(egress.hosts, 'Hosts this run contacted') : h('p', { class: 'note' }, 'No attempt named this run.'),
      ...(egress.unattributed?.length
        ? [
            h(
              'p',
              { class: 'note' },
              icon('info'),
              " While it ran, the box also made these attempts naming no run (a process without the run's proxy variables); they may not be this run's:",
            ),
            list(egress.unattributed, 'Attempts from the box naming no run'),
          ]
        : []),
    );
  }

  private outputSection(title: string, text: string, kind: string): HTMLElement {
    return h('div', { class: `output ${kind}` }, h('h3', {}, title), h('pre', { tabindex: '0', 'aria-label': title }, text || '(no output)'));
  }
}

function rowId(id: string): string {
  return `run-${id.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

const root = document.getElementById('app');
if (root) new HistoryApp(root);
