//! glibc heap settings for training and sampling networks on the CPU.
//!
//! libtorch takes every CPU tensor from the C heap. With glibc's default thresholds the heap of a
//! training process swings by more than the largest trim threshold glibc's dynamic rule can reach
//! (64 MiB) on every update (a small U-Net's attention scores alone are 20 MiB per layer), so the
//! top of the heap is handed back to the kernel after each update and faulted in again, page by
//! page, on the next: measured in docs/results.md ("Training throughput"), 12 `brk` calls and
//! about 20k page faults per update for a 757k-parameter U-Net at batch 32, 10-25% of the run time.
//!
//! glibc reads its tunables once, when the process starts, and changing them later needs
//! `mallopt` (a foreign call, which this workspace does not make). So the programs that train or
//! sample networks (`diffusion train`, `generate`, `eval --nll`, `train_bench`; sampling a small
//! U-Net 1.55x faster, docs/results.md) call
//! [`reexec_with_malloc_tunables`] before they allocate anything large: it starts the same program
//! again, in the same process (`exec`), with [`MALLOC_TUNABLES`] added to `GLIBC_TUNABLES`.
//! Nothing changes where a value for either threshold is already set, on other C libraries, or
//! with `DIFFUSION_GLIBC_DEFAULTS=1` in the environment (to measure or keep glibc's defaults).

use std::ffi::OsString;

/// The settings: never trim the heap below 1 GiB of free top, and serve blocks below 32 MiB from
/// the heap instead of fresh `mmap`s (the settings of the project's per-step timings).
pub const MALLOC_TUNABLES: &str =
    "glibc.malloc.trim_threshold=1073741824:glibc.malloc.mmap_threshold=33554432";

/// Set to `1` to keep glibc's default thresholds (no re-exec).
pub const KEEP_DEFAULTS_VAR: &str = "DIFFUSION_GLIBC_DEFAULTS";

/// What [`reexec_with_malloc_tunables`] found when it did not re-execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MallocTuning {
    /// The thresholds are already set in `GLIBC_TUNABLES` (by the user, or by an earlier
    /// re-exec of this program).
    AlreadySet,
    /// `DIFFUSION_GLIBC_DEFAULTS=1`: glibc's defaults were asked for.
    KeptDefaults,
    /// Not a glibc target: nothing to do.
    NotGlibc,
    /// The re-exec could not start (the message says why); the program goes on with glibc's
    /// defaults.
    Failed(String),
}

/// The `GLIBC_TUNABLES` value to run with, or `None` when `current` already sets a malloc
/// threshold (those are left as the user chose them). Other tunables in `current` are kept.
pub fn tunables_with_thresholds(current: Option<&str>) -> Option<String> {
    match current.map(str::trim).filter(|c| !c.is_empty()) {
        None => Some(MALLOC_TUNABLES.to_string()),
        Some(c)
            if c.split(':').any(|kv| {
                kv.starts_with("glibc.malloc.trim_threshold=")
                    || kv.starts_with("glibc.malloc.mmap_threshold=")
            }) =>
        {
            None
        }
        Some(c) => Some(format!("{c}:{MALLOC_TUNABLES}")),
    }
}

/// Re-executes the running program (same arguments, same process id and open files) with
/// [`MALLOC_TUNABLES`] added to `GLIBC_TUNABLES`, on glibc, unless the thresholds are already
/// set or `DIFFUSION_GLIBC_DEFAULTS=1`. Returns only when it did not re-execute, saying why; call
/// it first thing in a program that trains on the CPU (work done before it is done twice).
pub fn reexec_with_malloc_tunables() -> MallocTuning {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return MallocTuning::NotGlibc;
    }
    if std::env::var_os(KEEP_DEFAULTS_VAR).is_some_and(|v| v == "1") {
        return MallocTuning::KeptDefaults;
    }
    let current = std::env::var_os("GLIBC_TUNABLES");
    let current = current.as_ref().map(|c| c.to_string_lossy().into_owned());
    let Some(value) = tunables_with_thresholds(current.as_deref()) else {
        return MallocTuning::AlreadySet;
    };
    reexec(value)
}

#[cfg(unix)]
fn reexec(value: String) -> MallocTuning {
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return MallocTuning::Failed(format!("cannot find the running program: {e}")),
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| OsString::from(&exe));
    // `exec` only returns on failure.
    let err = std::process::Command::new(&exe)
        .arg0(arg0)
        .args(args)
        .env("GLIBC_TUNABLES", value)
        .exec();
    MallocTuning::Failed(format!("re-executing {}: {err}", exe.display()))
}

#[cfg(not(unix))]
fn reexec(_value: String) -> MallocTuning {
    MallocTuning::NotGlibc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_added_once_and_user_values_win() {
        assert_eq!(
            tunables_with_thresholds(None).as_deref(),
            Some(MALLOC_TUNABLES)
        );
        assert_eq!(
            tunables_with_thresholds(Some("  ")).as_deref(),
            Some(MALLOC_TUNABLES)
        );
        assert_eq!(
            tunables_with_thresholds(Some("glibc.malloc.arena_max=2")),
            Some(format!("glibc.malloc.arena_max=2:{MALLOC_TUNABLES}"))
        );
        // Our own value (after a re-exec) and a user's threshold are left alone.
        assert_eq!(tunables_with_thresholds(Some(MALLOC_TUNABLES)), None);
        assert_eq!(
            tunables_with_thresholds(Some("glibc.malloc.mmap_threshold=65536")),
            None
        );
        assert_eq!(
            tunables_with_thresholds(Some(
                "glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=0"
            )),
            None
        );
    }
}
