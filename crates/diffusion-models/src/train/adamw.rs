//! AdamW on plain tensors, so its moments can be checkpointed (tch's `nn::AdamW` keeps them inside
//! the C++ optimizer, out of reach).
//!
//! Paper: Loshchilov & Hutter (2019), "Decoupled Weight Decay Regularization", arXiv:1711.05101,
//! Alg. 2; Kingma & Ba (2015), "Adam", arXiv:1412.6980, Alg. 1. The update follows PyTorch's
//! `torch.optim.AdamW` (`_single_tensor_adamw`, `amsgrad=False`) operation for operation:
//! `p *= 1 - lr wd`; `m = b1 m + (1 - b1) g`; `v = b2 v + (1 - b2) g^2`;
//! `p -= lr / (1 - b1^k) * m / (sqrt(v) / sqrt(1 - b2^k) + eps)`.
//!
//! [`AdamW::flat`] keeps both moments in flat buffers laid out like the trainer's flat parameter
//! buffer, and [`AdamW::step_flat`] updates everything in about ten kernels (as torch's
//! `_foreach_` AdamW does, with the moments moved by `lerp`), behind a device-side gate that
//! turns the update into an exact no-op without a host read-back.

use super::flat::FlatLayout;
use crate::error::{ModelError, Result};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// AdamW hyperparameters (the learning rate comes per step).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator offset.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    /// PyTorch's defaults: `(0.9, 0.999)`, `eps = 1e-8`, `weight_decay = 0.01`.
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

impl AdamWConfig {
    /// Checks the ranges (`0 <= beta < 1`, `eps > 0`, `weight_decay >= 0`).
    pub fn validate(&self) -> Result<()> {
        for (name, b) in [("train.beta1", self.beta1), ("train.beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(ModelError::invalid(
                    name,
                    format!("must lie in [0, 1), got {b}"),
                ));
            }
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(ModelError::invalid(
                "train.eps",
                "must be finite and positive",
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(ModelError::invalid(
                "train.weight_decay",
                "must be finite and non-negative",
            ));
        }
        Ok(())
    }
}

/// AdamW with inspectable state.
#[derive(Debug)]
pub struct AdamW {
    config: AdamWConfig,
    step: u64,
    exp_avg: Vec<Tensor>,
    exp_avg_sq: Vec<Tensor>,
    /// Flat moment buffers (`exp_avg` and `exp_avg_sq` are views of them) and a scratch buffer.
    flat: Option<[Tensor; 3]>,
}

impl AdamW {
    /// An optimizer for `params` with zero moments.
    pub fn new(params: &[Tensor], config: AdamWConfig) -> Result<Self> {
        config.validate()?;
        let zeros = || {
            params
                .iter()
                .map(|p| tch::no_grad(|| p.zeros_like()))
                .collect()
        };
        Ok(AdamW {
            config,
            step: 0,
            exp_avg: zeros(),
            exp_avg_sq: zeros(),
            flat: None,
        })
    }

    /// An optimizer whose zero moments live in flat buffers of `layout` (kind `kind` on
    /// `device`), for [`AdamW::step_flat`]; [`AdamW::step`] works on it too.
    pub fn flat(
        layout: &FlatLayout,
        kind: tch::Kind,
        device: tch::Device,
        config: AdamWConfig,
    ) -> Result<Self> {
        config.validate()?;
        let [m, v, scratch] = [0; 3].map(|_| layout.zeros(kind, device));
        Ok(AdamW {
            config,
            step: 0,
            exp_avg: layout.views(&m),
            exp_avg_sq: layout.views(&v),
            flat: Some([m, v, scratch]),
        })
    }

    /// Counts one more update and returns its bias corrections: `sqrt(1 - b2^k)` and the step
    /// size `lr / (1 - b1^k)`.
    fn advance(&mut self, lr: f64) -> (f64, f64) {
        self.step += 1;
        let k = self.step as i32;
        let bc1 = 1.0 - self.config.beta1.powi(k);
        ((1.0 - self.config.beta2.powi(k)).sqrt(), lr / bc1)
    }

    /// Sets the number of updates done (the bias corrections depend on it), e.g. after updates
    /// that a device-side gate turned into no-ops.
    pub fn set_steps_done(&mut self, step: u64) {
        self.step = step;
    }

    /// One update of the flat parameter buffer `p` from the flat gradient buffer `g` (both laid
    /// out as at construction with [`AdamW::flat`]) with learning rate `lr`, gated by `gate`
    /// (a 0-dim tensor on the device, 1 or 0 in `p`'s kind): with gate 0 parameters and moments
    /// are left exactly as they were (the gradient must then be finite, e.g. zeroed), and the
    /// step count still advances ([`AdamW::set_steps_done`] rewinds it).
    pub fn step_flat(&mut self, p: &Tensor, g: &Tensor, lr: f64, gate: &Tensor) -> Result<()> {
        let [m, v, scratch] = self
            .flat
            .as_ref()
            .ok_or_else(|| {
                ModelError::invalid(
                    "optimizer",
                    "step_flat needs an optimizer built by AdamW::flat",
                )
            })?
            .each_ref()
            .map(|t| t.shallow_clone());
        if p.size() != m.size() || g.size() != m.size() {
            return Err(ModelError::Shape {
                context: "flat AdamW buffers".into(),
                expected: m.size(),
                got: if p.size() != m.size() {
                    p.size()
                } else {
                    g.size()
                },
            });
        }
        let (bc2_sqrt, step_size) = self.advance(lr);
        let AdamWConfig {
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.config;
        tch::no_grad(|| {
            let (mut p, mut m, mut v, mut s) = (p.shallow_clone(), m, v, scratch);
            // Gated scalars: with gate 0 every factor is 1 and every weight 0.
            let decay = gate * (-lr * weight_decay) + 1.0;
            let w1 = gate * (1.0 - beta1);
            let w2 = gate * (1.0 - beta2);
            let w3 = gate * step_size;
            let _ = p.g_mul_(&decay);
            let _ = m.lerp_tensor_(g, &w1);
            let _ = g.mul_out(&s, g);
            let _ = v.lerp_tensor_(&s, &w2);
            let _ = v.sqrt_out(&s);
            let _ = s.g_div_scalar_(bc2_sqrt);
            let _ = s.g_add_scalar_(eps);
            let _ = m.div_out(&s, &s);
            let _ = s.g_mul_(&w3);
            let _ = p.g_sub_(&s);
        });
        Ok(())
    }

    /// Number of updates done.
    pub fn steps_done(&self) -> u64 {
        self.step
    }

    /// First moments, in parameter order.
    pub fn exp_avg(&self) -> &[Tensor] {
        &self.exp_avg
    }

    /// Second moments, in parameter order.
    pub fn exp_avg_sq(&self) -> &[Tensor] {
        &self.exp_avg_sq
    }

    /// Replaces the state (from a checkpoint); shapes must match the current moments.
    pub fn load_state(
        &mut self,
        step: u64,
        exp_avg: &[Tensor],
        exp_avg_sq: &[Tensor],
    ) -> Result<()> {
        if exp_avg.len() != self.exp_avg.len() || exp_avg_sq.len() != self.exp_avg_sq.len() {
            return Err(ModelError::invalid(
                "optimizer state",
                format!(
                    "{} / {} moment tensors for {} parameters",
                    exp_avg.len(),
                    exp_avg_sq.len(),
                    self.exp_avg.len()
                ),
            ));
        }
        for (dst, src) in self
            .exp_avg
            .iter()
            .zip(exp_avg)
            .chain(self.exp_avg_sq.iter().zip(exp_avg_sq))
        {
            if dst.size() != src.size() {
                return Err(ModelError::Shape {
                    context: "optimizer moment".into(),
                    expected: dst.size(),
                    got: src.size(),
                });
            }
            let src = src.to_kind(dst.kind()).to_device(dst.device());
            tch::no_grad(|| dst.shallow_clone().copy_(&src));
        }
        self.step = step;
        Ok(())
    }

    /// One update of `params` (same order as at construction) from their `.grad()`, with
    /// learning rate `lr`. Parameters without a gradient are left alone (their moments too).
    pub fn step(&mut self, params: &[Tensor], lr: f64) -> Result<()> {
        if params.len() != self.exp_avg.len() {
            return Err(ModelError::invalid(
                "params",
                format!(
                    "{} parameters, optimizer built for {}",
                    params.len(),
                    self.exp_avg.len()
                ),
            ));
        }
        let (bc2_sqrt, step_size) = self.advance(lr);
        let AdamWConfig {
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.config;
        tch::no_grad(|| {
            for ((p, m), v) in params.iter().zip(&self.exp_avg).zip(&self.exp_avg_sq) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let (mut p, mut m, mut v) =
                    (p.shallow_clone(), m.shallow_clone(), v.shallow_clone());
                let _ = p.g_mul_scalar_(1.0 - lr * weight_decay);
                let _ = m.g_mul_scalar_(beta1);
                let _ = m.g_add_(&(&g * (1.0 - beta1)));
                let _ = v.g_mul_scalar_(beta2);
                let _ = v.g_add_(&(g.square() * (1.0 - beta2)));
                let denom = v.sqrt() / bc2_sqrt + eps;
                let _ = p.g_sub_(&(m.divide(&denom) * step_size));
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::OptimizerConfig;
    use tch::{nn, Device, Kind};

    #[test]
    fn matches_torch_adamw_on_a_quadratic() {
        let target = Tensor::from_slice(&[1.0f32, -2.0, 0.5]);
        let run_ours = || {
            let p = Tensor::from_slice(&[0.3f32, 0.1, -0.4]).set_requires_grad(true);
            let mut opt = AdamW::new(
                &[p.shallow_clone()],
                AdamWConfig {
                    weight_decay: 0.1,
                    ..AdamWConfig::default()
                },
            )
            .unwrap();
            for k in 0..50 {
                let mut q = p.shallow_clone();
                q.zero_grad();
                let loss = (&p - &target).square().sum(Kind::Float) * (1.0 + k as f64 * 0.01);
                loss.backward();
                opt.step(&[p.shallow_clone()], 0.05).unwrap();
            }
            Vec::<f32>::try_from(p.detach()).unwrap()
        };
        let run_torch = || {
            let vs = nn::VarStore::new(Device::Cpu);
            let p = vs
                .root()
                .var_copy("p", &Tensor::from_slice(&[0.3f32, 0.1, -0.4]));
            let mut opt = nn::AdamW {
                beta1: 0.9,
                beta2: 0.999,
                wd: 0.1,
                eps: 1e-8,
                amsgrad: false,
            }
            .build(&vs, 0.05)
            .unwrap();
            for k in 0..50 {
                opt.zero_grad();
                let loss = (&p - &target).square().sum(Kind::Float) * (1.0 + k as f64 * 0.01);
                loss.backward();
                opt.step();
            }
            Vec::<f32>::try_from(p.detach()).unwrap()
        };
        let (a, b) = (run_ours(), run_torch());
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
        // It actually moved toward the target.
        assert!((a[0] - 1.0).abs() < 0.3);
    }

    #[test]
    fn flat_steps_match_the_per_tensor_ones_and_a_closed_gate_is_a_no_op() {
        let init = [
            Tensor::from_slice(&[0.3f64, 0.1, -0.4, 2.0]).reshape([2, 2]),
            Tensor::from_slice(&[-1.5f64]),
        ];
        let params = |flat: bool| -> (Vec<Tensor>, Option<(FlatLayout, Tensor, Tensor)>) {
            let ps: Vec<Tensor> = init
                .iter()
                .map(|t| t.copy().set_requires_grad(true))
                .collect();
            if !flat {
                return (ps, None);
            }
            let layout = FlatLayout::of(&ps);
            let p = layout.flatten(&ps).unwrap();
            let g = layout.zeros(Kind::Double, Device::Cpu);
            layout.attach_grads(&ps, &g).unwrap();
            (ps, Some((layout, p, g)))
        };
        let loss = |ps: &[Tensor], k: usize| {
            (ps[0].square().sum(Kind::Double) * (1.0 + 0.1 * k as f64)
                + (&ps[1] - 3.0).square().sum(Kind::Double))
                * 0.5
        };
        let config = AdamWConfig {
            weight_decay: 0.1,
            ..AdamWConfig::default()
        };
        let (a, _) = params(false);
        let mut opt_a = AdamW::new(&a, config).unwrap();
        let (b, flat) = params(true);
        let (layout, pb, gb) = flat.unwrap();
        let mut opt_b = AdamW::flat(&layout, Kind::Double, Device::Cpu, config).unwrap();
        let open = Tensor::from_slice(&[1.0f64]).reshape([]);
        let shut = Tensor::from_slice(&[0.0f64]).reshape([]);
        for k in 0..30 {
            for p in &a {
                p.shallow_clone().zero_grad();
            }
            loss(&a, k).backward();
            opt_a.step(&a, 0.05).unwrap();
            let _ = gb.shallow_clone().zero_();
            loss(&b, k).backward();
            assert_eq!(layout.adopt_grads(&b, &gb).unwrap(), 0);
            opt_b.step_flat(&pb, &gb, 0.05, &open).unwrap();
        }
        for (x, y) in a.iter().zip(&b) {
            let d = (x - y).abs().max().double_value(&[]);
            assert!(d < 1e-12, "flat and per-tensor AdamW differ by {d}");
        }
        // A closed gate leaves parameters and moments bit for bit.
        let before: Vec<f64> = Vec::try_from(&pb).unwrap();
        let m_before: Vec<f64> = Vec::try_from(&opt_b.exp_avg()[0].flatten(0, -1)).unwrap();
        opt_b.step_flat(&pb, &gb, 0.05, &shut).unwrap();
        assert_eq!(Vec::<f64>::try_from(&pb).unwrap(), before);
        assert_eq!(
            Vec::<f64>::try_from(&opt_b.exp_avg()[0].flatten(0, -1)).unwrap(),
            m_before
        );
        assert!(opt_a.step_flat(&pb, &gb, 0.05, &open).is_err());
    }
}
