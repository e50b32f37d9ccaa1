//! The tokenizer against independent reference encodings, special tokens by name, and streaming decode.

use std::collections::BTreeMap;

use crate::common::*;
use qwen_engine::{SpecialToken, Tokenizer};

#[test]
fn builtin_tokenizer_matches_reference_encodings_on_the_corpus() {
    let tok = Tokenizer::builtin().unwrap();
    let dir = fixtures().join("tokenizer");
    let text = std::fs::read_to_string(dir.join("corpus_ids.json")).unwrap();
    let expected: BTreeMap<String, Vec<u32>> = serde_json::from_str(&text).unwrap();
    assert!(expected.len() >= 4, "corpus has {} files", expected.len());
    // The reference (tiktoken, `allowed_special="all"`) turns literal special-token text into special ids, as
    // transformers does: that is `encode_with_specials`. `encode` agrees wherever no such literal occurs.
    let mut plain_checked = 0;
    for (file, ids) in &expected {
        let text = std::fs::read_to_string(dir.join("corpus").join(file)).unwrap();
        let got = tok.encode_with_specials(&text).unwrap();
        if got != *ids {
            let first = got.iter().zip(ids).position(|(a, b)| a != b);
            panic!(
                "{file}: ids differ (lengths {} vs {}, first difference at {first:?})",
                got.len(),
                ids.len()
            );
        }
        let has_literal_specials = ids.iter().any(|&id| id >= 151_643);
        if !has_literal_specials {
            assert_eq!(tok.encode(&text).unwrap(), *ids, "{file}");
            assert_eq!(tok.count(&text).unwrap(), ids.len(), "{file}");
            assert_eq!(tok.decode(ids), text, "{file}: decode round trip");
            plain_checked += 1;
        }
    }
    assert!(plain_checked >= 4);
}

#[test]
fn builtin_special_tokens_are_found_by_name() {
    let tok = Tokenizer::builtin().unwrap();
    assert_eq!(tok.vocab_size(), 151_669);
    let s = tok.specials();
    let ids: Vec<Option<u32>> = SpecialToken::ALL.iter().map(|&t| s.get(t)).collect();
    // Official Qwen2.5 / Qwen3 ids, as documented in the model cards.
    let official = [
        151643, 151644, 151645, 151659, 151661, 151660, 151662, 151663, 151664,
    ];
    assert_eq!(ids, official.map(Some));
}

#[test]
fn literal_special_text_in_user_code_stays_text() {
    let tok = Tokenizer::builtin().unwrap();
    let code = "let end = \"<|im_end|>\"; // <|fim_prefix|><|file_sep|><|endoftext|>\n";
    let ids = tok.encode(code).unwrap();
    let specials = tok.specials();
    for t in SpecialToken::ALL {
        let id = specials.get(t).unwrap();
        assert!(!ids.contains(&id), "{} became a special id", t.text());
    }
    assert!(ids.iter().all(|&id| id < 151_643));
    assert_eq!(tok.decode(&ids), code);
    assert_eq!(tok.count(code).unwrap(), ids.len());
    // The explicit opt-in does produce the special ids.
    let with = tok.encode_with_specials(code).unwrap();
    assert!(with.contains(&specials.get(SpecialToken::ImEnd).unwrap()));
}

#[test]
fn streaming_decode_never_splits_a_character() {
    let tok = Tokenizer::builtin().unwrap();
    let text = "fn 世界() { \"🎉 👨‍👩‍👧 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ꙮ é\" }";
    let ids = tok.encode(text).unwrap();
    let split = ids
        .iter()
        .filter(|&&id| std::str::from_utf8(tok.token_bytes(id)).is_err())
        .count();
    assert!(
        split > 0,
        "the test text should contain a token that is not valid UTF-8 alone"
    );
    let mut stream = tok.stream();
    let mut out = String::new();
    for &id in &ids {
        let delta = stream.push(id);
        assert!(
            !delta.contains('\u{FFFD}'),
            "half a character emitted: {delta:?}"
        );
        out.push_str(&delta);
    }
    out.push_str(&stream.finish());
    assert_eq!(out, text);
}

#[test]
fn fixture_model_tokenizers_have_the_specials() {
    for name in MODELS {
        let path = model_dir(name).join("tokenizer.json");
        let tok = Tokenizer::from_file(&path).unwrap();
        for t in SpecialToken::ALL {
            let id = tok.specials().get(t);
            assert!(
                id.is_some_and(|id| id >= 4096),
                "{name}: {} -> {id:?}",
                t.text()
            );
        }
        let ids = tok.encode("x = \"<|im_start|>\"").unwrap();
        assert!(ids.iter().all(|&id| id < 4096), "{name}: {ids:?}");
    }
}

#[test]
fn missing_tokenizer_file_is_named() {
    let e = Tokenizer::from_file(std::path::Path::new("/nonexistent/tokenizer.json")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/tokenizer.json"), "{e}");
}
