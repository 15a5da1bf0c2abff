/**
 * Git config files are mirrored so git works in the box, but credentials in them must not be (design.md
 * invariant 3). This removes them from the text; everything else is kept byte for byte.
 */

/**
 * Paths (workspace-relative) of git config files that are sanitized before they enter the box: the config of
 * the workspace's repository and of every nested one (`vendor/lib/.git/config`), of their submodules and
 * worktrees, and `.gitmodules` files (their URLs can carry credentials too). Case-insensitive, as a host disk
 * that folds case reads `.GIT/CONFIG` as the same file.
 */
export function isGitConfigPath(relPath: string): boolean {
  return GIT_CONFIG_PATH.test(relPath) || GITMODULES_PATH.test(relPath);
}

const GIT_CONFIG_PATH = /(?:^|\/)\.git\/(?:(?:modules\/.+|worktrees\/[^/]+)\/)?config(?:\.worktree)?$/i;
const GITMODULES_PATH = /(?:^|\/)\.gitmodules$/i;

/** Sections dropped whole: they configure credential helpers or hold tokens. */
const DROPPED_SECTIONS = new Set(['credential']);

/**
 * Keys (last dotted part, any section) dropped: headers often carry `Authorization: Bearer …`; any key whose
 * name says it holds a password, token, secret or key (`sendemail.smtpPass`, `gitlab.token`,
 * `hub.oauthtoken`, `core.askPass` too: a host program path means nothing in the box).
 */
const DROPPED_KEY = /^(extraheader|.*(?:pass|token|secret|api-?key|private-?key|access-?key).*)$/i;

/** Query parameters of a URL that carry credentials (`?private_token=…`, `&access_token=…`); their values go. */
const CREDENTIAL_QUERY =
  /([?&;](?:[A-Za-z0-9_.-]*(?:token|secret|password|passwd|api[_-]?key|apikey|auth|signature|sig|credential)[A-Za-z0-9_.-]*))=[^&;\s#"']*/gi;

/**
 * Returns the config text without credentials:
 * - `user:password@` and, for http(s)/ftp URLs, any `user@` are removed from every URL in the file (a token
 *   is often passed as the user name: `https://ghp_xxx@github.com/…`); `ssh://git@host` keeps its plain user;
 * - `[credential]` and `[credential "<url>"]` sections are dropped whole;
 * - `extraheader`, `token`, `password`-like keys are dropped in any section (with their continuation lines);
 * - credential query parameters of URLs (`?private_token=…`) lose their value.
 */
export function sanitizeGitConfig(text: string): string {
  const lines = text.split(/(?<=\n)/);
  const kept: string[] = [];
  let inDroppedSection = false;
  let droppingContinuation = false;
  for (const line of lines) {
    const content = line.replace(/\r?\n$/, '');
    if (droppingContinuation) {
      droppingContinuation = content.endsWith('\\');
      continue;
    }
    const header = /^\s*\[\s*([A-Za-z0-9.-]+)(?:\s+"(?:[^"\\]|\\.)*")?\s*\]\s*(.*)$/.exec(content);
    if (header !== null) {
      const sectionName = header[1].split('.')[0].toLowerCase();
      inDroppedSection = DROPPED_SECTIONS.has(sectionName);
      if (inDroppedSection) {
        continue;
      }
      const rest = header[2];
      if (rest.length > 0 && !rest.startsWith('#') && !rest.startsWith(';') && isDroppedKeyLine(rest)) {
        // `[http] extraheader = …` on the header line: keep the header, drop the key.
        kept.push(line.slice(0, line.indexOf(']') + 1) + (line.endsWith('\n') ? '\n' : ''));
        droppingContinuation = content.endsWith('\\');
        continue;
      }
      kept.push(stripUrlCredentials(line));
      continue;
    }
    if (inDroppedSection) {
      continue;
    }
    if (isDroppedKeyLine(content)) {
      droppingContinuation = content.endsWith('\\');
      continue;
    }
    kept.push(stripUrlCredentials(line));
  }
  return kept.join('');
}

function isDroppedKeyLine(content: string): boolean {
  const key = /^\s*([A-Za-z][A-Za-z0-9-]*)\s*(=|$)/.exec(content);
  return key !== null && DROPPED_KEY.test(key[1]);
}

/** Removes credentials from every `scheme://userinfo@` in the text, and the values of credential query parameters. */
export function stripUrlCredentials(text: string): string {
  return stripUserinfo(text).replace(CREDENTIAL_QUERY, '$1=');
}

function stripUserinfo(text: string): string {
  return text.replace(/\b([A-Za-z][A-Za-z0-9+.-]*):\/\/([^\s/"'?#]*)@/g, (match, scheme: string, userinfo: string) => {
    const isWeb = /^(https?|ftps?)$/i.test(scheme);
    if (isWeb || userinfo.includes(':')) {
      const user = userinfo.split(':')[0];
      return isWeb || user.length === 0 ? `${scheme}://` : `${scheme}://${user}@`;
    }
    return match;
  });
}
