//! Denoiser adapters: wrappers that change what a model predicts before any solver sees it, so
//! they work with every sampler.
//!
//! - [`DynamicThresholding`]: Imagen's dynamic thresholding of `x0_hat`;
//! - [`AbCache`]: AB-Cache, skipping model calls by Adams-Bashforth extrapolation of cached
//!   outputs.

mod ab_cache;
mod thresholding;

pub use ab_cache::{AbCache, AbCacheStats, SkipPattern, MAX_AB_CACHE_ORDER};
pub use thresholding::{dynamic_threshold, DynamicThresholding};
