//! Run-time SIMD dispatch for the element-wise loops of the `ndarray` state (the linear
//! combinations every solver step is made of).
//!
//! Each loop is a small struct implementing [`Loop`] whose `run` is `#[inline(always)]`; it is
//! handed to [`dispatch`], which runs it inside the `pulp` crate's safe target-feature functions
//! (`pulp::Simd::vectorize`, no `unsafe` in this crate) for the best level the CPU has: AVX-512
//! (x86-64-v4), AVX2 (x86-64-v3), or the build's own target. The loops are plain element-wise
//! code, so the compiler vectorises them for that level; every level computes each entry with
//! the same IEEE operations in the same order (no fused multiply-add: Rust never contracts on its
//! own), so the results are bit-identical on every machine, only faster (tests below and in
//! `ndarray_impl.rs`). A closure would not do: it is compiled as a function of its own, without
//! the target features (the same finding as `noise_fast.rs`).

/// An element-wise loop over slices, run by [`dispatch`]. Implementations must mark `run`
/// `#[inline(always)]` so that it is compiled inside the target-feature function.
pub(crate) trait Loop {
    /// What the loop returns.
    type Output;
    /// The loop itself.
    fn run(self) -> Self::Output;
}

struct Dispatch<L>(L);

impl<L: Loop> pulp::WithSimd for Dispatch<L> {
    type Output = L::Output;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> L::Output {
        self.0.run()
    }
}

/// Runs `l` compiled for the best SIMD level of this CPU.
#[inline]
pub(crate) fn dispatch<L: Loop>(l: L) -> L::Output {
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(simd) = pulp::x86::V4::try_new() {
            return pulp::Simd::vectorize(simd, Dispatch(l));
        }
        if let Some(simd) = pulp::x86::V3::try_new() {
            return pulp::Simd::vectorize(simd, Dispatch(l));
        }
    }
    l.run()
}

/// Runs `l` at the build's own target level (no dispatch): the reference for the tests.
#[cfg(test)]
pub(crate) fn baseline<L: Loop>(l: L) -> L::Output {
    l.run()
}
