//! Statistical and reproducibility checks of the opt-in `FastNoise` stream
//! (crates/diffusion-core/src/noise_fast.rs).

use diffusion_core::metrics::normal_cdf;
use diffusion_core::noise_fast::{Kernel, BLOCK};
use diffusion_core::{FastNoise, HostNoise, NoiseSource};
use ndarray::Array2;

const N: usize = 1_000_000;

fn draws(seed: u64) -> Vec<f64> {
    FastNoise::new(seed).normals(N)
}

#[test]
fn first_numbers_match_an_independent_scalar_transcription() {
    // tests/fixtures/fast_noise_reference.py: Python integers for the generator, libm's
    // log/cos/sin for the transform (the Rust code uses its own polynomials).
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fast_noise_seed1.json"
    ))
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let expected: Vec<f64> = v["normals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(expected.len(), 400);
    let got = FastNoise::new(1).normals(expected.len());
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert!((g - e).abs() <= 1e-13 * (1.0 + e.abs()), "{i}: {g} vs {e}");
    }
}

#[test]
fn moments_of_a_million_draws_are_standard_normal() {
    // Standard errors at n = 1e6: mean 0.001, variance 0.0014, skewness 0.0024, excess kurtosis
    // 0.0049; bounds are 5 standard errors (fixed seeds, so no flakes), for three seeds.
    for seed in [1, 2, 12345] {
        let v = draws(seed);
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let m2 = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let m3 = v.iter().map(|x| (x - mean).powi(3)).sum::<f64>() / n;
        let m4 = v.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n;
        let skew = m3 / m2.powf(1.5);
        let kurt = m4 / (m2 * m2) - 3.0;
        assert!(mean.abs() < 0.005, "seed {seed}: mean {mean}");
        assert!((m2 - 1.0).abs() < 0.007, "seed {seed}: variance {m2}");
        assert!(skew.abs() < 0.012, "seed {seed}: skewness {skew}");
        assert!(kurt.abs() < 0.025, "seed {seed}: excess kurtosis {kurt}");
    }
}

/// Kolmogorov-Smirnov distance of `v` to N(0, 1).
fn ks(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    v.iter()
        .enumerate()
        .map(|(i, &x)| {
            let c = normal_cdf(x);
            (c - i as f64 / n).abs().max(((i + 1) as f64 / n - c).abs())
        })
        .fold(0.0, f64::max)
}

#[test]
fn kolmogorov_smirnov_and_tails_match_the_normal_law() {
    // The CDF itself at known values: Phi(0) = 0.5, Phi(1) = 0.841344746, Phi(-2) = 0.022750132.
    for (x, p) in [
        (0.0, 0.5),
        (1.0, 0.841_344_746),
        (-2.0, 0.022_750_132),
        (3.0, 0.998_650_102),
    ] {
        assert!(
            (normal_cdf(x) - p).abs() < 3e-7,
            "Phi({x}) = {}",
            normal_cdf(x)
        );
    }
    let v = draws(7);
    // Critical value at level 0.001: 1.95 / sqrt(n).
    let d = ks(v.clone());
    assert!(d < 1.95 / (N as f64).sqrt(), "KS distance {d}");
    // A law off by 1% in scale is rejected by the same test.
    let d_off = ks(v.iter().map(|x| 1.01 * x).collect());
    assert!(
        d_off > 1.95 / (N as f64).sqrt(),
        "KS did not see a 1% scale error: {d_off}"
    );
    // Tails: P(|z| > 3) = 2.70e-3, P(|z| > 4) = 6.33e-5; counts within 5 Poisson deviations.
    for (t, p) in [(3.0, 2.6998e-3), (4.0, 6.3342e-5)] {
        let k = v.iter().filter(|x| x.abs() > t).count() as f64;
        let e = p * N as f64;
        assert!(
            (k - e).abs() < 5.0 * e.sqrt(),
            "|z| > {t}: {k} draws, expected {e}"
        );
    }
}

#[test]
fn consecutive_draws_are_uncorrelated() {
    // Lags 1..4 cover neighbours; BLOCK / 2 pairs the two halves of one Box-Muller pair (which
    // share the radius: their squares would correlate if the radius were reused wrongly); BLOCK
    // is the next block. Bound: 5 / sqrt(n).
    let v = draws(3);
    let n = v.len();
    let sq: Vec<f64> = v.iter().map(|x| x * x - 1.0).collect();
    let sq_var = sq.iter().map(|x| x * x).sum::<f64>() / n as f64;
    let bound = 5.0 / (n as f64).sqrt();
    for lag in [1, 2, 3, 4, 8, BLOCK / 2, BLOCK] {
        let m = (n - lag) as f64;
        let c = v.iter().zip(&v[lag..]).map(|(a, b)| a * b).sum::<f64>() / m;
        let c2 = sq.iter().zip(&sq[lag..]).map(|(a, b)| a * b).sum::<f64>() / m / sq_var;
        assert!(c.abs() < bound, "lag {lag}: correlation {c}");
        assert!(c2.abs() < bound, "lag {lag}: correlation of squares {c2}");
    }
}

#[test]
fn chunked_draws_equal_one_draw() {
    let total: usize = 7 * BLOCK + 45;
    let whole = FastNoise::new(9).normals(total);
    for sizes in [
        vec![0, 1, 5, BLOCK - 6, BLOCK, 1, BLOCK + 1, 2 * BLOCK, 3],
        vec![3 * BLOCK, 0, 17],
        vec![1; 300],
    ] {
        let mut g = FastNoise::new(9);
        let mut got = Vec::new();
        for s in sizes {
            got.extend(g.normals(s));
        }
        let more = total - got.len();
        got.extend(g.normals(more));
        assert_eq!(got, whole);
    }
    // `fill` (into given slices) and `normals` (appending) give the same numbers.
    let mut g = FastNoise::new(9);
    let mut buf = vec![0.0; total];
    let (a, rest) = buf.split_at_mut(5);
    g.fill(a);
    let (b, c) = rest.split_at_mut(3 * BLOCK + 1);
    g.fill(b);
    g.fill(c);
    assert_eq!(buf, whole);
    let mut g = FastNoise::new(9);
    let mut buf = vec![0.0; total];
    g.fill(&mut buf);
    assert_eq!(buf, whole);
    // Through the NoiseSource trait on arrays (row-major fill), also after a clone.
    let mut g = FastNoise::new(9);
    let a: Array2<f64> = g.standard_normal(&Array2::zeros((10, 3)));
    let mut h = g.clone();
    let b: Array2<f64> = g.standard_normal(&Array2::zeros((100, 2)));
    let b2: Array2<f64> = h.standard_normal(&Array2::zeros((100, 2)));
    assert_eq!(b, b2);
    let flat: Vec<f64> = a.iter().chain(b.iter()).copied().collect();
    assert_eq!(flat, whole[..230].to_vec());
    // f32 states get the rounded f64 numbers.
    let c: Array2<f32> = FastNoise::new(9).standard_normal(&Array2::<f32>::zeros((4, 4)));
    for (x, y) in c.iter().zip(&whole) {
        assert_eq!(*x, *y as f32);
    }
}

#[test]
fn seeds_reproduce_and_differ() {
    assert_eq!(
        FastNoise::new(5).normals(1000),
        FastNoise::new(5).normals(1000)
    );
    let a = FastNoise::new(5).normals(1000);
    for other in [4, 6, 5 ^ (1 << 63)] {
        let b = FastNoise::new(other).normals(1000);
        assert!(a.iter().zip(&b).all(|(x, y)| x != y), "seed {other}");
    }
    // Not the HostNoise stream (opt-in: the default stream is unchanged).
    assert_ne!(a, HostNoise::new(5).normals(1000));
    assert!(a.iter().all(|x| x.is_finite()));
}

/// FNV-1a (64 bit) over the little-endian bytes of every number's bit pattern.
fn fnv1a(v: &[f64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in v {
        for b in x.to_bits().to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

#[test]
fn every_kernel_level_gives_the_baseline_numbers_bit_for_bit() {
    let detected = Kernel::detect();
    assert!(detected.is_available());
    assert_eq!(FastNoise::new(1).kernel(), detected);
    // The detected level is the highest available one.
    for k in Kernel::ALL {
        if k.is_available() {
            assert!(
                Kernel::ALL.iter().position(|&x| x == k)
                    <= Kernel::ALL.iter().position(|&x| x == detected)
            );
        }
    }
    let n = 100_007;
    let base = FastNoise::new(11).with_kernel(Kernel::Baseline).unwrap();
    assert_eq!(base.kernel(), Kernel::Baseline);
    let want: Vec<u64> = base
        .clone()
        .normals(n)
        .iter()
        .map(|x| x.to_bits())
        .collect();
    let mut tested = 0;
    for k in Kernel::ALL {
        match FastNoise::new(11).with_kernel(k) {
            Ok(mut g) => {
                tested += 1;
                let got: Vec<u64> = g.normals(n).iter().map(|x| x.to_bits()).collect();
                assert!(got == want, "{}: differs from the baseline", k.name());
                // Chunked through the buffer and the bulk path, switching level midway.
                let mut g = FastNoise::new(11).with_kernel(k).unwrap();
                let mut v = g.normals(3 * BLOCK + 5);
                let mut g = g.with_kernel(Kernel::Baseline).unwrap();
                v.extend(g.normals(1000));
                let mut g = g.with_kernel(k).unwrap();
                v.extend(g.normals(n - v.len()));
                let got: Vec<u64> = v.iter().map(|x| x.to_bits()).collect();
                assert!(got == want, "{}: chunked draws differ", k.name());
            }
            Err(e) => {
                assert!(!k.is_available());
                assert!(e.to_string().contains(k.name()), "{e}");
            }
        }
    }
    assert!(tested >= 1);
    eprintln!(
        "FastNoise kernel levels checked: {tested}; detected {}",
        detected.name()
    );
}

#[test]
fn checksum_of_three_million_normals_is_pinned() {
    // FNV-1a of the bit patterns of the first 3,000,001 normals of seed 42, from the plain
    // x86-64 (SSE2) build before run-time dispatch existed; every level must reproduce it.
    let n = 3_000_001;
    for k in [Kernel::Baseline, Kernel::detect()] {
        let v = FastNoise::new(42).with_kernel(k).unwrap().normals(n);
        assert_eq!(fnv1a(&v), 0xbdd5_062a_5cd6_ef7e, "{}", k.name());
    }
    // The checksum sees a one-ulp change.
    let mut v = FastNoise::new(42).normals(1000);
    let h = fnv1a(&v);
    v[999] = f64::from_bits(v[999].to_bits() + 1);
    assert_ne!(fnv1a(&v), h);
}
