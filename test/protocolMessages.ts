// The protocol's messages, enumerated from `src/shared/protocol.ts` itself, so a test over "every request" covers a
// message added tomorrow without being edited.
import { NotificationType, RequestType, RequestType0 } from 'vscode-jsonrpc';
import * as protocol from '../src/shared/protocol';
import type { Schema } from '../src/shared/schema';

export interface MessageNamespace {
  /** The export's name in protocol.ts, e.g. `CollectRequest`. */
  name: string;
  method: string;
  /** The schema its params are checked against, when it declares one. */
  params?: Schema<unknown>;
}

function namespaces(kind: (type: unknown) => boolean): MessageNamespace[] {
  return Object.entries(protocol as Record<string, unknown>).flatMap(([name, value]) => {
    const ns = value as { method?: unknown; type?: unknown; params?: Schema<unknown> } | undefined;
    if (!ns || typeof ns !== 'object' || typeof ns.method !== 'string' || !kind(ns.type)) return [];
    return [{ name, method: ns.method, params: ns.params }];
  });
}

/** Every request namespace (`RequestType` or `RequestType0`) in protocol.ts. */
export function requestNamespaces(): MessageNamespace[] {
  return namespaces((type) => type instanceof RequestType || type instanceof RequestType0);
}

/** Every notification namespace in protocol.ts (both directions). */
export function notificationNamespaces(): MessageNamespace[] {
  return namespaces((type) => type instanceof NotificationType);
}
