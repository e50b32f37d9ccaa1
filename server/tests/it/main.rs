//! qwen-ls integration tests, one binary (linking a test binary per file cost minutes and gigabytes).

mod common;
mod support;

mod bad_inputs;
mod bench_engine;
mod cache;
mod cli;
mod default_model;
mod fix_loop;
mod generate_cli;
mod incremental;
mod languages;
mod lsp;
mod packing;
mod patch;
mod remote;
mod snapshots;
mod store_hf_home;
mod store_hub;
mod store_local;
mod store_pypi;
mod symbols;
mod tasks;
mod token_count;
mod trust;
