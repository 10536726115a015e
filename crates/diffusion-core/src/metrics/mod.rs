//! Distances between sample sets and distributions, for tests, benchmarks and examples.
//!
//! Sample-based: [`exact_w2`] (optimal assignment, equal sizes), [`sliced_w2`], [`mmd_rbf`] /
//! [`mmd2_rbf`] (kernel two-sample statistics), [`energy_distance`]. Closed form between
//! Gaussians: [`gaussian_w2`], [`gaussian_kl`]. Likelihood under an exact target: [`mean_nll`].
//! The assignment solver behind [`exact_w2`] is public as [`solve_assignment`].

mod assignment;
mod energy;
mod exact_w2;
mod gaussian_kl;
mod gaussian_w2;
mod mmd;
mod nll;
mod normal_cdf;
mod sliced_w2;

pub use assignment::{solve_assignment, Assignment};
pub use energy::{energy_distance, energy_distance2};
pub use exact_w2::exact_w2;
pub use gaussian_kl::gaussian_kl;
pub use gaussian_w2::gaussian_w2;
pub use mmd::{median_bandwidth, mmd2_rbf, mmd_rbf, MmdEstimator};
pub use nll::mean_nll;
pub use normal_cdf::normal_cdf;
pub use sliced_w2::{sliced_w2, w2_1d};

use crate::error::{CoreError, Result};
use ndarray::ArrayView2;

/// Checks that two point clouds are non-empty, share their dimension and hold finite values.
pub(crate) fn check_clouds(
    x: &ArrayView2<'_, f64>,
    y: &ArrayView2<'_, f64>,
    context: &'static str,
) -> Result<()> {
    if x.ncols() != y.ncols() || x.ncols() == 0 {
        return Err(CoreError::ShapeMismatch {
            context,
            expected: vec![y.nrows(), x.ncols().max(1)],
            got: y.shape().to_vec(),
        });
    }
    if x.nrows() == 0 || y.nrows() == 0 {
        return Err(CoreError::invalid(
            "samples",
            format!("{context} needs at least one point in each set"),
        ));
    }
    if x.iter().chain(y.iter()).any(|v| !v.is_finite()) {
        return Err(CoreError::NonFinite {
            context: format!("{context} samples"),
        });
    }
    Ok(())
}

/// Squared Euclidean distance between two rows.
pub(crate) fn sq_dist(a: ndarray::ArrayView1<'_, f64>, b: ndarray::ArrayView1<'_, f64>) -> f64 {
    a.iter().zip(b.iter()).map(|(u, v)| (u - v) * (u - v)).sum()
}
