//! Forward processes on a vocabulary: absorbing (masked) and uniform noise, token-wise.
//!
//! Paper: Austin, Johnson, Ho, Tarlow & van den Berg (2021), "Structured Denoising Diffusion Models
//! in Discrete State-Spaces" (D3PM), arXiv:2107.03006, Sec. 3 (uniform and absorbing transition
//! matrices); Shi et al. (2024), MD4, arXiv:2406.04329, Eq. (1)-(3) (continuous-time masking
//! marginals `q(x_t | x_0) = alpha_t [x_t = x_0] + (1 - alpha_t) [x_t = mask]`).
//!
//! With `alpha(t)` from a [`MaskSchedule`], for `s < t`:
//! - absorbing: `q(x_t | x_s)` keeps a clean token with probability `alpha_t / alpha_s`, else masks
//!   it; the mask token is absorbing;
//! - uniform: `q(x_t | x_s) = (alpha_t/alpha_s) [x_t = x_s] + (1 - alpha_t/alpha_s) / K`.

use crate::error::{DiscreteError, Result};
use crate::schedule::MaskSchedule;
use rand::Rng;

/// A token-wise forward process over a finite vocabulary.
pub trait DiscreteProcess {
    /// Number of states a token can take (including the mask token where there is one).
    fn num_states(&self) -> usize;
    /// `q(x_t = j | x_s = from)` for every `j`, for `0 <= s <= t <= 1`.
    fn transition(&self, from: u32, s: f64, t: f64) -> Result<Vec<f64>>;
    /// `q(x_t = j | x_0 = x0)` for every `j`.
    fn marginal(&self, x0: u32, t: f64) -> Result<Vec<f64>> {
        self.transition(x0, 0.0, t)
    }
    /// Draws `x_t ~ q(x_t | x_0)` for every token of a sequence.
    fn sample_marginal(&self, x0: &[u32], t: f64, rng: &mut dyn rand::RngCore) -> Result<Vec<u32>> {
        x0.iter()
            .map(|&tok| {
                let p = self.marginal(tok, t)?;
                let u: f64 = rng.random();
                let mut acc = 0.0;
                for (j, pj) in p.iter().enumerate() {
                    acc += pj;
                    if u < acc {
                        return Ok(j as u32);
                    }
                }
                Ok((p.len() - 1) as u32)
            })
            .collect()
    }
}

fn check_times(s: f64, t: f64) -> Result<()> {
    if (0.0..=1.0).contains(&s) && (0.0..=1.0).contains(&t) && s <= t {
        Ok(())
    } else {
        Err(DiscreteError::InvalidParameter {
            name: "s/t",
            reason: format!("need 0 <= s <= t <= 1, got s = {s}, t = {t}"),
        })
    }
}

/// Probability of keeping a token from `s` to `t`: `alpha_t / alpha_s` (1 when `alpha_s = 0`,
/// where nothing is left to keep).
fn keep_prob(schedule: &MaskSchedule, s: f64, t: f64) -> f64 {
    let a_s = schedule.alpha(s);
    if a_s <= 0.0 {
        1.0
    } else {
        (schedule.alpha(t) / a_s).clamp(0.0, 1.0)
    }
}

/// Masked (absorbing-state) diffusion over `vocab` clean tokens plus a mask token with id `vocab`.
#[derive(Debug, Clone, Copy)]
pub struct Absorbing {
    vocab: usize,
    schedule: MaskSchedule,
}

impl Absorbing {
    /// A masked process over `vocab >= 1` clean tokens.
    pub fn new(vocab: usize, schedule: MaskSchedule) -> Result<Self> {
        schedule.validate()?;
        if vocab == 0 || vocab >= u32::MAX as usize {
            return Err(DiscreteError::InvalidParameter {
                name: "vocab",
                reason: format!("need 1 <= vocab < 2^32 - 1, got {vocab}"),
            });
        }
        Ok(Absorbing { vocab, schedule })
    }
    /// The id of the mask token (`vocab`).
    pub fn mask_id(&self) -> u32 {
        self.vocab as u32
    }
}

impl DiscreteProcess for Absorbing {
    fn num_states(&self) -> usize {
        self.vocab + 1
    }
    fn transition(&self, from: u32, s: f64, t: f64) -> Result<Vec<f64>> {
        check_times(s, t)?;
        if from as usize > self.vocab {
            return Err(DiscreteError::TokenOutOfRange {
                token: from,
                vocab: self.num_states(),
            });
        }
        let mut p = vec![0.0; self.num_states()];
        if from == self.mask_id() {
            p[self.vocab] = 1.0;
        } else {
            let keep = keep_prob(&self.schedule, s, t);
            p[from as usize] = keep;
            p[self.vocab] = 1.0 - keep;
        }
        Ok(p)
    }
}

/// Uniform-noise diffusion over `vocab` tokens: a token is resampled uniformly at rate set by
/// the schedule.
#[derive(Debug, Clone, Copy)]
pub struct Uniform {
    vocab: usize,
    schedule: MaskSchedule,
}

impl Uniform {
    /// A uniform process over `vocab >= 2` tokens.
    pub fn new(vocab: usize, schedule: MaskSchedule) -> Result<Self> {
        schedule.validate()?;
        if vocab < 2 || vocab > u32::MAX as usize {
            return Err(DiscreteError::InvalidParameter {
                name: "vocab",
                reason: format!("a uniform process needs at least 2 tokens, got {vocab}"),
            });
        }
        Ok(Uniform { vocab, schedule })
    }
}

impl DiscreteProcess for Uniform {
    fn num_states(&self) -> usize {
        self.vocab
    }
    fn transition(&self, from: u32, s: f64, t: f64) -> Result<Vec<f64>> {
        check_times(s, t)?;
        if from as usize >= self.vocab {
            return Err(DiscreteError::TokenOutOfRange {
                token: from,
                vocab: self.vocab,
            });
        }
        let keep = keep_prob(&self.schedule, s, t);
        let mut p = vec![(1.0 - keep) / self.vocab as f64; self.vocab];
        p[from as usize] += keep;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn chapman_kolmogorov(p: &dyn DiscreteProcess, x0: u32, s: f64, t: f64) {
        // q(x_t | x_0) = sum_j q(x_t | x_s = j) q(x_s = j | x_0).
        let direct = p.marginal(x0, t).unwrap();
        let mid = p.marginal(x0, s).unwrap();
        let mut composed = vec![0.0; p.num_states()];
        for (j, pj) in mid.iter().enumerate() {
            for (k, q) in p.transition(j as u32, s, t).unwrap().iter().enumerate() {
                composed[k] += pj * q;
            }
        }
        for (a, b) in direct.iter().zip(&composed) {
            assert!((a - b).abs() < 1e-12, "{direct:?} vs {composed:?}");
        }
        assert!((direct.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn marginals_compose_and_are_distributions() {
        let procs: Vec<Box<dyn DiscreteProcess>> = vec![
            Box::new(Absorbing::new(5, MaskSchedule::Linear).unwrap()),
            Box::new(Absorbing::new(3, MaskSchedule::Cosine).unwrap()),
            Box::new(Uniform::new(4, MaskSchedule::Linear).unwrap()),
            Box::new(Uniform::new(6, MaskSchedule::Polynomial(2.0)).unwrap()),
        ];
        for p in &procs {
            for &(s, t) in &[(0.1, 0.5), (0.3, 0.9), (0.0, 1.0), (0.5, 0.5)] {
                chapman_kolmogorov(p.as_ref(), 1, s, t);
            }
        }
    }

    #[test]
    fn absorbing_marginal_matches_md4_and_the_mask_is_absorbing() {
        let p = Absorbing::new(4, MaskSchedule::Linear).unwrap();
        let m = p.marginal(2, 0.3).unwrap();
        assert!((m[2] - 0.7).abs() < 1e-15 && (m[4] - 0.3).abs() < 1e-15);
        assert_eq!(p.transition(4, 0.2, 0.4).unwrap()[4], 1.0);
        assert!(p.marginal(5, 0.3).is_err());
        assert!(p.transition(1, 0.6, 0.4).is_err());
        let u = Uniform::new(4, MaskSchedule::Linear).unwrap();
        let m = u.marginal(0, 1.0).unwrap();
        assert!(
            m.iter().all(|v| (v - 0.25).abs() < 1e-15),
            "fully noised is uniform"
        );
    }

    #[test]
    fn sampled_marginals_match_the_probabilities() {
        // 40k tokens: the standard error of a frequency near 0.4 is 0.0025; threshold 0.015.
        let p = Absorbing::new(3, MaskSchedule::Cosine).unwrap();
        let x0 = vec![1u32; 40_000];
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
        let xt = p.sample_marginal(&x0, 0.6, &mut rng).unwrap();
        let masked = xt.iter().filter(|&&v| v == p.mask_id()).count() as f64 / x0.len() as f64;
        let want = 1.0 - MaskSchedule::Cosine.alpha(0.6);
        assert!((masked - want).abs() < 0.015, "{masked} vs {want}");
        assert!(xt.iter().all(|&v| v == 1 || v == p.mask_id()));
    }
}
