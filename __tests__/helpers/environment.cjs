// jest's node environment, plus a handle on the worker's real `process` for the setup file.
// Inside a test, `process` is a copy made by jest: Node reports warnings ('warning' events) on the
// real object, so a listener on the copy never hears them.
'use strict';
const { TestEnvironment } = require('jest-environment-node');

class DovetailEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    this.global.__dovetailHostProcess = process;
    // Under node --expose-gc (npm run soak), tests may force a collection.
    if (typeof global.gc === 'function') this.global.gc = global.gc;
  }
}

module.exports = DovetailEnvironment;
