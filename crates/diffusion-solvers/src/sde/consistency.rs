//! Multistep consistency sampling: jump to the model's clean estimate, then re-noise to the next
//! time with fresh noise.
//!
//! Paper: Song, Dhariwal, Chen & Sutskever (2023), "Consistency Models", arXiv:2303.01469,
//! Algorithm 1 (multistep consistency sampling); Lu & Song (2024), "Simplifying, Stabilizing and
//! Scaling Continuous-Time Consistency Models", arXiv:2410.11081, Sec. 5 (1- and 2-step sampling
//! under TrigFlow, intermediate time `t = 1.1`).
//!
//! One step from `t0` to `t1`: `x0_hat = D(x, t0)`, then `x_{t1} = alpha(t1) x0_hat + sigma(t1)
//! z` with `z` a fresh standard normal (`(W(t1) - W(t0)) / sqrt|t1 - t0|` of the Brownian path);
//! the step to `sigma(t1) = 0` returns `alpha(t1) x0_hat`. On a grid `[T, 0]` this is one-step
//! generation; `[T, t_mid, 0]` is two-step. With an exact consistency function (the PF-ODE map to
//! `t = 0`) every grid samples the data law exactly; with a diffusion denoiser it is the
//! "x0-then-renoise" sampler (a DDPM step with all of the posterior variance replaced by fresh
//! noise), of order 0 as an SDE solver: it is not a discretization of the reverse SDE.

use super::draw_normalized;
use crate::error::Result;
use crate::ops::lincomb_checked;
use crate::solver::{Cache, Solver, Step};
use diffusion_core::{BrownianPath, State};

/// Multistep consistency sampling (see the module documentation): 1 evaluation per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Consistency;

impl<S: State> Solver<S> for Consistency {
    fn name(&self) -> String {
        "consistency".into()
    }
    fn order(&self) -> f64 {
        0.0
    }
    fn is_stochastic(&self) -> bool {
        true
    }
    fn step(
        &self,
        step: &Step<'_, S>,
        x: S,
        cache: &mut Cache<S>,
        noise: &mut dyn BrownianPath<S>,
    ) -> Result<S> {
        // Only the data prediction is read (no eps pass); the re-noising is one checked pass
        // over it, the noise drawn into a spare buffer.
        let x0 = step.eval_x0_reusing(&x, step.t0, cache)?;
        cache.recycle(x);
        let (a1, s1) = (step.schedule.alpha(step.t1), step.schedule.sigma(step.t1));
        if s1 == 0.0 {
            return Ok(x0.into_scaled(a1));
        }
        let (z, c) = draw_normalized(noise, (step.t0, step.t1), &x0, cache.take_spare())?;
        let (out, checked) = lincomb_checked(x0, a1, &z, c * s1);
        cache.set_checked(checked);
        cache.recycle(z);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diffusion_core::schedule::VpLinear;
    use diffusion_core::{IndependentIncrements, NoiseSchedule, Prediction};
    use ndarray::Array1;

    #[test]
    fn a_step_is_the_scaled_estimate_plus_the_scaled_draw() {
        let vp = VpLinear::default();
        let model = |x: &Array1<f64>, _t: f64| -> diffusion_core::Result<Prediction<Array1<f64>>> {
            Ok(Prediction::Sample(x.mapv(|v| 0.25 * v + 1.0)))
        };
        let x = Array1::from_iter((0..300).map(|i| (i as f64 * 0.1).sin()));
        let x0 = x.mapv(|v| 0.25 * v + 1.0);
        for (t0, t1) in [(0.9, 0.4), (0.4, 0.0)] {
            let step = Step {
                model: &model,
                schedule: &vp,
                t0,
                t1,
                index: 0,
                n_steps: 1,
            };
            let out = Consistency
                .step(
                    &step,
                    x.clone(),
                    &mut Cache::new(),
                    &mut IndependentIncrements::seeded(7),
                )
                .unwrap();
            let (a1, s1) = (vp.alpha(t1), vp.sigma(t1));
            let expected = if s1 == 0.0 {
                x0.scale(a1)
            } else {
                let z: Array1<f64> = IndependentIncrements::seeded(7)
                    .normalized(t0, t1, &x)
                    .unwrap();
                x0.lincomb(a1, &z, s1)
            };
            for (o, e) in out.iter().zip(expected.iter()) {
                assert!((o - e).abs() <= 1e-14 * (1.0 + e.abs()), "{o} vs {e}");
            }
        }
    }
}
