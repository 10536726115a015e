//! The project runner: `cargo xtask <command>`.
//!
//! - `setup`: make libtorch available (once) and print where it is; `--fmnist` also installs
//!   Fashion-MNIST (`apt-get install dataset-fashion-mnist`, or prints the sudo command).
//! - `demo`: build and run the end-to-end demo of the `diffusion` program.
//! - `test`: the whole test suite (`cargo test --workspace`) with libtorch wired in.
//! - `ci`: `cargo fmt --check`, clippy with `-D warnings`, then `test`.
//! - `doctor`: `diffusion doctor` (libtorch version, CUDA, device, a matmul check).
//! - `env`: shell `export` lines that let plain `cargo` commands find libtorch.
//! - `run -- <cargo args>`: any cargo command with libtorch wired in.
//! - `refdata`: install the Python anchors (diffusers, k-diffusion, torchsde) into the venv and
//!   regenerate the committed reference fixtures of diffusion-solvers and the network interop
//!   fixtures of diffusion-models (see `refdata.rs`).
//! - `bench`: the project and the Python anchors side by side (per-step time, accuracy per NFE),
//!   written to docs/results.md and docs/accuracy_*.png (see `bench.rs`).
//!
//! libtorch comes from `$LIBTORCH` when set; otherwise from a Python virtual environment with
//! `torch==2.11.0` (the version `tch = 0.24.0` expects), created once in a per-user cache shared
//! by all clones: `$DIFFUSION_CACHE_DIR`, else `$XDG_CACHE_HOME/diffusion-rs`, else
//! `~/.cache/diffusion-rs`. The Python used to create it is `$DIFFUSION_PYTHON`, else `python3`.

mod bench;
mod libtorch;
mod pair;
mod refdata;

use anyhow::{bail, Context, Result};
use libtorch::Libtorch;
use std::path::{Path, PathBuf};
use std::process::Command;

const USAGE: &str = "usage: cargo xtask <setup|demo|test|ci|doctor|env|run|refdata|bench> [args...]

  setup [--fmnist] install libtorch (torch==2.11.0 in a cached venv) unless $LIBTORCH is set;
                   --fmnist: also install Fashion-MNIST (apt-get install dataset-fashion-mnist
                   when root, else print the sudo command)
  demo [args]      run the end-to-end demo (`diffusion demo`), writing into out/demo
  test [args]      run the whole test suite (extra args go to `cargo test`)
  ci               cargo fmt --check, clippy -D warnings, then the test suite
  doctor           print libtorch version, CUDA availability, device and a matmul check
  env              print shell exports so plain cargo commands find libtorch
  run -- <args>    run any cargo command with libtorch wired in
  refdata [args]   install diffusers/k-diffusion/torchsde into the venv and regenerate
                   crates/diffusion-solvers/tests/fixtures (args go to make_fixtures.py)
                   and crates/diffusion-models/tests/fixtures (make_net_fixtures.py)
  bench [opts]     the project and k-diffusion/diffusers side by side: per-step time and
                   accuracy per NFE, into docs/results.md and docs/accuracy_*.png (2-5 min);
                   --no-python (Rust side only), --quick (smoke test), --no-timing,
                   --no-accuracy; partial runs write into out/bench/ only;
                   --train [--threads N]: training throughput only, the Rust trainer next to
                   tools/bench/train_torch.py (MLP and small U-Net, into docs/results.md);
                   --sample [--threads N]: CPU sampling throughput only, sample_bench next to
                   the same U-Net driven by diffusers (Euler passes and the network alone;
                   needs Fashion-MNIST: `setup --fmnist`)";

fn main() {
    if let Err(e) = real_main() {
        eprintln!("xtask error: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r.to_vec()),
        None => {
            println!("{USAGE}");
            return Ok(());
        }
    };
    let root = workspace_root()?;
    match cmd {
        "setup" => {
            let fmnist = match rest.as_slice() {
                [] => false,
                [a] if a == "--fmnist" => true,
                other => bail!("unknown option(s) {other:?} for `cargo xtask setup` (--fmnist)"),
            };
            let lt = Libtorch::resolve()?;
            lt.describe();
            if fmnist {
                setup_fmnist()?;
            }
            Ok(())
        }
        "demo" => {
            let lt = Libtorch::resolve()?;
            let mut a = vec![
                "run",
                "-p",
                "diffusion",
                "--bin",
                "diffusion",
                "--",
                "demo",
                "--out",
            ];
            let out = root.join("out").join("demo");
            let out_s = out.to_string_lossy().to_string();
            a.push(&out_s);
            let mut full: Vec<String> = a.iter().map(|s| s.to_string()).collect();
            full.extend(rest);
            cargo(&root, &lt, &full)
        }
        "test" => {
            let lt = Libtorch::resolve()?;
            let mut full = vec!["test".to_string(), "--workspace".to_string()];
            full.extend(rest);
            cargo_test(&root, &lt, &full)
        }
        "ci" => {
            let lt = Libtorch::resolve()?;
            cargo(&root, &lt, &strings(&["fmt", "--all", "--", "--check"]))?;
            cargo(
                &root,
                &lt,
                &strings(&[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ]),
            )?;
            cargo_test(&root, &lt, &strings(&["test", "--workspace"]))
        }
        "doctor" => {
            let lt = Libtorch::resolve()?;
            cargo(
                &root,
                &lt,
                &strings(&[
                    "run",
                    "-p",
                    "diffusion",
                    "--bin",
                    "diffusion",
                    "--",
                    "doctor",
                ]),
            )
        }
        "env" => {
            let lt = Libtorch::resolve()?;
            for (k, v) in lt.env() {
                println!("export {k}={}", shell_quote(&v));
            }
            Ok(())
        }
        "run" => {
            let lt = Libtorch::resolve()?;
            let rest: Vec<String> = rest.into_iter().skip_while(|a| a == "--").collect();
            if rest.is_empty() {
                bail!("`cargo xtask run -- <cargo args>` needs cargo arguments");
            }
            cargo(&root, &lt, &rest)
        }
        "refdata" => refdata::run(&root, &rest),
        "bench" => bench::run(&root, &rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n{USAGE}"),
    }
}

/// Where the Debian package `dataset-fashion-mnist` puts the files (the loader's default).
const FMNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";
const FMNIST_FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

fn fmnist_installed(dir: &Path) -> bool {
    FMNIST_FILES.iter().all(|f| dir.join(f).is_file())
}

/// `cargo xtask setup --fmnist`: installs Fashion-MNIST with apt-get when running as root, else
/// prints the command to run (nothing to do when `$DIFFUSION_FMNIST_DIR` or the system folder
/// already holds the four files).
fn setup_fmnist() -> Result<()> {
    if let Some(d) = std::env::var_os("DIFFUSION_FMNIST_DIR").filter(|d| !d.is_empty()) {
        let d = PathBuf::from(d);
        if fmnist_installed(&d) {
            println!(
                "fashion-mnist: {} (from $DIFFUSION_FMNIST_DIR)",
                d.display()
            );
            return Ok(());
        }
        println!(
            "fashion-mnist: $DIFFUSION_FMNIST_DIR = {} lacks some of {FMNIST_FILES:?}; \
             installing the system package instead (unset the variable to use it)",
            d.display()
        );
    }
    let dir = Path::new(FMNIST_DIR);
    if fmnist_installed(dir) {
        println!("fashion-mnist: {FMNIST_DIR} (installed)");
        return Ok(());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !root {
        println!(
            "fashion-mnist: not installed. Run\n    sudo apt-get install dataset-fashion-mnist\n\
             (Debian/Ubuntu), or download the four files {FMNIST_FILES:?} into a folder and set \
             DIFFUSION_FMNIST_DIR to it."
        );
        return Ok(());
    }
    let apt = |args: &[&str]| -> Result<bool> {
        eprintln!("xtask: apt-get {}", args.join(" "));
        Ok(Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("failed to start apt-get (is this Debian or Ubuntu?)")?
            .success())
    };
    if !apt(&["install", "-y", "dataset-fashion-mnist"])? {
        // The package lists may be stale or empty (fresh containers): refresh once and retry.
        if !(apt(&["update"])? && apt(&["install", "-y", "dataset-fashion-mnist"])?) {
            bail!("apt-get could not install dataset-fashion-mnist");
        }
    }
    if !fmnist_installed(dir) {
        bail!("dataset-fashion-mnist is installed but {FMNIST_DIR} lacks some of {FMNIST_FILES:?}");
    }
    println!("fashion-mnist: {FMNIST_DIR} (installed now)");
    Ok(())
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn workspace_root() -> Result<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .map(Path::to_path_buf)
        .context("xtask lives one level below the workspace root")
}

/// Totals of the `test result:` lines of a `cargo test` run.
#[derive(Debug, Default, PartialEq)]
struct Totals {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Totals {
    /// Adds one `test result: ok. 3 passed; 0 failed; 1 ignored; ...` line (others are ignored).
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result:") else {
            return;
        };
        for part in rest.split(';') {
            let words: Vec<&str> = part.split_whitespace().collect();
            let n = |i: usize| {
                words
                    .get(i)
                    .and_then(|w| w.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            match words.as_slice() {
                [.., _, "passed"] => self.passed += n(words.len() - 2),
                [_, "failed"] => self.failed += n(0),
                [_, "ignored"] => self.ignored += n(0),
                _ => {}
            }
        }
    }
}

/// Runs `cargo test ...`, passing its output through, and ends with one summary line over
/// every test binary: `tests: N passed, N failed, N skipped`.
fn cargo_test(root: &Path, lt: &Libtorch, args: &[String]) -> Result<()> {
    use std::io::{BufRead, BufReader, Write};
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("xtask: cargo {}", args.join(" "));
    let mut child = Command::new(cargo)
        .args(args)
        .current_dir(root)
        .envs(lt.env())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("failed to start cargo")?;
    let mut totals = Totals::default();
    let stdout = child.stdout.take().context("no stdout from cargo")?;
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        totals.add_line(&line);
        writeln!(out, "{line}")?;
    }
    drop(out);
    let status = child.wait()?;
    println!(
        "tests: {} passed, {} failed, {} skipped",
        totals.passed, totals.failed, totals.ignored
    );
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Runs `cargo <args>` in the workspace root with libtorch's environment.
fn cargo(root: &Path, lt: &Libtorch, args: &[String]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(cargo)
        .args(args)
        .current_dir(root)
        .envs(lt.env())
        .status()
        .context("failed to start cargo")?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Totals;

    #[test]
    fn totals_sum_cargo_test_result_lines() {
        let mut t = Totals::default();
        t.add_line("test result: ok. 96 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 3.51s");
        t.add_line("test result: FAILED. 4 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.1s");
        t.add_line("running 3 tests");
        t.add_line("test foo ... ok");
        assert_eq!(
            t,
            Totals {
                passed: 100,
                failed: 1,
                ignored: 2
            }
        );
    }
}
