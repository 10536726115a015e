//! The one-step rule every sampler implements, and the per-trajectory cache of model outputs.

use crate::error::Result;
use diffusion_core::{BrownianPath, Coeffs, Denoiser, NoiseSchedule, Prediction, State};
use std::collections::VecDeque;

/// Everything one step needs besides the state: the model, the schedule and the step's times.
pub struct Step<'a, S> {
    /// The model (network or analytic denoiser).
    pub model: &'a dyn Denoiser<S>,
    /// The forward process the model was trained for.
    pub schedule: &'a dyn NoiseSchedule,
    /// The time the step starts from.
    pub t0: f64,
    /// The time the step ends at.
    pub t1: f64,
    /// Index of this step in the grid (0-based).
    pub index: usize,
    /// Total number of steps in the grid.
    pub n_steps: usize,
}

impl<S: State> Step<'_, S> {
    /// Evaluates the model at `(x, t)` and resolves it into an [`Eval`].
    ///
    /// The outputs are not checked for finiteness here: a non-finite model output makes the
    /// step's result non-finite (`0 * NaN` and `0 * inf` are NaN), and the driver checks every
    /// state once per step ([`crate::sample`] does), so each step pays one check, not one per
    /// evaluation plus one for the state.
    pub fn eval(&self, x: &S, t: f64) -> Result<Eval<S>> {
        self.eval_with(x, t, None)
    }

    /// [`Step::eval`] that resolves into a buffer recycled by `cache` ([`Cache::recycle`]), so
    /// the conversion to `(x0_hat, eps_hat)` allocates nothing once the cache holds a spare.
    pub fn eval_reusing(&self, x: &S, t: f64, cache: &mut Cache<S>) -> Result<Eval<S>> {
        self.eval_with(x, t, cache.take_spare())
    }

    /// The data prediction `x0_hat` of the model at `(x, t)` only, for solvers that never read
    /// `eps_hat` (the data-prediction multistep methods): a model that predicts `x0` costs no
    /// conversion pass at all, any other prediction is resolved as by [`Step::eval_reusing`]
    /// (so `x0_hat` has the same bits either way) and its `eps_hat` buffer goes back to `cache`.
    pub fn eval_x0_reusing(&self, x: &S, t: f64, cache: &mut Cache<S>) -> Result<S> {
        match self.model.predict(x, t)? {
            Prediction::Sample(x0) => Ok(x0),
            p => {
                let c = Coeffs::at(self.schedule, t);
                let (x0, eps) = p.resolve_reusing(x, &c, cache.take_spare())?;
                cache.recycle(eps);
                Ok(x0)
            }
        }
    }

    /// The noise prediction `eps_hat` of the model at `(x, t)` only, for solvers that keep a
    /// history of noise predictions and read the data prediction through it (the Adams-type
    /// methods on `eps`: DEIS, PLMS, iPNDM, LMS): a model that predicts `eps` costs no
    /// conversion pass at all, any other prediction is resolved as by [`Step::eval_reusing`]
    /// (so `eps_hat` has the same bits either way) and its `x0_hat` buffer goes back to `cache`.
    pub fn eval_eps_reusing(&self, x: &S, t: f64, cache: &mut Cache<S>) -> Result<S> {
        let c = Coeffs::at(self.schedule, t);
        match self.model.predict(x, t)? {
            // `resolve` returns an eps prediction unchanged wherever it can convert it.
            Prediction::Epsilon(eps) if c.alpha != 0.0 => Ok(eps),
            p => {
                let (x0, eps) = p.resolve_reusing(x, &c, cache.take_spare())?;
                cache.recycle(x0);
                Ok(eps)
            }
        }
    }

    /// [`Step::eval_x0_reusing`] without a cache (a non-data prediction's `eps_hat` is dropped).
    pub fn eval_x0(&self, x: &S, t: f64) -> Result<S> {
        match self.model.predict(x, t)? {
            Prediction::Sample(x0) => Ok(x0),
            p => Ok(p.resolve(x, &Coeffs::at(self.schedule, t))?.0),
        }
    }

    fn eval_with(&self, x: &S, t: f64, spare: Option<S>) -> Result<Eval<S>> {
        let c = Coeffs::at(self.schedule, t);
        let (x0, eps) = self.model.predict(x, t)?.resolve_reusing(x, &c, spare)?;
        Ok(Eval { t, x0, eps })
    }

    /// `true` on the grid's last step.
    pub fn is_last(&self) -> bool {
        self.index + 1 == self.n_steps
    }
}

/// One resolved model evaluation: the data and noise predictions at time `t`.
#[derive(Debug)]
pub struct Eval<S> {
    /// The time of the evaluation.
    pub t: f64,
    /// The data prediction `x0_hat`.
    pub x0: S,
    /// The noise prediction `eps_hat`.
    pub eps: S,
}

/// Model evaluations kept across steps of one trajectory (multistep methods read them back).
/// Newest last. A fresh cache must be used for every trajectory.
///
/// Solvers that carry a second state between steps (reversible Heun's `x_hat`) keep it in the
/// auxiliary slot ([`Cache::set_aux`]), tagged with the time it belongs to.
///
/// The cache also keeps a few spare states (buffers) for reuse: evaluations that fall out of
/// the history and states a solver hands back with [`Cache::recycle`] are kept (only when they
/// own their storage exclusively, [`State::is_exclusive`]) and handed out again by
/// [`Cache::take_spare`], so that a step in a long run allocates nothing. The pool keeps only as
/// many buffers as one step takes: the driver marks step ends ([`Cache::end_step`]) and the cache
/// remembers the most spares any step asked for, so it holds no buffer nothing will take (such
/// buffers only grow the heap, which glibc's default settings trim and fault in again between
/// runs).
///
/// Solvers that only ever read data predictions keep them in a separate history of
/// `(t, x0_hat)` pairs ([`Cache::push_x0`], [`Cache::back_x0`]), filled by
/// [`Step::eval_x0_reusing`] without the `eps_hat` pass; those that only ever read noise
/// predictions keep a history of `(t, eps_hat)` pairs ([`Cache::push_eps`], [`Cache::back_eps`]),
/// filled by [`Step::eval_eps_reusing`] without the `x0_hat` pass.
#[derive(Debug)]
pub struct Cache<S> {
    evals: VecDeque<Eval<S>>,
    data: VecDeque<(f64, S)>,
    noise: VecDeque<(f64, S)>,
    aux: Option<(f64, S)>,
    spare: Vec<S>,
    /// Spares asked for since the last [`Cache::end_step`] (handed out or not).
    asked: usize,
    /// The most spares one finished step asked for (`None` before the first step ends).
    demand: Option<usize>,
    checked: bool,
}

/// The most spare buffers a [`Cache`] keeps (enough for the scratch states of every solver here).
const MAX_SPARE: usize = 4;

impl<S> Default for Cache<S> {
    fn default() -> Self {
        Cache {
            evals: VecDeque::new(),
            data: VecDeque::new(),
            noise: VecDeque::new(),
            aux: None,
            spare: Vec::new(),
            asked: 0,
            demand: None,
            checked: false,
        }
    }
}

impl<S: State> Cache<S> {
    /// Appends an evaluation, keeping at most `keep` of the newest (the dropped ones' buffers
    /// become spares).
    pub fn push(&mut self, e: Eval<S>, keep: usize) {
        self.evals.push_back(e);
        while self.evals.len() > keep {
            if let Some(old) = self.evals.pop_front() {
                self.recycle_eval(old);
            }
        }
    }
    /// Appends a data prediction `x0` at time `t` to the data history, keeping at most `keep`
    /// of the newest (the dropped ones' buffers become spares).
    pub fn push_x0(&mut self, t: f64, x0: S, keep: usize) {
        self.data.push_back((t, x0));
        while self.data.len() > keep {
            if let Some((_, old)) = self.data.pop_front() {
                self.recycle(old);
            }
        }
    }
    /// Appends a noise prediction `eps` at time `t` to the noise history, keeping at most `keep`
    /// of the newest (the dropped ones' buffers become spares).
    pub fn push_eps(&mut self, t: f64, eps: S, keep: usize) {
        self.noise.push_back((t, eps));
        while self.noise.len() > keep {
            if let Some((_, old)) = self.noise.pop_front() {
                self.recycle(old);
            }
        }
    }
    /// Keeps `s` as a spare buffer when it owns its storage exclusively and the pool has room;
    /// drops it otherwise. Its values are irrelevant (spares are overwritten before use). The
    /// room is four until a step has ended ([`Cache::end_step`]), then what one step asks for:
    /// the most spares a finished step asked for, or the current step so far if more (at most
    /// four).
    pub fn recycle(&mut self, s: S) {
        let room = self
            .demand
            .map_or(MAX_SPARE, |d| d.max(self.asked).min(MAX_SPARE));
        if self.spare.len() < room && s.is_exclusive() {
            self.spare.push(s);
        }
    }
    /// Recycles both states of an evaluation that is no longer needed.
    pub fn recycle_eval(&mut self, e: Eval<S>) {
        self.recycle(e.x0);
        self.recycle(e.eps);
    }
    /// A spare buffer (exclusively owned, shaped like the trajectory's states, arbitrary values),
    /// if one was recycled.
    pub fn take_spare(&mut self) -> Option<S> {
        self.asked += 1;
        self.spare.pop()
    }
    /// Marks the end of a step ([`crate::sample`] calls it after every step): from now on the
    /// pool keeps at most as many spares as the most any finished step asked for, and drops
    /// the rest. A driver that never calls it keeps a pool of up to four.
    pub fn end_step(&mut self) {
        let demand = self.demand.unwrap_or(0).max(self.asked);
        self.demand = Some(demand);
        self.asked = 0;
        self.spare.truncate(demand);
    }
    /// A spare buffer, or a new one shaped like `like` when none is left (its values are
    /// arbitrary either way: overwrite it with an `_into` operation).
    pub fn scratch_like(&mut self, like: &S) -> S {
        self.take_spare().unwrap_or_else(|| like.zeros_like())
    }
}

impl<S> Cache<S> {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }
    /// The `k`-th newest evaluation (`k = 0` is the newest).
    pub fn back(&self, k: usize) -> Option<&Eval<S>> {
        self.evals
            .len()
            .checked_sub(k + 1)
            .and_then(|i| self.evals.get(i))
    }
    /// The `k`-th newest entry `(t, x0_hat)` of the data history (`k = 0` is the newest).
    pub fn back_x0(&self, k: usize) -> Option<(f64, &S)> {
        self.data
            .len()
            .checked_sub(k + 1)
            .and_then(|i| self.data.get(i))
            .map(|(t, x0)| (*t, x0))
    }
    /// Number of entries in the data history.
    pub fn len_x0(&self) -> usize {
        self.data.len()
    }
    /// The `k`-th newest entry `(t, eps_hat)` of the noise history (`k = 0` is the newest).
    pub fn back_eps(&self, k: usize) -> Option<(f64, &S)> {
        self.noise
            .len()
            .checked_sub(k + 1)
            .and_then(|i| self.noise.get(i))
            .map(|(t, eps)| (*t, eps))
    }
    /// Number of entries in the noise history.
    pub fn len_eps(&self) -> usize {
        self.noise.len()
    }
    /// Records whether the state a step is about to return was checked finite by the pass that
    /// wrote it (`true` only then, e.g. from [`State::lincomb_assign_finite`]), so the driver
    /// may skip its own check. A solver that runs another solver's step and then changes the
    /// state must clear the mark (`set_checked(false)`).
    pub fn set_checked(&mut self, checked: bool) {
        self.checked = checked;
    }
    /// Whether the current step's result was checked finite ([`Cache::set_checked`]); resets
    /// the mark. [`crate::sample`] calls it after every step.
    pub fn take_checked(&mut self) -> bool {
        std::mem::take(&mut self.checked)
    }
    /// Number of stored evaluations.
    pub fn len(&self) -> usize {
        self.evals.len()
    }
    /// `true` when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.evals.is_empty()
    }
    /// Forgets everything: the three histories, the auxiliary state, the spare buffers (and what
    /// the pool learned of a step's demand) and the mark.
    pub fn clear(&mut self) {
        self.evals.clear();
        self.data.clear();
        self.noise.clear();
        self.checked = false;
        self.aux = None;
        self.spare.clear();
        self.asked = 0;
        self.demand = None;
    }
    /// Stores the solver's auxiliary state belonging to time `t` (replacing any previous one).
    pub fn set_aux(&mut self, t: f64, state: S) {
        self.aux = Some((t, state));
    }
    /// The auxiliary state and its time, if any.
    pub fn aux(&self) -> Option<(f64, &S)> {
        self.aux.as_ref().map(|(t, s)| (*t, s))
    }
    /// Removes and returns the auxiliary state and its time.
    pub fn take_aux(&mut self) -> Option<(f64, S)> {
        self.aux.take()
    }
}

/// A one-step rule from `t0` to `t1`. Solvers are stateless; per-trajectory history lives in the
/// [`Cache`], randomness comes from the [`BrownianPath`] (deterministic solvers ignore it).
pub trait Solver<S: State> {
    /// Name with parameters, e.g. `dpmpp-2m`.
    fn name(&self) -> String;
    /// The declared convergence order: global order for ODE solvers, strong order for SDE solvers.
    /// Tested by fitting the slope of error against step count.
    fn order(&self) -> f64;
    /// `true` when the step draws noise.
    fn is_stochastic(&self) -> bool {
        false
    }
    /// Advances `x` from `step.t0` to `step.t1`.
    fn step(
        &self,
        step: &Step<'_, S>,
        x: S,
        cache: &mut Cache<S>,
        noise: &mut dyn BrownianPath<S>,
    ) -> Result<S>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use diffusion_core::schedule::VpLinear;
    use ndarray::{array, Array1};

    #[test]
    fn data_only_evaluations_give_the_bits_of_full_ones_and_recycle_eps() {
        let vp = VpLinear::default();
        let x = array![0.3_f64, -1.7, 2.9, 1e-3];
        let models: [&dyn Denoiser<Array1<f64>>; 3] = [
            &|x: &Array1<f64>, _t: f64| -> diffusion_core::Result<Prediction<Array1<f64>>> {
                Ok(Prediction::Sample(x.mapv(|v| 0.5 * v)))
            },
            &|x: &Array1<f64>, _t: f64| -> diffusion_core::Result<Prediction<Array1<f64>>> {
                Ok(Prediction::Epsilon(x.mapv(|v| (v * 1.3).sin())))
            },
            &|x: &Array1<f64>, _t: f64| -> diffusion_core::Result<Prediction<Array1<f64>>> {
                Ok(Prediction::V(x.mapv(|v| v * v - 0.4)))
            },
        ];
        for (k, model) in models.into_iter().enumerate() {
            let step = Step {
                model,
                schedule: &vp,
                t0: 0.6,
                t1: 0.4,
                index: 0,
                n_steps: 1,
            };
            let full = step.eval(&x, 0.6).unwrap();
            let mut cache = Cache::new();
            let x0 = step.eval_x0_reusing(&x, 0.6, &mut cache).unwrap();
            assert_eq!(x0, full.x0, "model {k}");
            assert_eq!(step.eval_x0(&x, 0.6).unwrap(), full.x0, "model {k}");
            // A data prediction needs no buffer; any other leaves its eps buffer as a spare.
            assert_eq!(cache.take_spare().is_some(), k > 0, "model {k}");
            let eps = step.eval_eps_reusing(&x, 0.6, &mut cache).unwrap();
            assert_eq!(eps, full.eps, "model {k}");
            // An eps prediction needs no buffer; any other leaves its x0 buffer as a spare.
            assert_eq!(cache.take_spare().is_some(), k != 1, "model {k}");
        }
    }

    #[test]
    fn the_data_history_keeps_the_newest_and_recycles_the_rest() {
        let mut cache = Cache::<Array1<f64>>::new();
        assert!(cache.back_x0(0).is_none());
        for i in 0..4 {
            cache.push_x0(i as f64, Array1::from_elem(2, i as f64), 2);
        }
        assert_eq!(cache.len_x0(), 2);
        let (t, x0) = cache.back_x0(0).unwrap();
        assert_eq!((t, x0[0]), (3.0, 3.0));
        assert_eq!(cache.back_x0(1).unwrap().0, 2.0);
        assert!(cache.back_x0(2).is_none());
        assert!(cache.take_spare().is_some() && cache.take_spare().is_some());
        assert!(cache.take_spare().is_none());
        assert!(cache.is_empty(), "the evaluation history is separate");
        assert!(cache.back_eps(0).is_none(), "so is the noise history");
        for i in 0..3 {
            cache.push_eps(i as f64, Array1::from_elem(2, -(i as f64)), 1);
        }
        assert_eq!(cache.len_eps(), 1);
        assert_eq!(cache.back_eps(0).map(|(t, e)| (t, e[1])), Some((2.0, -2.0)));
        assert!(cache.back_eps(1).is_none());
        assert!(cache.take_spare().is_some() && cache.take_spare().is_some());
        cache.set_checked(true);
        assert!(cache.take_checked() && !cache.take_checked());
        cache.clear();
        assert_eq!((cache.len_x0(), cache.len_eps()), (0, 0));
    }

    #[test]
    fn after_a_step_ends_the_pool_keeps_only_what_a_step_asks_for() {
        let buf = || Array1::<f64>::zeros(3);
        let mut cache = Cache::<Array1<f64>>::new();
        // Before any step has ended, up to four spares are kept.
        for _ in 0..6 {
            cache.recycle(buf());
        }
        assert_eq!(cache.spare.len(), MAX_SPARE);
        // A step that asks for one spare: after it, the pool keeps one.
        assert!(cache.take_spare().is_some());
        cache.end_step();
        assert_eq!(cache.spare.len(), 1);
        cache.recycle(buf());
        cache.recycle(buf());
        assert_eq!(cache.spare.len(), 1);
        // A step that asks for more (two) makes room for them as it goes, and from then on.
        assert!(cache.take_spare().is_some() && cache.take_spare().is_none());
        cache.recycle(buf());
        cache.recycle(buf());
        cache.recycle(buf());
        assert_eq!(cache.spare.len(), 2);
        cache.end_step();
        cache.recycle(buf());
        assert_eq!(cache.spare.len(), 2);
        // A step that asks for none keeps what the most demanding step needed.
        cache.end_step();
        assert_eq!(cache.spare.len(), 2);
        // `clear` forgets the demand.
        cache.clear();
        for _ in 0..6 {
            cache.recycle(buf());
        }
        assert_eq!(cache.spare.len(), MAX_SPARE);
    }
}
