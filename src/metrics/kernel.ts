// What the kernel knows about the listening socket (Linux): its accept queue now, read from
// /proc/net/tcp{,6} (`rx_queue` of a LISTEN entry is the accept-queue length, as `ss -ltn`
// Recv-Q), and TcpExt ListenOverflows from /proc/net/netstat. Undefined elsewhere.
import { readFileSync } from 'node:fs';

const TCP_LISTEN = '0A';

export const kernelQueuesReadable = (): boolean => {
  try {
    readFileSync('/proc/net/tcp', 'latin1');
    return true;
  } catch {
    return false;
  }
};

/**
 * Sum of the accept queues of every LISTEN socket on `port` (IPv4 and IPv6; with SO_REUSEPORT
 * there is one per worker), or undefined if the platform cannot tell or none is listening.
 */
export function listenQueueDepth(port: number): number | undefined {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let found = false;
  let depth = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'latin1');
    } catch {
      continue;
    }
    // "  sl  local_address rem_address   st tx_queue:rx_queue ..."
    for (const line of text.split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f[3] !== TCP_LISTEN || !f[1]?.endsWith(`:${hexPort}`)) continue;
      found = true;
      depth += parseInt(f[4]!.split(':')[1]!, 16);
    }
  }
  return found ? depth : undefined;
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
