// Compile-time checks of the hedging types (run by `npm run typecheck`; never executed).
import {
  Dovetail,
  Event,
  type DovetailOptions,
  type HedgeDelay,
  type HedgeOptions,
  type StartedPayload,
  type TaskOverrides,
} from '../../src/index.js';

const fixed: HedgeOptions = { delay: 30 };
const tail: HedgeOptions = { delay: 'p95', max: 2 };
const spelled: HedgeOptions = { delay: 'p99', max: undefined };
// @ts-expect-error delay is required
const missing: HedgeOptions = { max: 2 };
// @ts-expect-error only the four percentiles are named
const p42: HedgeDelay = 'p42';
// @ts-expect-error max is a number
const many: HedgeOptions = { delay: 10, max: '2' };

const options: DovetailOptions = { hedge: tail };
const overrides: TaskOverrides = { hedge: fixed };
const off: TaskOverrides = { hedge: undefined };

declare const dvt: Dovetail;
dvt.events.on(Event.STARTED, (p: StartedPayload) => {
  const hedge: true | undefined = p.hedge;
  // @ts-expect-error hedge is true or absent, never false
  const no: false = p.hedge;
  void [hedge, no];
});

void [fixed, spelled, missing, p42, many, options, overrides, off];
