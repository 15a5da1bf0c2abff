/**
 * Known credential formats, shared by the secret scan of proposed files and the redaction of recorded output.
 * Each pattern matches the secret itself, or (with a `(?<keep>…)` group) a prefix that stays readable followed
 * by the secret, so a record still says which header or variable it was. All are global regexps.
 */
export const TOKEN_PATTERNS: readonly { name: string; pattern: RegExp }[] = [
  { name: 'private key', pattern: /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g },
  { name: 'GitHub token', pattern: /\bgh[pousr]_[A-Za-z0-9]{36,255}\b/g },
  { name: 'GitHub token', pattern: /\bgithub_pat_[A-Za-z0-9_]{22,255}\b/g },
  { name: 'GitLab token', pattern: /\bglpat-[A-Za-z0-9_-]{20,}\b/g },
  { name: 'AWS access key', pattern: /\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b/g },
  { name: 'Slack token', pattern: /\bxox[abposr]-[A-Za-z0-9-]{10,}\b/g },
  { name: 'Anthropic key', pattern: /\bsk-ant-[A-Za-z0-9_-]{20,}\b/g },
  { name: 'OpenAI or Stripe key', pattern: /\bsk-(?:proj-|live_|test_)?[A-Za-z0-9_-]{20,}\b/g },
  { name: 'Stripe key', pattern: /\b[rp]k_(?:live|test)_[A-Za-z0-9]{16,}\b/g },
  { name: 'Google API key', pattern: /\bAIza[0-9A-Za-z_-]{35}\b/g },
  { name: 'npm token', pattern: /\bnpm_[A-Za-z0-9]{36}\b/g },
  { name: 'Hugging Face token', pattern: /\bhf_[A-Za-z0-9]{30,}\b/g },
  { name: 'JWT', pattern: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b/g },
  {
    name: 'authorization header',
    pattern: /(?<keep>\b(?:authorization|proxy-authorization)\s*[:=]\s*(?:bearer|basic|token)\s+)(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{8,}/gi,
  },
  { name: 'password in a URL', pattern: /(?<keep>\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]+:)[^\s@/]+(?=@)/gi },
  {
    name: 'secret assignment',
    pattern: /(?<keep>\b[A-Za-z0-9_]*(?:SECRET|TOKEN|PASSWORD|PASSWD|API_KEY|APIKEY|PRIVATE_KEY|ACCESS_KEY)[A-Za-z0-9_]*\s*[=:]\s*["']?)(?!\[REDACTED\])[^\s"';,]{8,}/gi,
  },
];

/**
 * What the scan of proposed files looks for: every token format, but assignments only where the value is a
 * literal (`NAME=value` lines of env files and shell scripts, quoted strings in code) — `password = prompt()`
 * is code, not a secret. Redaction of recorded output stays broader on purpose.
 */
const SCAN_PATTERNS: readonly { name: string; pattern: RegExp }[] = [
  ...TOKEN_PATTERNS.filter((p) => p.name !== 'secret assignment'),
  {
    name: 'secret assignment',
    pattern: /^\s*(?:export\s+)?[A-Z0-9_]*(?:SECRET|TOKEN|PASSWORD|PASSWD|API_KEY|APIKEY|PRIVATE_KEY|ACCESS_KEY)[A-Z0-9_]*\s*=\s*["']?[^\s"'$]{8,}/gm,
  },
  {
    name: 'secret assignment',
    pattern: /\b\w*(?:secret|token|password|passwd|api_?key|private_?key|access_?key)\w*["']?\s*[:=]\s*["'][^"'\s]{8,}["']/gi,
  },
];

/** Names of the credential formats found in `text` (empty when none). Scans at most the first 2 MiB. */
export function findSecrets(text: string): string[] {
  const sample = text.length > 2 * 1024 * 1024 ? text.slice(0, 2 * 1024 * 1024) : text;
  const found = new Set<string>();
  for (const { name, pattern } of SCAN_PATTERNS) {
    pattern.lastIndex = 0;
    if (pattern.test(sample)) found.add(name);
    pattern.lastIndex = 0;
  }
  return [...found];
}
