//! Special functions and random variates for the heavy-tailed kernels: `ln Gamma`, the regularized
//! incomplete beta function `I_x(a, b)`, and Gamma / Beta-ratio draws from [`HostNoise`].
//!
//! Paper: Lanczos (1964), "A Precision Approximation of the Gamma Function", SIAM J. Numer. Anal.
//! B 1:86-96 (the `g = 7`, 9-term coefficients); Press, Teukolsky, Vetterling & Flannery (2007),
//! "Numerical Recipes", 3rd ed., Sec. 6.4 (`I_x(a, b)` by the modified Lentz continued fraction,
//! using the symmetry `I_x(a, b) = 1 - I_{1-x}(b, a)` past the mode); Marsaglia & Tsang (2000),
//! "A Simple Method for Generating Gamma Variables", ACM TOMS 26(3):363-372 (with the
//! `Gamma(a) = Gamma(a + 1) U^{1/a}` boost for `a < 1`).

use crate::noise::HostNoise;
use std::f64::consts::PI;

const LANCZOS: [f64; 9] = [
    0.999_999_999_999_809_9,
    676.520_368_121_885_1,
    -1_259.139_216_722_402_8,
    771.323_428_777_653_1,
    -176.615_029_162_140_6,
    12.507_343_278_686_905,
    -0.138_571_095_265_720_12,
    9.984_369_578_019_572e-6,
    1.505_632_735_149_311_6e-7,
];

/// `ln Gamma(x)` for `x > 0` (relative accuracy about `1e-15`).
pub(crate) fn ln_gamma(x: f64) -> f64 {
    if x < 0.5 {
        // Reflection: Gamma(x) Gamma(1 - x) = pi / sin(pi x).
        return (PI / (PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = LANCZOS[0];
    for (i, &c) in LANCZOS.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized incomplete beta function `I_x(a, b)` for `a, b > 0`, given `x` and `y = 1 - x`
/// separately (so callers can pass an accurate complement).
pub(crate) fn beta_reg(a: f64, b: f64, x: f64, y: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if y <= 0.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * y.ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_cf(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_cf(b, a, y) / b
    }
}

/// The continued fraction of `I_x(a, b)` (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..200_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// One `Gamma(shape, 1)` draw (`shape > 0`) by Marsaglia & Tsang.
pub(crate) fn sample_gamma(shape: f64, noise: &mut HostNoise) -> f64 {
    if shape < 1.0 {
        let u = 1.0 - noise.uniform(); // in (0, 1]
        return sample_gamma(shape + 1.0, noise) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = noise.normals(1)[0];
        let v = 1.0 + c * x;
        if v <= 0.0 {
            continue;
        }
        let v = v * v * v;
        let u = noise.uniform();
        if u < 1.0 - 0.0331 * x.powi(4) {
            return d * v;
        }
        if u > 0.0 && u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
            return d * v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_known_values() {
        assert!(ln_gamma(1.0).abs() < 1e-15);
        assert!(ln_gamma(2.0).abs() < 1e-15);
        assert!((ln_gamma(0.5) - 0.5 * PI.ln()).abs() < 1e-14);
        // ln(10!) = ln 3628800.
        assert!((ln_gamma(11.0) - 3_628_800.0_f64.ln()).abs() < 1e-12);
        // Gamma(x + 1) = x Gamma(x) at a large argument.
        let x = 5.0e5;
        assert!((ln_gamma(x + 1.0) - ln_gamma(x) - x.ln()).abs() < 1e-8);
        assert!((ln_gamma(0.1) - 2.252_712_651_734_206).abs() < 1e-13);
    }

    #[test]
    fn incomplete_beta_matches_closed_forms() {
        for &x in &[0.01, 0.2, 0.5, 0.77, 0.99] {
            let y = 1.0 - x;
            // I_x(1, 1) = x; I_x(a, 1) = x^a; I_x(1, b) = 1 - (1 - x)^b.
            assert!((beta_reg(1.0, 1.0, x, y) - x).abs() < 1e-14);
            assert!((beta_reg(2.5, 1.0, x, y) - x.powf(2.5)).abs() < 1e-14);
            assert!((beta_reg(1.0, 3.5, x, y) - (1.0 - y.powf(3.5))).abs() < 1e-14);
            // I_x(1/2, 1/2) = (2/pi) asin(sqrt x).
            assert!((beta_reg(0.5, 0.5, x, y) - 2.0 / PI * x.sqrt().asin()).abs() < 1e-14);
            // Symmetry.
            let s = beta_reg(3.0, 7.0, x, y) + beta_reg(7.0, 3.0, y, x);
            assert!((s - 1.0).abs() < 1e-14);
        }
        assert_eq!(beta_reg(2.0, 3.0, 0.0, 1.0), 0.0);
        assert_eq!(beta_reg(2.0, 3.0, 1.0, 0.0), 1.0);
    }

    #[test]
    fn gamma_draws_have_the_right_moments() {
        // 50k draws per shape; mean = a, var = a. Standard error of the mean sqrt(a / n),
        // of the variance about a sqrt((2 + 6/a) / n); margins are 5 standard errors.
        let mut noise = HostNoise::new(77);
        let n = 50_000;
        for &a in &[0.3, 1.5, 40.0] {
            let g: Vec<f64> = (0..n).map(|_| sample_gamma(a, &mut noise)).collect();
            let nf = n as f64;
            let mean = g.iter().sum::<f64>() / nf;
            let var = g.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / nf;
            assert!(
                (mean - a).abs() < 5.0 * (a / nf).sqrt(),
                "a {a}: mean {mean}"
            );
            assert!(
                (var - a).abs() < 5.0 * a * ((2.0 + 6.0 / a) / nf).sqrt(),
                "a {a}: var {var}"
            );
            assert!(g.iter().all(|v| *v > 0.0));
        }
    }
}
