"""PyTorch reference modules of the networks in crates/diffusion-models/src/nets/.

`UNet`, `DiT` and `SeqTransformer` here have the same `state_dict` names, shapes and forward
computation as the Rust `UNet`, `Dit` and `SeqTransformer` (see the module docs of unet.rs,
dit.rs and transformer.rs), so weights move between the two through safetensors:

    net = UNet(**config)                      # config: the Rust UNetConfig's fields
    safetensors.torch.save_file(net.state_dict(), "w.safetensors")   # Rust: load_safetensors

Initial values are drawn by PyTorch (the Rust initialisation draws from the Rust HostNoise
stream, so the numbers differ), but from the same distributions as the Rust U-Net: PyTorch's
default uniform init, and zeros for the layers the Rust side zero-initialises (each residual
block's `conv2`, each attention block's `proj`, and `conv_out`), so training comparisons start
from the same kind of network.

Dropout in the U-Net, the DiT and the sequence transformer uses the same seeded hash as the Rust
side (`hash_dropout`), so train-mode outputs agree too: set `net.dropout_seed` (the counter
`net.dropout_calls` restarts at 0 when it is set through `set_dropout_seed`) and call
`net.train()`.

The module depends on torch only; `tools/refdata/make_net_fixtures.py` uses it to write the
interop fixtures of crates/diffusion-models/tests/interop.rs.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

MASK64 = (1 << 64) - 1


# --- time embeddings (nets/embedding.rs) ---------------------------------------------------


def sinusoidal(t, dim, max_period=10000.0):
    """[cos(t f_k), sin(t f_k)], f_k = exp(-ln(max_period) k / half), half = dim / 2."""
    half = dim // 2
    k = torch.arange(half, dtype=torch.float64, device=t.device)
    f = torch.exp(-math.log(max_period) * k / half).to(t.dtype)
    a = t[:, None] * f[None]
    return torch.cat([a.cos(), a.sin()], dim=1)


def fourier(t, w):
    """[sin(2 pi t W), cos(2 pi t W)] for a fixed frequency buffer W."""
    a = t[:, None] * (w.to(t.dtype) * (2 * math.pi))[None]
    return torch.cat([a.sin(), a.cos()], dim=1)


def register_embedding(module, spec):
    """Gives `module` the buffer `W` of a Fourier embedding (nothing for sinusoids). spec: the
    Rust TimeEmbedding as a dict ({"kind": "sinusoidal", "dim", "max_period"} or {"kind":
    "fourier", "dim", "scale"})."""
    if spec["kind"] == "fourier":
        module.register_buffer("W", torch.randn(spec["dim"] // 2) * spec["scale"])
    elif spec["kind"] != "sinusoidal":
        raise ValueError(f"unknown embedding kind {spec['kind']!r}")


def embed_time(module, spec, t):
    if spec["kind"] == "sinusoidal":
        return sinusoidal(t, spec["dim"], spec.get("max_period", 10000.0))
    return fourier(t, module.W)



def _zero(layer):
    """Zero weight and bias (the Rust side's `Init::Zero`)."""
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)

class TimeEmbed(nn.Module):
    """A time embedding as its own module (its Fourier buffer is `<name>.W`)."""

    def __init__(self, spec):
        super().__init__()
        self.spec = spec
        register_embedding(self, spec)

    def forward(self, t):
        return embed_time(self, self.spec, t)


# --- seeded hash dropout (nets/layers.rs) ---------------------------------------------------


def splitmix64(z):
    z = (z + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def dropout_key(seed, call):
    return splitmix64(seed ^ splitmix64(call))


def _hash32(x):
    m = 0x045D9F3B
    x = x ^ (x >> 16)
    x = (x * m) & 0xFFFFFFFF
    x = x ^ (x >> 16)
    x = (x * m) & 0xFFFFFFFF
    return x ^ (x >> 16)


def hash_uniform(like, key):
    lo, hi = key & 0xFFFFFFFF, key >> 32
    idx = torch.arange(like.numel(), dtype=torch.int64, device=like.device) & 0xFFFFFFFF
    h = _hash32(_hash32(idx ^ lo) ^ hi)
    return (h.to(torch.float64) / 4294967296.0).reshape(like.shape)


def hash_dropout(x, p, key):
    if p <= 0:
        return x
    keep = (hash_uniform(x, key) >= p).to(x.dtype)
    return x * keep * (1.0 / (1.0 - p))


# --- U-Net (nets/unet.rs) -------------------------------------------------------------------


class ResBlock(nn.Module):
    def __init__(self, net, cin, cout, emb_dim, groups, scale_shift, skip_rescale):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout if scale_shift else cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        _zero(self.conv2)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None
        self.scale_shift, self.skip_rescale = scale_shift, skip_rescale
        self._net = [net]  # not a submodule

    def forward(self, x, emb_act):
        h = self.conv1(F.silu(self.norm1(x)))
        e = self.emb(emb_act)[:, :, None, None]
        if self.scale_shift:
            scale, shift = e.chunk(2, dim=1)
            h = self.norm2(h) * (1 + scale) + shift
        else:
            h = self.norm2(h + e)
        h = self.conv2(self._net[0].dropout(F.silu(h)))
        out = (self.skip(x) if self.skip is not None else x) + h
        return out / math.sqrt(2) if self.skip_rescale else out


class AttnBlock(nn.Module):
    def __init__(self, ch, heads, groups, skip_rescale):
        super().__init__()
        self.norm = nn.GroupNorm(groups, ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)
        _zero(self.proj)
        self.heads, self.skip_rescale = heads, skip_rescale

    def forward(self, x):
        b, c, hh, ww = x.shape
        d = c // self.heads
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, d, hh * ww)
        q, k, v = (qkv[:, i].transpose(-2, -1) for i in range(3))  # [B, heads, L, d]
        # The scale on q, as the Rust nets (and scaled_dot_product_attention) do.
        w = torch.softmax((q * (1.0 / math.sqrt(d))) @ k.transpose(-2, -1), dim=-1)
        a = (w @ v).transpose(-2, -1).reshape(b, c, hh, ww)
        out = x + self.proj(a)
        return out / math.sqrt(2) if self.skip_rescale else out


class Level(nn.Module):
    pass


class UNet(nn.Module):
    def __init__(
        self,
        in_channels=1,
        out_channels=1,
        image_size=28,
        model_channels=48,
        channel_mult=(1, 2, 2),
        num_res_blocks=2,
        attention_resolutions=(7,),
        num_heads=4,
        dropout=0.1,
        num_classes=None,
        groups=16,
        embedding=None,
        time_scale=1.0,
        scale_shift=True,
        skip_rescale=False,
        logvar_channels=0,
    ):
        super().__init__()
        c = model_channels
        emb_dim = 4 * c
        embedding = embedding or {"kind": "sinusoidal", "dim": 48, "max_period": 10000.0}
        self.cfg = dict(
            image_size=image_size,
            dropout=dropout,
            num_classes=num_classes,
            time_scale=time_scale,
        )
        self.dropout_seed, self.dropout_calls = 0, 0
        self.time_embed = TimeEmbed(embedding)
        self.time_mlp = nn.Sequential(
            nn.Linear(embedding["dim"], emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        if num_classes is not None:
            self.class_embed = nn.Embedding(num_classes + 1, emb_dim)
        self.conv_in = nn.Conv2d(in_channels, c, 3, padding=1)
        levels = len(channel_mult)
        res = [image_size >> l for l in range(levels)]
        blk = lambda cin, cout: ResBlock(  # noqa: E731
            self, cin, cout, emb_dim, groups, scale_shift, skip_rescale
        )
        attn = lambda ch, on: (  # noqa: E731
            AttnBlock(ch, num_heads, groups, skip_rescale) if on else nn.Identity()
        )
        ch, chans = c, [c]
        self.down = nn.ModuleList()
        for l, m in enumerate(channel_mult):
            lv = Level()
            lv.res, lv.attn = nn.ModuleList(), nn.ModuleList()
            on = res[l] in attention_resolutions
            for _ in range(num_res_blocks):
                lv.res.append(blk(ch, c * m))
                ch = c * m
                lv.attn.append(attn(ch, on))
                chans.append(ch)
            if l + 1 != levels:
                lv.downsample = nn.Conv2d(ch, ch, 3, stride=2, padding=1)
                chans.append(ch)
            self.down.append(lv)
        self.mid = nn.Module()
        self.mid.res1 = blk(ch, ch)
        self.mid.attn = AttnBlock(ch, num_heads, groups, skip_rescale)
        self.mid.res2 = blk(ch, ch)
        ups = [None] * levels
        for l in reversed(range(levels)):
            m = channel_mult[l]
            lv = Level()
            lv.res, lv.attn = nn.ModuleList(), nn.ModuleList()
            on = res[l] in attention_resolutions
            for _ in range(num_res_blocks + 1):
                lv.res.append(blk(ch + chans.pop(), c * m))
                ch = c * m
                lv.attn.append(attn(ch, on))
            if l != 0:
                lv.upsample = nn.Conv2d(ch, ch, 3, padding=1)
            ups[l] = lv
        self.up = nn.ModuleList(ups)
        self.norm_out = nn.GroupNorm(groups, ch)
        self.conv_out = nn.Conv2d(ch, out_channels, 3, padding=1)
        _zero(self.conv_out)
        if logvar_channels > 0:
            self.logvar_embed = TimeEmbed({"kind": "fourier", "dim": logvar_channels, "scale": 1.0})
            self.logvar_linear = nn.Linear(logvar_channels, 1)

    def set_dropout_seed(self, seed):
        self.dropout_seed, self.dropout_calls = seed, 0

    def dropout(self, h):
        p = self.cfg["dropout"]
        if not self.training or p <= 0:
            return h
        key = dropout_key(self.dropout_seed, self.dropout_calls)
        self.dropout_calls += 1
        return hash_dropout(h, p, key)

    def forward(self, x, t, y=None):
        emb = self.time_mlp(self.time_embed(t * self.cfg["time_scale"]))
        if self.cfg["num_classes"] is not None:
            if y is None:
                y = torch.full((x.shape[0],), self.cfg["num_classes"], dtype=torch.int64, device=x.device)
            emb = emb + self.class_embed(y)
        emb = F.silu(emb)
        h = self.conv_in(x)
        hs = [h]
        for lv in self.down:
            for r, a in zip(lv.res, lv.attn):
                h = a(r(h, emb))
                hs.append(h)
            if hasattr(lv, "downsample"):
                h = lv.downsample(h)
                hs.append(h)
        h = self.mid.res2(self.mid.attn(self.mid.res1(h, emb)), emb)
        for lv in reversed(self.up):
            for r, a in zip(lv.res, lv.attn):
                h = a(r(torch.cat([h, hs.pop()], dim=1), emb))
            if hasattr(lv, "upsample"):
                h = lv.upsample(F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))

    def log_variance(self, t):
        return self.logvar_linear(self.logvar_embed(t * self.cfg["time_scale"]))[:, 0]


# --- DiT (nets/dit.rs) and the sequence transformer (nets/transformer.rs) --------------------


def sincos_pos_embed_2d(dim, grid):
    """[grid * grid, dim]: token i * grid + j gets [E(j), E(i)] (MAE / DiT layout)."""
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    i, j = torch.meshgrid(
        torch.arange(grid, dtype=torch.float64),
        torch.arange(grid, dtype=torch.float64),
        indexing="ij",
    )

    def e(pos):
        a = pos.reshape(-1)[:, None] * omega[None]
        return torch.cat([a.sin(), a.cos()], dim=1)

    return torch.cat([e(j), e(i)], dim=1)


def modulate(x, shift, scale):
    return x * (1 + scale[:, None]) + shift[:, None]


def layer_norm(x):
    return F.layer_norm(x, (x.shape[-1],), eps=1e-6)


def _identity(h):
    return h


class HashDropout:
    """The transformers' train-mode dropout (nets/dit.rs `Dropout`): rate `dropout_rate`, masks
    keyed by `dropout_seed` and the call counter `dropout_calls`."""

    def set_dropout_seed(self, seed):
        self.dropout_seed, self.dropout_calls = seed, 0

    def dropout(self, h):
        p = self.dropout_rate
        if not self.training or p <= 0:
            return h
        key = dropout_key(self.dropout_seed, self.dropout_calls)
        self.dropout_calls += 1
        return hash_dropout(h, p, key)


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.qkv, self.proj, self.heads = nn.Linear(d, 3 * d), nn.Linear(d, d), heads

    def forward(self, x, drop=_identity):
        b, l, d = x.shape
        qkv = self.qkv(x).reshape(b, l, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        w = torch.softmax((q * (1.0 / math.sqrt(d // self.heads))) @ k.transpose(-2, -1), dim=-1)
        return drop(self.proj((w @ v).transpose(1, 2).reshape(b, l, d)))


class Mlp(nn.Module):
    def __init__(self, d, m):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, m), nn.Linear(m, d)

    def forward(self, x, drop=_identity):
        return self.fc2(drop(F.gelu(self.fc1(x), approximate="tanh")))


class DiTBlock(nn.Module):
    def __init__(self, d, heads, mlp_ratio):
        super().__init__()
        self.attn = Attention(d, heads)
        self.mlp = Mlp(d, int(d * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))

    def forward(self, x, c, drop=_identity):
        s1, sc1, g1, s2, sc2, g2 = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + g1[:, None] * self.attn(modulate(layer_norm(x), s1, sc1), drop)
        return x + g2[:, None] * self.mlp(modulate(layer_norm(x), s2, sc2), drop)


class FinalLayer(nn.Module):
    def __init__(self, d, out):
        super().__init__()
        self.linear = nn.Linear(d, out)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(layer_norm(x), shift, scale))


class TimestepEmbedder(nn.Module):
    def __init__(self, spec, d):
        super().__init__()
        self.spec = spec
        register_embedding(self, spec)  # `t_embedder.W` for Fourier features
        self.mlp = nn.Sequential(nn.Linear(spec["dim"], d), nn.SiLU(), nn.Linear(d, d))

    def forward(self, t):
        return self.mlp(embed_time(self, self.spec, t))


class LabelEmbedder(nn.Module):
    def __init__(self, n, d):
        super().__init__()
        self.embedding_table = nn.Embedding(n + 1, d)

    def forward(self, y):
        return self.embedding_table(y)


class PatchEmbed(nn.Module):
    def __init__(self, cin, d, p):
        super().__init__()
        self.proj = nn.Conv2d(cin, d, p, stride=p)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class DiT(HashDropout, nn.Module):
    def __init__(
        self,
        image_size=28,
        patch_size=2,
        in_channels=1,
        out_channels=1,
        hidden=192,
        depth=6,
        num_heads=3,
        mlp_ratio=4.0,
        num_classes=None,
        embedding=None,
        time_scale=1.0,
        dropout=0.0,
    ):
        super().__init__()
        self.dropout_rate, self.dropout_seed, self.dropout_calls = dropout, 0, 0
        embedding = embedding or {"kind": "sinusoidal", "dim": 256, "max_period": 10000.0}
        g = image_size // patch_size
        self.g, self.p, self.co = g, patch_size, out_channels
        self.num_classes, self.time_scale = num_classes, time_scale
        self.x_embedder = PatchEmbed(in_channels, hidden, patch_size)
        self.pos_embed = nn.Parameter(
            sincos_pos_embed_2d(hidden, g)[None].to(torch.get_default_dtype()),
            requires_grad=False,
        )
        self.t_embedder = TimestepEmbedder(embedding, hidden)
        if num_classes is not None:
            self.y_embedder = LabelEmbedder(num_classes, hidden)
        self.blocks = nn.ModuleList(DiTBlock(hidden, num_heads, mlp_ratio) for _ in range(depth))
        self.final_layer = FinalLayer(hidden, patch_size * patch_size * out_channels)

    def forward(self, x, t, y=None):
        h = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(t * self.time_scale)
        if self.num_classes is not None:
            if y is None:
                y = torch.full((x.shape[0],), self.num_classes, dtype=torch.int64, device=x.device)
            c = c + self.y_embedder(y)
        for blk in self.blocks:
            h = blk(h, c, self.dropout)
        h = self.final_layer(h, c)
        b, g, p, co = x.shape[0], self.g, self.p, self.co
        h = h.reshape(b, g, g, p, p, co)
        return torch.einsum("nhwpqc->nchpwq", h).reshape(b, co, g * p, g * p)


class SeqTransformer(HashDropout, nn.Module):
    def __init__(
        self,
        vocab_size=28,
        seq_len=128,
        hidden=128,
        depth=4,
        num_heads=4,
        mlp_ratio=4.0,
        embedding=None,
        time_scale=1.0,
        dropout=0.0,
    ):
        super().__init__()
        self.dropout_rate, self.dropout_seed, self.dropout_calls = dropout, 0, 0
        embedding = embedding or {"kind": "sinusoidal", "dim": 128, "max_period": 10000.0}
        self.time_scale = time_scale
        self.tok_embed = nn.Embedding(vocab_size, hidden)
        self.pos_embed = nn.Parameter(torch.randn(1, seq_len, hidden) * 0.02)
        self.t_embedder = TimestepEmbedder(embedding, hidden)
        self.blocks = nn.ModuleList(DiTBlock(hidden, num_heads, mlp_ratio) for _ in range(depth))
        self.final_layer = FinalLayer(hidden, vocab_size)

    def forward(self, tokens, t):
        h = self.tok_embed(tokens) + self.pos_embed[:, : tokens.shape[1]]
        c = self.t_embedder(t * self.time_scale)
        for blk in self.blocks:
            h = blk(h, c, self.dropout)
        return self.final_layer(h, c)


def edm_denoise(net, x, sigma, sigma_data, y=None):
    """D(x; sigma) = c_skip x + c_out F(c_in x, c_noise) (EDM Eq. (7))."""
    s = sigma.reshape(-1, *([1] * (x.dim() - 1)))
    c_skip = sigma_data**2 / (s**2 + sigma_data**2)
    c_out = s * sigma_data / (s**2 + sigma_data**2).sqrt()
    c_in = 1 / (s**2 + sigma_data**2).sqrt()
    f = net(c_in * x, sigma.log() / 4, y)
    return c_skip * x + c_out * f.to(x.dtype)


class MLP(nn.Module):
    """The toy MLP of crates/diffusion-models/src/nets/mlp.rs (same state_dict names): a Fourier
    time embedding (buffer `time_embed.W`), `time_mlp` = Linear-SiLU-Linear, `inp`, residual
    blocks `h + Linear(silu(h + e))`, `out(silu(h))` (zero-initialised)."""

    def __init__(self, data_dim=2, hidden=128, depth=3, emb_dim=32, scale=4.0, time_scale=1.0):
        super().__init__()
        self.time_scale = time_scale
        self.time_embed = TimeEmbed({"kind": "fourier", "dim": emb_dim, "scale": scale})
        self.time_mlp = nn.Sequential(nn.Linear(emb_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.inp = nn.Linear(data_dim, hidden)
        self.blocks = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth))
        self.out = nn.Linear(hidden, data_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x, t, y=None):
        e = self.time_mlp(self.time_embed(t * self.time_scale))
        h = self.inp(x)
        for blk in self.blocks:
            h = h + blk(F.silu(h + e))
        return self.out(F.silu(h))
