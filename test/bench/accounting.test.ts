// The harness's accounting catches a lost connection, and a client/server disagreement.
import t from 'tap';
import { reconcile, serverDelta } from '../../bench/accounting.js';
import { newTally } from '../../bench/load/storm.js';

t.test('balanced books pass', async (t) => {
  const c = { ...newTally(), attempts: 10, connected: 9, ok: 6, busy: 3, errors: { refused: 1, reset: 0, timeout: 0, other: 0 } };
  t.same(reconcile(c, { accepted: 9, rejected: 3 }), { ok: true, exact: true, problems: [] });
});

t.test('an attempt with no outcome is caught', async (t) => {
  const c = { ...newTally(), attempts: 10, connected: 10, ok: 6, busy: 3 };
  const r = reconcile(c, { accepted: 10, rejected: 3 });
  t.equal(r.ok, false);
  t.match(r.problems[0], /10 attempts but 9 outcomes.*1 unaccounted/);
});

t.test('client and server disagreeing is caught, tolerance respected', async (t) => {
  const c = { ...newTally(), attempts: 10, connected: 10, ok: 7, busy: 3 };
  t.match(reconcile(c, { accepted: 11, rejected: 3 }).problems, [/server accepted 11 connections, client connected 10: difference 1/]);
  t.match(reconcile(c, { accepted: 10, rejected: 4 }).problems, [/server told 4 busy, client saw 3/]);
  t.equal(reconcile(c, { accepted: 12, rejected: 3 }, 2).ok, true, 'within tolerance');
  t.equal(reconcile(c, { accepted: 10, rejected: 9 }, 0, false).ok, true, 'busy not compared for tcp storms');
});

t.test('connections left in the kernel queue until the client gave up are named as such', async (t) => {
  const c = { ...newTally(), attempts: 10, connected: 10, ok: 6, busy: 1, errors: { refused: 0, reset: 0, timeout: 3, other: 0 } };
  t.match(reconcile(c, { accepted: 7, rejected: 1 }).problems, [/difference -3 \(left in the kernel's listen queue; the client timed out 3 times\)/]);
});

t.test('server deltas by reason', async (t) => {
  const d = serverDelta(
    { accepted: 5, rejected: { queue_full: 1, no_worker: 0 }, errors: {}, overflows: 0, migrated: 0 },
    { accepted: 15, rejected: { queue_full: 4, no_worker: 2 }, errors: {}, overflows: 0, migrated: 0 },
  );
  t.same(d, { accepted: 10, rejected: 5, byReason: { queue_full: 3, no_worker: 2 } });
});
