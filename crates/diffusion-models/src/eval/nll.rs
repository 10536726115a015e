//! Log-likelihood of data under a diffusion model through the probability-flow ODE, in nats and
//! bits per dimension.
//!
//! Paper: Song, Sohl-Dickstein, Kingma, Kumar, Ermon & Poole (2021), "Score-Based Generative
//! Modeling through Stochastic Differential Equations", arXiv:2011.13456, Sec. 4.3 and App. D.2
//! (Eq. (39)-(40): `log p_0(x(0)) = log p_T(x(T)) + int_0^T div f~(x(t), t) dt` for the PF-ODE
//! drift `f~(x, t) = f(t) x - g(t)^2 / 2 * score(x, t)`, integrated with RK45 at
//! `rtol = atol = 1e-5` from `t = eps`); Grathwohl, Chen, Bettencourt, Sutskever & Duvenaud
//! (2019), "FFJORD: Free-form Continuous Dynamics for Scalable Reversible Generative Models",
//! arXiv:1810.01367, Sec. 3.1 (the Hutchinson estimator `div f = E_z[z^T (df/dx) z]` with one
//! probe `z` held fixed along the whole trajectory, Rademacher or Gaussian); Ho, Jain & Abbeel
//! (2020), arXiv:2006.11239, Sec. 3.3, and Song et al. (2021), App. D.2 (uniform dequantization
//! of 8-bit data and the bits/dim offset).
//!
//! # The ODE
//! With `(x0_hat, eps_hat)` the resolved prediction of the network at `(x, t)`, the score is
//! `-eps_hat / sigma`, so the drift is `v(x, t) = f(t) x + g(t)^2 / (2 sigma(t)) eps_hat`. The
//! augmented state `[x, delta]` solves `dx/dt = v`, `d delta/dt = div_x v` from `t_start`
//! (small, `sigma > 0`) to `t_end` (the prior), and the continuity equation gives
//! `log p_{t_start}(x) = log p_prior(x(t_end)) + delta(t_end)`. The divergence is exact
//! ([`Divergence::Exact`]: one backward pass per data dimension, for small dimensions) or the
//! Hutchinson estimate ([`Divergence::Hutchinson`]: one backward pass per evaluation, probes from
//! a seeded `HostNoise`), whose expectation is the exact value because the `x` trajectory does not
//! depend on the probe. Integration is the classical fixed-step RK4 on a uniform grid in `t`, or
//! adaptive Dormand-Prince 5(4) with the tableau of `diffusion_solvers::adaptive` and its PI
//! step-size controller, with the error norm `rms(err / max(atol, rtol max(|y0|, |y1|)))` over
//! both `x` and `delta`.
//!
//! # Bits per dimension and dequantization
//! For 8-bit data (`k in {0..255}^D`) mapped to `[low, high]` (`[-1, 1]`: `x = k / 127.5 - 1`),
//! [`Dequantization::dequantize`] draws `u ~ U[0, 1)^D` and uses
//! `x = low + (high - low) (k + u) / 256`. The discrete probability of `k` is the integral of the
//! continuous density over its cell of side `(high - low) / 256`, so by Jensen
//! `log P(k) >= E_u[log p(x)] + D ln((high - low) / 256)` and
//! `bpd = -log p(x) / (D ln 2) + 8 - log2(high - low)` (7 for `[-1, 1]`, as score_sde's
//! `offset = 7 - inverse_scaler(-1)` for centered data) bounds the discrete NLL from above.
//! Without dequantization `bpd = -log p(x) / (D ln 2)` is the continuous density's.

use crate::denoiser::TchDenoiser;
use crate::error::{ModelError, Result};
use diffusion_core::{Coeffs, HostNoise, NoiseSchedule, Phase, State};
use diffusion_solvers::adaptive::{
    PidController, StepSizeController, DOPRI5_A, DOPRI5_B, DOPRI5_C, DOPRI5_E,
};
use tch::{Kind, Tensor};

/// How the divergence of the drift is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Divergence {
    /// Exactly, with one backward pass per data dimension (small dimensions only).
    Exact,
    /// The Hutchinson estimate `z^T (dv/dx) z` with one probe per sample, fixed along the
    /// trajectory and drawn from `HostNoise::new(seed)`.
    Hutchinson {
        /// The probe distribution.
        probe: Probe,
        /// Seed of the probes.
        seed: u64,
    },
}

/// The distribution of Hutchinson probes (both have `E[z z^T] = I`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Entries `+-1` with probability 1/2 (the lower-variance choice).
    Rademacher,
    /// Standard normal entries.
    Gaussian,
}

/// How the augmented ODE is integrated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OdeMethod {
    /// Classical fourth-order Runge-Kutta on `steps` uniform steps in `t`.
    Rk4 {
        /// Number of steps (>= 1).
        steps: usize,
    },
    /// Adaptive Dormand-Prince 5(4) (score_sde uses `rtol = atol = 1e-5`).
    Rk45 {
        /// Relative tolerance (>= 0).
        rtol: f64,
        /// Absolute tolerance (> 0).
        atol: f64,
    },
}

/// A log-density of the rows of a `[B, ...]` tensor, returning `[B]`.
pub type LogDensityFn<'a> = Box<dyn Fn(&Tensor) -> Result<Tensor> + 'a>;

/// The density at the end of the integration.
pub enum Prior<'a> {
    /// `N(0, std^2 I)`.
    Isotropic {
        /// The standard deviation (> 0).
        std: f64,
    },
    /// Any log-density of the rows of a `[B, ...]` tensor, returning `[B]`.
    Custom(LogDensityFn<'a>),
}

impl std::fmt::Debug for Prior<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Prior::Isotropic { std } => write!(f, "Isotropic {{ std: {std} }}"),
            Prior::Custom(_) => write!(f, "Custom"),
        }
    }
}

impl Prior<'_> {
    /// The usual prior at time `t` of `schedule`: `N(0, (alpha^2 + sigma^2) I)`, the marginal
    /// scale of unit-variance data (score_sde's `N(0, I)` for VP and flows, and its
    /// `N(0, sigma_max^2 I)` for VE / EDM up to the data variance).
    pub fn for_schedule(schedule: &dyn NoiseSchedule, t: f64) -> Self {
        let (a, s) = (schedule.alpha(t), schedule.sigma(t));
        Prior::Isotropic {
            std: (a * a + s * s).sqrt(),
        }
    }

    /// The log-density of each row of `x` (`[B, ...]`), as `[B]` `f64` values.
    pub fn log_prob(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Prior::Isotropic { std } => {
                if !(std.is_finite() && *std > 0.0) {
                    return Err(ModelError::invalid(
                        "prior std",
                        format!("must be finite and positive, got {std}"),
                    ));
                }
                let flat = x.to_kind(Kind::Double).flatten(1, -1);
                let d = flat.size()[1] as f64;
                let quad = flat.square().sum_dim_intlist(1, false, Kind::Double) / (std * std);
                Ok((quad + d * (2.0 * std::f64::consts::PI * std * std).ln()) * -0.5)
            }
            Prior::Custom(f) => f(x).map(|t| t.to_kind(Kind::Double)),
        }
    }
}

/// Settings of [`log_likelihood`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NllOptions {
    /// Where the data lives: the small time the integration starts at (`sigma(t_start) > 0`;
    /// score_sde uses `1e-5` for VP).
    pub t_start: f64,
    /// The prior's time (`None`: the end of the schedule's range).
    pub t_end: Option<f64>,
    /// Exact or Hutchinson divergence.
    pub divergence: Divergence,
    /// The integrator.
    pub method: OdeMethod,
    /// Attempted steps after which RK45 fails.
    pub max_attempts: usize,
}

impl Default for NllOptions {
    /// score_sde's setting: `t_start = 1e-5`, RK45 at `rtol = atol = 1e-5`, Rademacher
    /// Hutchinson probes with seed 0.
    fn default() -> Self {
        NllOptions {
            t_start: 1e-5,
            t_end: None,
            divergence: Divergence::Hutchinson {
                probe: Probe::Rademacher,
                seed: 0,
            },
            method: OdeMethod::Rk45 {
                rtol: 1e-5,
                atol: 1e-5,
            },
            max_attempts: 10_000,
        }
    }
}

/// What [`log_likelihood`] found, per sample.
#[derive(Debug)]
pub struct Likelihood {
    /// `log p_{t_start}(x)` of each sample, in nats.
    pub log_p: Vec<f64>,
    /// `log p_prior(x(t_end))` of each sample.
    pub prior_log_p: Vec<f64>,
    /// `int div v dt` of each sample (the change of log-density along the flow).
    pub delta: Vec<f64>,
    /// Data dimensions per sample.
    pub dim: usize,
    /// Network evaluations (each with its backward passes).
    pub nfe: usize,
    /// Accepted integration steps.
    pub steps: usize,
    /// The states at `t_end`.
    pub x_end: Tensor,
}

impl Likelihood {
    /// Mean negative log-likelihood in nats per sample.
    pub fn mean_nll(&self) -> f64 {
        -self.log_p.iter().sum::<f64>() / self.log_p.len().max(1) as f64
    }

    /// Bits per dimension of each sample, with the dequantization offset when given.
    pub fn bits_per_dim(&self, dequant: Option<&Dequantization>) -> Vec<f64> {
        self.log_p
            .iter()
            .map(|&l| bits_per_dim(l, self.dim, dequant))
            .collect()
    }

    /// The mean of [`Likelihood::bits_per_dim`].
    pub fn mean_bits_per_dim(&self, dequant: Option<&Dequantization>) -> f64 {
        bits_per_dim(-self.mean_nll(), self.dim, dequant)
    }
}

/// Uniform dequantization of `bits`-bit data mapped linearly to `[low, high]` (see the module
/// documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dequantization {
    /// Bits per value (8 for images).
    pub bits: u32,
    /// The value of level 0.
    pub low: f64,
    /// The value of the top level (`2^bits - 1`).
    pub high: f64,
}

impl Dequantization {
    /// 8-bit data in `[-1, 1]` (`x = k / 127.5 - 1`).
    pub fn eight_bit_symmetric() -> Self {
        Dequantization {
            bits: 8,
            low: -1.0,
            high: 1.0,
        }
    }

    fn levels(&self) -> f64 {
        2f64.powi(self.bits as i32)
    }

    /// `bits - log2(high - low)`: the bits/dim added to the continuous `-log p / (D ln 2)`.
    pub fn offset_bits(&self) -> f64 {
        self.bits as f64 - (self.high - self.low).log2()
    }

    /// Dequantizes `x` (values on the grid `low + (high - low) k / (2^bits - 1)`): each value
    /// becomes `low + (high - low) (k + u) / 2^bits` with `u ~ U[0, 1)` from `noise`. Errors on
    /// values off the range.
    pub fn dequantize(&self, x: &Tensor, noise: &mut HostNoise) -> Result<Tensor> {
        if !(self.bits >= 1 && self.bits <= 16 && self.high > self.low) {
            return Err(ModelError::invalid(
                "dequantization",
                format!(
                    "needs 1..=16 bits and high > low, got {} bits on [{}, {}]",
                    self.bits, self.low, self.high
                ),
            ));
        }
        let n = self.levels();
        let range = self.high - self.low;
        let xd = x.to_kind(Kind::Double);
        let k = ((&xd - self.low) * ((n - 1.0) / range)).round();
        let (kmin, kmax) = (k.min().double_value(&[]), k.max().double_value(&[]));
        if !(kmin >= 0.0 && kmax <= n - 1.0) {
            return Err(ModelError::invalid(
                "x",
                format!(
                    "values must lie in [{}, {}] to be dequantized (levels {kmin}..{kmax} of {n})",
                    self.low, self.high
                ),
            ));
        }
        let u = Tensor::from_slice(&noise_uniforms(noise, x.numel()))
            .reshape(x.size())
            .to_device(x.device());
        Ok(((k + u) * (range / n) + self.low).to_kind(x.kind()))
    }
}

fn noise_uniforms(noise: &mut HostNoise, n: usize) -> Vec<f64> {
    (0..n).map(|_| noise.uniform()).collect()
}

/// Bits per dimension of a log-likelihood `log_p` (nats) of a `dim`-dimensional sample, with
/// the dequantization offset ([`Dequantization::offset_bits`]) when given.
pub fn bits_per_dim(log_p: f64, dim: usize, dequant: Option<&Dequantization>) -> f64 {
    -log_p / (dim as f64 * std::f64::consts::LN_2) + dequant.map_or(0.0, |d| d.offset_bits())
}

/// The PF-ODE drift and its divergence at one time, as `Phase { x: v, v: div }`.
struct Drift<'a, 'b> {
    den: &'a TchDenoiser<'b>,
    divergence: Divergence,
    probe: Option<Tensor>,
    dim: i64,
    nfe: usize,
}

impl Drift<'_, '_> {
    fn eval(&mut self, t: f64, x: &Tensor) -> Result<Phase<Tensor>> {
        let schedule = self.den.schedule();
        let c = Coeffs::at(schedule, t);
        if c.sigma.is_nan() || c.sigma <= 0.0 {
            return Err(ModelError::invalid(
                "t",
                format!(
                    "the PF-ODE drift needs sigma(t) > 0, got sigma({t}) = {}",
                    c.sigma
                ),
            ));
        }
        let f = schedule.drift(t);
        let g2 = schedule.diffusion_sq(t);
        self.nfe += 1;
        tch::with_grad(|| {
            let xg = x.detach().set_requires_grad(true);
            let pred = self.den.predict_with_grad(&xg, t)?;
            let (_, eps) = pred.resolve(&xg, &c)?;
            let v = xg.lincomb(f, &eps, g2 / (2.0 * c.sigma));
            let b = v.size()[0];
            let div = match (&self.divergence, &self.probe) {
                (Divergence::Exact, _) => {
                    let vf = v.reshape([b, -1]);
                    let mut div = Tensor::zeros([b], (Kind::Double, x.device()));
                    for i in 0..self.dim {
                        let keep = i + 1 < self.dim;
                        let g = Tensor::f_run_backward(
                            &[vf.select(1, i).sum(Kind::Double)],
                            &[&xg],
                            keep,
                            false,
                        )?;
                        div += g[0].reshape([b, -1]).select(1, i).to_kind(Kind::Double);
                    }
                    div
                }
                (Divergence::Hutchinson { .. }, Some(z)) => {
                    let g = Tensor::f_run_backward(
                        &[(&v * z).sum(Kind::Double)],
                        &[&xg],
                        false,
                        false,
                    )?;
                    (&g[0] * z)
                        .reshape([b, -1])
                        .sum_dim_intlist(1, false, Kind::Double)
                }
                (Divergence::Hutchinson { .. }, None) => unreachable!("probe drawn in new()"),
            };
            Ok(Phase::new(v.detach(), div.detach()))
        })
    }
}

fn check_finite(y: &Phase<Tensor>, t: f64) -> Result<()> {
    if y.is_finite() {
        Ok(())
    } else {
        Err(ModelError::NonFinite(format!(
            "the likelihood ODE state at t = {t}"
        )))
    }
}

/// `log p(x)` of each sample of `x` (`[B, ...]`) under the model `den` (with its schedule)
/// through the probability-flow ODE from `opts.t_start` to the prior (see the module
/// documentation). `x` is taken as the state at `t_start`.
pub fn log_likelihood(
    den: &TchDenoiser<'_>,
    x: &Tensor,
    opts: &NllOptions,
    prior: &Prior<'_>,
) -> Result<Likelihood> {
    let schedule = den.schedule();
    let size = x.size();
    if size.len() < 2 || size[0] == 0 || size[1..].iter().product::<i64>() == 0 {
        return Err(ModelError::Shape {
            context: "log_likelihood input (needs [B, ...] with B >= 1 and data)".into(),
            expected: vec![-1, -1],
            got: size,
        });
    }
    let (b, dim) = (size[0], size[1..].iter().product::<i64>());
    let (lo, hi) = schedule.t_range();
    let t0 = opts.t_start;
    let t1 = opts.t_end.unwrap_or(hi);
    let sigma0 = schedule.sigma(t0);
    let ordered = t0 >= lo && t1 <= hi && t0 < t1;
    if !ordered || sigma0.is_nan() || sigma0 <= 0.0 {
        return Err(ModelError::invalid(
            "t_start/t_end",
            format!(
                "need {lo} <= t_start < t_end <= {hi} and sigma(t_start) > 0, got [{t0}, {t1}] \
                 (sigma(t_start) = {})",
                schedule.sigma(t0)
            ),
        ));
    }
    let probe = match opts.divergence {
        Divergence::Exact => None,
        Divergence::Hutchinson { probe, seed } => {
            let mut noise = HostNoise::new(seed);
            let n = (b * dim) as usize;
            let z: Vec<f64> = match probe {
                Probe::Gaussian => noise.normals(n),
                Probe::Rademacher => (0..n)
                    .map(|_| if noise.uniform() < 0.5 { -1.0 } else { 1.0 })
                    .collect(),
            };
            Some(
                Tensor::from_slice(&z)
                    .reshape(x.size())
                    .to_kind(x.kind())
                    .to_device(x.device()),
            )
        }
    };
    let mut drift = Drift {
        den,
        divergence: opts.divergence,
        probe,
        dim,
        nfe: 0,
    };
    let y0 = Phase::new(x.detach(), Tensor::zeros([b], (Kind::Double, x.device())));
    let (y, steps) = match opts.method {
        OdeMethod::Rk4 { steps } => rk4(&mut drift, y0, t0, t1, steps)?,
        OdeMethod::Rk45 { rtol, atol } => {
            rk45(&mut drift, y0, t0, t1, rtol, atol, opts.max_attempts)?
        }
    };
    let prior_lp = prior.log_prob(&y.x)?;
    if prior_lp.size() != [b] {
        return Err(ModelError::Shape {
            context: "prior log-density (one value per sample)".into(),
            expected: vec![b],
            got: prior_lp.size(),
        });
    }
    let to_vec = |t: &Tensor| -> Result<Vec<f64>> {
        Ok(Vec::<f64>::try_from(
            t.to_kind(Kind::Double).to_device(tch::Device::Cpu),
        )?)
    };
    let prior_log_p = to_vec(&prior_lp)?;
    let delta = to_vec(&y.v)?;
    let log_p = prior_log_p.iter().zip(&delta).map(|(p, d)| p + d).collect();
    Ok(Likelihood {
        log_p,
        prior_log_p,
        delta,
        dim: dim as usize,
        nfe: drift.nfe,
        steps,
        x_end: y.x,
    })
}

fn rk4(
    f: &mut Drift<'_, '_>,
    mut y: Phase<Tensor>,
    t0: f64,
    t1: f64,
    steps: usize,
) -> Result<(Phase<Tensor>, usize)> {
    if steps == 0 {
        return Err(ModelError::invalid("steps", "RK4 needs at least one step"));
    }
    let h = (t1 - t0) / steps as f64;
    for i in 0..steps {
        let t = t0 + i as f64 * h;
        let k1 = f.eval(t, &y.x)?;
        let y2 = y.axpy(0.5 * h, &k1);
        let k2 = f.eval(t + 0.5 * h, &y2.x)?;
        let y3 = y.axpy(0.5 * h, &k2);
        let k3 = f.eval(t + 0.5 * h, &y3.x)?;
        let y4 = y.axpy(h, &k3);
        let t_next = if i + 1 == steps { t1 } else { t + h };
        let k4 = f.eval(t_next, &y4.x)?;
        let k23 = k2.lincomb(1.0, &k3, 1.0);
        y = y
            .lincomb3(1.0, &k1, h / 6.0, &k23, h / 3.0)
            .axpy(h / 6.0, &k4);
        check_finite(&y, t_next)?;
    }
    Ok((y, steps))
}

/// `rms(err / max(atol, rtol max(|a|, |b|)))` over both halves of the augmented state.
fn scaled_error(
    err: &Phase<Tensor>,
    a: &Phase<Tensor>,
    b: &Phase<Tensor>,
    rtol: f64,
    atol: f64,
) -> f64 {
    let part = |e: &Tensor, p: &Tensor, q: &Tensor| -> f64 {
        let scale = (p.abs().maximum(&q.abs()) * rtol).clamp_min(atol);
        (e / scale).square().sum(Kind::Double).double_value(&[])
    };
    let ss = part(&err.x, &a.x, &b.x) + part(&err.v, &a.v, &b.v);
    (ss / err.numel().max(1) as f64).sqrt()
}

#[allow(clippy::too_many_arguments)]
fn rk45(
    f: &mut Drift<'_, '_>,
    mut y: Phase<Tensor>,
    t0: f64,
    t1: f64,
    rtol: f64,
    atol: f64,
    max_attempts: usize,
) -> Result<(Phase<Tensor>, usize)> {
    if !(rtol >= 0.0 && rtol.is_finite() && atol > 0.0 && atol.is_finite()) {
        return Err(ModelError::invalid(
            "rtol/atol",
            format!("need rtol >= 0 and atol > 0, finite; got {rtol}, {atol}"),
        ));
    }
    let mut controller = PidController::pi(5.0)?;
    controller.reset();
    let mut t = t0;
    let mut h = 1e-2 * (t1 - t0);
    let mut k1 = f.eval(t, &y.x)?;
    let (mut accepted, mut attempts) = (0usize, 0usize);
    while t < t1 {
        if attempts >= max_attempts {
            return Err(ModelError::invalid(
                "max_attempts",
                format!(
                    "the likelihood ODE made {attempts} attempts and reached t = {t} of {t1}; \
                     loosen rtol/atol or raise max_attempts"
                ),
            ));
        }
        attempts += 1;
        let last = t + h >= t1;
        let hh = if last { t1 - t } else { h };
        let mut k = vec![k1.dup()];
        for (i, row) in DOPRI5_A.iter().enumerate() {
            let mut yi = y.dup();
            for (a, kj) in row.iter().zip(&k) {
                if *a != 0.0 {
                    yi = yi.axpy(hh * a, kj);
                }
            }
            k.push(f.eval(t + DOPRI5_C[i + 1] * hh, &yi.x)?);
        }
        let mut y5 = y.dup();
        for (bi, ki) in DOPRI5_B.iter().zip(&k) {
            if *bi != 0.0 {
                y5 = y5.axpy(hh * bi, ki);
            }
        }
        let t_new = if last { t1 } else { t + hh };
        let k7 = f.eval(t_new, &y5.x)?;
        k.push(k7);
        let mut err = y.zeros_like();
        for (ei, ki) in DOPRI5_E.iter().zip(&k) {
            if *ei != 0.0 {
                err = err.axpy(hh * ei, ki);
            }
        }
        let e = if y5.is_finite() {
            scaled_error(&err, &y, &y5, rtol, atol)
        } else {
            f64::INFINITY
        };
        let decision = controller.propose(hh, e);
        if decision.accept {
            t = t_new;
            y = y5;
            k1 = k.pop().expect("seven stages");
            accepted += 1;
        }
        h = decision.h_next;
        if t < t1 && !(h > 0.0 && h.is_finite()) {
            return Err(ModelError::NonFinite(format!(
                "the likelihood ODE step size at t = {t} ({h})"
            )));
        }
    }
    check_finite(&y, t1)?;
    Ok((y, accepted))
}
