//! Elementary functions and decimal conversion written once for the f64 expansions
//! ([`super::Dd`], [`super::Qd`]), after Hida, Li and Bailey (QD library, 2001):
//!
//! - e^x: x = k ln 2 + 2^10 r with |r| ≤ ln2/2^11; e^r − 1 by its Taylor polynomial (Horner,
//!   coefficients 1/j! built once at the working precision), then ten doublings
//!   e^{2r} − 1 = (e^r − 1)(2 + e^r − 1), which keep the relative accuracy of e^r − 1; finally
//!   e^x = 2^k (1 + (e^{2^10 r} − 1)).
//! - ln x: x = 2^e m, m ∈ [1/√2, √2); Newton on e^y = m, y ← y + m e^{−y} − 1, which doubles
//!   the correct bits per step: double-double one step from the f64 logarithm, quad-double one
//!   step from the double-double logarithm (error ≈ e0²/2 with e0 ≲ 2^−104 |ln m| ≤ 2^−105).
//! - ln(1 + x) for |x| < 1/4: Newton y ← y + (x − (e^y − 1))/(1 + (e^y − 1)) (from the f64
//!   `ln_1p`, resp. the double-double one), with e^y − 1 from the accurate expm1 above (no
//!   cancellation at small x).
//! - ln 2 = 2 atanh(1/3) = 2 Σ_j 3^{−(2j+1)}/(2j+1), summed once at the working precision.
//!
//! Decimal output prints the digits the type holds (32 for double-double, 64 for quad-double),
//! correctly carried and rounded from the expansion; parsing accumulates the decimal mantissa
//! exactly (while it fits) and scales by a power of ten once.

use super::Real;

/// What the generic functions need from an f64 expansion type.
pub(crate) trait Expansion: Real + Copy {
    /// Significant decimal digits printed (⌊bits·log10 2⌋).
    const DIGITS: usize;
    /// Newton steps for ln and ln(1 + x) from [`Expansion::ln_start`].
    const LN_STEPS: usize;
    /// Taylor terms of e^r − 1 for |r| ≤ ln2/2^11.
    const EXP_TERMS: usize;
    /// The leading component (the value rounded to f64, up to one ulp).
    fn hi(&self) -> f64;
    /// An exact conversion from f64.
    fn of(x: f64) -> Self;
    /// self·2^k, exact barring overflow and underflow.
    fn mul_pow2(&self, k: i32) -> Self;
    /// ln 2 at this precision (computed once).
    fn ln2() -> Self;
    /// 1/j! for j = 0..=EXP_TERMS at this precision (computed once).
    fn inv_factorials() -> &'static [Self];
    /// Σ_{j=1}^{N} r^{j−1}/j! for |r| ≤ ln2/2^11 (so that e^r − 1 = r·this), by Horner; the
    /// quad-double form sums the terms j ≥ 8 (each below 2^−100 relative) in double-double.
    fn taylor_quotient(r: &Self) -> Self {
        let c = Self::inv_factorials();
        let mut p = c[Self::EXP_TERMS];
        for cj in c[1..Self::EXP_TERMS].iter().rev() {
            p = p * r + cj;
        }
        p
    }
    /// Start of the Newton iteration for ln m, m ∈ [1/√2, √2): the f64 logarithm (53 bits).
    fn ln_start(m: &Self) -> Self {
        Self::of(m.hi().ln())
    }
    /// Start of the Newton iteration for ln(1 + x), |x| < 1/4: the f64 `ln_1p`.
    fn ln_1p_start(x: &Self) -> Self {
        Self::of(x.hi().ln_1p())
    }
}

/// The quotient digits q_0..q_{N−1} of a/b: q_k = hi(r_k)/hi(b), r_0 = a, r_{k+1} = r_k − q_k b
/// (Hida–Li–Bailey); `Err(q_0)` when q_0 is not finite or hi(b) = 0.
#[inline]
pub(crate) fn quotient_digits<T: Expansion, const N: usize>(a: T, b: T) -> Result<[f64; N], f64> {
    let bh = b.hi();
    let mut q = [0.0; N];
    q[0] = a.hi() / bh;
    if !q[0].is_finite() || bh == 0.0 {
        return Err(q[0]);
    }
    let mut r = a;
    for k in 1..N {
        r = r - &(b * &T::of(q[k - 1]));
        q[k] = r.hi() / bh;
    }
    Ok(q)
}

/// `tag:` and the bit patterns of the components in hexadecimal (`Real::to_exact`).
pub(crate) fn exact_string(tag: &str, parts: &[f64]) -> String {
    let mut out = tag.to_string();
    for p in parts {
        out.push_str(&format!(":{:016x}", p.to_bits()));
    }
    out
}

/// The N components written by [`exact_string`] with this tag, or `None`.
pub(crate) fn parse_exact<const N: usize>(tag: &str, s: &str) -> Option<[f64; N]> {
    let mut out = [0.0; N];
    let mut parts = s.strip_prefix(tag)?.strip_prefix(':')?.split(':');
    for o in out.iter_mut() {
        *o = f64::from_bits(u64::from_str_radix(parts.next()?, 16).ok()?);
    }
    if parts.next().is_some() {
        return None;
    }
    Some(out)
}

/// The [`Real`] methods that an f64 expansion takes from its [`Expansion`] impl and this
/// module (the same for [`super::Dd`] and [`super::Qd`]); `$bits` is its precision.
macro_rules! real_methods {
    ($bits:expr) => {
        fn precision(&self) -> u32 {
            $bits
        }
        fn from_f64(x: f64, _prec: u32) -> Self {
            <Self as super::ext::Expansion>::of(x)
        }
        fn assign(&mut self, other: &Self) {
            *self = *other;
        }
        fn assign_f64(&mut self, x: f64) {
            *self = <Self as super::ext::Expansion>::of(x);
        }
        #[inline(always)]
        fn add_mul_mut(&mut self, a: &Self, b: &Self) {
            *self = *self + &(*a * b);
        }
        fn exp(&self) -> Self {
            super::ext::exp(self)
        }
        fn ln(&self) -> Self {
            super::ext::ln(self)
        }
        fn ln_1p(&self) -> Self {
            super::ext::ln_1p(self)
        }
        fn exp_m1(&self) -> Self {
            super::ext::exp_m1(self)
        }
        fn abs(&self) -> Self {
            if self.is_sign_negative() {
                -*self
            } else {
                *self
            }
        }
        fn is_sign_negative(&self) -> bool {
            <Self as super::ext::Expansion>::hi(self).is_sign_negative()
        }
        fn direct_exp_range() -> f64 {
            500.0
        }
        fn to_decimal(&self) -> String {
            super::ext::to_decimal(self)
        }
        fn parse_decimal(s: &str, prec: u32) -> Option<Self> {
            super::ext::parse_decimal(s, prec)
        }
    };
}
pub(crate) use real_methods;

/// ln 2 = 2 Σ_j 3^{−(2j+1)}/(2j+1), terms until they are below 2^−(bits+8).
pub(crate) fn ln2_series<T: Expansion>(prec: u32) -> T {
    let ninth = T::one(prec) / &T::of(9.0);
    let mut pow = T::one(prec) / &T::of(3.0);
    let mut sum = T::zero(prec);
    let limit = 2f64.powi(-(prec as i32) - 8);
    let mut j = 0.0f64;
    while pow.hi() > limit {
        sum += &(pow / &T::of(2.0 * j + 1.0));
        pow *= &ninth;
        j += 1.0;
    }
    sum.mul_pow2(1)
}

/// 1/j! for j = 0..=terms.
pub(crate) fn inv_factorials_table<T: Expansion>(prec: u32, terms: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(terms + 1);
    let mut f = T::one(prec);
    out.push(f);
    for j in 1..=terms {
        f /= &T::of(j as f64);
        out.push(f);
    }
    out
}

/// Halvings of the reduced argument of e^x.
const SQUARINGS: i32 = 10;

/// e^r − 1 for |r| ≤ ln2/2 (relative accuracy a few ulps).
fn expm1_small<T: Expansion>(r: &T) -> T {
    let r = r.mul_pow2(-SQUARINGS);
    // r (1/1! + r (1/2! + … + r/N!)).
    let mut s = T::taylor_quotient(&r) * &r;
    let two = T::of(2.0);
    for _ in 0..SQUARINGS {
        s = s * &(s + &two);
    }
    s
}

/// e^x.
pub(crate) fn exp<T: Expansion>(x: &T) -> T {
    let h = x.hi();
    let prec = x.precision();
    if h.is_nan() {
        return *x;
    }
    if h > 709.78 {
        return T::of(f64::INFINITY);
    }
    if h < -745.2 {
        return T::zero(prec);
    }
    let k = (h / std::f64::consts::LN_2).round();
    let r = *x - &(T::ln2() * &T::of(k));
    let s = expm1_small(&r);
    (s + &T::one(prec)).mul_pow2(k as i32)
}

/// e^x − 1, accurate for small x.
pub(crate) fn exp_m1<T: Expansion>(x: &T) -> T {
    let h = x.hi();
    if h == 0.0 {
        return *x;
    }
    if h.abs() < 0.34 {
        return expm1_small(x);
    }
    exp(x) - &T::one(x.precision())
}

/// ln x (NaN below 0, −∞ at 0).
pub(crate) fn ln<T: Expansion>(x: &T) -> T {
    let h = x.hi();
    let prec = x.precision();
    if h.is_nan() || h < 0.0 {
        return T::of(f64::NAN);
    }
    if h == 0.0 {
        return T::of(f64::NEG_INFINITY);
    }
    if h.is_infinite() {
        return *x;
    }
    // x = 2^e m with m ∈ [1/√2, √2).
    let mut e = h.log2().round() as i32;
    let mut m = x.mul_pow2(-e);
    if m.hi() >= std::f64::consts::SQRT_2 {
        m = m.mul_pow2(-1);
        e += 1;
    } else if m.hi() < std::f64::consts::FRAC_1_SQRT_2 {
        m = m.mul_pow2(1);
        e -= 1;
    }
    let one = T::one(prec);
    let mut y = T::ln_start(&m);
    for _ in 0..T::LN_STEPS {
        // y ← y + m e^{−y} − 1
        let t = m * &exp(&-y) - &one;
        y += &t;
    }
    y + &(T::ln2() * &T::of(e as f64))
}

/// ln(1 + x), accurate for small x.
pub(crate) fn ln_1p<T: Expansion>(x: &T) -> T {
    let h = x.hi();
    if h == 0.0 {
        return *x;
    }
    if h.is_nan() || h.abs() >= 0.25 {
        return ln(&(*x + &T::one(x.precision())));
    }
    let one = T::one(x.precision());
    let mut y = T::ln_1p_start(x);
    for _ in 0..T::LN_STEPS {
        let e = exp_m1(&y);
        let step = (*x - &e) / &(e + &one);
        y += &step;
    }
    y
}

/// 10^k at this precision (k ≥ 0), by binary powering (exact while 5^k fits the mantissa).
fn pow10<T: Expansion>(k: u32, prec: u32) -> T {
    let mut result = T::one(prec);
    let mut base = T::of(10.0);
    let mut k = k;
    while k > 0 {
        if k & 1 == 1 {
            result *= &base;
        }
        k >>= 1;
        if k > 0 {
            base = base * &base;
        }
    }
    result
}

/// x·10^k, in steps of at most 10^280 so that no power overflows.
fn scale10<T: Expansion>(x: T, k: i32) -> T {
    let prec = x.precision();
    let mut x = x;
    let mut k = k;
    while k != 0 {
        let step = k.clamp(-280, 280);
        let p = pow10::<T>(step.unsigned_abs(), prec);
        if step > 0 {
            x *= &p;
        } else {
            x /= &p;
        }
        k -= step;
    }
    x
}

/// `d.ddd…e±X` with [`Expansion::DIGITS`] significant digits (non-finite values as f64 prints them).
pub(crate) fn to_decimal<T: Expansion>(x: &T) -> String {
    let h = x.hi();
    if !h.is_finite() {
        return format!("{h}");
    }
    if h == 0.0 {
        return if h.is_sign_negative() { "-0e0".into() } else { "0e0".into() };
    }
    let neg = h < 0.0;
    let a = if neg { -*x } else { *x };
    let mut e = a.hi().log10().floor() as i32;
    let mut r = scale10(a, -e);
    if r.hi() >= 10.0 {
        r /= &T::of(10.0);
        e += 1;
    } else if r.hi() < 1.0 {
        r *= &T::of(10.0);
        e -= 1;
    }
    let n = T::DIGITS;
    let ten = T::of(10.0);
    let mut digits = vec![0i32; n + 1];
    for d in digits.iter_mut() {
        let v = r.hi().floor();
        *d = v as i32;
        r = (r - &T::of(v)) * &ten;
    }
    // Carries from digits outside 0..=9 (a component of the other sign), then round half up on
    // the extra digit.
    let normalize = |digits: &mut [i32]| {
        for i in (1..digits.len()).rev() {
            while digits[i] < 0 {
                digits[i] += 10;
                digits[i - 1] -= 1;
            }
            while digits[i] > 9 {
                digits[i] -= 10;
                digits[i - 1] += 1;
            }
        }
    };
    normalize(&mut digits);
    let round_up = digits[n] >= 5;
    digits.truncate(n);
    if round_up {
        digits[n - 1] += 1;
        normalize(&mut digits);
    }
    if digits[0] >= 10 {
        digits[0] -= 10;
        digits.insert(0, 1);
        digits.truncate(n);
        e += 1;
    } else if digits[0] == 0 {
        digits.remove(0);
        digits.push(0);
        e -= 1;
    }
    let mut s = String::with_capacity(n + 8);
    if neg {
        s.push('-');
    }
    s.push((b'0' + digits[0] as u8) as char);
    if n > 1 {
        s.push('.');
        for d in &digits[1..] {
            s.push((b'0' + *d as u8) as char);
        }
    }
    s.push('e');
    s.push_str(&e.to_string());
    s
}

/// Parse `[+-]digits[.digits][(e|E)[+-]digits]` (or what f64 parses: inf, NaN).
pub(crate) fn parse_decimal<T: Expansion>(text: &str, prec: u32) -> Option<T> {
    let t = text.trim();
    let (neg, body) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (mant, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i32>().ok()?),
        None => (body, 0),
    };
    if mant.is_empty() || !mant.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let v: f64 = t.parse().ok()?;
        return Some(T::of(v));
    }
    let (int, frac) = match mant.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mant, ""),
    };
    if frac.contains('.') || (int.is_empty() && frac.is_empty()) {
        return None;
    }
    let ten = T::of(10.0);
    let mut v = T::zero(prec);
    for b in int.bytes().chain(frac.bytes()) {
        v = v * &ten + &T::of(f64::from(b - b'0'));
    }
    let k = exp.checked_sub(i32::try_from(frac.len()).ok()?)?;
    let v = scale10(v, k);
    Some(if neg { -v } else { v })
}
