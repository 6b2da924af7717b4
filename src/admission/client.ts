// Who a connection's client is, as one number: the key per-client admission counts by. IPv4 (and
// IPv4-mapped IPv6) is the address's first p4 bits, exactly; IPv6 its first p6 bits (a /64 is
// one host, or one subscriber, on most networks), hashed (FNV-1a, 64 bit) into 52 bits above 2^32,
// so the two never meet and every key is exact in a double. The fdpass addon computes the same in
// C at accept time (native/fdpass.c, client_key); this serves the ipc transport and the tests.
import { isIPv4, isIPv6 } from 'node:net';

export interface Prefixes {
  v4: number;
  v6: number;
}

/** `--client-prefix 32,64`: the bits of an IPv4 and of an IPv6 address that name one client. */
export function parsePrefixes(raw: string): Prefixes | undefined {
  const m = /^\s*(\d{1,2})\s*,\s*(\d{1,3})\s*$/.exec(raw);
  if (!m) return undefined;
  const v4 = Number(m[1]);
  const v6 = Number(m[2]);
  return v4 <= 32 && v6 <= 128 ? { v4, v6 } : undefined;
}

/** The 16 bytes of an IPv6 address's text (zone dropped), or undefined. */
function v6Bytes(text: string): number[] | undefined {
  const addr = text.replace(/%.*$/, '');
  if (!isIPv6(addr)) return undefined;
  let tail: number[] = [];
  let head = addr;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(addr);
  if (dotted) {
    tail = dotted[1]!.split('.').map(Number);
    head = addr.slice(0, -dotted[1]!.length);
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const [l, r] = head.includes('::') ? head.split('::') as [string, string] : [head, undefined];
  const words = (s: string): number[] => (s === '' ? [] : s.split(':').map((w) => parseInt(w, 16)));
  const left = words(l);
  const right = r === undefined ? [] : words(r);
  const zeros = 8 - tail.length / 2 - left.length - right.length;
  const all = [...left, ...Array<number>(r === undefined ? 0 : zeros).fill(0), ...right];
  return [...all.flatMap((w) => [w >> 8, w & 0xff]), ...tail];
}

const TWO_32 = 4294967296;
const MASK_52 = (1n << 52n) - 1n;

function v4Key(b: number[], bits: number): number {
  const v = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  return bits <= 0 ? 0 : bits >= 32 ? v : (v & (0xffffffff << (32 - bits))) >>> 0;
}

/** The client key of a peer address (text, as getpeername gives it); 0 for anything else. */
export function clientKey(address: string, p: Prefixes): number {
  if (isIPv4(address)) return v4Key(address.split('.').map(Number), p.v4);
  const b = v6Bytes(address);
  if (!b) return 0;
  if (b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return v4Key(b.slice(12), p.v4);
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < 16; i++) {
    const keep = p.v6 - i * 8;
    const m = keep >= 8 ? b[i]! : keep <= 0 ? 0 : b[i]! & ((0xff << (8 - keep)) & 0xff);
    h = ((h ^ BigInt(m)) * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return TWO_32 + Number(h & MASK_52);
}

/** The client as a log line names it: `203.0.113.0/24`, `2001:db8:1:2::/64`. */
export function clientText(address: string, p: Prefixes): string {
  const b = v6Bytes(address);
  if (isIPv4(address) || (b && b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff)) {
    const k = v4Key(isIPv4(address) ? address.split('.').map(Number) : b!.slice(12), p.v4);
    return `${[k >>> 24, (k >>> 16) & 0xff, (k >>> 8) & 0xff, k & 0xff].join('.')}/${p.v4}`;
  }
  const m = b ? b.map((x, i) => (p.v6 - i * 8 >= 8 ? x : p.v6 - i * 8 <= 0 ? 0 : x & ((0xff << (8 - (p.v6 - i * 8))) & 0xff))) : [];
  if (!b) return address;
  const groups = Array.from({ length: 8 }, (_, i) => ((m[2 * i]! << 8) | m[2 * i + 1]!).toString(16));
  // The URL parser writes it as inet_ntop does (RFC 5952).
  return `${new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1)}/${p.v6}`;
}
