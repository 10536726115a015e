//! Time grids: validated, strictly monotone lists of times that a sampler walks.
//!
//! A grid of `steps` steps holds `steps + 1` times. Sampling grids decrease (noise to data);
//! inversion grids increase. Grids defined in EDM noise levels (`sigma / alpha`) are mapped to the
//! schedule's own time axis with [`NoiseSchedule::t_of_noise_ratio`], so the same grid works for
//! VP, VE, EDM and flows.
//!
//! Paper: Karras, Aittala, Aila & Laine (2022), "Elucidating the Design Space of Diffusion-Based
//! Generative Models", arXiv:2206.00364, Eq. (5) (the rho schedule); Lu, Zhou, Bao, Chen, Li & Zhu
//! (2022), "DPM-Solver", arXiv:2206.00927, Sec. 3.3 (uniform log-SNR steps); Crowson,
//! k-diffusion `sampling.py:get_sigmas_polyexponential` and `get_sigmas_vp` (after Song et al.
//! 2021, arXiv:2011.13456, the VP SDE's noise levels at uniform `t`); Lin et al. (2023),
//! arXiv:2305.08891, Table 2 (diffusers' `leading` / `trailing` / `linspace` spacing, see
//! [`diffusers_timesteps`]); Sabour, Fidler & Kreis (2024), "Align Your Steps", arXiv:2404.14507
//! (the optimized tables, see [`AysModel`]).

mod ays;
mod spacing;

pub use ays::{ays_noise_levels, loglinear_interp, AysModel, AYS_SD15, AYS_SDXL, AYS_SVD};
pub use spacing::{diffusers_timesteps, TimestepSpacing};

use crate::error::{CoreError, Result};
use crate::schedule::NoiseSchedule;
use crate::spec::Spec;

/// Names accepted by [`TimeGrid::build`], with their parameters and defaults. Noise levels are
/// EDM's `sigma / alpha`; `sigma_max` defaults to the schedule's largest, `t_end` to its smallest time.
pub const GRIDS: &[(&str, &str)] = &[
    (
        "karras",
        "rho=7,sigma_min=0.002,sigma_max=<schedule max>,zero=1 (EDM Eq. 5)",
    ),
    (
        "exponential",
        "sigma_min=0.002,sigma_max=<schedule max>,zero=1 (log-uniform noise levels)",
    ),
    (
        "log-snr",
        "t_start=<max>,t_end=1e-3 (uniform in lambda, DPM-Solver)",
    ),
    ("uniform", "t_start=<max>,t_end=<min> (uniform in time)"),
    (
        "quadratic",
        "t_start=<max>,t_end=<min> (quadratic in time, DPM-Solver)",
    ),
    (
        "polyexponential",
        "rho=1,sigma_min=0.002,sigma_max=<schedule max>,zero=1 (k-diffusion get_sigmas_polyexponential)",
    ),
    (
        "vp-continuous",
        "beta_d=19.9,beta_min=0.1,eps_s=0.001,zero=1 (k-diffusion get_sigmas_vp)",
    ),
    (
        "leading",
        "steps_offset=0 (diffusers timestep_spacing on a ddpm-* table, then t = 0; one step fewer when the last timestep is 0)",
    ),
    (
        "trailing",
        "no parameters (diffusers timestep_spacing on a ddpm-* table, then t = 0)",
    ),
    (
        "linspace",
        "round=0 (1: DDIM's rounding; diffusers timestep_spacing on a ddpm-* table, one step fewer: it ends at t = 0)",
    ),
    (
        "ays",
        "model=0,zero=1 (Align Your Steps table: 0 SD1.5, 1 SDXL, 2 SVD; log-linear interpolation)",
    ),
];

/// A strictly monotone list of at least two finite times.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeGrid {
    times: Vec<f64>,
}

impl TimeGrid {
    /// A custom grid; errors unless the times are finite, at least two, and strictly monotone.
    pub fn new(times: Vec<f64>) -> Result<Self> {
        if times.len() < 2 {
            return Err(CoreError::InvalidGrid(format!(
                "a grid needs at least 2 times (1 step), got {}",
                times.len()
            )));
        }
        if let Some(i) = times.iter().position(|t| !t.is_finite()) {
            return Err(CoreError::InvalidGrid(format!("time {i} is {}", times[i])));
        }
        let dec = times[1] < times[0];
        for (i, w) in times.windows(2).enumerate() {
            let ok = if dec { w[1] < w[0] } else { w[1] > w[0] };
            if !ok {
                return Err(CoreError::InvalidGrid(format!(
                    "times are not strictly {}: t[{i}] = {}, t[{}] = {}",
                    if dec { "decreasing" } else { "increasing" },
                    w[0],
                    i + 1,
                    w[1]
                )));
            }
        }
        Ok(TimeGrid { times })
    }

    fn check_steps(steps: usize) -> Result<()> {
        if steps == 0 {
            Err(CoreError::invalid("steps", "must be at least 1"))
        } else {
            Ok(())
        }
    }

    /// `steps` equal steps from `t_start` to `t_end` (either direction).
    pub fn uniform(t_start: f64, t_end: f64, steps: usize) -> Result<Self> {
        Self::spaced(t_start, t_end, steps, |r| t_start + (t_end - t_start) * r)
    }

    /// Quadratic spacing in time (DPM-Solver's `time_quadratic`): dense near `t_end`.
    pub fn quadratic(t_start: f64, t_end: f64, steps: usize) -> Result<Self> {
        let (a, b) = (t_start.sqrt(), t_end.sqrt());
        Self::spaced(t_start, t_end, steps, |r| (a + (b - a) * r).powi(2))
    }

    /// Times `at(i / steps)` for `i = 0..=steps`, with the last one exactly `t_end`.
    fn spaced(t_start: f64, t_end: f64, steps: usize, at: impl Fn(f64) -> f64) -> Result<Self> {
        Self::check_steps(steps)?;
        let mut times: Vec<f64> = (0..=steps).map(|i| at(i as f64 / steps as f64)).collect();
        times[0] = t_start;
        times[steps] = t_end;
        Self::new(times)
    }

    /// Equal steps in `lambda = ln(alpha/sigma)` between `t_start` and `t_end` (DPM-Solver's
    /// `logSNR` spacing); both ends must have finite lambda.
    pub fn log_snr_uniform(
        schedule: &dyn NoiseSchedule,
        t_start: f64,
        t_end: f64,
        steps: usize,
    ) -> Result<Self> {
        Self::check_steps(steps)?;
        let (l0, l1) = (schedule.lambda(t_start), schedule.lambda(t_end));
        if !(l0.is_finite() && l1.is_finite()) {
            return Err(CoreError::InvalidGrid(format!(
                "log-SNR spacing needs finite lambda at both ends, got {l0} and {l1}"
            )));
        }
        let n = steps as f64;
        let mut times: Vec<f64> = (0..=steps)
            .map(|i| schedule.t_of_lambda(l0 + (l1 - l0) * i as f64 / n))
            .collect();
        times[0] = t_start;
        times[steps] = t_end;
        Self::new(times)
    }

    /// The Karras et al. rho schedule in EDM noise levels `sigma/alpha` from `sigma_max` down to
    /// `sigma_min` (`rho = 7` is EDM's default), mapped to the schedule's time axis. With
    /// `append_zero` a final step to noise level 0 is added (k-diffusion's `get_sigmas_karras`).
    pub fn karras(
        schedule: &dyn NoiseSchedule,
        sigma_min: f64,
        sigma_max: f64,
        rho: f64,
        steps: usize,
        append_zero: bool,
    ) -> Result<Self> {
        check_rho(rho)?;
        let (a, b) = (sigma_max.powf(1.0 / rho), sigma_min.powf(1.0 / rho));
        Self::noise_ladder(schedule, sigma_min, sigma_max, steps, append_zero, |r| {
            (a + r * (b - a)).powf(rho)
        })
    }

    /// Log-uniform EDM noise levels from `sigma_max` to `sigma_min` (k-diffusion's
    /// `get_sigmas_exponential`), optionally followed by 0.
    pub fn exponential(
        schedule: &dyn NoiseSchedule,
        sigma_min: f64,
        sigma_max: f64,
        steps: usize,
        append_zero: bool,
    ) -> Result<Self> {
        let (a, b) = (sigma_max.ln(), sigma_min.ln());
        Self::noise_ladder(schedule, sigma_min, sigma_max, steps, append_zero, |r| {
            (a + r * (b - a)).exp()
        })
    }

    /// Noise levels `level(r)` at `r = 0, 1/(n-1), ..., 1` with `level(0) = sigma_max` and
    /// `level(1) = sigma_min`, mapped to times; `n` counts the nonzero levels.
    fn noise_ladder(
        schedule: &dyn NoiseSchedule,
        sigma_min: f64,
        sigma_max: f64,
        steps: usize,
        append_zero: bool,
        level: impl Fn(f64) -> f64,
    ) -> Result<Self> {
        Self::check_steps(steps)?;
        check_sigmas(sigma_min, sigma_max)?;
        let n = if append_zero { steps } else { steps + 1 };
        let sigmas = (0..n)
            .map(|i| {
                level(if n == 1 {
                    0.0
                } else {
                    i as f64 / (n - 1) as f64
                })
            })
            .collect();
        Self::from_noise_ratios(schedule, sigmas, append_zero)
    }

    /// k-diffusion's `get_sigmas_polyexponential`: `ln sigma` runs from `ln sigma_max` to
    /// `ln sigma_min` along `(1 - r)^rho`, `r = i / (n - 1)`; `rho = 1` is
    /// [`TimeGrid::exponential`], larger `rho` packs the steps towards `sigma_min`. Optionally
    /// followed by noise level 0.
    pub fn polyexponential(
        schedule: &dyn NoiseSchedule,
        sigma_min: f64,
        sigma_max: f64,
        rho: f64,
        steps: usize,
        append_zero: bool,
    ) -> Result<Self> {
        check_rho(rho)?;
        check_levels_within(schedule, sigma_max)?;
        let (a, b) = (sigma_max.ln(), sigma_min.ln());
        Self::noise_ladder(schedule, sigma_min, sigma_max, steps, append_zero, |r| {
            ((1.0 - r).powf(rho) * (a - b) + b).exp()
        })
    }

    /// k-diffusion's `get_sigmas_vp`: the noise levels `sqrt(exp(beta_d t^2 / 2 + beta_min t) - 1)`
    /// of the linear VP SDE at `t` uniform from 1 to `eps_s`, mapped to `schedule`'s time axis
    /// (on `vp-linear` with `beta_max - beta_min = beta_d` the times are exactly those `t`).
    /// Optionally followed by noise level 0.
    pub fn vp_continuous(
        schedule: &dyn NoiseSchedule,
        beta_d: f64,
        beta_min: f64,
        eps_s: f64,
        steps: usize,
        append_zero: bool,
    ) -> Result<Self> {
        if !(beta_d > 0.0 && beta_d.is_finite()) {
            return Err(CoreError::invalid(
                "beta_d",
                format!("must be positive, got {beta_d}"),
            ));
        }
        if !(beta_min >= 0.0 && beta_min.is_finite()) {
            return Err(CoreError::invalid(
                "beta_min",
                format!("must be >= 0, got {beta_min}"),
            ));
        }
        if !(eps_s > 0.0 && eps_s < 1.0) {
            return Err(CoreError::invalid(
                "eps_s",
                format!("must lie in (0, 1), got {eps_s}"),
            ));
        }
        let level = |t: f64| (0.5 * beta_d * t * t + beta_min * t).exp_m1().sqrt();
        check_levels_within(schedule, level(1.0))?;
        Self::noise_ladder(
            schedule,
            level(eps_s),
            level(1.0),
            steps,
            append_zero,
            |r| level(1.0 + r * (eps_s - 1.0)),
        )
    }

    /// diffusers' inference timesteps ([`diffusers_timesteps`]) on a discrete table of
    /// `num_train_timesteps` entries (time = table index, as on the `ddpm-*` schedules), followed
    /// by `t = 0`, the table's first entry.
    ///
    /// diffusers takes one more step from its last timestep, to `alpha_bar_0`
    /// (`set_alpha_to_one = False`) or to clean data: with a last timestep above 0 that is the step
    /// to `t = 0` here, and the grid has `steps` steps. When the last timestep already is 0
    /// (`leading` without offset, `linspace`) the grid ends there and has `steps - 1` steps:
    /// diffusers' extra step then goes from `alpha_bar_0` to itself (a no-op for deterministic
    /// DDIM) or is the final denoising that samplers do at the end.
    pub fn discrete_spacing(
        spacing: TimestepSpacing,
        num_train_timesteps: usize,
        steps: usize,
    ) -> Result<Self> {
        let mut times = diffusers_timesteps(spacing, num_train_timesteps, steps)?;
        if times.last().is_some_and(|&t| t > 0.0) {
            times.push(0.0);
        }
        Self::new(times)
    }

    /// The Align-Your-Steps noise levels of `model` for `steps` steps ([`ays_noise_levels`]:
    /// the 10-step table, log-linearly interpolated), mapped to `schedule`'s time axis; with `zero`
    /// the last level is replaced by 0 (the lower end of the time range).
    pub fn ays(
        schedule: &dyn NoiseSchedule,
        model: AysModel,
        steps: usize,
        zero: bool,
    ) -> Result<Self> {
        let mut levels = ays_noise_levels(model, steps, zero)?;
        check_levels_within(schedule, levels[0])?;
        if zero {
            levels.pop();
        }
        Self::from_noise_ratios(schedule, levels, zero)
    }

    /// Maps EDM noise levels to schedule times (and appends noise level 0 when asked).
    pub fn from_noise_ratios(
        schedule: &dyn NoiseSchedule,
        sigmas: Vec<f64>,
        append_zero: bool,
    ) -> Result<Self> {
        // Inverting the noise ratio can overshoot the range by a rounding error (sigma_max equal
        // to the schedule's largest noise level gives t = t_max + 1 ulp); snap those back, and
        // leave real overshoots for `check_within` to report.
        let (lo, hi) = schedule.t_range();
        let snap = 1e-9 * (hi - lo).abs().max(1e-300);
        let mut times: Vec<f64> = sigmas
            .iter()
            .map(|&s| {
                let t = schedule.t_of_noise_ratio(s);
                if t > hi && t - hi <= snap {
                    hi
                } else if t < lo && lo - t <= snap {
                    lo
                } else {
                    t
                }
            })
            .collect();
        if append_zero {
            times.push(schedule.t_range().0);
        }
        Self::new(times)
    }

    /// Builds a sampling grid of `steps` steps from a spec such as `karras:rho=7,sigma_min=0.002`
    /// for `schedule` (see [`GRIDS`]).
    pub fn build(text: &str, schedule: &dyn NoiseSchedule, steps: usize) -> Result<Self> {
        let mut spec = Spec::parse(text)?;
        let (lo, hi) = schedule.t_range();
        let grid = match spec.name.as_str() {
            "karras" | "exponential" => {
                let rho = if spec.name == "karras" {
                    spec.take("rho", 7.0)
                } else {
                    0.0
                };
                let smin = spec.take("sigma_min", 0.002);
                let smax = spec.take("sigma_max", schedule.noise_ratio(hi));
                let zero = spec.take("zero", 1.0) != 0.0;
                if spec.name == "karras" {
                    Self::karras(schedule, smin, smax, rho, steps, zero)?
                } else {
                    Self::exponential(schedule, smin, smax, steps, zero)?
                }
            }
            "log-snr" => {
                let (a, b) = (spec.take("t_start", hi), spec.take("t_end", lo.max(1e-3)));
                Self::log_snr_uniform(schedule, a, b, steps)?
            }
            "uniform" | "quadratic" => {
                let (a, b) = (spec.take("t_start", hi), spec.take("t_end", lo));
                if spec.name == "uniform" {
                    Self::uniform(a, b, steps)?
                } else {
                    Self::quadratic(a, b, steps)?
                }
            }
            "polyexponential" => {
                let rho = spec.take("rho", 1.0);
                let smin = spec.take("sigma_min", 0.002);
                let smax = spec.take("sigma_max", schedule.noise_ratio(hi));
                let zero = spec.take("zero", 1.0) != 0.0;
                Self::polyexponential(schedule, smin, smax, rho, steps, zero)?
            }
            "vp-continuous" => {
                let beta_d = spec.take("beta_d", 19.9);
                let beta_min = spec.take("beta_min", 0.1);
                let eps_s = spec.take("eps_s", 1e-3);
                let zero = spec.take("zero", 1.0) != 0.0;
                Self::vp_continuous(schedule, beta_d, beta_min, eps_s, steps, zero)?
            }
            "leading" | "trailing" | "linspace" => {
                let n = schedule.discrete_steps().ok_or_else(|| {
                    CoreError::InvalidGrid(format!(
                        "`{}` spacing indexes a discrete table (ddpm-*), and {} is continuous",
                        spec.name,
                        schedule.name()
                    ))
                })?;
                let spacing = match spec.name.as_str() {
                    "leading" => TimestepSpacing::Leading {
                        steps_offset: whole("steps_offset", spec.take("steps_offset", 0.0))?,
                    },
                    "trailing" => TimestepSpacing::Trailing,
                    _ => TimestepSpacing::Linspace {
                        round: switch("round", spec.take("round", 0.0))?,
                    },
                };
                Self::discrete_spacing(spacing, n, steps)?
            }
            "ays" => {
                let model = AysModel::from_index(spec.take("model", 0.0))?;
                let zero = switch("zero", spec.take("zero", 1.0))?;
                Self::ays(schedule, model, steps, zero)?
            }
            _ => {
                let known: Vec<&str> = GRIDS.iter().map(|g| g.0).collect();
                return Err(spec.unknown("grid", &known));
            }
        };
        spec.finish()?;
        grid.check_within(schedule)?;
        Ok(grid)
    }

    /// The times, in walking order.
    pub fn times(&self) -> &[f64] {
        &self.times
    }

    /// Number of steps (`times().len() - 1`).
    pub fn steps(&self) -> usize {
        self.times.len() - 1
    }

    /// `true` when the grid walks towards smaller times (the sampling direction).
    pub fn is_decreasing(&self) -> bool {
        self.times[1] < self.times[0]
    }

    /// The grid walked backwards (a sampling grid becomes an inversion grid).
    pub fn reversed(&self) -> Self {
        let mut t = self.times.clone();
        t.reverse();
        TimeGrid { times: t }
    }

    /// Errors unless every time lies in the schedule's time range.
    pub fn check_within(&self, schedule: &dyn NoiseSchedule) -> Result<()> {
        let (lo, hi) = schedule.t_range();
        for (i, &t) in self.times.iter().enumerate() {
            if t < lo || t > hi {
                return Err(CoreError::InvalidGrid(format!(
                    "t[{i}] = {t} lies outside the range [{lo}, {hi}] of {}",
                    schedule.name()
                )));
            }
        }
        Ok(())
    }
}

/// Errors when the largest requested noise level exceeds the schedule's largest noise ratio by
/// more than 0.1% (the mapping to time would clamp it and collapse steps).
fn check_levels_within(schedule: &dyn NoiseSchedule, level: f64) -> Result<()> {
    let top = schedule.noise_ratio(schedule.t_range().1);
    if level > top * (1.0 + 1e-3) {
        return Err(CoreError::InvalidGrid(format!(
            "noise level {level} exceeds the largest noise level {top} of {}",
            schedule.name()
        )));
    }
    Ok(())
}

/// A spec value that must be a non-negative integer.
fn whole(name: &'static str, v: f64) -> Result<usize> {
    if v >= 0.0 && v.fract() == 0.0 && v < 1e9 {
        Ok(v as usize)
    } else {
        Err(CoreError::invalid(
            name,
            format!("must be a non-negative integer, got {v}"),
        ))
    }
}

/// A spec value that must be 0 or 1.
fn switch(name: &'static str, v: f64) -> Result<bool> {
    if v == 0.0 || v == 1.0 {
        Ok(v == 1.0)
    } else {
        Err(CoreError::invalid(name, format!("must be 0 or 1, got {v}")))
    }
}

/// The Karras / polyexponential shape exponent must be finite and positive.
fn check_rho(rho: f64) -> Result<()> {
    if rho > 0.0 && rho.is_finite() {
        Ok(())
    } else {
        Err(CoreError::invalid(
            "rho",
            format!("must be positive, got {rho}"),
        ))
    }
}

fn check_sigmas(sigma_min: f64, sigma_max: f64) -> Result<()> {
    if sigma_min > 0.0 && sigma_max.is_finite() && sigma_min < sigma_max {
        Ok(())
    } else {
        Err(CoreError::invalid(
            "sigma_min/sigma_max",
            format!("need 0 < sigma_min < sigma_max < inf, got {sigma_min} and {sigma_max}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{self, Edm, VpLinear};
    use proptest::prelude::*;

    #[test]
    fn karras_matches_the_edm_formula_and_appends_zero() {
        let s = Edm::default();
        let g = TimeGrid::karras(&s, 0.002, 80.0, 7.0, 4, true).unwrap();
        let t = g.times();
        assert_eq!(t.len(), 5);
        assert!((t[0] - 80.0).abs() < 1e-12);
        assert!((t[3] - 0.002).abs() < 1e-15);
        assert_eq!(t[4], 0.0);
        let mid = (80.0_f64.powf(1.0 / 7.0)
            + (0.002_f64.powf(1.0 / 7.0) - 80.0_f64.powf(1.0 / 7.0)) / 3.0)
            .powf(7.0);
        assert!((t[1] - mid).abs() < 1e-12);
        let g2 = TimeGrid::karras(&s, 0.002, 80.0, 7.0, 4, false).unwrap();
        assert_eq!(g2.times().len(), 5);
        assert!((g2.times()[4] - 0.002).abs() < 1e-15);
    }

    #[test]
    fn noise_levels_at_the_schedule_maximum_stay_inside_its_range() {
        for s in [
            Box::new(Edm::new(40.0).unwrap()) as Box<dyn NoiseSchedule>,
            Box::new(VpLinear::default()),
        ] {
            let smax = s.noise_ratio(s.t_range().1);
            let g = TimeGrid::karras(s.as_ref(), 0.002, smax, 7.0, 12, true).unwrap();
            g.check_within(s.as_ref()).unwrap();
            assert!((g.times()[0] - s.t_range().1).abs() < 1e-9);
        }
    }

    #[test]
    fn vp_grids_map_noise_levels_through_the_schedule() {
        let s = VpLinear::default();
        let g = TimeGrid::karras(&s, 0.01, 50.0, 7.0, 10, true).unwrap();
        assert!(g.is_decreasing());
        assert!((s.noise_ratio(g.times()[0]) - 50.0).abs() < 1e-8);
        assert_eq!(*g.times().last().unwrap(), 0.0);
        g.check_within(&s).unwrap();
        let l = TimeGrid::log_snr_uniform(&s, 1.0, 1e-3, 8).unwrap();
        let lams: Vec<f64> = l.times().iter().map(|&t| s.lambda(t)).collect();
        let h = lams[1] - lams[0];
        for w in lams.windows(2) {
            assert!((w[1] - w[0] - h).abs() < 1e-8);
        }
    }

    #[test]
    fn bad_grids_are_errors_that_say_why() {
        let e = TimeGrid::new(vec![1.0, 0.5, 0.7]).unwrap_err().to_string();
        assert!(e.contains("not strictly decreasing"), "{e}");
        assert!(TimeGrid::new(vec![1.0]).is_err());
        assert!(TimeGrid::new(vec![1.0, f64::NAN]).is_err());
        assert!(TimeGrid::uniform(1.0, 0.0, 0).is_err());
        assert!(TimeGrid::karras(&Edm::default(), 1.0, 0.5, 7.0, 4, true).is_err());
        let s = VpLinear::default();
        assert!(TimeGrid::uniform(2.0, 0.0, 4)
            .unwrap()
            .check_within(&s)
            .is_err());
    }

    #[test]
    fn polyexponential_and_vp_continuous_follow_k_diffusion() {
        let s = Edm::default();
        let p1 = TimeGrid::polyexponential(&s, 0.002, 80.0, 1.0, 8, true).unwrap();
        let e = TimeGrid::exponential(&s, 0.002, 80.0, 8, true).unwrap();
        for (a, b) in p1.times().iter().zip(e.times()) {
            assert!((a - b).abs() < 1e-12 * (1.0 + b), "{a} vs {b}");
        }
        // rho = 2, 5 levels then 0: ramp (1 - i/4)^2.
        let p2 = TimeGrid::polyexponential(&s, 0.002, 80.0, 2.0, 5, true).unwrap();
        let (a, b) = (80.0_f64.ln(), 0.002_f64.ln());
        for i in 0..5 {
            let want = ((1.0 - i as f64 / 4.0).powi(2) * (a - b) + b).exp();
            assert!((p2.times()[i] - want).abs() < 1e-12 * want);
        }
        assert_eq!(p2.times()[5], 0.0);
        // rho > 1 reaches small noise sooner than rho = 1.
        assert!(
            p2.times()[2]
                < TimeGrid::exponential(&s, 0.002, 80.0, 5, true)
                    .unwrap()
                    .times()[2]
        );
        assert!(TimeGrid::polyexponential(&s, 0.002, 80.0, 0.0, 5, true).is_err());
        assert!(TimeGrid::polyexponential(&s, 0.002, 200.0, 1.0, 5, true).is_err());

        // On vp-linear(0.1, 20) get_sigmas_vp's noise levels sit exactly at t = linspace(1, eps_s).
        let v = VpLinear::default();
        let g = TimeGrid::vp_continuous(&v, 19.9, 0.1, 1e-3, 10, true).unwrap();
        assert_eq!(g.steps(), 10);
        for i in 0..10 {
            let want = 1.0 + (1e-3 - 1.0) * i as f64 / 9.0;
            assert!(
                (g.times()[i] - want).abs() < 1e-9,
                "{} vs {want}",
                g.times()[i]
            );
        }
        assert_eq!(g.times()[10], 0.0);
        let g = TimeGrid::build("vp-continuous:zero=0", &v, 4).unwrap();
        assert_eq!(g.times().len(), 5);
        assert!((g.times()[4] - 1e-3).abs() < 1e-9);
        assert!(TimeGrid::vp_continuous(&v, 19.9, 0.1, 1.5, 4, true).is_err());
        assert!(TimeGrid::vp_continuous(&v, -1.0, 0.1, 1e-3, 4, true).is_err());
        // sigma(1) = 152 exceeds EDM's sigma_max = 80.
        let err = TimeGrid::vp_continuous(&s, 19.9, 0.1, 1e-3, 4, true).unwrap_err();
        assert!(err.to_string().contains("exceeds"), "{err}");
    }

    #[test]
    fn diffusers_spacings_on_ddpm_tables() {
        let s = schedule::build("ddpm-linear").unwrap();
        let t = |spec: &str, n| {
            TimeGrid::build(spec, s.as_ref(), n)
                .unwrap()
                .times()
                .to_vec()
        };
        let ints = |v: &[i32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<_>>();
        assert_eq!(
            t("trailing", 10),
            ints(&[999, 899, 799, 699, 599, 499, 399, 299, 199, 99, 0])
        );
        assert_eq!(
            t("leading:steps_offset=1", 10),
            ints(&[901, 801, 701, 601, 501, 401, 301, 201, 101, 1, 0])
        );
        // Ends at timestep 0: one step fewer (see TimeGrid::discrete_spacing).
        assert_eq!(
            t("leading", 10),
            ints(&[900, 800, 700, 600, 500, 400, 300, 200, 100, 0])
        );
        assert_eq!(
            t("linspace:round=1", 10),
            ints(&[999, 888, 777, 666, 555, 444, 333, 222, 111, 0])
        );
        assert_eq!(t("linspace", 3), vec![999.0, 499.5, 0.0]);
        assert_eq!(t("trailing", 1), vec![999.0, 0.0]);
        assert!(TimeGrid::build("leading", s.as_ref(), 1).is_err());
        assert!(TimeGrid::build("trailing:steps_offset=1", s.as_ref(), 4).is_err());
        assert!(TimeGrid::build("leading:steps_offset=0.5", s.as_ref(), 4).is_err());
        assert!(TimeGrid::build("linspace:round=2", s.as_ref(), 4).is_err());
        let e = TimeGrid::build("trailing", &VpLinear::default(), 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains("discrete table"), "{e}");
    }

    #[test]
    fn ays_tables_land_on_diffusers_timesteps() {
        // diffusers AysSchedules["StableDiffusionTimesteps"] for the SD 1.5 sigmas.
        let s = schedule::build("ddpm-scaled-linear").unwrap();
        let g = TimeGrid::build("ays", s.as_ref(), 10).unwrap();
        let want = [
            999.0, 850.0, 736.0, 645.0, 545.0, 455.0, 343.0, 233.0, 124.0, 24.0, 0.0,
        ];
        assert_eq!(g.steps(), 10);
        for (a, b) in g.times().iter().zip(want) {
            assert!((a - b).abs() < 1.5, "{a} vs {b}");
        }
        let xl = TimeGrid::build("ays:model=1", s.as_ref(), 10).unwrap();
        let want_xl = [
            999.0, 845.0, 730.0, 587.0, 443.0, 310.0, 193.0, 116.0, 53.0, 13.0,
        ];
        for (a, b) in xl.times().iter().zip(want_xl) {
            assert!((a - b).abs() < 1.5, "{a} vs {b}");
        }
        // Other step counts interpolate; without the zero the last level is sigma_min.
        let e = Edm::default();
        let g = TimeGrid::build("ays:zero=0", &e, 20).unwrap();
        assert_eq!(g.steps(), 20);
        assert!((g.times()[20] - 0.029).abs() < 1e-12);
        assert!((g.times()[2] - 6.475).abs() < 1e-12);
        let g = TimeGrid::build("ays:model=2", &Edm::new(700.0).unwrap(), 7).unwrap();
        assert_eq!((g.steps(), g.times()[7]), (7, 0.0));
        assert!(TimeGrid::build("ays:model=2", &e, 7).is_err());
        assert!(TimeGrid::build("ays:model=3", &e, 7).is_err());
    }

    #[test]
    fn every_registered_grid_builds_somewhere() {
        let edm = Edm::default();
        let vp = VpLinear::default();
        let ddpm = schedule::build("ddpm-scaled-linear").unwrap();
        for (name, _) in GRIDS {
            let ok = [&edm as &dyn NoiseSchedule, &vp, ddpm.as_ref()]
                .iter()
                .filter_map(|s| TimeGrid::build(name, *s, 6).ok())
                .count();
            assert!(ok > 0, "{name} builds on no schedule");
        }
        assert!(TimeGrid::build("no-such-grid", &edm, 6).is_err());
    }

    proptest! {
        #[test]
        fn constructed_grids_are_strictly_monotone(steps in 1usize..200, smin in 1e-4f64..0.5, ratio in 1.5f64..1e4, rho in 0.5f64..10.0) {
            let s = Edm::default();
            let smax = (smin * ratio).min(79.0);
            prop_assume!(smax > smin);
            for g in [
                TimeGrid::karras(&s, smin, smax, rho, steps, true).unwrap(),
                TimeGrid::exponential(&s, smin, smax, steps, false).unwrap(),
                TimeGrid::uniform(smax, 0.0, steps).unwrap(),
                TimeGrid::quadratic(smax, 0.0, steps).unwrap(),
                TimeGrid::polyexponential(&s, smin, smax, rho.min(3.0), steps, true).unwrap(),
            ] {
                prop_assert_eq!(g.steps(), steps);
                prop_assert!(g.times().windows(2).all(|w| w[1] < w[0]));
            }
        }
    }
}
