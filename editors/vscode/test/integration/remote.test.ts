/**
 * Integration test: a refactor command round trip that really edits the document. The REAL qwen-ls binary on
 * its openai backend (product code) against editors/testdata/fake_openai.py, a scripted OpenAI-compatible
 * model server whose chat answer is always one SEARCH/REPLACE edit of `total` in src/lib.rs: the
 * `workspace/applyEdit` the server sends must turn the document into exactly editors/testdata/expected/lib.rs.
 *
 * editors/test.sh starts the fake server and passes its endpoint in QWEN_LS_TEST_OPENAI_ENDPOINT. Without it
 * (or without the binary) the test is skipped loudly, unless QWEN_LS_REQUIRE_SERVER=1 (then it fails).
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { pathToFileURL } from "node:url";

import { parseApplyResult, refactorArgs, ServerCommands } from "../../src/commandArgs";
import { buildServerSettings, InspectedSetting } from "../../src/settings";
import { LspSession } from "./lspSession";

const extensionDir = path.resolve(__dirname, "..", "..", "..");
const repo = path.resolve(extensionDir, "..", "..");
const testdata = path.join(extensionDir, "..", "testdata");
const bin = path.resolve(extensionDir, process.env.QWEN_LS_BIN ?? path.join(repo, "target", "debug", "qwen-ls"));
const endpoint = process.env.QWEN_LS_TEST_OPENAI_ENDPOINT ?? "";
const READY_MS = Number(process.env.QWEN_LS_READY_TIMEOUT_MS ?? 180_000);
const GEN_MS = Number(process.env.QWEN_LS_GENERATE_TIMEOUT_MS ?? 60_000);

const why = !fs.existsSync(bin)
  ? `no qwen-ls binary at ${bin}`
  : endpoint === ""
    ? "QWEN_LS_TEST_OPENAI_ENDPOINT is not set (editors/test.sh starts editors/testdata/fake_openai.py)"
    : "";
const skip = why !== "" && process.env.QWEN_LS_REQUIRE_SERVER !== "1" ? why : false;
if (why !== "") {
  const bar = "!".repeat(100);
  console.error(`\n${bar}\n!! ${skip ? "SKIPPING" : "FAILING"} the VS Code remote-backend refactor test: ${why}\n${bar}\n`);
}

let session: LspSession | undefined;
let libUri = "";

before(async () => {
  if (skip) {
    return;
  }
  assert.equal(why, "", why);
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), "qwen-ls-vscode-remote-"));
  fs.cpSync(path.join(testdata, "workspace"), workspace, { recursive: true });
  fs.mkdirSync(path.join(workspace, ".git"));
  session = LspSession.start(bin, workspace);
  const userSettings: Record<string, InspectedSetting> = {
    backend: { globalValue: "openai" },
    "openai.endpoint": { globalValue: endpoint },
    logFile: { globalValue: path.join(workspace, "..", `${path.basename(workspace)}.log`) },
  };
  await session.initialize(pathToFileURL(workspace).href, buildServerSettings({ inspect: (k) => userSettings[k] }));
  libUri = pathToFileURL(path.join(workspace, "src", "lib.rs")).href;
  session.open(libUri, "rust", path.join(workspace, "src", "lib.rs"));
  await session.waitReady(READY_MS);
});

after(async () => {
  if (session !== undefined) {
    assert.equal(await session.shutdown(), 0, "clean exit after shutdown/exit");
  }
});

test("refactor command round trip on the openai backend: workspace/applyEdit gives the exact expected text", { skip }, async () => {
  assert.ok(session, "the session did not start");
  const s = session;
  const doc = s.documents.get(libUri)!;
  const start = doc.positionAt(doc.getText().indexOf("pub fn total"));
  const end = doc.positionAt(doc.getText().indexOf("    sum\n}") + "    sum\n}".length);
  const expected = fs.readFileSync(path.join(testdata, "expected", "lib.rs"), "utf8");
  assert.notEqual(doc.getText(), expected);
  const result = parseApplyResult(
    await Promise.race([
      s.executeCommand(ServerCommands.refactor, refactorArgs(libUri, { start, end }, "use an iterator sum instead of the loop")),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`no refactor answer in ${GEN_MS} ms\n${s.log()}`)), GEN_MS).unref()),
    ]),
  );
  assert.equal(result.applied, true, `not applied: ${result.message ?? ""}\n${s.log()}`);
  assert.equal(s.applyEdits.length, 1, "one workspace/applyEdit");
  assert.equal(s.documents.get(libUri)!.getText(), expected);
  assert.deepEqual(
    s.messages.filter((m) => m.type === 1),
    [],
    "no error popups",
  );
});
