//! Allocation-free linear combinations for solver steps.
//!
//! A step receives its state by value; when that state owns its storage exclusively
//! ([`State::is_exclusive`]: always for `ndarray` arrays) the update is written into it, otherwise
//! (tensors that may share storage with shallow clones) a new state is allocated. Both paths do
//! the same arithmetic, so the results are bit-identical; only the allocations differ.

use diffusion_core::State;

/// `a x + b d`, in the storage of `x` when it owns it exclusively.
pub(crate) fn lincomb_owned<S: State>(mut x: S, a: f64, d: &S, b: f64) -> S {
    if x.is_exclusive() {
        x.lincomb_assign(a, d, b);
        x
    } else {
        x.lincomb(a, d, b)
    }
}

/// `a x + b u + c v`, in the storage of `x` when it owns it exclusively.
pub(crate) fn lincomb3_owned<S: State>(mut x: S, a: f64, u: &S, b: f64, v: &S, c: f64) -> S {
    if x.is_exclusive() {
        x.lincomb3_assign(a, u, b, v, c);
        x
    } else {
        x.lincomb3(a, u, b, v, c)
    }
}

/// [`lincomb_owned`] for a step's final update: when the update is in place its pass also
/// checks the result ([`State::lincomb_assign_finite`]); the flag is `true` only when it did and
/// the result is finite (pass it to [`crate::solver::Cache::set_checked`], so the sampler skips
/// its separate pass). Same values as [`lincomb_owned`].
pub(crate) fn lincomb_checked<S: State>(mut x: S, a: f64, d: &S, b: f64) -> (S, bool) {
    if x.is_exclusive() {
        let ok = x.lincomb_assign_finite(a, d, b);
        (x, ok)
    } else {
        (x.lincomb(a, d, b), false)
    }
}

/// [`lincomb3_owned`] for a step's final update, checking the result in the same pass (see
/// [`lincomb_checked`]).
pub(crate) fn lincomb3_checked<S: State>(
    mut x: S,
    a: f64,
    u: &S,
    b: f64,
    v: &S,
    c: f64,
) -> (S, bool) {
    if x.is_exclusive() {
        let ok = x.lincomb3_assign_finite(a, u, b, v, c);
        (x, ok)
    } else {
        (x.lincomb3(a, u, b, v, c), false)
    }
}

/// `a x + sum_j c_j s_j` into a new state, `x` left as it is (for a state a step still needs,
/// such as SA-Solver's predictor from the `x` its corrector restarts from): the first pass takes
/// up to two terms, the rest go through [`lincomb_terms_checked`]. Unchecked.
pub(crate) fn lincomb_terms_new<S: State>(x: &S, a: f64, terms: &[(f64, &S)]) -> S {
    match terms {
        [] => x.scale(a),
        [(b, u)] => x.lincomb(a, u, *b),
        [(b, u), (c, v), rest @ ..] => {
            lincomb_terms_checked(x.lincomb3(a, u, *b, v, *c), 1.0, rest).0
        }
    }
}

/// `a x + sum_j c_j s_j` over the `terms` `(c_j, s_j)`, for a step's final update: the terms
/// are taken two at a time (one pass over the state per pair, [`lincomb3_owned`]), the last pass
/// ([`lincomb_checked`] or [`lincomb3_checked`]) checking the result (see [`lincomb_checked`]
/// for the flag). So a combination of `n` states costs `ceil(n / 2)` passes instead of forming
/// `sum_j c_j s_j` first. With no terms it is `a x`, unchecked.
pub(crate) fn lincomb_terms_checked<S: State>(x: S, a: f64, terms: &[(f64, &S)]) -> (S, bool) {
    let mut acc = x;
    let mut a = a;
    let mut rest = terms;
    loop {
        match rest {
            [] => return (acc.into_scaled(a), false),
            [(c, s)] => return lincomb_checked(acc, a, s, *c),
            [(c, s), (d, u)] => return lincomb3_checked(acc, a, s, *c, u, *d),
            [(c, s), (d, u), tail @ ..] => {
                acc = lincomb3_owned(acc, a, s, *c, u, *d);
                a = 1.0;
                rest = tail;
            }
        }
    }
}

/// `a src`, written into the storage of `buf` (whose values are discarded) when it owns it
/// exclusively.
pub(crate) fn scale_reusing<S: State>(src: &S, a: f64, mut buf: S) -> S {
    if buf.is_exclusive() {
        src.scale_into(a, &mut buf);
        buf
    } else {
        src.scale(a)
    }
}

/// `a x + b y`, written into the storage of `buf` (whose values are discarded) when it owns it
/// exclusively.
pub(crate) fn lincomb_reusing<S: State>(x: &S, a: f64, y: &S, b: f64, mut buf: S) -> S {
    if buf.is_exclusive() {
        x.lincomb_into(a, y, b, &mut buf);
        buf
    } else {
        x.lincomb(a, y, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn owned_and_reusing_forms_equal_the_allocating_ones_bit_for_bit() {
        let x = array![0.3_f64, -1.7, 2.9, 1e-3];
        let u = array![1.1_f64, 0.2, -0.7, 5.0];
        let v = array![-0.4_f64, 0.9, 3.3, -2.0];
        let junk = array![9.0_f64, 9.0, 9.0, 9.0];
        let (a, b, c) = (0.37, -1.0 / 7.0, 2.5);
        assert_eq!(lincomb_owned(x.clone(), a, &u, b), x.lincomb(a, &u, b));
        assert_eq!(
            lincomb3_owned(x.clone(), a, &u, b, &v, c),
            x.lincomb3(a, &u, b, &v, c)
        );
        assert_eq!(x.clone().into_scaled(c), x.scale(c));
        assert_eq!(scale_reusing(&x, b, junk.clone()), x.scale(b));
        assert_eq!(lincomb_reusing(&x, a, &u, b, junk), x.lincomb(a, &u, b));
        let (out, ok) = lincomb_checked(x.clone(), a, &u, b);
        assert!(ok && out == x.lincomb(a, &u, b));
        let (out, ok) = lincomb3_checked(x.clone(), a, &u, b, &v, c);
        assert!(ok && out == x.lincomb3(a, &u, b, &v, c));
        let bad = array![0.0_f64, f64::NAN, 0.0, 0.0];
        let (out, ok) = lincomb3_checked(x.clone(), a, &u, b, &bad, c);
        assert!(
            out[1].is_nan() && !ok,
            "a non-finite result is not reported finite"
        );
        assert!(!lincomb_checked(x.clone(), a, &bad, b).1);
    }

    #[test]
    fn term_lists_fold_two_at_a_time_and_check_the_last_pass() {
        let x = array![0.3_f64, -1.7, 2.9, 1e-3];
        let s: Vec<_> = (0..5)
            .map(|k| x.mapv(|v| (v * (k as f64 + 1.3)).sin()))
            .collect();
        let c = [0.5, -1.25, 3.0, 0.125, -0.75];
        let a = 0.37;
        assert_eq!(
            lincomb_terms_checked(x.clone(), a, &[]),
            (x.scale(a), false)
        );
        for n in 1..=5 {
            let terms: Vec<(f64, &_)> = c.iter().copied().zip(&s).take(n).collect();
            // The same passes by hand: pairs with lincomb3, the odd one out with lincomb.
            let mut want = x.clone();
            let mut aa = a;
            let mut j = 0;
            while j < n {
                want = if j + 1 < n {
                    want.lincomb3(aa, &s[j], c[j], &s[j + 1], c[j + 1])
                } else {
                    want.lincomb(aa, &s[j], c[j])
                };
                aa = 1.0;
                j += 2;
            }
            let (got, ok) = lincomb_terms_checked(x.clone(), a, &terms);
            assert!(ok && got == want, "{n} terms");
            // And to rounding the plain sum.
            let plain = x.scale(a)
                + terms
                    .iter()
                    .fold(x.scale(0.0), |acc, (c, s)| acc + s.scale(*c));
            assert!((&got - &plain).iter().all(|d| d.abs() < 1e-14), "{n} terms");
            let mut bad = terms.clone();
            let nan = array![0.0_f64, f64::NAN, 0.0, 0.0];
            bad[0].1 = &nan;
            assert!(!lincomb_terms_checked(x.clone(), a, &bad).1, "{n} terms");
        }
    }
}
