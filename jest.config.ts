import type { Config } from 'jest';

const config: Config = {
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: '<rootDir>/__tests__/helpers/environment.cjs',
  testMatch: ['<rootDir>/__tests__/**/*.test.ts'],
  // The soak runs alone (npm run soak); Stryker's sandboxes hold a second copy of the project.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/__tests__/soak/'],
  modulePathIgnorePatterns: ['<rootDir>/.stryker-tmp'],
  setupFilesAfterEnv: ['<rootDir>/__tests__/helpers/setup.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
};

export default config;
