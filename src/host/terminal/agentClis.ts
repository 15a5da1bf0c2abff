import { isModelProviderId, MODEL_PROVIDERS, type ModelProviderId } from '../../core/egress/modelProviders';

/** One agent CLI the `Run Agent CLI in Sandbox…` command offers (setting `agentSandbox.agentClis`). */
export interface AgentCliEntry {
  /** Shown in the pick and as the terminal's name, e.g. `Claude Code`. */
  name: string;
  /** Command line run in the box, with its flag that turns permission prompts off. */
  command: string;
  /**
   * Names of host variables the CLI needs (API keys). They reach the box only when also listed in
   * `agentSandbox.envAllowlist`; values are never logged or recorded.
   */
  env: string[];
  /**
   * The model API whose stored key the egress gateway adds for this CLI (`Agent Sandbox: Set API Key…`): with
   * network `allowlist` the box gets the API's base URL through the gateway and a placeholder key.
   */
  provider?: ModelProviderId;
}

/** The setting's default: the common agent CLIs in their no-prompt ("yolo") modes. Keep in sync with package.json. */
export const DEFAULT_AGENT_CLIS: readonly AgentCliEntry[] = Object.freeze([
  { name: 'Claude Code', command: 'claude --dangerously-skip-permissions', env: ['ANTHROPIC_API_KEY'], provider: 'anthropic' },
  { name: 'Codex', command: 'codex --dangerously-bypass-approvals-and-sandbox', env: ['OPENAI_API_KEY'], provider: 'openai' },
  { name: 'aider', command: 'aider --yes-always', env: ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY'], provider: 'anthropic' },
  { name: 'Gemini CLI', command: 'gemini --yolo', env: ['GEMINI_API_KEY'], provider: 'gemini' },
]);

/** The entries of the setting that are well-formed; anything else is skipped with a reason. */
export function parseAgentClis(value: unknown): { entries: AgentCliEntry[]; problems: string[] } {
  const entries: AgentCliEntry[] = [];
  const problems: string[] = [];
  if (!Array.isArray(value))
    return { entries: [...DEFAULT_AGENT_CLIS], problems: value === undefined ? [] : ['agentSandbox.agentClis is not a list'] };
  value.forEach((raw: unknown, index) => {
    const item = raw as Partial<AgentCliEntry> | null;
    if (!item || typeof item.name !== 'string' || !item.name.trim() || typeof item.command !== 'string' || !item.command.trim()) {
      problems.push(`agentSandbox.agentClis[${index}] needs a "name" and a "command"`);
      return;
    }
    const env = Array.isArray(item.env) ? item.env.filter((n): n is string => typeof n === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(n)) : [];
    if (item.provider !== undefined && !isModelProviderId(item.provider)) {
      problems.push(`agentSandbox.agentClis[${index}].provider must be "anthropic", "openai" or "gemini"; the entry runs without one`);
    }
    entries.push({
      name: item.name.trim(),
      command: item.command.trim(),
      env,
      ...(isModelProviderId(item.provider) ? { provider: item.provider } : {}),
    });
  });
  return { entries, problems };
}

/** Where each variable an agent CLI needs stands: passed into the box, not allowlisted, or not set on the host. */
export function agentEnvStatus(
  entry: AgentCliEntry,
  allowlist: readonly string[],
  hostEnv: Record<string, string | undefined>,
): { passed: string[]; notAllowlisted: string[]; unset: string[] } {
  const passed: string[] = [];
  const notAllowlisted: string[] = [];
  const unset: string[] = [];
  for (const name of entry.env) {
    if (!allowlist.includes(name)) notAllowlisted.push(name);
    else if (hostEnv[name] === undefined) unset.push(name);
    else passed.push(name);
  }
  return { passed, notAllowlisted, unset };
}

/**
 * The terminal's first lines about the network and the model key: which hosts the box reaches and which key
 * the gateway adds, or why it adds none and what to do. `storedKeys`: providers with a key in SecretStorage.
 */
export function agentNetworkNotes(entry: AgentCliEntry, network: 'none' | 'allowlist', storedKeys: readonly ModelProviderId[]): string[] {
  if (network !== 'allowlist') {
    return [
      `Network: none (agentSandbox.network). ${entry.name} cannot reach its model API; set agentSandbox.network to "allowlist" in your user settings${entry.provider ? ` and set its key with "Agent Sandbox: Set API Key…"` : ''}.`,
    ];
  }
  if (!entry.provider) return [`${entry.name} has no "provider" in agentSandbox.agentClis: the gateway adds no API key for it.`];
  const provider = MODEL_PROVIDERS[entry.provider];
  if (!storedKeys.includes(entry.provider)) {
    return [`No ${provider.label} API key is set: run "Agent Sandbox: Set API Key…" to let the gateway add it (it never enters the box).`];
  }
  return [
    `The gateway adds your ${provider.label} API key on requests to ${new URL(provider.upstream).host}; the box has ${provider.baseUrlVariable} pointing at the gateway and only a placeholder in ${provider.keyVariables.join(', ')}.`,
  ];
}
