//! Adaptive Dormand-Prince 5(4) ("dopri5", "RK45") on the probability-flow ODE.
//!
//! Paper: Dormand & Prince (1980), "A family of embedded Runge-Kutta formulae", J. Comput. Appl.
//! Math. 6(1):19-26 (the tableau, Table 2: order 5 with an embedded order-4 error estimate,
//! first-same-as-last); Hairer, Nørsett & Wanner (1993), "Solving Ordinary Differential
//! Equations I", Sec. II.4 (the starting step size) and II.5 (DOPRI5). The black-box sampler of
//! Song et al. (2021), "Score-Based Generative Modeling through Stochastic Differential
//! Equations", arXiv:2011.13456, Sec. 4.3 / App. D.2 (scipy `RK45` on the PF-ODE,
//! `rtol = atol = 1e-5`), and the `dopri5` of torchdiffeq that k-diffusion's `log_likelihood`
//! uses.
//!
//! Two coordinate systems ([`OdeCoordinates`]):
//! - `Edm` (default): `y = x / alpha`, `rho = sigma / alpha`, `dy/drho = eps_hat(alpha y, t(rho))`,
//!   the same for every schedule (Karras et al. 2022, arXiv:2206.00364, Eq. 4); stage times
//!   come from [`NoiseSchedule::t_of_noise_ratio`];
//! - `Time`: `dx/dt = f(t) x + g(t)^2 eps_hat / (2 sigma(t))`, the PF-ODE in the schedule's own
//!   time, as score_sde integrates it.
//!
//! Each attempt costs 6 evaluations (the seventh stage is the first of the next step, FSAL; a
//! rejected attempt reuses it too); the first step size is chosen by Hairer's algorithm at the
//! cost of one more evaluation unless `h_init` is given. The error `h sum_i (b_i - b*_i) k_i` is
//! measured with the mixed norm `rms(err / max(atol, rtol max(|y0|, |y1|)))` in the integration
//! coordinates, and the default controller is the PI controller of Hairer & Wanner
//! ([`PidController::pi`] with `k = 5`). The solution is advanced with the fifth-order result
//! (local extrapolation), so the global error is roughly proportional to the tolerance. Both
//! ends need `sigma > 0` (the ODE is singular at the data); the grid wrapper [`Rk45`] takes the
//! first-order denoising step `alpha1 x0_hat` on a grid step to `sigma = 0`.

use super::controller::{PidController, StepSizeController};
use super::{adaptive_interval, check_tolerances, integrate, scaled_norm, AdaptiveStats, Attempts};
use crate::error::{Result, SolverError};
use crate::ode::{evaluate, sum};
use crate::solver::{Cache, Solver, Step};
use diffusion_core::{BrownianPath, Denoiser, NoiseSchedule, State, TimeGrid};

/// The variables the PF-ODE is integrated in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OdeCoordinates {
    /// `y = x / alpha` against `rho = sigma / alpha`: `dy/drho = eps_hat` (every schedule alike).
    #[default]
    Edm,
    /// `x` against the schedule time `t`: `dx/dt = f x + g^2 eps_hat / (2 sigma)`.
    Time,
}

/// Settings of [`pf_ode_rk45`] (defaults: score_sde's `rtol = atol = 1e-5`, automatic first
/// step, EDM coordinates).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rk45Options {
    /// Relative tolerance (>= 0).
    pub rtol: f64,
    /// Absolute tolerance (> 0).
    pub atol: f64,
    /// First attempted step size in the integration variable (> 0); `None` chooses it with
    /// Hairer's algorithm (one extra evaluation).
    pub h_init: Option<f64>,
    /// The integration variables.
    pub coordinates: OdeCoordinates,
    /// Attempts (accepted plus rejected) after which the integration fails.
    pub max_attempts: usize,
}

impl Default for Rk45Options {
    fn default() -> Self {
        Rk45Options {
            rtol: 1e-5,
            atol: 1e-5,
            h_init: None,
            coordinates: OdeCoordinates::Edm,
            max_attempts: 100_000,
        }
    }
}

impl Rk45Options {
    /// Checks every field, naming the first invalid one.
    pub fn validate(&self) -> Result<()> {
        check_tolerances(
            self.rtol,
            self.atol,
            self.h_init.unwrap_or(1.0),
            self.max_attempts,
        )
    }
}

/// Nodes `c_i` of the Dormand-Prince tableau.
pub const C: [f64; 7] = [0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0];
/// Rows `a_ij` of the Dormand-Prince tableau (stage `i + 2`).
pub const A: [&[f64]; 5] = [
    &[1.0 / 5.0],
    &[3.0 / 40.0, 9.0 / 40.0],
    &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
    &[
        19372.0 / 6561.0,
        -25360.0 / 2187.0,
        64448.0 / 6561.0,
        -212.0 / 729.0,
    ],
    &[
        9017.0 / 3168.0,
        -355.0 / 33.0,
        46732.0 / 5247.0,
        49.0 / 176.0,
        -5103.0 / 18656.0,
    ],
];
/// Fifth-order weights `b_i` (also the last row of `a`: first same as last).
pub const B: [f64; 6] = [
    35.0 / 384.0,
    0.0,
    500.0 / 1113.0,
    125.0 / 192.0,
    -2187.0 / 6784.0,
    11.0 / 84.0,
];
/// Error weights `b_i - b*_i` (`b*` the embedded fourth-order weights), seven stages.
pub const E: [f64; 7] = [
    71.0 / 57600.0,
    0.0,
    -71.0 / 16695.0,
    71.0 / 1920.0,
    -17253.0 / 339200.0,
    22.0 / 525.0,
    -1.0 / 40.0,
];

/// Integrates the PF-ODE from `t_start` to `t_end` (either direction; `sigma > 0` at both) with
/// adaptive Dormand-Prince 5(4) and the PI controller ([`PidController::pi`] with `k = 5`).
pub fn pf_ode_rk45<S: State>(
    model: &dyn Denoiser<S>,
    schedule: &dyn NoiseSchedule,
    t_start: f64,
    t_end: f64,
    x: S,
    opts: &Rk45Options,
) -> Result<(S, AdaptiveStats)> {
    opts.validate()?;
    let mut controller = PidController::pi(5.0)?;
    pf_ode_rk45_with(model, schedule, t_start, t_end, x, opts, &mut controller)
}

/// [`pf_ode_rk45`] with any step-size controller (reset before use).
pub fn pf_ode_rk45_with<S: State>(
    model: &dyn Denoiser<S>,
    schedule: &dyn NoiseSchedule,
    t_start: f64,
    t_end: f64,
    x: S,
    opts: &Rk45Options,
    controller: &mut dyn StepSizeController,
) -> Result<(S, AdaptiveStats)> {
    opts.validate()?;
    if t_start == t_end {
        return Ok((x, AdaptiveStats::default()));
    }
    TimeGrid::new(vec![t_start, t_end])?.check_within(schedule)?;
    let (s_start, s_end) = (schedule.sigma(t_start), schedule.sigma(t_end));
    if !(s_start > 0.0 && s_end > 0.0) {
        return Err(SolverError::InvalidParameter {
            name: "t_end",
            reason: format!(
                "RK45 on the PF-ODE needs sigma > 0 at both ends, got {s_start} at t = {t_start} and {s_end} at t = {t_end} (end at a small sigma > 0 and denoise, or use Rk45 on a grid)"
            ),
        });
    }
    let (u_start, u_end, y) = match opts.coordinates {
        OdeCoordinates::Edm => (
            schedule.noise_ratio(t_start),
            schedule.noise_ratio(t_end),
            x.scale(1.0 / schedule.alpha(t_start)),
        ),
        OdeCoordinates::Time => (t_start, t_end, x),
    };
    let mut p = Rk45Problem {
        model,
        schedule,
        opts,
        ends: [(u_start, t_start), (u_end, t_end)],
        t: t_start,
        y,
        k1: None,
        candidate: None,
        stats: AdaptiveStats::default(),
    };
    let h_init = match opts.h_init {
        Some(h) => h,
        None => p.initial_step(u_start, u_end)?,
    };
    integrate(
        &mut p,
        (u_start, u_end),
        h_init,
        opts.max_attempts,
        controller,
        "RK45",
    )?;
    let x = match opts.coordinates {
        OdeCoordinates::Edm => p.y.scale(schedule.alpha(t_end)),
        OdeCoordinates::Time => p.y,
    };
    Ok((x, p.stats))
}

/// The state of one Dormand-Prince integration.
struct Rk45Problem<'a, S> {
    model: &'a dyn Denoiser<S>,
    schedule: &'a dyn NoiseSchedule,
    opts: &'a Rk45Options,
    /// `(u, t)` at the start and the end, so the ends map to their exact times.
    ends: [(f64, f64); 2],
    /// Current time and solution (in the integration coordinates).
    t: f64,
    y: S,
    /// The derivative at the current point (first same as last).
    k1: Option<S>,
    /// The attempted step: its end `(u, t)`, solution and derivative there.
    candidate: Option<(f64, S, S)>,
    stats: AdaptiveStats,
}

impl<S: State> Rk45Problem<'_, S> {
    /// The schedule time of the integration variable `u`.
    fn time_of(&self, u: f64) -> f64 {
        if let Some(&(_, t)) = self.ends.iter().find(|(ue, _)| *ue == u) {
            return t;
        }
        match self.opts.coordinates {
            OdeCoordinates::Edm => self.schedule.t_of_noise_ratio(u),
            OdeCoordinates::Time => u,
        }
    }

    /// The right-hand side `dy/du` at `(u, y)` (one evaluation).
    fn rhs(&mut self, u: f64, y: &S) -> Result<S> {
        let sch = self.schedule;
        let t = self.time_of(u);
        self.stats.nfe += 1;
        match self.opts.coordinates {
            OdeCoordinates::Edm => Ok(evaluate(self.model, sch, &y.scale(sch.alpha(t)), t)?.eps),
            OdeCoordinates::Time => {
                let e = evaluate(self.model, sch, y, t)?;
                Ok(y.lincomb(
                    sch.drift(t),
                    &e.eps,
                    0.5 * sch.diffusion_sq(t) / sch.sigma(t),
                ))
            }
        }
    }

    /// The derivative at the current point, evaluated once.
    fn current_slope(&mut self, u: f64) -> Result<S> {
        match self.k1.take() {
            Some(k) => Ok(k),
            None => {
                let y = self.y.dup();
                self.rhs(u, &y)
            }
        }
    }

    /// Hairer, Nørsett & Wanner's starting step size (Sec. II.4), one extra evaluation.
    fn initial_step(&mut self, u0: f64, u_end: f64) -> Result<f64> {
        let (rtol, atol) = (self.opts.rtol, self.opts.atol);
        let span = (u_end - u0).abs();
        let dir = (u_end - u0).signum();
        let f0 = self.current_slope(u0)?;
        let d0 = scaled_norm(&self.y, &self.y, &self.y, rtol, atol);
        let d1 = scaled_norm(&f0, &self.y, &self.y, rtol, atol);
        let h0 = if d0 < 1e-5 || d1 < 1e-5 {
            1e-6 * span
        } else {
            (0.01 * d0 / d1).min(span)
        };
        let y1 = self.y.lincomb(1.0, &f0, dir * h0);
        let f1 = self.rhs(u0 + dir * h0, &y1)?;
        let d2 = scaled_norm(&f1.lincomb(1.0, &f0, -1.0), &self.y, &self.y, rtol, atol) / h0;
        let dmax = d1.max(d2);
        let h1 = if dmax <= 1e-15 || !dmax.is_finite() {
            (h0 * 1e-3).max(1e-6 * span)
        } else {
            (0.01 / dmax).powf(1.0 / 5.0)
        };
        self.k1 = Some(f0);
        Ok((100.0 * h0).min(h1).min(span))
    }
}

impl<S: State> Attempts for Rk45Problem<'_, S> {
    type Candidate = (f64, S, S);

    fn pending(&mut self) -> &mut Option<Self::Candidate> {
        &mut self.candidate
    }

    fn attempt(&mut self, u0: f64, u1: f64, _last: bool) -> Result<f64> {
        let h = u1 - u0;
        let mut k: Vec<S> = Vec::with_capacity(7);
        k.push(self.current_slope(u0)?);
        for (i, row) in A.iter().enumerate() {
            let mut terms: Vec<(f64, &S)> = vec![(1.0, &self.y)];
            terms.extend(row.iter().zip(&k).map(|(&a, ki)| (h * a, ki)));
            let yi = sum(&terms);
            // Stage i + 2 at u0 + c h; the sixth stage (c = 1) lands exactly on u1.
            let ui = if C[i + 1] == 1.0 {
                u1
            } else {
                u0 + C[i + 1] * h
            };
            let ki = self.rhs(ui, &yi)?;
            k.push(ki);
        }
        let mut terms: Vec<(f64, &S)> = vec![(1.0, &self.y)];
        terms.extend(B.iter().zip(&k).map(|(&b, ki)| (h * b, ki)));
        let y1 = sum(&terms);
        let k7 = self.rhs(u1, &y1)?;
        k.push(k7);
        let err_terms: Vec<(f64, &S)> = E
            .iter()
            .zip(&k)
            .filter(|(&e, _)| e != 0.0)
            .map(|(&e, ki)| (h * e, ki))
            .collect();
        let error = if y1.is_finite() {
            scaled_norm(
                &sum(&err_terms),
                &self.y,
                &y1,
                self.opts.rtol,
                self.opts.atol,
            )
        } else {
            f64::INFINITY
        };
        let k7 = k.pop().expect("seven stages");
        self.k1 = Some(k.swap_remove(0));
        self.candidate = Some((u1, y1, k7));
        Ok(error)
    }

    fn commit(&mut self, (u1, y1, k7): Self::Candidate) -> f64 {
        self.t = self.time_of(u1);
        self.y = y1;
        self.k1 = Some(k7);
        self.t
    }

    fn current_t(&self) -> f64 {
        self.t
    }

    fn stats(&mut self) -> &mut AdaptiveStats {
        &mut self.stats
    }
}

/// Adaptive RK45 as a grid [`Solver`]: every grid interval is integrated adaptively to the
/// tolerances (a one-step grid gives [`pf_ode_rk45`] itself), and a step to `sigma = 0` is the
/// first-order denoising step `alpha1 x0_hat`. `order()` reports 5, the order of the method; the
/// error is set by `rtol`/`atol`, not by the grid.
#[derive(Debug, Clone)]
pub struct Rk45 {
    opts: Rk45Options,
    controller: PidController,
}

impl Rk45 {
    /// With the PI controller ([`PidController::pi`], `k = 5`).
    pub fn new(opts: Rk45Options) -> Result<Self> {
        opts.validate()?;
        let controller = PidController::pi(5.0)?;
        Ok(Rk45 { opts, controller })
    }

    /// With a given PID controller (cloned fresh for every grid interval).
    pub fn with_controller(opts: Rk45Options, controller: PidController) -> Result<Self> {
        opts.validate()?;
        Ok(Rk45 { opts, controller })
    }
}

impl<S: State> Solver<S> for Rk45 {
    fn name(&self) -> String {
        format!(
            "rk45(rtol={},atol={},coordinates={:?})",
            self.opts.rtol, self.opts.atol, self.opts.coordinates
        )
    }
    fn order(&self) -> f64 {
        5.0
    }
    fn step(
        &self,
        step: &Step<'_, S>,
        x: S,
        _cache: &mut Cache<S>,
        _noise: &mut dyn BrownianPath<S>,
    ) -> Result<S> {
        adaptive_interval(step, x, |x| {
            let mut controller = self.controller.clone();
            pf_ode_rk45_with(
                step.model,
                step.schedule,
                step.t0,
                step.t1,
                x,
                &self.opts,
                &mut controller,
            )
        })
    }
}
