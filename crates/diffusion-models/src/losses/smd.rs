//! Soft Mixture Denoising (SMD): a reverse kernel that is a continuous mixture of Gaussians,
//! indexed by a latent variable the network is conditioned on.
//!
//! Paper: Li, van Breugel & van der Schaar (2023), "Soft Mixture Denoising: Beyond the Expressive
//! Bottleneck of Diffusion Models", arXiv:2309.14068, Sec. 3 (a Gaussian reverse kernel
//! `p(x_{t-1} | x_t)` cannot represent the multimodal true posterior when steps are large:
//! unbounded denoising error) and Sec. 4 (SMD: `p(x_{t-1} | x_t) = int N(x_{t-1}; mu_theta(x_t,
//! z, t), beta~_t I) p(z | x_t) dz`, trained on an upper bound of the negative log-likelihood).
//!
//! Here the latent has a standard normal law, `z ~ N(0, I_m)`, and the mean network is an eps
//! network fed with `[x_t, z]` (its first `d` outputs are read; build it with `data_dim = d + m`).
//! For a step from grid time `t` to `s < t` with `x_s ~ q(x_s | x_t, x0)` (the forward posterior,
//! mean `(a sigma_s^2 / sigma_t^2) x_t + (alpha_s v / sigma_t^2) x0`, variance `beta~ = sigma_s^2 v /
//! sigma_t^2`, `a = alpha_t / alpha_s`, `v = sigma_t^2 - a^2 sigma_s^2`) and `K` latent draws, the
//! per-sample loss is the `K`-sample bound
//! `-ln (1/K) sum_k N(x_s; mu(x_t, z_k), beta~ I) >= -ln p(x_s | x_t)` in expectation (Burda,
//! Grosse & Salakhutdinov 2016, arXiv:1509.00519, Theorem 1), divided by `d` and without the
//! constant `(d/2) ln(2 pi beta~)`. With `K = 1` it is Jensen's bound, whose optimum ignores `z`
//! (it is DDPM's loss, a Gaussian kernel): the mixture needs `K > 1`, which this module uses
//! instead of the paper's single-draw bound; the bound tightens as `K` grows. The sampler
//! ([`SmdLoss::sample`]) draws one `z` per step and adds `sqrt(beta~)` noise, as DDPM's.
//!
//! The authors' code (github.com/vanderschaarlab/smd, `models.py` `GaussianDiffusion.p_losses`
//! and `model_predictions`, `nn.py` `HyperNet`; read 2026-11-27, the paper's Sec. 4 text was not
//! reachable here) trains differently: one latent draw per sample, `eta ~ N(0, I)` of the data's
//! shape, mapped with `x_t` and `t` by an "identifier" network to a latent that modulates
//! hypernetwork layers at the U-Net's input and output, and the plain per-sample MSE of the
//! prediction target (`eps`, `x0` or `v`) as the loss; its samplers draw a fresh `eta` per step.
//! [`SmdLoss::eps_mse`] is that objective with the eps target (the latent fed to the network with
//! `x_t`: the identifier and hypernetwork are one particular architecture for the same
//! conditioning). Its optimum does not use the latent: `z` is independent of `(x0, eps)` given
//! `x_t`, so the minimiser of `E |eps_hat(x_t, z) - eps|^2` is `E[eps | x_t]` for every `z`, the
//! Gaussian kernel of DDPM (`tests/smd.rs` shows it: trained the same way, it stays at the
//! Gaussian kernel's error while the `K`-draw bound splits the modes). The default objective
//! here is therefore the `K`-draw bound.

use super::{check_batch, normals_like, per_row, vector, Objective};
use crate::denoiser::{Output, Parameterization};
use crate::error::{ModelError, Result};
use crate::nets::TimeNet;
use diffusion_core::{HostNoise, NoiseSchedule};
use tch::{Kind, Tensor};

/// The SMD objective and sampler on a fixed grid of `steps` steps (see the module documentation).
pub struct SmdLoss {
    schedule: Box<dyn NoiseSchedule>,
    steps: usize,
    t_start: f64,
    t_end: f64,
    latent_dim: usize,
    draws: usize,
    eps_mse: bool,
}

impl std::fmt::Debug for SmdLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmdLoss")
            .field("schedule", &self.schedule.name())
            .field("steps", &self.steps)
            .field("t_start", &self.t_start)
            .field("t_end", &self.t_end)
            .field("latent_dim", &self.latent_dim)
            .field("draws", &self.draws)
            .field("eps_mse", &self.eps_mse)
            .finish()
    }
}

impl SmdLoss {
    /// SMD on the uniform grid of `steps` steps from `t_start` down to `t_end` (`sigma(t_end) >
    /// 0`), a latent of `latent_dim` dimensions (0: a plain Gaussian kernel, DDPM) and `draws`
    /// latent draws per sample in the bound.
    pub fn new(
        schedule: Box<dyn NoiseSchedule>,
        steps: usize,
        t_start: f64,
        t_end: f64,
        latent_dim: usize,
        draws: usize,
    ) -> Result<Self> {
        if steps == 0 || draws == 0 {
            return Err(ModelError::invalid(
                "steps/draws",
                format!("need at least one step and one draw, got {steps}, {draws}"),
            ));
        }
        let (lo, hi) = schedule.t_range();
        if !(lo <= t_end && t_end < t_start && t_start <= hi) {
            return Err(ModelError::invalid(
                "t_start/t_end",
                format!("need {lo} <= t_end < t_start <= {hi}, got {t_start}, {t_end}"),
            ));
        }
        if !(schedule.sigma(t_end) > 0.0 && schedule.alpha(t_start) > 0.0) {
            return Err(ModelError::invalid(
                "t_start/t_end",
                "need sigma(t_end) > 0 (a proper last kernel) and alpha(t_start) > 0",
            ));
        }
        Ok(SmdLoss {
            schedule,
            steps,
            t_start,
            t_end,
            latent_dim,
            draws,
            eps_mse: false,
        })
    }

    /// The authors' code's objective instead of the bound (see the module documentation): one
    /// latent draw per sample and the per-sample mean of `(eps_hat(x_t, z) - eps)^2`; `draws` is
    /// set to 1. Sampling is unchanged.
    pub fn eps_mse(mut self) -> Self {
        self.eps_mse = true;
        self.draws = 1;
        self
    }

    /// The latent dimension `m`.
    pub fn latent_dim(&self) -> usize {
        self.latent_dim
    }

    fn time(&self, i: usize) -> f64 {
        self.t_end + (self.t_start - self.t_end) * i as f64 / self.steps as f64
    }

    /// `(a sigma_s^2 / sigma_t^2, alpha_s v / sigma_t^2, beta~)` of the step `t -> s`.
    fn posterior(&self, t: f64, s: f64) -> (f64, f64, f64) {
        let sch = self.schedule.as_ref();
        let (at, st) = (sch.alpha(t), sch.sigma(t));
        let (as_, ss) = (sch.alpha(s), sch.sigma(s));
        let a = at / as_;
        let v = (st * st - a * a * ss * ss).max(0.0);
        (
            a * ss * ss / (st * st),
            as_ * v / (st * st),
            ss * ss * v / (st * st),
        )
    }

    /// Latent draw `k` of `z` (`[K, B, m]`), or an empty `[B, 0]` without a latent.
    fn draw(&self, z: &Tensor, k: i64, like: &Tensor) -> Tensor {
        if self.latent_dim > 0 {
            z.get(k)
        } else {
            Tensor::zeros([like.size()[0], 0], (like.kind(), like.device()))
        }
    }

    /// The network's eps prediction `eps_hat(x_t, z)` (`[B, d]`) at per-sample steps `i`.
    fn eps_hat(
        &self,
        net: &dyn TimeNet,
        x_t: &Tensor,
        z: &Tensor,
        i: &[usize],
        class: Option<&Tensor>,
    ) -> Result<Tensor> {
        let d = x_t.size()[1];
        let t: Vec<f64> = i.iter().map(|&k| self.time(k)).collect();
        let input = if self.latent_dim > 0 {
            Tensor::cat(&[x_t.shallow_clone(), z.to_kind(x_t.kind())], 1)
        } else {
            x_t.shallow_clone()
        };
        let out = net.forward_t(
            &input.to_kind(net.kind()).to_device(net.device()),
            &vector(&t, x_t).to_kind(net.kind()).to_device(net.device()),
            class,
        )?;
        if out.dim() != 2 || out.size()[1] < d {
            return Err(ModelError::Shape {
                context: "SMD: network output (at least the data width)".into(),
                expected: vec![x_t.size()[0], d + self.latent_dim as i64],
                got: out.size(),
            });
        }
        Ok(out
            .narrow(1, 0, d)
            .to_kind(x_t.kind())
            .to_device(x_t.device()))
    }

    /// The kernel means `mu(x_t, z)` for latents `z` (`[B, m]`) at per-sample steps `i`.
    fn means(
        &self,
        net: &dyn TimeNet,
        x_t: &Tensor,
        z: &Tensor,
        i: &[usize],
        class: Option<&Tensor>,
    ) -> Result<Tensor> {
        let sch = self.schedule.as_ref();
        let t: Vec<f64> = i.iter().map(|&k| self.time(k)).collect();
        let eps = self.eps_hat(net, x_t, z, i, class)?;
        let a = per_row(&t.iter().map(|&v| sch.alpha(v)).collect::<Vec<_>>(), x_t);
        let s = per_row(&t.iter().map(|&v| sch.sigma(v)).collect::<Vec<_>>(), x_t);
        let x0 = (x_t - s * eps) / a;
        let (cx, c0): (Vec<f64>, Vec<f64>) = i
            .iter()
            .map(|&k| {
                let (cx, c0, _) = self.posterior(self.time(k), self.time(k - 1));
                (cx, c0)
            })
            .unzip();
        Ok(per_row(&cx, x_t) * x_t + per_row(&c0, x_t) * x0)
    }

    /// Per-sample bounds `[B]` at grid steps `i` (`1..=N`: from `t_i` to `t_{i-1}`), forward noise
    /// `eps`, posterior noise `xi` and latents `z` (`[K, B, m]`); with [`SmdLoss::eps_mse`] the
    /// per-sample eps MSE of the first draw (`xi` is then unused).
    pub fn per_sample(
        &self,
        net: &dyn TimeNet,
        x0: &Tensor,
        i: &[usize],
        eps: &Tensor,
        xi: &Tensor,
        z: &Tensor,
        class: Option<&Tensor>,
    ) -> Result<Tensor> {
        check_batch(x0, eps, i.len(), "SMD loss")?;
        check_batch(x0, xi, i.len(), "SMD loss (posterior noise)")?;
        if let Some(k) = i.iter().find(|k| **k == 0 || **k > self.steps) {
            return Err(ModelError::invalid(
                "i",
                format!("steps lie in 1..={}, got {k}", self.steps),
            ));
        }
        let (b, d) = (x0.size()[0], x0.size()[1]);
        let want = [self.draws as i64, b, self.latent_dim as i64];
        if self.latent_dim > 0 && z.size() != want {
            return Err(ModelError::Shape {
                context: "SMD latents".into(),
                expected: want.to_vec(),
                got: z.size(),
            });
        }
        let sch = self.schedule.as_ref();
        let t: Vec<f64> = i.iter().map(|&k| self.time(k)).collect();
        let a = per_row(&t.iter().map(|&v| sch.alpha(v)).collect::<Vec<_>>(), x0);
        let s = per_row(&t.iter().map(|&v| sch.sigma(v)).collect::<Vec<_>>(), x0);
        let x_t = a * x0 + s * eps;
        if self.eps_mse {
            let eps_hat = self.eps_hat(net, &x_t, &self.draw(z, 0, x0), i, class)?;
            return Ok((eps_hat - eps).square().mean_dim(1, false, x0.kind()));
        }
        let post: Vec<(f64, f64, f64)> = i
            .iter()
            .map(|&k| self.posterior(self.time(k), self.time(k - 1)))
            .collect();
        let cx = per_row(&post.iter().map(|p| p.0).collect::<Vec<_>>(), x0);
        let c0 = per_row(&post.iter().map(|p| p.1).collect::<Vec<_>>(), x0);
        let var: Vec<f64> = post.iter().map(|p| p.2).collect();
        let x_s = cx * &x_t
            + c0 * x0
            + per_row(&var.iter().map(|v| v.sqrt()).collect::<Vec<_>>(), x0) * xi;
        // Log-likelihood of each latent's Gaussian component (up to a constant), [K, B].
        let comps: Vec<Tensor> = (0..self.draws as i64)
            .map(|k| -> Result<Tensor> {
                let mu = self.means(net, &x_t, &self.draw(z, k, x0), i, class)?;
                Ok(-(&x_s - mu).square().sum_dim_intlist(1, false, x0.kind())
                    / (vector(&var, x0) * 2.0))
            })
            .collect::<Result<_>>()?;
        let lse = Tensor::stack(&comps, 0).logsumexp(0, false);
        Ok(-(lse - (self.draws as f64).ln()) / d as f64)
    }

    /// `n` samples of dimension `dim` (`[n, dim]`, kind `Float`) by ancestral sampling with the
    /// mixture kernel: from `x ~ N(0, sigma(t_start)^2 I)` (the prior, neglecting the
    /// `alpha(t_start) x0` part), one latent draw and `sqrt(beta~)` noise per step.
    pub fn sample(
        &self,
        net: &dyn TimeNet,
        n: usize,
        dim: usize,
        noise: &mut HostNoise,
    ) -> Result<Tensor> {
        let like = Tensor::zeros([n as i64, dim as i64], (Kind::Float, net.device()));
        let mut x = normals_like(noise, &like) * self.schedule.sigma(self.t_start);
        tch::no_grad(|| -> Result<()> {
            for k in (1..=self.steps).rev() {
                let z = normals_like(
                    noise,
                    &Tensor::zeros(
                        [n as i64, self.latent_dim as i64],
                        (Kind::Float, net.device()),
                    ),
                );
                let mu = self.means(net, &x, &z, &vec![k; n], None)?;
                let (_, _, var) = self.posterior(self.time(k), self.time(k - 1));
                x = mu + normals_like(noise, &like) * var.sqrt();
            }
            Ok(())
        })?;
        Ok(x)
    }
}

impl Objective for SmdLoss {
    fn name(&self) -> String {
        format!(
            "smd({}, {} steps, latent {}, {})",
            self.schedule.name(),
            self.steps,
            self.latent_dim,
            if self.eps_mse {
                "eps mse, 1 draw".to_string()
            } else {
                format!("{} draws", self.draws)
            }
        )
    }

    fn loss(
        &self,
        net: &dyn TimeNet,
        x0: &Tensor,
        class: Option<&Tensor>,
        noise: &mut HostNoise,
    ) -> Result<Tensor> {
        let b = *x0.size().first().unwrap_or(&0) as usize;
        let i: Vec<usize> = (0..b)
            .map(|_| 1 + ((noise.uniform() * self.steps as f64) as usize).min(self.steps - 1))
            .collect();
        let eps = normals_like(noise, x0);
        // The eps objective never reads the posterior noise: no draw for it.
        let xi = if self.eps_mse {
            eps.shallow_clone()
        } else {
            normals_like(noise, x0)
        };
        let z = normals_like(
            noise,
            &Tensor::zeros(
                [self.draws as i64, b as i64, self.latent_dim as i64],
                (x0.kind(), x0.device()),
            ),
        );
        Ok(self
            .per_sample(net, x0, &i, &eps, &xi, &z, class)?
            .mean(x0.kind()))
    }

    /// The network predicts eps from `[x_t, z]`; sample it with [`SmdLoss::sample`] (the
    /// solvers' `TchDenoiser` cannot feed the latent).
    fn parameterization(&self) -> Parameterization {
        Parameterization::Raw(Output::Epsilon)
    }

    fn schedule(&self) -> &dyn NoiseSchedule {
        self.schedule.as_ref()
    }
    fn into_schedule(self: Box<Self>) -> Box<dyn NoiseSchedule> {
        self.schedule
    }
}
