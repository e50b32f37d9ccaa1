//! Incremental updates must leave the index exactly as a full re-index of the same contents would.

use crate::common;

use std::path::Path;

use qwen_ls::index::{Change, ChangeError, IndexHost, TextEdit};

const OPEN_FILES: &[&str] = &[
    "src/geometry.rs",
    "src/broken.rs",
    "py/shapes.py",
    "web/main.ts",
    "web/util.js",
    "web/view.tsx",
    "go/store.go",
    "README.md",
];

/// Text fragments that open and close items, strings and comments, so edits exercise error recovery.
const INSERTIONS: &[&str] = &[
    "x",
    " ",
    "\n",
    "{",
    "}",
    "(",
    ")",
    "\"",
    "'",
    ";",
    "fn inserted(a: u32) -> u32 { a }\n",
    "pub struct Inserted { f: Circle }\n",
    "def inserted(x):\n    return x\n",
    "class Inserted:\n    pass\n",
    "function inserted() { return formatPrice(1); }\n",
    "func Inserted() *Store { return nil }\n",
    "// comment\n",
    "/* open comment ",
    "impl Shape for Circle {\n",
    "é",
];

struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn assert_equals_full_reindex(host: &IndexHost, root: &Path, context: &str) {
    let full = common::load(root);
    let incremental = host.snapshot().state_dump();
    let expected = full.snapshot().state_dump();
    if incremental != expected {
        let diff = similar::TextDiff::from_lines(&expected, &incremental);
        let mut shown = String::new();
        for change in diff
            .iter_all_changes()
            .filter(|c| c.tag() != similar::ChangeTag::Equal)
            .take(40)
        {
            shown.push_str(&format!("{}{}", change.tag(), change));
        }
        panic!("incremental state differs from a full re-index after {context}:\n{shown}");
    }
}

#[test]
fn random_edits_to_open_documents_equal_a_full_reindex() {
    let repo = common::fixture_copy("polyglot");
    let root = repo.path();
    let mut host = common::load(root);
    let mut texts: Vec<String> = OPEN_FILES
        .iter()
        .map(|p| std::fs::read_to_string(root.join(p)).expect("fixture file"))
        .collect();
    for (path, text) in OPEN_FILES.iter().zip(&texts) {
        host.apply_change(Change::Open {
            path: (*path).to_owned(),
            version: 1,
            text: text.clone(),
        })
        .expect("open");
    }
    assert_equals_full_reindex(&host, root, "opening");
    let mut random = Random(0x2545_F491_4F6C_DD1D);
    for step in 0..240 {
        let which = random.below(OPEN_FILES.len());
        let text = &mut texts[which];
        let start = boundary(text, random.below(text.len() + 1));
        let edit = if random.below(3) == 0 && start < text.len() {
            let end = boundary(text, (start + 1 + random.below(12)).min(text.len()));
            let end = if end <= start {
                text.len()
                    .min(start + text[start..].chars().next().map_or(0, char::len_utf8))
            } else {
                end
            };
            TextEdit {
                range: start..end,
                new_text: String::new(),
            }
        } else {
            let insert = INSERTIONS[random.below(INSERTIONS.len())];
            TextEdit {
                range: start..start,
                new_text: insert.to_owned(),
            }
        };
        text.replace_range(edit.range.clone(), &edit.new_text);
        let version = host.document_version(OPEN_FILES[which]).expect("open") + 1;
        host.apply_change(Change::Edit {
            path: OPEN_FILES[which].to_owned(),
            version,
            edits: vec![edit.clone()],
        })
        .expect("edit applies");
        if step % 6 == 5 {
            for (path, text) in OPEN_FILES.iter().zip(&texts) {
                std::fs::write(root.join(path), text).expect("write");
            }
            assert_equals_full_reindex(
                &host,
                root,
                &format!("edit {step} ({edit:?} in {})", OPEN_FILES[which]),
            );
        }
    }
}

#[test]
fn several_edits_in_one_change_apply_in_order() {
    let repo = common::fixture_copy("polyglot");
    let root = repo.path();
    let mut host = common::load(root);
    let path = "src/lib.rs";
    let text = std::fs::read_to_string(root.join(path)).expect("read");
    host.apply_change(Change::Open {
        path: path.into(),
        version: 1,
        text: text.clone(),
    })
    .expect("open");
    let edits = vec![
        TextEdit {
            range: 0..0,
            new_text: "pub fn first() {}\n".into(),
        },
        TextEdit {
            range: 0..0,
            new_text: "pub fn zeroth() {}\n".into(),
        },
    ];
    host.apply_change(Change::Edit {
        path: path.into(),
        version: 2,
        edits,
    })
    .expect("edits");
    std::fs::write(
        root.join(path),
        format!("pub fn zeroth() {{}}\npub fn first() {{}}\n{text}"),
    )
    .expect("write");
    assert_equals_full_reindex(&host, root, "two edits in one change");
}

#[test]
fn file_events_equal_a_full_reindex() {
    let repo = common::fixture_copy("polyglot");
    let root = repo.path();
    let mut host = common::load(root);
    let write = |path: &str, text: &str| {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(file, text).expect("write");
    };
    write(
        "src/extra.rs",
        "pub fn extra() -> Circle { Circle::new(2.0) }\n",
    );
    host.apply_change(Change::Write {
        path: "src/extra.rs".into(),
    })
    .expect("create");
    assert_equals_full_reindex(&host, root, "create");

    write("src/geometry.rs", "pub struct Replaced;\n");
    host.apply_change(Change::Write {
        path: "src/geometry.rs".into(),
    })
    .expect("modify");
    assert_equals_full_reindex(&host, root, "modify");

    std::fs::rename(root.join("src/extra.rs"), root.join("py/extra_renamed.rs")).expect("rename");
    host.apply_change(Change::Rename {
        from: "src/extra.rs".into(),
        to: "py/extra_renamed.rs".into(),
    })
    .expect("rename");
    assert_equals_full_reindex(&host, root, "rename");

    std::fs::remove_file(root.join("py/app.py")).expect("delete");
    host.apply_change(Change::Delete {
        path: "py/app.py".into(),
    })
    .expect("delete");
    assert_equals_full_reindex(&host, root, "delete");

    for (path, text) in [
        ("build/ignored.rs", "pub fn ignored() {}\n"),
        ("notes/private.txt", "still private\n"),
        ("keys/server.pem", "-----BEGIN FIXTURE-----\n"),
        (".hidden/x.rs", "fn hidden() {}\n"),
        ("data/blob.bin", "a\0b"),
    ] {
        write(path, text);
        host.apply_change(Change::Write { path: path.into() })
            .expect("write");
        assert_equals_full_reindex(&host, root, &format!("writing {path}"));
    }
    // A document overrides the disk until it is closed.
    host.apply_change(Change::Open {
        path: "go/main.go".into(),
        version: 1,
        text: "package store\n".into(),
    })
    .expect("open");
    write("go/main.go", "package store\nfunc OnDisk() {}\n");
    host.apply_change(Change::Write {
        path: "go/main.go".into(),
    })
    .expect("write");
    let snapshot = host.snapshot();
    assert_eq!(
        &*snapshot.file("go/main.go").expect("indexed").text,
        "package store\n"
    );
    host.apply_change(Change::Close {
        path: "go/main.go".into(),
    })
    .expect("close");
    assert_equals_full_reindex(&host, root, "closing a document");
}

#[test]
fn bad_changes_are_rejected_and_change_nothing() {
    let repo = common::fixture_copy("polyglot");
    let mut host = common::load(repo.path());
    let before = host.snapshot().state_dump();
    let edit = |version, range: std::ops::Range<usize>| Change::Edit {
        path: "src/lib.rs".into(),
        version,
        edits: vec![TextEdit {
            range,
            new_text: "x".into(),
        }],
    };
    assert!(matches!(
        host.apply_change(edit(2, 0..0)),
        Err(ChangeError::NotOpen { .. })
    ));
    host.apply_change(Change::Open {
        path: "src/lib.rs".into(),
        version: 5,
        text: "fn a() {}\n".into(),
    })
    .expect("open");
    let opened = host.snapshot().state_dump();
    assert!(matches!(
        host.apply_change(edit(5, 0..0)),
        Err(ChangeError::StaleVersion {
            have: 5,
            got: 5,
            ..
        })
    ));
    assert!(matches!(
        host.apply_change(edit(6, 3..100)),
        Err(ChangeError::InvalidEdit { .. })
    ));
    let two = Change::Edit {
        path: "src/lib.rs".into(),
        version: 7,
        edits: vec![
            TextEdit {
                range: 0..0,
                new_text: "// ok\n".into(),
            },
            TextEdit {
                range: 500..501,
                new_text: String::new(),
            },
        ],
    };
    assert!(host.apply_change(two).is_err());
    assert_eq!(
        host.snapshot().state_dump(),
        opened,
        "failed changes leave the index untouched"
    );
    for bad in ["../outside.rs", "/etc/passwd", "", "a//b.rs"] {
        let result = host.apply_change(Change::Write { path: bad.into() });
        assert!(
            matches!(result, Err(ChangeError::BadPath { .. })),
            "{bad:?}"
        );
    }
    assert_ne!(before, opened);
}

#[test]
fn long_documents_stay_equal_after_many_edits() {
    // Long enough for dozens of windows, with irregular blank lines, so window re-sync is exercised.
    let repo = common::fixture_copy("polyglot");
    let root = repo.path();
    let mut host = common::load(root);
    let mut text = String::new();
    for i in 0..60 {
        text.push_str(&format!(
            "/// Item {i}.\npub fn item_{i}(x: u32) -> u32 {{\n"
        ));
        for j in 0..(i % 7) {
            text.push_str(&format!("    let v{j} = helper_{j}(x);\n"));
        }
        text.push_str("    x\n}\n");
        if i % 3 != 0 {
            text.push('\n');
        }
    }
    let path = "src/long.rs";
    std::fs::write(root.join(path), &text).expect("write");
    host.apply_change(Change::Open {
        path: path.into(),
        version: 1,
        text: text.clone(),
    })
    .expect("open");
    let mut random = Random(0x9E37_79B9_7F4A_7C15);
    for step in 0..150 {
        let start = boundary(&text, random.below(text.len() + 1));
        let edit = match random.below(4) {
            0 if start < text.len() => {
                let end =
                    boundary(&text, (start + 1 + random.below(40)).min(text.len())).max(start);
                TextEdit {
                    range: start..end,
                    new_text: String::new(),
                }
            }
            1 => TextEdit {
                range: start..start,
                new_text: "\n\n".into(),
            },
            2 => TextEdit {
                range: start..start,
                new_text: "fn extra() {}\n\n// more\n".into(),
            },
            _ => TextEdit {
                range: start..start,
                new_text: INSERTIONS[random.below(INSERTIONS.len())].into(),
            },
        };
        text.replace_range(edit.range.clone(), &edit.new_text);
        host.apply_change(Change::Edit {
            path: path.into(),
            version: step + 2,
            edits: vec![edit.clone()],
        })
        .expect("edit");
        if step % 10 == 9 {
            std::fs::write(root.join(path), &text).expect("write");
            assert_equals_full_reindex(&host, root, &format!("long edit {step} ({edit:?})"));
        }
    }
}

/// A body of `n` small members, large enough (> 4 KB) for edits inside it to re-tag only the touched members.
fn big_container(language: &str, n: usize) -> String {
    let mut text = String::new();
    match language {
        "rust" => {
            text.push_str("use std::fmt;\n\npub struct Big;\n\nimpl Big {\n");
            for i in 0..n {
                text.push_str(&format!(
                    "    /// Member {i}.\n    pub fn member_{i}(&self, x: u32) -> u32 {{\n        helper_{i}(x) + {i}\n    }}\n\n"
                ));
            }
            text.push_str("}\n\npub fn after_impl() -> Big { Big }\n");
        }
        "python" => {
            text.push_str("import os\n\nclass Big:\n");
            for i in 0..n {
                text.push_str(&format!(
                    "    def member_{i}(self, x):\n        return helper_{i}(x) + {i}\n\n"
                ));
            }
            text.push_str("def after_class():\n    return Big()\n");
        }
        _ => {
            text.push_str("import { helper } from \"./format\";\n\nexport class Big {\n");
            for i in 0..n {
                text.push_str(&format!(
                    "  member{i}(x: number): number {{\n    return helper(x) + {i};\n  }}\n\n"
                ));
            }
            text.push_str("}\n\nexport function afterClass(): Big { return new Big(); }\n");
        }
    }
    text
}

#[test]
fn edits_inside_large_bodies_equal_a_full_reindex() {
    let repo = common::fixture_copy("polyglot");
    let root = repo.path();
    let mut host = common::load(root);
    let files = [
        ("src/big.rs", "rust"),
        ("py/big.py", "python"),
        ("web/big.ts", "typescript"),
    ];
    let mut texts = Vec::new();
    for (path, language) in files {
        let text = big_container(language, 160);
        assert!(text.len() > 6000);
        std::fs::write(root.join(path), &text).expect("write");
        host.apply_change(Change::Open {
            path: path.into(),
            version: 1,
            text: text.clone(),
        })
        .expect("open");
        texts.push(text);
    }
    let mut random = Random(0xD1B5_4A32_D192_ED03);
    for step in 0..240 {
        let which = random.below(files.len());
        let text = &mut texts[which];
        // Mostly inside the body, sometimes at the edges (the header, the item after the body).
        let start = boundary(text, random.below(text.len() + 1));
        let edit = match random.below(5) {
            0 if start < text.len() => {
                let end = boundary(text, (start + 1 + random.below(30)).min(text.len())).max(start);
                TextEdit {
                    range: start..end,
                    new_text: String::new(),
                }
            }
            1 => TextEdit {
                range: start..start,
                new_text: "\n".into(),
            },
            2 => TextEdit {
                range: start..start,
                new_text: "x".into(),
            },
            _ => TextEdit {
                range: start..start,
                new_text: INSERTIONS[random.below(INSERTIONS.len())].into(),
            },
        };
        text.replace_range(edit.range.clone(), &edit.new_text);
        let path = files[which].0;
        let version = host.document_version(path).expect("open") + 1;
        host.apply_change(Change::Edit {
            path: path.into(),
            version,
            edits: vec![edit.clone()],
        })
        .expect("edit");
        if step % 4 == 3 {
            for ((path, _), text) in files.iter().zip(&texts) {
                std::fs::write(root.join(path), text).expect("write");
            }
            assert_equals_full_reindex(
                &host,
                root,
                &format!("big edit {step} ({edit:?} in {path})"),
            );
        }
    }
}
