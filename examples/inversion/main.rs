//! Inversion (Song, Meng & Ermon 2021, arXiv:2010.02502, Sec. 4.3 and 5.4): a deterministic solver
//! run from data to noise on the reversed sampling grid (DDIM inversion for `ddim`), then sampled
//! back with the same solver and steps. VP SDE, t from 1e-3 to 1, exact marginal samples of a
//! Gaussian target at 1e-3. Metric: the relative round-trip error at `--steps`; checks: the
//! inversion itself converges to the exact PF-ODE flow at the solver's order, and the round trip
//! at least at that order (log-SNR grids, 16..128 steps).

use anyhow::Result;
use clap::Parser;
use diffusion::core::schedule::VpLinear;
use diffusion::core::{Counted, GaussianMixture, HostNoise, State, TimeGrid};
use diffusion::solvers::{invert, registry};
use diffusion_examples::{fitted_slope, gaussian_2d, rms_diff, solve_ode, Report};
use ndarray::Array2;

#[derive(Parser)]
struct Args {
    /// Deterministic solver (registry syntax).
    #[arg(long, default_value = "ddim")]
    solver: String,
    /// Steps each way.
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// Samples.
    #[arg(long, default_value_t = 256)]
    n: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

const T_MIN: f64 = 1e-3;

fn main() -> Result<()> {
    let a = Args::parse();
    let vp = VpLinear::default();
    let g = gaussian_2d()?;
    let gmm = GaussianMixture::from_gaussian(g.clone());
    let den = gmm.denoiser(&vp);
    let solver = registry::build::<Array2<f64>>(&a.solver)?;
    let x0 = g
        .marginal(&vp, T_MIN)
        .sample(a.n, &mut HostNoise::new(a.seed));
    let exact = g.pf_ode_flow(&vp, T_MIN, 1.0, &x0.view())?;
    // (inversion error relative to the exact flow, relative round-trip error, NFE both ways)
    // with `n` steps.
    let measure = |n: usize| -> Result<(f64, f64, usize)> {
        let up = TimeGrid::log_snr_uniform(&vp, T_MIN, 1.0, n)?;
        let counted = Counted::new(&den);
        let z = invert(solver.as_ref(), &counted, &vp, &up, x0.clone())?;
        let back = solve_ode(solver.as_ref(), &counted, &vp, &up.reversed(), z.clone())?;
        Ok((
            rms_diff(&z, &exact) / exact.rms(),
            rms_diff(&back, &x0) / x0.rms(),
            counted.calls(),
        ))
    };
    let (_, rel, nfe) = measure(a.steps)?;
    let ladder = [16, 32, 64, 128];
    let (flow, trip): (Vec<f64>, Vec<f64>) = ladder
        .iter()
        .map(|&n| measure(n).map(|(f, t, _)| (f, t)))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    let order = solver.order();
    // Bound: measured 0.055 for ddim at 50 steps.
    let mut r = Report::new("inversion", "round_trip_rel_err", rel, nfe, 0.08);
    r.text("solver", &a.solver)
        .info("steps", a.steps as f64)
        .info("declared_order", order)
        .check_range(
            "inversion_order",
            fitted_slope(&ladder, &flow),
            order - 0.35,
            order + 0.35,
        )
        .check_min(
            "round_trip_order",
            fitted_slope(&ladder, &trip),
            order - 0.3,
        );
    r.finish()
}
