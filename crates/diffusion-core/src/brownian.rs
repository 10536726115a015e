//! Brownian paths: the increments `W(t1) - W(t0)` that drive every SDE solver.
//!
//! Two kinds are provided:
//! - [`IndependentIncrements`]: each query draws a fresh `sqrt(|t1 - t0|) * N(0, I)` from a
//!   [`NoiseSource`]. Cheapest; correct when a sampler visits each interval once.
//! - [`BrownianTree`]: a seed-deterministic *virtual Brownian tree* (the construction of
//!   torchsde's `BrownianTree` / diffrax's `VirtualBrownianTree`, after Gaines and Lyons 1997):
//!   `W(t)` is a fixed function of `(seed, t)`, built by recursive Brownian-bridge bisection of
//!   `[t_start, t_end]` with one independent [`FastNoise`] stream per tree node (or, with
//!   [`TreeNoise::Host`], one ChaCha20 stream per node: other numbers, same law, about 7x
//!   dearer draws), and linear interpolation inside leaves shorter than the tolerance. Every
//!   query order therefore sees the same path, increments over disjoint intervals are
//!   independent, and increments are consistent under refinement: `W(a, c) = W(a, b) + W(b, c)`
//!   up to floating-point rounding. SDE samples computed with it converge as the step count
//!   grows (strong convergence tests).
//!
//! The seeded constructors ([`IndependentIncrements::seeded`], [`BrownianTree::new`]) draw from
//! [`FastNoise`] (xoshiro256++ lanes, Box-Muller; bit-identical on every platform and SIMD
//! width), the kind of generator PyTorch and NumPy use for their normals. The ChaCha20 streams
//! of [`HostNoise`] stay one call away ([`IndependentIncrements::seeded_chacha`],
//! [`BrownianTree::with_noise`]`(TreeNoise::Host)`); they were the default before 2026-11-27,
//! so seeded SDE samples of older versions are reproduced with them.
//!
//! Paper: Gaines & Lyons (1997), "Variable step size control in the numerical solution of
//! stochastic differential equations", SIAM J. Appl. Math. 57(5) (Brownian-bridge refinement);
//! Li, Wong, Chen & Duvenaud (2020), "Scalable Gradients for Stochastic Differential Equations",
//! arXiv:2001.01328, Sec. 5 (virtual Brownian tree).

use crate::error::{CoreError, Result};
use crate::noise::{HostNoise, NoiseSource};
use crate::noise_fast::FastNoise;
use crate::state::State;

/// A Brownian motion (one independent coordinate per state entry) queried by time intervals.
pub trait BrownianPath<S> {
    /// `W(t1) - W(t0)`, shaped like `like`. `t1 < t0` is allowed (then the sign flips).
    fn increment(&mut self, t0: f64, t1: f64, like: &S) -> Result<S>;

    /// `(W(t1) - W(t0)) / sqrt(|t1 - t0|)`: a standard normal state (the "noise sampler" of
    /// k-diffusion). `t0 == t1` is an error.
    fn normalized(&mut self, t0: f64, t1: f64, like: &S) -> Result<S>
    where
        S: State,
    {
        normalized_scale(t0, t1)?;
        let dt = (t1 - t0).abs();
        Ok(self.increment(t0, t1, like)?.into_scaled(1.0 / dt.sqrt()))
    }

    /// [`BrownianPath::increment`] into `out` (a buffer shaped like the trajectory's states,
    /// values irrelevant), up to a factor: writes `w` and returns `c` with `c * w` the
    /// increment, so the caller folds `c` into its own coefficient. The default writes the
    /// increment itself and returns 1; paths that draw fresh numbers write the draw into
    /// `out`'s storage (no allocation) and return its scale.
    fn increment_into(&mut self, t0: f64, t1: f64, out: &mut S) -> Result<f64>
    where
        S: State,
    {
        *out = self.increment(t0, t1, out)?;
        Ok(1.0)
    }

    /// [`BrownianPath::normalized`] into `out`, up to a factor (as
    /// [`BrownianPath::increment_into`]): `c * out` is the normalized increment.
    fn normalized_into(&mut self, t0: f64, t1: f64, out: &mut S) -> Result<f64>
    where
        S: State,
    {
        *out = self.normalized(t0, t1, out)?;
        Ok(1.0)
    }
}

/// Independent Gaussian increments drawn from a [`NoiseSource`] on every query.
#[derive(Debug, Clone)]
pub struct IndependentIncrements<N> {
    noise: N,
}

impl<N> IndependentIncrements<N> {
    /// Wraps a noise source.
    pub fn new(noise: N) -> Self {
        IndependentIncrements { noise }
    }
}

impl IndependentIncrements<FastNoise> {
    /// Independent increments from seeded [`FastNoise`] (the default stream of the SDE
    /// samplers; see the module docs).
    pub fn seeded(seed: u64) -> Self {
        IndependentIncrements::new(FastNoise::new(seed))
    }
}

impl IndependentIncrements<HostNoise> {
    /// Independent increments from seeded [`HostNoise`] (ChaCha20): the stream of
    /// [`IndependentIncrements::seeded`] before 2026-11-27.
    pub fn seeded_chacha(seed: u64) -> Self {
        IndependentIncrements::new(HostNoise::new(seed))
    }
}

/// `sign(dt) sqrt|dt|` for `dt = t1 - t0`: the factor that makes a standard normal draw the
/// increment over `[t0, t1]`. A non-finite interval is an error.
fn increment_scale(t0: f64, t1: f64) -> Result<f64> {
    let dt = t1 - t0;
    if !dt.is_finite() {
        return Err(CoreError::invalid(
            "t0/t1",
            format!("non-finite interval [{t0}, {t1}]"),
        ));
    }
    Ok(dt.signum() * dt.abs().sqrt())
}

/// `sign(t1 - t0)`: the factor that makes a standard normal draw the normalized increment over
/// `[t0, t1]`. An empty or non-finite interval is an error.
fn normalized_scale(t0: f64, t1: f64) -> Result<f64> {
    let dt = t1 - t0;
    if dt == 0.0 || !dt.is_finite() {
        return Err(CoreError::invalid(
            "t1",
            format!("a normalized Brownian increment needs finite t0 != t1, got [{t0}, {t1}]"),
        ));
    }
    Ok(dt.signum())
}

impl<S: State, N: NoiseSource<S>> BrownianPath<S> for IndependentIncrements<N> {
    fn increment(&mut self, t0: f64, t1: f64, like: &S) -> Result<S> {
        let c = increment_scale(t0, t1)?;
        Ok(self.noise.standard_normal_scaled(like, c))
    }

    /// One fresh draw `z` (`-z` for `t1 < t0`), the value of the default
    /// `increment / sqrt(|dt|)` to rounding, without its two scaling passes.
    fn normalized(&mut self, t0: f64, t1: f64, like: &S) -> Result<S> {
        let c = normalized_scale(t0, t1)?;
        Ok(self.noise.standard_normal_scaled(like, c))
    }

    /// One draw `z` into `out`'s storage; returns `sign(dt) sqrt|dt|`.
    fn increment_into(&mut self, t0: f64, t1: f64, out: &mut S) -> Result<f64> {
        let c = increment_scale(t0, t1)?;
        self.noise.fill_standard_normal(out);
        Ok(c)
    }

    /// One draw `z` into `out`'s storage; returns `sign(dt)`.
    fn normalized_into(&mut self, t0: f64, t1: f64, out: &mut S) -> Result<f64> {
        let c = normalized_scale(t0, t1)?;
        self.noise.fill_standard_normal(out);
        Ok(c)
    }
}

/// A seed-deterministic virtual Brownian tree on `[t_start, t_end]` (see the module docs).
///
/// Values are computed on the host in `f64` and converted with [`State::from_host_like`], so the
/// same seed gives the same path on every backend and thread count. Each query costs
/// `O(depth * numel)` normal draws, `depth = log2((t_end - t_start) / tol)`; the last two
/// evaluated points are cached, so a sampler walking the grid pays one descent per step.
#[derive(Debug, Clone)]
pub struct BrownianTree {
    seed: u64,
    kind: TreeNoise,
    t_start: f64,
    t_end: f64,
    tol: f64,
    numel: Option<usize>,
    w_end: Vec<f64>,
    cache: Vec<(f64, Vec<f64>)>,
}

/// The stream behind a [`BrownianTree`]'s node normals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TreeNoise {
    /// One ChaCha20 stream per node ([`HostNoise::with_stream`]): another path of the same
    /// law, drawn several times slower (the default before 2026-11-27).
    Host,
    /// One [`FastNoise`] stream per node ([`FastNoise::for_stream`]); the default.
    #[default]
    Fast,
}

/// Deepest bisection level; leaves are never narrower than `(t_end - t_start) / 2^MAX_DEPTH`.
const MAX_DEPTH: u32 = 48;

impl BrownianTree {
    /// A tree on `[t_start, t_end]` (either order is accepted; it is sorted) whose leaves are at
    /// most `tol` wide. `tol` must be positive; a typical value is `1e-6 * (t_end - t_start)`.
    pub fn new(seed: u64, t_start: f64, t_end: f64, tol: f64) -> Result<Self> {
        let (a, b) = if t_start <= t_end {
            (t_start, t_end)
        } else {
            (t_end, t_start)
        };
        if !(a.is_finite() && b.is_finite()) || b <= a {
            return Err(CoreError::invalid(
                "t_start/t_end",
                format!("need a finite interval of positive length, got [{t_start}, {t_end}]"),
            ));
        }
        if !(tol > 0.0 && tol.is_finite()) {
            return Err(CoreError::invalid(
                "tol",
                format!("must be positive, got {tol}"),
            ));
        }
        Ok(BrownianTree {
            seed,
            kind: TreeNoise::default(),
            t_start: a,
            t_end: b,
            tol,
            numel: None,
            w_end: Vec::new(),
            cache: Vec::new(),
        })
    }

    /// A tree with the default tolerance `1e-6 * (t_end - t_start)`.
    pub fn with_default_tol(seed: u64, t_start: f64, t_end: f64) -> Result<Self> {
        let width = (t_end - t_start).abs();
        Self::new(seed, t_start, t_end, 1e-6 * width)
    }

    /// The same tree with its node normals from `kind` (the path restarts: nothing computed
    /// with the old stream is kept).
    pub fn with_noise(mut self, kind: TreeNoise) -> Self {
        self.kind = kind;
        self.numel = None;
        self.w_end.clear();
        self.cache.clear();
        self
    }

    /// The stream behind the node normals.
    pub fn noise(&self) -> TreeNoise {
        self.kind
    }

    /// The time interval the tree covers, sorted.
    pub fn interval(&self) -> (f64, f64) {
        (self.t_start, self.t_end)
    }

    fn node_normals(&self, node: u64, n: usize) -> Vec<f64> {
        let mut z = vec![0.0; n];
        self.fill_node(node, &mut z);
        z
    }

    /// The normals of tree node `node`, written into `out`.
    fn fill_node(&self, node: u64, out: &mut [f64]) {
        match self.kind {
            TreeNoise::Host => HostNoise::with_stream(self.seed, node).fill(out),
            TreeNoise::Fast => FastNoise::for_stream(self.seed, node).fill(out),
        }
    }

    fn prepare(&mut self, n: usize) -> Result<()> {
        match self.numel {
            Some(m) if m == n => Ok(()),
            Some(m) => Err(CoreError::ShapeMismatch {
                context: "BrownianTree (one tree serves one state size)",
                expected: vec![m],
                got: vec![n],
            }),
            None => {
                let sd = (self.t_end - self.t_start).sqrt();
                self.w_end = self
                    .node_normals(0, n)
                    .into_iter()
                    .map(|z| sd * z)
                    .collect();
                self.numel = Some(n);
                Ok(())
            }
        }
    }

    /// `W(t) - W(t_start)` as host values, `n` coordinates.
    pub fn value_at(&mut self, t: f64, n: usize) -> Result<Vec<f64>> {
        if !(t >= self.t_start && t <= self.t_end) {
            return Err(CoreError::invalid(
                "t",
                format!(
                    "time {t} lies outside the Brownian tree's interval [{}, {}]",
                    self.t_start, self.t_end
                ),
            ));
        }
        self.prepare(n)?;
        if let Some((_, w)) = self.cache.iter().find(|(s, _)| *s == t) {
            return Ok(w.clone());
        }
        let w = self.descend(t, n);
        if self.cache.len() >= 2 {
            self.cache.remove(0);
        }
        self.cache.push((t, w.clone()));
        Ok(w)
    }

    fn descend(&self, t: f64, n: usize) -> Vec<f64> {
        let (mut s, mut u) = (self.t_start, self.t_end);
        let mut ws = vec![0.0; n];
        let mut wu = self.w_end.clone();
        let mut z = vec![0.0; n];
        let mut node: u64 = 1;
        for _ in 0..MAX_DEPTH {
            if t == s {
                return ws;
            }
            if t == u {
                return wu;
            }
            if u - s <= self.tol {
                break;
            }
            let m = 0.5 * (s + u);
            let sd = (0.25 * (u - s)).sqrt();
            self.fill_node(node, &mut z);
            // The midpoint's value replaces the end the query does not lie beyond (in place;
            // the same arithmetic as forming it in a new vector).
            let keep_lower = t < m;
            let (target, other) = if keep_lower {
                (&mut wu, &ws)
            } else {
                (&mut ws, &wu)
            };
            for ((w, &o), &zi) in target.iter_mut().zip(other.iter()).zip(&z) {
                *w = 0.5 * (o + *w) + sd * zi;
            }
            if keep_lower {
                u = m;
                node *= 2;
            } else {
                s = m;
                node = 2 * node + 1;
            }
        }
        let r = (t - s) / (u - s);
        (0..n).map(|i| ws[i] + r * (wu[i] - ws[i])).collect()
    }
}

impl<S: State> BrownianPath<S> for BrownianTree {
    fn increment(&mut self, t0: f64, t1: f64, like: &S) -> Result<S> {
        let n = like.numel();
        let w0 = self.value_at(t0, n)?;
        let w1 = self.value_at(t1, n)?;
        let d: Vec<f64> = w1.iter().zip(&w0).map(|(a, b)| a - b).collect();
        Ok(like.from_host_like(&d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array1;

    fn stats(v: &[f64]) -> (f64, f64) {
        let n = v.len() as f64;
        let m = v.iter().sum::<f64>() / n;
        (m, v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n)
    }

    #[test]
    fn independent_increments_normalize_without_rescaling() {
        use crate::FastNoise;
        let like = Array1::<f64>::zeros(1001);
        // The increment keeps its bits (the scale is applied in the conversion's pass).
        let z = HostNoise::new(3).standard_normal(&like);
        let inc = IndependentIncrements::seeded_chacha(3)
            .increment(0.7, 0.3, &like)
            .unwrap();
        let a = -(0.4f64).sqrt();
        assert!(inc.iter().zip(z.iter()).all(|(i, z)| *i == z * a));
        // `normalized` is the draw itself, negated backward in time: the default
        // `increment / sqrt(|dt|)` to rounding, for both host streams.
        let z = FastNoise::new(5).normals(1001);
        let back = IndependentIncrements::new(FastNoise::new(5))
            .normalized(0.7, 0.3, &like)
            .unwrap();
        assert!(back.iter().zip(&z).all(|(b, z)| *b == -z));
        let fwd = IndependentIncrements::new(FastNoise::new(5))
            .normalized(0.3, 0.7, &like)
            .unwrap();
        assert!(fwd.iter().zip(&z).all(|(f, z)| f == z));
        let by_default = IndependentIncrements::new(FastNoise::new(5))
            .increment(0.7, 0.3, &like)
            .unwrap()
            .scale(1.0 / 0.4f64.sqrt());
        for (b, d) in back.iter().zip(by_default.iter()) {
            assert!((b - d).abs() <= 4.0 * f64::EPSILON * d.abs(), "{b} vs {d}");
        }
        assert!(IndependentIncrements::seeded(1)
            .normalized(0.5, 0.5, &like)
            .is_err());
    }

    fn corr(a: &[f64], b: &[f64]) -> f64 {
        let (ma, va) = stats(a);
        let (mb, vb) = stats(b);
        let c = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - ma) * (y - mb))
            .sum::<f64>()
            / a.len() as f64;
        c / (va * vb).sqrt()
    }

    // n = 100_000 independent coordinates: the standard error of a variance ratio is
    // sqrt(2/n) = 0.0045 and of a correlation 0.0032; all thresholds are >= 6 standard errors.
    const N: usize = 100_000;

    #[test]
    fn tree_increments_have_brownian_mean_and_variance() {
        for kind in [TreeNoise::Host, TreeNoise::Fast] {
            let mut tree = BrownianTree::new(5, 0.0, 1.0, 1e-6)
                .unwrap()
                .with_noise(kind);
            let like = Array1::<f64>::zeros(N);
            for &(a, b) in &[(0.0, 1.0), (0.1, 0.35), (0.5, 0.5001), (0.33, 0.9)] {
                let d: Array1<f64> = tree.increment(a, b, &like).unwrap();
                let (m, v) = stats(&d.to_host());
                let dt = b - a;
                assert!(
                    m.abs() < 6.0 * (dt / N as f64).sqrt(),
                    "mean {m} on [{a},{b}]"
                );
                assert!(
                    (v / dt - 1.0).abs() < 0.03,
                    "var/dt {} on [{a},{b}]",
                    v / dt
                );
            }
        }
    }

    #[test]
    fn disjoint_tree_increments_are_uncorrelated() {
        for kind in [TreeNoise::Host, TreeNoise::Fast] {
            let mut tree = BrownianTree::new(9, 0.0, 2.0, 1e-7)
                .unwrap()
                .with_noise(kind);
            let like = Array1::<f64>::zeros(N);
            let a: Array1<f64> = tree.increment(0.2, 0.7, &like).unwrap();
            let b: Array1<f64> = tree.increment(0.7, 0.71, &like).unwrap();
            let c: Array1<f64> = tree.increment(1.3, 1.9, &like).unwrap();
            for (x, y) in [(&a, &b), (&a, &c), (&b, &c)] {
                let r = corr(&x.to_host(), &y.to_host());
                assert!(r.abs() < 0.02, "correlation {r}");
            }
            // Overlapping increments are correlated as Brownian motion says:
            // corr(W(0.2,0.7), W(0.2,1.2)) = sqrt(0.5 / 1.0).
            let d: Array1<f64> = tree.increment(0.2, 1.2, &like).unwrap();
            let r = corr(&a.to_host(), &d.to_host());
            assert!((r - 0.5_f64.sqrt()).abs() < 0.02, "overlap correlation {r}");
        }
    }

    #[test]
    fn tree_is_consistent_under_refinement_in_any_query_order() {
        for kind in [TreeNoise::Host, TreeNoise::Fast] {
            let like = Array1::<f64>::zeros(64);
            let pts = [0.0, 0.013, 0.25, 0.2501, 0.6, 0.999, 1.0];
            // Query coarse first, then the fine points in reverse order, on one tree.
            let mut t1 = BrownianTree::new(42, 0.0, 1.0, 1e-9)
                .unwrap()
                .with_noise(kind);
            let coarse: Array1<f64> = t1.increment(0.0, 1.0, &like).unwrap();
            let mut fine_sum = like.zeros_like();
            for w in pts.windows(2).rev() {
                let d: Array1<f64> = t1.increment(w[0], w[1], &like).unwrap();
                fine_sum = fine_sum.lincomb(1.0, &d, 1.0);
            }
            for (x, y) in coarse.iter().zip(fine_sum.iter()) {
                assert!((x - y).abs() < 1e-12, "{x} vs {y}");
            }
            // A second tree with the same seed queried in another order gives the same values.
            let mut t2 = BrownianTree::new(42, 0.0, 1.0, 1e-9)
                .unwrap()
                .with_noise(kind);
            let d2: Array1<f64> = t2.increment(0.25, 0.6, &like).unwrap();
            let mut t3 = BrownianTree::new(42, 0.0, 1.0, 1e-9)
                .unwrap()
                .with_noise(kind);
            let _: Array1<f64> = t3.increment(0.999, 0.013, &like).unwrap();
            let d3: Array1<f64> = t3.increment(0.25, 0.6, &like).unwrap();
            assert_eq!(d2, d3);
            // Reversed intervals flip the sign exactly.
            let r: Array1<f64> = t3.increment(0.6, 0.25, &like).unwrap();
            assert_eq!(r, d3.scale(-1.0));
            // Another seed gives another path.
            let mut t4 = BrownianTree::new(43, 0.0, 1.0, 1e-9)
                .unwrap()
                .with_noise(kind);
            let d4: Array1<f64> = t4.increment(0.25, 0.6, &like).unwrap();
            assert_ne!(d2, d4);
        }
    }

    #[test]
    fn the_default_tree_is_the_fast_one_and_chacha_is_another_path() {
        let like = Array1::<f64>::zeros(64);
        let mut default = BrownianTree::new(7, 0.0, 1.0, 1e-6).unwrap();
        assert_eq!(default.noise(), TreeNoise::Fast);
        let mut host = BrownianTree::new(7, 0.0, 1.0, 1e-6)
            .unwrap()
            .with_noise(TreeNoise::Host);
        assert_eq!(host.noise(), TreeNoise::Host);
        let f: Array1<f64> = default.increment(0.2, 0.6, &like).unwrap();
        let h: Array1<f64> = host.increment(0.2, 0.6, &like).unwrap();
        assert_ne!(h, f);
        // Switching the stream back restarts the path on the fast streams.
        let mut back = host.with_noise(TreeNoise::Fast);
        let b: Array1<f64> = back.increment(0.2, 0.6, &like).unwrap();
        assert_eq!(b, f);
    }

    #[test]
    fn seeded_increments_draw_from_fast_noise_and_seeded_chacha_from_host_noise() {
        let like = Array1::<f64>::zeros(32);
        let fast: Array1<f64> = IndependentIncrements::seeded(3)
            .normalized(0.0, 1.0, &like)
            .unwrap();
        let chacha: Array1<f64> = IndependentIncrements::seeded_chacha(3)
            .normalized(0.0, 1.0, &like)
            .unwrap();
        assert_eq!(fast.to_host(), FastNoise::new(3).normals(32));
        assert_eq!(chacha.to_host(), HostNoise::new(3).normals(32));
        assert_ne!(fast, chacha);
    }

    #[test]
    fn into_variants_give_the_increments_up_to_their_factor() {
        let like = Array1::<f64>::zeros(300);
        for (t0, t1) in [(0.7, 0.3), (0.2, 0.9)] {
            // Independent increments: the draw goes into the buffer, the factor comes back.
            let mut buf = Array1::<f64>::from_elem(300, f64::NAN);
            let c = IndependentIncrements::seeded(4)
                .increment_into(t0, t1, &mut buf)
                .unwrap();
            let inc: Array1<f64> = IndependentIncrements::seeded(4)
                .increment(t0, t1, &like)
                .unwrap();
            assert_eq!(c, (t1 - t0).signum() * (t1 - t0).abs().sqrt());
            for (b, i) in buf.iter().zip(inc.iter()) {
                assert!((c * b - i).abs() <= 2.0 * f64::EPSILON * i.abs(), "{b} {i}");
            }
            let c = IndependentIncrements::seeded_chacha(4)
                .normalized_into(t0, t1, &mut buf)
                .unwrap();
            let z: Array1<f64> = IndependentIncrements::seeded_chacha(4)
                .normalized(t0, t1, &like)
                .unwrap();
            assert_eq!(buf.scale(c), z);
            // The tree takes the default path: the value itself, factor 1.
            let mut tree = BrownianTree::new(8, 0.0, 1.0, 1e-6).unwrap();
            let c = tree.normalized_into(t0, t1, &mut buf).unwrap();
            let z: Array1<f64> = tree.normalized(t0, t1, &like).unwrap();
            assert_eq!((c, &buf), (1.0, &z));
        }
        let mut buf = Array1::<f64>::zeros(3);
        assert!(IndependentIncrements::seeded(1)
            .normalized_into(0.5, 0.5, &mut buf)
            .is_err());
        assert!(IndependentIncrements::seeded(1)
            .increment_into(0.5, f64::NAN, &mut buf)
            .is_err());
    }

    #[test]
    fn tree_rejects_bad_input() {
        assert!(BrownianTree::new(0, 1.0, 1.0, 1e-3).is_err());
        assert!(BrownianTree::new(0, 0.0, f64::NAN, 1e-3).is_err());
        assert!(BrownianTree::new(0, 0.0, 1.0, 0.0).is_err());
        let mut t = BrownianTree::new(0, 0.0, 1.0, 1e-3).unwrap();
        let like = Array1::<f64>::zeros(3);
        assert!(BrownianPath::<Array1<f64>>::increment(&mut t, 0.0, 1.5, &like).is_err());
        let _: Array1<f64> = t.increment(0.0, 0.5, &like).unwrap();
        let other = Array1::<f64>::zeros(4);
        assert!(BrownianPath::<Array1<f64>>::increment(&mut t, 0.0, 0.5, &other).is_err());
        assert!(BrownianPath::<Array1<f64>>::normalized(&mut t, 0.5, 0.5, &like).is_err());
    }

    #[test]
    fn independent_increments_scale_with_the_interval() {
        let mut p = IndependentIncrements::seeded(1);
        let like = Array1::<f64>::zeros(N);
        let d: Array1<f64> = p.increment(1.0, 0.75, &like).unwrap();
        let (m, v) = stats(&d.to_host());
        assert!(m.abs() < 6.0 * (0.25 / N as f64).sqrt());
        assert!((v / 0.25 - 1.0).abs() < 0.03);
        let z: Array1<f64> = p.normalized(1.0, 0.75, &like).unwrap();
        let (_, vz) = stats(&z.to_host());
        assert!((vz - 1.0).abs() < 0.03);
    }
}
