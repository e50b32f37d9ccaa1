//! Settings → a ready [`Generator`]: the one function both front ends call to get a model.
//!
//! `backend = "local"`: `model` spec → [`Store`] (resolve and verify; download on first use, reporting through
//! a [`Progress`]) → `LoadedModel::load` with the configured dtype → [`LocalGenerator`].
//! `backend = "openai"`: `openai.*` → [`OpenAiGenerator`], which asks the server's `/v1/models` once here, so a
//! wrong endpoint, model name or API key is reported when the model is loaded rather than on the first request.

use std::path::PathBuf;
use std::sync::Arc;

use qwen_engine::{LoadError, LoadOptions, LoadedModel, Threads, WeightDType};

use super::{GenError, Generator, LocalGenerator, LocalOptions, OpenAiConfig, OpenAiGenerator};
use crate::store::{ModelSpec, Progress, PullSource, Store, StoreError};
use crate::tasks::settings::{Backend, DTypeSetting, Settings};

/// A generator and how it came to be, for status lines and messages.
pub struct LoadedGenerator {
    /// The generator.
    pub generator: Arc<dyn Generator>,
    /// The model spec as resolved (`default`, a path, a Hugging Face id…); `None` for a remote backend.
    pub spec: Option<ModelSpec>,
    /// What the engine loaded; for a remote backend, the endpoint URL.
    pub path: PathBuf,
    /// The model, described for a person.
    pub description: String,
    /// Whether the model was downloaded now (first use).
    pub downloaded: bool,
}

impl std::fmt::Debug for LoadedGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedGenerator")
            .field("spec", &self.spec)
            .field("path", &self.path)
            .field("downloaded", &self.downloaded)
            .finish_non_exhaustive()
    }
}

/// Why no generator could be made. Each message says what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    /// The model could not be found, downloaded or verified.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine could not load the model files.
    #[error("cannot load model {path}: {source}")]
    Load {
        /// What was loaded.
        path: PathBuf,
        /// Why it failed (boxed: engine errors are large).
        source: Box<LoadError>,
    },
    /// The remote server could not be used (unreachable, wrong model name, refused key, bad endpoint…).
    #[error(transparent)]
    Remote(#[from] GenError),
}

/// Builds the generator `settings` describe: finds (or downloads, on first use) the model through `store`,
/// reporting downloads and verification to `progress`, then loads it. Blocking; takes seconds to minutes.
pub fn load_generator(
    settings: &Settings,
    store: &Store,
    progress: &dyn Progress,
) -> Result<LoadedGenerator, LoaderError> {
    if settings.backend == Backend::OpenAi {
        return load_remote(settings);
    }
    let spec = ModelSpec::parse(&settings.model)?;
    let description = store.describe(&spec);
    let pulled = {
        let _span = tracing::info_span!("model_pull", model = %description).entered();
        store.pull(&spec, progress)?
    };
    let path = pulled.model.path.clone();
    let options = LoadOptions {
        dtype: weight_dtype(settings.dtype),
        threads: Threads {
            prefill: settings.threads.prefill,
            decode: settings.threads.decode,
        },
        ..LoadOptions::default()
    };
    let model = {
        let _span = tracing::info_span!("model_load", path = %path.display()).entered();
        LoadedModel::load(&path, &options).map_err(|source| LoaderError::Load {
            path: path.clone(),
            source: Box::new(source),
        })?
    };
    let (prefill, decode) = model.model.kernel_info();
    tracing::info!(%prefill, %decode, "quantized kernels");
    Ok(LoadedGenerator {
        generator: Arc::new(LocalGenerator::new(model, LocalOptions::default())),
        spec: Some(spec),
        path,
        description,
        downloaded: pulled.source != PullSource::AlreadyPresent,
    })
}

/// The remote backend: configured from `openai.*`, its model discovered now. A server that is down, starting
/// or overloaded is not a configuration error: the generator is returned anyway (with a warning) and asks
/// again on the first request, so the editor recovers by itself when the server comes up. A wrong model name,
/// a refused key or an endpoint that is not an OpenAI-compatible server fail here.
fn load_remote(settings: &Settings) -> Result<LoadedGenerator, LoaderError> {
    let generator = OpenAiGenerator::new(OpenAiConfig::from_settings(&settings.openai))?;
    let discovered = {
        let _span =
            tracing::info_span!("remote_discovery", endpoint = %generator.endpoint()).entered();
        generator.discover()
    };
    let description = match discovered {
        Ok(model) => format!("{} at {}", model.id, generator.endpoint()),
        Err(e) if e.is_transient() => {
            tracing::warn!("{e}; the first request will try again");
            format!("{} (not reachable yet)", generator.info().model)
        }
        Err(e) => return Err(e.into()),
    };
    Ok(LoadedGenerator {
        path: PathBuf::from(generator.endpoint()),
        generator: Arc::new(generator),
        spec: None,
        description,
        downloaded: false,
    })
}

/// `auto` is f32 today: exact, and what the fixture and GGUF paths expect for non-quantized tensors.
fn weight_dtype(setting: DTypeSetting) -> WeightDType {
    match setting {
        DTypeSetting::Auto | DTypeSetting::F32 => WeightDType::F32,
        DTypeSetting::F16 => WeightDType::F16,
        DTypeSetting::Bf16 => WeightDType::Bf16,
    }
}
