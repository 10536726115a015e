//! Accuracy per NFE of every registered solver, the Rust half of the side-by-side comparison
//! with the Python anchors (`cargo xtask bench`; the Python half is tools/bench/accuracy.py).
//!
//! `accuracy run` builds each target (a 2-D and a 64-D Gaussian mixture with full covariances,
//! see `diffusion_benches::gmm`), draws the initial noise, computes the exact PF-ODE solution
//! from `x = 80 z` by a fine RK4 solve (`diffusion_benches::reference`), and runs:
//!
//! - every deterministic solver of `registry::SOLVERS` (plus a few parameter variants) on the
//!   Karras and exponential grids (EDM schedule, sigma 80 -> 0.002, then 0) and on a grid
//!   uniform in time on VP-linear (from the time where sigma/alpha = 80 down to 0), at NFE
//!   budgets 5, 10, 20, 50 (the most steps whose NFE fits): RMS error to the exact solution;
//! - `dpm-solver` also on the log-SNR-uniform grid that stops at sigma = 0.002 (k-diffusion's
//!   `sample_dpm_fast`), against the exact solution there;
//! - every stochastic solver on the same three grids: sliced W2 to exact samples of the
//!   mixture, on common random numbers shared with the Python side (`diffusion_benches::noise`);
//! - `dpm-solver-adaptive` (80 -> 0.002) over a sweep of tolerances;
//! - `gotta-go-fast` (adaptive inside one interval 80 -> 0.002, then the denoiser's step to 0)
//!   over a sweep of tolerances, scored by sliced W2;
//! - a few deterministic solvers ([`GITS_SOLVERS`]) also on a grid fitted to the target by GITS
//!   (Chen et al. 2024, arXiv:2405.11326; `diffusion_solvers::schedule_opt::gits`): the
//!   dynamic-programming subset of a fine Karras candidate grid that minimises the solver's local
//!   error on [`N_PILOTS`] pilot trajectories drawn from a separate seed (never the evaluation
//!   noise), teacher Heun with sub-steps. The anchors have no such grid; it is the project's own
//!   capability applied to the same model, reported as grid `gits (fitted)`; and on a Karras
//!   grid whose rho is chosen (from 1.5 to 12 in steps of 0.5) by the least error on the same
//!   pilots against their exact solution, reported as grid `karras (rho fitted)`.
//!
//! With `--export DIR` it writes what the Python side needs to run the anchors on the very same
//! problem: the mixture, the initial noise, the exact solutions, the exact samples, the sliced-W2
//! directions and a denoiser check. `accuracy report` merges the JSON of both sides into the
//! markdown section of docs/results.md and the plots docs/accuracy_2d.png, docs/accuracy_64d.png.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use diffusion::core::schedule::{Edm, VpLinear};
use diffusion::core::{
    BrownianPath, Counted, Denoiser, GaussianMixture, HostNoise, NoiseSchedule, NoiseSource,
    TimeGrid,
};
use diffusion::solvers::schedule_opt::{dp_schedule, local_error_costs, StepCosts};
use diffusion::solvers::{registry, sample, NoObserver, Solver};
use diffusion_benches::gmm::{gmm2d, gmm_nd, FastGmm};
use diffusion_benches::noise::CounterNoise;
use diffusion_benches::reference::{directions, reference_flow, rms_error, sliced_w2, Flow};
use diffusion_benches::report::{
    accuracy_markdown, accuracy_plot, read_json, write_json, AccFile, AccRow, TargetMeta, NO_FIT,
};
use diffusion_benches::timing::{machine, today};
use diffusion_benches::HalfDenoiser;
use ndarray::{Array2, Axis, Slice};
use std::path::{Path, PathBuf};
use std::time::Instant;

const SIGMA_MAX: f64 = 80.0;
const SIGMA_MIN: f64 = 0.002;
/// Seed of the common random numbers (tools/bench/accuracy.py uses the same).
const NOISE_SEED: u64 = 21;
/// Deterministic solvers also run on a GITS-fitted grid.
const GITS_SOLVERS: [&str; 5] = ["euler", "heun", "dpmpp-2m", "deis:form=1", "unipc"];
/// Pilot trajectories for the GITS fit (seed [`PILOT_SEED`], separate from the evaluation noise).
const N_PILOTS: usize = 128;
/// Seed of the GITS pilots.
const PILOT_SEED: u64 = 31;
/// Steps of the fine Karras candidate grid GITS chooses from.
const GITS_CANDIDATES: usize = 60;

#[derive(Parser)]
#[command(about = "Accuracy per NFE of every registered solver (Rust half of `cargo xtask bench`)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the project's solvers and write JSON rows (and the inputs of the Python side).
    Run {
        /// Comma-separated targets: gmm2d, gmm64d.
        #[arg(long, default_value = "gmm2d,gmm64d")]
        targets: String,
        /// Comma-separated NFE budgets.
        #[arg(long, default_value = "5,10,20,50")]
        nfe: String,
        /// Points of the deterministic runs, per target (2-D, 64-D).
        #[arg(long, default_value = "2000,256")]
        n_ode: String,
        /// Points of the stochastic runs and exact samples, per target (2-D, 64-D).
        #[arg(long, default_value = "8000,2000")]
        n_sde: String,
        /// RK4 step of the reference solve in ln(sigma).
        #[arg(long, default_value_t = 0.02)]
        h: f64,
        /// Only solvers whose spec contains this text.
        #[arg(long)]
        only: Option<String>,
        /// Write the inputs of tools/bench/accuracy.py here (one folder per target).
        #[arg(long)]
        export: Option<PathBuf>,
        /// Output JSON file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Merge JSON files into a markdown section and one plot per target.
    Report {
        /// JSON files of `run` and of tools/bench/accuracy.py.
        #[arg(long = "json", required = true)]
        json: Vec<PathBuf>,
        /// Comma-separated NFE budgets (the table columns).
        #[arg(long, default_value = "5,10,20,50")]
        nfe: String,
        /// Markdown output.
        #[arg(long)]
        md: PathBuf,
        /// Folder for accuracy_2d.png / accuracy_64d.png.
        #[arg(long)]
        plot_dir: PathBuf,
    },
}

fn list<T: std::str::FromStr>(s: &str) -> Result<Vec<T>> {
    s.split(',')
        .map(|v| {
            v.trim()
                .parse::<T>()
                .map_err(|_| anyhow::anyhow!("bad list entry `{v}` in `{s}`"))
        })
        .collect()
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Run {
            targets,
            nfe,
            n_ode,
            n_sde,
            h,
            only,
            export,
            out,
        } => {
            let nfes: Vec<usize> = list(&nfe)?;
            let n_ode: Vec<usize> = list(&n_ode)?;
            let n_sde: Vec<usize> = list(&n_sde)?;
            let mut file = AccFile {
                about: "project solvers (ndarray f64) on the benchmark mixtures; benches/src/bin/accuracy.rs".into(),
                targets: Vec::new(),
                notes: vec![format!("date {}", today()), format!("machine {}", machine())],
                rows: Vec::new(),
            };
            for name in targets.split(',') {
                let (i, spec, label) = match name {
                    "gmm2d" => (
                        0,
                        gmm2d(),
                        "2-D mixture of 3 Gaussians (full covariances)".to_string(),
                    ),
                    "gmm64d" => (
                        1,
                        gmm_nd(64, 7),
                        "64-D mixture of 4 Gaussians (full-rank covariances, eigenvalues 0.02..1)"
                            .to_string(),
                    ),
                    other => bail!("unknown target `{other}` (gmm2d, gmm64d)"),
                };
                let ctx = Target::new(
                    name,
                    label,
                    spec,
                    n_ode[i.min(n_ode.len() - 1)],
                    n_sde[i.min(n_sde.len() - 1)],
                    h,
                )?;
                if let Some(dir) = &export {
                    ctx.export(&dir.join(name))?;
                }
                ctx.run_all(&nfes, only.as_deref(), &mut file.rows)?;
                file.targets.push(ctx.meta);
            }
            write_json(&out, &file)?;
            println!("wrote {}", out.display());
            Ok(())
        }
        Cmd::Report {
            json,
            nfe,
            md,
            plot_dir,
        } => {
            let nfes: Vec<usize> = list(&nfe)?;
            let mut rows = Vec::new();
            let mut metas: Vec<TargetMeta> = Vec::new();
            let mut notes = Vec::new();
            for p in &json {
                let f: AccFile = read_json(p)?;
                rows.extend(f.rows);
                metas.extend(f.targets);
                notes.extend(f.notes);
            }
            let mut text = diffusion_benches::report::accuracy_intro();
            for meta in &metas {
                let png = match meta.name.as_str() {
                    "gmm2d" => "accuracy_2d.png".to_string(),
                    "gmm64d" => "accuracy_64d.png".to_string(),
                    other => format!("accuracy_{other}.png"),
                };
                std::fs::create_dir_all(&plot_dir)?;
                accuracy_plot(&plot_dir.join(&png), meta, &rows)?;
                text.push_str(&accuracy_markdown(meta, &rows, &nfes, &png));
            }
            if !notes.is_empty() {
                text.push_str("Run notes: ");
                text.push_str(&notes.join("; "));
                text.push_str(".\n");
            }
            std::fs::write(&md, &text).with_context(|| format!("cannot write {}", md.display()))?;
            print!("{text}");
            Ok(())
        }
    }
}

/// The grids the project's solvers run on.
#[derive(Debug, Clone, Copy, PartialEq)]
enum GridKind {
    Karras,
    Exponential,
    UniformVp,
    LogSnrToMin,
}

impl GridKind {
    fn name(self) -> &'static str {
        match self {
            GridKind::Karras => "karras",
            GridKind::Exponential => "exponential",
            GridKind::UniformVp => "uniform (vp-linear)",
            GridKind::LogSnrToMin => "log-snr to 0.002",
        }
    }

    fn end_sigma(self) -> f64 {
        if self == GridKind::LogSnrToMin {
            SIGMA_MIN
        } else {
            0.0
        }
    }
}

struct Schedules {
    edm: Edm,
    vp: VpLinear,
}

impl Schedules {
    fn grid(&self, kind: GridKind, steps: usize) -> Result<(TimeGrid, &dyn NoiseSchedule)> {
        Ok(match kind {
            GridKind::Karras => (
                TimeGrid::karras(&self.edm, SIGMA_MIN, SIGMA_MAX, 7.0, steps, true)?,
                &self.edm,
            ),
            GridKind::Exponential => (
                TimeGrid::exponential(&self.edm, SIGMA_MIN, SIGMA_MAX, steps, true)?,
                &self.edm,
            ),
            GridKind::LogSnrToMin => (
                TimeGrid::exponential(&self.edm, SIGMA_MIN, SIGMA_MAX, steps, false)?,
                &self.edm,
            ),
            GridKind::UniformVp => (
                TimeGrid::uniform(self.vp.t_of_noise_ratio(SIGMA_MAX), 0.0, steps)?,
                &self.vp,
            ),
        })
    }
}

/// Runs `solver` over `grid` from `x` (EDM coordinates at sigma 80) and returns the final state
/// in EDM coordinates and the NFE.
fn run_once(
    solver: &dyn Solver<Array2<f64>>,
    den: &dyn Denoiser<Array2<f64>>,
    sched: &dyn NoiseSchedule,
    grid: &TimeGrid,
    x_edm: &Array2<f64>,
    noise: &mut dyn BrownianPath<Array2<f64>>,
) -> Result<(Array2<f64>, usize)> {
    let t = grid.times();
    let (t0, t1) = (t[0], t[t.len() - 1]);
    let counted = Counted::new(den);
    let x = x_edm * sched.alpha(t0);
    let out = sample(solver, &counted, sched, grid, x, noise, &mut NoObserver)?;
    Ok((out / sched.alpha(t1), counted.calls()))
}

struct Target {
    name: String,
    gmm: FastGmm,
    core: GaussianMixture,
    schedules: Schedules,
    x_ode: Array2<f64>,
    x_sde: Array2<f64>,
    x_pilot: Array2<f64>,
    pilot_flow: Flow,
    flow: Flow,
    exact: Array2<f64>,
    dirs: Array2<f64>,
    meta: TargetMeta,
}

impl Target {
    fn new(
        name: &str,
        label: String,
        spec: diffusion::core::target::GmmSpec,
        n_ode: usize,
        n_sde: usize,
        h: f64,
    ) -> Result<Self> {
        let t0 = Instant::now();
        let core = GaussianMixture::new(
            spec.weights.clone(),
            spec.means.clone(),
            spec.covariances.clone(),
        )?;
        let gmm = FastGmm::new(&spec);
        let d = gmm.dim();
        let schedules = Schedules {
            edm: Edm::default(),
            vp: VpLinear::default(),
        };
        let z_ode: Array2<f64> = HostNoise::new(11).standard_normal(&Array2::zeros((n_ode, d)));
        let z_sde: Array2<f64> = HostNoise::new(12).standard_normal(&Array2::zeros((n_sde, d)));
        let x_ode = z_ode * SIGMA_MAX;
        let x_sde = z_sde * SIGMA_MAX;
        let x_pilot: Array2<f64> =
            HostNoise::new(PILOT_SEED).standard_normal(&Array2::zeros((N_PILOTS, d))) * SIGMA_MAX;
        // The fast denoiser against the core's.
        let mut check = 0.0f64;
        let probe = x_ode
            .slice_axis(Axis(0), Slice::from(0..n_ode.min(64)))
            .to_owned()
            / SIGMA_MAX;
        for sigma in [0.003, 0.05, 0.7, 5.0, 60.0] {
            let x = &probe * (1.0 + sigma);
            let a = gmm.denoise(&x.view(), sigma);
            let b = core.denoise_t(&schedules.edm, sigma, &x.view())?;
            check = check.max((&a - &b).iter().fold(0.0f64, |m, v| m.max(v.abs())));
        }
        eprintln!("[{name}] denoiser check vs core GmmDenoiser: max |diff| = {check:.2e}");
        let flow = reference_flow(&gmm, &x_ode.view(), SIGMA_MAX, SIGMA_MIN, h);
        let pilot_flow = reference_flow(&gmm, &x_pilot.view(), SIGMA_MAX, SIGMA_MIN, h);
        eprintln!(
            "[{name}] reference flow: {} evaluations, error bound {:.2e} ({:.1} s)",
            flow.evals,
            flow.error_bound,
            t0.elapsed().as_secs_f64()
        );
        let exact = core.sample(n_sde, &mut HostNoise::new(13));
        let floor_set = core.sample(n_sde, &mut HostNoise::new(14));
        let n_proj = if d <= 2 { 64 } else { 256 };
        let dirs = directions(d, n_proj, 15);
        let floor = sliced_w2(&exact.view(), &floor_set.view(), &dirs.view());
        let meta = TargetMeta {
            name: name.into(),
            label,
            dim: d,
            n_ode,
            n_sde,
            n_proj,
            ref_h: h,
            ref_bound: flow.error_bound,
            denoiser_check: check,
            sw2_floor: floor,
        };
        Ok(Target {
            name: name.into(),
            gmm,
            core,
            schedules,
            x_ode,
            x_sde,
            x_pilot,
            pilot_flow,
            flow,
            exact,
            dirs,
            meta,
        })
    }

    fn export(&self, dir: &Path) -> Result<()> {
        use diffusion::io::write_npy;
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join("gmm.json"),
            serde_json::to_string(&self.core.to_spec())?,
        )?;
        let npy =
            |name: &str, a: &Array2<f64>| write_npy(&dir.join(name), &a.clone().into_dyn(), false);
        npy("x_ode.npy", &self.x_ode)?;
        npy("x_sde.npy", &self.x_sde)?;
        npy("ref_zero.npy", &self.flow.at_zero)?;
        npy("ref_sigma_min.npy", &self.flow.at_sigma_min)?;
        npy("exact.npy", &self.exact)?;
        npy("dirs.npy", &self.dirs)?;
        let cx = self
            .x_ode
            .slice_axis(Axis(0), Slice::from(0..self.x_ode.nrows().min(64)))
            .to_owned()
            / SIGMA_MAX
            * 1.7;
        npy("check_x.npy", &cx)?;
        npy("check_d.npy", &self.gmm.denoise(&cx.view(), 0.7))?;
        let (vp_grid, vp) = self.schedules.grid(GridKind::UniformVp, 10)?;
        let vp_sigmas: Vec<f64> = vp_grid.times().iter().map(|&t| vp.noise_ratio(t)).collect();
        write_json(
            &dir.join("meta.json"),
            &serde_json::json!({
                "target": self.name,
                "vp_uniform_sigmas_10": vp_sigmas,
                "sigma_max": SIGMA_MAX,
                "sigma_min": SIGMA_MIN,
                "check_sigma": 0.7,
                "meta": self.meta,
            }),
        )?;
        Ok(())
    }

    /// GITS's local-error table of `solver` over a fine Karras candidate grid (EDM sigma 80 -> 0),
    /// from the pilot trajectories (teacher: Heun with 8 sub-steps per candidate interval).
    fn gits_costs(
        &self,
        solver: &dyn Solver<Array2<f64>>,
        den: &dyn Denoiser<Array2<f64>>,
    ) -> Result<(TimeGrid, StepCosts)> {
        let edm = &self.schedules.edm;
        let candidates = TimeGrid::karras(edm, SIGMA_MIN, SIGMA_MAX, 7.0, GITS_CANDIDATES, true)?;
        let teacher = registry::build::<Array2<f64>>("heun")?;
        let costs = local_error_costs(
            solver,
            teacher.as_ref(),
            den,
            edm,
            &candidates,
            self.x_pilot.clone(),
            8,
        )?;
        Ok((candidates, costs))
    }

    /// `solver` on the Karras grid whose rho gives the least RMS error on the pilot trajectories
    /// (never the evaluation noise), evaluated on the evaluation states.
    fn rho_fitted_row(
        &self,
        solver: &dyn Solver<Array2<f64>>,
        spec: &str,
        den: &dyn Denoiser<Array2<f64>>,
        budget: usize,
    ) -> AccRow {
        let mut row = AccRow {
            target: self.name.clone(),
            side: "project".into(),
            solver: spec.into(),
            grid: "karras (rho fitted)".into(),
            kind: "ode".into(),
            nfe_target: budget,
            nfe: 0,
            steps: 0,
            end_sigma: 0.0,
            metric: "rms".into(),
            value: None,
            error: None,
            param: None,
        };
        let edm = &self.schedules.edm;
        let result = (|| -> Result<()> {
            let Some((steps, _)) = self.steps_for(solver, GridKind::Karras, budget)? else {
                bail!("{NO_FIT} {budget}");
            };
            let mut best = (f64::INFINITY, 7.0);
            for k in 3..=24 {
                let rho = 0.5 * k as f64;
                let grid = TimeGrid::karras(edm, SIGMA_MIN, SIGMA_MAX, rho, steps, true)?;
                let mut noise = CounterNoise::new(PILOT_SEED);
                let (out, _) = run_once(solver, den, edm, &grid, &self.x_pilot, &mut noise)?;
                let e = rms_error(&out.view(), &self.pilot_flow.at_zero.view());
                if e < best.0 {
                    best = (e, rho);
                }
            }
            let grid = TimeGrid::karras(edm, SIGMA_MIN, SIGMA_MAX, best.1, steps, true)?;
            let mut noise = CounterNoise::new(NOISE_SEED);
            let (out, nfe) = run_once(solver, den, edm, &grid, &self.x_ode, &mut noise)?;
            row.steps = steps;
            row.nfe = nfe;
            row.value = Some(rms_error(&out.view(), &self.flow.at_zero.view()));
            row.param = Some(format!("rho={}", best.1));
            Ok(())
        })();
        if let Err(e) = result {
            row.error = Some(format!("{e:#}"));
        }
        row
    }

    /// The most steps whose NFE fits `budget` (probed with a cheap denoiser on one point).
    fn steps_for(
        &self,
        solver: &dyn Solver<Array2<f64>>,
        kind: GridKind,
        budget: usize,
    ) -> Result<Option<(usize, usize)>> {
        let one = Array2::<f64>::zeros((1, self.gmm.dim()));
        for steps in (1..=budget).rev() {
            let (grid, sched) = self.schedules.grid(kind, steps)?;
            let (_, nfe) = run_once(
                solver,
                &HalfDenoiser,
                sched,
                &grid,
                &one,
                &mut CounterNoise::new(0),
            )?;
            if nfe <= budget {
                return Ok(Some((steps, nfe)));
            }
        }
        Ok(None)
    }

    fn run_all(&self, nfes: &[usize], only: Option<&str>, rows: &mut Vec<AccRow>) -> Result<()> {
        let keep = |s: &str| only.is_none_or(|o| s.contains(o));
        let mut ode: Vec<String> = Vec::new();
        let mut sde: Vec<String> = Vec::new();
        let mut adaptive: Vec<String> = Vec::new();
        let mut adaptive_sde: Vec<String> = Vec::new();
        for info in registry::SOLVERS {
            if info.name == "dpm-solver-adaptive" {
                adaptive.push(info.name.into());
            } else if info.name == "gotta-go-fast" {
                // Adaptive inside each grid interval: its cost follows its tolerances, not the
                // step count, so it gets a tolerance sweep over one interval (below).
                adaptive_sde.push(info.name.into());
            } else if info.stochastic {
                sde.push(info.name.into());
            } else {
                ode.push(info.name.into());
            }
        }
        ode.extend(
            [
                "dpm-solver:order=2",
                "unipc:order=3",
                "unipc:variant=1",
                "deis:form=1",
            ]
            .map(String::from),
        );
        sde.extend(["ddim:eta=1", "dpmpp-3m-sde:reference=1"].map(String::from));
        let grids = [GridKind::Karras, GridKind::Exponential, GridKind::UniformVp];
        let den = self.gmm.denoiser(&self.schedules.edm);
        let den_vp = self.gmm.denoiser(&self.schedules.vp);
        let t_all = Instant::now();
        for (kind, specs) in [("ode", &ode), ("sde", &sde)] {
            for spec in specs.iter().filter(|s| keep(s)) {
                let solver = registry::build::<Array2<f64>>(spec)?;
                let t0 = Instant::now();
                let mut my_grids: Vec<GridKind> = grids.to_vec();
                if spec == "dpm-solver" {
                    my_grids.push(GridKind::LogSnrToMin);
                }
                for g in my_grids {
                    for &budget in nfes {
                        let mut row = AccRow {
                            target: self.name.clone(),
                            side: "project".into(),
                            solver: spec.clone(),
                            grid: g.name().into(),
                            kind: kind.into(),
                            nfe_target: budget,
                            nfe: 0,
                            steps: 0,
                            end_sigma: g.end_sigma(),
                            metric: if kind == "ode" { "rms" } else { "sliced_w2" }.into(),
                            value: None,
                            error: None,
                            param: None,
                        };
                        let result = (|| -> Result<()> {
                            let Some((steps, _)) = self.steps_for(solver.as_ref(), g, budget)?
                            else {
                                bail!("{NO_FIT} {budget}");
                            };
                            let (grid, sched) = self.schedules.grid(g, steps)?;
                            let d: &dyn Denoiser<Array2<f64>> = if g == GridKind::UniformVp {
                                &den_vp
                            } else {
                                &den
                            };
                            let x = if kind == "ode" {
                                &self.x_ode
                            } else {
                                &self.x_sde
                            };
                            let mut noise = CounterNoise::new(NOISE_SEED);
                            let (out, nfe) =
                                run_once(solver.as_ref(), d, sched, &grid, x, &mut noise)?;
                            row.steps = steps;
                            row.nfe = nfe;
                            row.value = Some(if kind == "ode" {
                                let reference = if g.end_sigma() > 0.0 {
                                    &self.flow.at_sigma_min
                                } else {
                                    &self.flow.at_zero
                                };
                                rms_error(&out.view(), &reference.view())
                            } else {
                                sliced_w2(&out.view(), &self.exact.view(), &self.dirs.view())
                            });
                            Ok(())
                        })();
                        if let Err(e) = result {
                            row.error = Some(format!("{e:#}"));
                        }
                        rows.push(row);
                    }
                }
                let mine: Vec<String> = rows
                    .iter()
                    .filter(|r| r.target == self.name && &r.solver == spec && r.grid == "karras")
                    .map(|r| match r.value {
                        Some(v) => format!("{}:{v:.1e}", r.nfe),
                        None => "fail".into(),
                    })
                    .collect();
                eprintln!(
                    "[{}] {kind} {spec:22} karras {} ({:.1} s)",
                    self.name,
                    mine.join(" "),
                    t0.elapsed().as_secs_f64()
                );
            }
        }
        for spec in GITS_SOLVERS.iter().filter(|s| keep(s)) {
            let t0 = Instant::now();
            let solver = registry::build::<Array2<f64>>(spec)?;
            let fitted = self.gits_costs(solver.as_ref(), &den);
            for &budget in nfes {
                let mut row = AccRow {
                    target: self.name.clone(),
                    side: "project".into(),
                    solver: (*spec).into(),
                    grid: "gits (fitted)".into(),
                    kind: "ode".into(),
                    nfe_target: budget,
                    nfe: 0,
                    steps: 0,
                    end_sigma: 0.0,
                    metric: "rms".into(),
                    value: None,
                    error: None,
                    param: None,
                };
                let result = (|| -> Result<()> {
                    let (candidates, costs) =
                        fitted.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
                    // Same step count as on the Karras grid (the NFE of a step count does not
                    // depend on where the steps are).
                    let Some((steps, _)) =
                        self.steps_for(solver.as_ref(), GridKind::Karras, budget)?
                    else {
                        bail!("{NO_FIT} {budget}");
                    };
                    let (indices, _) = dp_schedule(costs, steps)?;
                    let grid =
                        TimeGrid::new(indices.iter().map(|&i| candidates.times()[i]).collect())?;
                    let mut noise = CounterNoise::new(NOISE_SEED);
                    let (out, nfe) = run_once(
                        solver.as_ref(),
                        &den,
                        &self.schedules.edm,
                        &grid,
                        &self.x_ode,
                        &mut noise,
                    )?;
                    row.steps = steps;
                    row.nfe = nfe;
                    row.value = Some(rms_error(&out.view(), &self.flow.at_zero.view()));
                    row.param = Some(format!(
                        "sigmas {}",
                        grid.times()
                            .iter()
                            .map(|t| format!("{t:.3}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ));
                    Ok(())
                })();
                if let Err(e) = result {
                    row.error = Some(format!("{e:#}"));
                }
                rows.push(row);
                rows.push(self.rho_fitted_row(solver.as_ref(), spec, &den, budget));
            }
            let mine: Vec<String> = rows
                .iter()
                .filter(|r| r.target == self.name && r.solver == *spec && r.grid.contains("fitted"))
                .map(|r| match r.value {
                    Some(v) => format!("{}:{}:{v:.1e}", r.grid, r.nfe),
                    None => format!("fail ({})", r.error.as_deref().unwrap_or("")),
                })
                .collect();
            eprintln!(
                "[{}] ode {spec:22} fitted grids {} ({:.1} s)",
                self.name,
                mine.join(" "),
                t0.elapsed().as_secs_f64()
            );
        }
        for spec in adaptive.iter().filter(|s| keep(s)) {
            for (rtol, atol) in [(0.05, 0.0078), (0.01, 1e-3), (1e-3, 1e-4), (1e-4, 1e-5)] {
                let full = format!("{spec}:rtol={rtol},atol={atol}");
                let mut row = AccRow {
                    target: self.name.clone(),
                    side: "project".into(),
                    solver: spec.clone(),
                    grid: "80 -> 0.002".into(),
                    kind: "adaptive".into(),
                    nfe_target: 0,
                    nfe: 0,
                    steps: 1,
                    end_sigma: SIGMA_MIN,
                    metric: "rms".into(),
                    value: None,
                    error: None,
                    param: Some(format!("rtol={rtol}, atol={atol}")),
                };
                let result = (|| -> Result<()> {
                    let solver = registry::build::<Array2<f64>>(&full)?;
                    let grid = TimeGrid::new(vec![SIGMA_MAX, SIGMA_MIN])?;
                    let (out, nfe) = run_once(
                        solver.as_ref(),
                        &den,
                        &self.schedules.edm,
                        &grid,
                        &self.x_ode,
                        &mut CounterNoise::new(NOISE_SEED),
                    )?;
                    row.nfe = nfe;
                    row.value = Some(rms_error(&out.view(), &self.flow.at_sigma_min.view()));
                    Ok(())
                })();
                if let Err(e) = result {
                    row.error = Some(format!("{e:#}"));
                }
                eprintln!(
                    "[{}] adaptive {full}: nfe {} err {:?}",
                    self.name, row.nfe, row.value
                );
                rows.push(row);
            }
        }
        for spec in adaptive_sde.iter().filter(|s| keep(s)) {
            for (rtol, atol) in [(0.1, 0.05), (0.05, 0.0078), (0.01, 0.0078), (0.01, 1e-3)] {
                let full = format!("{spec}:rtol={rtol},atol={atol}");
                let mut row = AccRow {
                    target: self.name.clone(),
                    side: "project".into(),
                    solver: spec.clone(),
                    grid: "80 -> 0.002 -> 0".into(),
                    kind: "adaptive-sde".into(),
                    nfe_target: 0,
                    nfe: 0,
                    steps: 2,
                    end_sigma: 0.0,
                    metric: "sliced_w2".into(),
                    value: None,
                    error: None,
                    param: Some(format!("rtol={rtol}, atol={atol}")),
                };
                let result = (|| -> Result<()> {
                    let solver = registry::build::<Array2<f64>>(&full)?;
                    // The adaptive interval 80 -> 0.002, then the denoiser's step to 0.
                    let grid = TimeGrid::new(vec![SIGMA_MAX, SIGMA_MIN, 0.0])?;
                    let (out, nfe) = run_once(
                        solver.as_ref(),
                        &den,
                        &self.schedules.edm,
                        &grid,
                        &self.x_sde,
                        &mut CounterNoise::new(NOISE_SEED),
                    )?;
                    row.nfe = nfe;
                    row.value = Some(sliced_w2(
                        &out.view(),
                        &self.exact.view(),
                        &self.dirs.view(),
                    ));
                    Ok(())
                })();
                if let Err(e) = result {
                    row.error = Some(format!("{e:#}"));
                }
                eprintln!(
                    "[{}] adaptive sde {full}: nfe {} sliced W2 {:?}",
                    self.name, row.nfe, row.value
                );
                rows.push(row);
            }
        }
        eprintln!(
            "[{}] all project runs: {:.1} s",
            self.name,
            t_all.elapsed().as_secs_f64()
        );
        Ok(())
    }
}
