//! The Markdown around edits, shared by every answer format's reader: fence lines and their info strings,
//! lines that name a file (`src/a.rs`, `` `src/a.rs` ``, `**File:** src/a.rs`…), and `<think>` sections.
//! Models decorate paths in many ways; these helpers are the one place that knows them.

/// A Markdown fence line (``` or ~~~, three or more), returning its info string.
pub(super) fn fence_info(line: &str) -> Option<&str> {
    let t = line.trim();
    for ch in ['`', '~'] {
        let run = t.chars().take_while(|&c| c == ch).count();
        if run >= 3 {
            return Some(t[run..].trim());
        }
    }
    None
}

/// Labels models put before a path (`File: src/lib.rs`), compared case-insensitively.
const PATH_LABELS: [&str; 4] = ["file path:", "filename:", "file:", "path:"];

/// Reads a line that consists of a file path, possibly decorated: `` `p` ``, `**p**`, `### p`, `File: p`,
/// `**File:** `p``, `- p`, `p:`. Prose lines return `None`. An undecorated name must contain `/` or an inner
/// `.` so that a one-word sentence is not mistaken for a file; decorated names (`` `Makefile` ``) need not.
/// Names with spaces are not recognised: a line with spaces is prose.
pub(super) fn path_line(line: &str) -> Option<String> {
    let mut t = line.trim();
    let mut decorated = false;
    let hashes = t.chars().take_while(|&c| c == '#').count();
    if hashes > 0 {
        t = t[hashes..].trim_start();
        decorated = true;
    }
    if let Some(rest) = t.strip_prefix("- ") {
        t = rest.trim_start();
    }
    // `*` (emphasis) and `` ` `` (code spans) never occur in a real path: drop them wherever they are.
    let undecorated: String = t.chars().filter(|&c| c != '*' && c != '`').collect();
    decorated |= undecorated.len() != t.len();
    let mut t = undecorated.trim();
    for label in PATH_LABELS {
        if t.len() >= label.len()
            && t.is_char_boundary(label.len())
            && t[..label.len()].eq_ignore_ascii_case(label)
        {
            t = t[label.len()..].trim_start();
            decorated = true;
            break;
        }
    }
    if let Some(stripped) = t.strip_suffix(':') {
        t = stripped.trim_end();
    }
    plausible_path(t, decorated).then(|| t.to_string())
}

pub(super) fn plausible_path(t: &str, decorated: bool) -> bool {
    let allowed = |c: char| c.is_alphanumeric() || "/._-+@~\\:".contains(c);
    if t.is_empty() || !t.chars().all(allowed) || !t.chars().any(char::is_alphanumeric) {
        return false;
    }
    if t.contains("://") || t.ends_with('.') {
        return false;
    }
    let name = t.rsplit(['/', '\\']).next().unwrap_or(t);
    let inner_dot =
        name.trim_start_matches('.').contains('.') || (name.starts_with('.') && name.len() > 1);
    decorated || t.contains('/') || inner_dot
}

/// A path given in a fence's info string: ```` ```src/lib.rs ````, ```` ```rust src/lib.rs ````,
/// ```` ```rust:src/lib.rs ````. A bare language name is not a path.
pub(super) fn fence_path(info: &str) -> Option<String> {
    let last = info.split_whitespace().last()?;
    let candidate = match last.split_once(':') {
        Some((lang, rest))
            if !lang.is_empty() && lang.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            rest
        }
        _ => last,
    };
    plausible_path(candidate, false).then(|| candidate.to_string())
}

/// Whether the answer closes a thinking section it never opened (the chat template emitted `<think>`): then
/// everything up to the first `</think>` is thinking.
pub(super) fn thinking_opened_by_template(answer: &str) -> bool {
    for line in answer.split('\n') {
        if line.trim_start().starts_with("<think>") {
            return false;
        }
        if line.trim_start().starts_with("</think>") {
            return true;
        }
    }
    false
}

/// The answer's lines (terminators and `\r` removed) with 1-based numbers, minus `<think>…</think>` sections
/// outside code fences (including one the chat template opened: everything before a leading `</think>`).
/// Inside a fence every line is content, even `<think>` or `</think>`.
pub(super) fn visible_lines(answer: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut thinking = thinking_opened_by_template(answer);
    let mut fence: Option<char> = None;
    for (index, raw) in answer.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim_start();
        if let Some(fence_char) = fence {
            if trimmed.starts_with(fence_char) && fence_info(line).is_some_and(str::is_empty) {
                fence = None;
            }
            out.push((index + 1, line));
            continue;
        }
        if thinking {
            thinking = !line.contains("</think>");
            continue;
        }
        if trimmed.starts_with("<think>") {
            thinking = !trimmed.contains("</think>");
            continue;
        }
        if trimmed.starts_with("</think>") {
            continue;
        }
        if fence_info(line).is_some() {
            fence = trimmed.chars().next();
        }
        out.push((index + 1, line));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decorated_path_lines() {
        for line in [
            "src/a.rs",
            "`src/a.rs`",
            "**src/a.rs**",
            "### src/a.rs",
            "File: src/a.rs",
            "src/a.rs:",
            "**`src/a.rs`**",
            "## File: `src/a.rs`",
            "*src/a.rs*",
            "`src/a.rs`:",
        ] {
            assert_eq!(path_line(line).as_deref(), Some("src/a.rs"), "{line}");
        }
        assert_eq!(path_line("`Makefile`").as_deref(), Some("Makefile"));
        assert_eq!(path_line(".gitignore").as_deref(), Some(".gitignore"));
        for prose in [
            "Done.",
            "Here is the change:",
            "Makefile",
            "https://x.y/z",
            "e.g.",
            "fn main() {}",
            "",
        ] {
            assert_eq!(path_line(prose), None, "{prose}");
        }
    }

    #[test]
    fn path_in_fence_info_string() {
        assert_eq!(fence_path("rust"), None);
        assert_eq!(fence_path("src/lib.rs").as_deref(), Some("src/lib.rs"));
        assert_eq!(fence_path("rust src/lib.rs").as_deref(), Some("src/lib.rs"));
        assert_eq!(fence_path("rust:src/lib.rs").as_deref(), Some("src/lib.rs"));
    }

    #[test]
    fn think_sections_outside_fences_are_hidden() {
        let answer = "a\n<think>\nb\n</think>\nc\n```\n<think>\n```\nd\r\n<think>x</think>\ne";
        let lines: Vec<(usize, &str)> = visible_lines(answer);
        assert_eq!(
            lines,
            [
                (1, "a"),
                (5, "c"),
                (6, "```"),
                (7, "<think>"),
                (8, "```"),
                (9, "d"),
                (11, "e")
            ]
        );
        // The template opened the section: everything up to `</think>` is thinking.
        assert_eq!(visible_lines("plan\n</think>\nx"), [(3, "x")]);
    }
}
