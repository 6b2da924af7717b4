// The kernel listen-queue readers (sock_diag through the addon, and /proc), against a socket that
// listens and never accepts: both read the same queue.
import t from 'tap';
import { spawn } from 'node:child_process';
import type { Test } from 'tap';
import { connect, type Socket } from 'node:net';
import { listenQueueDepth, listenOverflows, kernelQueuesReadable } from '../../src/metrics/kernel.js';
import { fixture, until } from '../helpers/cli.js';
import { addon } from '../helpers/fdpass.js';

const linux = process.platform === 'linux' && kernelQueuesReadable();

/** The port of a socket listening on `host` with `backlog` that never accepts (for 8 s), killed with the test. */
async function neverAccepting(t: Test, host: string, backlog: number): Promise<number> {
  const child = spawn(process.execPath, [fixture('listen-no-accept.mjs')], { env: { ...process.env, HOST: host, BACKLOG: String(backlog), HOLD_MS: '8000' }, stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => child.kill('SIGKILL'));
  return Number(await new Promise<string>((r) => child.stdout!.once('data', (d: Buffer) => r(d.toString()))));
}

t.test('reads the accept queue of a listening socket that never accepts', { skip: linux ? false : `no /proc/net/tcp on ${process.platform}` }, async (t) => {
  const BACKLOG = 5;
  const port = await neverAccepting(t, '127.0.0.1', BACKLOG);
  const clients: Socket[] = [];
  t.teardown(() => clients.forEach((c) => c.destroy()));
  const open = (n: number): void => {
    for (let i = 0; i < n; i++) clients.push(connect(port, '127.0.0.1').on('error', () => {}));
  };

  // Both readers, and the addon's own answer: [queued, listening sockets].
  const both = async (): Promise<[number | undefined, number | undefined]> => [await listenQueueDepth(port), await listenQueueDepth(port, 'proc')];
  t.same(await both(), [0, 0], 'empty queue');
  t.same(addon.listenQueue(port), [0, 1], 'sock_diag finds the one listener');
  open(3);
  await until(async () => (await both()).every((q) => q === 3), 5000);
  t.same(await both(), [3, 3], 'three waiting');
  t.same(addon.listenQueue(port), [3, 1]);
  const before = listenOverflows()!;
  open(10);
  // Linux holds backlog + 1; the rest of the SYNs are dropped and counted as overflows.
  await until(async () => (await both()).every((q) => q === BACKLOG + 1), 5000);
  t.same(await both(), [BACKLOG + 1, BACKLOG + 1], 'full at backlog + 1');
  await until(() => listenOverflows()! > before, 5000);
  t.ok(listenOverflows()! > before, 'ListenOverflows rose');
  t.equal(await listenQueueDepth(1), undefined, 'no socket listening on port 1: undefined');
  t.equal(await listenQueueDepth(1, 'proc'), undefined);
  t.same(addon.listenQueue(1), [0, 0]);
  t.equal(addon.listenQueue(70_000), null, 'not a port: null (the caller reads /proc)');
});

t.test('IPv6: both readers count a listener on ::1', { skip: linux ? false : `no /proc/net/tcp6 on ${process.platform}` }, async (t) => {
  const port = await neverAccepting(t, '::1', 5);
  const clients = [0, 1].map(() => connect(port, '::1').on('error', () => {}));
  t.teardown(() => clients.forEach((c) => c.destroy()));
  await until(async () => (await listenQueueDepth(port)) === 2 && (await listenQueueDepth(port, 'proc')) === 2, 5000);
  t.equal(await listenQueueDepth(port), 2, 'sock_diag, AF_INET6');
  t.equal(await listenQueueDepth(port, 'proc'), 2, '/proc/net/tcp6');
  t.same(addon.listenQueue(port), [2, 1]);
});
