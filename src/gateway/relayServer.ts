// The relay: runs in a sidecar container that shares the box's network namespace (bundled in
// dist/gateway.js). It listens on the box's loopback only and carries each connection, byte for byte, to the
// gateway's unix socket. It parses nothing; when the gateway is gone it answers with an HTTP 502 the client
// can read, and no connection goes anywhere else.
import * as net from 'node:net';

export const RELAY_PORT = 3128;

export const GATEWAY_DOWN_TEXT =
  'Agent Sandbox: the egress gateway of this box is not running, so nothing can leave the box. ' +
  'Reset the box (Agent Sandbox: Reset Sandbox) to start a new one.\n';

export function gatewayDownResponse(): string {
  return (
    `HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(GATEWAY_DOWN_TEXT)}\r\n` +
    `Connection: close\r\n\r\n${GATEWAY_DOWN_TEXT}`
  );
}

export function createRelayServer(options: { socketPath: string; maxConnections: number }): net.Server {
  const server = net.createServer({ pauseOnConnect: true }, (client) => {
    client.on('error', () => undefined);
    const gateway = net.connect(options.socketPath);
    let connected = false;
    gateway.once('connect', () => {
      connected = true;
      client.pipe(gateway);
      gateway.pipe(client);
      client.resume();
    });
    gateway.on('error', () => {
      if (connected) return void client.destroy();
      // Read (and drop) what the client sends, or its end would never be seen and the socket would linger.
      client.resume();
      client.end(gatewayDownResponse());
    });
    client.once('close', () => gateway.destroy());
    gateway.once('close', () => {
      if (connected) client.end();
    });
  });
  // A backstop against descriptor exhaustion; the gateway's own, lower limit answers 503 before this.
  server.maxConnections = options.maxConnections;
  return server;
}
