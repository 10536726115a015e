//! Training objectives: denoising score matching with any target and weighting ([`DsmLoss`]),
//! the EDM loss ([`EdmLoss`]), flow matching ([`FlowMatchingLoss`]), continuous-time
//! consistency training and distillation under TrigFlow ([`ScmLoss`]), progressive distillation
//! ([`ProgressiveDistillation`]), Soft Mixture Denoising ([`SmdLoss`]) and Improved DDPM's
//! learned-variance hybrid loss ([`IddpmLoss`]); distillation
//! objectives hold a frozen [`Teacher`].
//!
//! Each objective has a pure per-sample form (`per_sample`, given the times and the noise, for
//! tests and custom loops) and draws its times and noise from a seeded [`HostNoise`] in
//! [`Objective::loss`], so training is reproducible on every device and in every thread (torch's
//! global generator is never used). Squared errors are averaged over the data dimensions of each
//! sample, then over the batch.

pub mod dsm;
pub mod edm;
pub mod flow;
pub mod iddpm;
pub mod progressive;
pub mod scm;
pub mod smd;
pub mod teacher;

pub use dsm::{DsmLoss, Weighting};
pub use edm::EdmLoss;
pub use flow::{FlowMatchingLoss, TimeSampling};
pub use iddpm::{Chain, Decoder, EpsHead, IddpmLoss, Variance};
pub use progressive::ProgressiveDistillation;
pub use scm::{jvp, AdaptiveWeight, ScmConfig, ScmLoss};
pub use smd::SmdLoss;
pub use teacher::Teacher;

use crate::denoiser::Parameterization;
use crate::device::upload;
use crate::error::{ModelError, Result};
use crate::nets::TimeNet;
use crate::train::checkpoint::Named;
use diffusion_core::{HostNoise, NoiseSchedule};
use tch::{Kind, Tensor};

/// A training objective: a scalar loss for a batch of clean data, and how to sample a network
/// trained with it.
pub trait Objective {
    /// A short description with parameters.
    fn name(&self) -> String;
    /// The batch-mean loss of `net` on clean data `x0` (`[B, ...]`), drawing times and noise from
    /// `noise`; differentiable with respect to the network's parameters.
    fn loss(
        &self,
        net: &dyn TimeNet,
        x0: &Tensor,
        class: Option<&Tensor>,
        noise: &mut HostNoise,
    ) -> Result<Tensor>;
    /// How to read the trained network as a denoiser.
    fn parameterization(&self) -> Parameterization;
    /// The forward process the network was trained on (and should be sampled with).
    fn schedule(&self) -> &dyn NoiseSchedule;
    /// The forward process, keeping nothing else of the objective (a run read back as a
    /// distillation teacher needs only it and [`Objective::parameterization`]).
    fn into_schedule(self: Box<Self>) -> Box<dyn NoiseSchedule>;
    /// How samplers should see a network trained with this objective: `None` (the default) when
    /// its output is the prediction of [`Objective::parameterization`] as it is; a wrapper when
    /// the network outputs more (iDDPM's learned variances: the eps half, [`iddpm::EpsHead`]).
    fn sampling_net<'a>(&self, net: &'a dyn TimeNet) -> Option<Box<dyn TimeNet + 'a>> {
        let _ = net;
        None
    }
    /// The objective's own sampler, for a `sample.solver` name that the objective knows and the
    /// solver registry does not (iDDPM's `iddpm-ancestral`: the ancestral chain with the learned
    /// variances); `None` (the default) for every other name. `net` is the trained network as it
    /// is (not [`Objective::sampling_net`]'s view), `shape` the sample shape `[n, ...]`, `steps`
    /// the configured number of steps, `class` the labels of a class-conditional network.
    fn own_sampler(
        &self,
        solver: &str,
        net: &dyn TimeNet,
        shape: &[i64],
        steps: usize,
        class: Option<&Tensor>,
        noise: &mut HostNoise,
    ) -> Option<Result<Tensor>> {
        let _ = (solver, net, shape, steps, class, noise);
        None
    }
    /// The objective's own training state (learned weights, their optimizer state and pending
    /// gradients, counters) as named tensors, saved in checkpoints so a resumed run continues
    /// exactly; empty (the default) for objectives without state.
    fn state(&self) -> Result<Named> {
        Ok(Vec::new())
    }
    /// Restores a state written by [`Objective::state`]. The default accepts only an empty one.
    fn load_state(&self, state: &Named) -> Result<()> {
        match state.first() {
            None => Ok(()),
            Some((n, _)) => Err(ModelError::invalid(
                "objective state",
                format!("`{}` keeps no state, got an entry `{n}`", self.name()),
            )),
        }
    }
}

/// A `[B, 1, ...]` tensor (broadcasting against `like`) holding one host value per sample.
pub(crate) fn per_row(values: &[f64], like: &Tensor) -> Tensor {
    let mut shape = vec![values.len() as i64];
    shape.extend(std::iter::repeat_n(1, like.dim().saturating_sub(1)));
    upload(
        &Tensor::from_slice(values).to_kind(like.kind()),
        like.device(),
    )
    .reshape(&shape)
}

/// A `[B]` tensor of host values in the kind and on the device of `like`.
pub(crate) fn vector(values: &[f64], like: &Tensor) -> Tensor {
    upload(
        &Tensor::from_slice(values).to_kind(like.kind()),
        like.device(),
    )
}

/// Standard normals shaped like `like`, drawn on the host.
pub(crate) fn normals_like(noise: &mut HostNoise, like: &Tensor) -> Tensor {
    let v = noise.normals(like.numel());
    upload(
        &Tensor::from_slice(&v)
            .reshape(like.size())
            .to_kind(like.kind()),
        like.device(),
    )
}

/// The mean over every dimension but the first: `[B, ...] -> [B]`.
pub(crate) fn mean_per_sample(t: &Tensor) -> Tensor {
    let b = *t.size().first().unwrap_or(&0);
    t.reshape([b, -1]).mean_dim(1, false, t.kind())
}

/// Checks that `x0` is a floating-point batch and that `noise` has its shape.
pub(crate) fn check_batch(x0: &Tensor, eps: &Tensor, n: usize, context: &str) -> Result<()> {
    if x0.dim() < 2 {
        return Err(ModelError::Shape {
            context: format!("{context}: clean data needs a batch dimension"),
            expected: vec![-1, -1],
            got: x0.size(),
        });
    }
    if !matches!(
        x0.kind(),
        Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
    ) {
        return Err(ModelError::invalid(
            "x0",
            format!(
                "{context}: clean data must be floating point, got {:?}",
                x0.kind()
            ),
        ));
    }
    if eps.size() != x0.size() {
        return Err(ModelError::Shape {
            context: format!("{context}: noise"),
            expected: x0.size(),
            got: eps.size(),
        });
    }
    if x0.size()[0] != n as i64 {
        return Err(ModelError::Shape {
            context: format!("{context}: one time per sample"),
            expected: vec![x0.size()[0]],
            got: vec![n as i64],
        });
    }
    Ok(())
}
