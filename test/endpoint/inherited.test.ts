// systemd socket activation, with Debian's systemd-socket-activate (no systemd needed): it binds
// the port, holds the first connection in the socket's queue, and starts the acceptor with the
// socket as fd 3. That first connection, made before the acceptor ran, must be served.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { run, freeFixedPort, socketActivate, tagged, until } from '../helpers/cli.js';
import { rawRequest } from '../helpers/http.js';
import { scrape, value } from '../helpers/metrics.js';
import { inheritedFd, inheritedAddress, procAddress } from '../../src/endpoint/inherited.js';
import { connect, createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { supportsReusePort } from '../../src/options.js';

const installed = spawnSync('systemd-socket-activate', ['--help']).status === 0;
const skip = installed || process.env.CI ? false : 'systemd-socket-activate not installed (apt-get install systemd); CI has it';

t.test('LISTEN_PID/LISTEN_FDS: fd 3 only when they name this process; removed from the environment either way', async (t) => {
  const env: NodeJS.ProcessEnv = { LISTEN_PID: '42', LISTEN_FDS: '1', LISTEN_FDNAMES: 'x' };
  t.equal(inheritedFd(env, 42), 3);
  t.same(env, {}, 'not passed on to the workers');
  t.equal(inheritedFd({ LISTEN_PID: '41', LISTEN_FDS: '1' }, 42), undefined, 'meant for another process');
  t.equal(inheritedFd({ LISTEN_PID: '42', LISTEN_FDS: '0' }, 42), undefined, 'no descriptors');
  t.equal(inheritedFd({}, 42), undefined);
  // A descriptor the test owns: its own stdin may be a socket (a pipe Node made is one).
  const file = openSync(fileURLToPath(import.meta.url), 'r');
  t.teardown(() => closeSync(file));
  t.throws(() => inheritedAddress(file), { message: new RegExp(`cannot serve the inherited socket \\(fd ${file}, from systemd\\): not a socket`) });
});

const strategies = [['--strategy', 'handoff', '--transport', 'fdpass'], ['--strategy', 'handoff', '--transport', 'ipc'], ['--strategy', 'round-robin'], ['--strategy', 'shared']];
for (const args of strategies) {
  t.test(`${args.join(' ')}: serves the inherited socket, the first connection included`, { skip }, async (t) => {
    const port = await freeFixedPort();
    const r = run(['--workers', '2', ...args], { wait: 'none', wrap: socketActivate(port) });
    t.teardown(() => r.stop('SIGKILL'));
    // Once systemd-socket-activate listens, the acceptor starts on the first connection.
    await until(() => r.stderr().includes(`Listening on 127.0.0.1:${port}`));
    const first = rawRequest(port);
    const listening = await r.waitFor((l) => l.msg === 'listening', 15_000);
    t.equal(listening.port, port, 'the socket systemd bound');
    t.equal(listening.address, '127.0.0.1');
    t.equal(r.lines.find((l) => l.msg?.startsWith('serving the listening socket inherited from systemd'))?.fd, 3, 'and says so, with the descriptor');
    t.equal((await first.response).status, 200, 'the connection that woke it is served');
    await r.waitFor((l) => l.msg === 'acceptor ready');
    const statuses = await Promise.all(Array.from({ length: 10 }, () => rawRequest(port).response.then((x) => x.status)));
    t.same(statuses, Array(10).fill(200), 'and the next ten');
    const metricsPort = Number((await r.waitFor((l) => l.msg === 'metrics listening')).port);
    const m = await scrape(metricsPort);
    t.equal(value(m, 'acceptor_listen_backlog'), undefined, "no backlog claimed: systemd's Backlog= set it");
    t.notOk(r.lines.some((l) => l.msg === 'kernel caps the listen backlog at net.core.somaxconn'), 'nor a cap warned of');
    r.proc.kill('SIGTERM');
    t.equal((await r.exited).code, 0, 'drains and exits 0');
    await until(() => tagged(r.tag).length === 0, 5000);
  });
}

t.test('--strategy reuseport cannot serve an inherited socket: exit 2, one line', { skip }, async (t) => {
  const port = await freeFixedPort();
  const r = run(['--strategy', 'reuseport'], { wait: 'none', wrap: socketActivate(port) });
  t.teardown(() => r.stop('SIGKILL'));
  await until(() => r.stderr().includes(`Listening on 127.0.0.1:${port}`));
  const c = rawRequest(port);
  const { code } = await r.exited;
  t.equal(code, 2);
  const lines = r.stderr().trim().split('\n').filter((l) => !/^(Listening on|Communication attempt|Execing) /.test(l));
  t.equal(lines.length, 1, r.stderr());
  // Where Node has reusePort, the acceptor's own check answers; before 22.12, the option's.
  t.match(lines[0], supportsReusePort() ? /^acceptor: invalid --strategy "reuseport" with a socket inherited from systemd \(LISTEN_FDS\): each worker binds a socket of its own/ : /^acceptor: invalid --strategy "reuseport": needs Node >= 22\.12/);
  await c.response;
});

// The address of an inherited socket is read from /proc/net/tcp{,6}: checked on sockets this test
// owns, against what Node's own server.address() says, and on addresses no loopback socket can have.
const fdOf = (h: object): number => (h as { _handle: { fd: number } })._handle.fd;

t.test('/proc/net hex addresses, written as inet_ntop writes them', async (t) => {
  t.equal(procAddress('0100007F'), '127.0.0.1');
  t.equal(procAddress('00000000'), '0.0.0.0');
  t.equal(procAddress('00000000000000000000000000000000'), '::');
  t.equal(procAddress('00000000000000000000000001000000'), '::1');
  t.equal(procAddress('0000000000000000FFFF00000100007F'), '::ffff:127.0.0.1', 'IPv4-mapped: the IPv4 part dotted');
  t.equal(procAddress('B80D0120000000000000000001000000'), '2001:db8::1');
  t.equal(procAddress('0000000000000000FF0000000100007F'), '::ff:7f00:1', 'only byte 11 is ff: not IPv4-mapped');
  t.equal(procAddress('000000000000000000FF00000100007F'), '::ff00:7f00:1', 'only byte 10 is ff: not IPv4-mapped');
  t.equal(procAddress('0000010000000000FFFF00000100007F'), '1::ffff:7f00:1', 'a non-zero group first: not IPv4-mapped');
  t.equal(procAddress('00000100020000000000000003000000'), '1:0:0:2::3', 'the longest run of zeros compressed, not the first (RFC 5952)');
  t.equal(procAddress('00000100000000000000020003000000'), '1::2:0:0:3', 'of two runs as long, the first');
});

t.test('an inherited listening socket: address, family and port as Node reports them', async (t) => {
  for (const host of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, host, r));
    t.teardown(() => server.close());
    const a = server.address() as AddressInfo;
    t.same(inheritedAddress(fdOf(server)), { address: host, family: a.family === 'IPv6' ? 6 : 4, port: a.port }, host);
  }
});

t.test('an inherited descriptor that is not a listening TCP socket: ENOTSOCK, and why', async (t) => {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  t.teardown(() => client.destroy());
  await once(client, 'connect');
  const fd = fdOf(client);
  t.throws(() => inheritedAddress(fd), { name: 'BindError', code: 'ENOTSOCK', message: `cannot serve the inherited socket (fd ${fd}, from systemd): not listening` });
  // Not in t.testdir(): a socket file left there breaks tools that copy the tree (Stryker's sandbox).
  const dir = mkdtempSync(join(tmpdir(), 'acceptor-'));
  const unix = createServer();
  await new Promise<void>((r) => unix.listen(join(dir, 's'), r));
  t.teardown(() => new Promise<void>((r) => unix.close(() => (rmSync(dir, { recursive: true, force: true }), r()))));
  t.throws(() => inheritedAddress(fdOf(unix)), { code: 'ENOTSOCK', message: `cannot serve the inherited socket (fd ${fdOf(unix)}, from systemd): not a TCP socket` });
  t.throws(() => inheritedAddress(65_000), { code: 'ENOTSOCK', message: 'cannot serve the inherited socket (fd 65000, from systemd): ENOENT' }, 'no such descriptor');
});
