//! The project scalar: one trait for `f64` and, behind the `mpfr` feature, `rug::Float`.
//!
//! Values are `Clone`, never `Copy`; arithmetic takes its right operand by reference so that the
//! MPFR implementation can work in place (`a += &b`, `a.add_mul_mut(&b, &c)` computes `a += b·c`
//! with one rounding where the backend has a fused multiply–add). Constants are built at an explicit
//! precision in bits (`f64` ignores it and is always 53), so that tableau coefficients such as 35/384
//! are exact rationals rounded once at the working precision, never `f64` literals.
//!
//! Beside them, always built, the f64 expansions [`Dd`] (double-double, 106 bits) and [`Qd`]
//! (quad-double, 212 bits): pure Rust, f64's exponent range, a fraction of MPFR's cost.
//!
//! Imports go one way, each file only from those before it (and the [`Real`] trait here):
//! `eft` (error-free transformations) → `kernels` (f64-array row updates of the products) →
//! `ext` (elementary functions, division digits and decimal conversion, once for both
//! expansions) → `dd` → `qd` (whose starting values are double-double).

mod dd;
mod eft;
mod ext;
mod kernels;
mod qd;

pub use dd::{Dd, DD_BITS};
pub use qd::{Qd, QD_BITS};

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// Above this many rows and columns, `f64` singular values come from a bidiagonalization SVD
/// rather than one-sided Jacobi (see [`Real::large_singular_values`]).
pub const LARGE_SVD: usize = 64;

/// At most this many multiply–adds (m·k·n), the `f64` [`Real::gemm`] runs a plain loop
/// (no allocation) instead of `matrixmultiply` (which allocates packing buffers per call).
pub const SMALL_GEMM: usize = 4096;

/// Largest condition number λmax/λmin of the Gram matrix (κ² of the matrix, so κ ≤ 10) at which
/// [`Real::clustered_jacobi_start`] rotates the Jacobi start onto the Gram eigenvectors.
pub const PRECONDITION_MAX_GRAM_CONDITION: f64 = 100.0;

/// f64 products of at least this many multiply–adds run as two row halves on two threads
/// (the flow's B K at n = 200, m = 256 is 10^7; at 128³ = 2·10^6 the hand-off still costs more than it saves).
pub const PARALLEL_GEMM: usize = 1 << 22;

/// A real number type the whole pipeline is generic over.
pub trait Real:
    Clone
    + Debug
    + PartialOrd
    + Send
    + Sync
    + 'static
    + for<'a> AddAssign<&'a Self>
    + for<'a> SubAssign<&'a Self>
    + for<'a> MulAssign<&'a Self>
    + for<'a> DivAssign<&'a Self>
    + for<'a> Add<&'a Self, Output = Self>
    + for<'a> Sub<&'a Self, Output = Self>
    + for<'a> Mul<&'a Self, Output = Self>
    + for<'a> Div<&'a Self, Output = Self>
    + Neg<Output = Self>
{
    /// Precision of this value in bits (53 for `f64`).
    fn precision(&self) -> u32;
    /// `x` rounded to `prec` bits.
    fn from_f64(x: f64, prec: u32) -> Self;
    /// The exact rational `p/q` rounded once to `prec` bits.
    fn ratio(p: i64, q: i64, prec: u32) -> Self;
    /// Nearest `f64` (infinite or zero when outside the `f64` exponent range).
    fn to_f64(&self) -> f64;
    /// Overwrite with `other`, rounded to `self`'s precision.
    fn assign(&mut self, other: &Self);
    /// Overwrite with `x`, rounded to `self`'s precision.
    fn assign_f64(&mut self, x: f64);
    /// `self += a·b`.
    fn add_mul_mut(&mut self, a: &Self, b: &Self);
    /// e^self.
    fn exp(&self) -> Self;
    /// ln(self).
    fn ln(&self) -> Self;
    /// ln(1 + self), accurate for small arguments.
    fn ln_1p(&self) -> Self;
    /// e^self − 1, accurate for small arguments.
    fn exp_m1(&self) -> Self;
    /// √self.
    fn sqrt(&self) -> Self;
    /// |self|.
    fn abs(&self) -> Self;
    /// True unless NaN or infinite.
    fn is_finite(&self) -> bool;
    /// True for negative values (and −0).
    fn is_sign_negative(&self) -> bool;
    /// Decimal string with enough significant digits to round-trip at this precision.
    fn to_decimal(&self) -> String;
    /// Parse a decimal string at `prec` bits.
    fn parse_decimal(s: &str, prec: u32) -> Option<Self>;
    /// Exact, lossless text form (for checkpoints): `f64` as its bit pattern, MPFR as
    /// `precision:hexadecimal`.
    fn to_exact(&self) -> String;
    /// Inverse of [`Real::to_exact`].
    fn from_exact(s: &str) -> Option<Self>;

    /// Largest |q| for which e^{−|q|} keeps full precision in this type, so that loss terms may
    /// be formed directly rather than in the log domain; 0 means never (`f64`, whose log-domain
    /// path is the reference). MPFR (exponent range 2^±(2^30)): infinite, capped by the caller.
    /// Double-double and quad-double: 500 (e^{−500} ≈ 7e-218 keeps its trailing components
    /// above f64's underflow threshold 2.2e-308, so no bits are lost).
    fn direct_exp_range() -> f64 {
        0.0
    }

    /// self ← e^self, in place (no allocation for MPFR).
    fn exp_mut(&mut self) {
        let v = Real::exp(&*self);
        *self = v;
    }
    /// self ← ln(self), in place.
    fn ln_mut(&mut self) {
        let v = Real::ln(&*self);
        *self = v;
    }
    /// self ← ln(1 + self), in place.
    fn ln_1p_mut(&mut self) {
        let v = Real::ln_1p(&*self);
        *self = v;
    }
    /// self ← −self, in place (exact).
    fn neg_mut(&mut self) {
        let v = -self.clone();
        *self = v;
    }
    /// self ← |self|, in place (exact).
    fn abs_mut(&mut self) {
        let v = Real::abs(&*self);
        *self = v;
    }
    /// self ← a·b rounded once to `self`'s precision.
    fn assign_mul(&mut self, a: &Self, b: &Self) {
        self.assign(a);
        *self *= b;
    }
    /// self ← a/b rounded once to `self`'s precision.
    fn assign_div(&mut self, a: &Self, b: &Self) {
        self.assign(a);
        *self /= b;
    }
    /// self ← self/k for a positive integer k, rounded once (the same value as dividing by k
    /// built at this precision, without building it).
    fn div_u32_mut(&mut self, k: u32) {
        let d = Self::from_f64(k as f64, self.precision());
        *self /= &d;
    }

    /// Zero at `prec` bits.
    fn zero(prec: u32) -> Self {
        Self::from_f64(0.0, prec)
    }
    /// One at `prec` bits.
    fn one(prec: u32) -> Self {
        Self::from_f64(1.0, prec)
    }
    /// Zero at the precision of `self`.
    fn zero_like(&self) -> Self {
        Self::zero(self.precision())
    }
    /// Machine epsilon 2^(1−prec), exactly: a product of f64 powers of two 2^−k, k ≤ 1000.
    fn epsilon(prec: u32) -> Self {
        let mut e = Self::one(prec);
        let mut left = prec.saturating_sub(1) as i32;
        while left > 0 {
            let k = left.min(1000);
            e *= &Self::from_f64(2f64.powi(-k), prec);
            left -= k;
        }
        e
    }
    /// Larger of the two (by `PartialOrd`; `self` on ties or NaN).
    fn max_of(&self, other: &Self) -> Self {
        if other > self {
            other.clone()
        } else {
            self.clone()
        }
    }
    /// self ← √self.
    fn sqrt_mut(&mut self) {
        *self = self.sqrt();
    }
    /// The comparison of self with 0 (`None` for NaN), without building a zero.
    fn sign(&self) -> Option<std::cmp::Ordering> {
        self.partial_cmp(&Self::zero(self.precision()))
    }
    /// Smaller of the two.
    fn min_of(&self, other: &Self) -> Self {
        if other < self {
            other.clone()
        } else {
            self.clone()
        }
    }
    /// Row-major product C (m×n) = A (m×k) · B (k×n), or C += A·B when `accumulate`.
    /// The `f64` implementation uses a tuned kernel (`matrixmultiply`).
    fn gemm(m: usize, k: usize, n: usize, a: &[Self], b: &[Self], c: &mut [Self], accumulate: bool) {
        debug_assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
        for i in 0..m {
            let crow = &mut c[i * n..(i + 1) * n];
            if !accumulate {
                for x in crow.iter_mut() {
                    x.assign_f64(0.0);
                }
            }
            for p in 0..k {
                let aip = &a[i * k + p];
                let brow = &b[p * n..(p + 1) * n];
                for (cj, bpj) in crow.iter_mut().zip(brow) {
                    cj.add_mul_mut(aip, bpj);
                }
            }
        }
    }
    /// Singular values (descending) of a large row-major matrix by a faster method than the
    /// one-sided Jacobi of [`crate::linalg::singular_values`], or `None` to use Jacobi. `f64`
    /// takes it when min(rows, cols) > [`LARGE_SVD`]: Golub–Kahan bidiagonalization with implicit
    /// QR (nalgebra), absolute accuracy ε‖A‖ instead of Jacobi's relative accuracy, about 20×
    /// faster at 256×456. Other precisions always use Jacobi.
    fn large_singular_values(_rows: usize, _cols: usize, _data: &[Self]) -> Option<Vec<Self>> {
        None
    }

    /// For the one-sided Jacobi of [`crate::linalg::singular_values`] on the k columns g_j
    /// (the rows of `gt`, each of length `len`): when their Gram matrix G = [⟨g_i, g_j⟩] has
    /// condition number λmax/λmin ≤ [`PRECONDITION_MAX_GRAM_CONDITION`], the columns rotated onto
    /// G's eigenvectors V (new column j = Σ_i V_ij g_i), which Jacobi then finishes in about two
    /// sweeps instead of six or more; `None` otherwise, or at a precision without a fast
    /// symmetric eigensolver. `f64` computes V with nalgebra (Householder tridiagonalization and
    /// implicit QR). The rotation costs an absolute error of O(k ε σ1) in every σ, i.e. a relative
    /// error O(k ε κ) ≤ O(10 k ε) under the condition bound, the order Jacobi itself guarantees.
    /// A well-conditioned matrix with clustered singular values (nearly orthogonal rows, as a
    /// random initialization in high dimension) is exactly where plain Jacobi is slowest.
    fn clustered_jacobi_start(_k: usize, _len: usize, _gt: &[Self]) -> Option<Vec<Self>> {
        None
    }

    /// Row-major product C (m×n) = A (m×k) · Bᵀ for B (n×k): c_ij = Σ_p a_ip b_jp, the sum in
    /// increasing p (as [`Real::gemm`] with B transposed). The `f64` implementation uses
    /// `matrixmultiply` with B read through strides (no transposed copy).
    fn gemm_nt(m: usize, k: usize, n: usize, a: &[Self], b: &[Self], c: &mut [Self]) {
        debug_assert!(a.len() >= m * k && b.len() >= n * k && c.len() >= m * n);
        for i in 0..m {
            let arow = &a[i * k..(i + 1) * k];
            for j in 0..n {
                let cij = &mut c[i * n + j];
                cij.assign_f64(0.0);
                for (x, y) in arow.iter().zip(&b[j * k..(j + 1) * k]) {
                    cij.add_mul_mut(x, y);
                }
            }
        }
    }
}

impl Real for f64 {
    fn precision(&self) -> u32 {
        53
    }
    fn from_f64(x: f64, _prec: u32) -> Self {
        x
    }
    fn ratio(p: i64, q: i64, _prec: u32) -> Self {
        p as f64 / q as f64
    }
    fn to_f64(&self) -> f64 {
        *self
    }
    fn assign(&mut self, other: &Self) {
        *self = *other;
    }
    fn assign_f64(&mut self, x: f64) {
        *self = x;
    }
    #[inline]
    fn add_mul_mut(&mut self, a: &Self, b: &Self) {
        *self += a * b;
    }
    fn exp(&self) -> Self {
        f64::exp(*self)
    }
    fn ln(&self) -> Self {
        f64::ln(*self)
    }
    fn ln_1p(&self) -> Self {
        f64::ln_1p(*self)
    }
    fn exp_m1(&self) -> Self {
        f64::exp_m1(*self)
    }
    fn sqrt(&self) -> Self {
        f64::sqrt(*self)
    }
    fn abs(&self) -> Self {
        f64::abs(*self)
    }
    fn is_finite(&self) -> bool {
        f64::is_finite(*self)
    }
    fn is_sign_negative(&self) -> bool {
        f64::is_sign_negative(*self)
    }
    fn sign(&self) -> Option<std::cmp::Ordering> {
        self.partial_cmp(&0.0)
    }
    fn to_decimal(&self) -> String {
        format!("{:e}", self)
    }
    fn parse_decimal(s: &str, _prec: u32) -> Option<Self> {
        s.trim().parse().ok()
    }
    fn to_exact(&self) -> String {
        format!("{:016x}", self.to_bits())
    }
    fn from_exact(s: &str) -> Option<Self> {
        u64::from_str_radix(s, 16).ok().map(f64::from_bits)
    }
    fn epsilon(_prec: u32) -> Self {
        f64::EPSILON
    }
    #[inline]
    fn exp_mut(&mut self) {
        *self = f64::exp(*self);
    }
    #[inline]
    fn ln_mut(&mut self) {
        *self = f64::ln(*self);
    }
    #[inline]
    fn ln_1p_mut(&mut self) {
        *self = f64::ln_1p(*self);
    }
    #[inline]
    fn neg_mut(&mut self) {
        *self = -*self;
    }
    #[inline]
    fn abs_mut(&mut self) {
        *self = f64::abs(*self);
    }
    #[inline]
    fn assign_mul(&mut self, a: &Self, b: &Self) {
        *self = a * b;
    }
    #[inline]
    fn assign_div(&mut self, a: &Self, b: &Self) {
        *self = a / b;
    }
    #[inline]
    fn div_u32_mut(&mut self, k: u32) {
        *self /= k as f64;
    }
    fn gemm(m: usize, k: usize, n: usize, a: &[Self], b: &[Self], c: &mut [Self], accumulate: bool) {
        assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
        if m == 0 || n == 0 {
            return;
        }
        if m * k * n <= SMALL_GEMM {
            // matrixmultiply allocates its packing buffers on every call; below this size the
            // plain row-major loop is as fast and allocates nothing.
            for i in 0..m {
                let crow = &mut c[i * n..(i + 1) * n];
                if !accumulate {
                    crow.fill(0.0);
                }
                for p in 0..k {
                    let aip = a[i * k + p];
                    for (cj, bpj) in crow.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                        *cj += aip * bpj;
                    }
                }
            }
            return;
        }
        let beta = if accumulate { 1.0 } else { 0.0 };
        dgemm_strided(m, k, n, a, b, (n as isize, 1), beta, c);
    }
    fn large_singular_values(rows: usize, cols: usize, data: &[Self]) -> Option<Vec<Self>> {
        if rows.min(cols) <= LARGE_SVD {
            return None;
        }
        let mut sv: Vec<f64> =
            nalgebra::DMatrix::from_row_slice(rows, cols, data).singular_values().iter().copied().collect();
        sv.sort_by(|a, b| b.total_cmp(a));
        Some(sv)
    }
    fn clustered_jacobi_start(k: usize, len: usize, gt: &[Self]) -> Option<Vec<Self>> {
        if k < 2 {
            return None;
        }
        let mut gram = vec![0.0; k * k];
        Self::gemm_nt(k, len, k, gt, gt, &mut gram);
        if !gram.iter().all(|g| g.is_finite()) {
            return None;
        }
        let eig = nalgebra::DMatrix::from_row_slice(k, k, &gram).try_symmetric_eigen(f64::EPSILON, 100 * k)?;
        let (lo, hi) = eig.eigenvalues.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &l| (lo.min(l), hi.max(l)));
        if !(eig.eigenvalues.iter().all(|l| l.is_finite()) && lo > 0.0 && hi <= PRECONDITION_MAX_GRAM_CONDITION * lo) {
            return None;
        }
        // Row j of the result is Σ_i V_ij g_i: (Vᵀ gt), with V column-major in nalgebra, so
        // Vᵀ's row-major data is V's storage.
        let mut out = vec![0.0; k * len];
        Self::gemm(k, k, len, eig.eigenvectors.as_slice(), gt, &mut out, false);
        Some(out)
    }
    fn gemm_nt(m: usize, k: usize, n: usize, a: &[Self], b: &[Self], c: &mut [Self]) {
        assert!(a.len() >= m * k && b.len() >= n * k && c.len() >= m * n);
        if m == 0 || n == 0 {
            return;
        }
        // Bᵀ (k×n) read from the n×k row-major b: row stride 1, column stride k.
        dgemm_strided(m, k, n, a, b, (1, k as isize), 0.0, c);
    }
}

/// C (m×n, row-major) = A (m×k, row-major) · B + β·C through `matrixmultiply`, with B (k×n) read
/// at the given (row, column) strides. Callers assert the slice lengths.
#[allow(clippy::too_many_arguments)]
fn dgemm_strided(
    m: usize,
    k: usize,
    n: usize,
    a: &[f64],
    b: &[f64],
    b_strides: (isize, isize),
    beta: f64,
    c: &mut [f64],
) {
    if m >= 16 && m * k * n >= PARALLEL_GEMM {
        // Two halves of the rows of A and C on two threads (the machines have two cores; each
        // half keeps enough rows to amortize packing B): each entry of C is computed exactly as
        // in one call (the same k order), so the result does not depend on the split.
        let top = m / 2;
        let (c_top, c_bottom) = c.split_at_mut(top * n);
        let (a_top, a_bottom) = a.split_at(top * k);
        rayon::join(
            || dgemm_one(top, k, n, a_top, b, b_strides, beta, c_top),
            || dgemm_one(m - top, k, n, a_bottom, b, b_strides, beta, c_bottom),
        );
    } else {
        dgemm_one(m, k, n, a, b, b_strides, beta, c);
    }
}

/// [`dgemm_strided`] as one `matrixmultiply` call.
#[allow(clippy::too_many_arguments)]
fn dgemm_one(m: usize, k: usize, n: usize, a: &[f64], b: &[f64], b_strides: (isize, isize), beta: f64, c: &mut [f64]) {
    // SAFETY: the callers assert that a holds m·k, b the k·n elements its strides reach, and c m·n
    // values; c is a distinct mutable borrow, so it aliases neither a nor b.
    unsafe {
        matrixmultiply::dgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            b_strides.0,
            b_strides.1,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

#[cfg(feature = "mpfr")]
mod mpfr_impl {
    use super::Real;
    use rug::float::Round;
    use rug::ops::AssignRound;
    use rug::Float;

    impl Real for Float {
        fn precision(&self) -> u32 {
            self.prec()
        }
        fn from_f64(x: f64, prec: u32) -> Self {
            Float::with_val(prec, x)
        }
        /// p and q are exact at ≥ 64 bits; one correctly rounded division then rounds p/q once
        /// (rug's `rational` feature, and with it `rug::Rational`, is not enabled).
        fn ratio(p: i64, q: i64, prec: u32) -> Self {
            let wide = prec.max(64);
            let num = Float::with_val(wide, p);
            let den = Float::with_val(wide, q);
            Float::with_val(prec, &num / &den)
        }
        fn to_f64(&self) -> f64 {
            Float::to_f64(self)
        }
        fn assign(&mut self, other: &Self) {
            self.assign_round(other, Round::Nearest);
        }
        fn assign_f64(&mut self, x: f64) {
            self.assign_round(x, Round::Nearest);
        }
        #[inline]
        fn add_mul_mut(&mut self, a: &Self, b: &Self) {
            *self += a * b;
        }
        fn exp(&self) -> Self {
            self.clone().exp()
        }
        fn ln(&self) -> Self {
            self.clone().ln()
        }
        fn ln_1p(&self) -> Self {
            self.clone().ln_1p()
        }
        fn exp_m1(&self) -> Self {
            self.clone().exp_m1()
        }
        fn sqrt(&self) -> Self {
            self.clone().sqrt()
        }
        fn abs(&self) -> Self {
            self.clone().abs()
        }
        fn is_finite(&self) -> bool {
            Float::is_finite(self)
        }
        fn is_sign_negative(&self) -> bool {
            Float::is_sign_negative(self)
        }
        fn sqrt_mut(&mut self) {
            Float::sqrt_mut(self);
        }
        fn sign(&self) -> Option<std::cmp::Ordering> {
            self.cmp0()
        }
        fn to_decimal(&self) -> String {
            self.to_string_radix(10, None)
        }
        fn parse_decimal(s: &str, prec: u32) -> Option<Self> {
            Float::parse(s.trim()).ok().map(|p| Float::with_val(prec, p))
        }
        fn to_exact(&self) -> String {
            format!("{}:{}", self.prec(), self.to_string_radix(16, None))
        }
        fn from_exact(s: &str) -> Option<Self> {
            let (p, v) = s.split_once(':')?;
            let prec: u32 = p.parse().ok()?;
            let parsed = Float::parse_radix(v, 16).ok()?;
            Some(Float::with_val(prec, parsed))
        }
        fn epsilon(prec: u32) -> Self {
            Float::with_val(prec, Float::i_exp(1, 1 - prec as i32))
        }
        fn direct_exp_range() -> f64 {
            f64::INFINITY
        }
        #[inline]
        fn exp_mut(&mut self) {
            Float::exp_mut(self);
        }
        #[inline]
        fn ln_mut(&mut self) {
            Float::ln_mut(self);
        }
        #[inline]
        fn ln_1p_mut(&mut self) {
            Float::ln_1p_mut(self);
        }
        #[inline]
        fn neg_mut(&mut self) {
            rug::ops::NegAssign::neg_assign(self);
        }
        #[inline]
        fn abs_mut(&mut self) {
            Float::abs_mut(self);
        }
        #[inline]
        fn assign_mul(&mut self, a: &Self, b: &Self) {
            self.assign_round(a * b, Round::Nearest);
        }
        #[inline]
        fn assign_div(&mut self, a: &Self, b: &Self) {
            self.assign_round(a / b, Round::Nearest);
        }
        #[inline]
        fn div_u32_mut(&mut self, k: u32) {
            *self /= k;
        }
    }
}

/// Scalar chosen at run time from a precision in bits: 53 selects `f64`, 106 double-double,
/// 212 quad-double, anything else MPFR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Precision {
    /// IEEE double.
    F64,
    /// Double-double ([`Dd`], 106 bits).
    DoubleDouble,
    /// Quad-double ([`Qd`], 212 bits).
    QuadDouble,
    /// MPFR with this many bits.
    Mpfr(u32),
}

impl Precision {
    /// 53 → `F64`, 106 → `DoubleDouble`, 212 → `QuadDouble`, anything else → `Mpfr(bits)`.
    pub fn from_bits(bits: u32) -> Self {
        match bits {
            53 => Precision::F64,
            DD_BITS => Precision::DoubleDouble,
            QD_BITS => Precision::QuadDouble,
            b => Precision::Mpfr(b),
        }
    }
    /// The precision in bits.
    pub fn bits(self) -> u32 {
        match self {
            Precision::F64 => 53,
            Precision::DoubleDouble => DD_BITS,
            Precision::QuadDouble => QD_BITS,
            Precision::Mpfr(b) => b,
        }
    }
    /// Whether this build can compute at this precision (MPFR needs the `mpfr` feature).
    pub fn available(self) -> bool {
        !matches!(self, Precision::Mpfr(_)) || cfg!(feature = "mpfr")
    }
    /// The name reported as `arithmetic` in summaries: "f64", "double-double", "quad-double"
    /// or "mpfr".
    pub fn arithmetic(self) -> &'static str {
        match self {
            Precision::F64 => "f64",
            Precision::DoubleDouble => "double-double",
            Precision::QuadDouble => "quad-double",
            Precision::Mpfr(_) => "mpfr",
        }
    }
}

/// Operator impls (`+=`, `-=`, `*=`, `/=` and `+ - * /` by reference) of an f64 expansion from
/// its `add`, `mul` and `div` functions (subtraction is addition of the negation, exact).
macro_rules! impl_expansion_ops {
    ($t:ty, $add:ident, $mul:ident, $div:ident) => {
        impl<'a> std::ops::AddAssign<&'a $t> for $t {
            #[inline(always)]
            fn add_assign(&mut self, o: &'a $t) {
                *self = <$t>::$add(*self, *o);
            }
        }
        impl<'a> std::ops::SubAssign<&'a $t> for $t {
            #[inline(always)]
            fn sub_assign(&mut self, o: &'a $t) {
                *self = <$t>::$add(*self, -*o);
            }
        }
        impl<'a> std::ops::MulAssign<&'a $t> for $t {
            #[inline(always)]
            fn mul_assign(&mut self, o: &'a $t) {
                *self = <$t>::$mul(*self, *o);
            }
        }
        impl<'a> std::ops::DivAssign<&'a $t> for $t {
            #[inline(always)]
            fn div_assign(&mut self, o: &'a $t) {
                *self = <$t>::$div(*self, *o);
            }
        }
        impl<'a> std::ops::Add<&'a $t> for $t {
            type Output = $t;
            #[inline(always)]
            fn add(self, o: &'a $t) -> $t {
                <$t>::$add(self, *o)
            }
        }
        impl<'a> std::ops::Sub<&'a $t> for $t {
            type Output = $t;
            #[inline(always)]
            fn sub(self, o: &'a $t) -> $t {
                <$t>::$add(self, -*o)
            }
        }
        impl<'a> std::ops::Mul<&'a $t> for $t {
            type Output = $t;
            #[inline(always)]
            fn mul(self, o: &'a $t) -> $t {
                <$t>::$mul(self, *o)
            }
        }
        impl<'a> std::ops::Div<&'a $t> for $t {
            type Output = $t;
            #[inline(always)]
            fn div(self, o: &'a $t) -> $t {
                <$t>::$div(self, *o)
            }
        }
    };
}
use impl_expansion_ops;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f64_exact_round_trip() {
        for x in [0.1, -3.5e-300, f64::MAX, 1.0 / 3.0] {
            assert_eq!(f64::from_exact(&x.to_exact()), Some(x));
        }
    }

    #[test]
    fn gemm_matches_naive() {
        let (m, k, n) = (3, 4, 5);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64).cos()).collect();
        let mut c = vec![0.0; m * n];
        f64::gemm(m, k, n, &a, &b, &mut c, false);
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
                assert!((c[i * n + j] - s).abs() < 1e-14);
            }
        }
    }

    #[test]
    fn two_thread_gemm_is_bitwise_the_one_thread_product() {
        // 256×200×200 is above PARALLEL_GEMM; each single row (m = 1) is one matrixmultiply call.
        let (m, k, n) = (256, 200, 200);
        assert!(m * k * n >= PARALLEL_GEMM && k * n < PARALLEL_GEMM);
        let a: Vec<f64> = (0..m * k).map(|i| ((i * 7919) % 1013) as f64 / 1013.0 - 0.5).collect();
        let b: Vec<f64> = (0..k * n).map(|i| ((i * 104_729) % 997) as f64 / 997.0 - 0.5).collect();
        let mut c = vec![0.25; m * n];
        f64::gemm(m, k, n, &a, &b, &mut c, true);
        for i in 0..m {
            let mut row = vec![0.25; n];
            f64::gemm(1, k, n, &a[i * k..(i + 1) * k], &b, &mut row, true);
            assert!(row.iter().zip(&c[i * n..(i + 1) * n]).all(|(x, y)| x.to_bits() == y.to_bits()), "row {i}");
        }
    }

    #[test]
    fn epsilon_is_two_to_one_minus_prec() {
        assert_eq!(<f64 as Real>::epsilon(53), f64::EPSILON);
        #[cfg(feature = "mpfr")]
        for prec in [64u32, 256, 1500] {
            let e = <rug::Float as Real>::epsilon(prec);
            assert_eq!(e, rug::Float::with_val(prec, rug::Float::i_exp(1, 1 - prec as i32)), "{prec} bits");
        }
    }

    #[test]
    fn gemm_nt_matches_gemm_of_the_transpose() {
        let (m, k, n) = (3, 5, 4);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.7).sin()).collect();
        let b: Vec<f64> = (0..n * k).map(|i| (i as f64 * 1.3).cos()).collect();
        let bt: Vec<f64> = (0..k * n).map(|idx| b[(idx % n) * k + idx / n]).collect();
        let (mut c1, mut c2) = (vec![0.0; m * n], vec![0.0; m * n]);
        f64::gemm_nt(m, k, n, &a, &b, &mut c1);
        f64::gemm(m, k, n, &a, &bt, &mut c2, false);
        for (x, y) in c1.iter().zip(&c2) {
            assert!((x - y).abs() < 1e-14, "{x} vs {y}");
        }
    }

    #[cfg(feature = "mpfr")]
    #[test]
    fn mpfr_exact_round_trip_and_ratio() {
        use rug::Float;
        let x = <Float as Real>::ratio(35, 384, 256);
        let y = Float::from_exact(&x.to_exact()).unwrap();
        assert_eq!(x, y);
        assert_eq!(y.prec(), 256);
        let back = y * &Float::with_val(256, 384);
        assert_eq!(back, 35);
    }
}

#[cfg(test)]
mod ext_tests;
