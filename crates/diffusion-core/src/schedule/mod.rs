//! Noise schedules: `x_t = alpha(t) x_0 + sigma(t) eps` on one continuous time axis.
//!
//! Every family (VP, VE, EDM, flows, discrete DDPM tables) is a [`NoiseSchedule`]: the marginal
//! coefficients `alpha(t)`, `sigma(t)`, the half log-SNR `lambda(t) = ln(alpha / sigma)` and its
//! inverse, and the linear SDE `dx = f(t) x dt + g(t) dW` that has these marginals, with
//! `f = d ln(alpha)/dt` and `g^2 = d(sigma^2)/dt - 2 f sigma^2`. Samplers run from the largest
//! time to the smallest; EDM uses `t = sigma` (so does k-diffusion's VE), while Score SDE's `ve`
//! keeps its own `t in [0, 1]`, and discrete DDPM tables use the table index as time.
//! See docs/notation.md for each paper's symbols.

mod ddpm_discrete;
mod edm;
mod flow;
mod sub_vp;
mod trigflow;
mod ve;
mod vp_cosine;
mod vp_linear;

pub use ddpm_discrete::{
    betas_for_alpha_bar, rescale_zero_terminal_snr, BetaSchedule, DdpmDiscrete, ZERO_SNR_ALPHA_BAR,
};
pub use edm::Edm;
pub use flow::RectifiedFlow;
pub use sub_vp::SubVp;
pub use trigflow::TrigFlow;
pub use ve::Ve;
pub use vp_cosine::VpCosine;
pub use vp_linear::VpLinear;

use crate::error::{CoreError, Result};
use crate::spec::Spec;

/// Names accepted by [`build`], with their parameters and defaults.
pub const SCHEDULES: &[(&str, &str)] = &[
    (
        "vp-linear",
        "beta_min=0.1,beta_max=20,t_max=1 (Song et al. 2021, arXiv:2011.13456)",
    ),
    ("edm", "sigma_max=80 (Karras et al. 2022, arXiv:2206.00364)"),
    (
        "vp-cosine",
        "s=0.008,t_max=0.9946 (Nichol & Dhariwal 2021, arXiv:2102.09672)",
    ),
    (
        "sub-vp",
        "beta_min=0.1,beta_max=20,t_max=1 (Song et al. 2021, arXiv:2011.13456)",
    ),
    (
        "ve",
        "sigma_min=0.01,sigma_max=50 (Song et al. 2021, arXiv:2011.13456)",
    ),
    (
        "flow",
        "no parameters (Liu et al. 2022, arXiv:2209.03003; Lipman et al. 2022, arXiv:2210.02747)",
    ),
    ("trigflow", "sigma_d=1 (Lu & Song 2024, arXiv:2410.11081)"),
    (
        "ddpm-linear",
        "n=1000,beta_start=0.0001,beta_end=0.02,zero_snr=0 (Ho et al. 2020, arXiv:2006.11239)",
    ),
    (
        "ddpm-scaled-linear",
        "n=1000,beta_start=0.00085,beta_end=0.012,zero_snr=0 (Rombach et al. 2022, arXiv:2112.10752)",
    ),
    (
        "ddpm-cosine",
        "n=1000,max_beta=0.999,zero_snr=0 (Nichol & Dhariwal 2021, arXiv:2102.09672)",
    ),
];

/// The discrete DDPM table of a `ddpm-linear`, `ddpm-scaled-linear` or `ddpm-cosine` spec
/// (parameters as in [`SCHEDULES`]), as the concrete type (for objectives that need its tables).
pub fn build_ddpm(text: &str) -> Result<DdpmDiscrete> {
    let mut spec = Spec::parse(text)?;
    if !spec.name.starts_with("ddpm-") {
        let known = ["ddpm-linear", "ddpm-scaled-linear", "ddpm-cosine"];
        return Err(spec.unknown("discrete DDPM schedule", &known));
    }
    let table = ddpm_from(&mut spec)?;
    spec.finish()?;
    Ok(table)
}

fn ddpm_from(spec: &mut Spec) -> Result<DdpmDiscrete> {
    let n = ddpm_discrete::count("n", spec.take("n", 1000.0))?;
    let kind = match spec.name.as_str() {
        "ddpm-linear" => BetaSchedule::Linear {
            beta_start: spec.take("beta_start", 1e-4),
            beta_end: spec.take("beta_end", 0.02),
        },
        "ddpm-scaled-linear" => BetaSchedule::ScaledLinear {
            beta_start: spec.take("beta_start", 0.00085),
            beta_end: spec.take("beta_end", 0.012),
        },
        "ddpm-cosine" => BetaSchedule::SquaredCosCapV2 {
            max_beta: spec.take("max_beta", 0.999),
        },
        _ => {
            let known = ["ddpm-linear", "ddpm-scaled-linear", "ddpm-cosine"];
            return Err(spec.unknown("discrete DDPM schedule", &known));
        }
    };
    let zero_snr = ddpm_discrete::flag("zero_snr", spec.take("zero_snr", 0.0))?;
    DdpmDiscrete::new(kind, n, zero_snr)
}

/// Builds a schedule from a spec such as `vp-linear:beta_max=20` or `edm:sigma_max=80`.
pub fn build(text: &str) -> Result<Box<dyn NoiseSchedule>> {
    let mut spec = Spec::parse(text)?;
    let schedule: Box<dyn NoiseSchedule> = match spec.name.as_str() {
        "vp-linear" => Box::new(VpLinear::new(
            spec.take("beta_min", 0.1),
            spec.take("beta_max", 20.0),
            spec.take("t_max", 1.0),
        )?),
        "edm" => Box::new(Edm::new(spec.take("sigma_max", 80.0))?),
        "vp-cosine" => Box::new(VpCosine::new(
            spec.take("s", 0.008),
            spec.take("t_max", 0.9946),
        )?),
        "sub-vp" => Box::new(SubVp::new(
            spec.take("beta_min", 0.1),
            spec.take("beta_max", 20.0),
            spec.take("t_max", 1.0),
        )?),
        "ve" => Box::new(Ve::new(
            spec.take("sigma_min", 0.01),
            spec.take("sigma_max", 50.0),
        )?),
        "flow" => Box::new(RectifiedFlow::new()),
        "trigflow" => Box::new(TrigFlow::new(spec.take("sigma_d", 1.0))?),
        "ddpm-linear" | "ddpm-scaled-linear" | "ddpm-cosine" => Box::new(ddpm_from(&mut spec)?),
        _ => {
            let known: Vec<&str> = SCHEDULES.iter().map(|s| s.0).collect();
            return Err(spec.unknown("schedule", &known));
        }
    };
    spec.finish()?;
    Ok(schedule)
}

/// The marginal coefficients of a linear Gaussian forward process on one continuous time axis.
///
/// Implementations must have `lambda(t)` strictly decreasing on `t_range()`. `sigma` may be 0 at
/// the lower end of the range (the clean data), where `lambda = +inf`.
pub trait NoiseSchedule: Send + Sync + std::fmt::Debug {
    /// A short human-readable name with parameters, e.g. `vp-linear(0.1,20)`.
    fn name(&self) -> String;
    /// The closed interval `(t_min, t_max)` on which the schedule is defined.
    fn t_range(&self) -> (f64, f64);
    /// Signal coefficient `alpha(t)`.
    fn alpha(&self, t: f64) -> f64;
    /// Noise coefficient `sigma(t)`.
    fn sigma(&self, t: f64) -> f64;
    /// Half log signal-to-noise ratio `ln(alpha / sigma)` (`+inf` where `sigma = 0`).
    fn lambda(&self, t: f64) -> f64 {
        self.alpha(t).ln() - self.sigma(t).ln()
    }
    /// The inverse of [`NoiseSchedule::lambda`]. The default bisects on `t_range()` to machine
    /// precision; schedules with a closed form override it.
    fn t_of_lambda(&self, lambda: f64) -> f64 {
        bisect_decreasing(|t| self.lambda(t), self.t_range(), lambda)
    }
    /// Drift coefficient `f(t) = d ln(alpha) / dt` of the forward SDE. The default is a central
    /// difference; schedules override it with the closed form.
    fn drift(&self, t: f64) -> f64 {
        let h = fd_step(t, self.t_range());
        ((self.alpha(t + h)).ln() - (self.alpha(t - h)).ln()) / (2.0 * h)
    }
    /// Squared diffusion coefficient `g(t)^2 = d(sigma^2)/dt - 2 f(t) sigma(t)^2`.
    fn diffusion_sq(&self, t: f64) -> f64 {
        let h = fd_step(t, self.t_range());
        let ds2 = (self.sigma(t + h).powi(2) - self.sigma(t - h).powi(2)) / (2.0 * h);
        ds2 - 2.0 * self.drift(t) * self.sigma(t).powi(2)
    }
    /// `Some(N)` when time indexes a discrete table of `N` entries (`t in [0, N - 1]`, the
    /// `ddpm-*` schedules), which diffusers' timestep spacings need; `None` (the default) for
    /// continuous schedules.
    fn discrete_steps(&self) -> Option<usize> {
        None
    }
    /// The EDM noise level `sigma(t) / alpha(t) = exp(-lambda(t))` (the sigma of k-diffusion).
    fn noise_ratio(&self, t: f64) -> f64 {
        self.sigma(t) / self.alpha(t)
    }
    /// The time at which `sigma / alpha` equals `ratio` (inverse of [`NoiseSchedule::noise_ratio`]);
    /// `ratio = 0` maps to the lower end of the time range.
    fn t_of_noise_ratio(&self, ratio: f64) -> f64 {
        if ratio <= 0.0 {
            return self.t_range().0;
        }
        self.t_of_lambda(-ratio.ln())
    }
}

fn fd_step(t: f64, (lo, hi): (f64, f64)) -> f64 {
    let h = 1e-5 * (hi - lo).max(1e-12);
    h.min((t - lo).abs().max(1e-300))
        .min((hi - t).abs().max(1e-300))
        .max(1e-9 * (hi - lo))
}

/// Solves `f(t) = target` for a strictly decreasing `f` on `[lo, hi]` by bisection, clamping to the
/// ends when the target is outside the range of `f`.
pub fn bisect_decreasing(f: impl Fn(f64) -> f64, (lo, hi): (f64, f64), target: f64) -> f64 {
    let (mut a, mut b) = (lo, hi);
    if target >= f(a) {
        return a;
    }
    if target <= f(b) {
        return b;
    }
    for _ in 0..200 {
        let m = 0.5 * (a + b);
        if m <= a || m >= b {
            break;
        }
        if f(m) > target {
            a = m;
        } else {
            b = m;
        }
    }
    0.5 * (a + b)
}

/// Validates `lo < hi`, both finite, naming the parameters in the error.
pub(crate) fn check_range(name: &'static str, lo: f64, hi: f64) -> Result<()> {
    if lo.is_finite() && hi.is_finite() && lo < hi {
        Ok(())
    } else {
        Err(CoreError::invalid(
            name,
            format!("need finite values with {lo} < {hi}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::{build, SCHEDULES};

    #[test]
    fn every_registered_schedule_builds_with_its_defaults() {
        for (name, _) in SCHEDULES {
            let s = build(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            let (lo, hi) = s.t_range();
            assert!(lo < hi, "{name}");
            let mid = 0.5 * (lo + hi);
            assert!(
                s.lambda(lo) > s.lambda(mid) && s.lambda(mid) > s.lambda(hi),
                "{name}"
            );
            assert!(s.alpha(mid).is_finite() && s.sigma(mid) > 0.0, "{name}");
        }
        assert!(build("no-such-schedule").is_err());
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Shared checks that every schedule must pass.
    use super::NoiseSchedule;

    /// lambda strictly decreasing, t_of_lambda its inverse, and the closed-form drift and
    /// diffusion equal to finite differences of the marginal coefficients.
    pub fn check_schedule(s: &dyn NoiseSchedule, ts: &[f64]) {
        let mut prev = f64::INFINITY;
        for &t in ts {
            let l = s.lambda(t);
            assert!(l < prev, "{}: lambda not decreasing at t={t}", s.name());
            prev = l;
            let back = s.t_of_lambda(l);
            assert!(
                (back - t).abs() < 1e-9 * (1.0 + t.abs()),
                "{}: t_of_lambda({l}) = {back}, want {t}",
                s.name()
            );
            let h = 1e-6 * (1.0 + t.abs());
            let f_fd = (s.alpha(t + h).ln() - s.alpha(t - h).ln()) / (2.0 * h);
            assert!(
                (s.drift(t) - f_fd).abs() < 1e-5 * (1.0 + f_fd.abs()),
                "{}: drift at {t}: {} vs {f_fd}",
                s.name(),
                s.drift(t)
            );
            let ds2 = (s.sigma(t + h).powi(2) - s.sigma(t - h).powi(2)) / (2.0 * h);
            let g2_fd = ds2 - 2.0 * f_fd * s.sigma(t).powi(2);
            assert!(
                (s.diffusion_sq(t) - g2_fd).abs() < 1e-5 * (1.0 + g2_fd.abs()),
                "{}: g^2 at {t}: {} vs {g2_fd}",
                s.name(),
                s.diffusion_sq(t)
            );
            assert!(s.diffusion_sq(t) >= 0.0);
            let r = s.noise_ratio(t);
            assert!((s.t_of_noise_ratio(r) - t).abs() < 1e-9 * (1.0 + t.abs()));
        }
    }
}
