//! Noise sources: where the standard normal draws of every stochastic method come from.
//!
//! [`HostNoise`] draws on the host from a seeded ChaCha20 stream and converts with
//! [`State::from_host_like`], so the same seed gives bit-identical numbers on every backend
//! (ndarray f64, tch CPU, tch CUDA up to the dtype's rounding) and for every thread count.
//! `TchNoise` (feature `tch`) draws on the tensor's own device with torch's generator: faster on a
//! GPU, but its numbers differ from `HostNoise` and between devices.
//!
//! Paper: Bernstein (2008), "ChaCha, a variant of Salsa20", SASC 2008 (the stream cipher behind
//! `rand_chacha::ChaCha20Rng`); Marsaglia & Tsang (2000), "The Ziggurat Method for Generating
//! Random Variables", Journal of Statistical Software 5(8) (`rand_distr::StandardNormal`).

use crate::state::State;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rand_distr::StandardNormal;

/// A source of i.i.d. standard normal states.
pub trait NoiseSource<S> {
    /// A state shaped like `like` with i.i.d. N(0, 1) entries.
    fn standard_normal(&mut self, like: &S) -> S;

    /// `a` times the next [`NoiseSource::standard_normal`] draw (the same numbers; sources that
    /// draw on the host scale in the conversion's pass, [`State::from_host_scaled`]).
    fn standard_normal_scaled(&mut self, like: &S, a: f64) -> S
    where
        S: State,
    {
        if a == 1.0 {
            return self.standard_normal(like);
        }
        self.standard_normal(like).into_scaled(a)
    }

    /// Overwrites `out` with the next draw (the numbers [`NoiseSource::standard_normal`] would
    /// give for a state shaped like `out`). Host sources write into `out`'s storage
    /// ([`State::fill_from_host`]): a reused buffer costs no allocation.
    fn fill_standard_normal(&mut self, out: &mut S)
    where
        S: State,
    {
        *out = self.standard_normal(out);
    }
}

/// Seeded host-side noise (ChaCha20, `rand_distr::StandardNormal`): identical numbers on every
/// backend and thread count for the same seed.
#[derive(Debug, Clone)]
pub struct HostNoise {
    rng: ChaCha20Rng,
}

impl HostNoise {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        HostNoise {
            rng: ChaCha20Rng::seed_from_u64(seed),
        }
    }

    /// A source on an independent `stream` of the same seed (e.g. one per trajectory or per node
    /// of a Brownian tree). Streams never overlap.
    pub fn with_stream(seed: u64, stream: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        HostNoise { rng }
    }

    /// Fills a host vector with `n` standard normal numbers.
    pub fn normals(&mut self, n: usize) -> Vec<f64> {
        let mut out = vec![0.0; n];
        self.fill(&mut out);
        out
    }

    /// Writes the next `out.len()` standard normal numbers into `out` (the numbers `normals`
    /// would return).
    pub fn fill(&mut self, out: &mut [f64]) {
        for v in out {
            *v = self.rng.sample(StandardNormal);
        }
    }

    /// One uniform number in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        self.rng.random::<f64>()
    }
}

impl<S: State> NoiseSource<S> for HostNoise {
    fn standard_normal(&mut self, like: &S) -> S {
        let values = self.normals(like.numel());
        like.from_host_like(&values)
    }

    fn standard_normal_scaled(&mut self, like: &S, a: f64) -> S {
        let values = self.normals(like.numel());
        like.from_host_scaled(&values, a)
    }

    fn fill_standard_normal(&mut self, out: &mut S) {
        out.fill_from_host(&mut |chunk| self.fill(chunk));
    }
}

#[cfg(feature = "tch")]
mod device {
    use super::NoiseSource;
    use tch::Tensor;

    /// Device-native noise for `tch::Tensor`: `torch.randn_like` on the tensor's own device, with
    /// torch's generator seeded once by [`TchNoise::new`]. Fast (no host transfer) but its numbers
    /// differ from [`super::HostNoise`] and between CPU and CUDA; reproducible for a fixed device.
    #[derive(Debug)]
    pub struct TchNoise {
        _private: (),
    }

    impl TchNoise {
        /// Seeds torch's global generator (`tch::manual_seed`) and returns the source.
        pub fn new(seed: u64) -> Self {
            tch::manual_seed(seed as i64);
            TchNoise { _private: () }
        }
    }

    impl NoiseSource<Tensor> for TchNoise {
        fn standard_normal(&mut self, like: &Tensor) -> Tensor {
            like.randn_like()
        }
    }
}

#[cfg(feature = "tch")]
pub use device::TchNoise;

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn same_seed_same_numbers_other_seed_other_numbers() {
        let like = Array2::<f64>::zeros((16, 3));
        let a: Array2<f64> = HostNoise::new(7).standard_normal(&like);
        let b: Array2<f64> = HostNoise::new(7).standard_normal(&like);
        let c: Array2<f64> = HostNoise::new(8).standard_normal(&like);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let s1: Array2<f64> = HostNoise::with_stream(7, 1).standard_normal(&like);
        assert_ne!(a, s1);
    }

    #[test]
    fn filling_a_buffer_draws_the_same_numbers_as_a_new_state() {
        // Both host sources, f64 and f32, a size that is not a multiple of any chunk.
        let like64 = Array2::<f64>::zeros((37, 29));
        let like32 = Array2::<f32>::zeros((37, 29));
        let mut buf64 = Array2::<f64>::from_elem((37, 29), f64::NAN);
        let mut buf32 = Array2::<f32>::from_elem((37, 29), f32::NAN);
        let mut a = HostNoise::new(6);
        a.fill_standard_normal(&mut buf64);
        a.fill_standard_normal(&mut buf32);
        let mut b = HostNoise::new(6);
        assert_eq!(buf64, b.standard_normal(&like64));
        assert_eq!(buf32, b.standard_normal(&like32));
        let mut a = crate::FastNoise::new(6);
        a.fill_standard_normal(&mut buf64);
        a.fill_standard_normal(&mut buf32);
        let mut b = crate::FastNoise::new(6);
        assert_eq!(buf64, b.standard_normal(&like64));
        assert_eq!(buf32, b.standard_normal(&like32));
    }

    #[test]
    fn f32_noise_is_the_rounded_f64_noise() {
        let a: Array2<f64> = HostNoise::new(3).standard_normal(&Array2::<f64>::zeros((4, 4)));
        let b: Array2<f32> = HostNoise::new(3).standard_normal(&Array2::<f32>::zeros((4, 4)));
        for (x, y) in a.iter().zip(b.iter()) {
            assert_eq!(*x as f32, *y);
        }
    }

    #[test]
    fn moments_are_standard_normal() {
        // 200k draws: standard error of the mean 0.0022, of the variance 0.0032; thresholds are
        // more than 6 standard errors wide and the seed is fixed, so this cannot flake.
        let v = HostNoise::new(11).normals(200_000);
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.015, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
    }
}
