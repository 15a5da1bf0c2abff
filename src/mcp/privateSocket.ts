import { sha256 } from '../core/util/hash';
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * Where the MCP sockets live and the checks that keep them the user's own. A unix socket's access is its
 * directory's: a directory of mode 0700 owned by the user lets no other user reach (or replace) the socket.
 * A bearer token on 127.0.0.1 would need a file with the same protection plus a secret on every request; the
 * socket needs neither, and nothing listens on the network.
 */

/** Overrides the socket directory (tests, or a user who wants them elsewhere); it must be private too. */
export const MCP_DIR_VARIABLE = 'AGENT_SANDBOX_MCP_DIR';

export class PrivateSocketError extends Error {
  override readonly name = 'PrivateSocketError';
}

/** The directory holding this user's MCP sockets: `$AGENT_SANDBOX_MCP_DIR`, `$XDG_RUNTIME_DIR/agent-sandbox`, or `<tmp>/agent-sandbox-<uid>`. */
export function mcpSocketDir(env: Record<string, string | undefined> = process.env): string {
  if (env[MCP_DIR_VARIABLE]) return path.resolve(env[MCP_DIR_VARIABLE]!);
  if (env.XDG_RUNTIME_DIR) return path.join(env.XDG_RUNTIME_DIR, 'agent-sandbox');
  return path.join(os.tmpdir(), `agent-sandbox-${process.getuid?.() ?? os.userInfo().username}`);
}

/** The socket that serves a folder's tools: named by a hash of its absolute path (socket paths are short). */
export function mcpSocketPath(folder: string, env: Record<string, string | undefined> = process.env): string {
  const digest = sha256(path.resolve(folder)).slice(0, 16);
  return path.join(mcpSocketDir(env), `${digest}.sock`);
}

/**
 * Throws unless `dir` is a real directory (not a symlink), owned by this user, that no one else may enter or
 * list (no group or other bits). Both ends check: the server before it listens, the bridge before it connects,
 * so neither talks through a directory another user could have prepared.
 */
export async function assertPrivateDir(dir: string): Promise<void> {
  const stat = await fs.lstat(dir);
  if (!stat.isDirectory())
    throw new PrivateSocketError(
      `${dir} is not a directory (a symlink or a file is not trusted for MCP sockets). Remove it; Agent Sandbox recreates it.`,
    );
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid) {
    throw new PrivateSocketError(
      `${dir} belongs to user ${stat.uid}, not to you (${uid}): another user could read or replace its MCP sockets. Remove it, or set ${MCP_DIR_VARIABLE} to a directory of yours.`,
    );
  }
  if ((stat.mode & 0o077) !== 0) {
    throw new PrivateSocketError(
      `${dir} has mode ${(stat.mode & 0o777).toString(8)}: other users could reach its MCP sockets. Run "chmod 700 ${dir}".`,
    );
  }
}

/** Creates the socket directory (mode 0700) if missing, then checks it is private. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await assertPrivateDir(dir);
}

/** Connects to a socket after checking its directory; rejects with the connect error (`ENOENT`, `ECONNREFUSED`) when nothing listens. */
export async function connectPrivateSocket(socketPath: string): Promise<net.Socket> {
  await assertPrivateDir(path.dirname(socketPath));
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    socket.once('connect', () => {
      socket.removeListener('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/**
 * Listens on `socketPath` in a private directory; the socket itself is made 0600. A leftover socket of a dead
 * server is replaced; a live one (another server serves this folder) is an error.
 */
export async function listenPrivateSocket(socketPath: string, onConnection: (socket: net.Socket) => void): Promise<net.Server> {
  await ensurePrivateDir(path.dirname(socketPath));
  const live = await connectPrivateSocket(socketPath).then(
    (socket) => {
      socket.destroy();
      return true;
    },
    () => false,
  );
  if (live) throw new PrivateSocketError(`Another Agent Sandbox engine server already serves MCP on ${socketPath}.`);
  await fs.rm(socketPath, { force: true });
  const server = net.createServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  await fs.chmod(socketPath, 0o600);
  return server;
}
