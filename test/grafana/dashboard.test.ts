// The committed dashboard is exactly what grafana/dashboard.ts generates, and is well formed.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dashboard, json, queries, type Panel } from '../../grafana/dashboard.js';

const FILE = fileURLToPath(new URL('../../grafana/dashboards/cluster-acceptor.json', import.meta.url));

t.test('committed JSON is the generated one (run `npm run dashboard` after editing)', async (t) => {
  t.equal(readFileSync(FILE, 'utf8'), json());
});

t.test('well formed for Grafana provisioning and import', async (t) => {
  const d = JSON.parse(readFileSync(FILE, 'utf8')) as typeof dashboard;
  t.equal(d.uid, 'cluster-acceptor');
  t.ok(d.schemaVersion >= 36);
  const vars = d.templating.list.map((v) => v.name);
  t.same(vars, ['datasource', 'instance', 'worker'], 'datasource, instance and worker variables');
  const ids = new Set<number>();
  for (const p of d.panels as Panel[]) {
    t.notOk(ids.has(p.id), `panel id ${p.id} unique`);
    ids.add(p.id);
    t.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title}: fits the grid`);
    if (p.type === 'row') continue;
    t.same(p.datasource, { type: 'prometheus', uid: '${datasource}' }, `${p.title}: uses the datasource variable`);
    t.ok(p.targets!.length > 0, `${p.title}: has queries`);
    for (const q of p.targets!) {
      t.match(q.expr, /instance=~"\$instance"/, `${p.title}: filtered by instance`);
      // With "All" instances chosen, a series without its instance would merge or hide the others.
      t.match(q.legendFormat, /\{\{instance\}\}/, `${p.title}: legend names the instance`);
    }
  }
  const titles = (d.panels as Panel[]).map((p) => p.title).join(' | ');
  for (const want of ['Accept rate', 'Rejections by reason', 'Rejected share', 'queue: depth vs capacity', 'listen queue vs backlog', 'overflows', 'Hand-off latency', 'Connections per worker', 'restarts', 'Event-loop lag', 'Memory', 'TLS handshakes']) {
    t.match(titles, want, `has a panel for ${want}`);
  }
  t.equal(queries().length, 22);
});
