//! The search/replace edit format: the contract between the prompt that asks the model for edits and the
//! parser that reads its answer. The instructions the model is shown live next to the marker text the parser
//! accepts, so the two cannot drift apart (a test parses [`EDIT_FORMAT_EXAMPLE`] with the real parser).

/// Canonical marker that opens the SEARCH section of a block (the parser accepts 5–9 `<`).
pub const SEARCH_MARKER: &str = "<<<<<<< SEARCH";
/// Canonical marker between the SEARCH and REPLACE sections (the parser accepts 5–9 `=`).
pub const DIVIDER_MARKER: &str = "=======";
/// Canonical marker that closes the REPLACE section (the parser accepts 5–9 `>`).
pub const REPLACE_MARKER: &str = ">>>>>>> REPLACE";

/// Instructions for the system prompt, describing the edit format precisely. A prompt builder embeds this
/// text followed by [`EDIT_FORMAT_EXAMPLE`].
pub const EDIT_FORMAT_INSTRUCTIONS: &str = "\
Answer with edits written as SEARCH/REPLACE blocks. A block is, line by line: the file's real path, relative \
to the repository root, alone on its line; an opening fence (three backticks and the language); the line \
`<<<<<<< SEARCH`; the lines to replace, copied exactly from the current file; the line `=======`; the lines \
that replace them; the line `>>>>>>> REPLACE`; the closing fence. The example at the end shows two blocks.

Rules:
1. Write the file's path, relative to the repository root, alone on the line before the opening fence. Never \
use an absolute path or `..`.
2. The SEARCH section copies whole lines of the current file exactly, character for character, including \
indentation, comments and blank lines.
3. Each SEARCH section must match exactly one place in its file: include enough neighbouring lines to make it \
unique, and no more.
4. Every SEARCH section is matched against the file as it is now, before any of your edits. Blocks for the same \
file must not overlap. To make several changes to one file, write several blocks, each with the path line.
5. To create a new file, leave the SEARCH section empty and put the whole content of the file in the REPLACE \
section.
6. To delete lines, leave the REPLACE section empty.
7. Edit only text files inside the repository.
8. Keep any explanation outside the blocks short.
";

/// A rendered example of two blocks (an edit and a new file), shown to the model after
/// [`EDIT_FORMAT_INSTRUCTIONS`]. Kept identical to what [`render_block`] produces (a test checks it).
pub const EDIT_FORMAT_EXAMPLE: &str = "\
src/math.rs
```rust
<<<<<<< SEARCH
pub fn add(a: i32, b: i32) -> i32 {
    a - b
}
=======
pub fn add(a: i32, b: i32) -> i32 {
    a + b
}
>>>>>>> REPLACE
```

src/consts.rs
```rust
<<<<<<< SEARCH
=======
pub const ANSWER: u32 = 42;
>>>>>>> REPLACE
```
";

/// Renders one block in the canonical form: path line, fence with `language`, markers, fence. `search` and
/// `replace` are whole lines (a trailing newline is optional). The fence grows beyond three backticks when the
/// content itself contains a fence, so the block stays readable as Markdown.
pub fn render_block(path: &str, language: &str, search: &str, replace: &str) -> String {
    let longest_run = search
        .lines()
        .chain(replace.lines())
        .map(|line| line.trim_start().chars().take_while(|&c| c == '`').count())
        .max()
        .unwrap_or(0);
    let fence = "`".repeat(longest_run.max(2) + 1);
    let mut out = format!("{path}\n{fence}{language}\n{SEARCH_MARKER}\n");
    push_section(&mut out, search);
    out.push_str(DIVIDER_MARKER);
    out.push('\n');
    push_section(&mut out, replace);
    out.push_str(REPLACE_MARKER);
    out.push('\n');
    out.push_str(&fence);
    out.push('\n');
    out
}

fn push_section(out: &mut String, section: &str) {
    out.push_str(section);
    if !section.is_empty() && !section.ends_with('\n') {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_is_what_render_block_produces() {
        let edit = render_block(
            "src/math.rs",
            "rust",
            "pub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n",
            "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n",
        );
        let create = render_block("src/consts.rs", "rust", "", "pub const ANSWER: u32 = 42;");
        assert_eq!(format!("{edit}\n{create}"), EDIT_FORMAT_EXAMPLE);
    }

    #[test]
    fn fence_grows_around_fenced_content() {
        let block = render_block("README.md", "markdown", "```sh\nls\n```\n", "");
        assert!(block.starts_with("README.md\n````markdown\n"), "{block}");
        assert!(block.ends_with("\n````\n"), "{block}");
    }
}
