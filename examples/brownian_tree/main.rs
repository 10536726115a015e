//! Virtual Brownian tree (Gaines & Lyons 1997, SIAM J. Appl. Math. 57(5); Li, Wong, Chen &
//! Duvenaud 2020, arXiv:2001.01328, Sec. 5): W(t) is a fixed function of (seed, t) built by
//! Brownian-bridge bisection, so increments queried on any grid, in any order, are consistent.
//! Metric: refinement consistency, the largest |W(a, c) - sum of the fine increments inside
//! [a, c]| when a coarse grid (8 intervals, queried backwards) is refined 16-fold (queried in a
//! shuffled order on a second tree of the same seed). Checks: normalized increments are standard
//! normal and uncorrelated between neighbouring intervals (z-scores), independent increments
//! would not be consistent, and Euler-Maruyama on the VP SDE converges strongly (order 1) along
//! the tree.

use anyhow::Result;
use clap::Parser;
use diffusion::core::schedule::VpLinear;
use diffusion::core::{BrownianPath, BrownianTree, HostNoise, IndependentIncrements};
use diffusion_examples::{max_abs, strong_order, Report};
use ndarray::Array1;

#[derive(Parser)]
struct Args {
    /// Coordinates per increment.
    #[arg(long, default_value_t = 4096)]
    coords: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// The largest coarse-vs-summed-fine discrepancy of `coarse` and `fine` paths on [0, 1]: 8 coarse
/// intervals queried from the last to the first, 128 fine intervals queried in a shuffled order.
fn refinement_error(
    coarse: &mut dyn BrownianPath<Array1<f64>>,
    fine: &mut dyn BrownianPath<Array1<f64>>,
    coords: usize,
    seed: u64,
) -> Result<(f64, Vec<Array1<f64>>)> {
    let like = Array1::<f64>::zeros(coords);
    let t = |i: usize, n: usize| i as f64 / n as f64;
    let mut big = vec![like.clone(); 8];
    for i in (0..8).rev() {
        big[i] = coarse.increment(t(i, 8), t(i + 1, 8), &like)?;
    }
    let mut order: Vec<usize> = (0..128).collect();
    let mut rng = HostNoise::new(seed);
    for i in (1..order.len()).rev() {
        let j = (rng.uniform() * (i + 1) as f64) as usize;
        order.swap(i, j.min(i));
    }
    let mut small = vec![like.clone(); 128];
    for &i in &order {
        small[i] = fine.increment(t(i, 128), t(i + 1, 128), &like)?;
    }
    let mut err: f64 = 0.0;
    for (i, b) in big.iter().enumerate() {
        let sum = small[16 * i..16 * (i + 1)]
            .iter()
            .fold(like.clone(), |acc, s| acc + s);
        err = err.max(max_abs(&(b - &sum)));
    }
    Ok((err, small))
}

fn main() -> Result<()> {
    let a = Args::parse();
    let mut t1 = BrownianTree::new(a.seed, 0.0, 1.0, 1e-6)?;
    let mut t2 = BrownianTree::new(a.seed, 0.0, 1.0, 1e-6)?;
    let (err, small) = refinement_error(&mut t1, &mut t2, a.coords, a.seed)?;
    // Normalized fine increments: variance 1 (z-score of the sample variance over all entries)
    // and zero correlation between neighbours.
    let dt: f64 = 1.0 / 128.0;
    let z: Vec<f64> = small
        .iter()
        .flat_map(|s| s.iter().map(|v| v / dt.sqrt()).collect::<Vec<_>>())
        .collect();
    let m = z.len() as f64;
    let var = z.iter().map(|v| v * v).sum::<f64>() / m;
    let z_var = (var - 1.0).abs() / (2.0 / m).sqrt();
    let c = a.coords;
    let pairs = (z.len() - c) as f64;
    let corr = (0..z.len() - c).map(|i| z[i] * z[i + c]).sum::<f64>() / pairs;
    let z_corr = corr.abs() * pairs.sqrt();
    // Power: independent increments are not consistent under refinement.
    let (err_indep, _) = refinement_error(
        &mut IndependentIncrements::seeded(a.seed),
        &mut IndependentIncrements::seeded(a.seed + 1),
        a.coords,
        a.seed,
    )?;
    let vp = VpLinear::default();
    let (_, slope) = strong_order(
        "euler-maruyama",
        &vp,
        (1.0, 0.01),
        &[16, 32, 64, 128],
        a.seed,
    )?;
    let mut r = Report::new("brownian_tree", "refinement_err", err, 0, 1e-12);
    r.info("coords", a.coords as f64)
        .check_max("variance_z", z_var, 5.0)
        .check_max("neighbour_corr_z", z_corr, 5.0)
        .check_min("independent_increments_err", err_indep, 0.5)
        .check_range("em_strong_order", slope, 0.7, 1.3);
    r.finish()
}
