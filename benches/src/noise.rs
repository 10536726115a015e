//! Noise that the Rust and Python sides of the accuracy comparison draw identically.
//!
//! The stochastic samplers are compared on common random numbers: call `k` of a sampling run
//! receives the standard normals [`counter_normals`]`(seed, k, n)`, a counter-based generator
//! (SplitMix64 of `(seed, k, index)`, Box-Muller) that tools/anchors.py reimplements in numpy.
//! So a k-diffusion sampler with `noise_sampler = counter noise` and the project's solver with
//! [`CounterNoise`] see the same numbers, and differences in the distance to the target law are
//! differences of the algorithms, not of the draws.
//!
//! [`CounterNoise`] serves one call per `increment` query (`z_k sqrt|t1 - t0|`; the sign of the
//! interval is ignored, as k-diffusion's noise samplers do). The project's `dpmpp-sde` asks for
//! `W(t, s)` and `W(s, t_next)`; k-diffusion's `sample_dpmpp_sde` asks for the normalized
//! `W(t, s)` and `W(t, t_next)`, which the Python side answers consistently from the same two
//! draws (`(z_j sqrt|s - t| + z_k sqrt|t_next - s|) / sqrt|t_next - t|`), so both see one
//! Brownian path.

use diffusion::core::{BrownianPath, Result, State};

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `n` standard normals for call `call` of a run seeded `seed` (see the module docs).
pub fn counter_normals(seed: u64, call: u64, n: usize) -> Vec<f64> {
    let key = splitmix64(splitmix64(seed) ^ call.wrapping_mul(0xD1B5_4A32_D192_ED03));
    let scale = 1.0 / (1u64 << 53) as f64;
    (0..n as u64)
        .map(|j| {
            let a = splitmix64(key.wrapping_add(2 * j));
            let b = splitmix64(key.wrapping_add(2 * j + 1));
            let u1 = ((a >> 11) as f64 + 1.0) * scale;
            let u2 = (b >> 11) as f64 * scale;
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect()
}

/// A [`BrownianPath`] that answers query `k` with `counter_normals(seed, k, n) * sqrt|t1 - t0|`.
#[derive(Debug, Clone)]
pub struct CounterNoise {
    seed: u64,
    call: u64,
}

impl CounterNoise {
    /// Starts at call 0.
    pub fn new(seed: u64) -> Self {
        CounterNoise { seed, call: 0 }
    }

    /// Number of calls served.
    pub fn calls(&self) -> u64 {
        self.call
    }
}

impl<S: State> BrownianPath<S> for CounterNoise {
    fn increment(&mut self, t0: f64, t1: f64, like: &S) -> Result<S> {
        let dt = (t1 - t0).abs().sqrt();
        let z: Vec<f64> = counter_normals(self.seed, self.call, like.numel())
            .into_iter()
            .map(|v| v * dt)
            .collect();
        self.call += 1;
        Ok(like.from_host_like(&z))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_normals_are_standard_and_match_the_python_values() {
        let z = counter_normals(21, 0, 200_000);
        let n = z.len() as f64;
        let mean = z.iter().sum::<f64>() / n;
        let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.01, "{var}");
        // The first values of tools/anchors.py's counter_normals(21, 3, 4).
        let golden = PYTHON_GOLDEN;
        let ours = counter_normals(21, 3, 4);
        for (a, b) in ours.iter().zip(golden) {
            assert!((a - b).abs() < 1e-12, "{ours:?} vs {golden:?}");
        }
    }

    const PYTHON_GOLDEN: [f64; 4] = [
        2.015631274712893,
        1.2731707940968964,
        0.04393044152068828,
        1.0929150342795693,
    ];
}
