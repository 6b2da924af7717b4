// The primary's accept, lean: it only passes connections on, so it takes the kernel's handle as
// it is and never builds a net.Socket (a stream, its state and listeners) for it. This is what
// Node's own round-robin primary does. Only a connection told busy gets a Socket, to answer it.
// Uses net.Server's `_handle.onconnection` (the same in Node 20–24); where it is absent, the
// 'connection' event serves, with a Socket per connection as before.
import { Socket, type Server, type SocketConstructorOpts } from 'node:net';

/** A connection as the kernel gave it: a libuv TCP handle, or a Socket on the fallback path. */
export type Conn = RawHandle | Socket;
export interface RawHandle {
  close(): void;
}

interface ListenHandle {
  onconnection?: (err: number, handle?: RawHandle) => void;
}

/** Calls `onConn` for every connection `server` accepts; `onError` for a failed accept (EMFILE…). */
export function acceptRaw(server: Server, onConn: (c: Conn) => void, onError: (code: number) => void): 'raw' | 'socket' {
  const handle = (server as unknown as { _handle?: ListenHandle })._handle;
  // The check is for a Node that renames it, where the fallback keeps connections flowing.
  // Stryker disable next-line ConditionalExpression,LogicalOperator,EqualityOperator,StringLiteral: every Node this runs on has the function
  if (!handle || typeof handle.onconnection !== 'function') {
    server.on('connection', onConn);
    return 'socket';
  }
  handle.onconnection = (err, client) => {
    if (err || !client) onError(err);
    else onConn(client);
  };
  return 'raw';
}

/** The Socket for a connection that is answered here rather than passed on. */
export const asSocket = (c: Conn): Socket => (c instanceof Socket ? c : new Socket({ handle: c, readable: true, writable: true } as SocketConstructorOpts));

/** After a raw handle has been written to a worker's channel, the primary's copy is closed. */
export function releaseSent(c: Conn): void {
  // A Socket sent with Node's 'net.Socket' conversion is closed by Node itself on the ACK.
  if (!(c instanceof Socket)) c.close();
}
