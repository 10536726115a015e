//! What both sides of `cargo xtask bench` write (JSON rows), and the tables and plots made from
//! them.
//!
//! The Python scripts in tools/bench/ write the same row shapes, so one renderer serves both.

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

// ------------------------------------------------------------------------------------------
// Per-step time

/// One timed configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimingRow {
    /// `project`, `k-diffusion`, `diffusers`, `torch` (bare loop), ...
    #[serde(rename = "impl")]
    pub implementation: String,
    /// State shape, e.g. `4096x2`.
    pub shape: String,
    /// Solver name (`bare-axpby` for the bandwidth loops).
    pub solver: String,
    /// `half`, `gmm` or `-`.
    pub denoiser: String,
    /// Grid steps per sampling run.
    pub steps: usize,
    /// Model evaluations per sampling run.
    pub nfe: usize,
    /// Median time of one run divided by `steps`, in microseconds.
    pub per_step_us: f64,
    /// Timed runs.
    pub reps: usize,
}

/// A file of timing rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimingFile {
    /// What produced it.
    pub about: String,
    /// Intra-op threads.
    #[serde(default)]
    pub threads: usize,
    /// Package versions (the Python side).
    #[serde(default)]
    pub versions: Option<serde_json::Value>,
    /// The rows.
    pub rows: Vec<TimingRow>,
}

/// Reads a JSON file.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("cannot parse {}", path.display()))
}

/// Writes a JSON file (creating its folder).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(value)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))
}

fn us(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} µs")
    } else if v >= 10.0 {
        format!("{v:.1} µs")
    } else {
        format!("{v:.2} µs")
    }
}

fn ratio(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}x")
    } else {
        format!("{v:.1}x")
    }
}

/// The project implementations that appear as columns, in order.
const PROJECT_IMPLS: &[&str] = &["project", "project-tch", "hand-written"];
/// The anchors, in column order.
const ANCHORS: &[&str] = &["k-diffusion", "diffusers"];

/// Suffix of the solver rows that draw from the ChaCha20 `HostNoise` streams (the plain rows of
/// a stochastic solver draw from the default `FastNoise` streams).
const CHACHA: &str = "/chacha";

/// The per-step table (markdown) and the verdict lines on the targets.
pub fn timing_markdown(rows: &[TimingRow]) -> String {
    let mut md = String::new();
    let find = |imp: &str, shape: &str, solver: &str, den: &str| {
        rows.iter().find(|r| {
            r.implementation == imp && r.shape == shape && r.solver == solver && r.denoiser == den
        })
    };
    let mut shapes: Vec<&str> = Vec::new();
    for r in rows {
        if !shapes.contains(&r.shape.as_str()) {
            shapes.push(&r.shape);
        }
    }
    let impls: Vec<&str> = PROJECT_IMPLS
        .iter()
        .copied()
        .filter(|i| rows.iter().any(|r| r.implementation == *i))
        .collect();
    let anchors: Vec<&str> = ANCHORS
        .iter()
        .copied()
        .filter(|i| rows.iter().any(|r| r.implementation == *i))
        .collect();
    let mut head = "| state | denoiser | solver | NFE |".to_string();
    let mut sep = "|---|---|---|---|".to_string();
    for i in &impls {
        let _ = write!(head, " {i} |");
        sep.push_str("---|");
    }
    for a in &anchors {
        let _ = write!(head, " {a} (ratio to project) |");
        sep.push_str("---|");
    }
    let _ = writeln!(md, "{head}\n{sep}");
    let mut small_ratios: Vec<(String, f64)> = Vec::new();
    let mut large_bare: Vec<(String, f64, f64)> = Vec::new();
    let mut large_floor: Vec<(String, f64)> = Vec::new();
    for shape in &shapes {
        let mut dens: Vec<&str> = Vec::new();
        let mut solvers: Vec<&str> = Vec::new();
        for r in rows
            .iter()
            .filter(|r| r.shape == *shape && r.denoiser != "-")
        {
            if !dens.contains(&r.denoiser.as_str()) {
                dens.push(&r.denoiser);
            }
            if !solvers.contains(&r.solver.as_str()) {
                solvers.push(&r.solver);
            }
        }
        for den in &dens {
            for solver in &solvers {
                let base = impls.iter().find_map(|i| find(i, shape, solver, den));
                let any = impls
                    .iter()
                    .chain(anchors.iter())
                    .find_map(|i| find(i, shape, solver, den));
                let Some(any) = any else { continue };
                let nfe = base.map_or(any.nfe, |b| b.nfe);
                let mut line = format!("| {shape} | {den} | {solver} | {nfe} |");
                for i in &impls {
                    match find(i, shape, solver, den) {
                        Some(r) => {
                            let _ = write!(line, " {} |", us(r.per_step_us));
                        }
                        None => line.push_str(" - |"),
                    }
                }
                for a in &anchors {
                    // A `/chacha` row (the project's ChaCha20 stream) is compared with the
                    // anchor's plain row of the same solver (the anchors have no such stream).
                    let anchor_row = find(a, shape, solver, den).or_else(|| {
                        solver
                            .strip_suffix(CHACHA)
                            .and_then(|plain| find(a, shape, plain, den))
                    });
                    match (anchor_row, base) {
                        (Some(r), Some(b)) => {
                            let q = r.per_step_us / b.per_step_us;
                            let _ = write!(line, " {} ({}) |", us(r.per_step_us), ratio(q));
                            if *den == "half" && shapes.first() == Some(shape) {
                                small_ratios.push((format!("{a} {solver}"), q));
                            }
                        }
                        (Some(r), None) => {
                            let _ = write!(line, " {} |", us(r.per_step_us));
                        }
                        _ => line.push_str(" - |"),
                    }
                }
                let _ = writeln!(md, "{line}");
                if *den == "half" && shapes.len() > 1 && shapes.last() == Some(shape) {
                    if let (Some(b), Some(bare), Some(inplace)) = (
                        find("project", shape, solver, den),
                        find("project", shape, "bare-axpby", "-"),
                        find("project", shape, "bare-axpby-inplace", "-"),
                    ) {
                        large_bare.push((
                            solver.to_string(),
                            b.per_step_us / bare.per_step_us,
                            b.per_step_us / inplace.per_step_us,
                        ));
                    }
                    if let (Some(b), Some(f)) = (
                        find("project", shape, solver, den),
                        find("hand-written", shape, solver, den),
                    ) {
                        large_floor.push((solver.to_string(), b.per_step_us / f.per_step_us));
                    }
                }
            }
        }
    }
    let _ = writeln!(md);
    if rows.iter().any(|r| r.solver.ends_with(CHACHA)) {
        let _ = writeln!(
            md,
            "Plain stochastic rows draw from the default `FastNoise` streams (xoshiro256++ lanes and \
             Box-Muller, run-time dispatched SIMD); `SOLVER{CHACHA}` rows draw the same law from \
             `HostNoise` (ChaCha20) streams instead (`IndependentIncrements::seeded_chacha`, \
             `TreeNoise::Host`; the default before 2026-11-27). Their anchor columns are the \
             anchors' plain `SOLVER` rows.\n"
        );
    }
    let _ = writeln!(md, "Bare loops (one `a x + b y` over the state; the memory-bandwidth floor of a linear combination):\n");
    let _ = writeln!(
        md,
        "| state | project, new array | project, in place | torch `x.mul(a).add_(y, alpha=b)` |"
    );
    let _ = writeln!(md, "|---|---|---|---|");
    for shape in &shapes {
        let cell = |imp: &str, s: &str| {
            find(imp, shape, s, "-").map_or("-".to_string(), |r| us(r.per_step_us))
        };
        let _ = writeln!(
            md,
            "| {shape} | {} | {} | {} |",
            cell("project", "bare-axpby"),
            cell("project", "bare-axpby-inplace"),
            cell("torch", "bare-axpby")
        );
    }
    let _ = writeln!(md);
    // The verdict is taken on the default streams; `/chacha` rows get a line of their own.
    type Ratios<'a> = Vec<&'a (String, f64)>;
    let (chacha, default): (Ratios<'_>, Ratios<'_>) =
        small_ratios.iter().partition(|(w, _)| w.ends_with(CHACHA));
    fn smallest<'a>(v: &[&'a (String, f64)]) -> Option<(&'a str, f64)> {
        v.iter()
            .map(|x| (x.0.as_str(), x.1))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }
    if let Some((what, q)) = smallest(&default) {
        let all: Vec<String> = default
            .iter()
            .map(|(w, q)| format!("{w} {}", ratio(*q)))
            .collect();
        let _ = writeln!(
            md,
            "- Target 1 (10x lower per-step overhead than the anchors on the small state, {}, denoiser `half`; \
             stochastic rows on the default `FastNoise` streams): **{}**. Smallest ratio anchor/project: {} ({what}). All: {}.",
            shapes[0],
            if q >= 10.0 { "met" } else { "not met" },
            ratio(q),
            all.join(", ")
        );
    }
    // The same reading where every solver that has a `/chacha` row is represented by it.
    if !chacha.is_empty() {
        let with_chacha: Vec<&str> = chacha
            .iter()
            .filter_map(|(w, _)| w.split(' ').nth(1)?.strip_suffix(CHACHA))
            .collect();
        let chosen: Vec<&(String, f64)> = small_ratios
            .iter()
            .filter(|(w, _)| {
                w.split(' ')
                    .nth(1)
                    .is_none_or(|s| !with_chacha.contains(&s))
            })
            .collect();
        if let Some((what, q)) = smallest(&chosen) {
            let _ = writeln!(
                md,
                "- The same reading on the ChaCha20 streams (each SDE solver, and the Brownian tree, \
                 by its `{CHACHA}` row): {}. Smallest ratio anchor/project: {} ({what}).",
                if q >= 10.0 { "10x reached" } else { "10x not reached" },
                ratio(q),
            );
        }
    }
    if !large_bare.is_empty() {
        let worst = large_bare.iter().map(|x| x.2).fold(0.0, f64::max);
        let all: Vec<String> = large_bare
            .iter()
            .map(|(s, a, b)| format!("{s} {} / {}", ratio(*b), ratio(*a)))
            .collect();
        let _ = writeln!(
            md,
            "- Target 2 (within 2x of a bare memory-bandwidth loop on the large state, {}): **{}**. \
             Project per-step time over one in-place / new-array `a x + b y`: {}.",
            shapes.last().map_or("", |s| s),
            if worst <= 2.0 { "met" } else { "not met" },
            all.join(", ")
        );
    }
    if !large_floor.is_empty() {
        let worst = large_floor.iter().map(|x| x.1).fold(0.0, f64::max);
        let all: Vec<String> = large_floor
            .iter()
            .map(|(s, q)| format!("{s} {}", ratio(*q)))
            .collect();
        let _ = writeln!(
            md,
            "- Target 2 read per solver (the `hand-written` column: the same steps with the same \
             denoiser written out by hand, one fused in-place pass per update through the same \
             dispatched loops, no checks, checked equal to the solver's result; \
             benches/src/floor.rs): **{}** for the solvers that have one. Project per-step time \
             over the hand-written loop's: {}.",
            if worst <= 2.0 { "met" } else { "not met" },
            all.join(", ")
        );
    }
    md
}

// ------------------------------------------------------------------------------------------
// Accuracy per NFE

/// One sampling run of the accuracy comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccRow {
    /// `gmm2d` or `gmm64d`.
    pub target: String,
    /// `project`, `k-diffusion` or `diffusers`.
    pub side: String,
    /// Solver (registry spec on the project side, function or class name on the anchors').
    pub solver: String,
    /// Grid name.
    pub grid: String,
    /// `ode` (error to the exact flow), `sde` (distance to the law) or `adaptive`.
    pub kind: String,
    /// The NFE budget this run was sized for (0 for adaptive runs).
    pub nfe_target: usize,
    /// Model evaluations actually spent.
    pub nfe: usize,
    /// Grid steps.
    pub steps: usize,
    /// Noise level the run ends at (0 or sigma_min).
    pub end_sigma: f64,
    /// `rms` or `sliced_w2`.
    pub metric: String,
    /// The error (absent when the run failed).
    pub value: Option<f64>,
    /// Why the run failed.
    #[serde(default)]
    pub error: Option<String>,
    /// Extra parameters (adaptive tolerances).
    #[serde(default)]
    pub param: Option<String>,
}

/// Facts about one target, written by the Rust side.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetMeta {
    /// `gmm2d` or `gmm64d`.
    pub name: String,
    /// Human description.
    pub label: String,
    /// Dimension.
    pub dim: usize,
    /// Points for the deterministic runs.
    pub n_ode: usize,
    /// Points for the stochastic runs (and exact samples).
    pub n_sde: usize,
    /// Sliced-W2 directions.
    pub n_proj: usize,
    /// Reference RK4 step in `ln sigma`.
    pub ref_h: f64,
    /// Bound on the reference's own error.
    pub ref_bound: f64,
    /// Largest difference between the fast denoiser and the core's `GmmDenoiser`.
    pub denoiser_check: f64,
    /// Sliced W2 between two independent exact sample sets of size `n_sde`.
    pub sw2_floor: f64,
}

/// A file of accuracy rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccFile {
    /// What produced it.
    pub about: String,
    /// Targets (the Rust side only).
    #[serde(default)]
    pub targets: Vec<TargetMeta>,
    /// Free-form notes (checks, versions).
    #[serde(default)]
    pub notes: Vec<String>,
    /// The runs.
    pub rows: Vec<AccRow>,
}

fn sci(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.2e}"),
        Some(_) => "inf".into(),
        None => "fail".into(),
    }
}

/// How a run's error starts when no step count of its solver fits the NFE budget.
pub const NO_FIT: &str = "no step count fits NFE";

/// `(side, solver) -> grid -> nfe_target -> row` for one target and kind.
type Table<'a> = BTreeMap<(String, String), BTreeMap<String, BTreeMap<usize, &'a AccRow>>>;

fn table<'a>(rows: &'a [AccRow], target: &str, kind: &str) -> Table<'a> {
    let mut t: Table<'a> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.target == target && r.kind == kind) {
        t.entry((r.side.clone(), r.solver.clone()))
            .or_default()
            .entry(r.grid.clone())
            .or_default()
            .insert(r.nfe_target, r);
    }
    t
}

fn side_rank(side: &str) -> usize {
    match side {
        "project" => 0,
        "k-diffusion" => 1,
        _ => 2,
    }
}

/// The grid of `(side, solver)` with the lowest error at `at_nfe` (then the lowest at any NFE).
fn best_grid<'a>(
    grids: &'a BTreeMap<String, BTreeMap<usize, &AccRow>>,
    at_nfe: usize,
) -> Option<&'a str> {
    let score = |m: &BTreeMap<usize, &AccRow>| {
        m.get(&at_nfe)
            .and_then(|r| r.value)
            .or_else(|| m.values().filter_map(|r| r.value).reduce(f64::min))
            .filter(|v| v.is_finite())
            .unwrap_or(f64::INFINITY)
    };
    grids
        .iter()
        .min_by(|a, b| score(a.1).total_cmp(&score(b.1)))
        .map(|(g, _)| g.as_str())
}

fn cell(r: Option<&&AccRow>) -> String {
    match r {
        None => "-".into(),
        // A solver whose smallest step count costs more than the budget has no run there.
        Some(r)
            if r.value.is_none() && r.error.as_deref().is_some_and(|e| e.starts_with(NO_FIT)) =>
        {
            "over budget".into()
        }
        Some(r) => {
            let v = sci(r.value);
            if r.value.is_some() && r.nfe != r.nfe_target {
                format!("{v} ({})", r.nfe)
            } else {
                v
            }
        }
    }
}

fn md_rows(md: &mut String, t: &Table<'_>, nfes: &[usize], all_grids: bool) {
    let mut keys: Vec<&(String, String)> = t.keys().collect();
    let at = nfes
        .iter()
        .copied()
        .find(|&n| n == 10)
        .unwrap_or(nfes[nfes.len() / 2]);
    let key_val = |k: &(String, String)| {
        let grids = &t[k];
        best_grid(grids, at)
            .and_then(|g| grids[g].get(&at).and_then(|r| r.value))
            .unwrap_or(f64::INFINITY)
    };
    keys.sort_by(|a, b| {
        side_rank(&a.0)
            .cmp(&side_rank(&b.0))
            .then(key_val(a).total_cmp(&key_val(b)))
    });
    let mut head = "| side | solver | grid |".to_string();
    let mut sep = "|---|---|---|".to_string();
    for n in nfes {
        let _ = write!(head, " NFE {n} |");
        sep.push_str("---|");
    }
    let _ = writeln!(md, "{head}\n{sep}");
    for k in keys {
        let grids = &t[k];
        let chosen: Vec<&str> = if all_grids {
            grids.keys().map(|g| g.as_str()).collect()
        } else {
            best_grid(grids, at).into_iter().collect()
        };
        for g in chosen {
            let m = &grids[g];
            let mut line = format!("| {} | {} | {g} |", k.0, k.1);
            for n in nfes {
                let _ = write!(line, " {} |", cell(m.get(n)));
            }
            let _ = writeln!(md, "{line}");
        }
    }
}

/// The best `(value, side, solver, grid)` at `nfe` among rows of `sides` (ODE or SDE kind).
fn best_at<'a>(
    rows: &'a [AccRow],
    target: &str,
    kind: &str,
    nfe: usize,
    project: bool,
) -> Option<&'a AccRow> {
    rows.iter()
        .filter(|r| r.target == target && r.kind == kind && r.nfe_target == nfe)
        .filter(|r| (r.side == "project") == project)
        .filter(|r| r.value.is_some_and(f64::is_finite))
        .min_by(|a, b| a.value.unwrap().total_cmp(&b.value.unwrap()))
}

/// Project solvers and the anchors' implementations of the same algorithm: with the same grid,
/// initial state, denoiser and noise they must give the same numbers.
const SAME_ALGORITHM: &[(&str, &str, &str)] = &[
    ("euler", "k-diffusion", "euler"),
    ("heun", "k-diffusion", "heun"),
    ("dpm2", "k-diffusion", "dpm_2"),
    ("lms", "k-diffusion", "lms"),
    ("dpmpp-2m", "k-diffusion", "dpmpp_2m"),
    ("euler-ancestral", "k-diffusion", "euler_ancestral"),
    ("dpmpp-2s-ancestral", "k-diffusion", "dpmpp_2s_ancestral"),
    ("dpmpp-sde", "k-diffusion", "dpmpp_sde"),
    ("dpmpp-2m-sde", "k-diffusion", "dpmpp_2m_sde"),
    ("dpmpp-3m-sde:reference=1", "k-diffusion", "dpmpp_3m_sde"),
    ("euler", "diffusers", "EulerDiscrete"),
    ("heun", "diffusers", "HeunDiscrete"),
    ("dpm2", "diffusers", "KDPM2Discrete"),
    ("lms", "diffusers", "LMSDiscrete"),
    ("dpmpp-2m", "diffusers", "DPMSolverMultistep(2M)"),
    ("dpmpp-2m-sde", "diffusers", "DPMSolverMultistep(2M SDE)"),
];

/// One line per pair of [`SAME_ALGORITHM`] with results: the largest relative difference of the
/// errors over the runs both sides made on the Karras and exponential grids.
fn cross_check(rows: &[AccRow], target: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (ours, side, theirs) in SAME_ALGORITHM {
        let mut worst = 0.0f64;
        let mut n = 0;
        for a in rows
            .iter()
            .filter(|r| r.target == target && r.side == "project" && r.solver == *ours)
        {
            // On the uniform grid the project runs on VP-linear time, where dpmpp-sde's Brownian
            // path is indexed by that time (the anchors index it by sigma), and diffusers rounds
            // the grid to its table: both legitimately differ, so only the EDM grids are compared.
            if a.grid != "karras" && a.grid != "exponential" {
                continue;
            }
            let b = rows.iter().find(|b| {
                b.target == target
                    && b.side == *side
                    && b.solver == *theirs
                    && b.grid == a.grid
                    && b.nfe_target == a.nfe_target
            });
            if let (Some(b), Some(va)) = (b, a.value) {
                if let Some(vb) = b.value {
                    worst = worst.max((va - vb).abs() / va.abs().max(vb.abs()).max(1e-300));
                    n += 1;
                }
            }
        }
        if n > 0 {
            out.push(format!(
                "{ours} = {side} {theirs}: {worst:.0e} over {n} runs"
            ));
        }
    }
    out
}

/// The explanation that opens the accuracy section.
pub fn accuracy_intro() -> String {
    "Every run starts at noise level 80 from the same state `x = 80 z` and ends at 0 (the data), \
     with the exact denoiser of the target. Grids: `karras` (rho 7) and `exponential` (log-uniform, \
     that is uniform in log-SNR) from 80 to 0.002, then 0, on the EDM schedule; `uniform (vp-linear)`: \
     uniform in VP-linear time from the time where sigma/alpha = 80 down to 0. Project: every solver of \
     `registry::SOLVERS` with its default parameters, plus `dpm-solver:order=2`, `unipc:order=3`, \
     `unipc:variant=1`, `ddim:eta=1` and `dpmpp-3m-sde:reference=1`; and `euler`, `heun`, `dpmpp-2m`, \
     `deis:form=1`, `unipc` also on two grids fitted to the target on 128 pilot trajectories of another \
     seed (never the evaluation noise): `gits (fitted)` (GITS dynamic programming over 60 Karras \
     candidates, Heun teacher) and `karras (rho fitted)` (rho in 1.5..12 with the least pilot error). \
     k-diffusion: the `sample_*` \
     functions on the same sigma lists (`sample_dpm_fast` on the log-SNR grid that stops at 0.002, \
     compared with the exact solution there). diffusers: the schedulers on two `trained_betas` tables, \
     one with log-uniform noise levels 0.002..80 (so `use_karras_sigmas` / `use_exponential_sigmas` \
     give the same Karras / exponential grids), one sampling VP-linear up to sigma 80 (so `trailing` \
     spacing is the uniform grid, rounded to table entries), run in float64, with the model evaluated \
     at the noise level the scheduler itself uses. An NFE budget gets the most steps whose NFE fits. \
     Deterministic solvers are scored by the RMS error (per coordinate) to the exact PF-ODE solution, \
     stochastic ones by the sliced W2 distance to exact samples, on common random numbers: call k of \
     every stochastic run draws the same normals on both sides (benches/src/noise.rs, tools/anchors.py), \
     so the same algorithm gives the same number, and the remaining differences are the algorithms'.\n\n"
        .to_string()
}

/// The table of a tolerance sweep (rows of `kind` for `target`), under `title`, if any.
fn tolerance_table(
    md: &mut String,
    rows: &[AccRow],
    target: &str,
    kind: &str,
    title: &str,
    metric: &str,
) {
    let mine: Vec<&AccRow> = rows
        .iter()
        .filter(|r| r.target == target && r.kind == kind)
        .collect();
    if mine.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n{title}:\n");
    let _ = writeln!(
        md,
        "| side | solver | tolerances | NFE | {metric} |\n|---|---|---|---|---|"
    );
    for r in mine {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            r.side,
            r.solver,
            r.param.as_deref().unwrap_or(""),
            r.nfe,
            sci(r.value)
        );
    }
}

/// The accuracy section for one target (markdown).
pub fn accuracy_markdown(
    meta: &TargetMeta,
    rows: &[AccRow],
    nfes: &[usize],
    plot_name: &str,
) -> String {
    let mut md = String::new();
    let target = meta.name.as_str();
    let _ = writeln!(md, "#### {}\n", meta.label);
    let _ = writeln!(
        md,
        "Deterministic runs start from `x = 80 z` ({} points), stochastic runs from another `80 z` ({} points). \
         Reference: RK4 in `ln sigma` (h = {}) with Richardson extrapolation, error bound {:.1e}; the fast \
         denoiser matches the core's `GmmDenoiser` to {:.1e}. Sliced W2 uses {} directions; its noise floor \
         (two independent exact sample sets of {} points) is {:.3e}.\n",
        meta.n_ode, meta.n_sde, meta.ref_h, meta.ref_bound, meta.denoiser_check, meta.n_proj, meta.n_sde, meta.sw2_floor
    );
    let ode = table(rows, target, "ode");
    let sde = table(rows, target, "sde");
    let _ = writeln!(
        md,
        "Deterministic solvers: RMS error (per coordinate) to the exact PF-ODE solution; each solver on its best grid \
         at NFE 10 (a cell shows the NFE actually spent when it is below the budget):\n"
    );
    md_rows(&mut md, &ode, nfes, false);
    let _ = writeln!(
        md,
        "\nStochastic solvers: sliced W2 to exact samples of the mixture (floor {:.3e}):\n",
        meta.sw2_floor
    );
    md_rows(&mut md, &sde, nfes, false);
    tolerance_table(
        &mut md,
        rows,
        target,
        "adaptive",
        "Adaptive step size (DPM-Solver-23, 80 -> 0.002; error to the exact flow at sigma = 0.002)",
        "RMS error",
    );
    tolerance_table(
        &mut md,
        rows,
        target,
        "adaptive-sde",
        &format!(
            "Adaptive SDE solver (Gotta Go Fast inside one interval 80 -> 0.002, then the denoiser's \
             step to 0; sliced W2 to exact samples, floor {:.3e}; its cost follows the tolerances, \
             not a step count, so it has no row in the NFE table)",
            meta.sw2_floor
        ),
        "sliced W2",
    );
    let _ = writeln!(md);
    for (kind, what) in [
        ("ode", "deterministic, RMS error to the exact flow"),
        ("sde", "stochastic, sliced W2"),
    ] {
        let p = best_at(rows, target, kind, 10, true);
        let a = best_at(rows, target, kind, 10, false);
        match (p, a) {
            (Some(p), Some(a)) => {
                let (pv, av) = (p.value.unwrap(), a.value.unwrap());
                let _ = writeln!(
                    md,
                    "- NFE 10, {what}: best project {} on {} = {:.2e}; best anchor {} {} on {} = {:.2e} \
                     (anchor / project = {:.2}): **{}**.",
                    p.solver,
                    p.grid,
                    pv,
                    a.side,
                    a.solver,
                    a.grid,
                    av,
                    av / pv,
                    if kind == "sde" && (av - pv).abs() < 0.25 * meta.sw2_floor {
                        "tie: the difference is below a quarter of the sliced-W2 noise floor"
                    } else if (av - pv).abs() <= 1e-3 * av.max(pv) {
                        // The same algorithm on both sides agrees to ~1e-12 (the "same
                        // algorithm, same numbers" line); no winner at rounding level.
                        "tie: equal to 0.1%"
                    } else if pv < av {
                        "project better"
                    } else {
                        "anchor better or equal"
                    }
                );
            }
            (Some(p), None) => {
                let _ = writeln!(
                    md,
                    "- NFE 10, {what}: best project {} on {} = {:.2e} (no anchor results).",
                    p.solver,
                    p.grid,
                    p.value.unwrap()
                );
            }
            _ => {}
        }
    }
    let checks = cross_check(rows, target);
    if !checks.is_empty() {
        let _ = writeln!(
            md,
            "- Same algorithm, same numbers (largest relative difference of the errors, project vs anchor, \
             Karras and exponential grids): {}.",
            checks.join("; ")
        );
    }
    let _ = writeln!(md, "\n![error vs NFE]({plot_name})\n");
    let _ = writeln!(
        md,
        "<details><summary>Every solver on every grid ({})</summary>\n",
        meta.label
    );
    let _ = writeln!(md, "Deterministic (RMS error to the exact flow):\n");
    md_rows(&mut md, &ode, nfes, true);
    let _ = writeln!(md, "\nStochastic (sliced W2):\n");
    md_rows(&mut md, &sde, nfes, true);
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r.target == target && r.value.is_none())
        .map(|r| {
            format!(
                "{} {} on {} (NFE {}): {}",
                r.side,
                r.solver,
                r.grid,
                r.nfe_target,
                r.error.as_deref().unwrap_or("?")
            )
        })
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(md, "\nFailed runs:\n");
        for f in failed {
            let _ = writeln!(md, "- {f}");
        }
    }
    let _ = writeln!(md, "\n</details>\n");
    md
}

const PALETTE: &[(u8, u8, u8)] = &[
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
    (0, 0, 128),
    (128, 0, 0),
    (0, 128, 128),
    (255, 0, 255),
    (85, 107, 47),
    (255, 165, 0),
    (70, 130, 180),
    (0, 0, 0),
];

/// One line of a plot: `(label, project?, points)`.
type Line = (String, bool, Vec<(f64, f64)>);

fn lines_for(rows: &[AccRow], target: &str, kind: &str) -> Vec<Line> {
    let t = table(rows, target, kind);
    let mut out = Vec::new();
    let mut keys: Vec<&(String, String)> = t.keys().collect();
    keys.sort_by(|a, b| side_rank(&a.0).cmp(&side_rank(&b.0)).then(a.1.cmp(&b.1)));
    for k in keys {
        let grids = &t[k];
        let Some(g) = best_grid(grids, 10) else {
            continue;
        };
        let mut pts: Vec<(f64, f64)> = grids[g]
            .values()
            .filter_map(|r| {
                r.value
                    .filter(|v| v.is_finite() && *v > 0.0)
                    .map(|v| (r.nfe as f64, v))
            })
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        if pts.is_empty() {
            continue;
        }
        let label = if k.0 == "project" {
            format!("{} [{g}]", k.1)
        } else {
            format!("{}: {} [{g}]", k.0, k.1)
        };
        out.push((label, k.0 == "project", pts));
    }
    out
}

/// Error-vs-NFE plot (log-log) for one target: deterministic solvers left, stochastic right;
/// one line per solver on its best grid at NFE 10; project solid, anchors dashed.
pub fn accuracy_plot(path: &Path, meta: &TargetMeta, rows: &[AccRow]) -> Result<()> {
    let text = diffusion::plot::fonts_available();
    let root = BitMapBackend::new(path, (2400, 1000)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("plot: {e}"))?;
    let panels = root.split_evenly((1, 2));
    let e = |e: DrawingAreaErrorKind<_>| anyhow!("plot: {e:?}");
    for (area, kind, ylabel) in [
        (&panels[0], "ode", "RMS error to the exact PF-ODE solution"),
        (&panels[1], "sde", "sliced W2 to the target"),
    ] {
        let lines = lines_for(rows, &meta.name, kind);
        if lines.is_empty() {
            continue;
        }
        let (chart_area, legend_area) = area.split_horizontally(700);
        let ys: Vec<f64> = lines.iter().flat_map(|l| l.2.iter().map(|p| p.1)).collect();
        let ymin = ys.iter().copied().fold(f64::INFINITY, f64::min) * 0.5;
        let ymax = ys.iter().copied().fold(0.0, f64::max) * 2.0;
        let mut builder = ChartBuilder::on(&chart_area);
        builder.margin(12);
        if text {
            builder
                .caption(
                    format!(
                        "{}-D mixture, {} solvers",
                        meta.dim,
                        if kind == "ode" {
                            "deterministic"
                        } else {
                            "stochastic"
                        }
                    ),
                    ("sans-serif", 20),
                )
                .x_label_area_size(40)
                .y_label_area_size(70);
        }
        let mut chart = builder
            .build_cartesian_2d((4.0f64..60.0).log_scale(), (ymin..ymax).log_scale())
            .map_err(e)?;
        if text {
            chart
                .configure_mesh()
                .x_desc("NFE")
                .y_desc(ylabel)
                .y_label_formatter(&|v| format!("{v:.0e}"))
                .x_label_formatter(&|v| format!("{v:.0}"))
                .draw()
                .map_err(e)?;
        }
        if kind == "sde" && meta.sw2_floor > ymin {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(4.0, meta.sw2_floor), (60.0, meta.sw2_floor)],
                    3,
                    3,
                    BLACK.mix(0.5).stroke_width(1),
                ))
                .map_err(e)?;
        }
        for (i, (_, project, pts)) in lines.iter().enumerate() {
            let (r, g, b) = PALETTE[i % PALETTE.len()];
            let color = RGBColor(r, g, b);
            let style = color.stroke_width(if *project { 3 } else { 2 });
            if *project {
                chart
                    .draw_series(LineSeries::new(pts.clone(), style))
                    .map_err(e)?;
                chart
                    .draw_series(pts.iter().map(|p| Circle::new(*p, 4, color.filled())))
                    .map_err(e)?;
            } else {
                chart
                    .draw_series(DashedLineSeries::new(pts.clone(), 8, 5, style))
                    .map_err(e)?;
                chart
                    .draw_series(
                        pts.iter()
                            .map(|p| TriangleMarker::new(*p, 5, color.filled())),
                    )
                    .map_err(e)?;
            }
        }
        if text {
            let row_h = (960 / lines.len().max(1)).clamp(10, 24) as i32;
            let font = ("sans-serif", (row_h - 5).clamp(9, 16)).into_font();
            for (i, (label, project, _)) in lines.iter().enumerate() {
                let (r, g, b) = PALETTE[i % PALETTE.len()];
                let color = RGBColor(r, g, b);
                let y = 20 + row_h * i as i32;
                let style = color.stroke_width(if *project { 3 } else { 2 });
                if *project {
                    legend_area
                        .draw(&PathElement::new(vec![(4, y), (34, y)], style))
                        .map_err(e)?;
                } else {
                    legend_area
                        .draw(&PathElement::new(vec![(4, y), (14, y)], style))
                        .map_err(e)?;
                    legend_area
                        .draw(&PathElement::new(vec![(22, y), (34, y)], style))
                        .map_err(e)?;
                }
                legend_area
                    .draw(&Text::new(
                        label.clone(),
                        (40, y - row_h / 2 + 3),
                        font.clone(),
                    ))
                    .map_err(e)?;
            }
        }
    }
    root.present()
        .map_err(|e| anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(imp: &str, solver: &str, us: f64) -> TimingRow {
        TimingRow {
            implementation: imp.into(),
            shape: "4096x2".into(),
            solver: solver.into(),
            denoiser: "half".into(),
            steps: 10,
            nfe: 10,
            per_step_us: us,
            reps: 5,
        }
    }

    #[test]
    fn a_budget_no_step_count_fits_is_not_a_failure() {
        let mut r = AccRow {
            target: "t".into(),
            side: "project".into(),
            solver: "restart".into(),
            grid: "karras".into(),
            kind: "sde".into(),
            nfe_target: 5,
            nfe: 0,
            steps: 0,
            end_sigma: 0.0,
            metric: "sliced_w2".into(),
            value: None,
            error: Some(format!("{NO_FIT} 5")),
            param: None,
        };
        assert_eq!(cell(Some(&&r)), "over budget");
        r.error = Some("solver diverged".into());
        assert_eq!(cell(Some(&&r)), "fail");
        r.value = Some(0.5);
        r.nfe = 4;
        assert_eq!(cell(Some(&&r)), "5.00e-1 (4)");
    }

    #[test]
    fn chacha_rows_compare_with_the_anchors_plain_rows_and_get_their_own_line() {
        let rows = vec![
            row("project", "euler", 3.0),
            row("project", "dpmpp-2m-sde", 10.0),
            row("project", "dpmpp-2m-sde/chacha", 60.0),
            row("project", "dpmpp-2m-sde/tree", 100.0),
            row("project", "dpmpp-2m-sde/tree/chacha", 1000.0),
            row("k-diffusion", "euler", 150.0),
            row("k-diffusion", "dpmpp-2m-sde", 170.0),
            row("k-diffusion", "dpmpp-2m-sde/tree", 7000.0),
            row("diffusers", "dpmpp-2m-sde", 180.0),
        ];
        let md = timing_markdown(&rows);
        assert!(
            md.contains("| 4096x2 | half | dpmpp-2m-sde/chacha | 10 | 60.0 µs | 170 µs (2.8x) | 180 µs (3.0x) |"),
            "{md}"
        );
        // The verdict sees the default rows only (170 / 10 = 17x; the tree 70x)...
        assert!(
            md.contains("**met**. Smallest ratio anchor/project: 17x (k-diffusion dpmpp-2m-sde)"),
            "{md}"
        );
        // The ChaCha tree is compared with the anchor's tree row...
        assert!(
            md.contains(
                "| 4096x2 | half | dpmpp-2m-sde/tree/chacha | 10 | 1000 µs | 7000 µs (7.0x) | - |"
            ),
            "{md}"
        );
        // ...and the ChaCha line takes each solver by its `/chacha` row (2.8x), not its plain
        // row, and the tree by its `/tree/chacha` row.
        assert!(
            md.contains(
                "10x not reached. Smallest ratio anchor/project: 2.8x (k-diffusion dpmpp-2m-sde/chacha)"
            ),
            "{md}"
        );
        assert!(md.contains("`SOLVER/chacha` rows"), "{md}");
        // A hand-written row is a column of its own, and on the large state a verdict of its own.
        let mut big: Vec<TimingRow> = vec![
            row("project", "euler", 3.0),
            row("k-diffusion", "euler", 150.0),
            row("hand-written", "euler", 2.0),
            row("project", "bare-axpby", 1.0),
            row("project", "bare-axpby-inplace", 1.0),
        ];
        big.iter_mut()
            .filter(|r| r.solver.starts_with("bare"))
            .for_each(|r| r.denoiser = "-".into());
        let mut large = big.clone();
        for r in &mut large {
            r.shape = "64x3x32x32".into();
        }
        large[0].per_step_us = 30.0;
        large[2].per_step_us = 20.0;
        large[3].per_step_us = 10.0;
        large[4].per_step_us = 10.0;
        big.extend(large);
        let md = timing_markdown(&big);
        assert!(
            md.contains(
                "| solver | NFE | project | hand-written | k-diffusion (ratio to project) |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| 64x3x32x32 | half | euler | 10 | 30.0 µs | 20.0 µs | 150 µs (5.0x) |"),
            "{md}"
        );
        assert!(md.contains("Target 2 (within 2x of a bare memory-bandwidth loop on the large state, 64x3x32x32): **not met**"), "{md}");
        assert!(md.contains("**met** for the solvers that have one. Project per-step time over the hand-written loop's: euler 1.5x."), "{md}");
        // Without `/chacha` rows there is no ChaCha line; a slow default row fails the verdict.
        let mut plain: Vec<TimingRow> = rows
            .into_iter()
            .filter(|r| !r.solver.ends_with("/chacha"))
            .collect();
        let md = timing_markdown(&plain);
        assert!(!md.contains("ChaCha20 streams ("), "{md}");
        plain[1].per_step_us = 60.0;
        let md = timing_markdown(&plain);
        assert!(
            md.contains(
                "**not met**. Smallest ratio anchor/project: 2.8x (k-diffusion dpmpp-2m-sde)"
            ),
            "{md}"
        );
    }
}
