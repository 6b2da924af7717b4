// The README and docs/: every relative link resolves (the file, and the heading it names), and
// every option `acceptor --help` lists is documented in docs/options.md.
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI } from '../helpers/cli.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PAGES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading: string): string => heading.trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-');
const anchors = (file: string): Set<string> =>
  new Set(readFileSync(file, 'utf8').split('\n').filter((l) => /^#{1,6} /.test(l)).map((l) => slug(l.replace(/^#+ /, ''))));
/** Markdown links outside code: [text](target). */
const links = (text: string): string[] => [...text.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '').matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);

t.test('README.md is a short page', async (t) => {
  const n = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n').length;
  t.ok(n <= 250, `${n} lines`);
});

for (const page of PAGES) {
  t.test(`every relative link in ${page} resolves`, async (t) => {
    const from = join(ROOT, page);
    const bad: string[] = [];
    let checked = 0;
    for (const link of links(readFileSync(from, 'utf8'))) {
      if (/^[a-z]+:/.test(link)) continue; // https:, mailto:
      checked++;
      const [path, anchor] = link.split('#') as [string, string | undefined];
      const target = path === '' ? from : resolve(dirname(from), path);
      if (!existsSync(target)) bad.push(`${link}: no such file`);
      else if (anchor !== undefined && target.endsWith('.md') && !anchors(target).has(anchor)) bad.push(`${link}: no such heading`);
    }
    t.same(bad, [], `${checked} links checked`);
  });
}

t.test('every option in --help is in docs/options.md', async (t) => {
  const help = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' }).stdout;
  const options = [...new Set([...help.matchAll(/--(?:no-)?([a-z][a-z0-9-]+)/g)].map((m) => m[1]!))];
  t.ok(options.length > 20, `${options.length} options in --help`);
  const doc = readFileSync(join(ROOT, 'docs/options.md'), 'utf8');
  t.same(options.filter((o) => !doc.includes(`--${o}`)), [], 'none missing');
});
