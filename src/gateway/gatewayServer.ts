// The egress gateway's proxy: runs inside the gateway container (bundled as dist/gateway.js), never in the
// engine server. Node's own HTTP parser reads the requests; this file decides, resolves, connects and counts.
import * as dns from 'node:dns';
import * as http from 'node:http';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { classifyAddress, type AddressVerdict } from '../core/egress/addressPolicy';
import { ALLOWED_HOSTS_SETTING, findAllowRule, normalizeHost, parsePort, type AllowRule } from '../core/egress/allowlist';
import type { EgressAttempt, EgressReason } from '../core/egress/egressAttempt';
import {
  MODEL_PROVIDERS,
  parseProviderRoute,
  providerRequestHeaders,
  type ModelKeys,
  type ModelProvider,
  type ModelProviderId,
} from '../core/egress/modelProviders';

export interface ResolvedAddress {
  address: string;
  family: number;
}

export interface GatewayOptions {
  rules: readonly AllowRule[];
  /** Tunnels and plain requests in flight at once; beyond it the gateway answers 503. */
  maxConnections: number;
  connectTimeoutMs: number;
  /** A tunnel or request with no traffic either way for this long is closed. */
  idleTimeoutMs: number;
  /** Every finished (or refused) attempt. */
  onAttempt(attempt: EgressAttempt): void;
  /** The resolver; default the container's own (`dns.lookup`, i.e. its resolv.conf). */
  lookup?(host: string): Promise<ResolvedAddress[]>;
  /** Test seam for the address check; default `classifyAddress`. */
  classify?(address: string): AddressVerdict;
  /** The real model API keys the provider routes add (delivered on stdin, never in the environment). */
  providerKeys?: ModelKeys;
  /** Extra CA certificates (PEM) the gateway trusts for its own TLS to providers, e.g. a company proxy's. */
  extraCaPem?: string;
  /** Test seam: the provider table (upstream origins); default `MODEL_PROVIDERS`. */
  providers?: Readonly<Record<ModelProviderId, ModelProvider>>;
}

/** What can change in a running gateway (the engine server sends it on stdin when settings or keys change). */
export type GatewayUpdate = Partial<Pick<GatewayOptions, 'rules' | 'providerKeys' | 'extraCaPem'>>;

const RESOLVE_TIMEOUT_MS = 10_000;
const HOP_BY_HOP = new Set(['connection', 'proxy-connection', 'keep-alive', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'upgrade']);

function defaultLookup(host: string): Promise<ResolvedAddress[]> {
  return dns.promises.lookup(host, { all: true, verbatim: true });
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms);
    promise.then(
      (value) => (clearTimeout(timer), resolve(value)),
      (error: unknown) => (clearTimeout(timer), reject(error as Error)),
    );
  });
}

/** `run-<id>` from a `Proxy-Authorization: Basic` user name: which run the client says it is. */
export function runIdFromProxyAuthorization(header: string | undefined): string | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header?.trim() ?? '');
  if (!match) return undefined;
  const user = Buffer.from(match[1]!, 'base64').toString('utf8').split(':')[0] ?? '';
  return /^run-([A-Za-z0-9._-]{1,60})$/.exec(user)?.[1];
}

/** The texts a client reads; each names what happened and, when the user can change it, the setting. */
export const DenialText = {
  notAllowlisted: (host: string, port: number): string =>
    `Agent Sandbox: ${host}:${port} is not allowed. The box reaches only the hosts in ${ALLOWED_HOSTS_SETTING} ` +
    `(and the presets of agentSandbox.networkPresets), port 443 unless an entry names another. To allow it, add ` +
    `"${port === 443 ? host : `${host}:${port}`}" to ${ALLOWED_HOSTS_SETTING} (a machine setting; a repository cannot change it).\n`,
  refusedAddress: (host: string, address: string, verdict: Extract<AddressVerdict, { allowed: false }>): string =>
    `Agent Sandbox: ${host} resolved to ${address}, a ${verdict.reason} address (${verdict.range}). The gateway never connects ` +
    `to loopback, private, link-local or metadata addresses, whatever ${ALLOWED_HOSTS_SETTING} says.\n`,
  resolveFailed: (host: string, why: string): string => `Agent Sandbox: the gateway could not resolve ${host}: ${why}\n`,
  connectFailed: (host: string, port: number, why: string): string => `Agent Sandbox: the gateway could not connect to ${host}:${port}: ${why}\n`,
  hostMismatch: (urlHost: string, header: string): string =>
    `Agent Sandbox: the request is for ${urlHost} but its Host header says ${JSON.stringify(header)}; the gateway forwards a request only to the host it names.\n`,
  badRequest: (why: string): string => `Agent Sandbox egress gateway: ${why}\n`,
  unknownProvider: (name: string): string =>
    `Agent Sandbox: there is no model provider route "${name}"; the gateway has routes for ${Object.keys(MODEL_PROVIDERS).join(', ')} under /_agent-sandbox/<provider>/.\n`,
  noProviderKey: (provider: ModelProvider): string =>
    `Agent Sandbox: no ${provider.label} API key is stored, so the gateway cannot add one. Run the command "Agent Sandbox: Set API Key…" in VS Code and choose ${provider.label}.\n`,
  upgradeRefused: (): string => 'Agent Sandbox: protocol upgrades (WebSocket) over plain HTTP are not forwarded; use wss:// (a CONNECT tunnel).\n',
  tooMany: (limit: number): string =>
    `Agent Sandbox: the gateway already carries ${limit} connections, its limit; try again when some have finished.\n`,
  offlineRun: (runIds: readonly string[]): string =>
    `Agent Sandbox: this box's network is paused while an offline run (network: "none") runs: ${runIds.join(', ')}. ` +
    `Every connection is refused until it ends; try again then.\n`,
};

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

function rawResponse(status: number, body: string): string {
  const bytes = Buffer.byteLength(body);
  return `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${bytes}\r\nConnection: close\r\n\r\n${body}`;
}

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly reason: EgressReason,
    readonly body: string,
    readonly address?: string,
  ) {
    super(body.trim());
  }
}

/** One attempt's audit record while it is under way. */
class AttemptLog {
  readonly start = new Date();
  bytesUp = 0;
  bytesDown = 0;
  host: string;
  port = 0;
  path?: string;
  address?: string;
  status?: number;
  private done = false;

  constructor(
    private readonly emit: (attempt: EgressAttempt) => void,
    readonly seq: number,
    readonly kind: EgressAttempt['kind'],
    readonly method: string,
    readonly runId: string | undefined,
    rawHost: string,
  ) {
    this.host = rawHost.slice(0, 300);
  }

  finish(decision: EgressAttempt['decision'], reason: EgressReason, detail: string): void {
    if (this.done) return;
    this.done = true;
    this.emit({
      seq: this.seq,
      ...(this.runId ? { runId: this.runId } : {}),
      kind: this.kind,
      method: this.method,
      host: this.host,
      port: this.port,
      ...(this.path !== undefined ? { path: this.path } : {}),
      decision,
      reason,
      detail: detail.slice(0, 2048),
      ...(this.address ? { address: this.address } : {}),
      ...(this.status !== undefined ? { status: this.status } : {}),
      bytesUp: this.bytesUp,
      bytesDown: this.bytesDown,
      start: this.start.toISOString(),
      end: new Date().toISOString(),
    });
  }
}

/**
 * The proxy: HTTP CONNECT tunnels (HTTPS; the TLS session is the client's own, never intercepted) and plain
 * `http://` proxy requests. For each: the allowlist decides on the host and port asked for; the gateway then
 * resolves the name itself, refuses if any address is loopback / private / link-local / metadata, and
 * connects to a checked address (never resolving again). Every attempt ends in exactly one audit record.
 */
export class GatewayServer {
  readonly server: http.Server;
  private active = 0;
  private seq = 0;
  /** Offline runs in the box: while any runs, every connection is refused (see `setOffline`). */
  private offlineRuns: readonly string[] = [];
  /** Client sockets of tunnels and requests in flight, closed when an offline run begins. */
  private readonly openClients = new Set<Duplex>();
  private readonly lookup: (host: string) => Promise<ResolvedAddress[]>;
  private readonly classify: (address: string) => AddressVerdict;
  private readonly providers: Readonly<Record<ModelProviderId, ModelProvider>>;
  private rules: readonly AllowRule[];
  private providerKeys: ModelKeys;
  private trustedCa: string[];

  constructor(private readonly options: GatewayOptions) {
    this.providers = options.providers ?? MODEL_PROVIDERS;
    this.rules = options.rules;
    this.providerKeys = { ...options.providerKeys };
    this.trustedCa = trustedCertificates(options.extraCaPem);
    this.lookup = options.lookup ?? defaultLookup;
    this.classify = options.classify ?? classifyAddress;
    this.server = http.createServer({ requestTimeout: 0, headersTimeout: 30_000 });
    this.server.on('connect', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void this.tunnel(req, socket, head));
    this.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => void this.forward(req, res));
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => this.refuseUpgrade(req, socket));
    this.server.on('clientError', (_error, socket: Duplex) => {
      if (socket.writable) socket.end(rawResponse(400, DenialText.badRequest('malformed request.')));
      else socket.destroy();
    });
  }

  /** New rules, keys or CA for the attempts that begin from now on; those under way keep what they had. */
  reconfigure(update: GatewayUpdate): void {
    if (update.rules) this.rules = update.rules;
    if (update.providerKeys) this.providerKeys = { ...update.providerKeys };
    if (update.extraCaPem !== undefined) this.trustedCa = trustedCertificates(update.extraCaPem);
  }

  /** Connections in flight (for tests and the limit). */
  get activeConnections(): number {
    return this.active;
  }

  private begin(kind: EgressAttempt['kind'], req: http.IncomingMessage, rawHost: string, routeRunId?: string): AttemptLog {
    const runId = routeRunId ?? runIdFromProxyAuthorization(req.headers['proxy-authorization']);
    return new AttemptLog(this.options.onAttempt, ++this.seq, kind, (req.method ?? '').slice(0, 32), runId, rawHost);
  }

  /** Allowlist, then resolution and the address check; returns the checked addresses in resolver order. */
  private async decide(log: AttemptLog, host: string, port: number): Promise<{ rule: AllowRule; addresses: string[] }> {
    const rule = findAllowRule(this.rules, host, port);
    if (!rule) {
      throw new Refusal(403, 'not-allowlisted', DenialText.notAllowlisted(host, port));
    }
    return { rule, addresses: await this.resolveChecked(log, host) };
  }

  /** Resolution with the gateway's own resolver and the address check (every address); in resolver order. */
  private async resolveChecked(log: AttemptLog, host: string): Promise<string[]> {
    let addresses: string[];
    if (net.isIP(host)) {
      addresses = [host];
    } else {
      try {
        addresses = (await withTimeout(this.lookup(host), RESOLVE_TIMEOUT_MS, 'resolving')).map((a) => a.address);
      } catch (error) {
        throw new Refusal(502, 'resolve-failed', DenialText.resolveFailed(host, (error as NodeJS.ErrnoException).code ?? (error as Error).message));
      }
      if (!addresses.length) throw new Refusal(502, 'resolve-failed', DenialText.resolveFailed(host, 'no address'));
    }
    // One refused address refuses the name: a name that mixes public and internal answers is not trusted.
    for (const address of addresses) {
      const verdict = this.classify(address);
      if (!verdict.allowed) {
        throw new Refusal(403, 'refused-address', DenialText.refusedAddress(host, address, verdict), address);
      }
    }
    log.address = addresses[0];
    return addresses;
  }

  /** Connects to the first checked address that answers; the addresses are IP literals, so nothing resolves. */
  private async connect(log: AttemptLog, host: string, port: number, addresses: string[]): Promise<net.Socket> {
    let lastError = 'no address';
    for (const address of addresses) {
      try {
        const socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect({ host: address, port });
          const timer = setTimeout(
            () => (s.destroy(), reject(new Error(`no answer within ${this.options.connectTimeoutMs / 1000} s`))),
            this.options.connectTimeoutMs,
          );
          s.once('connect', () => (clearTimeout(timer), resolve(s)));
          s.once('error', (error) => (clearTimeout(timer), reject(error)));
        });
        log.address = address;
        return socket;
      } catch (error) {
        lastError = `${address}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
      }
    }
    throw new Refusal(502, 'connect-failed', DenialText.connectFailed(host, port, lastError));
  }

  /**
   * Pauses (a non-empty list: the offline runs in the box) or resumes (empty) the gateway. Paused, it refuses
   * every new connection with a 403 naming the runs and closes those in flight, so nothing in the box — the
   * offline run, a process claiming another run's id, or one talking to the relay directly — gets out.
   */
  setOffline(runIds: readonly string[]): void {
    this.offlineRuns = [...runIds];
    if (this.offlineRuns.length === 0) return;
    for (const client of this.openClients) client.destroy();
    this.openClients.clear();
  }

  /** The offline runs the gateway is paused for; empty when it forwards. */
  get offline(): readonly string[] {
    return this.offlineRuns;
  }

  private admit(client?: Duplex): void {
    if (this.offlineRuns.length > 0) {
      throw new Refusal(403, 'offline-run', DenialText.offlineRun(this.offlineRuns));
    }
    if (this.active >= this.options.maxConnections) {
      throw new Refusal(503, 'too-many-connections', DenialText.tooMany(this.options.maxConnections));
    }
    this.active++;
    if (client) {
      this.openClients.add(client);
      client.once('close', () => this.openClients.delete(client));
    }
  }

  private async tunnel(req: http.IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    const target = req.url ?? '';
    const log = this.begin('connect', req, target);
    let admitted = false;
    client.on('error', () => undefined);
    try {
      const colon = target.lastIndexOf(':');
      const host = colon > 0 ? normalizeHost(target.slice(0, colon)) : undefined;
      const port = colon > 0 ? parsePort(target.slice(colon + 1)) : undefined;
      if (!host || port === undefined) {
        throw new Refusal(400, 'bad-request', DenialText.badRequest(`CONNECT needs host:port, got ${JSON.stringify(target.slice(0, 200))}.`));
      }
      log.host = host;
      log.port = port;
      this.admit(client);
      admitted = true;
      const { rule, addresses } = await this.decide(log, host, port);
      const upstream = await this.connect(log, host, port, addresses);
      if (client.destroyed) {
        upstream.destroy();
        log.finish('failed', 'connect-failed', 'the client left before the tunnel opened');
        return;
      }
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) {
        log.bytesUp += head.length;
        upstream.write(head);
      }
      await this.pipeBothWays(log, client, upstream);
      log.finish('allowed', 'allowlisted', `allowed by "${rule.source}"`);
    } catch (error) {
      this.refuse(log, error, (status, body) => client.end(rawResponse(status, body)));
    } finally {
      if (admitted) this.active--;
    }
  }

  /** Copies both ways, counting bytes, until both sides are done or idle for too long. */
  private pipeBothWays(log: AttemptLog, client: Duplex, upstream: net.Socket): Promise<void> {
    return new Promise((resolve) => {
      const idle = (): void => {
        client.destroy();
        upstream.destroy();
      };
      upstream.setTimeout(this.options.idleTimeoutMs, idle);
      client.on('data', (chunk: Buffer) => (log.bytesUp += chunk.length));
      upstream.on('data', (chunk: Buffer) => (log.bytesDown += chunk.length));
      client.pipe(upstream);
      upstream.pipe(client);
      let open = 2;
      const closed = (): void => {
        if (--open === 0) resolve();
      };
      client.once('close', () => (upstream.destroy(), closed()));
      upstream.once('close', () => (client.destroy(), closed()));
      upstream.on('error', () => undefined);
    });
  }

  private async forward(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const route = parseProviderRoute(req.url ?? '');
    if (route) return this.forwardToProvider(req, res, route);
    const log = this.begin('http', req, req.url ?? '');
    let admitted = false;
    try {
      let url: URL;
      try {
        url = new URL(req.url ?? '');
      } catch {
        throw new Refusal(400, 'bad-request', DenialText.badRequest('this is an HTTP proxy: send absolute http:// URLs, or CONNECT for https://.'));
      }
      if (url.protocol !== 'http:') {
        throw new Refusal(400, 'bad-request', DenialText.badRequest(`plain proxy requests must be http://; for ${url.protocol}// use CONNECT.`));
      }
      const host = normalizeHost(url.hostname);
      const port = url.port ? Number(url.port) : 80;
      if (!host) throw new Refusal(400, 'bad-request', DenialText.badRequest(`invalid host ${JSON.stringify(url.hostname)}.`));
      log.host = host;
      log.port = port;
      log.path = url.pathname.slice(0, 1024);
      const hostHeader = req.headers.host ?? '';
      if (!sameAuthority(hostHeader, host, port, 80)) {
        throw new Refusal(403, 'host-mismatch', DenialText.hostMismatch(`${host}:${port}`, hostHeader));
      }
      this.admit(req.socket);
      admitted = true;
      const { rule, addresses } = await this.decide(log, host, port);
      const upstreamSocket = await this.connect(log, host, port, addresses);
      const headers = forwardedHeaders(req.rawHeaders);
      await this.relayExchange(log, req, res, upstreamSocket, { method: req.method, path: `${url.pathname}${url.search}`, headers }, (error) =>
        DenialText.connectFailed(host, port, error.message),
      );
      log.finish('allowed', 'allowlisted', `allowed by "${rule.source}"`);
    } catch (error) {
      this.refuse(log, error, answerWith(log, res));
    } finally {
      if (admitted) this.active--;
    }
  }

  /**
   * A model provider route (origin-form `/_agent-sandbox/<provider>/…`, sent straight to the relay): the request
   * goes over the gateway's own TLS to the provider's API origin and nowhere else, whatever Host the box
   * wrote; the box's credential headers are dropped and the stored key added. The response streams back as it
   * arrives (server-sent events are never buffered).
   */
  private async forwardToProvider(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    route: NonNullable<ReturnType<typeof parseProviderRoute>>,
  ): Promise<void> {
    const provider = route.provider ? this.providers[route.provider] : undefined;
    const origin = provider ? new URL(provider.upstream) : undefined;
    const log = this.begin('http', req, origin?.hostname ?? route.name, route.runId);
    log.path = route.path.split('?')[0]!.slice(0, 1024);
    let admitted = false;
    try {
      if (!provider || !origin) throw new Refusal(404, 'bad-request', DenialText.unknownProvider(route.name));
      const host = origin.hostname;
      const port = origin.port ? Number(origin.port) : 443;
      log.port = port;
      const key = this.providerKeys[provider.id];
      if (!key) throw new Refusal(403, 'no-provider-key', DenialText.noProviderKey(provider));
      // An offline run pauses the provider routes too, and closes requests on them in flight.
      this.admit(req.socket);
      admitted = true;
      const addresses = await this.resolveChecked(log, host);
      const tcp = await this.connect(log, host, port, addresses);
      const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
        const s = tls.connect({ socket: tcp, servername: host, ca: this.trustedCa, ALPNProtocols: ['http/1.1'] });
        s.once('secureConnect', () => resolve(s));
        s.once(
          'error',
          (error) => (tcp.destroy(), reject(new Refusal(502, 'connect-failed', DenialText.connectFailed(host, port, `TLS: ${error.message}`)))),
        );
      });
      const headers = providerRequestHeaders(forwardedHeaders(req.rawHeaders), provider.id, key);
      await this.relayExchange(log, req, res, secure, { method: req.method, path: route.path, headers }, (error) =>
        DenialText.connectFailed(host, port, error.message),
      );
      log.finish('allowed', 'provider-key', `${provider.label} API: the gateway added the stored key`);
    } catch (error) {
      this.refuse(log, error, answerWith(log, res));
    } finally {
      if (admitted) this.active--;
    }
  }

  /** Sends the request upstream on `socket` and streams the response back, counting bytes; resolves when done. */
  private relayExchange(
    log: AttemptLog,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    socket: net.Socket,
    request: { method: string | undefined; path: string; headers: string[] },
    failureText: (error: Error) => string,
  ): Promise<void> {
    return new Promise<void>((resolve) => {
      const upstream = http.request({
        createConnection: () => socket,
        method: request.method,
        path: request.path,
        headers: request.headers,
        setHost: false,
      });
      socket.setTimeout(this.options.idleTimeoutMs, () => upstream.destroy(new Error('idle')));
      req.on('data', (chunk: Buffer) => (log.bytesUp += chunk.length));
      req.pipe(upstream);
      upstream.on('response', (upRes) => {
        log.status = upRes.statusCode;
        res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, forwardedHeaders(upRes.rawHeaders));
        // Each chunk goes out as it comes (no buffering): server-sent events stream.
        res.flushHeaders();
        upRes.on('data', (chunk: Buffer) => (log.bytesDown += chunk.length));
        upRes.pipe(res);
        upRes.on('end', resolve);
        upRes.on('error', () => (res.destroy(), resolve()));
      });
      upstream.on('error', (error) => {
        if (!res.headersSent) {
          log.status = 502;
          res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
          res.end(failureText(error));
        } else {
          res.destroy();
        }
        resolve();
      });
      res.on('close', () => (upstream.destroy(), resolve()));
    }).finally(() => socket.destroy());
  }

  private refuseUpgrade(req: http.IncomingMessage, socket: Duplex): void {
    const log = this.begin('http', req, req.headers.host ?? '');
    socket.on('error', () => undefined);
    socket.end(rawResponse(403, DenialText.upgradeRefused()));
    log.finish('denied', 'upgrade-refused', `Upgrade: ${String(req.headers.upgrade).slice(0, 64)}`);
  }

  private refuse(log: AttemptLog, error: unknown, answer: (status: number, body: string) => void): void {
    if (error instanceof Refusal) {
      if (error.address) log.address = error.address;
      answer(error.status, error.body);
      const decision = error.reason === 'resolve-failed' || error.reason === 'connect-failed' ? 'failed' : 'denied';
      log.finish(decision, error.reason, error.message);
      return;
    }
    answer(502, DenialText.badRequest(`internal error: ${(error as Error).message}`));
    log.finish('failed', 'connect-failed', `internal error: ${(error as Error).message}`);
  }
}

/** How a refused plain or provider-route request is answered: the status and text, or a cut when it had begun. */
function answerWith(log: AttemptLog, res: http.ServerResponse): (status: number, body: string) => void {
  return (status, body) => {
    log.status = status;
    if (res.headersSent) return void res.destroy();
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' });
    res.end(body);
  };
}

/** The system's CA certificates plus the extra ones (`agentSandbox.gatewayCaFile`). */
function trustedCertificates(extraPem: string | undefined): string[] {
  return extraPem?.trim() ? [...tls.rootCertificates, extraPem] : [...tls.rootCertificates];
}

/** Whether a Host header names exactly `host:port` (the port may be left out when it is the default). */
export function sameAuthority(header: string, host: string, port: number, defaultPort: number): boolean {
  const text = header.trim();
  const match = /^(\[[^\]]+\]|[^:]+)(?::([0-9]+))?$/.exec(text);
  if (!match) return false;
  const headerPort = match[2] === undefined ? defaultPort : parsePort(match[2]);
  return normalizeHost(match[1]!) === host && headerPort === port;
}

/** Raw header list without hop-by-hop headers (and those the Connection header names). */
function forwardedHeaders(raw: string[]): string[] {
  const named = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'connection') {
      for (const token of raw[i + 1]!.split(',')) named.add(token.trim().toLowerCase());
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (!HOP_BY_HOP.has(name) && !named.has(name)) out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}
