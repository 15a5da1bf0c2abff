import type { ImageBuildDecisions, ImageBuildRequest } from '../shared/protocol';
import type { ConsentMemento } from './imageConsent';

/** Asks the user (a modal in VS Code). `true`: build; `false`: use the default image; `undefined`: dismissed. */
export type ImageBuildPrompt = (request: ImageBuildRequest) => Promise<boolean | undefined>;

/** The workspaceState key of the answers: input hashes allowed and refused. */
export const IMAGE_BUILDS_KEY = 'agentSandbox.imageBuilds';

interface StoredAnswers {
  allowed: string[];
  refused: string[];
}

/**
 * A folder's devcontainer.json or `.agent-sandbox/Dockerfile` is repository content: building it runs the
 * repository's commands on the engine, outside the box's hardening. The engine server builds it only for input
 * hashes the user allowed in this workspace (a changed file has another hash and asks again), never in
 * Restricted Mode; a refused or dismissed build leaves the box on the default image.
 */
export class ImageBuildConsent {
  private readonly asking = new Map<string, Promise<boolean | undefined>>();
  /** Dismissed this session: not asked again until the window reloads, and not remembered. */
  private readonly dismissed = new Set<string>();

  constructor(
    private readonly deps: {
      state: ConsentMemento;
      prompt: ImageBuildPrompt;
      log: (line: string) => void;
      isTrusted: () => boolean;
    },
  ) {}

  private stored(): StoredAnswers {
    const value = this.deps.state.get<Partial<StoredAnswers>>(IMAGE_BUILDS_KEY);
    const list = (v: unknown) => (Array.isArray(v) ? v.filter((h): h is string => typeof h === 'string') : []);
    return { allowed: list(value?.allowed), refused: list(value?.refused) };
  }

  /** What the engine server is configured with. In Restricted Mode nothing is built and nobody is asked. */
  decisions(): ImageBuildDecisions {
    const { allowed, refused } = this.stored();
    return { allowed, refused: [...refused, ...this.dismissed], ask: this.deps.isTrusted() };
  }

  /** Asks once per input hash at a time and remembers a yes or a no. Resolves whether the build may go ahead. */
  async ask(request: ImageBuildRequest): Promise<boolean> {
    if (!this.deps.isTrusted()) return false;
    let question = this.asking.get(request.inputHash);
    if (!question) {
      question = this.deps.prompt(request).finally(() => this.asking.delete(request.inputHash));
      this.asking.set(request.inputHash, question);
      const answer = await question;
      const { allowed, refused } = this.stored();
      if (answer === undefined) {
        this.dismissed.add(request.inputHash);
        this.deps.log(`[image] building ${request.file} was not confirmed; the box uses the default image until you are asked again (next window)`);
      } else {
        const keep = (list: string[]) => list.filter((h) => h !== request.inputHash);
        await this.deps.state.update(
          IMAGE_BUILDS_KEY,
          answer
            ? { allowed: [...keep(allowed), request.inputHash], refused: keep(refused) }
            : { allowed: keep(allowed), refused: [...keep(refused), request.inputHash] },
        );
        this.deps.log(
          `[image] building ${request.file} (${request.builds}) ${answer ? 'allowed' : 'declined'} by the user (inputs ${request.inputHash.slice(0, 12)})`,
        );
      }
      return answer === true;
    }
    return (await question) === true;
  }
}
