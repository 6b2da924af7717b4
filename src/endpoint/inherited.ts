// systemd socket activation (sd_listen_fds(3)): when LISTEN_PID names this process, the listening
// socket is fd 3, bound and queued by systemd, which holds it (and its queue) while the acceptor
// restarts. Read once in the primary and removed from the environment, as sd_listen_fds does, so
// that no child takes it for its own.
import { readFileSync, readlinkSync } from 'node:fs';
import { BindError } from './bind.js';
import { TCP_LISTEN } from '../metrics/kernel.js';

/** SD_LISTEN_FDS_START */
export const LISTEN_FDS_START = 3;

/** The inherited listening descriptor, or undefined when this process was not socket-activated. */
export function inheritedFd(env: NodeJS.ProcessEnv = process.env, pid = process.pid): number | undefined {
  const listenPid = env.LISTEN_PID;
  const fds = Number(env.LISTEN_FDS);
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  if (Number(listenPid) !== pid || !Number.isInteger(fds) || fds < 1) return undefined;
  return LISTEN_FDS_START;
}

/**
 * The address and port of an inherited listening socket, read without touching it (Linux
 * /proc), which also checks that it is a listening TCP socket: where the workers listen, the
 * primary must not open it as a server of its own.
 */
export function inheritedAddress(fd: number): { address: string; family: 4 | 6; port: number } {
  const fail = (why: string): BindError => new BindError(`cannot serve the inherited socket (fd ${fd}, from systemd): ${why}`, 'ENOTSOCK');
  let link: string;
  try {
    link = readlinkSync(`/proc/self/fd/${fd}`);
  } catch (err) {
    // Stryker disable next-line StringLiteral,LogicalOperator: equivalent, a readlink error always has its errno's code
    throw fail((err as NodeJS.ErrnoException).code ?? 'unreadable');
  }
  // Stryker disable next-line Regex: equivalent, /proc writes a socket's link as exactly socket:[inode]
  const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
  if (!inode) throw fail(`not a socket (${link})`);
  for (const [file, family] of [['/proc/self/net/tcp', 4], ['/proc/self/net/tcp6', 6]] as const) {
    let text: string;
    // Stryker disable next-line BlockStatement: the catch is for a host without IPv6 (no tcp6); every test host has both
    try { text = readFileSync(file, 'latin1'); } catch { continue; }
    // The header line's tenth field is not a number, so it matches no inode.
    for (const line of text.split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f[9] !== inode) continue;
      if (f[3] !== TCP_LISTEN) throw fail('not listening');
      const [hexAddr, hexPort] = f[1]!.split(':') as [string, string];
      return { address: procAddress(hexAddr), family, port: parseInt(hexPort, 16) };
    }
  }
  throw fail('not a TCP socket');
}

/**
 * An address as /proc/net/tcp and tcp6 print it (host-order 32-bit words, little-endian here),
 * written as the kernel's inet_ntop and Node's server.address() write it.
 */
export function procAddress(hex: string): string {
  const bytes = hex.match(/.{8}/g)!.flatMap((w) => [6, 4, 2, 0].map((i) => parseInt(w.slice(i, i + 2), 16)));
  if (bytes.length === 4) return bytes.join('.');
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return `::ffff:${bytes.slice(12).join('.')}`;
  const groups = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16));
  // The URL parser compresses the first longest run of zero groups (RFC 5952), as inet_ntop does.
  return new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1);
}
