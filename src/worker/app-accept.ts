// What an app server's own accept enforces (lib/net.js onconnection), in its order, kept for the
// connections it is given.
// - `maxConnections`: past it node drops a connection, and the server emits 'drop'. Under the
//   acceptor the limit is part of the worker's capacity, so the primary holds back what is past it:
//   the connection waits in the queue (--backlog) or is told busy there, as admission says. One
//   that reaches the worker past the limit anyway (lowered since the worker last told the primary,
//   or a strategy where the worker accepts) is told busy rather than closed unanswered, counted
//   `worker_full`, and the server's 'drop' listeners hear of it as they would under node.
// - `blockList` (Node >= 22.13): a client it denies is closed unanswered, as node closes it, and
//   counted `blocked`.
import { isIP, type BlockList, type Server, type Socket } from 'node:net';

type Counted = { maxConnections?: unknown; _connections?: number; blockList?: BlockList };

/**
 * The most connections `server` takes at once: `maxConnections` rounded up (node refuses at
 * `_connections >= maxConnections`), or Infinity where it sets none. 0 sets none here, as on
 * Node 20 (Node 24 refuses every connection at 0).
 */
export function appLimit(server: Server | undefined): number {
  const m = (server as Counted | undefined)?.maxConnections;
  return typeof m === 'number' && m >= 1 ? Math.ceil(m) : Infinity;
}

/** `server` holds as many connections as its `maxConnections` allows. */
export function atAppLimit(server: Server): boolean {
  return ((server as Counted)._connections ?? 0) >= appLimit(server);
}

/** What node's accept tells 'drop' listeners about a connection it refused. */
export function emitDrop(server: Server, socket: Socket): void {
  server.emit('drop', {
    localAddress: socket.localAddress,
    localPort: socket.localPort,
    localFamily: socket.localFamily,
    remoteAddress: socket.remoteAddress,
    remotePort: socket.remotePort,
    remoteFamily: socket.remoteFamily,
  });
}

/**
 * `server`'s blockList denies this client. Only a Node that takes the option (22.13, 23.4) keeps it
 * on the server, so on Node 20 there is none, as node's own accept applies none there.
 */
export function blocked(server: Server, socket: Socket): boolean {
  const list = (server as Counted).blockList;
  if (list === undefined) return false;
  const address = socket.remoteAddress;
  const v = address === undefined ? 0 : isIP(address);
  return v !== 0 && list.check(address!, v === 6 ? 'ipv6' : 'ipv4');
}
