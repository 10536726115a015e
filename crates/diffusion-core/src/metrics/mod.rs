//! Distances between sample sets and distributions, for tests, benchmarks and examples.

mod gaussian_w2;
mod sliced_w2;

pub use gaussian_w2::gaussian_w2;
pub use sliced_w2::{sliced_w2, w2_1d};
