"""CUDA autocast's op lists as a PyTorch function mode, and the EDM loss and gradients under it.

Used by tools/bench/gpu/grad_check.py (the Rust trainer's gradients next to PyTorch's) and by
tools/refdata/make_net_fixtures.py (the `unet_autocast` fixture of
crates/diffusion-models/tests/train_bf16.rs): on the CPU, `CudaAutocastLists` computes what
`torch.autocast("cuda", dtype=torch.bfloat16)` computes on a GPU, so the bf16 path of the Rust
trainer can be checked against it without one.
"""

import contextlib

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from nets import edm_denoise


class CudaAutocastLists(TorchFunctionMode):
    """`torch.autocast("cuda", torch.bfloat16)`'s op lists, applied on any device.

    Written from PyTorch's documentation of CUDA autocast ("Automatic Mixed Precision package",
    op reference): the listed matrix products and convolutions take bfloat16 inputs, the listed
    reductions, norms, softmax and transcendental functions take float32 inputs, the listed
    multi-input ops take the widest floating type of their inputs, and everything else runs in the
    types it is given. On the CPU this gives what the CUDA autocast computes (PyTorch's CPU
    autocast follows other lists); on CUDA it can be checked against the real one.
    """

    LOW = {F.conv1d, F.conv2d, F.conv3d, F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d,
           F.linear, F.prelu, torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.mm,
           torch.Tensor.mm, torch.bmm, torch.Tensor.bmm, torch.addmm, torch.addbmm, torch.baddbmm,
           torch.addmv, torch.addr, torch.mv, torch.chain_matmul}
    WIDE = {torch.exp, torch.Tensor.exp, torch.expm1, torch.log, torch.Tensor.log, torch.log10, torch.log2,
            torch.log1p, torch.Tensor.log1p, torch.pow, torch.Tensor.pow, torch.Tensor.__pow__,
            torch.Tensor.__rpow__, torch.reciprocal, torch.Tensor.reciprocal, torch.rsqrt,
            torch.Tensor.rsqrt, torch.Tensor.__rtruediv__, torch.Tensor.__rdiv__, torch.acos, torch.asin,
            torch.cosh, torch.sinh, torch.tan, torch.erfinv, torch.softmax, torch.Tensor.softmax,
            F.softmax, F.log_softmax, torch.log_softmax, torch.Tensor.log_softmax, F.softmin, F.softplus,
            torch.sum, torch.Tensor.sum, torch.prod, torch.cumsum, torch.cumprod, torch.norm,
            torch.Tensor.norm, F.normalize, F.layer_norm, F.group_norm, torch.cdist, torch.dist,
            F.pdist, torch.renorm, F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.kl_div, F.nll_loss,
            F.cross_entropy, F.binary_cross_entropy_with_logits, F.cosine_similarity}
    PROMOTE = {torch.cat, torch.stack, torch.addcdiv, torch.addcmul, torch.atan2, torch.bilinear,
               torch.cross, torch.dot, torch.tensordot, torch.index_put, torch.scatter_add}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.LOW:
            to = torch.bfloat16
        elif func in self.WIDE:
            to = torch.float32
        elif func in self.PROMOTE:
            kinds = [t.dtype for t in _tensors((args, kwargs)) if t.is_floating_point()]
            to = max(kinds, key=lambda k: torch.finfo(k).bits) if kinds else None
        else:
            to = None
        if to is not None:
            args, kwargs = _cast((args, kwargs), to)
        return func(*args, **kwargs)


def _tensors(tree):
    if isinstance(tree, torch.Tensor):
        yield tree
    elif isinstance(tree, (list, tuple)):
        for x in tree:
            yield from _tensors(x)
    elif isinstance(tree, dict):
        for x in tree.values():
            yield from _tensors(x)


def _cast(tree, to):
    if isinstance(tree, torch.Tensor):
        # Autocast leaves float64 (and non-floating) tensors alone.
        return tree.to(to) if tree.dtype in (torch.float16, torch.bfloat16, torch.float32) else tree
    if isinstance(tree, (list, tuple)):
        return type(tree)(_cast(x, to) for x in tree)
    if isinstance(tree, dict):
        return {k: _cast(v, to) for k, v in tree.items()}
    return tree


def edm_loss_at(net, x0, sigma, noise, sigma_data):
    """The EDM loss at given noise levels and noise (the Rust `EdmLoss::per_sample`, averaged)."""
    s = sigma.reshape(-1, *([1] * (x0.dim() - 1)))
    d = edm_denoise(net, x0 + s * noise, sigma, sigma_data)
    w = ((sigma.double() ** 2 + sigma_data**2) / (sigma.double() * sigma_data) ** 2).float()
    return (w * ((d - x0) ** 2).mean(dim=tuple(range(1, x0.dim())))).mean()


def loss_and_grads(net, x0, sigma, noise, sigma_data, mode, perm=None):
    """Loss and gradients in `mode`: "fp32", "autocast" (this device's torch.autocast, bf16) or
    "cuda_lists" (CUDA autocast's op lists on any device)."""
    if perm is not None:
        x0, sigma, noise = x0[perm], sigma[perm], noise[perm]
    net.zero_grad(set_to_none=True)
    ctx = {"fp32": contextlib.nullcontext(),
           "autocast": torch.autocast(device_type=x0.device.type, dtype=torch.bfloat16),
           "cuda_lists": CudaAutocastLists()}[mode]
    with ctx:
        loss = edm_loss_at(net, x0, sigma, noise, sigma_data)
    loss.float().backward()
    return loss.item(), {n: p.grad.detach().float().cpu() for n, p in net.named_parameters()
                         if p.grad is not None}


def out_and_grads(net, inputs, r, mode):
    """The output of `net(*inputs)` and the gradients of `<out, r>` with respect to the
    parameters that get one, in float32 ("fp32") or under CUDA autocast's lists ("cuda_lists")."""
    net.zero_grad(set_to_none=True)
    with CudaAutocastLists() if mode == "cuda_lists" else contextlib.nullcontext():
        out = net(*inputs)
    (out.float() * r).sum().backward()
    grads = {n: p.grad.detach().float().clone() for n, p in net.named_parameters() if p.grad is not None}
    return out.detach(), grads
