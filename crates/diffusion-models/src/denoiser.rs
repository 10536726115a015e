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

use crate::error::{ModelError, Result};
use crate::nets::TimeNet;
use crate::precond::EdmPrecond;
use diffusion_core::{CoreError, Denoiser, NoiseSchedule, Prediction};
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
                let x_hat = x / alpha;
                let s = sigma / alpha;
                if s <= 0.0 {
                    // D(x; 0) = x exactly (c_skip = 1, c_out = 0).
                    return Ok(Prediction::Sample(x_hat));
                }
                let st = Tensor::full([b], s, (x.kind(), x.device()));
                Ok(Prediction::Sample(p.denoise(self.net, &x_hat, &st, class)?))
            }
        }
    }
}

impl Denoiser<Tensor> for TchDenoiser<'_> {
    fn predict(&self, x: &Tensor, t: f64) -> diffusion_core::Result<Prediction<Tensor>> {
        self.predict_tensor(x, t).map_err(to_core)
    }
}
