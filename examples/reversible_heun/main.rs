//! The algebraically reversible Heun method (Kidger et al. 2021, arXiv:2105.13493, Algorithms 1
//! and 2) on the reverse-time VP SDE: generate from noise to data along a Brownian tree, then walk
//! the same grid back along the same path. Metric: the relative round-trip error of the initial
//! noise (exact up to rounding); checks: the same round trip on the PF-ODE (`eta = 0`), plain
//! Heun inverted and sampled back on the same grid does not return (the reversibility is the
//! method's, not the grid's), strong order 1 along a Brownian tree and order 2 on the PF-ODE.

use anyhow::Result;
use clap::Parser;
use diffusion::core::schedule::VpLinear;
use diffusion::core::{
    BrownianTree, Counted, GaussianMixture, HostNoise, NoiseSchedule, State, TimeGrid,
};
use diffusion::solvers::invert;
use diffusion::solvers::registry;
use diffusion::solvers::sde::ReversibleHeun;
use diffusion_examples::{gaussian_2d, ode_order, rms_diff, solve_ode, strong_order, Report};
use ndarray::Array2;

#[derive(Parser)]
struct Args {
    /// Steps of the round trip.
    #[arg(long, default_value_t = 200)]
    steps: usize,
    /// Samples.
    #[arg(long, default_value_t = 256)]
    n: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Relative round-trip error and NFE of generate-then-invert with `eta` over `grid` from `x`.
fn round_trip(eta: f64, grid: &TimeGrid, x: &Array2<f64>, seed: u64) -> Result<(f64, usize)> {
    let vp = VpLinear::default();
    let gmm = GaussianMixture::from_gaussian(gaussian_2d()?);
    let den = gmm.denoiser(&vp);
    let counted = Counted::new(&den);
    let (lo, hi) = (grid.times()[grid.steps()], grid.times()[0]);
    let (lo, hi) = (lo.min(hi), lo.max(hi));
    let rh = ReversibleHeun::new(eta, 1.0)?;
    let mut tree = BrownianTree::new(seed, lo, hi, 1e-9)?;
    let end = rh.generate(&counted, &vp, grid, x.clone(), &mut tree)?;
    let nfe = counted.calls();
    let back = rh.invert(&counted, &vp, grid, end, &mut tree)?;
    Ok((rms_diff(&back.x, x) / x.rms(), nfe))
}

fn main() -> Result<()> {
    let a = Args::parse();
    let vp = VpLinear::default();
    let g = gaussian_2d()?;
    // Noise to data (sigma > 0 at both ends: the denoising step to 0 is not reversible).
    let down = TimeGrid::karras(&vp, 0.002, vp.noise_ratio(1.0), 7.0, a.steps, false)?;
    let z = g
        .marginal(&vp, 1.0)
        .sample(a.n, &mut HostNoise::new(a.seed));
    let (rel, nfe) = round_trip(1.0, &down, &z, a.seed + 1)?;
    // Data to noise on the PF-ODE, then back: reversible Heun against plain Heun, 20 steps.
    let t_min = vp.t_of_noise_ratio(0.002);
    let up = TimeGrid::log_snr_uniform(&vp, t_min, 1.0, 20)?;
    let x0 = g
        .marginal(&vp, t_min)
        .sample(a.n, &mut HostNoise::new(a.seed + 2));
    let (rel_ode, _) = round_trip(0.0, &up, &x0, a.seed + 3)?;
    let gmm = GaussianMixture::from_gaussian(g.clone());
    let den = gmm.denoiser(&vp);
    let heun = registry::build::<Array2<f64>>("heun")?;
    let noise = invert(heun.as_ref(), &den, &vp, &up, x0.clone())?;
    let heun_back = solve_ode(heun.as_ref(), &den, &vp, &up.reversed(), noise)?;
    let (_, strong) = strong_order(
        "reversible-heun",
        &vp,
        (1.0, 0.01),
        &[128, 256, 512, 1024],
        a.seed,
    )?;
    let (_, ode) = ode_order(
        "reversible-heun:eta=0",
        &vp,
        (1.0, 1e-3),
        &[16, 32, 64, 128],
        a.seed,
    )?;
    let mut r = Report::new("reversible_heun", "round_trip_rel_err", rel, nfe, 1e-10);
    r.text("schedule", &vp.name().replace(' ', ""))
        .info("steps", a.steps as f64)
        .check_max("ode_round_trip_rel_err", rel_ode, 1e-10)
        .check_min(
            "heun_round_trip_rel_err",
            rms_diff(&heun_back, &x0) / x0.rms(),
            1e-5,
        )
        .check_range("strong_order", strong, 0.7, 1.3)
        .check_range("ode_order", ode, 1.7, 2.3);
    r.finish()
}
