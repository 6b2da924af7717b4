// Loads the user's handler module, in a worker only: the primary never runs user code.
import { pathToFileURL } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Protocol } from '../options.js';
import { builtinHttp, builtinTcp } from './builtin.js';

export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => unknown;
export type TcpHandler = (socket: Socket) => unknown;

export async function loadHandler(path: string | undefined, protocol: 'http'): Promise<HttpHandler>;
export async function loadHandler(path: string | undefined, protocol: 'tcp'): Promise<TcpHandler>;
export async function loadHandler(path: string | undefined, protocol: Protocol): Promise<HttpHandler | TcpHandler>;
export async function loadHandler(path: string | undefined, protocol: Protocol): Promise<HttpHandler | TcpHandler> {
  if (path === undefined) return protocol === 'http' ? builtinHttp : builtinTcp;
  const mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  // ESM `export default fn`; CommonJS `module.exports = fn`; tsc's CommonJS `exports.default = fn`.
  const fn = typeof mod.default === 'function' ? mod.default : (mod.default as { default?: unknown } | undefined)?.default;
  if (typeof fn !== 'function') {
    const named = Object.keys(mod).filter((k) => k !== 'default');
    throw new TypeError(`no default export function (got ${typeof mod.default}${named.length ? `; the module exports ${named.join(', ')}` : ''}): export default a ${protocol === 'http' ? '(req, res)' : '(socket)'} listener`);
  }
  return fn as HttpHandler | TcpHandler;
}

/** Whether this Node runs .ts modules itself (type stripping: Node >= 22.18 / 23.6 by default). */
export const stripsTypes = (): boolean => Boolean((process.features as { typescript?: unknown }).typescript);

/** One line on why `path` could not be loaded, with what to do where there is something to do. */
export function loadError(path: string, err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (/\.[mc]?ts$/.test(path) && !stripsTypes() && (e.code === 'ERR_UNKNOWN_FILE_EXTENSION' || e instanceof SyntaxError)) {
    return `Node ${process.version} does not run TypeScript: compile it (tsc) and pass the .js file, or use Node >= 22.18, which strips types`;
  }
  return String(e?.message ?? err).split('\n', 1)[0]!;
}
