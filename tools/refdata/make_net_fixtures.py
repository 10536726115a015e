#!/usr/bin/env python3
"""Interop fixtures for the networks of diffusion-models (tests/interop.rs).

Run through `cargo xtask refdata` (after make_fixtures.py); see tools/refdata/README.md. Builds
small configurations of the PyTorch reference modules in tools/torch_ref/nets.py (UNet, DiT,
SeqTransformer), gives every parameter random values (rounded to float32, so the float32 files
hold them exactly), evaluates the modules in float64 on fixed inputs and writes into --out:

* nets.toml: the configurations, in the Rust config structs' field names ([unet], [unet_plain],
  [dit], [seq]) and a [meta] table with the torch version;
* <name>.safetensors: the state_dict (float32), the file the Rust side loads through
  `load_safetensors`;
* <name>_io.safetensors: the inputs (`x` float32, `t` float32, `class` int64 or `tokens`) and
  the float64 outputs: `out` (eval mode, the given labels), `out_null` (no labels: the null
  class), `out_train` (U-Net only: train mode, dropout seed DROPOUT_SEED, i.e. the seeded hash
  dropout of nets/layers.rs) and `logvar` (U-Net log-variance head);
* unet_autocast.safetensors / unet_autocast_io.safetensors: the EDM loss and gradients of a
  float32 U-Net in float32 and under CUDA autocast's bf16 op lists (`autocast_case`; read by
  tests/train_bf16.rs);
* <name>_lists.safetensors for unet, dit and seq: those networks in float32 on their inputs under
  CUDA autocast's bf16 op lists, with cotangents `r`: the bf16 `out` and the gradients of
  `<out, r>` (`lists_case`; read by tests/interop.rs);
* sample_parity.safetensors: the `unet_autocast` U-Net at random weights, initial states `x_T`
  (sigma_max = 80 times normals, float32) and EDM's Heun sampler run from them in float64 for
  SAMPLE_STEPS steps on the Karras grid (tools/torch_ref/sampling.py, the sampler of
  tools/bench/train_torch.py): `out` (`sample_case`;
  read by tests/sample_parity.rs);
* train_parity.safetensors: the toy MLP trained by a PyTorch loop (AdamW, clipping, EMAs,
  warmup + cosine) on fixed inputs, with its losses, gradient norms, final and EMA weights
  (`train_case`; read by tests/train_parity.rs; its settings are [train_parity] in nets.toml).

Everything is seeded (torch.manual_seed(SEED)), so a rerun with the same torch reproduces the
files byte for byte.
"""

import argparse
import math
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "torch_ref"))
import nets  # noqa: E402
from autocast_lists import edm_loss_at, loss_and_grads, out_and_grads  # noqa: E402
from rust_config import toml_value  # noqa: E402
from sampling import heun_sample  # noqa: E402

SEED = 20261126
DROPOUT_SEED = 0x5EED_D12D_0000_0042
BATCH = 3

CONFIGS = {
    "unet": dict(
        in_channels=2,
        out_channels=3,
        image_size=8,
        model_channels=8,
        channel_mult=[1, 2],
        num_res_blocks=1,
        attention_resolutions=[4],
        num_heads=2,
        dropout=0.2,
        num_classes=3,
        groups=4,
        embedding={"kind": "fourier", "dim": 16, "scale": 2.0},
        time_scale=0.5,
        scale_shift=True,
        skip_rescale=False,
        logvar_channels=8,
    ),
    "unet_plain": dict(
        in_channels=1,
        out_channels=1,
        image_size=8,
        model_channels=8,
        channel_mult=[1, 1, 2],
        num_res_blocks=1,
        attention_resolutions=[],
        num_heads=1,
        dropout=0.0,
        num_classes=None,
        groups=2,
        embedding={"kind": "sinusoidal", "dim": 8, "max_period": 10000.0},
        time_scale=1.0,
        scale_shift=False,
        skip_rescale=True,
        logvar_channels=0,
    ),
    # The bf16 check (tests/train_bf16.rs): Fashion-MNIST-shaped, so the trainer's data source
    # takes it; GroupNorm, attention at 14x14, a sinusoidal embedding, no dropout.
    "unet_autocast": dict(
        in_channels=1,
        out_channels=1,
        image_size=28,
        model_channels=8,
        channel_mult=[1, 2],
        num_res_blocks=1,
        attention_resolutions=[14],
        num_heads=2,
        dropout=0.0,
        num_classes=None,
        groups=4,
        embedding={"kind": "sinusoidal", "dim": 16, "max_period": 10000.0},
        time_scale=1.0,
        scale_shift=False,
        skip_rescale=False,
        logvar_channels=0,
    ),
    "dit": dict(
        image_size=8,
        patch_size=2,
        in_channels=2,
        out_channels=3,
        hidden=16,
        depth=2,
        num_heads=2,
        mlp_ratio=2.5,
        num_classes=3,
        embedding={"kind": "fourier", "dim": 12, "scale": 1.0},
        time_scale=2.0,
    ),
    "seq": dict(
        vocab_size=7,
        seq_len=12,
        hidden=16,
        depth=2,
        num_heads=4,
        mlp_ratio=2.0,
        embedding={"kind": "sinusoidal", "dim": 10, "max_period": 100.0},
        time_scale=1.0,
    ),
}


def to_toml(configs):
    lines = ["# Written by tools/refdata/make_net_fixtures.py; read by tests/interop.rs.", ""]
    lines += ["[meta]", f'torch = "{torch.__version__}"', f"seed = {SEED}", ""]
    for name, cfg in configs.items():
        lines.append(f"[{name}]")
        # None (no classes) is an absent key: the Rust Option field's default.
        lines += [f"{k} = {toml_value(v)}" for k, v in cfg.items() if v is not None]
        lines.append("")
    return "\n".join(lines)


def randomize(net):
    """Random float32-representable values everywhere, except DiT's fixed pos_embed (kept,
    rounded to float32) and GroupNorm scales (around 1)."""
    with torch.no_grad():
        for name, p in net.state_dict().items():
            if name == "pos_embed" and isinstance(net, nets.DiT):
                v = p
            elif name.endswith("W"):
                v = p
            elif ("norm" in name) and name.endswith("weight"):
                v = 1.0 + 0.2 * torch.randn_like(p)
            else:
                v = 0.3 * torch.randn_like(p)
            p.copy_(v.float().double())


def f32(x):
    return x.float().double()


def state_f32(net):
    return {k: v.float().contiguous() for k, v in net.state_dict().items()}


def image_case(cls, cfg, out_dir, name, train=False):
    net = cls(**cfg).double()
    randomize(net)
    net.eval()
    c = cfg["in_channels"]
    s = cfg["image_size"]
    x = f32(torch.randn(BATCH, c, s, s))
    t = f32(torch.rand(BATCH) * 2.0 - 0.5)
    io = {"x": x.float(), "t": t.float()}
    with torch.no_grad():
        if cfg.get("num_classes") is not None:
            k = cfg["num_classes"]
            y = torch.tensor([0, k - 1, k], dtype=torch.int64)[:BATCH]
            io["class"] = y
            io["out"] = net(x, t, y)
        else:
            io["out"] = net(x, t)
        io["out_null"] = net(x, t)
        if train:
            net.train()
            net.set_dropout_seed(DROPOUT_SEED)
            io["out_train"] = net(x, t, io.get("class"))
            io["dropout_calls"] = torch.tensor([net.dropout_calls], dtype=torch.int64)
            io["dropout_seed"] = torch.tensor([DROPOUT_SEED], dtype=torch.int64)
            net.eval()
        if cfg.get("logvar_channels", 0) > 0:
            io["logvar"] = net.log_variance(t)
    save_file(state_f32(net), out_dir / f"{name}.safetensors")
    save_file({k: v.contiguous() for k, v in io.items()}, out_dir / f"{name}_io.safetensors")
    return net


def autocast_case(cfg, out_dir, name, batch=8, sigma_data=0.5):
    """The EDM loss and its gradients for a float32 U-Net at random weights and inputs, in
    float32 and under CUDA autocast's bf16 op lists (tools/torch_ref/autocast_lists.py).
    Writes <name>.safetensors (the state_dict) and <name>_io.safetensors: `x0`, `noise`
    (float32), `sigma` (float64 values that float32 holds exactly), `loss_fp32` / `loss_bf16`
    (float64, one value) and `grad_fp32.<param>` / `grad_bf16.<param>` (float32)."""
    torch.set_default_dtype(torch.float32)
    net = nets.UNet(**cfg)
    randomize(net)
    net.train()
    s = cfg["image_size"]
    x0 = torch.rand(batch, cfg["in_channels"], s, s) * 2.0 - 1.0
    sigma = (torch.randn(batch, dtype=torch.float64) * 1.2 - 1.2).exp().float().double()
    noise = torch.randn(batch, cfg["in_channels"], s, s)
    io = {"x0": x0, "sigma": sigma, "noise": noise}
    for mode, key in [("fp32", "fp32"), ("cuda_lists", "bf16")]:
        loss, grads = loss_and_grads(net, x0, sigma.float(), noise, sigma_data, mode)
        io[f"loss_{key}"] = torch.tensor([loss], dtype=torch.float64)
        io.update({f"grad_{key}.{n}": g for n, g in grads.items()})
    save_file(state_f32(net), out_dir / f"{name}.safetensors")
    save_file({k: v.contiguous() for k, v in io.items()}, out_dir / f"{name}_io.safetensors")
    torch.set_default_dtype(torch.float64)


def lists_case(cls, cfg, out_dir, name, inputs):
    """The float32 network of fixture `name` (its weights file) on its inputs (`inputs`: the
    names in <name>_io.safetensors of the positional arguments) under CUDA autocast's bf16 op
    lists, with seeded output cotangents `r`: writes <name>_lists.safetensors with `r`, `out`
    (the bf16 output) and `grad.<param>` (the gradients of `<out, r>`, float32)."""
    torch.set_default_dtype(torch.float32)
    net = cls(**cfg)
    net.load_state_dict(load_file(out_dir / f"{name}.safetensors"), strict=True)
    net.eval()
    io = load_file(out_dir / f"{name}_io.safetensors")
    args = [io[k] if k in io else None for k in inputs]
    with torch.no_grad():
        shape = net(*args).shape
    r = torch.randn(shape)
    out, grads = out_and_grads(net, args, r, "cuda_lists")
    data = {"r": r, "out": out}
    data.update({f"grad.{n}": g for n, g in grads.items()})
    save_file({k: v.contiguous() for k, v in data.items()}, out_dir / f"{name}_lists.safetensors")
    torch.set_default_dtype(torch.float64)


# The update-for-update training comparison (tests/train_parity.rs): the toy MLP trained by the
# PyTorch loop below on given inputs. Warmup, cosine decay to a floor, weight decay, clipping that
# bites and two EMA decays with warmup (one reaching its plain decay) are all exercised.
TRAIN = dict(
    mlp=dict(data_dim=2, hidden=32, depth=2, emb_dim=16, scale=4.0),
    steps=20,
    batch=64,
    lr=5e-3,
    warmup=3,
    min_lr_ratio=0.1,
    weight_decay=0.01,
    grad_clip=0.5,
    ema=[0.5, 0.95],
    sigma_data=2.0,
    p_mean=-0.5,
    p_std=1.2,
)


def lr_at(k, c):
    """The learning rate of update k (0-based): the Rust `WarmupCosine`'s formula."""
    if k < c["warmup"]:
        return c["lr"] * (k + 1) / c["warmup"]
    p = min((k - c["warmup"]) / max(c["steps"] - c["warmup"], 1), 1.0)
    lo = c["min_lr_ratio"] * c["lr"]
    return lo + (c["lr"] - lo) * 0.5 * (1.0 + math.cos(math.pi * p))


def train_case(out_dir, name="train_parity"):
    """Trains nets.MLP for TRAIN["steps"] updates with torch.optim.AdamW, clip_grad_norm_ and
    EMAs (decay min(d, (1 + k) / (10 + k)) after update k, 1-based) on fixed inputs: eight
    Gaussian clusters, log-normal noise levels, standard normal noise. Writes
    <name>.safetensors: `w.<param>` (the initial state_dict, the output layer given small random
    values), `x0`, `noise` [steps, batch, 2] (float32), `sigma` [steps, batch] (float64 values
    float32 holds), `loss`, `grad_norm` [steps] (float64; the norm before clipping),
    `final.<param>` and `ema<i>.<param>` (float32)."""
    torch.set_default_dtype(torch.float32)
    c = TRAIN
    net = nets.MLP(**c["mlp"])
    with torch.no_grad():
        net.out.weight.normal_(0.0, 0.1)
        net.out.bias.normal_(0.0, 0.1)
    data = {f"w.{k}": v.clone() for k, v in net.state_dict().items()}
    k_, b_ = c["steps"], c["batch"]
    angle = torch.randint(0, 8, (k_, b_)).double() * (2 * math.pi / 8)
    centers = torch.stack([angle.cos(), angle.sin()], -1) * 4.0
    x0 = (centers + 0.5 * torch.randn(k_, b_, 2, dtype=torch.float64)).float()
    sigma = (torch.randn(k_, b_, dtype=torch.float64) * c["p_std"] + c["p_mean"]).exp().float().double()
    noise = torch.randn(k_, b_, 2)
    opt = torch.optim.AdamW(net.parameters(), lr=c["lr"], betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=c["weight_decay"])
    params = list(net.parameters())
    emas = [[q.detach().clone() for q in params] for _ in c["ema"]]
    losses, norms = [], []
    for k in range(k_):
        for g in opt.param_groups:
            g["lr"] = lr_at(k, c)
        opt.zero_grad(set_to_none=True)
        loss = edm_loss_at(net, x0[k], sigma[k].float(), noise[k], c["sigma_data"])
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, c["grad_clip"])))
        opt.step()
        for e, d in zip(emas, c["ema"]):
            dk = min(d, (2.0 + k) / (11.0 + k))
            with torch.no_grad():
                torch._foreach_lerp_(e, params, 1.0 - dk)
        losses.append(loss.item())
    names = [n for n, _ in net.named_parameters()]
    data.update({"x0": x0, "sigma": sigma, "noise": noise,
                 "loss": torch.tensor(losses, dtype=torch.float64),
                 "grad_norm": torch.tensor(norms, dtype=torch.float64)})
    data.update({f"final.{n}": q.detach().clone() for n, q in zip(names, params)})
    for i, e in enumerate(emas):
        data.update({f"ema{i}.{n}": q for n, q in zip(names, e)})
    save_file({k: v.contiguous() for k, v in data.items()}, out_dir / f"{name}.safetensors")
    torch.set_default_dtype(torch.float64)


SAMPLE_STEPS = 6


def sample_case(cfg, out_dir, name="sample_parity", n=3, sigma_data=0.5):
    """EDM-Heun samples (SAMPLE_STEPS steps, float64) of a U-Net at random weights from fixed
    initial states: what `Trainer::sample_from` must reproduce."""
    net = nets.UNet(**cfg).double()
    randomize(net)
    net.eval()
    s = cfg["image_size"]
    x_t = (80.0 * torch.randn(n, cfg["in_channels"], s, s)).float()
    out = heun_sample(net, x_t.double(), SAMPLE_STEPS, sigma_data)
    data = {f"w.{k}": v for k, v in state_f32(net).items()}
    data.update({"x_t": x_t, "out": out, "steps": torch.tensor([SAMPLE_STEPS], dtype=torch.int64)})
    save_file({k: v.contiguous() for k, v in data.items()}, out_dir / f"{name}.safetensors")


def seq_case(cfg, out_dir, name):
    net = nets.SeqTransformer(**cfg).double()
    randomize(net)
    net.eval()
    length = cfg["seq_len"] - 3
    tokens = torch.randint(0, cfg["vocab_size"], (BATCH, length), dtype=torch.int64)
    t = f32(torch.rand(BATCH))
    with torch.no_grad():
        out = net(tokens, t)
    save_file(state_f32(net), out_dir / f"{name}.safetensors")
    save_file({"tokens": tokens, "t": t.float(), "out": out}, out_dir / f"{name}_io.safetensors")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    torch.set_default_dtype(torch.float64)
    image_case(nets.UNet, CONFIGS["unet"], args.out, "unet", train=True)
    image_case(nets.UNet, CONFIGS["unet_plain"], args.out, "unet_plain")
    image_case(nets.DiT, CONFIGS["dit"], args.out, "dit")
    seq_case(CONFIGS["seq"], args.out, "seq")
    autocast_case(CONFIGS["unet_autocast"], args.out, "unet_autocast")
    lists_case(nets.UNet, CONFIGS["unet"], args.out, "unet", ["x", "t", "class"])
    lists_case(nets.DiT, CONFIGS["dit"], args.out, "dit", ["x", "t", "class"])
    lists_case(nets.SeqTransformer, CONFIGS["seq"], args.out, "seq", ["tokens", "t"])
    train_case(args.out)
    sample_case(CONFIGS["unet_autocast"], args.out)
    (args.out / "nets.toml").write_text(to_toml({**CONFIGS, "train_parity": TRAIN}))
    total = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"wrote {args.out} ({total} bytes)")


if __name__ == "__main__":
    main()
