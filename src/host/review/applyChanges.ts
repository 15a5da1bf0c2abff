import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ApplyOperation, ChangeSet } from '../../shared/protocol';
import type { EngineClient } from '../engineClient';
import { sha256 } from '../../core/util/hash';
import { hostPath } from '../../core/workspace/hostPath';

export interface ApplyOutcome {
  /** Paths now equal in the workspace and the box. */
  applied: string[];
  /** Paths left alone because the developer changed them since the baseline. */
  conflicts: string[];
  /** Paths left out (flagged without approval, `.git/`). */
  skipped: { path: string; reason: string }[];
}

/**
 * Applies approved changes to the real workspace through one `WorkspaceEdit` (one undo step, open editors
 * follow): new files are created, existing text files are edited as text and saved, deletions and renames are
 * file operations. The plan comes from the server and counts dirty editors as changes, so nothing the developer
 * changed since the baseline is overwritten. What a `WorkspaceEdit` cannot express — executable files, mode
 * changes, symlinks, empty directories, removing a directory only once it is empty — the server applies
 * afterwards, with the same guards (temp file + rename, never through a symlink).
 */
export async function applyChanges(
  engine: EngineClient,
  changeSet: ChangeSet,
  selection: { paths?: string[]; approveFlagged?: string[]; takeBoxVersion?: string[]; label: string },
): Promise<ApplyOutcome> {
  const folder = changeSet.folder;
  const plan = await engine.planApply({
    folder,
    paths: selection.paths,
    approveFlagged: selection.approveFlagged,
    takeBoxVersion: selection.takeBoxVersion,
    dirtyEditors: dirtyEditorsIn(folder),
  });
  const edit = new vscode.WorkspaceEdit();
  const metadata: vscode.WorkspaceEditEntryMetadata = { label: selection.label, needsConfirmation: false };
  const uriOf = (rel: string) => vscode.Uri.file(hostPath(folder, rel));
  const edited: string[] = [];
  const viaServer: string[] = [];
  const toSave: vscode.TextDocument[] = [];
  const changeByPath = new Map(changeSet.changes.map((c) => [c.path, c]));
  const changedSincePlan: string[] = [];
  // Subtrees the server applies whole, because a WorkspaceEdit would get them wrong: a link the plan replaces by
  // a directory with content (VS Code's file service follows links; the server removes the link first and
  // never writes through one) and a new directory with a mode of its own (creating a file makes its parents
  // 755; a 700 directory must be 700 before anything is written in it).
  const below = (p: string | undefined, dir: string) => p !== undefined && p.startsWith(`${dir}/`);
  const serverSubtrees = plan.operations
    .filter(
      (op) =>
        (op.kind === 'delete' && op.type === 'symlink') ||
        (op.kind === 'mkdir' && !op.implied && op.mode !== undefined && (op.mode & 0o7777) !== 0o755),
    )
    .map((op) => op.path)
    .filter((root) => plan.operations.some((op) => below(op.path, root)));
  const inServerSubtree = (p: string | undefined) => p !== undefined && serverSubtrees.some((root) => p === root || below(p, root));
  for (const op of plan.operations) {
    if (op.kind === 'mkdir' && op.implied) continue; // writing a file creates its parents
    if (inServerSubtree(op.path) || inServerSubtree(op.fromPath)) {
      viaServer.push(op.path);
      continue;
    }
    // Invariant 6 on this path too: a file this edit replaces, deletes or moves must still hold the baseline's
    // content now, whatever the plan's scan concluded (the server re-checks what goes through it).
    if (
      op.baseHash !== undefined &&
      isWorkspaceEditOperation(op) &&
      !(await stillHolds(uriOf(op.kind === 'rename' ? (op.fromPath ?? op.path) : op.path), op.baseHash))
    ) {
      changedSincePlan.push(op.path);
      continue;
    }
    const change = changeByPath.get(op.path);
    if (op.kind === 'write' && op.mode !== undefined && (op.mode & 0o111) === 0 && change) {
      const contents = await engine.readProposal(folder, op.path);
      if (change.kind === 'added') {
        edit.createFile(uriOf(op.path), { contents }, metadata);
        edited.push(op.path);
        continue;
      }
      // An existing text file is changed as text, so Undo gives the old text back (undoing a create that
      // overwrote a file would delete it). Files whose bytes a text edit cannot reproduce go through the server.
      const document = change.binary || change.type !== 'file' ? undefined : await openAsText(uriOf(op.path));
      const text = Buffer.from(contents).toString('utf8');
      if (document && textEditKeepsBytes(document, text)) {
        const all = new vscode.Range(document.positionAt(0), document.positionAt(document.getText().length));
        edit.replace(document.uri, all, text, metadata);
        toSave.push(document);
        edited.push(op.path);
      } else {
        viaServer.push(op.path);
      }
    } else if (op.kind === 'delete' && op.type !== 'directory') {
      edit.deleteFile(uriOf(op.path), { ignoreIfNotExists: true }, metadata);
      edited.push(op.path);
    } else if (op.kind === 'rename' && op.fromPath) {
      edit.renameFile(uriOf(op.fromPath), uriOf(op.path), { overwrite: false }, metadata);
      edited.push(op.path);
    } else {
      // Executable files, binary or odd-EOL modifications, symlinks, mode changes, empty directories and
      // directory removals (only once empty).
      viaServer.push(op.path);
    }
  }
  // `WorkspaceEdit.size` counts text edits only, so what was queued is tracked in `edited`.
  if (edited.length > 0 && !(await vscode.workspace.applyEdit(edit, { isRefactoring: false }))) {
    throw new Error('VS Code refused the workspace edit; nothing was applied. See the "Agent Sandbox" output.');
  }
  // Text edits land in the editor buffers; saving writes them. (Save participants such as format-on-save may
  // still change a file: the next run then sends that version to the box.)
  for (const document of toSave) {
    if (!(await document.save())) {
      throw new Error(`Could not save ${vscode.workspace.asRelativePath(document.uri)} after applying; it is left modified in its editor.`);
    }
  }
  const applied = new Set<string>(edited);
  if (edited.length > 0) await engine.markApplied(folder, unique(edited));
  const rest = unique(viaServer).filter((p) => !applied.has(p));
  if (rest.length > 0) {
    const result = await engine.apply({ folder, paths: rest, approveFlagged: selection.approveFlagged, takeBoxVersion: selection.takeBoxVersion });
    result.applied.forEach((p) => applied.add(p));
  }
  return {
    applied: [...applied].sort(),
    conflicts: unique([...plan.conflicts.map((c) => c.path), ...changedSincePlan]),
    skipped: plan.skipped,
  };
}

/** Operations this module may turn into a `WorkspaceEdit` (the others go through `sandbox/apply`, which checks them itself). */
function isWorkspaceEditOperation(op: ApplyOperation): boolean {
  return op.kind === 'write' || op.kind === 'rename' || (op.kind === 'delete' && op.type !== 'directory');
}

/** True when the file at `uri` is a file whose bytes hash to `hash`; false when it differs, is gone or unreadable. */
async function stillHolds(uri: vscode.Uri, hash: string): Promise<boolean> {
  try {
    const stat = await vscode.workspace.fs.stat(uri);
    if ((stat.type & vscode.FileType.File) === 0 || (stat.type & vscode.FileType.SymbolicLink) !== 0) return false;
    return sha256(await vscode.workspace.fs.readFile(uri)) === hash;
  } catch {
    return false;
  }
}

/** Flagged changes in a plan-to-be: the paths that need a deliberate approval. */
export function flaggedPaths(changeSet: ChangeSet, paths?: string[]): string[] {
  return changeSet.changes
    .filter((c) => c.flags.length > 0 && !c.flags.includes('git-internal') && (!paths || paths.includes(c.path)))
    .map((c) => c.path);
}

async function openAsText(uri: vscode.Uri): Promise<vscode.TextDocument | undefined> {
  try {
    return await vscode.workspace.openTextDocument(uri);
  } catch {
    return undefined; // too large, or not text after all
  }
}

/**
 * True when replacing the document's text with `text` and saving writes exactly `text`'s UTF-8 bytes:
 * the editor normalizes line endings to the document's EOL and handles a BOM by encoding.
 */
function textEditKeepsBytes(document: vscode.TextDocument, text: string): boolean {
  if (text.startsWith('\uFEFF') || document.encoding !== 'utf8') return false;
  const crlf = (text.match(/\r\n/g) ?? []).length;
  const lf = (text.match(/\n/g) ?? []).length - crlf;
  if (crlf > 0 && lf > 0) return false;
  if (crlf > 0) return document.eol === vscode.EndOfLine.CRLF;
  return lf === 0 || document.eol === vscode.EndOfLine.LF;
}

/** Open editors of the folder with unsaved changes, with the SHA-256 of their text (they count as changes). */
export function dirtyEditorsIn(folder: string): { path: string; hash: string }[] {
  const result: { path: string; hash: string }[] = [];
  for (const doc of vscode.workspace.textDocuments) {
    if (!doc.isDirty || doc.uri.scheme !== 'file') continue;
    const rel = path.relative(folder, doc.uri.fsPath);
    if (rel.startsWith('..') || path.isAbsolute(rel)) continue;
    result.push({ path: rel.split(path.sep).join('/'), hash: sha256(doc.getText()) });
  }
  return result;
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
