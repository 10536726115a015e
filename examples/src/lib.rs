//! Shared harness of the examples: every example exercises one method against an analytic
//! oracle, prints ONE parseable metric line
//! `example=<name> <metric>=<value> nfe=<n> expected<=<bound> [key=value ...]` and exits non-zero
//! when the metric leaves its expected range or one of its secondary checks fails (so
//! `tests/run_examples.rs` and `cargo xtask` can check them).
//!
//! Secondary checks print as `key=value` followed by their bounds in the same notation as the
//! main one (`key<=bound`, `key>=bound`), so the whole line stays `key=value` tokens.
//!
//! Oracles offered here:
//! - [`pf_ode_run`] / [`pf_ode_error`]: a deterministic solver against the closed-form PF-ODE flow
//!   of a 2-D Gaussian; [`ode_order`] fits the convergence slope on log-SNR-uniform grids;
//!   [`OdeShowcase`] bundles both for the solver examples.
//! - [`law_distance`] (sliced W2 on the 8-Gaussian ring) and [`gaussian_law`] (W2 between the
//!   Gaussian fitted to the samples and the exact target) for samplers of the law;
//!   [`strong_order`] for strong convergence along a Brownian tree; [`SdeShowcase`] bundles both.
//! - [`ScheduleShowcase`]: a forward-process schedule end to end (PF-ODE, reverse SDE, paper
//!   formula, [`schedule_consistency`]).
//! - [`ks_statistic`], [`moments_z_score`], [`mean_reverting_moments`], [`fitted_gaussian`]:
//!   Monte-Carlo checks of closed forms.
//! - [`exact_law`] / [`exact_law_w2`]: the exact output law of a sampler on the Gaussian target
//!   (probe rows instead of samples, no sampling error); [`LawShowcase`] bundles the law at one
//!   step count with the weak order.
//! - [`OdeReference`]: a converged PF-ODE solution of any model from fixed starts, for targets
//!   without a closed-form flow (mixtures: [`mixture_2d`], [`marginal_samples`]).

use anyhow::{bail, ensure, Result};
/// The standard normal CDF (re-exported for the examples).
pub use diffusion::core::metrics::normal_cdf;
use diffusion::core::metrics::{gaussian_w2, sliced_w2};
use diffusion::core::process::SampleMoments;
use diffusion::core::{
    BrownianPath, BrownianTree, Counted, Denoiser, Gaussian, GaussianMixture, HostNoise,
    IndependentIncrements, NoiseSchedule, NoiseSource, State, TimeGrid,
};
use diffusion::solvers::{registry, sample, NoObserver, Solver};
use nalgebra::{DMatrix, DVector, Matrix2};
use ndarray::Array2;
use std::fmt::Write as _;

pub mod models;
pub mod psld_gaussian;

/// The 2-D test target of the examples: an anisotropic Gaussian (exact PF-ODE known).
pub fn gaussian_2d() -> Result<Gaussian> {
    Ok(Gaussian::new(
        vec![1.0, -0.5],
        vec![vec![0.5, 0.2], vec![0.2, 0.3]],
    )?)
}

/// The 2-D mixture of the examples: 8 Gaussians on a ring of radius 2 (std 0.25).
pub fn ring_2d() -> Result<GaussianMixture> {
    Ok(GaussianMixture::ring(8, 2.0, 0.25)?)
}

/// The result of one example run.
pub struct Outcome {
    /// Name of the main metric.
    pub metric: &'static str,
    /// Its value.
    pub value: f64,
    /// Model evaluations per sample.
    pub nfe: usize,
    /// The bound the metric must stay under.
    pub expected_max: f64,
}

/// Prints the metric line and fails when the metric exceeds its bound.
pub fn report(example: &str, o: &Outcome, extra: &str) -> Result<()> {
    let mut r = Report::new(example, o.metric, o.value, o.nfe, o.expected_max);
    r.text_raw(extra);
    r.finish()
}

/// Formats a number compactly: integers as such, fixed notation in `[1e-3, 1e5)`, scientific
/// otherwise.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if v.fract() == 0.0 && a < 1e15 {
        format!("{}", v as i64)
    } else if (1e-3..1e5).contains(&a) {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

/// The main metric: six decimals, or scientific below 1e-3 (so small values keep their digits).
fn metric_num(v: f64) -> String {
    if v != 0.0 && v.abs() < 1e-3 {
        format!("{v:.3e}")
    } else {
        format!("{v:.6}")
    }
}

/// A bound as written (`0.05`), or scientific below 1e-3 (`1e-9`).
fn bound_num(v: f64) -> String {
    if v != 0.0 && v.abs() < 1e-3 {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// The metric line of one example: the main metric and its bound, informational fields and
/// secondary checks. [`Report::finish`] prints the line, then fails if anything is out of bounds.
pub struct Report {
    line: String,
    failures: Vec<String>,
}

impl Report {
    /// Starts the line `example=<name> <metric>=<value> nfe=<n> expected<=<bound>`.
    pub fn new(example: &str, metric: &str, value: f64, nfe: usize, expected_max: f64) -> Self {
        let line = format!(
            "example={example} {metric}={} nfe={nfe} expected<={}",
            metric_num(value),
            bound_num(expected_max)
        );
        let mut failures = Vec::new();
        let ok = value <= expected_max; // false for NaN
        if !ok {
            failures.push(format!(
                "{example}: {metric}={value} is above its expected bound {expected_max}"
            ));
        }
        Report { line, failures }
    }

    /// Appends an informational `key=value` number.
    pub fn info(&mut self, key: &str, value: f64) -> &mut Self {
        let _ = write!(self.line, " {key}={}", num(value));
        self
    }

    /// Appends an informational `key=text` field (no spaces in `text`).
    pub fn text(&mut self, key: &str, text: &str) -> &mut Self {
        let _ = write!(self.line, " {key}={text}");
        self
    }

    fn text_raw(&mut self, extra: &str) {
        if !extra.is_empty() {
            self.line.push(' ');
            self.line.push_str(extra);
        }
    }

    /// A secondary check `value <= max`, printed as `key=value key<=max`.
    pub fn check_max(&mut self, key: &str, value: f64, max: f64) -> &mut Self {
        let _ = write!(self.line, " {key}={} {key}<={}", num(value), num(max));
        let ok = value <= max; // false for NaN
        if !ok {
            self.failures.push(format!("{key}={value} is above {max}"));
        }
        self
    }

    /// A secondary check `value >= min`, printed as `key=value key>=min`.
    pub fn check_min(&mut self, key: &str, value: f64, min: f64) -> &mut Self {
        let _ = write!(self.line, " {key}={} {key}>={}", num(value), num(min));
        let ok = value >= min; // false for NaN
        if !ok {
            self.failures.push(format!("{key}={value} is below {min}"));
        }
        self
    }

    /// A secondary check `min <= value <= max`.
    pub fn check_range(&mut self, key: &str, value: f64, min: f64, max: f64) -> &mut Self {
        let _ = write!(
            self.line,
            " {key}={} {key}>={} {key}<={}",
            num(value),
            num(min),
            num(max)
        );
        if !(value >= min && value <= max) {
            self.failures
                .push(format!("{key}={value} is outside [{min}, {max}]"));
        }
        self
    }

    /// Prints the line; errors listing every violated bound.
    pub fn finish(&self) -> Result<()> {
        println!("{}", self.line);
        if !self.failures.is_empty() {
            bail!("{}", self.failures.join("; "));
        }
        Ok(())
    }
}

/// A deterministic (or seeded stochastic) run from exact samples of the Gaussian target's
/// marginal at the grid's first time.
pub struct PfOdeRun {
    /// The starting points (exact marginal samples).
    pub start: Array2<f64>,
    /// The solver's result at the grid's last time.
    pub out: Array2<f64>,
    /// The closed-form PF-ODE image of `start` at the grid's last time.
    pub exact: Array2<f64>,
    /// Model evaluations per sample.
    pub nfe: usize,
}

impl PfOdeRun {
    /// RMS error of the solver against the exact flow.
    pub fn error(&self) -> f64 {
        rms_diff(&self.out, &self.exact)
    }
}

/// Root mean square of `a - b`.
pub fn rms_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    a.lincomb(1.0, b, -1.0).rms()
}

/// Runs solver `spec` (registry syntax) with the exact denoiser of `target` from `n` exact samples
/// of its marginal at `grid.times()[0]`, along a Brownian tree seeded `seed + 1`.
pub fn pf_ode_run_of(
    target: &Gaussian,
    spec: &str,
    schedule: &dyn NoiseSchedule,
    grid: &TimeGrid,
    n: usize,
    seed: u64,
) -> Result<PfOdeRun> {
    let gmm = GaussianMixture::from_gaussian(target.clone());
    let den = gmm.denoiser(schedule);
    let counted = Counted::new(&den);
    let (t0, t1) = (
        grid.times()[0],
        *grid.times().last().expect("grid has times"),
    );
    let start = target
        .marginal(schedule, t0)
        .sample(n, &mut HostNoise::new(seed));
    let s = registry::build::<Array2<f64>>(spec)?;
    let mut noise = tree_for(seed + 1, schedule)?;
    let out = sample(
        s.as_ref(),
        &counted,
        schedule,
        grid,
        start.clone(),
        &mut noise,
        &mut NoObserver,
    )?;
    let exact = target.pf_ode_flow(schedule, t0, t1, &start.view())?;
    Ok(PfOdeRun {
        start,
        out,
        exact,
        nfe: counted.calls(),
    })
}

/// [`pf_ode_run_of`] on the examples' Gaussian ([`gaussian_2d`]).
pub fn pf_ode_run(
    spec: &str,
    schedule: &dyn NoiseSchedule,
    grid: &TimeGrid,
    n: usize,
    seed: u64,
) -> Result<PfOdeRun> {
    pf_ode_run_of(&gaussian_2d()?, spec, schedule, grid, n, seed)
}

/// Runs a deterministic solver from the exact marginal at `grid.times()[0]` and returns the RMS
/// error against the closed-form PF-ODE solution of a Gaussian target at the grid's last time.
pub fn pf_ode_error(
    solver: &str,
    schedule: &dyn NoiseSchedule,
    grid: &TimeGrid,
    n: usize,
    seed: u64,
) -> Result<(f64, usize)> {
    let r = pf_ode_run(solver, schedule, grid, n, seed)?;
    Ok((r.error(), r.nfe))
}

/// The least-squares slope of `-ln(error)` against `ln(steps)`: the observed convergence order.
pub fn fitted_slope(ns: &[usize], errs: &[f64]) -> f64 {
    let xs: Vec<f64> = ns.iter().map(|&n| (n as f64).ln()).collect();
    let ys: Vec<f64> = errs.iter().map(|e| e.ln()).collect();
    let k = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / k, ys.iter().sum::<f64>() / k);
    let num: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let den: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    -num / den
}

/// PF-ODE errors of `spec` on log-SNR-uniform grids from `t0` to `t1` with each step count of
/// `ladder` (64 samples), and the fitted order.
pub fn ode_order(
    spec: &str,
    schedule: &dyn NoiseSchedule,
    (t0, t1): (f64, f64),
    ladder: &[usize],
    seed: u64,
) -> Result<(Vec<f64>, f64)> {
    let errs = ladder
        .iter()
        .map(|&steps| {
            let grid = TimeGrid::log_snr_uniform(schedule, t0, t1, steps)?;
            Ok(pf_ode_run(spec, schedule, &grid, 64, seed)?.error())
        })
        .collect::<Result<Vec<f64>>>()?;
    Ok((errs.clone(), fitted_slope(ladder, &errs)))
}

/// The standard showcase of a deterministic solver: its PF-ODE error on a sampling grid (the
/// main metric) and its observed order on log-SNR grids (checked within 0.3 of the declared one).
pub struct OdeShowcase<'a> {
    /// Example name.
    pub example: &'a str,
    /// Solver spec (registry syntax).
    pub solver: &'a str,
    /// Schedule the target is diffused with.
    pub schedule: &'a dyn NoiseSchedule,
    /// The sampling grid of the main metric.
    pub grid: TimeGrid,
    /// Samples.
    pub n: usize,
    /// Seed.
    pub seed: u64,
    /// Bound on the main metric.
    pub bound: f64,
    /// Declared order to check.
    pub order: f64,
    /// Time span of the order fit.
    pub span: (f64, f64),
    /// Step counts of the order fit.
    pub ladder: &'a [usize],
}

impl OdeShowcase<'_> {
    /// Runs both measurements and returns the report (the caller may add checks, then finish),
    /// with the run of the main metric.
    pub fn run(&self) -> Result<(Report, PfOdeRun)> {
        let run = pf_ode_run(self.solver, self.schedule, &self.grid, self.n, self.seed)?;
        let (_, slope) = ode_order(
            self.solver,
            self.schedule,
            self.span,
            self.ladder,
            self.seed,
        )?;
        let mut r = Report::new(
            self.example,
            "pf_ode_rmse",
            run.error(),
            run.nfe,
            self.bound,
        );
        r.text("solver", self.solver)
            .text("schedule", &self.schedule.name().replace(' ', ""))
            .info("steps", self.grid.steps() as f64)
            .check_range("order", slope, self.order - 0.3, self.order + 0.3);
        Ok((r, run))
    }
}

/// A Brownian tree over the whole time range of `schedule`.
pub fn tree_for(seed: u64, schedule: &dyn NoiseSchedule) -> Result<BrownianTree> {
    let (lo, hi) = schedule.t_range();
    Ok(BrownianTree::with_default_tol(seed, lo, hi)?)
}

/// `n` draws of the prior `N(0, (alpha^2 + sigma^2) I)` at time `t` in dimension `dim`.
pub fn prior(schedule: &dyn NoiseSchedule, t: f64, n: usize, dim: usize, seed: u64) -> Array2<f64> {
    let scale = (schedule.alpha(t).powi(2) + schedule.sigma(t).powi(2)).sqrt();
    let x: Array2<f64> = HostNoise::new(seed).standard_normal(&Array2::<f64>::zeros((n, dim)));
    x.scale(scale)
}

/// Samples with solver `spec` and `model` from the prior at the grid's first time along a
/// Brownian tree; returns the samples and the NFE per sample.
pub fn sample_from_prior(
    spec: &str,
    model: &dyn Denoiser<Array2<f64>>,
    schedule: &dyn NoiseSchedule,
    grid: &TimeGrid,
    n: usize,
    dim: usize,
    seed: u64,
) -> Result<(Array2<f64>, usize)> {
    let counted = Counted::new(model);
    let x = prior(schedule, grid.times()[0], n, dim, seed);
    let s = registry::build::<Array2<f64>>(spec)?;
    let mut noise = tree_for(seed + 1, schedule)?;
    let out = sample(
        s.as_ref(),
        &counted,
        schedule,
        grid,
        x,
        &mut noise,
        &mut NoObserver,
    )?;
    Ok((out, counted.calls()))
}

/// Samples `target` from the prior `N(0, (alpha^2 + sigma^2) I)` at the grid's first time and
/// returns the sliced W2 to exact samples of the same size, the NFE, and the noise floor: the
/// sliced W2 between two independent exact sample sets of that size.
pub fn law_distance(
    solver: &str,
    target: &GaussianMixture,
    schedule: &dyn NoiseSchedule,
    grid: &TimeGrid,
    n: usize,
    seed: u64,
) -> Result<(f64, usize, f64)> {
    let den = target.denoiser(schedule);
    let (out, nfe) = sample_from_prior(solver, &den, schedule, grid, n, target.dim(), seed)?;
    let exact = target.sample(n, &mut HostNoise::new(seed ^ 0x5eed));
    let exact2 = target.sample(n, &mut HostNoise::new(seed ^ 0xf100));
    let floor = sliced_w2(&exact2.view(), &exact.view(), 128, seed)?;
    Ok((
        sliced_w2(&out.view(), &exact.view(), 128, seed)?,
        nfe,
        floor,
    ))
}

/// The Gaussian with the sample mean and covariance (divisor `n`) of the rows of `x`.
pub fn fitted_gaussian(x: &Array2<f64>) -> Result<Gaussian> {
    let m = sample_moments(x);
    let d = x.ncols();
    Ok(Gaussian::new(
        m.mean.iter().copied().collect(),
        (0..d)
            .map(|i| (0..d).map(|j| m.cov[(i, j)]).collect())
            .collect(),
    )?)
}

/// Sample mean and covariance (divisor `n`) of the rows of `x`.
pub fn sample_moments(x: &Array2<f64>) -> SampleMoments {
    let (n, d) = x.dim();
    let mean = DVector::from_fn(d, |j, _| x.column(j).sum() / n as f64);
    let cov = DMatrix::from_fn(d, d, |i, j| {
        x.column(i)
            .iter()
            .zip(x.column(j))
            .map(|(a, b)| (a - mean[i]) * (b - mean[j]))
            .sum::<f64>()
            / n as f64
    });
    SampleMoments {
        mean,
        cov,
        paths: n,
    }
}

/// The law of a sampler on the Gaussian target.
pub struct GaussianLaw {
    /// W2 between the Gaussian fitted to the samples and the exact target.
    pub w2: f64,
    /// The same for `n` exact samples: the sampling noise floor.
    pub floor: f64,
    /// Model evaluations per sample.
    pub nfe: usize,
}

/// Samples the examples' Gaussian target ([`gaussian_2d`]) with `spec` from the prior and
/// measures the law by the W2 of the fitted Gaussian.
pub fn gaussian_law(
    spec: &str,
    schedule: &dyn NoiseSchedule,
    grid: &TimeGrid,
    n: usize,
    seed: u64,
) -> Result<GaussianLaw> {
    let g = gaussian_2d()?;
    let gmm = GaussianMixture::from_gaussian(g.clone());
    let den = gmm.denoiser(schedule);
    let (out, nfe) = sample_from_prior(spec, &den, schedule, grid, n, 2, seed)?;
    let exact = g.sample(n, &mut HostNoise::new(seed ^ 0x5eed));
    Ok(GaussianLaw {
        w2: gaussian_w2(&fitted_gaussian(&out)?, &g),
        floor: gaussian_w2(&fitted_gaussian(&exact)?, &g),
        nfe,
    })
}

/// The standard showcase of a stochastic sampler: the law on the Gaussian target on a Karras grid
/// ending at noise level 0 (the main metric, W2 of the fitted Gaussian, printed with its floor),
/// and strong convergence along one Brownian tree: the RMS distance to the sampler's own
/// `8 * ladder.last()`-step solution on log-SNR grids (VP, t from 1 to 0.01, 64 samples) must
/// fall at the declared strong order (within 0.3).
pub struct SdeShowcase<'a> {
    /// Example name.
    pub example: &'a str,
    /// Solver spec (registry syntax).
    pub solver: &'a str,
    /// Schedule (VP in the examples).
    pub schedule: &'a dyn NoiseSchedule,
    /// Steps of the law measurement.
    pub steps: usize,
    /// Samples of the law measurement.
    pub n: usize,
    /// Seed.
    pub seed: u64,
    /// Bound on the W2 of the fitted Gaussian.
    pub bound: f64,
    /// Step counts of the strong-order fit.
    pub ladder: &'a [usize],
}

impl SdeShowcase<'_> {
    /// Runs both measurements and returns the report.
    pub fn run(&self) -> Result<Report> {
        let sch = self.schedule;
        let grid = karras_to_zero(sch, self.steps)?;
        let law = gaussian_law(self.solver, sch, &grid, self.n, self.seed)?;
        let (errs, slope) = strong_order(
            self.solver,
            sch,
            (sch.t_range().1, 0.01),
            self.ladder,
            self.seed,
        )?;
        let mut r = Report::new(self.example, "w2_fitted", law.w2, law.nfe, self.bound);
        r.info("floor", law.floor)
            .text("solver", self.solver)
            .text("schedule", &sch.name().replace(' ', ""))
            .info("steps", self.steps as f64)
            .info("strong_err", *errs.last().expect("a ladder"))
            .check_range("strong_order", slope, 0.7, 1.3);
        Ok(r)
    }
}

/// Strong errors of a stochastic sampler along one Brownian tree: RMS distance of the
/// `ladder[i]`-step solution (log-SNR grid from `t0` to `t1`, 64 exact starting samples) to the
/// same sampler's `8 * max(ladder)`-step solution; returns the errors and the fitted slope.
pub fn strong_order(
    spec: &str,
    schedule: &dyn NoiseSchedule,
    (t0, t1): (f64, f64),
    ladder: &[usize],
    seed: u64,
) -> Result<(Vec<f64>, f64)> {
    let fine = 8 * ladder.iter().copied().max().unwrap_or(1);
    let solve = |steps: usize| -> Result<Array2<f64>> {
        let grid = TimeGrid::log_snr_uniform(schedule, t0, t1, steps)?;
        Ok(pf_ode_run(spec, schedule, &grid, 64, seed)?.out)
    };
    let reference = solve(fine)?;
    let errs = ladder
        .iter()
        .map(|&n| Ok(rms_diff(&solve(n)?, &reference)))
        .collect::<Result<Vec<f64>>>()?;
    Ok((errs.clone(), fitted_slope(ladder, &errs)))
}

/// Kolmogorov-Smirnov statistic `sup |F_n - F|` of `samples` against the CDF `cdf`.
pub fn ks_statistic(samples: &[f64], cdf: impl Fn(f64) -> Result<f64>) -> Result<f64> {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len() as f64;
    let mut d: f64 = 0.0;
    for (i, &x) in s.iter().enumerate() {
        let f = cdf(x)?;
        d = d
            .max((f - i as f64 / n).abs())
            .max((f - (i + 1) as f64 / n).abs());
    }
    Ok(d)
}

/// The KS critical value at level 0.001 for `n` samples, `1.95 / sqrt(n)`.
pub fn ks_critical(n: usize) -> f64 {
    1.95 / (n as f64).sqrt()
}

/// Largest standardized deviation of Monte-Carlo moments from an exact Gaussian law
/// ([`SampleMoments::max_z_score`]); errors on a non-finite result.
pub fn moments_z_score(mc: &SampleMoments, mean: &DVector<f64>, cov: &DMatrix<f64>) -> Result<f64> {
    let z = mc.max_z_score(mean, cov);
    ensure!(z.is_finite(), "non-finite z-score");
    Ok(z)
}

/// Largest absolute value (of a matrix's or an array's entries).
pub fn max_abs<'a>(values: impl IntoIterator<Item = &'a f64>) -> f64 {
    values.into_iter().fold(0.0, |a, v| a.max(v.abs()))
}

/// Euler-Maruyama Monte-Carlo moments at time `t` of the scalar mean-reverting SDE
/// `dx = theta(s) (mu - x) ds + g(s) dW` from `x(0) = x0` (`steps` uniform steps, `paths` paths).
pub fn mean_reverting_moments(
    theta: &dyn Fn(f64) -> f64,
    g: &dyn Fn(f64) -> f64,
    (x0, mu): (f64, f64),
    t: f64,
    steps: usize,
    paths: usize,
    seed: u64,
) -> Result<SampleMoments> {
    Ok(diffusion::core::process::euler_maruyama_moments(
        &|s| {
            let a = theta(s);
            (
                DMatrix::from_element(1, 1, -a),
                DVector::from_element(1, a * mu),
            )
        },
        &|s| DMatrix::from_element(1, 1, g(s)),
        &DVector::from_element(1, x0),
        &DMatrix::zeros(1, 1),
        (0.0, t),
        steps,
        paths,
        &mut HostNoise::new(seed),
    )?)
}

/// The z-score of scalar Monte-Carlo moments against `N(mean, var)`.
pub fn scalar_z(mc: &SampleMoments, mean: f64, var: f64) -> Result<f64> {
    moments_z_score(
        mc,
        &DVector::from_element(1, mean),
        &DMatrix::from_element(1, 1, var),
    )
}

/// The largest inconsistency of a schedule on the times `ts`: `t_of_lambda(lambda(t))` against
/// `t`, and its closed-form `drift` and `diffusion_sq` against central differences of the marginal
/// coefficients (`f = d ln alpha / dt`, `g^2 = d sigma^2 / dt - 2 f sigma^2`), relative to
/// `1 + |value|`.
pub fn schedule_consistency(s: &dyn NoiseSchedule, ts: &[f64]) -> f64 {
    let mut err: f64 = 0.0;
    for &t in ts {
        err = err.max((s.t_of_lambda(s.lambda(t)) - t).abs() / (1.0 + t.abs()));
        let h = 1e-6 * (1.0 + t.abs());
        let f_fd = (s.alpha(t + h).ln() - s.alpha(t - h).ln()) / (2.0 * h);
        err = err.max((s.drift(t) - f_fd).abs() / (1.0 + f_fd.abs()));
        let ds2 = (s.sigma(t + h).powi(2) - s.sigma(t - h).powi(2)) / (2.0 * h);
        let g2_fd = ds2 - 2.0 * f_fd * s.sigma(t).powi(2);
        err = err.max((s.diffusion_sq(t) - g2_fd).abs() / (1.0 + g2_fd.abs()));
    }
    err
}

/// The standard showcase of a forward-process schedule on the Gaussian target: the PF-ODE
/// solved with Heun on Karras noise levels against its closed form (the main metric: it needs
/// `alpha`, `sigma` and `t_of_lambda` right), the reverse SDE by Euler-Maruyama from the prior
/// (a check on the law: it needs `drift` and `diffusion_sq` right), `(alpha, sigma)` against the
/// paper's formula and the schedule's internal consistency on 50 interior times.
pub struct ScheduleShowcase<'a> {
    /// Example name.
    pub example: &'a str,
    /// The schedule.
    pub schedule: &'a dyn NoiseSchedule,
    /// EDM noise levels `(sigma_max, sigma_min)` of the Heun grid.
    pub noise_levels: (f64, f64),
    /// Heun steps.
    pub steps: usize,
    /// Times `(t_start, t_end)` of the Euler-Maruyama run.
    pub sde_span: (f64, f64),
    /// Euler-Maruyama steps (uniform in t).
    pub sde_steps: usize,
    /// Samples of the law check.
    pub n: usize,
    /// Seed.
    pub seed: u64,
    /// Bound on the PF-ODE error.
    pub bound: f64,
    /// The paper's `(alpha(t), sigma(t))`, written independently of the library; checked on
    /// 50 interior times.
    pub formula: &'a dyn Fn(f64) -> (f64, f64),
}

impl ScheduleShowcase<'_> {
    /// Runs the three measurements and returns the report.
    pub fn run(&self) -> Result<Report> {
        let sch = self.schedule;
        let (smax, smin) = self.noise_levels;
        let grid = TimeGrid::karras(sch, smin, smax, 7.0, self.steps, false)?;
        let ode = pf_ode_run("heun", sch, &grid, 512, self.seed)?;
        let (t0, t1) = self.sde_span;
        let law = gaussian_law(
            "euler-maruyama",
            sch,
            &TimeGrid::uniform(t0, t1, self.sde_steps)?,
            self.n,
            self.seed,
        )?;
        let (lo, hi) = sch.t_range();
        let ts: Vec<f64> = (1..=50).map(|i| lo + (hi - lo) * i as f64 / 51.0).collect();
        let formula_err = ts
            .iter()
            .map(|&t| {
                let (a, s) = (self.formula)(t);
                (sch.alpha(t) - a).abs().max((sch.sigma(t) - s).abs())
            })
            .fold(0.0, f64::max);
        let mut r = Report::new(
            self.example,
            "pf_ode_rmse",
            ode.error(),
            ode.nfe,
            self.bound,
        );
        r.text("schedule", &sch.name().replace(' ', ""))
            .text("solver", "heun")
            .info("steps", self.steps as f64)
            .check_max("paper_formula_err", formula_err, 1e-12)
            .check_max("consistency_err", schedule_consistency(sch, &ts), 1e-5)
            .info("sde_floor", law.floor)
            .check_max("sde_w2_fitted", law.w2, 0.06);
        Ok(r)
    }
}

/// A Karras grid (`rho = 7`, `sigma_min = 0.002`) from the schedule's largest noise level, with a
/// final step to noise level 0.
pub fn karras_to_zero(schedule: &dyn NoiseSchedule, steps: usize) -> Result<TimeGrid> {
    Ok(TimeGrid::karras(
        schedule,
        0.002,
        schedule.noise_ratio(schedule.t_range().1),
        7.0,
        steps,
        true,
    )?)
}

/// A `2 x 2` nalgebra matrix as a dynamic one.
pub fn dmat(m: &Matrix2<f64>) -> DMatrix<f64> {
    DMatrix::from_row_slice(2, 2, &[m[(0, 0)], m[(0, 1)], m[(1, 0)], m[(1, 1)]])
}

/// Runs `solver` with `model` over `grid` from `x`, drawing noise from `noise`.
pub fn solve(
    solver: &dyn Solver<Array2<f64>>,
    model: &dyn Denoiser<Array2<f64>>,
    schedule: &dyn NoiseSchedule,
    grid: &TimeGrid,
    x: Array2<f64>,
    noise: &mut dyn BrownianPath<Array2<f64>>,
) -> Result<Array2<f64>> {
    Ok(sample(
        solver,
        model,
        schedule,
        grid,
        x,
        noise,
        &mut NoObserver,
    )?)
}

/// [`solve`] for a deterministic solver (the noise it never draws is seeded 0).
pub fn solve_ode(
    solver: &dyn Solver<Array2<f64>>,
    model: &dyn Denoiser<Array2<f64>>,
    schedule: &dyn NoiseSchedule,
    grid: &TimeGrid,
    x: Array2<f64>,
) -> Result<Array2<f64>> {
    solve(
        solver,
        model,
        schedule,
        grid,
        x,
        &mut IndependentIncrements::seeded(0),
    )
}

/// A [`BrownianPath`] that probes a sampler that is affine in its input and its noises (every
/// sampler on a Gaussian target, whose denoiser is affine): query `q` returns, in rows
/// `1 + d + q d + i` (`i < d`), the unit vector `e_i` (times `sqrt|dt|`, so normalized
/// increments are exactly `e_i`) and zeros elsewhere. It counts its queries.
struct ProbePath {
    queries: usize,
    dim: usize,
}

impl BrownianPath<Array2<f64>> for ProbePath {
    fn increment(
        &mut self,
        t0: f64,
        t1: f64,
        like: &Array2<f64>,
    ) -> diffusion::core::Result<Array2<f64>> {
        let (q, d) = (self.queries, self.dim);
        self.queries += 1;
        let mut out = Array2::zeros(like.raw_dim());
        let dt = t1 - t0;
        for i in 0..d {
            let row = 1 + d + q * d + i;
            if row < out.nrows() {
                out[[row, i]] = dt.signum() * dt.abs().sqrt();
            }
        }
        Ok(out)
    }
}

/// The exact law of `solver`'s output over `grid` when its input has the exact marginal law of
/// `target` at the grid's first time and its noises are standard normal: the sampler runs on
/// probe rows (the mean, the input's principal directions, every direction of every noise
/// query) and the covariances add up. No sampling error, so weak orders can be fitted. Needs a
/// sampler whose noise queries do not depend on the state's values (every fixed-grid sampler
/// here except the Langevin corrector, whose step size reads the noise's norm).
pub fn exact_law(
    solver: &dyn Solver<Array2<f64>>,
    target: &Gaussian,
    schedule: &dyn NoiseSchedule,
    grid: &TimeGrid,
) -> Result<Gaussian> {
    let gmm = GaussianMixture::from_gaussian(target.clone());
    let den = gmm.denoiser(schedule);
    let start = target.marginal(schedule, grid.times()[0]);
    let d = start.dim();
    let root = start.cov_sqrt();
    let inputs = |extra: usize| {
        Array2::from_shape_fn((1 + d + extra * d, d), |(r, j)| {
            let shift = if (1..=d).contains(&r) {
                root[(j, r - 1)]
            } else {
                0.0
            };
            start.mean()[j] + shift
        })
    };
    let mut counter = ProbePath { queries: 0, dim: d };
    solve(solver, &den, schedule, grid, inputs(0), &mut counter)?;
    let queries = counter.queries;
    let mut probe = ProbePath { queries: 0, dim: d };
    let out = solve(solver, &den, schedule, grid, inputs(queries), &mut probe)?;
    ensure!(
        probe.queries == queries,
        "the noise queries of {} depend on the state",
        solver.name()
    );
    let mean: Vec<f64> = (0..d).map(|j| out[[0, j]]).collect();
    let mut cov = vec![vec![0.0; d]; d];
    for r in 1..out.nrows() {
        for a in 0..d {
            for b in 0..d {
                cov[a][b] += (out[[r, a]] - mean[a]) * (out[[r, b]] - mean[b]);
            }
        }
    }
    Ok(Gaussian::new(mean, cov)?)
}

/// W2 between the [`exact_law`] of solver `spec` (registry syntax) over `grid` on the examples'
/// Gaussian ([`gaussian_2d`]) and its exact marginal at the grid's last time (the target itself
/// on a grid ending at noise level 0).
pub fn exact_law_w2(spec: &str, schedule: &dyn NoiseSchedule, grid: &TimeGrid) -> Result<f64> {
    let g = gaussian_2d()?;
    let s = registry::build::<Array2<f64>>(spec)?;
    let law = exact_law(s.as_ref(), &g, schedule, grid)?;
    let end = grid.times()[grid.steps()];
    Ok(gaussian_w2(&law, &g.marginal(schedule, end)))
}

/// The law showcase of a stochastic sampler on the examples' Gaussian: the W2 of its
/// [`exact_law`] to the target on a Karras grid ending at noise level 0 (the main metric), and
/// its weak order: the slope of the exact-law W2 to the marginal at `t = 1e-3` on log-SNR grids
/// from the schedule's end (checked within 0.3 of the declared weak order).
pub struct LawShowcase<'a> {
    /// Example name.
    pub example: &'a str,
    /// The solver spec (registry syntax) for a grid of the given number of steps.
    pub spec: &'a dyn Fn(usize) -> String,
    /// Schedule.
    pub schedule: &'a dyn NoiseSchedule,
    /// Steps of the main metric.
    pub steps: usize,
    /// Bound on the main metric.
    pub bound: f64,
    /// Declared weak order.
    pub weak_order: f64,
    /// Step counts of the weak-order fit.
    pub ladder: &'a [usize],
}

impl LawShowcase<'_> {
    /// Runs both measurements and returns the report (NFE counted on the main run).
    pub fn run(&self) -> Result<Report> {
        let sch = self.schedule;
        let spec = (self.spec)(self.steps);
        let grid = karras_to_zero(sch, self.steps)?;
        let w2 = exact_law_w2(&spec, sch, &grid)?;
        let nfe = pf_ode_run(&spec, sch, &grid, 1, 0)?.nfe;
        let errs = self
            .ladder
            .iter()
            .map(|&n| {
                let g = TimeGrid::log_snr_uniform(sch, sch.t_range().1, 1e-3, n)?;
                exact_law_w2(&(self.spec)(n), sch, &g)
            })
            .collect::<Result<Vec<f64>>>()?;
        let slope = fitted_slope(self.ladder, &errs);
        let mut r = Report::new(self.example, "w2_exact_law", w2, nfe, self.bound);
        r.text("solver", &spec)
            .text("schedule", &sch.name().replace(' ', ""))
            .info("steps", self.steps as f64)
            .check_range(
                "weak_order",
                slope,
                self.weak_order - 0.3,
                self.weak_order + 0.3,
            );
        Ok(r)
    }
}

/// A 2-D three-component anisotropic Gaussian mixture (no closed-form PF-ODE flow).
pub fn mixture_2d() -> Result<GaussianMixture> {
    Ok(GaussianMixture::new(
        vec![0.3, 0.5, 0.2],
        vec![vec![-1.5, 0.5], vec![1.0, 1.0], vec![0.5, -1.5]],
        vec![
            vec![vec![0.1, 0.05], vec![0.05, 0.2]],
            vec![vec![0.3, -0.1], vec![-0.1, 0.1]],
            vec![vec![0.05, 0.0], vec![0.0, 0.05]],
        ],
    )?)
}

/// `n` exact samples `alpha x0 + sigma eps` of the marginal of `target` at `t`.
pub fn marginal_samples(
    target: &GaussianMixture,
    schedule: &dyn NoiseSchedule,
    t: f64,
    n: usize,
    seed: u64,
) -> Array2<f64> {
    let x0 = target.sample(n, &mut HostNoise::new(seed));
    let eps: Array2<f64> = HostNoise::new(seed + 1000).standard_normal(&x0);
    x0.lincomb(schedule.alpha(t), &eps, schedule.sigma(t))
}

/// Fixed starting states and their PF-ODE solution by a fine reference solve, for measuring
/// deterministic solvers on targets without a closed-form flow.
pub struct OdeReference<'a> {
    model: &'a dyn Denoiser<Array2<f64>>,
    schedule: &'a dyn NoiseSchedule,
    /// The starting states (at the reference grid's first time).
    pub start: Array2<f64>,
    /// Their solution at the reference grid's last time.
    pub exact: Array2<f64>,
}

impl<'a> OdeReference<'a> {
    /// Solves from `start` with `solver` on the fine grid `fine`.
    pub fn new(
        model: &'a dyn Denoiser<Array2<f64>>,
        schedule: &'a dyn NoiseSchedule,
        start: Array2<f64>,
        solver: &dyn Solver<Array2<f64>>,
        fine: &TimeGrid,
    ) -> Result<Self> {
        let exact = solve_ode(solver, model, schedule, fine, start.clone())?;
        Ok(OdeReference {
            model,
            schedule,
            start,
            exact,
        })
    }

    /// RMS distance of `solver`'s solution on `grid` (same ends as the reference) to the
    /// reference solution.
    pub fn error(&self, solver: &dyn Solver<Array2<f64>>, grid: &TimeGrid) -> Result<f64> {
        let out = solve_ode(solver, self.model, self.schedule, grid, self.start.clone())?;
        Ok(rms_diff(&out, &self.exact))
    }
}

/// The `n` quantiles `F^{-1}((i + 1/2) / n)` of a 1-D Gaussian mixture (bisection on its CDF):
/// a reference sample without sampling noise, for the exact 1-D W2 of a sampler's output.
pub fn mixture_quantiles_1d(target: &GaussianMixture, n: usize) -> Result<Vec<f64>> {
    ensure!(target.dim() == 1, "a 1-D mixture is needed");
    let comps: Vec<(f64, f64, f64)> = target
        .weights()
        .iter()
        .zip(target.components())
        .map(|(&w, c)| (w, c.mean()[0], c.cov()[(0, 0)].sqrt()))
        .collect();
    let cdf = |x: f64| -> f64 {
        comps
            .iter()
            .map(|&(w, m, s)| w * normal_cdf((x - m) / s))
            .sum()
    };
    let lo0 = comps
        .iter()
        .map(|c| c.1 - 12.0 * c.2)
        .fold(f64::INFINITY, f64::min);
    let hi0 = comps
        .iter()
        .map(|c| c.1 + 12.0 * c.2)
        .fold(f64::NEG_INFINITY, f64::max);
    Ok((0..n)
        .map(|i| {
            let p = (i as f64 + 0.5) / n as f64;
            let (mut lo, mut hi) = (lo0, hi0);
            for _ in 0..60 {
                let mid = 0.5 * (lo + hi);
                if cdf(mid) < p {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            0.5 * (lo + hi)
        })
        .collect())
}

/// Command-line options shared by the schedule examples (sub-VP, VE, rectified flow, TrigFlow).
#[derive(clap::Parser, Debug)]
pub struct ScheduleArgs {
    /// Heun steps (NFE = 2 steps).
    #[arg(long, default_value_t = 18)]
    pub steps: usize,
    /// Euler-Maruyama steps of the law check.
    #[arg(long, default_value_t = 500)]
    pub sde_steps: usize,
    /// Samples of the law check.
    #[arg(long, default_value_t = 5000)]
    pub n: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Command-line options of the two-evaluation ancestral SDE examples (DPM-Solver++(2S)
/// ancestral, DPM++ SDE).
#[derive(clap::Parser, Debug)]
pub struct AncestralArgs {
    /// Noise amount eta.
    #[arg(long, default_value_t = 1.0)]
    pub eta: f64,
    /// Solver steps (NFE = 2 steps - 1).
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// Samples.
    #[arg(long, default_value_t = 5000)]
    pub n: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// The shared body of those examples: `solver` with the given `eta` on the VP-linear SDE, the
/// fitted-Gaussian W2 to the exact target (bound 0.06) and strong order 1 along a Brownian tree.
pub fn ancestral_example(example: &'static str, solver: &str, a: &AncestralArgs) -> Result<()> {
    let spec = format!("{solver}:eta={}", a.eta);
    SdeShowcase {
        example,
        solver: &spec,
        schedule: &diffusion::core::schedule::VpLinear::default(),
        steps: a.steps,
        n: a.n,
        seed: a.seed,
        bound: 0.06,
        ladder: &[32, 64, 128, 256],
    }
    .run()?
    .finish()
}
