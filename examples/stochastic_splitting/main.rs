//! Stochastic splitting samplers of the reverse PSLD SDE (Pandey, Rudolph & Mandt 2024,
//! arXiv:2310.07894, Sec. 4): the reduced BAOAB (one score evaluation per step), the naive
//! BAOAB (two) and OBA (one), each built on the exact Ornstein-Uhlenbeck step of the process,
//! against Euler-Maruyama and SSCS at the same number of evaluations. PSLD defaults, Gaussian
//! data `N((1.5, -0.5), 0.5^2 I)` with its exact augmented score, exact samples of the augmented
//! marginal at t = 1, a quadratic grid to t = 1e-3, one virtual Brownian tree driving every
//! sampler. Metric: W2 between the Gaussian fitted to the reduced BAOAB's `x` samples and the
//! exact data marginal at 1e-3; check: Euler-Maruyama at the same NFE is at least twice as far.
//! Expected (seed 0, 10000 samples, 30 NFE): 0.021, about 2-3 s on 2 CPU cores.

use anyhow::Result;
use clap::Parser;
use diffusion::core::metrics::gaussian_w2;
use diffusion::core::process::Psld;
use diffusion::core::{BrownianTree, TimeGrid};
use diffusion::solvers::augmented::{sample_phase, PhaseSolver};
use diffusion::solvers::registry::build_phase;
use diffusion::solvers::NoObserver;
use diffusion_examples::psld_gaussian::{exact_samples, mean_rows, x_marginal, STD, T, T_END, Z};
use diffusion_examples::{fitted_gaussian, Report};
use ndarray::Array2;

#[derive(Parser)]
struct Args {
    /// Score evaluations per sampler (even).
    #[arg(long, default_value_t = 30)]
    nfe: usize,
    /// Samples.
    #[arg(long, default_value_t = 10000)]
    n: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> Result<()> {
    let a = Args::parse();
    let p = Psld::default();
    let mu = mean_rows(a.n);
    let score = |z: &Z, t: f64| p.gaussian_data_score(z, t, &mu, STD);
    let target = x_marginal(&p, T_END)?;
    let w2 = |spec: &str| -> Result<f64> {
        let solver: Box<dyn PhaseSolver<Array2<f64>>> = build_phase(spec)?;
        let grid = TimeGrid::quadratic(T, T_END, (a.nfe / solver.evals_per_step()).max(1))?;
        let z = exact_samples(&p, T, a.n, a.seed)?;
        let mut tree = BrownianTree::with_default_tol(a.seed + 1, 0.0, T)?;
        let out = sample_phase(
            solver.as_ref(),
            &score,
            &p,
            &grid,
            z,
            &mut tree,
            &mut NoObserver,
        )?;
        Ok(gaussian_w2(&fitted_gaussian(&out.x)?, &target))
    };
    let w_red = w2("reduced-baoab")?;
    let (w_baoab, w_oba) = (w2("baoab")?, w2("oba")?);
    let (w_em, w_sscs) = (w2("phase-euler-maruyama")?, w2("sscs")?);
    let floor = gaussian_w2(
        &fitted_gaussian(&exact_samples(&p, T_END, a.n, a.seed + 2)?.x)?,
        &target,
    );
    // Bounds: see README.md for the measured values.
    let mut r = Report::new("stochastic_splitting", "w2_fitted", w_red, a.nfe, 0.04);
    r.info("floor", floor)
        .text("process", "psld")
        .info("baoab_w2", w_baoab)
        .info("oba_w2", w_oba)
        .info("sscs_w2", w_sscs)
        .info("euler_maruyama_w2", w_em)
        .check_min("euler_maruyama_over_reduced_baoab", w_em / w_red, 2.0);
    r.finish()
}
