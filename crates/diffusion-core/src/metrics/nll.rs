//! Negative log-likelihood of samples under an exact target density.
//!
//! Paper: none specific; this is the cross-entropy `H(p_model, p_target) ~ -(1/n) sum_i log
//! p_target(x_i)` of generated samples under the analytic data density, the sample-quality
//! counterpart of the model-likelihood NLL reported by Song et al. (2021), "Score-Based
//! Generative Modeling through Stochastic Differential Equations", arXiv:2011.13456, Sec. 4.3.
//! For samples drawn from the target itself it estimates the target's entropy; the excess over
//! that is `KL(p_model || p_target)` (Gibbs' inequality), so lower is better and the entropy is
//! the floor.

use super::check_clouds;
use crate::error::Result;
use crate::target::GaussianMixture;
use ndarray::ArrayView2;

/// Mean negative log-likelihood (nats per sample, not per dimension) of the rows of `x` under
/// `target`'s data-level density ([`GaussianMixture::log_density`]). Errors on an empty or
/// non-finite `x`, a column mismatch, or a component with a singular covariance.
pub fn mean_nll(target: &GaussianMixture, x: &ArrayView2<'_, f64>) -> Result<f64> {
    check_clouds(x, x, "mean_nll")?;
    let logp = target.log_density(x)?;
    Ok(-logp.iter().sum::<f64>() / logp.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::gaussian_kl;
    use crate::noise::HostNoise;
    use crate::target::Gaussian;
    use ndarray::Array2;

    #[test]
    fn nll_of_own_samples_is_the_entropy() {
        // Entropy of N(mu, S) in d dims: (d/2) ln(2 pi e) + (1/2) ln det S. The per-sample
        // -log p has variance d/2 = 1 here, so with 100k samples the standard error is 0.0032;
        // the tolerance 0.02 is over 6 of them.
        let g = Gaussian::new(vec![1.0, -2.0], vec![vec![2.0, 0.5], vec![0.5, 1.0]]).unwrap();
        let det: f64 = 2.0 * 1.0 - 0.25;
        let entropy = (2.0 * std::f64::consts::PI * std::f64::consts::E).ln() + 0.5 * det.ln();
        let gmm = GaussianMixture::from_gaussian(g.clone());
        let x = g.sample(100_000, &mut HostNoise::new(1));
        let nll = mean_nll(&gmm, &x.view()).unwrap();
        assert!((nll - entropy).abs() < 0.02, "{nll} vs {entropy}");
    }

    #[test]
    fn excess_nll_under_a_wrong_target_is_the_kl() {
        // E_p[-log q] - E_p[-log p] = KL(p || q) = 0.69. On common samples the difference
        // log p - log q has standard deviation 1.01 here, so with 100k samples its mean has
        // standard error 0.0032; the tolerance 0.025 is over 7 of them, while a sign error would
        // be off by 2 KL = 1.4.
        let p = Gaussian::new(vec![0.0, 0.0], vec![vec![1.0, 0.3], vec![0.3, 0.5]]).unwrap();
        let q = Gaussian::new(vec![1.0, 0.5], vec![vec![1.5, 0.0], vec![0.0, 1.0]]).unwrap();
        let x = p.sample(100_000, &mut HostNoise::new(2));
        let nll_p = mean_nll(&GaussianMixture::from_gaussian(p.clone()), &x.view()).unwrap();
        let nll_q = mean_nll(&GaussianMixture::from_gaussian(q.clone()), &x.view()).unwrap();
        let kl = gaussian_kl(&p, &q).unwrap();
        assert!(kl > 0.5, "{kl}");
        assert!(
            ((nll_q - nll_p) - kl).abs() < 0.025,
            "{} vs {kl}",
            nll_q - nll_p
        );
    }

    #[test]
    fn mixture_nll_of_a_far_point_and_errors() {
        // A single point: NLL is exactly -log p there.
        let gmm = GaussianMixture::ring(8, 2.0, 0.3).unwrap();
        let x = Array2::from_shape_vec((1, 2), vec![2.0, 0.0]).unwrap();
        let nll = mean_nll(&gmm, &x.view()).unwrap();
        assert!((nll + gmm.log_density(&x.view()).unwrap()[0]).abs() < 1e-15);
        // Far away points are very unlikely but finite thanks to the log-sum-exp.
        let far = Array2::from_shape_vec((1, 2), vec![60.0, -40.0]).unwrap();
        let nll_far = mean_nll(&gmm, &far.view()).unwrap();
        assert!(nll_far.is_finite() && nll_far > 10_000.0, "{nll_far}");
        assert!(mean_nll(&gmm, &Array2::zeros((0, 2)).view()).is_err());
        assert!(mean_nll(&gmm, &Array2::zeros((3, 3)).view()).is_err());
        let nan = Array2::from_shape_vec((1, 2), vec![f64::NAN, 0.0]).unwrap();
        assert!(mean_nll(&gmm, &nan.view()).is_err());
    }
}
