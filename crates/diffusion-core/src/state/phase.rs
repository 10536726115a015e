//! `Phase<S>`: the (position, velocity) pair state of augmented-space processes (CLD, PSLD, FDM).

use super::{Finiteness, State};

/// A phase-space state: data coordinates `x` and auxiliary (velocity / momentum) coordinates `v`
/// of the same shape. It is a `State` itself, so every generic solver runs on augmented processes.
#[derive(Debug)]
pub struct Phase<S> {
    /// Data (position) coordinates.
    pub x: S,
    /// Auxiliary (velocity / momentum) coordinates.
    pub v: S,
}

impl<S: State> Phase<S> {
    /// Builds a phase-space state from its two halves.
    pub fn new(x: S, v: S) -> Self {
        Phase { x, v }
    }
}

impl<S: State> State for Phase<S> {
    fn lincomb(&self, a: f64, other: &Self, b: f64) -> Self {
        Phase::new(
            self.x.lincomb(a, &other.x, b),
            self.v.lincomb(a, &other.v, b),
        )
    }
    fn lincomb3(&self, a: f64, x: &Self, b: f64, y: &Self, c: f64) -> Self {
        Phase::new(
            self.x.lincomb3(a, &x.x, b, &y.x, c),
            self.v.lincomb3(a, &x.v, b, &y.v, c),
        )
    }
    fn scale(&self, a: f64) -> Self {
        Phase::new(self.x.scale(a), self.v.scale(a))
    }
    fn zeros_like(&self) -> Self {
        Phase::new(self.x.zeros_like(), self.v.zeros_like())
    }
    fn dup(&self) -> Self {
        Phase::new(self.x.dup(), self.v.dup())
    }
    fn rms(&self) -> f64 {
        let (nx, nv) = (self.x.numel() as f64, self.v.numel() as f64);
        if nx + nv == 0.0 {
            return 0.0;
        }
        let (rx, rv) = (self.x.rms(), self.v.rms());
        ((rx * rx * nx + rv * rv * nv) / (nx + nv)).sqrt()
    }
    fn numel(&self) -> usize {
        self.x.numel() + self.v.numel()
    }
    /// The first `x.numel()` values fill `x`, the rest fill `v`.
    fn from_host_like(&self, values: &[f64]) -> Self {
        let nx = self.x.numel();
        assert_eq!(
            values.len(),
            self.numel(),
            "Phase::from_host_like length mismatch"
        );
        Phase::new(
            self.x.from_host_like(&values[..nx]),
            self.v.from_host_like(&values[nx..]),
        )
    }
    /// `x` first, then `v` (the order of [`State::to_host`]).
    fn fill_from_host(&mut self, fill: &mut dyn FnMut(&mut [f64])) {
        self.x.fill_from_host(fill);
        self.v.fill_from_host(fill);
    }
    fn to_host(&self) -> Vec<f64> {
        let mut out = self.x.to_host();
        out.extend(self.v.to_host());
        out
    }
    fn is_finite(&self) -> bool {
        self.x.is_finite() && self.v.is_finite()
    }
    fn finiteness(&self) -> Finiteness {
        match (self.x.finiteness(), self.v.finiteness()) {
            (Finiteness::Known(a), Finiteness::Known(b)) => Finiteness::Known(a && b),
            (a, b) => Finiteness::Pending(Box::new(move || a.resolve() && b.resolve())),
        }
    }
    fn is_exclusive(&self) -> bool {
        self.x.is_exclusive() && self.v.is_exclusive()
    }
    fn lincomb_assign(&mut self, a: f64, other: &Self, b: f64) {
        self.x.lincomb_assign(a, &other.x, b);
        self.v.lincomb_assign(a, &other.v, b);
    }
    fn lincomb3_assign(&mut self, a: f64, x: &Self, b: f64, y: &Self, c: f64) {
        self.x.lincomb3_assign(a, &x.x, b, &y.x, c);
        self.v.lincomb3_assign(a, &x.v, b, &y.v, c);
    }
    fn lincomb_assign_finite(&mut self, a: f64, other: &Self, b: f64) -> bool {
        let x_ok = self.x.lincomb_assign_finite(a, &other.x, b);
        self.v.lincomb_assign_finite(a, &other.v, b) && x_ok
    }
    fn lincomb3_assign_finite(&mut self, a: f64, x: &Self, b: f64, y: &Self, c: f64) -> bool {
        let x_ok = self.x.lincomb3_assign_finite(a, &x.x, b, &y.x, c);
        self.v.lincomb3_assign_finite(a, &x.v, b, &y.v, c) && x_ok
    }
    fn scale_assign(&mut self, a: f64) {
        self.x.scale_assign(a);
        self.v.scale_assign(a);
    }
    fn lincomb_into(&self, a: f64, other: &Self, b: f64, out: &mut Self) {
        self.x.lincomb_into(a, &other.x, b, &mut out.x);
        self.v.lincomb_into(a, &other.v, b, &mut out.v);
    }
    fn scale_into(&self, a: f64, out: &mut Self) {
        self.x.scale_into(a, &mut out.x);
        self.v.scale_into(a, &mut out.v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn phase_is_a_vector_space_over_both_halves() {
        let p = Phase::new(array![1.0_f64, 2.0], array![3.0_f64]);
        let q = Phase::new(array![1.0_f64, 1.0], array![-1.0_f64]);
        let r = p.lincomb(2.0, &q, 3.0);
        assert_eq!(r.to_host(), vec![5.0, 7.0, 3.0]);
        assert_eq!(r.numel(), 3);
        let s = p.from_host_like(&[9.0, 8.0, 7.0]);
        assert_eq!(s.x, array![9.0, 8.0]);
        assert_eq!(s.v, array![7.0]);
        assert!((p.rms() - (14.0_f64 / 3.0).sqrt()).abs() < 1e-15);
    }
}
