// What the host rig puts into the extension host's environment and user settings, shared with the suites
// that check it (this file imports nothing, so the extension host can load it).

/** A variable in the extension host's environment that the rig's user settings allowlist. */
export const USER_ALLOWLISTED_VARIABLE = { name: 'AGENT_SANDBOX_TEST_USER_VARIABLE', value: 'passed-by-the-user-setting' };

/** A "token" in the extension host's environment that only a repository's settings allowlist: it must never reach a box. */
export const REPOSITORY_ALLOWLISTED_VARIABLE = { name: 'AGENT_SANDBOX_TEST_REPO_TOKEN', value: 'ghp_canaryTokenOnlyARepositoryAsksFor0000' };

/**
 * A review the command line makes for the fixture workspace before VS Code starts (the rig runs `agent-sandbox
 * run` with its own state directory, which the extension host inherits as XDG_STATE_HOME): the workspace's
 * storage has never seen it. The suite of this title checks the window brings it in, and accepts it. The rig
 * makes it only when that suite runs (MOCHA_GREP unset or part of the title), so other suites never see it.
 */
export const COMMAND_LINE_REVIEW = {
  suite: 'A review the command line made before VS Code opened the folder',
  file: 'from-the-command-line.txt',
  content: 'made by agent-sandbox run while VS Code was closed\n',
};
