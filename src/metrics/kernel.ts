// What the kernel knows about the listening socket (Linux): its accept queue now (as `ss -ltn`
// Recv-Q), from sock_diag through the fdpass addon, or else from /proc/net/tcp{,6} (`rx_queue` of
// a LISTEN entry), and TcpExt ListenOverflows from /proc/net/netstat. Undefined elsewhere.
import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { loadFdpass } from '../native/fdpass.js';

/** The LISTEN state in /proc/net/tcp{,6}. */
export const TCP_LISTEN = '0A';

export const kernelQueuesReadable = (): boolean => {
  try {
    readFileSync('/proc/net/tcp', 'latin1');
    return true;
  } catch {
    return false;
  }
};

/**
 * Accept-queue length of every LISTEN socket on `port` in one /proc/net/tcp{,6} file. The kernel
 * lists listening sockets before all others, so reading stops at the first entry that is not
 * LISTEN: under a connection storm the rest is tens of thousands of TIME_WAIT lines that the
 * kernel would otherwise generate and this process parse, on every scrape. Asynchronous, so it
 * never holds up the accept path.
 */
async function listeners(file: string, hexPort: string): Promise<number[] | undefined> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const found: number[] = [];
    const buf = Buffer.alloc(16 * 1024);
    let rest = '';
    let header = true;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return found;
      const lines = (rest + buf.toString('latin1', 0, bytesRead)).split('\n');
      rest = lines.pop()!;
      for (const line of lines) {
        if (header) {
          header = false;
          continue;
        }
        // "  sl  local_address rem_address   st tx_queue:rx_queue ..."
        const f = line.trim().split(/\s+/, 5);
        if (f[3] !== TCP_LISTEN) return found;
        if (f[1]!.endsWith(`:${hexPort}`)) found.push(parseInt(f[4]!.split(':')[1]!, 16));
      }
    }
  } finally {
    await fh.close();
  }
}

/**
 * Sum of the accept queues of every LISTEN socket on `port` (IPv4 and IPv6; with SO_REUSEPORT
 * there is one per worker), or undefined if the platform cannot tell or none is listening.
 * sock_diag first: asked for listening sockets only, the kernel walks its listening hash alone,
 * where reading /proc/net/tcp{,6} walks the whole established hash (262,144 buckets here, about
 * half the primary's CPU per scrape) before it reaches the end or a first connection.
 */
export async function listenQueueDepth(port: number, via: 'auto' | 'proc' = 'auto'): Promise<number | undefined> {
  if (via === 'auto') {
    const loaded = loadFdpass();
    const q = 'addon' in loaded ? loaded.addon.listenQueue(port) : null;
    if (q) return q[1] > 0 ? q[0] : undefined;
  }
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const all = (await Promise.all(['/proc/net/tcp', '/proc/net/tcp6'].map((f) => listeners(f, hexPort)))).flatMap((x) => x ?? []);
  return all.length ? all.reduce((a, b) => a + b, 0) : undefined;
}

/** TcpExt ListenOverflows: host-wide, all sockets, since boot. */
export function listenOverflows(): number | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/net/netstat', 'latin1');
  } catch {
    return undefined;
  }
  const lines = text.split('\n').filter((l) => l.startsWith('TcpExt:'));
  if (lines.length < 2) return undefined;
  const names = lines[0]!.split(/\s+/);
  const values = lines[1]!.split(/\s+/);
  const i = names.indexOf('ListenOverflows');
  return i < 0 ? undefined : Number(values[i]);
}
