//! Flat parameter and gradient buffers: every trainable tensor of a network becomes a view into
//! one contiguous buffer, and so does its gradient, so the optimizer, the EMA, gradient clipping
//! and the bf16 copy each run as a handful of kernels over one buffer instead of several kernels
//! per tensor (PyTorch reaches the same with `_foreach_` / fused kernels, which tch 0.24 does not
//! expose).
//!
//! Gradients: libtorch accumulates a backward pass into an existing `.grad` in place (when the
//! pass does not build a graph of its own), so once a parameter's gradient is a view of the flat
//! gradient buffer it stays one; [`FlatLayout::adopt_grads`] checks that after every backward pass
//! and re-points (copying the values) any gradient that libtorch replaced.

use crate::error::{ModelError, Result};
use tch::{Kind, Tensor};

/// Where each tensor of a list lives inside one flat buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatLayout {
    shapes: Vec<Vec<i64>>,
    offsets: Vec<i64>,
    total: i64,
}

impl FlatLayout {
    /// The layout of `tensors`, one after the other in list order.
    pub fn of(tensors: &[Tensor]) -> Self {
        let mut offsets = Vec::with_capacity(tensors.len());
        let mut total = 0i64;
        let shapes = tensors
            .iter()
            .map(|t| {
                offsets.push(total);
                total += t.numel() as i64;
                t.size()
            })
            .collect();
        FlatLayout {
            shapes,
            offsets,
            total,
        }
    }

    /// The layout of the tensors `i` with `keep[i]`, each at its offset in this layout, over a
    /// buffer of the same length (the others' places are left out: a buffer of the subset has
    /// room for them, and they stay as they are).
    pub fn subset(&self, keep: &[bool]) -> Self {
        let (shapes, offsets) = self
            .shapes
            .iter()
            .zip(&self.offsets)
            .zip(keep)
            .filter(|(_, &k)| k)
            .map(|((s, &o), _)| (s.clone(), o))
            .unzip();
        FlatLayout {
            shapes,
            offsets,
            total: self.total,
        }
    }

    /// The buffer positions (`Int64`, on `device`) of the tensors, one after the other: for
    /// gathering them out of a buffer into a contiguous one and scattering them back.
    pub fn positions(&self, device: tch::Device) -> Tensor {
        let parts: Vec<Tensor> = self
            .shapes
            .iter()
            .zip(&self.offsets)
            .map(|(s, &o)| {
                Tensor::arange_start(o, o + s.iter().product::<i64>(), (Kind::Int64, device))
            })
            .collect();
        if parts.is_empty() {
            Tensor::zeros([0], (Kind::Int64, device))
        } else {
            Tensor::cat(&parts, 0)
        }
    }

    /// Number of elements in the buffer.
    pub fn numel(&self) -> i64 {
        self.total
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.shapes.len()
    }

    /// Whether the layout holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.shapes.is_empty()
    }

    /// A zero buffer of this layout.
    pub fn zeros(&self, kind: Kind, device: tch::Device) -> Tensor {
        Tensor::zeros([self.total], (kind, device))
    }

    /// The tensors of `flat` (a buffer of this layout), as views sharing its memory.
    pub fn views(&self, flat: &Tensor) -> Vec<Tensor> {
        self.shapes
            .iter()
            .zip(&self.offsets)
            .map(|(shape, &off)| {
                let n: i64 = shape.iter().product();
                flat.narrow(0, off, n).view(shape.as_slice())
            })
            .collect()
    }

    /// A new buffer of `kind` holding copies of `tensors` (which must have this layout).
    pub fn gather(&self, tensors: &[Tensor], kind: Kind, device: tch::Device) -> Result<Tensor> {
        self.check(tensors)?;
        let flat = self.zeros(kind, device);
        tch::no_grad(|| {
            for (v, t) in self.views(&flat).iter().zip(tensors) {
                v.shallow_clone().copy_(t);
            }
        });
        Ok(flat)
    }

    fn check(&self, tensors: &[Tensor]) -> Result<()> {
        if tensors.len() != self.shapes.len()
            || tensors
                .iter()
                .zip(&self.shapes)
                .any(|(t, s)| t.size() != *s)
        {
            return Err(ModelError::invalid(
                "flat buffer",
                format!(
                    "{} tensors do not match a layout of {} tensors",
                    tensors.len(),
                    self.shapes.len()
                ),
            ));
        }
        Ok(())
    }

    /// Moves the values of `params` into a new buffer of their kind and makes every parameter a
    /// view of it (the same tensors, so optimizers and variable stores holding them see the
    /// buffer). Returns the buffer.
    pub fn flatten(&self, params: &[Tensor]) -> Result<Tensor> {
        let first = params
            .first()
            .ok_or_else(|| ModelError::invalid("flat buffer", "no parameters"))?;
        let (kind, device) = (first.kind(), first.device());
        if let Some(p) = params
            .iter()
            .find(|p| p.kind() != kind || p.device() != device)
        {
            return Err(ModelError::invalid(
                "flat buffer",
                format!(
                    "parameters of mixed kind or device ({:?} on {:?} and {:?} on {:?})",
                    kind,
                    device,
                    p.kind(),
                    p.device()
                ),
            ));
        }
        let flat = self.gather(params, kind, device)?;
        for (p, v) in params.iter().zip(self.views(&flat)) {
            p.shallow_clone().set_data(&v);
        }
        Ok(flat)
    }

    /// Makes the gradient of every parameter a view of `grads` (a zero buffer of this layout),
    /// giving gradients to parameters that have none.
    pub fn attach_grads(&self, params: &[Tensor], grads: &Tensor) -> Result<()> {
        self.check(params)?;
        if params.iter().any(|p| !p.grad().defined()) {
            let zero = params
                .iter()
                .map(|p| p.sum(Kind::Float) * 0.0)
                .fold(Tensor::zeros([], (Kind::Float, grads.device())), |a, b| {
                    a + b
                });
            zero.f_backward()?;
        }
        for (p, v) in params.iter().zip(self.views(grads)) {
            let mut g = p.grad();
            if !g.defined() {
                return Err(ModelError::invalid(
                    "flat buffer",
                    "a parameter has no gradient after a backward pass through it",
                ));
            }
            tch::no_grad(|| {
                v.shallow_clone().copy_(&g);
            });
            g.set_data(&v);
        }
        Ok(())
    }

    /// After a backward pass: re-points (copying the values) every gradient that is no longer
    /// the view of `grads` it was attached to. Returns how many were re-pointed.
    pub fn adopt_grads(&self, params: &[Tensor], grads: &Tensor) -> Result<usize> {
        // Where each gradient should start, from the buffer's address and the offsets: a view
        // is only built for a gradient that moved (none, once libtorch accumulates in place).
        let base = grads.data_ptr() as usize;
        let elt = grads.kind().elt_size_in_bytes();
        let mut moved = 0;
        for ((p, shape), &off) in params.iter().zip(&self.shapes).zip(&self.offsets) {
            let mut g = p.grad();
            if g.defined() && g.data_ptr() as usize == base + off as usize * elt {
                continue;
            }
            if !g.defined() {
                // Someone dropped the gradient: give it back (zero, as the buffer was zeroed).
                self.attach_grads(params, grads)?;
                return Ok(moved + 1);
            }
            let n: i64 = shape.iter().product();
            let v = grads.narrow(0, off, n).view(shape.as_slice());
            tch::no_grad(|| {
                v.shallow_clone().copy_(&g);
            });
            g.set_data(&v);
            moved += 1;
        }
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// A subset keeps its tensors at their places in the full buffer; its positions gather them
    /// out of a full buffer and scatter them back.
    #[test]
    fn subsets_keep_their_places_and_positions_gather_them() {
        let ts = [
            Tensor::zeros([2], (Kind::Float, Device::Cpu)),
            Tensor::zeros([1, 3], (Kind::Float, Device::Cpu)),
            Tensor::zeros([2], (Kind::Float, Device::Cpu)),
        ];
        let full = FlatLayout::of(&ts);
        let outer = full.subset(&[true, false, true]);
        assert_eq!((outer.len(), outer.numel()), (2, 7));
        let buf = Tensor::arange(7, (Kind::Float, Device::Cpu));
        let views: Vec<Vec<f32>> = outer
            .views(&buf)
            .iter()
            .map(|v| Vec::try_from(v).unwrap())
            .collect();
        assert_eq!(views, vec![vec![0.0, 1.0], vec![5.0, 6.0]]);
        let pos = outer.positions(Device::Cpu);
        assert_eq!(Vec::<i64>::try_from(&pos).unwrap(), vec![0, 1, 5, 6]);
        let gathered = buf.index_select(0, &pos);
        let back = Tensor::zeros([7], (Kind::Float, Device::Cpu)).index_copy(0, &pos, &gathered);
        assert_eq!(
            Vec::<f32>::try_from(&back).unwrap(),
            vec![0.0, 1.0, 0.0, 0.0, 0.0, 5.0, 6.0]
        );
        // Its tensors can be made views of a subset buffer (the others' places stay zero).
        let params = [ts[0].shallow_clone(), ts[2].shallow_clone()];
        tch::no_grad(|| {
            let _ = params[1].shallow_clone().fill_(4.0);
        });
        let sub = outer.flatten(&params).unwrap();
        assert_eq!(
            Vec::<f32>::try_from(&sub).unwrap(),
            vec![0.0, 0.0, 0.0, 0.0, 0.0, 4.0, 4.0]
        );
        assert!(full.subset(&[false; 3]).positions(Device::Cpu).numel() == 0);
    }

    #[test]
    fn parameters_and_gradients_become_views_of_one_buffer() {
        let a = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0])
            .reshape([2, 2])
            .set_requires_grad(true);
        let b = Tensor::from_slice(&[5.0f32, 6.0]).set_requires_grad(true);
        let params = [a.shallow_clone(), b.shallow_clone()];
        let layout = FlatLayout::of(&params);
        assert_eq!(layout.numel(), 6);
        let flat = layout.flatten(&params).unwrap();
        assert_eq!(
            Vec::<f32>::try_from(&flat).unwrap(),
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        );
        // Writing the buffer writes the parameters.
        tch::no_grad(|| {
            let _ = flat.shallow_clone().g_mul_scalar_(2.0);
        });
        assert_eq!(Vec::<f32>::try_from(b.detach()).unwrap(), vec![10.0, 12.0]);
        let grads = layout.zeros(Kind::Float, Device::Cpu);
        layout.attach_grads(&params, &grads).unwrap();
        for _ in 0..2 {
            let loss = (&a * 3.0).sum(Kind::Float) + b.square().sum(Kind::Float);
            loss.backward();
            assert_eq!(layout.adopt_grads(&params, &grads).unwrap(), 0);
        }
        // Two accumulated passes: 2 * 3 and 2 * 2b.
        assert_eq!(
            Vec::<f32>::try_from(&grads).unwrap(),
            vec![6.0, 6.0, 6.0, 6.0, 40.0, 48.0]
        );
        let _ = grads.shallow_clone().zero_();
        assert_eq!(a.grad().sum(Kind::Float).double_value(&[]), 0.0);
        // A replaced gradient is copied back into the buffer and re-pointed.
        let mut g = b.grad();
        g.set_data(&Tensor::from_slice(&[7.0f32, 8.0]));
        assert_eq!(layout.adopt_grads(&params, &grads).unwrap(), 1);
        assert_eq!(
            Vec::<f32>::try_from(&grads).unwrap(),
            vec![0.0, 0.0, 0.0, 0.0, 7.0, 8.0]
        );
        assert!(layout.flatten(&[]).is_err());
        assert!(layout
            .gather(&[a.shallow_clone()], Kind::Float, Device::Cpu)
            .is_err());
    }
}
