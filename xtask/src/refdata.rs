//! `cargo xtask refdata`: regenerate the reference fixtures from the Python anchors.
//!
//! 1. Finds the cached venv with `torch==2.11.0` through [`Libtorch::resolve`] (creating it once,
//!    like `cargo xtask setup`).
//! 2. Installs the anchors into it unless the pinned versions are already there: diffusers,
//!    torchsde, scipy, numpy, plus `tqdm` and `torchdiffeq` (imported at the top of
//!    k-diffusion's `sampling.py`), and k-diffusion itself with `--no-deps`: its own dependency
//!    list (wandb, clean-fid, clip, kornia, torchvision, accelerate, ...) is only needed for
//!    training and evaluation, so `tools/refdata/make_fixtures.py` loads `k_diffusion/sampling.py`
//!    by path with a two-function stand-in for `k_diffusion.utils` (see that script).
//! 3. Runs `tools/refdata/make_fixtures.py`, which writes JSON into
//!    `crates/diffusion-solvers/tests/fixtures/` (read by `tests/reference_fixtures.rs`, so
//!    `cargo test` never needs Python).
//! 4. Runs `tools/refdata/make_net_fixtures.py`, which writes the network interop fixtures
//!    (weights of the PyTorch reference modules in `tools/torch_ref/nets.py`, inputs and
//!    outputs, as safetensors) into `crates/diffusion-models/tests/fixtures/` (read by
//!    `tests/interop.rs`).
//!
//! The pins below are the versions that produced the committed fixtures; `tools/refdata/README.md`
//! records the full `pip freeze` of the run.

use crate::libtorch::Libtorch;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

/// One package to have in the venv: the pip requirement, its distribution name and whether its
/// dependencies are installed too.
struct Package {
    requirement: &'static str,
    dist: &'static str,
    version: &'static str,
    with_deps: bool,
}

const PACKAGES: &[Package] = &[
    Package {
        requirement: "numpy==2.4.6",
        dist: "numpy",
        version: "2.4.6",
        with_deps: true,
    },
    Package {
        requirement: "scipy==1.17.1",
        dist: "scipy",
        version: "1.17.1",
        with_deps: true,
    },
    Package {
        requirement: "torchsde==0.2.6",
        dist: "torchsde",
        version: "0.2.6",
        with_deps: true,
    },
    Package {
        requirement: "torchdiffeq==0.2.5",
        dist: "torchdiffeq",
        version: "0.2.5",
        with_deps: true,
    },
    Package {
        requirement: "tqdm==4.70.1",
        dist: "tqdm",
        version: "4.70.1",
        with_deps: true,
    },
    Package {
        requirement: "diffusers==0.42.1",
        dist: "diffusers",
        version: "0.42.1",
        with_deps: true,
    },
    Package {
        requirement: "k-diffusion==0.1.1.post1",
        dist: "k-diffusion",
        version: "0.1.1.post1",
        with_deps: false,
    },
];

/// Where the fixtures go, relative to the workspace root.
pub const FIXTURE_DIR: &str = "crates/diffusion-solvers/tests/fixtures";

/// The generator script, relative to the workspace root.
pub const SCRIPT: &str = "tools/refdata/make_fixtures.py";

/// Where the network interop fixtures go, relative to the workspace root.
pub const NET_FIXTURE_DIR: &str = "crates/diffusion-models/tests/fixtures";

/// The generator script of the network interop fixtures, relative to the workspace root.
pub const NET_SCRIPT: &str = "tools/refdata/make_net_fixtures.py";

/// Installs what is missing and regenerates the fixtures. Extra arguments go to the solver
/// script.
pub fn run(root: &Path, extra: &[String]) -> Result<()> {
    let lt = Libtorch::resolve()?;
    let Some(python) = lt.python() else {
        bail!(
            "`cargo xtask refdata` needs the Python venv that xtask manages, but $LIBTORCH points \
             at a plain libtorch; run it with LIBTORCH unset"
        );
    };
    ensure_anchors(&python)?;
    let out = root.join(FIXTURE_DIR);
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    eprintln!("xtask: {} {SCRIPT} --out {FIXTURE_DIR}", python.display());
    let status = Command::new(&python)
        .arg(root.join(SCRIPT))
        .arg("--out")
        .arg(&out)
        .args(extra)
        .current_dir(root)
        .status()
        .with_context(|| format!("cannot start {}", python.display()))?;
    if !status.success() {
        bail!("{SCRIPT} failed ({status})");
    }
    let out = root.join(NET_FIXTURE_DIR);
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    eprintln!(
        "xtask: {} {NET_SCRIPT} --out {NET_FIXTURE_DIR}",
        python.display()
    );
    let status = Command::new(&python)
        .arg(root.join(NET_SCRIPT))
        .arg("--out")
        .arg(&out)
        .current_dir(root)
        .status()
        .with_context(|| format!("cannot start {}", python.display()))?;
    if !status.success() {
        bail!("{NET_SCRIPT} failed ({status})");
    }
    Ok(())
}

/// Installs the pinned anchors into the venv of `python` unless those versions are already
/// there (also used by `cargo xtask bench`).
pub fn ensure_anchors(python: &Path) -> Result<()> {
    for p in PACKAGES {
        if installed_version(python, p.dist).as_deref() == Some(p.version) {
            continue;
        }
        eprintln!(
            "xtask: pip install {}{}",
            p.requirement,
            if p.with_deps { "" } else { " --no-deps" }
        );
        let mut cmd = Command::new(python);
        cmd.args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--progress-bar",
            "off",
        ]);
        if !p.with_deps {
            cmd.arg("--no-deps");
        }
        cmd.arg(p.requirement);
        let status = cmd.status().context("cannot start pip")?;
        if !status.success() {
            bail!(
                "`pip install {}` failed ({status}); check network access to PyPI",
                p.requirement
            );
        }
    }
    Ok(())
}

/// The installed version of distribution `dist` in the venv, if any.
fn installed_version(python: &Path, dist: &str) -> Option<String> {
    let out = Command::new(python)
        .args([
            "-c",
            "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))",
            dist,
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
