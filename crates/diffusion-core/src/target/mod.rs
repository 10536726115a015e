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
use ndarray::{Array2, ArrayView2};

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
