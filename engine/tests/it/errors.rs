//! Broken model directories give errors that name the tensor, file, shape or config field — never a panic.
//! Each case copies a good fixture into a temp dir and breaks one thing.

use std::path::Path;

use crate::common::*;
use qwen_engine::{LoadOptions, LoadedModel};
use safetensors::tensor::TensorView;
use safetensors::SafeTensors;

const GOOD: &str = "qwen3-moe-tiny";

fn copy_fixture(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(model_dir(name)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, tmp.path().join(path.file_name().unwrap())).unwrap();
    }
    tmp
}

fn load_err(dir: &Path) -> String {
    let e = load_err_inner(dir);
    eprintln!("{e}");
    e
}

fn load_err_inner(dir: &Path) -> String {
    match LoadedModel::load(dir, &LoadOptions::default()) {
        Ok(_) => panic!("{} loaded, expected an error", dir.display()),
        Err(e) => e.to_string(),
    }
}

/// Rewrites `file` keeping every tensor except those `edit` maps to `None`.
fn rewrite(file: &Path, edit: impl Fn(&str, &[usize]) -> Option<Vec<usize>>) {
    let bytes = std::fs::read(file).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut kept = Vec::new();
    for (name, view) in st.tensors() {
        if let Some(shape) = edit(&name, view.shape()) {
            let n: usize = shape.iter().product::<usize>() * view.dtype().bitsize() / 8;
            kept.push((name, view.dtype(), shape, view.data()[..n].to_vec()));
        }
    }
    let views = kept
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()));
    safetensors::serialize_to_file(views, None, file).unwrap();
}

fn edit_config(dir: &Path, edit: impl Fn(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(&path, json.to_string()).unwrap();
}

#[test]
fn good_fixture_loads() {
    let tmp = copy_fixture(GOOD);
    LoadedModel::load(tmp.path(), &LoadOptions::default()).unwrap();
}

#[test]
fn missing_tensor_names_tensor_and_file() {
    let tmp = copy_fixture(GOOD);
    let gone = "model.layers.2.mlp.experts.5.up_proj.weight";
    rewrite(&tmp.path().join("model.safetensors"), |n, s| {
        (n != gone).then(|| s.to_vec())
    });
    let e = load_err(tmp.path());
    assert!(
        e.contains(gone) && e.contains("model.safetensors") && e.contains("[32, 64]"),
        "{e}"
    );
}

#[test]
fn wrong_shape_names_tensor_file_and_both_shapes() {
    let tmp = copy_fixture(GOOD);
    let name = "model.layers.0.self_attn.k_proj.weight";
    rewrite(&tmp.path().join("model.safetensors"), |n, s| {
        Some(if n == name { vec![32, 64] } else { s.to_vec() })
    });
    let e = load_err(tmp.path());
    assert!(e.contains(name) && e.contains("model.safetensors"), "{e}");
    assert!(e.contains("[64, 64]") && e.contains("[32, 64]"), "{e}");
}

#[test]
fn truncated_safetensors_names_the_file() {
    let tmp = copy_fixture(GOOD);
    let file = tmp.path().join("model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_err(tmp.path());
    assert!(
        e.contains("model.safetensors") && e.contains("truncated"),
        "{e}"
    );
    // A file cut inside its header is also named.
    std::fs::write(&file, &bytes[..20]).unwrap();
    let e = load_err(tmp.path());
    assert!(e.contains("model.safetensors"), "{e}");
}

#[test]
fn missing_shard_names_the_shard() {
    let tmp = copy_fixture("qwen3-dense-tiny");
    let shard = "model-00002-of-00003.safetensors";
    std::fs::remove_file(tmp.path().join(shard)).unwrap();
    let e = load_err(tmp.path());
    assert!(e.contains(shard), "{e}");
}

#[test]
fn missing_config_names_config_json() {
    let tmp = copy_fixture(GOOD);
    std::fs::remove_file(tmp.path().join("config.json")).unwrap();
    let e = load_err(tmp.path());
    assert!(e.contains("config.json"), "{e}");
}

#[test]
fn unknown_model_type_names_the_field() {
    let tmp = copy_fixture(GOOD);
    edit_config(tmp.path(), |c| c["model_type"] = "llama".into());
    let e = load_err(tmp.path());
    assert!(
        e.contains("model_type") && e.contains("llama") && e.contains("config.json"),
        "{e}"
    );
}

#[test]
fn bad_rope_scaling_type_names_the_field() {
    let tmp = copy_fixture("qwen3-moe-yarn-tiny");
    edit_config(tmp.path(), |c| {
        c["rope_scaling"]["rope_type"] = "longrope".into();
        c["rope_scaling"]["type"] = "longrope".into();
    });
    let e = load_err(tmp.path());
    assert!(
        e.contains("rope_scaling.rope_type") && e.contains("longrope"),
        "{e}"
    );
}

#[test]
fn missing_tokenizer_and_bad_paths_are_named() {
    let tmp = copy_fixture(GOOD);
    std::fs::remove_file(tmp.path().join("tokenizer.json")).unwrap();
    assert!(load_err(tmp.path()).contains("tokenizer.json"));
    let e = load_err(&tmp.path().join("nope"));
    assert!(e.contains("nope") && e.contains("does not exist"), "{e}");
    let gguf = tmp.path().join("model.gguf");
    std::fs::write(&gguf, b"GGUF").unwrap();
    assert!(load_err(&gguf).contains("GGUF"));
}
