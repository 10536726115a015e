//! Analytic networks: the exact denoiser of a Gaussian mixture written in tch ops, as a
//! [`TimeNet`], so an exact model can stand in for a trained one (a teacher for distillation, an
//! oracle for the losses' tests).
//!
//! Paper: Karras, Aittala, Aila & Laine (2022), "Elucidating the Design Space of Diffusion-Based
//! Generative Models", arXiv:2206.00364, Eq. (57) (the ideal denoiser of a finite mixture:
//! posterior-weighted component means); for a Gaussian component `N(mu, Sigma)` and
//! `x_t = alpha x0 + sigma eps` the posterior mean is
//! `mu + alpha Sigma (alpha^2 Sigma + sigma^2 I)^{-1} (x_t - alpha mu)` and the responsibilities are
//! `softmax_k(ln w_k + ln N(x_t; alpha mu_k, alpha^2 Sigma_k + sigma^2 I))`.
//!
//! [`GmmNet`] evaluates this in the eigenbasis of each component covariance (computed once on the
//! host), in double precision, differentiably with respect to the state (so it can sit inside a
//! JVP or a loss); the schedule coefficients are host numbers, so it is not differentiable with
//! respect to the time input. The network's time input is the schedule's time `t`; its output is
//! the chosen [`Output`] of the schedule (`eps`, `x0`, `v`, score or velocity), optionally with
//! the state scaled on the way in and the output scaled on the way out (sCM's
//! `F(x_t / sigma_d, t) = velocity / sigma_d` under TrigFlow is `input_scale = output_scale^-1 =
//! sigma_d`, see [`GmmNet::trigflow`]).

use super::TimeNet;
use crate::denoiser::Output;
use crate::error::{ModelError, Result};
use diffusion_core::schedule::TrigFlow;
use diffusion_core::{Coeffs, GaussianMixture, NoiseSchedule};
use tch::{Device, Kind, Tensor};

struct Component {
    log_weight: f64,
    /// `[1, d]`.
    mean: Tensor,
    /// `[d, d]`, eigenvectors as columns.
    vecs: Tensor,
    /// `[1, d]`.
    vals: Tensor,
}

/// The exact denoiser of a Gaussian mixture as a network (see the module documentation).
pub struct GmmNet {
    comps: Vec<Component>,
    dim: usize,
    schedule: Box<dyn NoiseSchedule>,
    output: Output,
    input_scale: f64,
    output_scale: f64,
    device: Device,
}

impl std::fmt::Debug for GmmNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GmmNet")
            .field("components", &self.comps.len())
            .field("dim", &self.dim)
            .field("schedule", &self.schedule.name())
            .field("output", &self.output)
            .field("input_scale", &self.input_scale)
            .field("output_scale", &self.output_scale)
            .finish()
    }
}

impl GmmNet {
    /// The exact `output` of `mixture` diffused by `schedule`, on `device`.
    pub fn new(
        mixture: &GaussianMixture,
        schedule: Box<dyn NoiseSchedule>,
        output: Output,
        device: Device,
    ) -> Result<Self> {
        let dim = mixture.dim();
        let comps = mixture
            .weights()
            .iter()
            .zip(mixture.components())
            .map(|(&w, g)| {
                let eig = g.cov().clone().symmetric_eigen();
                let vals: Vec<f64> = eig.eigenvalues.iter().map(|v| v.max(0.0)).collect();
                // Row-major copy of the eigenvector matrix (columns are eigenvectors).
                let mut vecs = Vec::with_capacity(dim * dim);
                for i in 0..dim {
                    for j in 0..dim {
                        vecs.push(eig.eigenvectors[(i, j)]);
                    }
                }
                let mean: Vec<f64> = g.mean().iter().copied().collect();
                let opts = (Kind::Double, device);
                Component {
                    log_weight: w.ln(),
                    mean: Tensor::from_slice(&mean)
                        .reshape([1, dim as i64])
                        .to_device(opts.1),
                    vecs: Tensor::from_slice(&vecs)
                        .reshape([dim as i64, dim as i64])
                        .to_device(opts.1),
                    vals: Tensor::from_slice(&vals)
                        .reshape([1, dim as i64])
                        .to_device(opts.1),
                }
            })
            .collect();
        Ok(GmmNet {
            comps,
            dim,
            schedule,
            output,
            input_scale: 1.0,
            output_scale: 1.0,
            device,
        })
    }

    /// sCM's TrigFlow network `F(x_t / sigma_d, t)`: the exact PF-ODE velocity `dx_t/dt` of the
    /// mixture under TrigFlow(`sigma_d`), divided by `sigma_d`, of the input multiplied by
    /// `sigma_d` (Lu & Song 2024, Eq. (3)-(4)).
    pub fn trigflow(mixture: &GaussianMixture, sigma_d: f64, device: Device) -> Result<Self> {
        let mut net = GmmNet::new(
            mixture,
            Box::new(TrigFlow::new(sigma_d)?),
            Output::Velocity,
            device,
        )?;
        net.input_scale = sigma_d;
        net.output_scale = 1.0 / sigma_d;
        Ok(net)
    }

    /// Multiplies the input state by `input` and the output by `output` (both finite, nonzero).
    pub fn with_scales(mut self, input: f64, output: f64) -> Result<Self> {
        for (name, v) in [("input_scale", input), ("output_scale", output)] {
            if !(v.is_finite() && v != 0.0) {
                return Err(ModelError::invalid(
                    name,
                    format!("must be finite and nonzero, got {v}"),
                ));
            }
        }
        self.input_scale = input;
        self.output_scale = output;
        Ok(self)
    }

    /// The schedule the mixture is diffused by.
    pub fn schedule(&self) -> &dyn NoiseSchedule {
        self.schedule.as_ref()
    }

    /// The exact posterior mean `E[x0 | x_t]` for states `x` (`[B, d]`, any float kind) at
    /// per-sample schedule times `t`, in double precision.
    pub fn x0(&self, x: &Tensor, t: &[f64]) -> Result<Tensor> {
        let d = self.dim as i64;
        if x.dim() != 2 || x.size()[1] != d || x.size()[0] != t.len() as i64 {
            return Err(ModelError::Shape {
                context: "GmmNet input (one time per row)".into(),
                expected: vec![t.len() as i64, d],
                got: x.size(),
            });
        }
        let x = x.to_kind(Kind::Double).to_device(self.device);
        let col = |v: Vec<f64>| {
            Tensor::from_slice(&v)
                .reshape([-1, 1])
                .to_device(self.device)
        };
        let cs: Vec<Coeffs> = t
            .iter()
            .map(|&ti| Coeffs::at(self.schedule.as_ref(), ti))
            .collect();
        let a = col(cs.iter().map(|c| c.alpha).collect());
        let s2 = col(cs.iter().map(|c| c.sigma * c.sigma).collect());
        let mut logps = Vec::with_capacity(self.comps.len());
        let mut means = Vec::with_capacity(self.comps.len());
        for c in &self.comps {
            // Coordinates in the eigenbasis: y = (x - alpha mu) V.
            let y = (&x - &a * &c.mean).matmul(&c.vecs);
            let var = a.square() * &c.vals + &s2;
            let logp = -0.5
                * (y.square() / &var + var.log()).sum_dim_intlist(1, false, Kind::Double)
                + c.log_weight;
            let m = &c.mean + (&y * (&a * &c.vals / &var)).matmul(&c.vecs.tr());
            logps.push(logp);
            means.push(m);
        }
        let r = Tensor::stack(&logps, 1).softmax(1, Kind::Double); // [B, K]
        let m = Tensor::stack(&means, 1); // [B, K, d]
        Ok((m * r.unsqueeze(-1)).sum_dim_intlist(1, false, Kind::Double))
    }
}

impl TimeNet for GmmNet {
    fn forward_t(&self, x: &Tensor, t: &Tensor, class: Option<&Tensor>) -> Result<Tensor> {
        if class.is_some() {
            return Err(ModelError::invalid(
                "class",
                "GmmNet is an unconditional model",
            ));
        }
        let b = super::check_time(x, t, "GmmNet")?;
        let times: Vec<f64> =
            Vec::<f64>::try_from(&t.to_kind(Kind::Double).to_device(Device::Cpu))?;
        let xs = x.to_kind(Kind::Double).to_device(self.device) * self.input_scale;
        let x0 = self.x0(&xs, &times)?;
        let cs: Vec<Coeffs> = times
            .iter()
            .map(|&ti| Coeffs::at(self.schedule.as_ref(), ti))
            .collect();
        let col = |f: &dyn Fn(&Coeffs) -> f64| {
            Tensor::from_slice(&cs.iter().map(f).collect::<Vec<_>>())
                .reshape([b, 1])
                .to_device(self.device)
        };
        let out = match self.output {
            Output::Sample => x0,
            other => {
                if let Some(c) = cs.iter().find(|c| c.sigma.is_nan() || c.sigma <= 0.0) {
                    return Err(ModelError::invalid(
                        "t",
                        format!(
                            "the {} output needs sigma(t) > 0, got sigma = {}",
                            other.name(),
                            c.sigma
                        ),
                    ));
                }
                let (a, s) = (col(&|c| c.alpha), col(&|c| c.sigma));
                let eps = (&xs - &a * &x0) / &s;
                match other {
                    Output::Epsilon => eps,
                    Output::V => &a * &eps - &s * &x0,
                    Output::Score => -(eps / &s),
                    Output::Velocity => col(&|c| c.d_alpha) * &x0 + col(&|c| c.d_sigma) * &eps,
                    Output::Sample => unreachable!("handled above"),
                }
            }
        };
        Ok((out * self.output_scale).to_kind(x.kind()))
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
    use diffusion_core::schedule::VpLinear;
    use diffusion_core::HostNoise;
    use ndarray::Array2;

    fn mixture() -> GaussianMixture {
        GaussianMixture::new(
            vec![0.3, 0.7],
            vec![vec![-1.0, 0.5], vec![1.5, -0.2]],
            vec![
                vec![vec![0.3, 0.1], vec![0.1, 0.2]],
                vec![vec![0.1, -0.05], vec![-0.05, 0.4]],
            ],
        )
        .unwrap()
    }

    #[test]
    fn matches_the_core_mixture_denoiser() {
        let mix = mixture();
        let sch = VpLinear::default();
        let net = GmmNet::new(&mix, Box::new(sch), Output::Epsilon, Device::Cpu).unwrap();
        let v = HostNoise::new(3).normals(16);
        let x = Array2::from_shape_vec((8, 2), v.clone()).unwrap();
        let xt = Tensor::from_slice(&v).reshape([8, 2]);
        for &t in &[0.05, 0.4, 0.9] {
            let x0 = mix.denoise_t(&sch, t, &x.view()).unwrap();
            let (a, s) = (sch.alpha(t), sch.sigma(t));
            let eps = (&x - &(&x0 * a)) / s;
            let tt = Tensor::full([8], t, (Kind::Double, Device::Cpu));
            let got_eps = net.forward_t(&xt, &tt, None).unwrap();
            let got_x0 = net.x0(&xt, &[t; 8]).unwrap();
            let ge: Vec<f64> = Vec::try_from(got_eps.reshape([-1])).unwrap();
            let gx: Vec<f64> = Vec::try_from(got_x0.reshape([-1])).unwrap();
            for (i, (a, b)) in ge.iter().zip(eps.iter()).enumerate() {
                assert!((a - b).abs() < 1e-9, "t {t} eps[{i}]: {a} vs {b}");
            }
            for (a, b) in gx.iter().zip(x0.iter()) {
                assert!((a - b).abs() < 1e-9, "t {t} x0: {a} vs {b}");
            }
        }
        assert!(net
            .forward_t(&xt, &Tensor::zeros([3], (Kind::Double, Device::Cpu)), None)
            .is_err());
    }
}
