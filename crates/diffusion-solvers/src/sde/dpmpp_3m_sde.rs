//! DPM-Solver++(3M) SDE: the third-order multistep data-prediction exponential integrator of
//! the reverse SDE (k-diffusion's `sample_dpmpp_3m_sde`).
//!
//! Paper: Lu, Zhou, Bao, Chen, Li & Zhu (2022), "DPM-Solver++: Fast Solver for Guided Sampling
//! of Diffusion Probabilistic Models", arXiv:2211.01095, Sec. 4 (data-prediction exponential
//! integrator; the third-order multistep update is that of the authors' code,
//! `multistep_dpm_solver_third_update`), in the stochastic `phi_2`/`phi_3` form of
//! k-diffusion (Crowson); exponential SDE integrators of this kind are analysed by Gonzalez et
//! al. (2023), "SEEDS", arXiv:2305.14267. With
//! `h = lambda1 - lambda0`, `h_eta = (1 + eta) h`, data predictions `D0, D1, D2` (newest first)
//! at gaps `h1 = lambda0 - lambda_{-1}`, `h2 = lambda_{-1} - lambda_{-2}`, `r0 = h1 / h`,
//! `r1 = h2 / h`, `d1_0 = (D0 - D1) / r0`, `d1_1 = (D1 - D2) / r1`,
//! `d1 = d1_0 + (d1_0 - d1_1) r0 / (r0 + r1)`, `d2 = (d1_0 - d1_1) / (r0 + r1)`:
//! `y1 = e^{-h_eta} y0 + (1 - e^{-h_eta}) D0 + phi_2(h_eta) d1 - phi_3(h_eta) d2
//!      + s_noise rho1 sqrt(1 - e^{-2 eta h}) z`, `x1 = alpha1 y1`,
//! `phi_2(z) = (e^{-z} - 1 + z) / z`, `phi_3(z) = phi_2(z) / z - 1/2`. The first step is first
//! order, the second uses `phi_2(h_eta) d1_0` only (the heun form of
//! [`super::DpmSolverPp2MSde`]); the step to noise level 0 returns `alpha1 x0_hat`.
//!
//! Order: for `eta > 0` strong order 1 along a Brownian tree. At `eta = 0` this is the
//! DPM-Solver++(3M) ODE update of k-diffusion / DPM-Solver / diffusers, which is only **second**
//! order: `d2 = (d1_0 - d1_1) / (r0 + r1)` approximates `h^2 D'' / 2`, but the `phi_3` weight
//! integrates the Taylor term `h^2 D''` (the singlestep third-order update of the DPM-Solver
//! code uses `2 (d1_1 - d1_0) / (r2 - r1)`, which does), so the `D''` term of the exact
//! exponential integral is halved and the local error is `O(h^3)`. The default
//! ([`Phi3Weight::KDiffusion`]) keeps these coefficients for parity with k-diffusion (the
//! reference fixtures match `sample_dpmpp_3m_sde` to 1e-6); [`Solver::order`] then reports 2 at
//! `eta = 0`. [`Phi3Weight::Exact`] (registry: `third_order=1`) uses `2 phi_3(h_eta) d2`, the
//! exact weight for every `eta` (with `u = (1 + eta) s` the `D''` term of the stochastic
//! exponential integral is `int_0^{h_eta} e^{-(h_eta - u)} u^2 / (2 (1 + eta)^2) du D'' =
//! -phi_3(h_eta) h^2 D''`), which makes the method third order at `eta = 0` (fitted slopes on a
//! Gaussian mixture: 2.12 with k-diffusion's weight, 3.05 with the exact one; on the Gaussian
//! oracle, whose linear denoiser hides the leading error term, 2.03 and 4.09). The reference
//! fixtures check it against k-diffusion's function with that one coefficient changed. The unit test
//! `k_diffusion_phi_3_term_is_half_the_exact_one` pins the factor.

use super::{exp_sde_step, phi_2, phi_3, NoiseControl};
use crate::error::{Result, SolverError};
use crate::ode::Level;
use crate::solver::{Cache, Solver, Step};
use diffusion_core::{BrownianPath, State};

/// The weight of the second divided difference `d2` (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phi3Weight {
    /// `phi_3(h_eta)`: k-diffusion's (and DPM-Solver's and diffusers') coefficient, which halves
    /// the `D''` term; second order at `eta = 0`.
    #[default]
    KDiffusion,
    /// `2 phi_3(h_eta)`: the exact exponential-integrator weight; third order at `eta = 0`.
    Exact,
}

/// DPM-Solver++(3M) SDE with stochasticity `eta`, noise multiplier `s_noise` and a
/// [`Phi3Weight`]: 1 evaluation per step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DpmSolverPp3MSde {
    ctl: NoiseControl,
    weight: Phi3Weight,
}

impl Default for DpmSolverPp3MSde {
    fn default() -> Self {
        DpmSolverPp3MSde {
            ctl: NoiseControl {
                eta: 1.0,
                s_noise: 1.0,
            },
            weight: Phi3Weight::KDiffusion,
        }
    }
}

impl DpmSolverPp3MSde {
    /// DPM-Solver++(3M) SDE; `eta` and `s_noise` must be finite and `>= 0` (k-diffusion
    /// defaults: 1, 1).
    pub fn new(eta: f64, s_noise: f64) -> Result<Self> {
        Ok(DpmSolverPp3MSde {
            ctl: NoiseControl::new(eta, s_noise)?,
            weight: Phi3Weight::KDiffusion,
        })
    }

    /// The same solver with the given weight of the second divided difference.
    pub fn with_weight(self, weight: Phi3Weight) -> Self {
        DpmSolverPp3MSde { weight, ..self }
    }

    /// The weight from the registry's numeric flag `third_order` (0 = k-diffusion's, 1 = exact).
    pub fn weight_from_flag(third_order: f64) -> Result<Phi3Weight> {
        if third_order == 0.0 {
            Ok(Phi3Weight::KDiffusion)
        } else if third_order == 1.0 {
            Ok(Phi3Weight::Exact)
        } else {
            Err(SolverError::InvalidParameter {
                name: "third_order",
                reason: format!(
                    "must be 0 (k-diffusion's phi_3 weight) or 1 (exact), got {third_order}"
                ),
            })
        }
    }
}

/// Weights on `(D0, D1, D2)` of `phi_2 d1 - c phi_3 d2` (both previous gaps known; `c` is 1 for
/// [`Phi3Weight::KDiffusion`], 2 for [`Phi3Weight::Exact`]) or of `phi_2 d1_0` (only `h1`
/// known), relative to `alpha1`.
fn correction_weights(
    h: f64,
    h_eta: f64,
    h1: f64,
    h2: Option<f64>,
    weight: Phi3Weight,
) -> [f64; 3] {
    let (p2, r0) = (phi_2(h_eta), h1 / h);
    let c = match weight {
        Phi3Weight::KDiffusion => 1.0,
        Phi3Weight::Exact => 2.0,
    };
    match h2 {
        None => [p2 / r0, -p2 / r0, 0.0],
        Some(h2) => {
            let (p3, r1) = (c * phi_3(h_eta), h2 / h);
            let s = r0 + r1;
            // phi_2 d1 - p3 d2 = a d1_0 + b d1_1.
            let a = p2 * (1.0 + r0 / s) - p3 / s;
            let b = (p3 - p2 * r0) / s;
            [a / r0, -a / r0 + b / r1, -b / r1]
        }
    }
}

impl<S: State> Solver<S> for DpmSolverPp3MSde {
    fn name(&self) -> String {
        let third = match self.weight {
            Phi3Weight::KDiffusion => "",
            Phi3Weight::Exact => ",third_order",
        };
        format!("dpmpp-3m-sde({}{third})", self.ctl.describe())
    }
    fn order(&self) -> f64 {
        match self.weight {
            Phi3Weight::KDiffusion => self.ctl.order(2.0),
            Phi3Weight::Exact => self.ctl.order(3.0),
        }
    }
    fn is_stochastic(&self) -> bool {
        self.ctl.is_stochastic()
    }
    fn step(
        &self,
        step: &Step<'_, S>,
        x: S,
        cache: &mut Cache<S>,
        noise: &mut dyn BrownianPath<S>,
    ) -> Result<S> {
        let sch = step.schedule;
        let e = step.eval(&x, step.t0)?;
        let (from, to) = (Level::at(sch, step.t0), Level::at(sch, step.t1));
        let out = match (cache.back(0), to.is_data()) {
            (Some(p1), false) => {
                let h = to.lambda - from.lambda;
                let l1 = sch.lambda(p1.t);
                let p2 = cache.back(1);
                let h2 = p2.map(|p2| l1 - sch.lambda(p2.t));
                let h_eta = (1.0 + self.ctl.eta) * h;
                let w = correction_weights(h, h_eta, from.lambda - l1, h2, self.weight);
                let mut terms = vec![(w[0], &e.x0), (w[1], &p1.x0)];
                if let Some(p2) = p2 {
                    terms.push((w[2], &p2.x0));
                }
                exp_sde_step(&x, &from, &to, &self.ctl, &e.x0, &terms, noise)?
            }
            _ => exp_sde_step(&x, &from, &to, &self.ctl, &e.x0, &[], noise)?,
        };
        cache.push(e, 2);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correction_weights_expand_k_diffusion_s_divided_differences() {
        // Compare with the divided differences of sample_dpmpp_3m_sde written out on scalars.
        let (h, h_eta, h1, h2) = (0.3, 0.45, 0.25, 0.4);
        let (d0, d1, d2) = (1.3, -0.7, 2.1);
        let (r0, r1) = (h1 / h, h2 / h);
        let d1_0 = (d0 - d1) / r0;
        let d1_1 = (d1 - d2) / r1;
        let dd1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1);
        let dd2 = (d1_0 - d1_1) / (r0 + r1);
        let want = phi_2(h_eta) * dd1 - phi_3(h_eta) * dd2;
        let w = correction_weights(h, h_eta, h1, Some(h2), Phi3Weight::KDiffusion);
        let got = w[0] * d0 + w[1] * d1 + w[2] * d2;
        assert!((got - want).abs() < 1e-14, "{got} vs {want}");
        let w = correction_weights(h, h_eta, h1, Some(h2), Phi3Weight::Exact);
        let got = w[0] * d0 + w[1] * d1 + w[2] * d2;
        let want = phi_2(h_eta) * dd1 - 2.0 * phi_3(h_eta) * dd2;
        assert!((got - want).abs() < 1e-14, "{got} vs {want}");
        for weight in [Phi3Weight::KDiffusion, Phi3Weight::Exact] {
            let w = correction_weights(h, h_eta, h1, None, weight);
            let got = w[0] * d0 + w[1] * d1 + w[2] * d2;
            assert!((got - phi_2(h_eta) * d1_0).abs() < 1e-14);
        }
    }

    #[test]
    fn k_diffusion_phi_3_term_is_half_the_exact_one() {
        // Data prediction D(lambda) = lambda^2 around lambda0 = 0 on a uniform grid: the exact
        // exponential-integrator term is int_0^h e^{-(h-s)} s^2 ds = h^2 - 2h + 2 - 2e^{-h};
        // k-diffusion's correction (D'(0) = 0, so only the phi_3 term acts) gives half of it,
        // the exact weight all of it.
        for h in [0.05_f64, 0.3, 1.0] {
            let exact = h * h - 2.0 * h + 2.0 - 2.0 * (-h).exp();
            for (weight, ratio) in [(Phi3Weight::KDiffusion, 0.5), (Phi3Weight::Exact, 1.0)] {
                let w = correction_weights(h, h, h, Some(h), weight);
                let scheme = w[0] * 0.0 + w[1] * h * h + w[2] * 4.0 * h * h;
                assert!(
                    (scheme / exact - ratio).abs() < 1e-9,
                    "h {h}, {weight:?}: {scheme} vs {exact}"
                );
            }
        }
    }
}
