//! Improved DDPM: learned reverse-process variances, the hybrid loss `L_simple + lambda L_vlb`,
//! the variational bound in bits per dimension, and ancestral sampling on the full or a
//! respaced (fewer-step) chain.
//!
//! Paper: Nichol & Dhariwal (2021), "Improved Denoising Diffusion Probabilistic Models",
//! arXiv:2102.09672, Sec. 3.1, Eq. (13)-(16) (the network outputs `eps` and a per-dimension
//! interpolation `v`; `Sigma = exp(v ln beta_t + (1 - v) ln beta~_t)`; `L_hybrid = L_simple +
//! lambda L_vlb` with `lambda = 0.001` and a stop-gradient on the mean in the `L_vlb` term) and
//! Sec. 4 (sampling on a subsequence `S` of the training steps with `beta_{S_k} = 1 -
//! alpha_bar_{S_k} / alpha_bar_{S_{k-1}}`); Ho, Jain & Abbeel (2020), "Denoising Diffusion
//! Probabilistic Models", arXiv:2006.11239, Eq. (5)-(7) (the bound's terms and the forward
//! posterior `q(x_{t-1} | x_t, x_0)`) and Sec. 3.3 (the discretized Gaussian decoder).
//!
//! Conventions (those of the authors' code, `improved_diffusion/gaussian_diffusion.py`): steps
//! are 0-indexed, `k = 0..T-1` being entry `k` of a [`DdpmDiscrete`] table (the paper's `t =
//! k + 1`; the network sees the table time `k` as its time input, the schedule's own time axis,
//! so a network trained here is also an eps network under [`IddpmLoss::schedule`]). With
//! `alpha_bar_{-1} = 1`:
//!
//! - posterior `q(x_{k-1} | x_k, x_0) = N(c1_k x_0 + c2_k x_k, beta~_k)` with `c1_k = beta_k
//!   sqrt(alpha_bar_{k-1}) / (1 - alpha_bar_k)`, `c2_k = (1 - alpha_bar_{k-1}) sqrt(1 - beta_k) /
//!   (1 - alpha_bar_k)`, `beta~_k = beta_k (1 - alpha_bar_{k-1}) / (1 - alpha_bar_k)` (0 at
//!   `k = 0`, so its log is "clipped": `ln beta~_0 := ln beta~_1`);
//! - model `p(x_{k-1} | x_k) = N(c1_k x0_hat + c2_k x_k, exp(f ln beta_k + (1 - f) ln beta~_k))`
//!   with `x0_hat = (x_k - sqrt(1 - alpha_bar_k) eps_hat) / sqrt(alpha_bar_k)` and `f = (v + 1) /
//!   2`: the network's second output `v` is read on `[-1, 1]` for `[beta~, beta]` (the authors'
//!   `LEARNED_RANGE`; Eq. (15) writes the same interpolation with `f` as the output);
//! - `L_k = KL(q(x_{k-1} | x_k, x_0) || p(x_{k-1} | x_k))` for `k >= 1`, and `L_0 = -ln p(x_0 |
//!   x_{k=0})`, either the discretized Gaussian decoder of 8-bit data on `[-1, 1]` (bins of width
//!   `2 / 255`, open-ended at the edges; [`Decoder::Discretized`], for images) or the continuous
//!   Gaussian density ([`Decoder::Gaussian`], for real-valued data such as the 2-D toys: the
//!   bound is then one on the differential entropy, and may be negative); the prior term `L_T =
//!   KL(q(x_{T-1} | x_0) || N(0, I))` has no parameters.
//!
//! Every term is averaged over the data dimensions and given in **bits** (divided by `ln 2`), as
//! in the authors' code; `L_vlb = sum_k L_k` is estimated from one uniform `k` per sample by `T
//! L_k`, so the hybrid loss of one sample is `mean((eps_hat - eps)^2) + lambda T L_k[sg(eps_hat),
//! v]` (the authors' `vb * num_timesteps / 1000` with `lambda = 1/1000`). The stop-gradient
//! (`sg`) means the `L_vlb` term trains only the variance output; `L_simple` trains the mean.
//! The Gaussian CDF of the discretized decoder is the exact one (`erf`), not the `tanh`
//! approximation of the authors' code.

use super::{check_batch, mean_per_sample, normals_like, per_row, vector, Objective};
use crate::denoiser::{Output, Parameterization};
use crate::error::{ModelError, Result};
use crate::nets::TimeNet;
use diffusion_core::schedule::DdpmDiscrete;
use diffusion_core::{HostNoise, NoiseSchedule};
use serde::{Deserialize, Serialize};
use std::f64::consts::{LN_2, PI};
use tch::{Kind, Tensor};

/// The reverse-process variance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variance {
    /// Learned: `exp(f ln beta_k + (1 - f) ln beta~_k)`, `f = (v + 1) / 2` from the network's
    /// second half of output channels (iDDPM, Eq. (15)).
    Learned,
    /// Fixed `beta~_k` (the posterior variance; DDPM's `sigma^2 = beta~`), clipped at `k = 0`.
    FixedSmall,
    /// Fixed `beta_k` (DDPM's `sigma^2 = beta`), with `beta~_1` at `k = 0` as in the authors'
    /// code.
    FixedLarge,
}

/// The `k = 0` term of the bound: how the model scores the clean data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decoder {
    /// The discretized Gaussian of 8-bit data scaled to `[-1, 1]` (Ho et al. 2020, Sec. 3.3).
    Discretized,
    /// The continuous Gaussian density (real-valued data).
    Gaussian,
}

/// The coefficient tables of a Markov chain of DDPM steps: the full training chain, or a
/// respaced subsequence of it (Nichol & Dhariwal 2021, Sec. 4).
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    timesteps: Vec<usize>,
    betas: Vec<f64>,
    alphas_cumprod: Vec<f64>,
    posterior_variance: Vec<f64>,
    posterior_log_variance_clipped: Vec<f64>,
    coef1: Vec<f64>,
    coef2: Vec<f64>,
}

impl Chain {
    /// The full chain of a table `alpha_bar_0 > alpha_bar_1 > ...` (at least two entries, in
    /// `(0, 1)`).
    pub fn new(alphas_cumprod: &[f64]) -> Result<Chain> {
        let all: Vec<usize> = (0..alphas_cumprod.len()).collect();
        Chain::respaced(alphas_cumprod, &all)
    }

    /// The chain on the entries `timesteps` (strictly increasing, at least two, each below
    /// `alphas_cumprod.len()`) of the full table: `beta_k = 1 - alpha_bar_{S_k} /
    /// alpha_bar_{S_{k-1}}` (`alpha_bar_{S_{-1}} = 1`). The network is evaluated at the original
    /// times `S_k`.
    pub fn respaced(alphas_cumprod: &[f64], timesteps: &[usize]) -> Result<Chain> {
        let n = alphas_cumprod.len();
        if timesteps.len() < 2 {
            return Err(ModelError::invalid(
                "timesteps",
                format!("a chain needs at least 2 steps, got {}", timesteps.len()),
            ));
        }
        if let Some(w) = timesteps.windows(2).find(|w| w[0] >= w[1]) {
            return Err(ModelError::invalid(
                "timesteps",
                format!("must be strictly increasing, got {} then {}", w[0], w[1]),
            ));
        }
        if let Some(&s) = timesteps.iter().find(|&&s| s >= n) {
            return Err(ModelError::invalid(
                "timesteps",
                format!("step {s} is outside the table of {n} entries"),
            ));
        }
        let abar: Vec<f64> = timesteps.iter().map(|&s| alphas_cumprod[s]).collect();
        let mut prev = 1.0;
        let mut out = Chain {
            timesteps: timesteps.to_vec(),
            betas: Vec::new(),
            alphas_cumprod: abar.clone(),
            posterior_variance: Vec::new(),
            posterior_log_variance_clipped: Vec::new(),
            coef1: Vec::new(),
            coef2: Vec::new(),
        };
        for (k, &a) in abar.iter().enumerate() {
            if !(a > 0.0 && a < prev) {
                return Err(ModelError::invalid(
                    "alphas_cumprod",
                    format!(
                        "must lie in (0, 1) and decrease strictly, got {a} after {prev} (step {})",
                        timesteps[k]
                    ),
                ));
            }
            let beta = 1.0 - a / prev;
            out.betas.push(beta);
            out.posterior_variance.push(beta * (1.0 - prev) / (1.0 - a));
            out.coef1.push(beta * prev.sqrt() / (1.0 - a));
            out.coef2
                .push((1.0 - prev) * (1.0 - beta).sqrt() / (1.0 - a));
            prev = a;
        }
        let pv = &out.posterior_variance;
        out.posterior_log_variance_clipped = std::iter::once(pv[1].ln())
            .chain(pv[1..].iter().map(|v| v.ln()))
            .collect();
        Ok(out)
    }

    /// `k` indices of `0..n` evenly strided from `0` to `n - 1` (rounded), the authors'
    /// `space_timesteps(n, [k])` with one section; `2 <= k <= n`.
    pub fn evenly_spaced(n: usize, k: usize) -> Result<Vec<usize>> {
        if !(2..=n).contains(&k) {
            return Err(ModelError::invalid(
                "steps",
                format!("need 2 <= steps <= {n}, got {k}"),
            ));
        }
        let stride = (n - 1) as f64 / (k - 1) as f64;
        Ok((0..k)
            .map(|i| (i as f64 * stride).round() as usize)
            .collect())
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.betas.len()
    }

    /// Always false (a chain has at least two steps).
    pub fn is_empty(&self) -> bool {
        self.betas.is_empty()
    }

    /// The table entries (network times) of the steps.
    pub fn timesteps(&self) -> &[usize] {
        &self.timesteps
    }

    /// `beta_k`.
    pub fn betas(&self) -> &[f64] {
        &self.betas
    }

    /// `alpha_bar_k`.
    pub fn alphas_cumprod(&self) -> &[f64] {
        &self.alphas_cumprod
    }

    /// `beta~_k`, the variance of `q(x_{k-1} | x_k, x_0)` (0 at `k = 0`).
    pub fn posterior_variance(&self) -> &[f64] {
        &self.posterior_variance
    }

    /// `ln beta~_k`, with `ln beta~_1` at `k = 0`.
    pub fn posterior_log_variance_clipped(&self) -> &[f64] {
        &self.posterior_log_variance_clipped
    }

    /// `(c1_k, c2_k)`: the posterior mean is `c1_k x_0 + c2_k x_k`.
    pub fn posterior_mean_coefs(&self, k: usize) -> (f64, f64) {
        (self.coef1[k], self.coef2[k])
    }

    /// `(min_log, max_log)` of step `k`: `ln beta~_k` (clipped at `k = 0`) and `ln beta_k`, the
    /// ends of the learned range (the authors' `LEARNED_RANGE`).
    fn learned_range(&self, k: usize) -> (f64, f64) {
        (self.posterior_log_variance_clipped[k], self.betas[k].ln())
    }

    /// The fixed large log-variance: `ln beta_k`, with `ln beta~_1` at `k = 0` (the authors'
    /// `FIXED_LARGE`, for a better decoder likelihood).
    fn fixed_large(&self, k: usize) -> f64 {
        if k == 0 {
            self.posterior_variance[1].ln()
        } else {
            self.betas[k].ln()
        }
    }
}

/// `KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2)))`, elementwise, in nats.
pub fn normal_kl(mean1: &Tensor, logvar1: &Tensor, mean2: &Tensor, logvar2: &Tensor) -> Tensor {
    ((logvar2 - logvar1) + (logvar1 - logvar2).exp() + (mean1 - mean2).square() * (-logvar2).exp()
        - 1.0)
        * 0.5
}

/// `-ln N(x; mean, exp(logvar))`, elementwise, in nats.
pub fn gaussian_nll(x: &Tensor, mean: &Tensor, logvar: &Tensor) -> Tensor {
    ((x - mean).square() * (-logvar).exp() + logvar + (2.0 * PI).ln()) * 0.5
}

/// `-ln P(x)` of the discretized Gaussian `N(mean, exp(2 log_scale))` on 256 bins of width
/// `2/255` centred on 8-bit values scaled to `[-1, 1]` (the first and last bins extend to
/// `-inf` and `+inf`), elementwise, in nats. Probabilities are floored at `1e-12`.
pub fn discretized_gaussian_nll(x: &Tensor, mean: &Tensor, log_scale: &Tensor) -> Tensor {
    let inv = (-log_scale).exp() * std::f64::consts::FRAC_1_SQRT_2;
    let c = x - mean;
    let hi = (&c + 1.0 / 255.0) * &inv;
    let lo = (&c - 1.0 / 255.0) * &inv;
    // Phi(z) = erfc(-z / sqrt 2) / 2; 1 - Phi(z) = erfc(z / sqrt 2) / 2.
    let cdf_hi = (-&hi).erfc() * 0.5;
    let sf_lo = lo.erfc() * 0.5;
    let mid = (hi.erf() - lo.erf()) * 0.5;
    let floor = |p: Tensor| p.clamp_min(1e-12).log();
    let ll = floor(cdf_hi).where_self(
        &x.lt(-0.999),
        &floor(sf_lo).where_self(&x.gt(0.999), &floor(mid)),
    );
    -ll
}

/// One reverse step of the model: `p(x_{k-1} | x_k)`.
#[derive(Debug)]
pub struct ReverseStep {
    /// The mean `c1 x0_hat + c2 x_k`.
    pub mean: Tensor,
    /// The log-variance (per element).
    pub log_variance: Tensor,
    /// The network's clean-data prediction `x0_hat`.
    pub x0: Tensor,
    /// The network's eps prediction.
    pub eps: Tensor,
}

/// The variational bound of a batch, in bits per dimension.
#[derive(Debug)]
pub struct NllBound {
    /// `L_0 + ... + L_{T-1} + L_T` per sample, `[B]`.
    pub total: Tensor,
    /// The prior term `L_T` per sample, `[B]`.
    pub prior: Tensor,
    /// The batch mean of each `L_k`, `k = 0..T-1`.
    pub terms: Vec<f64>,
}

/// Improved DDPM's objective and sampler (see the module documentation).
#[derive(Debug, Clone)]
pub struct IddpmLoss {
    schedule: DdpmDiscrete,
    chain: Chain,
    variance: Variance,
    decoder: Decoder,
    lambda: f64,
    clip_x0: bool,
}

/// The `sample.solver` name of iDDPM's own sampler ([`Objective::own_sampler`]).
pub const ANCESTRAL: &str = "iddpm-ancestral";

impl IddpmLoss {
    /// The hybrid loss with learned variances on the table `schedule`, weight `lambda` on
    /// `L_vlb` (the paper: `0.001`; 0 gives `L_simple` with an untrained variance head) and the
    /// decoder of the `k = 0` term.
    pub fn new(schedule: DdpmDiscrete, lambda: f64, decoder: Decoder) -> Result<Self> {
        if !(lambda.is_finite() && lambda >= 0.0) {
            return Err(ModelError::invalid(
                "lambda",
                format!("must be finite and >= 0, got {lambda}"),
            ));
        }
        let chain = Chain::new(schedule.alphas_cumprod())?;
        Ok(IddpmLoss {
            schedule,
            chain,
            variance: Variance::Learned,
            decoder,
            lambda,
            clip_x0: false,
        })
    }

    /// The same objective with another variance (fixed variances train `L_simple` alone and
    /// accept networks with `C` or `2C` output channels, ignoring a second half).
    pub fn with_variance(mut self, variance: Variance) -> Self {
        self.variance = variance;
        self
    }

    /// Clip `x0_hat` to `[-1, 1]` when sampling and in [`IddpmLoss::vb_terms`] /
    /// [`IddpmLoss::nll_bound`] (for images on `[-1, 1]`, as the authors' `clip_denoised`; never
    /// in the training loss; off by default).
    pub fn with_clip(mut self, clip: bool) -> Self {
        self.clip_x0 = clip;
        self
    }

    /// The variance.
    pub fn variance(&self) -> Variance {
        self.variance
    }

    /// The training chain (every table entry).
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The chain on `steps` evenly spaced entries of the table (Sec. 4; `steps = T` is the full
    /// chain).
    pub fn respaced(&self, steps: usize) -> Result<Chain> {
        let n = self.chain.len();
        Chain::respaced(
            self.schedule.alphas_cumprod(),
            &Chain::evenly_spaced(n, steps)?,
        )
    }

    /// Number of training steps `T`.
    pub fn num_timesteps(&self) -> usize {
        self.chain.len()
    }

    fn check_steps(chain: &Chain, k: &[usize]) -> Result<()> {
        if let Some(&s) = k.iter().find(|&&s| s >= chain.len()) {
            return Err(ModelError::invalid(
                "k",
                format!("steps lie in 0..{}, got {s}", chain.len()),
            ));
        }
        Ok(())
    }

    /// Splits a network output `[B, C or 2C, ...]` for states of `C` channels into `(eps, v)`.
    fn split(&self, out: &Tensor, like: &Tensor) -> Result<(Tensor, Option<Tensor>)> {
        if like.dim() < 2 {
            return Err(ModelError::Shape {
                context: "iDDPM states ([B, C, ...])".into(),
                expected: vec![-1, -1],
                got: like.size(),
            });
        }
        let c = like.size()[1];
        let os = out.size();
        let mut want = like.size();
        want[1] = 2 * c;
        let same_rest = os.len() == want.len() && os[0] == want[0] && os[2..] == want[2..];
        let ok = same_rest
            && match self.variance {
                Variance::Learned => os[1] == 2 * c,
                _ => os[1] == c || os[1] == 2 * c,
            };
        if !ok {
            return Err(ModelError::Shape {
                context: format!(
                    "iDDPM network output (eps and, for a learned variance, v: {} channels)",
                    2 * c
                ),
                expected: want,
                got: os,
            });
        }
        let out = out.to_kind(like.kind()).to_device(like.device());
        let eps = out.narrow(1, 0, c);
        let v = (os[1] == 2 * c).then(|| out.narrow(1, c, c));
        Ok((eps, v))
    }

    /// `p(x_{k-1} | x_k)` from a raw network output `out` at states `x_t` and chain steps `k`
    /// (`detach_mean`: stop the gradient through the mean, as the `L_vlb` term of the hybrid
    /// loss does).
    fn reverse_from_output(
        &self,
        chain: &Chain,
        out: &Tensor,
        x_t: &Tensor,
        k: &[usize],
        detach_mean: bool,
        clip: bool,
    ) -> Result<ReverseStep> {
        let (eps, v) = self.split(out, x_t)?;
        let eps = if detach_mean { eps.detach() } else { eps };
        let col =
            |f: &dyn Fn(usize) -> f64| per_row(&k.iter().map(|&i| f(i)).collect::<Vec<_>>(), x_t);
        let abar = |i: usize| chain.alphas_cumprod[i];
        let x0 =
            col(&|i| 1.0 / abar(i).sqrt()) * x_t - col(&|i| (1.0 / abar(i) - 1.0).sqrt()) * &eps;
        let x0 = if clip { x0.clamp(-1.0, 1.0) } else { x0 };
        let mean = col(&|i| chain.coef1[i]) * &x0 + col(&|i| chain.coef2[i]) * x_t;
        let log_variance = match (self.variance, v) {
            (Variance::Learned, Some(v)) => {
                let f = (v + 1.0) * 0.5;
                let min_log = col(&|i| chain.learned_range(i).0);
                let max_log = col(&|i| chain.learned_range(i).1);
                &f * max_log + (1.0 - f) * min_log
            }
            (Variance::FixedLarge, _) => col(&|i| chain.fixed_large(i)).expand_as(x_t),
            _ => col(&|i| chain.posterior_log_variance_clipped[i]).expand_as(x_t),
        };
        Ok(ReverseStep {
            mean,
            log_variance,
            x0,
            eps,
        })
    }

    fn net_out(
        &self,
        chain: &Chain,
        net: &dyn TimeNet,
        x_t: &Tensor,
        k: &[usize],
        class: Option<&Tensor>,
    ) -> Result<Tensor> {
        Self::check_steps(chain, k)?;
        let t: Vec<f64> = k.iter().map(|&i| chain.timesteps[i] as f64).collect();
        net.forward_t(
            &x_t.to_kind(net.kind()).to_device(net.device()),
            &vector(&t, x_t).to_kind(net.kind()).to_device(net.device()),
            class,
        )
    }

    /// The model's reverse step `p(x_{k-1} | x_k)` on `chain` (the training chain or a respaced
    /// one) at states `x_t` (`[B, C, ...]`) and per-sample steps `k`.
    pub fn reverse_step(
        &self,
        chain: &Chain,
        net: &dyn TimeNet,
        x_t: &Tensor,
        k: &[usize],
        class: Option<&Tensor>,
    ) -> Result<ReverseStep> {
        let out = self.net_out(chain, net, x_t, k, class)?;
        self.reverse_from_output(chain, &out, x_t, k, false, self.clip_x0)
    }

    /// `(mean, log-variance)` of the forward posterior `q(x_{k-1} | x_k, x_0)` on the training
    /// chain (the log-variance clipped at `k = 0`).
    pub fn q_posterior(&self, x0: &Tensor, x_t: &Tensor, k: &[usize]) -> Result<(Tensor, Tensor)> {
        Self::check_steps(&self.chain, k)?;
        let col =
            |f: &dyn Fn(usize) -> f64| per_row(&k.iter().map(|&i| f(i)).collect::<Vec<_>>(), x0);
        let c = &self.chain;
        let mean = col(&|i| c.coef1[i]) * x0 + col(&|i| c.coef2[i]) * x_t;
        let lv = col(&|i| c.posterior_log_variance_clipped[i]).expand_as(x0);
        Ok((mean, lv))
    }

    /// `x_k = sqrt(alpha_bar_k) x0 + sqrt(1 - alpha_bar_k) eps` on the training chain.
    pub fn q_sample(&self, x0: &Tensor, k: &[usize], eps: &Tensor) -> Result<Tensor> {
        check_batch(x0, eps, k.len(), "iDDPM q_sample")?;
        Self::check_steps(&self.chain, k)?;
        let a = &self.chain.alphas_cumprod;
        let sa = per_row(&k.iter().map(|&i| a[i].sqrt()).collect::<Vec<_>>(), x0);
        let ss = per_row(
            &k.iter().map(|&i| (1.0 - a[i]).sqrt()).collect::<Vec<_>>(),
            x0,
        );
        Ok(sa * x0 + ss * eps)
    }

    /// The bound's terms `L_k` (`[B]`, bits per dimension) from a raw network output `out` at
    /// `x_t`, `k` on the training chain: the KL for `k >= 1`, the decoder's NLL at `k = 0`.
    fn vb_from_output(
        &self,
        out: &Tensor,
        x0: &Tensor,
        x_t: &Tensor,
        k: &[usize],
        detach_mean: bool,
        clip: bool,
    ) -> Result<Tensor> {
        let p = self.reverse_from_output(&self.chain, out, x_t, k, detach_mean, clip)?;
        let (qm, qlv) = self.q_posterior(x0, x_t, k)?;
        let kl = mean_per_sample(&normal_kl(&qm, &qlv, &p.mean, &p.log_variance));
        let dec = match self.decoder {
            Decoder::Gaussian => gaussian_nll(x0, &p.mean, &p.log_variance),
            Decoder::Discretized => discretized_gaussian_nll(x0, &p.mean, &(&p.log_variance * 0.5)),
        };
        let dec = mean_per_sample(&dec);
        let first: Vec<f64> = k.iter().map(|&i| f64::from(u8::from(i == 0))).collect();
        let first = vector(&first, x0).gt(0.5);
        Ok(dec.where_self(&first, &kl) / LN_2)
    }

    /// The bound's terms `L_k` (`[B]`, bits per dimension) of `net` at states `x_t` drawn from
    /// `q(x_k | x0)`, per-sample steps `k` of the training chain (with `x0_hat` clipped when
    /// [`IddpmLoss::with_clip`] is on).
    pub fn vb_terms(
        &self,
        net: &dyn TimeNet,
        x0: &Tensor,
        x_t: &Tensor,
        k: &[usize],
        class: Option<&Tensor>,
    ) -> Result<Tensor> {
        check_batch(x0, x_t, k.len(), "iDDPM vb_terms")?;
        let out = self.net_out(&self.chain, net, x_t, k, class)?;
        self.vb_from_output(&out, x0, x_t, k, false, self.clip_x0)
    }

    /// The prior term `L_T = KL(q(x_{T-1} | x0) || N(0, I))` (`[B]`, bits per dimension).
    pub fn prior_bpd(&self, x0: &Tensor) -> Tensor {
        let a = *self.chain.alphas_cumprod.last().unwrap_or(&0.0);
        let mean = x0 * a.sqrt();
        let lv = Tensor::full_like(x0, (1.0 - a).ln());
        let z = x0.zeros_like();
        mean_per_sample(&normal_kl(&mean, &lv, &z, &z)) / LN_2
    }

    /// Per-sample hybrid losses `[B]` at steps `k` (training chain) with forward noise `eps`:
    /// `mean((eps_hat - eps)^2) + lambda T L_k[sg(eps_hat), v]` (only the first term with a fixed
    /// variance).
    pub fn per_sample(
        &self,
        net: &dyn TimeNet,
        x0: &Tensor,
        k: &[usize],
        eps: &Tensor,
        class: Option<&Tensor>,
    ) -> Result<Tensor> {
        let x_t = self.q_sample(x0, k, eps)?;
        let out = self.net_out(&self.chain, net, &x_t, k, class)?;
        let (eps_hat, _) = self.split(&out, x0)?;
        let mse = mean_per_sample(&(eps_hat - eps).square());
        if self.variance != Variance::Learned || self.lambda == 0.0 {
            return Ok(mse);
        }
        let vb = self.vb_from_output(&out, x0, &x_t, k, true, false)?;
        Ok(mse + vb * (self.lambda * self.chain.len() as f64))
    }

    /// The variational bound `L_0 + ... + L_T` of `x0` (bits per dimension; one fresh noise draw
    /// per step and sample), computed under `no_grad` with `T` network evaluations.
    pub fn nll_bound(
        &self,
        net: &dyn TimeNet,
        x0: &Tensor,
        class: Option<&Tensor>,
        noise: &mut HostNoise,
    ) -> Result<NllBound> {
        let b = *x0.size().first().unwrap_or(&0) as usize;
        tch::no_grad(|| {
            let prior = self.prior_bpd(x0);
            let mut total = prior.copy();
            let mut terms = vec![0.0; self.chain.len()];
            for k in (0..self.chain.len()).rev() {
                let ks = vec![k; b];
                let eps = normals_like(noise, x0);
                let x_t = self.q_sample(x0, &ks, &eps)?;
                let l = self.vb_terms(net, x0, &x_t, &ks, class)?;
                terms[k] = l.mean(Kind::Double).double_value(&[]);
                total += l;
            }
            Ok(NllBound {
                total,
                prior,
                terms,
            })
        })
    }

    /// Ancestral samples `[shape]` (kind `Float`, on the network's device) on `chain`: from
    /// `x ~ N(0, I)`, `x <- mean + exp(log_variance / 2) z` at every step but the last, which
    /// returns the mean.
    pub fn sample(
        &self,
        net: &dyn TimeNet,
        chain: &Chain,
        shape: &[i64],
        class: Option<&Tensor>,
        noise: &mut HostNoise,
    ) -> Result<Tensor> {
        if shape.len() < 2 || shape.iter().any(|&s| s < 1) {
            return Err(ModelError::Shape {
                context: "iDDPM sample shape ([B, C, ...])".into(),
                expected: vec![-1, -1],
                got: shape.to_vec(),
            });
        }
        let like = Tensor::zeros(shape, (Kind::Float, net.device()));
        let b = shape[0] as usize;
        tch::no_grad(|| {
            let mut x = normals_like(noise, &like);
            for k in (0..chain.len()).rev() {
                let p = self.reverse_step(chain, net, &x, &vec![k; b], class)?;
                x = if k > 0 {
                    p.mean + (p.log_variance * 0.5).exp() * normals_like(noise, &like)
                } else {
                    p.mean
                };
            }
            Ok(x)
        })
    }
}

/// A learned-variance network read as a plain eps network: the first half of its output
/// channels (dimension 1), for the solvers' `TchDenoiser` and anything else that expects `C`
/// output channels (the variance head is dropped; the solvers then use their own variances).
pub struct EpsHead<'a>(pub &'a dyn TimeNet);

impl std::fmt::Debug for EpsHead<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EpsHead")
    }
}

impl TimeNet for EpsHead<'_> {
    fn forward_t(&self, x: &Tensor, t: &Tensor, class: Option<&Tensor>) -> Result<Tensor> {
        let out = self.0.forward_t(x, t, class)?;
        let c2 = if out.dim() >= 2 { out.size()[1] } else { -1 };
        if c2 < 2 || c2 % 2 != 0 {
            return Err(ModelError::Shape {
                context: "EpsHead: a network output with 2C channels".into(),
                expected: vec![-1, -1],
                got: out.size(),
            });
        }
        Ok(out.narrow(1, 0, c2 / 2))
    }
    fn kind(&self) -> Kind {
        self.0.kind()
    }
    fn device(&self) -> tch::Device {
        self.0.device()
    }
    fn null_class(&self) -> Option<i64> {
        self.0.null_class()
    }
    fn set_train(&self, train: bool) {
        self.0.set_train(train);
    }
    fn set_dropout_seed(&self, seed: u64) {
        self.0.set_dropout_seed(seed);
    }
}

impl Objective for IddpmLoss {
    fn name(&self) -> String {
        format!(
            "iddpm({}, {:?} variance, lambda {}, {:?} decoder)",
            self.schedule.name(),
            self.variance,
            self.lambda,
            self.decoder
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
        let n = self.chain.len();
        let k: Vec<usize> = (0..b)
            .map(|_| ((noise.uniform() * n as f64) as usize).min(n - 1))
            .collect();
        let eps = normals_like(noise, x0);
        Ok(self.per_sample(net, x0, &k, &eps, class)?.mean(x0.kind()))
    }

    /// The first `C` output channels are eps under [`IddpmLoss::schedule`]; a learned-variance
    /// network has `2C` channels, so sample it with [`IddpmLoss::sample`] (or wrap it in
    /// [`EpsHead`] before handing it to a `TchDenoiser`).
    fn parameterization(&self) -> Parameterization {
        Parameterization::Raw(Output::Epsilon)
    }

    fn schedule(&self) -> &dyn NoiseSchedule {
        &self.schedule
    }
    fn into_schedule(self: Box<Self>) -> Box<dyn NoiseSchedule> {
        Box::new(self.schedule)
    }

    /// Learned-variance networks are sampled through their eps half ([`EpsHead`]).
    fn sampling_net<'a>(&self, net: &'a dyn TimeNet) -> Option<Box<dyn TimeNet + 'a>> {
        (self.variance == Variance::Learned).then(|| Box::new(EpsHead(net)) as Box<dyn TimeNet>)
    }

    /// `iddpm-ancestral`: [`IddpmLoss::sample`] on the chain respaced to `steps` entries (Sec.
    /// 4), with this objective's variances (the learned ones, or the fixed choice).
    fn own_sampler(
        &self,
        solver: &str,
        net: &dyn TimeNet,
        shape: &[i64],
        steps: usize,
        class: Option<&Tensor>,
        noise: &mut HostNoise,
    ) -> Option<Result<Tensor>> {
        (solver == ANCESTRAL).then(|| {
            let chain = self.respaced(steps)?;
            self.sample(net, &chain, shape, class, noise)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diffusion_core::schedule::BetaSchedule;

    fn linear(n: usize) -> DdpmDiscrete {
        DdpmDiscrete::new(
            BetaSchedule::Linear {
                beta_start: 1e-4 * 1000.0 / n as f64,
                beta_end: 0.02 * 1000.0 / n as f64,
            },
            n,
            false,
        )
        .unwrap()
    }

    #[test]
    fn chain_tables_match_their_definitions() {
        let s = linear(100);
        let c = Chain::new(s.alphas_cumprod()).unwrap();
        for (k, (&b, &want)) in c.betas().iter().zip(s.betas()).enumerate() {
            assert!((b - want).abs() < 1e-12, "beta_{k}: {b} vs {want}");
        }
        assert_eq!(c.posterior_variance()[0], 0.0);
        assert_eq!(
            c.posterior_log_variance_clipped()[0],
            c.posterior_log_variance_clipped()[1]
        );
        // Posterior mean coefficients: c1 + c2 sqrt(abar_k) / sqrt(abar_{k-1})... checked through
        // the identity E[x_{k-1} | x_0] = sqrt(abar_{k-1}) x_0 = c1 x_0 + c2 sqrt(abar_k) x_0.
        for k in 1..c.len() {
            let (c1, c2) = c.posterior_mean_coefs(k);
            let a = c.alphas_cumprod();
            assert!((c1 + c2 * a[k].sqrt() - a[k - 1].sqrt()).abs() < 1e-12);
            // Var: abar_{k-1}-marginal: c2^2 (1 - abar_k) + beta~ = 1 - abar_{k-1}.
            let v = c2 * c2 * (1.0 - a[k]) + c.posterior_variance()[k];
            assert!((v - (1.0 - a[k - 1])).abs() < 1e-12);
        }
        // Respacing keeps the cumulative products of the chosen entries.
        let idx = Chain::evenly_spaced(100, 10).unwrap();
        assert_eq!(idx[0], 0);
        assert_eq!(idx[9], 99);
        assert_eq!(idx[1], 11);
        let r = Chain::respaced(s.alphas_cumprod(), &idx).unwrap();
        let mut acc = 1.0;
        for (k, b) in r.betas().iter().enumerate() {
            acc *= 1.0 - b;
            assert!((acc - s.alphas_cumprod()[idx[k]]).abs() < 1e-12);
        }
        assert!(Chain::respaced(s.alphas_cumprod(), &[3, 3]).is_err());
        assert!(Chain::respaced(s.alphas_cumprod(), &[3, 100]).is_err());
        assert!(Chain::respaced(s.alphas_cumprod(), &[3]).is_err());
        assert!(Chain::evenly_spaced(100, 1).is_err());
        assert!(IddpmLoss::new(s, -1.0, Decoder::Gaussian).is_err());
    }
}
