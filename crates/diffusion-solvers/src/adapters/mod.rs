//! Denoiser adapters: wrappers that change what a model predicts before any solver sees it, so
//! they work with every sampler.
//!
//! - [`DynamicThresholding`]: Imagen's dynamic thresholding of `x0_hat`.

mod thresholding;

pub use thresholding::{dynamic_threshold, DynamicThresholding};
