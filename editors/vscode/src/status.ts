/**
 * The server's state as the status bar shows it, folded from three sources:
 * - `qwen-ls/status` notifications (and the `qwen-ls.status` command's answer): the server's own word, sent on
 *   every state change — authoritative;
 * - `$/progress` work-done progress ("qwen-ls: loading model", "qwen-ls: indexing"): adds percentages and
 *   messages while a phase runs, and covers a server that sends progress before its first status;
 * - `window/showMessage` errors: a lasting problem (missing model, unreachable remote) even if no status
 *   notification said `error`.
 * No `vscode` import: the state machine is unit-tested under plain Node and reused by the integration test.
 */

/** States of PROTOCOL.md, plus `stopped` for "no server process" (crashed, restarting or not started). */
export type ServerState = "starting" | "loading-model" | "indexing" | "ready" | "error" | "stopped";

const PROTOCOL_STATES: ReadonlySet<string> = new Set(["starting", "loading-model", "indexing", "ready", "error"]);

/** LSP `WorkDoneProgressBegin | Report | End` values, structurally. */
export interface ProgressValue {
  kind: "begin" | "report" | "end";
  title?: string;
  message?: string;
  percentage?: number;
}

/** What the status bar renders. */
export interface StatusView {
  state: ServerState;
  /** Short text after the icon, e.g. `qwen-ls: loading model 40%`. */
  text: string;
  /** Longer explanation for the tooltip. */
  tooltip: string;
  /** Whether a spinner fits (a phase in progress). */
  busy: boolean;
}

interface Phase {
  state: "loading-model" | "indexing" | "other";
  title: string;
  message?: string;
  percentage?: number;
}

/** Which phase a progress title belongs to (titles per PROTOCOL.md; matched loosely to tolerate wording). */
export function phaseOfTitle(title: string): Phase["state"] {
  const t = title.toLowerCase();
  if (t.includes("model") || t.includes("download")) {
    return "loading-model";
  }
  if (t.includes("index")) {
    return "indexing";
  }
  return "other";
}

/** Parses a `qwen-ls/status` payload; `undefined` when it is not one. */
export function parseStatus(value: unknown): { state: ServerState; message: string } | undefined {
  if (typeof value !== "object" || value === null) {
    return undefined;
  }
  const { state, message } = value as { state?: unknown; message?: unknown };
  if (typeof state !== "string" || !PROTOCOL_STATES.has(state)) {
    return undefined;
  }
  return { state: state as ServerState, message: typeof message === "string" ? message : "" };
}

const LABELS: Record<ServerState, string> = {
  starting: "starting",
  "loading-model": "loading model",
  indexing: "indexing",
  ready: "ready",
  error: "error",
  stopped: "stopped",
};

/** The state machine. Feed it events; read `view()`. */
export class StatusModel {
  private reported: ServerState = "stopped";
  private reportedMessage = "";
  private errorMessage: string | undefined;
  private readonly phases = new Map<string, Phase>();

  /** A server process is being started (or restarted). Forgets everything the previous process said. */
  serverStarting(): void {
    this.reported = "starting";
    this.reportedMessage = "";
    this.errorMessage = undefined;
    this.phases.clear();
  }

  /** The server process is gone; `reason` says why and what happens next. */
  serverStopped(reason: string): void {
    this.reported = "stopped";
    this.reportedMessage = reason;
    this.phases.clear();
  }

  /** A `qwen-ls/status` notification or `qwen-ls.status` result. Unknown payloads are ignored. */
  status(value: unknown): void {
    const parsed = parseStatus(value);
    if (parsed === undefined) {
      return;
    }
    this.reported = parsed.state;
    this.reportedMessage = parsed.message;
    // The server's own non-error state supersedes an earlier error popup: the problem was fixed
    // (e.g. the user pointed `model` at a valid directory).
    if (parsed.state !== "error") {
      this.errorMessage = undefined;
    }
  }

  /** A `$/progress` notification for `token`. */
  progress(token: string | number, value: ProgressValue): void {
    const key = String(token);
    if (value.kind === "begin") {
      const title = value.title ?? "";
      this.phases.set(key, {
        state: phaseOfTitle(title),
        title,
        message: value.message,
        percentage: value.percentage,
      });
      return;
    }
    const phase = this.phases.get(key);
    if (phase === undefined) {
      return;
    }
    if (value.kind === "end") {
      this.phases.delete(key);
      return;
    }
    if (value.message !== undefined) {
      phase.message = value.message;
    }
    if (value.percentage !== undefined) {
      phase.percentage = value.percentage;
    }
  }

  /** A `window/showMessage`; LSP `MessageType` 1 = Error. Only errors change the state. */
  showMessage(type: number, message: string): void {
    if (type === 1) {
      this.errorMessage = message;
    }
  }

  /** The current state. */
  state(): ServerState {
    return this.view().state;
  }

  view(): StatusView {
    if (this.reported === "stopped") {
      return {
        state: "stopped",
        text: "qwen-ls: stopped",
        tooltip: this.reportedMessage || "The qwen-ls server is not running.",
        busy: false,
      };
    }
    if (this.reported === "error" || this.errorMessage !== undefined) {
      const message = this.errorMessage ?? this.reportedMessage;
      return { state: "error", text: "qwen-ls: error", tooltip: message || "The server reported an error.", busy: false };
    }
    // A running phase is more specific than the last status (loading the model outranks indexing).
    const phases = [...this.phases.values()];
    const phase = phases.find((p) => p.state === "loading-model") ?? phases.find((p) => p.state === "indexing");
    if (phase !== undefined) {
      const state = phase.state as ServerState;
      const pct = phase.percentage !== undefined ? ` ${Math.round(phase.percentage)}%` : "";
      const tooltip = [phase.title, phase.message].filter((s) => s !== undefined && s !== "").join(": ");
      return { state, text: `qwen-ls: ${LABELS[state]}${pct}`, tooltip, busy: true };
    }
    const busy = this.reported !== "ready";
    const tooltip = this.reportedMessage || `qwen-ls is ${LABELS[this.reported]}.`;
    return { state: this.reported, text: this.reported === "ready" ? "qwen-ls" : `qwen-ls: ${LABELS[this.reported]}`, tooltip, busy };
  }
}
