//! sCM: continuous-time consistency training and distillation under TrigFlow.
//!
//! Paper: Lu & Song (2024), "Simplifying, Stabilizing and Scaling Continuous-Time Consistency
//! Models", arXiv:2410.11081: TrigFlow `x_t = cos(t) x0 + sin(t) z`, `z ~ N(0, sigma_d^2 I)`
//! (Sec. 3, Eq. (3)); the consistency function `f(x_t, t) = cos(t) x_t - sin(t) sigma_d
//! F(x_t / sigma_d, c_noise(t))` (Eq. (9)); the continuous-time gradient
//! `grad E[w(t) sigma_d F^T df_-/dt]` written as the squared error
//! `|| F - F_- - cos(t) df_-/dt ||^2` with a stop-gradient target (Eq. (8) and Sec. 4.2), where
//! `df_-/dt = -cos(t) (sigma_d F_- - dx_t/dt) - sin(t) (x_t + sigma_d dF_-/dt)` (Eq. (7));
//! tangent warmup (the second term's `sin(t)` multiplied by `r`, ramped linearly from 0 to 1),
//! tangent normalization `g / (||g|| + c)` with `c = 0.1` and the adaptive weighting
//! `e^{w(t)} / D ||...||^2 - w(t)` (Sec. 4.2); training times `tan(t) = e^tau / sigma_d`,
//! `tau ~ N(P_mean, P_std^2)` (Sec. 4.1; `P_mean = -1.0`, `P_std = 1.4` for sCT).
//!
//! Consistency training (sCT) uses the one-sample velocity `dx_t/dt = cos(t) z - sin(t) x0`;
//! consistency distillation (sCD) the teacher's PF-ODE velocity at `x_t`, from its x0
//! prediction `x0_hat`: `dx_t/dt = (cos(t) x_t - x0_hat) / sin(t)`. The total derivative
//! `dF_-/dt = d/dt F(x_t / sigma_d, t)` along `dx_t/dt` is a Jacobian-vector product with the
//! tangent `(dx_t/dt / sigma_d, 1)`. tch 0.24 exposes `_make_dual` / `_unpack_dual` but not
//! libtorch's dual-level API that forward-mode AD needs, so [`jvp`] uses the double-backward
//! identity `J v = d/du <J^T u, v>` (two reverse passes; tested against finite differences).
//! The network's time input is `c_noise(t) = t` (the MLP's `time_scale` may rescale it).
//!
//! Included: sCT and sCD, JVP tangent, tangent normalization, tangent warmup, adaptive
//! weighting with a small learned head ([`AdaptiveWeight`]: Fourier features of `t` and a linear
//! layer, its own AdamW). Not included: the paper's TrigFlow-specific network changes (adaptive
//! double normalization, positional time embeddings), JVP rearrangement for Flash Attention and
//! mixed-precision tricks, which concern large image networks. The adaptive head is updated at
//! the start of the next [`Objective::loss`] call from the gradients that the trainer's backward
//! pass left on it. The warmup ratio counts calls of [`Objective::loss`]. Both are part of
//! trainer checkpoints ([`Objective::state`]: the call count, the head's weights, their pending
//! gradients and the head's AdamW state), so a resumed sCM run continues exactly.

use super::{check_batch, mean_per_sample, normals_like, per_row, vector, Objective, Teacher};
use crate::denoiser::Parameterization;
use crate::error::{ModelError, Result};
use crate::nets::TimeNet;
use crate::train::checkpoint::Named;
use crate::train::{AdamW, AdamWConfig};
use diffusion_core::schedule::TrigFlow;
use diffusion_core::{HostNoise, NoiseSchedule};
use std::cell::{Cell, RefCell};
use tch::{nn, Device, Kind, Tensor};

/// `(f(x, t), J v)`: the value (detached) and the Jacobian-vector product of `f` at `(x, t)` in
/// the direction `(vx, vt)`, by the double-backward identity `J v = d/du <J^T u, v>` (see the
/// module documentation). `x` is `[B, ...]`, `t` is `[B]`; `f`'s parameters get no gradient.
pub fn jvp(
    f: &dyn Fn(&Tensor, &Tensor) -> Result<Tensor>,
    x: &Tensor,
    t: &Tensor,
    vx: &Tensor,
    vt: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let xs = x.detach().set_requires_grad(true);
    let ts = t.detach().set_requires_grad(true);
    let y = f(&xs, &ts)?;
    if !y.requires_grad() {
        // `f` does not depend on its inputs (or on anything differentiable).
        return Ok((y.detach(), y.zeros_like()));
    }
    let u = y.detach().zeros_like().set_requires_grad(true);
    let s = (&y * &u).sum(y.kind());
    let g = Tensor::f_run_backward(&[&s], &[&xs, &ts], true, true)?;
    let mut terms = Vec::new();
    if g[0].defined() && g[0].requires_grad() {
        terms.push((&g[0] * vx.to_kind(g[0].kind())).sum(y.kind()));
    }
    if g[1].defined() && g[1].requires_grad() {
        terms.push((&g[1] * vt.to_kind(g[1].kind())).sum(y.kind()));
    }
    if terms.is_empty() {
        return Ok((y.detach(), y.detach().zeros_like()));
    }
    let s2 = Tensor::stack(&terms, 0).sum(y.kind());
    let jv = Tensor::f_run_backward(&[&s2], &[&u], false, false)?;
    let jv = if jv[0].defined() {
        jv[0].detach()
    } else {
        y.detach().zeros_like()
    };
    Ok((y.detach(), jv))
}

/// The learned adaptive weighting `w_phi(t)` of sCM: `Linear(2m -> 1)` on the Fourier features
/// `(cos(2 pi f_k t), sin(2 pi f_k t))` of `m` fixed frequencies, with its own AdamW.
pub struct AdaptiveWeight {
    _vs: nn::VarStore,
    freqs: Tensor,
    lin: nn::Linear,
    params: Vec<Tensor>,
    opt: RefCell<AdamW>,
    lr: f64,
}

impl std::fmt::Debug for AdaptiveWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdaptiveWeight")
            .field("features", &self.freqs.size())
            .field("lr", &self.lr)
            .finish()
    }
}

impl AdaptiveWeight {
    /// A head with 16 frequencies drawn from `HostNoise::new(seed)` (`|N(0, 1)|`), zero initial
    /// output, learning rate `lr`.
    pub fn new(device: Device, seed: u64, lr: f64) -> Result<Self> {
        if !(lr.is_finite() && lr > 0.0) {
            return Err(ModelError::invalid(
                "head_lr",
                format!("must be finite and positive, got {lr}"),
            ));
        }
        let m: i64 = 16;
        let f: Vec<f64> = HostNoise::new(seed)
            .normals(m as usize)
            .iter()
            .map(|v| v.abs())
            .collect();
        let vs = nn::VarStore::new(device);
        let cfg = nn::LinearConfig {
            ws_init: nn::Init::Const(0.0),
            bs_init: Some(nn::Init::Const(0.0)),
            bias: true,
        };
        let lin = nn::linear(vs.root() / "w_phi", 2 * m, 1, cfg);
        let params = vec![
            lin.ws.shallow_clone(),
            lin.bs.as_ref().expect("bias").shallow_clone(),
        ];
        let opt = AdamW::new(
            &params,
            AdamWConfig {
                weight_decay: 0.0,
                ..AdamWConfig::default()
            },
        )?;
        Ok(AdaptiveWeight {
            _vs: vs,
            freqs: Tensor::from_slice(&f)
                .to_kind(Kind::Float)
                .to_device(device),
            lin,
            params,
            opt: RefCell::new(opt),
            lr,
        })
    }

    /// `w_phi(t)` for per-sample times `t` (`[B]`), differentiable in the head's parameters.
    pub fn weight(&self, t: &Tensor) -> Tensor {
        use tch::nn::Module;
        let arg = t.to_kind(Kind::Float).unsqueeze(1)
            * self.freqs.unsqueeze(0)
            * (2.0 * std::f64::consts::PI);
        let feats = Tensor::cat(&[arg.cos(), arg.sin()], 1);
        self.lin.forward(&feats).squeeze_dim(1)
    }

    /// The head's parameters (for a custom optimizer).
    pub fn parameters(&self) -> &[Tensor] {
        &self.params
    }

    /// The head's state under the names `weight`, `bias`, `grad.weight`, `grad.bias` (zero
    /// when there is no gradient), `has_grad` (whether the gradients exist: [`Self::update`]
    /// steps whenever they do), `exp_avg.*`, `exp_avg_sq.*` and `steps`.
    pub fn state(&self) -> Named {
        let names = ["bias", "weight"];
        let [b, w] = [&self.params[1], &self.params[0]];
        let mut out: Named = Vec::new();
        for (n, p) in names.iter().zip([b, w]) {
            out.push((n.to_string(), p.detach().copy()));
            let g = p.grad();
            let g = if g.defined() {
                g.detach().copy()
            } else {
                p.zeros_like()
            };
            out.push((format!("grad.{n}"), g));
        }
        let opt = self.opt.borrow();
        for (n, (m, v)) in names
            .iter()
            .zip([1, 0].map(|i| (&opt.exp_avg()[i], &opt.exp_avg_sq()[i])))
        {
            out.push((format!("exp_avg.{n}"), m.copy()));
            out.push((format!("exp_avg_sq.{n}"), v.copy()));
        }
        let has = self.params.iter().any(|p| p.grad().defined());
        out.push(("has_grad".into(), Tensor::from_slice(&[has as i64])));
        out.push((
            "steps".into(),
            Tensor::from_slice(&[opt.steps_done() as i64]),
        ));
        out
    }

    /// Restores a state written by [`AdaptiveWeight::state`] (entries named without prefix).
    pub fn load_state(&self, state: &Named) -> Result<()> {
        let get = |name: &str| -> Result<&Tensor> {
            state
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t)
                .ok_or_else(|| {
                    ModelError::invalid("sCM head state", format!("missing entry `{name}`"))
                })
        };
        let fits = |dst: &Tensor, src: &Tensor| -> Result<Tensor> {
            if dst.size() != src.size() {
                return Err(ModelError::Shape {
                    context: "sCM head state".into(),
                    expected: dst.size(),
                    got: src.size(),
                });
            }
            Ok(src.to_kind(dst.kind()).to_device(dst.device()))
        };
        let has_grad = get("has_grad")?.int64_value(&[0]) != 0;
        if has_grad && self.params.iter().any(|p| !p.grad().defined()) {
            let zero = (self.params[0].sum(Kind::Float) + self.params[1].sum(Kind::Float)) * 0.0;
            zero.f_backward()?;
        }
        let mut m = Vec::new();
        let mut v = Vec::new();
        for (n, p) in [("weight", &self.params[0]), ("bias", &self.params[1])] {
            let val = fits(p, get(n)?)?;
            let grad = fits(p, get(&format!("grad.{n}"))?)?;
            tch::no_grad(|| {
                p.shallow_clone().copy_(&val);
            });
            let mut g = p.grad();
            if g.defined() {
                tch::no_grad(|| {
                    g.copy_(&grad);
                });
            }
            m.push(get(&format!("exp_avg.{n}"))?.shallow_clone());
            v.push(get(&format!("exp_avg_sq.{n}"))?.shallow_clone());
        }
        let steps = get("steps")?.int64_value(&[0]);
        let steps = u64::try_from(steps)
            .map_err(|_| ModelError::invalid("sCM head state", "negative step count"))?;
        self.opt.borrow_mut().load_state(steps, &m, &v)
    }

    /// Applies one AdamW update from the gradients left on the head, then clears them (no-op
    /// when there are none).
    pub fn update(&self) -> Result<()> {
        if !self.params.iter().any(|p| p.grad().defined()) {
            return Ok(());
        }
        self.opt.borrow_mut().step(&self.params, self.lr)?;
        for p in &self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
        Ok(())
    }
}

/// sCM hyperparameters (see the module documentation for the paper's values).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScmConfig {
    /// TrigFlow's data standard deviation `sigma_d`.
    pub sigma_d: f64,
    /// Mean of `tau = ln(sigma_d tan t)`.
    pub p_mean: f64,
    /// Standard deviation of `tau`.
    pub p_std: f64,
    /// Tangent normalization constant `c` (`None`: no normalization).
    pub tangent_c: Option<f64>,
    /// Loss calls over which the warmup ratio `r` rises linearly from 0 to 1 (0: `r = 1`).
    pub warmup_steps: u64,
    /// Train the adaptive weighting head `w_phi(t)` alongside.
    pub adaptive: bool,
    /// The head's learning rate.
    pub head_lr: f64,
    /// Training times are clamped to `[t_min, pi/2]`.
    pub t_min: f64,
}

impl Default for ScmConfig {
    /// The sCT setting of the paper: `sigma_d = 0.5`, `P_mean = -1.0`, `P_std = 1.4`, `c = 0.1`,
    /// no warmup, adaptive weighting on (head learning rate 1e-2), `t_min = 1e-3`.
    fn default() -> Self {
        ScmConfig {
            sigma_d: 0.5,
            p_mean: -1.0,
            p_std: 1.4,
            tangent_c: Some(0.1),
            warmup_steps: 0,
            adaptive: true,
            head_lr: 1e-2,
            t_min: 1e-3,
        }
    }
}

/// The sCM objective (see the module documentation): training when built without a teacher,
/// distillation with one.
pub struct ScmLoss {
    config: ScmConfig,
    schedule: TrigFlow,
    teacher: Option<Teacher>,
    head: Option<AdaptiveWeight>,
    calls: Cell<u64>,
}

impl std::fmt::Debug for ScmLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScmLoss")
            .field("config", &self.config)
            .field("teacher", &self.teacher)
            .field("calls", &self.calls.get())
            .finish()
    }
}

impl ScmLoss {
    /// Consistency training (sCT); the adaptive head (if configured) lives on `device`.
    pub fn training(config: ScmConfig, device: Device) -> Result<Self> {
        Self::build(config, None, device)
    }

    /// Consistency distillation (sCD) from `teacher`.
    pub fn distillation(config: ScmConfig, teacher: Teacher, device: Device) -> Result<Self> {
        Self::build(config, Some(teacher), device)
    }

    fn build(config: ScmConfig, teacher: Option<Teacher>, device: Device) -> Result<Self> {
        let schedule = TrigFlow::new(config.sigma_d)?;
        if !(config.p_mean.is_finite() && config.p_std.is_finite() && config.p_std > 0.0) {
            return Err(ModelError::invalid(
                "p_mean/p_std",
                format!(
                    "need finite values with p_std > 0, got {}, {}",
                    config.p_mean, config.p_std
                ),
            ));
        }
        if let Some(c) = config.tangent_c {
            if !(c.is_finite() && c > 0.0) {
                return Err(ModelError::invalid(
                    "tangent_c",
                    format!("must be finite and positive, got {c}"),
                ));
            }
        }
        if !(config.t_min > 0.0 && config.t_min < std::f64::consts::FRAC_PI_2) {
            return Err(ModelError::invalid(
                "t_min",
                format!("must lie in (0, pi/2), got {}", config.t_min),
            ));
        }
        let head = if config.adaptive {
            Some(AdaptiveWeight::new(device, 0x5c3, config.head_lr)?)
        } else {
            None
        };
        Ok(ScmLoss {
            config,
            schedule,
            teacher,
            head,
            calls: Cell::new(0),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ScmConfig {
        &self.config
    }

    /// The adaptive weighting head, when configured.
    pub fn head(&self) -> Option<&AdaptiveWeight> {
        self.head.as_ref()
    }

    /// Sets the number of loss calls done (the warmup clock).
    pub fn set_step(&self, step: u64) {
        self.calls.set(step);
    }

    /// The tangent warmup ratio `r` after `step` loss calls.
    pub fn warmup_ratio(&self, step: u64) -> f64 {
        if self.config.warmup_steps == 0 {
            1.0
        } else {
            (step as f64 / self.config.warmup_steps as f64).min(1.0)
        }
    }

    /// The consistency function `f(x_t, t) = cos(t) x_t - sin(t) sigma_d F(x_t / sigma_d, t)` of
    /// `net` at per-sample times `t` (differentiable).
    pub fn consistency(
        &self,
        net: &dyn TimeNet,
        x_t: &Tensor,
        t: &[f64],
        class: Option<&Tensor>,
    ) -> Result<Tensor> {
        let sd = self.config.sigma_d;
        let f = self.call(net, &(x_t / sd), &vector(t, x_t), class)?;
        let cos = per_row(&t.iter().map(|v| v.cos()).collect::<Vec<_>>(), x_t);
        let sin = per_row(&t.iter().map(|v| v.sin()).collect::<Vec<_>>(), x_t);
        Ok(cos * x_t - sin * f * sd)
    }

    fn call(
        &self,
        net: &dyn TimeNet,
        x: &Tensor,
        t: &Tensor,
        class: Option<&Tensor>,
    ) -> Result<Tensor> {
        let y = net.forward_t(
            &x.to_kind(net.kind()).to_device(net.device()),
            &t.to_kind(net.kind()).to_device(net.device()),
            class,
        )?;
        let y = y.to_kind(x.kind()).to_device(x.device());
        if y.size() != x.size() {
            return Err(ModelError::Shape {
                context: "sCM: network output".into(),
                expected: x.size(),
                got: y.size(),
            });
        }
        Ok(y)
    }

    /// The PF-ODE velocity `dx_t/dt` that the objective uses: the teacher's (distillation) or
    /// the one-sample `cos(t) z - sin(t) x0` with `z = sigma_d eps` (training).
    pub fn velocity(
        &self,
        x0: &Tensor,
        x_t: &Tensor,
        t: &[f64],
        eps: &Tensor,
        class: Option<&Tensor>,
    ) -> Result<Tensor> {
        let cos = per_row(&t.iter().map(|v| v.cos()).collect::<Vec<_>>(), x0);
        let sin = per_row(&t.iter().map(|v| v.sin()).collect::<Vec<_>>(), x0);
        match &self.teacher {
            None => Ok(&cos * eps * self.config.sigma_d - &sin * x0),
            Some(teacher) => {
                let x0_hat = teacher.x0(&self.schedule, x_t, t, class)?;
                Ok((cos * x_t - x0_hat.to_kind(x_t.kind())) / sin)
            }
        }
    }

    /// `(F_-, g)`: the network's detached output at `(x_t / sigma_d, t)` and the raw tangent
    /// `g = cos(t) df_-/dt` along the velocity `dxdt`, with warmup ratio `r` (no normalization).
    pub fn tangent(
        &self,
        net: &dyn TimeNet,
        x_t: &Tensor,
        t: &[f64],
        dxdt: &Tensor,
        r: f64,
        class: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        let sd = self.config.sigma_d;
        let tt = vector(t, x_t);
        let f = |x: &Tensor, tin: &Tensor| self.call(net, x, tin, class);
        let (f_minus, df) = jvp(&f, &(x_t / sd), &tt, &(dxdt / sd), &tt.ones_like())?;
        let cos = per_row(&t.iter().map(|v| v.cos()).collect::<Vec<_>>(), x_t);
        let sin = per_row(&t.iter().map(|v| v.sin()).collect::<Vec<_>>(), x_t);
        let dfdt = -(&cos) * (&f_minus * sd - dxdt) - r * &sin * (x_t + df * sd);
        Ok((f_minus, (cos * dfdt).detach()))
    }

    /// `g / (||g|| + c)` per sample (unchanged without normalization).
    pub fn normalize(&self, g: &Tensor) -> Tensor {
        match self.config.tangent_c {
            None => g.shallow_clone(),
            Some(c) => {
                let b = g.size()[0];
                let norm = g
                    .reshape([b, -1])
                    .square()
                    .sum_dim_intlist(1, false, g.kind())
                    .sqrt();
                let mut shape = vec![b];
                shape.extend(std::iter::repeat_n(1, g.dim().saturating_sub(1)));
                g / (norm.reshape(&shape) + c)
            }
        }
    }

    /// Per-sample squared errors `[B]` (before the adaptive weighting) at TrigFlow times `t` in
    /// `(0, pi/2]`, standard normal `eps` (`z = sigma_d eps`) and warmup ratio `r`.
    pub fn per_sample(
        &self,
        net: &dyn TimeNet,
        x0: &Tensor,
        t: &[f64],
        eps: &Tensor,
        r: f64,
        class: Option<&Tensor>,
    ) -> Result<Tensor> {
        check_batch(x0, eps, t.len(), "sCM loss")?;
        if let Some(v) = t
            .iter()
            .find(|v| !(**v > 0.0 && **v <= std::f64::consts::FRAC_PI_2))
        {
            return Err(ModelError::invalid(
                "t",
                format!("sCM times lie in (0, pi/2], got {v}"),
            ));
        }
        let sd = self.config.sigma_d;
        let cos = per_row(&t.iter().map(|v| v.cos()).collect::<Vec<_>>(), x0);
        let sin = per_row(&t.iter().map(|v| v.sin()).collect::<Vec<_>>(), x0);
        let x_t = cos * x0 + sin * eps * sd;
        let dxdt = self.velocity(x0, &x_t, t, eps, class)?;
        let (f_minus, g) = self.tangent(net, &x_t, t, &dxdt, r, class)?;
        let g = self.normalize(&g);
        let f = self.call(net, &(&x_t / sd), &vector(t, x0), class)?;
        Ok(mean_per_sample(&(f - f_minus - g).square()))
    }

    /// Training times `t = atan(e^tau / sigma_d)`, `tau ~ N(P_mean, P_std^2)`, clamped to
    /// `[t_min, pi/2]`.
    pub fn sample_times(&self, n: usize, noise: &mut HostNoise) -> Vec<f64> {
        noise
            .normals(n)
            .iter()
            .map(|z| {
                let tau = self.config.p_mean + self.config.p_std * z;
                (tau.exp() / self.config.sigma_d)
                    .atan()
                    .clamp(self.config.t_min, std::f64::consts::FRAC_PI_2)
            })
            .collect()
    }
}

impl Objective for ScmLoss {
    fn name(&self) -> String {
        format!(
            "scm({}, sigma_d {}, P_mean {}, P_std {}, c {:?}, warmup {}, adaptive {})",
            if self.teacher.is_some() {
                "distillation"
            } else {
                "training"
            },
            self.config.sigma_d,
            self.config.p_mean,
            self.config.p_std,
            self.config.tangent_c,
            self.config.warmup_steps,
            self.config.adaptive
        )
    }

    fn loss(
        &self,
        net: &dyn TimeNet,
        x0: &Tensor,
        class: Option<&Tensor>,
        noise: &mut HostNoise,
    ) -> Result<Tensor> {
        let step = self.calls.get();
        self.calls.set(step + 1);
        let b = *x0.size().first().unwrap_or(&0) as usize;
        let t = self.sample_times(b, noise);
        let eps = normals_like(noise, x0);
        let per = self.per_sample(net, x0, &t, &eps, self.warmup_ratio(step), class)?;
        match &self.head {
            None => Ok(per.mean(x0.kind())),
            Some(head) => {
                head.update()?;
                let w = head
                    .weight(&vector(&t, x0))
                    .to_kind(per.kind())
                    .to_device(per.device());
                Ok((w.exp() * per - w).mean(x0.kind()))
            }
        }
    }

    fn parameterization(&self) -> Parameterization {
        Parameterization::TrigFlow {
            sigma_d: self.config.sigma_d,
        }
    }

    fn schedule(&self) -> &dyn NoiseSchedule {
        &self.schedule
    }
    fn into_schedule(self: Box<Self>) -> Box<dyn NoiseSchedule> {
        Box::new(self.schedule)
    }

    fn state(&self) -> Result<Named> {
        let mut out: Named = vec![(
            "calls".into(),
            Tensor::from_slice(&[self.calls.get() as i64]),
        )];
        if let Some(head) = &self.head {
            out.extend(
                head.state()
                    .into_iter()
                    .map(|(n, t)| (format!("head.{n}"), t)),
            );
        }
        Ok(out)
    }

    fn load_state(&self, state: &Named) -> Result<()> {
        if state.is_empty() {
            // A checkpoint without objective state (written before it was saved): the warmup
            // clock and the head start afresh.
            return Ok(());
        }
        let calls = state
            .iter()
            .find(|(n, _)| n == "calls")
            .ok_or_else(|| ModelError::invalid("sCM state", "missing entry `calls`"))?
            .1
            .int64_value(&[0]);
        self.calls.set(
            u64::try_from(calls).map_err(|_| ModelError::invalid("sCM state", "negative calls"))?,
        );
        if let Some(head) = &self.head {
            let sub: Named = state
                .iter()
                .filter_map(|(n, t)| {
                    n.strip_prefix("head.")
                        .map(|s| (s.to_string(), t.shallow_clone()))
                })
                .collect();
            head.load_state(&sub)?;
        }
        Ok(())
    }
}
