// The worker's end of the fdpass transport: hand-offs arrive on the channel inherited as fd 4, a
// batch per wake-up, each wrapped as a net.Socket; closed connections are told back on it.
import { Socket } from 'node:net';
import { clock } from '../clock.js';
import { CHANNEL_FD } from '../dispatch/transport.js';
import { loadFdpass } from '../native/fdpass.js';
import type { Logger } from '../log.js';

export interface HandoffChannel {
  /** `n` connections closed: their slots are free (batched by the caller, never lost). */
  report(n: number): void;
  /** Waits up to `ms` until every report is sent: before the process exits. */
  flushSync(ms: number): void;
  /** Closes told by client key (the primary counts per client): one key per connection. */
  reportKeys(keys: number[]): void;
  /** Hands connection `fd` back to the primary: true, then the caller closes its copy and never reports it closed. */
  give(fd: number, key: number): boolean;
}

/**
 * Starts receiving. `serve` gets each connection and how long it waited since the primary
 * accepted it; `failed` gets hand-offs that arrived unusable (not wrappable, or dropped by the
 * kernel in transit because this process was out of descriptors): counted and their slots freed.
 */
export function receiveHandoffs(serve: (socket: Socket, waitedMs: number, key: number) => void, failed: (n: number, keys: ArrayLike<number>) => void, log: Logger): HandoffChannel {
  const loaded = loadFdpass();
  // The primary loaded the addon before forking this worker, so this runs only if the build
  // vanished in between.
  if (!('addon' in loaded)) {
    // Stryker disable next-line ObjectLiteral,StringLiteral: unreached by the tests (the build never vanishes under them)
    log.fatal({ reason: loaded.error }, 'fdpass transport unavailable in the worker');
    process.exit(1);
  }
  const { addon } = loaded;
  const wrapper = new SocketWrapper();
  const rx = addon.receiver(CHANNEL_FD, (fds, at, missing, keys, missingKeys) => {
    const now = clock();
    for (let i = 0; i < fds.length; i++) {
      let socket: Socket;
      try {
        socket = wrapper.wrap(fds[i]!);
      } catch (err) {
        // Wrapping fails only for a descriptor that is not open or not a socket, and a hand-off is always an open TCP socket.
        addon.reset(fds[i]!);
        // Stryker disable next-line ObjectLiteral,StringLiteral: unreached by the tests (a hand-off is always a socket)
        log.error({ err }, 'hand-off could not be wrapped');
        failed(1, [keys[i]!]);
        continue;
      }
      serve(socket, now - at[i]!, keys[i]!);
    }
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, failed(0) counts and frees nothing
    if (missing > 0) failed(missing, missingKeys);
  });
  return {
    report: (n) => void addon.report(rx, n),
    // Stryker disable next-line ArrowFunction: a close report is written at once unless the channel is full, and it is never full at a drained worker's exit in the tests
    flushSync: (ms) => void addon.flushSync(rx, ms),
    reportKeys: (keys) => void addon.reportKeys(rx, Float64Array.from(keys)),
    give: (fd, key) => addon.give(rx, fd, key) === 0,
  };
}

/** A libuv stream handle's JS class (tcp_wrap's TCP): what node:net makes for each connection it accepts. */
type HandleClass = new (type: number) => { open(fd: number): number; close(): void };
/** tcp_wrap's `constants.SOCKET`: a connection, not a server. */
const SOCKET = 0;

/**
 * Wraps received descriptors as net.Sockets. `new Socket({ fd })` first asks the kernel what the
 * descriptor is (fstat, isatty's ioctl, getsockopt, getsockname: four system calls per
 * connection). Every hand-off comes from the primary's listening TCP socket, so after the first
 * one the handle is made from the first one's class and opened directly, as node:net's own accept
 * does; an open that fails takes the probing path, which throws for what is not a socket.
 */
export class SocketWrapper {
  /** Descriptors wrapped by probing: the first, and any whose direct open failed. */
  probes = 0;
  private Handle: HandleClass | undefined;

  wrap(fd: number): Socket {
    if (this.Handle) {
      const handle = new this.Handle(SOCKET);
      if (handle.open(fd) === 0) return new Socket({ handle, readable: true, writable: true } as ConstructorParameters<typeof Socket>[0]);
      handle.close();
    }
    this.probes++;
    const socket = new Socket({ fd, readable: true, writable: true });
    const made = (socket as unknown as { _handle?: { constructor?: { name?: string } } })._handle?.constructor;
    if (made?.name === 'TCP') this.Handle = made as unknown as HandleClass;
    return socket;
  }
}
