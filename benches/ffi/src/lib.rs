//! A C ABI over [`diffusion_benches::sampling::SamplingPass`]: tools/bench/gpu/profile_rust.py
//! loads this library with `ctypes` into a Python process that has imported torch (the same
//! libtorch libraries, already loaded, serve both), builds a pass, runs it once untimed and once
//! under `torch.profiler`, whose CPU and CUDA activity tracing covers every operator and kernel
//! of the process: the Rust sampler's kernel profile on a machine without nsys, next to the
//! PyTorch side's (`sample_diffusers.py --profile`).
//!
//! The whole unsafe surface of the workspace is here: reading two C strings and owning one
//! boxed handle. Errors are printed to stderr and reported as a null handle or a NaN result.

use diffusion_benches::sampling::SamplingPass;
use std::ffi::{c_char, CStr};
use std::path::Path;

/// Builds a pass: `config` is the path of a training config, `sets` its `KEY=VALUE` overrides
/// separated by newlines (may be empty), `n` the items per pass, `net_only` nonzero to call the
/// network alone. Returns an owned handle (free it with [`diffusion_pass_free`]) or null on an
/// error (printed to stderr).
///
/// # Safety
/// `config` and `sets` must be valid NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn diffusion_pass_new(
    config: *const c_char,
    sets: *const c_char,
    n: u64,
    net_only: i32,
) -> *mut SamplingPass {
    // SAFETY: the caller passes valid NUL-terminated strings (see the function's contract).
    let (config, sets) = unsafe { (CStr::from_ptr(config), CStr::from_ptr(sets)) };
    let config = config.to_string_lossy();
    let sets: Vec<String> = sets
        .to_string_lossy()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    match SamplingPass::new(
        Path::new(config.as_ref()),
        &sets,
        None,
        n as usize,
        net_only != 0,
    ) {
        Ok(p) => Box::into_raw(Box::new(p)),
        Err(e) => {
            eprintln!("diffusion_pass_new: {e:#}");
            std::ptr::null_mut()
        }
    }
}

/// Runs one pass of `pass` with initial noise from `seed`; returns the mean of its output (read
/// back, so the device has finished), or NaN on an error (printed to stderr).
///
/// # Safety
/// `pass` must be a handle from [`diffusion_pass_new`] that was not freed.
#[no_mangle]
pub unsafe extern "C" fn diffusion_pass_run(pass: *const SamplingPass, seed: u64) -> f64 {
    // SAFETY: a live handle from `diffusion_pass_new` (the function's contract).
    let Some(pass) = (unsafe { pass.as_ref() }) else {
        eprintln!("diffusion_pass_run: null handle");
        return f64::NAN;
    };
    pass.run(seed).unwrap_or_else(|e| {
        eprintln!("diffusion_pass_run: {e:#}");
        f64::NAN
    })
}

/// Frees a handle from [`diffusion_pass_new`] (null is ignored).
///
/// # Safety
/// `pass` must be null or a handle from [`diffusion_pass_new`], freed only once.
#[no_mangle]
pub unsafe extern "C" fn diffusion_pass_free(pass: *mut SamplingPass) {
    if !pass.is_null() {
        // SAFETY: the handle came from `Box::into_raw` in `diffusion_pass_new` and is freed once.
        drop(unsafe { Box::from_raw(pass) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    /// A pass over the toy MLP through the C ABI: built, run twice with the same seed to the
    /// same mean (finite), the network-only pass too; a missing config is a null handle, a null
    /// handle a NaN result, and freeing null does nothing.
    #[test]
    fn a_pass_runs_through_the_c_abi_and_errors_are_null_or_nan() {
        let dir = std::env::temp_dir().join(format!("diffusion_ffi_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("toy.toml");
        std::fs::write(
            &cfg,
            "seed = 1\n[data]\ntoy = \"8gaussians\"\n[model]\nhidden = 16\ndepth = 1\n\
             [loss]\nkind = \"edm\"\nsigma_data = 2.0\n[train]\nsteps = 1\nema_decays = [0.9]\n",
        )
        .unwrap();
        let config = CString::new(cfg.to_string_lossy().as_bytes()).unwrap();
        let sets = CString::new("sample.solver=\"euler\"\nsample.steps=4\n").unwrap();
        for net_only in [0, 1] {
            // SAFETY: valid strings; the handle is used while alive and freed once.
            unsafe {
                let p = diffusion_pass_new(config.as_ptr(), sets.as_ptr(), 16, net_only);
                assert!(!p.is_null());
                let (a, b) = (diffusion_pass_run(p, 3), diffusion_pass_run(p, 3));
                assert!(a.is_finite() && a == b, "{a} {b}");
                diffusion_pass_free(p);
            }
        }
        let missing = CString::new(dir.join("none.toml").to_string_lossy().as_bytes()).unwrap();
        // SAFETY: valid strings; null handles are allowed by both functions.
        unsafe {
            assert!(diffusion_pass_new(missing.as_ptr(), sets.as_ptr(), 16, 0).is_null());
            assert!(diffusion_pass_run(std::ptr::null(), 0).is_nan());
            diffusion_pass_free(std::ptr::null_mut());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
