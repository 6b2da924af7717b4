// The worker's end of the fdpass transport: how a received descriptor becomes a net.Socket. The
// descriptors are real accepted connections (the addon's accept loop, in this process).
import t, { type Test } from 'tap';
import { openSync, closeSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { addon } from '../helpers/fdpass.js';
import { openFds, until } from '../helpers/cli.js';
import { SocketWrapper } from '../../src/worker/fdpass.js';

/** `n` connections from clients on 127.0.0.1, accepted by the addon: raw descriptors, with their clients. */
async function accepted(t: Test, n: number): Promise<{ fds: number[]; clients: Socket[]; port: number }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const fds: number[] = [];
  const l = addon.listen((server as unknown as { _handle: { fd: number } })._handle.fd, (got) => fds.push(...got));
  server.close();
  const clients: Socket[] = [];
  for (let i = 0; i < n; i++) {
    const c = connect(port, '127.0.0.1');
    await new Promise((r) => c.once('connect', r));
    clients.push(c);
  }
  await until(() => fds.length === n);
  addon.unlisten(l);
  t.teardown(() => clients.forEach((c) => c.destroy()));
  return { fds, clients, port };
}

t.test('the first hand-off is probed, every later one opened directly: each a working TCP socket of its own client', async (t) => {
  const base = openFds(process.pid);
  const { fds, clients, port } = await accepted(t, 5);
  const w = new SocketWrapper();
  const sockets = fds.map((fd) => w.wrap(fd));
  t.equal(w.probes, 1, 'one probe for five descriptors');
  for (let i = 0; i < sockets.length; i++) {
    const s = sockets[i]!;
    const c = clients[i]!;
    t.equal((s as unknown as { _handle: { constructor: { name: string } } })._handle.constructor.name, 'TCP');
    t.equal(s.remotePort, c.localPort, `socket ${i} is its own client's connection`);
    t.equal(s.localPort, port);
    t.equal(s.remoteAddress, '127.0.0.1');
    // Both directions, as the HTTP server uses it.
    const got = new Promise<string>((r) => s.once('data', (d) => r(d.toString())));
    c.write(`ping ${i}`);
    t.equal(await got, `ping ${i}`);
    const back = new Promise<string>((r) => c.once('data', (d) => r(d.toString())));
    s.write(`pong ${i}`);
    t.equal(await back, `pong ${i}`);
  }
  // Ending and closing go through the handle too: the client sees the end, and no descriptor stays.
  await Promise.all(
    sockets.map((s, i) => {
      const ended = new Promise((r) => clients[i]!.once('end', r));
      s.end();
      return ended;
    }),
  );
  sockets.forEach((s) => s.destroy());
  clients.forEach((c) => c.destroy());
  await until(() => openFds(process.pid) === base);
  t.equal(openFds(process.pid), base, 'every descriptor closed');
});

t.test('a descriptor that will not open directly takes the probing path, which tells what it is; later ones are opened directly again', async (t) => {
  const { fds, clients } = await accepted(t, 2);
  const w = new SocketWrapper();
  w.wrap(fds[0]!).destroy();
  // Closed: the direct open fails (EBADF), and the probe throws as it always did.
  const gone = openSync('/dev/null', 'r');
  closeSync(gone);
  t.throws(() => w.wrap(gone), { code: 'ERR_INVALID_FD_TYPE' });
  t.equal(w.probes, 2, 'the failed open was probed');
  const s = w.wrap(fds[1]!);
  t.equal(w.probes, 2, 'and the next one opened directly');
  t.equal(s.remotePort, clients[1]!.localPort);
  s.destroy();
});
