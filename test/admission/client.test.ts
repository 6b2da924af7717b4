// A connection's client key: the same number from the address's text (ipc, here in JS) as from the
// peer address accept4 gives the fdpass addon (in C); prefixes group addresses, IPv4-mapped IPv6 is
// IPv4, and the log names a client by its prefix.
import t from 'tap';
import { connect, createServer } from 'node:net';
import { clientKey, clientText, parsePrefixes } from '../../src/admission/client.js';
import { addon } from '../helpers/fdpass.js';

const P = { v4: 32, v6: 64 };

t.test('IPv4: the address itself, exactly; a shorter prefix groups a network', async (t) => {
  t.equal(clientKey('127.0.0.1', P), 0x7f000001);
  t.equal(clientKey('203.0.113.7', P), 0xcb007107);
  t.equal(clientKey('203.0.113.7', { v4: 24, v6: 64 }), 0xcb007100, '/24');
  t.equal(clientKey('203.0.113.99', { v4: 24, v6: 64 }), 0xcb007100, 'the same /24');
  t.not(clientKey('203.0.114.7', { v4: 24, v6: 64 }), 0xcb007100, 'another /24');
  t.equal(clientKey('203.0.113.7', { v4: 0, v6: 64 }), 0, '/0: everyone one client');
  t.equal(clientKey('::ffff:203.0.113.7', P), 0xcb007107, 'IPv4-mapped IPv6 is the IPv4 address');
});

t.test('IPv6: the /64 (or the prefix given), above every IPv4 key', async (t) => {
  const a = clientKey('2001:db8:1:2::1', P);
  t.ok(a >= 2 ** 32 && a < 2 ** 53 && Number.isInteger(a), 'an exact integer above 2^32');
  t.equal(clientKey('2001:db8:1:2:ffff:ffff:ffff:ffff', P), a, 'the same /64');
  t.equal(clientKey('2001:0db8:0001:0002:0000:0000:0000:0009', P), a, 'written out in full');
  t.not(clientKey('2001:db8:1:3::1', P), a, 'another /64');
  t.equal(clientKey('2001:db8:1:3::1', { v4: 32, v6: 48 }), clientKey('2001:db8:1:2::1', { v4: 32, v6: 48 }), 'the same /48');
  t.equal(clientKey('fe80::1%eth0', P), clientKey('fe80::2', P), 'a zone is not part of it');
  t.equal(clientKey('not an address', P), 0);
});

t.test('what the log names', async (t) => {
  t.equal(clientText('203.0.113.7', { v4: 24, v6: 64 }), '203.0.113.0/24');
  t.equal(clientText('::ffff:127.0.0.2', P), '127.0.0.2/32');
  t.equal(clientText('2001:db8:1:2:3:4:5:6', P), '2001:db8:1:2::/64');
  t.equal(clientText('2001:db8:1:2:3:4:5:6', { v4: 32, v6: 128 }), '2001:db8:1:2:3:4:5:6/128');
});

t.test('--client-prefix', async (t) => {
  t.same(parsePrefixes('24,48'), { v4: 24, v6: 48 });
  t.same(parsePrefixes(' 32 , 128 '), { v4: 32, v6: 128 });
  for (const bad of ['33,64', '32,129', '32', '32,64,1', 'a,b', '']) t.equal(parsePrefixes(bad), undefined, JSON.stringify(bad));
});

t.test('the fdpass addon keys a connection in C exactly as this does from its address', async (t) => {
  for (const [listenOn, host, local, p] of [
    ['127.0.0.1', '127.0.0.1', '127.0.0.2', P],
    ['127.0.0.1', '127.0.0.1', '127.0.0.3', { v4: 24, v6: 64 }],
    ['::1', '::1', '::1', P],
    ['::1', '::1', '::1', { v4: 32, v6: 128 }],
    ['::', '127.0.0.1', '127.0.0.5', P], // dual stack: the peer is ::ffff:127.0.0.5
  ] as const) {
    const server = createServer({ pauseOnConnect: true });
    await new Promise<void>((r) => server.listen(0, listenOn, r));
    const port = (server.address() as { port: number }).port;
    const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
    const got = new Promise<{ keys: number[]; fds: number[] }>((r) => {
      const l = addon.listen(fd, (fds, _f, _e, keys) => (addon.unlisten(l), r({ keys: [...keys], fds: [...fds] })), 16, p.v4, p.v6);
    });
    server.close();
    const c = connect({ port, host, localAddress: local }).on('error', () => {});
    const { keys, fds } = await got;
    t.same(keys, [clientKey(local, p)], `${local} (prefixes ${p.v4},${p.v6})`);
    t.equal(addon.peer(fds[0]!), listenOn === '::' ? `::ffff:${local}` : local, 'and its address, for the log');
    for (const f of fds) addon.reset(f);
    c.destroy();
  }
  t.throws(() => addon.listen(0, () => {}, 16, 33, 64), /client prefixes outside/);
});
