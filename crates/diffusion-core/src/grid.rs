//! Time grids: validated, strictly monotone lists of times that a sampler walks.
//!
//! A grid of `steps` steps holds `steps + 1` times. Sampling grids decrease (noise to data);
//! inversion grids increase. Grids defined in EDM noise levels (`sigma / alpha`) are mapped to the
//! schedule's own time axis with [`NoiseSchedule::t_of_noise_ratio`], so the same grid works for
//! VP, VE, EDM and flows.
//!
//! Paper: Karras, Aittala, Aila & Laine (2022), "Elucidating the Design Space of Diffusion-Based
//! Generative Models", arXiv:2206.00364, Eq. (5) (the rho schedule); Lu, Zhou, Bao, Chen, Li & Zhu
//! (2022), "DPM-Solver", arXiv:2206.00927, Sec. 3.3 (uniform log-SNR steps).

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
        if !(rho > 0.0 && rho.is_finite()) {
            return Err(CoreError::invalid(
                "rho",
                format!("must be positive, got {rho}"),
            ));
        }
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

    /// Maps EDM noise levels to schedule times (and appends noise level 0 when asked).
    pub fn from_noise_ratios(
        schedule: &dyn NoiseSchedule,
        sigmas: Vec<f64>,
        append_zero: bool,
    ) -> Result<Self> {
        let mut times: Vec<f64> = sigmas
            .iter()
            .map(|&s| schedule.t_of_noise_ratio(s))
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
    use crate::schedule::{Edm, VpLinear};
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
            ] {
                prop_assert_eq!(g.steps(), steps);
                prop_assert!(g.times().windows(2).all(|w| w[1] < w[0]));
            }
        }
    }
}
