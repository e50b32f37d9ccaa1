//! Finds where each SEARCH section sits in its file and splices in the REPLACE sections.
//!
//! Every SEARCH is matched against the original file (never against the result of earlier blocks) and must
//! match exactly once. Comparison is line-based and tried in increasing tolerance: exact, then ignoring
//! trailing whitespace, then also allowing a uniform indentation shift (the replacement is re-indented by the
//! same shift); then all three again with blank lines at the edges of the SEARCH dropped. The first tolerance
//! that finds any match decides: one match is used (non-exact ones are reported), several are ambiguous.
//! Line terminators are never compared; inserted lines take the file's dominant ending.

use std::fmt;

use super::lines::{Line, LineText};

/// How far a match had to stretch beyond an exact comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchKind {
    /// Trailing whitespace differed.
    pub trailing_whitespace: bool,
    /// Indentation differed uniformly; the replacement was re-indented by the same shift.
    pub indentation: Option<IndentShift>,
    /// Blank lines at the start or end of the SEARCH section were ignored.
    pub blank_edges: bool,
}

impl MatchKind {
    /// Whether the match was exact.
    pub fn is_exact(&self) -> bool {
        *self == MatchKind::default()
    }
}

impl fmt::Display for MatchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.trailing_whitespace {
            parts.push("ignoring trailing whitespace".to_string());
        }
        match &self.indentation {
            Some(IndentShift::Added(d)) => {
                parts.push(format!("indenting it by {}", describe_ws(d)))
            }
            Some(IndentShift::Removed(d)) => {
                parts.push(format!("removing {} of indentation", describe_ws(d)))
            }
            None => {}
        }
        if self.blank_edges {
            parts.push("ignoring blank lines at the edges of the SEARCH section".to_string());
        }
        if parts.is_empty() {
            parts.push("exactly".to_string());
        }
        f.write_str(&parts.join(", "))
    }
}

/// A uniform indentation difference between the SEARCH section and the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndentShift {
    /// The file's lines carry this extra prefix.
    Added(String),
    /// The SEARCH lines carry this extra prefix.
    Removed(String),
}

fn describe_ws(ws: &str) -> String {
    let n = ws.chars().count();
    let plural = if n == 1 { "" } else { "s" };
    if ws.chars().all(|c| c == ' ') {
        format!("{n} space{plural}")
    } else if ws.chars().all(|c| c == '\t') {
        format!("{n} tab{plural}")
    } else {
        format!("{n} whitespace character{plural}")
    }
}

/// The file region most similar to a SEARCH that matched nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closest {
    /// 1-based first line of the region.
    pub line: usize,
    /// The region's lines.
    pub lines: Vec<String>,
}

/// Why one block could not be placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchFailure {
    /// The SEARCH occurs nowhere, even after normalising whitespace.
    NoMatch {
        /// The most similar region, if any line resembles the SEARCH.
        closest: Option<Closest>,
    },
    /// The SEARCH occurs several times (1-based first lines of each occurrence).
    Ambiguous {
        /// Where it occurs.
        lines: Vec<usize>,
    },
    /// The SEARCH overlaps the region matched by an earlier block.
    Overlap {
        /// 1-based index of the other block in the answer.
        other_block: usize,
        /// 1-based inclusive line range this block matched.
        lines: (usize, usize),
        /// 1-based inclusive line range the other block matched.
        other_lines: (usize, usize),
    },
}

/// The most lines of a "closest match" region shown in an error.
const CLOSEST_SHOWN: usize = 12;

impl fmt::Display for MatchFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MatchFailure::NoMatch { closest: None } => {
                f.write_str("the SEARCH section does not match the file, and no line of the file resembles it")
            }
            MatchFailure::NoMatch { closest: Some(closest) } => {
                let end = closest.line + closest.lines.len().saturating_sub(1);
                if end == closest.line {
                    write!(f, "the SEARCH section does not match the file; the closest line is {end}:")?;
                } else {
                    write!(f, "the SEARCH section does not match the file; the closest lines are {}-{end}:", closest.line)?;
                }
                for (offset, line) in closest.lines.iter().take(CLOSEST_SHOWN).enumerate() {
                    write!(f, "\n{:>6} | {line}", closest.line + offset)?;
                }
                if closest.lines.len() > CLOSEST_SHOWN {
                    write!(f, "\n       | …")?;
                }
                Ok(())
            }
            MatchFailure::Ambiguous { lines } => {
                let list: Vec<String> = lines.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "the SEARCH section matches {} places (starting at lines {}); include more surrounding lines to make it unique",
                    lines.len(),
                    list.join(", ")
                )
            }
            MatchFailure::Overlap { other_block, lines, other_lines } => write!(
                f,
                "the SEARCH section (lines {}-{}) overlaps block {other_block} (lines {}-{}); merge the two blocks",
                lines.0, lines.1, other_lines.0, other_lines.1
            ),
        }
    }
}

/// One block's SEARCH/REPLACE to place in a file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockEdit<'a> {
    /// 1-based index of the block in the answer.
    pub block: usize,
    pub search: &'a [String],
    pub replace: &'a [String],
}

/// A block that was placed only after normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FuzzyPlacement {
    pub block: usize,
    /// 1-based inclusive line range matched in the original file.
    pub lines: (usize, usize),
    pub kind: MatchKind,
}

struct Placement {
    block: usize,
    start: usize,
    end: usize,
    replacement: Vec<String>,
    kind: MatchKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tolerance {
    Exact,
    TrailingWhitespace,
    Indentation,
}

/// Every block that failed, as (1-based block index, why), in block order.
pub(crate) type BlockFailures = Vec<(usize, MatchFailure)>;

/// Places every edit in `text` and returns the edited text with the non-exact placements, or every failure.
pub(crate) fn apply_edits(
    text: &LineText,
    edits: &[BlockEdit<'_>],
) -> Result<(LineText, Vec<FuzzyPlacement>), BlockFailures> {
    let file = text.contents();
    let mut placements = Vec::new();
    let mut failures = Vec::new();
    for edit in edits {
        match place(&file, edit) {
            Ok(placement) => placements.push(placement),
            Err(failure) => failures.push((edit.block, failure)),
        }
    }
    placements.sort_by_key(|p| (p.start, p.block));
    for pair in placements.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if b.start < a.end {
            let (later, earlier) = if a.block > b.block { (a, b) } else { (b, a) };
            failures.push((
                later.block,
                MatchFailure::Overlap {
                    other_block: earlier.block,
                    lines: (later.start + 1, later.end),
                    other_lines: (earlier.start + 1, earlier.end),
                },
            ));
        }
    }
    if !failures.is_empty() {
        failures.sort_by_key(|(block, _)| *block);
        return Err(failures);
    }

    let mut lines = Vec::with_capacity(text.lines.len());
    let mut cursor = 0;
    for placement in &placements {
        lines.extend_from_slice(&text.lines[cursor..placement.start]);
        lines.extend(placement.replacement.iter().map(|content| Line {
            content: content.clone(),
            ending: text.eol,
        }));
        cursor = placement.end;
    }
    lines.extend_from_slice(&text.lines[cursor..]);
    let edited = LineText {
        bom: text.bom,
        lines,
        eol: text.eol,
    };
    // Re-parse the rendering so the last line's terminator reflects the preserved final-newline state.
    let edited = LineText::parse(&edited.render(text.final_newline()));

    let fuzzy = placements
        .into_iter()
        .filter(|p| !p.kind.is_exact())
        .map(|p| FuzzyPlacement {
            block: p.block,
            lines: (p.start + 1, p.end),
            kind: p.kind,
        })
        .collect();
    Ok((edited, fuzzy))
}

fn place(file: &[&str], edit: &BlockEdit<'_>) -> Result<Placement, MatchFailure> {
    let trimmed_search = trim_blank_edges(edit.search);
    let variants: Vec<(&[String], bool)> = if trimmed_search.len() == edit.search.len() {
        vec![(edit.search, false)]
    } else {
        vec![(edit.search, false), (trimmed_search, true)]
    };
    for (search, blank_edges) in variants {
        if search.is_empty() || search.len() > file.len() {
            continue;
        }
        for tolerance in [
            Tolerance::Exact,
            Tolerance::TrailingWhitespace,
            Tolerance::Indentation,
        ] {
            let hits: Vec<(usize, Option<IndentShift>)> = (0..=file.len() - search.len())
                .filter_map(|start| {
                    compare(tolerance, &file[start..start + search.len()], search)
                        .map(|s| (start, s))
                })
                .collect();
            match hits.as_slice() {
                [] => continue,
                [(start, shift)] => {
                    let replace = if blank_edges {
                        trim_replace_like(edit.search, edit.replace)
                    } else {
                        edit.replace
                    };
                    let replacement: Vec<String> = replace
                        .iter()
                        .map(|line| reindent(line, shift.as_ref()))
                        .collect();
                    let region = &file[*start..start + search.len()];
                    let trailing_whitespace = tolerance != Tolerance::Exact
                        && region
                            .iter()
                            .zip(search)
                            .any(|(f, s)| *f != reindent(s, shift.as_ref()));
                    let kind = MatchKind {
                        trailing_whitespace,
                        indentation: shift.clone(),
                        blank_edges,
                    };
                    return Ok(Placement {
                        block: edit.block,
                        start: *start,
                        end: start + search.len(),
                        replacement,
                        kind,
                    });
                }
                many => {
                    return Err(MatchFailure::Ambiguous {
                        lines: many.iter().map(|(s, _)| s + 1).collect(),
                    })
                }
            }
        }
    }
    Err(MatchFailure::NoMatch {
        closest: closest(file, trimmed_search),
    })
}

/// Compares a file region with a SEARCH section under a tolerance; `Some` on a match, carrying the indentation
/// shift for [`Tolerance::Indentation`].
fn compare(
    tolerance: Tolerance,
    region: &[&str],
    search: &[String],
) -> Option<Option<IndentShift>> {
    match tolerance {
        Tolerance::Exact => region
            .iter()
            .zip(search)
            .all(|(f, s)| *f == s.as_str())
            .then_some(None),
        Tolerance::TrailingWhitespace => region
            .iter()
            .zip(search)
            .all(|(f, s)| f.trim_end() == s.trim_end())
            .then_some(None),
        Tolerance::Indentation => indent_shift(region, search).map(Some),
    }
}

/// The single non-empty indentation prefix that turns every non-blank SEARCH line into its file line (or the
/// reverse), ignoring trailing whitespace; blank lines must face blank lines.
fn indent_shift(region: &[&str], search: &[String]) -> Option<IndentShift> {
    let mut shift: Option<IndentShift> = None;
    for (f, s) in region.iter().zip(search) {
        let (f, s) = (f.trim_end(), s.trim_end());
        if f.is_empty() || s.is_empty() {
            if f.is_empty() != s.is_empty() {
                return None;
            }
            continue;
        }
        let line_shift = if let Some(delta) = f
            .strip_suffix(s)
            .filter(|d| d.chars().all(char::is_whitespace))
        {
            IndentShift::Added(delta.to_string())
        } else if let Some(delta) = s
            .strip_suffix(f)
            .filter(|d| d.chars().all(char::is_whitespace))
        {
            IndentShift::Removed(delta.to_string())
        } else {
            return None;
        };
        match &shift {
            None => shift = Some(line_shift),
            Some(existing) if *existing == line_shift => {}
            Some(_) => return None,
        }
    }
    shift.filter(|s| !matches!(s, IndentShift::Added(d) | IndentShift::Removed(d) if d.is_empty()))
}

fn reindent(line: &str, shift: Option<&IndentShift>) -> String {
    match shift {
        _ if line.trim().is_empty() => line.to_string(),
        None => line.to_string(),
        Some(IndentShift::Added(delta)) => format!("{delta}{line}"),
        Some(IndentShift::Removed(delta)) => match line.strip_prefix(delta.as_str()) {
            Some(rest) => rest.to_string(),
            None => {
                // The replacement is less indented than the shift: remove what leading whitespace there is.
                let limit = delta.chars().count();
                let cut: usize = line
                    .chars()
                    .take(limit)
                    .take_while(|c| c.is_whitespace())
                    .map(char::len_utf8)
                    .sum();
                line[cut..].to_string()
            }
        },
    }
}

fn trim_blank_edges(lines: &[String]) -> &[String] {
    let start = lines
        .iter()
        .position(|l| !l.trim().is_empty())
        .unwrap_or(lines.len());
    let end = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(start, |i| i + 1);
    &lines[start..end]
}

/// Drops as many blank lines from the edges of REPLACE as were dropped from the edges of SEARCH, so that
/// ignoring a stray blank line in SEARCH does not duplicate or delete one in the file.
fn trim_replace_like<'a>(search: &[String], replace: &'a [String]) -> &'a [String] {
    let blank = |l: &String| l.trim().is_empty();
    let search_lead = search.iter().take_while(|l| blank(l)).count();
    let search_trail = search.iter().rev().take_while(|l| blank(l)).count();
    let lead = replace
        .iter()
        .take_while(|l| blank(l))
        .count()
        .min(search_lead);
    let trail = replace
        .iter()
        .rev()
        .take_while(|l| blank(l))
        .count()
        .min(search_trail);
    let end = replace.len().saturating_sub(trail).max(lead);
    &replace[lead..end]
}

/// The window of the file sharing the most non-blank lines (trimmed) with the SEARCH; when none shares any,
/// the window around the line most similar to the SEARCH's first line, if it is similar enough.
fn closest(file: &[&str], search: &[String]) -> Option<Closest> {
    if file.is_empty() || search.is_empty() {
        return None;
    }
    let width = search.len().min(file.len());
    let window = |start: usize| Closest {
        line: start + 1,
        lines: file[start..start + width]
            .iter()
            .map(|l| l.to_string())
            .collect(),
    };
    let mut best = (0usize, 0usize);
    for start in 0..=file.len() - width {
        let score = file[start..start + width]
            .iter()
            .zip(search)
            .filter(|(f, s)| !s.trim().is_empty() && f.trim() == s.trim())
            .count();
        if score > best.0 {
            best = (score, start);
        }
    }
    if best.0 > 0 {
        return Some(window(best.1));
    }
    let first = search[0].trim();
    let mut best_ratio = (0.0f32, 0usize);
    for (index, line) in file.iter().enumerate() {
        let ratio = similarity(first, line.trim());
        if ratio > best_ratio.0 {
            best_ratio = (ratio, index);
        }
    }
    (best_ratio.0 >= 0.6).then(|| window(best_ratio.1.min(file.len() - width)))
}

/// Character-level similarity in [0, 1]; long lines are cut so a minified file cannot make this quadratic.
fn similarity(a: &str, b: &str) -> f32 {
    const MAX_CHARS: usize = 200;
    let cut = |s: &str| s.char_indices().nth(MAX_CHARS).map_or(s.len(), |(i, _)| i);
    similar::TextDiff::from_chars(&a[..cut(a)], &b[..cut(b)]).ratio()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    fn run(
        original: &str,
        blocks: &[(&str, &str)],
    ) -> Result<(String, Vec<FuzzyPlacement>), BlockFailures> {
        let owned: Vec<(Vec<String>, Vec<String>)> =
            blocks.iter().map(|(s, r)| (lines(s), lines(r))).collect();
        let edits: Vec<BlockEdit<'_>> = owned
            .iter()
            .enumerate()
            .map(|(i, (search, replace))| BlockEdit {
                block: i + 1,
                search,
                replace,
            })
            .collect();
        let text = LineText::parse(original);
        apply_edits(&text, &edits)
            .map(|(edited, fuzzy)| (edited.render(edited.final_newline()), fuzzy))
    }

    #[test]
    fn exact_match_keeps_crlf_and_missing_final_newline() {
        let (out, fuzzy) = run("a\r\nb\r\nc", &[("c", "C\nD")]).expect("applies");
        assert_eq!(out, "a\r\nb\r\nC\r\nD");
        assert!(fuzzy.is_empty());
        let (out, _) = run("a\nb", &[("b", "")]).expect("applies");
        assert_eq!(out, "a");
        let (out, _) = run("a\nb\n", &[("a\nb", "")]).expect("applies");
        assert_eq!(out, "");
    }

    #[test]
    fn trailing_whitespace_and_indentation_are_tolerated_and_reported() {
        let (out, fuzzy) = run(
            "fn f() {\n    let x = 1;  \n}\n",
            &[("    let x = 1;", "    let x = 2;")],
        )
        .expect("applies");
        assert_eq!(out, "fn f() {\n    let x = 2;\n}\n");
        assert!(fuzzy[0].kind.trailing_whitespace);

        let (out, fuzzy) = run(
            "impl A {\n    fn f() {\n        g();\n    }\n}\n",
            &[("fn f() {\n    g();\n}", "fn f() {\n    h();\n}")],
        )
        .expect("applies");
        assert_eq!(out, "impl A {\n    fn f() {\n        h();\n    }\n}\n");
        assert_eq!(
            fuzzy[0].kind.indentation,
            Some(IndentShift::Added("    ".into()))
        );
        assert_eq!(fuzzy[0].kind.to_string(), "indenting it by 4 spaces");

        let (out, _) = run("x\ny\n", &[("  x\n  y", "  z")]).expect("applies");
        assert_eq!(out, "z\n");
    }

    #[test]
    fn blank_edges_are_dropped_symmetrically() {
        let (out, fuzzy) = run("a\nb\nc\n", &[("\nb\n", "\nB\n")]).expect("applies");
        assert_eq!(out, "a\nB\nc\n");
        assert!(fuzzy[0].kind.blank_edges);
    }

    #[test]
    fn ambiguous_no_match_and_overlap() {
        let err = run("x\ny\nx\n", &[("x", "z")]).expect_err("ambiguous");
        assert_eq!(err, [(1, MatchFailure::Ambiguous { lines: vec![1, 3] })]);
        let err =
            run("alpha\nbeta\ngamma\n", &[("alpha\nbeta!\ngamma", "")]).expect_err("no match");
        assert!(
            matches!(&err[0].1, MatchFailure::NoMatch { closest: Some(c) } if c.line == 1 && c.lines.len() == 3)
        );
        let err = run("a\nb\nc\n", &[("a\nb", "x"), ("b\nc", "y")]).expect_err("overlap");
        assert_eq!(
            err,
            [(
                2,
                MatchFailure::Overlap {
                    other_block: 1,
                    lines: (2, 3),
                    other_lines: (1, 2)
                }
            )]
        );
    }

    #[test]
    fn closest_falls_back_to_a_similar_first_line() {
        let file = ["fn compute_total(x: u32) {", "}"];
        let found = closest(&file, &lines("fn compute_totals(x: u32) {\n    body\n}x"));
        assert_eq!(found.map(|c| c.line), Some(1));
        assert_eq!(closest(&file, &lines("zzzzzzzzz")), None);
    }
}
