//! Per-step time of the project's solvers, the Rust half of the side-by-side comparison with
//! the Python anchors (`cargo xtask bench`; the Python half is tools/bench/side_by_side.py).
//!
//! `side_by_side run` times whole sampling runs on the same setup as the Python script: states
//! `x = 80 z` of each shape (ndarray f64, one thread), the Karras grid (sigma 80 -> 0.002, rho 7,
//! then 0) on the EDM schedule, denoiser `half` (`x0_hat = 0.5 x`) or `gmm` (the exact denoiser
//! of the 2-D fixture mixture, 4096 x 2 only); per-step time = median run time / steps. It also
//! times one `a x + b y` over the state, into a new array and in place (the bandwidth floor; both
//! through the state's own run-time dispatched loops, the fastest this CPU has).
//! The stochastic solvers (`euler-ancestral`, `dpmpp-sde`, `dpmpp-2m-sde`, `dpmpp-3m-sde`) draw
//! independent normals from the default stream (`IndependentIncrements::seeded(1)`, `FastNoise`,
//! kernel level chosen at run time and printed at the start; the anchors get a seeded
//! independent-normals noise sampler / generator); `dpmpp-2m-sde/tree` uses the virtual Brownian
//! tree (default `FastNoise` node streams). `SOLVER/chacha` draws the same law from the ChaCha20
//! `HostNoise` streams instead (`IndependentIncrements::seeded_chacha(1)`; `.../tree/chacha`:
//! `TreeNoise::Host`), the default before 2026-11-27. The Python anchors have no such rows; the
//! table compares a `/chacha` row with their plain `SOLVER` row.
//!
//! `side_by_side report --json a.json --json b.json` prints the markdown table of all rows.

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use diffusion::core::noise_fast::Kernel;
use diffusion::core::schedule::Edm;
use diffusion::core::{
    BrownianPath, BrownianTree, Counted, Denoiser, FastNoise, HostNoise, IndependentIncrements,
    NoiseSource, State, TimeGrid, TreeNoise,
};
use diffusion::solvers::{registry, sample, NoObserver};
use diffusion_benches::floor;
use diffusion_benches::gmm::{gmm2d, FastGmm};
use diffusion_benches::report::{read_json, timing_markdown, write_json, TimingFile, TimingRow};
use diffusion_benches::timing::{machine, time_runs, today, Budget};
use diffusion_benches::HalfDenoiser;
use ndarray::{ArrayD, IxDyn};
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Per-step time of the project's solvers (Rust half of `cargo xtask bench`)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Time the solvers and write JSON rows.
    Run {
        /// Comma-separated shapes.
        #[arg(long, default_value = "4096x2,64x3x32x32")]
        shapes: String,
        /// Comma-separated solvers (`dpmpp-2m-sde/tree`: with the virtual Brownian tree;
        /// `SOLVER/chacha`: independent increments from the ChaCha20 `HostNoise` stream instead
        /// of the default `FastNoise`; `SOLVER/tree/chacha`: the tree with ChaCha20 node streams).
        #[arg(long, default_value = DEFAULT_SOLVERS)]
        solvers: String,
        /// Kernel level of the default `FastNoise` rows with independent increments (`detect`:
        /// the best this CPU has; `baseline`, `x86-64-v3`, `x86-64-v4`: forced, to compare
        /// levels; same numbers). The Brownian tree's node streams always run at the detected
        /// level.
        #[arg(long, default_value = "detect")]
        fast_kernel: String,
        /// Grid steps per sampling run.
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Seconds to spend on each configuration (at least `min_reps` runs).
        #[arg(long, default_value_t = 0.5)]
        min_time: f64,
        /// Fewest timed runs per configuration.
        #[arg(long, default_value_t = 5)]
        min_reps: usize,
        /// Most timed runs per configuration.
        #[arg(long, default_value_t = 2000)]
        max_reps: usize,
        /// Output JSON file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the markdown table of one or more JSON files.
    Report {
        /// JSON files written by `run` or tools/bench/side_by_side.py.
        #[arg(long = "json", required = true)]
        json: Vec<PathBuf>,
        /// Also write the table here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// The default solver rows: the deterministic ones, every stochastic one with an anchor
/// counterpart in its plain (default `FastNoise`) and `/chacha` (ChaCha20) form, and the
/// Brownian tree in both.
const DEFAULT_SOLVERS: &str = "euler,heun,dpmpp-2m,euler-ancestral,euler-ancestral/chacha,\
     dpmpp-sde,dpmpp-sde/chacha,dpmpp-2m-sde,dpmpp-2m-sde/chacha,dpmpp-3m-sde,dpmpp-3m-sde/chacha,\
     dpmpp-2m-sde/tree,dpmpp-2m-sde/tree/chacha";

/// A named denoiser of the timed runs.
type BoxedDenoiser<'a> = Box<dyn Denoiser<ArrayD<f64>> + 'a>;

fn parse_shape(s: &str) -> Result<Vec<usize>> {
    let v: std::result::Result<Vec<usize>, _> = s.split('x').map(str::parse).collect();
    match v {
        Ok(v) if !v.is_empty() && v.iter().all(|&d| d > 0) => Ok(v),
        _ => bail!("bad shape `{s}` (expected e.g. 4096x2)"),
    }
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Run {
            shapes,
            solvers,
            fast_kernel,
            steps,
            min_time,
            min_reps,
            max_reps,
            out,
        } => {
            let budget = Budget {
                min_time,
                min_reps,
                max_reps,
            };
            let kernel = match fast_kernel.as_str() {
                "detect" => Kernel::detect(),
                "baseline" => Kernel::Baseline,
                "x86-64-v3" => Kernel::X86V3,
                "x86-64-v4" => Kernel::X86V4,
                other => {
                    bail!("bad --fast-kernel `{other}` (detect, baseline, x86-64-v3 or x86-64-v4)")
                }
            };
            if !kernel.is_available() {
                bail!(
                    "--fast-kernel {fast_kernel}: {} is not available on this CPU",
                    kernel.name()
                );
            }
            let rows = run(&shapes, &solvers, kernel, steps, budget)?;
            write_json(
                &out,
                &TimingFile {
                    about: "project (ndarray f64, one thread), per-step time = median run time / steps; \
                            benches/src/bin/side_by_side.rs"
                        .into(),
                    threads: 1,
                    versions: None,
                    rows,
                },
            )?;
            println!("wrote {}", out.display());
            Ok(())
        }
        Cmd::Report { json, out } => {
            let mut rows = Vec::new();
            let mut versions = Vec::new();
            for p in &json {
                let f = read_json::<TimingFile>(p)?;
                if let Some(serde_json::Value::Object(v)) = &f.versions {
                    for k in ["torch", "k-diffusion", "diffusers"] {
                        if let Some(serde_json::Value::String(s)) = v.get(k) {
                            versions.push(format!("{k} {s}"));
                        }
                    }
                }
                rows.extend(f.rows);
            }
            let mut md = format!(
                "Measured {} on {} (one thread per side, float64{}). Per-step time = median time of \
                 a whole {}-step sampling run (Karras grid, sigma 80 -> 0.002 -> 0) / steps; `half` is \
                 the denoiser `x0_hat = 0.5 x`, `gmm` the exact 2-D mixture denoiser; the ratio is \
                 anchor / project (above 1: the project is faster).\n\n",
                today(),
                machine(),
                if versions.is_empty() { String::new() } else { format!("; {}", versions.join(", ")) },
                rows.iter().find(|r| r.denoiser != "-").map_or(10, |r| r.steps)
            );
            md.push_str(&timing_markdown(&rows));
            print!("{md}");
            if let Some(out) = out {
                std::fs::write(&out, &md)?;
            }
            Ok(())
        }
    }
}

fn run(
    shapes: &str,
    solvers: &str,
    kernel: Kernel,
    steps: usize,
    budget: Budget,
) -> Result<Vec<TimingRow>> {
    let edm = Edm::default();
    let grid = TimeGrid::karras(&edm, 0.002, 80.0, 7.0, steps, true)?;
    let gmm = FastGmm::new(&gmm2d());
    // Any stochastic row on the default stream draws from `FastNoise`: name its kernel.
    let mut on_fast_noise = false;
    for name in solvers.split(',').filter(|s| !s.ends_with("/chacha")) {
        let spec = name.trim_end_matches("/tree");
        on_fast_noise |= registry::build::<ArrayD<f64>>(spec)?.is_stochastic();
    }
    if on_fast_noise {
        println!(
            "  FastNoise kernel: {} (detected: {})",
            kernel.name(),
            Kernel::detect().name()
        );
    }
    let mut rows = Vec::new();
    let mut push_as = |imp: &str,
                       shape: &str,
                       solver: &str,
                       den: &str,
                       steps: usize,
                       nfe: usize,
                       t: (f64, usize)| {
        let row = TimingRow {
            implementation: imp.into(),
            shape: shape.into(),
            solver: solver.into(),
            denoiser: den.into(),
            steps,
            nfe,
            per_step_us: t.0 / steps as f64 * 1e6,
            reps: t.1,
        };
        println!(
            "  {imp:12} {shape:12} {den:5} {solver:20} {:10.2} us/step ({} runs)",
            row.per_step_us, row.reps
        );
        rows.push(row);
    };
    for shape_s in shapes.split(',') {
        let shape = parse_shape(shape_s)?;
        let zeros = ArrayD::<f64>::zeros(IxDyn(&shape));
        let mut noise = HostNoise::new(0);
        let x: ArrayD<f64> = noise.standard_normal(&zeros).scale(80.0);
        let y: ArrayD<f64> = noise.standard_normal(&zeros);
        push_as(
            "project",
            shape_s,
            "bare-axpby",
            "-",
            1,
            0,
            time_runs(budget, || (), |_| x.lincomb(0.7, &y, 0.2)),
        );
        let mut buf = y.clone();
        push_as(
            "project",
            shape_s,
            "bare-axpby-inplace",
            "-",
            1,
            0,
            time_runs(budget, || (), |_| buf.lincomb_assign(0.2, &x, 0.7)),
        );
        let mut dens: Vec<(&str, BoxedDenoiser<'_>)> = vec![("half", Box::new(HalfDenoiser))];
        if shape.len() == 2 && shape[1] == 2 {
            dens.push(("gmm", Box::new(gmm.denoiser(&edm))));
        }
        for (den_name, den) in &dens {
            for name in solvers.split(',') {
                let (rest, chacha) = match name.strip_suffix("/chacha") {
                    Some(r) => (r, true),
                    None => (name, false),
                };
                let (spec, tree) = match rest.strip_suffix("/tree") {
                    Some(r) => (r, true),
                    None => (rest, false),
                };
                let solver = registry::build::<ArrayD<f64>>(spec)?;
                let make_noise = || -> Box<dyn BrownianPath<ArrayD<f64>>> {
                    if tree {
                        let kind = if chacha {
                            TreeNoise::Host
                        } else {
                            TreeNoise::Fast
                        };
                        Box::new(
                            BrownianTree::with_default_tol(1, 0.0, 80.0)
                                .expect("tree")
                                .with_noise(kind),
                        )
                    } else if chacha {
                        Box::new(IndependentIncrements::seeded_chacha(1))
                    } else {
                        // The default stream, `IndependentIncrements::seeded(1)`, at the
                        // requested kernel level (same numbers at every level).
                        Box::new(IndependentIncrements::new(
                            FastNoise::new(1)
                                .with_kernel(kernel)
                                .expect("checked level"),
                        ))
                    }
                };
                let counted = Counted::new(den.as_ref());
                let mut nz = make_noise();
                let result = sample(
                    solver.as_ref(),
                    &counted,
                    &edm,
                    &grid,
                    x.dup(),
                    nz.as_mut(),
                    &mut NoObserver,
                )?;
                let nfe = counted.calls();
                let t = time_runs(
                    budget,
                    || (x.dup(), make_noise()),
                    |(x0, mut nz)| {
                        sample(
                            solver.as_ref(),
                            den.as_ref(),
                            &edm,
                            &grid,
                            x0,
                            nz.as_mut(),
                            &mut NoObserver,
                        )
                        .expect("sample")
                    },
                );
                push_as("project", shape_s, name, den_name, steps, nfe, t);
                if *den_name == "half" {
                    if let Some(t) = time_floor(name, &grid, &x, &result, kernel, budget)? {
                        push_as("hand-written", shape_s, name, den_name, steps, nfe, t);
                    }
                }
            }
        }
    }
    Ok(rows)
}

/// Times the hand-written loop of `solver` (benches/src/floor.rs) on the `half` denoiser, after
/// checking that it gives the registry solver's `result` to rounding; `None` for a solver that
/// has no hand-written loop.
fn time_floor(
    solver: &str,
    grid: &TimeGrid,
    x: &ArrayD<f64>,
    result: &ArrayD<f64>,
    kernel: Kernel,
    budget: Budget,
) -> Result<Option<(f64, usize)>> {
    let sigmas = grid.times();
    let fast = || {
        FastNoise::new(1)
            .with_kernel(kernel)
            .expect("checked level")
    };
    let run = |x: ArrayD<f64>| -> diffusion::core::Result<ArrayD<f64>> {
        match solver {
            "euler" => floor::euler(&HalfDenoiser, sigmas, x),
            "heun" => floor::heun(&HalfDenoiser, sigmas, x),
            "dpmpp-2m" => floor::dpmpp_2m(&HalfDenoiser, sigmas, x),
            "euler-ancestral" => floor::euler_ancestral(&HalfDenoiser, sigmas, x, &mut fast()),
            "dpmpp-2m-sde" => floor::dpmpp_2m_sde(&HalfDenoiser, sigmas, x, &mut fast()),
            _ => unreachable!("checked below"),
        }
    };
    if !matches!(
        solver,
        "euler" | "heun" | "dpmpp-2m" | "euler-ancestral" | "dpmpp-2m-sde"
    ) {
        return Ok(None);
    }
    let mine = run(x.dup())?;
    let scale = result
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(1e-300);
    let diff = mine
        .iter()
        .zip(result.iter())
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    // `f64::max` skips NaN, so a non-finite floor result is refused on its own.
    if !mine.iter().all(|v| v.is_finite()) || diff / scale > 1e-9 {
        bail!("the hand-written {solver} differs from the registry solver by {diff:e} (max |x| {scale:e})");
    }
    Ok(Some(time_runs(
        budget,
        || x.dup(),
        |x0| run(x0).expect("floor"),
    )))
}
