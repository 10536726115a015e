//! Exponential moving averages of the parameters, at several decays at once.
//!
//! Paper: Polyak & Juditsky (1992), "Acceleration of Stochastic Approximation by Averaging", SIAM
//! J. Control Optim. 30(4) (iterate averaging); Song & Ermon (2020), "Improved Techniques for
//! Training Score-Based Generative Models", arXiv:2006.09011, Sec. 3.5 (EMA for diffusion
//! models); Karras et al. (2024), "Analyzing and Improving the Training Dynamics of Diffusion
//! Models", arXiv:2312.02696, Sec. 3 (several EMA lengths tracked together).
//!
//! After update `k` (1-based): `s = d_k s + (1 - d_k) p` with `d_k = decay`, or with warmup
//! `d_k = min(decay, (1 + k) / (10 + k))` (TensorFlow's `ExponentialMovingAverage(num_updates)`,
//! also diffusers' `EMAModel` default), which keeps early averages from remembering the random
//! initialization.
//!
//! [`Ema::flat`] keeps each average in one flat buffer laid out like the trainer's flat parameter
//! buffer; [`Ema::update_flat`] then folds in the parameters with one `lerp` kernel per decay,
//! behind the same device-side gate as [`super::adamw::AdamW::step_flat`].

use super::flat::FlatLayout;
use crate::error::{ModelError, Result};
use tch::Tensor;

/// EMA copies of a parameter list, one per decay.
#[derive(Debug)]
pub struct Ema {
    decays: Vec<f64>,
    warmup: bool,
    shadows: Vec<Vec<Tensor>>,
    /// One flat buffer per decay (the `shadows` are views of them), for [`Ema::update_flat`].
    flat: Vec<Tensor>,
}

impl Ema {
    /// Starts every average at the current `params`; decays lie in `[0, 1)`.
    pub fn new(decays: &[f64], params: &[Tensor], warmup: bool) -> Result<Self> {
        if let Some(d) = decays.iter().find(|d| !(0.0..1.0).contains(*d)) {
            return Err(ModelError::invalid(
                "train.ema_decays",
                format!("each decay must lie in [0, 1), got {d}"),
            ));
        }
        let shadows = decays
            .iter()
            .map(|_| params.iter().map(|p| p.detach().copy()).collect())
            .collect();
        Ok(Ema {
            decays: decays.to_vec(),
            warmup,
            shadows,
            flat: Vec::new(),
        })
    }

    /// Starts every average at the flat parameter buffer `params` (laid out by `layout`), each
    /// average in a flat buffer of its own; decays lie in `[0, 1)`.
    pub fn flat(
        decays: &[f64],
        layout: &FlatLayout,
        params: &Tensor,
        warmup: bool,
    ) -> Result<Self> {
        let mut e = Ema::new(decays, &[], warmup)?;
        e.flat = decays.iter().map(|_| params.detach().copy()).collect();
        e.shadows = e.flat.iter().map(|f| layout.views(f)).collect();
        Ok(e)
    }

    /// Folds in the flat parameter buffer after update `k` (1-based): one `lerp` per decay,
    /// weighted by `gate` (a 0-dim tensor, 1 or 0, in the buffer's kind; 0 leaves the averages
    /// exactly as they were). Needs an average built by [`Ema::flat`].
    pub fn update_flat(&mut self, params: &Tensor, k: u64, gate: &Tensor) -> Result<()> {
        if self.flat.len() != self.decays.len() {
            return Err(ModelError::invalid(
                "ema",
                "update_flat needs averages built by Ema::flat",
            ));
        }
        for i in 0..self.decays.len() {
            let w = gate * (1.0 - self.decay_at(i, k));
            let s = &self.flat[i];
            if s.size() != params.size() {
                return Err(ModelError::Shape {
                    context: "flat EMA buffer".into(),
                    expected: s.size(),
                    got: params.size(),
                });
            }
            tch::no_grad(|| {
                let _ = s.shallow_clone().lerp_tensor_(params, &w);
            });
        }
        Ok(())
    }

    /// The decays.
    pub fn decays(&self) -> &[f64] {
        &self.decays
    }

    /// The decay actually used for decay index `i` at update `k` (1-based).
    pub fn decay_at(&self, i: usize, k: u64) -> f64 {
        let d = self.decays[i];
        if self.warmup {
            d.min((1.0 + k as f64) / (10.0 + k as f64))
        } else {
            d
        }
    }

    /// Folds in `params` after update `k` (1-based).
    pub fn update(&mut self, params: &[Tensor], k: u64) {
        for i in 0..self.decays.len() {
            let d = self.decay_at(i, k);
            tch::no_grad(|| {
                for (s, p) in self.shadows[i].iter().zip(params) {
                    let mut s = s.shallow_clone();
                    let _ = s.g_mul_scalar_(d);
                    let _ = s.g_add_(&(p.detach() * (1.0 - d)));
                }
            });
        }
    }

    /// The averaged parameters for decay index `i`, in parameter order.
    pub fn shadow(&self, i: usize) -> &[Tensor] {
        &self.shadows[i]
    }

    /// The index of `decay` (exact match).
    pub fn index_of(&self, decay: f64) -> Option<usize> {
        self.decays.iter().position(|&d| d == decay)
    }

    /// Replaces the averages of decay index `i` (from a checkpoint); shapes must match.
    pub fn load(&mut self, i: usize, values: &[Tensor]) -> Result<()> {
        let dst = &self.shadows[i];
        if dst.len() != values.len() {
            return Err(ModelError::invalid(
                "ema",
                format!("{} tensors for {} parameters", values.len(), dst.len()),
            ));
        }
        for (d, v) in dst.iter().zip(values) {
            if d.size() != v.size() {
                return Err(ModelError::Shape {
                    context: "EMA parameter".into(),
                    expected: d.size(),
                    got: v.size(),
                });
            }
            let v = v.to_kind(d.kind()).to_device(d.device());
            tch::no_grad(|| d.shallow_clone().copy_(&v));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_follow_the_recursion() {
        let p = Tensor::from_slice(&[0.0f64]);
        let mut ema = Ema::new(&[0.5, 0.9], &[p.shallow_clone()], false).unwrap();
        for k in 1..=3 {
            let _ = p.shallow_clone().fill_(k as f64);
            ema.update(&[p.shallow_clone()], k);
        }
        // 0.5: ((0 * .5 + .5) * .5 + 1) * .5 + 1.5 = 2.125
        assert!((ema.shadow(0)[0].double_value(&[0]) - 2.125).abs() < 1e-12);
        let want = ((0.1f64 * 0.9 + 0.2) * 0.9) + 0.3;
        assert!((ema.shadow(1)[0].double_value(&[0]) - want).abs() < 1e-12);
        let w = Ema::new(&[0.999], &[p.shallow_clone()], true).unwrap();
        assert!((w.decay_at(0, 1) - 2.0 / 11.0).abs() < 1e-15);
        assert_eq!(w.decay_at(0, 1_000_000), 0.999);
        assert!(Ema::new(&[1.0], &[p], false).is_err());
    }

    #[test]
    fn flat_averages_follow_the_same_recursion() {
        let ps = [
            Tensor::from_slice(&[0.0f64, 1.0]),
            Tensor::from_slice(&[2.0f64]),
        ];
        let layout = FlatLayout::of(&ps);
        let flat = layout
            .gather(&ps, tch::Kind::Double, tch::Device::Cpu)
            .unwrap();
        let mut a = Ema::new(&[0.5, 0.9], &ps, true).unwrap();
        let mut b = Ema::flat(&[0.5, 0.9], &layout, &flat, true).unwrap();
        let one = Tensor::from_slice(&[1.0f64]).reshape([]);
        for k in 1..=4 {
            let _ = flat.shallow_clone().g_add_scalar_(k as f64);
            let views = layout.views(&flat);
            a.update(&views, k);
            b.update_flat(&flat, k, &one).unwrap();
        }
        for i in 0..2 {
            for (x, y) in a.shadow(i).iter().zip(b.shadow(i)) {
                assert!((x - y).abs().max().double_value(&[]) < 1e-14);
            }
        }
        let kept: Vec<f64> = Vec::try_from(&b.shadow(1)[0]).unwrap();
        b.update_flat(&(&flat + 100.0), 5, &(&one * 0.0)).unwrap();
        assert_eq!(Vec::<f64>::try_from(&b.shadow(1)[0]).unwrap(), kept);
        assert!(a.update_flat(&flat, 5, &one).is_err());
    }
}
