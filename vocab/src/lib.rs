//! The Qwen2.5 / Qwen3 / Qwen3-Coder `tokenizer.json` (151,669 tokens), embedded once: the engine parses it
//! when no model is configured, the context layer's exact token counter reads its vocabulary. A crate of its
//! own so the token counter does not compile the engine, and the binary holds one copy.
#![deny(missing_docs)]

static TOKENIZER_JSON: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/tokenizer/tokenizer.json"
));

/// The embedded `tokenizer.json`.
pub fn tokenizer_json() -> &'static [u8] {
    TOKENIZER_JSON
}
