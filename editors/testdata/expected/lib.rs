//! A small library the editor integration tests open, type into and refactor.

/// Adds two numbers.
pub fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// Sums a slice with a loop (a refactor target).
pub fn total(values: &[i64]) -> i64 {
    values.iter().sum()
}

pub fn fibonacci(n: u64) -> u64 {

}
