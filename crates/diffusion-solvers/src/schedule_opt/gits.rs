//! GITS: a time schedule chosen by dynamic programming over a fine candidate grid, with the
//! solver's local error on pilot trajectories as the cost of each step.
//!
//! Paper: Chen, Zhou, Wang, Shen & Lyu (2024), "On the Trajectory Regularity of ODE-based
//! Diffusion Sampling", ICML 2024, arXiv:2405.11326, the dynamic-programming time schedule
//! (reference code: zju-pi `diff-sampler/gits-main/gits_utils.py:get_dp_list`, `dp`). Sampling
//! trajectories of the PF-ODE are regular (nearly the same shape for every sample), so a schedule
//! fitted to a few pilot trajectories transfers to new samples:
//! 1. a teacher solver walks a fine grid of `M + 1` candidate times from the pilots' initial
//!    states (optionally with sub-steps between candidates), giving states `x_0, ..., x_M`;
//! 2. the cost of a step from candidate `i` to `j > i` is the local truncation error of the chosen
//!    solver: one step from the teacher state `x_i` to `t_j`, compared with `x_j`;
//! 3. dynamic programming picks the `K` steps `0 = i_0 < ... < i_K = M` of least total cost.
//!
//! Deviations: the step is taken by any [`Solver`] with a fresh cache (a multistep solver makes its
//! first, lower-order step; the reference code uses the Euler direction at `x_i`); the cost is the
//! root-mean-square error over all entries of the pilot batch (the reference averages per-sample
//! L2 norms, or by default uses a trajectory-deviation metric); and the DP minimizes the plain sum
//! of costs (the reference's `coeff = 1`; its default multiplies the cost of the remaining steps by
//! `coeff = 1.15` at every stage).

use crate::error::{Result, SolverError};
use crate::sampler::sample;
use crate::solver::{Cache, Solver, Step};
use diffusion_core::{Denoiser, IndependentIncrements, NoiseSchedule, State, TimeGrid};

/// Costs of the steps between candidate times: `get(i, j)` for `i < j`.
#[derive(Debug, Clone, PartialEq)]
pub struct StepCosts {
    n: usize,
    values: Vec<f64>,
}

impl StepCosts {
    /// A cost table over `n` candidate times from a function of `(i, j)`, `i < j`. Errors when
    /// `n < 2` or a cost is negative or NaN (`+inf` forbids a step).
    pub fn from_fn(n: usize, mut cost: impl FnMut(usize, usize) -> f64) -> Result<Self> {
        if n < 2 {
            return Err(SolverError::InvalidParameter {
                name: "candidates",
                reason: format!("need at least 2 candidate times, got {n}"),
            });
        }
        let mut values = vec![f64::INFINITY; n * n];
        for i in 0..n {
            for j in i + 1..n {
                let c = cost(i, j);
                if c.is_nan() || c < 0.0 {
                    return Err(SolverError::InvalidParameter {
                        name: "cost",
                        reason: format!("cost of step {i} -> {j} is {c}"),
                    });
                }
                values[i * n + j] = c;
            }
        }
        Ok(StepCosts { n, values })
    }

    /// Number of candidate times.
    pub fn len(&self) -> usize {
        self.n
    }

    /// `true` when there are no candidates (never, for a validated table).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The cost of the step from candidate `i` to candidate `j` (`+inf` unless `i < j < len`).
    pub fn get(&self, i: usize, j: usize) -> f64 {
        if i < j && j < self.n {
            self.values[i * self.n + j]
        } else {
            f64::INFINITY
        }
    }
}

/// The `steps` steps from candidate 0 to the last candidate with the least total cost: the
/// visited candidate indices (`steps + 1` of them, increasing) and the total. Errors when `steps`
/// is 0 or larger than the number of candidate steps.
pub fn dp_schedule(costs: &StepCosts, steps: usize) -> Result<(Vec<usize>, f64)> {
    let n = costs.len();
    if steps == 0 || steps > n - 1 {
        return Err(SolverError::InvalidParameter {
            name: "steps",
            reason: format!(
                "need 1 <= steps <= {} (candidate steps), got {steps}",
                n - 1
            ),
        });
    }
    let last = n - 1;
    // v[k][i]: least cost from candidate i to the last one in exactly k steps; arg[k][i]: next.
    let mut v = vec![vec![f64::INFINITY; n]; steps + 1];
    let mut arg = vec![vec![usize::MAX; n]; steps + 1];
    v[0][last] = 0.0;
    for k in 1..=steps {
        for i in 0..last {
            for j in i + 1..=last {
                let c = costs.get(i, j) + v[k - 1][j];
                if c < v[k][i] {
                    v[k][i] = c;
                    arg[k][i] = j;
                }
            }
        }
    }
    if !v[steps][0].is_finite() {
        return Err(SolverError::InvalidParameter {
            name: "costs",
            reason: format!("no {steps}-step path has a finite cost"),
        });
    }
    let mut path = vec![0];
    let mut i = 0;
    for k in (1..=steps).rev() {
        i = arg[k][i];
        path.push(i);
    }
    Ok((path, v[steps][0]))
}

/// Runs `teacher` over `candidates` (with `substeps` equal sub-steps in time between consecutive
/// candidates) from the pilot states `pilots` (at `candidates[0]`), and returns the local error
/// of one `solver` step between every pair of candidates (see the module docs). Both solvers must
/// be deterministic.
pub fn local_error_costs<S: State>(
    solver: &dyn Solver<S>,
    teacher: &dyn Solver<S>,
    model: &dyn Denoiser<S>,
    schedule: &dyn NoiseSchedule,
    candidates: &TimeGrid,
    pilots: S,
    substeps: usize,
) -> Result<StepCosts> {
    for (name, s) in [("solver", solver), ("teacher", teacher)] {
        if s.is_stochastic() {
            return Err(SolverError::InvalidParameter {
                name,
                reason: format!("GITS fits ODE trajectories; {} draws noise", s.name()),
            });
        }
    }
    if substeps == 0 {
        return Err(SolverError::InvalidParameter {
            name: "substeps",
            reason: "must be at least 1".into(),
        });
    }
    let ct = candidates.times();
    let mut fine = Vec::with_capacity((ct.len() - 1) * substeps + 1);
    for w in ct.windows(2) {
        for k in 0..substeps {
            fine.push(w[0] + (w[1] - w[0]) * k as f64 / substeps as f64);
        }
    }
    fine.push(ct[ct.len() - 1]);
    let fine = TimeGrid::new(fine)?;
    let mut states: Vec<S> = Vec::with_capacity(ct.len());
    let mut keep = |i: usize, _t: f64, x: &S| {
        if i % substeps == 0 {
            states.push(x.dup());
        }
    };
    let mut unused = IndependentIncrements::seeded(0);
    sample(
        teacher,
        model,
        schedule,
        &fine,
        pilots,
        &mut unused,
        &mut keep,
    )?;
    let n = ct.len();
    let mut err: Option<SolverError> = None;
    let costs = StepCosts::from_fn(n, |i, j| {
        if err.is_some() {
            return 0.0;
        }
        let step = Step {
            model,
            schedule,
            t0: ct[i],
            t1: ct[j],
            index: 0,
            n_steps: if j == n - 1 { 1 } else { 2 },
        };
        let out = solver.step(&step, states[i].dup(), &mut Cache::new(), &mut unused);
        match out {
            Ok(x) => {
                let e = x.lincomb(1.0, &states[j], -1.0).rms();
                if e.is_finite() {
                    e
                } else {
                    f64::INFINITY
                }
            }
            Err(e) => {
                err = Some(e);
                0.0
            }
        }
    });
    match err {
        Some(e) => Err(e),
        None => costs,
    }
}

/// What [`gits_schedule`] found.
#[derive(Debug, Clone)]
pub struct GitsResult {
    /// The chosen grid: a subset of the candidate times with the same ends.
    pub grid: TimeGrid,
    /// Indices of the chosen times among the candidates.
    pub indices: Vec<usize>,
    /// The total local error of the chosen steps.
    pub cost: f64,
    /// The full cost table (for other step counts: [`dp_schedule`]).
    pub costs: StepCosts,
}

/// GITS: fits a `steps`-step schedule for `solver` out of the `candidates` grid, from teacher
/// trajectories of the pilot batch `pilots` (states at `candidates[0]`; see
/// [`local_error_costs`] and [`dp_schedule`]).
pub fn gits_schedule<S: State>(
    solver: &dyn Solver<S>,
    teacher: &dyn Solver<S>,
    model: &dyn Denoiser<S>,
    schedule: &dyn NoiseSchedule,
    candidates: &TimeGrid,
    pilots: S,
    steps: usize,
    substeps: usize,
) -> Result<GitsResult> {
    let costs = local_error_costs(
        solver, teacher, model, schedule, candidates, pilots, substeps,
    )?;
    let (indices, cost) = dp_schedule(&costs, steps)?;
    let times = indices.iter().map(|&i| candidates.times()[i]).collect();
    Ok(GitsResult {
        grid: TimeGrid::new(times)?,
        indices,
        cost,
        costs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dp_matches_brute_force_on_random_costs() {
        let mut noise = diffusion_core::HostNoise::new(9);
        let n = 9;
        let u: Vec<f64> = (0..n * n).map(|_| noise.uniform()).collect();
        let costs = StepCosts::from_fn(n, |i, j| u[i * n + j] * (j - i) as f64).unwrap();
        for steps in 1..n {
            let (path, best) = dp_schedule(&costs, steps).unwrap();
            assert_eq!(path.len(), steps + 1);
            assert_eq!((path[0], path[steps]), (0, n - 1));
            let total: f64 = path.windows(2).map(|w| costs.get(w[0], w[1])).sum();
            assert!((total - best).abs() < 1e-12);
            // Brute force over all subsets of the interior of size steps - 1.
            let mut brute = f64::INFINITY;
            for mask in 0u32..(1 << (n - 2)) {
                if mask.count_ones() as usize != steps - 1 {
                    continue;
                }
                let mut p = vec![0];
                p.extend((1..n - 1).filter(|i| mask & (1 << (i - 1)) != 0));
                p.push(n - 1);
                brute = brute.min(p.windows(2).map(|w| costs.get(w[0], w[1])).sum());
            }
            assert!(
                (brute - best).abs() < 1e-12,
                "steps={steps}: {best} vs {brute}"
            );
        }
        assert!(dp_schedule(&costs, 0).is_err());
        assert!(dp_schedule(&costs, n).is_err());
        assert!(StepCosts::from_fn(1, |_, _| 0.0).is_err());
        assert!(StepCosts::from_fn(3, |_, _| f64::NAN).is_err());
    }
}
