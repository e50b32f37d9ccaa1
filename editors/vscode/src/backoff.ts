/**
 * Restart policy for a crashing server.
 *
 * vscode-languageclient's default handler restarts at most 4 times in 3 minutes and then gives up for good; a
 * model that takes a minute to load can use that budget up in one bad start. Here each crash in a row waits twice
 * as long as the previous one (capped), a run that stayed up for `stableMs` forgives the history, and after
 * `maxAttempts` crashes in a row the extension stops trying and tells the user, instead of burning CPU forever.
 */

/** Tunables; the defaults are the extension's behaviour. */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor: number;
  stableMs: number;
  maxAttempts: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  initialMs: 1_000,
  maxMs: 30_000,
  factor: 2,
  stableMs: 60_000,
  maxAttempts: 8,
};

/** What to do after a crash. */
export type CrashDecision = { restart: true; delayMs: number; attempt: number } | { restart: false; attempts: number };

/** Counts crashes in a row and turns them into delays. Time is passed in so that tests need no clock. */
export class RestartBackoff {
  private attempts = 0;
  private lastStart: number | undefined;

  constructor(private readonly options: BackoffOptions = DEFAULT_BACKOFF) {}

  /** The server (re)started at `now` (ms). */
  started(now: number): void {
    this.lastStart = now;
  }

  /** The server died at `now` (ms). */
  crashed(now: number): CrashDecision {
    if (this.lastStart !== undefined && now - this.lastStart >= this.options.stableMs) {
      this.attempts = 0;
    }
    this.attempts += 1;
    if (this.attempts > this.options.maxAttempts) {
      return { restart: false, attempts: this.attempts - 1 };
    }
    const delayMs = Math.min(this.options.maxMs, this.options.initialMs * this.options.factor ** (this.attempts - 1));
    return { restart: true, delayMs, attempt: this.attempts };
  }

  /** A manual restart: start counting from scratch. */
  reset(): void {
    this.attempts = 0;
    this.lastStart = undefined;
  }
}
