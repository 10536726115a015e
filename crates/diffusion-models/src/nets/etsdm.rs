//! E-TSDM: early timestep-shared conditioning, a wrapper on any network's time input.
//!
//! Paper: Yang, Chen, Zhang, Jin, Wang, Zhang & Tang (2023), "Lipschitz Singularities in Diffusion
//! Models", arXiv:2306.11251, Sec. 4 (Eq. (6)): the network's Lipschitz constant with respect to
//! time is unbounded near `t = 0` (for eps-prediction, `d eps / dt ~ 1 / sqrt(t)`); E-TSDM divides
//! `[0, t~)` into `n` equal sub-intervals `[t_{i-1}, t_i)`, `t_i = i t~ / n`, and conditions the
//! network on the left end `t_{i-1}` of the sub-interval that contains `t`, while the noisy input
//! keeps its true time; above `t~` the condition is `t` itself. The paper's setting is `t~ = 100`
//! of `T = 1000` steps with `n = 5`, i.e. `t~ = 0.1` and `n = 5` on a unit time axis.
//!
//! The same wrapper serves training and sampling (it only changes what the inner network sees),
//! so the network's derivative with respect to its time input is exactly zero inside each
//! sub-interval: its Lipschitz constant in `t` on `[0, t~)` is 0 (the jumps at the `t_i` are
//! what is traded for it).

use super::TimeNet;
use crate::error::{ModelError, Result};
use tch::{Device, Kind, Tensor};

/// A network whose time condition is shared within `n` sub-intervals of `[0, t_tilde)`.
#[derive(Debug)]
pub struct SharedTime<N> {
    inner: N,
    t_tilde: f64,
    n: usize,
}

impl<N: TimeNet> SharedTime<N> {
    /// Wraps `inner`; `t_tilde > 0` is in the unit of the inner network's time input, `n >= 1`.
    pub fn new(inner: N, t_tilde: f64, n: usize) -> Result<Self> {
        if !(t_tilde.is_finite() && t_tilde > 0.0) {
            return Err(ModelError::invalid(
                "t_tilde",
                format!("must be finite and positive, got {t_tilde}"),
            ));
        }
        if n == 0 {
            return Err(ModelError::invalid("n", "needs at least one sub-interval"));
        }
        Ok(SharedTime { inner, t_tilde, n })
    }

    /// The wrapped network.
    pub fn inner(&self) -> &N {
        &self.inner
    }

    /// The condition the inner network sees for time `t` (host form of [`Self::shared`]).
    pub fn condition(&self, t: f64) -> f64 {
        if t < self.t_tilde && t >= 0.0 {
            let w = self.t_tilde / self.n as f64;
            ((t / w).floor() * w).min(self.t_tilde)
        } else {
            t
        }
    }

    /// The shared condition for per-sample times `t` (`[B]`).
    pub fn shared(&self, t: &Tensor) -> Tensor {
        let w = self.t_tilde / self.n as f64;
        let snapped = (t / w).floor() * w;
        let inside = t.lt(self.t_tilde).logical_and(&t.ge(0.0));
        snapped.where_self(&inside, t)
    }
}

impl<N: TimeNet> TimeNet for SharedTime<N> {
    fn forward_t(&self, x: &Tensor, t: &Tensor, class: Option<&Tensor>) -> Result<Tensor> {
        self.inner.forward_t(x, &self.shared(t), class)
    }

    fn kind(&self) -> Kind {
        self.inner.kind()
    }

    fn device(&self) -> Device {
        self.inner.device()
    }

    fn null_class(&self) -> Option<i64> {
        self.inner.null_class()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A net that returns its time input, broadcast over the state.
    struct Echo;
    impl TimeNet for Echo {
        fn forward_t(&self, x: &Tensor, t: &Tensor, _c: Option<&Tensor>) -> Result<Tensor> {
            Ok(t.unsqueeze(1).expand_as(x).to_kind(x.kind()))
        }
        fn device(&self) -> Device {
            Device::Cpu
        }
    }

    #[test]
    fn condition_is_piecewise_constant_below_t_tilde_and_identity_above() {
        let net = SharedTime::new(Echo, 0.1, 5).unwrap();
        let ts: Vec<f64> = (0..400).map(|i| i as f64 / 399.0).collect();
        let x = Tensor::zeros([ts.len() as i64, 2], (Kind::Double, Device::Cpu));
        let out = net
            .forward_t(&x, &Tensor::from_slice(&ts), None)
            .unwrap()
            .select(1, 0);
        let got: Vec<f64> = Vec::try_from(out).unwrap();
        for (&t, &c) in ts.iter().zip(&got) {
            if t >= 0.1 {
                assert_eq!(c, t, "identity above t~ at t = {t}");
            } else {
                // Left end of the sub-interval of width 0.02 that holds t.
                let k = (t / 0.02).floor();
                assert!((c - 0.02 * k).abs() < 1e-12, "t = {t}: {c}");
                assert!(c <= t && t - c < 0.02 + 1e-12);
                assert!((net.condition(t) - c).abs() < 1e-12);
            }
        }
        // Exactly n distinct conditions below t~.
        let mut below: Vec<f64> = ts
            .iter()
            .zip(&got)
            .filter(|(t, _)| **t < 0.1)
            .map(|(_, c)| *c)
            .collect();
        below.dedup();
        assert_eq!(below.len(), 5);
        assert!(SharedTime::new(Echo, 0.0, 5).is_err());
        assert!(SharedTime::new(Echo, 0.1, 0).is_err());
    }
}
