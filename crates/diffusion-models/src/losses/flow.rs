//! Flow matching / rectified flow with the linear interpolant.
//!
//! Paper: Lipman, Chen, Ben-Hamu, Nickel & Le (2022), "Flow Matching for Generative Modeling",
//! arXiv:2210.02747, Eq. (22)-(23) (conditional OT path, `sigma_min = 0`); Liu, Gong & Liu
//! (2022), "Flow Straight and Fast", arXiv:2209.03003, Eq. (1); Esser et al. (2024), "Scaling
//! Rectified Flow Transformers for High-Resolution Image Synthesis", arXiv:2403.03206, Sec. 3.1
//! (logit-normal time sampling).
//!
//! With this workspace's time direction (data at `t = 0`, the `flow` schedule):
//! `x_t = (1 - t) x0 + t eps`, target velocity `u = dx_t/dt = eps - x0`, per-sample loss
//! `mean((net(x_t, t) - u)^2)`. The trained network is a [`Output::Velocity`] model.

use super::{check_batch, mean_per_sample, normals_like, per_row, vector, Objective};
use crate::denoiser::{Output, Parameterization};
use crate::error::{ModelError, Result};
use crate::nets::TimeNet;
use diffusion_core::schedule::RectifiedFlow;
use diffusion_core::{HostNoise, NoiseSchedule};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// How training times are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum TimeSampling {
    /// `t ~ U(0, 1)`.
    Uniform,
    /// `t = sigmoid(m + s z)`, `z ~ N(0, 1)` (Esser et al. 2024).
    LogitNormal {
        /// Location `m`.
        mean: f64,
        /// Scale `s > 0`.
        std: f64,
    },
}

/// The flow-matching objective (see the module documentation).
#[derive(Debug, Clone)]
pub struct FlowMatchingLoss {
    time: TimeSampling,
    schedule: RectifiedFlow,
}

impl FlowMatchingLoss {
    /// Flow matching with times drawn by `time`.
    pub fn new(time: TimeSampling) -> Result<Self> {
        if let TimeSampling::LogitNormal { mean, std } = time {
            if !(mean.is_finite() && std.is_finite() && std > 0.0) {
                return Err(ModelError::invalid(
                    "time.mean/std",
                    format!("need finite values with std > 0, got {mean}, {std}"),
                ));
            }
        }
        Ok(FlowMatchingLoss {
            time,
            schedule: RectifiedFlow::new(),
        })
    }

    /// Per-sample losses `[B]` at times `t` in `[0, 1]` and noise `eps`.
    pub fn per_sample(
        &self,
        net: &dyn TimeNet,
        x0: &Tensor,
        t: &[f64],
        eps: &Tensor,
        class: Option<&Tensor>,
    ) -> Result<Tensor> {
        check_batch(x0, eps, t.len(), "flow-matching loss")?;
        if let Some(v) = t.iter().find(|v| !(0.0..=1.0).contains(*v)) {
            return Err(ModelError::invalid(
                "t",
                format!("flow-matching times lie in [0, 1], got {v}"),
            ));
        }
        let tt = per_row(t, x0);
        let xt = (1.0 - &tt) * x0 + &tt * eps;
        let u = eps - x0;
        let pred = net.forward_t(&xt, &vector(t, x0), class)?;
        let pred = pred.to_kind(x0.kind()).to_device(x0.device());
        if pred.size() != x0.size() {
            return Err(ModelError::Shape {
                context: "flow-matching loss: network output".into(),
                expected: x0.size(),
                got: pred.size(),
            });
        }
        Ok(mean_per_sample(&(pred - u).square()))
    }
}

impl Objective for FlowMatchingLoss {
    fn name(&self) -> String {
        format!("flow-matching({:?})", self.time)
    }

    fn loss(
        &self,
        net: &dyn TimeNet,
        x0: &Tensor,
        class: Option<&Tensor>,
        noise: &mut HostNoise,
    ) -> Result<Tensor> {
        let b = *x0.size().first().unwrap_or(&0) as usize;
        let t: Vec<f64> = match self.time {
            TimeSampling::Uniform => (0..b).map(|_| noise.uniform()).collect(),
            TimeSampling::LogitNormal { mean, std } => noise
                .normals(b)
                .iter()
                .map(|z| 1.0 / (1.0 + (-(mean + std * z)).exp()))
                .collect(),
        };
        let eps = normals_like(noise, x0);
        Ok(self.per_sample(net, x0, &t, &eps, class)?.mean(x0.kind()))
    }

    fn parameterization(&self) -> Parameterization {
        Parameterization::Raw(Output::Velocity)
    }

    fn schedule(&self) -> &dyn NoiseSchedule {
        &self.schedule
    }
    fn into_schedule(self: Box<Self>) -> Box<dyn NoiseSchedule> {
        Box::new(self.schedule)
    }
}
