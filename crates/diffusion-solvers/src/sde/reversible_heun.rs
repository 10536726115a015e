//! The algebraically reversible Heun method on the reverse-time SDE (and on the PF-ODE).
//!
//! Paper: Kidger, Foster, Li & Lyons (2021), "Efficient and Accurate Gradients for Neural SDEs",
//! arXiv:2105.13493, Algorithm 1 (forward) and Algorithm 2 (its exact reverse); diffrax
//! `ReversibleHeun`, torchsde `reversible_heun`. For `dz = mu(t, z) dt + b(t, z) dW` it carries a
//! second state `z_hat` and, with `mu_n = mu(t_n, z_hat_n)`, `b_n = b(t_n, z_hat_n)`:
//! `z_hat_{n+1} = 2 z_n - z_hat_n + mu_n dt + b_n dW`,
//! `z_{n+1} = z_n + (mu_n + mu_{n+1}) dt / 2 + (b_n + b_{n+1}) dW / 2`, starting from
//! `z_hat_0 = z_0`. Given `(z_{n+1}, z_hat_{n+1}, mu_{n+1})` and the same `dW`, the previous
//! triple follows by solving these two lines backwards (`reverse_step`), one evaluation per
//! step either way; the reconstruction is exact up to floating-point rounding.
//!
//! The process is the reverse-SDE family with the PF-ODE marginals,
//! `dx = [f x - (1 + eta^2) g^2 grad log p / 2] dt + eta g dW` (`eta = 1`: the reverse SDE of
//! Song et al. 2021; `eta = 0`: the probability-flow ODE), written in the variables in which its
//! drift is the data prediction alone: with `c = 1 + eta^2`, `rho = sigma / alpha`,
//! `u = x / (sigma rho^(eta^2))` and `tau = rho^(-c) = e^(c lambda)`,
//! `du = x0_hat dtau + eta s_noise rho^(-c) (g / alpha) dW_t`.
//! (At `eta = 0` these are DDIM's variables `x / sigma` and `alpha / sigma`, in which DDIM is
//! Euler.) Three reasons for these coordinates: the trapezoidal rule is exact for a constant
//! data prediction, so the method is as accurate as Heun on the ODE; the flow expands in `u`
//! towards the data (`d x0_hat / du >= 0`), so the method's parasitic mode `u - u_hat`, which
//! grows by the flow's contraction (its steps have determinant -1), never grows while sampling
//! (in `x / alpha` against `rho` the reverse SDE contracts by `1e5` on the test target and the
//! method explodes below a few hundred steps); and the noise enters with a coefficient of time
//! only. The noise is indexed by the schedule time (as every sampler's [`BrownianPath`]); over
//! a step its coefficient is the root mean square `sqrt(|Delta(rho^(-2 eta^2))| / |t1 - t0|)`,
//! which gives the exact variance of the noise integral (the paper's `(b_n + b_{n+1}) / 2`
//! depends on `t` only here as well; its square overestimates the variance where `g / alpha`
//! varies fast). The noise is additive, so the Itô and Stratonovich solutions coincide and the
//! method converges strongly with order 1 (diffrax: order 1 for additive noise, 0.5 in
//! general); at `eta = 0` it is second order. `s_noise` multiplies the injected noise only
//! (k-diffusion's knob; 1 is exact).
//!
//! [`ReversibleHeun::generate`] runs a grid from noise to data keeping the full state
//! ([`ReversibleHeunState`]), [`ReversibleHeun::invert`] walks the same grid back along the
//! same Brownian path and returns the initial state (to about `1e-12` relative in the tests;
//! `x_hat` carries the parasitic mode, which grows on the way back, and is recovered less
//! precisely). As a grid [`Solver`] it keeps `x_hat` in the [`Cache`]'s auxiliary slot and the
//! evaluation at `x_hat` in its history; a step to `sigma = 0` is the denoising step
//! `alpha1 x0_hat` (not reversible).

use super::{draw_increment, NoiseControl};
use crate::error::{Result, SolverError};
use crate::ode::{evaluate, final_denoise};
use crate::ops::lincomb_terms_checked;
use crate::solver::{Cache, Eval, Solver, Step};
use diffusion_core::{BrownianPath, Denoiser, NoiseSchedule, State, TimeGrid};

/// The full state of the reversible Heun method at time `t`.
#[derive(Debug)]
pub struct ReversibleHeunState<S> {
    /// The time.
    pub t: f64,
    /// The solution `x_n`.
    pub x: S,
    /// The auxiliary state `x_hat_n` (`u_hat_n` in `x` units).
    pub x_hat: S,
    /// The model evaluation at `(x_hat, t)`.
    pub eval: Eval<S>,
}

/// `a s + c1 u1 + c2 u2 (+ noise_coef dW)` in one combination over `s` (in place when it owns
/// its storage), with `dW = c w` from [`draw_increment`].
fn combine<S: State>(
    s: S,
    a: f64,
    [(c1, u1), (c2, u2)]: [(f64, &S); 2],
    dw: &Option<(S, f64)>,
    noise_coef: f64,
) -> S {
    let mut terms = vec![(c1, u1), (c2, u2)];
    if let Some((w, c)) = dw {
        terms.push((c * noise_coef, w));
    }
    lincomb_terms_checked(s, a, &terms).0
}

/// The reversible Heun method (Kidger et al. 2021, Alg. 1) with stochasticity `eta`:
/// 1 evaluation per step, order 2 at `eta = 0`, strong order 1 otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ReversibleHeun {
    ctl: NoiseControl,
}

/// The coefficients of one step in `u = kappa x` against `tau` (see the module docs):
/// `dtau`, the ratio `kappa0 / kappa1`, `1 / kappa` at both ends and the noise coefficient `b`
/// (in `u` units per unit of `W(t1) - W(t0)`).
struct Coefs {
    dtau: f64,
    ratio: f64,
    inv_k0: f64,
    inv_k1: f64,
    b: f64,
}

impl ReversibleHeun {
    /// With stochasticity `eta` (0: PF-ODE, 1: reverse SDE) and noise multiplier `s_noise`, both
    /// finite and `>= 0`.
    pub fn new(eta: f64, s_noise: f64) -> Result<Self> {
        Ok(ReversibleHeun {
            ctl: NoiseControl::new(eta, s_noise)?,
        })
    }

    /// The probability-flow ODE version (`eta = 0`).
    pub fn ode() -> Self {
        ReversibleHeun {
            ctl: NoiseControl {
                eta: 0.0,
                s_noise: 1.0,
            },
        }
    }

    fn coefs(&self, schedule: &dyn NoiseSchedule, t0: f64, t1: f64) -> Result<Coefs> {
        for t in [t0, t1] {
            if schedule.sigma(t) <= 0.0 {
                return Err(SolverError::InvalidParameter {
                    name: "grid",
                    reason: format!(
                        "reversible Heun steps need sigma > 0 (got sigma = 0 at t = {t}); end at a small sigma and denoise"
                    ),
                });
            }
        }
        let e2 = self.ctl.eta * self.ctl.eta;
        let c = 1.0 + e2;
        let (l0, l1) = (schedule.lambda(t0), schedule.lambda(t1));
        // 1 / kappa = sigma rho^(eta^2) = sigma e^(-eta^2 lambda); tau = e^(c lambda).
        let inv_k0 = schedule.sigma(t0) * (-e2 * l0).exp();
        let inv_k1 = schedule.sigma(t1) * (-e2 * l1).exp();
        let b = if self.ctl.is_stochastic() {
            // Exact variance of the noise in u over the step: |e^(2 eta^2 l1) - e^(2 eta^2 l0)|.
            let var = ((2.0 * e2 * l1).exp() - (2.0 * e2 * l0).exp()).abs();
            self.ctl.s_noise * (var / (t1 - t0).abs()).sqrt()
        } else {
            0.0
        };
        Ok(Coefs {
            dtau: (c * l1).exp() - (c * l0).exp(),
            ratio: inv_k1 / inv_k0,
            inv_k0,
            inv_k1,
            b,
        })
    }

    /// The state at the start of a run: `x_hat = x` and one evaluation there.
    pub fn start<S: State>(
        &self,
        model: &dyn Denoiser<S>,
        schedule: &dyn NoiseSchedule,
        t: f64,
        x: S,
    ) -> Result<ReversibleHeunState<S>> {
        let eval = evaluate(model, schedule, &x, t)?;
        Ok(ReversibleHeunState {
            t,
            x_hat: x.dup(),
            x,
            eval,
        })
    }

    /// One step from `state` (at `state.t`) to `t1` (one evaluation), with the increment
    /// `W(t1) - W(t0)` of `noise` (not drawn at `eta = 0`).
    pub fn forward_step<S: State>(
        &self,
        model: &dyn Denoiser<S>,
        schedule: &dyn NoiseSchedule,
        state: ReversibleHeunState<S>,
        t1: f64,
        noise: &mut dyn BrownianPath<S>,
    ) -> Result<ReversibleHeunState<S>> {
        let t0 = state.t;
        let k = self.coefs(schedule, t0, t1)?;
        let ReversibleHeunState {
            x, x_hat, eval: e0, ..
        } = state;
        let dw = self.increment(noise, t0, t1, &x)?;
        let (r, b) = (k.ratio, k.inv_k1 * k.b);
        // u_hat1 = 2 u0 - u_hat0 + D0 dtau + b dW, in x units (times 1 / kappa1), written over
        // x_hat.
        let x_hat = combine(
            x_hat,
            -r,
            [(2.0 * r, &x), (k.inv_k1 * k.dtau, &e0.x0)],
            &dw,
            b,
        );
        let eval = evaluate(model, schedule, &x_hat, t1)?;
        // u1 = u0 + (D0 + D1) dtau / 2 + b dW, written over x.
        let half = 0.5 * k.inv_k1 * k.dtau;
        let x = combine(x, r, [(half, &e0.x0), (half, &eval.x0)], &dw, b);
        Ok(ReversibleHeunState {
            t: t1,
            x,
            x_hat,
            eval,
        })
    }

    /// The exact inverse of [`ReversibleHeun::forward_step`]: from `state` (at `state.t`, the
    /// step's end) back to `t0`, with the same increment `W(state.t) - W(t0)` of `noise` (one
    /// evaluation).
    pub fn reverse_step<S: State>(
        &self,
        model: &dyn Denoiser<S>,
        schedule: &dyn NoiseSchedule,
        state: ReversibleHeunState<S>,
        t0: f64,
        noise: &mut dyn BrownianPath<S>,
    ) -> Result<ReversibleHeunState<S>> {
        let t1 = state.t;
        let k = self.coefs(schedule, t0, t1)?;
        let ReversibleHeunState {
            x, x_hat, eval: e1, ..
        } = state;
        let dw = self.increment(noise, t0, t1, &x)?;
        let (r, b) = (1.0 / k.ratio, -k.inv_k0 * k.b);
        // u_hat0 = 2 u1 - u_hat1 - D1 dtau - b dW, in x units (times 1 / kappa0).
        let x_hat = combine(
            x_hat,
            -r,
            [(2.0 * r, &x), (-k.inv_k0 * k.dtau, &e1.x0)],
            &dw,
            b,
        );
        let eval = evaluate(model, schedule, &x_hat, t0)?;
        // u0 = u1 - (D0 + D1) dtau / 2 - b dW.
        let half = -0.5 * k.inv_k0 * k.dtau;
        let x = combine(x, r, [(half, &e1.x0), (half, &eval.x0)], &dw, b);
        Ok(ReversibleHeunState {
            t: t0,
            x,
            x_hat,
            eval,
        })
    }

    fn increment<S: State>(
        &self,
        noise: &mut dyn BrownianPath<S>,
        t0: f64,
        t1: f64,
        like: &S,
    ) -> Result<Option<(S, f64)>> {
        if self.ctl.is_stochastic() {
            Ok(Some(draw_increment(noise, (t0, t1), like, None)?))
        } else {
            Ok(None)
        }
    }

    /// Runs the whole `grid` (every time with `sigma > 0`) from `x` at its first time and
    /// returns the full final state, from which [`ReversibleHeun::invert`] recovers `x`.
    pub fn generate<S: State>(
        &self,
        model: &dyn Denoiser<S>,
        schedule: &dyn NoiseSchedule,
        grid: &TimeGrid,
        x: S,
        noise: &mut dyn BrownianPath<S>,
    ) -> Result<ReversibleHeunState<S>> {
        grid.check_within(schedule)?;
        let times = grid.times();
        let mut state = self.start(model, schedule, times[0], x)?;
        for &t1 in &times[1..] {
            state = self.forward_step(model, schedule, state, t1, noise)?;
        }
        Ok(state)
    }

    /// Walks `grid` (the grid [`ReversibleHeun::generate`] ran) backwards from `state` (at the
    /// grid's last time) along the same Brownian path, returning the state at the first time:
    /// `x` is the initial state up to floating-point rounding.
    pub fn invert<S: State>(
        &self,
        model: &dyn Denoiser<S>,
        schedule: &dyn NoiseSchedule,
        grid: &TimeGrid,
        state: ReversibleHeunState<S>,
        noise: &mut dyn BrownianPath<S>,
    ) -> Result<ReversibleHeunState<S>> {
        grid.check_within(schedule)?;
        let times = grid.times();
        let last = times[times.len() - 1];
        if state.t != last {
            return Err(SolverError::InvalidParameter {
                name: "state",
                reason: format!(
                    "the state is at t = {}, but the grid ends at t = {last}",
                    state.t
                ),
            });
        }
        let mut state = state;
        for &t0 in times[..times.len() - 1].iter().rev() {
            state = self.reverse_step(model, schedule, state, t0, noise)?;
        }
        Ok(state)
    }
}

impl<S: State> Solver<S> for ReversibleHeun {
    noise_control_solver_info!("reversible-heun", 2.0);
    fn step(
        &self,
        step: &Step<'_, S>,
        x: S,
        cache: &mut Cache<S>,
        noise: &mut dyn BrownianPath<S>,
    ) -> Result<S> {
        let sch = step.schedule;
        if sch.sigma(step.t1) <= 0.0 {
            cache.clear();
            return final_denoise(step, &x);
        }
        let state = match (cache.take_aux(), cache.back(0)) {
            (Some((t, x_hat)), Some(e)) if t == step.t0 && e.t == step.t0 => ReversibleHeunState {
                t,
                x,
                x_hat,
                eval: Eval {
                    t,
                    x0: e.x0.dup(),
                    eps: e.eps.dup(),
                },
            },
            _ => self.start(step.model, sch, step.t0, x)?,
        };
        let next = self.forward_step(step.model, sch, state, step.t1, noise)?;
        cache.set_aux(next.t, next.x_hat);
        cache.push(next.eval, 1);
        Ok(next.x)
    }
}
