//! AB-Cache: skipping model evaluations by extrapolating cached outputs.
//!
//! Paper: Yu et al. (2025), "AB-Cache: Training-Free Acceleration of Diffusion Models via
//! Adams-Bashforth Cached Feature Reuse", arXiv:2504.10540: along a sampling trajectory the
//! network outputs of consecutive steps are related by the Adams-Bashforth recurrence, so an
//! output can be predicted from the `k` previous ones with a truncation error `O(h^k)` instead of
//! being recomputed (order 1 is plain reuse, the "naive cache"). On equal steps the order-`k`
//! prediction is `sum_{j=1..k} (-1)^(j+1) C(k, j) o_{n-j}` (order 2: `2 o_{n-1} - o_{n-2}`), the
//! polynomial through the cached outputs evaluated at the new step.
//!
//! [`AbCache`] wraps any [`Denoiser`], so it works with every solver. On the calls that its
//! [`SkipPattern`] marks (for example every other call after a warm-up) it does not call the
//! model; it returns the Lagrange extrapolation, in the half log-SNR `lambda` of the call, of
//! the model's native output (noise, data, v, score or velocity prediction) through the `k`
//! newest computed outputs. On a log-SNR-uniform grid these are the equal-step weights above;
//! on any other grid the variable-step form keeps the order. Extrapolated outputs are never
//! cached (errors do not compound). A marked call still evaluates the model when fewer than `k`
//! outputs are cached, when their parameterization differs, at `lambda = +inf` (the data), or
//! when the call repeats a cached `lambda` (the second evaluation of Heun-type steps).
//!
//! The adapter keeps per-trajectory state: [`AbCache::reset`] it between trajectories. Its
//! statistics ([`AbCache::stats`]) count calls, model evaluations and skipped calls; the error it
//! adds to a sampler of step `h` is `O(h^k)` for a fixed fraction of skipped calls.

use crate::ode::{lagrange_basis, sum};
use diffusion_core::{CoreError, Denoiser, NoiseSchedule, Prediction, Result, State};
use std::cell::RefCell;
use std::collections::VecDeque;

/// Which calls to the model are replaced by extrapolation: after `warmup` calls, in every block
/// of `period` calls the first `period - skip` evaluate the model and the last `skip` are
/// extrapolated (so a fraction `skip / period` of the calls is skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkipPattern {
    /// Calls at the start that always evaluate the model (at least the order).
    pub warmup: usize,
    /// Length of the repeating block (>= 1).
    pub period: usize,
    /// Extrapolated calls at the end of each block (`< period`).
    pub skip: usize,
}

impl SkipPattern {
    /// Every other call skipped after `warmup` calls (AB-Cache's usual setting).
    pub fn every_other(warmup: usize) -> Self {
        SkipPattern {
            warmup,
            period: 2,
            skip: 1,
        }
    }

    /// `true` when call number `call` (0-based) is to be extrapolated.
    pub fn skips(&self, call: usize) -> bool {
        self.skip > 0
            && call >= self.warmup
            && (call - self.warmup) % self.period >= self.period - self.skip
    }

    /// The fraction of calls skipped after the warm-up.
    pub fn fraction(&self) -> f64 {
        self.skip as f64 / self.period as f64
    }
}

/// Counters of an [`AbCache`] since its last reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AbCacheStats {
    /// Calls to the adapter.
    pub calls: usize,
    /// Calls that evaluated the wrapped model.
    pub computed: usize,
    /// Calls answered by extrapolation.
    pub skipped: usize,
}

/// The parameterization of a prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Epsilon,
    Sample,
    V,
    Score,
    Velocity,
}

fn parts<S>(p: &Prediction<S>) -> (Kind, &S) {
    match p {
        Prediction::Epsilon(s) => (Kind::Epsilon, s),
        Prediction::Sample(s) => (Kind::Sample, s),
        Prediction::V(s) => (Kind::V, s),
        Prediction::Score(s) => (Kind::Score, s),
        Prediction::Velocity(s) => (Kind::Velocity, s),
    }
}

fn join<S>(kind: Kind, s: S) -> Prediction<S> {
    match kind {
        Kind::Epsilon => Prediction::Epsilon(s),
        Kind::Sample => Prediction::Sample(s),
        Kind::V => Prediction::V(s),
        Kind::Score => Prediction::Score(s),
        Kind::Velocity => Prediction::Velocity(s),
    }
}

/// The per-trajectory state: counters and the newest computed outputs `(lambda, kind, output)`,
/// oldest first.
struct History<S> {
    stats: AbCacheStats,
    outputs: VecDeque<(f64, Kind, S)>,
}

/// A [`Denoiser`] that answers the calls marked by a [`SkipPattern`] with the order-`k`
/// Adams-Bashforth (polynomial) extrapolation of the wrapped model's cached outputs.
pub struct AbCache<'a, S> {
    inner: &'a dyn Denoiser<S>,
    schedule: &'a dyn NoiseSchedule,
    order: usize,
    pattern: SkipPattern,
    history: RefCell<History<S>>,
}

/// The largest supported extrapolation order.
pub const MAX_AB_CACHE_ORDER: usize = 4;

impl<'a, S: State> AbCache<'a, S> {
    /// Wraps `inner` (trained for `schedule`) with extrapolation order `order` in
    /// `1..=MAX_AB_CACHE_ORDER` and the skip `pattern` (`period >= 1`, `skip < period`,
    /// `warmup >= order`).
    pub fn new(
        inner: &'a dyn Denoiser<S>,
        schedule: &'a dyn NoiseSchedule,
        order: usize,
        pattern: SkipPattern,
    ) -> Result<Self> {
        if !(1..=MAX_AB_CACHE_ORDER).contains(&order) {
            return Err(CoreError::invalid(
                "order",
                format!("must be in 1..={MAX_AB_CACHE_ORDER}, got {order}"),
            ));
        }
        if pattern.period == 0 || pattern.skip >= pattern.period {
            return Err(CoreError::invalid(
                "pattern",
                format!(
                    "need period >= 1 and skip < period (some calls must evaluate the model), got period {} and skip {}",
                    pattern.period, pattern.skip
                ),
            ));
        }
        if pattern.warmup < order {
            return Err(CoreError::invalid(
                "warmup",
                format!(
                    "must be at least the order ({order}) so that the first skipped call has enough cached outputs, got {}",
                    pattern.warmup
                ),
            ));
        }
        Ok(AbCache {
            inner,
            schedule,
            order,
            pattern,
            history: RefCell::new(History {
                stats: AbCacheStats::default(),
                outputs: VecDeque::new(),
            }),
        })
    }

    /// Forgets the cached outputs and counters (call between trajectories).
    pub fn reset(&self) {
        let mut h = self.history.borrow_mut();
        h.stats = AbCacheStats::default();
        h.outputs.clear();
    }

    /// The counters since the last reset.
    pub fn stats(&self) -> AbCacheStats {
        self.history.borrow().stats
    }

    /// The extrapolation of the cached outputs to `lambda`, when allowed.
    fn extrapolate(&self, h: &History<S>, lambda: f64) -> Option<Prediction<S>> {
        if !lambda.is_finite() || h.outputs.len() < self.order {
            return None;
        }
        let newest: Vec<&(f64, Kind, S)> = h.outputs.iter().rev().take(self.order).collect();
        let kind = newest[0].1;
        if newest.iter().any(|(l, k, _)| *k != kind || *l == lambda) {
            return None;
        }
        let nodes: Vec<f64> = newest.iter().map(|(l, _, _)| *l).collect();
        let w = lagrange_basis(&nodes, lambda);
        let terms: Vec<(f64, &S)> = w
            .iter()
            .zip(&newest)
            .map(|(&c, (_, _, s))| (c, s))
            .collect();
        Some(join(kind, sum(&terms)))
    }
}

impl<S: State> Denoiser<S> for AbCache<'_, S> {
    fn predict(&self, x: &S, t: f64) -> Result<Prediction<S>> {
        let lambda = self.schedule.lambda(t);
        let call = {
            let mut h = self.history.borrow_mut();
            h.stats.calls += 1;
            h.stats.calls - 1
        };
        if self.pattern.skips(call) {
            let mut h = self.history.borrow_mut();
            if let Some(p) = self.extrapolate(&h, lambda) {
                h.stats.skipped += 1;
                return Ok(p);
            }
        }
        let p = self.inner.predict(x, t)?;
        let mut h = self.history.borrow_mut();
        h.stats.computed += 1;
        if lambda.is_finite() {
            let (kind, s) = parts(&p);
            if h.outputs.back().is_some_and(|(l, _, _)| *l == lambda) {
                h.outputs.pop_back();
            }
            h.outputs.push_back((lambda, kind, s.dup()));
            while h.outputs.len() > self.order {
                h.outputs.pop_front();
            }
        }
        Ok(p)
    }
}
