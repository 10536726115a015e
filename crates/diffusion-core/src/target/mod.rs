//! Analytic targets: data distributions whose diffused marginals, scores, denoisers and
//! (for Gaussians) probability-flow ODE solutions are known in closed form at every time.
//!
//! Under any linear schedule `x_t = alpha x_0 + sigma eps`, a Gaussian `N(mu, Sigma)` diffuses to
//! `N(alpha mu, alpha^2 Sigma + sigma^2 I)`, and a Gaussian mixture to the mixture of its diffused
//! components. These are the oracles every sampler is tested against.
//!
//! Also here: the optimal denoiser of a finite data set ([`EmpiricalData`], the memorizing
//! limit of a perfectly trained network) and the 2-D toy data sets ([`Toy2d`]), of which only
//! the eight Gaussians have an analytic density.

mod empirical;
mod gaussian;
mod gmm;
mod toys;

pub use empirical::{EmpiricalData, EmpiricalDenoiser};
pub use gaussian::Gaussian;
pub use gmm::{GaussianMixture, GmmDenoiser, GmmSpec};
pub use toys::Toy2d;

use crate::error::{CoreError, Result};
use crate::prediction::{Denoiser, Prediction};
use crate::schedule::NoiseSchedule;
use crate::state::State;
use ndarray::{Array2, ArrayView2};

/// A target whose ideal denoiser `E[x_0 | x_t]` is computed row by row on the host.
pub trait RowDenoiser {
    /// The data dimension (the number of columns of a row).
    fn dim(&self) -> usize;
    /// `E[x_0 | x_t = x]` for each row of `x` at time `t` of `schedule`.
    fn denoise_rows(
        &self,
        schedule: &dyn NoiseSchedule,
        t: f64,
        x: &ArrayView2<'_, f64>,
    ) -> Result<Array2<f64>>;
}

/// The ideal denoiser of an analytic target under a schedule. It implements [`Denoiser<S>`] for
/// every `State`, reading the state's values as rows of the target's dimension (a host round
/// trip on tensors) and answering [`Prediction::Sample`].
#[derive(Debug)]
pub struct Analytic<'a, T> {
    target: &'a T,
    schedule: &'a dyn NoiseSchedule,
}

impl<T> Clone for Analytic<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Analytic<'_, T> {}

impl<'a, T> Analytic<'a, T> {
    /// The denoiser of `target` under `schedule`.
    pub fn new(target: &'a T, schedule: &'a dyn NoiseSchedule) -> Self {
        Analytic { target, schedule }
    }
}

impl<S: State, T: RowDenoiser> Denoiser<S> for Analytic<'_, T> {
    fn predict(&self, x: &S, t: f64) -> Result<Prediction<S>> {
        let rows = as_rows(
            x.to_host(),
            self.target.dim(),
            "state rows for an analytic denoiser",
        )?;
        let den = self.target.denoise_rows(self.schedule, t, &rows.view())?;
        Ok(Prediction::Sample(
            x.from_host_like(den.as_slice().expect("standard layout")),
        ))
    }
}

/// Interprets host values as `n` rows of dimension `dim`, with a clear error on a mismatch.
pub(crate) fn as_rows(values: Vec<f64>, dim: usize, context: &'static str) -> Result<Array2<f64>> {
    if dim == 0 || values.len() % dim != 0 {
        return Err(CoreError::ShapeMismatch {
            context,
            expected: vec![values.len() / dim.max(1), dim],
            got: vec![values.len()],
        });
    }
    let n = values.len() / dim;
    Ok(Array2::from_shape_vec((n, dim), values).expect("length checked"))
}

/// Checks that `x` has `dim` columns.
pub(crate) fn check_cols(x: &ArrayView2<'_, f64>, dim: usize, context: &'static str) -> Result<()> {
    if x.ncols() != dim {
        return Err(CoreError::ShapeMismatch {
            context,
            expected: vec![x.nrows(), dim],
            got: x.shape().to_vec(),
        });
    }
    Ok(())
}
