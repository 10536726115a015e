//! `State` for `tch::Tensor` (feature `tch`): any dtype, any device, no host round trip per step.

use super::State;
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
        let _ = out.copy_(self);
        out.lincomb_assign(a, other, b);
    }
    fn scale_into(&self, a: f64, out: &mut Self) {
        let _ = out.copy_(self);
        let _ = out.g_mul_scalar_(a);
    }
    fn is_finite(&self) -> bool {
        if self.numel() == 0 {
            return true;
        }
        self.isfinite().all().int64_value(&[]) != 0
    }
}
