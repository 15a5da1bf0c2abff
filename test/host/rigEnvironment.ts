// What the host rig puts into the extension host's environment and user settings, shared with the suites
// that check it (this file imports nothing, so the extension host can load it).

/** A variable in the extension host's environment that the rig's user settings allowlist. */
export const USER_ALLOWLISTED_VARIABLE = { name: 'AGENT_SANDBOX_TEST_USER_VARIABLE', value: 'passed-by-the-user-setting' };

/** A "token" in the extension host's environment that only a repository's settings allowlist: it must never reach a box. */
export const REPOSITORY_ALLOWLISTED_VARIABLE = { name: 'AGENT_SANDBOX_TEST_REPO_TOKEN', value: 'ghp_canaryTokenOnlyARepositoryAsksFor0000' };
