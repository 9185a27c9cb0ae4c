// The package as a consumer sees it: a fresh build packed with `npm pack`, the tarball
// checked by publint and arethetypeswrong, installed into a fresh project outside the repository,
// then imported from ESM, required from CommonJS and type-checked under `nodenext` and `bundler`.
// Slow by nature (a build, an install, four compilers): about 15-40 s.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
const bin = (name: string): string => join(root, 'node_modules', '.bin', name);

interface Run {
  stdout: string;
  stderr: string;
}

/** Runs a command; rejects with its output when it exits non-zero. No shell. */
function run(file: string, args: readonly string[], cwd: string, timeout = 120_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { cwd, timeout, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, NO_COLOR: '1' } },
      (error, stdout, stderr) => {
        if (error)
          reject(
            new Error(`${file} ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`),
          );
        else resolve({ stdout, stderr });
      },
    );
  });
}

const node = (args: readonly string[], cwd: string): Promise<Run> =>
  run(process.execPath, args, cwd);
const tscArgs = (args: readonly string[], cwd: string): Promise<Run> =>
  node([join(root, 'node_modules', 'typescript', 'bin', 'tsc'), ...args], cwd);
const tsc = (project: string, cwd: string): Promise<Run> => tscArgs(['-p', project], cwd);

// What a TypeScript user writes. `@ts-expect-error` lines prove the types are real, not `any`.
const consumerEsm = `
import {
  Dovetail, Event, TimeoutError, currentTask,
  type DovetailOptions, type RetryPayload, type Task, type TaskContext,
} from 'dovetailjs';
import { trace } from '@opentelemetry/api';
import { instrument, SpanAttribute } from 'dovetailjs/opentelemetry';

const options: DovetailOptions = { concurrency: 4, retries: 2, retryBackoff: 100, rateLimit: { perSecond: 10 } };
await using dvt = new Dovetail(options);
const task: Task<number> = dvt.task.schedule(async (x: number) => x * 2, 21);
const id: string = task.id;
const doubled: number = await task;
const upper: string[] = await dvt.task.map(async (s: string) => s.toUpperCase(), ['a', 'b']);
dvt.events.on(Event.RETRY, (p: RetryPayload) => console.log(p.attempt, p.sleep, p.error));
const context: TaskContext | undefined = currentTask();
const stopTracing: () => void = instrument({ tracer: trace.getTracer('consumer') });
stopTracing();
const isTimeout = (error: unknown): boolean => error instanceof TimeoutError && error.timeout > 0;
console.log(id, doubled, upper, context, isTimeout);

// @ts-expect-error an unknown event name does not compile
dvt.events.on('finished', () => undefined);
// @ts-expect-error the arguments are checked against the function
dvt.task.schedule(async (x: number) => x, 'not a number');
// @ts-expect-error concurrency is a number
new Dovetail({ concurrency: '4' });
// @ts-expect-error the attribute names are a closed set
console.log(SpanAttribute.RETRIES);
`;

// CommonJS TypeScript: \`require\` of the ESM package, allowed by TypeScript >= 5.8 under nodenext.
const consumerCjs = `
import dovetail = require('dovetailjs');
const dvt = new dovetail.Dovetail({ concurrency: 1 });
const task: Promise<number> = dvt.task.schedule(() => 1);
void task.then(() => dvt.shutdown());
`;

const compilerOptions = {
  strict: true,
  noEmit: true,
  target: 'ES2022',
  lib: ['ES2023', 'esnext.disposable'],
  types: ['node'],
  typeRoots: [join(root, 'node_modules', '@types')],
  // The consumer's own code is checked, and so are the package's declaration files.
  skipLibCheck: false,
  exactOptionalPropertyTypes: true,
};

// Each step runs a child process (a compiler, a linter) on a busy 2-core machine.
jest.setTimeout(120_000);

describe('the packed package, installed into a fresh project', () => {
  let work = '';
  let tarball = '';
  let project = '';

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'dovetail-pack-'));
    const packed = join(work, 'packed');
    project = join(work, 'consumer');
    await mkdir(packed);
    await mkdir(project);
    // Built into a staging copy rather than the repository's dist/: other test files run the
    // built package at the same time, and rebuilding it under them could hand them half-written
    // files. The staging copy has what `npm pack` takes from the repository: package.json (whose
    // `files` and `exports` are the ones under test), README.md, LICENSE and a fresh build.
    const manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    if (manifest.scripts['build'] !== 'tsc -p tsconfig.build.json') {
      throw new Error('the build script changed: make the staging build below do the same');
    }
    const stage = join(work, 'stage');
    await mkdir(stage);
    for (const file of ['package.json', 'README.md', 'LICENSE']) {
      await copyFile(join(root, file), join(stage, file));
    }
    await tscArgs(['-p', join(root, 'tsconfig.build.json'), '--outDir', join(stage, 'dist')], root);
    await run('npm', ['pack', '--ignore-scripts', '--pack-destination', packed, '--silent'], stage);
    const [name] = (await readdir(packed)).filter((file) => file.endsWith('.tgz'));
    if (name === undefined) throw new Error('npm pack produced no tarball');
    tarball = join(packed, name);
    await writeFile(
      join(project, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true }),
    );
    // The dependencies come from npm's cache when they are there (always after `npm ci`), and so
    // does the optional peer of `dovetailjs/opentelemetry`, in the version the repository tests.
    const otelApi = JSON.parse(
      await readFile(join(root, 'node_modules', '@opentelemetry', 'api', 'package.json'), 'utf8'),
    ) as { version: string };
    await run(
      'npm',
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--no-package-lock',
        tarball,
        `@opentelemetry/api@${otelApi.version}`,
      ],
      project,
    );
    for (const file of ['esm.mjs', 'require.cjs', 'otel.mjs'])
      await copyFile(join(fixtures, file), join(project, file));
  }, 240_000);

  afterAll(async () => {
    if (work !== '') await rm(work, { recursive: true, force: true });
  });

  it('ships only dist/ JavaScript and declarations, package.json, README and LICENSE', async () => {
    const { stdout } = await run('tar', ['-tzf', tarball], root);
    const files = stdout.trim().split('\n').sort();
    expect(files).toContain('package/package.json');
    expect(files).toContain('package/README.md');
    expect(files).toContain('package/LICENSE');
    expect(files).toContain('package/dist/index.js');
    expect(files).toContain('package/dist/index.d.ts');
    const unexpected = files.filter(
      (file) =>
        !/^package\/(package\.json|README\.md|LICENSE)$/.test(file) &&
        !/^package\/dist\/.+\.(js|d\.ts)$/.test(file),
    );
    expect(unexpected).toEqual([]);
  });

  it('publishes no @internal member: the engine-facing parts of the public classes are stripped', async () => {
    const dist = join(project, 'node_modules', 'dovetailjs', 'dist');
    const declarations = (await readdir(dist, { recursive: true }))
      .filter((file) => file.endsWith('.d.ts'))
      .map((file) => join(dist, file));
    const texts = await Promise.all(declarations.map((file) => readFile(file, 'utf8')));
    expect(texts.filter((text) => text.includes('@internal'))).toEqual([]);
    const bus = await readFile(join(dist, 'events', 'bus.d.ts'), 'utf8');
    for (const member of ['readonly counters', 'wants(', 'publish(', 'releaseExecution(', 'close('])
      expect({ member, found: bus.includes(member) }).toEqual({ member, found: false });
    const taskApi = await readFile(join(dist, 'task.d.ts'), 'utf8');
    expect(taskApi).not.toContain('TaskHost');
  });

  it("lets the repository's `files` take nothing but dist/ JavaScript and declarations", async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], root);
    const [report] = JSON.parse(stdout) as { files: { path: string }[] }[];
    const unexpected = (report?.files ?? [])
      .map((file) => file.path)
      .filter(
        (path) =>
          !/^(package\.json|README\.md|LICENSE)$/.test(path) &&
          !/^dist\/.+\.(js|d\.ts)$/.test(path),
      );
    expect(unexpected).toEqual([]);
  });

  it('passes publint --strict', async () => {
    const { stdout } = await run(bin('publint'), ['run', tarball, '--strict'], root);
    expect(stdout).toMatch(/All good/);
  });

  // Profile node16: TypeScript's legacy `node10` resolution ignores `exports`, so it cannot see
  // `dovetailjs/redis`; a package for Node >= 20 leaves it out. And `require()` of ESM is allowed
  // (Node >= 20.19), so a CommonJS import resolving to ESM is not a problem here.
  it('passes arethetypeswrong', async () => {
    await expect(
      run(
        bin('attw'),
        [
          tarball,
          '--profile',
          'node16',
          '--ignore-rules',
          'cjs-resolves-to-esm',
          '--format',
          'ascii',
        ],
        root,
      ),
    ).resolves.toBeDefined();
  });

  it('imports from ESM', async () => {
    const { stdout } = await node(['esm.mjs'], project);
    expect(JSON.parse(stdout)).toEqual({
      doubled: [2, 4, 6],
      id: 'string',
      events: 4,
      errors: ['TimeoutError', 'CancelledError'],
      stats: 4,
    });
  });

  it('imports dovetailjs/opentelemetry, with @opentelemetry/api installed beside it', async () => {
    const { stdout } = await node(['otel.mjs'], project);
    const spans = JSON.parse(stdout) as {
      name: string;
      attributes: Record<string, unknown>;
      status?: number;
      ended: boolean;
    }[];
    expect(spans.map((span) => [span.name, span.ended, span.status])).toEqual([
      ['dovetail schedule fetchPage', true, undefined],
      ['dovetail schedule <anonymous>', true, 2],
    ]);
    expect(spans[0]?.attributes).toMatchObject({
      'dovetail.method': 'schedule',
      'dovetail.function': 'fetchPage',
      'dovetail.attempts': 1,
      'dovetail.outcome': 'done',
    });
  });

  it('requires from CommonJS', async () => {
    const { stdout } = await node(['require.cjs'], project);
    expect(JSON.parse(stdout)).toEqual({ sum: 42, family: true, message: 'timed out after 5 ms' });
  });

  it('type-checks a consumer under moduleResolution nodenext (ESM and CommonJS files)', async () => {
    const dir = join(project, 'nodenext');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'consumer.mts'), consumerEsm);
    await writeFile(join(dir, 'consumer.cts'), consumerCjs);
    await writeFile(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { ...compilerOptions, module: 'nodenext', moduleResolution: 'nodenext' },
        files: ['consumer.mts', 'consumer.cts'],
      }),
    );
    await expect(tsc(join(dir, 'tsconfig.json'), dir)).resolves.toBeDefined();
  });

  it('type-checks a consumer under moduleResolution bundler', async () => {
    const dir = join(project, 'bundler');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'consumer.ts'), consumerEsm);
    await writeFile(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { ...compilerOptions, module: 'preserve', moduleResolution: 'bundler' },
        files: ['consumer.ts'],
      }),
    );
    await expect(tsc(join(dir, 'tsconfig.json'), dir)).resolves.toBeDefined();
  });
});
