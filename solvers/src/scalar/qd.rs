//! Quad-double: an unevaluated sum of four non-overlapping f64, about 212 significant bits (64
//! decimal digits) and f64's exponent range, after Hida, Li and Bailey, "Algorithms for
//! quad-double precision floating point arithmetic" (ARITH 15, 2001) and their QD library:
//! addition and multiplication are the library's default ("sloppy") forms, whose error is a few
//! units of 2^−211 relative to the operands (on heavy cancellation relative to the larger
//! operand, not to the result); division takes five f64 quotient digits, √ three Newton steps;
//! e^x, ln, ln(1 + x) and decimal conversion come from [`super::ext`].

use super::eft::{ldexp, renorm5, three_sum, three_sum2, two_prod, two_sum};
use super::ext::{self, Expansion};
use super::Real;
use std::sync::OnceLock;

/// A quad-double number c0 + c1 + c2 + c3 (≈ 212 bits). See the module documentation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Qd(pub [f64; 4]);

/// Bits of a quad-double for [`Real::precision`].
pub const QD_BITS: u32 = 212;

impl Qd {
    /// The exact value x.
    pub const fn from_f64_exact(x: f64) -> Self {
        Qd([x, 0.0, 0.0, 0.0])
    }

    /// a + b (Hida–Li–Bailey `sloppy_add`).
    #[inline(always)]
    pub fn add_qd(a: Qd, b: Qd) -> Qd {
        let (a, b) = (a.0, b.0);
        let (s0, mut t0) = two_sum(a[0], b[0]);
        let (mut s1, mut t1) = two_sum(a[1], b[1]);
        let (mut s2, mut t2) = two_sum(a[2], b[2]);
        let (mut s3, t3) = two_sum(a[3], b[3]);
        (s1, t0) = two_sum(s1, t0);
        three_sum(&mut s2, &mut t0, &mut t1);
        three_sum2(&mut s3, &mut t0, t2);
        t2 = t0 + t1 + t3;
        Qd(renorm5([s0, s1, s2, s3, t2]))
    }

    /// a·b (Hida–Li–Bailey `sloppy_mul`: all partial products down to O(u³), the u⁴ terms in
    /// plain f64).
    #[inline(always)]
    pub fn mul_qd(a: Qd, b: Qd) -> Qd {
        let (a, b) = (a.0, b.0);
        let (p0, q0) = two_prod(a[0], b[0]);
        let (mut p1, q1) = two_prod(a[0], b[1]);
        let (mut p2, q2) = two_prod(a[1], b[0]);
        let (mut p3, q3) = two_prod(a[0], b[2]);
        let (mut p4, q4) = two_prod(a[1], b[1]);
        let (mut p5, q5) = two_prod(a[2], b[0]);
        let (mut q0, mut q1, mut q2) = (q0, q1, q2);
        // (p1, p2, q0) ← three_sum
        three_sum(&mut p1, &mut p2, &mut q0);
        // six-three sum of p2, q1, q2, p3, p4, p5
        three_sum(&mut p2, &mut q1, &mut q2);
        three_sum(&mut p3, &mut p4, &mut p5);
        let (s0, t0) = two_sum(p2, p3);
        let (s1, t1) = two_sum(q1, p4);
        let mut s2 = q2 + p5;
        let (s1, t0) = two_sum(s1, t0);
        s2 += t0 + t1;
        // O(u³) terms
        let s1 = s1 + (a[0] * b[3] + a[1] * b[2] + a[2] * b[1] + a[3] * b[0] + q0 + q3 + q4 + q5);
        Qd(renorm5([p0, p1, s0, s1, s2]))
    }

    /// a/b: five quotient digits ([`ext::quotient_digits`]), renormalized.
    #[inline]
    pub fn div_qd(a: Qd, b: Qd) -> Qd {
        match ext::quotient_digits::<Qd, 5>(a, b) {
            Err(q0) => Qd::from_f64_exact(q0),
            Ok(q) => Qd(renorm5(q)),
        }
    }

    /// √a: three Newton steps y ← (y + a/y)/2 from the f64 root (53 → 106 → 212 bits and one
    /// more for the rounding of the first two).
    pub fn sqrt_qd(a: Qd) -> Qd {
        if a.0[0] <= 0.0 || !a.0[0].is_finite() {
            return Qd::from_f64_exact(a.0[0].sqrt());
        }
        let mut y = Qd::from_f64_exact(a.0[0].sqrt());
        for _ in 0..3 {
            y = Qd::add_qd(y, Qd::div_qd(a, y)).mul_pow2(-1);
        }
        y
    }
}

impl std::ops::Neg for Qd {
    type Output = Qd;
    #[inline(always)]
    fn neg(self) -> Qd {
        Qd(self.0.map(|c| -c))
    }
}

impl PartialOrd for Qd {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        for (x, y) in self.0.iter().zip(&other.0) {
            match x.partial_cmp(y)? {
                std::cmp::Ordering::Equal => continue,
                o => return Some(o),
            }
        }
        Some(std::cmp::Ordering::Equal)
    }
}

super::impl_expansion_ops!(Qd, add_qd, mul_qd, div_qd);

static QD_LN2: OnceLock<Qd> = OnceLock::new();
static QD_INV_FACT: OnceLock<Vec<Qd>> = OnceLock::new();

impl Expansion for Qd {
    const DIGITS: usize = 64;
    const LN_STEPS: usize = 1;
    const EXP_TERMS: usize = 16;
    #[inline(always)]
    fn hi(&self) -> f64 {
        self.0[0]
    }
    #[inline(always)]
    fn of(x: f64) -> Self {
        Qd::from_f64_exact(x)
    }
    #[inline]
    fn mul_pow2(&self, k: i32) -> Self {
        Qd(self.0.map(|c| ldexp(c, k)))
    }
    fn ln2() -> Self {
        *QD_LN2.get_or_init(|| ext::ln2_series(QD_BITS))
    }
    fn taylor_quotient(r: &Self) -> Self {
        const SPLIT: usize = 10;
        let c = Self::inv_factorials();
        let dd = |x: &Qd| super::Dd { hi: x.0[0], lo: x.0[1] };
        let rd = dd(r);
        // Tail Σ_{j ≥ SPLIT} r^{j−SPLIT}/j! in double-double: its weight r^{SPLIT−1}/SPLIT! < 2^−125
        // (r ≤ 3.4e-4) leaves its 2^−104 relative error below 2^−229 of the sum (≈ 1; the
        // leading term).
        let mut t = dd(&c[Self::EXP_TERMS]);
        for cj in c[SPLIT..Self::EXP_TERMS].iter().rev() {
            t = t * &rd + &dd(cj);
        }
        let mut p = Qd([t.hi, t.lo, 0.0, 0.0]);
        for cj in c[1..SPLIT].iter().rev() {
            p = p * r + cj;
        }
        p
    }
    fn ln_start(m: &Self) -> Self {
        let d = ext::ln(&super::Dd { hi: m.0[0], lo: m.0[1] });
        Qd([d.hi, d.lo, 0.0, 0.0])
    }
    fn ln_1p_start(x: &Self) -> Self {
        let d = ext::ln_1p(&super::Dd { hi: x.0[0], lo: x.0[1] });
        Qd([d.hi, d.lo, 0.0, 0.0])
    }
    fn inv_factorials() -> &'static [Self] {
        QD_INV_FACT.get_or_init(|| ext::inv_factorials_table(QD_BITS, Self::EXP_TERMS))
    }
}

impl Real for Qd {
    ext::real_methods!(QD_BITS);
    /// p and q split exactly into two f64 each; one quad-double division.
    fn ratio(p: i64, q: i64, _prec: u32) -> Self {
        let (p, q) = (super::dd::exact_i64(p), super::dd::exact_i64(q));
        Qd::div_qd(Qd([p.hi, p.lo, 0.0, 0.0]), Qd([q.hi, q.lo, 0.0, 0.0]))
    }
    fn to_f64(&self) -> f64 {
        self.0[0] + self.0[1]
    }
    fn sqrt(&self) -> Self {
        Qd::sqrt_qd(*self)
    }
    fn is_finite(&self) -> bool {
        self.0.iter().all(|c| c.is_finite())
    }
    /// `qd:` and the four bit patterns in hexadecimal.
    fn to_exact(&self) -> String {
        ext::exact_string("qd", &self.0)
    }
    fn from_exact(s: &str) -> Option<Self> {
        ext::parse_exact("qd", s).map(Qd)
    }
    fn gemm(m: usize, k: usize, n: usize, a: &[Self], b: &[Self], c: &mut [Self], accumulate: bool) {
        gemm(m, k, n, a, b, c, accumulate);
    }
}

/// C (m×n) = A (m×k)·B (k×n), or C += A·B, row-major, in quad-double (row-streamed i–p–j).
fn gemm(m: usize, k: usize, n: usize, a: &[Qd], b: &[Qd], c: &mut [Qd], accumulate: bool) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    for i in 0..m {
        let crow = &mut c[i * n..(i + 1) * n];
        if !accumulate {
            crow.fill(Qd::default());
        }
        for p in 0..k {
            let aip = a[i * k + p];
            for (cj, bpj) in crow.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                *cj = Qd::add_qd(*cj, Qd::mul_qd(aip, *bpj));
            }
        }
    }
}
