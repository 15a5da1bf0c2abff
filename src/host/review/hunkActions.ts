import * as vscode from 'vscode';
import type { Hunk, HunkSplit } from '../../core/changes/hunks';
import { Disposable } from '../../core/lifecycle';
import { PROPOSAL_SCHEME } from './proposalDocuments';

/** Context key: the active editor shows a proposal (either side of a proposal diff). Scopes the keybindings. */
export const PROPOSAL_ACTIVE_KEY = 'agentSandbox.proposalActive';
/** Context key: the active proposal has hunks that can be decided one by one. */
const PROPOSAL_HAS_HUNKS_KEY = 'agentSandbox.proposalHasHunks';

/** What the hunk UI needs from the review. */
export interface HunkSource {
  /** The proposal's hunks (none for adds, deletes, binaries), or why its file is decided as a whole. */
  hunksOfProposal(proposal: vscode.TextDocument): Promise<HunkSplit>;
  readonly onDidChange: vscode.Event<unknown>;
}

/** A hunk located for a command: the proposal document and the hunk's index. */
export interface HunkTarget {
  proposal: vscode.Uri;
  index: number;
}

/**
 * Per-hunk decisions that VS Code draws with its default settings (`diffEditor.codeLens` is off by default, so
 * CodeLens alone shows nothing): a line after each hunk's first line of a proposal naming the keys, a hover
 * with Accept / Reject links, editor title and context menu actions that act on the hunk at the cursor, and
 * the context keys that scope the keybindings. The CodeLens stays for users who turned it on.
 */
export class HunkActions extends Disposable implements vscode.CodeLensProvider, vscode.HoverProvider {
  private readonly codeLensEmitter = this._register(new vscode.EventEmitter<void>());
  readonly onDidChangeCodeLenses = this.codeLensEmitter.event;
  private readonly hint = this._register(
    vscode.window.createTextEditorDecorationType({
      after: { color: new vscode.ThemeColor('editorCodeLens.foreground'), margin: '0 0 0 2em', fontStyle: 'italic' },
      isWholeLine: true,
    }),
  );

  constructor(private readonly source: HunkSource) {
    super();
    this._register(vscode.languages.registerCodeLensProvider({ scheme: PROPOSAL_SCHEME }, this));
    this._register(vscode.languages.registerHoverProvider({ scheme: PROPOSAL_SCHEME }, this));
    this._register(
      source.onDidChange(() => {
        this.codeLensEmitter.fire();
        void this.redraw();
      }),
    );
    this._register(vscode.window.onDidChangeVisibleTextEditors(() => void this.redraw()));
    this._register(vscode.window.onDidChangeActiveTextEditor(() => void this.updateContext()));
    this._register(vscode.window.tabGroups.onDidChangeTabs(() => void this.updateContext()));
    this._register(
      vscode.workspace.onDidChangeTextDocument((event) => {
        if (event.document.uri.scheme === PROPOSAL_SCHEME) void this.redraw();
      }),
    );
    void this.redraw();
    void this.updateContext();
  }

  /** The hunk at the cursor of the active proposal (or of the workspace side of a proposal diff), if any. */
  async hunkAtCursor(): Promise<HunkTarget | undefined> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) return undefined;
    const proposal = editor.document.uri.scheme === PROPOSAL_SCHEME ? editor.document : await this.proposalBeside(editor);
    if (!proposal) return undefined;
    const hunks = (await this.source.hunksOfProposal(proposal)).hunks ?? [];
    if (hunks.length === 0) return undefined;
    const onProposal = editor.document === proposal;
    const line = editor.selection.active.line;
    const start = (h: Hunk) => (onProposal ? h.proposalStart : h.baseStart);
    const count = (h: Hunk) => (onProposal ? h.proposalCount : h.baseCount);
    // The hunk holding the cursor; else the nearest one below it; else the last.
    const hunk =
      hunks.find((h) => line >= start(h) && line < start(h) + Math.max(count(h), 1)) ??
      hunks.find((h) => start(h) >= line) ??
      hunks[hunks.length - 1];
    return { proposal: proposal.uri, index: hunk.index };
  }

  /** Moves the cursor of the active proposal to the next (or previous) hunk; false when there is none. */
  async revealHunk(direction: 1 | -1): Promise<boolean> {
    const editor = vscode.window.activeTextEditor;
    if (!editor || editor.document.uri.scheme !== PROPOSAL_SCHEME) return false;
    const hunks = (await this.source.hunksOfProposal(editor.document)).hunks ?? [];
    const line = editor.selection.active.line;
    const next = direction > 0 ? hunks.find((h) => h.proposalStart > line) : [...hunks].reverse().find((h) => h.proposalStart < line);
    if (!next) return false;
    const position = new vscode.Position(Math.min(next.proposalStart, editor.document.lineCount - 1), 0);
    editor.selection = new vscode.Selection(position, position);
    editor.revealRange(new vscode.Range(position, position), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
    return true;
  }

  async provideCodeLenses(document: vscode.TextDocument): Promise<vscode.CodeLens[]> {
    const split = await this.source.hunksOfProposal(document);
    if (split.wholeFileOnly !== undefined) {
      // Decided as a whole: say why at the top, with the file's own actions instead of per-hunk ones.
      const top = new vscode.Range(0, 0, 0, 0);
      return [
        new vscode.CodeLens(top, { title: `No hunks: ${split.wholeFileOnly}`, command: '', tooltip: 'Accept or reject the whole file' }),
        new vscode.CodeLens(top, { title: 'Accept File', command: 'agentSandbox.review.accept', arguments: [document.uri] }),
        new vscode.CodeLens(top, { title: 'Reject File', command: 'agentSandbox.review.reject', arguments: [document.uri] }),
      ];
    }
    return split.hunks.flatMap((hunk) => {
      const range = lineRange(document, hunk);
      return [
        new vscode.CodeLens(range, {
          title: 'Accept Hunk',
          command: 'agentSandbox.review.acceptHunk',
          arguments: [document.uri, hunk.index],
          tooltip: `Take ${hunk.header} into your workspace`,
        }),
        new vscode.CodeLens(range, {
          title: 'Reject Hunk',
          command: 'agentSandbox.review.rejectHunk',
          arguments: [document.uri, hunk.index],
          tooltip: `Put ${hunk.header} back in the box`,
        }),
      ];
    });
  }

  async provideHover(document: vscode.TextDocument, position: vscode.Position): Promise<vscode.Hover | undefined> {
    const hunks = (await this.source.hunksOfProposal(document)).hunks ?? [];
    const hunk = hunks.find((h) => position.line >= h.proposalStart && position.line < h.proposalStart + Math.max(h.proposalCount, 1));
    if (!hunk) return undefined;
    const link = (command: string) => `command:${command}?${encodeURIComponent(JSON.stringify([document.uri.toJSON(), hunk.index]))}`;
    const markdown = new vscode.MarkdownString(
      `**Agent Sandbox** — hunk ${hunk.index + 1} of ${hunks.length} \`${hunk.header}\`\n\n` +
        `[$(check) Accept Hunk](${link('agentSandbox.review.acceptHunk')}) · [$(discard) Reject Hunk](${link('agentSandbox.review.rejectHunk')})`,
      true,
    );
    markdown.isTrusted = { enabledCommands: ['agentSandbox.review.acceptHunk', 'agentSandbox.review.rejectHunk'] };
    return new vscode.Hover(markdown, lineRange(document, hunk));
  }

  /** The proposal shown next to a workspace file in the active diff tab. */
  private async proposalBeside(editor: vscode.TextEditor): Promise<vscode.TextDocument | undefined> {
    const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
    if (!(input instanceof vscode.TabInputTextDiff) || input.original.toString() !== editor.document.uri.toString()) return undefined;
    if (input.modified.scheme !== PROPOSAL_SCHEME) return undefined;
    return (
      vscode.workspace.textDocuments.find((d) => d.uri.toString() === input.modified.toString()) ?? vscode.workspace.openTextDocument(input.modified)
    );
  }

  private async redraw(): Promise<void> {
    for (const editor of vscode.window.visibleTextEditors) {
      if (editor.document.uri.scheme !== PROPOSAL_SCHEME) continue;
      const split = await this.source.hunksOfProposal(editor.document).catch((): HunkSplit => ({ hunks: [] }));
      if (split.wholeFileOnly !== undefined) {
        const top = new vscode.Range(0, 0, 0, 0);
        editor.setDecorations(this.hint, [
          {
            range: top,
            renderOptions: { after: { contentText: `no hunks: ${split.wholeFileOnly} · Ctrl+Alt+Shift+Y accept file · Ctrl+Alt+Shift+N reject` } },
          },
        ]);
        continue;
      }
      const hunks = split.hunks;
      editor.setDecorations(
        this.hint,
        hunks.map((hunk) => ({
          range: lineRange(editor.document, hunk),
          renderOptions: { after: { contentText: `hunk ${hunk.index + 1}/${hunks.length} · Ctrl+Alt+Y accept · Ctrl+Alt+N reject` } },
        })),
      );
    }
    await this.updateContext();
  }

  private async updateContext(): Promise<void> {
    const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
    const proposal =
      input instanceof vscode.TabInputTextDiff
        ? [input.modified, input.original].find((u) => u.scheme === PROPOSAL_SCHEME)
        : input instanceof vscode.TabInputText && input.uri.scheme === PROPOSAL_SCHEME
          ? input.uri
          : undefined;
    await vscode.commands.executeCommand('setContext', PROPOSAL_ACTIVE_KEY, proposal !== undefined);
    let hasHunks = false;
    if (proposal) {
      const document = vscode.workspace.textDocuments.find((d) => d.uri.toString() === proposal.toString());
      hasHunks = document ? ((await this.source.hunksOfProposal(document).catch((): HunkSplit => ({ hunks: [] }))).hunks?.length ?? 0) > 0 : false;
    }
    await vscode.commands.executeCommand('setContext', PROPOSAL_HAS_HUNKS_KEY, hasHunks);
  }
}

/** The proposal line a hunk's actions sit on (its first line; the line after a pure deletion). */
function lineRange(document: vscode.TextDocument, hunk: Hunk): vscode.Range {
  const line = Math.min(hunk.proposalStart, Math.max(document.lineCount - 1, 0));
  return new vscode.Range(line, 0, line, 0);
}
