//! The `State` trait: the one vector-space abstraction every continuous solver is written against.
//!
//! Every continuous sampler is a sequence of linear combinations with host-side `f64` coefficients,
//! so solvers are generic over `S: State` and run unchanged on `ndarray` arrays (f32 or f64, any
//! dimension), on `tch::Tensor` (feature `tch`, CPU or CUDA) and on augmented phase-space pairs
//! [`Phase`].

mod ndarray_impl;
mod phase;
#[cfg(feature = "tch")]
mod tch_impl;

pub use phase::Phase;

/// A point in the state space of a continuous diffusion: a vector space with the few operations
/// solvers need. Coefficients are always host `f64`; implementations convert to their own scalar.
///
/// `tch::Tensor` is `Send` but neither `Sync` nor `Clone`, hence [`State::dup`] instead of `Clone`.
pub trait State: Sized + Send + 'static {
    /// `a * self + b * other`. Shapes must agree (implementations may panic on a mismatch, which
    /// is a programming error inside a solver, never a user-input error).
    fn lincomb(&self, a: f64, other: &Self, b: f64) -> Self;
    /// `a * self`.
    fn scale(&self, a: f64) -> Self;
    /// A state of the same shape, dtype and device filled with zeros.
    fn zeros_like(&self) -> Self;
    /// A copy that owns (ndarray) or shares (tch: `shallow_clone`) the same values.
    fn dup(&self) -> Self;
    /// Root mean square of all entries, as `f64` (synchronizes a GPU). NaN if any entry is NaN.
    fn rms(&self) -> f64;
    /// Number of scalar entries.
    fn numel(&self) -> usize;
    /// A state shaped like `self` (same dtype and device) holding `values` in row-major order.
    /// `values.len()` must equal `self.numel()`.
    #[allow(clippy::wrong_self_convention)] // `self` is the shape/dtype/device template
    fn from_host_like(&self, values: &[f64]) -> Self;
    /// All entries as host `f64` in row-major order (tests, fixtures, metrics).
    fn to_host(&self) -> Vec<f64>;

    /// `self + b * other`, a convenience over [`State::lincomb`].
    fn axpy(&self, b: f64, other: &Self) -> Self {
        self.lincomb(1.0, other, b)
    }
    /// `a * self + b * x + c * y`, a three-term combination (implementations may fuse it).
    fn lincomb3(&self, a: f64, x: &Self, b: f64, y: &Self, c: f64) -> Self {
        self.lincomb(a, x, b).lincomb(1.0, y, c)
    }
    /// `true` when every entry is finite.
    fn is_finite(&self) -> bool {
        self.rms().is_finite()
    }
}
