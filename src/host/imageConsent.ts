import type { InspectedSetting } from './settingScopes';
import { userLevelValue, workspaceLevelValue } from './settingScopes';

/** The part of `vscode.Memento` the consent store uses (the extension's workspaceState). */
export interface ConsentMemento {
  get<T>(key: string): T | undefined;
  update(key: string, value: unknown): Thenable<void>;
}

/** What the user is asked about a workspace's image. */
export interface ImageConsentRequest {
  /** The image the workspace sets. */
  image: string;
  /** Where it was set, for a person: e.g. `/path/.vscode/settings.json`. */
  where: string;
  /** The image used otherwise (the user's or the default). */
  fallback: string;
}

/** Asks the user (a modal in VS Code). `true`: allow; `false`: refuse; `undefined`: dismissed, ask again later. */
export type ImageConsentPrompt = (request: ImageConsentRequest) => Promise<boolean | undefined>;

type Decision = 'allowed' | 'refused';

/** The state key of one decision: per place the workspace image was set (the workspace) and per image. */
export function imageConsentKey(where: string, image: string): string {
  return `agentSandbox.imageConsent:${where}\n${image}`;
}

/**
 * A workspace may choose the box's image only after the user confirmed that image for that workspace once.
 * A repository's image runs with the workspace and the allowlisted variables inside it, so it is not taken
 * silently. Refused (or untrusted): the user's image or the default is used, and the log says so.
 */
export class ImageConsent {
  private readonly asking = new Map<string, Promise<boolean | undefined>>();

  constructor(
    private readonly deps: {
      state: ConsentMemento;
      prompt: ImageConsentPrompt;
      log: (line: string) => void;
      /** Whether the workspace is trusted; in Restricted Mode a workspace image is ignored without asking. */
      isTrusted: () => boolean;
    },
  ) {}

  /** The image to use. Asks at most once per workspace and image (concurrent callers share the question). */
  async resolve(inspected: InspectedSetting<string> | undefined, where: string): Promise<string | undefined> {
    const fromWorkspace = workspaceLevelValue(inspected);
    const fallback = userLevelValue(inspected).value;
    if (fromWorkspace.origin !== 'workspace' && fromWorkspace.origin !== 'workspaceFolder') return fallback;
    const image = fromWorkspace.value;
    if (typeof image !== 'string' || image === fallback) return fallback;
    const fallbackText = fallback ?? '(default)';
    if (!this.deps.isTrusted()) {
      this.deps.log(`[settings] agentSandbox.image "${image}" from ${where} is ignored in Restricted Mode; using ${fallbackText}`);
      return fallback;
    }
    const key = imageConsentKey(where, image);
    let decision = this.deps.state.get<Decision>(key);
    if (decision === undefined) {
      let question = this.asking.get(key);
      if (!question) {
        question = this.deps.prompt({ image, where, fallback: fallbackText }).finally(() => this.asking.delete(key));
        this.asking.set(key, question);
      }
      const answer = await question;
      if (answer !== undefined) {
        decision = answer ? 'allowed' : 'refused';
        if (this.deps.state.get<Decision>(key) !== decision) await this.deps.state.update(key, decision);
      }
    }
    if (decision === 'allowed') {
      this.deps.log(`[settings] using agentSandbox.image "${image}" from ${where} (confirmed for this workspace)`);
      return image;
    }
    this.deps.log(
      `[settings] agentSandbox.image "${image}" from ${where} was ${decision === 'refused' ? 'refused' : 'not confirmed'}; using ${fallbackText}`,
    );
    return fallback;
  }
}
