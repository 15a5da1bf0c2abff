/**
 * Every request and notification between the extension host (client) and the engine server.
 * One namespace per message; each carries its `method` and a typed `type`. Data shapes that cross the wire
 * are declared here too, so both sides and standalone clients share one definition.
 *
 * Every message the server receives also carries `params`, the schema its parameters are checked against before
 * any handler runs (`./schema`: typed, so it cannot drift from `Params`); a value that does not fit is answered
 * with `-32602` naming the field.
 *
 * This file depends on nothing but the JSON-RPC message types and `./schema` (no `vscode`, no Node APIs), and
 * `docs/protocol.md` documents it for clients that do not use TypeScript.
 */
import { NotificationType, RequestType, RequestType0 } from 'vscode-jsonrpc';
import {
  array,
  boolean,
  checkedFurther,
  discriminated,
  literal,
  noParams,
  nonNegativeNumber,
  object,
  optional,
  string,
  wholeNumber,
  type Schema,
} from './schema';

// ---------------------------------------------------------------------------------------------------------
// Settings that the engine needs (the host reads them from VS Code settings and sends them along).

/** How the box is made. Every field has a default in the server; a client sends only what it overrides. */
export interface BoxSettings {
  /**
   * Image to run, e.g. `node:22-bookworm` (must already be present locally, see `sandbox/pullImage`), or `auto`:
   * the folder's dev container (`.devcontainer/devcontainer.json`, `.devcontainer.json`), then its
   * `.agent-sandbox/Dockerfile`, built once the user confirmed it (`ConfigureRequest.Params.imageBuilds`), else
   * `node:22-bookworm`. The box's `BoxInfo.imageSource` says what was chosen and what was ignored.
   */
  image: string;
  /** Memory limit in MiB; swap is the same value (no swap beyond it). */
  memoryMiB: number;
  /** CPU limit in cores (fractions allowed). */
  cpus: number;
  /** Maximum number of processes and threads in the box. */
  pidsLimit: number;
  /** Size of the `/workspace` volume in MiB. */
  workspaceSizeMiB: number;
  /** `tmpfs`: the workspace volume lives in memory (default). `disk`: a disk-backed local volume. */
  workspaceVolume: 'tmpfs' | 'disk';
  /** Size of the tmpfs mounts at `/tmp` and `$HOME`, in MiB. */
  tmpSizeMiB: number;
  /** OCI runtime name, e.g. `runsc` for gVisor; empty for the engine's default. */
  runtime: string;
  /** Names of host environment variables passed into the box (nothing else from the host is). */
  envAllowlist: string[];
  /** Extra glob patterns (workspace-relative) that are never sent to the box. */
  exclude: string[];
  /** Also leave out what the workspace's `.gitignore` files ignore. */
  useGitignore: boolean;
  /** Default timeout for a run, in seconds (0 = none). */
  runTimeoutSeconds: number;
  /** Output kept per run and stream, in KiB; beyond it the output is cut with a visible marker. */
  outputLimitKiB: number;
  /** Minutes a box may sit unused before the server removes it (0 = never). */
  idleTimeoutMinutes: number;
  /** Largest file collect takes from the box, in MiB; a larger one is refused (`too-large`), never read into memory. */
  maxFileSizeMiB: number;
  /**
   * What the box gets of `.git` (machine-scoped: a repository cannot choose it). `fresh` (default): no host
   * `.git` is sent; each repository (the folder's and nested ones) is made anew in the box as one commit of
   * exactly what was mirrored, with HEAD's message, author and branch and the remotes without credentials, so
   * no history, stash, reflog, hook or other ref enters. `none`: no `.git` at all. `full`: the whole host
   * `.git` (git configs sanitized): history brings back every file ever committed or stashed, deny-listed
   * ones too. The box's own `.git` is never a pending change in `fresh` and `none`.
   */
  gitHistory: GitHistoryMode;
  /**
   * Pin the box to the image id its reference pointed to on first use (default true, machine-scoped): a tag
   * that later points elsewhere is reported (`BoxImage.note`), never followed silently. False: the tag is followed.
   */
  pinImageDigest?: boolean;
  /** Keep package caches (npm, pnpm, yarn, pip, uv, cargo, go) in volumes reused by this workspace's next box. */
  caches: boolean;
  /** Bound on one workspace's caches together, in MiB; over it they are emptied when the next box starts. */
  cacheSizeMiB: number;
}

/** Values of `BoxSettings.gitHistory`. */
export type GitHistoryMode = 'none' | 'fresh' | 'full';

/**
 * Whether and where the box may connect (machine-scoped settings: a repository cannot widen them). With
 * `network: "none"` the box has no network at all and no gateway exists.
 */
export interface EgressSettings {
  /** `none`: no network (default). `allowlist`: only the allowed hosts, through the box's egress gateway. */
  network: 'none' | 'allowlist';
  /** `host`, `host:port`, `*.domain` (subdomains only); port 443 unless written. */
  allowedHosts: string[];
  /** Names of built-in host lists added to `allowedHosts`: npm, pypi, github, anthropic, openai, gemini. */
  networkPresets: string[];
  /** Image for the gateway and relay containers (needs `node` 18 or later on its PATH); empty = the box image. */
  gatewayImage: string;
  /** Docker network the gateway reaches the outside through (default `bridge`). */
  gatewayNetwork: string;
  /** Resolver addresses for the gateway container; empty = the engine's default. */
  gatewayDns: string[];
  /**
   * Path (on the engine server's machine) of a PEM file of extra CA certificates the gateway trusts for the TLS
   * it makes itself (model provider routes), e.g. a company's TLS-inspecting proxy; empty = the system's CAs.
   */
  gatewayCaFile: string;
}

/**
 * One attempt to leave the box through its egress gateway, allowed or not (the gateway's audit record).
 */
export interface EgressAttempt {
  /** Sequence number within this gateway, from 1. */
  seq: number;
  /** The run it belongs to, when the client named one (proxy user name `run-<id>`); not proof of origin. */
  runId?: string;
  /** `connect`: an HTTP CONNECT tunnel (HTTPS, no TLS interception); `http`: a plain HTTP proxy request. */
  kind: 'connect' | 'http';
  /** `CONNECT`, or the plain request's method. */
  method: string;
  /** The host asked for, normalized (lower case, punycode, no trailing dot); raw text when invalid. */
  host: string;
  port: number;
  /** Plain HTTP only: the path asked for (query cut off: it may carry tokens). */
  path?: string;
  decision: 'allowed' | 'denied' | 'failed';
  /** Why: see `EgressReason`. */
  reason: EgressReason;
  /** For a person: the allowlist entry used, the refused address range, the connect error. */
  detail: string;
  /** The address connected to (allowed) or refused (refused-address). */
  address?: string;
  /** Plain HTTP only: the status the upstream (or the gateway) answered. */
  status?: number;
  /** Bytes from the box towards the host, and back (tunnel payload; for plain HTTP, bodies). */
  bytesUp: number;
  bytesDown: number;
  /** ISO times. */
  start: string;
  end: string;
}

export type EgressReason =
  /** Allowed by an allowlist entry (named in `detail`). */
  | 'allowlisted'
  /** No allowlist entry allows this host and port. */
  | 'not-allowlisted'
  /** The name resolved to a refused address (loopback, private, link-local, metadata, …). */
  | 'refused-address'
  /** The name did not resolve (or not within the gateway's time limit). */
  | 'resolve-failed'
  /** Every checked address refused the connection or did not answer in time. */
  | 'connect-failed'
  /** Plain HTTP whose Host header names another host than the request line. */
  | 'host-mismatch'
  /** Not a proxy request the gateway understands (origin-form URL, https:// in a plain request, bad target). */
  | 'bad-request'
  /** Protocol upgrades (WebSocket) over plain HTTP: use CONNECT (wss://) instead. */
  | 'upgrade-refused'
  /** The gateway's connection limit was reached. */
  | 'too-many-connections'
  /** An offline run (`ExecRequest.Params.network: "none"`) was running: the gateway refused every connection. */
  | 'offline-run'
  /** Allowed: a model provider route (`/_agent-sandbox/<provider>/…`); the gateway added the stored key. */
  | 'provider-key'
  /** A model provider route for a provider whose key is not stored. */
  | 'no-provider-key';

/** Where the Docker engine is; empty fields mean "resolve like the docker CLI does". */
export interface EngineSettings {
  /** Overrides `DOCKER_HOST` and contexts, e.g. `unix:///var/run/docker.sock` or `tcp://host:2376`. */
  dockerHost?: string;
  /**
   * Plain-TCP engine addresses (`host:port`, as in `insecure-engine` errors) the user allowed. Any other
   * `tcp://` engine without TLS beyond loopback is refused with `insecure-engine` before anything is sent.
   */
  allowInsecureHosts?: string[];
}

// ---------------------------------------------------------------------------------------------------------
// Errors.

/** Why a request failed; carried in a JSON-RPC error's `data.reason` so clients never match on text. */
export type ErrorReason =
  | 'engine-unreachable'
  | 'engine-error'
  | 'image-missing'
  | 'invalid-setting'
  | 'timeout'
  | 'cancelled'
  | 'no-box'
  | 'path-outside-workspace'
  | 'not-found'
  | 'edit-no-match'
  | 'edit-ambiguous'
  | 'workspace-full'
  /** The box's image has no `/bin/sh` and the request needs one (a command line, a terminal): use `argv`. */
  | 'no-shell'
  /** A patch for `sandbox/fileOp` `patch` is not a unified diff (nothing was changed). */
  | 'patch-malformed'
  /**
   * A request's params do not fit its type (JSON-RPC code `-32602`); `field` names the first field that does not,
   * e.g. `folder` or `approveFlagged[0]` (empty: the params themselves). Nothing was done.
   */
  | 'invalid-params'
  | 'internal'
  /**
   * The disk holding the workspace folder ran out of space (or quota) while `sandbox/apply` wrote to it. No
   * workspace file is half-written and the changes stay pending; free space and apply again.
   */
  | 'disk-full'
  /**
   * The engine is a plain `tcp://` address (no TLS) beyond loopback, and the client did not list it in
   * `EngineSettings.allowInsecureHosts`: the workspace and the passed variables would travel unencrypted.
   * Nothing was sent; `data.address` names the address to ask the user about.
   */
  | 'insecure-engine'
  /**
   * `ssh` refused the engine's host: its key differs from the one in `known_hosts` (a possible impostor).
   * Nothing was sent. Check the host's key, then fix `known_hosts` (`ssh-keygen -R host`).
   */
  | 'ssh-host-key'
  /** `ssh` could not log in to the engine's host (key or agent refused), or `ssh` itself is missing. */
  | 'ssh-failed'
  /**
   * `sandbox/apply` found a file it was about to overwrite, delete or rename no longer holding the baseline's
   * content (changed after the plan). It was left alone; plan again and it shows as a conflict.
   */
  | 'workspace-changed'
  /**
   * `agentSandbox.image` is `auto` and the folder has a devcontainer.json or `.agent-sandbox/Dockerfile` whose
   * build (`data.imageBuild.inputHash`) is in neither list of `ConfigureRequest.Params.imageBuilds`, which asks
   * for a question (`ask`). Nothing was built; ask the user about `data.imageBuild`, configure, and retry.
   */
  | 'image-build-unconfirmed'
  /** Building the folder's image failed (the message ends with the build's last lines), or its inputs lead outside the folder. */
  | 'image-build-failed'
  /** Building the folder's image needs the `docker` command line, which was not found on the engine server's PATH. */
  | 'docker-cli-missing';

/** The `data` of every JSON-RPC error the server sends. */
export interface ErrorData {
  /** Machine-readable cause. */
  reason: ErrorReason;
  /** For `invalid-setting`: the setting's key, e.g. `agentSandbox.memoryMiB`. */
  setting?: string;
  /** For `insecure-engine`: the engine address (`host:port`) to allow through `EngineSettings.allowInsecureHosts`. */
  address?: string;
  /** For `invalid-params`: the params field that does not fit, e.g. `folder`, `paths[2]`; empty for the params themselves. */
  field?: string;
  /** For `image-build-unconfirmed`: what would be built, to ask the user about. */
  imageBuild?: ImageBuildRequest;
}

/** A repository's image build that needs the user's confirmation (`image-build-unconfirmed`). */
export interface ImageBuildRequest {
  /** The folder whose file it is. */
  folder: string;
  /** The file, relative to the folder: `.devcontainer/devcontainer.json`, `.devcontainer.json` or `.agent-sandbox/Dockerfile`. */
  file: string;
  /** SHA-256 of everything the build reads (file, Dockerfile, build context, local features): what the answer is kept for. */
  inputHash: string;
  /** What it builds, in words, e.g. `the Dockerfile .devcontainer/Dockerfile (build context .devcontainer) with the features ./hello`. */
  builds: string;
  /** devcontainer.json properties the box will not honour (`runArgs`, `mounts`, `postCreateCommand`, …). */
  ignored: string[];
}

/**
 * The user's answers about building repository images (`agentSandbox.image: "auto"`), by input hash. Without
 * this field (the command line, other clients) nothing is built and `auto` uses the default image.
 */
export interface ImageBuildDecisions {
  /** Input hashes the user allowed to build. */
  allowed: string[];
  /** Input hashes the user declined: the default image is used, without asking. */
  refused: string[];
  /**
   * Whether a build in neither list fails with `image-build-unconfirmed` (the client asks and retries). `false`
   * (e.g. VS Code's Restricted Mode): the default image is used and nothing in `allowed` is built either.
   */
  ask: boolean;
}

/** Where the box's image came from (`BoxInfo.imageSource`, `ExecResult.imageSource`). */
export interface ImageSourceInfo {
  /**
   * `setting`: `agentSandbox.image` named it. `default`: `auto` found nothing to build, or the build was not
   * confirmed (`note` says which). `devcontainer`, `dockerfile`: built from the folder's file.
   */
  kind: 'setting' | 'default' | 'devcontainer' | 'dockerfile';
  /** The file `auto` found (relative to the folder), also when it was not built. */
  file?: string;
  /** SHA-256 of the build's inputs; the built image is tagged with it (`agent-sandbox-built:<kind>-<hash prefix>`). */
  inputHash?: string;
  /** Whether this box's creation built the image (false: an image of the same inputs was already there). */
  built?: boolean;
  /** devcontainer.json properties the box did not honour: its hardening is its own, whatever the image. */
  ignored?: string[];
  /** Why the image is not the one `auto` found, or what to do about ignored lifecycle commands. */
  note?: string;
}

// ---------------------------------------------------------------------------------------------------------
// Data shapes.

/** A file system entry type as the box and the baseline know it. */
export type EntryType = 'file' | 'directory' | 'symlink';

/** Why an entry from the box was refused. Refused entries are listed, never written. */
export type RefusedReason =
  | 'absolute-path'
  | 'parent-traversal'
  | 'symlink-outside'
  | 'hard-link'
  | 'device'
  | 'fifo'
  | 'setuid-setgid'
  | 'invalid-name'
  | 'type-change-under-symlink'
  | 'too-large';

/** An entry from the box that collect refused. */
export interface RefusedEntry {
  /** Workspace-relative path as the box reported it (possibly hostile; display only). */
  path: string;
  /** Why it was refused. */
  reason: RefusedReason;
  /** Human-readable detail, e.g. the symlink target. */
  detail: string;
}

/** The kind of change a file went through in the box. */
export type ChangeKind = 'added' | 'modified' | 'deleted' | 'renamed' | 'mode';

/** Why applying a change needs a deliberate approval (design.md invariant 5). */
export type FlagReason =
  | 'host-executed'
  /** Agents or their tools on the host read it as instructions or configuration (`AGENTS.md`, `.claude/`, `.vscode/mcp.json`, …). */
  | 'agent-instructions'
  | 'newly-executable'
  /** Its new permissions let the group or others write it (a file or directory; `.vscode/` made 777). */
  | 'others-writable'
  | 'git-internal'
  | 'secret';

/** One changed path in the box relative to the baseline. */
export interface ChangeEntry {
  /** Workspace-relative POSIX path (the new path for renames). */
  path: string;
  /** What happened to it. */
  kind: ChangeKind;
  /** For renames: the path it had in the baseline. */
  fromPath?: string;
  /** Entry type in the box (for deletions: the type it had in the baseline). */
  type: EntryType;
  /** POSIX mode bits (permissions only) in the box; absent for deletions. */
  mode?: number;
  /** Mode bits in the baseline; absent for additions. */
  baseMode?: number;
  /** Size in bytes in the box; absent for deletions. */
  size?: number;
  /** SHA-256 (hex) of the content in the box; absent for deletions and directories. */
  hash?: string;
  /** SHA-256 (hex) of the baseline content; absent for additions. */
  baseHash?: string;
  /** Symlink target in the box, when `type` is `symlink`. */
  linkTarget?: string;
  /** True when the content in the box is not text (NUL bytes or invalid UTF-8). */
  binary: boolean;
  /** Reasons this change must be approved deliberately; empty when none. */
  flags: FlagReason[];
}

/** Everything the box changed relative to the baseline, plus what was refused. */
export interface ChangeSet {
  /** Absolute path of the workspace folder on the host. */
  folder: string;
  /** Changed paths, sorted by path. */
  changes: ChangeEntry[];
  /** Entries that were refused, with reasons. */
  refused: RefusedEntry[];
  /** Paths that changed in the box but are excluded from sync (secrets, exclude globs); never proposed. */
  ignoredCount: number;
}

/** How a run ended. */
export type RunOutcome = 'exited' | 'timeout' | 'cancelled' | 'oom' | 'engine-error';

/** The limits and isolation a run had, recorded with it. */
export interface RunPolicy {
  /** `none`: the box has no network. `allowlist`: only `allowedHosts`, through the box's egress gateway. */
  network: 'none' | 'allowlist';
  /** With `allowlist`: the allowlist entries as written, presets expanded (e.g. `registry.npmjs.org`, `*.github.com:443`). */
  allowedHosts?: string[];
  /**
   * With `allowlist`: the model providers (`anthropic`, `openai`, `gemini`) whose stored key the gateway adds on
   * its provider routes; the box has their base-URL variables and a placeholder key, never the key.
   */
  modelKeys?: string[];
  /** When the box does not yet follow the current network settings (it is in use): what it keeps and why. */
  egressNote?: string;
  /** `uid:gid` the command ran as. */
  user: string;
  memoryMiB: number;
  cpus: number;
  pidsLimit: number;
  /** OCI runtime (`runc` when the engine's default). */
  runtime: string;
  /** Names of host variables passed in (values are never recorded). */
  envNames: string[];
  /**
   * The run asked for `network: "none"` in a box with `allowlist`: it ran with no proxy variables while the
   * box's gateway refused every connection (`network` is then `none`).
   */
  offline?: boolean;
}

/** Result of `sandbox/exec`. */
export interface ExecResult {
  /** Id of the run (unique per server process). */
  runId: string;
  /** How it ended. */
  outcome: RunOutcome;
  /** Exit code; `null` when the process was killed or never started. */
  exitCode: number | null;
  /** Captured stdout (UTF-8, possibly cut; see `truncated`). */
  stdout: string;
  /** Captured stderr (UTF-8, possibly cut; see `truncated`). */
  stderr: string;
  /** True when output beyond `outputLimitKiB` was dropped; the text ends with a visible marker. */
  truncated: boolean;
  /** Milliseconds from start to end. */
  durationMs: number;
  /** Image reference and digest (`sha256:…` image id) the run used, with its report's summary. */
  image: BoxImage;
  /** Where the box's image came from (`agentSandbox.image: "auto"`), with the devcontainer options it ignored. */
  imageSource?: ImageSourceInfo;
  /** The box's policy for this run. */
  policy: RunPolicy;
  /** Engine error text when `outcome` is `engine-error`. */
  error?: string;
  /** Paths whose content the catch-up before this run sent to the box. */
  caughtUp: string[];
  /** Paths changed on both sides at catch-up: the box's version was kept and they are conflicts. */
  conflicts: string[];
  /** Set when the box's git is not what `agentSandbox.gitHistory` asks for (e.g. the image has no git), saying so. */
  gitNote?: string;
  /**
   * Set only when the run failed (non-zero exit) and left `/workspace` full: the likely cause (`ENOSPC`).
   * Clients say so and name the fix (`agentSandbox.workspaceSizeMiB` for a tmpfs workspace).
   */
  workspaceFull?: WorkspaceFull;
  /**
   * True when processes the run left behind (still running after its own process exited) filled the box's
   * pids limit, e.g. a fork bomb, and were killed. Background processes that do not are left running.
   */
  leftoversKilled?: boolean;
  /**
   * True when the run ended because its box was removed or stopped (from outside, or its main process killed):
   * `outcome` is `engine-error`, `exitCode` `null` and `error` says so (or `oom`, exit 137, when the engine says
   * the OOM killer stopped it: under gVisor a run past the memory limit stops the whole box). The server has forgotten that box; the
   * next request that needs one creates a fresh box (and brings back the pending review when one is persisted).
   */
  boxLost?: boolean;
}

/** `/workspace` as `df` saw it after a failed run that left it full (KiB). */
export interface WorkspaceFull {
  sizeKiB: number;
  usedKiB: number;
  availableKiB: number;
  /** The `agentSandbox.workspaceVolume` kind: `tmpfs` is capped by `workspaceSizeMiB`, `disk` by the engine's disk. */
  volume: 'tmpfs' | 'disk';
}

/** A box as the server knows it. */
export interface BoxInfo {
  /** Workspace folder the box mirrors. */
  folder: string;
  /** Container id. */
  containerId: string;
  /** Workspace volume name. */
  volumeName: string;
  /** Image reference and id, with its report's summary. */
  image: BoxImage;
  /** Files and bytes sent when the box was created. */
  mirrored: { files: number; bytes: number };
  /**
   * What the box holds of git: `fresh` (a new repository per host repository, one commit of what was
   * mirrored), `full` (the host's `.git`), `none` (no `.git`). `gitNote` says why when it differs from the
   * setting (e.g. the image has no git).
   */
  git?: GitHistoryMode;
  /** Why the box's git differs from `agentSandbox.gitHistory`, in words for the agent and the developer. */
  gitNote?: string;
  /** Where the image came from (`agentSandbox.image: "auto"`): the folder's dev container or Dockerfile, and what was ignored. */
  imageSource?: ImageSourceInfo;
}

/** Result of `sandbox/checkEngine`. */
export interface EngineReport {
  /** The engine address used, e.g. `unix:///var/run/docker.sock`. */
  host: string;
  /** Where that address came from: `setting`, `DOCKER_HOST`, `DOCKER_CONTEXT`, `context:<name>`, `default`. */
  source: string;
  /** Engine version, e.g. `20.10.24`. */
  version: string;
  /** Engine API version, e.g. `1.41`. */
  apiVersion: string;
  /** Operating system and architecture of the engine. */
  os: string;
  /** Runtimes the engine offers (e.g. `runc`, `runsc`). */
  runtimes: string[];
  /** Default runtime of the engine. */
  defaultRuntime: string;
  /** The configured image and whether it is present locally. */
  image: {
    reference: string;
    present: boolean;
    /** The id the tag points to now. */
    id?: string;
    /** With `pinImageDigest`: the id boxes of this reference are pinned to (absent before first use). */
    pinnedId?: string;
    /** Set when the tag now points elsewhere than the pinned id: what happened and how to follow it. */
    note?: string;
    /** The report of the image a box would use (the pinned one when pinned), verified from its file system. */
    report?: ImageReport;
  };
}

/** The image a box runs: its configured reference, the id it runs, and what its report says in one line. */
export interface BoxImage {
  reference: string;
  /** Image id (`sha256:…`). */
  id: string;
  /** Registry digest (`name@sha256:…`) when the image came from a registry, else absent. */
  digest?: string;
  /** One line of the image report (see `ImageReport`). */
  summary?: string;
  /** Set when the reference's tag now points elsewhere than the pinned id the box runs (`pinImageDigest`). */
  note?: string;
  /** False when the image has no `/bin/sh`: only runs in `argv` form work, terminals do not. */
  hasShell?: boolean;
}

/** Which flavour of a tool the image has at the paths the box uses it from. */
export type ImageToolKind = 'gnu' | 'busybox' | 'other' | 'none';

/**
 * What an image is, verified from the image itself (inspect data and the file system of a never-started
 * container, read through the engine's export as tar headers plus the few tool binaries), on first use of an
 * image id. Stored by the engine server.
 */
export interface ImageReport {
  /** The reference it was made for (the configured image). */
  reference: string;
  /** Image id (`sha256:…`). */
  id: string;
  /** Registry digests (`name@sha256:…`) the engine knows; empty for a locally built or imported image. */
  repoDigests: string[];
  /** Whether the configured reference names a digest (`name@sha256:…`). */
  pinnedByDigest: boolean;
  sizeBytes: number;
  /** ISO time the image was built. */
  created: string;
  /** e.g. `linux/amd64`. */
  platform: string;
  /** The image's default user (`Config.User`); empty = root. The box always runs as 1000:1000. */
  user: string;
  /** Whether `/bin/sh` resolves to an executable file. */
  hasShell: boolean;
  /** The `find` at `/usr/bin/find` or `/bin/find`. */
  find: ImageToolKind;
  /** The `tar` at `/usr/bin/tar` or `/bin/tar`. */
  tar: ImageToolKind;
  /** How collect reads the box with this image. */
  collectPath: string;
  /** How the workspace enters the box (mirror and catch-up). */
  mirrorPath: string;
  /** Regular files with the setuid or setgid bit (first 50), e.g. `/usr/bin/passwd 4755 0:0`. */
  setuidFiles: string[];
  /** How many such files there are in all. */
  setuidCount: number;
  /** Entries read from the image's file system. */
  entries: number;
  /** Epoch ms of the inspection. */
  inspectedAt: number;
}

// ---------------------------------------------------------------------------------------------------------
// Requests.

/** `initializationOptions` of the LSP `initialize` request. */
export interface InitializationOptions {
  /**
   * Directory where pending reviews persist (VS Code passes the extension's workspace storage), so a window
   * reload or a server restart loses no pending change. Without it, reviews live as long as the process.
   */
  storagePath?: string;
}

/** Parameters shared by requests that address one workspace folder's box. */
export interface FolderParams {
  /** Absolute path of the workspace folder on the host. */
  folder: string;
}

/** Sets engine and box settings; sent once after start and again when settings change. */
export namespace ConfigureRequest {
  export const method = 'sandbox/configure' as const;
  export interface Params {
    /** Engine location overrides. */
    engine: EngineSettings;
    /** Box settings; fields left out keep their defaults. */
    box: Partial<BoxSettings>;
    /** Network settings (machine-scoped); absent = no network, as before. Applies to boxes created after it. */
    egress?: Partial<EgressSettings>;
    /** The user's answers about building the folder's image (`image: "auto"`); absent = build nothing, use the default. */
    imageBuilds?: ImageBuildDecisions;
  }
  /** Box and egress values are checked by the server's settings validation, which names the `agentSandbox.*` key. */
  export const params: Schema<Params> = object<Params>({
    engine: object<EngineSettings>({ dockerHost: optional(string), allowInsecureHosts: optional(array(string)) }),
    box: checkedFurther<Partial<BoxSettings>>(),
    egress: optional(checkedFurther<Partial<EgressSettings>>()),
    imageBuilds: optional(object<ImageBuildDecisions>({ allowed: array(string), refused: array(string), ask: boolean })),
  });
  export const type = new RequestType<Params, void, void>(method);
}

/** Reports on the Docker engine: version, runtimes, whether the image is present. */
export namespace CheckEngineRequest {
  export const method = 'sandbox/checkEngine' as const;
  export const params: Schema<void> = noParams;
  export const type = new RequestType0<EngineReport, void>(method);
}

/**
 * Follows the configured image's tag (`agentSandbox.pinImageDigest`): the reference is pinned anew to the id its
 * tag points to now, with that image's report. Boxes already running keep their image until reset.
 */
export namespace FollowImageTagRequest {
  export const method = 'sandbox/followImageTag' as const;
  export const params: Schema<void> = noParams;
  export const type = new RequestType0<EngineReport, void>(method);
}

/** Pulls the configured image (or a given one) with `sandbox/progress` notifications. */
export namespace PullImageRequest {
  export const method = 'sandbox/pullImage' as const;
  export interface Params {
    /** Image reference; defaults to the configured image. */
    image?: string;
    /** Token for `sandbox/progress` notifications. */
    progressToken?: string;
  }
  export const params: Schema<Params> = object<Params>({ image: optional(string), progressToken: optional(string) });
  export const type = new RequestType<Params, void, void>(method);
}

/** Creates the folder's box and mirrors the workspace in, or returns the existing one. */
export namespace EnsureBoxRequest {
  export const method = 'sandbox/ensureBox' as const;
  export interface Params extends FolderParams {
    /** Token for `sandbox/progress` notifications while mirroring. */
    progressToken?: string;
  }
  export const params: Schema<Params> = object<Params>({ folder: string, progressToken: optional(string) });
  export const type = new RequestType<Params, BoxInfo, void>(method);
}

/** Runs a command in the folder's box (creating it if needed), after catching up with host edits. */
export namespace ExecRequest {
  export const method = 'sandbox/exec' as const;
  export interface Params extends FolderParams {
    /** Command line, run with the image's `/bin/sh -c`; with `argv`, only the run's label (e.g. the words joined). */
    command: string;
    /**
     * The program and its arguments, run directly without a shell: the only form a box on an image without
     * `/bin/sh` runs (a command line there fails with `no-shell`). Timeout and cancellation need a shell to kill
     * the run's processes: in a shell-less box the run ends as `timeout`/`cancelled` and says its process was left.
     */
    argv?: string[];
    /** Working directory relative to `/workspace`; must stay inside it. */
    cwd?: string;
    /** Text written to the command's stdin, then closed. */
    stdin?: string;
    /** Timeout in seconds; defaults to the `runTimeoutSeconds` setting; 0 = none. */
    timeoutSeconds?: number;
    /** Client-chosen id for `sandbox/output` notifications and `sandbox/cancelRun`. */
    runId?: string;
    /**
     * `none`: run offline even when the box has `network: "allowlist"`. Enforced: while the run runs, the box's
     * gateway refuses every connection (403 naming the run; open tunnels are closed) — other terminals and runs
     * in the same box lose the network too until it ends — and the run gets no proxy variables. A no-op in a box
     * without network.
     */
    network?: 'none';
  }
  export const params: Schema<Params> = object<Params>({
    folder: string,
    command: string,
    argv: optional(array(string)),
    cwd: optional(string),
    stdin: optional(string),
    timeoutSeconds: optional(nonNegativeNumber),
    runId: optional(string),
    network: optional(literal('none')),
  });
  export const type = new RequestType<Params, ExecResult, void>(method);
}

/** Cancels a running exec: kills its whole process tree in the box. */
export namespace CancelRunRequest {
  export const method = 'sandbox/cancelRun' as const;
  export interface Params {
    /** The run to cancel. */
    runId: string;
  }
  export const params: Schema<Params> = object<Params>({ runId: string });
  export const type = new RequestType<Params, boolean, void>(method);
}

/** Reads the box's tree and returns what changed relative to the baseline. */
export namespace CollectRequest {
  export const method = 'sandbox/collect' as const;
  export type Params = FolderParams;
  export const params: Schema<Params> = object<Params>({ folder: string });
  export const type = new RequestType<Params, ChangeSet, void>(method);
}

/** Reads the box's content of a changed file from the last collect (base64). */
export namespace ReadProposalRequest {
  export const method = 'sandbox/readProposal' as const;
  export interface Params extends FolderParams {
    /** Workspace-relative path from the change set. */
    path: string;
  }
  export interface Result {
    /** Content as base64; empty for directories and deletions. */
    base64: string;
  }
  export const params: Schema<Params> = object<Params>({ folder: string, path: string });
  export const type = new RequestType<Params, Result, void>(method);
}

/** Reads the baseline content of a changed file (what workspace and box started from), when it was kept. */
export namespace ReadBaseRequest {
  export const method = 'sandbox/readBase' as const;
  export interface Params extends FolderParams {
    /** Workspace-relative path (for renames: the old path). */
    path: string;
  }
  export interface Result {
    /** Content as base64; absent when the base was not kept (large file, or added file). */
    base64?: string;
  }
  export const params: Schema<Params> = object<Params>({ folder: string, path: string });
  export const type = new RequestType<Params, Result, void>(method);
}

/**
 * Applies changes from the last collect to the folder on disk (for standalone clients; VS Code applies
 * through `WorkspaceEdit` and then sends `sandbox/markApplied`). Conflicts and flagged paths are skipped
 * unless listed in `approveFlagged`; `.git/` is never written.
 */
export namespace ApplyRequest {
  export const method = 'sandbox/apply' as const;
  export interface Params extends FolderParams {
    /** Paths to apply; all pending changes when omitted. */
    paths?: string[];
    /** Flagged paths the caller approves deliberately. */
    approveFlagged?: string[];
    /** Conflicting paths the developer resolved by taking the box's version. */
    takeBoxVersion?: string[];
  }
  export interface Result {
    /** Paths written, created, renamed or deleted. */
    applied: string[];
    /** Paths not applied because the workspace changed since the baseline. */
    conflicts: string[];
    /** Flagged paths skipped for lack of approval, and `.git/` paths that are never applied. */
    skipped: { path: string; reason: string }[];
  }
  export const params: Schema<Params> = object<Params>({
    folder: string,
    paths: optional(array(string)),
    approveFlagged: optional(array(string)),
    takeBoxVersion: optional(array(string)),
  });
  export const type = new RequestType<Params, Result, void>(method);
}

/** One step of applying changes to a folder. */
export interface ApplyOperation {
  /** What to do at `path`. */
  kind: 'write' | 'delete' | 'rename' | 'chmod' | 'symlink' | 'mkdir';
  /** Workspace-relative target (the new path for renames). */
  path: string;
  /** Renames: the path moved from. */
  fromPath?: string;
  /** Permission bits to set (write, rename, chmod, mkdir). */
  mode?: number;
  /** Symlinks: the target to store. */
  linkTarget?: string;
  /** Writes: SHA-256 the content must have; renames: the hash the moved file has. */
  hash?: string;
  /**
   * Writes, deletes and chmods of a file the baseline holds, renames (of `fromPath`): the SHA-256 the file on
   * disk must still have, the baseline's. The plan hashed it; whoever applies hashes it again right before
   * changing it, and a different content is a conflict, never overwritten (design.md invariant 6).
   */
  baseHash?: string;
  /** Deletes: the type removed (a directory is removed only once empty). */
  type?: EntryType;
  /** Mkdirs: a parent created for other operations, not a change of its own. */
  implied?: boolean;
}

/** What applying a selection would do, computed against the workspace's current state. */
export interface ApplyPlan {
  /** Operations in a safe order: file deletes, mkdirs (parents first), renames, directory deletes, writes and symlinks, chmods. */
  operations: ApplyOperation[];
  /** Paths changed in the workspace since the baseline; never overwritten (design.md invariant 6). */
  conflicts: { path: string; reason: string }[];
  /** `.git` paths (never applied) and flagged paths not approved. */
  skipped: { path: string; reason: string }[];
}

/**
 * Plans applying changes from the last collect against the workspace's current state, without writing.
 * The host sends the content hashes of dirty editors so unsaved edits count as changes (conflicts).
 */
export namespace PlanApplyRequest {
  export const method = 'sandbox/planApply' as const;
  export interface Params extends FolderParams {
    /** Paths to apply; all pending changes when omitted. */
    paths?: string[];
    /** Flagged paths the caller approves deliberately. */
    approveFlagged?: string[];
    /** Open editors with unsaved changes: workspace-relative path and SHA-256 of their current text. */
    dirtyEditors?: { path: string; hash: string }[];
    /** Conflicting paths the developer resolved by taking the box's version (their workspace change is replaced). */
    takeBoxVersion?: string[];
  }
  export const params: Schema<Params> = object<Params>({
    folder: string,
    paths: optional(array(string)),
    approveFlagged: optional(array(string)),
    dirtyEditors: optional(array(object<{ path: string; hash: string }>({ path: string, hash: string }))),
    takeBoxVersion: optional(array(string)),
  });
  export const type = new RequestType<Params, ApplyPlan, void>(method);
}

/** Tells the server the host applied these paths itself: their baseline advances to the box's version. */
export namespace MarkAppliedRequest {
  export const method = 'sandbox/markApplied' as const;
  export interface Params extends FolderParams {
    /** Paths (as in the change set) now equal in the workspace and the box. */
    paths: string[];
  }
  export const params: Schema<Params> = object<Params>({ folder: string, paths: array(string) });
  export const type = new RequestType<Params, void, void>(method);
}

/**
 * The folder's pending changes without touching the engine: the live box's last collect, or the review
 * persisted by an earlier window or server (see `InitializationOptions.storagePath`), or an empty set.
 */
export namespace PendingChangesRequest {
  export const method = 'sandbox/pendingChanges' as const;
  export type Params = FolderParams;
  export const params: Schema<Params> = object<Params>({ folder: string });
  export const type = new RequestType<Params, ChangeSet, void>(method);
}

/**
 * The workspace now holds what the developer settled on for these pending paths (one hunk accepted, or merged
 * by hand): their baseline advances to the workspace's current version, and each stays pending only as far as
 * the box still differs. Returns the updated change set.
 */
export namespace AdvanceBaselineRequest {
  export const method = 'sandbox/advanceBaseline' as const;
  export interface Params extends FolderParams {
    /** Pending paths whose workspace version is now agreed. */
    paths: string[];
  }
  export const params: Schema<Params> = object<Params>({ folder: string, paths: array(string) });
  export const type = new RequestType<Params, ChangeSet, void>(method);
}

/** Reverts paths in the box to the workspace's current version (all pending changes when omitted). */
export namespace DiscardRequest {
  export const method = 'sandbox/discard' as const;
  export interface Params extends FolderParams {
    /** Paths to revert; all pending when omitted. */
    paths?: string[];
  }
  export const params: Schema<Params> = object<Params>({ folder: string, paths: optional(array(string)) });
  export const type = new RequestType<Params, void, void>(method);
}

/** Removes the folder's box and volume (or every box of this server when `folder` is omitted). */
export namespace ResetRequest {
  export const method = 'sandbox/reset' as const;
  export interface Params {
    /** Folder whose box to remove; all when omitted. */
    folder?: string;
    /** Also drop the pending review (otherwise it is restored into the next box). */
    discardPending?: boolean;
  }
  export const params: Schema<Params> = object<Params>({ folder: optional(string), discardPending: optional(boolean) });
  export const type = new RequestType<Params, void, void>(method);
}

/** One package cache volume (see `sandbox/listCaches`). */
export interface CacheInfo {
  /** Engine volume name, what `sandbox/clearCaches` takes. */
  volumeName: string;
  /** `npm`, `pnpm`, `yarn`, `pip`, `uv`, `cargo`, `go-mod` or `go-build`. */
  tool: string;
  /** Workspace folder whose boxes (only) mount it, and the host it is on. */
  folder: string;
  host: string;
  /** Size as the engine measures it; absent when the engine did not say. */
  sizeBytes?: number;
  /** Whether a container (a running box) mounts it now; such a cache is not removed. */
  inUse: boolean;
  /** ISO times: when the volume was made, and when a box of this server's storage last mounted it (when known). */
  createdAt?: string;
  lastUsed?: string;
}

/** Every package cache on the engine, of all workspaces, with size and last use. */
export namespace ListCachesRequest {
  export const method = 'sandbox/listCaches' as const;
  export const params: Schema<void> = noParams;
  export const type = new RequestType0<{ caches: CacheInfo[] }, void>(method);
}

/** Removes package caches: the named volumes (cache volumes only), or all of them when `volumeNames` is absent. */
export namespace ClearCachesRequest {
  export const method = 'sandbox/clearCaches' as const;
  export interface Params {
    volumeNames?: string[];
  }
  export const params: Schema<Params> = object<Params>({ volumeNames: optional(array(string)) });
  /** `inUse`: caches a running box mounts, left in place. */
  export const type = new RequestType<Params, { removed: string[]; inUse: string[] }, void>(method);
}

/** One file a `patch` file operation changed. */
export interface PatchedFile {
  /** Workspace-relative path written or removed (the new path for renames). */
  path: string;
  /** What happened to it. */
  kind: 'added' | 'modified' | 'deleted' | 'renamed';
  /** For renames: the path it was moved from. */
  fromPath?: string;
}

/** File operations for agents, executed in the box. Paths are workspace-relative. */
export namespace FileOpRequest {
  export const method = 'sandbox/fileOp' as const;
  export type Params =
    | (FolderParams & { op: 'read'; path: string })
    | (FolderParams & { op: 'write'; path: string; content: string })
    | (FolderParams & { op: 'edit'; path: string; oldString: string; newString: string; replaceAll?: boolean })
    | (FolderParams & { op: 'delete'; path: string })
    | (FolderParams & { op: 'list'; path: string })
    /**
     * Applies a unified diff (`diff -u` or `git diff` output, one or several files, paths relative to the
     * workspace, git's `a/` `b/` prefixes allowed) with exact context: all files or none. A malformed patch is
     * `patch-malformed`, one that does not fit the box's files `edit-no-match` or `not-found`.
     */
    | (FolderParams & { op: 'patch'; patch: string });
  export interface Result {
    /** `read`: file content (UTF-8). */
    content?: string;
    /** `list`: entries with a trailing `/` on directories. */
    entries?: string[];
    /** `edit`: number of replacements made. */
    replacements?: number;
    /** `patch`: what the patch did, per file, in patch order. */
    patched?: PatchedFile[];
  }
  type Op<O extends Params['op']> = Extract<Params, { op: O }>;
  export const params: Schema<Params> = discriminated<Params, 'op'>('op', {
    read: object<Op<'read'>>({ folder: string, op: literal('read'), path: string }),
    write: object<Op<'write'>>({ folder: string, op: literal('write'), path: string, content: string }),
    edit: object<Op<'edit'>>({
      folder: string,
      op: literal('edit'),
      path: string,
      oldString: string,
      newString: string,
      replaceAll: optional(boolean),
    }),
    delete: object<Op<'delete'>>({ folder: string, op: literal('delete'), path: string }),
    list: object<Op<'list'>>({ folder: string, op: literal('list'), path: string }),
    patch: object<Op<'patch'>>({ folder: string, op: literal('patch'), patch: string }),
  });
  export const type = new RequestType<Params, Result, void>(method);
}

// Terminals: an interactive shell (or agent CLI) on a TTY in the folder's box.

/**
 * Opens a terminal in the folder's box (creating the box if needed): catches the box up with host edits, then
 * starts the first shell the image has (`bash`, then `sh`) on a TTY in `/workspace` as the box user, or runs
 * `command` with that shell's `-c`. Output comes as `sandbox/terminalOutput`, the end as `sandbox/terminalExit`.
 * Terminals of one folder share its box. A `command` whose program the image lacks fails with `not-found`
 * (setting `agentSandbox.image`) before anything starts.
 */
export namespace TerminalOpenRequest {
  export const method = 'sandbox/terminalOpen' as const;
  export interface Params extends FolderParams {
    /** Client-chosen id used by every other terminal message; unique per client. */
    terminalId: string;
    /** Initial size of the TTY. */
    cols: number;
    rows: number;
    /** Command line to run instead of an interactive shell (e.g. an agent CLI); the terminal ends with it. */
    command?: string;
    /** Working directory relative to `/workspace`. */
    cwd?: string;
    /** Token for `sandbox/progress` notifications while the box is created. */
    progressToken?: string;
  }
  export const params: Schema<Params> = object<Params>({
    folder: string,
    terminalId: string,
    cols: wholeNumber,
    rows: wholeNumber,
    command: optional(string),
    cwd: optional(string),
    progressToken: optional(string),
  });
  export interface Result {
    /** The shell that runs the terminal (or runs `command`), as found in the image, e.g. `/bin/bash`. */
    shell: string;
    /** Image reference and id of the box. */
    image: { reference: string; id: string };
    /** The box's policy (limits, user, network `none`, env names). */
    policy: RunPolicy;
    /** Paths the catch-up before the start sent to the box. */
    caughtUp: string[];
    /** Paths changed on both sides at that catch-up (the box's version was kept). */
    conflicts: string[];
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/**
 * Closes a terminal: kills its process and everything it started in the box (its process tree, and any
 * process still carrying the terminal's environment marker). Resolves after `sandbox/terminalExit` was sent;
 * `false` when no such terminal is open.
 */
export namespace TerminalCloseRequest {
  export const method = 'sandbox/terminalClose' as const;
  export interface Params {
    terminalId: string;
  }
  export const params: Schema<Params> = object<Params>({ terminalId: string });
  export const type = new RequestType<Params, boolean, void>(method);
}

// ---------------------------------------------------------------------------------------------------------
// Notifications (server → client).

/** A chunk of a run's output, as it happens. */
export namespace OutputNotification {
  export const method = 'sandbox/output' as const;
  export interface Params {
    /** The run it belongs to. */
    runId: string;
    /** Which stream. */
    stream: 'stdout' | 'stderr';
    /** The text (UTF-8). */
    text: string;
  }
  export const type = new NotificationType<Params>(method);
}

/** Progress of long work (mirroring, pulling): sent with the `progressToken` the request carried. */
export namespace ProgressNotification {
  export const method = 'sandbox/progress' as const;
  export interface Params {
    /** The token from the request. */
    token: string;
    /** What is happening, e.g. `Mirroring workspace`. */
    message: string;
    /** Units done so far (files, bytes or layers), if known. */
    done?: number;
    /** Units in total, if known. */
    total?: number;
  }
  export const type = new NotificationType<Params>(method);
}

/** The server removed boxes it found left behind (orphans from a crashed server or window). */
export namespace OrphansRemovedNotification {
  export const method = 'sandbox/orphansRemoved' as const;
  export interface Params {
    /** Container names removed. */
    containers: string[];
    /** Volume names removed. */
    volumes: string[];
  }
  export const type = new NotificationType<Params>(method);
}

// Terminals.

/** Output of a terminal's TTY (client ← server), batched over a few milliseconds. */
export namespace TerminalOutputNotification {
  export const method = 'sandbox/terminalOutput' as const;
  export interface Params {
    terminalId: string;
    /** Raw TTY output (UTF-8 text with escape sequences; characters never split across notifications). */
    data: string;
  }
  export const type = new NotificationType<Params>(method);
}

/** A terminal's process ended (client ← server); sent once, after its remaining output. */
export namespace TerminalExitNotification {
  export const method = 'sandbox/terminalExit' as const;
  export interface Params {
    terminalId: string;
    /** Exit code of the shell or command; `null` when it was killed or the code could not be read. */
    exitCode: number | null;
  }
  export const type = new NotificationType<Params>(method);
}

/** Keystrokes or pasted text for a terminal (client → server). */
export namespace TerminalInputNotification {
  export const method = 'sandbox/terminalInput' as const;
  export interface Params {
    terminalId: string;
    /** Text as typed; control keys as their bytes (`\x03` for Ctrl-C, `\r` for Enter). */
    data: string;
  }
  export const params: Schema<Params> = object<Params>({ terminalId: string, data: string });
  export const type = new NotificationType<Params>(method);
}

/** The terminal's size changed (client → server); the process gets SIGWINCH. */
export namespace TerminalResizeNotification {
  export const method = 'sandbox/terminalResize' as const;
  export interface Params {
    terminalId: string;
    cols: number;
    rows: number;
  }
  export const params: Schema<Params> = object<Params>({ terminalId: string, cols: wholeNumber, rows: wholeNumber });
  export const type = new NotificationType<Params>(method);
}

/**
 * Model API keys sealed to the engine server (X25519 + HKDF-SHA256 + AES-256-GCM, see
 * `src/core/egress/sealedKeys.ts`): the server's public key comes in the `initialize` result as
 * `modelKeys.publicKey`. The plain text is a JSON object `{ "anthropic"?: key, "openai"?: key, "gemini"?: key }`.
 * Sealed, so that a protocol trace (which logs params) never holds a key. All fields base64.
 */
export interface SealedModelKeys {
  /** The sender's ephemeral X25519 public key (SPKI DER). */
  publicKey: string;
  /** 12 bytes: the AES-GCM nonce and the HKDF salt. */
  nonce: string;
  ciphertext: string;
  /** The AES-GCM authentication tag. */
  tag: string;
}

/** What the `initialize` result adds to LSP's: the public key that model keys are sealed to. */
export interface InitializeResultExtras {
  modelKeys: { publicKey: string };
}

/**
 * Replaces the model API keys the egress gateways add (all of them: a provider left out has none). Running
 * gateways get the new keys at once, on their stdin; runs and terminals started afterwards get the base-URL
 * variables of the providers with a key. Keys are never logged, stored on disk or recorded by the server.
 */
export namespace SetModelKeysRequest {
  export const method = 'sandbox/setModelKeys' as const;
  export interface Params {
    sealed: SealedModelKeys;
  }
  export const params: Schema<Params> = object<Params>({
    sealed: object<SealedModelKeys>({ publicKey: string, nonce: string, ciphertext: string, tag: string }),
  });
  export interface Result {
    /** The providers that now have a key. */
    providers: string[];
    /** Boxes whose gateway got the new keys now; boxes in use that keep their old network until they are made anew. */
    updatedBoxes: number;
    /** Notes for people about boxes that could not follow (see `RunPolicy.egressNote`). */
    notes: string[];
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/** What the folder's box tried to reach through its egress gateway, oldest first. */
export namespace EgressAttemptsRequest {
  export const method = 'sandbox/egressAttempts' as const;
  export interface Params extends FolderParams {
    /** Only the attempts of this run (the run id the box's proxy variables carried). */
    runId?: string;
  }
  export const params: Schema<Params> = object<Params>({ folder: string, runId: optional(string) });
  export interface Result {
    /** `none` when the box has no gateway (then `attempts` is empty) or there is no box. */
    network: 'none' | 'allowlist';
    attempts: EgressAttempt[];
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/**
 * Serves the folder's sandbox tools over MCP on a local endpoint: a unix socket in a directory only this user
 * can open (mode 0700, owned by the user; see docs/protocol.md "MCP tools"). `agent-sandbox mcp` bridges stdio
 * MCP clients to it. Calling it again for the same folder returns the same socket. Fails when another live
 * server already serves the folder, or when the socket directory is not private.
 */
export namespace McpListenRequest {
  export const method = 'sandbox/mcpListen' as const;
  export type Params = FolderParams;
  export const params: Schema<Params> = object<Params>({ folder: string });
  export interface Result {
    /** Absolute path of the unix socket. */
    socketPath: string;
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/**
 * A tool call an MCP client made started or ended (server → client), so the client records it in its run
 * history like its own tool calls: `agent` is the MCP client's name from its `initialize`. The changes are
 * pending in the folder's review like any others.
 */
export namespace McpRunNotification {
  export const method = 'sandbox/mcpRun' as const;
  export interface Params {
    event: 'started' | 'ended';
    runId: string;
    folder: string;
    /** The MCP client's name and version, e.g. `claude-code 1.0.0` (started only). */
    agent?: string;
    /** The tool's name, e.g. `agentSandbox_writeFile` (started only). */
    tool?: string;
    /** The run as the history records it, e.g. `write src/a.ts` (started only). */
    command?: string;
    cwd?: string;
    /** Milliseconds since the epoch: `startedAt` or `endedAt`. */
    at: number;
    /** ended: the exec result of a runCommand. */
    result?: ExecResult;
    /** ended: why it failed. */
    error?: { reason?: string; message: string };
    /** ended: the box's change set after the run, when collected. */
    changeSet?: ChangeSet;
  }
  export const type = new NotificationType<Params>(method);
}
