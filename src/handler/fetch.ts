// Form 4, `export default { fetch(request) }`: served through @hono/node-server's request
// listener, the adapter Hono's own `serve()` uses (streamed request and response bodies, aborts,
// multiple Set-Cookie headers). A fetch handler that throws or rejects gets a plain 500, no stack.
import { getRequestListener } from '@hono/node-server';
import type { FetchHandler, HttpHandler } from './load.js';

export function fetchListener(fetch: FetchHandler, failed: (err: unknown, req: unknown) => void): HttpHandler {
  return getRequestListener(fetch as Parameters<typeof getRequestListener>[0], {
    errorHandler: (err) => {
      failed(err, undefined);
      return new Response('internal server error\n', { status: 500, headers: { 'content-type': 'text/plain' } });
    },
  }) as unknown as HttpHandler;
}
