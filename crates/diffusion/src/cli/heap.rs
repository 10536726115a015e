//! The network commands on the CPU (`diffusion train`, `generate`, `eval --nll`) re-execute
//! themselves with glibc's heap thresholds raised before they allocate anything large
//! (`diffusion_models::host_malloc`): with glibc's defaults the large activations of every
//! update or network evaluation are handed back to the kernel and faulted in again. Measured in
//! docs/results.md: a small U-Net trains 10-25% faster ("Training throughput") and samples 1.55x
//! faster ("The samplers of the quality comparison are the same sampler").

#![cfg(feature = "tch")]

use diffusion::models::host_malloc::{
    reexec_with_malloc_tunables, MallocTuning, KEEP_DEFAULTS_VAR, MALLOC_TUNABLES,
};
use diffusion::models::tch::Device;

/// Re-executes with the raised thresholds when the run's `device` is the CPU (nothing on a
/// GPU), and says on stderr, as `who`, which settings the run uses.
pub(super) fn cpu_heap_settings(device: Device, who: &str) {
    if device != Device::Cpu {
        return;
    }
    match reexec_with_malloc_tunables() {
        MallocTuning::AlreadySet => eprintln!(
            "{who}: glibc heap settings GLIBC_TUNABLES={} ({KEEP_DEFAULTS_VAR}=1 keeps glibc's \
             defaults)",
            std::env::var("GLIBC_TUNABLES").unwrap_or_default()
        ),
        MallocTuning::KeptDefaults => eprintln!(
            "{who}: glibc's default heap thresholds ({KEEP_DEFAULTS_VAR}=1); large tensors \
             page-fault on every pass (GLIBC_TUNABLES={MALLOC_TUNABLES} trained a small U-Net \
             10-25% faster and sampled it 1.55x faster here, docs/results.md)"
        ),
        MallocTuning::NotGlibc => {}
        MallocTuning::Failed(why) => {
            eprintln!("{who}: kept glibc's default heap thresholds: {why}")
        }
    }
}
