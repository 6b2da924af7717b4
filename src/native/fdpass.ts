// Loads the fdpass addon (native/fdpass.c, built at install by node-gyp). Absent or unloadable
// (no C toolchain at install, not Linux): `loadFdpass()` says why, and the ipc transport serves.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Opaque handles owned by the addon. */
export type Listener = { readonly __listener: unique symbol };
export type Channel = { readonly __channel: unique symbol };
export type Receiver = { readonly __receiver: unique symbol };
export type Refuser = { readonly __refuser: unique symbol };

export interface FdpassAddon {
  /**
   * Accepts on a dup of `fd` (close your copy); one call per wake-up with the batch (at most
   * `maxBatch`, 1024). With `p4` and `p6` each connection's client key (admission/client.ts) comes in `keys`.
   * The arrays are views over buffers the addon keeps: read them during the call, copy what you keep.
   */
  listen(fd: number, onBatch: (fds: Int32Array, failed: number, errno: number, keys: Float64Array) => void, maxBatch?: number, p4?: number, p6?: number): Listener;
  unlisten(l: Listener): void;
  /** A SOCK_SEQPACKET pair: [handle, the worker's end to pass at fork]. */
  channel(onClosed: (n: number) => void, onWritable: () => void): [Channel, number];
  /** Sent count (fewer: EAGAIN, onWritable follows), or -errno with none sent. Sent fds are closed. Each goes with its client key (0 without `keys`). */
  send(ch: Channel, fds: Int32Array, at: Float64Array, start: number, count: number, keys?: Float64Array): number;
  /** Closes reported since the last read, read now (without waiting for onClosed). */
  reports(ch: Channel): number;
  /** Whether a report wakes the primary (onClosed); otherwise reports wait for reports(). */
  wantReports(ch: Channel, want: boolean): void;
  /** After the worker exited: its unread hand-offs, its last close reports and what it handed back; closes the channel. */
  reclaim(ch: Channel): { fds: Int32Array; at: Float64Array; keys: Float64Array; closed: number; closedKeys: Float64Array; moved: Int32Array; movedKeys: Float64Array; movedLost: number };
  /** Connections the worker handed back (give()) since the last take, now the caller's, with their client keys; `lost`: dropped in transit. */
  takeMoved(ch: Channel): { fds: Int32Array; keys: Float64Array; lost: number } | null;
  /** Client keys of the closes read since the last take (reportKeys()); each is also in the counts reports() and onClosed give. */
  takeClosedKeys(ch: Channel): Float64Array | null;
  /** `keys`: each hand-off's client key; `missingKeys`: those of the hand-offs the kernel dropped. The arrays are valid during the call, as listen()'s. */
  receiver(fd: number, onBatch: (fds: Int32Array, at: Float64Array, missing: number, keys: Float64Array, missingKeys: Float64Array) => void): Receiver;
  /** Adds `n` closed connections to tell the primary; 0, or the errno if it cannot be told. */
  report(rx: Receiver, n: number): number;
  /** Hands connection `fd` back to the primary: 0 (then close your copy, and never report it closed), or the errno. */
  give(rx: Receiver, fd: number, key?: number): number;
  /** Tells the primary these connections closed, by client key (where it limits per client); 0, or the errno. */
  reportKeys(rx: Receiver, keys: Float64Array): number;
  /** Blocks up to `ms` until every report is sent: for a worker about to exit. */
  flushSync(rx: Receiver, ms: number): boolean;
  /** Busy answers from C: `payload` written, then a lingering close (at most `maxLingering` at once, else closed at once); null refuses with a reset. */
  refuser(payload: Buffer | null, maxLingering?: number): Refuser;
  /** Answers `fd` busy and takes it. */
  refuse(r: Refuser, fd: number): void;
  /** Refused sockets still waiting for their client to close (at most 2 s each). */
  lingering(r: Refuser): number;
  closeRefuser(r: Refuser): void;
  /** The peer address of socket `fd` as text, or null. */
  peer(fd: number): string | null;
  /** Closes a descriptor with a TCP reset. */
  reset(fd: number): void;
  /** [connections in the accept queues, listening sockets] of the TCP listeners on `port` (IPv4 and IPv6), from sock_diag; null if it cannot tell. */
  listenQueue(port: number): [number, number] | null;
}

/** The package root (where binding.gyp and build/ are), from src/ or dist/src/ alike. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'binding.gyp')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}
let cached: { addon: FdpassAddon } | { error: string } | undefined;

export function loadFdpass(): { addon: FdpassAddon } | { error: string } {
  if (cached) return cached;
  if (process.platform !== 'linux') return (cached = { error: `needs Linux (this is ${process.platform})` });
  try {
    const require = createRequire(import.meta.url);
    const load = require('node-gyp-build') as (dir: string) => FdpassAddon;
    cached = { addon: load(packageRoot()) };
  } catch (err) {
    const msg = (err as Error).message.split('\n', 1)[0]!;
    cached = { error: `native addon not loadable (${msg}); build it with \`npm rebuild cluster-acceptor\` or \`node native/build.mjs\`` };
  }
  return cached;
}
