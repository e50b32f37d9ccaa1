//! Tests of `tasks::patch` against real files: golden cases from `fixtures/patch/`, atomic `--apply`
//! behaviour, the answer formats and the truncation guard, and a fuzz-style test over random answers. Every
//! produced diff is checked with `git apply`.

mod apply;
mod formats;
mod fuzz;
mod golden;
mod support;
