//! Double-double: an unevaluated sum hi + lo of two f64 with |lo| ≤ ulp(hi)/2, about 106
//! significant bits (32 decimal digits) and f64's exponent range (Dekker 1971; Hida, Li, Bailey
//! 2001). Addition is the accurate ("IEEE") two-sum form, multiplication the two-product form,
//! division three f64 quotient digits with a correction, √ one Newton step from the f64 root;
//! e^x, ln, ln(1 + x) and decimal conversion come from [`super::ext`].

use super::eft::{ldexp, quick_two_sum, two_prod, two_sum};
use super::ext::{self, Expansion};
use super::Real;
use std::sync::OnceLock;

/// A double-double number hi + lo (≈ 106 bits). See the module documentation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Dd {
    /// Leading component: the value rounded to f64.
    pub hi: f64,
    /// Trailing component, |lo| ≤ ulp(hi)/2.
    pub lo: f64,
}

/// Bits of a double-double for [`Real::precision`].
pub const DD_BITS: u32 = 106;

impl Dd {
    /// The exact value x.
    pub const fn from_f64_exact(x: f64) -> Self {
        Dd { hi: x, lo: 0.0 }
    }

    /// a + b (accurate form: error ≤ 2u² |a + b| plus an absolute u²-term on cancellation;
    /// Joldes–Muller–Popescu 2017, Algorithm 6).
    #[inline(always)]
    pub fn add_dd(a: Dd, b: Dd) -> Dd {
        let (s1, s2) = two_sum(a.hi, b.hi);
        let (t1, t2) = two_sum(a.lo, b.lo);
        let (s1, s2) = quick_two_sum(s1, s2 + t1);
        let (hi, lo) = quick_two_sum(s1, s2 + t2);
        Dd { hi, lo }
    }

    /// a·b (error ≤ 4u² |a b| with u = 2^−53).
    #[inline(always)]
    pub fn mul_dd(a: Dd, b: Dd) -> Dd {
        let (p1, p2) = two_prod(a.hi, b.hi);
        let p2 = p2 + (a.hi * b.lo + a.lo * b.hi);
        let (hi, lo) = quick_two_sum(p1, p2);
        Dd { hi, lo }
    }

    /// a/b: quotient digits q1 = a/b, q2, q3 from the exact-ish remainders.
    #[inline]
    pub fn div_dd(a: Dd, b: Dd) -> Dd {
        let q1 = a.hi / b.hi;
        if !q1.is_finite() || b.hi == 0.0 {
            return Dd::from_f64_exact(q1);
        }
        let r = Dd::add_dd(a, -Dd::mul_dd(b, Dd::from_f64_exact(q1)));
        let q2 = r.hi / b.hi;
        let r = Dd::add_dd(r, -Dd::mul_dd(b, Dd::from_f64_exact(q2)));
        let q3 = r.hi / b.hi;
        let (q1, q2) = quick_two_sum(q1, q2);
        Dd::add_dd(Dd { hi: q1, lo: q2 }, Dd::from_f64_exact(q3))
    }

    /// √a: y = √hi, then one Newton step y + (a − y²)/(2y) in double-double.
    pub fn sqrt_dd(a: Dd) -> Dd {
        if a.hi <= 0.0 || !a.hi.is_finite() {
            return Dd::from_f64_exact(a.hi.sqrt());
        }
        let y = Dd::from_f64_exact(a.hi.sqrt());
        let r = Dd::add_dd(a, -Dd::mul_dd(y, y));
        Dd::add_dd(y, Dd::from_f64_exact(r.hi / (2.0 * y.hi)))
    }
}

impl std::ops::Neg for Dd {
    type Output = Dd;
    #[inline(always)]
    fn neg(self) -> Dd {
        Dd { hi: -self.hi, lo: -self.lo }
    }
}

impl PartialOrd for Dd {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        match self.hi.partial_cmp(&other.hi)? {
            std::cmp::Ordering::Equal => self.lo.partial_cmp(&other.lo),
            o => Some(o),
        }
    }
}

super::impl_expansion_ops!(Dd, add_dd, mul_dd, div_dd);

static DD_LN2: OnceLock<Dd> = OnceLock::new();
static DD_INV_FACT: OnceLock<Vec<Dd>> = OnceLock::new();

impl Expansion for Dd {
    const DIGITS: usize = 32;
    const LN_STEPS: usize = 1;
    const EXP_TERMS: usize = 9;
    #[inline(always)]
    fn hi(&self) -> f64 {
        self.hi
    }
    #[inline(always)]
    fn of(x: f64) -> Self {
        Dd::from_f64_exact(x)
    }
    #[inline]
    fn mul_pow2(&self, k: i32) -> Self {
        Dd { hi: ldexp(self.hi, k), lo: ldexp(self.lo, k) }
    }
    fn ln2() -> Self {
        *DD_LN2.get_or_init(|| ext::ln2_series(DD_BITS))
    }
    fn inv_factorials() -> &'static [Self] {
        DD_INV_FACT.get_or_init(|| ext::inv_factorials_table(DD_BITS, Self::EXP_TERMS))
    }
}

impl Real for Dd {
    fn precision(&self) -> u32 {
        DD_BITS
    }
    fn from_f64(x: f64, _prec: u32) -> Self {
        Dd::from_f64_exact(x)
    }
    /// p and q split exactly into two f64 each; one double-double division.
    fn ratio(p: i64, q: i64, _prec: u32) -> Self {
        Dd::div_dd(exact_i64(p), exact_i64(q))
    }
    fn to_f64(&self) -> f64 {
        self.hi + self.lo
    }
    fn assign(&mut self, other: &Self) {
        *self = *other;
    }
    fn assign_f64(&mut self, x: f64) {
        *self = Dd::from_f64_exact(x);
    }
    #[inline(always)]
    fn add_mul_mut(&mut self, a: &Self, b: &Self) {
        *self = Dd::add_dd(*self, Dd::mul_dd(*a, *b));
    }
    fn exp(&self) -> Self {
        ext::exp(self)
    }
    fn ln(&self) -> Self {
        ext::ln(self)
    }
    fn ln_1p(&self) -> Self {
        ext::ln_1p(self)
    }
    fn exp_m1(&self) -> Self {
        ext::exp_m1(self)
    }
    fn sqrt(&self) -> Self {
        Dd::sqrt_dd(*self)
    }
    fn abs(&self) -> Self {
        if self.hi.is_sign_negative() {
            -*self
        } else {
            *self
        }
    }
    fn is_finite(&self) -> bool {
        self.hi.is_finite() && self.lo.is_finite()
    }
    fn is_sign_negative(&self) -> bool {
        self.hi.is_sign_negative()
    }
    fn direct_exp_range() -> f64 {
        500.0
    }
    fn to_decimal(&self) -> String {
        ext::to_decimal(self)
    }
    fn parse_decimal(s: &str, prec: u32) -> Option<Self> {
        ext::parse_decimal(s, prec)
    }
    /// `dd:` and the two bit patterns in hexadecimal.
    fn to_exact(&self) -> String {
        format!("dd:{:016x}:{:016x}", self.hi.to_bits(), self.lo.to_bits())
    }
    fn from_exact(s: &str) -> Option<Self> {
        let mut parts = s.strip_prefix("dd:")?.split(':');
        let hi = f64::from_bits(u64::from_str_radix(parts.next()?, 16).ok()?);
        let lo = f64::from_bits(u64::from_str_radix(parts.next()?, 16).ok()?);
        if parts.next().is_some() {
            return None;
        }
        Some(Dd { hi, lo })
    }
    fn gemm(m: usize, k: usize, n: usize, a: &[Self], b: &[Self], c: &mut [Self], accumulate: bool) {
        super::kernels::dd_gemm(m, k, n, a, b, c, accumulate);
    }
}

/// An i64 as an exact double-double (hi = the nearest f64, lo = the exact remainder).
pub(crate) fn exact_i64(p: i64) -> Dd {
    let hi = p as f64;
    let lo = (i128::from(p) - hi as i128) as f64;
    Dd { hi, lo }
}
