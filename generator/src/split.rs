//! `SplitGenerator`: inline completions on one model, everything else on another (`completion.model`).
//!
//! Completions are raw fill-in-the-middle prompts ([`GenPrompt::Raw`]); explanations, refactors and patches are
//! chat ([`GenPrompt::Chat`]). That split is what routes a request: a user can run the small, fast model for
//! keystroke-latency completions and the larger one (or a remote server) for the answers that need it, and no
//! task changes. The context window reported is the smaller of the two, so every prompt fits either model.

use std::sync::Arc;

use qwen_engine::CancelToken;

use super::{Flow, GenError, GenOutput, GenPrompt, GenRequest, Generator, GeneratorInfo};

/// Raw (completion) prompts to `completion`, chat to `chat`.
pub struct SplitGenerator {
    chat: Arc<dyn Generator>,
    completion: Arc<dyn Generator>,
}

impl SplitGenerator {
    /// Routes chat requests to `chat` and raw prompts to `completion`.
    pub fn new(chat: Arc<dyn Generator>, completion: Arc<dyn Generator>) -> SplitGenerator {
        SplitGenerator { chat, completion }
    }

    fn route(&self, request: &GenRequest) -> &dyn Generator {
        match request.prompt {
            GenPrompt::Raw(_) => self.completion.as_ref(),
            GenPrompt::Chat(_) => self.chat.as_ref(),
        }
    }
}

impl Generator for SplitGenerator {
    fn info(&self) -> GeneratorInfo {
        let (chat, completion) = (self.chat.info(), self.completion.info());
        let context_window = match (chat.context_window, completion.context_window) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        GeneratorInfo {
            backend: chat.backend,
            model: format!("{} (completions: {})", chat.model, completion.model),
            context_window,
        }
    }

    fn generate(
        &self,
        request: &GenRequest,
        cancel: &CancelToken,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<GenOutput, GenError> {
        self.route(request).generate(request, cancel, on_text)
    }

    fn reset_sessions(&self) {
        self.chat.reset_sessions();
        self.completion.reset_sessions();
    }
}
