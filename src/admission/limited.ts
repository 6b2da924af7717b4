// The log line for --max-connections-per-client: at most one per LOG_MS while clients are told
// busy at their limit, with how many were refused since the last line and the clients, by address
// and prefix (up to three: under an attack from many, the line stays short).
import type { Logger } from '../log.js';
import { clientText, type Prefixes } from './client.js';

const LOG_MS = 10_000;
const NAMED = 3;

export function limitLog(log: Logger, limit: number, prefixes: Prefixes, peer: (conn: unknown) => string | undefined, everyMs = LOG_MS): (conn: unknown, key: number, holds: number) => void {
  let refused = 0;
  const clients = new Map<number, { client: string; connections: number }>();
  let timer: NodeJS.Timeout | undefined;
  let last = -Infinity;
  const flush = (): void => {
    timer = undefined;
    last = Date.now();
    log.warn({ limit, refused, clients: [...clients.values()] }, 'clients at --max-connections-per-client told busy');
    refused = 0;
    clients.clear();
  };
  return (conn, key, holds) => {
    refused++;
    const known = clients.get(key);
    if (known) known.connections = holds;
    else if (clients.size < NAMED) clients.set(key, { client: clientText(peer(conn) ?? '', prefixes), connections: holds });
    if (timer) return;
    const wait = last + everyMs - Date.now();
    if (wait <= 0) flush();
    else timer = setTimeout(flush, wait).unref();
  };
}
