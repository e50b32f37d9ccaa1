//! A small library the editor integration tests open, type into and refactor.

/// Adds two numbers.
pub fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// Sums a slice with a loop (a refactor target).
pub fn total(values: &[i64]) -> i64 {
    let mut sum = 0;
    for v in values {
        sum = add(sum, *v);
    }
    sum
}

pub fn fibonacci(n: u64) -> u64 {

}
