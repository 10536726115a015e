//! `State` for `tch::Tensor` (feature `tch`): any dtype, any device, no host round trip per step.

use super::{Finiteness, State};
use tch::{Device, Kind, Tensor};

impl State for Tensor {
    fn lincomb(&self, a: f64, other: &Self, b: f64) -> Self {
        self * a + other * b
    }
    fn scale(&self, a: f64) -> Self {
        self * a
    }
    fn zeros_like(&self) -> Self {
        Tensor::zeros_like(self)
    }
    fn dup(&self) -> Self {
        self.shallow_clone()
    }
    fn rms(&self) -> f64 {
        if self.numel() == 0 {
            return 0.0;
        }
        self.to_kind(Kind::Double)
            .square()
            .mean(Kind::Double)
            .sqrt()
            .double_value(&[])
    }
    fn numel(&self) -> usize {
        Tensor::numel(self)
    }
    fn from_host_like(&self, values: &[f64]) -> Self {
        assert_eq!(
            values.len(),
            State::numel(self),
            "State::from_host_like length mismatch"
        );
        Tensor::from_slice(values)
            .reshape(self.size())
            .to_kind(self.kind())
            .to_device(self.device())
    }
    fn to_host(&self) -> Vec<f64> {
        let flat = self
            .to_kind(Kind::Double)
            .to_device(Device::Cpu)
            .reshape([-1]);
        Vec::<f64>::try_from(&flat).expect("a flat double CPU tensor converts to Vec<f64>")
    }
    // In-place forms with in-place torch ops and the arithmetic of the allocating ones
    // (`round(a s) + round(b o)`, no fused multiply-add), so both give the same bits. A tensor
    // never reports itself exclusive (`State::is_exclusive`): shallow clones share storage.
    fn lincomb_assign(&mut self, a: f64, other: &Self, b: f64) {
        let _ = self.g_mul_scalar_(a);
        let _ = self.g_add_(&(other * b));
    }
    fn lincomb3_assign(&mut self, a: f64, x: &Self, b: f64, y: &Self, c: f64) {
        let _ = self.g_mul_scalar_(a);
        let _ = self.g_add_(&(x * b));
        let _ = self.g_add_(&(y * c));
    }
    fn scale_assign(&mut self, a: f64) {
        let _ = self.g_mul_scalar_(a);
    }
    fn lincomb_into(&self, a: f64, other: &Self, b: f64, out: &mut Self) {
        out.copy_(self);
        out.lincomb_assign(a, other, b);
    }
    fn scale_into(&self, a: f64, out: &mut Self) {
        out.copy_(self);
        let _ = out.g_mul_scalar_(a);
    }
    fn is_finite(&self) -> bool {
        if self.numel() == 0 {
            return true;
        }
        self.isfinite().all().int64_value(&[]) != 0
    }
    // On every device (CPU tensors too, so that a run reports the same thing wherever it runs):
    // the flag is a 0-dim tensor computed in the tensor's own queue, read when the sampler asks.
    fn finiteness(&self) -> Finiteness {
        if self.numel() == 0 {
            return Finiteness::Known(true);
        }
        let flag = self.isfinite().all();
        Finiteness::Pending(Box::new(move || flag.int64_value(&[]) != 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f64]) -> Tensor {
        Tensor::from_slice(v).reshape([2, 3])
    }

    #[test]
    fn in_place_and_into_forms_give_the_same_bits_as_the_allocating_ones() {
        let x = t(&[0.3, -1.7, 2.9, 1e-3, 7.25, -0.01]);
        let u = t(&[1.1, 0.2, -0.7, 5.0, -3.3, 0.4]);
        let v = t(&[-0.4, 0.9, 3.3, -2.0, 0.0, 1.0 / 3.0]);
        let (a, b, c) = (0.37, -1.0 / 7.0, 2.5);
        let mut s = x.copy();
        s.lincomb_assign(a, &u, b);
        assert_eq!(s.to_host(), x.lincomb(a, &u, b).to_host());
        let mut s = x.copy();
        s.lincomb3_assign(a, &u, b, &v, c);
        assert_eq!(s.to_host(), x.lincomb3(a, &u, b, &v, c).to_host());
        let mut s = x.copy();
        s.scale_assign(c);
        assert_eq!(s.to_host(), x.scale(c).to_host());
        let mut out = v.copy();
        x.lincomb_into(a, &u, b, &mut out);
        assert_eq!(out.to_host(), x.lincomb(a, &u, b).to_host());
        x.scale_into(b, &mut out);
        assert_eq!(out.to_host(), x.scale(b).to_host());
        // Shallow clones share storage, so a tensor never claims exclusive ownership.
        assert!(!x.is_exclusive());
    }
}
