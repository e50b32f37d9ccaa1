//! Context layer: ranks what in the repository is most useful for a request (a cursor position, a selection,
//! an instruction) and packs it into a token budget, in Qwen's repository format.
//!
//! Pure and deterministic: the same snapshot, request and configuration always give the same
//! [`PackedContext`]. The only state is a memo of token counts ([`TokenCountCache`]), which changes speed,
//! never results. This layer does not build prompts: the caller (tasks) adds the current file's prefix and
//! suffix around the cursor and the FIM tokens after the packed items.
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod candidates;
pub mod chunk;
pub mod imports;
pub mod lexical;
pub mod outline;
pub mod pack;
pub mod pagerank;
pub mod rank;
pub mod render;
pub mod request;
pub mod role;
pub mod token_count;
pub mod tokens;

pub use pack::pack;
pub use render::{PackedContext, PackedItem, Reason};
pub use request::{ContextRequest, PackConfig};
pub use tokens::{TokenCountCache, TokenCounter};
