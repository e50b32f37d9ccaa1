//! Tests of `tasks::patch` against real files: golden cases from `fixtures/patch/`, atomic `--apply`
//! behaviour, and a fuzz-style test over random answers. Every produced diff is checked with `git apply`.

mod apply;
mod fuzz;
mod golden;
mod support;
