//! The tokenizer stored in GGUF metadata (`tokenizer.ggml.*`) rebuilt as a `tokenizers` byte-level BPE, so a
//! GGUF file needs no `tokenizer.json`.
//!
//! Supported: `tokenizer.ggml.model = gpt2` with `tokenizer.ggml.pre = qwen2` (every Qwen2/2.5/3 GGUF). The
//! pipeline mirrors Qwen's `tokenizer.json`: NFC normaliser, the Qwen2 split regex (isolated) followed by
//! byte-level mapping, BPE over the byte-level alphabet with the file's merges (`"a b"`), byte-level decoder.
//! Token types pick each id's role: normal (1) → BPE vocabulary, control (3) → special added token,
//! user-defined (4) → non-special added token, unused (5, the padding rows `[PAD151665]`…) → left out. Every
//! token keeps its GGUF id, so ids equal the original tokenizer's (tested on the code corpus).

use std::collections::HashMap;

use candle_core::quantized::gguf_file::Value;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior};

use super::{GgufError, GgufFile};
use crate::tokenizer::Tokenizer;

/// Qwen2's pre-tokenizer regex (`tokenizer.ggml.pre = qwen2`), as in Qwen's `tokenizer.json`.
pub const QWEN2_SPLIT_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

const TOKEN_NORMAL: i64 = 1;
const TOKEN_CONTROL: i64 = 3;
const TOKEN_USER_DEFINED: i64 = 4;
const TOKEN_UNUSED: i64 = 5;

/// Builds the tokenizer from `file`'s metadata.
pub fn tokenizer(file: &GgufFile) -> Result<Tokenizer, GgufError> {
    let inner = build(file)?;
    Tokenizer::from_tokenizers(
        inner,
        &format!("GGUF metadata of {}", file.path().display()),
    )
    .map_err(|e| file.metadata_error("tokenizer.ggml.tokens", e.to_string()))
}

fn build(file: &GgufFile) -> Result<tokenizers::Tokenizer, GgufError> {
    let model_key = "tokenizer.ggml.model";
    match file.opt_str(model_key)? {
        Some("gpt2") => {}
        Some(other) => {
            return Err(file.metadata_error(
                model_key,
                format!(
                    "tokenizer model {other:?} is not supported (expected gpt2, byte-level BPE)"
                ),
            ))
        }
        None => {
            return Err(file.metadata_error(
                model_key,
                "missing: the file has no tokenizer; pass a model directory with tokenizer.json",
            ))
        }
    }
    let pre_key = "tokenizer.ggml.pre";
    match file.opt_str(pre_key)? {
        Some("qwen2") => {}
        other => {
            return Err(file.metadata_error(
                pre_key,
                format!("pre-tokenizer {other:?} is not supported (expected \"qwen2\")"),
            ))
        }
    }
    let tokens_key = "tokenizer.ggml.tokens";
    let tokens = file
        .opt_array(tokens_key)?
        .ok_or_else(|| file.metadata_error(tokens_key, "missing"))?;
    let types_key = "tokenizer.ggml.token_type";
    let types = file.opt_array(types_key)?;
    if let Some(types) = types {
        if types.len() != tokens.len() {
            return Err(file.metadata_error(
                types_key,
                format!("{} entries for {} tokens", types.len(), tokens.len()),
            ));
        }
    }
    let merges_key = "tokenizer.ggml.merges";
    let merges = file
        .opt_array(merges_key)?
        .ok_or_else(|| file.metadata_error(merges_key, "missing"))?;

    let mut vocab: HashMap<String, u32> = HashMap::with_capacity(tokens.len());
    let mut added: Vec<(u32, AddedToken)> = Vec::new();
    for (id, token) in tokens.iter().enumerate() {
        let Value::String(text) = token else {
            return Err(file.metadata_error(tokens_key, format!("entry {id} is not a string")));
        };
        let kind = match types.map(|t| &t[id]) {
            None => TOKEN_NORMAL,
            Some(v) => integer(v).ok_or_else(|| {
                file.metadata_error(types_key, format!("entry {id} is not an integer"))
            })?,
        };
        let id = u32::try_from(id)
            .map_err(|_| file.metadata_error(tokens_key, "more tokens than 32-bit ids"))?;
        match kind {
            TOKEN_UNUSED => continue,
            TOKEN_CONTROL | TOKEN_USER_DEFINED => {
                let token = AddedToken::from(text.clone(), kind == TOKEN_CONTROL)
                    .single_word(false)
                    .lstrip(false)
                    .rstrip(false)
                    .normalized(false);
                added.push((id, token));
            }
            _ => {}
        }
        // Added tokens also enter the BPE vocabulary under their own id, so `tokenizers` keeps that id for them
        // instead of numbering them after the vocabulary (no merge produces them, so BPE never emits them).
        if let Some(first) = vocab.insert(text.clone(), id) {
            return Err(file.metadata_error(
                tokens_key,
                format!("token {text:?} appears twice (ids {first} and {id})"),
            ));
        }
    }
    let mut pairs = Vec::with_capacity(merges.len());
    for (i, merge) in merges.iter().enumerate() {
        let pair = match merge {
            Value::String(s) => s.split_once(' '),
            _ => None,
        };
        let Some((a, b)) = pair else {
            return Err(
                file.metadata_error(merges_key, format!("entry {i} is not a string \"a b\""))
            );
        };
        pairs.push((a.to_string(), b.to_string()));
    }

    let vocab: Vocab = vocab.into_iter().collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, pairs)
        .continuing_subword_prefix(String::new())
        .end_of_word_suffix(String::new())
        .build()
        .map_err(|e| {
            file.metadata_error(merges_key, format!("invalid BPE vocabulary/merges: {e}"))
        })?;
    let split = Split::new(
        SplitPattern::Regex(QWEN2_SPLIT_REGEX.to_string()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(|e| file.metadata_error(pre_key, e.to_string()))?;
    let byte_level = ByteLevel::new(false, false, false);
    let mut tk = tokenizers::Tokenizer::new(bpe);
    tk.with_normalizer(Some(NFC))
        .map_err(|e| file.metadata_error(pre_key, e.to_string()))?;
    tk.with_pre_tokenizer(Some(Sequence::new(vec![
        PreTokenizerWrapper::Split(split),
        PreTokenizerWrapper::ByteLevel(byte_level),
    ])));
    tk.with_post_processor(Some(byte_level));
    tk.with_decoder(Some(byte_level));
    added.sort_by_key(|(id, _)| *id);
    let (special, plain): (Vec<_>, Vec<_>) = added.into_iter().partition(|(_, t)| t.special);
    tk.add_special_tokens(special.iter().map(|(_, t)| t.clone()))
        .map_err(|e| file.metadata_error(types_key, e.to_string()))?;
    tk.add_tokens(plain.iter().map(|(_, t)| t.clone()))
        .map_err(|e| file.metadata_error(types_key, e.to_string()))?;
    for (id, token) in special.iter().chain(&plain) {
        if tk.token_to_id(&token.content) != Some(*id) {
            return Err(file.metadata_error(
                tokens_key,
                format!("added token {:?} did not keep its id {id}", token.content),
            ));
        }
    }
    Ok(tk)
}

fn integer(v: &Value) -> Option<i64> {
    match *v {
        Value::I32(x) => Some(x.into()),
        Value::U32(x) => Some(x.into()),
        Value::I8(x) => Some(x.into()),
        Value::U8(x) => Some(x.into()),
        Value::I16(x) => Some(x.into()),
        Value::U16(x) => Some(x.into()),
        Value::I64(x) => Some(x),
        Value::U64(x) => i64::try_from(x).ok(),
        _ => None,
    }
}

/// Whether `tokenizer` (a `tokenizer.json` found next to the file) gives every token of `file`'s vocabulary
/// the file's id; `Err` names the first disagreement.
pub fn agrees_with(file: &GgufFile, tokenizer: &Tokenizer) -> Result<(), String> {
    let Ok(Some(tokens)) = file.opt_array("tokenizer.ggml.tokens") else {
        return Ok(()); // nothing to compare with: the file has no vocabulary of its own
    };
    let types = file.opt_array("tokenizer.ggml.token_type").ok().flatten();
    for (id, token) in tokens.iter().enumerate() {
        if types.and_then(|t| t.get(id)).and_then(integer) == Some(TOKEN_UNUSED) {
            continue;
        }
        let Value::String(text) = token else {
            return Err(format!("GGUF token {id} is not a string"));
        };
        let found = tokenizer.token_to_id(text);
        if found != Some(id as u32) {
            return Err(format!(
                "token {text:?} is id {id} in the GGUF file but {found:?} in tokenizer.json"
            ));
        }
    }
    Ok(())
}
