//! `TchDenoiser`: any [`TimeNet`] as a `diffusion_core::Denoiser<tch::Tensor>`, so every solver of
//! `diffusion-solvers` samples a network on CPU or CUDA with no host round trip per step.
//!
//! Paper: Karras, Aittala, Aila & Laine (2022), "Elucidating the Design Space of Diffusion-Based
//! Generative Models", arXiv:2206.00364, Sec. 5 and Table 1 (a network wrapped into a denoiser
//! `D(x; sigma)`); the raw parameterizations and their conversions are those of
//! `diffusion_core::Prediction` (Ho et al. 2020 eps, Salimans & Ho 2022 v, Lipman et al. 2022
//! velocity).
//!
//! The solver's time `t` becomes a per-sample tensor of the batch size. With a raw
//! [`Parameterization`] the network sees `t` itself (its configuration may rescale it) and its
//! output is read as the chosen [`Output`]; with EDM preconditioning the state is divided by
//! `alpha(t)`, the noise level is `sigma(t) / alpha(t)` and the answer is `D(x; sigma)`, so an
//! EDM-trained network samples under any schedule. Inference runs under `tch::no_grad`
//! (`predict_with_grad` records gradients, for likelihoods through the PF-ODE).

use crate::device::upload;
use crate::error::{ModelError, Result};
use crate::nets::TimeNet;
use crate::precond::EdmPrecond;
use diffusion_core::{Coeffs, CoreError, Denoiser, NoiseSchedule, Prediction};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// What a raw network's output means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Output {
    /// The noise `eps`.
    Epsilon,
    /// The clean sample `x0`.
    Sample,
    /// `v = alpha eps - sigma x0`.
    V,
    /// The score `grad log p_t = -eps / sigma`.
    Score,
    /// The velocity `dx/dt = alpha' x0 + sigma' eps`.
    Velocity,
}

impl Output {
    /// Wraps a tensor into the matching [`Prediction`].
    pub fn wrap(self, t: Tensor) -> Prediction<Tensor> {
        match self {
            Output::Epsilon => Prediction::Epsilon(t),
            Output::Sample => Prediction::Sample(t),
            Output::V => Prediction::V(t),
            Output::Score => Prediction::Score(t),
            Output::Velocity => Prediction::Velocity(t),
        }
    }

    /// The configuration name: `epsilon`, `sample`, `v`, `score`, `velocity`.
    pub fn name(self) -> &'static str {
        match self {
            Output::Epsilon => "epsilon",
            Output::Sample => "sample",
            Output::V => "v",
            Output::Score => "score",
            Output::Velocity => "velocity",
        }
    }
}

/// How a network's output becomes a prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Parameterization {
    /// The network sees `(x_t, t)` and predicts the given quantity.
    Raw(Output),
    /// EDM preconditioning: the answer is `D(x / alpha; sigma / alpha)` (a [`Prediction::Sample`]).
    Edm(EdmPrecond),
    /// sCM's TrigFlow consistency parameterization (Lu & Song 2024, arXiv:2410.11081, Eq. (9)):
    /// `x0 = cos(s) y - sin(s) sigma_d F(y / sigma_d, s)` where `s = atan2(sigma / sigma_d,
    /// alpha)` is the TrigFlow time of the same signal-to-noise ratio and `y = x /
    /// sqrt(alpha^2 + sigma^2 / sigma_d^2)` the state rescaled to TrigFlow (`y = x` under
    /// TrigFlow(`sigma_d`) itself). A TrigFlow flow-matching network (`F` = velocity / `sigma_d`)
    /// read this way is its own DDIM x0 prediction; a consistency model's is its one-step sample.
    TrigFlow {
        /// The data standard deviation `sigma_d` of the TrigFlow process.
        sigma_d: f64,
    },
}

/// Per-row coefficients `[B, 1]` of `values` in the kind and on the device of `like`.
fn rows(values: Vec<f64>, like: &Tensor) -> Tensor {
    // `[B, 1, ..., 1]`, broadcasting over every dimension of `like` but the first.
    let mut shape = vec![-1i64];
    shape.extend(std::iter::repeat_n(1, like.dim().saturating_sub(1)));
    upload(
        &Tensor::from_slice(&values)
            .reshape(&shape)
            .to_kind(like.kind()),
        like.device(),
    )
}

/// The x0 prediction of `net` read through `param` for states `x` (`[B, ...]`) at per-sample times
/// `t` of `schedule` (one per row), differentiable with respect to the network (call it under
/// `tch::no_grad` for inference). This is the batched, per-sample-time form of
/// [`TchDenoiser::predict_tensor`] followed by the prediction's conversion to `x0`.
pub fn x0_per_row(
    net: &dyn TimeNet,
    param: Parameterization,
    schedule: &dyn NoiseSchedule,
    x: &Tensor,
    t: &[f64],
    class: Option<&Tensor>,
) -> Result<Tensor> {
    let b = *x.size().first().unwrap_or(&0);
    if b != t.len() as i64 || x.dim() < 2 {
        return Err(ModelError::Shape {
            context: "x0_per_row: one time per row".into(),
            expected: vec![t.len() as i64, -1],
            got: x.size(),
        });
    }
    let cs: Vec<Coeffs> = t.iter().map(|&ti| Coeffs::at(schedule, ti)).collect();
    let col = |f: &dyn Fn(&Coeffs) -> f64| rows(cs.iter().map(f).collect(), x);
    let run = |xin: &Tensor, tin: Vec<f64>| -> Result<Tensor> {
        let tt = upload(&Tensor::from_slice(&tin).to_kind(net.kind()), net.device());
        let y = net.forward_t(&xin.to_kind(net.kind()).to_device(net.device()), &tt, class)?;
        Ok(y.to_kind(x.kind()).to_device(x.device()))
    };
    match param {
        Parameterization::Raw(out) => {
            let y = run(x, t.to_vec())?;
            let (a, s) = (col(&|c| c.alpha), col(&|c| c.sigma));
            Ok(match out {
                Output::Sample => y,
                Output::Epsilon => (x - &s * y) / &a,
                Output::V => (&a * x - &s * y) / (a.square() + s.square()),
                Output::Score => (x + s.square() * y) / &a,
                Output::Velocity => {
                    let det = col(&|c| c.d_alpha * c.sigma - c.d_sigma * c.alpha);
                    (&s * y - col(&|c| c.d_sigma) * x) / det
                }
            })
        }
        Parameterization::Edm(p) => {
            if let Some(c) = cs.iter().find(|c| !(c.alpha > 0.0 && c.sigma > 0.0)) {
                return Err(ModelError::invalid(
                    "t",
                    format!(
                        "EDM preconditioning needs alpha, sigma > 0, got {} and {}",
                        c.alpha, c.sigma
                    ),
                ));
            }
            let a = col(&|c| c.alpha);
            let st = upload(
                &Tensor::from_slice(&cs.iter().map(|c| c.sigma / c.alpha).collect::<Vec<_>>())
                    .to_kind(x.kind()),
                x.device(),
            );
            p.denoise(net, &(x / a), &st, class)
        }
        Parameterization::TrigFlow { sigma_d } => {
            let s: Vec<f64> = cs
                .iter()
                .map(|c| (c.sigma / sigma_d).atan2(c.alpha))
                .collect();
            let scale = col(&|c| 1.0 / (c.alpha * c.alpha + (c.sigma / sigma_d).powi(2)).sqrt());
            let y = x * scale;
            let f = run(&(&y / sigma_d), s.clone())?;
            let cos = rows(s.iter().map(|v| v.cos()).collect(), x);
            let sin = rows(s.iter().map(|v| v.sin()).collect(), x);
            Ok(cos * y - sin * f * sigma_d)
        }
    }
}

/// A network as a sampler's denoiser (see the module documentation).
pub struct TchDenoiser<'a> {
    net: &'a dyn TimeNet,
    param: Parameterization,
    schedule: &'a dyn NoiseSchedule,
    class: Option<Tensor>,
}

impl std::fmt::Debug for TchDenoiser<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TchDenoiser")
            .field("param", &self.param)
            .field("schedule", &self.schedule.name())
            .field("class", &self.class.as_ref().map(|c| c.size()))
            .finish()
    }
}

fn to_core(e: ModelError) -> CoreError {
    CoreError::invalid("network", e.to_string())
}

impl<'a> TchDenoiser<'a> {
    /// Wraps `net`, read through `param`, under `schedule` (the schedule of the sampler).
    pub fn new(
        net: &'a dyn TimeNet,
        param: Parameterization,
        schedule: &'a dyn NoiseSchedule,
    ) -> Self {
        TchDenoiser {
            net,
            param,
            schedule,
            class: None,
        }
    }

    /// Conditions every call on the class labels `labels` (`[B]`, one per sample; the network's
    /// null label gives the unconditional model).
    pub fn with_class(mut self, labels: Tensor) -> Self {
        self.class = Some(labels.to_kind(Kind::Int64).to_device(self.net.device()));
        self
    }

    /// The parameterization.
    pub fn parameterization(&self) -> Parameterization {
        self.param
    }

    /// The schedule the denoiser answers under.
    pub fn schedule(&self) -> &'a dyn NoiseSchedule {
        self.schedule
    }

    /// The prediction at `(x, t)` as a `ModelError` result (what [`Denoiser::predict`] returns,
    /// with the model crate's error type), computed under `tch::no_grad`.
    pub fn predict_tensor(&self, x: &Tensor, t: f64) -> Result<Prediction<Tensor>> {
        tch::no_grad(|| self.predict_with_grad(x, t))
    }

    /// [`TchDenoiser::predict_tensor`] with autograd recording: gradients flow from the
    /// prediction to `x` (and to the network's parameters), as the divergence of the
    /// probability-flow ODE in `crate::eval::nll` needs.
    pub fn predict_with_grad(&self, x: &Tensor, t: f64) -> Result<Prediction<Tensor>> {
        let b = *x.size().first().ok_or_else(|| ModelError::Shape {
            context: "TchDenoiser input (needs a batch dimension)".into(),
            expected: vec![-1, -1],
            got: x.size(),
        })?;
        let class = self.class.as_ref();
        match self.param {
            Parameterization::Raw(out) => {
                let tt = Tensor::full([b], t, (self.net.kind(), self.net.device()));
                let xin = x.to_kind(self.net.kind()).to_device(self.net.device());
                let y = self.net.forward_t(&xin, &tt, class)?;
                Ok(out.wrap(y.to_kind(x.kind()).to_device(x.device())))
            }
            Parameterization::Edm(p) => {
                let (alpha, sigma) = (self.schedule.alpha(t), self.schedule.sigma(t));
                if alpha <= 0.0 || !alpha.is_finite() {
                    return Err(ModelError::invalid(
                        "t",
                        format!("EDM preconditioning needs alpha(t) > 0, got alpha({t}) = {alpha}"),
                    ));
                }
                let s = sigma / alpha;
                if s <= 0.0 {
                    // D(x; 0) = x exactly (c_skip = 1, c_out = 0); a tensor of its own, since a
                    // solver may update `x` in place while it holds the prediction.
                    return Ok(Prediction::Sample(x / alpha));
                }
                // `x / 1` is `x` exactly: no pass over the state under a variance-exploding
                // schedule (EDM's), where alpha is 1 at every time (`denoise` only reads it).
                let x_hat = if alpha == 1.0 {
                    x.shallow_clone()
                } else {
                    x / alpha
                };
                let st = Tensor::full([b], s, (x.kind(), x.device()));
                Ok(Prediction::Sample(p.denoise(self.net, &x_hat, &st, class)?))
            }
            Parameterization::TrigFlow { .. } => {
                let x0 = x0_per_row(
                    self.net,
                    self.param,
                    self.schedule,
                    x,
                    &vec![t; b as usize],
                    class,
                )?;
                Ok(Prediction::Sample(x0))
            }
        }
    }
}

impl Denoiser<Tensor> for TchDenoiser<'_> {
    fn predict(&self, x: &Tensor, t: f64) -> diffusion_core::Result<Prediction<Tensor>> {
        self.predict_tensor(x, t).map_err(to_core)
    }
}
