// Binds the listening socket with an explicit backlog, trying each resolved address in
// order (the classic getaddrinfo loop). A failure names every address, the port and the cause.
import { createServer, type ListenOptions, type Server } from 'node:net';
import { readFileSync } from 'node:fs';
import type { Candidate } from './resolve.js';

export interface Bound {
  server: Server;
  address: string;
  family: 4 | 6;
  port: number;
}

export class BindError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
    this.name = 'BindError';
  }
}

const CAUSES: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied (privileged port?)',
  EADDRNOTAVAIL: 'address not available on this host',
  EAFNOSUPPORT: 'address family not supported',
  EINVAL: 'invalid address',
};

const describe = (c: Candidate, port: number, code: string): string =>
  `${c.family === 6 ? `[${c.address}]` : c.address}:${port}: ${code}${CAUSES[code] ? ` (${CAUSES[code]})` : ''}`;

/** A net.Server listening as `options` say (an address, or an inherited `{ fd }`); rejects with the listen error. */
export function listenServer(options: ListenOptions | { fd: number }, pauseOnConnect: boolean): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer({ pauseOnConnect });
    server.once('error', reject);
    server.listen(options, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

// exclusive: in a cluster primary this is a plain bind; never a handle shared through cluster.
const listenOnce = (c: Candidate, port: number, backlog: number, pauseOnConnect: boolean): Promise<Server> =>
  listenServer({ host: c.address, port, backlog, exclusive: true }, pauseOnConnect);

/**
 * Binds the first candidate that binds. `pauseOnConnect` is for the primary that hands
 * sockets on unread. Throws BindError naming each address tried, the port and the cause.
 */
export async function bindEndpoint(candidates: Candidate[], port: number, backlog: number, pauseOnConnect = true): Promise<Bound> {
  const failures: string[] = [];
  for (const c of candidates) {
    try {
      const server = await listenOnce(c, port, backlog, pauseOnConnect);
      const addr = server.address() as { port: number };
      return { server, address: c.address, family: c.family, port: addr.port };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'ERROR';
      failures.push(describe(c, port, code));
      // Dual-stack `::` in use means 0.0.0.0 is too; other causes are worth the next address.
      if (code === 'EADDRINUSE' && port !== 0 && c.address === '::') break;
    }
  }
  const code = /: (E[A-Z]+)/.exec(failures[0] ?? '')?.[1] ?? 'ERROR';
  throw new BindError(`cannot bind ${failures.join('; ')}`, code);
}

/**
 * Bind and release at once: for strategies where the workers listen (through node:cluster or
 * SO_REUSEPORT), so that a bad address fails the start in the primary with the same message.
 */
export async function probeEndpoint(candidates: Candidate[], port: number, backlog: number): Promise<Omit<Bound, 'server'>> {
  const { server, ...rest } = await bindEndpoint(candidates, port, backlog, false);
  await new Promise((r) => server.close(r));
  return rest;
}

/** The kernel caps listen()'s backlog at net.core.somaxconn (Linux). Undefined where unknown. */
export function somaxconn(): number | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    return Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim());
  } catch {
    return undefined;
  }
}

export function effectiveBacklog(backlog: number): number {
  const cap = somaxconn();
  return cap === undefined ? backlog : Math.min(backlog, cap);
}
