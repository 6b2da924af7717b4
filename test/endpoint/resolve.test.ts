import t from 'tap';
import { resolveEndpoint } from '../../src/endpoint/resolve.js';

t.test('no host means all interfaces, dual stack first', async (t) => {
  t.same(await resolveEndpoint(undefined), [{ address: '::', family: 6 }, { address: '0.0.0.0', family: 4 }]);
});

t.test('a literal address is used as it is', async (t) => {
  t.same(await resolveEndpoint('127.0.0.1'), [{ address: '127.0.0.1', family: 4 }]);
  t.same(await resolveEndpoint('::1'), [{ address: '::1', family: 6 }]);
});

t.test('a name gives every address the resolver has, in its order', async (t) => {
  const all = await resolveEndpoint('localhost');
  t.ok(all.length >= 1);
  t.ok(all.some((a) => a.address === '127.0.0.1' || a.address === '::1'), JSON.stringify(all));
  for (const a of all) t.equal(a.family, a.address.includes(':') ? 6 : 4);
});

t.test('a name that does not resolve is an error naming it', async (t) => {
  await t.rejects(resolveEndpoint('no-such-host.invalid'), { message: /^cannot resolve host "no-such-host\.invalid": (ENOTFOUND|EAI_AGAIN)$/, code: /^(ENOTFOUND|EAI_AGAIN)$/ });
});
