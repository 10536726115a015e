//! [`FastNoise`]: an opt-in, vectorisable standard normal stream for host states.
//!
//! Paper: D. Blackman, S. Vigna (2021), "Scrambled linear pseudorandom number generators", ACM
//! Trans. Math. Softw. 47(4), arXiv:1805.01407 (xoshiro256++, Sec. 4 and Fig. 2; SplitMix64
//! seeding as recommended there); G. E. P. Box, M. E. Muller (1958), "A note on the generation
//! of random normal deviates", Ann. Math. Statist. 29(2) (the transform
//! `(sqrt(-2 ln u) cos 2 pi v, sqrt(-2 ln u) sin 2 pi v)`).
//!
//! # Design
//!
//! [`LANES`] independent xoshiro256++ generators run side by side in structure-of-arrays form, so
//! one round (one output of every lane) is a plain loop over fixed-size arrays that the compiler
//! vectorises with whatever SIMD width the kernel is compiled for (SSE2, AVX2, AVX-512, NEON; see
//! "Run-time dispatch" below) and no `unsafe`. Lane `l` is seeded with the words `4 l .. 4 l + 3` of a SplitMix64 sequence started
//! at the seed (a bijection of its counter, so no lane starts in the forbidden all-zero state).
//! Normals are made in blocks of [`BLOCK`] numbers: `BLOCK / (2 LANES)` rounds give the radius
//! words, as many more the angle words, then the Box-Muller transform runs over the block with
//! hand-written polynomial `ln`, `sin` and `cos` (no libm calls):
//!
//! - `u = 2 - m`, `m` in `[1, 2)` built from the word's top 52 bits, so `u` is in `(0, 1]`
//!   (exact, never 0; the largest radius is `sqrt(2 * 52 ln 2) = 8.49`);
//! - `ln u = k ln 2 + 2 atanh(s)`, `s = (m' - 1) / (m' + 1)`, `m'` in `[sqrt(1/2), sqrt(2))`
//!   (integer range reduction), the atanh series to `s^19` (relative error below 3e-17);
//! - the angle: the word's top 2 bits pick a quadrant, the next 52 bits an offset `x` in
//!   `[-pi/4, pi/4)`; `sin x` and `cos x` by their Taylor series to `x^15` / `x^16` (error below
//!   5e-17), rotated into the quadrant by exact swaps and sign flips.
//!
//! Only IEEE-754 additions, multiplications, divisions and square roots (all correctly rounded,
//! never fused) and integer operations are used, so the numbers are bit-identical on every
//! platform, SIMD width and optimisation level, and for every thread count (one stream, no
//! threads). Blocks are consumed in order through a buffer, so drawing `n` then `m` numbers gives
//! exactly the numbers of drawing `n + m`.
//!
//! # Run-time dispatch
//!
//! The block kernel (xoshiro rounds, Box-Muller, `ln`, `sin`, `cos`) is one generic function
//! marked `#[inline(always)]` and compiled once per [`Kernel`] level inside the `pulp` crate's
//! safe target-feature dispatch (`pulp::Simd::vectorize`; no `unsafe` in this crate), so a
//! default x86-64 build runs it with AVX2 or AVX-512 where the CPU has them:
//!
//! - [`Kernel::Baseline`]: the build's own target features (SSE2 on plain x86-64, NEON on
//!   aarch64); the only level on other architectures;
//! - [`Kernel::X86V3`] (x86-64 only): x86-64-v3, AVX2 + BMI1/2 + FMA + LZCNT (four 64-bit lanes);
//! - [`Kernel::X86V4`] (x86-64 only): x86-64-v4, the above + AVX-512 F/BW/CD/DQ/VL (eight 64-bit
//!   lanes, vector 64-bit rotates and shifts).
//!
//! [`FastNoise::new`] picks the best level the CPU has ([`Kernel::detect`]);
//! [`FastNoise::with_kernel`] forces one. Enabling FMA does not change results: Rust never
//! contracts `a * b + c` into a fused operation on its own and the kernel calls no `mul_add`; the
//! tests (tests/fast_noise.rs) check that every available level gives bit-identical numbers to
//! the baseline level.
//!
//! # Quality
//!
//! xoshiro256++ passes BigCrush and PractRand to at least 32 TB (Blackman & Vigna 2021); its
//! period is `2^256 - 1` per lane, and lanes seeded from distinct SplitMix64 words overlap with
//! negligible probability. The transform is exact Box-Muller up to rounding (about 1e-16
//! relative), with the uniform discretised to 2^-52: the law is N(0, 1) except beyond 8.49
//! standard deviations (probability 2e-17). The tests (tests/fast_noise.rs) check the moments,
//! a Kolmogorov-Smirnov distance and the tails on 1e6 draws, lag correlations of the draws and of
//! their squares, the xoshiro256++ reference vector and the first numbers against an independent
//! scalar transcription.
//!
//! This is a different stream from [`crate::HostNoise`] (ChaCha20, which stays the default behind
//! every seeded result); it is about 5x cheaper per normal and meant for throughput-bound
//! stochastic sampling: `IndependentIncrements::new(FastNoise::new(seed))`.

use crate::noise::NoiseSource;
use crate::state::State;

/// Number of interleaved xoshiro256++ generators.
pub const LANES: usize = 8;
/// Normals made per block (a multiple of `2 LANES`).
pub const BLOCK: usize = 128;
const PAIRS: usize = BLOCK / 2;
const ROUNDS: usize = PAIRS / LANES;

/// Seeded, vectorisable standard normal stream (xoshiro256++ lanes and Box-Muller; see the
/// module docs). Not the [`crate::HostNoise`] stream: opt in where throughput matters.
#[derive(Debug, Clone)]
pub struct FastNoise {
    /// State words `s[0..4]` of every lane (structure of arrays).
    s: [[u64; LANES]; 4],
    buf: [f64; BLOCK],
    /// Next unread position in `buf` (`BLOCK`: empty).
    pos: usize,
    /// Instruction-set level the blocks are made with (numbers are the same for every level).
    kernel: Kernel,
}

/// Instruction-set level of [`FastNoise`]'s block kernel (see the module docs, "Run-time
/// dispatch"). Every level gives bit-identical numbers; only the speed differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Compiled for the build's target features only (SSE2 on a default x86-64 build).
    Baseline,
    /// x86-64-v3: AVX2, BMI1/2, FMA, LZCNT (x86-64 only).
    X86V3,
    /// x86-64-v4: x86-64-v3 and AVX-512 F/BW/CD/DQ/VL (x86-64 only).
    X86V4,
}

impl Kernel {
    /// Every level, lowest first.
    pub const ALL: [Kernel; 3] = [Kernel::Baseline, Kernel::X86V3, Kernel::X86V4];

    /// Whether this CPU (and architecture) can run the level; `Baseline` always can.
    pub fn is_available(self) -> bool {
        match self {
            Kernel::Baseline => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::X86V3 => pulp::x86::V3::is_available(),
            #[cfg(target_arch = "x86_64")]
            Kernel::X86V4 => pulp::x86::V4::is_available(),
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::X86V3 | Kernel::X86V4 => false,
        }
    }

    /// The highest level this CPU can run (what [`FastNoise::new`] uses).
    pub fn detect() -> Kernel {
        Kernel::ALL
            .into_iter()
            .rev()
            .find(|k| k.is_available())
            .unwrap_or(Kernel::Baseline)
    }

    /// A short name: `baseline`, `x86-64-v3 (AVX2)` or `x86-64-v4 (AVX-512)`.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Baseline => "baseline",
            Kernel::X86V3 => "x86-64-v3 (AVX2)",
            Kernel::X86V4 => "x86-64-v4 (AVX-512)",
        }
    }
}

/// One SplitMix64 step (Steele, Lea, Flood 2014): advances `state`, returns the mixed word.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `ln 2` split in a high part with trailing zero bits and the rest (fdlibm's constants).
const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
/// `sqrt(1/2)`'s bit pattern shifted into the reduction of `ln` (as in fdlibm/musl).
const LN_OFF: u64 = 0x3FE6_A09E_667F_3BCD;
const MANT: u64 = 0x000F_FFFF_FFFF_FFFF;
const ONE_BITS: u64 = 0x3FF0_0000_0000_0000;
const TWO52: f64 = 4_503_599_627_370_496.0;

/// `ln u` for `u` in `(0, 1]` (a normal number), to about 1 ulp; IEEE operations only.
#[inline(always)]
fn ln_unit(u: f64) -> f64 {
    let ix = u.to_bits().wrapping_sub(LN_OFF);
    // k + 1024, where u = 2^k m' with m' in [sqrt(1/2), sqrt(2)); k in [-53, 0].
    let kp = ix.wrapping_add(1024 << 52) >> 52;
    let k = f64::from_bits(0x4330_0000_0000_0000 | kp) - (TWO52 + 1024.0);
    let m = f64::from_bits((ix & MANT).wrapping_add(LN_OFF));
    let s = (m - 1.0) / (m + 1.0);
    let z = s * s;
    let p = 2.0
        + z * (2.0 / 3.0
            + z * (2.0 / 5.0
                + z * (2.0 / 7.0
                    + z * (2.0 / 9.0
                        + z * (2.0 / 11.0
                            + z * (2.0 / 13.0
                                + z * (2.0 / 15.0 + z * (2.0 / 17.0 + z * (2.0 / 19.0)))))))));
    k * LN2_HI + (s * p + k * LN2_LO)
}

/// `(cos x, sin x)` for `|x| <= pi/4` by Taylor polynomials (error below 5e-17).
#[inline(always)]
fn cos_sin_small(x: f64) -> (f64, f64) {
    let z = x * x;
    let s = x
        * (1.0
            + z * (-1.0 / 6.0
                + z * (1.0 / 120.0
                    + z * (-1.0 / 5040.0
                        + z * (1.0 / 362_880.0
                            + z * (-1.0 / 39_916_800.0
                                + z * (1.0 / 6_227_020_800.0
                                    + z * (-1.0 / 1_307_674_368_000.0))))))));
    let c = 1.0
        + z * (-0.5
            + z * (1.0 / 24.0
                + z * (-1.0 / 720.0
                    + z * (1.0 / 40_320.0
                        + z * (-1.0 / 3_628_800.0
                            + z * (1.0 / 479_001_600.0
                                + z * (-1.0 / 87_178_291_200.0
                                    + z * (1.0 / 20_922_789_888_000.0))))))));
    (c, s)
}

/// The Box-Muller pair of the radius word `a` and the angle word `b` (see the module docs).
#[inline(always)]
fn box_muller(a: u64, b: u64) -> (f64, f64) {
    let u = 2.0 - f64::from_bits(ONE_BITS | (a >> 12));
    let r = (-2.0 * ln_unit(u)).sqrt();
    let q = b >> 62;
    let f = f64::from_bits(ONE_BITS | ((b << 2) >> 12)) - 1.5;
    let (c, s) = cos_sin_small(f * std::f64::consts::FRAC_PI_2);
    // Rotate (c, s) by q quarter turns: swap on odd q, then flip signs.
    let swap = 0u64.wrapping_sub(q & 1);
    let (cb, sb) = (c.to_bits(), s.to_bits());
    let x = (cb & !swap) | (sb & swap);
    let y = (sb & !swap) | (cb & swap);
    let neg_x = ((q ^ (q >> 1)) & 1) << 63;
    let neg_y = (q >> 1) << 63;
    (r * f64::from_bits(x ^ neg_x), r * f64::from_bits(y ^ neg_y))
}

/// One xoshiro256++ output of every lane of the state `s` (structure of arrays).
#[inline(always)]
fn round(s: &mut [[u64; LANES]; 4], out: &mut [u64; LANES]) {
    let [s0, s1, s2, s3] = s;
    for l in 0..LANES {
        let (a, b, c, d) = (s0[l], s1[l], s2[l], s3[l]);
        out[l] = a.wrapping_add(d).rotate_left(23).wrapping_add(a);
        let t = b << 17;
        let c = c ^ a;
        let d = d ^ b;
        s1[l] = b ^ c;
        s0[l] = a ^ d;
        s2[l] = c ^ t;
        s3[l] = d.rotate_left(45);
    }
}

/// Makes the next block of [`BLOCK`] normals of the lanes `s` into `out`.
#[inline(always)]
fn block(s: &mut [[u64; LANES]; 4], out: &mut [f64; BLOCK]) {
    let mut a = [0u64; PAIRS];
    let mut b = [0u64; PAIRS];
    let mut w = [0u64; LANES];
    for r in 0..ROUNDS {
        round(s, &mut w);
        a[r * LANES..(r + 1) * LANES].copy_from_slice(&w);
    }
    for r in 0..ROUNDS {
        round(s, &mut w);
        b[r * LANES..(r + 1) * LANES].copy_from_slice(&w);
    }
    let (lo, hi) = out.split_at_mut(PAIRS);
    for i in 0..PAIRS {
        let (x, y) = box_muller(a[i], b[i]);
        lo[i] = x;
        hi[i] = y;
    }
}

/// The block kernel over a whole number of blocks, as a `pulp` operation: `with_simd` is
/// inlined into pulp's target-feature function of the chosen level, and everything it calls
/// is `#[inline(always)]`, so the loops are compiled (and vectorised) for that level. (Reaching
/// the kernel through a closure instead loses this: the closure is compiled as a function of
/// its own, without the target features, and runs at baseline speed; measured.)
struct Blocks<'a> {
    s: &'a mut [[u64; LANES]; 4],
    out: &'a mut [f64],
}

impl pulp::WithSimd for Blocks<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        for c in self.out.chunks_exact_mut(BLOCK) {
            let c: &mut [f64; BLOCK] = c.try_into().expect("chunk of BLOCK");
            block(self.s, c);
        }
    }
}

/// Makes `out.len() / BLOCK` blocks with the given kernel level (`out.len()` a multiple of
/// `BLOCK`; a level the CPU lacks falls back to the baseline, never reached through
/// [`FastNoise::with_kernel`]).
fn run(kernel: Kernel, s: &mut [[u64; LANES]; 4], out: &mut [f64]) {
    debug_assert_eq!(out.len() % BLOCK, 0);
    let op = Blocks { s, out };
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::X86V4 => {
            if let Some(simd) = pulp::x86::V4::try_new() {
                return pulp::Simd::vectorize(simd, op);
            }
        }
        #[cfg(target_arch = "x86_64")]
        Kernel::X86V3 => {
            if let Some(simd) = pulp::x86::V3::try_new() {
                return pulp::Simd::vectorize(simd, op);
            }
        }
        _ => {}
    }
    pulp::WithSimd::with_simd(op, pulp::Scalar::new())
}

impl FastNoise {
    /// A stream seeded with `seed` (lanes from SplitMix64 started at `seed`).
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let mut s = [[0u64; LANES]; 4];
        for l in 0..LANES {
            for w in s.iter_mut() {
                w[l] = splitmix64(&mut sm);
            }
        }
        FastNoise {
            s,
            buf: [0.0; BLOCK],
            pos: BLOCK,
            kernel: Kernel::detect(),
        }
    }

    /// Stream number `stream` of `seed` (one per node of a Brownian tree, say): the lanes come
    /// from SplitMix64 started at a hash of `(seed, stream)`, so streams of nearby numbers do not
    /// share SplitMix64 states (as `new(seed + k)` would for small `k`: its lanes read one
    /// SplitMix64 sequence).
    pub fn for_stream(seed: u64, stream: u64) -> Self {
        let mut a = seed;
        let mut b = splitmix64(&mut a) ^ stream;
        let mut c = splitmix64(&mut b) ^ 0x5851_f42d_4c95_7f2d;
        FastNoise::new(splitmix64(&mut c))
    }

    /// The same stream made with the given kernel level (the numbers do not change, only the
    /// speed). Fails if this CPU cannot run `kernel`.
    pub fn with_kernel(mut self, kernel: Kernel) -> crate::Result<Self> {
        if !kernel.is_available() {
            return Err(crate::CoreError::invalid(
                "kernel",
                format!("{} is not available on this CPU", kernel.name()),
            ));
        }
        self.kernel = kernel;
        Ok(self)
    }

    /// The kernel level the blocks are made with.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// A stream whose lanes start in the given states (`state[l]` = lane `l`'s words
    /// `s[0..4]`), e.g. to check a lane against the xoshiro256++ reference. Fails for an
    /// all-zero lane (xoshiro's one forbidden state).
    pub fn from_lane_states(state: [[u64; 4]; LANES]) -> crate::Result<Self> {
        let mut s = [[0u64; LANES]; 4];
        for (l, st) in state.iter().enumerate() {
            if st.iter().all(|&w| w == 0) {
                return Err(crate::CoreError::invalid(
                    "state",
                    format!("lane {l} is all zero (a fixed point of xoshiro256++)"),
                ));
            }
            for (w, &v) in s.iter_mut().zip(st) {
                w[l] = v;
            }
        }
        Ok(FastNoise {
            s,
            buf: [0.0; BLOCK],
            pos: BLOCK,
            kernel: Kernel::detect(),
        })
    }

    /// The next `n` raw 64-bit words of each lane's xoshiro256++ sequence, lane-interleaved
    /// (`out[r * LANES + l]` = lane `l`'s output `r`); advances the generator (for checks).
    pub fn raw_words(&mut self, rounds: usize) -> Vec<u64> {
        let mut out = Vec::with_capacity(rounds * LANES);
        let mut w = [0u64; LANES];
        for _ in 0..rounds {
            round(&mut self.s, &mut w);
            out.extend_from_slice(&w);
        }
        out
    }

    /// Fills `out` with the next standard normal numbers of the stream.
    pub fn fill(&mut self, out: &mut [f64]) {
        let mut done = 0;
        if self.pos < BLOCK {
            let k = (BLOCK - self.pos).min(out.len());
            out[..k].copy_from_slice(&self.buf[self.pos..self.pos + k]);
            self.pos += k;
            done = k;
        }
        let whole = (out.len() - done) / BLOCK * BLOCK;
        let (bulk, rest) = out[done..].split_at_mut(whole);
        if !bulk.is_empty() {
            run(self.kernel, &mut self.s, bulk);
        }
        if !rest.is_empty() {
            run(self.kernel, &mut self.s, &mut self.buf);
            rest.copy_from_slice(&self.buf[..rest.len()]);
            self.pos = rest.len();
        }
    }

    /// The next `n` standard normal numbers.
    pub fn normals(&mut self, n: usize) -> Vec<f64> {
        let mut v = vec![0.0; n];
        self.fill(&mut v);
        v
    }
}

impl<S: State> NoiseSource<S> for FastNoise {
    fn standard_normal(&mut self, like: &S) -> S {
        let values = self.normals(like.numel());
        like.from_host_like(&values)
    }

    fn standard_normal_scaled(&mut self, like: &S, a: f64) -> S {
        let values = self.normals(like.numel());
        like.from_host_scaled(&values, a)
    }

    fn fill_standard_normal(&mut self, out: &mut S) {
        out.fill_from_host(&mut |chunk| self.fill(chunk));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lane_follows_the_xoshiro256pp_reference_vector() {
        // Reference outputs of xoshiro256plusplus.c from the state {1, 2, 3, 4}.
        let expected: [u64; 10] = [
            41943041,
            58720359,
            3588806011781223,
            3591011842654386,
            9228616714210784205,
            9973669472204895162,
            14011001112246962877,
            12406186145184390807,
            15849039046786891736,
            10450023813501588000,
        ];
        let mut states = [[1, 2, 3, 4]; LANES];
        states[3] = [5, 6, 7, 8];
        let mut g = FastNoise::from_lane_states(states).unwrap();
        let w = g.raw_words(10);
        for (r, &e) in expected.iter().enumerate() {
            for l in 0..LANES {
                if l == 3 {
                    assert_ne!(w[r * LANES + l], e);
                } else {
                    assert_eq!(w[r * LANES + l], e, "round {r} lane {l}");
                }
            }
        }
        let mut bad = [[1, 2, 3, 4]; LANES];
        bad[5] = [0; 4];
        let err = FastNoise::from_lane_states(bad).unwrap_err();
        assert!(err.to_string().contains("lane 5"), "{err}");
    }

    #[test]
    fn ln_matches_std_on_the_unit_interval() {
        let mut worst = 0.0f64;
        let mut u = 1.0f64;
        // Geometric and uniform probes over (0, 1], including the exact ends of the range.
        let mut probes = vec![
            1.0,
            0.5,
            f64::EPSILON,
            2.0f64.powi(-52),
            1.0 - f64::EPSILON / 2.0,
        ];
        for _ in 0..2000 {
            u *= 0.9817;
            probes.push(u);
        }
        for i in 1..=20_000 {
            probes.push(i as f64 / 20_000.0);
        }
        for &u in &probes {
            let (a, b) = (ln_unit(u), u.ln());
            let err = (a - b).abs() / b.abs().max(1e-300);
            if b == 0.0 {
                assert_eq!(a, 0.0);
            } else {
                worst = worst.max(err);
            }
        }
        assert!(worst < 4e-16, "worst relative error of ln {worst:e}");
    }

    #[test]
    fn cos_sin_match_std_on_the_reduced_range() {
        let mut worst = 0.0f64;
        for i in -10_000..=10_000 {
            let x = i as f64 / 10_000.0 * std::f64::consts::FRAC_PI_4;
            let (c, s) = cos_sin_small(x);
            worst = worst.max((c - x.cos()).abs()).max((s - x.sin()).abs());
        }
        assert!(worst < 3e-16, "worst error of cos/sin {worst:e}");
    }

    #[test]
    fn box_muller_covers_the_quadrants_and_the_radius_bounds() {
        // Angle word with offset bits 1000..: f = 0, x = 0, so the pair is r times a unit axis.
        let mid = 1u64 << 61;
        let a = 0; // u = 2 - 1 = 1: radius 0.
        assert_eq!(box_muller(a, mid), (0.0, 0.0));
        let a = u64::MAX; // u = 2 - (2 - 2^-52) = 2^-52: the largest radius.
        let rmax = (-2.0 * (2.0f64.powi(-52)).ln()).sqrt();
        let axes = [(1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0)];
        for (q, (cx, cy)) in axes.iter().enumerate() {
            let (x, y) = box_muller(a, ((q as u64) << 62) | mid);
            assert!(
                (x - rmax * cx).abs() < 1e-14 && (y - rmax * cy).abs() < 1e-14,
                "{q}: {x} {y}"
            );
        }
    }
}
