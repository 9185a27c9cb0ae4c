#!/usr/bin/env node
// Type-checks every ```ts block of the TSDoc @example tags in src/ (house style: "a compiling
// @example"), the way __tests__/readme.test.ts checks the README: each block is a file of its
// own, compiled strictly against the source, with 'dovetailjs', 'dovetailjs/redis' and 'dovetailjs/opentelemetry' mapped to it.
//
//   node scripts/check-tsdoc-examples.mjs     # prints each error as src/file.ts:line, exits 1 on any
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'dovetail-tsdoc-'));
/** @type {Map<string, { source: string; first: number; offset: number }>} */
const origin = new Map();

for (const entry of readdirSync(join(root, 'src'), { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
  const path = join(entry.parentPath, entry.name);
  const lines = readFileSync(path, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*\*\s?```ts\s*$/.test(lines[i])) continue;
    const first = i + 2; // 1-based line of the block's first line of code
    const body = [];
    for (i += 1; i < lines.length && !/^\s*\*\s?```\s*$/.test(lines[i]); i++) {
      body.push(lines[i].replace(/^\s*\* ?/, ''));
    }
    // A block without imports would be a script sharing one global scope with the others.
    const offset = /^\s*(import|export)\s/m.test(body.join('\n')) ? 0 : 1;
    const name = `example-${origin.size}.ts`;
    writeFileSync(join(work, name), (offset ? 'export {};\n' : '') + body.join('\n') + '\n');
    origin.set(name, { source: relative(root, path), first, offset });
  }
}

writeFileSync(join(work, 'package.json'), JSON.stringify({ type: 'module', private: true }));
writeFileSync(
  join(work, 'tsconfig.json'),
  JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      module: 'nodenext',
      moduleResolution: 'nodenext',
      lib: ['ES2023', 'esnext.disposable'],
      types: ['node'],
      typeRoots: [join(root, 'node_modules', '@types')],
      strict: true,
      noUncheckedIndexedAccess: true,
      exactOptionalPropertyTypes: true,
      skipLibCheck: true,
      noEmit: true,
      paths: {
        dovetailjs: [join(root, 'src', 'index.ts')],
        'dovetailjs/redis': [join(root, 'src', 'redis', 'index.ts')],
        'dovetailjs/opentelemetry': [join(root, 'src', 'opentelemetry', 'index.ts')],
        // The examples live outside the repository: its dependencies are not found from there.
        ioredis: [join(root, 'node_modules', 'ioredis', 'built', 'index.d.ts')],
        '@opentelemetry/api': [
          join(root, 'node_modules', '@opentelemetry', 'api', 'build', 'src', 'index.d.ts'),
        ],
      },
    },
    files: [...origin.keys()],
  }),
);

let output = '';
try {
  execFileSync(
    process.execPath,
    [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', work],
    {
      cwd: work,
      encoding: 'utf8',
    },
  );
} catch (error) {
  output = String(error.stdout ?? error);
}
rmSync(work, { recursive: true, force: true });

let failures = 0;
for (const line of output.split('\n')) {
  const match = /^(example-\d+\.ts)\((\d+),\d+\): (.*)$/.exec(line);
  if (match === null) continue;
  const where = origin.get(match[1]);
  if (where === undefined) continue;
  failures += 1;
  console.log(`${where.source}:${where.first + Number(match[2]) - 1 - where.offset}: ${match[3]}`);
}
console.log(`${origin.size} @example blocks checked, ${failures} errors`);
process.exit(
  failures === 0 && !/error TS/.test(output.replace(/example-\d+\.ts\(.*/g, '')) ? 0 : 1,
);
