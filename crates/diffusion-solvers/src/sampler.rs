//! The sampling loop: walks a time grid with a solver, checking every state.

use crate::error::{Result, SolverError};
use crate::solver::{Cache, Solver, Step};
use diffusion_core::{
    BrownianPath, CoreError, Denoiser, Finiteness, NoiseSchedule, State, TimeGrid,
};

/// Sees every step of a sampling run (trajectories, progress bars, logging).
pub trait Observer<S> {
    /// Called after step `index` reached time `t` with state `x`.
    fn on_step(&mut self, index: usize, t: f64, x: &S);
}

/// An observer that does nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl<S> Observer<S> for NoObserver {
    fn on_step(&mut self, _index: usize, _t: f64, _x: &S) {}
}

impl<S, F: FnMut(usize, f64, &S)> Observer<S> for F {
    fn on_step(&mut self, index: usize, t: f64, x: &S) {
        self(index, t, x)
    }
}

/// Records the host values of every state (the initial one included) and its time.
#[derive(Debug, Default, Clone)]
pub struct Trajectory {
    /// Times, starting with the grid's first.
    pub times: Vec<f64>,
    /// Flattened host values, one entry per time.
    pub states: Vec<Vec<f64>>,
}

impl<S: State> Observer<S> for Trajectory {
    fn on_step(&mut self, _index: usize, t: f64, x: &S) {
        self.times.push(t);
        self.states.push(x.to_host());
    }
}

/// Runs `solver` over `grid` from the initial state `x` (at `grid.times()[0]`).
///
/// Errors: a grid outside the schedule's time range, any model or solver error, and a non-finite
/// state after a step ([`SolverError::NonFinite`] names the first such step and its time). This
/// is the one finiteness check of a step: a non-finite model output propagates into the step's
/// result ([`Step::eval`] does not check it separately). Solvers whose final in-place update
/// already checked the result ([`Cache::set_checked`], `true` only when it was finite) skip the
/// separate pass; the outcome is the same.
///
/// States that answer their check later ([`State::finiteness`]: tensors, whose flag is computed
/// on their device) are not waited for after every step: their answers are read together every
/// [`PENDING_CHECKS`] steps, at the end, and before any other error is reported (so the error
/// is still the first non-finite step's). Until then the run goes on, and an observer may see a
/// non-finite state before the error.
pub fn sample<S: State>(
    solver: &dyn Solver<S>,
    model: &dyn Denoiser<S>,
    schedule: &dyn NoiseSchedule,
    grid: &TimeGrid,
    x: S,
    noise: &mut dyn BrownianPath<S>,
    observer: &mut dyn Observer<S>,
) -> Result<S> {
    grid.check_within(schedule)?;
    if !x.is_finite() {
        return Err(CoreError::NonFinite {
            context: "the initial state".into(),
        }
        .into());
    }
    let times = grid.times();
    observer.on_step(0, times[0], &x);
    let mut cache = Cache::new();
    let mut x = x;
    let n_steps = grid.steps();
    let mut pending = PendingChecks::default();
    let non_finite = |(step, t): (usize, f64)| SolverError::NonFinite {
        step,
        t,
        solver: solver.name(),
    };
    for (index, w) in times.windows(2).enumerate() {
        let step = Step {
            model,
            schedule,
            t0: w[0],
            t1: w[1],
            index,
            n_steps,
        };
        cache.take_checked();
        x = match solver.step(&step, x, &mut cache, noise) {
            Ok(x) => x,
            // A step that failed on what an earlier non-finite state led to reports that state.
            Err(e) => return Err(pending.first_bad().map_or(e, non_finite)),
        };
        cache.end_step();
        // A step whose last pass checked its result (`Cache::set_checked`) saves the pass here.
        if !cache.take_checked() {
            pending
                .push(index, w[1], x.finiteness())
                .map_err(non_finite)?;
        }
        observer.on_step(index + 1, w[1], &x);
    }
    match pending.first_bad() {
        Some(bad) => Err(non_finite(bad)),
        None => Ok(x),
    }
}

/// How many pending finiteness answers [`sample`] collects before it reads them (one wait for
/// the device per this many steps, and at most this many steps run past a non-finite state).
pub const PENDING_CHECKS: usize = 32;

/// The finiteness answers of a run's steps not read yet: `(step, time, answer)`.
#[derive(Default)]
struct PendingChecks(Vec<(usize, f64, Finiteness)>);

impl PendingChecks {
    /// Records the answer for the state after `step` (at time `t`). A known `false` is the
    /// first non-finite step at once (after any earlier pending one); pending answers are read
    /// when [`PENDING_CHECKS`] are waiting. `Err((step, t))` names the first non-finite state.
    fn push(
        &mut self,
        step: usize,
        t: f64,
        answer: Finiteness,
    ) -> std::result::Result<(), (usize, f64)> {
        match answer {
            Finiteness::Known(true) => Ok(()),
            Finiteness::Known(false) => Err(self.first_bad().unwrap_or((step, t))),
            pending => {
                self.0.push((step, t, pending));
                if self.0.len() < PENDING_CHECKS {
                    return Ok(());
                }
                self.first_bad().map_or(Ok(()), Err)
            }
        }
    }

    /// Reads every waiting answer in step order: the step and time of the first non-finite one.
    fn first_bad(&mut self) -> Option<(usize, f64)> {
        for (step, t, answer) in std::mem::take(&mut self.0) {
            if !answer.resolve() {
                return Some((step, t));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ode::{
        Ddim, Deis, DeisForm, Dpm2, DpmSolverPp2M, DpmSolverPp2S, Euler, Heun, Ipndm, Lms, Plms,
        ResMultistep,
    };
    use crate::sde::DpmSolverPp2MSde;
    use diffusion_core::schedule::VpLinear;
    use diffusion_core::{IndependentIncrements, Prediction};
    use ndarray::Array2;

    /// Every solver whose final update checks its own result ([`Cache::set_checked`]) still
    /// reports the first non-finite state with its step, for NaN and for infinite model outputs
    /// (the model turns bad at the grid's time 3, which Heun's corrector already reaches in
    /// step 2), from data- and from noise-predicting models.
    #[test]
    fn fused_checks_report_the_first_non_finite_step() {
        let vp = VpLinear::default();
        let grid = TimeGrid::uniform(0.9, 0.05, 6).unwrap();
        let t_bad = grid.times()[3];
        let solvers: Vec<Box<dyn Solver<Array2<f64>>>> = vec![
            Box::new(Euler),
            Box::new(Heun),
            Box::new(DpmSolverPp2M),
            Box::new(ResMultistep),
            Box::new(DpmSolverPp2MSde::default()),
            Box::new(Ddim::new(0.0).unwrap()),
            Box::new(Deis::new(3).unwrap()),
            Box::new(Deis::with_form(3, DeisForm::LogRho).unwrap()),
            Box::new(Deis::new(1).unwrap()),
            Box::new(Plms),
            Box::new(Ipndm::new(4, true).unwrap()),
            Box::new(Ipndm::new(4, false).unwrap()),
            Box::new(Lms::new(4).unwrap()),
            Box::new(Dpm2),
            Box::new(DpmSolverPp2S),
        ];
        for (bad_value, predicts_eps) in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY]
            .into_iter()
            .flat_map(|v| [(v, false), (v, true)])
        {
            let den =
                |x: &Array2<f64>, t: f64| -> diffusion_core::Result<Prediction<Array2<f64>>> {
                    let v = if t <= t_bad { bad_value } else { 0.25 };
                    let out = x.mapv(|u| v * u.signum());
                    Ok(if predicts_eps {
                        Prediction::Epsilon(out)
                    } else {
                        Prediction::Sample(out)
                    })
                };
            for solver in &solvers {
                let x = Array2::<f64>::from_elem((5, 3), 1.0);
                let mut noise = IndependentIncrements::seeded(0);
                let err = sample(
                    solver.as_ref(),
                    &den,
                    &vp,
                    &grid,
                    x,
                    &mut noise,
                    &mut NoObserver,
                )
                .unwrap_err();
                match err {
                    SolverError::NonFinite { step, .. } => {
                        let first = if solver.name() == "heun" { 2 } else { 3 };
                        assert_eq!(
                            step,
                            first,
                            "{} with {bad_value} (eps model: {predicts_eps})",
                            solver.name()
                        )
                    }
                    other => panic!("{}: unexpected error {other}", solver.name()),
                }
            }
        }
    }
}
