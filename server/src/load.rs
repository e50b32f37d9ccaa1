//! Settings → a ready [`Generator`]: the one function both front ends call to get a model.
//!
//! `backend = "local"`: `model` spec → [`Store`] (resolve and verify; download on first use, reporting through
//! a [`Progress`]) → `LoadedModel::load` with the configured dtype → [`LocalGenerator`].
//! `backend = "openai"`: `openai.*` → [`OpenAiGenerator`], which asks the server's `/v1/models` once here, so a
//! wrong endpoint, model name or API key is reported when the model is loaded rather than on the first request.
//! `completion.model` adds a local model for completions ([`SplitGenerator`]); `draftModel` a draft model for
//! speculative decoding when a `speculative` setting asks for one.

use std::path::PathBuf;
use std::sync::Arc;

use qwen_engine::{LoadError, LoadOptions, LoadedModel, Threads, WeightDType};

use crate::store::{ModelSpec, Progress, PullSource, Store, StoreError};
use crate::tasks::settings::{Backend, DTypeSetting, Settings};
use qwen_generator::{
    GenError, Generator, LocalGenerator, LocalOptions, OpenAiConfig, OpenAiGenerator,
    SplitGenerator,
};

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
    /// The draft model cannot draft for the model.
    #[error("cannot use {path} as the draft model: {reason}")]
    Draft {
        /// The draft model's file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Builds the generator `settings` describe: finds (or downloads, on first use) the model through `store`,
/// reporting downloads and verification to `progress`, then loads it. Blocking; takes seconds to minutes.
///
/// With `completion.model` set, completions get a local model of their own ([`SplitGenerator`]); a draft model
/// is loaded when `speculative` or `completion.speculative` is `draft` (the same file is loaded once if it is
/// also the completion model).
pub fn load_generator(
    settings: &Settings,
    store: &Store,
    progress: &dyn Progress,
) -> Result<LoadedGenerator, LoaderError> {
    let mut main_local = None;
    let mut loaded = if settings.backend == Backend::OpenAi {
        load_remote(settings)?
    } else {
        let local = load_local(&settings.model, settings, store, progress)?;
        let loaded = LoadedGenerator {
            generator: Arc::new(LocalGenerator::new(
                local.model.clone(),
                LocalOptions::default(),
            )),
            spec: Some(local.spec.clone()),
            path: local.path.clone(),
            description: local.description.clone(),
            downloaded: local.downloaded,
        };
        main_local = Some(local);
        loaded
    };
    let completion = match settings.completion_model.trim() {
        "" => None,
        spec => Some(load_local(spec, settings, store, progress)?),
    };
    let draft = match (settings.draft_model_spec(), &completion) {
        (None, _) => None,
        (Some(_), None) if main_local.is_none() => None,
        (Some(spec), Some(c)) if ModelSpec::parse(spec).ok().as_ref() == Some(&c.spec) => {
            Some(c.model.clone())
        }
        (Some(spec), _) => Some(load_local(spec, settings, store, progress)?.model),
    };
    if let Some(draft) = &draft {
        for local in main_local.iter().chain(&completion) {
            check_draft_vocabulary(&local.model, draft).map_err(|reason| LoaderError::Draft {
                path: draft.source.clone(),
                reason,
            })?;
        }
    }
    let with_draft = |generator: LocalGenerator| match &draft {
        Some(d) => generator.with_draft(Arc::clone(&d.model)),
        None => generator,
    };
    let main_generator = main_local.as_ref().map(|local| {
        with_draft(LocalGenerator::new(
            local.model.clone(),
            LocalOptions::default(),
        ))
    });
    if let Some(completion) = completion {
        let mut generator = with_draft(LocalGenerator::new(
            completion.model.clone(),
            LocalOptions::default(),
        ));
        if let Some(main) = &main_generator {
            generator = generator.sharing_queue_with(main);
        }
        loaded.description = format!(
            "{}; completions: {}",
            loaded.description, completion.description
        );
        loaded.downloaded |= completion.downloaded;
        let chat: Arc<dyn Generator> = match main_generator {
            Some(main) => Arc::new(main),
            None => loaded.generator,
        };
        loaded.generator = Arc::new(SplitGenerator::new(chat, Arc::new(generator)));
    } else if let Some(main) = main_generator {
        loaded.generator = Arc::new(main);
    }
    Ok(loaded)
}

/// A local model found (or pulled) through the store and loaded.
struct LocalLoad {
    spec: ModelSpec,
    path: PathBuf,
    description: String,
    downloaded: bool,
    model: LoadedModel,
}

fn load_local(
    spec: &str,
    settings: &Settings,
    store: &Store,
    progress: &dyn Progress,
) -> Result<LocalLoad, LoaderError> {
    let spec = ModelSpec::parse(spec)?;
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
    tracing::info!(%prefill, %decode, model = %description, "quantized kernels");
    Ok(LocalLoad {
        spec,
        path,
        description,
        downloaded: pulled.source != PullSource::AlreadyPresent,
        model,
    })
}

/// Checks that `draft` can draft for `target`: the same vocabulary (size and token ids of the special tokens).
/// A draft model's guesses never change the output, only the speed; a different vocabulary would make every
/// guess wrong, or out of the target's range.
pub fn check_draft_vocabulary(target: &LoadedModel, draft: &LoadedModel) -> Result<(), String> {
    let (t, d) = (target.model.config(), draft.model.config());
    if t.vocab_size != d.vocab_size {
        return Err(format!(
            "its vocabulary has {} tokens, the model's {}: choose a draft model of the same family \
             (`draftModel`, e.g. qwen2.5-coder-0.5b for Qwen2.5-Coder models)",
            d.vocab_size, t.vocab_size
        ));
    }
    let (ts, ds) = (target.tokenizer.specials(), draft.tokenizer.specials());
    if ts != ds {
        return Err(
            "its special tokens have other ids than the model's: choose a draft model of the same family"
                .to_string(),
        );
    }
    Ok(())
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
