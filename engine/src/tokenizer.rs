//! The Qwen tokenizer: `tokenizer.json` through the `tokenizers` crate, special tokens looked up by name, an
//! encoder for user text that can never produce special ids, and UTF-8-safe streaming detokenization.
//!
//! Two `tokenizers` instances are kept. `inner` is the tokenizer as shipped (it recognises added tokens in text)
//! and is used for decoding and for the explicit `encode_with_specials`. `plain` is a copy in which every added
//! token is marked special and `encode_special_tokens` is on, so literal `<|im_end|>` or `<|fim_prefix|>` text
//! inside user code is tokenized as ordinary text — prompts put specials in only as `Prompt` pieces.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use tokenizers::decoders::DecoderWrapper;
use tokenizers::AddedToken;

/// The embedded `tokenizer.json` that [`Tokenizer::builtin`] parses, for code that reads the vocabulary itself
/// (the server's exact token counter) without a second copy in the binary.
pub fn builtin_json() -> &'static [u8] {
    qwen_vocab::tokenizer_json()
}

/// Why a tokenizer could not be loaded or used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenizerError {
    /// `tokenizer.json` could not be read or parsed.
    #[error("cannot load tokenizer {source_name}: {reason}")]
    Load {
        /// The file (or "built-in").
        source_name: String,
        /// What went wrong.
        reason: String,
    },
    /// Encoding failed.
    #[error("cannot encode text: {0}")]
    Encode(String),
    /// A prompt needs a special token this tokenizer lacks.
    #[error("the tokenizer has no `{0}` token")]
    MissingSpecial(&'static str),
}

pub use qwen_format::SpecialToken;

/// Ids of the special tokens, resolved by name from the tokenizer (`None` when a tokenizer lacks one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    ids: [Option<u32>; 9],
}

impl SpecialTokens {
    /// The id of `token`, if the tokenizer has it.
    pub fn get(&self, token: SpecialToken) -> Option<u32> {
        self.ids[token as usize]
    }

    /// The id of `token`, or an error naming it.
    pub fn require(&self, token: SpecialToken) -> Result<u32, TokenizerError> {
        self.get(token)
            .ok_or(TokenizerError::MissingSpecial(token.text()))
    }

    /// The ids of those of `tokens` that exist.
    pub fn ids_of(&self, tokens: &[SpecialToken]) -> Vec<u32> {
        tokens.iter().filter_map(|&t| self.get(t)).collect()
    }
}

/// A loaded tokenizer. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    plain: tokenizers::Tokenizer,
    specials: SpecialTokens,
    /// Bytes of every id (byte-level decoded), `None` for ids skipped when decoding (special tokens).
    bytes: Vec<Option<Box<[u8]>>>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab", &self.bytes.len())
            .field("specials", &self.specials)
            .finish()
    }
}

impl Tokenizer {
    /// Loads a `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Self, TokenizerError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| TokenizerError::Load {
            source_name: name.clone(),
            reason: e.to_string(),
        })?;
        Self::from_bytes(&bytes, &name)
    }

    /// Parses the contents of a `tokenizer.json`; `source_name` is used in errors.
    pub fn from_bytes(json: &[u8], source_name: &str) -> Result<Self, TokenizerError> {
        let load_err = |reason: String| TokenizerError::Load {
            source_name: source_name.to_string(),
            reason,
        };
        let inner = tokenizers::Tokenizer::from_bytes(json).map_err(|e| load_err(e.to_string()))?;
        Self::from_tokenizers(inner, source_name)
    }

    /// Wraps an already built `tokenizers` tokenizer (e.g. one built from GGUF metadata); `source_name` is
    /// used in errors.
    pub fn from_tokenizers(
        inner: tokenizers::Tokenizer,
        source_name: &str,
    ) -> Result<Self, TokenizerError> {
        let load_err = |reason: String| TokenizerError::Load {
            source_name: source_name.to_string(),
            reason,
        };
        let added = inner.get_added_tokens_decoder();
        let mut plain = inner.clone();
        let mut all_special: Vec<(u32, AddedToken)> = added
            .iter()
            .map(|(&id, t)| {
                let mut t = t.clone();
                t.special = true;
                (id, t)
            })
            .collect();
        all_special.sort_by_key(|(id, _)| *id);
        plain
            .add_special_tokens(all_special.into_iter().map(|(_, t)| t))
            .map_err(|e| load_err(e.to_string()))?;
        plain.set_encode_special_tokens(true);

        let mut specials = SpecialTokens::default();
        for token in SpecialToken::ALL {
            specials.ids[token as usize] = inner.token_to_id(token.text());
        }
        let byte_level = matches!(inner.get_decoder(), Some(DecoderWrapper::ByteLevel(_)));
        let vocab = inner.get_vocab_size(true);
        let max_id = added.keys().copied().max().map_or(0, |m| m as usize + 1);
        let char_bytes = unicode_to_bytes();
        let mut bytes = Vec::with_capacity(vocab.max(max_id));
        for id in 0..vocab.max(max_id) as u32 {
            let entry = match (added.get(&id), inner.id_to_token(id)) {
                (Some(t), _) if t.special => None,
                (Some(t), _) => Some(t.content.as_bytes().into()),
                (None, Some(tok)) if byte_level => {
                    let decoded: Option<Vec<u8>> = tok
                        .chars()
                        .map(|c| char_bytes.get(c as usize).copied().flatten())
                        .collect();
                    Some(decoded.unwrap_or_else(|| tok.into_bytes()).into())
                }
                (None, Some(_)) => Some(
                    inner
                        .decode(&[id], false)
                        .unwrap_or_default()
                        .into_bytes()
                        .into(),
                ),
                (None, None) => None,
            };
            bytes.push(entry);
        }
        Ok(Tokenizer {
            inner,
            plain,
            specials,
            bytes,
        })
    }

    /// The full Qwen tokenizer embedded in the binary (shared, parsed once).
    pub fn builtin() -> Result<Arc<Tokenizer>, TokenizerError> {
        static BUILTIN: OnceLock<Result<Arc<Tokenizer>, TokenizerError>> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                Tokenizer::from_bytes(builtin_json(), "built-in Qwen tokenizer").map(Arc::new)
            })
            .clone()
    }

    /// Special-token ids, resolved by name.
    pub fn specials(&self) -> &SpecialTokens {
        &self.specials
    }

    /// Number of ids (base vocabulary plus added tokens).
    pub fn vocab_size(&self) -> usize {
        self.bytes.len()
    }

    /// The id of an exact token string (including added tokens).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Encodes user text. Literal special-token text (`<|im_end|>` inside code) stays plain text.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let enc = self
            .plain
            .encode_fast(text, false)
            .map_err(|e| TokenizerError::Encode(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Encodes trusted text in which added-token text *is* turned into those tokens (as `transformers` does).
    pub fn encode_with_specials(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let enc = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| TokenizerError::Encode(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Number of tokens `encode(text)` produces.
    pub fn count(&self, text: &str) -> Result<usize, TokenizerError> {
        let enc = self
            .plain
            .encode_fast(text, false)
            .map_err(|e| TokenizerError::Encode(e.to_string()))?;
        Ok(enc.len())
    }

    /// The raw bytes of `id` (empty for special tokens, which decoding skips, and unknown ids).
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.bytes
            .get(id as usize)
            .and_then(|b| b.as_deref())
            .unwrap_or_default()
    }

    /// Decodes ids to text, skipping special tokens; invalid UTF-8 becomes U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids
            .iter()
            .flat_map(|&id| self.token_bytes(id).iter().copied())
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// A streaming decoder over this tokenizer.
    pub fn stream(&self) -> StreamDecoder<'_> {
        StreamDecoder {
            tokenizer: self,
            pending: Vec::new(),
        }
    }
}

/// Incremental detokenizer: emits text only once its UTF-8 is complete, so a character split across tokens is
/// never emitted half.
#[derive(Debug)]
pub struct StreamDecoder<'t> {
    tokenizer: &'t Tokenizer,
    pending: Vec<u8>,
}

impl StreamDecoder<'_> {
    /// Adds one token and returns the text that became complete (possibly empty).
    pub fn push(&mut self, id: u32) -> String {
        self.pending
            .extend_from_slice(self.tokenizer.token_bytes(id));
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // Safe: `valid_up_to` bytes are valid UTF-8 by definition.
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // An incomplete character at the end: wait for the next token.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        // Bytes that can never become valid: replace them and go on.
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Flushes bytes still pending at the end of a stream (an unfinished character becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

/// GPT-2 byte-level alphabet, inverted: `table[char as usize]` is the byte a vocabulary char stands for.
fn unicode_to_bytes() -> Vec<Option<u8>> {
    let mut table = vec![None; 512];
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut next = 256usize;
    for b in 0..=255u8 {
        if printable(b) {
            table[b as usize] = Some(b);
        } else {
            table[next] = Some(b);
            next += 1;
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_alphabet_is_a_bijection() {
        let table = unicode_to_bytes();
        let mut seen: Vec<u8> = table.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..=255).collect::<Vec<u8>>());
        assert_eq!(table['Ġ' as usize], Some(b' '));
        assert_eq!(table['Ċ' as usize], Some(b'\n'));
    }
}
