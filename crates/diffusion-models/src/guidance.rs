//! Classifier-free guidance: combine a conditional and an unconditional prediction,
//! `pred = pred_u + s (pred_c - pred_u)`.
//!
//! Paper: Ho & Salimans (2022), "Classifier-Free Diffusion Guidance", arXiv:2207.12598, Eq. (6):
//! `eps~ = (1 + w) eps_c - w eps_u`. Here `s = 1 + w` is the guidance scale of diffusers and
//! Stable Diffusion (`s = 1`: the conditional model, `s = 0`: the unconditional one).
//!
//! Every parameterization is affine in `x0` with the same coefficient on `x` (`x0 = (x - sigma
//! eps) / alpha`, ...), and the combination's weights sum to 1, so combining eps, x0, v, score or
//! velocity gives the same guided model. Two predictions of the same kind are combined as they
//! are; of different kinds, both are resolved to `x0` first (with the schedule's coefficients).
//! Works on every `State` (ndarray and tch alike).

use diffusion_core::{Coeffs, Denoiser, NoiseSchedule, Prediction, Result, State};

/// A classifier-free-guided denoiser.
pub struct Guided<'a, S> {
    cond: &'a dyn Denoiser<S>,
    uncond: &'a dyn Denoiser<S>,
    scale: f64,
    schedule: &'a dyn NoiseSchedule,
}

impl<S> std::fmt::Debug for Guided<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guided")
            .field("scale", &self.scale)
            .field("schedule", &self.schedule.name())
            .finish()
    }
}

impl<'a, S> Guided<'a, S> {
    /// Guides `cond` against `uncond` with scale `scale` (finite); `schedule` converts between
    /// parameterizations when the two answer different kinds.
    pub fn new(
        cond: &'a dyn Denoiser<S>,
        uncond: &'a dyn Denoiser<S>,
        scale: f64,
        schedule: &'a dyn NoiseSchedule,
    ) -> Result<Self> {
        diffusion_core::error::ensure_finite("guidance scale", scale)?;
        Ok(Guided {
            cond,
            uncond,
            scale,
            schedule,
        })
    }

    /// The guidance scale `s`.
    pub fn scale(&self) -> f64 {
        self.scale
    }
}

fn parts<S>(p: Prediction<S>) -> (&'static str, S) {
    match p {
        Prediction::Epsilon(v) => ("epsilon", v),
        Prediction::Sample(v) => ("sample", v),
        Prediction::V(v) => ("v", v),
        Prediction::Score(v) => ("score", v),
        Prediction::Velocity(v) => ("velocity", v),
    }
}

fn rewrap<S>(kind: &str, v: S) -> Prediction<S> {
    match kind {
        "epsilon" => Prediction::Epsilon(v),
        "v" => Prediction::V(v),
        "score" => Prediction::Score(v),
        "velocity" => Prediction::Velocity(v),
        _ => Prediction::Sample(v),
    }
}

impl<S: State> Denoiser<S> for Guided<'_, S> {
    fn predict(&self, x: &S, t: f64) -> Result<Prediction<S>> {
        let s = self.scale;
        if s == 1.0 {
            return self.cond.predict(x, t);
        }
        if s == 0.0 {
            return self.uncond.predict(x, t);
        }
        let c = self.cond.predict(x, t)?;
        let u = self.uncond.predict(x, t)?;
        if c.kind() == u.kind() {
            let (kind, cv) = parts(c);
            let (_, uv) = parts(u);
            return Ok(rewrap(kind, uv.lincomb(1.0 - s, &cv, s)));
        }
        let coeffs = Coeffs::at(self.schedule, t);
        let (x0c, _) = c.resolve(x, &coeffs)?;
        let (x0u, _) = u.resolve(x, &coeffs)?;
        Ok(Prediction::Sample(x0u.lincomb(1.0 - s, &x0c, s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diffusion_core::metrics::sliced_w2;
    use diffusion_core::schedule::VpLinear;
    use diffusion_core::{denoise, GaussianMixture, HostNoise, NoiseSource, TimeGrid};
    use diffusion_solvers::{registry, sample, NoObserver};
    use ndarray::Array2;

    /// A conditional analytic model: class k is component k of a two-component mixture; the
    /// unconditional model is the mixture.
    fn classes() -> (GaussianMixture, Vec<GaussianMixture>) {
        let mix = GaussianMixture::new(
            vec![0.5, 0.5],
            vec![vec![-2.0, 0.0], vec![2.0, 1.0]],
            vec![
                vec![vec![0.3, 0.0], vec![0.0, 0.2]],
                vec![vec![0.2, 0.05], vec![0.05, 0.4]],
            ],
        )
        .unwrap();
        let parts = mix
            .components()
            .iter()
            .map(|g| GaussianMixture::from_gaussian(g.clone()))
            .collect();
        (mix, parts)
    }

    #[test]
    fn guidance_combines_x0_linearly_in_every_parameterization() {
        let sch = VpLinear::default();
        let (mix, parts) = classes();
        let du = mix.denoiser(&sch);
        let dc = parts[1].denoiser(&sch);
        let x: Array2<f64> = HostNoise::new(1).standard_normal(&Array2::zeros((16, 2)));
        let t = 0.4;
        let (x0u, _) = denoise(&du, &sch, &x, t).unwrap();
        let (x0c, _) = denoise(&dc, &sch, &x, t).unwrap();
        // The conditional model answers eps instead of x0: a different kind.
        let dc_eps = |x: &Array2<f64>, t: f64| -> Result<Prediction<Array2<f64>>> {
            let (_, eps) = denoise(&dc, &sch, x, t)?;
            Ok(Prediction::Epsilon(eps))
        };
        for s in [0.0, 1.0, 2.5, -0.5] {
            let want = x0u.lincomb(1.0 - s, &x0c, s);
            let g = Guided::new(&dc, &du, s, &sch).unwrap();
            let (got, _) = denoise(&g, &sch, &x, t).unwrap();
            let g2 = Guided::new(&dc_eps, &du, s, &sch).unwrap();
            let (got2, _) = denoise(&g2, &sch, &x, t).unwrap();
            for (a, b) in [(&got, &want), (&got2, &want)] {
                let err = (a - b).mapv(f64::abs).fold(0.0f64, |m, &v| m.max(v));
                assert!(err < 1e-10, "s = {s}: {err}");
            }
        }
        // s = 2 moves away from the unconditional answer: x0 = 2 x0_c - x0_u.
        let g = Guided::new(&dc, &du, 2.0, &sch).unwrap();
        let (got, _) = denoise(&g, &sch, &x, t).unwrap();
        let want = x0c.scale(2.0) - &x0u;
        assert!((&got - &want).mapv(f64::abs).sum() < 1e-9);
        assert!(Guided::<Array2<f64>>::new(&dc, &du, f64::NAN, &sch).is_err());
    }

    #[test]
    fn scale_one_samples_the_class_and_scale_zero_the_mixture() {
        let sch = VpLinear::default();
        let (mix, parts) = classes();
        let du = mix.denoiser(&sch);
        let dc = parts[0].denoiser(&sch);
        let grid = TimeGrid::karras(&sch, 0.002, sch.noise_ratio(1.0), 7.0, 30, true).unwrap();
        let x_t: Array2<f64> = HostNoise::new(4).standard_normal(&Array2::zeros((2000, 2)));
        let solver = registry::build::<Array2<f64>>("dpmpp-2m").unwrap();
        let run = |s: f64| {
            let g = Guided::new(&dc, &du, s, &sch).unwrap();
            let mut noise = diffusion_core::IndependentIncrements::seeded(0);
            sample(
                solver.as_ref(),
                &g,
                &sch,
                &grid,
                x_t.clone(),
                &mut noise,
                &mut NoObserver,
            )
            .unwrap()
        };
        let class0 = parts[0].sample(2000, &mut HostNoise::new(9));
        let all = mix.sample(2000, &mut HostNoise::new(9));
        let (a, b) = (run(1.0), run(0.0));
        let w = |x: &Array2<f64>, y: &Array2<f64>| sliced_w2(&x.view(), &y.view(), 64, 1).unwrap();
        assert!(w(&a, &class0) < 0.1, "s = 1 vs class 0: {}", w(&a, &class0));
        // Two exact mixture sample sets differ by the mode proportions: the noise floor.
        let floor = w(&mix.sample(2000, &mut HostNoise::new(10)), &all);
        assert!(
            w(&b, &all) < 2.0 * floor + 0.05,
            "s = 0 vs mixture: {} (floor {floor})",
            w(&b, &all)
        );
        assert!(w(&b, &class0) > 1.0);
        // Stronger guidance concentrates further on the class (mean moves past it, spread shrinks).
        let c = run(3.0);
        let mean_x = |x: &Array2<f64>| x.column(0).mean().unwrap();
        assert!(
            mean_x(&c) < mean_x(&a) + 0.05,
            "{} vs {}",
            mean_x(&c),
            mean_x(&a)
        );
    }
}
