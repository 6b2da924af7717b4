// prom-client's default process metrics, with two things put right:
// - event-loop lag is our own (eventloop.ts): prom-client's read 50 ms on an idle process; its own
//   sampler is given the slowest period Node accepts, so it costs nothing, and its series replaced;
// - the `nodejs_active_{handles,requests,resources}_total` gauges are dropped: gauges named
//   `_total` fail `promtool check metrics`, and they equal sum() of the labelled series beside them.
import { collectDefaultMetrics, type Registry } from 'prom-client';
import { eventLoopLag } from './eventloop.js';
import { EVENT_LOOP_PRECISION_MS } from './names.js';

const SLOWEST_PERIOD_MS = 2 ** 31 - 1;
const GAUGES_NAMED_TOTAL = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function defaultMetrics(register: Registry, labels: Record<string, string>): void {
  collectDefaultMetrics({ register, labels, eventLoopMonitoringPrecision: SLOWEST_PERIOD_MS });
  for (const name of GAUGES_NAMED_TOTAL) register.removeSingleMetric(name);
  eventLoopLag(register, labels, EVENT_LOOP_PRECISION_MS);
}
