/** The client registers for exactly the languages the server announces (PROTOCOL.md, `languageIds`). */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";

import { announcedLanguages, LANGUAGES, selectorFor, ServedLanguages } from "../../src/languages";

const extensionDir = path.resolve(__dirname, "..", "..", "..");
const manifest = JSON.parse(fs.readFileSync(path.join(extensionDir, "package.json"), "utf8")) as { activationEvents: string[] };

test("package.json activates on exactly the built-in language list", () => {
  assert.deepEqual(manifest.activationEvents, LANGUAGES.map((l) => `onLanguage:${l}`));
});

test("announcedLanguages reads the initialize result and rejects malformed lists", () => {
  assert.deepEqual(announcedLanguages({ experimental: { qwenLs: { languageIds: ["rust", "go"] } } }), ["rust", "go"]);
  assert.equal(announcedLanguages({}), undefined);
  assert.equal(announcedLanguages({ experimental: { qwenLs: { languageIds: ["rust", 3] } } }), undefined);
  assert.equal(announcedLanguages(undefined), undefined);
});

test("ServedLanguages narrows the shared selector in place to the announced languages", () => {
  const selector = selectorFor(LANGUAGES);
  const feature = new ServedLanguages();
  feature.preInitialize({ experimental: { qwenLs: { languageIds: ["rust"] } } } as never, selector);
  assert.deepEqual(selector, [
    { scheme: "file", language: "rust" },
    { scheme: "untitled", language: "rust" },
  ]);
  assert.deepEqual(feature.served, ["rust"]);
});

test("a server that announces nothing keeps the built-in list", () => {
  const selector = selectorFor(LANGUAGES);
  new ServedLanguages().preInitialize({} as never, selector);
  assert.deepEqual(selector, selectorFor(LANGUAGES));
});
