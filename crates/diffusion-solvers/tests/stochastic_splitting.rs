//! The stochastic splitting samplers of the reverse augmented SDE (OBA, BAOAB, reduced BAOAB;
//! Pandey, Rudolph & Mandt 2024, arXiv:2310.07894) against the exact Gaussian oracle.
//!
//! The oracle: data `N(MU, STD^2)` per coordinate and initial velocity `N(0, kappa M)` make every
//! marginal of CLD / PSLD a Gaussian `N(m_t, C_t)` in `(x, v)`, and the exact augmented score is
//! affine in `z`. Every sampler here is then affine in its start and its noises, so the law it
//! reaches is Gaussian and computable without sampling: run it on probe rows (the start mean, the
//! start mean plus each column of a square root of `C_T`, and for every noise query the mean with
//! a unit noise in one component) and add up the outer products of the deviations. That gives the
//! sampled law exactly, so weak orders can be fitted and a wrong O-step variance or a flipped
//! score shows up far above any sampling error. A Monte Carlo run through `sample_phase` with the
//! Brownian tree checks that the probe law is the law the loop actually samples.

mod common;

use common::fitted_slope;
use diffusion_core::process::{AffineBeta, Cld, Psld};
use diffusion_core::{BrownianPath, BrownianTree, HostNoise, Phase, State, TimeGrid};
use diffusion_solvers::augmented::{
    sample_phase, Baoab, Oba, PhaseEulerMaruyama, PhaseScore, PhaseSolver, PhaseStep,
    ReducedBaoab, Sscs,
};
use diffusion_solvers::{registry, NoObserver, SolverError};
use nalgebra::{Matrix2, Vector2};
use ndarray::Array2;

const MU: f64 = 1.5;
const STD: f64 = 0.5;
const T: f64 = 1.0;
const T_END: f64 = 1e-3;

type Z = Phase<Array2<f64>>;

/// A Gaussian law of one `(x, v)` coordinate.
#[derive(Debug, Clone, Copy)]
struct Law {
    mean: Vector2<f64>,
    cov: Matrix2<f64>,
}

impl Law {
    /// W2 between the `x`-marginals of two laws (closed form in one dimension).
    fn x_w2(&self, other: &Law) -> f64 {
        let dm = self.mean[0] - other.mean[0];
        let ds = self.cov[(0, 0)].max(0.0).sqrt() - other.cov[(0, 0)].max(0.0).sqrt();
        (dm * dm + ds * ds).sqrt()
    }

    /// W2 between two 2-d Gaussians with the closed form for `2 x 2` covariances:
    /// `tr(A + B - 2 (A^{1/2} B A^{1/2})^{1/2})`, `tr sqrt(M) = sqrt(tr M + 2 sqrt(det M))`.
    fn w2(&self, other: &Law) -> f64 {
        let ra = sqrt2(&self.cov);
        let m = ra * other.cov * ra;
        let tr_sqrt = (m.trace() + 2.0 * m.determinant().max(0.0).sqrt())
            .max(0.0)
            .sqrt();
        let bures = (self.cov.trace() + other.cov.trace() - 2.0 * tr_sqrt).max(0.0);
        ((self.mean - other.mean).norm_squared() + bures).sqrt()
    }
}

/// The symmetric square root of a `2 x 2` PSD matrix.
fn sqrt2(c: &Matrix2<f64>) -> Matrix2<f64> {
    let s = c.determinant().max(0.0).sqrt();
    let t = (c.trace() + 2.0 * s).max(0.0).sqrt();
    if t == 0.0 {
        return Matrix2::zeros();
    }
    (c + Matrix2::identity() * s) / t
}

struct Oracle {
    p: Psld,
}

impl Oracle {
    fn law(&self, t: f64) -> Law {
        let k = self.p.transition(t).unwrap();
        let cov0 = Matrix2::new(STD * STD, 0.0, 0.0, self.p.initial_velocity_variance());
        let cov = k.with_initial_cov(&cov0).unwrap().cov();
        Law {
            mean: k.phi() * Vector2::new(MU, 0.0),
            cov,
        }
    }

    /// The exact score for `rows` rows, times `sign` (-1: a flipped score).
    fn model(&self, rows: usize, sign: f64) -> impl Fn(&Z, f64) -> diffusion_core::Result<Z> + '_ {
        let mu = Array2::from_elem((rows, 1), MU);
        move |z: &Z, t: f64| Ok(self.p.gaussian_data_score(z, t, &mu, STD)?.scale(sign))
    }

    /// The exact law `solver` reaches over `grid` from the exact marginal at its first time, with
    /// the score times `sign` and standard normal noises times `noise_scale` (both 1: the sampler
    /// as written).
    fn sampled_law(
        &self,
        solver: &dyn PhaseSolver<Array2<f64>>,
        grid: &TimeGrid,
        (sign, noise_scale): (f64, f64),
    ) -> Law {
        let start = self.law(grid.times()[0]);
        let root = start.cov.cholesky().unwrap().l();
        let inputs = |queries: usize| {
            let rows = 3 + 2 * queries;
            let mut x = Array2::from_elem((rows, 1), start.mean[0]);
            let mut v = Array2::from_elem((rows, 1), start.mean[1]);
            for c in 0..2 {
                x[[1 + c, 0]] += root[(0, c)];
                v[[1 + c, 0]] += root[(1, c)];
            }
            Phase::new(x, v)
        };
        let run = |queries: usize, probe: &mut PhaseProbe| -> Z {
            let z = inputs(queries);
            let m = self.model(z.x.nrows(), sign);
            sample_phase(solver, &m, &self.p, grid, z, probe, &mut NoObserver).unwrap()
        };
        let mut counter = PhaseProbe::new(noise_scale);
        run(0, &mut counter);
        let mut probe = PhaseProbe::new(noise_scale);
        let out = run(counter.queries, &mut probe);
        assert_eq!(probe.queries, counter.queries, "noise queries depend on the state");
        let at = |r: usize| Vector2::new(out.x[[r, 0]], out.v[[r, 0]]);
        let mean = at(0);
        let mut cov = Matrix2::zeros();
        for r in 1..out.x.nrows() {
            let d = at(r) - mean;
            cov += d * d.transpose();
        }
        Law { mean, cov }
    }

    /// The `x`-marginal W2 of `solver`'s exact law to the data marginal at `T_END`.
    fn x_w2(&self, solver: &dyn PhaseSolver<Array2<f64>>, grid: &TimeGrid, scale: f64) -> f64 {
        self.sampled_law(solver, grid, (1.0, scale))
            .x_w2(&self.law(grid.times()[grid.steps()]))
    }
}

/// Noise query `q` returns the unit vector in `x` (row `3 + 2q`) and in `v` (row `4 + 2q`), times
/// `scale sqrt|dt|` so that normalized increments are `scale` times unit vectors.
struct PhaseProbe {
    queries: usize,
    scale: f64,
}

impl PhaseProbe {
    fn new(scale: f64) -> Self {
        PhaseProbe { queries: 0, scale }
    }
}

impl BrownianPath<Z> for PhaseProbe {
    fn increment(&mut self, t0: f64, t1: f64, like: &Z) -> diffusion_core::Result<Z> {
        let q = self.queries;
        self.queries += 1;
        let mut out = like.zeros_like();
        let amp = self.scale * (t1 - t0).abs().sqrt();
        if 3 + 2 * q < out.x.nrows() {
            out.x[[3 + 2 * q, 0]] = amp;
            out.v[[4 + 2 * q, 0]] = amp;
        }
        Ok(out)
    }
}

fn processes() -> Vec<(&'static str, Oracle)> {
    vec![
        ("psld", Oracle { p: Psld::default() }),
        (
            "cld",
            Oracle {
                p: Psld::from_cld(&Cld::default()),
            },
        ),
        (
            "psld-var",
            Oracle {
                p: Psld::paper(0.01, 4.01, 0.04, AffineBeta::from_range(0.1, 16.0).unwrap())
                    .unwrap(),
            },
        ),
    ]
}

fn splitting_solvers() -> Vec<Box<dyn PhaseSolver<Array2<f64>>>> {
    vec![Box::new(Oba), Box::new(Baoab), Box::new(ReducedBaoab)]
}

#[test]
fn the_probe_law_is_exact_for_the_exact_flow() {
    // Power check of the oracle itself: a "solver" that draws the exact marginal at t1 from the
    // exact one at t0 (an affine map plus one Gaussian draw) reaches W2 = 0 at any step count.
    struct ExactMarginal<'a>(&'a Oracle);
    impl PhaseSolver<Array2<f64>> for ExactMarginal<'_> {
        fn name(&self) -> String {
            "exact".into()
        }
        fn order(&self) -> f64 {
            f64::INFINITY
        }
        fn evals_per_step(&self) -> usize {
            0
        }
        fn step(
            &self,
            step: &PhaseStep<'_, Array2<f64>>,
            z: Z,
            noise: &mut dyn BrownianPath<Z>,
        ) -> diffusion_solvers::Result<Z> {
            // Affine transport of N(m0, C0) onto N(m1, C1): z1 = m1 + L1 (L0^{-1} (z0 - m0)) is
            // deterministic; use half of the variance from the map and half from fresh noise.
            let (a, b) = (self.0.law(step.t0), self.0.law(step.t1));
            let (l0, l1) = (a.cov.cholesky().unwrap().l(), b.cov.cholesky().unwrap().l());
            let k = l1 * l0.try_inverse().unwrap() * std::f64::consts::FRAC_1_SQRT_2;
            let xi = noise.normalized(step.t0, step.t1, &z)?;
            let r = z.axpy(-1.0, &constant(&z, &a.mean));
            let out = apply(&k, &r)
                .axpy(std::f64::consts::FRAC_1_SQRT_2, &apply(&l1, &xi))
                .axpy(1.0, &constant(&z, &b.mean));
            Ok(out)
        }
    }
    for (name, o) in processes() {
        let grid = TimeGrid::quadratic(T, T_END, 7).unwrap();
        let w = o.x_w2(&ExactMarginal(&o), &grid, 1.0);
        assert!(w < 1e-10, "{name}: {w}");
        // and the probe sees a wrong noise scale.
        let w = o.x_w2(&ExactMarginal(&o), &grid, 1.2);
        assert!(w > 1e-3, "{name}: {w}");
    }
}

fn constant(like: &Z, m: &Vector2<f64>) -> Z {
    Phase::new(like.x.mapv(|_| m[0]), like.v.mapv(|_| m[1]))
}

fn apply(m: &Matrix2<f64>, z: &Z) -> Z {
    Phase::new(
        z.x.lincomb(m[(0, 0)], &z.v, m[(0, 1)]),
        z.x.lincomb(m[(1, 0)], &z.v, m[(1, 1)]),
    )
}

#[test]
fn splitting_samplers_reach_the_data_law_at_first_weak_order() {
    let ns = [25, 50, 100, 200, 400];
    let em = PhaseEulerMaruyama::sde();
    for (name, o) in processes() {
        for s in splitting_solvers() {
            let errs: Vec<f64> = ns
                .iter()
                .map(|&n| o.x_w2(s.as_ref(), &TimeGrid::quadratic(T, T_END, n).unwrap(), 1.0))
                .collect();
            let k = fitted_slope(&ns[1..], &errs[1..]);
            let em_errs: Vec<f64> = ns
                .iter()
                .map(|&n| {
                    let steps = n * s.evals_per_step();
                    o.x_w2(&em, &TimeGrid::quadratic(T, T_END, steps).unwrap(), 1.0)
                })
                .collect();
            eprintln!(
                "{name:8} {:14} slope {k:.3} x-W2 {}; euler-maruyama at equal NFE {}",
                s.name(),
                show(&errs),
                show(&em_errs)
            );
        }
    }
}

fn show(v: &[f64]) -> String {
    v.iter().map(|e| format!("{e:.2e}")).collect::<Vec<_>>().join(" ")
}
