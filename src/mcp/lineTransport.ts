import type { Duplex } from 'node:stream';
import { ReadBuffer, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/** Bytes one MCP message may take on the wire; a bigger one closes the connection (tools refuse inputs over 8 MiB with a clear error first). */
export const MAX_MCP_MESSAGE_BYTES = 16 * 1024 * 1024;

/**
 * MCP's stdio framing (one JSON-RPC message per line) over any byte stream: the local socket on the server's
 * side, and a client's side of it in tests. Unlike the SDK's stdio transports it reports the stream closing, so
 * a client that goes away ends its in-flight tool calls.
 */
export class LineTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private readonly buffer = new ReadBuffer({ maxBufferSize: MAX_MCP_MESSAGE_BYTES });
  private closed = false;

  constructor(private readonly stream: Duplex) {}

  async start(): Promise<void> {
    this.stream.on('data', (chunk: Buffer) => this.receive(chunk));
    this.stream.on('error', (error) => this.onerror?.(error));
    this.stream.on('close', () => this.finish());
    this.stream.on('end', () => this.stream.end());
  }

  private receive(chunk: Buffer): void {
    try {
      this.buffer.append(chunk);
    } catch {
      // No id can be answered: say why on the wire, then hang up.
      const error = {
        jsonrpc: '2.0' as const,
        id: null,
        error: { code: -32600, message: `A message over ${MAX_MCP_MESSAGE_BYTES / 1024 / 1024} MiB was refused and the connection closed.` },
      };
      this.stream.end(`${JSON.stringify(error)}\n`);
      return;
    }
    for (;;) {
      let message: JSONRPCMessage | null;
      try {
        message = this.buffer.readMessage();
      } catch (error) {
        this.onerror?.(error instanceof Error ? error : new Error(String(error)));
        continue;
      }
      if (!message) return;
      this.onmessage?.(message);
    }
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (this.closed || this.stream.writableEnded) return;
    await new Promise<void>((resolve, reject) => this.stream.write(serializeMessage(message), (error) => (error ? reject(error) : resolve())));
  }

  async close(): Promise<void> {
    this.stream.end();
    this.stream.destroy();
    this.finish();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.buffer.clear();
    this.onclose?.();
  }
}
