//! The initial noise of an image sampling pass drawn on the host: `HostNoise::new(seed)` normals
//! (ChaCha20, `rand_distr::StandardNormal`), scaled and rounded to float32 in one pass, as
//! `Trainer::sample_with` makes the initial state (1000 Fashion-MNIST images: 784,000 numbers).
//! Its PyTorch counterpart is `torch.randn((1000, 1, 28, 28), generator=g) * 80` (the command
//! next to the numbers in docs/results.md).
//!
//! Run: `cargo xtask run -- bench -p diffusion-benches --bench host_noise`.

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use criterion::{criterion_group, criterion_main, Criterion};
use diffusion::core::HostNoise;
use std::hint::black_box;

fn bench_initial_noise(c: &mut Criterion) {
    let numel = 1000 * 784;
    let scale = 80.0;
    let mut group = c.benchmark_group("initial_noise");
    group.sample_size(20);
    group.bench_function("host_chacha20_1000x784_f32", |b| {
        b.iter(|| {
            let z: Vec<f32> = HostNoise::new(black_box(0))
                .normals(numel)
                .iter()
                .map(|v| (v * scale) as f32)
                .collect();
            black_box(z)
        })
    });
    group.finish();
}

criterion_group!(benches, bench_initial_noise);
criterion_main!(benches);
