//! diffusers' timestep spacings for discrete DDPM tables: `leading`, `trailing` and `linspace`.
//!
//! Paper: Lin, Liu, Li & Yang (2023), "Common Diffusion Noise Schedules and Sample Steps are
//! Flawed", arXiv:2305.08891, Table 2 (the three spacings). Reference code: diffusers
//! `scheduling_ddim.py:DDIMScheduler.set_timesteps` and
//! `scheduling_euler_discrete.py:EulerDiscreteScheduler.set_timesteps`.
//!
//! With `N` training timesteps and `n` inference steps (timesteps are table indices, largest
//! first):
//! - `leading`: `k = N div n`, timesteps `(n - 1 - i) k + steps_offset` (Stable Diffusion uses
//!   `steps_offset = 1`);
//! - `trailing`: `r = N / n` (real), timesteps `round(N - i r) - 1` (numpy's `arange(N, 0, -r)`,
//!   rounded half to even);
//! - `linspace`: `n` equally spaced reals from `N - 1` down to 0; DDIM rounds them (half to even),
//!   Euler keeps them in float32.
//!
//! Deviation: for some `n` (e.g. `N = 1000`, `n = 61`) numpy's `arange(N, 0, -N / n)` yields
//! `n + 1` entries because `N / (N / n)` rounds above `n`; the extra one becomes timestep `-1`, an
//! index outside the table. [`diffusers_timesteps`] always returns exactly `n` timesteps.

use crate::error::{CoreError, Result};

/// How diffusers spreads `n` inference timesteps over `N` training timesteps
/// (`timestep_spacing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestepSpacing {
    /// `(n - 1 - i) (N div n) + steps_offset`: diffusers' default; Stable Diffusion sets
    /// `steps_offset = 1`.
    Leading {
        /// Added to every timestep (`steps_offset`).
        steps_offset: usize,
    },
    /// `round(N - i N / n) - 1`: starts at the last table entry `N - 1`.
    Trailing,
    /// `n` equally spaced reals from `N - 1` to 0.
    Linspace {
        /// Round to integers half to even (DDIM); otherwise keep float32 values (Euler).
        round: bool,
    },
}

/// The `steps` timesteps (largest first) that diffusers' `set_timesteps` produces for a table of
/// `num_train_timesteps` entries. Errors when `steps` is 0 or exceeds `num_train_timesteps`
/// (diffusers raises too), and when a timestep would leave the table (`leading` with a large
/// `steps_offset`).
pub fn diffusers_timesteps(
    spacing: TimestepSpacing,
    num_train_timesteps: usize,
    steps: usize,
) -> Result<Vec<f64>> {
    let big = num_train_timesteps;
    if steps == 0 || steps > big {
        return Err(CoreError::invalid(
            "steps",
            format!("need 1 <= steps <= num_train_timesteps = {big}, got {steps}"),
        ));
    }
    let ts: Vec<f64> = match spacing {
        TimestepSpacing::Leading { steps_offset } => {
            let k = big / steps;
            (0..steps)
                .rev()
                .map(|i| (i * k + steps_offset) as f64)
                .collect()
        }
        TimestepSpacing::Trailing => {
            // numpy's float arange: a[0] = start, a[1] = start + step, a[i] = start + i delta
            // with delta = a[1] - a[0].
            let start = big as f64;
            let step = -(start / steps as f64);
            let delta = (start + step) - start;
            (0..steps)
                .map(|i| {
                    let v = match i {
                        0 => start,
                        1 => start + step,
                        _ => start + i as f64 * delta,
                    };
                    v.round_ties_even() - 1.0
                })
                .collect()
        }
        TimestepSpacing::Linspace { round } => {
            // numpy's linspace(0, N - 1, n): i * ((N - 1) / (n - 1)), last exactly N - 1.
            let stop = (big - 1) as f64;
            let mut v: Vec<f64> = if steps == 1 {
                vec![0.0]
            } else {
                let h = stop / (steps - 1) as f64;
                let mut v: Vec<f64> = (0..steps).map(|i| i as f64 * h).collect();
                v[steps - 1] = stop;
                v
            };
            for x in &mut v {
                *x = if round {
                    x.round_ties_even()
                } else {
                    f64::from(*x as f32)
                };
            }
            v.reverse();
            v
        }
    };
    if let Some(t) = ts.iter().find(|&&t| t < 0.0 || t > (big - 1) as f64) {
        return Err(CoreError::invalid(
            "steps_offset",
            format!("timestep {t} lies outside the table [0, {}]", big - 1),
        ));
    }
    Ok(ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(v: &[i64]) -> Vec<f64> {
        v.iter().map(|&x| x as f64).collect()
    }

    #[test]
    fn leading_trailing_linspace_match_diffusers_arrays() {
        let lead = |o| TimestepSpacing::Leading { steps_offset: o };
        assert_eq!(
            diffusers_timesteps(lead(0), 1000, 10).unwrap(),
            ints(&[900, 800, 700, 600, 500, 400, 300, 200, 100, 0])
        );
        assert_eq!(
            diffusers_timesteps(lead(1), 1000, 10).unwrap(),
            ints(&[901, 801, 701, 601, 501, 401, 301, 201, 101, 1])
        );
        assert_eq!(
            diffusers_timesteps(TimestepSpacing::Trailing, 1000, 10).unwrap(),
            ints(&[999, 899, 799, 699, 599, 499, 399, 299, 199, 99])
        );
        // diffusers issue #9261 prints this array for trailing with 13 steps.
        assert_eq!(
            diffusers_timesteps(TimestepSpacing::Trailing, 1000, 13).unwrap(),
            ints(&[999, 922, 845, 768, 691, 614, 537, 461, 384, 307, 230, 153, 76])
        );
        // r = 62.5: numpy rounds the halves to even (937.5 -> 938, 812.5 -> 812).
        assert_eq!(
            diffusers_timesteps(TimestepSpacing::Trailing, 1000, 16).unwrap(),
            ints(&[999, 937, 874, 811, 749, 687, 624, 561, 499, 437, 374, 311, 249, 187, 124, 61])
        );
        let lin = |round| TimestepSpacing::Linspace { round };
        assert_eq!(
            diffusers_timesteps(lin(true), 1000, 10).unwrap(),
            ints(&[999, 888, 777, 666, 555, 444, 333, 222, 111, 0])
        );
        // 999 / 6 = 166.5 per step: DDIM rounds half to even, Euler keeps the halves.
        assert_eq!(
            diffusers_timesteps(lin(true), 1000, 7).unwrap(),
            ints(&[999, 832, 666, 500, 333, 166, 0])
        );
        assert_eq!(
            diffusers_timesteps(lin(false), 1000, 7).unwrap(),
            vec![999.0, 832.5, 666.0, 499.5, 333.0, 166.5, 0.0]
        );
        // SD's 50-step leading schedule with steps_offset = 1 ends 41, 21, 1.
        let sd = diffusers_timesteps(lead(1), 1000, 50).unwrap();
        assert_eq!((sd[0], sd[47], sd[48], sd[49]), (981.0, 41.0, 21.0, 1.0));
    }

    #[test]
    fn every_count_gives_exactly_that_many_timesteps() {
        // numpy's arange would give 62 entries here (the last one -1).
        for n in [61, 103, 121, 1000] {
            let t = diffusers_timesteps(TimestepSpacing::Trailing, 1000, n).unwrap();
            assert_eq!(t.len(), n);
            assert_eq!(t[0], 999.0);
            assert!(t.iter().all(|&x| x >= 0.0), "n = {n}");
        }
        assert!(diffusers_timesteps(TimestepSpacing::Trailing, 1000, 0).is_err());
        assert!(diffusers_timesteps(TimestepSpacing::Trailing, 1000, 1001).is_err());
        let big_offset = TimestepSpacing::Leading { steps_offset: 200 };
        assert!(diffusers_timesteps(big_offset, 1000, 10).is_err());
    }
}
