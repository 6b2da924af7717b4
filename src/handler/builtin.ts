// The app that answers when no --handler is given: GET / → 200 "ok", GET /healthz → 200 JSON.
// For --protocol tcp, an echo server.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

const OK = Buffer.from('ok\n');
const HEALTHY = Buffer.from('{"status":"ok"}\n');
const NOT_FOUND = Buffer.from('not found\n');

export function builtinHttp(req: IncomingMessage, res: ServerResponse): void {
  const path = req.url === undefined ? '' : req.url.split('?', 1)[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain', 'content-length': 0 }).end();
  } else if (path === '/') {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': OK.length }).end(OK);
  } else if (path === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': HEALTHY.length }).end(HEALTHY);
  } else {
    res.writeHead(404, { 'content-type': 'text/plain', 'content-length': NOT_FOUND.length }).end(NOT_FOUND);
  }
}

export function builtinTcp(socket: Socket): void {
  socket.pipe(socket);
}
