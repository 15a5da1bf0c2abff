// Messages between the Run History webview and the extension host (GitLens-style IPC): every message is
// `{ method, params }`; each type knows its method and has an `is()` guard. The webview sends `ready` first;
// the host posts nothing before it. No DOM and no Node here: both sides import this file.
import type { HistoryRecord } from '../../core/history/historyRecord';

export interface IpcMessage<P = unknown> {
  method: string;
  params: P;
}

export class IpcMessageType<P> {
  constructor(readonly method: string) {}

  is(message: unknown): message is IpcMessage<P> {
    return typeof message === 'object' && message !== null && (message as IpcMessage).method === this.method;
  }

  message(params: P): IpcMessage<P> {
    return { method: this.method, params };
  }
}

// Webview → host: commands.

/** The webview has loaded and listens; the host answers with `records`. */
export const ReadyCommand = new IpcMessageType<Record<string, never>>('history/ready');
/** Open the diff of one file of a run (the workspace's version against the box's proposal). */
export const OpenDiffCommand = new IpcMessageType<{ runId: string; path: string }>('history/openDiff');
/** Run the run's command again in the box. */
export const RerunCommand = new IpcMessageType<{ runId: string }>('history/rerun');
/** Put the run's command on the clipboard. */
export const CopyCommandCommand = new IpcMessageType<{ runId: string }>('history/copyCommand');
/** Export the history as JSON (the host asks where). */
export const ExportCommand = new IpcMessageType<Record<string, never>>('history/export');
/** Clear the history (the host asks for confirmation). */
export const ClearCommand = new IpcMessageType<Record<string, never>>('history/clear');

// Host → webview: notifications.

/** The whole history, newest first (after `ready`, a clear or a reload). */
export const RecordsNotification = new IpcMessageType<{ records: HistoryRecord[] }>('history/records');
/** One record was added or changed (a run started or ended, a file was decided). */
export const RecordChangedNotification = new IpcMessageType<{ record: HistoryRecord }>('history/recordChanged');
