//! A tiny streaming lexer that tracks brackets outside strings and comments.
//!
//! Stop rules need to know, token by token, whether the completion has closed more brackets than it opened;
//! re-parsing with tree-sitter for that would cost a parse per token. This lexer is fed one byte at a time
//! (so deltas can split anywhere, even inside a UTF-8 character: every byte it cares about is ASCII, and UTF-8
//! continuation bytes never equal an ASCII byte) and keeps just enough state to skip strings and comments.
//! It is a heuristic, not a tokenizer: regex literals, raw strings with `#` guards and string interpolation
//! are not modelled; the damage of a misread quote is limited by ending non-Rust strings at the newline.

use super::language::Lang;

/// What a byte meant for bracket tracking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// Nothing bracket-related.
    None,
    /// An opening bracket in code.
    Open,
    /// A closing bracket that matched an opener seen by this lexer.
    CloseInner,
    /// A closing bracket with no opener seen by this lexer: it closes something opened before the lexed text.
    CloseOuter(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    /// After a `/` in code: a comment may start.
    Slash,
    LineComment,
    BlockComment,
    /// After a `*` in a block comment: the comment may end.
    BlockStar,
    Str {
        quote: u8,
        triple: bool,
        escaped: bool,
        empty: bool,
    },
    /// Python: after an empty `""`: a triple quote may start.
    MaybeTriple {
        quote: u8,
    },
    /// Inside a triple-quoted string, counting closing quotes seen in a row.
    TripleClosing {
        quote: u8,
        seen: u8,
    },
    /// Rust: after a `'`, deciding between a character literal and a lifetime.
    RustQuote {
        chars: u8,
    },
}

/// Streaming bracket tracker; see the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct Lexer {
    lang: Lang,
    state: State,
    stack: Vec<u8>,
}

/// Whether a byte is a closing bracket.
pub(crate) fn is_closer(b: u8) -> bool {
    matches!(b, b')' | b']' | b'}')
}

impl Lexer {
    /// A lexer starting in code at bracket depth zero.
    pub(crate) fn new(lang: Lang) -> Lexer {
        Lexer {
            lang,
            state: State::Code,
            stack: Vec::new(),
        }
    }

    /// The same lexical state (inside a string, a comment, …) with no open brackets: the starting point for
    /// lexing text inserted at a position this lexer has reached.
    pub(crate) fn with_empty_stack(&self) -> Lexer {
        Lexer {
            lang: self.lang,
            state: self.state,
            stack: Vec::new(),
        }
    }

    /// Openers seen and not yet closed, innermost last.
    pub(crate) fn open_brackets(&self) -> &[u8] {
        &self.stack
    }

    /// Whether the lexer is in code (not inside a string or comment). A `Slash` still counts as code.
    pub(crate) fn in_code(&self) -> bool {
        matches!(
            self.state,
            State::Code | State::Slash | State::RustQuote { .. } | State::MaybeTriple { .. }
        )
    }

    /// Whether the lexer is at a point where a statement could end: in code or in a line comment (which the
    /// next newline ends), not inside a string or block comment.
    pub(crate) fn at_statement_boundary(&self) -> bool {
        self.in_code() || self.state == State::LineComment
    }

    /// Feeds every byte of `text`, returning the closers that closed something opened before the text.
    pub(crate) fn feed_str(&mut self, text: &str) -> Vec<u8> {
        let mut outer = Vec::new();
        for &b in text.as_bytes() {
            if let Event::CloseOuter(c) = self.feed(b) {
                outer.push(c);
            }
        }
        outer
    }

    /// Feeds one byte.
    pub(crate) fn feed(&mut self, b: u8) -> Event {
        // A lookahead state that turns out not to apply hands the byte back to `Code`; at most one hand-back.
        match self.state {
            State::Code => self.code(b),
            State::Slash => {
                self.state = State::Code;
                match b {
                    b'/' => {
                        self.state = State::LineComment;
                        Event::None
                    }
                    b'*' => {
                        self.state = State::BlockComment;
                        Event::None
                    }
                    _ => self.code(b),
                }
            }
            State::LineComment => {
                if b == b'\n' {
                    self.state = State::Code;
                }
                Event::None
            }
            State::BlockComment | State::BlockStar => {
                self.state = match (self.state, b) {
                    (State::BlockStar, b'/') => State::Code,
                    (_, b'*') => State::BlockStar,
                    _ => State::BlockComment,
                };
                Event::None
            }
            State::Str {
                quote,
                triple,
                escaped,
                empty,
            } => {
                self.string(b, quote, triple, escaped, empty);
                Event::None
            }
            State::MaybeTriple { quote } => {
                if b == quote {
                    self.state = State::Str {
                        quote,
                        triple: true,
                        escaped: false,
                        empty: true,
                    };
                    Event::None
                } else {
                    // It was an empty string; the byte is code.
                    self.state = State::Code;
                    self.code(b)
                }
            }
            State::TripleClosing { quote, seen } => {
                if b == quote {
                    if seen + 1 >= 3 {
                        self.state = State::Code;
                    } else {
                        self.state = State::TripleClosing {
                            quote,
                            seen: seen + 1,
                        };
                    }
                } else {
                    self.string(b, quote, true, false, false);
                }
                Event::None
            }
            State::RustQuote { chars } => {
                let continuation = (0x80..0xC0).contains(&b);
                if chars == 0 {
                    if b == b'\\' {
                        self.state = State::Str {
                            quote: b'\'',
                            triple: false,
                            escaped: true,
                            empty: false,
                        };
                    } else if b == b'\'' || b == b'\n' {
                        // `''` is not valid Rust; treat the quote as stray.
                        self.state = State::Code;
                    } else {
                        self.state = State::RustQuote { chars: 1 };
                    }
                    Event::None
                } else if continuation {
                    Event::None
                } else if b == b'\'' {
                    // `'x'`: a character literal, now closed.
                    self.state = State::Code;
                    Event::None
                } else {
                    // `'a` followed by something else: a lifetime or label; the byte is code.
                    self.state = State::Code;
                    self.code(b)
                }
            }
        }
    }

    fn code(&mut self, b: u8) -> Event {
        match b {
            b'(' | b'[' | b'{' => {
                self.stack.push(b);
                Event::Open
            }
            b')' | b']' | b'}' => match self.stack.pop() {
                // A mismatched pair still pops: the text is broken either way and popping keeps depth sane.
                Some(_) => Event::CloseInner,
                None => Event::CloseOuter(b),
            },
            b'/' if !self.lang.hash_comments() => {
                self.state = State::Slash;
                Event::None
            }
            b'#' if self.lang.hash_comments() => {
                self.state = State::LineComment;
                Event::None
            }
            b'\'' if self.lang.rust_quotes() => {
                self.state = State::RustQuote { chars: 0 };
                Event::None
            }
            b'"' | b'\'' => {
                self.state = State::Str {
                    quote: b,
                    triple: false,
                    escaped: false,
                    empty: true,
                };
                Event::None
            }
            b'`' if self.lang.backtick_strings() => {
                self.state = State::Str {
                    quote: b,
                    triple: true,
                    escaped: false,
                    empty: true,
                };
                Event::None
            }
            _ => Event::None,
        }
    }

    fn string(&mut self, b: u8, quote: u8, triple: bool, escaped: bool, empty: bool) {
        // Go raw strings (backticks) have no escapes; JS template literals do. Both are multi-line.
        let escapes = quote != b'`' || self.lang.backtick_escapes();
        let next = |escaped| State::Str {
            quote,
            triple,
            escaped,
            empty: false,
        };
        if escaped {
            self.state = next(false);
        } else if b == b'\\' && escapes {
            self.state = next(true);
        } else if b == quote {
            self.state = if triple && quote != b'`' {
                State::TripleClosing { quote, seen: 1 }
            } else if !triple && empty && self.lang.triple_quotes() {
                // `""` so far: a third quote would open a triple-quoted string.
                State::MaybeTriple { quote }
            } else {
                State::Code
            };
        } else if b == b'\n' && !triple && !self.lang.multiline_strings() {
            self.state = State::Code;
        } else {
            self.state = next(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outer(lang: Lang, text: &str) -> (String, String) {
        let mut lexer = Lexer::new(lang);
        let closed = lexer.feed_str(text);
        (
            String::from_utf8_lossy(&closed).into_owned(),
            String::from_utf8_lossy(lexer.open_brackets()).into_owned(),
        )
    }

    #[test]
    fn brackets_in_strings_and_comments_are_ignored() {
        assert_eq!(
            outer(Lang::from_id("rust"), r#"a(")", '(', "\")") // )"#),
            (String::new(), String::new())
        );
        assert_eq!(
            outer(Lang::from_id("rust"), r#"a(")", '(' // )"#),
            (String::new(), "(".into())
        );
        assert_eq!(
            outer(Lang::from_id("rust"), "x) /* } */ }"),
            (")}".into(), String::new())
        );
        assert_eq!(
            outer(Lang::from_id("python"), "f(')')  # )\n)"),
            (")".into(), String::new())
        );
        assert_eq!(
            outer(Lang::from_id("python"), "\"\"\"doc ) \"\" ) \"\"\" )"),
            (")".into(), String::new())
        );
        assert_eq!(
            outer(Lang::from_id("python"), "x = \"\" )"),
            (")".into(), String::new())
        );
        assert_eq!(
            outer(Lang::from_id("javascript"), "`${a}) ` )"),
            (")".into(), String::new())
        );
        assert_eq!(
            outer(Lang::from_id("go"), "`raw \\` )"),
            (")".into(), String::new())
        );
    }

    #[test]
    fn rust_lifetimes_are_not_char_literals() {
        assert_eq!(
            outer(Lang::from_id("rust"), "fn f<'a>(x: &'a str) { '}' }"),
            (String::new(), String::new())
        );
        assert_eq!(
            outer(Lang::from_id("rust"), "'outer: loop { break 'outer; } }"),
            ("}".into(), String::new())
        );
        assert_eq!(
            outer(Lang::from_id("rust"), "let c = 'é'; }"),
            ("}".into(), String::new())
        );
        assert_eq!(
            outer(Lang::from_id("rust"), "let c = '\\''; )"),
            (")".into(), String::new())
        );
    }

    #[test]
    fn unterminated_strings_end_at_newline_outside_rust() {
        assert_eq!(
            outer(Lang::from_id("javascript"), "it's\n)"),
            (")".into(), String::new())
        );
        assert_eq!(
            outer(Lang::from_id("rust"), "\"a\n)\""),
            (String::new(), String::new())
        );
    }

    #[test]
    fn split_feeding_equals_whole_feeding() {
        let text = "fn f<'a>() { let s = \"é)\"; /* ) */ g(x) } }";
        let mut whole = Lexer::new(Lang::from_id("rust"));
        let expected = whole.feed_str(text);
        let mut bytewise = Lexer::new(Lang::from_id("rust"));
        let mut got = Vec::new();
        for b in text.bytes() {
            if let Event::CloseOuter(c) = bytewise.feed(b) {
                got.push(c);
            }
        }
        assert_eq!(expected, got);
        assert_eq!(expected, b"}");
    }
}
