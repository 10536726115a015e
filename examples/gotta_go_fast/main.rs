//! Gotta Go Fast (Jolicoeur-Martineau et al. 2021, arXiv:2105.14080, Algorithm 1): adaptive steps
//! for the reverse SDE from an Euler-Maruyama / improved-Euler pair sharing one Brownian
//! increment, accepted when the scaled difference is at most 1, then a final denoising step.
//! EDM (VE) SDE from sigma = 80 to 0.002, Gaussian target, `rtol = 0.2`. Metric: its NFE divided
//! by the NFE fixed-step Euler-Maruyama (uniform in t, then the same denoising step) needs to
//! reach the same W2 to the target; checks: its W2 (Gaussian fitted to the samples) and that
//! Euler-Maruyama with the same NFE is at least 10 times as far.
//!
//! Euler-Maruyama's W2 is that of its exact output law (probe rows, no sampling error), so it
//! reaches Gotta Go Fast's sampled W2 (which includes the sampling noise) no later than its
//! own sampled W2 would: the ratio is, if anything, unfavourable to Gotta Go Fast.

use anyhow::Result;
use clap::Parser;
use diffusion::core::metrics::gaussian_w2;
use diffusion::core::schedule::Edm;
use diffusion::core::{Counted, GaussianMixture, HostNoise, IndependentIncrements, TimeGrid};
use diffusion::solvers::adaptive::{gotta_go_fast, GottaGoFastOptions};
use diffusion_examples::{exact_law_w2, fitted_gaussian, gaussian_2d, Report};

#[derive(Parser)]
struct Args {
    /// Relative tolerance eps_rel.
    #[arg(long, default_value_t = 0.2)]
    rtol: f64,
    /// Samples.
    #[arg(long, default_value_t = 20000)]
    n: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// EDM's noise levels (sigma = t).
const T_MAX: f64 = 80.0;
const T_MIN: f64 = 0.002;

/// Exact-law W2 and NFE of Euler-Maruyama with `steps` uniform steps from `T_MAX` to `T_MIN`,
/// then the denoising step to t = 0.
fn euler_maruyama(edm: &Edm, steps: usize) -> Result<(f64, usize)> {
    let mut times = TimeGrid::uniform(T_MAX, T_MIN, steps)?.times().to_vec();
    times.push(0.0);
    Ok((
        exact_law_w2("euler-maruyama", edm, &TimeGrid::new(times)?)?,
        steps + 1,
    ))
}

fn main() -> Result<()> {
    let a = Args::parse();
    let edm = Edm::default();
    let g = gaussian_2d()?;
    let gmm = GaussianMixture::from_gaussian(g.clone());
    let den = gmm.denoiser(&edm);
    let counted = Counted::new(&den);
    let opts = GottaGoFastOptions {
        rtol: a.rtol,
        ..GottaGoFastOptions::default()
    };
    let start = g
        .marginal(&edm, T_MAX)
        .sample(a.n, &mut HostNoise::new(a.seed));
    let mut noise = IndependentIncrements::seeded(a.seed + 1);
    let (out, stats) = gotta_go_fast(&counted, &edm, T_MAX, T_MIN, start, &mut noise, &opts)?;
    let w = gaussian_w2(&fitted_gaussian(&out)?, &g);
    let floor = gaussian_w2(
        &fitted_gaussian(&g.sample(a.n, &mut HostNoise::new(a.seed + 2)))?,
        &g,
    );
    let nfe = stats.nfe;
    let (w_same, _) = euler_maruyama(&edm, nfe - 1)?;
    // The fewest Euler-Maruyama steps as close to the target: doubling, then bisection to 1/16
    // (its exact-law W2 falls monotonically with the steps here; the upper end is kept). Beyond 16x the search stops and the
    // ratio is reported as 1/16, above its true value.
    let (mut lo, mut hi) = (nfe - 1, nfe - 1);
    while euler_maruyama(&edm, hi)?.0 > w && hi < 16 * nfe {
        lo = hi;
        hi *= 2;
    }
    while 16 * (hi - lo) > hi {
        let mid = (lo + hi) / 2;
        if euler_maruyama(&edm, mid)?.0 > w {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let em_nfe = hi + 1;
    // Bound: measured 0.18 (seeds 1-3: 0.12-0.18).
    let mut r = Report::new(
        "gotta_go_fast",
        "nfe_over_em",
        nfe as f64 / em_nfe as f64,
        nfe,
        0.3,
    );
    r.info("em_nfe_same_w2", em_nfe as f64)
        .info("rtol", a.rtol)
        .info("floor", floor)
        .check_max("w2_fitted", w, 0.03)
        .check_min("em_same_nfe_over_ggf", w_same / w, 10.0)
        .info("acceptance", stats.acceptance_rate());
    r.finish()
}
