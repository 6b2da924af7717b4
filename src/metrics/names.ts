// Metric names and help: part of the interface (dashboards and alert rules depend on them).
// Units are base units; counters end in _total.

/** Series shared by the primary and the workers: summed across the cluster on scrape. */
export const SHARED = {
  accepted: { name: 'acceptor_connections_accepted_total', help: 'Connections accepted: by the primary (handoff) or by workers (other strategies). A connection later told busy was accepted too.' },
  rejected: { name: 'acceptor_connections_rejected_total', help: "Connections refused, by reason: told busy (HTTP 503, tcp busy line or reset), or for blocked (the app server's blockList) closed unanswered, as node does." },
  errors: { name: 'acceptor_connection_errors_total', help: 'Connections that ended in an error rather than served or refused, by reason.' },
} as const;

export const LABEL_WORKER = 'worker';
/** `worker` label value of the primary's own process metrics. */
export const PRIMARY_WORKER = 'primary';

/**
 * Event-loop lag sampling period (eventloop.ts). prom-client's 10 ms wakes every process 100 times
 * a second and doubled the acceptor's idle CPU; lag worth alerting on is far longer than 50 ms.
 */
export const EVENT_LOOP_PRECISION_MS = 50;
