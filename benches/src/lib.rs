//! Helpers shared by the benchmarks: cheap denoisers that isolate a solver's own overhead.

use diffusion::core::{Denoiser, Prediction, Result, State};

/// A denoiser whose prediction costs one scaled copy (`x0_hat = 0.5 x`), so a benchmark of a
/// sampling step measures the solver's linear algebra and bookkeeping, not a network.
#[derive(Debug, Default, Clone, Copy)]
pub struct HalfDenoiser;

impl<S: State> Denoiser<S> for HalfDenoiser {
    fn predict(&self, x: &S, _t: f64) -> Result<Prediction<S>> {
        Ok(Prediction::Sample(x.scale(0.5)))
    }
}
