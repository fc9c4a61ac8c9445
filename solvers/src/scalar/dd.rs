//! Double-double: an unevaluated sum hi + lo of two f64 with |lo| ≤ ulp(hi)/2, about 106
//! significant bits (32 decimal digits) and f64's exponent range (Dekker 1971; Hida, Li, Bailey
//! 2001). Addition is the accurate ("IEEE") two-sum form, multiplication the two-product form,
//! division three f64 quotient digits with a correction, √ one Newton step from the f64 root;
//! e^x, ln, ln(1 + x) and decimal conversion come from [`super::ext`], the matrix product's
//! row updates from [`super::kernels`].

use super::eft::{ldexp, quick_two_sum, two_prod, two_sum};
use super::ext::{self, Expansion};
use super::kernels;
use super::Real;
use std::cell::RefCell;
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

    /// a/b: three quotient digits ([`ext::quotient_digits`]), the first two summed exactly.
    #[inline]
    pub fn div_dd(a: Dd, b: Dd) -> Dd {
        match ext::quotient_digits::<Dd, 3>(a, b) {
            Err(q1) => Dd::from_f64_exact(q1),
            Ok([q1, q2, q3]) => {
                let (q1, q2) = quick_two_sum(q1, q2);
                Dd::add_dd(Dd { hi: q1, lo: q2 }, Dd::from_f64_exact(q3))
            }
        }
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
    ext::real_methods!(DD_BITS);
    /// p and q split exactly into two f64 each; one double-double division.
    fn ratio(p: i64, q: i64, _prec: u32) -> Self {
        Dd::div_dd(exact_i64(p), exact_i64(q))
    }
    fn to_f64(&self) -> f64 {
        self.hi + self.lo
    }
    fn sqrt(&self) -> Self {
        Dd::sqrt_dd(*self)
    }
    fn is_finite(&self) -> bool {
        self.hi.is_finite() && self.lo.is_finite()
    }
    /// `dd:` and the two bit patterns in hexadecimal.
    fn to_exact(&self) -> String {
        ext::exact_string("dd", &[self.hi, self.lo])
    }
    fn from_exact(s: &str) -> Option<Self> {
        let [hi, lo] = ext::parse_exact("dd", s)?;
        Some(Dd { hi, lo })
    }
    fn gemm(m: usize, k: usize, n: usize, a: &[Self], b: &[Self], c: &mut [Self], accumulate: bool) {
        gemm(m, k, n, a, b, c, accumulate);
    }
}

/// An i64 as an exact double-double (hi = the nearest f64, lo = the exact remainder).
pub(crate) fn exact_i64(p: i64) -> Dd {
    let hi = p as f64;
    let lo = (i128::from(p) - hi as i128) as f64;
    Dd { hi, lo }
}

thread_local! {
    /// Scratch for [`gemm`]: B's components and one row of C, reused between calls (no
    /// allocation once it has grown to the largest product seen on this thread).
    static SCRATCH: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// C (m×n) = A (m×k)·B (k×n), or C += A·B, row-major, in double-double: B split once into
/// leading and trailing arrays, each row of C accumulated in two f64 arrays.
fn gemm(m: usize, k: usize, n: usize, a: &[Dd], b: &[Dd], c: &mut [Dd], accumulate: bool) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    let fma = kernels::have_fma();
    SCRATCH.with(|cell| {
        let mut buf = cell.borrow_mut();
        if buf.len() < 2 * k * n + 2 * n {
            buf.resize(2 * k * n + 2 * n, 0.0);
        }
        let (bh, rest) = buf.split_at_mut(k * n);
        let (bl, rest) = rest.split_at_mut(k * n);
        let (ch, rest) = rest.split_at_mut(n);
        let cl = &mut rest[..n];
        for (idx, x) in b[..k * n].iter().enumerate() {
            bh[idx] = x.hi;
            bl[idx] = x.lo;
        }
        for i in 0..m {
            let crow = &mut c[i * n..(i + 1) * n];
            if accumulate {
                for (j, x) in crow.iter().enumerate() {
                    ch[j] = x.hi;
                    cl[j] = x.lo;
                }
            } else {
                ch.fill(0.0);
                cl.fill(0.0);
            }
            for p in 0..k {
                let aip = a[i * k + p];
                let (brh, brl) = (&bh[p * n..(p + 1) * n], &bl[p * n..(p + 1) * n]);
                kernels::dd_row_update(fma, aip.hi, aip.lo, brh, brl, ch, cl);
            }
            for (j, x) in crow.iter_mut().enumerate() {
                *x = Dd { hi: ch[j], lo: cl[j] };
            }
        }
    });
}

/// The portable double-double kernel alone (for the test that the FMA path is bitwise equal).
#[cfg(test)]
pub(crate) fn gemm_portable(m: usize, k: usize, n: usize, a: &[Dd], b: &[Dd], c: &mut [Dd]) {
    let bh: Vec<f64> = b.iter().map(|x| x.hi).collect();
    let bl: Vec<f64> = b.iter().map(|x| x.lo).collect();
    for i in 0..m {
        let (mut ch, mut cl) = (vec![0.0; n], vec![0.0; n]);
        for p in 0..k {
            let aip = a[i * k + p];
            kernels::dd_row_update_portable(aip.hi, aip.lo, &bh[p * n..], &bl[p * n..], &mut ch, &mut cl);
        }
        for j in 0..n {
            c[i * n + j] = Dd { hi: ch[j], lo: cl[j] };
        }
    }
}
