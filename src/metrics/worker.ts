// A worker's registry: its own connections, hand-off latency, and Node's process metrics,
// labelled worker="<slot>". The primary collects it over IPC on each scrape.
import { Gauge, Histogram, Registry } from 'prom-client';
import { LABEL_WORKER } from './names.js';
import { defaultMetrics } from './defaults.js';

/** Hand-off latency buckets, seconds: 10µs … 10s (queue waits included). */
const DISPATCH_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** TLS handshake buckets, seconds: 100µs … 10s. */
const HANDSHAKE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface WorkerMetrics {
  register: Registry;
  dispatch: Histogram;
  /** Present when the worker terminates TLS. */
  handshake: Histogram | undefined;
}

export function workerRegistry(slot: number, open: () => number, tls: boolean, upgraded: () => number): WorkerMetrics {
  const register = new Registry();
  const registers = [register];
  const worker = String(slot);
  defaultMetrics(register, { [LABEL_WORKER]: worker });
  // The connection counters (accepted, rejected, errors, handled) are the primary's: the worker's
  // heartbeats carry them there (totals.ts), so they outlive the worker.
  new Gauge({
    name: 'acceptor_worker_connections',
    help: 'Open connections per worker.',
    labelNames: [LABEL_WORKER],
    registers,
    collect() {
      this.set({ worker }, open());
    },
  });
  new Gauge({
    name: 'acceptor_worker_upgraded_connections',
    help: 'Open connections per worker that were upgraded (WebSocket) or tunnelled (CONNECT); counted in acceptor_worker_connections too.',
    labelNames: [LABEL_WORKER],
    registers,
    collect() {
      this.set({ worker }, upgraded());
    },
  });
  const dispatch = new Histogram({
    name: 'acceptor_dispatch_duration_seconds',
    help: 'Time from the primary accepting a connection to a worker taking it, queue wait included (handoff strategy).',
    buckets: DISPATCH_BUCKETS,
    registers,
  });
  const handshake = tls
    ? new Histogram({
        name: 'acceptor_tls_handshake_duration_seconds',
        help: 'Time from a worker taking a connection to its TLS handshake completing (failures: acceptor_connection_errors_total{reason="tls_handshake"}).',
        buckets: HANDSHAKE_BUCKETS,
        registers,
      })
    : undefined;
  return { register, dispatch, handshake };
}
