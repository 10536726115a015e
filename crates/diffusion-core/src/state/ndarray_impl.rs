//! `State` for owned `ndarray` arrays of `f32` or `f64`, any dimension.

use super::State;
use ndarray::{Array, Dimension, Zip};

/// The scalar types an `ndarray` state may hold.
pub trait Scalar: Copy + Send + Sync + 'static {
    /// Converts from the host `f64` used for all coefficients.
    fn from_f64(v: f64) -> Self;
    /// Converts to `f64`.
    fn to_f64(self) -> f64;
}

impl Scalar for f64 {
    #[inline]
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
}

impl Scalar for f32 {
    #[inline]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl<A, D> State for Array<A, D>
where
    A: Scalar,
    D: Dimension + 'static,
{
    fn lincomb(&self, a: f64, other: &Self, b: f64) -> Self {
        assert_eq!(self.shape(), other.shape(), "State::lincomb shape mismatch");
        Zip::from(self)
            .and(other)
            .map_collect(|&x, &y| A::from_f64(a * x.to_f64() + b * y.to_f64()))
    }

    fn lincomb3(&self, a: f64, x: &Self, b: f64, y: &Self, c: f64) -> Self {
        assert_eq!(self.shape(), x.shape(), "State::lincomb3 shape mismatch");
        assert_eq!(self.shape(), y.shape(), "State::lincomb3 shape mismatch");
        Zip::from(self)
            .and(x)
            .and(y)
            .map_collect(|&s, &u, &v| A::from_f64(a * s.to_f64() + b * u.to_f64() + c * v.to_f64()))
    }

    fn scale(&self, a: f64) -> Self {
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

    fn to_host(&self) -> Vec<f64> {
        self.iter().map(|&x| x.to_f64()).collect()
    }

    fn is_finite(&self) -> bool {
        self.iter().all(|&x| x.to_f64().is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2, Array3};

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
    fn non_finite_entries_are_detected() {
        let mut x = array![1.0_f64, 2.0, 3.0];
        assert!(x.is_finite());
        x[1] = f64::NAN;
        assert!(!x.is_finite());
        x[1] = f64::INFINITY;
        assert!(!x.is_finite());
    }
}
