//! Progressive distillation: a student learns to match two DDIM steps of its teacher in one.
//!
//! Paper: Salimans & Ho (2022), "Progressive Distillation for Fast Sampling of Diffusion
//! Models", arXiv:2202.00512, Algorithm 2 and Sec. 4 (v-parameterization, truncated-SNR
//! weighting `max(snr, 1)` on the x0 error). For a student with `N` steps on the uniform grid
//! `t_i = t_end + (t_start - t_end) i / N`, a training time is `t = t_i` (`i` uniform in
//! `1..=N`), `t' = t - 0.5 / N`, `t'' = t - 1 / N` (in grid units); with `z_t = alpha_t x + sigma_t
//! eps` and the teacher's DDIM steps
//! `z_{t'} = alpha_{t'} x_hat(z_t) + (sigma_{t'} / sigma_t) (z_t - alpha_t x_hat(z_t))` (and likewise
//! to `t''`), the target is the x0 that brings `z_t` to `z_{t''}` in one DDIM step:
//! `x~ = (z_{t''} - (sigma_{t''} / sigma_t) z_t) / (alpha_{t''} - (sigma_{t''} / sigma_t) alpha_t)`,
//! and the loss is `max(snr_t, 1) ||x~ - x_hat_student(z_t)||^2` (the student predicts `v`,
//! read as x0 with the schedule's coefficients; any [`Output`] works). The student is then
//! sampled with `N` DDIM steps on the same grid (`ddim` from `diffusion-solvers`).

use super::{check_batch, mean_per_sample, normals_like, per_row, vector, Objective, Teacher};
use crate::denoiser::{x0_per_row, Output, Parameterization};
use crate::error::{ModelError, Result};
use crate::nets::TimeNet;
use diffusion_core::{HostNoise, NoiseSchedule};
use tch::Tensor;

/// Algorithm 2 of Salimans & Ho (see the module documentation).
pub struct ProgressiveDistillation {
    teacher: Teacher,
    schedule: Box<dyn NoiseSchedule>,
    student: Output,
    steps: usize,
    t_start: f64,
    t_end: f64,
}

impl std::fmt::Debug for ProgressiveDistillation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgressiveDistillation")
            .field("teacher", &self.teacher)
            .field("schedule", &self.schedule.name())
            .field("student", &self.student)
            .field("steps", &self.steps)
            .field("t_start", &self.t_start)
            .field("t_end", &self.t_end)
            .finish()
    }
}

impl ProgressiveDistillation {
    /// Checks the student's grid without a teacher: at least one step, `t_end < t_start` inside
    /// the schedule's range, `alpha > 0` at both ends and `sigma(t_start) > 0`.
    pub fn check(
        schedule: &dyn NoiseSchedule,
        steps: usize,
        t_start: f64,
        t_end: f64,
    ) -> Result<()> {
        if steps == 0 {
            return Err(ModelError::invalid(
                "steps",
                "the student needs at least one step",
            ));
        }
        let (lo, hi) = schedule.t_range();
        if !(lo <= t_end && t_end < t_start && t_start <= hi) {
            return Err(ModelError::invalid(
                "t_start/t_end",
                format!("need {lo} <= t_end < t_start <= {hi}, got {t_start}, {t_end}"),
            ));
        }
        for t in [t_start, t_end] {
            if schedule.alpha(t).is_nan() || schedule.alpha(t) <= 0.0 {
                return Err(ModelError::invalid(
                    "t_start/t_end",
                    format!("alpha({t}) must be positive for DDIM steps"),
                ));
            }
        }
        if schedule.sigma(t_start).is_nan() || schedule.sigma(t_start) <= 0.0 {
            return Err(ModelError::invalid(
                "t_start",
                "sigma(t_start) must be positive",
            ));
        }
        Ok(())
    }

    /// Distils `teacher` into a student that predicts `student` under `schedule` and samples with
    /// `steps` DDIM steps from `t_start` to `t_end` (`alpha > 0` on `[t_end, t_start]`, `sigma >
    /// 0` on `(t_end, t_start]`); the teacher makes `2 steps` steps on the same grid.
    pub fn new(
        teacher: Teacher,
        schedule: Box<dyn NoiseSchedule>,
        student: Output,
        steps: usize,
        t_start: f64,
        t_end: f64,
    ) -> Result<Self> {
        Self::check(schedule.as_ref(), steps, t_start, t_end)?;
        Ok(ProgressiveDistillation {
            teacher,
            schedule,
            student,
            steps,
            t_start,
            t_end,
        })
    }

    /// The student's number of steps `N`.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The student's sampling grid `t_N = t_start > ... > t_0 = t_end`, decreasing.
    pub fn grid(&self) -> Vec<f64> {
        (0..=self.steps)
            .rev()
            .map(|i| self.time(i as f64))
            .collect()
    }

    fn time(&self, i: f64) -> f64 {
        self.t_end + (self.t_start - self.t_end) * i / self.steps as f64
    }

    /// One DDIM step of the teacher from `z` at times `t` to `s` (per sample; `sigma_s` may be
    /// 0, then the step lands on `alpha_s x_hat`).
    fn teacher_step(
        &self,
        z: &Tensor,
        t: &[f64],
        s: &[f64],
        class: Option<&Tensor>,
    ) -> Result<Tensor> {
        let sch = self.schedule.as_ref();
        let x_hat = self.teacher.x0(sch, z, t, class)?.to_kind(z.kind());
        let r: Vec<f64> = t
            .iter()
            .zip(s)
            .map(|(&a, &b)| sch.sigma(b) / sch.sigma(a))
            .collect();
        let a_t = per_row(&t.iter().map(|&v| sch.alpha(v)).collect::<Vec<_>>(), z);
        let a_s = per_row(&s.iter().map(|&v| sch.alpha(v)).collect::<Vec<_>>(), z);
        Ok(&a_s * &x_hat + per_row(&r, z) * (z - a_t * &x_hat))
    }

    /// The distillation target `x~` for states `z_t` at grid indices `i` (`1..=N`, one per row).
    pub fn target(&self, z_t: &Tensor, i: &[usize], class: Option<&Tensor>) -> Result<Tensor> {
        if let Some(k) = i.iter().find(|k| **k == 0 || **k > self.steps) {
            return Err(ModelError::invalid(
                "i",
                format!("grid indices lie in 1..={}, got {k}", self.steps),
            ));
        }
        let sch = self.schedule.as_ref();
        let t: Vec<f64> = i.iter().map(|&k| self.time(k as f64)).collect();
        let t1: Vec<f64> = i.iter().map(|&k| self.time(k as f64 - 0.5)).collect();
        let t2: Vec<f64> = i.iter().map(|&k| self.time(k as f64 - 1.0)).collect();
        let z1 = self.teacher_step(z_t, &t, &t1, class)?;
        let z2 = self.teacher_step(&z1, &t1, &t2, class)?;
        let ratio: Vec<f64> = t
            .iter()
            .zip(&t2)
            .map(|(&a, &b)| sch.sigma(b) / sch.sigma(a))
            .collect();
        let denom: Vec<f64> = t
            .iter()
            .zip(&t2)
            .zip(&ratio)
            .map(|((&a, &b), &r)| sch.alpha(b) - r * sch.alpha(a))
            .collect();
        Ok((z2 - per_row(&ratio, z_t) * z_t) / per_row(&denom, z_t))
    }

    /// Per-sample losses `[B]` at grid indices `i` (`1..=N`) with noise `eps`.
    pub fn per_sample(
        &self,
        net: &dyn TimeNet,
        x0: &Tensor,
        i: &[usize],
        eps: &Tensor,
        class: Option<&Tensor>,
    ) -> Result<Tensor> {
        check_batch(x0, eps, i.len(), "progressive distillation")?;
        let sch = self.schedule.as_ref();
        let t: Vec<f64> = i.iter().map(|&k| self.time(k as f64)).collect();
        let a = per_row(&t.iter().map(|&v| sch.alpha(v)).collect::<Vec<_>>(), x0);
        let s = per_row(&t.iter().map(|&v| sch.sigma(v)).collect::<Vec<_>>(), x0);
        let z_t = a * x0 + s * eps;
        let target = self.target(&z_t, i, class)?.detach();
        let x_hat = x0_per_row(
            net,
            Parameterization::Raw(self.student),
            sch,
            &z_t,
            &t,
            class,
        )?;
        let w: Vec<f64> = t
            .iter()
            .map(|&v| {
                let (al, si) = (sch.alpha(v), sch.sigma(v));
                (al * al / (si * si)).max(1.0)
            })
            .collect();
        Ok(vector(&w, x0) * mean_per_sample(&(x_hat - target).square()))
    }
}

impl Objective for ProgressiveDistillation {
    fn name(&self) -> String {
        format!(
            "progressive-distillation({} student steps, {} target, {})",
            self.steps,
            self.student.name(),
            self.schedule.name()
        )
    }

    fn loss(
        &self,
        net: &dyn TimeNet,
        x0: &Tensor,
        class: Option<&Tensor>,
        noise: &mut HostNoise,
    ) -> Result<Tensor> {
        let b = *x0.size().first().unwrap_or(&0) as usize;
        let i: Vec<usize> = (0..b)
            .map(|_| 1 + ((noise.uniform() * self.steps as f64) as usize).min(self.steps - 1))
            .collect();
        let eps = normals_like(noise, x0);
        Ok(self.per_sample(net, x0, &i, &eps, class)?.mean(x0.kind()))
    }

    fn parameterization(&self) -> Parameterization {
        Parameterization::Raw(self.student)
    }

    fn schedule(&self) -> &dyn NoiseSchedule {
        self.schedule.as_ref()
    }
    fn into_schedule(self: Box<Self>) -> Box<dyn NoiseSchedule> {
        self.schedule
    }
}
