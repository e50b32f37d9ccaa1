//! The parts of a `tokenizer.json` that decide token counts — byte-level ids, BPE merges and added tokens — read
//! with serde_json and checked to describe exactly the pipeline this counter reimplements (NFC, Qwen2's split
//! regex, byte-level BPE without dropout, added tokens matched verbatim). Anything else is an error naming the
//! field, never a silently different count.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::bpe::{Bpe, Merges};
use super::CounterError;

/// What the counter needs from a `tokenizer.json`.
pub(super) struct Vocabulary {
    /// Byte-level BPE: initial symbols and merge ranks.
    pub bpe: Bpe,
    /// Contents of the added tokens, each of which counts as one token wherever it appears.
    pub added: Vec<String>,
}

#[derive(Deserialize)]
struct TokenizerJson {
    added_tokens: Vec<AddedTokenJson>,
    #[serde(default)]
    normalizer: Value,
    #[serde(default)]
    pre_tokenizer: Value,
    #[serde(default)]
    truncation: Value,
    #[serde(default)]
    padding: Value,
    model: ModelJson,
}

#[derive(Deserialize)]
struct AddedTokenJson {
    content: String,
    single_word: bool,
    lstrip: bool,
    rstrip: bool,
    normalized: bool,
}

#[derive(Deserialize)]
struct ModelJson {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    dropout: Option<f64>,
    #[serde(default)]
    continuing_subword_prefix: Option<String>,
    #[serde(default)]
    end_of_word_suffix: Option<String>,
    #[serde(default)]
    byte_fallback: bool,
    #[serde(default)]
    ignore_merges: bool,
    vocab: HashMap<String, u32>,
    /// `["a", "b"]` pairs, as current files write them (older `"a b"` strings fail to parse: refused).
    merges: Vec<[String; 2]>,
}

/// The pre-tokenizer of Qwen2, Qwen2.5 and Qwen3 (`tokenizer.json` as shipped).
fn qwen2_pre_tokenizer() -> Value {
    json!({
        "type": "Sequence",
        "pretokenizers": [
            {
                "type": "Split",
                "pattern": {"Regex": super::pretokenize::QWEN2_PATTERN},
                "behavior": "Isolated",
                "invert": false
            },
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}
        ]
    })
}

fn unsupported(field: &'static str, found: impl ToString, expected: &str) -> CounterError {
    CounterError::Unsupported {
        field,
        found: found.to_string(),
        expected: expected.to_string(),
    }
}

impl Vocabulary {
    /// Reads and checks a `tokenizer.json`.
    pub fn from_json(json: &[u8]) -> Result<Self, CounterError> {
        let file: TokenizerJson =
            serde_json::from_slice(json).map_err(|e| CounterError::Json(e.to_string()))?;
        if file.normalizer != json!({"type": "NFC"}) {
            return Err(unsupported("normalizer", &file.normalizer, "NFC"));
        }
        if file.pre_tokenizer != qwen2_pre_tokenizer() {
            return Err(unsupported(
                "pre_tokenizer",
                &file.pre_tokenizer,
                "Qwen2's Split regex + ByteLevel",
            ));
        }
        // Truncation and padding would change what `encode` returns.
        for (field, value) in [("truncation", &file.truncation), ("padding", &file.padding)] {
            if !value.is_null() {
                return Err(unsupported(field, value, "null"));
            }
        }
        let model = &file.model;
        let plain_bpe = model.kind == "BPE"
            && model.dropout.is_none()
            && !model.byte_fallback
            && !model.ignore_merges
            && model
                .continuing_subword_prefix
                .as_deref()
                .unwrap_or("")
                .is_empty()
            && model.end_of_word_suffix.as_deref().unwrap_or("").is_empty();
        if !plain_bpe {
            return Err(unsupported(
                "model",
                format!(
                    "{} (dropout {:?}, byte_fallback {}, ignore_merges {}, prefix {:?}, suffix {:?})",
                    model.kind,
                    model.dropout,
                    model.byte_fallback,
                    model.ignore_merges,
                    model.continuing_subword_prefix,
                    model.end_of_word_suffix
                ),
                "BPE without dropout, byte fallback, ignore_merges or affixes",
            ));
        }
        let mut added = Vec::with_capacity(file.added_tokens.len());
        for token in file.added_tokens {
            if token.single_word
                || token.lstrip
                || token.rstrip
                || token.normalized
                || token.content.is_empty()
            {
                return Err(unsupported(
                    "added_tokens",
                    &token.content,
                    "non-empty tokens matched verbatim (single_word, lstrip, rstrip, normalized all false)",
                ));
            }
            added.push(token.content);
        }

        let alphabet = byte_alphabet();
        let mut byte_ids = [0u32; 256];
        for (byte, (slot, ch)) in byte_ids.iter_mut().zip(alphabet).enumerate() {
            *slot = *model
                .vocab
                .get(ch.encode_utf8(&mut [0; 4]) as &str)
                .ok_or(CounterError::MissingByte(byte as u8))?;
        }
        let mut merges = Merges::with_capacity(model.merges.len());
        let mut joined = String::new();
        for (rank, [left, right]) in model.merges.iter().enumerate() {
            joined.clear();
            joined.push_str(left);
            joined.push_str(right);
            let ids = (
                model.vocab.get(left),
                model.vocab.get(right),
                model.vocab.get(joined.as_str()),
                u32::try_from(rank),
            );
            let (Some(&l), Some(&r), Some(&id), Ok(rank)) = ids else {
                return Err(CounterError::BadMerge {
                    rank,
                    left: left.to_string(),
                    right: right.to_string(),
                });
            };
            // A repeated pair keeps its last rank, as in `tokenizers` (its merge map is collected in order).
            merges.insert(l, r, rank, id);
        }
        Ok(Vocabulary {
            bpe: Bpe::new(byte_ids, merges),
            added,
        })
    }
}

/// GPT-2's byte-level alphabet: the vocabulary character that stands for each byte.
pub(super) fn byte_alphabet() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for (byte, slot) in table.iter_mut().enumerate() {
        let printable = matches!(byte, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
        let code = if printable {
            byte as u32
        } else {
            next += 1;
            next - 1
        };
        *slot = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_alphabet_matches_gpt2() {
        let table = byte_alphabet();
        assert_eq!(table[usize::from(b' ')], 'Ġ');
        assert_eq!(table[usize::from(b'\n')], 'Ċ');
        assert_eq!(table[usize::from(b'a')], 'a');
        let mut chars: Vec<char> = table.to_vec();
        chars.sort_unstable();
        chars.dedup();
        assert_eq!(chars.len(), 256);
    }

    #[test]
    fn other_pipelines_are_refused() {
        let builtin: Value = serde_json::from_slice(qwen_vocab::tokenizer_json()).expect("json");
        for (pointer, value) in [
            ("/normalizer", json!(null)),
            (
                "/pre_tokenizer/pretokenizers/0/pattern/Regex",
                json!("\\s+"),
            ),
            ("/model/ignore_merges", json!(true)),
            ("/model/dropout", json!(0.1)),
            ("/truncation", json!({"max_length": 8})),
            ("/added_tokens/0/lstrip", json!(true)),
        ] {
            let mut file = builtin.clone();
            *file.pointer_mut(pointer).expect(pointer) = value;
            let bytes = serde_json::to_vec(&file).expect("serialize");
            assert!(
                matches!(
                    Vocabulary::from_json(&bytes),
                    Err(CounterError::Unsupported { .. })
                ),
                "{pointer} accepted"
            );
        }
        assert!(matches!(
            Vocabulary::from_json(b"{"),
            Err(CounterError::Json(_))
        ));
    }
}
