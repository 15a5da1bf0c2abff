// What the test stand-ins for upstream services (test/standIns/*Server.ts) share: they listen for HTTPS on 443
// with the key and certificate in TLS_KEY / TLS_CERT (a certificate from the tests' own CA), or for plain HTTP on
// STAND_IN_PORT without them; they write every request to stdout as one line `request {json}` so a test can check
// what a client sent; and they print `listening` once they accept connections. Node built-ins only: the tests
// copy the compiled files into a container on their stand-in internet and run them with `node`.
import * as http from 'node:http';
import * as https from 'node:https';

/** What a stand-in logs for each request (after `request `); stand-ins add what the body held. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
}

/** The prefix of a request's log line. */
export const REQUEST_LINE_PREFIX = 'request ';

/** Writes `record` as the request's log line. */
export function logRequest(record: RecordedRequest): void {
  process.stdout.write(`${REQUEST_LINE_PREFIX}${JSON.stringify(record)}\n`);
}

/** Sends a JSON body with a status. */
export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** Reads each request's whole body, then hands it over with the request's path (query left out). */
export function serve(answer: (req: http.IncomingMessage, res: http.ServerResponse, path: string, body: Buffer) => void): void {
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => answer(req, res, decodeURIComponent((req.url ?? '/').split('?')[0]!), Buffer.concat(chunks)));
  };
  const { TLS_KEY: key, TLS_CERT: cert } = process.env;
  const server = key && cert ? https.createServer({ key, cert }, handler) : http.createServer(handler);
  server.listen(key && cert ? 443 : Number(process.env.STAND_IN_PORT ?? 8080), () => console.log('listening'));
}
