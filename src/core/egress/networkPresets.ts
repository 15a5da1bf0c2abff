/**
 * Built-in host lists for `agentSandbox.networkPresets`. Each is a plain list of `agentSandbox.allowedHosts`
 * entries (port 443 unless written); the README lists them word for word, and a unit test keeps the two equal.
 */
export const NETWORK_PRESETS = {
  /** The npm registry: metadata and tarballs. */
  npm: ['registry.npmjs.org'],
  /** The Python Package Index: the index and the files it links to. */
  pypi: ['pypi.org', 'files.pythonhosted.org'],
  /** git over HTTPS, the REST/GraphQL API, archive downloads (codeload), raw files, release and LFS objects. */
  github: ['github.com', 'api.github.com', 'codeload.github.com', 'raw.githubusercontent.com', 'objects.githubusercontent.com'],
  /** The Anthropic API (Claude). */
  anthropic: ['api.anthropic.com'],
  /** The OpenAI API. */
  openai: ['api.openai.com'],
  /** The Gemini API. */
  gemini: ['generativelanguage.googleapis.com'],
} as const satisfies Record<string, readonly string[]>;

export type NetworkPresetName = keyof typeof NETWORK_PRESETS;
