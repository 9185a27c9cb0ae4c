// The soak (npm run soak): 1 000 000 tasks, run alone, under node --expose-gc. Kept out of
// `npm test` by the default config's testPathIgnorePatterns; otherwise the same setup as
// jest.config.ts (repeated here: jest loads each config file on its own).

/** @type {import('jest').Config} */
const config = {
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: '<rootDir>/__tests__/helpers/environment.cjs',
  testMatch: ['<rootDir>/__tests__/soak/**/*.test.ts'],
  setupFilesAfterEnv: ['<rootDir>/__tests__/helpers/setup.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  modulePathIgnorePatterns: ['<rootDir>/.stryker-tmp'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
  testTimeout: 600_000,
};

export default config;
