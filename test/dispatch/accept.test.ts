// The primary's lean accept: raw kernel handles where Node has the hook, Sockets where not.
import t from 'tap';
import { createServer, connect, Socket, type Server } from 'node:net';
import { acceptRaw, asSocket, type Conn } from '../../src/dispatch/accept.js';

async function listening(): Promise<{ server: Server; port: number }> {
  const server = createServer({ pauseOnConnect: true });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

async function answerOne(server: Server, port: number, mode: 'raw' | 'socket'): Promise<{ conn: Conn; reply: string }> {
  let got!: (c: Conn) => void;
  const accepted = new Promise<Conn>((r) => (got = r));
  const onConn = (c: Conn): void => {
    got(c);
    asSocket(c).end('busy\n');
  };
  if (acceptRaw(server, onConn, () => {}) !== mode) throw new Error(`expected ${mode} mode`);
  if (!server.listening) await new Promise((r) => server.once('listening', r));
  const client = connect(port || (server.address() as { port: number }).port, '127.0.0.1');
  let reply = '';
  client.setEncoding('utf8').on('data', (d: string) => (reply += d));
  await new Promise((r) => client.on('close', r));
  return { conn: await accepted, reply };
}

t.test('with the hook: a raw handle, not a Socket, and one can still answer it', async (t) => {
  const { server, port } = await listening();
  t.teardown(() => server.close());
  const { conn, reply } = await answerOne(server, port, 'raw');
  t.notOk(conn instanceof Socket, 'no Socket built on accept');
  t.equal(reply, 'busy\n');
});

t.test('without the hook (here: not yet listening, no handle): the connection event, with a Socket', async (t) => {
  const server = createServer({ pauseOnConnect: true });
  t.teardown(() => server.close());
  const answered = answerOne(server, 0, 'socket');
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { conn, reply } = await answered;
  t.ok(conn instanceof Socket, 'a Socket');
  t.equal(reply, 'busy\n');
});
