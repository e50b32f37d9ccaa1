/**
 * `workspace/executeCommand` arguments and results of PROTOCOL.md, built and checked in one place so that the
 * commands, the code-action middleware and the integration test cannot drift apart. Plain LSP shapes (string
 * URIs, 0-based positions); no `vscode` import.
 */

export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

/** Server commands (PROTOCOL.md). VS Code registers them itself from `executeCommandProvider`. */
export const ServerCommands = {
  refactor: "qwen-ls.refactor",
  applyInstruction: "qwen-ls.applyInstruction",
  explain: "qwen-ls.explain",
  completionAccepted: "qwen-ls.completionAccepted",
  status: "qwen-ls.status",
  dumpPrompt: "qwen-ls.debug.dumpPrompt",
  verifyIndex: "qwen-ls.debug.verifyIndex",
} as const;

/** The extension's own command ids. Distinct from the server's, which the language client registers. */
export const ClientCommands = {
  refactor: "qwen-ls.refactorWithInstruction",
  applyInstruction: "qwen-ls.applyInstructionAcrossWorkspace",
  explain: "qwen-ls.explainFunction",
  restart: "qwen-ls.restartServer",
  showOutput: "qwen-ls.showOutput",
  verifyIndex: "qwen-ls.verifyIndex",
} as const;

/** `qwen-ls.debug.verifyIndex`'s answer as one sentence; `ok` when the index equals a fresh re-index. */
export function describeIndexCheck(result: unknown): { ok: boolean; text: string } {
  const r = (typeof result === "object" && result !== null ? result : {}) as {
    equal?: unknown;
    files?: unknown;
    freshFiles?: unknown;
    difference?: unknown;
  };
  if (r.equal === true) {
    return { ok: true, text: `qwen-ls: the index equals a fresh re-index (${String(r.files)} files)` };
  }
  if (r.equal === false) {
    return {
      ok: false,
      text: `qwen-ls: the index differs from a fresh re-index (${String(r.files)} files, ${String(r.freshFiles)} on disk): ${String(r.difference)}`,
    };
  }
  return { ok: false, text: "qwen-ls: the server gave no index check" };
}

/** The input box's validation: `undefined` when fine, else the message to show. */
export function validateInstruction(text: string): string | undefined {
  return text.trim() === "" ? "Describe the change, e.g. \"use early returns\"." : undefined;
}

/** `qwen-ls.refactor` arguments. An empty range asks the server for the function around `range.start`. */
export function refactorArgs(uri: string, range: Range, instruction: string): [{ uri: string; range: Range; instruction: string }] {
  return [{ uri, range, instruction: instruction.trim() }];
}

/** `qwen-ls.applyInstruction` arguments; without `uris` the server picks the files. */
export function applyInstructionArgs(instruction: string, uris?: string[]): [{ instruction: string; uris?: string[] }] {
  const arg: { instruction: string; uris?: string[] } = { instruction: instruction.trim() };
  if (uris !== undefined && uris.length > 0) {
    arg.uris = uris;
  }
  return [arg];
}

/** `qwen-ls.explain` arguments. */
export function explainArgs(uri: string, position: Position): [{ uri: string; position: Position }] {
  return [{ uri, position }];
}

/**
 * Whether executing `command` with `args` first needs an instruction from the user: the server's code actions
 * "Refactor with instruction…" and "Apply instruction across workspace…" carry `qwen-ls.refactor` /
 * `qwen-ls.applyInstruction` without one (PROTOCOL.md).
 */
export function needsInstruction(command: string, args: unknown[]): boolean {
  if (command !== ServerCommands.refactor && command !== ServerCommands.applyInstruction) {
    return false;
  }
  const first: unknown = args[0];
  if (typeof first !== "object" || first === null) {
    return true;
  }
  const instruction = (first as { instruction?: unknown }).instruction;
  return typeof instruction !== "string" || instruction.trim() === "";
}

/** `args` with the instruction filled into the first argument (a copy; the server's object is left alone). */
export function withInstruction(args: unknown[], instruction: string): unknown[] {
  const first: unknown = args[0];
  const base = typeof first === "object" && first !== null ? (first as Record<string, unknown>) : {};
  return [{ ...base, instruction: instruction.trim() }, ...args.slice(1)];
}

/** Result of `qwen-ls.refactor` / `qwen-ls.applyInstruction`. */
export interface ApplyResult {
  applied: boolean;
  message?: string;
}

export function parseApplyResult(value: unknown): ApplyResult {
  if (typeof value !== "object" || value === null) {
    return { applied: false, message: "The server returned no result." };
  }
  const { applied, message } = value as { applied?: unknown; message?: unknown };
  return {
    applied: applied === true,
    ...(typeof message === "string" && message !== "" ? { message } : {}),
  };
}

/** Result of `qwen-ls.explain`: the markdown, or `undefined` when there is nothing to explain there. */
export function parseExplainResult(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null) {
    return undefined;
  }
  const markdown = (value as { markdown?: unknown }).markdown;
  return typeof markdown === "string" && markdown.trim() !== "" ? markdown : undefined;
}

/** A one-line summary for a notification after a refactor. */
export function describeApplyResult(result: ApplyResult, what: string): { ok: boolean; text: string } {
  if (result.applied) {
    return { ok: true, text: result.message ?? `qwen-ls: ${what} applied.` };
  }
  return { ok: false, text: `qwen-ls: ${what} not applied${result.message !== undefined ? `: ${result.message}` : "."}` };
}

/**
 * The `executeCommand` middleware's logic: server commands that need an instruction and lack one (the code
 * actions' `qwen-ls.refactor` / `qwen-ls.applyInstruction`) get one from `ask` before `next` sends them;
 * cancelling the prompt sends nothing. The result of an instruction command is reported with `report`.
 */
export async function executeWithInstruction(
  command: string,
  args: unknown[],
  ask: (title: string) => Promise<string | undefined>,
  next: (command: string, args: unknown[]) => Promise<unknown>,
  report: (result: unknown, what: string) => void,
): Promise<unknown> {
  if (!needsInstruction(command, args)) {
    return next(command, args);
  }
  const refactor = command === ServerCommands.refactor;
  const instruction = await ask(refactor ? "Refactor with instruction" : "Apply instruction across workspace");
  if (instruction === undefined || instruction.trim() === "") {
    return undefined;
  }
  const result = await next(command, withInstruction(args, instruction));
  report(result, refactor ? "refactor" : "workspace edit");
  return result;
}
