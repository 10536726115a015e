//! The 2-D toy data sets of the normalizing-flow and flow-matching literature.
//!
//! Paper: Grathwohl, Chen, Bettencourt, Sutskever & Duvenaud (2019), "FFJORD: Free-form
//! Continuous Dynamics for Scalable Reversible Generative Models", arXiv:1810.01367, Sec. 5.1 and
//! Fig. 2 (the toy suite; definitions follow its `lib/toy_data.py:inf_train_gen`, also used by
//! torchcfm's 2-D examples). Each draw is independent:
//!
//! | variant | FFJORD name | definition |
//! |---|---|---|
//! | [`Toy2d::EightGaussians`] | `8gaussians` | 8 equal-weight isotropic Gaussians, means on a circle of radius `4/1.414`, std `0.5/1.414` |
//! | [`Toy2d::Moons`] | `moons` | `2 m + (-1, -0.2)`, `m` a point of scikit-learn's two moons (angle uniform on `[0, pi]`) plus `N(0, 0.1^2 I)` |
//! | [`Toy2d::Checkerboard`] | `checkerboard` | uniform on the 8 "black" unit squares of a `4 x 4` board on `[-2, 2]^2`, times 2 |
//! | [`Toy2d::SwissRoll`] | `swissroll` | `(t cos t, t sin t) + N(0, I)`, `t = 1.5 pi (1 + 2 u)`, divided by 5 |
//! | [`Toy2d::Spirals`] | `2spirals` | `±(-n cos n + u1/2, n sin n + u2/2) / 3 + N(0, 0.1^2 I)`, `n = 3 pi sqrt(u)` |
//! | [`Toy2d::Pinwheel`] | `pinwheel` | 5 arms: `f = (f_0, f_1) = (N(1, 0.3^2), N(0, 0.1^2))` rotated by `-(2 pi k/5 + 0.25 e^{f_0})`, times 2 |
//!
//! Differences from the Python generator, all in distribution-preserving directions: FFJORD
//! splits a batch into exact halves (moons, spirals) or fifths (pinwheel, which then returns only
//! `5 floor(n/5)` points) and scikit-learn's moons use evenly spaced angles; here every point
//! picks its moon, arm or spiral and its angle independently, so `sample(n)` is always `n` i.i.d.
//! draws. Randomness comes from one [`HostNoise`], so a seed fixes the output on every machine.

use super::GaussianMixture;
use crate::error::{CoreError, Result};
use crate::noise::HostNoise;
use ndarray::Array2;
use std::f64::consts::PI;

/// The FFJORD 2-D toy distributions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Toy2d {
    /// Eight Gaussians on a circle; the only toy with an analytic density ([`Toy2d::as_mixture`]).
    EightGaussians,
    /// Two interleaved half circles.
    Moons,
    /// A 4 x 4 checkerboard with uniform density on half of the squares.
    Checkerboard,
    /// The 2-D swiss roll (the `x`-`z` plane of scikit-learn's 3-D roll).
    SwissRoll,
    /// Two interleaved spirals, point-symmetric about the origin.
    Spirals,
    /// Five curved arms of a pinwheel.
    Pinwheel,
}

/// Radius of the eight-Gaussians ring: FFJORD's scale 4 divided by its 1.414.
const EIGHT_RADIUS: f64 = 4.0 / 1.414;
/// Standard deviation of each of the eight Gaussians: 0.5 / 1.414.
const EIGHT_STD: f64 = 0.5 / 1.414;

impl Toy2d {
    /// Every toy, in a fixed order.
    pub const ALL: [Toy2d; 6] = [
        Toy2d::EightGaussians,
        Toy2d::Moons,
        Toy2d::Checkerboard,
        Toy2d::SwissRoll,
        Toy2d::Spirals,
        Toy2d::Pinwheel,
    ];

    /// The canonical name (FFJORD's): `8gaussians`, `moons`, `checkerboard`, `swissroll`,
    /// `2spirals`, `pinwheel`.
    pub fn name(self) -> &'static str {
        match self {
            Toy2d::EightGaussians => "8gaussians",
            Toy2d::Moons => "moons",
            Toy2d::Checkerboard => "checkerboard",
            Toy2d::SwissRoll => "swissroll",
            Toy2d::Spirals => "2spirals",
            Toy2d::Pinwheel => "pinwheel",
        }
    }

    /// Parses a name, case-insensitively; besides the canonical names it accepts
    /// `eight-gaussians`, `swiss-roll` and `spirals`. The error lists the known names.
    pub fn from_name(name: &str) -> Result<Self> {
        let key = name.trim().to_ascii_lowercase();
        let alias = match key.as_str() {
            "eight-gaussians" | "eightgaussians" | "8-gaussians" => Some(Toy2d::EightGaussians),
            "swiss-roll" | "swiss_roll" => Some(Toy2d::SwissRoll),
            "spirals" | "2-spirals" => Some(Toy2d::Spirals),
            _ => None,
        };
        alias
            .or_else(|| Self::ALL.into_iter().find(|t| t.name() == key))
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|t| t.name()).collect();
                CoreError::invalid(
                    "toy",
                    format!("unknown 2-D toy `{name}`; known: {}", known.join(", ")),
                )
            })
    }

    /// The exact density as a Gaussian mixture where it is analytic: `Some` for
    /// [`Toy2d::EightGaussians`] (equal to `GaussianMixture::ring(8, 4/1.414, 0.5/1.414)`, whose
    /// samples [`Toy2d::sample`] returns), `None` for the others.
    pub fn as_mixture(self) -> Option<GaussianMixture> {
        match self {
            Toy2d::EightGaussians => Some(eight_gaussians()),
            _ => None,
        }
    }

    /// Draws `n` independent points as the rows of an `n x 2` array.
    pub fn sample(self, n: usize, noise: &mut HostNoise) -> Array2<f64> {
        let draw: fn(&mut HostNoise) -> (f64, f64) = match self {
            Toy2d::EightGaussians => return eight_gaussians().sample(n, noise),
            Toy2d::Moons => moons,
            Toy2d::Checkerboard => checkerboard,
            Toy2d::SwissRoll => swiss_roll,
            Toy2d::Spirals => spirals,
            Toy2d::Pinwheel => pinwheel,
        };
        let mut out = Array2::zeros((n, 2));
        for i in 0..n {
            let (a, b) = draw(noise);
            out[[i, 0]] = a;
            out[[i, 1]] = b;
        }
        out
    }
}

impl std::fmt::Display for Toy2d {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Toy2d {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self> {
        Toy2d::from_name(s)
    }
}

/// The eight-Gaussians mixture (constant, valid parameters).
fn eight_gaussians() -> GaussianMixture {
    GaussianMixture::ring(8, EIGHT_RADIUS, EIGHT_STD).expect("k = 8 and std > 0 are valid")
}

/// An index uniform on `0..k`.
fn uniform_index(noise: &mut HostNoise, k: usize) -> usize {
    ((noise.uniform() * k as f64) as usize).min(k - 1)
}

fn normal(noise: &mut HostNoise) -> f64 {
    noise.normals(1)[0]
}

fn moons(noise: &mut HostNoise) -> (f64, f64) {
    let theta = PI * noise.uniform();
    let (x, y) = if noise.uniform() < 0.5 {
        (theta.cos(), theta.sin())
    } else {
        (1.0 - theta.cos(), 1.0 - theta.sin() - 0.5)
    };
    let (ex, ey) = (0.1 * normal(noise), 0.1 * normal(noise));
    (2.0 * (x + ex) - 1.0, 2.0 * (y + ey) - 0.2)
}

fn checkerboard(noise: &mut HostNoise) -> (f64, f64) {
    let x1 = 4.0 * noise.uniform() - 2.0;
    let lower = uniform_index(noise, 2) as f64;
    let x2 = noise.uniform() - 2.0 * lower + x1.floor().rem_euclid(2.0);
    (2.0 * x1, 2.0 * x2)
}

fn swiss_roll(noise: &mut HostNoise) -> (f64, f64) {
    let t = 1.5 * PI * (1.0 + 2.0 * noise.uniform());
    let (ex, ey) = (normal(noise), normal(noise));
    ((t * t.cos() + ex) / 5.0, (t * t.sin() + ey) / 5.0)
}

fn spirals(noise: &mut HostNoise) -> (f64, f64) {
    let n = noise.uniform().sqrt() * 540.0 * (2.0 * PI) / 360.0;
    let x = -n.cos() * n + 0.5 * noise.uniform();
    let y = n.sin() * n + 0.5 * noise.uniform();
    let sign = if noise.uniform() < 0.5 { 1.0 } else { -1.0 };
    (
        sign * x / 3.0 + 0.1 * normal(noise),
        sign * y / 3.0 + 0.1 * normal(noise),
    )
}

fn pinwheel(noise: &mut HostNoise) -> (f64, f64) {
    let (radial_std, tangential_std, rate, classes) = (0.3, 0.1, 0.25, 5usize);
    let label = uniform_index(noise, classes);
    let f0 = radial_std * normal(noise) + 1.0;
    let f1 = tangential_std * normal(noise);
    let angle = 2.0 * PI * label as f64 / classes as f64 + rate * f0.exp();
    let (c, s) = (angle.cos(), angle.sin());
    // FFJORD: features (row vector) times [[c, -s], [s, c]].
    (2.0 * (f0 * c + f1 * s), 2.0 * (-f0 * s + f1 * c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean(x: &Array2<f64>) -> (f64, f64) {
        (x.column(0).mean().unwrap(), x.column(1).mean().unwrap())
    }

    fn mean_sq_radius(x: &Array2<f64>) -> f64 {
        x.rows()
            .into_iter()
            .map(|r| r[0] * r[0] + r[1] * r[1])
            .sum::<f64>()
            / x.nrows() as f64
    }

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known_ones() {
        for t in Toy2d::ALL {
            assert_eq!(Toy2d::from_name(t.name()).unwrap(), t);
            assert_eq!(t.to_string().parse::<Toy2d>().unwrap(), t);
        }
        assert_eq!(Toy2d::from_name(" Swiss-Roll ").unwrap(), Toy2d::SwissRoll);
        assert_eq!(Toy2d::from_name("spirals").unwrap(), Toy2d::Spirals);
        assert_eq!(
            Toy2d::from_name("eight-gaussians").unwrap(),
            Toy2d::EightGaussians
        );
        let e = Toy2d::from_name("circles").unwrap_err().to_string();
        assert!(
            e.contains("circles") && e.contains("8gaussians") && e.contains("pinwheel"),
            "{e}"
        );
    }

    #[test]
    fn shapes_determinism_and_finiteness() {
        for t in Toy2d::ALL {
            let a = t.sample(501, &mut HostNoise::new(3));
            let b = t.sample(501, &mut HostNoise::new(3));
            let c = t.sample(501, &mut HostNoise::new(4));
            assert_eq!(a.dim(), (501, 2), "{t}");
            assert_eq!(a, b, "{t}");
            assert_ne!(a, c, "{t}");
            assert!(a.iter().all(|v| v.is_finite()), "{t}");
            assert_eq!(t.sample(0, &mut HostNoise::new(3)).dim(), (0, 2));
        }
    }

    #[test]
    fn eight_gaussians_is_the_ring_mixture() {
        let g = Toy2d::EightGaussians.as_mixture().unwrap();
        let ring = GaussianMixture::ring(8, 4.0 / 1.414, 0.5 / 1.414).unwrap();
        for (a, b) in g.components().iter().zip(ring.components()) {
            assert!((a.mean() - b.mean()).norm() < 1e-15 && (a.cov() - b.cov()).norm() < 1e-15);
        }
        // FFJORD's centers (+-1, 0), (0, +-1), (+-1/sqrt2, +-1/sqrt2) times 4 / 1.414.
        for c in g.components() {
            let m = c.mean();
            assert!((m.norm() - 4.0 / 1.414).abs() < 1e-12);
            let angle = m[1].atan2(m[0]) / (PI / 4.0);
            assert!((angle - angle.round()).abs() < 1e-12);
            assert!((c.cov()[(0, 0)] - (0.5_f64 / 1.414).powi(2)).abs() < 1e-15);
        }
        assert!(Toy2d::Moons.as_mixture().is_none());
        // Samples equal the mixture's own samples for the same seed.
        let x = Toy2d::EightGaussians.sample(100, &mut HostNoise::new(5));
        assert_eq!(x, ring.sample(100, &mut HostNoise::new(5)));
        // Every sample sits near a center: with std 0.354 per coordinate the distance to the
        // nearest center exceeds 2.0 (5.6 std) with probability exp(-16) per point.
        let x = Toy2d::EightGaussians.sample(4000, &mut HostNoise::new(6));
        for r in x.rows() {
            let d = g
                .components()
                .iter()
                .map(|c| ((r[0] - c.mean()[0]).powi(2) + (r[1] - c.mean()[1]).powi(2)).sqrt())
                .fold(f64::INFINITY, f64::min);
            assert!(d < 2.0, "{d}");
        }
    }

    #[test]
    fn checkerboard_points_lie_on_black_squares_evenly() {
        // Rescaled by 1/2, (floor(x1) + floor(x2)) is even: x2 in [0,1) or [-2,-1) for even
        // floor(x1), shifted up by one for odd. Each of the 8 squares holds 1/8 of 16000 points:
        // binomial std 42, the tolerance 300 is 7 of them.
        let x = Toy2d::Checkerboard.sample(16_000, &mut HostNoise::new(7));
        let mut counts = std::collections::HashMap::new();
        for r in x.rows() {
            let (a, b) = ((r[0] / 2.0).floor(), (r[1] / 2.0).floor());
            assert!((-2.0..2.0).contains(&a) && (-2.0..2.0).contains(&b), "{r}");
            assert_eq!((a + b).rem_euclid(2.0), 0.0, "point {r} on a white square");
            *counts.entry((a as i64, b as i64)).or_insert(0usize) += 1;
        }
        assert_eq!(counts.len(), 8);
        for (sq, c) in counts {
            assert!((c as f64 - 2000.0).abs() < 300.0, "{sq:?}: {c}");
        }
    }

    #[test]
    fn moons_lie_on_two_circles_of_radius_two() {
        // The upper moon is the circle of radius 2 about (-1, -0.2), the lower one about
        // (1, 0.8); the radial noise is N(0, 0.2^2). The mean distance to the nearer circle is at
        // most E|N(0, 0.2^2)| = 0.16; a wrong radius or center would push it well past 0.3.
        // Mean: moons' means (0, 2/pi) and (1, 1/2 - 2/pi) average to (1/2, 1/4), mapped to
        // (0, 0.3); the coordinate stds are 1.75 and 1.0, so with 20000 points the standard
        // errors are 0.012 and 0.007 and the tolerance 0.06 is over 5 of them.
        let x = Toy2d::Moons.sample(20_000, &mut HostNoise::new(8));
        let centers = [(-1.0, -0.2), (1.0, 0.8)];
        let resid: f64 = x
            .rows()
            .into_iter()
            .map(|r| {
                centers
                    .iter()
                    .map(|c| ((((r[0] - c.0).powi(2) + (r[1] - c.1).powi(2)).sqrt()) - 2.0).abs())
                    .fold(f64::INFINITY, f64::min)
            })
            .sum::<f64>()
            / x.nrows() as f64;
        assert!(resid < 0.17 && resid > 0.05, "{resid}");
        let (mx, my) = mean(&x);
        assert!(mx.abs() < 0.06 && (my - 0.3).abs() < 0.06, "({mx}, {my})");
    }

    #[test]
    fn swiss_roll_radius_moments() {
        // 25 |x|^2 = t^2 + 2 (t cos t, t sin t) . e + |e|^2 with t = 1.5 pi (1 + 2u):
        // E[25 |x|^2] = (1.5 pi)^2 E[(1 + 2u)^2] + 2 = (1.5 pi)^2 13/3 + 2 = 98.2.
        // The std of 25|x|^2 is about 60, so with 20000 points the standard error is 0.43;
        // the tolerance 3 is 7 of them.
        let x = Toy2d::SwissRoll.sample(20_000, &mut HostNoise::new(9));
        let m2 = 25.0 * mean_sq_radius(&x);
        let want = (1.5 * PI).powi(2) * 13.0 / 3.0 + 2.0;
        assert!((m2 - want).abs() < 3.0, "{m2} vs {want}");
        // Radii stay within [1.5 pi, 4.5 pi] / 5 up to the noise |e| / 5; |e| > 6 has probability
        // exp(-18) per point.
        for r in x.rows() {
            let rad = (r[0] * r[0] + r[1] * r[1]).sqrt();
            assert!(
                rad > 1.5 * PI / 5.0 - 1.2 && rad < 4.5 * PI / 5.0 + 1.2,
                "{rad}"
            );
        }
    }

    #[test]
    fn spirals_are_point_symmetric_with_the_right_spread() {
        // E|x|^2 = E[n^2 + (n/2)(sin n - cos n) + 1/6] / 9 + 2 * 0.01 with n = 3 pi sqrt(u),
        // computed here by quadrature over u. Coordinate std is about 1.6, so with 20000 points
        // the mean's standard error is 0.011 and the tolerance 0.06 is over 5 of them; the std
        // of |x|^2 is about 3, so the second moment's standard error is 0.02 (0.024 over 30
        // seeds) and the tolerance 0.12 is 5 of them.
        let x = Toy2d::Spirals.sample(20_000, &mut HostNoise::new(10));
        let (mx, my) = mean(&x);
        assert!(mx.abs() < 0.06 && my.abs() < 0.06, "({mx}, {my})");
        let k = 200_000;
        let integrand = |u: f64| {
            let n = 3.0 * PI * u.sqrt();
            n * n + 0.5 * n * (n.sin() - n.cos()) + 1.0 / 6.0
        };
        let e = (0..k)
            .map(|i| integrand((i as f64 + 0.5) / k as f64))
            .sum::<f64>()
            / k as f64;
        let want = e / 9.0 + 0.02;
        let m2 = mean_sq_radius(&x);
        assert!((m2 - want).abs() < 0.12, "{m2} vs {want}");
    }

    #[test]
    fn pinwheel_is_rotationally_symmetric_with_the_right_radius() {
        // |x|^2 = 4 (f0^2 + f1^2): E = 4 (1 + 0.09 + 0.01) = 4.4, std about 2.5, so with 20000
        // points the standard error is 0.018 and the tolerance 0.1 is over 5 of them. Five-fold
        // symmetry makes the mean 0; coordinate std is about 1.5, standard error 0.011, tolerance
        // 0.06.
        let x = Toy2d::Pinwheel.sample(20_000, &mut HostNoise::new(11));
        let (mx, my) = mean(&x);
        assert!(mx.abs() < 0.06 && my.abs() < 0.06, "({mx}, {my})");
        let m2 = mean_sq_radius(&x);
        assert!((m2 - 4.4).abs() < 0.1, "{m2}");
        // Direction of the curl. A point's polar angle is theta = -(2 pi k/5 + 0.25 e^{f0}) + delta
        // with delta ~ f1/f0, so 5 theta = -1.25 e^{f0} + 5 delta mod 2 pi removes the arm offset.
        // Near radius 2.65 (f0 ~ 1.327, 1.25 e^{f0} ~ 3 pi / 2) sin(5 theta) ~ +1 damped by
        // exp(-(5 * 0.1 / 1.33)^2 / 2) = 0.93; an anticlockwise curl (sign error) gives ~ -0.93.
        // About 1400 points fall in the window; the mean's standard error is below 0.01.
        let s5: Vec<f64> = x
            .rows()
            .into_iter()
            .filter(|r| ((r[0] * r[0] + r[1] * r[1]).sqrt() - 2.65).abs() < 0.1)
            .map(|r| (5.0 * r[1].atan2(r[0])).sin())
            .collect();
        let m = s5.iter().sum::<f64>() / s5.len() as f64;
        assert!(
            s5.len() > 800 && m > 0.7,
            "{} points, mean sin(5 theta) {m}",
            s5.len()
        );
    }
}
