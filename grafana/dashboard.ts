// The Grafana dashboard, as typed code. `npm run dashboard` writes grafana/dashboards/cluster-acceptor.json;
// a test checks that the committed JSON is exactly this output, and runs every query against a
// real Prometheus.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface Target {
  expr: string;
  legendFormat: string;
  refId: string;
}

type Unit = 'reqps' | 'percentunit' | 'short' | 's' | 'bytes' | 'none';

export interface Panel {
  id: number;
  type: 'timeseries' | 'stat' | 'row';
  title: string;
  description?: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: 'prometheus'; uid: '${datasource}' };
  targets?: Target[];
  fieldConfig?: { defaults: { unit: Unit; min?: number; max?: number; custom?: Record<string, unknown> }; overrides: unknown[] };
  options?: Record<string, unknown>;
  collapsed?: boolean;
  panels?: Panel[];
}

const DS = { type: 'prometheus', uid: '${datasource}' } as const;
/** The label filter every query carries: the instance(s) chosen in the dashboard. */
// Every panel keeps `instance` in its grouping and legend: with several instances scraped ("All"),
// summing them would read as one instance's worker 1, or one histogram for both.
const I = 'instance=~"$instance"';
const W = 'worker=~"$worker"';

let nextId = 1;
let y = 0;
/** The panels in order, rows included. */
export const panels: Panel[] = [];

function row(title: string): void {
  panels.push({ id: nextId++, type: 'row', title, gridPos: { x: 0, y: y++, w: 24, h: 1 }, collapsed: false, panels: [] });
}

/** Adds a panel in a 3-column grid; `wide` takes two columns. */
let col = 0;
function panel(title: string, description: string, unit: Unit, targets: [expr: string, legend: string][], opts: { wide?: boolean; stack?: boolean; min?: number; max?: number } = {}): void {
  const w = opts.wide ? 16 : 8;
  if (col + w > 24) {
    col = 0;
    y += 8;
  }
  panels.push({
    id: nextId++,
    type: 'timeseries',
    title,
    description,
    gridPos: { x: col, y, w, h: 8 },
    datasource: DS,
    targets: targets.map(([expr, legendFormat], i) => ({ expr, legendFormat, refId: String.fromCharCode(65 + i) })),
    fieldConfig: {
      defaults: { unit, ...(opts.min !== undefined ? { min: opts.min } : {}), ...(opts.max !== undefined ? { max: opts.max } : {}), custom: opts.stack ? { stacking: { mode: 'normal' }, fillOpacity: 30 } : { fillOpacity: 10 } },
      overrides: [],
    },
    options: { legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi' } },
  });
  col += w;
}

function endRow(): void {
  col = 0;
  y += 8;
}

row('Admission');
panel('Accept rate', 'New connections accepted per second (by the primary for handoff, by workers otherwise). Refused connections are accepted first, then told busy.', 'reqps', [[`sum by (instance) (rate(acceptor_connections_accepted_total{${I}}[$__rate_interval]))`, '{{instance}}']]);
panel('Rejections by reason', 'Connections told busy per second: queue_full (backlog full), queue_timeout, no_worker, shutting_down, worker_full, client_limit (one client at --max-connections-per-client), displaced (a full fair queue gave a lighter client its place); and blocked, closed unanswered by the app server\'s blockList.', 'reqps', [[`sum by (instance, reason) (rate(acceptor_connections_rejected_total{${I}}[$__rate_interval]))`, '{{reason}} {{instance}}']], { stack: true });
panel('Rejected share of attempts', 'Refused ÷ accepted: the share of clients told "server busy".', 'percentunit', [[`sum by (instance) (rate(acceptor_connections_rejected_total{${I}}[$__rate_interval])) / clamp_min(sum by (instance) (rate(acceptor_connections_accepted_total{${I}}[$__rate_interval])), 1e-9)`, '{{instance}}']], { min: 0, max: 1 });
endRow();
panel('Acceptor queue: depth vs capacity', "Connections waiting in the primary's own queue for a worker slot, against --backlog.", 'short', [
  [`sum by (instance) (acceptor_queue_depth{${I}})`, 'waiting {{instance}}'],
  [`sum by (instance) (acceptor_queue_capacity{${I}})`, 'capacity {{instance}}'],
]);
panel('Kernel listen queue vs backlog', "The kernel's accept queue for the listening socket (Linux, as ss -ltn Recv-Q), against the effective listen backlog.", 'short', [
  [`sum by (instance) (acceptor_listen_queue_depth{${I}})`, 'queued {{instance}}'],
  [`sum by (instance) (acceptor_listen_backlog{${I}})`, 'backlog {{instance}}'],
]);
panel('Kernel listen overflows', 'TcpExt ListenOverflows per second: SYNs the kernel dropped because an accept queue was full. Host-wide: counts every listening socket on the host.', 'reqps', [[`sum by (instance) (rate(acceptor_listen_overflows_total{${I}}[$__rate_interval]))`, '{{instance}}']]);
endRow();
row('Hand-off and workers');
panel('Hand-off latency', 'From the primary accepting a connection to a worker taking it, queue wait included (handoff strategy).', 's', [
  [`histogram_quantile(0.5, sum by (instance, le) (rate(acceptor_dispatch_duration_seconds_bucket{${I}}[$__rate_interval])))`, 'p50 {{instance}}'],
  [`histogram_quantile(0.99, sum by (instance, le) (rate(acceptor_dispatch_duration_seconds_bucket{${I}}[$__rate_interval])))`, 'p99 {{instance}}'],
  [`histogram_quantile(0.999, sum by (instance, le) (rate(acceptor_dispatch_duration_seconds_bucket{${I}}[$__rate_interval])))`, 'p99.9 {{instance}}'],
]);
panel('Connections per worker', "Open connections per worker against --max-connections: per-worker load; of them, upgraded ones (WebSockets), which hold their slot until they close; and each worker's capacity where its descriptors or its app's own maxConnections allow fewer.", 'short', [
  [`sum by (instance, worker) (acceptor_worker_connections{${I}, ${W}})`, 'worker {{worker}} {{instance}}'],
  [`sum by (instance, worker) (acceptor_worker_upgraded_connections{${I}, ${W}})`, 'upgraded: worker {{worker}} {{instance}}'],
  [`max by (instance) (acceptor_worker_max_connections{${I}})`, 'max per worker {{instance}}'],
  [`min by (instance, worker) (acceptor_worker_capacity{${I}, ${W}})`, 'capacity: worker {{worker}} {{instance}}'],
]);
panel('Workers by state and restarts', 'Workers starting / ready / stalled / draining, and restarts by reason (crash, startup, watchdog, reload).', 'short', [
  [`sum by (instance, state) (acceptor_workers{${I}})`, '{{state}} {{instance}}'],
  [`sum by (instance, reason) (increase(acceptor_worker_restarts_total{${I}}[$__rate_interval]))`, 'restarts: {{reason}} {{instance}}'],
]);
panel('TLS handshakes', 'With TLS on (--tls-cert): handshake time from a worker taking the connection, and handshakes failed per second (plain-text clients, rejected certificates, clients that gave up).', 's', [
  [`histogram_quantile(0.99, sum by (instance, le) (rate(acceptor_tls_handshake_duration_seconds_bucket{${I}}[$__rate_interval])))`, 'p99 {{instance}}'],
  [`sum by (instance) (rate(acceptor_connection_errors_total{${I}, reason="tls_handshake"}[$__rate_interval]))`, 'failed/s {{instance}}'],
]);
endRow();
row('Processes');
panel('Event-loop lag p99', "Event-loop delay per process (worker slot, or primary): a stalled worker shows here before the watchdog replaces it.", 's', [[`max by (instance, worker) (nodejs_eventloop_lag_p99_seconds{${I}, ${W}})`, '{{worker}} {{instance}}']]);
panel('Memory (RSS)', 'Resident memory per process.', 'bytes', [[`max by (instance, worker) (process_resident_memory_bytes{${I}, ${W}})`, '{{worker}} {{instance}}']]);
panel('Scrape health', '1 when a worker answered the last /metrics scrape in time; 0 when it was missing from it (its series are absent for that scrape).', 'none', [[`min by (instance, worker) (acceptor_scrape_worker_up{${I}})`, 'worker {{worker}} {{instance}}']], { min: 0, max: 1 });
endRow();

export const dashboard = {
  uid: 'cluster-acceptor',
  title: 'cluster-acceptor',
  description: 'Admission, queues, hand-off and workers of cluster-acceptor.',
  tags: ['cluster-acceptor', 'node'],
  schemaVersion: 39,
  version: 1,
  editable: true,
  graphTooltip: 1,
  time: { from: 'now-30m', to: 'now' },
  refresh: '10s',
  timezone: 'browser',
  templating: {
    list: [
      { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', current: {}, hide: 0 },
      { name: 'instance', label: 'Instance', type: 'query', datasource: DS, query: { query: 'label_values(acceptor_info, instance)', refId: 'instance' }, definition: 'label_values(acceptor_info, instance)', multi: true, includeAll: true, allValue: '.*', current: {}, refresh: 2, sort: 1, hide: 0 },
      { name: 'worker', label: 'Worker', type: 'query', datasource: DS, query: { query: 'label_values(acceptor_worker_connections{instance=~"$instance"}, worker)', refId: 'worker' }, definition: 'label_values(acceptor_worker_connections{instance=~"$instance"}, worker)', multi: true, includeAll: true, allValue: '.*', current: {}, refresh: 2, sort: 3, hide: 0 },
    ],
  },
  annotations: { list: [] },
  panels,
};

/** Every query of every panel, in order. */
export const queries = (): Target[] => panels.flatMap((p) => p.targets ?? []);

export const json = (): string => JSON.stringify(dashboard, null, 2) + '\n';

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = fileURLToPath(new URL('../../grafana/dashboards/cluster-acceptor.json', import.meta.url));
  writeFileSync(out, json());
  process.stdout.write(`wrote ${out}\n`);
}
