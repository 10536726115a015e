//! Learning-rate schedule: linear warmup, then cosine decay to a floor.
//!
//! Paper: Goyal et al. (2017), "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour",
//! arXiv:1706.02677, Sec. 2.2 (gradual warmup); Loshchilov & Hutter (2017), "SGDR: Stochastic
//! Gradient Descent with Warm Restarts", arXiv:1608.03983, Eq. (5) (cosine annealing, one cycle).
//!
//! For the update with 0-based index `k`: `lr = base (k + 1) / warmup` while `k < warmup`, then
//! `lr = min + (base - min) (1 + cos(pi p)) / 2` with `p = (k - warmup) / (total - warmup)`
//! clamped to 1 and `min = min_ratio * base`. A pure function of `k`, so a resumed run follows
//! the same schedule.

use crate::error::{ModelError, Result};

/// Warmup followed by cosine decay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmupCosine {
    base: f64,
    warmup: u64,
    total: u64,
    min_ratio: f64,
}

impl WarmupCosine {
    /// `base > 0` reached after `warmup` updates, decaying to `min_ratio * base` (`min_ratio` in
    /// `[0, 1]`) at update `total`.
    pub fn new(base: f64, warmup: u64, total: u64, min_ratio: f64) -> Result<Self> {
        if !(base.is_finite() && base > 0.0) {
            return Err(ModelError::invalid(
                "train.lr",
                format!("must be finite and positive, got {base}"),
            ));
        }
        if !(0.0..=1.0).contains(&min_ratio) {
            return Err(ModelError::invalid(
                "train.min_lr_ratio",
                format!("must lie in [0, 1], got {min_ratio}"),
            ));
        }
        Ok(WarmupCosine {
            base,
            warmup,
            total,
            min_ratio,
        })
    }

    /// The learning rate of the update with 0-based index `k`.
    pub fn at(&self, k: u64) -> f64 {
        if k < self.warmup {
            return self.base * (k + 1) as f64 / self.warmup as f64;
        }
        let span = self.total.saturating_sub(self.warmup).max(1) as f64;
        let p = ((k - self.warmup) as f64 / span).min(1.0);
        let min = self.min_ratio * self.base;
        min + (self.base - min) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        let s = WarmupCosine::new(1e-3, 10, 110, 0.1).unwrap();
        assert!((s.at(0) - 1e-4).abs() < 1e-15);
        assert!((s.at(9) - 1e-3).abs() < 1e-15);
        assert!((s.at(10) - 1e-3).abs() < 1e-15);
        assert!((s.at(60) - (1e-4 + 0.9e-3 * 0.5)).abs() < 1e-15);
        assert!((s.at(110) - 1e-4).abs() < 1e-15);
        assert!((s.at(500) - 1e-4).abs() < 1e-15);
        for k in 10..110 {
            assert!(s.at(k + 1) <= s.at(k));
        }
        assert!(WarmupCosine::new(0.0, 1, 2, 0.0).is_err());
        assert!(WarmupCosine::new(1.0, 1, 2, 1.5).is_err());
        // No warmup.
        assert_eq!(WarmupCosine::new(2.0, 0, 10, 0.0).unwrap().at(0), 2.0);
    }
}
