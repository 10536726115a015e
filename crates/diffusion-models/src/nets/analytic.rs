//! `GmmNet`: the exact denoiser of a Gaussian mixture (or a single Gaussian) as a differentiable
//! [`TimeNet`] in tch ops, read through any [`Parameterization`].
//!
//! Paper: Karras, Aittala, Aila & Laine (2022), "Elucidating the Design Space of Diffusion-Based
//! Generative Models", arXiv:2206.00364, Eq. (3) and App. B.3 (the ideal denoiser
//! `D(x; sigma) = E[x_0 | x]`, in closed form for a mixture of Gaussians); Song et al. (2021),
//! "Score-Based Generative Modeling through Stochastic Differential Equations",
//! arXiv:2011.13456 (the exact score as the oracle of the PF-ODE likelihood).
//!
//! Under `x_t = alpha x_0 + sigma eps`, component `k` (weight `w_k`, mean `mu_k`, covariance
//! `Sigma_k = U_k diag(l_k) U_k^T`) diffuses to `N(alpha mu_k, U_k diag(c_k) U_k^T)` with
//! `c_k = alpha^2 l_k + sigma^2`. With `y_k = U_k^T (x - alpha mu_k)`:
//! `log N_k = -1/2 sum y_k^2 / c_k - 1/2 sum ln c_k - d/2 ln(2 pi)`, responsibilities
//! `r_k = softmax_k(ln w_k + log N_k)` and the denoiser
//! `E[x_0 | x] = sum_k r_k (mu_k + U_k (alpha l_k / c_k * y_k))`. All of it is tensor
//! arithmetic on a per-sample `alpha`, `sigma`, so autograd differentiates it in `x` (the
//! divergence of the PF-ODE drift, Hutchinson probes). It is the same mixture as
//! `diffusion_core::GaussianMixture` (whose host implementation is the reference in the tests).
//!
//! What the network sees and answers depends on the [`Parameterization`]:
//! - `Raw(output)`: input `(x_t, t)` with `t` the schedule's time; answer the exact `output`
//!   (`x0`, `eps = (x - alpha x0) / sigma`, `v`, the score or the velocity
//!   `alpha' x0 + sigma' eps`, with `diffusion_core::Coeffs` conventions);
//! - `Edm(precond)`: input `(c_in x_hat, c_noise)` as `EdmPrecond::denoise` feeds it, with
//!   `sigma = exp(4 c_noise)` and `x_hat = input / c_in`; answer the raw `F` with
//!   `c_skip x_hat + c_out F = E[x_0 | x_hat = x_0 + sigma eps]`, so the preconditioned output is
//!   the exact denoiser;
//! - `TrigFlow { sigma_d }` (Lu & Song 2024, arXiv:2410.11081, Eq. (9)): input `(y / sigma_d, s)`
//!   with `s` the TrigFlow time; answer `F = (cos(s) y - E[x_0 | y]) / (sigma_d sin(s))` under
//!   TrigFlow(`sigma_d`) (whatever the stored schedule), i.e. the exact PF-ODE velocity divided by
//!   `sigma_d`, so the parameterization reads back the exact denoiser (a diffusion teacher for
//!   sCM distillation, [`GmmNet::trigflow`]).
//!
//! Computation is in `f64` ([`TimeNet::kind`] is `Double`), on the CPU unless moved with
//! [`GmmNet::to_device`].

use super::{check_time, TimeNet};
use crate::denoiser::{Output, Parameterization};
use crate::error::{ModelError, Result};
use diffusion_core::{Coeffs, Gaussian, GaussianMixture, NoiseSchedule};
use tch::{Device, Kind, Tensor};

/// The exact denoiser of a Gaussian mixture as a network (see the module documentation).
pub struct GmmNet {
    schedule: Box<dyn NoiseSchedule>,
    param: Parameterization,
    dim: i64,
    /// `ln w_k`, `[K]`.
    log_w: Tensor,
    /// `mu_k`, `[K, D]`.
    means: Tensor,
    /// `U_k` (eigenvectors as columns), `[K, D, D]`.
    vecs: Tensor,
    /// `l_k` (eigenvalues), `[K, D]`.
    vals: Tensor,
    device: Device,
}

impl std::fmt::Debug for GmmNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GmmNet")
            .field("schedule", &self.schedule.name())
            .field("param", &self.param)
            .field("dim", &self.dim)
            .field("components", &self.log_w.size()[0])
            .finish()
    }
}

impl GmmNet {
    /// The exact denoiser of `gmm` under `schedule`, answering as `param` asks.
    pub fn new(
        gmm: &GaussianMixture,
        schedule: Box<dyn NoiseSchedule>,
        param: Parameterization,
    ) -> Result<Self> {
        let d = gmm.dim();
        let k = gmm.weights().len();
        let mut means = Vec::with_capacity(k * d);
        let mut covs = Vec::with_capacity(k * d * d);
        for c in gmm.components() {
            means.extend(c.mean().iter().copied());
            for i in 0..d {
                for j in 0..d {
                    covs.push(c.cov()[(i, j)]);
                }
            }
        }
        // Eigen-decompositions of the (symmetric) covariances: eigenvectors as columns.
        let (vals, vecs) = Tensor::from_slice(&covs)
            .reshape([k as i64, d as i64, d as i64])
            .f_linalg_eigh("L")?;
        let vals = vals.clamp_min(0.0);
        let log_w: Vec<f64> = gmm.weights().iter().map(|w| w.ln()).collect();
        let (k, d) = (k as i64, d as i64);
        Ok(GmmNet {
            schedule,
            param,
            dim: d,
            log_w: Tensor::from_slice(&log_w),
            means: Tensor::from_slice(&means).reshape([k, d]),
            vecs,
            vals,
            device: Device::Cpu,
        })
    }

    /// The exact denoiser of the Gaussian `g` (a one-component mixture).
    pub fn gaussian(
        g: &Gaussian,
        schedule: Box<dyn NoiseSchedule>,
        param: Parameterization,
    ) -> Result<Self> {
        Self::new(&GaussianMixture::from_gaussian(g.clone()), schedule, param)
    }

    /// sCM's TrigFlow teacher `F(y / sigma_d, s)` of `gmm` (see the module documentation).
    pub fn trigflow(gmm: &GaussianMixture, sigma_d: f64) -> Result<Self> {
        Self::new(
            gmm,
            Box::new(diffusion_core::schedule::TrigFlow::new(sigma_d)?),
            Parameterization::TrigFlow { sigma_d },
        )
    }

    /// The same network on `device`.
    pub fn to_device(mut self, device: Device) -> Self {
        for t in [
            &mut self.log_w,
            &mut self.means,
            &mut self.vecs,
            &mut self.vals,
        ] {
            *t = t.to_device(device);
        }
        self.device = device;
        self
    }

    /// The schedule the network answers under (the one its `Raw` outputs use).
    pub fn schedule(&self) -> &dyn NoiseSchedule {
        self.schedule.as_ref()
    }

    /// The parameterization its output is meant to be read with.
    pub fn parameterization(&self) -> Parameterization {
        self.param
    }

    /// The data dimension.
    pub fn dim(&self) -> usize {
        self.dim as usize
    }

    fn check_input(&self, x: &Tensor, context: &str) -> Result<Tensor> {
        let size = x.size();
        if size.len() != 2 || size[1] != self.dim {
            return Err(ModelError::Shape {
                context: format!("{context}: states of the mixture"),
                expected: vec![-1, self.dim],
                got: size,
            });
        }
        Ok(x.to_kind(Kind::Double).to_device(self.device))
    }

    /// Per-component quantities: `(log(w_k N_k(x)) [B, K], y [B, K, D], c [B, K, D])`.
    fn components(&self, x: &Tensor, alpha: &Tensor, sigma: &Tensor) -> (Tensor, Tensor, Tensor) {
        let a = alpha.reshape([-1, 1, 1]);
        let s = sigma.reshape([-1, 1, 1]);
        // r = x - alpha mu_k: [B, K, D]; y = U_k^T r.
        let r = x.unsqueeze(1) - &a * self.means.unsqueeze(0);
        let y = r
            .unsqueeze(2)
            .matmul(&self.vecs.unsqueeze(0))
            .squeeze_dim(2);
        let c = a.square() * self.vals.unsqueeze(0) + s.square();
        let ln2pi = (2.0 * std::f64::consts::PI).ln();
        let quad = (y.square() / &c).sum_dim_intlist(-1, false, Kind::Double);
        let logdet = c.log().sum_dim_intlist(-1, false, Kind::Double);
        let log_n = (quad + logdet + self.dim as f64 * ln2pi) * -0.5;
        (log_n + self.log_w.unsqueeze(0), y, c)
    }

    fn coefficient_tensors(&self, alpha: &[f64], sigma: &[f64]) -> Result<(Tensor, Tensor)> {
        if let Some(i) = sigma.iter().position(|s| !(*s > 0.0 && s.is_finite())) {
            return Err(ModelError::invalid(
                "sigma",
                format!(
                    "the diffused mixture needs sigma > 0, got sigma = {} at row {i}",
                    sigma[i]
                ),
            ));
        }
        let opts = (Kind::Double, self.device);
        Ok((
            Tensor::from_slice(alpha).to_kind(opts.0).to_device(opts.1),
            Tensor::from_slice(sigma).to_kind(opts.0).to_device(opts.1),
        ))
    }

    /// `E[x_0 | x_t = x]` for rows `x` (`[B, D]`) with per-row `alpha`, `sigma` (`sigma > 0`),
    /// differentiable in `x`.
    pub fn denoise(&self, x: &Tensor, alpha: &[f64], sigma: &[f64]) -> Result<Tensor> {
        let x = self.check_input(x, "GmmNet::denoise")?;
        let (a, s) = self.coefficient_tensors(alpha, sigma)?;
        self.denoise_t(&x, &a, &s)
    }

    fn denoise_t(&self, x: &Tensor, a: &Tensor, s: &Tensor) -> Result<Tensor> {
        check_time(x, a, "GmmNet alpha")?;
        let (logs, y, c) = self.components(x, a, s);
        let resp = logs.softmax(-1, Kind::Double).unsqueeze(-1); // [B, K, 1]
        let a3 = a.reshape([-1, 1, 1]);
        let gain = y * (a3 * self.vals.unsqueeze(0)) / c; // [B, K, D] in eigen coordinates
                                                          // U_k gain: [B, K, 1, D] x U_k^T.
        let back = gain
            .unsqueeze(2)
            .matmul(&self.vecs.transpose(-1, -2).unsqueeze(0))
            .squeeze_dim(2);
        let per = back + self.means.unsqueeze(0);
        Ok((resp * per).sum_dim_intlist(1, false, Kind::Double))
    }

    /// `log p_t(x)` of each row (`[B]`) under the diffused mixture with per-row `alpha`, `sigma`
    /// (`sigma > 0`), differentiable in `x`.
    pub fn log_density(&self, x: &Tensor, alpha: &[f64], sigma: &[f64]) -> Result<Tensor> {
        let x = self.check_input(x, "GmmNet::log_density")?;
        let (a, s) = self.coefficient_tensors(alpha, sigma)?;
        check_time(&x, &a, "GmmNet alpha")?;
        Ok(self.components(&x, &a, &s).0.logsumexp([-1], false))
    }

    /// `log p_t(x)` of each row at the schedule time `t`.
    pub fn log_density_at(&self, x: &Tensor, t: f64) -> Result<Tensor> {
        let b = *x.size().first().unwrap_or(&0) as usize;
        let (a, s) = (self.schedule.alpha(t), self.schedule.sigma(t));
        self.log_density(x, &vec![a; b], &vec![s; b])
    }
}

fn host(t: &Tensor) -> Result<Vec<f64>> {
    Ok(Vec::<f64>::try_from(
        t.detach()
            .to_kind(Kind::Double)
            .to_device(Device::Cpu)
            .flatten(0, -1),
    )?)
}

impl TimeNet for GmmNet {
    fn forward_t(&self, x: &Tensor, t: &Tensor, _class: Option<&Tensor>) -> Result<Tensor> {
        let x = self.check_input(x, "GmmNet input")?;
        check_time(&x, t, "GmmNet")?;
        let tv = host(t)?;
        match self.param {
            Parameterization::Raw(out) => {
                let c: Vec<Coeffs> = tv
                    .iter()
                    .map(|&ti| Coeffs::at(self.schedule(), ti))
                    .collect();
                let alpha: Vec<f64> = c.iter().map(|c| c.alpha).collect();
                let sigma: Vec<f64> = c.iter().map(|c| c.sigma).collect();
                let (a, s) = self.coefficient_tensors(&alpha, &sigma)?;
                let x0 = self.denoise_t(&x, &a, &s)?;
                let (a, s) = (a.unsqueeze(1), s.unsqueeze(1));
                let eps = || (&x - &a * &x0) / &s;
                let col = |v: Vec<f64>| -> Tensor {
                    Tensor::from_slice(&v).to_device(self.device).unsqueeze(1)
                };
                Ok(match out {
                    Output::Sample => x0,
                    Output::Epsilon => eps(),
                    Output::Score => (&a * &x0 - &x) / s.square(),
                    Output::V => &a * eps() - &s * &x0,
                    Output::Velocity => {
                        let da = col(c.iter().map(|c| c.d_alpha).collect());
                        let ds = col(c.iter().map(|c| c.d_sigma).collect());
                        da * &x0 + ds * eps()
                    }
                })
            }
            Parameterization::Edm(p) => {
                let sigma: Vec<f64> = tv.iter().map(|c| (4.0 * c).exp()).collect();
                let c_in: Vec<f64> = sigma.iter().map(|&s| p.c_in(s)).collect();
                let c_skip: Vec<f64> = sigma.iter().map(|&s| p.c_skip(s)).collect();
                let c_out: Vec<f64> = sigma.iter().map(|&s| p.c_out(s)).collect();
                let (a, s) = self.coefficient_tensors(&vec![1.0; sigma.len()], &sigma)?;
                let col = |v: &[f64]| Tensor::from_slice(v).to_device(self.device).unsqueeze(1);
                let x_hat = &x / col(&c_in);
                let d = self.denoise_t(&x_hat, &a, &s)?;
                Ok((d - col(&c_skip) * &x_hat) / col(&c_out))
            }
            Parameterization::TrigFlow { sigma_d } => {
                let sch = diffusion_core::schedule::TrigFlow::new(sigma_d)?;
                let alpha: Vec<f64> = tv.iter().map(|&s| sch.alpha(s)).collect();
                let sigma: Vec<f64> = tv.iter().map(|&s| sch.sigma(s)).collect();
                let (a, s) = self.coefficient_tensors(&alpha, &sigma)?;
                let y = &x * sigma_d;
                let x0 = self.denoise_t(&y, &a, &s)?;
                Ok((a.unsqueeze(1) * &y - x0) / s.unsqueeze(1))
            }
        }
    }

    fn kind(&self) -> Kind {
        Kind::Double
    }

    fn device(&self) -> Device {
        self.device
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::denoiser::TchDenoiser;
    use crate::precond::EdmPrecond;
    use diffusion_core::schedule::{build, VpLinear};
    use diffusion_core::{Denoiser, HostNoise, Prediction};
    use ndarray::Array2;

    fn mixture() -> GaussianMixture {
        GaussianMixture::new(
            vec![0.3, 0.7],
            vec![vec![1.0, -0.5, 0.2], vec![-1.5, 0.8, 0.0]],
            vec![
                vec![
                    vec![0.5, 0.1, 0.0],
                    vec![0.1, 0.3, 0.05],
                    vec![0.0, 0.05, 0.2],
                ],
                vec![
                    vec![0.2, 0.0, 0.0],
                    vec![0.0, 0.6, -0.1],
                    vec![0.0, -0.1, 0.4],
                ],
            ],
        )
        .unwrap()
    }

    fn rows(x: &Array2<f64>) -> Tensor {
        Tensor::from_slice(x.as_slice().unwrap()).reshape([x.nrows() as i64, x.ncols() as i64])
    }

    #[test]
    fn matches_the_core_mixture_in_every_parameterization() {
        let gmm = mixture();
        let sched = VpLinear::default();
        let x = gmm.sample(7, &mut HostNoise::new(3)) * 0.8;
        let xt = rows(&x);
        for &t in &[0.05, 0.4, 0.9] {
            let exact = gmm.denoise_t(&sched, t, &x.view()).unwrap();
            let logp = gmm.log_density_t(&sched, t, &x.view()).unwrap();
            for out in [
                Output::Sample,
                Output::Epsilon,
                Output::V,
                Output::Score,
                Output::Velocity,
            ] {
                let net = GmmNet::new(&gmm, Box::new(sched), Parameterization::Raw(out)).unwrap();
                let den = TchDenoiser::new(&net, Parameterization::Raw(out), &sched);
                let p = den.predict_tensor(&xt, t).unwrap();
                let c = Coeffs::at(&sched, t);
                let (x0, _) = p.resolve(&xt, &c).unwrap();
                let got = host(&x0).unwrap();
                let err = got
                    .iter()
                    .zip(exact.iter())
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                assert!(err < 1e-9, "t {t} {out:?}: {err}");
                let lp = host(&net.log_density_at(&xt, t).unwrap()).unwrap();
                for (a, b) in lp.iter().zip(&logp) {
                    assert!((a - b).abs() < 1e-10, "{a} vs {b}");
                }
            }
            // EDM preconditioning: the preconditioned output is the exact denoiser, under a
            // schedule with alpha != 1 as well.
            let p = EdmPrecond::new(0.7).unwrap();
            let net = GmmNet::new(&gmm, build("edm").unwrap(), Parameterization::Edm(p)).unwrap();
            let den = TchDenoiser::new(&net, Parameterization::Edm(p), &sched);
            let Prediction::Sample(x0) = den.predict(&xt, t).unwrap() else {
                panic!("EDM answers x0")
            };
            let got = host(&x0).unwrap();
            for (a, b) in got.iter().zip(exact.iter()) {
                assert!((a - b).abs() < 1e-9, "EDM t {t}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn is_differentiable_and_rejects_bad_input() {
        // The Jacobian of a single Gaussian's denoiser is alpha Sigma C^{-1}: its trace is
        // sum_i alpha l_i / (alpha^2 l_i + sigma^2).
        let g = Gaussian::new(vec![0.5, -1.0], vec![vec![2.0, 0.3], vec![0.3, 0.5]]).unwrap();
        let sched = VpLinear::default();
        let net =
            GmmNet::gaussian(&g, Box::new(sched), Parameterization::Raw(Output::Sample)).unwrap();
        let t = 0.3;
        let (a, s) = (sched.alpha(t), sched.sigma(t));
        let x = Tensor::from_slice(&[0.2, 0.1])
            .reshape([1, 2])
            .set_requires_grad(true);
        let d = net.denoise(&x, &[a], &[s]).unwrap();
        let mut tr = 0.0;
        for i in 0..2 {
            let gr = Tensor::run_backward(&[d.select(1, i).sum(Kind::Double)], &[&x], true, false);
            tr += gr[0].double_value(&[0, i]);
        }
        // tr(alpha S (alpha^2 S + sigma^2 I)^{-1}) with the explicit 2 x 2 inverse.
        let (p, q, r) = (2.0, 0.3, 0.5);
        let (m11, m12, m22) = (a * a * p + s * s, a * a * q, a * a * r + s * s);
        let det = m11 * m22 - m12 * m12;
        let want = a * (p * m22 - q * m12 - q * m12 + r * m11) / det;
        assert!((tr - want).abs() < 1e-12, "{tr} vs {want}");
        assert!(net
            .denoise(
                &Tensor::zeros([2, 3], (Kind::Double, Device::Cpu)),
                &[a; 2],
                &[s; 2]
            )
            .is_err());
        assert!(net.denoise(&x, &[a], &[0.0]).is_err());
        let tt = Tensor::from_slice(&[0.1, 0.2]);
        assert!(net.forward_t(&x, &tt, None).is_err());
    }
}
