import picomatch from 'picomatch';
import { foldHostPath } from './pathGuard';

/**
 * The secrets deny-list (design.md invariant 3). File names are curated by hand: gitleaks, the maintained
 * secret-scanner rule set the token formats in `secrets/tokenPatterns.ts` follow, matches contents and has a
 * path rule only for PKCS#12 files (`*.p12`, `*.pfx`, both here); no maintained data package of credential file
 * names exists on npm (checked: nothing beyond CLIs and vault clients). README lists what this covers. These paths never enter the box, whatever the settings say,
 * and a box-made file at such a path is never proposed back. Matching is case-insensitive (a case-insensitive
 * host file system treats `.ENV` as `.env`) and applies at any depth.
 */

/** File names (last path segment) that hold secrets. */
export const SECRET_FILE_NAMES: readonly string[] = [
  '.env',
  '.env.*',
  '.env*',
  '*.pem',
  '*.key',
  '*.p12',
  '*.pfx',
  '*.jks',
  '*.keystore',
  'id_rsa*',
  'id_dsa*',
  'id_ecdsa*',
  'id_ed25519*',
  '.npmrc',
  '.yarnrc.yml',
  '.pypirc',
  '.netrc',
  '_netrc',
  '.pgpass',
  '.htpasswd',
  '.git-credentials',
  'credentials.json',
  '.terraformrc',
  'terraform.rc',
  // Cloud and infrastructure credentials (issue 11: these reached the box before).
  '.vault-token',
  '*.tfvars',
  '*.tfvars.json',
  '*.tfstate',
  '*.tfstate.*',
  'kubeconfig',
  'kubeconfig.*',
  '*.kubeconfig',
  '*service-account*.json',
  '*service_account*.json',
  '.boto',
  '.s3cfg',
  '.dockercfg',
  'secrets.yml',
  'secrets.yaml',
  '*.kdbx',
  '.git-credential*',
];

/** `.env` files that conventionally hold placeholders, not secrets; they are sent. */
export const SECRET_FILE_EXCEPTIONS: readonly string[] = ['.env.example', '.env.sample', '.env.template'];

/** Directory names whose whole content is secret. */
export const SECRET_DIRECTORY_NAMES: readonly string[] = ['.ssh', '.aws', '.gnupg', '.azure'];

/** Two-segment suffixes (`directory/file`) that hold secrets. */
export const SECRET_PATH_SUFFIXES: readonly string[] = ['.docker/config.json', '.kube/config'];

const matchFileName = picomatch(SECRET_FILE_NAMES as string[], { dot: true, nocase: true });
const exceptions = new Set(SECRET_FILE_EXCEPTIONS);
const directoryNames = new Set(SECRET_DIRECTORY_NAMES);
const suffixes = new Set(SECRET_PATH_SUFFIXES);

/**
 * True when a workspace-relative POSIX path is, or lies under, a secret by the deny-list: as spelled, or as a
 * host file system may resolve it (`foldHostPath`: `.ENV`, `.env.`, `.env::$DATA`, NFD names).
 */
export function isSecretPath(relPath: string): boolean {
  return matchesDenyList(relPath.toLowerCase()) || matchesDenyList(foldHostPath(relPath));
}

function matchesDenyList(lowerPath: string): boolean {
  const segments = lowerPath.split('/');
  const last = segments[segments.length - 1];
  if (segments.some((segment) => directoryNames.has(segment))) {
    return true;
  }
  if (segments.length >= 2 && suffixes.has(`${segments[segments.length - 2]}/${last}`)) {
    return true;
  }
  return !exceptions.has(last) && matchFileName(last);
}
