// Entry of dist/gateway.js, the program of a box's egress containers (see src/core/egress/egressGateway.ts):
//   node gateway.js gateway   the proxy, on the unix socket in the shared egress volume; config in
//                             AGENT_SANDBOX_GATEWAY (JSON, GatewayConfig); audit records on stdout; it
//                             listens only after its first stdin line, {"type":"configure",…} (GatewayUpdate:
//                             the model keys, which never go in the environment, and the extra CA); later
//                             lines change rules, keys or CA in place, each answered {"type":"configured"}
//   node gateway.js relay     the box-side listener on 127.0.0.1:3128, carrying connections to that socket
// stdout carries JSON lines only: {"type":"ready"} once listening, {"type":"attempt","attempt":{…}} per attempt.
// AGENT_SANDBOX_GATEWAY_SOCKET and AGENT_SANDBOX_RELAY_PORT move the socket and the port (the bundle's own
// tests run both on the host's loopback); the containers use the defaults.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { GatewayConfig } from '../core/egress/gatewayConfig';
import { GATEWAY_OFFLINE_FILE, GATEWAY_OFFLINE_SIGNAL, GATEWAY_SOCKET_PATH } from '../core/egress/gatewayConfig';
import * as readline from 'node:readline';
import { GatewayServer, type GatewayUpdate } from './gatewayServer';
import { createRelayServer, RELAY_PORT } from './relayServer';

function line(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

function fail(message: string): never {
  line({ type: 'error', message });
  process.exit(2);
}

const mode = process.argv[2];
const socketPath = process.env.AGENT_SANDBOX_GATEWAY_SOCKET || GATEWAY_SOCKET_PATH;
const relayPort = process.env.AGENT_SANDBOX_RELAY_PORT ? Number(process.env.AGENT_SANDBOX_RELAY_PORT) : RELAY_PORT;
process.on('SIGTERM', () => process.exit(0));
// An error nothing expected ends the process (no connection then, never a wider one), saying why first.
process.on('uncaughtException', (error) => fail(`${mode}: unexpected error: ${error.stack ?? error.message}`));

if (mode === 'gateway') {
  let config: GatewayConfig;
  try {
    config = JSON.parse(process.env.AGENT_SANDBOX_GATEWAY ?? '') as GatewayConfig;
  } catch {
    fail('AGENT_SANDBOX_GATEWAY is not valid JSON');
  }
  let gateway: GatewayServer | undefined;
  let updates = 0;
  // The offline runs as last signalled; kept for a gateway made after the signal, and across reconfigures.
  let offlineRuns: string[] = [];
  process.on(GATEWAY_OFFLINE_SIGNAL, () => {
    offlineRuns = readOfflineRuns(path.join(path.dirname(socketPath), GATEWAY_OFFLINE_FILE));
    gateway?.setOffline(offlineRuns);
    line({ type: 'offline', offlineRuns });
  });
  const input = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  input.on('line', (text) => {
    let update: GatewayUpdate & { type?: string };
    try {
      update = JSON.parse(text) as GatewayUpdate & { type?: string };
    } catch {
      return line({ type: 'error', message: 'a stdin line is not valid JSON; ignored' });
    }
    if (update?.type !== 'configure') return line({ type: 'error', message: 'a stdin line is not {"type":"configure",…}; ignored' });
    if (gateway) {
      gateway.reconfigure(update);
      return line({ type: 'configured', update: ++updates });
    }
    gateway = new GatewayServer({
      ...config,
      ...update,
      rules: update.rules ?? config.rules,
      onAttempt: (attempt) => line({ type: 'attempt', attempt }),
    });
    if (offlineRuns.length) gateway.setOffline(offlineRuns);
    fs.rmSync(socketPath, { force: true });
    gateway.server.on('error', (error) => fail(`gateway: ${error.message}`));
    gateway.server.listen(socketPath, () => {
      fs.chmodSync(socketPath, 0o600);
      line({ type: 'ready', role: 'gateway', rules: config.rules.length });
    });
  });
  // Without its first line the gateway never listens: there is nothing to serve without knowing the keys.
  input.on('close', () => gateway || fail('stdin closed before the {"type":"configure"} line'));
} else if (mode === 'relay') {
  const relay = createRelayServer({ socketPath, maxConnections: 4096 });
  relay.on('error', (error) => fail(`relay: ${error.message}`));
  relay.listen(relayPort, '127.0.0.1', () => line({ type: 'ready', role: 'relay', port: (relay.address() as { port: number }).port }));
} else {
  fail(`unknown mode ${JSON.stringify(mode)}; use "gateway" or "relay"`);
}

/** The offline runs the engine wrote before signalling; a missing, unreadable or malformed list pauses too (fail closed). */
function readOfflineRuns(file: string): string[] {
  try {
    const value = JSON.parse(fs.readFileSync(file, 'utf8')) as { offlineRuns?: unknown };
    if (Array.isArray(value.offlineRuns) && value.offlineRuns.every((id) => typeof id === 'string'))
      return value.offlineRuns.map((id: string) => id.slice(0, 64));
  } catch {
    // Falls through to paused.
  }
  return ['(unreadable offline list)'];
}
