import type { ConsentMemento } from './imageConsent';

/** Asks the user (a modal in VS Code). `true`: allow; anything else: do not connect. */
export type InsecureEnginePrompt = (address: string) => Promise<boolean | undefined>;

/** The globalState key that lists the plain-TCP engine addresses the user allowed. */
export const INSECURE_ENGINES_KEY = 'agentSandbox.allowedInsecureEngines';

/**
 * Plain `tcp://` to an engine beyond loopback sends the workspace and the passed variables unencrypted. The
 * engine server refuses it (`insecure-engine`, with the address) until the user allowed that address once;
 * the allowance is remembered per address for every workspace (globalState) and sent with the settings.
 */
export class InsecureEngineConsent {
  private readonly asking = new Map<string, Promise<boolean>>();

  constructor(private readonly deps: { state: ConsentMemento; prompt: InsecureEnginePrompt; log: (line: string) => void }) {}

  /** Addresses (`host:port`) the user allowed. */
  allowed(): string[] {
    const value = this.deps.state.get<unknown>(INSECURE_ENGINES_KEY);
    return Array.isArray(value) ? value.filter((a): a is string => typeof a === 'string') : [];
  }

  /** Asks once per address at a time; remembers an allowance. Resolves whether the address is allowed now. */
  async ask(address: string): Promise<boolean> {
    if (this.allowed().includes(address)) return true;
    let question = this.asking.get(address);
    if (!question) {
      question = (async () => {
        const answer = await this.deps.prompt(address);
        if (answer !== true) {
          this.deps.log(`[settings] unencrypted engine ${address} not allowed; nothing was sent to it`);
          return false;
        }
        await this.deps.state.update(INSECURE_ENGINES_KEY, [...new Set([...this.allowed(), address])]);
        this.deps.log(`[settings] unencrypted engine ${address} allowed by the user`);
        return true;
      })().finally(() => this.asking.delete(address));
      this.asking.set(address, question);
    }
    return question;
  }
}
