/**
 * Model API providers whose keys the egress gateway adds: the box gets a base URL that points at the gateway
 * (through the relay on its own loopback) and a placeholder key; the gateway drops whatever credentials the
 * box sent and adds the real key, only on requests it forwards to that provider's own API host. The real key
 * never enters the box. Pure data and functions: used by the engine server, the gateway and the host.
 */
import { BOX_PROXY_URL } from './gatewayConfig';

export type ModelProviderId = 'anthropic' | 'openai' | 'gemini';

export interface ModelProvider {
  id: ModelProviderId;
  /** For people: `Anthropic`. */
  label: string;
  /** The provider's API origin; the gateway forwards the route's requests only here. */
  upstream: string;
  /** The header the real key goes in (lower case). */
  keyHeader: string;
  /** How the key is written in that header: `Bearer <key>` or the bare key. */
  keyFormat: 'bare' | 'bearer';
  /** The box variable the provider's clients read the API origin from, and the path the route adds after it. */
  baseUrlVariable: string;
  baseUrlSuffix: string;
  /** The box variables the clients read the key from; each gets `MODEL_KEY_PLACEHOLDER`. */
  keyVariables: string[];
  /** Where the key is made, for the Set API Key prompt. */
  consoleUrl: string;
}

/** What the box's key variables hold: a value clients accept as present, and worthless anywhere else. */
export const MODEL_KEY_PLACEHOLDER = 'agent-sandbox-placeholder';

/** The path prefix of the gateway's provider routes: `/_agent-sandbox/<provider>/…`. */
export const PROVIDER_ROUTE_PREFIX = '/_agent-sandbox/';

export const MODEL_PROVIDERS: Readonly<Record<ModelProviderId, ModelProvider>> = Object.freeze({
  anthropic: {
    id: 'anthropic',
    label: 'Anthropic',
    upstream: 'https://api.anthropic.com',
    keyHeader: 'x-api-key',
    keyFormat: 'bare',
    baseUrlVariable: 'ANTHROPIC_BASE_URL',
    baseUrlSuffix: '',
    keyVariables: ['ANTHROPIC_API_KEY'],
    consoleUrl: 'https://console.anthropic.com/settings/keys',
  },
  openai: {
    id: 'openai',
    label: 'OpenAI',
    upstream: 'https://api.openai.com',
    keyHeader: 'authorization',
    keyFormat: 'bearer',
    baseUrlVariable: 'OPENAI_BASE_URL',
    // OpenAI's clients expect the base URL to include the API version.
    baseUrlSuffix: '/v1',
    keyVariables: ['OPENAI_API_KEY'],
    consoleUrl: 'https://platform.openai.com/api-keys',
  },
  gemini: {
    id: 'gemini',
    label: 'Gemini',
    upstream: 'https://generativelanguage.googleapis.com',
    keyHeader: 'x-goog-api-key',
    keyFormat: 'bare',
    baseUrlVariable: 'GOOGLE_GEMINI_BASE_URL',
    baseUrlSuffix: '',
    keyVariables: ['GEMINI_API_KEY'],
    consoleUrl: 'https://aistudio.google.com/apikey',
  },
});

export const MODEL_PROVIDER_IDS = Object.keys(MODEL_PROVIDERS) as ModelProviderId[];

export function isModelProviderId(value: unknown): value is ModelProviderId {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(MODEL_PROVIDERS, value);
}

/** The real keys, by provider; a provider without a key has no route and no box variables. */
export type ModelKeys = Partial<Record<ModelProviderId, string>>;

/** Providers with a non-empty key, in table order. */
export function providersWithKeys(keys: ModelKeys | undefined): ModelProviderId[] {
  return MODEL_PROVIDER_IDS.filter((id) => typeof keys?.[id] === 'string' && keys[id]!.length > 0);
}

/** Bad key text (empty, or characters an HTTP header cannot carry) throws, naming the provider and the fix. */
export function checkModelKey(provider: ModelProviderId, key: string): string {
  const trimmed = key.trim();
  if (!trimmed || trimmed.length > 4096 || /[^\x21-\x7e]/.test(trimmed)) {
    throw new Error(
      `The ${MODEL_PROVIDERS[provider].label} API key must be one line of visible ASCII characters (no spaces), at most 4096; paste the key exactly as ${MODEL_PROVIDERS[provider].consoleUrl} shows it.`,
    );
  }
  return trimmed;
}

/** A run id the route's path can carry (as the proxy user name can: `runProxyEnv`). */
const ROUTE_RUN_ID = /^run-([A-Za-z0-9._-]{1,60})$/;

/**
 * The route's base URL as the box sees it, e.g. `http://127.0.0.1:3128/_agent-sandbox/anthropic`; with a run id,
 * `…/_agent-sandbox/run-<id>/anthropic`, so the gateway's record of each request names the run (what the client
 * says, not proof, as with the proxy user name).
 */
export function providerBaseUrl(provider: ModelProviderId, runId?: string): string {
  const p = MODEL_PROVIDERS[provider];
  const run = runId && ROUTE_RUN_ID.test(`run-${runId}`) ? `run-${runId}/` : '';
  return `${BOX_PROXY_URL}${PROVIDER_ROUTE_PREFIX}${run}${p.id}${p.baseUrlSuffix}`;
}

/**
 * The box variables for providers with a stored key: the base URL pointing at the gateway's route and a
 * placeholder key (the real one is added by the gateway). `NO_PROXY` covers 127.0.0.1, so clients talk to
 * the relay directly, not through the proxy.
 */
export function providerBoxEnv(providers: readonly ModelProviderId[], runId?: string): string[] {
  const env: string[] = [];
  for (const id of providers) {
    const p = MODEL_PROVIDERS[id];
    env.push(`${p.baseUrlVariable}=${providerBaseUrl(id, runId)}`);
    for (const variable of p.keyVariables) env.push(`${variable}=${MODEL_KEY_PLACEHOLDER}`);
  }
  return env;
}

/**
 * Reads an origin-form request target `/_agent-sandbox/<provider>/<rest>` into the provider and the path to
 * ask upstream (`/<rest>` with the query). `undefined` when the target is not under the prefix; `provider`
 * undefined when the name after it is unknown. A `..` segment or an encoded slash cannot climb out of the
 * provider's API: the path is rebuilt from decoded segments on the provider's own origin.
 */
export function parseProviderRoute(
  requestTarget: string,
): { provider: ModelProviderId | undefined; name: string; path: string; runId?: string } | undefined {
  const target = relayOriginForm(requestTarget);
  if (!target.startsWith(PROVIDER_ROUTE_PREFIX)) return undefined;
  let rest = target.slice(PROVIDER_ROUTE_PREFIX.length);
  // An optional `run-<id>/` first: the run the request belongs to (no provider is named `run-…`).
  const first = rest.split(/[/?]/, 1)[0] ?? '';
  const runId = ROUTE_RUN_ID.exec(first)?.[1];
  if (runId !== undefined) rest = rest.slice(first.length + 1);
  const slash = rest.search(/[/?]/);
  const name = slash < 0 ? rest : rest.slice(0, slash);
  const tail = slash < 0 ? '' : rest.slice(slash);
  const url = new URL(tail.startsWith('?') ? `/${tail}` : tail || '/', 'http://provider.invalid');
  return {
    provider: isModelProviderId(name) ? name : undefined,
    name: name.slice(0, 64),
    path: `${url.pathname}${url.search}`,
    ...(runId !== undefined ? { runId } : {}),
  };
}

/**
 * A client that sends even loopback requests through its proxy writes the absolute form of the relay's own
 * address (`http://127.0.0.1:3128/_agent-sandbox/…`): that is the route too. Any other absolute URL stays what
 * it is (a proxy request to that host, which never gets a key).
 */
function relayOriginForm(target: string): string {
  if (target.startsWith('/')) return target;
  const relay = new URL(BOX_PROXY_URL);
  for (const origin of [relay.origin, `http://localhost:${relay.port}`]) {
    if (target.toLowerCase().startsWith(`${origin}/`)) return target.slice(origin.length);
  }
  return target;
}

/** Headers that carry credentials, proxy details or the box's own addressing: never forwarded to a provider. */
const DROPPED_ON_PROVIDER_ROUTE = new Set([
  'authorization',
  'x-api-key',
  'x-goog-api-key',
  'api-key',
  'cookie',
  'host',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
]);

/**
 * The headers to send upstream: the box's headers (already without hop-by-hop ones) minus every credential
 * header any provider uses, plus `Host` for the provider and the real key in the provider's own header.
 */
export function providerRequestHeaders(raw: readonly string[], provider: ModelProviderId, key: string): string[] {
  const p = MODEL_PROVIDERS[provider];
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (!DROPPED_ON_PROVIDER_ROUTE.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  }
  out.push('Host', new URL(p.upstream).host);
  out.push(p.keyHeader, p.keyFormat === 'bearer' ? `Bearer ${key}` : key);
  return out;
}
