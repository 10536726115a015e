//! The Langevin (O / A / B) decomposition of the reverse-time augmented SDE, shared by the
//! stochastic splitting samplers ([`super::Oba`], [`super::Baoab`], [`super::ReducedBaoab`]).
//!
//! Paper: Pandey, Rudolph & Mandt (2024), "Efficient Integrators for Diffusion Generative Models",
//! arXiv:2310.07894, Sec. 4 (splitting integrators for the reverse diffusion in augmented space,
//! molecular-dynamics naming: O the Ornstein-Uhlenbeck part, B the momentum kick from the score,
//! A the position drift) and Leimkuhler & Matthews (2013), "Rational Construction of Stochastic
//! Numerical Methods for Molecular Sampling", arXiv:1203.5428, Sec. 2 (the OBA / BAOAB family).
//! The paper's algorithm boxes could not be read here, so the decomposition below is derived from
//! the process, not copied from them. With `tau` reverse time (`d tau = -dt`), `S = diag(1, M)`,
//! `J = [[0, -q], [q, 0]]`, `Q = 2 D`, the reverse SDE of [`Psld`] per coordinate,
//!
//! `dz = beta [(D + J) S^{-1} z + Q s(z, t)] d tau + sqrt(beta) G dW`,
//!
//! is the sum of three fields, since `(D + J) S^{-1} z + Q s = -D S^{-1} z + J S^{-1} z + Q (s + S^{-1} z)`:
//!
//! - O: `dz = -beta D S^{-1} z d tau + sqrt(2 beta D) dW`, the friction and the noise. It leaves
//!   `N(0, S)` invariant and is solved exactly: the Gaussian transition of the recipe with the same
//!   `D` and no rotation over `int beta` of the step (for CLD it acts on `v` only:
//!   `v <- e^{-a} v + sqrt(M (1 - e^{-2a})) xi`, `a = Gamma int beta / M`).
//! - A: `dx = -beta q v / M d tau`, the position drift, exact for fixed `v`.
//! - B: `dz = beta [(0, q x) + Q (s + S^{-1} z)] d tau`, the kick: the harmonic force of `H` plus the
//!   score's deviation from equilibrium (`s + S^{-1} z = 0` when the data is `N(0, I)` and `v0` is
//!   stationary; then O, A and B are the underdamped Langevin dynamics of `H` and the samplers are
//!   the molecular-dynamics integrators of that setting). B is integrated by an Euler kick of length `int beta` over the sub-interval. For
//!   CLD (`D = diag(0, Gamma)`) it moves `v` only and reads only `s_v`; for PSLD it moves both.

use super::{apply, PhaseStep};
use crate::error::Result;
use diffusion_core::process::Psld;
use diffusion_core::{BrownianPath, Phase, State};
use nalgebra::Matrix2;

/// The host matrices of the O / A / B fields of one process.
pub(crate) struct Langevin {
    /// The friction-and-noise part as a recipe process (same `D`, `M`, `beta`; no rotation).
    friction: Psld,
    /// The rotation `q`.
    q: f64,
    /// `1 / M`.
    inv_mass: f64,
    /// `Q = 2 D`.
    qm: Matrix2<f64>,
    /// `Q S^{-1}`.
    q_prec: Matrix2<f64>,
}

impl Langevin {
    /// The decomposition of `p`.
    pub(crate) fn of(p: &Psld) -> Result<Self> {
        let d = p.dissipation();
        let friction = Psld::recipe(
            d,
            0.0,
            p.mass(),
            p.initial_velocity_variance() / p.mass(),
            p.sde().time_change(),
        )?;
        let inv_mass = 1.0 / p.mass();
        let qm = d * 2.0;
        Ok(Langevin {
            friction,
            q: p.rotation(),
            inv_mass,
            qm,
            q_prec: qm * Matrix2::new(1.0, 0.0, 0.0, inv_mass),
        })
    }

    /// `int beta` over `[lo, hi]`.
    pub(crate) fn beta_integral(&self, lo: f64, hi: f64) -> f64 {
        self.friction.sde().time_change().integral_between(lo, hi)
    }

    /// The exact O flow over the `beta` increment of `[lo, hi]`, driven by the normalized Brownian
    /// increment between `from` and `to` (the reverse-time direction of the step).
    pub(crate) fn o_step<S: State>(
        &self,
        z: &Phase<S>,
        (lo, hi): (f64, f64),
        (from, to): (f64, f64),
        noise: &mut dyn BrownianPath<Phase<S>>,
    ) -> Result<Phase<S>> {
        let k = self.friction.sde().phase_kernel(lo, hi)?;
        let xi = noise.normalized(from, to, z)?;
        Ok(apply(&k.phi(), z).axpy(1.0, &apply(&k.noise_factor(), &xi)))
    }

    /// The exact A flow over a `beta` increment `db`: `x <- x - q db v / M`.
    pub(crate) fn a_step<S: State>(&self, z: Phase<S>, db: f64) -> Phase<S> {
        let x = z.x.axpy(-self.q * db * self.inv_mass, &z.v);
        Phase::new(x, z.v)
    }

    /// The score part of the kick, `Q (s + S^{-1} z)`.
    pub(crate) fn score_force<S: State>(&self, z: &Phase<S>, s: &Phase<S>) -> Phase<S> {
        apply(&self.qm, s).axpy(1.0, &apply(&self.q_prec, z))
    }

    /// The score part of the kick at `(z, t)`, from one model evaluation.
    pub(crate) fn score_force_at<S: State>(
        &self,
        step: &PhaseStep<'_, S>,
        z: &Phase<S>,
        t: f64,
    ) -> Result<Phase<S>> {
        let s = step.score(z, t)?;
        Ok(self.score_force(z, &s))
    }

    /// The Euler B kick over a `beta` increment `db` with the score part `g`:
    /// `z <- z + db [(0, q x) + g]`.
    pub(crate) fn b_step<S: State>(&self, z: Phase<S>, g: &Phase<S>, db: f64) -> Phase<S> {
        let v = z.v.axpy(self.q * db, &z.x);
        Phase::new(z.x, v).axpy(db, g)
    }
}

/// One BAOAB step from `step.t0` to `step.t1`: half kick, half drift, the exact O step, half
/// drift, half kick. The closing kick evaluates the score again at `t1` or, when `reduced`,
/// reuses the opening kick's score part (one evaluation per step).
pub(crate) fn baoab_step<S: State>(
    step: &PhaseStep<'_, S>,
    z: Phase<S>,
    noise: &mut dyn BrownianPath<Phase<S>>,
    reduced: bool,
) -> Result<Phase<S>> {
    let (t0, t1) = (step.t0, step.t1);
    let tm = 0.5 * (t0 + t1);
    let l = Langevin::of(step.process)?;
    let (db1, db2) = (l.beta_integral(tm, t0), l.beta_integral(t1, tm));
    let g0 = l.score_force_at(step, &z, t0)?;
    let z = l.a_step(l.b_step(z, &g0, db1), db1);
    let z = l.o_step(&z, (t1, t0), (t0, t1), noise)?;
    let z = l.a_step(z, db2);
    let g1 = if reduced {
        g0
    } else {
        l.score_force_at(step, &z, t1)?
    };
    Ok(l.b_step(z, &g1, db2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use diffusion_core::process::Cld;
    use ndarray::arr1;

    #[test]
    fn the_three_fields_add_up_to_the_reverse_drift() {
        // O drift + A + B at the same state and score = beta [(D + J) S^{-1} z + Q s] (the
        // reverse-time drift, the negative of `PhaseStep::drift` with w = 1).
        for p in [Psld::default(), Psld::from_cld(&Cld::default())] {
            let l = Langevin::of(&p).unwrap();
            let z = Phase::new(arr1(&[0.7, -1.2]), arr1(&[0.3, 0.9]));
            let s = Phase::new(arr1(&[-0.4, 2.0]), arr1(&[1.1, -0.6]));
            let d = p.dissipation();
            let prec = Matrix2::new(1.0, 0.0, 0.0, 1.0 / p.mass());
            let o = apply(&(-d * prec), &z);
            let a = Phase::new(z.v.scale(-p.rotation() / p.mass()), z.v.zeros_like());
            let b = l.b_step(z.zeros_like(), &l.score_force(&z, &s), 1.0);
            let b = b.axpy(1.0, &Phase::new(z.x.zeros_like(), z.x.scale(p.rotation())));
            let sum = o.axpy(1.0, &a).axpy(1.0, &b);
            let f = p.sde().drift_matrix();
            let f = Matrix2::new(f[(0, 0)], f[(0, 1)], f[(1, 0)], f[(1, 1)]);
            let want = apply(&(-f), &z).axpy(1.0, &apply(&(d * 2.0), &s));
            assert!(sum.lincomb(1.0, &want, -1.0).rms() < 1e-13);
        }
    }
}
