//! `diffusion sample`: sample an analytic Gaussian-mixture target with its exact denoiser.

use super::progress::{bar, BarObserver};
use anyhow::{bail, Context, Result};
use clap::Args;
use diffusion::core::{
    schedule, BrownianPath, BrownianTree, Counted, GaussianMixture, HostNoise,
    IndependentIncrements, NoiseSchedule, NoiseSource, State, TimeGrid, TreeNoise,
};
use diffusion::io::{read_npy_2d, write_npy};
use diffusion::solvers::{registry, sample, Observer, Trajectory};
use ndarray::{Array2, Array3};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct SampleArgs {
    /// Target mixture as JSON: {"weights": [..], "means": [[..]], "covariances": [[[..]]]}.
    #[arg(long)]
    pub target: PathBuf,
    /// Forward process, `name:key=value,...` (see `diffusion solvers`).
    #[arg(long, default_value = "vp-linear")]
    pub schedule: String,
    /// Solver, `name:key=value,...` (see `diffusion solvers`).
    #[arg(long, default_value = "heun")]
    pub solver: String,
    /// Time grid, `name:key=value,...` (see `diffusion solvers`).
    #[arg(long, default_value = "karras")]
    pub grid: String,
    /// Number of solver steps.
    #[arg(long, default_value_t = 18)]
    pub steps: usize,
    /// Initial states x_T as an (n, d) .npy array (instead of --seed/--n).
    #[arg(long, conflicts_with = "n")]
    pub init: Option<PathBuf>,
    /// Seed of the initial noise and of the Brownian path.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Number of samples when drawing x_T ~ N(0, (alpha^2 + sigma^2) I) at the first grid time.
    #[arg(long, default_value_t = 1000)]
    pub n: usize,
    /// Brownian noise for stochastic solvers: `tree` (stable under step refinement) or
    /// `independent`, each on the default `FastNoise` streams; `tree-chacha` /
    /// `independent-chacha` draw from ChaCha20 streams instead (other numbers, same law, several
    /// times slower; the default before 2026-11-27). `tree-fast` / `independent-fast` are
    /// accepted as other names of `tree` / `independent`.
    #[arg(long, default_value = "tree")]
    pub noise: String,
    /// Output .npy of the samples, shape (n, d).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the whole trajectory, shape (steps + 1, n, d).
    #[arg(long)]
    pub trajectory: Option<PathBuf>,
    /// Print the number of model evaluations.
    #[arg(long)]
    pub nfe_report: bool,
    /// Write f32 instead of f64.
    #[arg(long)]
    pub f32: bool,
}

/// Draws `x_T ~ N(0, (alpha^2 + sigma^2) I)` at time `t`: the prior of every schedule here
/// (N(0, I) for VP and flows, about N(0, sigma_max^2 I) for EDM/VE).
pub fn prior(schedule: &dyn NoiseSchedule, t: f64, n: usize, dim: usize, seed: u64) -> Array2<f64> {
    let scale = (schedule.alpha(t).powi(2) + schedule.sigma(t).powi(2)).sqrt();
    let z: Array2<f64> = HostNoise::new(seed).standard_normal(&Array2::<f64>::zeros((n, dim)));
    z.scale(scale)
}

/// A Brownian path over the schedule's whole time range.
pub fn brownian(
    kind: &str,
    schedule: &dyn NoiseSchedule,
    seed: u64,
) -> Result<Box<dyn BrownianPath<Array2<f64>>>> {
    let (lo, hi) = schedule.t_range();
    // A different stream from the initial noise: seed + 1.
    let seed = seed.wrapping_add(1);
    let tree = |kind: TreeNoise| -> Result<Box<dyn BrownianPath<Array2<f64>>>> {
        Ok(Box::new(
            BrownianTree::with_default_tol(seed, lo, hi)?.with_noise(kind),
        ))
    };
    match kind {
        "tree" | "tree-fast" => tree(TreeNoise::Fast),
        "tree-chacha" => tree(TreeNoise::Host),
        "independent" | "independent-fast" => Ok(Box::new(IndependentIncrements::seeded(seed))),
        "independent-chacha" => Ok(Box::new(IndependentIncrements::seeded_chacha(seed))),
        other => bail!(
            "unknown --noise `{other}`; use `tree`, `independent`, `tree-chacha` or \
             `independent-chacha`"
        ),
    }
}

pub fn run(a: SampleArgs) -> Result<()> {
    let gmm = GaussianMixture::load(&a.target)
        .with_context(|| format!("reading --target {}", a.target.display()))?;
    let sch = schedule::build(&a.schedule)?;
    let solver = registry::build::<Array2<f64>>(&a.solver)?;
    let grid = TimeGrid::build(&a.grid, sch.as_ref(), a.steps)?;
    let t0 = grid.times()[0];
    let x = match &a.init {
        Some(p) => {
            let x = read_npy_2d(p)?;
            if x.ncols() != gmm.dim() {
                bail!(
                    "--init {} has {} columns but the target has dimension {}",
                    p.display(),
                    x.ncols(),
                    gmm.dim()
                );
            }
            x
        }
        None => {
            if a.n == 0 {
                bail!("--n must be at least 1");
            }
            prior(sch.as_ref(), t0, a.n, gmm.dim(), a.seed)
        }
    };
    let (n, d) = x.dim();
    let mut noise = brownian(&a.noise, sch.as_ref(), a.seed)?;
    let den = gmm.denoiser(sch.as_ref());
    let counted = Counted::new(&den);
    let pb = bar(grid.steps() as u64, &solver.name());
    let mut traj = Trajectory::default();
    let mut bar_obs = BarObserver(&pb);
    let mut both = |i: usize, t: f64, s: &Array2<f64>| {
        bar_obs.on_step(i, t, s);
        if a.trajectory.is_some() {
            traj.on_step(i, t, s);
        }
    };
    let out = sample(
        solver.as_ref(),
        &counted,
        sch.as_ref(),
        &grid,
        x,
        noise.as_mut(),
        &mut both,
    )?;
    pb.finish_and_clear();
    write_npy(&a.out, &out.into_dyn(), a.f32)?;
    if let Some(p) = &a.trajectory {
        let flat: Vec<f64> = traj.states.into_iter().flatten().collect();
        let arr =
            Array3::from_shape_vec((grid.steps() + 1, n, d), flat).context("trajectory shape")?;
        write_npy(p, &arr.into_dyn(), a.f32)?;
    }
    println!(
        "sampled n={n} d={d} solver={} schedule={} steps={} out={}",
        solver.name(),
        sch.name(),
        grid.steps(),
        a.out.display()
    );
    if a.nfe_report {
        println!("nfe={}", counted.calls());
    }
    Ok(())
}
