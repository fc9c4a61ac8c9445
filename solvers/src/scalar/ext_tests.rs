//! Tests of the f64 expansions: against digits of constants published independently of this
//! code, exact identities, and (with `mpfr`) MPFR at 300 bits.

use super::ext::Expansion;
use super::{Dd, Qd, Real};

/// ln 2, e and √2 to 100 digits (standard tables).
const LN2: &str =
    "0.6931471805599453094172321214581765680755001343602552541206800094933936219696947156058633269964186875";
const E: &str = "2.718281828459045235360287471352662497757247093699959574966967627724076630353547594571382178525166427";
const SQRT2: &str =
    "1.414213562373095048801688724209698078569671875376948073176679737990732478462107038850387534327641573";

/// |a − b| / |b| in units of 2^−bits (as f64).
fn rel_ulps<T: Expansion>(a: &T, b: &T) -> f64 {
    let d = (*a - b).abs();
    let bits = a.precision() as i32;
    d.hi() / b.abs().hi() * 2f64.powi(bits)
}

fn p<T: Expansion>(s: &str) -> T {
    T::parse_decimal(s, T::of(0.0).precision()).expect("parses")
}

fn constants<T: Expansion>(tol: f64) {
    let prec = T::of(0.0).precision();
    let ln2 = T::ln2();
    assert!(rel_ulps(&ln2, &p(LN2)) < tol, "ln2 {}", ln2.to_decimal());
    let e = T::one(prec).exp();
    assert!(rel_ulps(&e, &p(E)) < tol, "e {}", e.to_decimal());
    let two = T::of(2.0);
    assert!(rel_ulps(&two.sqrt(), &p(SQRT2)) < tol, "sqrt2");
    assert!(rel_ulps(&two.ln(), &p(LN2)) < tol, "ln(2)");
    assert!(rel_ulps(&p::<T>(E).ln(), &T::one(prec)) < tol, "ln e");
}

fn identities<T: Expansion>(tol: f64) {
    let prec = T::of(0.0).precision();
    let mut x = 0.37_f64;
    for i in 0..300 {
        x = 3.9 * x * (1.0 - x);
        // A value with all components populated: x/7 at full precision, scaled.
        let v = T::of(x) / &T::of(7.0) * &T::of(((i % 41) as f64 - 20.0).exp2()) + &T::of(0.001);
        let s = T::of(if i % 2 == 0 { 1.0 } else { -1.0 });
        let w = v * &s;
        // (w/v)·v = w
        let q = (w / &T::of(3.3)) * &T::of(3.3);
        assert!(rel_ulps(&q, &w) < tol, "div {i}");
        // √v² = v
        assert!(rel_ulps(&(v.sqrt() * &v.sqrt()), &v) < tol, "sqrt {i}");
        // ln e^w = w (absolute, relative to max(|w|, 1))
        if w.abs().hi() < 550.0 {
            let back = w.exp().ln();
            let scale = if w.abs().hi() > 1.0 { w.abs() } else { T::one(prec) };
            let e = rel_ulps(&(back - &w + &scale), &scale);
            assert!(e < 4.0 * tol, "ln exp {i}: {} vs {}", back.to_decimal(), w.to_decimal());
        }
        // e^{a+b} = e^a e^b (the rounding of a + b costs |a + b| ulps: e^x has condition |x|)
        let a = T::of(x * 3.0 - 1.5) / &T::of(3.0);
        let lhs = (a + &w.mul_pow2(-8)).exp();
        let rhs = a.exp() * &w.mul_pow2(-8).exp();
        let cond = 1.0 + (a + &w.mul_pow2(-8)).abs().hi();
        assert!(rel_ulps(&lhs, &rhs) < 4.0 * tol * cond, "exp add {i}: {}", rel_ulps(&lhs, &rhs));
        // ln_1p and exp_m1 against their series at small arguments: t − t²/2 + t³/3 − …
        let t = v.mul_pow2(-40);
        let mut series = T::zero(prec);
        let mut pow = t;
        for k in 1..12 {
            let term = pow / &T::of(k as f64);
            if k % 2 == 1 {
                series += &term;
            } else {
                series -= &term;
            }
            pow *= &t;
        }
        assert!(
            rel_ulps(&t.ln_1p(), &series) < tol,
            "ln_1p {i}: {} vs {}",
            t.ln_1p().to_decimal(),
            series.to_decimal()
        );
        assert!(rel_ulps(&t.ln_1p().exp_m1(), &t) < 2.0 * tol, "exp_m1 {i}");
        // exact checkpoint text and decimal round trip
        assert_eq!(T::from_exact(&w.to_exact()), Some(w));
        let dec = T::parse_decimal(&w.to_decimal(), prec).unwrap();
        assert!(rel_ulps(&dec, &w) < 64.0, "decimal {i}: {}", w.to_decimal());
    }
    // ratio: 35/384 · 384 = 35
    let r = T::ratio(35, 384, prec);
    assert!(rel_ulps(&(r * &T::of(384.0)), &T::of(35.0)) < tol);
    // range edges behave like f64
    assert_eq!(T::of(-800.0).exp().hi(), 0.0);
    assert!(T::of(800.0).exp().hi().is_infinite());
    assert!(T::zero(prec).ln().hi() == f64::NEG_INFINITY);
    assert!(T::of(-1.0).ln().hi().is_nan());
    // digits printed
    let third = T::one(prec) / &T::of(3.0);
    let d = third.to_decimal();
    assert_eq!(d, format!("3.{}e-1", "3".repeat(T::DIGITS - 1)));
    assert_eq!(T::of(-2.5).to_decimal(), format!("-2.{}e0", format!("5{}", "0".repeat(T::DIGITS - 2))));
}

#[test]
fn dd_constants_and_identities() {
    constants::<Dd>(8.0);
    identities::<Dd>(16.0);
}

#[test]
fn qd_constants_and_identities() {
    constants::<Qd>(16.0);
    identities::<Qd>(32.0);
}

#[test]
fn dd_gemm_fma_path_is_bitwise_the_portable_path_and_accurate() {
    let (m, k, n) = (5, 20, 20);
    let a: Vec<Dd> = (0..m * k).map(|i| Dd::of((i as f64 * 0.37).sin()) / &Dd::of(3.0)).collect();
    let b: Vec<Dd> = (0..k * n).map(|i| Dd::of((i as f64 * 0.91).cos()) / &Dd::of(7.0)).collect();
    let mut c = vec![Dd::default(); m * n];
    Dd::gemm(m, k, n, &a, &b, &mut c, false);
    let mut c2 = vec![Dd::default(); m * n];
    super::dd::gemm_portable(m, k, n, &a, &b, &mut c2);
    assert_eq!(c, c2);
    // C += A·B once more: 2·(A·B)
    let mut c3 = c.clone();
    Dd::gemm(m, k, n, &a, &b, &mut c3, true);
    // against quad-double dot products: |error| ≤ (k + 2)·4u²·Σ|a||b| (twice that for C + A·B)
    for i in 0..m {
        for j in 0..n {
            let mut exact = Qd::default();
            let mut abs = 0.0;
            for p in 0..k {
                let (x, y) = (&a[i * k + p], &b[p * n + j]);
                exact += &(Qd([x.hi, x.lo, 0.0, 0.0]) * &Qd([y.hi, y.lo, 0.0, 0.0]));
                abs += (x.hi * y.hi).abs();
            }
            let got = Qd([c[i * n + j].hi, c[i * n + j].lo, 0.0, 0.0]);
            let err = (got - &exact).abs().0[0];
            let bound = (k + 2) as f64 * 4.0 * 2f64.powi(-106) * abs * 1.01;
            assert!(err <= bound, "{err:e}");
            let got2 = Qd([c3[i * n + j].hi, c3[i * n + j].lo, 0.0, 0.0]);
            let err2 = (got2 - &exact.mul_pow2(1)).abs().0[0];
            assert!(err2 <= 4.0 * bound, "{err2:e}");
            assert!(err > 0.0 || err2 >= 0.0);
        }
    }
}

#[test]
fn qd_gemm_matches_the_generic_loop() {
    let (m, k, n) = (3, 7, 4);
    let a: Vec<Qd> = (0..m * k).map(|i| Qd::of((i as f64).sin()) / &Qd::of(3.0)).collect();
    let b: Vec<Qd> = (0..k * n).map(|i| Qd::of((i as f64).cos()) / &Qd::of(7.0)).collect();
    let mut c = vec![Qd::default(); m * n];
    Qd::gemm(m, k, n, &a, &b, &mut c, false);
    for i in 0..m {
        for j in 0..n {
            let mut s = Qd::default();
            for q in 0..k {
                s.add_mul_mut(&a[i * k + q], &b[q * n + j]);
            }
            assert_eq!(s, c[i * n + j]);
        }
    }
}

#[cfg(feature = "mpfr")]
mod against_mpfr {
    use super::*;
    use rug::Float;

    const WIDE: u32 = 2400;

    fn to_float<T: Expansion>(x: &T, comps: &[f64]) -> Float {
        let _ = x;
        let mut f = Float::with_val(WIDE, 0);
        for c in comps {
            f += *c;
        }
        f
    }

    /// |got − want| / |want| at 300 bits, in units of 2^−bits.
    fn err(got: Float, want: &Float, bits: u32) -> f64 {
        let d = Float::with_val(WIDE, &got - want).abs() / Float::with_val(WIDE, want.clone().abs());
        (d * Float::with_val(WIDE, Float::i_exp(1, bits as i32))).to_f64()
    }

    fn check<T: Expansion>(comps: fn(&T) -> Vec<f64>, tol: f64) {
        let bits = T::of(0.0).precision();
        let mut x = 0.123_f64;
        let mut worst = [0.0f64; 8];
        for i in 0..400 {
            x = 3.99 * x * (1.0 - x);
            let scale = ((i % 61) as f64 - 30.0) * 0.5;
            let v = (T::of(x) / &T::of(13.0) + &T::of(0.01)) * &T::of(scale.exp2());
            let w = T::of(1.0) / &T::of(x + 0.5) - &T::of(0.9);
            let (fv, fw) = (to_float(&v, &comps(&v)), to_float(&w, &comps(&w)));
            let f = |t: T| to_float(&t, &comps(&t));
            let r300 = |y: Float| Float::with_val(300, y);
            let e = [
                err(f(v + &w), &r300(Float::with_val(WIDE, &fv + &fw)), bits)
                    * (Float::with_val(WIDE, &fv + &fw).abs().to_f64() / fv.to_f64().abs().max(fw.to_f64().abs())),
                err(f(v * &w), &r300(Float::with_val(WIDE, &fv * &fw)), bits),
                err(f(v / &w), &r300(Float::with_val(WIDE, &fv / &fw)), bits),
                err(f(v.sqrt()), &r300(fv.clone().sqrt()), bits),
                err(f(w.exp()), &r300(fw.clone().exp()), bits),
                err(f(v.ln()), &r300(fv.clone().ln()), bits) * fv.clone().ln().abs().to_f64().min(1.0),
                err(f(w.mul_pow2(-30).ln_1p()), &r300(Float::with_val(WIDE, &fw >> 30u32).ln_1p()), bits),
                err(f(w.mul_pow2(-30).exp_m1()), &r300(Float::with_val(WIDE, &fw >> 30u32).exp_m1()), bits),
            ];
            for (k, ek) in e.iter().enumerate() {
                worst[k] = worst[k].max(*ek);
            }
        }
        eprintln!("worst errors in units of 2^-{bits} (add, mul, div, sqrt, exp, ln, ln_1p, exp_m1): {worst:?}");
        for (k, wk) in worst.iter().enumerate() {
            assert!(*wk < tol, "op {k}: {wk}");
        }
    }

    #[test]
    fn dd_operations_match_mpfr_300() {
        check::<Dd>(|x| vec![x.hi, x.lo], 16.0);
    }

    #[test]
    fn qd_operations_match_mpfr_300() {
        check::<Qd>(|x| x.0.to_vec(), 64.0);
    }
}

/// Rough per-operation timings (not a test of correctness): `cargo test --release --lib
/// op_timings -- --ignored --nocapture`.
#[test]
#[ignore]
fn op_timings() {
    fn time<T: Expansion>(name: &str, f: impl Fn(&T) -> T) {
        let xs: Vec<T> = (0..1000).map(|i| T::of(0.001 * i as f64 - 0.3) / &T::of(3.0)).collect();
        let t = std::time::Instant::now();
        let mut acc = T::of(0.0);
        for _ in 0..20 {
            for x in &xs {
                acc += &f(x);
            }
        }
        eprintln!("{name}: {:.1} ns", t.elapsed().as_nanos() as f64 / 20000.0);
        std::hint::black_box(acc);
    }
    time::<Dd>("dd mul", |x| *x * x);
    time::<Dd>("dd add", |x| *x + x);
    time::<Dd>("dd div", |x| *x / &Dd::of(3.1));
    time::<Dd>("dd exp", |x| x.exp());
    time::<Dd>("dd ln", |x| (x.abs() + &Dd::of(0.1)).ln());
    time::<Dd>("dd ln_1p", |x| x.ln_1p());
    time::<Qd>("qd mul", |x| *x * x);
    time::<Qd>("qd add", |x| *x + x);
    time::<Qd>("qd div", |x| *x / &Qd::of(3.1));
    time::<Qd>("qd exp", |x| x.exp());
    time::<Qd>("qd ln", |x| (x.abs() + &Qd::of(0.1)).ln());
    time::<Qd>("qd ln_1p", |x| x.ln_1p());
}
