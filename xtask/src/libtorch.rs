//! Finding or installing libtorch 2.11.0 for `tch = 0.24.0`.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The PyTorch version `tch = "=0.24.0"` is built against.
pub const TORCH_VERSION: &str = "2.11.0";

/// Where libtorch is and how cargo must be run to use it.
pub struct Libtorch {
    /// `Some(dir)` when `$LIBTORCH` points at a libtorch distribution.
    libtorch: Option<PathBuf>,
    /// The virtual environment holding `torch` (when `$LIBTORCH` is not set).
    venv: Option<PathBuf>,
    /// The directory with libtorch's shared libraries.
    lib_dir: PathBuf,
    /// The torch version found.
    version: String,
}

impl Libtorch {
    /// Uses `$LIBTORCH` if set, else the cached venv (creating it once).
    pub fn resolve() -> Result<Self> {
        if let Some(dir) = std::env::var_os("LIBTORCH").filter(|v| !v.is_empty()) {
            let dir = PathBuf::from(dir);
            let lib_dir = dir.join("lib");
            if !lib_dir.join("libtorch_cpu.so").exists() && !lib_dir.join("libtorch.so").exists() {
                bail!(
                    "LIBTORCH={} has no lib/libtorch_cpu.so; point it at an unpacked libtorch {TORCH_VERSION} \
                     or unset it to let xtask install torch=={TORCH_VERSION} with pip",
                    dir.display()
                );
            }
            let version = std::fs::read_to_string(dir.join("build-version"))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown (no build-version file)".into());
            return Ok(Libtorch {
                libtorch: Some(dir),
                venv: None,
                lib_dir,
                version,
            });
        }
        let venv = cache_root()?.join(format!("torch-{TORCH_VERSION}"));
        match probe_settled(&venv) {
            Probe::Ready(version, lib_dir) if version.starts_with(TORCH_VERSION) => {
                return Ok(Libtorch {
                    libtorch: None,
                    venv: Some(venv),
                    lib_dir,
                    version,
                });
            }
            Probe::Ready(version, _) => eprintln!(
                "xtask: {} has torch {version}, need {TORCH_VERSION}; reinstalling",
                venv.display()
            ),
            // A finished venv whose torch does not import (even after retries) is left alone:
            // other processes may be using it, and a passing failure (a killed probe, a full
            // process table) must not cost a 3 GB reinstall.
            Probe::Broken(why) => bail!(
                "{} is a finished torch venv, but `python -c 'import torch'` fails there: {why}\n\
                 Remove it (rm -rf {}) and run the command again to reinstall torch=={TORCH_VERSION}.",
                venv.display(),
                venv.display()
            ),
            Probe::Missing => {}
        }
        install(&venv)?;
        let (version, lib_dir) = match probe(&venv) {
            Probe::Ready(version, lib_dir) => (version, lib_dir),
            Probe::Broken(why) => bail!(
                "torch was installed into {} but cannot be imported: {why}",
                venv.display()
            ),
            Probe::Missing => bail!("torch was installed into {} but is missing", venv.display()),
        };
        Ok(Libtorch {
            libtorch: None,
            venv: Some(venv),
            lib_dir,
            version,
        })
    }

    /// The Python interpreter of the cached venv (`None` when `$LIBTORCH` points at a plain
    /// libtorch distribution, which has no Python).
    pub fn python(&self) -> Option<PathBuf> {
        self.venv.as_ref().map(|v| v.join("bin").join("python"))
    }

    /// Prints where libtorch is.
    pub fn describe(&self) {
        match (&self.libtorch, &self.venv) {
            (Some(d), _) => println!("libtorch: $LIBTORCH = {}", d.display()),
            (_, Some(v)) => println!(
                "libtorch: torch {} in the venv {}",
                self.version,
                v.display()
            ),
            _ => {}
        }
        println!("libtorch version: {}", self.version);
        println!("shared libraries: {}", self.lib_dir.display());
        let cuda = self.lib_dir.join("libtorch_cuda.so").exists();
        println!(
            "libtorch_cuda.so present: {cuda} (binaries link it with --no-as-needed when present)"
        );
    }

    /// The environment variables cargo and the binaries it runs need.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if let Some(venv) = &self.venv {
            env.push(("LIBTORCH_USE_PYTORCH".into(), "1".into()));
            env.push(("VIRTUAL_ENV".into(), venv.display().to_string()));
            env.push(("PATH".into(), prepend(&venv.join("bin"), "PATH")));
        }
        env.push((
            "LD_LIBRARY_PATH".into(),
            prepend(&self.lib_dir, "LD_LIBRARY_PATH"),
        ));
        env
    }
}

fn prepend(dir: &Path, var: &str) -> String {
    match std::env::var(var) {
        Ok(old) if !old.is_empty() => format!("{}:{old}", dir.display()),
        _ => dir.display().to_string(),
    }
}

/// The per-user cache folder shared by every clone.
fn cache_root() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("DIFFUSION_CACHE_DIR").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(d).join("diffusion-rs"));
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .context("cannot find a cache folder: set DIFFUSION_CACHE_DIR, XDG_CACHE_HOME or HOME")?;
    Ok(PathBuf::from(home).join(".cache").join("diffusion-rs"))
}

const PROBE: &str = "import os, torch; print(torch.__version__); print(os.path.join(os.path.dirname(torch.__file__), 'lib'))";

/// What a venv holds.
enum Probe {
    /// No finished venv there (no `.complete` marker or no interpreter).
    Missing,
    /// Torch imports: its version and `lib` folder.
    Ready(String, PathBuf),
    /// A finished venv whose torch does not import, and why.
    Broken(String),
}

/// [`probe`], asked again (up to three times, a second apart) while a finished venv fails, so a
/// passing failure is not mistaken for a broken install.
fn probe_settled(venv: &Path) -> Probe {
    let mut last = probe(venv);
    for _ in 0..2 {
        if !matches!(last, Probe::Broken(_)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
        last = probe(venv);
    }
    last
}

/// Whether `venv` is a finished venv, and if so whether its torch imports.
fn probe(venv: &Path) -> Probe {
    let python = venv.join("bin").join("python");
    if !python.exists() || !venv.join(".complete").exists() {
        return Probe::Missing;
    }
    let out = match Command::new(&python).args(["-c", PROBE]).output() {
        Ok(out) => out,
        Err(e) => return Probe::Broken(format!("cannot run {}: {e}", python.display())),
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("").trim().to_string();
        return Probe::Broken(format!("{} ({last})", out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    match (lines.next(), lines.next()) {
        (Some(version), Some(lib)) if Path::new(lib.trim()).exists() => {
            Probe::Ready(version.trim().to_string(), PathBuf::from(lib.trim()))
        }
        _ => Probe::Broken(format!("unexpected probe output {text:?}")),
    }
}

/// Creates the venv in a temporary folder beside `venv`, installs torch, and renames it into
/// place, so an interrupted install never leaves a half-made venv that looks complete.
fn install(venv: &Path) -> Result<()> {
    let parent = venv.parent().context("venv path has no parent")?;
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let python = std::env::var("DIFFUSION_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args([
            "-c",
            "import sys, venv, ensurepip; assert sys.version_info >= (3, 10)",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match ok {
        Err(_) => bail!(
            "libtorch is needed and no `{python}` was found. Install Python 3.10+ with pip and venv \
             (Debian: apt-get install python3 python3-venv python3-pip), or set DIFFUSION_PYTHON, \
             or set LIBTORCH to an unpacked libtorch {TORCH_VERSION}."
        ),
        Ok(s) if !s.success() => bail!(
            "`{python}` cannot create virtual environments (needs Python >= 3.10 with the venv and \
             ensurepip modules; Debian: apt-get install python3-venv), or set LIBTORCH to an unpacked \
             libtorch {TORCH_VERSION}."
        ),
        Ok(_) => {}
    }
    let tmp = parent.join(format!(
        ".torch-{TORCH_VERSION}.partial-{}",
        std::process::id()
    ));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).ok();
    }
    eprintln!(
        "xtask: creating a Python venv for libtorch in {} (once per machine)",
        venv.display()
    );
    run(
        Command::new(&python).args(["-m", "venv"]).arg(&tmp),
        "python3 -m venv",
    )?;
    let tmp_python = tmp.join("bin").join("python");
    eprintln!("xtask: pip install torch=={TORCH_VERSION} (about 3 GB with its CUDA libraries; a few minutes)");
    let pip = run(
        Command::new(&tmp_python).args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--progress-bar",
            "off",
            &format!("torch=={TORCH_VERSION}"),
        ]),
        "pip install torch",
    );
    if let Err(e) = pip {
        std::fs::remove_dir_all(&tmp).ok();
        bail!(
            "{e:#}\nInstalling torch=={TORCH_VERSION} with pip failed. Check network access to PyPI \
             and free disk space (~5 GB), or set LIBTORCH to an unpacked libtorch {TORCH_VERSION}."
        );
    }
    std::fs::write(tmp.join(".complete"), TORCH_VERSION)?;
    if venv.exists() {
        std::fs::remove_dir_all(venv)
            .with_context(|| format!("cannot replace {}", venv.display()))?;
    }
    match std::fs::rename(&tmp, venv) {
        Ok(()) => Ok(()),
        // Another process finished first: use theirs.
        Err(_) if matches!(probe(venv), Probe::Ready(..)) => {
            std::fs::remove_dir_all(&tmp).ok();
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("cannot move the venv into {}", venv.display())),
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{what}`"))?;
    if !status.success() {
        bail!("`{what}` failed ({status})");
    }
    Ok(())
}
