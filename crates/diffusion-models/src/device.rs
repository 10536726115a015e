//! Devices and the libtorch health check behind `diffusion doctor`.
//!
//! It reports the libtorch version actually loaded (read from the folder of the mapped
//! `libtorch_cpu.so`), whether `libtorch_cuda.so` was linked at build time and is loaded now,
//! CUDA availability and device names, and checks a matrix product against a plain Rust one.

use crate::error::{ModelError, Result};
use std::path::PathBuf;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Parses `cpu`, `cuda`, `cuda:N` or `auto` (CUDA 0 when available, else CPU).
pub fn parse_device(text: &str) -> Result<Device> {
    let t = text.trim().to_ascii_lowercase();
    match t.as_str() {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(Device::cuda_if_available()),
        "cuda" | "gpu" => cuda_device(0, text),
        _ => match t
            .strip_prefix("cuda:")
            .and_then(|i| i.parse::<usize>().ok())
        {
            Some(i) => cuda_device(i, text),
            None => Err(ModelError::DeviceUnavailable(format!(
                "{text} (expected cpu, cuda, cuda:N or auto)"
            ))),
        },
    }
}

/// `t` (a host tensor) on `device`. To a GPU it goes through pinned memory without blocking the
/// host (the copy is ordered on the current stream, and libtorch keeps the pinned block alive until
/// it is done), so the host can prepare the next batch while the GPU works.
///
/// The pinned copy is made by the `_pin_memory` operator: tch 0.24's `pin_memory` always passes a
/// device, which PyTorch 2.11 deprecates with two warnings printed on every call (`pin_memory`
/// and the `is_pinned` check it makes), thousands per training run. `_pin_memory` is the
/// operator `pin_memory` itself calls after that check (a fresh host tensor is never pinned).
pub fn upload(t: &Tensor, device: Device) -> Tensor {
    match device {
        Device::Cuda(_) if t.device() == Device::Cpu => {
            t.internal_pin_memory(device)
                .to_device_(device, t.kind(), true, false)
        }
        _ => t.to_device(device),
    }
}

fn cuda_device(i: usize, text: &str) -> Result<Device> {
    if tch::Cuda::is_available() && i < tch::Cuda::device_count() as usize {
        Ok(Device::Cuda(i))
    } else {
        Err(ModelError::DeviceUnavailable(text.to_string()))
    }
}

/// The libraries of this process whose file name contains `needle` (from /proc/self/maps).
fn mapped_libraries(needle: &str) -> Vec<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut out: Vec<PathBuf> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.contains(needle))
        .map(PathBuf::from)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The version of the loaded libtorch: `torch/version.py` for a pip install, `build-version`
/// for a libtorch distribution.
fn loaded_version(lib: &std::path::Path) -> Option<String> {
    let root = lib.parent()?.parent()?;
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("__version__") {
                return Some(
                    v.trim_start_matches([' ', '='])
                        .trim()
                        .trim_matches(['\'', '"'])
                        .to_string(),
                );
            }
        }
    }
    std::fs::read_to_string(root.join("build-version"))
        .ok()
        .map(|s| s.trim().to_string())
}

fn gpu_names() -> Vec<String> {
    std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name,memory.total", "--format=csv,noheader"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| l.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// One matrix-product check on a device.
#[derive(Debug, Clone)]
pub struct MatmulCheck {
    /// The device checked.
    pub device: String,
    /// Largest absolute difference from the reference product.
    pub max_abs_err: f64,
    /// Measured throughput of a 1024 x 1024 f32 product, GFLOP/s (median of 5).
    pub gflops: f64,
}

/// Everything `diffusion doctor` prints.
#[derive(Debug, Clone)]
pub struct DoctorReport {
    /// Version of the loaded libtorch.
    pub libtorch_version: String,
    /// Where the loaded libtorch_cpu.so is.
    pub libtorch_path: String,
    /// libtorch's lib folder seen at build time.
    pub build_lib_dir: String,
    /// Whether the build linked libtorch_cuda.so with `--no-as-needed`.
    pub cuda_linked_at_build: bool,
    /// Whether libtorch_cuda.so is mapped into this process.
    pub cuda_library_loaded: bool,
    /// `tch::Cuda::is_available()`.
    pub cuda_available: bool,
    /// `tch::Cuda::cudnn_is_available()`.
    pub cudnn_available: bool,
    /// Number of CUDA devices.
    pub cuda_devices: i64,
    /// Device names from `nvidia-smi`, when present.
    pub gpu_names: Vec<String>,
    /// Threads libtorch uses on the CPU.
    pub cpu_threads: i32,
    /// Matmul checks: CPU always, CUDA 0 when available.
    pub checks: Vec<MatmulCheck>,
}

fn check_matmul(device: Device) -> MatmulCheck {
    // Correctness: a 64 x 48 by 48 x 32 product against a plain f64 triple loop.
    let (m, k, n) = (64usize, 48usize, 32usize);
    let a: Vec<f64> = (0..m * k)
        .map(|i| ((i * 37 % 101) as f64 - 50.0) / 25.0)
        .collect();
    let b: Vec<f64> = (0..k * n)
        .map(|i| ((i * 53 % 97) as f64 - 48.0) / 24.0)
        .collect();
    let ta = Tensor::from_slice(&a)
        .reshape([m as i64, k as i64])
        .to_device(device);
    let tb = Tensor::from_slice(&b)
        .reshape([k as i64, n as i64])
        .to_device(device);
    let tc = ta.matmul(&tb).to_device(Device::Cpu);
    let got: Vec<f64> = Vec::<f64>::try_from(&tc.reshape([-1])).unwrap_or_default();
    let mut max_abs_err: f64 = if got.len() == m * n {
        0.0
    } else {
        f64::INFINITY
    };
    for i in 0..m {
        for j in 0..n {
            let want: f64 = (0..k).map(|l| a[i * k + l] * b[l * n + j]).sum();
            if let Some(g) = got.get(i * n + j) {
                max_abs_err = max_abs_err.max((g - want).abs());
            }
        }
    }
    // Speed: 1024^3 f32 products, median of 5 after a warm-up.
    let x = Tensor::randn([1024, 1024], (Kind::Float, device));
    let y = Tensor::randn([1024, 1024], (Kind::Float, device));
    let sync = |t: &Tensor| {
        let _ = t.sum(Kind::Float).double_value(&[]);
    };
    sync(&x.matmul(&y));
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let t0 = Instant::now();
            sync(&x.matmul(&y));
            t0.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    MatmulCheck {
        device: format!("{device:?}"),
        max_abs_err,
        gflops: 2.0 * 1024f64.powi(3) / times[2] / 1e9,
    }
}

/// Runs every check (a second or two on a CPU).
pub fn doctor() -> DoctorReport {
    let libs = mapped_libraries("libtorch_cpu.so");
    let libtorch_path = libs
        .first()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "not mapped".into());
    let libtorch_version = libs
        .first()
        .and_then(|p| loaded_version(p))
        .unwrap_or_else(|| "unknown".into());
    let cuda_available = tch::Cuda::is_available();
    let mut checks = vec![check_matmul(Device::Cpu)];
    if cuda_available {
        checks.push(check_matmul(Device::Cuda(0)));
    }
    DoctorReport {
        libtorch_version,
        libtorch_path,
        build_lib_dir: option_env!("DIFFUSION_LIBTORCH_LIB_AT_BUILD")
            .unwrap_or("unknown")
            .to_string(),
        cuda_linked_at_build: cfg!(torch_cuda_linked),
        cuda_library_loaded: !mapped_libraries("libtorch_cuda.so").is_empty(),
        cuda_available,
        cudnn_available: tch::Cuda::cudnn_is_available(),
        cuda_devices: tch::Cuda::device_count(),
        gpu_names: gpu_names(),
        cpu_threads: tch::get_num_threads(),
        checks,
    }
}

impl std::fmt::Display for DoctorReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "libtorch version        {}", self.libtorch_version)?;
        writeln!(f, "libtorch loaded from    {}", self.libtorch_path)?;
        writeln!(f, "libtorch lib at build   {}", self.build_lib_dir)?;
        writeln!(
            f,
            "libtorch_cuda linked    {} (at build), {} (loaded now)",
            self.cuda_linked_at_build, self.cuda_library_loaded
        )?;
        writeln!(
            f,
            "CUDA available          {} ({} device(s)), cuDNN {}",
            self.cuda_available, self.cuda_devices, self.cudnn_available
        )?;
        for (i, name) in self.gpu_names.iter().enumerate() {
            writeln!(f, "GPU {i}                   {name}")?;
        }
        writeln!(f, "CPU threads             {}", self.cpu_threads)?;
        for c in &self.checks {
            let ok = if c.max_abs_err < 1e-3 { "ok" } else { "WRONG" };
            writeln!(f, "matmul {:<16} {ok}: max |err| {:.2e} vs a Rust f64 product; {:.1} GFLOP/s (1024^3 f32)", c.device, c.max_abs_err, c.gflops)?;
        }
        Ok(())
    }
}

impl DoctorReport {
    /// `true` when every matmul check is within tolerance.
    pub fn healthy(&self) -> bool {
        self.checks.iter().all(|c| c.max_abs_err < 1e-3)
    }
}
