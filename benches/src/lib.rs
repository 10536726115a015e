//! Helpers shared by the benchmarks and the side-by-side comparisons with the Python anchors
//! (`cargo xtask bench`):
//!
//! - [`HalfDenoiser`]: a denoiser that costs one scaled copy, isolating a solver's own overhead;
//! - [`floor`]: hand-written sampling loops of a few solvers (the memory-traffic floor);
//! - [`gmm`]: the benchmark targets (2-D and 64-D Gaussian mixtures) and a fast exact denoiser;
//! - [`noise`]: counter-based normals both sides draw identically (common random numbers);
//! - [`mod@reference`]: the exact PF-ODE solution of a mixture by a fine RK4 solve, and the metrics;
//! - [`timing`]: median wall-clock times of repeated runs;
//! - [`report`]: the JSON rows both sides write, markdown tables and PNG plots;
//! - `sampling` (feature `train`): one sampling pass of a configured network, for `sample_bench`
//!   and the profiling library `benches/ffi`.

use diffusion::core::{Denoiser, Prediction, Result, State};

pub mod floor;
pub mod gmm;
pub mod noise;
pub mod reference;
pub mod report;
#[cfg(feature = "train")]
pub mod sampling;
pub mod timing;

/// A denoiser whose prediction costs one scaled copy (`x0_hat = 0.5 x`), so a benchmark of a
/// sampling step measures the solver's linear algebra and bookkeeping, not a network.
#[derive(Debug, Default, Clone, Copy)]
pub struct HalfDenoiser;

impl<S: State> Denoiser<S> for HalfDenoiser {
    fn predict(&self, x: &S, _t: f64) -> Result<Prediction<S>> {
        Ok(Prediction::Sample(x.scale(0.5)))
    }
}
