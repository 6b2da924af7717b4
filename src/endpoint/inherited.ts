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
  if (listenPid === undefined || Number(listenPid) !== pid || !Number.isInteger(fds) || fds < 1) return undefined;
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
    throw fail((err as NodeJS.ErrnoException).code ?? 'unreadable');
  }
  const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
  if (!inode) throw fail(`not a socket (${link})`);
  for (const [file, family] of [['/proc/self/net/tcp', 4], ['/proc/self/net/tcp6', 6]] as const) {
    let text = '';
    try {
      text = readFileSync(file, 'latin1');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[9] !== inode) continue;
      if (f[3] !== TCP_LISTEN) throw fail('not listening');
      const [hexAddr, hexPort] = f[1]!.split(':') as [string, string];
      return { address: family === 4 ? ipv4(hexAddr) : ipv6(hexAddr), family, port: parseInt(hexPort, 16) };
    }
  }
  throw fail('not a TCP socket');
}

/** /proc/net/tcp prints addresses as host-order 32-bit words (little-endian here). */
const word = (hex: string): number[] => [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16));
const ipv4 = (hex: string): string => word(hex).join('.');
function ipv6(hex: string): string {
  const bytes = [0, 8, 16, 24].flatMap((i) => word(hex.slice(i, i + 8)));
  const groups = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16));
  const v4 = groups.slice(0, 6).join(':') === '0:0:0:0:0:ffff' ? `::ffff:${bytes.slice(12).join('.')}` : undefined;
  return v4 ?? groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::').replace(/:{3,}/, '::');
}
