// The one handle the webview has on VS Code: `acquireVsCodeApi()` may be called only once per page.
import type { IpcMessage } from './protocol';

interface VsCodeApi<State> {
  postMessage(message: IpcMessage): void;
  getState(): State | undefined;
  setState(state: State): void;
}

declare function acquireVsCodeApi<State>(): VsCodeApi<State>;

/** What the panel remembers while hidden or reloaded (filters and the selected run). */
export interface ViewState {
  text: string;
  outcome: string;
  source: string;
  selectedId?: string;
}

export const vscode = acquireVsCodeApi<ViewState>();
