//! Readers use snapshots on other threads while the single writer applies changes; a snapshot never sees a
//! later change.

use crate::common;

use qwen_ls::context::{pack, ContextRequest, PackConfig, TokenCountCache};
use qwen_ls::index::{Change, IndexHost, IndexSnapshot, TextEdit};

fn assert_send_sync<T: Send + Sync>() {}
fn assert_send<T: Send>() {}

#[test]
fn snapshots_are_shareable_and_the_host_can_move_between_threads() {
    assert_send_sync::<IndexSnapshot>();
    assert_send::<IndexHost>();
}

#[test]
fn snapshots_stay_consistent_while_the_writer_edits() {
    let repo = common::fixture_copy("polyglot");
    let mut host = common::load(repo.path());
    let path = "src/geometry.rs";
    let text = std::fs::read_to_string(repo.path().join(path)).expect("read");
    host.apply_change(Change::Open {
        path: path.into(),
        version: 1,
        text,
    })
    .expect("open");
    let before = host.snapshot();
    let frozen = before.state_dump();
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let snapshot = before.clone();
                scope.spawn(move || {
                    let request = ContextRequest {
                        path: "src/lib.rs".into(),
                        cursor_line: 10,
                        cursor_column: 0,
                        selection: None,
                        instruction: None,
                        budget: 500,
                    };
                    let cache = TokenCountCache::new();
                    let first = pack(
                        &snapshot,
                        &request,
                        &PackConfig::default(),
                        &common::WordCounter,
                        &cache,
                    );
                    for _ in 0..20 {
                        let again = pack(
                            &snapshot,
                            &request,
                            &PackConfig::default(),
                            &common::WordCounter,
                            &cache,
                        );
                        assert_eq!(again, first, "a snapshot never changes under a reader");
                    }
                })
            })
            .collect();
        for version in 2..40 {
            host.apply_change(Change::Edit {
                path: path.into(),
                version,
                edits: vec![TextEdit {
                    range: 0..0,
                    new_text: format!("fn f{version}() {{}}\n"),
                }],
            })
            .expect("edit");
        }
        for reader in readers {
            reader.join().expect("reader finished");
        }
    });
    assert_eq!(before.state_dump(), frozen);
    let after = host.snapshot();
    assert!(after.version() > before.version());
    assert!(after.definers("f39").contains(&path.into()));
    assert!(before.definers("f39").is_empty());
}
