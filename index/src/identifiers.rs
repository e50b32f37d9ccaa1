//! Identifier bags for lexical retrieval: identifiers split at `snake_case` and `camelCase` boundaries,
//! lower-cased and hashed to 32-bit term ids (a collision only blurs one similarity score slightly).

use xxhash_rust::xxh3::xxh3_64;

/// A hashed, lower-cased identifier part.
pub type TermId = u32;

/// Sub-tokens shorter than this are too common to carry signal (`a`, `i`, `x`).
const MIN_TERM_BYTES: usize = 2;
/// Longer identifiers are generated noise (hashes, base64) and are skipped.
const MAX_IDENT_BYTES: usize = 64;

/// The term id of a lower-case word.
pub fn term_id(word: &str) -> TermId {
    // Truncation is the point: 32-bit ids halve the memory of window bags.
    xxh3_64(word.as_bytes()) as TermId
}

/// Calls `emit` with every term of every identifier in `text`: each part of a split identifier, and the whole
/// identifier when it has several parts (so `parse_config` matches both `parse_config` and `config`).
pub fn for_each_term(text: &str, mut emit: impl FnMut(TermId)) {
    let bytes = text.as_bytes();
    let mut lower = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !(b.is_ascii_alphabetic() || b == b'_') {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        let ident = &text[start..i];
        if ident.len() <= MAX_IDENT_BYTES {
            emit_identifier(ident, &mut lower, &mut emit);
        }
    }
}

/// Splits one identifier (ASCII alphanumerics and `_`) into lower-case parts.
pub fn split_identifier(ident: &str) -> Vec<String> {
    let mut parts = Vec::new();
    for_each_part(ident, |part| parts.push(part.to_ascii_lowercase()));
    parts
}

fn emit_identifier(ident: &str, lower: &mut String, emit: &mut impl FnMut(TermId)) {
    let mut count = 0;
    for_each_part(ident, |part| {
        count += 1;
        if part.len() >= MIN_TERM_BYTES {
            lower.clear();
            lower.extend(part.chars().map(|c| c.to_ascii_lowercase()));
            emit(term_id(lower));
        }
    });
    if count > 1 {
        lower.clear();
        lower.extend(ident.chars().map(|c| c.to_ascii_lowercase()));
        emit(term_id(lower));
    }
}

/// Part boundaries: `_`, lower→upper (`parseConfig`), the last capital of an acronym (`HTTPServer` →
/// `HTTP`, `Server`), and letter↔digit is *not* a boundary (`utf8`, `sha256` stay whole).
fn for_each_part(ident: &str, mut part: impl FnMut(&str)) {
    let bytes = ident.as_bytes();
    let mut start = 0;
    for i in 0..bytes.len() {
        let b = bytes[i];
        if b == b'_' {
            if i > start {
                part(&ident[start..i]);
            }
            start = i + 1;
            continue;
        }
        if i > start && b.is_ascii_uppercase() {
            let prev = bytes[i - 1];
            let next_is_lower = bytes.get(i + 1).is_some_and(u8::is_ascii_lowercase);
            let boundary = prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_is_lower);
            if boundary {
                part(&ident[start..i]);
                start = i;
            }
        }
    }
    if start < bytes.len() {
        part(&ident[start..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_split_at_case_and_underscores() {
        assert_eq!(split_identifier("parse_config"), ["parse", "config"]);
        assert_eq!(
            split_identifier("parseConfigFile"),
            ["parse", "config", "file"]
        );
        assert_eq!(split_identifier("HTTPServer"), ["http", "server"]);
        assert_eq!(split_identifier("__init__"), ["init"]);
        assert_eq!(split_identifier("utf8Decode"), ["utf8", "decode"]);
        assert_eq!(split_identifier("MAX_LEN"), ["max", "len"]);
    }

    #[test]
    fn terms_include_whole_compound_identifiers() {
        let mut terms = Vec::new();
        for_each_term("let parse_config = x;", |t| terms.push(t));
        assert!(terms.contains(&term_id("parse")));
        assert!(terms.contains(&term_id("config")));
        assert!(terms.contains(&term_id("parse_config")));
        assert!(terms.contains(&term_id("let")));
        assert!(
            !terms.contains(&term_id("x")),
            "single letters carry no signal"
        );
    }
}
