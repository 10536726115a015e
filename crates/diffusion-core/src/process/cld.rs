//! Critically-damped Langevin diffusion (CLD): data `x` coupled to a velocity `v`,
//! `dx = M^{-1} v beta dt`, `dv = (-x - Gamma M^{-1} v) beta dt + sqrt(2 Gamma beta) dW`,
//! with critical damping `Gamma = 2 sqrt(M)` and stationary law `N(0, diag(1, M))`.
//!
//! Paper: Dockhorn, Vahdat & Kreis (2022), "Score-Based Generative Modeling with Critically-Damped
//! Langevin Diffusion", arXiv:2112.07068, Eq. (5) (the forward SDE) and App. B.1 (the closed-form
//! perturbation kernel). With `B = B(t)`, `a = 2B/Gamma` and `c = 4B/Gamma`, the mean map is
//! `Phi = e^{-a} [[1 + a, B/M], [-B, 1 - a]]` and the covariance from a deterministic `(x0, v0)` is
//! `Sigma_xx = 1 - e^{-c}(1 + c + c^2/2)`, `Sigma_xv = (Gamma/4) c^2 e^{-c}`,
//! `Sigma_vv = (Gamma^2/4) [1 - e^{-c}(1 - c + c^2/2)]`; a random initial velocity
//! `v0 ~ N(0, gamma M)` (the paper's HSM setting) adds `Phi diag(0, gamma M) Phi^T`. These are the
//! App. B expressions regrouped (checked in the tests against the CLD-SGM `var()` form, against
//! the matrix exponential of [`MultivariateSde`] and against Euler-Maruyama Monte Carlo).
//! `Sigma_xx` uses a series for small `c` (the direct form cancels catastrophically there).
//! Defaults follow CLD-SGM's CIFAR-10 configuration: `M = 0.25` (`M^{-1} = 4`), `gamma = 0.04`,
//! `beta = 4` constant, `t in [0, 1]`.

use super::linalg::mat2_apply;
use super::linear_sde::{MultivariateSde, PhaseKernel, PhaseProcess};
use super::time_change::AffineBeta;
use crate::error::{CoreError, Result};
use crate::noise::NoiseSource;
use crate::state::{Phase, State};
use nalgebra::{DMatrix, Matrix2};

/// Critically-damped Langevin diffusion with mass `M`, friction `Gamma = 2 sqrt(M)`, initial
/// velocity variance `gamma M` and rate `beta(t)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cld {
    mass: f64,
    gamma: f64,
    beta: AffineBeta,
}

impl Default for Cld {
    /// CLD-SGM's CIFAR-10 setting: `M = 0.25`, `gamma = 0.04`, `beta = 4`.
    fn default() -> Self {
        Cld {
            mass: 0.25,
            gamma: 0.04,
            beta: AffineBeta::constant(4.0).expect("4 is a valid rate"),
        }
    }
}

impl Cld {
    /// CLD with mass `mass > 0`, initial velocity variance factor `gamma >= 0` (the initial
    /// velocity is `N(0, gamma M)`) and rate `beta`.
    pub fn new(mass: f64, gamma: f64, beta: AffineBeta) -> Result<Self> {
        if !(mass.is_finite() && mass > 0.0) {
            return Err(CoreError::invalid(
                "mass",
                format!("must be finite and > 0, got {mass}"),
            ));
        }
        if !(gamma.is_finite() && gamma >= 0.0) {
            return Err(CoreError::invalid(
                "gamma",
                format!("must be finite and >= 0, got {gamma}"),
            ));
        }
        Ok(Cld { mass, gamma, beta })
    }

    /// The mass `M`.
    pub fn mass(&self) -> f64 {
        self.mass
    }

    /// The critical friction `Gamma = 2 sqrt(M)`.
    pub fn friction(&self) -> f64 {
        2.0 * self.mass.sqrt()
    }

    /// The variance `gamma M` of the initial velocity.
    pub fn initial_velocity_variance(&self) -> f64 {
        self.gamma * self.mass
    }

    /// The rate `beta(t)`.
    pub fn time_change(&self) -> AffineBeta {
        self.beta
    }

    /// The stationary covariance `diag(1, M)` of `(x, v)`.
    pub fn stationary_cov(&self) -> Matrix2<f64> {
        Matrix2::new(1.0, 0.0, 0.0, self.mass)
    }

    /// The same process as a [`MultivariateSde`]: `F = [[0, 1/M], [-1, -Gamma/M]]`,
    /// `G = [0, sqrt(2 Gamma)]^T`.
    pub fn sde(&self) -> MultivariateSde {
        let (m, g) = (self.mass, self.friction());
        let f = DMatrix::from_row_slice(2, 2, &[0.0, 1.0 / m, -1.0, -g / m]);
        let gm = DMatrix::from_row_slice(2, 1, &[0.0, (2.0 * g).sqrt()]);
        MultivariateSde::new(f, gm, self.beta).expect("finite CLD matrices")
    }

    /// The closed-form transition from a deterministic `(x0, v0)` at time 0 to time `t >= 0`.
    pub fn transition(&self, t: f64) -> Result<PhaseKernel> {
        check_time(t)?;
        let b = self.beta.integral(t);
        let g = self.friction();
        let a = 2.0 * b / g;
        let c = 2.0 * a;
        let e1 = (-a).exp();
        let e2 = e1 * e1;
        let phi = Matrix2::new(1.0 + a, b / self.mass, -b, 1.0 - a) * e1;
        let sxx = one_minus_exp_times_taylor2(c);
        let sxv = 0.25 * g * c * c * e2;
        let svv = 0.25 * g * g * (-(-c).exp_m1() + e2 * (c - 0.5 * c * c));
        PhaseKernel::new(phi, Matrix2::new(sxx, sxv, sxv, svv))
    }

    /// The perturbation kernel `p(x_t, v_t | x0)` with the initial velocity marginalized,
    /// `v0 ~ N(0, gamma M)`: mean map `Phi` (applied to `(x0, 0)`) and covariance
    /// `Phi diag(0, gamma M) Phi^T + Sigma(t)`.
    pub fn mean_cov(&self, t: f64) -> Result<PhaseKernel> {
        self.marginal_kernel(t)
    }

    /// Draws `(x_t, v_t)`: from the given `v0` when `Some` (deterministic start), otherwise with
    /// `v0 ~ N(0, gamma M)` marginalized ([`Cld::mean_cov`]). Draws `eps_x` then `eps_v`.
    pub fn perturb<S: State>(
        &self,
        x0: &S,
        v0: Option<&S>,
        t: f64,
        noise: &mut dyn NoiseSource<S>,
    ) -> Result<Phase<S>> {
        self.draw_phase(x0, v0, t, noise)
    }

    /// [`Cld::perturb`] with given standard normal `eps` (for reproducible DSM targets).
    pub fn perturb_with<S: State>(
        &self,
        x0: &S,
        v0: Option<&S>,
        t: f64,
        eps: &Phase<S>,
    ) -> Result<Phase<S>> {
        self.perturb_phase(x0, v0, t, eps)
    }

    /// The exact score `grad_(x,v) log p_t(x, v)` of the marginal at time `t` when the data is
    /// `N(mu, std^2)` independently per coordinate and `v0 ~ N(0, gamma M)`. An oracle for tests
    /// and samplers. Errors where the marginal is singular (`t = 0` with `std = 0` or `gamma = 0`).
    pub fn gaussian_data_score<S: State>(
        &self,
        z: &Phase<S>,
        t: f64,
        mu: &S,
        std: f64,
    ) -> Result<Phase<S>> {
        self.gaussian_phase_score(z, t, mu, std)
    }

    /// The forward drift `beta(t) (v / M, -x - Gamma v / M)`.
    pub fn drift<S: State>(&self, z: &Phase<S>, t: f64) -> Phase<S> {
        let (m, g, b) = (self.mass, self.friction(), self.beta.beta(t));
        mat2_apply(&(Matrix2::new(0.0, 1.0 / m, -1.0, -g / m) * b), &z.x, &z.v)
    }

    /// The diffusion coefficient of the velocity, `sqrt(2 Gamma beta(t))` (the position has none).
    pub fn velocity_diffusion(&self, t: f64) -> f64 {
        (2.0 * self.friction() * self.beta.beta(t)).max(0.0).sqrt()
    }
}

pub(crate) fn check_time(t: f64) -> Result<()> {
    if t.is_finite() && t >= 0.0 {
        Ok(())
    } else {
        Err(CoreError::invalid(
            "t",
            format!("must be finite and >= 0, got {t}"),
        ))
    }
}

/// `1 - e^{-c} (1 + c + c^2/2)` (the regularized lower incomplete gamma `P(3, c)`), by its series
/// `e^{-c} sum_{k>=3} c^k / k!` for small `c` where the direct form cancels.
pub(crate) fn one_minus_exp_times_taylor2(c: f64) -> f64 {
    if c <= 0.0 {
        return 0.0;
    }
    if c > 1.0 {
        return 1.0 - (-c).exp() * (1.0 + c + 0.5 * c * c);
    }
    let mut term = c * c * c / 6.0;
    let mut sum: f64 = 0.0;
    let mut k = 3.0;
    while term > 1e-18 * sum.max(1e-300) {
        sum += term;
        k += 1.0;
        term *= c / k;
    }
    (-c).exp() * sum
}

impl PhaseProcess for Cld {
    fn phase_transition(&self, t: f64) -> Result<PhaseKernel> {
        self.transition(t)
    }
    fn v0_variance(&self) -> f64 {
        self.initial_velocity_variance()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::HostNoise;
    use nalgebra::DVector;
    use ndarray::Array1;

    /// The App. B variance as written in the CLD-SGM reference (`sde_lib.py`, `CLD.var`), with
    /// initial variances `var0x`, `var0v` and `g = 1/Gamma`.
    fn app_b_var(cld: &Cld, t: f64, var0x: f64, var0v: f64) -> [f64; 3] {
        let b = cld.time_change().integral(t);
        let f = cld.friction();
        let g = 1.0 / f;
        let m = (-4.0 * b * g).exp();
        let xx = var0x + 1.0 / m - 1.0
            + 4.0 * b * g * (var0x - 1.0)
            + 4.0 * b * b * g * g * (var0x - 2.0)
            + 16.0 * g.powi(4) * b * b * var0v;
        let xv = -var0x * b + 4.0 * g * g * b * var0v
            - 2.0 * g * b * b * (var0x - 2.0)
            - 8.0 * g.powi(3) * b * b * var0v;
        let vv = f * f * (1.0 / m - 1.0) / 4.0 + f * b - 4.0 * g * b * var0v
            + 4.0 * g * g * b * b * var0v
            + var0v
            + b * b * (var0x - 2.0);
        [xx * m, xv * m, vv * m]
    }

    #[test]
    fn closed_form_equals_app_b_and_the_matrix_exponential() {
        for cld in [
            Cld::default(),
            Cld::new(1.0, 0.5, AffineBeta::new(0.3, 2.0).unwrap()).unwrap(),
        ] {
            let sde = cld.sde();
            for &t in &[1e-4, 0.05, 0.3, 1.0, 3.0] {
                let k = cld.mean_cov(t).unwrap();
                let ab = app_b_var(&cld, t, 0.0, cld.initial_velocity_variance());
                let c = k.cov();
                for (got, want) in [(c[(0, 0)], ab[0]), (c[(0, 1)], ab[1]), (c[(1, 1)], ab[2])] {
                    assert!(
                        (got - want).abs() < 1e-12 + 1e-9 * want.abs(),
                        "t {t}: {got} vs {want}"
                    );
                }
                let exact = cld.transition(t).unwrap();
                let vl = sde.phase_kernel(0.0, t).unwrap();
                assert!((exact.phi() - vl.phi()).abs().max() < 1e-12, "phi at {t}");
                let d = (exact.cov() - vl.cov()).abs();
                assert!(
                    d.max() < 1e-13 + 1e-10 * exact.cov().abs().max(),
                    "cov at {t}"
                );
            }
        }
        // The paper's mean: e^{-2B/Gamma} (2B/Gamma x0 + 4B/Gamma^2 v0 + x0, -B x0 - 2B/Gamma v0 + v0).
        let cld = Cld::default();
        let (b, g) = (cld.time_change().integral(0.2), cld.friction());
        let (x0, v0) = (1.5, -0.3);
        let e = (-2.0 * b / g).exp();
        let phi = cld.transition(0.2).unwrap().phi();
        let mx = phi[(0, 0)] * x0 + phi[(0, 1)] * v0;
        let mv = phi[(1, 0)] * x0 + phi[(1, 1)] * v0;
        assert!((mx - e * (2.0 * b / g * x0 + 4.0 * b / (g * g) * v0 + x0)).abs() < 1e-14);
        assert!((mv - e * (-b * x0 - 2.0 * b / g * v0 + v0)).abs() < 1e-14);
    }

    #[test]
    fn kernel_matches_euler_maruyama_and_reaches_the_stationary_law() {
        // 20k paths, 1000 steps of 2.5e-4 (decay rate 2 beta / Gamma = 8, so 0.002 per step: the
        // EM weak bias is about 0.1%, a tenth of a standard error). Margin: max standardized
        // deviation < 5 over 2 + 4 entries.
        let cld = Cld::default();
        let t = 0.25;
        let x0 = 1.3;
        let mean0 = DVector::from_vec(vec![x0, 0.0]);
        let cov0 = DMatrix::from_row_slice(2, 2, &[0.0, 0.0, 0.0, cld.initial_velocity_variance()]);
        let mc = cld
            .sde()
            .euler_maruyama(&mean0, &cov0, t, 1000, 20_000, &mut HostNoise::new(5))
            .unwrap();
        let k = cld.mean_cov(t).unwrap();
        let mean = k.phi() * nalgebra::Vector2::new(x0, 0.0);
        let mean = DVector::from_vec(vec![mean[0], mean[1]]);
        let c = k.cov();
        let cov = DMatrix::from_row_slice(2, 2, &[c[(0, 0)], c[(0, 1)], c[(1, 0)], c[(1, 1)]]);
        let z = mc.max_z_score(&mean, &cov);
        assert!(z < 5.0, "max z {z}");
        // Far out: N(0, diag(1, M)) regardless of the start.
        let far = cld.mean_cov(20.0).unwrap();
        assert!(far.phi().abs().max() < 1e-12);
        assert!((far.cov() - cld.stationary_cov()).abs().max() < 1e-12);
    }

    #[test]
    fn perturb_samples_have_the_kernel_moments() {
        // 40k coordinates, each an independent draw. Standard errors: mean <= sqrt(C/n) < 0.005,
        // variance <= C sqrt(2/n) < 0.008; margins are 5 standard errors.
        let cld = Cld::default();
        let t = 0.4;
        let x0 = Array1::from_elem(40_000, 0.7);
        let z = cld.perturb(&x0, None, t, &mut HostNoise::new(2)).unwrap();
        let k = cld.mean_cov(t).unwrap();
        let (mx, mv) = (k.phi()[(0, 0)] * 0.7, k.phi()[(1, 0)] * 0.7);
        let n = 40_000.0;
        let (ex, ev) = (z.x.mean().unwrap(), z.v.mean().unwrap());
        let c = k.cov();
        assert!((ex - mx).abs() < 5.0 * (c[(0, 0)] / n).sqrt());
        assert!((ev - mv).abs() < 5.0 * (c[(1, 1)] / n).sqrt());
        let cxx = z.x.iter().map(|a| (a - mx).powi(2)).sum::<f64>() / n;
        let cxv =
            z.x.iter()
                .zip(z.v.iter())
                .map(|(a, b)| (a - mx) * (b - mv))
                .sum::<f64>()
                / n;
        let cvv = z.v.iter().map(|b| (b - mv).powi(2)).sum::<f64>() / n;
        let se = |i: usize, j: usize| ((c[(i, i)] * c[(j, j)] + c[(i, j)].powi(2)) / n).sqrt();
        assert!(
            (cxx - c[(0, 0)]).abs() < 5.0 * se(0, 0),
            "{cxx} {}",
            c[(0, 0)]
        );
        assert!(
            (cxv - c[(0, 1)]).abs() < 5.0 * se(0, 1),
            "{cxv} {}",
            c[(0, 1)]
        );
        assert!(
            (cvv - c[(1, 1)]).abs() < 5.0 * se(1, 1),
            "{cvv} {}",
            c[(1, 1)]
        );
        // A deterministic start: zero v0 and no v0 variance give the transition kernel.
        let v0 = Array1::zeros(3);
        let eps = Phase::new(Array1::zeros(3), Array1::zeros(3));
        let z = cld
            .perturb_with(&Array1::from_elem(3, 1.0), Some(&v0), t, &eps)
            .unwrap();
        assert!((z.x[0] - cld.transition(t).unwrap().phi()[(0, 0)]).abs() < 1e-15);
        assert!(cld.perturb_with(&v0, None, -1.0, &eps).is_err());
    }

    #[test]
    fn gaussian_score_satisfies_steins_identity() {
        // E[s(z)] = 0 and E[s(z) (z - m)^T] = -I under the true marginal. Each product has variance
        // (P_ii C_jj + 1) at most, so with 40k draws the standard error is <= 0.04 here; the margin
        // is 5 standard errors. A sign error in the score gives +1 instead of -1.
        let cld = Cld::default();
        let (t, mu, std) = (0.3, -0.4, 0.6);
        let n = 40_000;
        let mut noise = HostNoise::new(9);
        let x0 = Array1::from_vec(noise.normals(n)).mapv(|e| mu + std * e);
        let z = cld.perturb(&x0, None, t, &mut noise).unwrap();
        let mu_s = Array1::from_elem(n, mu);
        let s = cld.gaussian_data_score(&z, t, &mu_s, std).unwrap();
        let k = cld.transition(t).unwrap();
        let (mx, mv) = (k.phi()[(0, 0)] * mu, k.phi()[(1, 0)] * mu);
        let c = k.phi()
            * Matrix2::new(std * std, 0.0, 0.0, cld.initial_velocity_variance())
            * k.phi().transpose()
            + k.cov();
        let p = c.try_inverse().unwrap();
        let rx = z.x.mapv(|a| a - mx);
        let rv = z.v.mapv(|a| a - mv);
        let nf = n as f64;
        let e = |a: &Array1<f64>, b: &Array1<f64>| (a * b).sum() / nf;
        let pairs = [
            (e(&s.x, &rx), -1.0, p[(0, 0)] * c[(0, 0)] + 1.0),
            (e(&s.x, &rv), 0.0, p[(0, 0)] * c[(1, 1)]),
            (e(&s.v, &rx), 0.0, p[(1, 1)] * c[(0, 0)]),
            (e(&s.v, &rv), -1.0, p[(1, 1)] * c[(1, 1)] + 1.0),
        ];
        for (got, want, var) in pairs {
            assert!(
                (got - want).abs() < 5.0 * (var / nf).sqrt(),
                "{got} vs {want} (se {})",
                (var / nf).sqrt()
            );
        }
        assert!(s.x.mean().unwrap().abs() < 5.0 * (p[(0, 0)] / nf).sqrt());
        assert!(s.v.mean().unwrap().abs() < 5.0 * (p[(1, 1)] / nf).sqrt());
        // No score where the marginal is singular.
        let zero = Cld::new(0.25, 0.0, AffineBeta::constant(4.0).unwrap()).unwrap();
        assert!(zero.gaussian_data_score(&z, 0.0, &mu_s, 0.0).is_err());
    }

    #[test]
    fn small_c_series_agrees_with_the_direct_form() {
        for &c in &[0.5_f64, 0.9, 1.0] {
            let direct = 1.0 - (-c).exp() * (1.0 + c + 0.5 * c * c);
            assert!((one_minus_exp_times_taylor2(c) - direct).abs() < 1e-15);
        }
        // Leading term c^3/6 for tiny c.
        let c = 1e-6;
        assert!((one_minus_exp_times_taylor2(c) / (c * c * c / 6.0) - 1.0).abs() < 1e-5);
        assert!(Cld::new(0.0, 0.1, AffineBeta::constant(1.0).unwrap()).is_err());
        assert!(Cld::new(1.0, -0.1, AffineBeta::constant(1.0).unwrap()).is_err());
    }
}
