//! Phase-space Langevin diffusion (PSLD) and the "complete recipe" behind it: for any positive
//! semi-definite `D` and skew-symmetric `Q`, the SDE
//! `dz = -beta(t) (D + Q) grad H(z) dt + sqrt(2 beta(t) D) dW`, `H(x, v) = x^2/2 + v^2/(2M)`,
//! leaves `exp(-H) = N(0, diag(1, M))` invariant. Acting per coordinate on `(x, v)` phase states.
//!
//! Paper: Pandey & Mandt (2023), "A Complete Recipe for Diffusion Generative Models",
//! arXiv:2303.01748, Sec. 3 (the recipe specialized to `z = (x, v)` with constant `D`, `Q`; PSLD
//! takes `D = (1/2) diag(gamma, M nu)`, `Q = (1/2) [[0, -1], [1, 0]]`, critical damping
//! `M^{-1} = (gamma - nu)^2 / 4`, initial momentum `N(0, kappa M)`); Ma, Chen & Fox (2015),
//! "A Complete Recipe for Stochastic Gradient MCMC", arXiv:1506.04696, Theorem 1 (with constant
//! `D`, `Q` the correction term `Gamma` vanishes). The drift matrix is `F = -(D + Q) diag(1, 1/M)`
//! and the stationarity is the Lyapunov identity `F S + S F^T + 2D = 0` at `S = diag(1, M)`.
//! The kernel is the exact transition of [`MultivariateSde`]; CLD is `D = diag(0, Gamma)`,
//! `Q = [[0, -1], [1, 0]]` ([`Psld::from_cld`]). Defaults follow the PSLD CIFAR-10 configuration
//! (`gamma = 0.01`, `nu = 4.01`, `kappa = 0.04`, `beta = 8`).

use super::cld::{check_time, Cld};
use super::linalg::{from_matrix2, mat2_apply, psd_cholesky};
use super::linear_sde::{MultivariateSde, PhaseKernel, PhaseProcess};
use super::time_change::AffineBeta;
use crate::error::{CoreError, Result};
use crate::noise::NoiseSource;
use crate::state::{Phase, State};
use nalgebra::{DMatrix, Matrix2};

/// The complete-recipe phase-space SDE with dissipation `D` (PSD), rotation `Q = [[0, -q], [q, 0]]`,
/// mass `M`, initial momentum variance `kappa M` and rate `beta(t)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Psld {
    d: Matrix2<f64>,
    q: f64,
    mass: f64,
    kappa: f64,
    sde: MultivariateSde,
}

impl Default for Psld {
    /// The PSLD CIFAR-10 setting: `gamma = 0.01`, `nu = 4.01` (so `M = 0.25`), `kappa = 0.04`,
    /// `beta = 8`.
    fn default() -> Self {
        Psld::paper(
            0.01,
            4.01,
            0.04,
            AffineBeta::constant(8.0).expect("valid rate"),
        )
        .expect("valid PSLD defaults")
    }
}

impl Psld {
    /// The recipe with dissipation `d` (symmetric PSD), rotation `q` (`Q = [[0, -q], [q, 0]]`),
    /// mass `mass > 0`, initial momentum variance factor `kappa >= 0` and rate `beta`.
    pub fn recipe(
        d: Matrix2<f64>,
        q: f64,
        mass: f64,
        kappa: f64,
        beta: AffineBeta,
    ) -> Result<Self> {
        if d.iter().any(|v| !v.is_finite()) || !q.is_finite() {
            return Err(CoreError::invalid("D/q", "entries must be finite"));
        }
        if (d[(0, 1)] - d[(1, 0)]).abs() > 1e-12 * (1.0 + d.abs().max()) {
            return Err(CoreError::invalid("D", "must be symmetric"));
        }
        psd_cholesky(&from_matrix2(&d))?;
        if !(mass.is_finite() && mass > 0.0) {
            return Err(CoreError::invalid(
                "mass",
                format!("must be finite and > 0, got {mass}"),
            ));
        }
        if !(kappa.is_finite() && kappa >= 0.0) {
            return Err(CoreError::invalid(
                "kappa",
                format!("must be finite and >= 0, got {kappa}"),
            ));
        }
        let skew = Matrix2::new(0.0, -q, q, 0.0);
        let f = -(d + skew) * Matrix2::new(1.0, 0.0, 0.0, 1.0 / mass);
        let sde = MultivariateSde::from_noise_covariance(
            from_matrix2(&f),
            from_matrix2(&(d * 2.0)),
            beta,
        )?;
        Ok(Psld {
            d,
            q,
            mass,
            kappa,
            sde,
        })
    }

    /// PSLD's parameterization: `D = (1/2) diag(gamma, M nu)`, `q = 1/2`, critical damping
    /// `M = 4 / (gamma - nu)^2`; needs `gamma, nu >= 0` with `gamma != nu`.
    pub fn paper(gamma: f64, nu: f64, kappa: f64, beta: AffineBeta) -> Result<Self> {
        if !(gamma.is_finite() && gamma >= 0.0 && nu.is_finite() && nu >= 0.0) {
            return Err(CoreError::invalid(
                "gamma/nu",
                format!("must be finite and >= 0, got {gamma}, {nu}"),
            ));
        }
        if gamma == nu {
            return Err(CoreError::invalid(
                "gamma/nu",
                "must differ (critical damping M = 4 / (gamma - nu)^2)",
            ));
        }
        let mass = 4.0 / (gamma - nu).powi(2);
        let d = Matrix2::new(0.5 * gamma, 0.0, 0.0, 0.5 * mass * nu);
        Self::recipe(d, 0.5, mass, kappa, beta)
    }

    /// CLD as a special case: `D = diag(0, Gamma)`, `q = 1`, the same mass, initial velocity
    /// variance and rate.
    pub fn from_cld(cld: &Cld) -> Self {
        let d = Matrix2::new(0.0, 0.0, 0.0, cld.friction());
        let kappa = cld.initial_velocity_variance() / cld.mass();
        Self::recipe(d, 1.0, cld.mass(), kappa, cld.time_change()).expect("CLD is a valid recipe")
    }

    /// The dissipation matrix `D`.
    pub fn dissipation(&self) -> Matrix2<f64> {
        self.d
    }

    /// The rotation `q` of `Q = [[0, -q], [q, 0]]`.
    pub fn rotation(&self) -> f64 {
        self.q
    }

    /// The mass `M`.
    pub fn mass(&self) -> f64 {
        self.mass
    }

    /// The variance `kappa M` of the initial momentum.
    pub fn initial_velocity_variance(&self) -> f64 {
        self.kappa * self.mass
    }

    /// The stationary covariance `diag(1, M)`.
    pub fn stationary_cov(&self) -> Matrix2<f64> {
        Matrix2::new(1.0, 0.0, 0.0, self.mass)
    }

    /// The process as a [`MultivariateSde`] (`F = -(D + Q) diag(1, 1/M)`, `G G^T = 2D`).
    pub fn sde(&self) -> &MultivariateSde {
        &self.sde
    }

    /// The exact transition from a deterministic `(x0, v0)` at time 0 to time `t >= 0`.
    pub fn transition(&self, t: f64) -> Result<PhaseKernel> {
        check_time(t)?;
        self.sde.phase_kernel(0.0, t)
    }

    /// The perturbation kernel with the initial momentum marginalized, `v0 ~ N(0, kappa M)`.
    pub fn mean_cov(&self, t: f64) -> Result<PhaseKernel> {
        self.marginal_kernel(t)
    }

    /// Draws `(x_t, v_t)` from `x0` and the given `v0`, or with `v0 ~ N(0, kappa M)` marginalized
    /// when `None`. Draws `eps_x` then `eps_v`.
    pub fn perturb<S: State>(
        &self,
        x0: &S,
        v0: Option<&S>,
        t: f64,
        noise: &mut dyn NoiseSource<S>,
    ) -> Result<Phase<S>> {
        self.draw_phase(x0, v0, t, noise)
    }

    /// The exact marginal score at time `t` when the data is `N(mu, std^2)` per coordinate and
    /// `v0 ~ N(0, kappa M)`.
    pub fn gaussian_data_score<S: State>(
        &self,
        z: &Phase<S>,
        t: f64,
        mu: &S,
        std: f64,
    ) -> Result<Phase<S>> {
        self.gaussian_phase_score(z, t, mu, std)
    }

    /// The forward drift `-beta(t) (D + Q) (x, v / M)`.
    pub fn drift<S: State>(&self, z: &Phase<S>, t: f64) -> Phase<S> {
        let f = self.sde.drift_matrix();
        let m = Matrix2::new(f[(0, 0)], f[(0, 1)], f[(1, 0)], f[(1, 1)]);
        mat2_apply(&(m * self.sde.time_change().beta(t)), &z.x, &z.v)
    }

    /// The diffusion matrix `sqrt(2 beta(t) D)` as a lower-triangular factor.
    pub fn diffusion(&self, t: f64) -> DMatrix<f64> {
        self.sde.diffusion_at(t)
    }
}

impl PhaseProcess for Psld {
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

    fn random_recipe(noise: &mut HostNoise) -> Psld {
        let a = noise.normals(4);
        let a = Matrix2::new(a[0], a[1], a[2], a[3]);
        // PD dissipation (smallest eigenvalue >= 0.1) so the process mixes.
        let d = a * a.transpose() * 0.5 + Matrix2::identity() * 0.1;
        let q = 4.0 * noise.uniform() - 2.0;
        let mass = 0.1 + 2.9 * noise.uniform();
        Psld::recipe(d, q, mass, 0.3, AffineBeta::new(1.0, 2.0).unwrap()).unwrap()
    }

    #[test]
    fn stationary_law_is_n0_diag1m_for_random_d_and_q() {
        let mut noise = HostNoise::new(17);
        for _ in 0..20 {
            let p = random_recipe(&mut noise);
            let s = from_matrix2(&p.stationary_cov());
            let res = p.sde().lyapunov_residual(&s);
            assert!(res.abs().max() < 1e-12, "Lyapunov residual {res}");
            // Propagate a far-from-stationary start to B(t) = 30 + 900 = 930: forgotten.
            let start = Matrix2::new(5.0, -0.5, -0.5, 0.2);
            let k = p.transition(30.0).unwrap();
            let cov = k.phi() * start * k.phi().transpose() + k.cov();
            assert!(k.phi().abs().max() < 1e-10, "{}", k.phi());
            assert!(
                (cov - p.stationary_cov()).abs().max() < 1e-9,
                "{cov} vs M = {}",
                p.mass()
            );
        }
        // Power: a drift that ignores the mass, -(D + Q), is not stationary at diag(1, M != 1).
        let p = random_recipe(&mut noise);
        let skew = Matrix2::new(0.0, -p.rotation(), p.rotation(), 0.0);
        let wrong = MultivariateSde::from_noise_covariance(
            from_matrix2(&(-(p.dissipation() + skew))),
            from_matrix2(&(p.dissipation() * 2.0)),
            AffineBeta::constant(1.0).unwrap(),
        )
        .unwrap();
        let r = wrong.lyapunov_residual(&from_matrix2(&p.stationary_cov()));
        assert!(r.abs().max() > 1e-2 * (p.mass() - 1.0).abs());
    }

    #[test]
    fn cld_is_the_special_case() {
        let cld = Cld::default();
        let p = Psld::from_cld(&cld);
        for &t in &[0.01, 0.2, 0.7] {
            let (a, b) = (cld.mean_cov(t).unwrap(), p.mean_cov(t).unwrap());
            assert!((a.phi() - b.phi()).abs().max() < 1e-12);
            assert!((a.cov() - b.cov()).abs().max() < 1e-12);
        }
    }

    #[test]
    fn paper_parameterization_matches_the_psld_reference_formulas() {
        // Mean and covariance as written in mandt-lab/PSLD `main/models/sde/psld.py`
        // (`_mean`, `_cov`), with xx_0 = 0, mm_0 = kappa M.
        let p = Psld::default();
        let (gamma, nu, kappa) = (0.01_f64, 4.01_f64, 0.04_f64);
        let m_inv = (gamma - nu).powi(2) / 4.0;
        let m = 1.0 / m_inv;
        assert!((p.mass() - m).abs() < 1e-12);
        let t = 0.15;
        let b = 8.0 * t;
        let k = p.mean_cov(t).unwrap();
        let sm = (-(nu + gamma) / 4.0 * b).exp();
        let phi = Matrix2::new(
            (nu - gamma) / 4.0 * b + 1.0,
            (gamma - nu).powi(2) / 8.0 * b,
            -0.5 * b,
            (gamma - nu) / 4.0 * b + 1.0,
        ) * sm;
        assert!((k.phi() - phi).abs().max() < 1e-13);
        let (xx0, mm0) = (0.0, kappa * m);
        let sf = (-(nu + gamma) / 2.0 * b).exp();
        let inv = 1.0 / sf;
        let b2 = b * b;
        let xx = (m_inv / 4.0 * b2 * xx0
            + m_inv * m_inv / 4.0 * b2 * mm0
            + (nu - gamma) / 2.0 * b * xx0
            - m_inv / 2.0 * b2
            + (gamma - nu) / 2.0 * b
            + inv
            - 1.0
            + xx0)
            * sf;
        let xm = ((gamma - nu) / 8.0 * b2 * xx0 + m_inv * (gamma - nu) / 8.0 * b2 * mm0
            - 0.5 * b * xx0
            + m_inv / 2.0 * b * mm0
            + (nu - gamma) / 4.0 * b2)
            * sf;
        let mm = (0.25 * b2 * xx0 + m_inv / 4.0 * b2 * mm0 + (gamma - nu) / 2.0 * b * mm0
            - 0.5 * b2
            + m * (nu - gamma) / 2.0 * b
            + m * (inv - 1.0)
            + mm0)
            * sf;
        let c = k.cov();
        assert!((c[(0, 0)] - xx).abs() < 1e-11, "{} vs {xx}", c[(0, 0)]);
        assert!((c[(0, 1)] - xm).abs() < 1e-11, "{} vs {xm}", c[(0, 1)]);
        assert!((c[(1, 1)] - mm).abs() < 1e-11, "{} vs {mm}", c[(1, 1)]);
        // The reference drift: (beta/2) (m_inv v - gamma x, -nu v - x).
        let z = Phase::new(ndarray::arr1(&[0.8]), ndarray::arr1(&[-0.3]));
        let dr = p.drift(&z, 0.5);
        assert!((dr.x[0] - 4.0 * (m_inv * -0.3 - gamma * 0.8)).abs() < 1e-12);
        assert!((dr.v[0] - 4.0 * (-nu * -0.3 - 0.8)).abs() < 1e-12);
        assert!(Psld::paper(1.0, 1.0, 0.0, AffineBeta::constant(1.0).unwrap()).is_err());
    }

    #[test]
    fn random_recipe_kernel_matches_euler_maruyama() {
        // 20k paths, 1000 steps over t in [0, 0.4] (beta <= 1.8, ||F|| <= ~6: about 0.4% EM bias
        // at most, well under a standard error of the covariance, 1%). Margin: max z < 5.
        let p = random_recipe(&mut HostNoise::new(4));
        let t = 0.4;
        let mean0 = DVector::from_vec(vec![0.9, -0.2]);
        let cov0 = DMatrix::from_row_slice(2, 2, &[0.05, 0.0, 0.0, p.initial_velocity_variance()]);
        let (mean, cov) = p.sde().marginal(t, &mean0, &cov0).unwrap();
        let mc = p
            .sde()
            .euler_maruyama(&mean0, &cov0, t, 1000, 20_000, &mut HostNoise::new(8))
            .unwrap();
        let z = mc.max_z_score(&mean, &cov);
        assert!(z < 5.0, "max z {z}");
    }
}
