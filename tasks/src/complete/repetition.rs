//! Detects completions that loop: a model stuck repeating a line, a block of lines or a short n-gram. Such a
//! suggestion is never useful, and noticing it early lets the stream stop instead of running to max tokens.

/// Repetitions in a row of a line (or of a block of lines) that count as a loop.
const LINE_REPEATS: usize = 3;
/// Longest block of lines looked for when checking for repeated blocks.
const MAX_BLOCK_LINES: usize = 8;
/// Within a line: longest repeated unit, fewest repetitions of a short unit (up to [`SHORT_UNIT`] bytes) and of
/// a longer one, and the shortest repeated span that count as a loop. The span is long on purpose so that
/// tables such as `0, 0, 0, 0` and `// ====` rulers survive; a unit of a few identifiers (`self.num_kv_heads, `)
/// repeated four times in one line is a model stuck, not code.
const MAX_UNIT: usize = 64;
const SHORT_UNIT: usize = 16;
const MIN_SHORT_UNIT_REPEATS: usize = 8;
const MIN_LONG_UNIT_REPEATS: usize = 4;
const MIN_LOOP_SPAN: usize = 80;

/// Whether `text` loops anywhere: the same non-blank line [`LINE_REPEATS`] times in a row, a block of up to
/// [`MAX_BLOCK_LINES`] lines repeated that often, or a short unit repeated within a line.
pub fn is_repetitive(text: &str) -> bool {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    (0..lines.len()).any(|end| lines_loop_at(&lines[..=end])) || lines.iter().any(|l| line_loops(l))
}

/// Whether the last lines of `lines` (ending at the last one) are a block repeated [`LINE_REPEATS`] times.
/// Lines are compared with trailing whitespace removed; blocks made only of blank lines do not count.
pub(crate) fn lines_loop_at(lines: &[&str]) -> bool {
    (1..=MAX_BLOCK_LINES).any(|period| {
        let span = period * LINE_REPEATS;
        if lines.len() < span {
            return false;
        }
        let tail = &lines[lines.len() - span..];
        let block = &tail[..period];
        block.iter().any(|l| !l.trim().is_empty())
            && tail.chunks(period).all(|chunk| chunk == block)
    })
}

/// Whether a line ends in a short unit repeated many times (`foo(foo(foo(…`, `a, b, a, b, …`). Units of a single
/// punctuation character (rulers, `)))`) are left to the max-token limit: they are too often legitimate.
pub(crate) fn line_loops(line: &str) -> bool {
    let bytes = line.trim_end().as_bytes();
    (1..=MAX_UNIT).any(|unit| {
        let min_repeats = if unit <= SHORT_UNIT {
            MIN_SHORT_UNIT_REPEATS
        } else {
            MIN_LONG_UNIT_REPEATS
        };
        if bytes.len() < unit * min_repeats {
            return false;
        }
        let mut run = unit;
        for i in (0..bytes.len() - unit).rev() {
            if bytes[i] != bytes[i + unit] {
                break;
            }
            run += 1;
        }
        let repeated = &bytes[bytes.len() - unit..];
        // A unit of one repeated character (`==`, `))`) is a ruler or closers, not a loop.
        let one_char = repeated.iter().all(|b| *b == repeated[0]);
        let meaningful = repeated.iter().any(|b| b.is_ascii_alphanumeric())
            || (!one_char && repeated.iter().any(|b| !b.is_ascii_whitespace()));
        meaningful && run >= MIN_LOOP_SPAN && run >= unit * min_repeats
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_lines_and_blocks_loop() {
        assert!(is_repetitive("x += 1;\nlog();\nlog();\nlog();\n"));
        assert!(is_repetitive("a = 1\nb = 2\na = 1\nb = 2\na = 1\nb = 2"));
        assert!(!is_repetitive("log();\nlog();\nother();"));
        assert!(!is_repetitive("        }\n    }\n}\n"));
        assert!(!is_repetitive("\n\n\n\n"));
    }

    #[test]
    fn short_units_looping_within_a_line() {
        assert!(line_loops(&"foo(".repeat(30)));
        assert!(line_loops(&format!("let v = {}", "a, b, ".repeat(20))));
        assert!(!line_loops("let v = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];"));
        assert!(!line_loops(&format!("// {}", "=".repeat(100))));
        assert!(!line_loops("fn main() {}"));
    }

    #[test]
    fn units_of_a_few_identifiers_looping_within_a_line() {
        // The default model at a call site of candle-transformers' gemma2.rs (`bench typing`).
        let stuck = format!(
            "q, k, v, scale, self.num_heads, {}",
            "self.num_kv_groups, self.num_kv_heads, ".repeat(4)
        );
        assert!(line_loops(&stuck));
        assert!(line_loops(&format!(
            "f({}",
            "self.num_kv_heads, ".repeat(5)
        )));
        // Real lines that repeat a long unit two or three times.
        assert!(!line_loops(
            "let shape = (batch_size, seq_len, hidden_size, batch_size, seq_len, hidden_size);"
        ));
        assert!(!line_loops(&format!(
            "let zeros = [{}];",
            "Tensor::zeros((b, h), dtype, dev)?, ".repeat(3)
        )));
    }
}
