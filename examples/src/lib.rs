//! Shared harness of the examples: every example samples an analytic target with one method,
//! prints ONE parseable metric line `example=<name> <metric>=<value> ... expected<=<bound>` and
//! exits non-zero when the metric leaves its expected range (so `tests/run_examples.rs` and
//! `cargo xtask` can check them).

use anyhow::{bail, Result};
use diffusion::core::metrics::sliced_w2;
use diffusion::core::{
    BrownianTree, Counted, Gaussian, GaussianMixture, HostNoise, NoiseSchedule, NoiseSource, State,
    TimeGrid,
};
use diffusion::solvers::{registry, sample, NoObserver};
use ndarray::Array2;

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
    println!(
        "example={example} {}={:.6} nfe={} expected<={} {extra}",
        o.metric, o.value, o.nfe, o.expected_max
    );
    if !(o.value <= o.expected_max) {
        bail!(
            "{example}: {}={} is above its expected bound {}",
            o.metric,
            o.value,
            o.expected_max
        );
    }
    Ok(())
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
    let g = gaussian_2d()?;
    let gmm = GaussianMixture::from_gaussian(g.clone());
    let den = gmm.denoiser(schedule);
    let counted = Counted::new(&den);
    let (t0, t1) = (
        grid.times()[0],
        *grid.times().last().expect("grid has times"),
    );
    let x = g
        .marginal(schedule, t0)
        .sample(n, &mut HostNoise::new(seed));
    let s = registry::build::<Array2<f64>>(solver)?;
    let mut noise =
        BrownianTree::with_default_tol(seed + 1, schedule.t_range().0, schedule.t_range().1)?;
    let out = sample(
        s.as_ref(),
        &counted,
        schedule,
        grid,
        x.clone(),
        &mut noise,
        &mut NoObserver,
    )?;
    let exact = g.pf_ode_flow(schedule, t0, t1, &x.view())?;
    Ok((out.lincomb(1.0, &exact, -1.0).rms(), counted.calls()))
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
    let counted = Counted::new(&den);
    let t0 = grid.times()[0];
    let scale = (schedule.alpha(t0).powi(2) + schedule.sigma(t0).powi(2)).sqrt();
    let x: Array2<f64> =
        HostNoise::new(seed).standard_normal(&Array2::<f64>::zeros((n, target.dim())));
    let s = registry::build::<Array2<f64>>(solver)?;
    let mut noise =
        BrownianTree::with_default_tol(seed + 1, schedule.t_range().0, schedule.t_range().1)?;
    let out = sample(
        s.as_ref(),
        &counted,
        schedule,
        grid,
        x.scale(scale),
        &mut noise,
        &mut NoObserver,
    )?;
    let exact = target.sample(n, &mut HostNoise::new(seed ^ 0x5eed));
    let exact2 = target.sample(n, &mut HostNoise::new(seed ^ 0xf100));
    let floor = sliced_w2(&exact2.view(), &exact.view(), 128, seed)?;
    Ok((
        sliced_w2(&out.view(), &exact.view(), 128, seed)?,
        counted.calls(),
        floor,
    ))
}
