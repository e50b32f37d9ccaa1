//! Qwen2's pre-tokenizer, hand-written: the split `tokenizers` makes with [`QWEN2_PATTERN`] (fancy-regex,
//! leftmost-first alternation, greedy repetition with backtracking), without a regex engine.
//!
//! Every position of a text starts a match of some alternative (letters, numbers, whitespace and "other"
//! each have one that takes a single character), so the split is a sequence of adjacent pieces; which
//! alternative wins at a position and how far it reaches is decided by the first two or three characters and
//! then a greedy run:
//!
//! 1. `(?i:'s|'t|'re|'ve|'m|'ll|'d)` — an apostrophe and a contraction (case-insensitive: `ſ` folds to `s`).
//! 2. `[^\r\n\p{L}\p{N}]?\p{L}+` — letters, with one leading character that is not CR, LF, letter or number.
//! 3. `\p{N}` — one number character.
//! 4. ` ?[^\s\p{L}\p{N}]+[\r\n]*` — "other" characters (optionally after one space) and the line breaks after.
//! 5. `\s*[\r\n]+` — whitespace up to and including its last CR or LF.
//! 6. `\s+(?!\S)` — whitespace not followed by a non-space: all of it at the end of the text, else all but
//!    its last character (which then starts the next piece, e.g. as the space of " word").
//! 7. `\s+` — a single whitespace character before a non-space.
//!
//! The character classes come from `regex-syntax`, the crate that compiles them for fancy-regex, so `\p{L}`,
//! `\p{N}` and `\s` are the same Unicode version as the reference's.

use regex_syntax::hir::{Class, HirKind};

use super::CounterError;

/// The `Split` pattern of Qwen2/Qwen2.5/Qwen3 `tokenizer.json` files.
pub(super) const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

const LETTER: u8 = 1;
const NUMBER: u8 = 2;
const SPACE: u8 = 4;

/// `\p{L}`, `\p{N}` and `\s` membership of every character: a table for the Basic Multilingual Plane and sorted
/// ranges above it.
pub(super) struct Classes {
    bmp: Box<[u8]>,
    astral: Vec<(u32, u32, u8)>,
}

impl Classes {
    /// The tables, from `regex-syntax`'s Unicode data.
    pub fn new() -> Result<Self, CounterError> {
        let mut bmp = vec![0u8; 0x1_0000].into_boxed_slice();
        let mut astral = Vec::new();
        for (pattern, flag) in [(r"\p{L}", LETTER), (r"\p{N}", NUMBER), (r"\s", SPACE)] {
            for (start, end) in class_ranges(pattern)? {
                for code in start..=end.min(0xFFFF) {
                    if let Some(slot) = bmp.get_mut(code as usize) {
                        *slot |= flag;
                    }
                }
                if end > 0xFFFF {
                    astral.push((start.max(0x1_0000), end, flag));
                }
            }
        }
        // The three classes are disjoint, so the astral ranges never overlap and one sort orders them.
        astral.sort_unstable();
        Ok(Classes { bmp, astral })
    }

    fn of(&self, c: char) -> u8 {
        let code = c as u32;
        if let Some(&flags) = self.bmp.get(code as usize) {
            return flags;
        }
        match self.astral.binary_search_by(|&(start, end, _)| {
            if end < code {
                std::cmp::Ordering::Less
            } else if start > code {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        }) {
            Ok(i) => self.astral.get(i).map_or(0, |r| r.2),
            Err(_) => 0,
        }
    }
}

/// The ranges of a character class as `regex-syntax` parses it (Unicode mode, as fancy-regex delegates it).
fn class_ranges(pattern: &str) -> Result<Vec<(u32, u32)>, CounterError> {
    let hir = regex_syntax::Parser::new()
        .parse(pattern)
        .map_err(|e| CounterError::Unicode(format!("{pattern}: {e}")))?;
    match hir.kind() {
        HirKind::Class(Class::Unicode(class)) => Ok(class
            .ranges()
            .iter()
            .map(|r| (r.start() as u32, r.end() as u32))
            .collect()),
        _ => Err(CounterError::Unicode(format!(
            "{pattern} is not a Unicode class"
        ))),
    }
}

/// The pieces of `text`, in order; they concatenate to `text`.
pub(super) fn pieces<'t>(text: &'t str, classes: &'t Classes) -> Pieces<'t> {
    Pieces {
        text,
        pos: 0,
        classes,
    }
}

/// Iterator over pre-tokens (see the module documentation for the rules).
pub(super) struct Pieces<'t> {
    text: &'t str,
    pos: usize,
    classes: &'t Classes,
}

impl<'t> Iterator for Pieces<'t> {
    type Item = &'t str;

    fn next(&mut self) -> Option<&'t str> {
        let start = self.pos;
        let end = self.piece_end(start)?;
        let piece = self.text.get(start..end)?;
        self.pos = end;
        Some(piece)
    }
}

/// The case-insensitive contraction letters: `(?i)s` also matches U+017F LATIN SMALL LETTER LONG S (simple case
/// folding); the other letters of the pattern have no non-ASCII folds.
fn fold(c: char) -> char {
    match c {
        'ſ' => 's',
        c => c.to_ascii_lowercase(),
    }
}

impl Pieces<'_> {
    fn char_at(&self, i: usize) -> Option<char> {
        let byte = *self.text.as_bytes().get(i)?;
        if byte < 0x80 {
            Some(char::from(byte))
        } else {
            self.text.get(i..)?.chars().next()
        }
    }

    fn class_at(&self, i: usize) -> Option<(u8, usize)> {
        self.char_at(i)
            .map(|c| (self.classes.of(c), i + c.len_utf8()))
    }

    /// The end of the run of characters from `i` whose class satisfies `keep`.
    fn run(&self, mut i: usize, keep: impl Fn(u8) -> bool) -> usize {
        while let Some((class, next)) = self.class_at(i) {
            if !keep(class) {
                break;
            }
            i = next;
        }
        i
    }

    /// The end of the CR/LF run from `i`.
    fn line_breaks(&self, i: usize) -> usize {
        let bytes = self.text.as_bytes();
        i + bytes.get(i..).map_or(0, |rest| {
            rest.iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count()
        })
    }

    fn piece_end(&self, i: usize) -> Option<usize> {
        let c0 = self.char_at(i)?;
        let i1 = i + c0.len_utf8();
        let c1 = self.char_at(i1);
        let letter = |class: u8| class & LETTER != 0;
        let other = |class: u8| class & (LETTER | NUMBER | SPACE) == 0;

        // 1. Contractions.
        if let (true, Some(c1)) = (c0 == '\'', c1) {
            let i2 = i1 + c1.len_utf8();
            match fold(c1) {
                's' | 't' | 'm' | 'd' => return Some(i2),
                second @ ('r' | 'v' | 'l') => {
                    let third = if second == 'l' { 'l' } else { 'e' };
                    if let Some(c2) = self.char_at(i2).filter(|&c| fold(c) == third) {
                        return Some(i2 + c2.len_utf8());
                    }
                }
                _ => {}
            }
        }
        let k0 = self.classes.of(c0);
        // 2. Letters, with an optional leading non-letter, non-number, non-line-break character.
        if letter(k0) {
            return Some(self.run(i1, letter));
        }
        if k0 & NUMBER == 0 && c0 != '\r' && c0 != '\n' {
            if let Some((_, i2)) = self.class_at(i1).filter(|&(k1, _)| letter(k1)) {
                return Some(self.run(i2, letter));
            }
        }
        // 3. One number.
        if k0 & NUMBER != 0 {
            return Some(i1);
        }
        // 4. "Other" characters, optionally after one space, then line breaks.
        if other(k0) {
            return Some(self.line_breaks(self.run(i1, other)));
        }
        if c0 == ' ' {
            if let Some((_, i2)) = self.class_at(i1).filter(|&(k1, _)| other(k1)) {
                return Some(self.line_breaks(self.run(i2, other)));
            }
        }
        // c0 is whitespace: find its run, the start of its last character and the end of its last line break.
        let mut end = i;
        let mut last_start = i;
        let mut after_break = None;
        while let Some(c) = self
            .char_at(end)
            .filter(|&c| self.classes.of(c) & SPACE != 0)
        {
            last_start = end;
            end += c.len_utf8();
            if c == '\r' || c == '\n' {
                after_break = Some(end);
            }
        }
        // 5. Whitespace through its last line break.
        if let Some(after_break) = after_break {
            return Some(after_break);
        }
        // 6. Whitespace not followed by a non-space: all of it at the end of the text, else backtrack one
        //    character (if that leaves any).
        if end >= self.text.len() {
            return Some(end);
        }
        if last_start > i {
            return Some(last_start);
        }
        // 7. One whitespace character.
        Some(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<String> {
        let classes = Classes::new().expect("classes");
        pieces(text, &classes).map(str::to_string).collect()
    }

    #[test]
    fn splits_like_the_regex() {
        assert_eq!(
            split("fn main() {\n    let x's = 42;\r\n\n  }  "),
            [
                "fn", " main", "()", " {\n", "   ", " let", " x", "'s", " =", " ", "4", "2",
                ";\r\n\n", " ", " }", "  "
            ]
        );
        assert_eq!(
            split("I'LL x'ſ 'RE'Ve'dx"),
            ["I", "'LL", " x", "'ſ", " '", "RE", "'Ve", "'d", "x"]
        );
        assert_eq!(split("\t\tx\u{a0}y"), ["\t", "\tx", "\u{a0}y"]);
        assert_eq!(split("a\n\n\t b"), ["a", "\n\n", "\t", " b"]);
        assert_eq!(split(""), Vec::<&str>::new());
    }

    /// Splits equal those of `tokenizers`' own pre-tokenizer (regex + byte-level mapping), piece by piece, on
    /// text that hits every alternative and every class boundary.
    #[test]
    fn splits_equal_the_reference_pre_tokenizer() {
        use tokenizers::PreTokenizer;
        let reference =
            tokenizers::Tokenizer::from_bytes(qwen_vocab::tokenizer_json()).expect("json");
        let pre = reference.get_pre_tokenizer().expect("pre-tokenizer");
        let classes = Classes::new().expect("classes");
        let alphabet = super::super::vocab::byte_alphabet();
        let atoms = [
            " ",
            "\t",
            "\n",
            "\r",
            "\u{b}",
            "\u{85}",
            "\u{a0}",
            "\u{2029}",
            "\u{3000}",
            "'",
            "s",
            "S",
            "ſ",
            "t",
            "r",
            "e",
            "E",
            "v",
            "m",
            "l",
            "L",
            "d",
            "x",
            "7",
            "٣",
            "Ⅻ",
            "¼",
            ".",
            "_",
            "{",
            "😀",
            "\u{301}",
            "日",
            "ß",
            "\u{200d}",
            "\u{e000}",
            "\u{10ffff}",
            "<|file_sep|>",
        ];
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for round in 0..20_000 {
            let len = if round % 1000 == 0 { 300 } else { next(12) };
            let text: String = (0..len).map(|_| atoms[next(atoms.len())]).collect();
            let mut split = tokenizers::PreTokenizedString::from(text.as_str());
            pre.pre_tokenize(&mut split).expect("pre-tokenize");
            let expected: Vec<String> = split
                .get_splits(
                    tokenizers::OffsetReferential::Original,
                    tokenizers::OffsetType::Byte,
                )
                .into_iter()
                .map(|(piece, _, _)| piece.to_string())
                .collect();
            let got: Vec<String> = pieces(&text, &classes)
                .map(|piece| piece.bytes().map(|b| alphabet[usize::from(b)]).collect())
                .collect();
            assert_eq!(got, expected, "{text:?}");
        }
    }

    #[test]
    fn case_folds_are_those_of_regex_syntax() {
        for letter in ['s', 't', 'r', 'e', 'v', 'm', 'l', 'd'] {
            let folded: Vec<char> = class_ranges(&format!("(?i:[{letter}])"))
                .expect("class")
                .into_iter()
                .flat_map(|(a, b)| (a..=b).filter_map(char::from_u32))
                .collect();
            for c in &folded {
                assert_eq!(fold(*c), letter, "{c:?}");
            }
            assert_eq!(folded.len(), if letter == 's' { 3 } else { 2 }, "{letter}");
        }
    }
}
