//! Files a user already has in the Hugging Face cache (found through `HF_HOME`, as `huggingface_hub` lays them
//! out) are resolved and verified without any download. One test per binary: it sets process environment.

use std::fs;
use std::path::Path;

use qwen_ls::store::{
    ExpectedHash, FileState, ModelFormat, ModelSpec, NoProgress, Store, StoreError, VerifyCache,
};
use sha1::Sha1;
use sha2::{Digest, Sha256};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Stores `content` as a blob named by its hash (LFS: sha256, else git sha1) and links it from the snapshot.
fn put(repo_dir: &Path, commit: &str, file: &str, content: &[u8], lfs: bool) -> String {
    let name = if lfs {
        hex(&Sha256::digest(content))
    } else {
        let mut h = Sha1::new();
        h.update(format!("blob {}\0", content.len()).as_bytes());
        h.update(content);
        hex(&h.finalize())
    };
    fs::create_dir_all(repo_dir.join("blobs")).expect("blobs");
    fs::write(repo_dir.join("blobs").join(&name), content).expect("blob");
    let link = repo_dir.join("snapshots").join(commit).join(file);
    fs::create_dir_all(link.parent().expect("parent")).expect("snapshot dir");
    std::os::unix::fs::symlink(format!("../../blobs/{name}"), &link).expect("symlink");
    name
}

#[test]
fn existing_hf_cache_files_are_found_through_hf_home() {
    let home = tempfile::tempdir().expect("tempdir");
    // SAFETY-free in edition 2021; this binary has a single test, so nothing reads the environment concurrently.
    std::env::set_var("HF_HOME", home.path());
    std::env::remove_var("HF_HUB_CACHE");
    std::env::remove_var("HUGGINGFACE_HUB_CACHE");
    std::env::set_var("HF_HUB_OFFLINE", "1");
    let hub = home.path().join("hub");
    let commit = "0123456789abcdef0123456789abcdef01234567";

    // A GGUF repository with one quantisation, as `huggingface-cli download` leaves it.
    let gguf_repo = hub.join("models--someorg--Tiny-Coder-GGUF");
    let gguf = b"GGUF\x03\x00\x00\x00 tiny weights".to_vec();
    let gguf_blob = put(&gguf_repo, commit, "tiny-coder-q4_k_m.gguf", &gguf, true);
    fs::create_dir_all(gguf_repo.join("refs")).expect("refs");
    fs::write(gguf_repo.join("refs").join("main"), commit).expect("ref");

    // A safetensors repository: small files are git blobs, weights are LFS.
    let st_repo = hub.join("models--someorg--Tiny-Coder");
    put(
        &st_repo,
        commit,
        "config.json",
        br#"{"model_type":"qwen2"}"#,
        false,
    );
    put(
        &st_repo,
        commit,
        "tokenizer.json",
        br#"{"model":{}}"#,
        false,
    );
    put(
        &st_repo,
        commit,
        "model.safetensors",
        b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ",
        true,
    );

    let store = Store::builder()
        .verify_cache(VerifyCache::new(home.path().join("verified")))
        .build();
    assert_eq!(store.hf_cache().root(), hub.as_path());
    assert!(!store.hub_enabled());

    let spec = ModelSpec::parse("someorg/Tiny-Coder-GGUF:tiny-coder-q4_k_m.gguf").expect("spec");
    let model = store
        .open(&spec, &NoProgress)
        .expect("found without download");
    assert_eq!(model.format, ModelFormat::Gguf);
    assert_eq!(
        model.path,
        gguf_repo
            .join("snapshots")
            .join(commit)
            .join("tiny-coder-q4_k_m.gguf")
    );
    assert_eq!(
        model.files[0].expected,
        Some(ExpectedHash::Sha256(gguf_blob.clone()))
    );
    // Same file by explicit revision; a second check is served by the verification cache.
    let by_rev = ModelSpec::parse(&format!(
        "someorg/Tiny-Coder-GGUF:tiny-coder-q4_k_m.gguf@{commit}"
    ))
    .expect("spec");
    let checks = store
        .check(
            &store.resolve(&by_rev).expect("by revision"),
            false,
            &NoProgress,
        )
        .expect("check");
    assert_eq!(checks[0].state, FileState::Verified { cached: true });

    let st = store
        .open(
            &ModelSpec::parse("someorg/Tiny-Coder").expect("spec"),
            &NoProgress,
        )
        .expect("safetensors snapshot");
    assert_eq!(st.format, ModelFormat::Safetensors);
    assert_eq!(st.path, st_repo.join("snapshots").join(commit));
    let (_, checks) = store
        .verify(
            &ModelSpec::parse("someorg/Tiny-Coder").expect("spec"),
            &NoProgress,
        )
        .expect("every file verified, git blobs included");
    assert_eq!(checks.len(), 3);
    assert!(checks
        .iter()
        .all(|c| c.state == FileState::Verified { cached: false }));
    assert!(checks
        .iter()
        .any(|c| matches!(c.expected, Some(ExpectedHash::GitSha1(_)))));

    // The default model is not in this cache: a clear NotFound that says how to get it.
    let err = store
        .open(&ModelSpec::Default, &NoProgress)
        .expect_err("not downloaded");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("`qwen-ls model pull`"), "{err}");

    // A blob modified behind our back is refused.
    fs::write(
        gguf_repo.join("blobs").join(&gguf_blob),
        b"GGUF\x03\x00\x00\x00 evil weights",
    )
    .expect("tamper");
    let err = store.open(&spec, &NoProgress).expect_err("tampered blob");
    assert!(matches!(err, StoreError::HashMismatch { .. }), "{err}");

    // HF_HUB_CACHE wins over HF_HOME.
    std::env::set_var("HF_HUB_CACHE", home.path().join("elsewhere"));
    assert_eq!(
        Store::from_env().hf_cache().root(),
        home.path().join("elsewhere")
    );
}
