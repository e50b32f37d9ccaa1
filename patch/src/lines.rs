//! A text file as lines plus the facts needed to write it back the way it was: a UTF-8 byte-order mark, each
//! line's own terminator, the dominant line ending for new lines, and whether the file ends with a newline.
//! Lines are split on `\n` only, as git does, so a lone `\r` stays part of its line.

/// One line: its content (no terminator) and its terminator (`"\n"`, `"\r\n"` or `""` for a last line
/// without newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub content: String,
    pub ending: &'static str,
}

/// A text file split into lines.
#[derive(Debug, Clone)]
pub(crate) struct LineText {
    pub bom: bool,
    pub lines: Vec<Line>,
    /// The terminator given to lines the patch inserts: `"\r\n"` when most lines end that way.
    pub eol: &'static str,
}

const BOM: char = '\u{feff}';

impl LineText {
    pub fn parse(text: &str) -> LineText {
        let (bom, body) = match text.strip_prefix(BOM) {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let mut lines = Vec::new();
        let (mut crlf, mut lf) = (0usize, 0usize);
        let mut rest = body;
        while !rest.is_empty() {
            let (line, tail) = match rest.find('\n') {
                Some(at) => (&rest[..at], &rest[at + 1..]),
                None => {
                    lines.push(Line {
                        content: rest.to_string(),
                        ending: "",
                    });
                    break;
                }
            };
            match line.strip_suffix('\r') {
                Some(content) => {
                    crlf += 1;
                    lines.push(Line {
                        content: content.to_string(),
                        ending: "\r\n",
                    });
                }
                None => {
                    lf += 1;
                    lines.push(Line {
                        content: line.to_string(),
                        ending: "\n",
                    });
                }
            }
            rest = tail;
        }
        LineText {
            bom,
            lines,
            eol: if crlf > lf { "\r\n" } else { "\n" },
        }
    }

    /// Whether the text ends with a line terminator (vacuously true for an empty file).
    pub fn final_newline(&self) -> bool {
        self.lines.last().is_none_or(|line| !line.ending.is_empty())
    }

    /// The contents of all lines, for matching.
    pub fn contents(&self) -> Vec<&str> {
        self.lines
            .iter()
            .map(|line| line.content.as_str())
            .collect()
    }

    /// Reassembles the file. `final_newline` decides the last line's terminator so that editing the end of a
    /// file never adds or removes its final newline.
    pub fn render(&self, final_newline: bool) -> String {
        let mut out = String::new();
        if self.bom {
            out.push(BOM);
        }
        let last = self.lines.len().saturating_sub(1);
        for (index, line) in self.lines.iter().enumerate() {
            out.push_str(&line.content);
            let ending = match (index == last, final_newline, line.ending) {
                (true, false, _) => "",
                (true, true, "") => self.eol,
                (_, _, ending) => ending,
            };
            out.push_str(ending);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_line_endings_bom_and_final_newline() {
        for text in [
            "",
            "a",
            "a\n",
            "a\r\nb\r\n",
            "a\r\nb",
            "\u{feff}x\ny",
            "a\rb\n",
            "\n\n",
            "mixed\r\nlf\n",
        ] {
            let parsed = LineText::parse(text);
            assert_eq!(parsed.render(parsed.final_newline()), text, "{text:?}");
        }
    }

    #[test]
    fn dominant_ending() {
        assert_eq!(LineText::parse("a\r\nb\r\nc\n").eol, "\r\n");
        assert_eq!(LineText::parse("a\r\nb\n").eol, "\n");
        assert_eq!(LineText::parse("a\rb\n").lines.len(), 1);
    }
}
