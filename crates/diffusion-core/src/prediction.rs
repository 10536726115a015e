//! Model outputs and the one place that converts between parameterizations.
//!
//! A network (or an analytic target) predicts one of noise `eps`, clean data `x0`, `v`, the score
//! or the flow velocity. [`Prediction::resolve`] turns any of them into the pair
//! `(x0_hat, eps_hat)` with `x = alpha x0_hat + sigma eps_hat`; every solver consumes that pair.
//!
//! Paper: Salimans & Ho (2022), "Progressive Distillation for Fast Sampling of Diffusion Models",
//! arXiv:2202.00512, Sec. 4 and App. D (the v parameterization); Kingma et al. (2021), "Variational
//! Diffusion Models", arXiv:2107.00630 (eps / x0 / SNR conventions).
//!
//! Conventions (with `x = alpha x0 + sigma eps`):
//! - `V`: `v = alpha eps - sigma x0` (Salimans & Ho 2022, arXiv:2202.00512, Sec. 4 and App. D),
//!   generalized to non-VP schedules by dividing by `alpha^2 + sigma^2`;
//! - `Score`: `grad log p_t(x) = -eps / sigma`;
//! - `Velocity`: `dx/dt = alpha' x0 + sigma' eps` (flow matching / rectified flow).

use crate::error::{CoreError, Result};
use crate::schedule::NoiseSchedule;
use crate::state::State;

/// What a denoiser returned at state `x` and time `t`.
#[derive(Debug)]
pub enum Prediction<S> {
    /// The noise `eps` (DDPM).
    Epsilon(S),
    /// The clean sample `x0` (EDM's `D(x; sigma)`).
    Sample(S),
    /// `v = alpha eps - sigma x0`.
    V(S),
    /// The score `grad_x log p_t(x)`.
    Score(S),
    /// The velocity `dx/dt = alpha'(t) x0 + sigma'(t) eps` of the interpolation path.
    Velocity(S),
}

/// The schedule numbers at one time that [`Prediction::resolve`] needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coeffs {
    /// `alpha(t)`.
    pub alpha: f64,
    /// `sigma(t)`.
    pub sigma: f64,
    /// `d alpha / dt` (only used for [`Prediction::Velocity`]).
    pub d_alpha: f64,
    /// `d sigma / dt` (only used for [`Prediction::Velocity`]).
    pub d_sigma: f64,
}

impl Coeffs {
    /// Reads the coefficients of `schedule` at `t`; the derivatives follow from the SDE:
    /// `alpha' = f alpha`, `(sigma^2)' = g^2 + 2 f sigma^2`.
    pub fn at(schedule: &dyn NoiseSchedule, t: f64) -> Self {
        let (alpha, sigma) = (schedule.alpha(t), schedule.sigma(t));
        let f = schedule.drift(t);
        let g2 = schedule.diffusion_sq(t);
        let d_sigma = if sigma > 0.0 {
            (g2 + 2.0 * f * sigma * sigma) / (2.0 * sigma)
        } else {
            f64::INFINITY
        };
        Coeffs {
            alpha,
            sigma,
            d_alpha: f * alpha,
            d_sigma,
        }
    }
}

impl<S: State> Prediction<S> {
    /// A short name of the parameterization.
    pub fn kind(&self) -> &'static str {
        match self {
            Prediction::Epsilon(_) => "epsilon",
            Prediction::Sample(_) => "sample",
            Prediction::V(_) => "v",
            Prediction::Score(_) => "score",
            Prediction::Velocity(_) => "velocity",
        }
    }

    /// [`Prediction::resolve`] that writes the half it computes into `spare` (a state of the
    /// shape of `x` that the caller owns exclusively, see [`State::is_exclusive`]) instead of a
    /// new allocation, when one is given. The same arithmetic, so the same bits. Sampling loops
    /// pass a buffer recycled from an earlier step, so a step allocates nothing here.
    pub fn resolve_reusing(self, x: &S, c: &Coeffs, spare: Option<S>) -> Result<(S, S)> {
        let Some(mut buf) = spare else {
            return self.resolve(x, c);
        };
        let (alpha, sigma) = (c.alpha, c.sigma);
        match self {
            Prediction::Epsilon(eps) if alpha != 0.0 => {
                x.lincomb_into(1.0 / alpha, &eps, -sigma / alpha, &mut buf);
                Ok((buf, eps))
            }
            Prediction::Sample(x0) if sigma > 0.0 => {
                x.lincomb_into(1.0 / sigma, &x0, -alpha / sigma, &mut buf);
                Ok((x0, buf))
            }
            other => other.resolve(x, c),
        }
    }

    /// Converts to `(x0_hat, eps_hat)` at state `x` with coefficients `c`.
    ///
    /// Errors when the conversion is singular: `Epsilon`/`Score` at `alpha = 0`, `Sample` at
    /// `sigma = 0` for the eps half (then `eps_hat` is returned as zeros, which is exact for a
    /// solver's final step to `sigma = 0`), `Velocity` where `alpha sigma' - sigma alpha' = 0`.
    pub fn resolve(self, x: &S, c: &Coeffs) -> Result<(S, S)> {
        let Coeffs {
            alpha,
            sigma,
            d_alpha,
            d_sigma,
        } = *c;
        let singular = |what: &str| {
            CoreError::invalid(
                "prediction",
                format!("{what} (alpha = {alpha}, sigma = {sigma})"),
            )
        };
        match self {
            Prediction::Epsilon(eps) => {
                if alpha == 0.0 {
                    return Err(singular("an eps prediction cannot give x0 at alpha = 0"));
                }
                let x0 = x.lincomb(1.0 / alpha, &eps, -sigma / alpha);
                Ok((x0, eps))
            }
            Prediction::Sample(x0) => {
                let eps = if sigma > 0.0 {
                    x.lincomb(1.0 / sigma, &x0, -alpha / sigma)
                } else {
                    x.zeros_like()
                };
                Ok((x0, eps))
            }
            Prediction::V(v) => {
                let n = alpha * alpha + sigma * sigma;
                let x0 = x.lincomb(alpha / n, &v, -sigma / n);
                let eps = x.lincomb(sigma / n, &v, alpha / n);
                Ok((x0, eps))
            }
            Prediction::Score(score) => {
                if alpha == 0.0 {
                    return Err(singular("a score prediction cannot give x0 at alpha = 0"));
                }
                let eps = score.scale(-sigma);
                let x0 = x.lincomb(1.0 / alpha, &score, sigma * sigma / alpha);
                Ok((x0, eps))
            }
            Prediction::Velocity(u) => {
                let det = alpha * d_sigma - sigma * d_alpha;
                if det == 0.0 || !det.is_finite() {
                    return Err(singular("a velocity prediction is singular here"));
                }
                let x0 = x.lincomb(d_sigma / det, &u, -sigma / det);
                let eps = u.lincomb(alpha / det, x, -d_alpha / det);
                Ok((x0, eps))
            }
        }
    }
}

/// A model queried by every sampler: given the state `x` and time `t` it predicts something that
/// [`Prediction::resolve`] can turn into `(x0_hat, eps_hat)`.
///
/// Closures `Fn(&S, f64) -> Result<Prediction<S>>` implement it.
pub trait Denoiser<S> {
    /// The model's prediction at `(x, t)`.
    fn predict(&self, x: &S, t: f64) -> Result<Prediction<S>>;
}

impl<S, F> Denoiser<S> for F
where
    F: Fn(&S, f64) -> Result<Prediction<S>>,
{
    fn predict(&self, x: &S, t: f64) -> Result<Prediction<S>> {
        self(x, t)
    }
}

/// Wraps a denoiser and counts its evaluations (the NFE of a sampling run).
pub struct Counted<'a, S> {
    inner: &'a dyn Denoiser<S>,
    calls: std::cell::Cell<usize>,
}

impl<'a, S> Counted<'a, S> {
    /// Starts counting calls to `inner` from zero.
    pub fn new(inner: &'a dyn Denoiser<S>) -> Self {
        Counted {
            inner,
            calls: std::cell::Cell::new(0),
        }
    }
    /// Number of evaluations so far.
    pub fn calls(&self) -> usize {
        self.calls.get()
    }
}

impl<S> Denoiser<S> for Counted<'_, S> {
    fn predict(&self, x: &S, t: f64) -> Result<Prediction<S>> {
        self.calls.set(self.calls.get() + 1);
        self.inner.predict(x, t)
    }
}

/// Queries `model` at `(x, t)` and resolves the answer into `(x0_hat, eps_hat)` with the
/// coefficients of `schedule`; non-finite outputs are an error naming `t`.
pub fn denoise<S: State>(
    model: &dyn Denoiser<S>,
    schedule: &dyn NoiseSchedule,
    x: &S,
    t: f64,
) -> Result<(S, S)> {
    let c = Coeffs::at(schedule, t);
    let (x0, eps) = model.predict(x, t)?.resolve(x, &c)?;
    if !x0.is_finite() {
        return Err(CoreError::NonFinite {
            context: format!("model output at t = {t}"),
        });
    }
    Ok((x0, eps))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array1};
    use proptest::prelude::*;

    fn close(a: &Array1<f64>, b: &Array1<f64>, tol: f64) -> bool {
        a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= tol * (1.0 + y.abs()))
    }

    proptest! {
        #[test]
        fn every_parameterization_round_trips(
            alpha in 0.05f64..3.0, sigma in 0.05f64..5.0,
            da in -3.0f64..3.0, ds in 0.1f64..4.0,
            x0v in proptest::collection::vec(-3.0f64..3.0, 3),
            ev in proptest::collection::vec(-3.0f64..3.0, 3),
        ) {
            let x0 = Array1::from(x0v);
            let eps = Array1::from(ev);
            let x = x0.lincomb(alpha, &eps, sigma);
            let c = Coeffs { alpha, sigma, d_alpha: da, d_sigma: ds };
            prop_assume!((alpha * ds - sigma * da).abs() > 1e-3);
            let preds = vec![
                Prediction::Epsilon(eps.clone()),
                Prediction::Sample(x0.clone()),
                Prediction::V(eps.lincomb(alpha, &x0, -sigma)),
                Prediction::Score(eps.scale(-1.0 / sigma)),
                Prediction::Velocity(x0.lincomb(da, &eps, ds)),
            ];
            for p in preds {
                let kind = p.kind();
                let (a, e) = p.resolve(&x, &c).unwrap();
                prop_assert!(close(&a, &x0, 1e-8), "{} x0 {:?} vs {:?}", kind, a, x0);
                prop_assert!(close(&e, &eps, 1e-8), "{} eps {:?} vs {:?}", kind, e, eps);
            }
        }
    }

    #[test]
    fn sample_prediction_at_sigma_zero_is_exact_and_eps_singularities_are_errors() {
        let x = array![1.0, 2.0];
        let c = Coeffs {
            alpha: 1.0,
            sigma: 0.0,
            d_alpha: 0.0,
            d_sigma: 1.0,
        };
        let (x0, eps) = Prediction::Sample(x.clone()).resolve(&x, &c).unwrap();
        assert_eq!(x0, x);
        assert_eq!(eps, array![0.0, 0.0]);
        let c0 = Coeffs {
            alpha: 0.0,
            sigma: 1.0,
            d_alpha: -1.0,
            d_sigma: 1.0,
        };
        assert!(Prediction::Epsilon(x.clone()).resolve(&x, &c0).is_err());
    }

    #[test]
    fn coeffs_derivatives_match_finite_differences() {
        let s = crate::schedule::VpLinear::default();
        let t = 0.4;
        let c = Coeffs::at(&s, t);
        let h = 1e-6;
        let da = (s.alpha(t + h) - s.alpha(t - h)) / (2.0 * h);
        let ds = (s.sigma(t + h) - s.sigma(t - h)) / (2.0 * h);
        assert!((c.d_alpha - da).abs() < 1e-6);
        assert!((c.d_sigma - ds).abs() < 1e-6);
    }
}
