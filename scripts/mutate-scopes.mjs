// Which tests run against a mutant. A scope is a folder of src/ and the test files that exercise
// it; a file may narrow that to the tests that reach it, so a surviving mutant costs only those
// (a mutant that none of them kills survives: narrowing can lower the score, never raise it).
// Test files are listed fastest-killing first: tap runs them two at a time with --bail.
export const SCOPES = {
  admission: ['test/admission/queue.test.ts', 'test/admission/client.test.ts', 'test/dispatch/requeue.test.ts', 'test/admission/clients.test.ts', 'test/admission/busy.test.ts', 'test/dispatch/handoff.test.ts', 'test/worker/tcp.test.ts', 'test/metrics/counters.test.ts'],
  dispatch: ['test/dispatch/ipc.test.ts', 'test/dispatch/handoff.test.ts', 'test/dispatch/accept.test.ts', 'test/dispatch/transport.test.ts', 'test/dispatch/fdpass.test.ts', 'test/dispatch/overload.test.ts', 'test/primary/pool.test.ts', 'test/metrics/counters.test.ts', 'test/dispatch/strategies.test.ts'],
  primary: ['test/primary/acceptor.test.ts', 'test/primary/pool.test.ts', 'test/primary/readiness.test.ts', 'test/primary/watchdog.test.ts', 'test/cli.test.ts', 'test/handler/load.test.ts', 'test/metrics/primary.test.ts', 'test/dispatch/transport.test.ts', 'test/endpoint/bind.test.ts', 'test/endpoint/inherited.test.ts', 'test/dispatch/handoff.test.ts'],
  endpoint: ['test/endpoint/resolve.test.ts', 'test/endpoint/bind.test.ts', 'test/endpoint/inherited.test.ts', 'test/primary/acceptor.test.ts', 'test/cli.test.ts'],
  metrics: ['test/metrics/totals.test.ts', 'test/metrics/kernel.test.ts', 'test/metrics/counters.test.ts', 'test/metrics/primary.test.ts', 'test/metrics/cluster.test.ts', 'test/metrics/eventloop.test.ts', 'test/grafana/prometheus.test.ts', 'test/primary/pool.test.ts'],
  worker: ['test/worker/migrate.test.ts', 'test/worker/http.test.ts', 'test/worker/tcp.test.ts', 'test/worker/idle.test.ts', 'test/worker/tls.test.ts', 'test/dispatch/handoff.test.ts', 'test/dispatch/fdpass.test.ts', 'test/cli.test.ts', 'test/handler/load.test.ts', 'test/metrics/cluster.test.ts', 'test/primary/pool.test.ts'],
};

/** Narrower lists for single files (default: the scope's list). */
export const FILE_TESTS = {
  'src/admission/queue.ts': ['test/admission/queue.test.ts', 'test/dispatch/requeue.test.ts', 'test/admission/clients.test.ts', 'test/dispatch/handoff.test.ts', 'test/metrics/counters.test.ts'],
  'src/admission/client.ts': ['test/admission/client.test.ts', 'test/admission/clients.test.ts'],
  'src/admission/clients.ts': ['test/admission/clients.test.ts'],
  'src/admission/limited.ts': ['test/admission/clients.test.ts'],
  'src/worker/migrate.ts': ['test/worker/migrate.test.ts'],
  'src/admission/busy.ts': ['test/admission/busy.test.ts', 'test/dispatch/handoff.test.ts', 'test/worker/tcp.test.ts'],
  'src/primary/readiness.ts': ['test/primary/readiness.test.ts'],
  'src/primary/acceptor.ts': ['test/primary/acceptor.test.ts', 'test/metrics/primary.test.ts', 'test/endpoint/inherited.test.ts', 'test/primary/readiness.test.ts', 'test/endpoint/bind.test.ts', 'test/handler/load.test.ts', 'test/dispatch/transport.test.ts', 'test/primary/watchdog.test.ts', 'test/dispatch/strategies.test.ts', 'test/metrics/kernel.test.ts', 'test/primary/pool.test.ts', 'test/worker/tls.test.ts', 'test/cli.test.ts'],
  'src/primary/pool.ts': ['test/primary/watchdog.test.ts', 'test/primary/pool.test.ts', 'test/handler/load.test.ts', 'test/cli.test.ts', 'test/metrics/counters.test.ts'],
  'src/worker/main.ts': ['test/worker/tcp.test.ts', 'test/worker/http.test.ts', 'test/dispatch/handoff.test.ts', 'test/metrics/counters.test.ts', 'test/dispatch/strategies.test.ts', 'test/worker/idle.test.ts', 'test/primary/watchdog.test.ts', 'test/handler/load.test.ts', 'test/metrics/cluster.test.ts', 'test/admission/busy.test.ts', 'test/dispatch/transport.test.ts', 'test/worker/tls.test.ts', 'test/dispatch/fdpass.test.ts', 'test/primary/pool.test.ts', 'test/cli.test.ts', 'test/endpoint/inherited.test.ts'],
  'src/worker/idle.ts': ['test/worker/idle.test.ts'],
  // tcp and http: a socket error that is not OpenSSL's counts as the client's (socketErrorReason).
  'src/worker/tls.ts': ['test/worker/tls.test.ts', 'test/worker/tcp.test.ts', 'test/worker/http.test.ts'],
  'src/worker/http.ts': ['test/worker/http.test.ts', 'test/worker/tls.test.ts', 'test/handler/load.test.ts', 'test/cli.test.ts'],
  'src/worker/fdpass.ts': ['test/dispatch/fdpass.test.ts', 'test/dispatch/handoff.test.ts', 'test/dispatch/transport.test.ts', 'test/worker/tcp.test.ts', 'test/metrics/counters.test.ts'],
  'src/worker/protocol.ts': ['test/dispatch/handoff.test.ts', 'test/dispatch/fdpass.test.ts', 'test/primary/pool.test.ts', 'test/worker/http.test.ts'],
  'src/dispatch/transport.ts': ['test/dispatch/transport.test.ts', 'test/dispatch/handoff.test.ts', 'test/dispatch/strategies.test.ts'],
  'src/dispatch/ipc.ts': ['test/dispatch/ipc.test.ts', 'test/dispatch/handoff.test.ts', 'test/dispatch/transport.test.ts', 'test/metrics/counters.test.ts', 'test/primary/pool.test.ts', 'test/dispatch/overload.test.ts', 'test/dispatch/fdpass.test.ts'],
  'src/dispatch/fdpass.ts': ['test/dispatch/handoff.test.ts', 'test/dispatch/fdpass.test.ts', 'test/dispatch/transport.test.ts', 'test/metrics/counters.test.ts', 'test/primary/pool.test.ts', 'test/dispatch/overload.test.ts', 'test/primary/acceptor.test.ts'],
  'src/dispatch/handoff.ts': ['test/dispatch/ipc.test.ts', 'test/dispatch/handoff.test.ts', 'test/dispatch/transport.test.ts', 'test/metrics/counters.test.ts', 'test/primary/pool.test.ts', 'test/dispatch/overload.test.ts', 'test/dispatch/fdpass.test.ts', 'test/primary/watchdog.test.ts', 'test/primary/acceptor.test.ts'],
  'src/endpoint/resolve.ts': ['test/endpoint/resolve.test.ts', 'test/endpoint/bind.test.ts'],
  'src/endpoint/bind.ts': ['test/endpoint/bind.test.ts', 'test/endpoint/resolve.test.ts', 'test/primary/acceptor.test.ts'],
  'src/endpoint/inherited.ts': ['test/endpoint/inherited.test.ts'],
  'src/metrics/totals.ts': ['test/metrics/totals.test.ts', 'test/metrics/counters.test.ts'],
  'src/metrics/kernel.ts': ['test/metrics/kernel.test.ts', 'test/metrics/primary.test.ts'],
  'src/metrics/eventloop.ts': ['test/metrics/eventloop.test.ts'],
  'src/dispatch/accept.ts': ['test/dispatch/accept.test.ts', 'test/dispatch/handoff.test.ts', 'test/dispatch/fdpass.test.ts', 'test/metrics/counters.test.ts'],
};
