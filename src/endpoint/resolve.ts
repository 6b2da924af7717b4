// Endpoint resolution, as in the classic socket example: look the name up, get every
// address (getaddrinfo order, IPv4 and IPv6), and try them in that order until one binds.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

export interface Candidate {
  address: string;
  family: 4 | 6;
}

/**
 * Every address `host` names, in the resolver's order. No host means "all interfaces":
 * `::` (dual stack, also accepts IPv4) where the host has IPv6, else `0.0.0.0` — the same
 * choice Node makes for listen() without a host, made explicit so it can be logged.
 */
export async function resolveEndpoint(host: string | undefined): Promise<Candidate[]> {
  if (host === undefined) return [{ address: '::', family: 6 }, { address: '0.0.0.0', family: 4 }];
  const literal = isIP(host);
  if (literal) return [{ address: host, family: literal as 4 | 6 }];
  try {
    const all = await lookup(host, { all: true, verbatim: true });
    return all.map((a) => ({ address: a.address, family: a.family as 4 | 6 }));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'ERROR';
    throw Object.assign(new Error(`cannot resolve host ${JSON.stringify(host)}: ${code}`), { code });
  }
}
