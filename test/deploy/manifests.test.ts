// deploy/: the systemd units pass `systemd-analyze verify` with no warning; the Kubernetes objects
// validate against the Kubernetes (and Prometheus Operator) schemas; the timings agree with each
// other and the acceptor's options parse. No systemd or cluster runs here: this proves the files
// are well-formed and consistent, not that a cluster runs them.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Service } from 'kubernetes-models/v1/Service';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { parseArgv } from '../../src/options.js';

const deploy = (p: string): string => fileURLToPath(new URL(`../../deploy/${p}`, import.meta.url));

t.test('systemd units: systemd-analyze verify, no warning; stop timeout above the drain timeout', { skip: spawnSync('systemd-analyze', ['--version']).status === 0 || process.env.CI ? false : 'systemd-analyze not installed' }, async (t) => {
  const units = [deploy('systemd/cluster-acceptor.socket'), deploy('systemd/cluster-acceptor.service')];
  const r = spawnSync('systemd-analyze', ['verify', ...units], { encoding: 'utf8' });
  // It exits 0 on unknown keys: a typo shows only as a warning.
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stderr.trim(), '', 'no warning');
  const service = readFileSync(units[1]!, 'utf8');
  const socket = readFileSync(units[0]!, 'utf8');
  t.match(socket, /^Backlog=\d+$/m, 'the socket sets its backlog');
  t.match(service, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m, 'reload is SIGHUP');
  const args = /^ExecStart=\S+ \S+cli\.js (.*)$/m.exec(service)![1]!.split(' ');
  const opts = parseArgv(args.filter((a, i) => a !== '--handler' && args[i - 1] !== '--handler')) as { drainTimeout: number };
  const stop = Number(/^TimeoutStopSec=(\d+)s$/m.exec(service)![1]) * 1000;
  t.ok(stop > opts.drainTimeout, `TimeoutStopSec ${stop} ms > --drain-timeout ${opts.drainTimeout} ms`);
});

t.test('Kubernetes objects validate against the schema; probes and timings agree', async (t) => {
  const load = (f: string): Record<string, unknown>[] => parseAllDocuments(readFileSync(deploy(`kubernetes/${f}`), 'utf8')).map((d) => d.toJS() as Record<string, unknown>);
  const [dep] = load('deployment.yaml').map((o) => new Deployment(o as never));
  const [svc] = load('service.yaml').map((o) => new Service(o as never));
  const [pm] = load('podmonitor.yaml').map((o) => new PodMonitor(o as never));
  for (const o of [dep!, svc!, pm!]) t.doesNotThrow(() => o.validate(), `${o.kind} validates`);
  const pod = dep!.spec!.template.spec!;
  const c = pod.containers[0]!;
  t.equal(c.readinessProbe?.httpGet?.path, '/readyz');
  t.equal(c.livenessProbe?.httpGet?.path, '/healthz');
  const opts = parseArgv((c.args ?? []).filter((a, i, all) => a !== '--handler' && all[i - 1] !== '--handler')) as { drainTimeout: number; metricsPort: number; metricsHost: string; port: number };
  t.equal(opts.metricsHost, '0.0.0.0', 'the metrics port (and the probes) reachable from the kubelet and Prometheus');
  t.same(c.ports?.map((p) => p.containerPort), [opts.port, opts.metricsPort], 'ports named as the acceptor listens');
  const preStop = Number((c.lifecycle?.preStop?.exec?.command ?? [])[1]) * 1000;
  t.ok(pod.terminationGracePeriodSeconds! * 1000 > preStop + opts.drainTimeout, `grace ${pod.terminationGracePeriodSeconds} s > preStop ${preStop} ms + drain ${opts.drainTimeout} ms`);
  t.same(pm!.spec.selector.matchLabels, dep!.spec!.selector.matchLabels, 'the PodMonitor selects these pods');
  t.equal(pm!.spec.podMetricsEndpoints?.[0]?.port, 'metrics');
  t.same(svc!.spec!.selector, dep!.spec!.selector.matchLabels, 'the Service selects them');
  // The validator catches a broken object: the test can fail.
  const broken = new Deployment({ ...(load('deployment.yaml')[0] as object), spec: { ...(load('deployment.yaml')[0]!.spec as object), replicas: 'two' } } as never);
  t.throws(() => broken.validate(), 'a wrong type is caught');
});
