"""One sampling pass of the Rust sampler under torch.profiler, inside this Python process.

Loads the C ABI library of benches/ffi (`libdiffusion_bench_ffi.so`, built with `cargo xtask run
-- build --release -p diffusion-bench-ffi`) with ctypes after importing torch, so the library
uses the libtorch this process has loaded and the profiler's CPU and CUDA tracing sees every
operator and kernel it runs. Builds the pass (`SamplingPass`: the config with `--set` overrides,
`--n` items, the sampler or with `--net-only` the network alone), runs it once untimed, then once
profiled, and prints the summary of profile_summary.py (`profile_rust ...`), comparable with
`sample_diffusers.py --profile` (`profile_diffusers ...`) call for call.

    python3 tools/bench/gpu/profile_rust.py --lib .dev/bin/libdiffusion_bench_ffi.so \\
        --config /tmp/fmnist-edm-compare.toml --set sample.solver=euler --set sample.steps=32 --n 1000
"""

import argparse
import ctypes
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from profile_summary import profiled, report  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lib", default=".dev/bin/libdiffusion_bench_ffi.so")
    p.add_argument("--config", required=True, help="training config (its device decides where the pass runs)")
    p.add_argument("--set", action="append", default=[], help="KEY=VALUE override (repeatable)")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--net-only", action="store_true")
    a = p.parse_args()
    if torch.cuda.is_available():
        torch.cuda.init()
    lib = ctypes.CDLL(os.path.abspath(a.lib))
    lib.diffusion_pass_new.restype = ctypes.c_void_p
    lib.diffusion_pass_new.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint64, ctypes.c_int]
    lib.diffusion_pass_run.restype = ctypes.c_double
    lib.diffusion_pass_run.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
    lib.diffusion_pass_free.argtypes = [ctypes.c_void_p]
    handle = lib.diffusion_pass_new(a.config.encode(), "\n".join(a.set).encode(), a.n, int(a.net_only))
    if not handle:
        sys.exit("profile_rust: the pass could not be built (see above)")
    try:
        warm = lib.diffusion_pass_run(handle, 1)
        if warm != warm:  # NaN: an error
            sys.exit("profile_rust: the warm-up pass failed (see above)")
        # A pass ends by reading a value back, so it has waited for the device: nothing to sync.
        device_type = "cuda" if torch.cuda.is_available() else "cpu"
        prof, wall = profiled(lambda: lib.diffusion_pass_run(handle, 0), device_type, lambda: None)
        report(prof, wall, "rust_net" if a.net_only else "rust")
    finally:
        lib.diffusion_pass_free(handle)


if __name__ == "__main__":
    main()
