/** Command arguments and results of PROTOCOL.md. */
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  applyInstructionArgs,
  executeWithInstruction,
  describeApplyResult,
  describeIndexCheck,
  explainArgs,
  needsInstruction,
  parseApplyResult,
  parseExplainResult,
  refactorArgs,
  validateInstruction,
  withInstruction,
} from "../../src/commandArgs";

const range = { start: { line: 3, character: 0 }, end: { line: 9, character: 1 } };

test("refactor arguments: one object with uri, range and the trimmed instruction", () => {
  assert.deepEqual(refactorArgs("file:///a.rs", range, "  use early returns \n"), [
    { uri: "file:///a.rs", range, instruction: "use early returns" },
  ]);
});

test("applyInstruction arguments: uris only when there are some", () => {
  assert.deepEqual(applyInstructionArgs("rename foo to bar"), [{ instruction: "rename foo to bar" }]);
  assert.deepEqual(applyInstructionArgs("x", []), [{ instruction: "x" }]);
  assert.deepEqual(applyInstructionArgs("x", ["file:///a.rs"]), [{ instruction: "x", uris: ["file:///a.rs"] }]);
});

test("explain arguments", () => {
  assert.deepEqual(explainArgs("file:///a.py", { line: 1, character: 4 }), [{ uri: "file:///a.py", position: { line: 1, character: 4 } }]);
});

test("code-action commands without an instruction ask for one; others pass through", () => {
  assert.equal(needsInstruction("qwen-ls.refactor", [{ uri: "file:///a", range }]), true);
  assert.equal(needsInstruction("qwen-ls.refactor", []), true);
  assert.equal(needsInstruction("qwen-ls.refactor", [{ uri: "u", range, instruction: "  " }]), true);
  assert.equal(needsInstruction("qwen-ls.refactor", [{ uri: "u", range, instruction: "go" }]), false);
  assert.equal(needsInstruction("qwen-ls.applyInstruction", [{}]), true);
  assert.equal(needsInstruction("qwen-ls.completionAccepted", [{ id: "1" }]), false);
  assert.equal(needsInstruction("qwen-ls.status", []), false);
});

test("withInstruction copies the server's argument and adds the instruction", () => {
  const original = { uri: "file:///a", range };
  const args = withInstruction([original, "extra"], " do it ");
  assert.deepEqual(args, [{ uri: "file:///a", range, instruction: "do it" }, "extra"]);
  assert.deepEqual(original, { uri: "file:///a", range }, "the server's object is not mutated");
  assert.deepEqual(withInstruction([], "x"), [{ instruction: "x" }]);
});

test("instruction validation", () => {
  assert.equal(validateInstruction("add docs"), undefined);
  assert.notEqual(validateInstruction("   "), undefined);
});

test("apply results are parsed defensively", () => {
  assert.deepEqual(parseApplyResult({ applied: true }), { applied: true });
  assert.deepEqual(parseApplyResult({ applied: false, message: "document changed" }), { applied: false, message: "document changed" });
  assert.deepEqual(parseApplyResult({ applied: "yes" }), { applied: false });
  assert.equal(parseApplyResult(null).applied, false);
  assert.deepEqual(describeApplyResult({ applied: false, message: "document changed" }, "refactor"), {
    ok: false,
    text: "qwen-ls: refactor not applied: document changed",
  });
  assert.deepEqual(describeApplyResult({ applied: true }, "refactor"), { ok: true, text: "qwen-ls: refactor applied." });
});

test("explain results: markdown or nothing", () => {
  assert.equal(parseExplainResult({ markdown: "**adds** numbers" }), "**adds** numbers");
  assert.equal(parseExplainResult({ markdown: "  " }), undefined);
  assert.equal(parseExplainResult(null), undefined);
  assert.equal(parseExplainResult({ text: "x" }), undefined);
});

test("middleware: commands with an instruction, or that need none, go straight through", async () => {
  const sent: unknown[][] = [];
  const next = (c: string, a: unknown[]) => {
    sent.push([c, a]);
    return Promise.resolve({ applied: true });
  };
  const ask = () => Promise.reject(new Error("must not ask"));
  const report = () => assert.fail("must not report");
  assert.deepEqual(await executeWithInstruction("qwen-ls.completionAccepted", [{ id: "1" }], ask, next, report), { applied: true });
  await executeWithInstruction("qwen-ls.refactor", [{ uri: "u", range, instruction: "x" }], ask, next, report);
  assert.deepEqual(sent, [
    ["qwen-ls.completionAccepted", [{ id: "1" }]],
    ["qwen-ls.refactor", [{ uri: "u", range, instruction: "x" }]],
  ]);
});

test("middleware: a code action without an instruction asks, sends it, reports the result", async () => {
  const sent: unknown[][] = [];
  const reports: unknown[][] = [];
  const titles: string[] = [];
  const result = await executeWithInstruction(
    "qwen-ls.refactor",
    [{ uri: "u", range }],
    (title) => {
      titles.push(title);
      return Promise.resolve(" add docs ");
    },
    (c, a) => {
      sent.push([c, a]);
      return Promise.resolve({ applied: true });
    },
    (r, what) => reports.push([r, what]),
  );
  assert.deepEqual(result, { applied: true });
  assert.deepEqual(titles, ["Refactor with instruction"]);
  assert.deepEqual(sent, [["qwen-ls.refactor", [{ uri: "u", range, instruction: "add docs" }]]]);
  assert.deepEqual(reports, [[{ applied: true }, "refactor"]]);
});

test("middleware: cancelling the prompt sends nothing", async () => {
  let sent = 0;
  const result = await executeWithInstruction(
    "qwen-ls.applyInstruction",
    [{}],
    () => Promise.resolve(undefined),
    () => {
      sent++;
      return Promise.resolve(null);
    },
    () => assert.fail("must not report"),
  );
  assert.equal(result, undefined);
  assert.equal(sent, 0);
});

test("describeIndexCheck: equal, different, and no answer", () => {
  assert.deepEqual(describeIndexCheck({ equal: true, files: 12, freshFiles: 12, difference: null }), {
    ok: true,
    text: "qwen-ls: the index equals a fresh re-index (12 files)",
  });
  const differs = describeIndexCheck({ equal: false, files: 12, freshFiles: 13, difference: "line 4: …" });
  assert.equal(differs.ok, false);
  assert.match(differs.text, /differs .*12 files, 13 on disk.*line 4/);
  assert.equal(describeIndexCheck(null).ok, false);
});
