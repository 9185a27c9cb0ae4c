import type { Config } from 'jest';

const config: Config = {
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: '<rootDir>/__tests__/helpers/environment.cjs',
  testMatch: ['<rootDir>/__tests__/**/*.test.ts'],
  // The soak runs alone (npm run soak); Stryker's sandboxes hold a second copy of the project.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/__tests__/soak/'],
  modulePathIgnorePatterns: ['<rootDir>/.stryker-tmp'],
  setupFilesAfterEnv: ['<rootDir>/__tests__/helpers/setup.ts'],
  // Enforced by `npm run coverage` (CI). src/lifecycle/process.ts is left out: signals, exit codes and
  // runMain are tested in child processes, which in-process coverage cannot see. dovetailjs/redis
  // has its own, lower bar (its outage paths need a real server to fail at the right moment).
  collectCoverageFrom: ['src/**/*.ts', '!src/lifecycle/process.ts'],
  coverageThreshold: {
    global: { lines: 95, branches: 90 },
    './src/redis/': { lines: 85, branches: 75 },
  },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
};

export default config;
