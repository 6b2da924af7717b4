// Hand-made mutants of the fdpass addon (native/fdpass.c): StrykerJS does not mutate C. Each
// mutant is one exact change to a promise the addon keeps (a reset, a count, a close, a timer);
// the script applies it, rebuilds, runs the tests that cover the addon with tap's --bail, and
// restores the source. Killed: the tests failed. `npm run mutate:addon`; one: `-- <name>`.
// Outcomes: reports/mutation/addon.tsv. Meant for a quiet machine: ~1 min per mutant.
// It edits native/fdpass.c in place while it runs (restored at the end, or on SIGINT/SIGTERM):
// commit nothing meanwhile. The addon's own tests run first, alone; the rest only if they pass.
// A run that hangs past TIMEOUT_MS is reported `timeout` (detected, as Stryker counts it).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const SRC = 'native/fdpass.c';
const FIRST = ['test/native/fdpass.test.ts'];
const TIMEOUT_MS = 300_000;
const TESTS = ['test/dispatch/fdpass.test.ts', 'test/primary/descriptors.test.ts', 'test/metrics/counters.test.ts', 'test/admission/busy.test.ts', 'test/dispatch/overload.test.ts'];

/** [name, the exact text, its replacement, why it may survive (an equivalent mutant)] */
const MUTANTS = [
  ['reset-is-graceful', 'struct linger l = {1, 0};', 'struct linger l = {0, 0};'],
  ['reset-all-uncounted', '        close_with_reset(c);\n        failed++;', '        close_with_reset(c);'],
  ['emfile-with-batch-resets', 'if ((e == EMFILE || e == ENFILE) && n > 0) {', 'if ((e == EMFILE || e == ENFILE) && n < 0) {', 'second guard: the batch size keeps the primary short of the limit'],
  ['batch-uncapped', 'while (status >= 0 && n < l->max_batch) {', 'while (status >= 0 && n < ACCEPT_BATCH) {', 'first guard: with the EMFILE break, a batch over the limit waits a turn'],
  ['reports-last-only', 'if (r == sizeof n) total += n;', 'if (r == sizeof n) total = n;'],
  ['sent-left-open', '    for (int i = 0; i < k; i++) close(batch[i]);\n', ''],
  ['reclaim-forgets-reports', 'uint32_t closed = drain_reports(c->fd);', 'uint32_t closed = 0; drain_reports(c->fd);'],
  ['truncated-uncounted', 'missing += (int)(expected - got);', 'missing += 0;'],
  ['receiver-inheritable', 'ssize_t r = recvmsg(rx->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);', 'ssize_t r = recvmsg(rx->fd, &msg, MSG_DONTWAIT);'],
  ['report-overwrites', 'rx->unreported += n;', 'rx->unreported = n;'],
  ['linger-uncapped', 'if (discard(fd) || r->lingering >= r->max_lingering) {', 'if (discard(fd)) {'],
  ['no-fin-after-busy', '  shutdown(fd, SHUT_WR);\n', ''],
  ['linger-no-deadline', 'while (r->head && r->head->deadline <= now) linger_end(r, r->head);', 'while (0) linger_end(r, r->head);'],
  ['batch-buffer-per-call', '  if (!p->ref || napi_get_reference_value(', '  if (1 || napi_get_reference_value('],
  ['batch-buffer-detached-written', ' != napi_ok || len < p->bytes) {', ' != napi_ok) {'],
];

const only = process.argv[2];
const original = readFileSync(SRC, 'utf8');
const build = () => execFileSync('node', ['native/build.mjs'], { stdio: 'ignore' });
mkdirSync('reports/mutation', { recursive: true });
const rows = [];
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    writeFileSync(SRC, original);
    build();
    process.exit(1);
  });
}
const tap = (files) => spawnSync('npx', ['tap', '--bail', '--disable-coverage', '--reporter=silent', ...files], { stdio: 'ignore', timeout: TIMEOUT_MS });
try {
  for (const [name, from, to, equivalent] of MUTANTS) {
    if (only && name !== only) continue;
    const at = original.split(from).length - 1;
    if (at !== 1) throw new Error(`mutant ${name}: its text occurs ${at} times in ${SRC}, not once`);
    writeFileSync(SRC, original.replace(from, to));
    build();
    const t0 = Date.now();
    let r = tap(FIRST);
    if (r.status === 0) r = tap(TESTS);
    const outcome = r.status === 0 ? 'survived' : r.status === null ? 'timeout' : 'killed';
    rows.push([name, outcome, String(Math.round((Date.now() - t0) / 1000)), equivalent ?? '']);
    console.log(`${outcome.padEnd(9)} ${name}${equivalent ? ` (${equivalent})` : ''}`);
  }
} finally {
  writeFileSync(SRC, original);
  build();
}
writeFileSync('reports/mutation/addon.tsv', ['mutant\toutcome\tseconds\tequivalent because', ...rows.map((r) => r.join('\t'))].join('\n') + '\n');
const killed = rows.filter((r) => r[1] !== 'survived').length;
console.log(`${killed} of ${rows.length} killed (or timed out)`);
