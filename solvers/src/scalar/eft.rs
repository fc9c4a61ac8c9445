//! Error-free transformations on `f64` (Knuth's two-sum, Dekker's two-product) and the
//! renormalizations of Hida, Li and Bailey, "Algorithms for quad-double precision floating point
//! arithmetic" (ARITH 15, 2001), on which [`super::Dd`] and [`super::Qd`] are built.
//!
//! `two_prod` uses Dekker's splitting (Veltkamp, 17 flops, no fused multiply–add), so the result
//! is the same on every target; for |a|, |b| < 2^996 it is exact: p + e = a·b with p = fl(a·b),
//! the same pair an FMA computes, so the FMA kernels of the products are bitwise equal to it.

/// s + e = a + b exactly, s = fl(a + b) (Knuth; no condition on the magnitudes).
#[inline(always)]
pub(crate) fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

/// s + e = a + b exactly when |a| ≥ |b| or a = 0 (Dekker's fast two-sum).
#[inline(always)]
pub(crate) fn quick_two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    (s, b - (s - a))
}

/// Veltkamp's split: hi + lo = a with both halves of at most 26 significant bits.
#[inline(always)]
fn split(a: f64) -> (f64, f64) {
    const SPLITTER: f64 = 134_217_729.0; // 2^27 + 1
    let t = SPLITTER * a;
    let hi = t - (t - a);
    (hi, a - hi)
}

/// p + e = a·b exactly, p = fl(a·b) (Dekker), for |a|, |b| < 2^996 and no underflow.
#[inline(always)]
pub(crate) fn two_prod(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    let (ah, al) = split(a);
    let (bh, bl) = split(b);
    (p, ((ah * bh - p) + ah * bl + al * bh) + al * bl)
}

/// (a, b, c) ← a three-term expansion of a + b + c, largest first (Hida–Li–Bailey `three_sum`).
#[inline(always)]
pub(crate) fn three_sum(a: &mut f64, b: &mut f64, c: &mut f64) {
    let (t1, t2) = two_sum(*a, *b);
    let (s, t3) = two_sum(*c, t1);
    *a = s;
    let (s2, e) = two_sum(t2, t3);
    *b = s2;
    *c = e;
}

/// (a, b) ← the two leading terms of a + b + c (the third is dropped; `three_sum2`).
#[inline(always)]
pub(crate) fn three_sum2(a: &mut f64, b: &mut f64, c: f64) {
    let (t1, t2) = two_sum(*a, *b);
    let (s, t3) = two_sum(c, t1);
    *a = s;
    *b = t2 + t3;
}

/// Renormalize the five roughly ordered terms c0..c4 into a non-overlapping quad-double
/// (Hida–Li–Bailey `renorm`).
#[inline(always)]
pub(crate) fn renorm5(c: [f64; 5]) -> [f64; 4] {
    let [mut c0, mut c1, mut c2, mut c3, mut c4] = c;
    if !c0.is_finite() {
        return [c0, 0.0, 0.0, 0.0];
    }
    let (mut s0, t) = quick_two_sum(c3, c4);
    c4 = t;
    (s0, c3) = quick_two_sum(c2, s0);
    (s0, c2) = quick_two_sum(c1, s0);
    (c0, c1) = quick_two_sum(c0, s0);
    s0 = c0;
    let mut s1 = c1;
    let (mut s2, mut s3) = (0.0, 0.0);
    if s1 != 0.0 {
        (s1, s2) = quick_two_sum(s1, c2);
        if s2 != 0.0 {
            (s2, s3) = quick_two_sum(s2, c3);
            if s3 != 0.0 {
                s3 += c4;
            } else {
                s2 += c4;
            }
        } else {
            (s1, s2) = quick_two_sum(s1, c3);
            if s2 != 0.0 {
                (s2, s3) = quick_two_sum(s2, c4);
            } else {
                (s1, s2) = quick_two_sum(s1, c4);
            }
        }
    } else {
        (s0, s1) = quick_two_sum(s0, c2);
        if s1 != 0.0 {
            (s1, s2) = quick_two_sum(s1, c3);
            if s2 != 0.0 {
                (s2, s3) = quick_two_sum(s2, c4);
            } else {
                (s1, s2) = quick_two_sum(s1, c4);
            }
        } else {
            (s0, s1) = quick_two_sum(s0, c3);
            if s1 != 0.0 {
                (s1, s2) = quick_two_sum(s1, c4);
            } else {
                (s0, s1) = quick_two_sum(s0, c4);
            }
        }
    }
    [s0, s1, s2, s3]
}

/// x·2^k exactly (barring overflow and underflow), for any k in [−2200, 2200].
#[inline]
pub(crate) fn ldexp(x: f64, k: i32) -> f64 {
    let mut x = x;
    let mut k = k;
    while k > 1000 {
        x *= 2f64.powi(1000);
        k -= 1000;
    }
    while k < -1000 {
        x *= 2f64.powi(-1000);
        k += 1000;
    }
    x * 2f64.powi(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// two_prod is the FMA pair: p + e = a·b exactly.
    #[test]
    fn two_prod_matches_fma() {
        let mut x = 0.123_456_789_f64;
        for i in 0..2000 {
            x = (x * 3.9 * (1.0 - x)).abs();
            let a = x * 10f64.powi(i % 40 - 20);
            let b = (1.0 - x) * 10f64.powi((i * 7) % 50 - 25) - 0.3;
            let (p, e) = two_prod(a, b);
            assert_eq!(p, a * b);
            assert_eq!(e, a.mul_add(b, -p), "{a} {b}");
        }
    }

    #[test]
    fn two_sum_is_exact() {
        let (s, e) = two_sum(1.0, 1e-30);
        assert_eq!((s, e), (1.0, 1e-30));
        let (s, e) = two_sum(0.1, 0.2);
        assert_eq!(s, 0.1 + 0.2);
        // 0.1 + 0.2 − s exactly, by the integer mantissas (exponents −56, −55 and −54).
        let m = |x: f64, ex: i32| (x * 2f64.powi(-ex)) as i128;
        assert_eq!(m(0.1, -56) + 2 * m(0.2, -55) - 4 * m(s, -54), (e * 2f64.powi(56)) as i128);
    }
}
