// The notes on equivalent mutants are StrykerJS directives (`// Stryker disable next-line
// Mutator: reason`), so `npm run mutate` reports them as ignored, with the reason. Stryker reads a
// directive only as the leading comment of a syntax node, and `next-line` only for that node's own
// line: one placed elsewhere (after a block, before an `else`) is silently ignored. Each must be
// placed so, name mutators Stryker has, and give a reason.
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from '@babel/parser';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const MUTATORS = ['all', 'ArithmeticOperator', 'ArrayDeclaration', 'ArrowFunction', 'AssignmentOperator', 'BlockStatement', 'BooleanLiteral', 'ConditionalExpression', 'EqualityOperator', 'LogicalOperator', 'MethodExpression', 'ObjectLiteral', 'OptionalChaining', 'Regex', 'StringLiteral', 'UnaryOperator', 'UpdateOperator'];
// Stryker's own pattern (instrumenter, directive-bookkeeper.js).
const DIRECTIVE = /^\s?Stryker (disable|restore)(?: (next-line))? ([a-zA-Z, ]+)(?::(.+)?)?/;

const files = (dir: string): string[] => readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : f.endsWith('.ts') ? [join(dir, f)] : []));

type Node = { type?: string; loc?: { start: { line: number } }; leadingComments?: { loc: { start: { line: number }; end: { line: number } } }[] } & Record<string, unknown>;

let total = 0;
for (const file of files(SRC)) {
  const ast = parse(readFileSync(file, 'utf8'), { sourceType: 'module', plugins: ['typescript'], attachComment: true });
  const directives = ast.comments!.filter((c) => /^\s?Stryker /.test(c.value));
  if (directives.length === 0) continue;
  total += directives.length;
  t.test(file.slice(SRC.length - 4), async (t) => {
    const placed = new Set<number>();
    const walk = (n: Node): void => {
      for (const c of n.leadingComments ?? []) if (n.loc!.start.line === c.loc.end.line + 1) placed.add(c.loc.start.line);
      for (const [k, v] of Object.entries(n)) {
        if (k === 'leadingComments' || k === 'trailingComments' || k === 'innerComments' || k === 'loc') continue;
        if (Array.isArray(v)) for (const x of v) if (x && typeof (x as Node).type === 'string') walk(x as Node);
        if (v && typeof (v as Node).type === 'string') walk(v as Node);
      }
    };
    walk(ast.program as unknown as Node);
    const problems: string[] = [];
    for (const c of directives) {
      const line = c.loc!.start.line;
      const m = DIRECTIVE.exec(c.value);
      if (!m) problems.push(`${line}: not a directive Stryker reads`);
      else {
        const unknown = m[3]!.split(',').map((x) => x.trim()).filter((x) => !MUTATORS.includes(x));
        if (unknown.length) problems.push(`${line}: no such mutator ${unknown.join(', ')}`);
        if (m[1] === 'disable' && !m[4]?.trim()) problems.push(`${line}: no reason`);
        if (m[2] === 'next-line' && !placed.has(line)) problems.push(`${line}: not the leading comment of the next line's node, so Stryker ignores it`);
      }
    }
    t.same(problems, [], `${directives.length} directives`);
  });
}
t.ok(total > 50, `${total} directives in src/`);
