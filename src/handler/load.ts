// Loads the user's app, in a worker only: the primary never runs user code. What the module does
// decides how it is served:
//   1. it starts its own server (listen() during its import, or within --start-timeout after);
//   2. it exports a server (`export default server`);
//   3. it exports a `(req, res)` listener (Express) or, with --protocol tcp, a `(socket)` one;
//   4. it exports an object with `fetch(request)` (Hono's `export default app`, itty-router, h3).
// Koa's and Fastify's app objects, exported as they are, are served through their own adapters
// (`app.callback()`, `app.server` once `app.ready()`), as their docs do for serverless.
import { pathToFileURL } from 'node:url';
import { spawnSync } from 'node:child_process';
import { Server } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Protocol } from '../options.js';
import { builtinHttp, builtinTcp } from './builtin.js';
import type { ListenInterceptor } from './listen.js';

export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => unknown;
export type TcpHandler = (socket: Socket) => unknown;
export type UpgradeHandler = (req: IncomingMessage, socket: Socket, head: Buffer) => unknown;
/** A web-standard handler: `env` is `{ incoming, outgoing }` (the node:http pair). */
export type FetchHandler = (request: Request, env: unknown) => Response | Promise<Response>;

export type App =
  | { form: 'server'; server: Server; via: 'listen' | 'export' }
  | { form: 'listener'; listener: HttpHandler | TcpHandler; upgrade?: UpgradeHandler | undefined }
  | { form: 'fetch'; fetch: FetchHandler; upgrade?: UpgradeHandler | undefined };

/** Thrown when the app cannot be served; its message is the one line the start fails with. */
export class AppError extends Error {}

const forms = (protocol: Protocol): string =>
  protocol === 'http'
    ? 'call listen() on process.env.PORT, or export default a server, a (req, res) listener or an object with fetch(request)'
    : 'call listen() on process.env.PORT, or export default a server or a (socket) listener';

/** What a value is, in a few words, for the error line. */
function kind(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v !== 'object') return typeof v;
  const name = (v as { constructor?: { name?: string } }).constructor?.name;
  return name && name !== 'Object' ? `object (${name})` : 'object';
}

/** `p`, or `onTimeout()`'s error after `ms`; the timer never outlives `p`. */
export function timeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(onTimeout()), ms)))]).finally(() => clearTimeout(timer));
}

/**
 * Imports `path` and works out how to serve it. `intercept` has been installed before the import,
 * so a listen() during it is seen. Rejects with the import's own error, or an AppError.
 */
export async function loadApp(path: string | undefined, protocol: Protocol, intercept: ListenInterceptor | undefined, startTimeoutMs: number): Promise<App> {
  if (path === undefined) return { form: 'listener', listener: protocol === 'http' ? builtinHttp : builtinTcp };
  const t0 = Date.now();
  const secs = `${startTimeoutMs / 1000}s`;
  const imported = import(pathToFileURL(path).href) as Promise<Record<string, unknown>>;
  // A server that listened wins over what the module exports, and is served from its listen on,
  // as `node app.js` would (an import that fails after it fails as an unhandled rejection would).
  const listened = intercept ? intercept.listened().then((server) => ({ server })) : new Promise<never>(() => {});
  const first = await timeout(Promise.race([imported.then((mod) => ({ mod })), listened]), startTimeoutMs, () => new AppError(`the app did not start within ${secs} (--start-timeout): its import has not finished and it has not called listen() (a top-level await still waiting?)`));
  if ('server' in first) return { form: 'server', server: first.server, via: 'listen' };
  const { mod } = first;
  // ESM `export default x`; CommonJS `module.exports = x`; tsc's CommonJS `exports.default = x`.
  let main = mod.default;
  const inner = (main as { default?: unknown } | null | undefined)?.default;
  if (typeof main === 'object' && main !== null && !(main instanceof Server) && inner !== undefined) main = inner;
  const upgrade = typeof mod.upgrade === 'function' ? (mod.upgrade as UpgradeHandler) : undefined;
  const app = await fromExport(main, protocol, upgrade);
  if (app) return app;
  const named = Object.keys(mod).filter((k) => k !== 'default' && k !== 'module.exports');
  const exportsNothing = (main === undefined || (typeof main === 'object' && main !== null && Object.keys(main).length === 0 && Object.getPrototypeOf(main) === Object.prototype)) && named.length === 0;
  if (exportsNothing && intercept) {
    // A script that starts its server later (after connecting to its database, say).
    const server = await timeout(intercept.listened(), Math.max(0, startTimeoutMs - (Date.now() - t0)), () => new AppError(`the app did not start within ${secs} (--start-timeout): it exports nothing and has not called listen(); ${forms(protocol)}`));
    return { form: 'server', server, via: 'listen' };
  }
  const what = `the module exports ${main === undefined ? 'no default' : `a default ${kind(main)}`}${named.length ? ` and ${named.join(', ')}` : ''}, and did not call listen()`;
  throw new AppError(`${what}: ${forms(protocol)}`);
}

async function fromExport(v: unknown, protocol: Protocol, upgrade: UpgradeHandler | undefined): Promise<App | undefined> {
  if (v instanceof Server) return { form: 'server', server: v, via: 'export' };
  if (typeof v === 'function') return { form: 'listener', listener: v as HttpHandler, upgrade };
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (protocol === 'http' && typeof o.fetch === 'function') {
    return { form: 'fetch', fetch: (request, env) => (o.fetch as FetchHandler).call(o, request, env), upgrade };
  }
  // Koa: its request listener is app.callback().
  if (protocol === 'http' && typeof o.callback === 'function' && typeof o.use === 'function') {
    return { form: 'listener', listener: (o.callback as () => HttpHandler).call(o), upgrade };
  }
  // Fastify: its routes are on app.server's 'request' once app.ready() has settled.
  if (o.server instanceof Server && typeof o.ready === 'function') {
    await (o.ready as () => Promise<unknown>).call(o);
    return { form: 'server', server: o.server, via: 'export' };
  }
  return undefined;
}

/** Whether this Node runs .ts modules itself (type stripping: Node >= 22.18 / 23.6 by default). */
export const stripsTypes = (): boolean => Boolean((process.features as { typescript?: unknown }).typescript);

/** One line on why `path` could not be loaded, with what to do where there is something to do. */
export function loadError(path: string, err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (/\.[mc]?ts$/.test(path) && !stripsTypes() && (e.code === 'ERR_UNKNOWN_FILE_EXTENSION' || e instanceof SyntaxError)) {
    return `Node ${process.version} does not run TypeScript: compile it (tsc) and pass the .js file, or use Node >= 22.18, which strips types`;
  }
  const message = String(e?.message ?? err).split('\n', 1)[0]!;
  const at = err instanceof SyntaxError ? syntaxErrorAt(path, err) : undefined;
  return at ? `${message} (${at})` : message;
}

/**
 * Where a syntax error is, `file:line:column`, as `node` prints it. A CommonJS stack starts with
 * it; an ES module's error does not carry it, so the app's file is parsed once more by
 * `node --check` (parsing only: nothing runs). An error in a module the app imports is left at
 * its message: checking that one would mean finding it first.
 */
function syntaxErrorAt(path: string, err: SyntaxError): string | undefined {
  let lines = (err.stack ?? '').split('\n');
  if (!/^.+:\d+$/.test(lines[0] ?? '')) lines = spawnSync(process.execPath, ['--check', path], { encoding: 'utf8', timeout: 10_000 }).stderr.split('\n');
  const m = /^(.+):(\d+)$/.exec(lines[0] ?? '');
  if (!m) return undefined;
  const caret = (lines[2] ?? '').indexOf('^');
  return `${m[1]}:${m[2]}${caret >= 0 ? `:${caret + 1}` : ''}`;
}
