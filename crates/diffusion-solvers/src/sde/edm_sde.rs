//! The EDM stochastic sampler: "churn" (raise the noise level by adding fresh noise), then one
//! Heun step of the probability-flow ODE from the raised level.
//!
//! Paper: Karras, Aittala, Aila & Laine (2022), "Elucidating the Design Space of Diffusion-Based
//! Generative Models", arXiv:2206.00364, Algorithm 2 (and NVlabs/edm `generate.py:edm_sampler`).
//! In EDM coordinates (`y = x / alpha`, noise level `rho = sigma / alpha`, so it holds for every
//! schedule), at step `i` of `N` from `rho_i`:
//! `gamma = min(S_churn / N, sqrt(2) - 1)` if `S_tmin <= rho_i <= S_tmax`, else 0;
//! `rho_hat = rho_i (1 + gamma)`; `y_hat = y_i + sqrt(rho_hat^2 - rho_i^2) S_noise z`; then a
//! [`Heun`] step from `rho_hat` to `rho_{i+1}`, which (Algorithm 2, line 9) skips its
//! correction when `rho_{i+1} = 0`, so a grid ending at 0 ends with an Euler step that returns
//! `alpha x0_hat` exactly. `N` is [`Step::n_steps`]. With `S_churn = 0` (or outside
//! `[S_tmin, S_tmax]`) the step is exactly [`Heun`] and draws no noise.
//!
//! Differences from the paper, forced by a bounded time axis: `rho_hat` is clamped to the
//! schedule's largest noise level (EDM's network accepts any sigma, a schedule's time range does
//! not), and the churned level is the one the schedule really reaches at
//! `t_hat = t_of_noise_ratio(rho_hat)` (bisection on schedules without a closed-form inverse),
//! so the noise added is exactly what moves `y` from `rho_i` to that level. The noise is the
//! normalized Brownian increment over the step, `(W(t_{i+1}) - W(t_i)) / sqrt|t_{i+1} - t_i|`.
//!
//! Order: with `S_churn = 0` this is Heun (global order 2). With churn the sampler is not a
//! pathwise discretization of one SDE (`gamma` depends on `N`), so its order is that of its law:
//! the churn is an exact forward-noising step and the Heun step has local error `O(h^3)`, so the
//! law converges with weak order 2 once `gamma = S_churn / N` is below its cap (exact-law W2
//! slopes on the Gaussian oracle: 2.00 with `S_churn = 10` on 32..256 steps, 1.95 with the
//! default 40 on 128..1024; while `gamma` is capped the churned Heun step does not shrink and the
//! law converges more slowly, slope 1.4 on 16..128). See `tests/stochastic_family.rs`.
//! [`Solver::order`] reports 2 in both cases.

use super::draw_normalized;
use crate::error::{Result, SolverError};
use crate::ode::Heun;
use crate::ops::lincomb_owned;
use crate::solver::{Cache, Solver, Step};
use diffusion_core::{BrownianPath, State};

/// `sqrt(2) - 1`: the paper's upper bound on `gamma` (the churn at most doubles the variance).
const GAMMA_MAX: f64 = std::f64::consts::SQRT_2 - 1.0;

/// The EDM stochastic sampler (Algorithm 2): 2 evaluations per step (1 on the step to 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EdmSde {
    s_churn: f64,
    s_tmin: f64,
    s_tmax: f64,
    s_noise: f64,
}

impl Default for EdmSde {
    /// The paper's ImageNet-64 churn (`S_churn = 40`, `S_tmin = 0.05`, `S_tmax = 50`) with the
    /// exact noise `S_noise = 1`.
    fn default() -> Self {
        EdmSde {
            s_churn: 40.0,
            s_tmin: 0.05,
            s_tmax: 50.0,
            s_noise: 1.0,
        }
    }
}

impl EdmSde {
    /// The EDM sampler with churn `s_churn >= 0`, churn window `0 <= s_tmin <= s_tmax` (noise
    /// levels; `s_tmax` may be infinite) and noise multiplier `s_noise >= 0` (EDM's defaults:
    /// 0, 0, inf, 1, which is Heun).
    pub fn new(s_churn: f64, s_tmin: f64, s_tmax: f64, s_noise: f64) -> Result<Self> {
        for (name, v) in [
            ("s_churn", s_churn),
            ("s_tmin", s_tmin),
            ("s_noise", s_noise),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(SolverError::InvalidParameter {
                    name,
                    reason: format!("must be finite and >= 0, got {v}"),
                });
            }
        }
        if s_tmax.is_nan() || s_tmax < s_tmin {
            return Err(SolverError::InvalidParameter {
                name: "s_tmax",
                reason: format!("must be >= s_tmin = {s_tmin}, got {s_tmax}"),
            });
        }
        Ok(EdmSde {
            s_churn,
            s_tmin,
            s_tmax,
            s_noise,
        })
    }

    /// `gamma_i` of the step from noise level `rho` in a grid of `n_steps` steps.
    fn gamma(&self, rho: f64, n_steps: usize) -> f64 {
        if (self.s_tmin..=self.s_tmax).contains(&rho) {
            (self.s_churn / n_steps.max(1) as f64).min(GAMMA_MAX)
        } else {
            0.0
        }
    }
}

impl<S: State> Solver<S> for EdmSde {
    fn name(&self) -> String {
        format!(
            "edm-sde(s_churn={},s_tmin={},s_tmax={},s_noise={})",
            self.s_churn, self.s_tmin, self.s_tmax, self.s_noise
        )
    }
    fn order(&self) -> f64 {
        2.0
    }
    fn is_stochastic(&self) -> bool {
        self.s_churn > 0.0 && self.s_noise > 0.0
    }
    fn step(
        &self,
        step: &Step<'_, S>,
        x: S,
        cache: &mut Cache<S>,
        noise: &mut dyn BrownianPath<S>,
    ) -> Result<S> {
        let sch = step.schedule;
        let rho0 = sch.noise_ratio(step.t0);
        let gamma = self.gamma(rho0, step.n_steps);
        let rho_cap = sch.noise_ratio(sch.t_range().1);
        let rho_target = (rho0 * (1.0 + gamma)).min(rho_cap);
        if gamma == 0.0 || rho_target <= rho0 {
            return Heun.step(step, x, cache, noise);
        }
        let t_hat = sch.t_of_noise_ratio(rho_target);
        let rho_hat = sch.noise_ratio(t_hat);
        let spread = (rho_hat * rho_hat - rho0 * rho0).max(0.0).sqrt();
        let (a0, a_hat) = (sch.alpha(step.t0), sch.alpha(t_hat));
        // The churn in one pass over the state it owns (the same values as scaling, then adding).
        let x_hat = if spread > 0.0 && self.s_noise > 0.0 {
            let (z, c) = draw_normalized(noise, (step.t0, step.t1), &x, cache.take_spare())?;
            let x_hat = lincomb_owned(x, a_hat / a0, &z, c * a_hat * spread * self.s_noise);
            cache.recycle(z);
            x_hat
        } else {
            x.into_scaled(a_hat / a0)
        };
        let churned = Step {
            model: step.model,
            schedule: sch,
            t0: t_hat,
            t1: step.t1,
            index: step.index,
            n_steps: step.n_steps,
        };
        Heun.step(&churned, x_hat, cache, noise)
    }
}
