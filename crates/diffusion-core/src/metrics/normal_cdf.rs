//! The standard normal CDF (Kolmogorov-Smirnov tests, one-dimensional mixture CDFs).
//!
//! Paper: Press, Teukolsky, Vetterling & Flannery (1992), "Numerical Recipes", 2nd ed., Sec. 6.2
//! (`erfcc`, a Chebyshev fit of `erfc`).

/// The standard normal CDF, by the complementary error function of Numerical Recipes (`erfcc`,
/// relative error below `1.2e-7` everywhere).
pub fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    if x >= 0.0 {
        1.0 - 0.5 * erfc
    } else {
        0.5 * erfc
    }
}
