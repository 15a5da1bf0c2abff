/**
 * Known credential formats, shared by the secret scan of proposed files and the redaction of recorded output.
 * The vendor formats follow gitleaks' maintained rule set (config/gitleaks.toml, https://github.com/gitleaks/gitleaks,
 * MIT License, Copyright (c) 2019 Zachary Rice; notice in LICENSE): the prefixed, low-false-positive rules, as
 * data, rewritten for JavaScript regexps.
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
  // From gitleaks' rules (ids in brackets).
  {
    name: 'GitLab token',
    pattern: /\b(?:glptt-[0-9a-f]{40}|gldt-[0-9a-zA-Z_-]{20,}|glrt-[0-9a-zA-Z_-]{20,}|glsoat-[0-9a-zA-Z_-]{20,}|GR1348941[\w-]{20,})/g,
  }, // [gitlab-ptt, -deploy-token, -runner-authentication-token, -rrt]
  { name: 'HashiCorp Vault token', pattern: /\b(?:hvs\.[\w-]{90,120}|hvb\.[\w-]{138,300})/g }, // [vault-service-token, vault-batch-token]
  { name: 'Terraform Cloud token', pattern: /\b[a-z0-9]{14}\.atlasv1\.[a-z0-9\-_=]{60,70}/gi }, // [hashicorp-tf-api-token]
  { name: 'DigitalOcean token', pattern: /\bdo[por]_v1_[a-f0-9]{64}\b/g }, // [digitalocean-pat, -access-token, -refresh-token]
  { name: 'SendGrid key', pattern: /\bSG\.[A-Za-z0-9=_\-.]{66}/g }, // [sendgrid-api-token]
  { name: 'Doppler token', pattern: /\bdp\.pt\.[A-Za-z0-9]{43}/g }, // [doppler-api-token]
  { name: 'PyPI token', pattern: /\bpypi-AgEIcHlwaS5vcmc[\w-]{50,1000}/g }, // [pypi-upload-token]
  { name: 'Shopify token', pattern: /\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b/g }, // [shopify-access-token, -custom-access-token, -private-app-access-token, -shared-secret]
  { name: 'Postman key', pattern: /\bPMAK-[a-fA-F0-9]{24}-[a-fA-F0-9]{34}\b/g }, // [postman-api-token]
  { name: 'Databricks token', pattern: /\bdapi[a-f0-9]{32}(?:-\d)?\b/g }, // [databricks-api-token]
  { name: 'Grafana token', pattern: /\bglsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}\b/g }, // [grafana-service-account-token]
  { name: 'Linear key', pattern: /\blin_api_[A-Za-z0-9]{40}\b/g }, // [linear-api-key]
  { name: 'Slack webhook', pattern: /\bhooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9+/]{43,56}/g }, // [slack-webhook-url]
  { name: 'age secret key', pattern: /\bAGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}\b/g }, // [age-secret-key]
  { name: 'JWT', pattern: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b/g },
  {
    name: 'authorization header',
    pattern: /(?<keep>\b(?:authorization|proxy-authorization)\s*[:=]\s*(?:bearer|basic|token)\s+)(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{8,}/gi,
  },
  { name: 'password in a URL', pattern: /(?<keep>\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]+:)[^\s@/]+(?=@)/gi },
  {
    name: 'token in a URL',
    pattern: /(?<keep>[?&;](?:private_token|access_token|auth_token|api_key|apikey|token|password|secret)=)(?!\[REDACTED\])[^&;\s#"']{8,}/gi,
  },
  {
    name: 'secret assignment',
    pattern:
      /(?<keep>\b[A-Za-z0-9_]*(?:SECRET|TOKEN|PASSWORD|PASSWD|API_KEY|APIKEY|PRIVATE_KEY|ACCESS_KEY)[A-Za-z0-9_]*\s*[=:]\s*["']?)(?!\[REDACTED\])[^\s"';,]{8,}/gi,
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
