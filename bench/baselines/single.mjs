// Baseline: one node:http process, the same handler, listen(PORT, BACKLOG).
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';

const handler = (await import(pathToFileURL(process.env.HANDLER).href)).default;
const server = createServer(handler);
server.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0), backlog: Number(process.env.BACKLOG ?? 511) }, () => {
  process.stdout.write(JSON.stringify({ msg: 'listening', port: server.address().port }) + '\n');
});
