//! Trust boundaries (issue 15), tested as the attacks: a secret opened in the editor (secrets.rs), model-written
//! paths into `.git` and configuration, an edit that breaks the syntax (edits.rs), and `--apply` killed between
//! two renames (killed.rs). The hub's hostile names are in store_hub.rs (feature `hub`); the editors' workspace
//! settings in editors/vscode/test/unit/settings.test.ts and editors/nvim/tests/unit.

mod edits;
mod fake_openai;
mod killed;
mod secrets;
