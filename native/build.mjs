// `npm ci` / `npm install` builds the fdpass addon with node-gyp against the running Node's own
// headers (never a download). Where it cannot be built (no C toolchain, not Linux) the install
// still succeeds: the acceptor then uses the ipc transport and says so in one line at start.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';

const warn = (why) => {
  process.stderr.write(`cluster-acceptor: native fdpass transport not built (${why}); the acceptor will use --transport ipc\n`);
  process.exit(0);
};

if (process.platform !== 'linux') warn(`${process.platform} is not supported: it needs Linux`);
if (process.env.ACCEPTOR_SKIP_NATIVE === '1') warn('ACCEPTOR_SKIP_NATIVE=1');

function nodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  // npm bundles node-gyp; find it beside the npm that runs this script.
  const npm = process.env.npm_execpath;
  if (npm) {
    try {
      return createRequire(npm).resolve('node-gyp/bin/node-gyp.js');
    } catch {}
  }
  try {
    return createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    return undefined;
  }
}

const gyp = nodeGyp();
if (!gyp) warn('node-gyp not found');
// Headers with no download: the running Node's own (<prefix>/include/node: Debian's node, the
// official tarballs, nvm), else npm's configured nodedir, else any Node's on the machine. A
// Node-API build needs only node_api.h, the same in every Node that has the API level used, and
// loads in every Node >= 20 alike.
const candidates = [resolve(dirname(process.execPath), '..'), process.env.npm_config_nodedir, '/usr/local', '/usr'];
const nodedir = candidates.find((d) => d && existsSync(join(d, 'include/node/node_api.h')));
const args = [gyp, 'rebuild'];
if (nodedir) args.push(`--nodedir=${nodedir}`);
const r = spawnSync(process.execPath, args, { cwd: resolve(dirname(new URL(import.meta.url).pathname), '..'), stdio: ['ignore', 'inherit', 'inherit'] });
if (r.status !== 0) warn(r.error ? r.error.message : `node-gyp exited with ${r.status}`);
