//! Per-step overhead of the solvers on ndarray states of 4096 x 2 and 64 x 3 x 32 x 32, with a
//! denoiser that costs one scaled copy, next to a bare `a x + b y` loop over the same memory
//! (the memory-bandwidth floor of one linear combination).
//!
//! Run: `cargo xtask run -- bench -p diffusion-benches --bench solver_step`.

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use diffusion::core::schedule::VpLinear;
use diffusion::core::{HostNoise, IndependentIncrements, NoiseSource, State, TimeGrid};
use diffusion::solvers::{registry, sample, NoObserver};
use diffusion_benches::HalfDenoiser;
use ndarray::{ArrayD, IxDyn};
use std::hint::black_box;

fn bench_steps(c: &mut Criterion) {
    let vp = VpLinear::default();
    let steps = 10; // each measurement is one 10-step sampling run
    let grid = TimeGrid::log_snr_uniform(&vp, 1.0, 1e-3, steps).expect("grid");
    let shapes: [(&str, Vec<usize>); 2] = [
        ("4096x2", vec![4096, 2]),
        ("64x3x32x32", vec![64, 3, 32, 32]),
    ];
    for (label, shape) in shapes {
        let x: ArrayD<f64> =
            HostNoise::new(0).standard_normal(&ArrayD::<f64>::zeros(IxDyn(&shape)));
        let mut group = c.benchmark_group(format!("step/{label}"));
        group.sample_size(20);
        let y = x.scale(0.3);
        group.bench_function("bare_axpby", |b| {
            b.iter(|| black_box(x.lincomb(0.7, &y, 0.2)))
        });
        for name in ["euler", "heun", "ddim", "dpmpp-2m", "euler-maruyama"] {
            let solver = registry::build::<ArrayD<f64>>(name).expect("solver");
            group.bench_with_input(BenchmarkId::new("ten_steps", name), &name, |b, _| {
                b.iter(|| {
                    let mut noise = IndependentIncrements::seeded(1);
                    black_box(
                        sample(
                            solver.as_ref(),
                            &HalfDenoiser,
                            &vp,
                            &grid,
                            x.dup(),
                            &mut noise,
                            &mut NoObserver,
                        )
                        .expect("sample"),
                    )
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_steps);
criterion_main!(benches);
