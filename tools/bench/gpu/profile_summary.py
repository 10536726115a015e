"""What `torch.profiler` saw during one sampling pass, printed the same way for both sides
(sample_diffusers.py --profile for PyTorch + diffusers, profile_rust.py for the Rust sampler):

    profile_<side> wall_s=... gpu_kernel_s=... kernels=... busy=... aten_ops=...

then the heaviest GPU kernels (on a GPU) and the most frequent aten operators with their counts,
so the two sides' operator sequences can be compared call for call. With PROFILE_COUNTS=<file>
every event's count and self time is also written there as JSON (diff two such files).
"""

import json
import os
import time

from torch.profiler import ProfilerActivity, profile


def activities(device_type):
    return [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device_type == "cuda" else [])


def report(prof, wall, side, top=12):
    events = prof.key_averages()
    kern = sum(e.self_device_time_total for e in events) / 1e6
    kernels = sum(e.count for e in events if e.self_device_time_total > 0)
    ops = [e for e in events if e.key.startswith("aten::")]
    # Top-level operators only would need the call tree; the counts below include nested calls
    # (aten::conv2d -> aten::convolution -> ...) on both sides alike.
    n_ops = sum(e.count for e in ops)
    busy = kern / wall if wall > 0 else float("nan")
    print(f"profile_{side} wall_s={wall:.3f} gpu_kernel_s={kern:.3f} kernels={kernels} busy={busy:.3f} "
          f"aten_ops={n_ops}", flush=True)
    if kernels:
        for e in sorted(events, key=lambda e: -e.self_device_time_total)[:8]:
            print(f"  kernel {e.self_device_time_total / 1e3:9.1f} ms  {e.count:6d}x  {e.key[:90]}", flush=True)
    for e in sorted(ops, key=lambda e: (-e.count, e.key))[:top]:
        print(f"  op {e.count:7d}x  {e.key}", flush=True)
    dump = os.environ.get("PROFILE_COUNTS")
    if dump:  # every operator's and kernel's count and time, for diffing the two sides
        rows = {e.key: {"count": e.count, "cpu_us": e.self_cpu_time_total, "gpu_us": e.self_device_time_total}
                for e in events}
        with open(dump, "w") as f:
            json.dump({"side": side, "wall_s": wall, "events": rows}, f, indent=0)


def profiled(fn, device_type, sync):
    """Runs `fn()` under the profiler, then `sync()`; returns (profile, wall seconds)."""
    with profile(activities=activities(device_type)) as prof:
        t0 = time.perf_counter()
        fn()
        sync()
        wall = time.perf_counter() - t0
    return prof, wall
