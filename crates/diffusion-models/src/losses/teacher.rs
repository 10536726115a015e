//! A frozen teacher for distillation: a network, how to read it, and the schedule it was trained
//! on, evaluated at per-sample times of any other schedule by matching the signal-to-noise ratio.
//!
//! Paper: Kingma, Salimans, Poole & Ho (2021), "Variational Diffusion Models", arXiv:2107.00630,
//! Appendix (a diffusion model depends on its schedule only through the SNR: a state `x_t =
//! alpha_t x0 + sigma_t eps` of one schedule is `x_s = (alpha_s / alpha_t) x_t` of another at the
//! time `s` with the same log-SNR `lambda`).
//!
//! A class-conditional teacher can be guided ([`Teacher::with_guidance`]): classifier-free
//! guidance (Ho & Salimans 2022, arXiv:2207.12598, Eq. 6) in `x0` space, `x0_u + s (x0_c - x0_u)`,
//! the same guided model as in eps space (see [`crate::guidance`]), as distillation of guided
//! teachers does (e.g. the sCD runs of Lu & Song 2024).

use crate::denoiser::{x0_per_row, Parameterization};
use crate::error::{ModelError, Result};
use crate::nets::TimeNet;
use diffusion_core::NoiseSchedule;
use tch::Tensor;

/// A frozen teacher (see the module documentation). Always evaluated under `tch::no_grad`.
pub struct Teacher {
    net: Box<dyn TimeNet>,
    param: Parameterization,
    schedule: Box<dyn NoiseSchedule>,
    guidance: f64,
}

impl std::fmt::Debug for Teacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Teacher")
            .field("param", &self.param)
            .field("schedule", &self.schedule.name())
            .field("guidance", &self.guidance)
            .finish()
    }
}

impl Teacher {
    /// `net`, read through `param`, trained under `schedule`.
    pub fn new(
        net: Box<dyn TimeNet>,
        param: Parameterization,
        schedule: Box<dyn NoiseSchedule>,
    ) -> Self {
        Teacher {
            net,
            param,
            schedule,
            guidance: 1.0,
        }
    }

    /// The teacher guided with classifier-free guidance scale `scale` (finite; 1: the
    /// conditional model, the default) for labelled batches; the network must have a null class
    /// when `scale != 1`. Unlabelled batches are never guided.
    pub fn with_guidance(mut self, scale: f64) -> Result<Self> {
        if !scale.is_finite() {
            return Err(ModelError::invalid(
                "teacher guidance",
                format!("must be finite, got {scale}"),
            ));
        }
        if scale != 1.0 && self.net.null_class().is_none() {
            return Err(ModelError::invalid(
                "teacher guidance",
                format!("scale {scale} needs a class-conditional teacher with a null class"),
            ));
        }
        self.guidance = scale;
        Ok(self)
    }

    /// The classifier-free guidance scale (1: unguided).
    pub fn guidance(&self) -> f64 {
        self.guidance
    }

    /// The network.
    pub fn net(&self) -> &dyn TimeNet {
        self.net.as_ref()
    }

    /// The teacher's schedule.
    pub fn schedule(&self) -> &dyn NoiseSchedule {
        self.schedule.as_ref()
    }

    /// The parameterization.
    pub fn parameterization(&self) -> Parameterization {
        self.param
    }

    /// The teacher's `x0` for states `x` of `schedule` at its per-sample times `t` (`alpha(t) >
    /// 0`, `sigma(t) > 0`), detached.
    pub fn x0(
        &self,
        schedule: &dyn NoiseSchedule,
        x: &Tensor,
        t: &[f64],
        class: Option<&Tensor>,
    ) -> Result<Tensor> {
        let mut own = Vec::with_capacity(t.len());
        let mut scale = Vec::with_capacity(t.len());
        for &ti in t {
            let (a, s) = (schedule.alpha(ti), schedule.sigma(ti));
            if !(a > 0.0 && s > 0.0) {
                return Err(ModelError::invalid(
                    "t",
                    format!(
                        "the teacher needs 0 < SNR < inf, got alpha {a}, sigma {s} at t = {ti}"
                    ),
                ));
            }
            let lambda = (a / s).ln();
            let si = self.schedule.t_of_lambda(lambda);
            let (lo, hi) = self.schedule.t_range();
            let si = si.clamp(lo, hi);
            own.push(si);
            scale.push(self.schedule.alpha(si) / a);
        }
        if x.dim() < 2 || x.size()[0] != t.len() as i64 {
            return Err(ModelError::Shape {
                context: "teacher: states need one time per row".into(),
                expected: vec![t.len() as i64, -1],
                got: x.size(),
            });
        }
        let sc = super::per_row(&scale, x);
        tch::no_grad(|| {
            let xs = x * sc;
            let x0 = |c: Option<&Tensor>| {
                x0_per_row(
                    self.net.as_ref(),
                    self.param,
                    self.schedule.as_ref(),
                    &xs,
                    &own,
                    c,
                )
            };
            let cond = x0(class)?;
            let out = match (class, self.net.null_class()) {
                (Some(c), Some(null)) if self.guidance != 1.0 => {
                    let uncond = x0(Some(&c.full_like(null)))?;
                    &uncond + (&cond - &uncond) * self.guidance
                }
                _ => cond,
            };
            Ok(out.detach())
        })
    }
}
