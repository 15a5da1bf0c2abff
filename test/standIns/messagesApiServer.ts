// A stand-in for the Anthropic Messages API, for the end-to-end agent tests. The real API is unreachable from
// the test machine (it has no internet but the npm registry), and a test must not depend on what a model says:
// this server plays a scripted conversation instead, with the wire format of the real thing — `POST /v1/messages`
// answered with server-sent events (message_start, content_block_start / _delta / _stop, message_delta,
// message_stop; a tool call's input arrives as input_json_delta fragments), so the real Claude Code CLI runs its
// tool calls and posts their results back as it would against api.anthropic.com.
//
// Run as a program (see standInHttp.ts for how it listens and logs). STAND_IN_SCRIPT is a JSON array of turns,
// {"tool": {"name", "input"}} or {"text": "..."}: the request whose messages already hold N assistant turns gets
// turn N (past the end: the last one again). A request that offers no tools (a side request: a title, a summary)
// gets a short text. Each request's log line has what its body held: model, stream, tool names, tool results.
import type * as http from 'node:http';
import { randomBytes } from 'node:crypto';
import { logRequest, sendJson, serve, type RecordedRequest } from './standInHttp';

/** One scripted answer of the conversation. */
export type ScriptedTurn = { tool: { name: string; input: Record<string, unknown> } } | { text: string };

/** A request's log line. */
export interface RecordedMessagesRequest extends RecordedRequest {
  /** The scripted turn answered (undefined: not a conversation request). */
  turn?: number;
  model?: string;
  stream?: boolean;
  toolNames?: string[];
  /** The text of each tool_result block in the request's messages, in order. */
  toolResults?: string[];
}

interface MessagesBody {
  model?: string;
  stream?: boolean;
  tools?: { name?: string }[];
  messages?: { role: string; content: string | { type: string; content?: unknown; text?: string }[] }[];
}

const script = JSON.parse(process.env.STAND_IN_SCRIPT ?? '[{"text":"done"}]') as ScriptedTurn[];

const id = (prefix: string): string => `${prefix}_${randomBytes(12).toString('hex')}`;

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((part: { text?: string }) => part.text ?? '').join('');
  return '';
}

function toolResultsOf(body: MessagesBody): string[] {
  const results: string[] = [];
  for (const message of body.messages ?? []) {
    if (typeof message.content === 'string') continue;
    for (const block of message.content) if (block.type === 'tool_result') results.push(textOf(block.content));
  }
  return results;
}

/** The content block a turn answers with, as it is once complete. */
function blockOf(
  turn: ScriptedTurn,
): { type: 'text'; text: string } | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> } {
  return 'tool' in turn ? { type: 'tool_use', id: id('toolu'), name: turn.tool.name, input: turn.tool.input } : { type: 'text', text: turn.text };
}

/** Writes one message as the API streams it: the block opens empty and its content arrives in two deltas. */
function stream(res: http.ServerResponse, model: string, turn: ScriptedTurn): void {
  const block = blockOf(turn);
  const send = (event: string, data: unknown): void => void res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'request-id': id('req') });
  send('message_start', {
    type: 'message_start',
    message: {
      id: id('msg'),
      type: 'message',
      role: 'assistant',
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: 100, output_tokens: 1 },
    },
  });
  if (block.type === 'text') {
    send('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
    send('ping', { type: 'ping' });
    const half = Math.ceil(block.text.length / 2);
    for (const piece of [block.text.slice(0, half), block.text.slice(half)]) {
      send('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: piece } });
    }
  } else {
    send('content_block_start', {
      type: 'content_block_start',
      index: 0,
      content_block: { type: 'tool_use', id: block.id, name: block.name, input: {} },
    });
    send('ping', { type: 'ping' });
    const json = JSON.stringify(block.input);
    const half = Math.ceil(json.length / 2);
    for (const piece of [json.slice(0, half), json.slice(half)]) {
      send('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: piece } });
    }
  }
  send('content_block_stop', { type: 'content_block_stop', index: 0 });
  send('message_delta', {
    type: 'message_delta',
    delta: { stop_reason: block.type === 'tool_use' ? 'tool_use' : 'end_turn', stop_sequence: null },
    usage: { output_tokens: 20 },
  });
  send('message_stop', { type: 'message_stop' });
  res.end();
}

function answer(req: http.IncomingMessage, res: http.ServerResponse, path: string, raw: Buffer): void {
  const record: RecordedMessagesRequest = { method: req.method ?? '', path, headers: req.headers };
  if (req.method !== 'POST' || path !== '/v1/messages') {
    logRequest(record);
    return sendJson(res, 404, {
      type: 'error',
      error: { type: 'not_found_error', message: `the stand-in serves only POST /v1/messages, not ${req.method} ${path}` },
    });
  }
  let body: MessagesBody;
  try {
    body = JSON.parse(raw.toString('utf8')) as MessagesBody;
  } catch {
    logRequest(record);
    return sendJson(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: 'body is not JSON' } });
  }
  const model = body.model ?? 'claude-stand-in';
  record.model = model;
  record.stream = body.stream === true;
  record.toolNames = (body.tools ?? []).map((t) => t.name ?? '');
  record.toolResults = toolResultsOf(body);
  // The agent's conversation offers tools; a side request (a title, a summary) gets a plain text answer.
  const turnIndex = record.toolNames.length > 0 ? (body.messages ?? []).filter((m) => m.role === 'assistant').length : undefined;
  const turn: ScriptedTurn = turnIndex === undefined ? { text: 'stand-in' } : script[Math.min(turnIndex, script.length - 1)]!;
  record.turn = turnIndex;
  logRequest(record);
  if (body.stream) return stream(res, model, turn);
  const block = blockOf(turn);
  sendJson(res, 200, {
    id: id('msg'),
    type: 'message',
    role: 'assistant',
    model,
    content: [block],
    stop_reason: block.type === 'tool_use' ? 'tool_use' : 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: 100, output_tokens: 20 },
  });
}

serve(answer);
