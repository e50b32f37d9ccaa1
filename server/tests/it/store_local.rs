//! Models that need no download: Ollama references and blobs, local GGUF files and safetensors directories; and
//! the `qwen-ls model` commands on them.

use std::fs;
use std::path::Path;
use std::process::Command;

use qwen_ls::store::{
    FileState, ListSource, ListState, ModelFormat, ModelSpec, NoProgress, Store, StoreError,
    VerifyCache,
};
use sha2::{Digest, Sha256};

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn store(root: &Path) -> Store {
    Store::builder()
        .hf_cache(root.join("hub"))
        .ollama_dir(root.join("ollama"))
        .verify_cache(VerifyCache::new(root.join("verified")))
        .hub(false)
        .build()
}

/// Installs `content` as Ollama model `name:tag` (manifest + blob), returns the blob path.
fn install_ollama(root: &Path, name: &str, tag: &str, content: &[u8]) -> std::path::PathBuf {
    let sha = sha256(content);
    let blobs = root.join("ollama").join("blobs");
    fs::create_dir_all(&blobs).expect("blobs");
    let blob = blobs.join(format!("sha256-{sha}"));
    fs::write(&blob, content).expect("blob");
    let manifest = root
        .join("ollama/manifests/registry.ollama.ai/library")
        .join(name)
        .join(tag);
    fs::create_dir_all(manifest.parent().expect("parent")).expect("manifests");
    fs::write(
        &manifest,
        serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": format!("sha256:{}", "e".repeat(64)), "size": 10},
            "layers": [
                {"mediaType": "application/vnd.ollama.image.model", "digest": format!("sha256:{sha}"), "size": content.len()},
                {"mediaType": "application/vnd.ollama.image.template", "digest": format!("sha256:{}", "f".repeat(64)), "size": 5}
            ]
        })
        .to_string(),
    )
    .expect("manifest");
    blob
}

#[test]
fn ollama_models_resolve_through_their_manifest_and_are_verified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let content = b"GGUF\x03\x00\x00\x00 an ollama model".to_vec();
    let blob = install_ollama(dir.path(), "qwen2.5-coder", "1.5b", &content);
    let store = store(dir.path());

    let spec = ModelSpec::parse("ollama:qwen2.5-coder:1.5b").expect("spec");
    let model = store.open(&spec, &NoProgress).expect("resolves");
    assert_eq!(
        (model.path.as_path(), model.format),
        (blob.as_path(), ModelFormat::Gguf)
    );
    let pulled = store
        .pull(&spec, &NoProgress)
        .expect("pull of an installed model just verifies");
    assert_eq!(pulled.model.path, blob);

    // The blob path works directly too.
    let direct = ModelSpec::parse(blob.to_str().expect("utf-8")).expect("spec");
    assert!(matches!(direct, ModelSpec::OllamaBlob(_)));
    assert_eq!(
        store.open(&direct, &NoProgress).expect("direct blob").path,
        blob
    );

    let listed = store.list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].spec, "ollama:qwen2.5-coder:1.5b");
    assert_eq!(
        (listed[0].source, listed[0].state),
        (ListSource::Ollama, ListState::Verified)
    );

    let missing = ModelSpec::parse("ollama:qwen3-coder:30b").expect("spec");
    let err = store.resolve(&missing).expect_err("not installed");
    assert!(matches!(err, StoreError::OllamaMissing { .. }));
    assert!(
        err.to_string().contains("ollama pull qwen3-coder:30b"),
        "{err}"
    );

    let mut bad = content.clone();
    bad[10] ^= 1;
    fs::write(&blob, &bad).expect("corrupt");
    let err = store.open(&spec, &NoProgress).expect_err("corrupt blob");
    assert!(matches!(err, StoreError::HashMismatch { .. }), "{err}");
}

#[test]
fn local_gguf_files_and_safetensors_directories_need_no_download() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path());
    let gguf = dir.path().join("mine.gguf");
    fs::write(&gguf, b"GGUF\x03\x00\x00\x00 my own weights").expect("write");
    let model = store
        .pull(
            &ModelSpec::parse(gguf.to_str().expect("utf-8")).expect("spec"),
            &NoProgress,
        )
        .expect("local file");
    assert_eq!(model.model.path, gguf);
    let checks = store.check(&model.model, true, &NoProgress).expect("check");
    assert_eq!(
        checks[0].state,
        FileState::Unpinned,
        "a user's own file has no pinned hash"
    );

    let not_gguf = dir.path().join("notes.gguf");
    fs::write(&not_gguf, b"hello").expect("write");
    let err = store
        .resolve(&ModelSpec::parse(not_gguf.to_str().expect("utf-8")).expect("spec"))
        .expect_err("not a GGUF");
    assert!(matches!(err, StoreError::NotAModel { .. }), "{err}");

    let st = dir.path().join("qwen-st");
    fs::create_dir_all(&st).expect("dir");
    let spec = ModelSpec::parse(st.to_str().expect("utf-8")).expect("spec");
    let err = store.resolve(&spec).expect_err("empty dir");
    assert!(err.to_string().contains("config.json"), "{err}");
    fs::write(st.join("config.json"), "{}").expect("write");
    fs::write(st.join("tokenizer.json"), "{}").expect("write");
    fs::write(
        st.join("model.safetensors.index.json"),
        r#"{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#,
    )
    .expect("write");
    fs::write(st.join("model-00001-of-00002.safetensors"), "x").expect("write");
    let err = store.resolve(&spec).expect_err("missing shard");
    assert!(
        err.to_string().contains("model-00002-of-00002.safetensors"),
        "{err}"
    );
    fs::write(st.join("model-00002-of-00002.safetensors"), "y").expect("write");
    let model = store.open(&spec, &NoProgress).expect("complete directory");
    assert_eq!(
        (model.path.as_path(), model.format),
        (st.as_path(), ModelFormat::Safetensors)
    );
    assert_eq!(model.files.len(), 5);
}

fn qwen_ls(root: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_qwen-ls"))
        .args(args)
        .env("HF_HOME", root.join("hf"))
        .env_remove("HF_HUB_CACHE")
        .env_remove("HUGGINGFACE_HUB_CACHE")
        .env("OLLAMA_MODELS", root.join("ollama"))
        .env("XDG_CACHE_HOME", root.join("cache"))
        .env("HF_HUB_OFFLINE", "1")
        .env("QWEN_LS_PYPI_URL", "http://127.0.0.1:9/")
        .output()
        .expect("run qwen-ls")
}

#[test]
fn model_commands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = qwen_ls(dir.path(), &["model", "path"]);
    assert_eq!(out.status.code(), Some(3), "missing default model exits 3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`qwen-ls model pull`"), "{stderr}");
    assert!(
        stderr.contains("Qwen3-Coder-30B-A3B") && stderr.contains("README"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    let out = qwen_ls(dir.path(), &["model", "list"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("No models"));

    let blob = install_ollama(
        dir.path(),
        "qwen2.5-coder",
        "1.5b",
        b"GGUF\x03\x00\x00\x00 ollama weights",
    );
    let out = qwen_ls(dir.path(), &["model", "path", "ollama:qwen2.5-coder:1.5b"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        blob.to_str().expect("utf-8")
    );

    let out = qwen_ls(
        dir.path(),
        &["model", "verify", "ollama:qwen2.5-coder:1.5b"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok sha256:"));

    let out = qwen_ls(dir.path(), &["model", "list"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ollama:qwen2.5-coder:1.5b") && stdout.contains("verified"),
        "{stdout}"
    );

    let out = qwen_ls(dir.path(), &["model", "pull", "not a model"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid model"));
}
