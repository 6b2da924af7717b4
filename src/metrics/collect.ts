// Collectors that read plain state at scrape time, so the accept path only bumps numbers.
import { Counter, type Registry } from 'prom-client';
import { REJECT_REASONS } from '../admission/busy.js';
import { ERROR_REASONS, type Counters } from './counters.js';
import { SHARED } from './names.js';
import type { WorkerTotals } from './totals.js';

interface Def {
  name: string;
  help: string;
}

/** A counter whose value is `read()` at scrape time. */
export function readCounter(registers: Registry[], def: Def, read: () => number): Counter {
  return new Counter({
    ...def,
    registers,
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** A counter with one series per key of `label`, each `read(key)` at scrape time. */
export function readLabelledCounter<K extends string>(registers: Registry[], def: Def, label: string, keys: readonly K[], read: (key: K) => number): Counter {
  return new Counter({
    ...def,
    labelNames: [label],
    registers,
    collect() {
      for (const key of keys) {
        this.remove({ [label]: key });
        this.inc({ [label]: key }, read(key));
      }
    },
  });
}

/**
 * The cluster's connection series, exported by the primary: its own counts and the workers' (kept
 * in `w`, so that they never go down when a worker is replaced).
 */
export function connectionCounters(registers: Registry[], c: Counters, w: WorkerTotals): void {
  readCounter(registers, SHARED.accepted, () => c.accepted + w.accepted());
  readLabelledCounter(registers, SHARED.rejected, 'reason', REJECT_REASONS, (r) => c.rejected[r] + w.rejected(r));
  readLabelledCounter(registers, SHARED.errors, 'reason', ERROR_REASONS, (r) => c.errors[r] + w.errors(r));
}
