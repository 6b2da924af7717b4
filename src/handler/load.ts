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
  const mod = (await import(pathToFileURL(path).href)) as { default?: unknown };
  const fn = mod.default;
  if (typeof fn !== 'function') {
    throw new TypeError(`handler ${path} has no default export function (got ${typeof fn}); export default a ${protocol === 'http' ? '(req, res)' : '(socket)'} listener`);
  }
  return fn as HttpHandler | TcpHandler;
}
