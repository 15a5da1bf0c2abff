import type { TerminalExitNotification, TerminalOpenRequest, TerminalOutputNotification } from '../shared/protocol';
import { BoxTerminal, boxHasProgram, findTerminalShell } from '../core/box/boxTerminal';
import { SandboxError } from '../core/errors';
import { boxProxyEnv, runProxyEnv } from '../core/egress/gatewayConfig';
import { Disposable, toDisposable } from '../core/lifecycle';
import type { ProgressReporter } from '../core/session/boxSession';
import { noShellError } from '../core/box/shellless';
import type { EngineService } from './engineService';

/** Output is gathered this long before it is sent, so a burst of tiny TTY writes is one notification. */
const OUTPUT_BATCH_MS = 10;
/** A batch is sent at once when it grows this large. */
const OUTPUT_BATCH_CHARS = 64 * 1024;

export interface TerminalServiceOptions {
  service: EngineService;
  log: (line: string) => void;
  sendOutput(params: TerminalOutputNotification.Params): void;
  sendExit(params: TerminalExitNotification.Params): void;
}

interface OpenTerminal {
  folder: string;
  terminal: BoxTerminal | undefined;
  buffer: string;
  timer: NodeJS.Timeout | undefined;
  exited: Promise<void>;
}

/** The server's interactive terminals: one `BoxTerminal` per id, in the box of its folder. */
export class TerminalService extends Disposable {
  private readonly terminals = new Map<string, OpenTerminal>();

  constructor(private readonly options: TerminalServiceOptions) {
    super();
    this._register(
      toDisposable(() => {
        for (const id of [...this.terminals.keys()]) void this.close(id);
      }),
    );
  }

  async open(params: TerminalOpenRequest.Params, progress: ProgressReporter, signal?: AbortSignal): Promise<TerminalOpenRequest.Result> {
    const { terminalId } = params;
    if (this.terminals.has(terminalId)) {
      throw new SandboxError('invalid-setting', `Terminal ${terminalId} is already open; choose a new terminalId.`);
    }
    const { service, log } = this.options;
    const hold = await service.holdBox(params.folder, progress, signal);
    let resolveExited: () => void = () => undefined;
    const entry: OpenTerminal = {
      folder: params.folder,
      terminal: undefined,
      buffer: '',
      timer: undefined,
      exited: new Promise((r) => (resolveExited = r)),
    };
    this.terminals.set(terminalId, entry);
    try {
      const { session } = hold;
      const { engine, containerId } = session.box;
      if (session.box.image.hasShell === false) throw noShellError(session.box.image.reference, 'a terminal');
      const shell = await findTerminalShell(engine, containerId, signal);
      const program = params.command ? firstWord(params.command) : undefined;
      if (program && !(await boxHasProgram(engine, containerId, program, signal))) {
        throw new SandboxError(
          'not-found',
          `The box's image ${session.box.image.reference} has no "${program}". Use an image that has it (agentSandbox.image), or change the command in agentSandbox.agentClis.`,
          { setting: 'agentSandbox.image' },
        );
      }
      const { sent, conflicts } = await session.catchUp(signal);
      entry.terminal = await BoxTerminal.start(
        engine,
        containerId,
        {
          cols: params.cols,
          rows: params.rows,
          shell,
          command: params.command,
          cwd: params.cwd,
          // With a gateway, the terminal's proxy variables carry its id (its attempts go to its history record),
          // and the model provider routes' base URLs and placeholder keys are as the gateway has them now.
          env: session.box.egress ? [...boxProxyEnv(), ...runProxyEnv(terminalId), ...session.box.egress.providerEnv(terminalId)] : undefined,
          onData: (data) => this.queueOutput(terminalId, entry, data),
          onExit: (exitCode) => {
            this.flush(terminalId, entry);
            this.terminals.delete(terminalId);
            hold.release();
            log(`[terminal] ${terminalId} ended with ${exitCode}`);
            this.options.sendExit({ terminalId, exitCode });
            resolveExited();
          },
        },
        signal,
      );
      log(`[terminal] ${terminalId} started ${params.command ? 'a command' : shell} in the box of ${params.folder}`);
      return { shell, image: session.box.image, policy: session.policy, caughtUp: sent, conflicts };
    } catch (error) {
      this.terminals.delete(terminalId);
      hold.release();
      if (SandboxError.is(error, 'no-box')) {
        await hold.forget().catch(() => undefined);
        throw new SandboxError(
          'no-box',
          'The box stopped while in use (killed from inside or removed from outside). Open the terminal again to start a fresh box.',
          {
            cause: error,
          },
        );
      }
      throw error;
    }
  }

  input(terminalId: string, data: string): void {
    this.terminals.get(terminalId)?.terminal?.write(data);
  }

  async resize(terminalId: string, cols: number, rows: number): Promise<void> {
    await this.terminals.get(terminalId)?.terminal?.resize(cols, rows);
  }

  /** Kills the terminal's tree; resolves once its exit was reported. */
  async close(terminalId: string): Promise<boolean> {
    const entry = this.terminals.get(terminalId);
    if (!entry?.terminal) return false;
    await entry.terminal.close();
    await entry.exited;
    return true;
  }

  private queueOutput(terminalId: string, entry: OpenTerminal, data: string): void {
    entry.buffer += data;
    if (entry.buffer.length >= OUTPUT_BATCH_CHARS) {
      this.flush(terminalId, entry);
      return;
    }
    entry.timer ??= setTimeout(() => this.flush(terminalId, entry), OUTPUT_BATCH_MS);
  }

  private flush(terminalId: string, entry: OpenTerminal): void {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = undefined;
    if (!entry.buffer) return;
    const data = entry.buffer;
    entry.buffer = '';
    this.options.sendOutput({ terminalId, data });
  }
}

/** The program a command line starts: its first word, without quotes (`env X=1 prog` counts as `env`). */
function firstWord(command: string): string {
  const match = /^\s*(?:"([^"]+)"|'([^']+)'|(\S+))/.exec(command);
  return match?.[1] ?? match?.[2] ?? match?.[3] ?? command.trim();
}
