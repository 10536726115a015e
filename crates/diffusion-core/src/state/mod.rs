//! The `State` trait: the one vector-space abstraction every continuous solver is written against.
//!
//! Every continuous sampler is a sequence of linear combinations with host-side `f64` coefficients,
//! so solvers are generic over `S: State` and run unchanged on `ndarray` arrays (f32 or f64, any
//! dimension), on `tch::Tensor` (feature `tch`, CPU or CUDA) and on augmented phase-space pairs
//! [`Phase`].

mod ndarray_impl;
mod phase;
mod simd;
#[cfg(feature = "tch")]
mod tch_impl;

pub use phase::Phase;

/// The answer to "is every entry of this state finite?" ([`State::finiteness`]): known at once,
/// or computed where the state lives and read later. Reading a value back from a GPU waits until
/// its queue has drained, so a sampler that read a flag after every step would leave the device
/// idle while the host issues the next step's first operations; with pending answers it reads
/// them together (`diffusion_solvers::sample`).
pub enum Finiteness {
    /// Known on the spot.
    Known(bool),
    /// Computed on the device; the closure reads the answer back (waiting for the device).
    Pending(Box<dyn FnOnce() -> bool + Send>),
}

impl Finiteness {
    /// The answer (reads a pending one back).
    pub fn resolve(self) -> bool {
        match self {
            Finiteness::Known(ok) => ok,
            Finiteness::Pending(read) => read(),
        }
    }
}

impl std::fmt::Debug for Finiteness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finiteness::Known(ok) => f.debug_tuple("Known").field(ok).finish(),
            Finiteness::Pending(_) => f.write_str("Pending"),
        }
    }
}

/// [`State::fill_from_host`]'s default: one host vector, filled, then converted
/// ([`State::from_host_like`]); implementations fall back on it for layouts they cannot write.
pub(crate) fn fill_through_host<S: State>(s: &mut S, fill: &mut dyn FnMut(&mut [f64])) {
    let mut values = vec![0.0; s.numel()];
    fill(&mut values);
    *s = s.from_host_like(&values);
}

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
    // The name is the agreed vocabulary (docs/architecture.md): `self` supplies shape and device.
    #[allow(clippy::wrong_self_convention)]
    fn from_host_like(&self, values: &[f64]) -> Self;
    /// `a * values` as a state shaped like `self` (as [`State::from_host_like`]): for `f64`
    /// states the same bits as `from_host_like(values)` scaled by `a`; backends that can do it
    /// in the conversion's pass (ndarray) save the scaling pass (noise draws use it).
    #[allow(clippy::wrong_self_convention)]
    fn from_host_scaled(&self, values: &[f64], a: f64) -> Self {
        let mut s = self.from_host_like(values);
        if a != 1.0 {
            s.scale_assign(a);
        }
        s
    }
    /// All entries as host `f64` in row-major order (tests, fixtures, metrics).
    fn to_host(&self) -> Vec<f64>;
    /// Overwrites every entry, in the order of [`State::to_host`], with the numbers `fill`
    /// writes into consecutive host chunks (so `fill` must give the same numbers however the
    /// entries are split, as the noise sources' `fill` methods do). The default fills one host
    /// vector and converts it ([`State::from_host_like`]); the ndarray states write into their
    /// own storage (`f64` directly, `f32` through a small stack buffer), allocating nothing
    /// (noise draws into a reused buffer take this path).
    fn fill_from_host(&mut self, fill: &mut dyn FnMut(&mut [f64])) {
        fill_through_host(self, fill);
    }

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
    /// [`State::is_finite`] as a [`Finiteness`]: states on a device start the check there and
    /// answer [`Finiteness::Pending`] (no synchronisation until it is read); the default answers
    /// at once.
    fn finiteness(&self) -> Finiteness {
        Finiteness::Known(self.is_finite())
    }

    /// `true` when no other live value can observe an in-place change of `self` (it owns its
    /// storage exclusively). Owned `ndarray` arrays always do; a `tch::Tensor` may share its
    /// storage with shallow clones, so it answers `false` and solvers fall back to allocating
    /// operations. The in-place methods below are correct either way; this only tells a solver
    /// whether it may use them on a value it received (see `diffusion_solvers`' in-place steps).
    fn is_exclusive(&self) -> bool {
        false
    }
    /// `self = a * self + b * other`, in place; the same arithmetic (and so the same bits) as
    /// [`State::lincomb`].
    fn lincomb_assign(&mut self, a: f64, other: &Self, b: f64) {
        *self = self.lincomb(a, other, b);
    }
    /// `self = a * self + b * x + c * y`, in place; the same arithmetic as [`State::lincomb3`].
    fn lincomb3_assign(&mut self, a: f64, x: &Self, b: f64, y: &Self, c: f64) {
        *self = self.lincomb3(a, x, b, y, c);
    }
    /// [`State::lincomb_assign`] that also answers [`State::is_finite`] for the result. The same
    /// values as `lincomb_assign`; implementations may fold the check into the update's pass over
    /// the data (ndarray does), so a sampler's per-step finiteness check costs no extra pass.
    fn lincomb_assign_finite(&mut self, a: f64, other: &Self, b: f64) -> bool {
        self.lincomb_assign(a, other, b);
        self.is_finite()
    }
    /// [`State::lincomb3_assign`] that also answers [`State::is_finite`] for the result (see
    /// [`State::lincomb_assign_finite`]).
    fn lincomb3_assign_finite(&mut self, a: f64, x: &Self, b: f64, y: &Self, c: f64) -> bool {
        self.lincomb3_assign(a, x, b, y, c);
        self.is_finite()
    }
    /// `self = a * self`, in place; the same arithmetic as [`State::scale`].
    fn scale_assign(&mut self, a: f64) {
        *self = self.scale(a);
    }
    /// `a * self` for a value the caller gives up: written into its own storage when it owns it
    /// exclusively ([`State::is_exclusive`]), a new state otherwise; the same bits as
    /// [`State::scale`].
    fn into_scaled(mut self, a: f64) -> Self {
        if self.is_exclusive() {
            self.scale_assign(a);
            self
        } else {
            self.scale(a)
        }
    }
    /// `out = a * self + b * other`, written into the storage of `out` (which must have the
    /// shape of `self` and own its storage exclusively); the same arithmetic as
    /// [`State::lincomb`].
    fn lincomb_into(&self, a: f64, other: &Self, b: f64, out: &mut Self) {
        *out = self.lincomb(a, other, b);
    }
    /// `out = a * self`, written into the storage of `out` (same shape, exclusively owned); the
    /// same arithmetic as [`State::scale`].
    fn scale_into(&self, a: f64, out: &mut Self) {
        *out = self.scale(a);
    }
}
