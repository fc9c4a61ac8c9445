//! Matrix-product kernels for the f64 expansions, accumulating in the extended type.
//!
//! Double-double: B is split once per call into separate arrays of leading and trailing
//! components (structure of arrays) and each row of C is accumulated in two f64 arrays, so the
//! inner loop over the columns is straight-line f64 code that the compiler vectorizes; on x86-64
//! with AVX2 and FMA (detected at run time) the same loop is compiled with those features, and the
//! exact product error comes from one FMA instead of Dekker's split. Both give bitwise the same
//! result (the two-product error term is exact either way; Rust never contracts a·b + c on its
//! own). Per multiply–add: the product a·b to double-double (error ≤ 2u²|ab|, u = 2^−53, the
//! a_lo·b_lo term dropped) and the "sloppy" double-double sum, so each entry of C has the
//! classical dot-product bound |error| ≤ (k + 2)·4u²·Σ_p |a_ip||b_pj|.
//!
//! Quad-double: row-streamed i–p–j loops over `Copy` values with the Hida–Li–Bailey product and
//! sum inlined (their renormalization branches keep the compiler from vectorizing them).

use super::dd::Dd;
use super::eft::two_prod;
use super::qd::Qd;
use std::cell::RefCell;

thread_local! {
    /// Scratch for [`dd_gemm`]: B's components and one row of C, reused between calls (no
    /// allocation once it has grown to the largest product seen on this thread).
    static DD_SCRATCH: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// One row update c += a·b_row over the structure-of-arrays buffers (portable form).
#[inline(always)]
fn dd_row_update_portable(ah: f64, al: f64, bh: &[f64], bl: &[f64], ch: &mut [f64], cl: &mut [f64]) {
    let n = ch.len();
    let (bh, bl, cl) = (&bh[..n], &bl[..n], &mut cl[..n]);
    for j in 0..n {
        let (ph, pe) = two_prod(ah, bh[j]);
        let pl = pe + (ah * bl[j] + al * bh[j]);
        dd_sloppy_acc(&mut ch[j], &mut cl[j], ph, pl);
    }
}

/// (ch, cl) ← (ch, cl) + (ph, pl), the "sloppy" double-double sum.
#[inline(always)]
fn dd_sloppy_acc(ch: &mut f64, cl: &mut f64, ph: f64, pl: f64) {
    let s = *ch + ph;
    let v = s - *ch;
    let e = ((*ch - (s - v)) + (ph - v)) + (*cl + pl);
    let hi = s + e;
    *cl = e - (hi - s);
    *ch = hi;
}

/// [`dd_row_update_portable`] with the exact product error from one fused multiply–add.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dd_row_update_fma(ah: f64, al: f64, bh: &[f64], bl: &[f64], ch: &mut [f64], cl: &mut [f64]) {
    let n = ch.len();
    let (bh, bl, cl) = (&bh[..n], &bl[..n], &mut cl[..n]);
    for j in 0..n {
        let ph = ah * bh[j];
        let pe = ah.mul_add(bh[j], -ph);
        let pl = pe + (ah * bl[j] + al * bh[j]);
        dd_sloppy_acc(&mut ch[j], &mut cl[j], ph, pl);
    }
}

/// Whether the FMA kernel may run on this machine.
fn have_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// C (m×n) = A (m×k)·B (k×n), or C += A·B, row-major, in double-double.
pub(crate) fn dd_gemm(m: usize, k: usize, n: usize, a: &[Dd], b: &[Dd], c: &mut [Dd], accumulate: bool) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    let fma = have_fma();
    DD_SCRATCH.with(|cell| {
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
                #[cfg(target_arch = "x86_64")]
                if fma {
                    // SAFETY: the CPU has AVX2 and FMA (checked at run time just above).
                    unsafe { dd_row_update_fma(aip.hi, aip.lo, brh, brl, ch, cl) };
                    continue;
                }
                let _ = fma;
                dd_row_update_portable(aip.hi, aip.lo, brh, brl, ch, cl);
            }
            for (j, x) in crow.iter_mut().enumerate() {
                *x = Dd { hi: ch[j], lo: cl[j] };
            }
        }
    });
}

/// C (m×n) = A (m×k)·B (k×n), or C += A·B, row-major, in quad-double.
pub(crate) fn qd_gemm(m: usize, k: usize, n: usize, a: &[Qd], b: &[Qd], c: &mut [Qd], accumulate: bool) {
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

/// The portable double-double kernel alone (for the test that the FMA path is bitwise equal).
#[cfg(test)]
pub(crate) fn dd_gemm_portable(m: usize, k: usize, n: usize, a: &[Dd], b: &[Dd], c: &mut [Dd]) {
    let bh: Vec<f64> = b.iter().map(|x| x.hi).collect();
    let bl: Vec<f64> = b.iter().map(|x| x.lo).collect();
    for i in 0..m {
        let (mut ch, mut cl) = (vec![0.0; n], vec![0.0; n]);
        for p in 0..k {
            let aip = a[i * k + p];
            dd_row_update_portable(aip.hi, aip.lo, &bh[p * n..], &bl[p * n..], &mut ch, &mut cl);
        }
        for j in 0..n {
            c[i * n + j] = Dd { hi: ch[j], lo: cl[j] };
        }
    }
}
