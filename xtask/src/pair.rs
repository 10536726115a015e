//! `cargo xtask bench --train` and `--sample`: one Rust program next to one PyTorch script in the
//! same run, case by case, under the same glibc allocator settings on both sides, each side's
//! faster of alternating rounds, and a markdown table of the ratios (written to out/bench/ and,
//! after a full run with Python, spliced into docs/results.md between the benchmark's markers).
//!
//! - `--train`: training throughput, benches/src/bin/train_bench.rs next to
//!   tools/bench/train_torch.py (same network, batch, EDM loss, AdamW, clipping, EMA, float32,
//!   thread count): the toy MLP on 2-D data and a small U-Net on 28x28 images.
//! - `--sample`: sampling throughput on the CPU, benches/src/bin/sample_bench.rs (the
//!   `diffusion train` sampling path: a registry solver through `TchDenoiser`) next to
//!   tools/bench/gpu/sample_diffusers.py (the same U-Net of tools/torch_ref/nets.py driven by
//!   diffusers' `EDMEulerScheduler`): Euler passes and the network alone (`--net-only`), median
//!   of the timed passes after an untimed one. Needs Fashion-MNIST (`cargo xtask setup --fmnist`:
//!   the Rust side builds its trainer on the recipe's data) and the pinned diffusers, which it
//!   installs into the venv as `cargo xtask refdata` does. The GPU pair is the `sample` part of
//!   tools/bench/gpu/run.sh.

use crate::bench::{field, result_line, splice_between, Options, MALLOC_TUNABLES};
use crate::libtorch::Libtorch;
use crate::refdata;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// One case: its name and the arguments of each side (threads are added by the runner).
struct Case {
    name: &'static str,
    rust: Vec<String>,
    python: Vec<String>,
}

/// Environment variables of one side.
type Env = &'static [(&'static str, &'static str)];

/// One side-by-side benchmark.
struct PairBench {
    /// The `cargo xtask bench` flag.
    flag: &'static str,
    /// The heading of the generated section.
    title: &'static str,
    /// The Rust program (a `diffusion-benches` binary with the `train` feature).
    bin: &'static str,
    /// The Python script, relative to the workspace root.
    script: &'static str,
    /// Whether the script needs the pinned anchors (diffusers) in the venv.
    anchors: bool,
    /// The result field both sides print (higher is faster) and its unit.
    metric: &'static str,
    unit: &'static str,
    /// A field of the Rust line shown as a column (header, key), if any.
    column: Option<(&'static str, &'static str)>,
    /// The Rust side's thread arguments for `n` threads.
    rust_threads: fn(&str) -> Vec<String>,
    /// Allocator settings: name, Rust environment, Python environment.
    allocators: Vec<(&'static str, Env, Env)>,
    /// What the section says before the table (after the command that reproduces it).
    description: &'static str,
    /// Section markers in docs/results.md and the file under out/bench/.
    begin: &'static str,
    end: &'static str,
    out_file: &'static str,
    cases: Vec<Case>,
}

const KEEP: (&str, &str) = ("DIFFUSION_GLIBC_DEFAULTS", "1");
const FIXED: (&str, &str) = ("GLIBC_TUNABLES", MALLOC_TUNABLES);

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// `cargo xtask bench --train`.
fn training(quick: bool) -> PairBench {
    let (mlp_steps, unet_steps) = if quick { ("30", "3") } else { ("300", "30") };
    PairBench {
        flag: "--train",
        title: "Training throughput next to PyTorch",
        bin: "train_bench",
        script: "tools/bench/train_torch.py",
        anchors: false,
        metric: "steps_per_s",
        unit: "updates/s",
        column: Some(("parameters", "params")),
        rust_threads: |n| strings(&["--threads", n]),
        // glibc's defaults on both sides; as shipped (the Rust trainer re-executes itself with
        // the fixed thresholds on the CPU, `diffusion_models::host_malloc`; PyTorch keeps glibc's
        // defaults); the fixed settings of the side-by-side timings on both sides.
        allocators: vec![
            ("glibc defaults", &[KEEP], &[]),
            ("as shipped", &[], &[]),
            ("fixed", &[FIXED], &[FIXED]),
        ],
        description: "builds benches/src/bin/train_bench.rs (dev profile) and runs it next to \
             tools/bench/train_torch.py (torch 2.11.0 CPU) in the same run: the same network, batch, \
             EDM loss, AdamW (lr 1e-3), global-norm clipping at 1, one EMA (0.999), float32, \
             the same libtorch thread count on both sides; updates per second after a few untimed \
             ones, the faster of two alternating rounds per side. Each case runs under three glibc \
             allocator settings, because glibc's dynamic mmap / trim thresholds cost the two \
             processes different numbers of page faults on the large activations: `glibc defaults` \
             on both sides (the Rust side with `DIFFUSION_GLIBC_DEFAULTS=1`); `as shipped`, where \
             the Rust trainer on the CPU re-executes itself with the fixed settings (as `diffusion \
             train` does: `diffusion_models::host_malloc`) and PyTorch keeps glibc's defaults; and \
             `fixed`, those settings on both sides (the settings of the per-step timings: no heap \
             trimming, no `mmap` below 32 MiB). The Rust side draws its data and noise on the host \
             from seeded ChaCha streams (so runs reproduce on every device); PyTorch uses its own \
             generator. The machine is shared, so timings are noisy; ratios are only taken within \
             one run.",
        begin: "<!-- xtask bench --train: begin (generated by `cargo xtask bench --train`; edits here are overwritten) -->",
        end: "<!-- xtask bench --train: end -->",
        out_file: "train_section.md",
        cases: vec![
            Case {
                name: "MLP 128x3, 2-D toy, batch 256",
                rust: strings(&["--net", "mlp", "--model", "hidden = 128, depth = 3", "--batch", "256", "--steps", mlp_steps]),
                python: strings(&["--net", "mlp", "--mlp", r#"{"hidden": 128, "depth": 3}"#, "--batch", "256", "--steps", mlp_steps]),
            },
            Case {
                name: "U-Net 32ch [1,2], 28x28, batch 32",
                rust: strings(&[
                    "--net", "unet", "--model",
                    "model_channels = 32, channel_mult = [1, 2], num_res_blocks = 1, attention_resolutions = [14], num_heads = 4, groups = 8",
                    "--batch", "32", "--steps", unet_steps, "--warmup", "3",
                ]),
                python: strings(&[
                    "--net", "unet", "--unet",
                    r#"{"model_channels": 32, "channel_mult": [1, 2], "num_res_blocks": 1, "attention_resolutions": [14], "num_heads": 4, "groups": 8, "dropout": 0.0}"#,
                    "--batch", "32", "--steps", unet_steps, "--warmup", "3",
                ]),
            },
        ],
    }
}

/// `cargo xtask bench --sample`.
fn sampling(quick: bool) -> PairBench {
    // The recipe of the quality comparison (tools/bench/gpu/fmnist-edm-compare.toml, the
    // 6.9M-parameter U-Net) and the small U-Net of tools/bench/quality_cpu.sh.
    const RECIPE: &str = "tools/bench/gpu/fmnist-edm-compare.toml";
    const RECIPE_JSON: &str = r#"{"model_channels": 64, "channel_mult": [1, 2, 2], "num_res_blocks": 2, "attention_resolutions": [7], "num_heads": 4, "groups": 32, "dropout": 0.0}"#;
    const SMALL_JSON: &str = r#"{"model_channels": 16, "channel_mult": [1, 2, 2], "num_res_blocks": 1, "attention_resolutions": [7], "num_heads": 4, "groups": 8, "dropout": 0.0}"#;
    let small = [
        "--set",
        "model.groups=8",
        "--set",
        "model.model_channels=16",
        "--set",
        "model.num_res_blocks=1",
    ];
    let (n, steps, repeats, big_n) = if quick {
        ("32", "4", "1", "4")
    } else {
        ("300", "16", "3", "32")
    };
    let rust = |n: &str, steps: &str, extra: &[&str]| {
        let mut v = strings(&[
            "--config",
            RECIPE,
            "--n",
            n,
            "--repeats",
            repeats,
            "--set",
            "device=\"cpu\"",
            "--set",
            "train.precision=\"fp32\"",
            "--set",
            "sample.solver=\"euler\"",
            "--set",
            &format!("sample.steps={steps}"),
        ]);
        v.extend(strings(extra));
        v
    };
    let python = |json: &str, n: &str, steps: &str, extra: &[&str]| {
        let mut v = strings(&[
            "--unet",
            json,
            "--device",
            "cpu",
            "--n",
            n,
            "--steps",
            steps,
            "--repeats",
            repeats,
        ]);
        v.extend(strings(extra));
        v
    };
    let net_only = ["--net-only"];
    let small_net: Vec<&str> = small.iter().chain(&net_only).copied().collect();
    PairBench {
        flag: "--sample",
        title: "Sampling throughput next to PyTorch + diffusers (CPU)",
        bin: "sample_bench",
        script: "tools/bench/gpu/sample_diffusers.py",
        anchors: true,
        metric: "images_per_s",
        unit: "images/s",
        column: None,
        rust_threads: |n| strings(&["--set", &format!("cpu_threads={n}")]),
        allocators: vec![("glibc defaults", &[], &[]), ("fixed", &[FIXED], &[FIXED])],
        description: "builds benches/src/bin/sample_bench.rs (dev profile; the sampling path of \
             `diffusion train` and `diffusion generate`: the `euler` registry solver on the \
             `karras` grid through `TchDenoiser`, EDM preconditioning) and runs it next to \
             tools/bench/gpu/sample_diffusers.py (the same U-Net of tools/torch_ref/nets.py driven \
             by diffusers 0.42.1's `EDMEulerScheduler`; torch 2.11.0 CPU) in the same run, float32, \
             the same libtorch thread count on both sides: both build the network, run one \
             untimed pass and report the median of the timed passes; `network alone` times the \
             same number of network calls on one input (a slower network or a slower loop around \
             it); the faster of two alternating rounds per side. Two glibc allocator settings on \
             both sides: glibc's defaults, and `fixed` (no heap trimming, no `mmap` below 32 MiB; \
             what `diffusion generate` and `train` set for themselves on the CPU). The GPU pair is \
             the `sample` part of tools/bench/gpu/run.sh (docs/gpu.md). The machine is shared, so \
             timings are noisy; ratios are only taken within one run.",
        begin: "<!-- xtask bench --sample: begin (generated by `cargo xtask bench --sample`; edits here are overwritten) -->",
        end: "<!-- xtask bench --sample: end -->",
        out_file: "sample_section.md",
        cases: vec![
            Case {
                name: "small U-Net 16ch, Euler pass",
                rust: rust(n, steps, &small),
                python: python(SMALL_JSON, n, steps, &[]),
            },
            Case {
                name: "small U-Net 16ch, network alone",
                rust: rust(n, steps, &small_net),
                python: python(SMALL_JSON, n, steps, &net_only),
            },
            Case {
                name: "recipe U-Net 64ch, network alone",
                rust: rust(big_n, "4", &net_only),
                python: python(RECIPE_JSON, big_n, "4", &net_only),
            },
        ],
    }
}

/// Runs `--train` or `--sample` (whichever `opts` asks for).
pub fn run(root: &Path, opts: &Options) -> Result<()> {
    let bench = if opts.train {
        training(opts.quick)
    } else {
        sampling(opts.quick)
    };
    let start = Instant::now();
    let lt = Libtorch::resolve()?;
    let python = if opts.no_python { None } else { lt.python() };
    if let (true, Some(p)) = (bench.anchors, &python) {
        refdata::ensure_anchors(p)?;
    }
    let cargo_bin = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // The same target for the build and every run (`cargo run` then only checks it is fresh).
    let target = [
        "-p",
        "diffusion-benches",
        "--features",
        "train",
        "--bin",
        bench.bin,
    ];
    eprintln!("xtask: cargo build {}", target.join(" "));
    let st = Command::new(&cargo_bin)
        .arg("build")
        .args(target)
        .current_dir(root)
        .envs(lt.env())
        .status()
        .context("failed to start cargo")?;
    if !st.success() {
        bail!("building {} failed ({st})", bench.bin);
    }
    let threads = opts.threads.to_string();
    let rust_threads = (bench.rust_threads)(&threads);
    let speed = |l: &str| -> f64 {
        field(l, bench.metric)
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let faster = |best: Option<String>, new: String| -> Option<String> {
        match best {
            Some(b) if speed(&b) >= speed(&new) => Some(b),
            _ => Some(new),
        }
    };
    // Two alternating rounds (Rust, PyTorch, Rust, PyTorch) per case and setting; each side
    // keeps its faster round, which damps the other jobs on a shared machine.
    let rounds = if opts.quick { 1 } else { 2 };
    let mut rows = Vec::new();
    for case in &bench.cases {
        for &(alloc, rust_env, python_env) in &bench.allocators {
            let (mut r, mut p): (Option<String>, Option<String>) = (None, None);
            for _ in 0..rounds {
                let mut c = Command::new(&cargo_bin);
                c.args(["run", "--quiet"])
                    .args(target)
                    .arg("--")
                    .args(&case.rust)
                    .args(&rust_threads)
                    .current_dir(root)
                    .envs(lt.env())
                    .env_remove("GLIBC_TUNABLES")
                    .envs(rust_env.iter().copied());
                r = faster(r, result_line(c, bench.metric)?);
                if let Some(py) = &python {
                    let mut c = Command::new(py);
                    c.arg(root.join(bench.script))
                        .args(&case.python)
                        .args(["--threads", &threads])
                        .current_dir(root)
                        .env("PYTHONUNBUFFERED", "1")
                        .env_remove("GLIBC_TUNABLES")
                        .envs(python_env.iter().copied());
                    p = faster(p, result_line(c, bench.metric)?);
                }
            }
            rows.push((case.name, alloc, r.context("no Rust result")?, p));
        }
    }
    let (col_head, col_align) = match bench.column {
        Some((h, _)) => (format!(" {h} |"), "---:|"),
        None => (String::new(), ""),
    };
    let mut md = format!(
        "| case |{col_head} glibc allocator | Rust {u} | PyTorch {u} | Rust / PyTorch |\n|---|{col_align}---|---:|---:|---:|\n",
        u = bench.unit
    );
    for (name, alloc, r, p) in &rows {
        let rs = speed(r);
        let ps = p.as_deref().map_or(f64::NAN, speed);
        let col = bench.column.map_or(String::new(), |(_, k)| {
            format!(" {} |", field(r, k).unwrap_or_default())
        });
        md.push_str(&format!(
            "| {name} |{col} {alloc} | {rs:.2} | {ps:.2} | {:.2} |\n",
            rs / ps
        ));
    }
    println!("\n{md}");
    let command = opts.command();
    let section = format!(
        "{}\n## {}\n\n`{command}` {} Threads: {}.\n\n{md}{}\n",
        bench.begin, bench.title, bench.description, opts.threads, bench.end
    );
    let out = root.join("out").join("bench");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join(bench.out_file), &section)?;
    if python.is_some() && !opts.quick {
        let path = root.join("docs").join("results.md");
        let old = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        std::fs::write(
            &path,
            splice_between(&old, &section, bench.begin, bench.end),
        )?;
        eprintln!("xtask: updated docs/results.md ({})", bench.title);
    }
    eprintln!(
        "xtask: bench {} finished in {:.0} s",
        bench.flag,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_benchmarks_have_cases_and_distinct_markers() {
        for quick in [false, true] {
            let (t, s) = (training(quick), sampling(quick));
            assert!(!t.cases.is_empty() && !s.cases.is_empty());
            assert_ne!(t.begin, s.begin);
            assert!(t.begin.contains(t.flag) && s.begin.contains(s.flag));
            // Every case of the sampling pair states the same network size on both sides.
            for c in &s.cases {
                let n = |v: &[String]| v.iter().position(|a| a == "--n").map(|i| v[i + 1].clone());
                assert_eq!(n(&c.rust), n(&c.python), "{}", c.name);
                assert_eq!(
                    c.rust.iter().any(|a| a == "--net-only"),
                    c.python.iter().any(|a| a == "--net-only"),
                    "{}",
                    c.name
                );
            }
        }
        assert_eq!((training(false).rust_threads)("2"), ["--threads", "2"]);
        assert_eq!(
            (sampling(false).rust_threads)("2"),
            ["--set", "cpu_threads=2"]
        );
    }
}
