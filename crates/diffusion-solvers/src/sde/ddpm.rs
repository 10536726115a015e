//! DDPM ancestral sampling: draw `x_{t1}` from the Gaussian posterior `q(x_{t1} | x_{t0}, x0_hat)`
//! of the forward process, in continuous time between any two times `t0 > t1`.
//!
//! Paper: Ho, Jain & Abbeel (2020), "Denoising Diffusion Probabilistic Models",
//! arXiv:2006.11239, Algorithm 2 and Eq. (6)-(7) (posterior mean `mu_tilde` and variance
//! `beta_tilde`; Sec. 3.2 discusses the two variance choices `sigma_t^2 = beta_t` and
//! `sigma_t^2 = beta_tilde_t`).
//!
//! Continuous form. The forward transition from `t1` to `t0 > t1` is
//! `x_{t0} = a x_{t1} + sqrt(v) eps` with `a = alpha0 / alpha1` and
//! `v = sigma0^2 - a^2 sigma1^2 = sigma0^2 (1 - e^{-2h})`, `h = lambda1 - lambda0`. Bayes with
//! `x_{t1} = alpha1 x0 + sigma1 eps'` gives the posterior
//! `mean = alpha1 [e^{-2h} y0 + (1 - e^{-2h}) x0_hat]` (`y0 = x_{t0} / alpha0`) and
//! `beta_tilde = sigma1^2 (1 - e^{-2h}) = v sigma1^2 / sigma0^2`. The "upper bound" choice uses
//! the forward transition variance `beta = v` itself; on a VP schedule
//! (`alpha^2 + sigma^2 = 1`, `alpha_bar = alpha^2`) it is `1 - alpha_bar_{t0} / alpha_bar_{t1}`,
//! which on consecutive integer times of a discrete DDPM table is exactly the paper's `beta_t`
//! (and then `mean` and `beta_tilde` are exactly Eq. (7)); on EDM (`alpha = 1`) it is
//! `sigma0^2 - sigma1^2`; being defined in `x` units, in EDM coordinates it carries the factor
//! `alpha0^2 / alpha1^2`, so unlike `beta_tilde` it is not the same sampler on every schedule for
//! a given noise-level grid. The mean is the DPM-Solver++ SDE frame at `eta = 1`
//! (`exp_sde_step` in this module's parent), so with `beta_tilde` this sampler is, step for step and with the same
//! noise, DDIM at `eta = 1` (Song et al. 2021, arXiv:2010.02502, Eq. 16) and Euler ancestral at
//! `eta = 1`. As in Algorithm 2 (`z = 0` at `t = 1`) the step to noise level 0 adds no noise and
//! returns `alpha1 x0_hat`; the noise is `(W(t1) - W(t0)) / sqrt|t1 - t0|`.
//!
//! Order: strong order 1 along a Brownian tree for both variances (additive noise;
//! `sqrt(beta) - sqrt(beta_tilde) = O(h^{3/2})` per step, so the upper bound converges to the
//! same reverse-SDE path), tested in `tests/stochastic_family.rs`.

use super::{move_with_noise, NoiseControl};
use crate::error::{Result, SolverError};
use crate::ode::Level;
use crate::ops::scale_reusing;
use crate::solver::{Cache, Solver, Step};
use diffusion_core::{BrownianPath, State};

/// The variance of each ancestral step (Ho et al. 2020, Sec. 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PosteriorVariance {
    /// `beta_tilde`: the variance of the true posterior `q(x_{t1} | x_{t0}, x0)` (exact law).
    #[default]
    Posterior,
    /// `beta`: the forward transition variance, an upper bound on the reverse variance.
    Forward,
}

/// DDPM ancestral sampling with a [`PosteriorVariance`]: 1 evaluation per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ddpm {
    variance: PosteriorVariance,
}

impl Ddpm {
    /// DDPM with the given variance choice.
    pub fn new(variance: PosteriorVariance) -> Self {
        Ddpm { variance }
    }

    /// The variance from the registry's numeric flag `variance` (0 = `beta_tilde`, 1 = `beta`).
    pub fn variance_from_flag(flag: f64) -> Result<PosteriorVariance> {
        if flag == 0.0 {
            Ok(PosteriorVariance::Posterior)
        } else if flag == 1.0 {
            Ok(PosteriorVariance::Forward)
        } else {
            Err(SolverError::InvalidParameter {
                name: "variance",
                reason: format!("must be 0 (beta_tilde) or 1 (beta), got {flag}"),
            })
        }
    }
}

impl<S: State> Solver<S> for Ddpm {
    fn name(&self) -> String {
        match self.variance {
            PosteriorVariance::Posterior => "ddpm(beta_tilde)".into(),
            PosteriorVariance::Forward => "ddpm(beta)".into(),
        }
    }
    fn order(&self) -> f64 {
        1.0
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
        // Only the data prediction is read (`Step::eval_x0_reusing`: no eps pass).
        let x0 = step.eval_x0_reusing(&x, step.t0, cache)?;
        let (from, to) = (
            Level::at(step.schedule, step.t0),
            Level::at(step.schedule, step.t1),
        );
        if to.is_data() {
            return Ok(scale_reusing(&x0, to.alpha, x));
        }
        let h = to.lambda - from.lambda;
        let keep = -(-2.0 * h).exp_m1(); // 1 - e^{-2h}
        let std = match self.variance {
            PosteriorVariance::Posterior => {
                let exact = NoiseControl {
                    eta: 1.0,
                    s_noise: 1.0,
                };
                super::exp_noise_coef(&from, &to, &exact)
            }
            PosteriorVariance::Forward => from.alpha * from.rho * keep.max(0.0).sqrt(),
        };
        // The posterior mean `alpha1 [e^{-2h} y0 + (1 - e^{-2h}) x0_hat]` (the `exp_sde_step` frame
        // at eta = 1) and the noise in one checked pass.
        let a = to.alpha / from.alpha * (-2.0 * h).exp();
        let out = move_with_noise(
            x,
            a,
            &x0,
            to.alpha * keep,
            std,
            noise,
            (step.t0, step.t1),
            cache,
        )?;
        cache.recycle(x0);
        Ok(out)
    }
}
