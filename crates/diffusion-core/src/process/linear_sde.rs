//! A linear multivariate SDE on a small per-coordinate augmented space,
//! `dz = beta(t) F z dt + sqrt(beta(t)) G dW`, `z in R^k`, with its exact Gaussian transition
//! (mean map by the matrix exponential, covariance by Van Loan's block exponential), the `k = 2`
//! kernel acting on phase states, and an Euler-Maruyama Monte-Carlo moment check for tests.
//!
//! Paper: Singhal, Goldstein & Ranganath (2023), "Where to Diffuse, How to Diffuse, and How to Get
//! Back: Automated Learning for Multivariate Diffusions" (MDM), arXiv:2302.07261, Sec. 3: a linear
//! inference SDE on data plus auxiliary variables has Gaussian transitions whose mean and covariance
//! come from the matrix exponential; when `F` and `G G^T` are constant up to one scalar rate
//! `beta(t)`, the time change `u = B(t) = int beta` makes the SDE time-homogeneous,
//! `dz = F z du + G dW_u`, so `p(z_t | z_s) = N(exp(F tau) z_s, Sigma(tau))` with
//! `tau = B(t) - B(s)` and `Sigma(tau) = int_0^tau exp(F u) G G^T exp(F^T u) du`, the solution of
//! the Lyapunov ODE `Sigma' = F Sigma + Sigma F^T + G G^T`. (Equation numbers of the MDM paper were
//! not re-checked; the formulas are the standard linear-SDE ones, tested below against Monte Carlo.)
//!
//! Conventions: `F` is `k x k`, `G` is `k x m`; data is component 0 of `z`. Every coordinate of a
//! state carries its own independent copy of this `k`-dimensional process.

use super::linalg::{from_matrix2, mat2_apply, psd_cholesky, symmetrize, to_matrix2, van_loan};
use super::time_change::AffineBeta;
use crate::error::{CoreError, Result};
use crate::noise::{HostNoise, NoiseSource};
use crate::state::{Phase, State};
use nalgebra::{DMatrix, DVector, Matrix2};

/// The linear SDE `dz = beta(t) F z dt + sqrt(beta(t)) G dW` on `R^k` (one copy per data
/// coordinate), with exact transitions.
#[derive(Debug, Clone, PartialEq)]
pub struct MultivariateSde {
    f: DMatrix<f64>,
    g: DMatrix<f64>,
    q: DMatrix<f64>,
    beta: AffineBeta,
}

impl MultivariateSde {
    /// The SDE with drift matrix `f` (`k x k`), diffusion matrix `g` (`k x m`) and rate `beta`.
    pub fn new(f: DMatrix<f64>, g: DMatrix<f64>, beta: AffineBeta) -> Result<Self> {
        let k = f.nrows();
        if k == 0 || f.ncols() != k {
            return Err(CoreError::ShapeMismatch {
                context: "MultivariateSde drift matrix F",
                expected: vec![k.max(1), k.max(1)],
                got: vec![f.nrows(), f.ncols()],
            });
        }
        if g.nrows() != k || g.ncols() == 0 {
            return Err(CoreError::ShapeMismatch {
                context: "MultivariateSde diffusion matrix G",
                expected: vec![k, g.ncols().max(1)],
                got: vec![g.nrows(), g.ncols()],
            });
        }
        if f.iter().chain(g.iter()).any(|v| !v.is_finite()) {
            return Err(CoreError::invalid("F/G", "entries must be finite"));
        }
        let q = symmetrize(&(&g * g.transpose()));
        Ok(MultivariateSde { f, g, q, beta })
    }

    /// The SDE with drift matrix `f` and noise covariance rate `q = G G^T` (symmetric PSD, `k x k`);
    /// `G` is taken as the semidefinite Cholesky factor of `q`.
    pub fn from_noise_covariance(
        f: DMatrix<f64>,
        q: DMatrix<f64>,
        beta: AffineBeta,
    ) -> Result<Self> {
        if q.nrows() != q.ncols() {
            return Err(CoreError::ShapeMismatch {
                context: "MultivariateSde noise covariance",
                expected: vec![q.nrows(), q.nrows()],
                got: vec![q.nrows(), q.ncols()],
            });
        }
        if (&q - q.transpose()).abs().max() > 1e-12 * (1.0 + q.abs().max()) {
            return Err(CoreError::invalid("noise covariance", "must be symmetric"));
        }
        let g = psd_cholesky(&q)?;
        Self::new(f, g, beta)
    }

    /// The dimension `k` of the augmented space per data coordinate.
    pub fn dim(&self) -> usize {
        self.f.nrows()
    }

    /// The drift matrix `F` (per unit of `B`).
    pub fn drift_matrix(&self) -> &DMatrix<f64> {
        &self.f
    }

    /// The diffusion matrix `G` (per unit of `B`).
    pub fn diffusion_matrix(&self) -> &DMatrix<f64> {
        &self.g
    }

    /// The noise covariance rate `Q = G G^T` (per unit of `B`).
    pub fn noise_covariance(&self) -> &DMatrix<f64> {
        &self.q
    }

    /// The rate `beta(t)`.
    pub fn time_change(&self) -> AffineBeta {
        self.beta
    }

    /// The drift at time `t` as `(A(t), b(t)) = (beta(t) F, 0)`, the form
    /// [`euler_maruyama_moments`] takes.
    pub fn affine_drift(&self, t: f64) -> (DMatrix<f64>, DVector<f64>) {
        (&self.f * self.beta.beta(t), DVector::zeros(self.dim()))
    }

    /// The diffusion matrix at time `t`, `sqrt(beta(t)) G`.
    pub fn diffusion_at(&self, t: f64) -> DMatrix<f64> {
        &self.g * self.beta.beta(t).max(0.0).sqrt()
    }

    /// The exact transition from time `s` to `t >= s`: `(Phi, Sigma)` with
    /// `z_t | z_s ~ N(Phi z_s, Sigma)`.
    pub fn transition(&self, s: f64, t: f64) -> Result<(DMatrix<f64>, DMatrix<f64>)> {
        check_times(s, t)?;
        van_loan(&self.f, &self.q, self.beta.integral_between(s, t))
    }

    /// The marginal law at time `t` of `z_0 ~ N(mean0, cov0)`: `N(Phi mean0, Phi cov0 Phi^T + Sigma)`.
    pub fn marginal(
        &self,
        t: f64,
        mean0: &DVector<f64>,
        cov0: &DMatrix<f64>,
    ) -> Result<(DVector<f64>, DMatrix<f64>)> {
        check_moments(self.dim(), mean0, cov0)?;
        let (phi, sigma) = self.transition(0.0, t)?;
        let cov = symmetrize(&(&phi * cov0 * phi.transpose() + sigma));
        Ok((&phi * mean0, cov))
    }

    /// The transition from `s` to `t` as a [`PhaseKernel`] (only for `k = 2`).
    pub fn phase_kernel(&self, s: f64, t: f64) -> Result<PhaseKernel> {
        if self.dim() != 2 {
            return Err(CoreError::ShapeMismatch {
                context: "MultivariateSde::phase_kernel needs k = 2",
                expected: vec![2, 2],
                got: vec![self.dim(), self.dim()],
            });
        }
        let (phi, sigma) = self.transition(s, t)?;
        PhaseKernel::new(to_matrix2(&phi), to_matrix2(&sigma))
    }

    /// The Lyapunov residual `F C + C F^T + G G^T`, zero exactly when `N(0, C)` is stationary.
    pub fn lyapunov_residual(&self, cov: &DMatrix<f64>) -> DMatrix<f64> {
        &self.f * cov + cov * self.f.transpose() + &self.q
    }

    /// Euler-Maruyama Monte-Carlo moments of `z_t` from `z_0 ~ N(mean0, cov0)` (see
    /// [`euler_maruyama_moments`]).
    pub fn euler_maruyama(
        &self,
        mean0: &DVector<f64>,
        cov0: &DMatrix<f64>,
        t: f64,
        steps: usize,
        paths: usize,
        noise: &mut HostNoise,
    ) -> Result<SampleMoments> {
        euler_maruyama_moments(
            &|s| self.affine_drift(s),
            &|s| self.diffusion_at(s),
            mean0,
            cov0,
            (0.0, t),
            steps,
            paths,
            noise,
        )
    }
}

fn check_times(s: f64, t: f64) -> Result<()> {
    if s.is_finite() && t.is_finite() && 0.0 <= s && s <= t {
        Ok(())
    } else {
        Err(CoreError::invalid(
            "s, t",
            format!("need finite 0 <= s <= t, got s = {s}, t = {t}"),
        ))
    }
}

fn check_moments(k: usize, mean0: &DVector<f64>, cov0: &DMatrix<f64>) -> Result<()> {
    if mean0.len() != k || cov0.nrows() != k || cov0.ncols() != k {
        return Err(CoreError::ShapeMismatch {
            context: "initial mean / covariance",
            expected: vec![k, k],
            got: vec![mean0.len(), cov0.nrows(), cov0.ncols()],
        });
    }
    Ok(())
}

/// A two-component Gaussian transition applied coordinate-wise to phase states:
/// `(x_t, v_t) = Phi (x_s, v_s) + L eps` with `L L^T = cov`, the same `2 x 2` matrices for every
/// coordinate. Built by [`MultivariateSde::phase_kernel`] or by a closed form (CLD).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhaseKernel {
    phi: Matrix2<f64>,
    cov: Matrix2<f64>,
}

impl PhaseKernel {
    /// A kernel with mean map `phi` and covariance `cov` (symmetric PSD up to rounding).
    pub fn new(phi: Matrix2<f64>, cov: Matrix2<f64>) -> Result<Self> {
        if phi.iter().chain(cov.iter()).any(|v| !v.is_finite()) {
            return Err(CoreError::NonFinite {
                context: "PhaseKernel matrices".into(),
            });
        }
        if (cov[(0, 1)] - cov[(1, 0)]).abs() > 1e-10 * (1.0 + cov.abs().max()) {
            return Err(CoreError::invalid("cov", "must be symmetric"));
        }
        let cov = (cov + cov.transpose()) * 0.5;
        psd_cholesky(&from_matrix2(&cov))?;
        Ok(PhaseKernel { phi, cov })
    }

    /// The identity kernel (zero elapsed time).
    pub fn identity() -> Self {
        PhaseKernel {
            phi: Matrix2::identity(),
            cov: Matrix2::zeros(),
        }
    }

    /// The mean map `Phi`.
    pub fn phi(&self) -> Matrix2<f64> {
        self.phi
    }

    /// The covariance `Sigma` (per coordinate).
    pub fn cov(&self) -> Matrix2<f64> {
        self.cov
    }

    /// The lower-triangular noise factor `L` with `L L^T = Sigma` (degenerate directions give zero
    /// columns).
    pub fn noise_factor(&self) -> Matrix2<f64> {
        // `new` validated PSD, so this cannot fail.
        psd_cholesky(&from_matrix2(&self.cov))
            .map(|l| to_matrix2(&l))
            .unwrap_or_else(|_| Matrix2::zeros())
    }

    /// The conditional mean `Phi (x0, v0)`, with `v0 = 0` when `None`.
    pub fn mean<S: State>(&self, x0: &S, v0: Option<&S>) -> Phase<S> {
        match v0 {
            Some(v0) => mat2_apply(&self.phi, x0, v0),
            None => Phase::new(x0.scale(self.phi[(0, 0)]), x0.scale(self.phi[(1, 0)])),
        }
    }

    /// A draw `Phi (x0, v0) + L eps` for given standard normal `eps` (reproducible; the DSM target
    /// is a function of `eps`).
    pub fn sample<S: State>(&self, x0: &S, v0: Option<&S>, eps: &Phase<S>) -> Phase<S> {
        let mean = self.mean(x0, v0);
        let noise = mat2_apply(&self.noise_factor(), &eps.x, &eps.v);
        mean.axpy(1.0, &noise)
    }

    /// The kernel from a random start `N((x0, v0), cov0)`: same `Phi`, covariance
    /// `Phi cov0 Phi^T + Sigma` (e.g. CLD's `cov0 = diag(0, gamma M)` for a random initial velocity).
    pub fn with_initial_cov(&self, cov0: &Matrix2<f64>) -> Result<Self> {
        PhaseKernel::new(self.phi, self.phi * cov0 * self.phi.transpose() + self.cov)
    }

    /// This kernel followed by `next` (Chapman-Kolmogorov): `(Phi_2 Phi_1, Phi_2 Sigma_1 Phi_2^T + Sigma_2)`.
    pub fn then(&self, next: &PhaseKernel) -> Self {
        PhaseKernel {
            phi: next.phi * self.phi,
            cov: next.phi * self.cov * next.phi.transpose() + next.cov,
        }
    }

    /// The exact score `grad log p(z)` of the marginal of `z = Phi z0 + L eps` when, per coordinate,
    /// `z0 ~ N((mean_x0, 0), cov0)` (Gaussian data, zero-mean initial velocity):
    /// `-C^{-1} (z - Phi (mean_x0, 0))` with `C = Phi cov0 Phi^T + Sigma`. Errors if `C` is singular.
    pub fn gaussian_score<S: State>(
        &self,
        z: &Phase<S>,
        mean_x0: &S,
        cov0: &Matrix2<f64>,
    ) -> Result<Phase<S>> {
        let c = self.phi * cov0 * self.phi.transpose() + self.cov;
        let det = c[(0, 0)] * c[(1, 1)] - c[(0, 1)] * c[(1, 0)];
        if !(det > 1e-300 && det.is_finite()) || det <= 1e-14 * c[(0, 0)] * c[(1, 1)] {
            return Err(CoreError::invalid(
                "cov",
                format!("the marginal covariance is singular (det {det}); no score"),
            ));
        }
        let neg_prec = Matrix2::new(-c[(1, 1)], c[(0, 1)], c[(1, 0)], -c[(0, 0)]) / det;
        let m = self.mean(mean_x0, None);
        let r = z.lincomb(1.0, &m, -1.0);
        Ok(mat2_apply(&neg_prec, &r.x, &r.v))
    }
}

/// A process on `(x, v)` started at `x0` with the initial velocity either given or drawn from
/// `N(0, velocity variance)`: the perturbation kernel, draws and Gaussian-data score shared by CLD
/// and PSLD, from the exact transition.
pub(crate) trait PhaseProcess {
    /// The exact transition from a deterministic `(x0, v0)` at time 0 to time `t`.
    fn phase_transition(&self, t: f64) -> Result<PhaseKernel>;

    /// The variance of the initial velocity when it is marginalized.
    fn v0_variance(&self) -> f64;

    /// The kernel with `v0 ~ N(0, v0_variance)` marginalized: `Phi diag(0, var) Phi^T + Sigma(t)`.
    fn marginal_kernel(&self, t: f64) -> Result<PhaseKernel> {
        self.phase_transition(t)?
            .with_initial_cov(&Matrix2::new(0.0, 0.0, 0.0, self.v0_variance()))
    }

    /// `(x_t, v_t)` for given standard normal `eps`: from `v0` when `Some`, else marginalized.
    fn perturb_phase<S: State>(
        &self,
        x0: &S,
        v0: Option<&S>,
        t: f64,
        eps: &Phase<S>,
    ) -> Result<Phase<S>> {
        let kernel = match v0 {
            Some(_) => self.phase_transition(t)?,
            None => self.marginal_kernel(t)?,
        };
        Ok(kernel.sample(x0, v0, eps))
    }

    /// [`PhaseProcess::perturb_phase`] drawing `eps_x` then `eps_v` from `noise`.
    fn draw_phase<S: State>(
        &self,
        x0: &S,
        v0: Option<&S>,
        t: f64,
        noise: &mut dyn NoiseSource<S>,
    ) -> Result<Phase<S>> {
        let ex = noise.standard_normal(x0);
        let ev = noise.standard_normal(x0);
        self.perturb_phase(x0, v0, t, &Phase::new(ex, ev))
    }

    /// The exact marginal score at `t` for data `N(mu, std^2)` per coordinate and a marginalized
    /// initial velocity.
    fn gaussian_phase_score<S: State>(
        &self,
        z: &Phase<S>,
        t: f64,
        mu: &S,
        std: f64,
    ) -> Result<Phase<S>> {
        if !(std.is_finite() && std >= 0.0) {
            return Err(CoreError::invalid(
                "std",
                format!("must be finite and >= 0, got {std}"),
            ));
        }
        let cov0 = Matrix2::new(std * std, 0.0, 0.0, self.v0_variance());
        self.phase_transition(t)?.gaussian_score(z, mu, &cov0)
    }
}

/// Sample mean and covariance of `paths` Monte-Carlo draws, with the standard errors of each
/// entry for stating test margins.
#[derive(Debug, Clone)]
pub struct SampleMoments {
    /// Sample mean.
    pub mean: DVector<f64>,
    /// Sample covariance (divisor `paths`).
    pub cov: DMatrix<f64>,
    /// Number of draws.
    pub paths: usize,
}

impl SampleMoments {
    /// The largest standardized deviation of these sample moments from the exact `(mean, cov)`:
    /// `max_i |mean_i - m_i| / sqrt(C_ii / n)` and `max_ij |cov_ij - C_ij| / sqrt((C_ii C_jj + C_ij^2) / n)`
    /// (the Gaussian standard errors). Under the exact law each term is approximately standard normal.
    pub fn max_z_score(&self, mean: &DVector<f64>, cov: &DMatrix<f64>) -> f64 {
        let n = self.paths as f64;
        let k = mean.len();
        let mut z: f64 = 0.0;
        for i in 0..k {
            let se = (cov[(i, i)] / n).sqrt().max(1e-300);
            z = z.max((self.mean[i] - mean[i]).abs() / se);
            for j in 0..k {
                let se = ((cov[(i, i)] * cov[(j, j)] + cov[(i, j)].powi(2)) / n)
                    .sqrt()
                    .max(1e-300);
                z = z.max((self.cov[(i, j)] - cov[(i, j)]).abs() / se);
            }
        }
        z
    }
}

/// Euler-Maruyama Monte Carlo for an affine SDE `dz = (A(t) z + b(t)) dt + G(t) dW` on `R^k`:
/// draws `paths` starts from `N(mean0, cov0)`, takes `steps` uniform steps from `t0` to `t1`
/// (coefficients at the left end of each step), and returns the sample moments at `t1`. A check
/// for exact transitions in tests: its weak error is `O((t1 - t0) / steps)`.
pub fn euler_maruyama_moments(
    drift: &dyn Fn(f64) -> (DMatrix<f64>, DVector<f64>),
    diffusion: &dyn Fn(f64) -> DMatrix<f64>,
    mean0: &DVector<f64>,
    cov0: &DMatrix<f64>,
    (t0, t1): (f64, f64),
    steps: usize,
    paths: usize,
    noise: &mut HostNoise,
) -> Result<SampleMoments> {
    let k = mean0.len();
    check_moments(k, mean0, cov0)?;
    if steps == 0 || paths < 2 {
        return Err(CoreError::invalid(
            "steps/paths",
            format!("need steps >= 1 and paths >= 2, got {steps} and {paths}"),
        ));
    }
    if !(t0.is_finite() && t1.is_finite()) {
        return Err(CoreError::invalid("t0/t1", "must be finite"));
    }
    let l0 = psd_cholesky(cov0)?;
    let mut z = vec![0.0; paths * k];
    for p in 0..paths {
        let e = noise.normals(k);
        for i in 0..k {
            z[p * k + i] = mean0[i] + (0..=i).map(|j| l0[(i, j)] * e[j]).sum::<f64>();
        }
    }
    let dt = (t1 - t0) / steps as f64;
    let sdt = dt.abs().sqrt();
    let mut next = vec![0.0; k];
    for n in 0..steps {
        let t = t0 + n as f64 * dt;
        let (a, b) = drift(t);
        let g = diffusion(t);
        if a.nrows() != k || a.ncols() != k || b.len() != k || g.nrows() != k {
            return Err(CoreError::ShapeMismatch {
                context: "euler_maruyama_moments coefficients",
                expected: vec![k, k],
                got: vec![a.nrows(), a.ncols(), b.len(), g.nrows()],
            });
        }
        let m = g.ncols();
        let dw = noise.normals(paths * m);
        for p in 0..paths {
            let zp = &z[p * k..(p + 1) * k];
            for i in 0..k {
                let mut d = b[i];
                for j in 0..k {
                    d += a[(i, j)] * zp[j];
                }
                let mut s = 0.0;
                for j in 0..m {
                    s += g[(i, j)] * dw[p * m + j];
                }
                next[i] = zp[i] + d * dt + s * sdt;
            }
            z[p * k..(p + 1) * k].copy_from_slice(&next);
        }
    }
    let n = paths as f64;
    let mut mean = DVector::<f64>::zeros(k);
    for p in 0..paths {
        for i in 0..k {
            mean[i] += z[p * k + i];
        }
    }
    mean /= n;
    let mut cov = DMatrix::<f64>::zeros(k, k);
    for p in 0..paths {
        for i in 0..k {
            for j in 0..k {
                cov[(i, j)] += (z[p * k + i] - mean[i]) * (z[p * k + j] - mean[j]);
            }
        }
    }
    cov /= n;
    if mean.iter().chain(cov.iter()).any(|v| !v.is_finite()) {
        return Err(CoreError::NonFinite {
            context: "euler_maruyama_moments (step size too large?)".into(),
        });
    }
    Ok(SampleMoments { mean, cov, paths })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_abs(a: &DMatrix<f64>) -> f64 {
        a.iter().fold(0.0, |m, v| m.max(v.abs()))
    }

    /// A three-variable MDM-style diffusion: data plus two auxiliary variables, noise entering the
    /// auxiliaries only, a non-normal stable drift.
    fn three_var() -> MultivariateSde {
        let f = DMatrix::from_row_slice(3, 3, &[-0.2, 1.0, 0.0, -1.0, -0.5, 0.8, 0.0, -0.8, -1.5]);
        let g = DMatrix::from_row_slice(3, 2, &[0.0, 0.0, 0.9, 0.0, 0.3, 1.2]);
        MultivariateSde::new(f, g, AffineBeta::new(0.5, 1.0).unwrap()).unwrap()
    }

    #[test]
    fn transition_is_a_semigroup_and_matches_the_lyapunov_ode() {
        let sde = three_var();
        let (s, t) = (0.3, 0.9);
        let (p1, s1) = sde.transition(0.0, s).unwrap();
        let (p2, s2) = sde.transition(s, t).unwrap();
        let (p, sig) = sde.transition(0.0, t).unwrap();
        assert!(max_abs(&(&p2 * &p1 - &p)) < 1e-13);
        assert!(max_abs(&(&p2 * &s1 * p2.transpose() + &s2 - &sig)) < 1e-13);
        // d Sigma / d tau = F Sigma + Sigma F^T + Q, by a central difference in t.
        let h = 1e-5;
        let (_, sp) = sde.transition(0.0, t + h).unwrap();
        let (_, sm) = sde.transition(0.0, t - h).unwrap();
        let dsig_dt = (sp - sm) / (2.0 * h);
        let rhs = (sde.drift_matrix() * &sig
            + &sig * sde.drift_matrix().transpose()
            + sde.noise_covariance())
            * sde.time_change().beta(t);
        assert!(max_abs(&(dsig_dt - rhs)) < 1e-7);
        // Far out the covariance solves the algebraic Lyapunov equation.
        let (_, big) = sde.transition(0.0, 40.0).unwrap();
        assert!(max_abs(&sde.lyapunov_residual(&big)) < 1e-10);
    }

    #[test]
    fn transition_matches_euler_maruyama_monte_carlo() {
        // 20k paths, 800 steps of size 1.25e-3 (beta <= 1.5, ||F|| <= 2.3: EM weak bias < 0.3%,
        // about 0.3 standard errors). A max standardized deviation below 5 over 3 + 9 entries is
        // the margin; a wrong sign anywhere in F gives z-scores in the hundreds.
        let sde = three_var();
        let mean0 = DVector::from_vec(vec![1.0, -0.5, 0.25]);
        let cov0 = DMatrix::from_diagonal(&DVector::from_vec(vec![0.04, 0.0, 0.09]));
        let t = 1.0;
        let (mean, cov) = sde.marginal(t, &mean0, &cov0).unwrap();
        let mc = sde
            .euler_maruyama(&mean0, &cov0, t, 800, 20_000, &mut HostNoise::new(31))
            .unwrap();
        let z = mc.max_z_score(&mean, &cov);
        assert!(z < 5.0, "max z-score {z}: mc {mc:?} vs {mean} {cov}");
        // The same check against a flipped coupling fails loudly.
        let mut wrong = sde.drift_matrix().clone();
        wrong[(0, 1)] = -wrong[(0, 1)];
        let wrong =
            MultivariateSde::new(wrong, sde.diffusion_matrix().clone(), sde.time_change()).unwrap();
        let (wm, wc) = wrong.marginal(t, &mean0, &cov0).unwrap();
        assert!(mc.max_z_score(&wm, &wc) > 20.0);
    }

    #[test]
    fn phase_kernel_requires_two_components_and_composes() {
        assert!(three_var().phase_kernel(0.0, 0.5).is_err());
        let f = DMatrix::from_row_slice(2, 2, &[0.0, 4.0, -1.0, -4.0]);
        let q = DMatrix::from_row_slice(2, 2, &[0.0, 0.0, 0.0, 2.0]);
        let sde = MultivariateSde::from_noise_covariance(f, q, AffineBeta::constant(4.0).unwrap())
            .unwrap();
        let k1 = sde.phase_kernel(0.0, 0.2).unwrap();
        let k2 = sde.phase_kernel(0.2, 0.5).unwrap();
        let k = sde.phase_kernel(0.0, 0.5).unwrap();
        let c = k1.then(&k2);
        assert!((c.phi() - k.phi()).abs().max() < 1e-13);
        assert!((c.cov() - k.cov()).abs().max() < 1e-13);
        assert!(sde.transition(0.5, 0.2).is_err());
        assert!(MultivariateSde::new(
            DMatrix::zeros(2, 3),
            DMatrix::zeros(2, 1),
            AffineBeta::constant(1.0).unwrap()
        )
        .is_err());
    }
}
