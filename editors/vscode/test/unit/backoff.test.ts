/** Restart back-off after crashes. */
import assert from "node:assert/strict";
import { test } from "node:test";

import { RestartBackoff } from "../../src/backoff";

const options = { initialMs: 1000, maxMs: 8000, factor: 2, stableMs: 60_000, maxAttempts: 5 };

test("delays double per crash in a row, capped", () => {
  const backoff = new RestartBackoff(options);
  let now = 0;
  const delays: number[] = [];
  for (let i = 0; i < 5; i++) {
    backoff.started(now);
    const decision = backoff.crashed(now + 100);
    assert.equal(decision.restart, true);
    if (decision.restart) {
      delays.push(decision.delayMs);
      now += 100 + decision.delayMs;
    }
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 8000]);
});

test("gives up after maxAttempts crashes in a row", () => {
  const backoff = new RestartBackoff(options);
  for (let i = 0; i < 5; i++) {
    backoff.started(i * 10);
    assert.equal(backoff.crashed(i * 10 + 1).restart, true);
  }
  backoff.started(100);
  assert.deepEqual(backoff.crashed(101), { restart: false, attempts: 5 });
});

test("a run that stayed up long enough forgives earlier crashes", () => {
  const backoff = new RestartBackoff(options);
  backoff.started(0);
  backoff.crashed(10);
  backoff.started(1010);
  backoff.crashed(1020);
  backoff.started(3020);
  const decision = backoff.crashed(3020 + 60_000);
  assert.deepEqual(decision, { restart: true, delayMs: 1000, attempt: 1 });
});

test("reset (a manual restart) starts over", () => {
  const backoff = new RestartBackoff(options);
  for (let i = 0; i < 6; i++) {
    backoff.crashed(i);
  }
  backoff.reset();
  assert.deepEqual(backoff.crashed(100), { restart: true, delayMs: 1000, attempt: 1 });
});
