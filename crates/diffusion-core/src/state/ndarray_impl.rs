//! `State` for owned `ndarray` arrays of `f32` or `f64`, any dimension.

use super::simd::{dispatch, Loop};
use super::State;
use ndarray::{Array, Dimension, Zip};

/// The scalar types an `ndarray` state may hold.
pub trait Scalar: Copy + Send + Sync + 'static {
    /// Converts from the host `f64` used for all coefficients.
    fn from_f64(v: f64) -> Self;
    /// Converts to `f64`.
    fn to_f64(self) -> f64;
    /// The slice itself when the scalar is `f64` (host numbers can be written straight into
    /// it), `None` otherwise.
    fn as_f64_slice_mut(s: &mut [Self]) -> Option<&mut [f64]> {
        let _ = s;
        None
    }
}

impl Scalar for f64 {
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    fn as_f64_slice_mut(s: &mut [f64]) -> Option<&mut [f64]> {
        Some(s)
    }
}

impl Scalar for f32 {
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
}

/// Independent partial sums of the finiteness probes (lets the compiler vectorize the pass).
const LANES: usize = 8;

/// Adds `v * 0` to `acc`: NaN exactly when `v` is NaN or infinite (a signed zero otherwise), so
/// a sum of probes is NaN iff some entry is not finite. There is no early exit on purpose: the
/// common case is all finite, where a branch per entry only costs.
#[inline(always)]
fn probe<A: Scalar>(acc: &mut f64, v: A) {
    *acc += v.to_f64() * 0.0;
}

/// `v * 0` is a signed zero for a finite `v` and NaN otherwise: a branch-free test that the
/// compiler vectorizes inside an update loop (cheaper there than a probe sum, measured).
#[inline(always)]
fn finite<A: Scalar>(v: A) -> bool {
    v.to_f64() * 0.0 == 0.0
}

/// `true` when every partial sum of probes is zero (no entry was NaN or infinite).
fn all_zero(acc: &[f64; LANES]) -> bool {
    acc.iter().sum::<f64>() == 0.0
}

/// `s = a s + b u` over slices; with `CHECK`, whether every result is finite.
struct Assign2<'a, A, const CHECK: bool> {
    s: &'a mut [A],
    u: &'a [A],
    a: f64,
    b: f64,
}

impl<A: Scalar, const CHECK: bool> Loop for Assign2<'_, A, CHECK> {
    type Output = bool;
    #[inline(always)]
    fn run(self) -> bool {
        let (a, b) = (self.a, self.b);
        let mut ok = true;
        for (s, &u) in self.s.iter_mut().zip(self.u) {
            *s = A::from_f64(a * s.to_f64() + b * u.to_f64());
            if CHECK {
                ok &= finite(*s);
            }
        }
        ok
    }
}

/// `s = a s + b u + c v` over slices; with `CHECK`, whether every result is finite.
struct Assign3<'a, A, const CHECK: bool> {
    s: &'a mut [A],
    u: &'a [A],
    v: &'a [A],
    a: f64,
    b: f64,
    c: f64,
}

impl<A: Scalar, const CHECK: bool> Loop for Assign3<'_, A, CHECK> {
    type Output = bool;
    #[inline(always)]
    fn run(self) -> bool {
        let (a, b, c) = (self.a, self.b, self.c);
        let mut ok = true;
        for ((s, &u), &v) in self.s.iter_mut().zip(self.u).zip(self.v) {
            *s = A::from_f64(a * s.to_f64() + b * u.to_f64() + c * v.to_f64());
            if CHECK {
                ok &= finite(*s);
            }
        }
        ok
    }
}

/// `out = a x + b y` over slices.
struct Into2<'a, A> {
    out: &'a mut [A],
    x: &'a [A],
    y: &'a [A],
    a: f64,
    b: f64,
}

impl<A: Scalar> Loop for Into2<'_, A> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (a, b) = (self.a, self.b);
        for ((o, &x), &y) in self.out.iter_mut().zip(self.x).zip(self.y) {
            *o = A::from_f64(a * x.to_f64() + b * y.to_f64());
        }
    }
}

/// A new vector `a x + b y` (`y` absent: `a x`), or `a x + b y + c z`.
struct Collect<'a, A> {
    x: &'a [A],
    y: Option<&'a [A]>,
    z: Option<&'a [A]>,
    a: f64,
    b: f64,
    c: f64,
}

impl<A: Scalar> Loop for Collect<'_, A> {
    type Output = Vec<A>;
    #[inline(always)]
    fn run(self) -> Vec<A> {
        let (a, b, c) = (self.a, self.b, self.c);
        match (self.y, self.z) {
            (Some(y), Some(z)) => self
                .x
                .iter()
                .zip(y)
                .zip(z)
                .map(|((&x, &y), &z)| A::from_f64(a * x.to_f64() + b * y.to_f64() + c * z.to_f64()))
                .collect(),
            (Some(y), None) => self
                .x
                .iter()
                .zip(y)
                .map(|(&x, &y)| A::from_f64(a * x.to_f64() + b * y.to_f64()))
                .collect(),
            _ => self
                .x
                .iter()
                .map(|&x| A::from_f64(a * x.to_f64()))
                .collect(),
        }
    }
}

/// `s = a s` (`x` absent) or `s = a x` over slices.
struct Scale<'a, A> {
    s: &'a mut [A],
    x: Option<&'a [A]>,
    a: f64,
}

impl<A: Scalar> Loop for Scale<'_, A> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let a = self.a;
        match self.x {
            Some(x) => {
                for (s, &x) in self.s.iter_mut().zip(x) {
                    *s = A::from_f64(a * x.to_f64());
                }
            }
            None => {
                for s in self.s.iter_mut() {
                    *s = A::from_f64(a * s.to_f64());
                }
            }
        }
    }
}

impl<A, D> State for Array<A, D>
where
    A: Scalar,
    D: Dimension + 'static,
{
    fn lincomb(&self, a: f64, other: &Self, b: f64) -> Self {
        assert_eq!(self.shape(), other.shape(), "State::lincomb shape mismatch");
        // `as_slice` is `Some` only in standard layout, so the slices pair entries correctly and
        // the new vector is in the shape's standard order.
        if let (Some(x), Some(y)) = (self.as_slice(), other.as_slice()) {
            let v = dispatch(Collect {
                x,
                y: Some(y),
                z: None,
                a,
                b,
                c: 0.0,
            });
            return Array::from_shape_vec(self.raw_dim(), v).expect("same length");
        }
        Zip::from(self)
            .and(other)
            .map_collect(|&x, &y| A::from_f64(a * x.to_f64() + b * y.to_f64()))
    }

    fn lincomb3(&self, a: f64, x: &Self, b: f64, y: &Self, c: f64) -> Self {
        assert_eq!(self.shape(), x.shape(), "State::lincomb3 shape mismatch");
        assert_eq!(self.shape(), y.shape(), "State::lincomb3 shape mismatch");
        if let (Some(s), Some(u), Some(v)) = (self.as_slice(), x.as_slice(), y.as_slice()) {
            let v = dispatch(Collect {
                x: s,
                y: Some(u),
                z: Some(v),
                a,
                b,
                c,
            });
            return Array::from_shape_vec(self.raw_dim(), v).expect("same length");
        }
        Zip::from(self)
            .and(x)
            .and(y)
            .map_collect(|&s, &u, &v| A::from_f64(a * s.to_f64() + b * u.to_f64() + c * v.to_f64()))
    }

    fn scale(&self, a: f64) -> Self {
        if let Some(x) = self.as_slice() {
            let v = dispatch(Collect {
                x,
                y: None,
                z: None,
                a,
                b: 0.0,
                c: 0.0,
            });
            return Array::from_shape_vec(self.raw_dim(), v).expect("same length");
        }
        self.mapv(|x| A::from_f64(a * x.to_f64()))
    }

    fn zeros_like(&self) -> Self {
        Array::from_elem(self.raw_dim(), A::from_f64(0.0))
    }

    fn dup(&self) -> Self {
        self.clone()
    }

    fn rms(&self) -> f64 {
        let n = self.len();
        if n == 0 {
            return 0.0;
        }
        let ss: f64 = self.iter().map(|&x| x.to_f64() * x.to_f64()).sum();
        (ss / n as f64).sqrt()
    }

    fn numel(&self) -> usize {
        self.len()
    }

    fn from_host_like(&self, values: &[f64]) -> Self {
        assert_eq!(
            values.len(),
            self.len(),
            "State::from_host_like length mismatch"
        );
        Array::from_shape_vec(
            self.raw_dim(),
            values.iter().map(|&v| A::from_f64(v)).collect(),
        )
        .expect("length checked above")
    }

    /// Straight into the array's storage when it is in standard order: one call for `f64`,
    /// through a 1024-entry stack buffer for `f32` (any other layout takes the default path).
    fn fill_from_host(&mut self, fill: &mut dyn FnMut(&mut [f64])) {
        let Some(out) = self.as_slice_mut() else {
            return super::fill_through_host(self, fill);
        };
        let out = match A::as_f64_slice_mut(out) {
            Some(out64) => return fill(out64),
            None => out,
        };
        let mut buf = [0.0f64; 1024];
        for chunk in out.chunks_mut(buf.len()) {
            let host = &mut buf[..chunk.len()];
            fill(host);
            for (o, v) in chunk.iter_mut().zip(host.iter()) {
                *o = A::from_f64(*v);
            }
        }
    }

    fn from_host_scaled(&self, values: &[f64], a: f64) -> Self {
        assert_eq!(
            values.len(),
            self.len(),
            "State::from_host_scaled length mismatch"
        );
        Array::from_shape_vec(
            self.raw_dim(),
            values.iter().map(|&v| A::from_f64(v * a)).collect(),
        )
        .expect("length checked above")
    }

    fn to_host(&self) -> Vec<f64> {
        self.iter().map(|&x| x.to_f64()).collect()
    }

    fn is_finite(&self) -> bool {
        match self.as_slice_memory_order() {
            Some(s) => {
                let mut acc = [0.0_f64; LANES];
                let mut chunks = s.chunks_exact(LANES);
                for c in &mut chunks {
                    for (a, &v) in acc.iter_mut().zip(c) {
                        probe(a, v);
                    }
                }
                for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
                    probe(a, v);
                }
                all_zero(&acc)
            }
            None => {
                let mut acc = 0.0_f64;
                for &v in self.iter() {
                    probe(&mut acc, v);
                }
                acc == 0.0
            }
        }
    }

    fn lincomb_assign_finite(&mut self, a: f64, other: &Self, b: f64) -> bool {
        assert_eq!(self.shape(), other.shape(), "State::lincomb shape mismatch");
        // `as_slice` is `Some` only in standard layout, so the slices pair entries correctly.
        if let (Some(s), Some(u)) = (self.as_slice_mut(), other.as_slice()) {
            return dispatch(Assign2::<A, true> { s, u, a, b });
        }
        self.lincomb_assign(a, other, b);
        self.is_finite()
    }

    fn lincomb3_assign_finite(&mut self, a: f64, x: &Self, b: f64, y: &Self, c: f64) -> bool {
        assert_eq!(self.shape(), x.shape(), "State::lincomb3 shape mismatch");
        assert_eq!(self.shape(), y.shape(), "State::lincomb3 shape mismatch");
        if let (Some(s), Some(u), Some(v)) = (self.as_slice_mut(), x.as_slice(), y.as_slice()) {
            return dispatch(Assign3::<A, true> { s, u, v, a, b, c });
        }
        self.lincomb3_assign(a, x, b, y, c);
        self.is_finite()
    }

    fn is_exclusive(&self) -> bool {
        true
    }

    fn lincomb_assign(&mut self, a: f64, other: &Self, b: f64) {
        assert_eq!(self.shape(), other.shape(), "State::lincomb shape mismatch");
        if let (Some(s), Some(u)) = (self.as_slice_mut(), other.as_slice()) {
            dispatch(Assign2::<A, false> { s, u, a, b });
            return;
        }
        Zip::from(self)
            .and(other)
            .for_each(|s, &y| *s = A::from_f64(a * s.to_f64() + b * y.to_f64()));
    }

    fn lincomb3_assign(&mut self, a: f64, x: &Self, b: f64, y: &Self, c: f64) {
        assert_eq!(self.shape(), x.shape(), "State::lincomb3 shape mismatch");
        assert_eq!(self.shape(), y.shape(), "State::lincomb3 shape mismatch");
        if let (Some(s), Some(u), Some(v)) = (self.as_slice_mut(), x.as_slice(), y.as_slice()) {
            dispatch(Assign3::<A, false> { s, u, v, a, b, c });
            return;
        }
        Zip::from(self).and(x).and(y).for_each(|s, &u, &v| {
            *s = A::from_f64(a * s.to_f64() + b * u.to_f64() + c * v.to_f64())
        });
    }

    fn scale_assign(&mut self, a: f64) {
        if let Some(s) = self.as_slice_mut() {
            dispatch(Scale { s, x: None, a });
            return;
        }
        self.mapv_inplace(|x| A::from_f64(a * x.to_f64()));
    }

    fn lincomb_into(&self, a: f64, other: &Self, b: f64, out: &mut Self) {
        assert_eq!(self.shape(), other.shape(), "State::lincomb shape mismatch");
        assert_eq!(
            self.shape(),
            out.shape(),
            "State::lincomb_into shape mismatch"
        );
        if let (Some(x), Some(y), Some(o)) = (self.as_slice(), other.as_slice(), out.as_slice_mut())
        {
            dispatch(Into2 { out: o, x, y, a, b });
            return;
        }
        Zip::from(out)
            .and(self)
            .and(other)
            .for_each(|o, &x, &y| *o = A::from_f64(a * x.to_f64() + b * y.to_f64()));
    }

    fn scale_into(&self, a: f64, out: &mut Self) {
        assert_eq!(
            self.shape(),
            out.shape(),
            "State::scale_into shape mismatch"
        );
        if let (Some(x), Some(o)) = (self.as_slice(), out.as_slice_mut()) {
            dispatch(Scale {
                s: o,
                x: Some(x),
                a,
            });
            return;
        }
        Zip::from(out)
            .and(self)
            .for_each(|o, &x| *o = A::from_f64(a * x.to_f64()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array1, Array2, Array3};

    #[test]
    fn lincomb_scale_and_rms_on_f64_and_f32() {
        let x = array![[1.0_f64, 2.0], [3.0, 4.0]];
        let y = array![[0.5_f64, -1.0], [2.0, 0.0]];
        let z = x.lincomb(2.0, &y, -4.0);
        assert_eq!(z, array![[0.0, 8.0], [-2.0, 8.0]]);
        assert_eq!(x.scale(-0.5), array![[-0.5, -1.0], [-1.5, -2.0]]);
        assert!((x.rms() - (30.0_f64 / 4.0).sqrt()).abs() < 1e-15);
        let xf: Array2<f32> = x.mapv(|v| v as f32);
        let yf: Array2<f32> = y.mapv(|v| v as f32);
        assert_eq!(xf.lincomb(2.0, &yf, -4.0).to_host(), z.to_host());
        let w = x.lincomb3(1.0, &y, 2.0, &x, -1.0);
        assert_eq!(w, array![[1.0, -2.0], [4.0, 0.0]]);
    }

    #[test]
    fn host_round_trip_keeps_row_major_order_in_any_dimension() {
        let x = Array3::<f64>::zeros((2, 3, 4));
        let vals: Vec<f64> = (0..24).map(|i| i as f64).collect();
        let y = x.from_host_like(&vals);
        assert_eq!(y[[1, 2, 3]], 23.0);
        assert_eq!(y[[0, 1, 0]], 4.0);
        assert_eq!(y.to_host(), vals);
        assert_eq!(y.numel(), 24);
        assert_eq!(y.zeros_like().rms(), 0.0);
    }

    #[test]
    fn in_place_and_into_forms_give_the_same_bits_as_the_allocating_ones() {
        let x = Array3::<f64>::zeros((3, 5, 7)).from_host_like(
            &(0..105)
                .map(|i| (i as f64 * 0.37).sin() * 3.1)
                .collect::<Vec<_>>(),
        );
        let y = x.mapv(|v| (v * 1.7).cos() - 0.2);
        let z = x.mapv(|v| v * v - 0.9);
        let (a, b, c) = (0.731_f64, -1.0 / 3.0, 2.0_f64.sqrt());
        let mut s = x.clone();
        s.lincomb_assign(a, &y, b);
        assert_eq!(s, x.lincomb(a, &y, b));
        let mut s = x.clone();
        s.lincomb3_assign(a, &y, b, &z, c);
        assert_eq!(s, x.lincomb3(a, &y, b, &z, c));
        let mut s = x.clone();
        s.scale_assign(c);
        assert_eq!(s, x.scale(c));
        let mut out = z.clone();
        x.lincomb_into(a, &y, b, &mut out);
        assert_eq!(out, x.lincomb(a, &y, b));
        x.scale_into(b, &mut out);
        assert_eq!(out, x.scale(b));
        assert!(x.is_exclusive());
        let xf: Array2<f32> = array![[1.5_f32, -2.0], [0.25, 4.0]];
        let yf: Array2<f32> = array![[0.5_f32, 3.0], [-1.0, 0.125]];
        let mut sf = xf.clone();
        sf.lincomb_assign(a, &yf, b);
        assert_eq!(sf, xf.lincomb(a, &yf, b));
    }

    #[test]
    fn non_finite_entries_are_detected_anywhere_and_in_any_layout() {
        for n in [1_usize, 7, 8, 9, 64, 101] {
            for i in [0, n / 2, n - 1] {
                for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                    let mut x = Array1::<f64>::from_elem(n, 1.0e300);
                    assert!(x.is_finite());
                    x[i] = bad;
                    assert!(!x.is_finite(), "n = {n}, i = {i}, {bad}");
                    let xf = x.mapv(|v| v as f32);
                    assert!(!xf.is_finite());
                }
            }
        }
        // A non-contiguous (transposed, sliced) view owned again keeps its answer.
        let mut m = Array2::<f64>::zeros((4, 6));
        m[[3, 1]] = f64::NAN;
        let t = m.t().to_owned();
        assert!(!t.is_finite());
        m[[3, 1]] = 0.0;
        assert!(m.t().to_owned().is_finite());
    }

    #[test]
    fn fused_finite_forms_give_the_same_bits_and_catch_every_non_finite_result() {
        let (a, b, c) = (0.731_f64, -1.0 / 3.0, 2.0_f64.sqrt());
        for n in [1_usize, 7, 8, 9, 64, 101] {
            let x = Array1::<f64>::from_iter((0..n).map(|i| (i as f64 * 0.37).sin() * 3.1));
            let u = x.mapv(|v| (v * 1.7).cos() - 0.2);
            let w = x.mapv(|v| v * v - 0.9);
            let mut s = x.clone();
            assert!(s.lincomb_assign_finite(a, &u, b));
            assert_eq!(s, x.lincomb(a, &u, b));
            let mut s = x.clone();
            assert!(s.lincomb3_assign_finite(a, &u, b, &w, c));
            assert_eq!(s, x.lincomb3(a, &u, b, &w, c));
            let xf = x.mapv(|v| v as f32);
            let (uf, wf) = (u.mapv(|v| v as f32), w.mapv(|v| v as f32));
            let mut sf = xf.clone();
            assert!(sf.lincomb3_assign_finite(a, &uf, b, &wf, c));
            assert_eq!(sf, xf.lincomb3(a, &uf, b, &wf, c));
            for i in [0, n / 2, n - 1] {
                for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                    let mut ub = u.clone();
                    ub[i] = bad;
                    let mut s = x.clone();
                    assert!(!s.lincomb_assign_finite(a, &ub, b), "n = {n}, i = {i}");
                    let mut s = x.clone();
                    assert!(
                        !s.lincomb3_assign_finite(a, &u, b, &ub, c),
                        "n = {n}, i = {i}"
                    );
                }
                // Finite inputs whose result overflows.
                let mut big = u.clone();
                big[i] = 1.0e308;
                let mut s = x.mapv(|_| 1.0e308);
                assert!(!s.lincomb_assign_finite(1.0, &big, 1.0), "n = {n}, i = {i}");
                let mut sf = xf.clone();
                let mut bf = uf.clone();
                bf[i] = 3.0e38;
                assert!(
                    !sf.lincomb_assign_finite(1.0, &bf, 2.0),
                    "f32 n = {n}, i = {i}"
                );
            }
        }
        // Non-standard layouts take the unfused path with the same answer.
        let m = Array2::<f64>::from_shape_fn((4, 6), |(i, j)| (i * 6 + j) as f64);
        let mut t = m.t().to_owned();
        let mut tt = Array2::<f64>::zeros((6, 4));
        tt.assign(&m.t());
        let mut bad = m.clone();
        bad[[3, 1]] = f64::NAN;
        let bad_t = bad.reversed_axes();
        assert!(!t.lincomb_assign_finite(1.0, &bad_t, 1.0));
        assert!(tt.lincomb3_assign_finite(1.0, &m.t().to_owned(), 0.5, &tt.clone(), -0.5));
    }

    #[test]
    fn fill_from_host_writes_what_from_host_like_builds_in_every_layout() {
        let v: Vec<f64> = (0..3000).map(|i| (i as f64 * 0.37).sin() * 3.0).collect();
        // A filler handing out `v` in order, whatever the chunk sizes.
        let filler = || {
            let mut next = 0;
            let v = &v;
            move |out: &mut [f64]| {
                for o in out {
                    *o = v[next];
                    next += 1;
                }
            }
        };
        // Standard order, f64 (one call) and f32 (across three 1024-entry chunks, the last short).
        let mut a = ndarray::Array2::<f64>::zeros((10, 300));
        a.fill_from_host(&mut filler());
        assert_eq!(a, a.from_host_like(&v));
        let mut b = ndarray::Array2::<f32>::zeros((10, 300));
        b.fill_from_host(&mut filler());
        assert_eq!(b, b.from_host_like(&v));
        // A transposed (non-standard) array takes the default path, in logical order.
        let mut t = ndarray::Array2::<f64>::zeros((300, 10)).reversed_axes();
        t.fill_from_host(&mut filler());
        assert_eq!(t.to_host(), v);
    }

    #[test]
    fn from_host_scaled_is_the_scaled_conversion() {
        let like = Array1::<f64>::zeros(257);
        let v: Vec<f64> = (0..257).map(|i| (i as f64 * 0.37).sin() * 3.0).collect();
        for a in [1.0, -1.0, 0.3, -(0.4f64).sqrt()] {
            let fused = like.from_host_scaled(&v, a);
            let two_pass = like.from_host_like(&v).scale(a);
            assert_eq!(fused, two_pass, "a = {a}");
        }
        let f32like = Array1::<f32>::zeros(257);
        let fused = f32like.from_host_scaled(&v, -0.5);
        for (f, x) in fused.iter().zip(&v) {
            assert_eq!(*f, (x * -0.5) as f32);
        }
    }

    /// Every loop gives the same bits through the run-time dispatch (AVX-512 / AVX2 where the CPU
    /// has them) as compiled for the build's own target, on lengths around the vector widths.
    #[test]
    fn dispatched_loops_give_the_baseline_bits() {
        use crate::state::simd::baseline;
        fn check<A: Scalar + PartialEq + std::fmt::Debug>(conv: fn(f64) -> A) {
            let (a, b, c) = (0.731_f64, -1.0 / 3.0, 2.0_f64.sqrt());
            for n in [1_usize, 3, 7, 8, 9, 16, 17, 31, 1000, 4099] {
                let x: Vec<A> = (0..n)
                    .map(|i| conv((i as f64 * 0.37).sin() * 3.1))
                    .collect();
                let y: Vec<A> = (0..n).map(|i| conv((i as f64 * 1.7).cos() - 0.2)).collect();
                let mut z: Vec<A> = (0..n).map(|i| conv((i as f64).sqrt() - 0.9)).collect();
                z[n / 2] = conv(f64::MAX);
                let collect = |y, z| Collect {
                    x: &x,
                    y,
                    z,
                    a,
                    b,
                    c,
                };
                for (y, z) in [
                    (None, None),
                    (Some(&y[..]), None),
                    (Some(&y[..]), Some(&z[..])),
                ] {
                    assert_eq!(dispatch(collect(y, z)), baseline(collect(y, z)), "n = {n}");
                }
                let (mut s1, mut s2) = (x.clone(), x.clone());
                let ok1 = dispatch(Assign2::<A, true> {
                    s: &mut s1,
                    u: &z,
                    a,
                    b,
                });
                let ok2 = baseline(Assign2::<A, true> {
                    s: &mut s2,
                    u: &z,
                    a,
                    b,
                });
                assert_eq!((ok1, &s1), (ok2, &s2), "n = {n}");
                dispatch(Assign2::<A, false> {
                    s: &mut s1,
                    u: &y,
                    a,
                    b,
                });
                baseline(Assign2::<A, false> {
                    s: &mut s2,
                    u: &y,
                    a,
                    b,
                });
                assert_eq!(s1, s2);
                let (mut s1, mut s2) = (x.clone(), x.clone());
                let ok1 = dispatch(Assign3::<A, true> {
                    s: &mut s1,
                    u: &y,
                    v: &z,
                    a,
                    b,
                    c,
                });
                let ok2 = baseline(Assign3::<A, true> {
                    s: &mut s2,
                    u: &y,
                    v: &z,
                    a,
                    b,
                    c,
                });
                assert_eq!((ok1, &s1), (ok2, &s2), "n = {n}");
                let (mut o1, mut o2) = (z.clone(), z.clone());
                dispatch(Into2 {
                    out: &mut o1,
                    x: &x,
                    y: &y,
                    a,
                    b,
                });
                baseline(Into2 {
                    out: &mut o2,
                    x: &x,
                    y: &y,
                    a,
                    b,
                });
                assert_eq!(o1, o2);
                dispatch(Scale {
                    s: &mut o1,
                    x: Some(&y),
                    a: c,
                });
                baseline(Scale {
                    s: &mut o2,
                    x: Some(&y),
                    a: c,
                });
                assert_eq!(o1, o2);
                dispatch(Scale {
                    s: &mut o1,
                    x: None,
                    a: b,
                });
                baseline(Scale {
                    s: &mut o2,
                    x: None,
                    a: b,
                });
                assert_eq!(o1, o2);
            }
        }
        check::<f64>(|v| v);
        check::<f32>(|v| v as f32);
    }

    #[test]
    fn non_finite_entries_are_detected() {
        let mut x = array![1.0_f64, 2.0, 3.0];
        assert!(x.is_finite());
        x[1] = f64::NAN;
        assert!(!x.is_finite());
        x[1] = f64::INFINITY;
        assert!(!x.is_finite());
    }
}
