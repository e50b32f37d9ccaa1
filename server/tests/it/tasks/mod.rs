//! The tasks façade: prompt building (golden), the local generator's sessions and cancellation, and
//! complete / explain / refactor / patch end to end with a scripted generator (a test double defined here)
//! or the fixture model; the `patch`, `complete` and `explain` subcommands through the binary.

mod alternatives;
mod cli;
mod complete;
mod edit;
mod explain;
mod generator;
mod prompt;
mod support;
