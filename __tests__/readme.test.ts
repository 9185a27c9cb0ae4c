// Every code block in README.md is a real program:
// - ```ts blocks are type-checked together (strict, as this repository compiles) against the
//   source, and each is run with tsx; lines ending in `// prints: <text>` must appear in its
//   output, in order. A block after `<!-- test: typecheck -->` is only type-checked (a server that
//   runs until stopped, a snippet that sends a signal).
// - A block after `<!-- include: examples/file -->` must equal that file, which its own tests run.
// - ```sh blocks may only name npm scripts that package.json has.
// - Relative links point at files of the repository, and #anchors at headings of the README.
// Any other block fails the test, so nothing in the README goes unchecked.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

interface Block {
  /** 1-based line of the opening fence in README.md. */
  line: number;
  lang: string;
  code: string;
  /** The HTML comment just above the fence, if any: `test: typecheck`, `include: path`. */
  directive: string | undefined;
}

function parseBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i] ?? '');
    if (open === null) continue;
    const start = i;
    const body: string[] = [];
    for (i += 1; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i] ?? '');
    if (i >= lines.length) throw new Error(`README.md:${start + 1}: unclosed code block`);
    // The nearest non-blank line above (Prettier puts a blank line between a comment and a fence).
    let previous = start - 1;
    while (previous >= 0 && (lines[previous] ?? '').trim() === '') previous -= 1;
    const above = /^<!--\s*(.+?)\s*-->$/.exec(lines[previous] ?? '');
    blocks.push({
      line: start + 1,
      lang: open[1] ?? '',
      code: body.join('\n') + '\n',
      directive: above?.[1],
    });
  }
  return blocks;
}

function run(file: string, args: readonly string[], cwd: string, timeout: number) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      file,
      args,
      { cwd, timeout, env: { ...process.env, DOVETAIL_TRACE: '', NO_COLOR: '1' } },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const readme = readFileSync(join(root, 'README.md'), 'utf8');
const blocks = parseBlocks(readme);
const fileOf = (block: Block): string => `readme-${String(block.line).padStart(4, '0')}.ts`;
const tsBlocks = blocks.filter((block) => block.lang === 'ts' && block.directive === undefined);
const typecheckOnly = blocks.filter(
  (block) => block.lang === 'ts' && block.directive === 'test: typecheck',
);
const included = blocks.filter((block) => block.directive?.startsWith('include:') === true);
const shell = blocks.filter((block) => block.lang === 'sh' && block.directive === undefined);

jest.setTimeout(120_000);

describe('README.md code blocks', () => {
  let work = '';
  const results = new Map<Block, ReturnType<typeof run>>();
  const workers: Promise<void>[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'dovetail-readme-'));
    await writeFile(join(work, 'package.json'), JSON.stringify({ type: 'module', private: true }));
    await writeFile(
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
          // The README imports the package by name; here the name means the source.
          paths: { dovetailjs: [join(root, 'src', 'index.ts')] },
        },
        files: [...tsBlocks, ...typecheckOnly].map(fileOf),
      }),
    );
    for (const block of [...tsBlocks, ...typecheckOnly]) {
      await writeFile(join(work, fileOf(block)), block.code);
    }
    // Each block is its own process (tsx takes a second or more to start): run them 2 at a time,
    // from here, and let each test wait for its own.
    const tsx = join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs');
    const queue = [...tsBlocks];
    const worker = async (): Promise<void> => {
      for (let block = queue.shift(); block !== undefined; block = queue.shift()) {
        const done = run(process.execPath, [tsx, fileOf(block)], work, 60_000);
        results.set(block, done);
        await done;
      }
    };
    for (let i = 0; i < 2; i++) workers.push(worker());
  });

  afterAll(async () => {
    await Promise.all(workers);
    if (work !== '') await rm(work, { recursive: true, force: true });
  });

  it('has only blocks this test knows how to check', () => {
    const unchecked = blocks
      .filter(
        (block) =>
          !tsBlocks.includes(block) &&
          !typecheckOnly.includes(block) &&
          !included.includes(block) &&
          !shell.includes(block),
      )
      .map((block) => `README.md:${block.line} (${block.lang || 'no language'})`);
    expect(unchecked).toEqual([]);
    expect(tsBlocks.length).toBeGreaterThan(10);
  });

  it('type-checks every TypeScript block against the source (strict)', async () => {
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], work, 120_000);
    // tsc names the file (readme-<line>.ts): the number is the block's line in README.md.
    expect(result.stdout + result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('includes examples/ files unchanged', () => {
    for (const block of included) {
      const path = block.directive?.slice('include:'.length).trim() ?? '';
      expect({ line: block.line, code: block.code }).toEqual({
        line: block.line,
        code: readFileSync(join(root, path), 'utf8'),
      });
    }
  });

  it('links only to files that exist and to headings it has', () => {
    // GitHub's anchors: lower case, punctuation other than - and _ dropped, spaces as hyphens.
    const slug = (heading: string): string =>
      heading
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, '')
        .replace(/ /g, '-');
    const outside = readme.replace(/^```[\s\S]*?^```$/gm, '');
    const anchors = new Set(
      [...outside.matchAll(/^#{1,6} (.+)$/gm)].map((match) => slug(match[1] ?? '')),
    );
    const broken: string[] = [];
    for (const [, target = ''] of outside.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^https?:/.test(target)) continue;
      if (target.startsWith('#')) {
        if (!anchors.has(target.slice(1))) broken.push(target);
      } else if (!existsSync(join(root, target.split('#')[0] ?? ''))) {
        broken.push(target);
      }
    }
    expect(broken).toEqual([]);
  });

  it('names only npm scripts that exist', () => {
    const scripts = Object.keys(
      (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: object }).scripts,
    );
    for (const block of shell) {
      for (const match of block.code.matchAll(/npm run ([\w:-]+)/g)) {
        expect(scripts).toContain(match[1]);
      }
    }
  });

  it.each(tsBlocks.map((block) => [block.line, block] as const))(
    'runs the block at README.md:%i',
    async (_line, block) => {
      // Started in beforeAll; a block not reached yet is waited for.
      while (!results.has(block)) await new Promise((resolve) => setTimeout(resolve, 50));
      const result = await results.get(block)!;
      if (result.code !== 0)
        throw new Error(`exit ${result.code}\n${result.stdout}\n${result.stderr}`);
      const expected = [...block.code.matchAll(/\/\/ prints: (.*)$/gm)].map((m) =>
        (m[1] ?? '').trim(),
      );
      let from = 0;
      for (const text of expected) {
        const at = result.stdout.indexOf(text, from);
        if (at < 0)
          throw new Error(`output lacks "${text}" (in order)\n--- stdout:\n${result.stdout}`);
        from = at + text.length;
      }
    },
  );
});
