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
//! This file holds the f64-array row updates; the drivers over `Dd` and `Qd` values are
//! `dd::gemm` and `qd::gemm` (quad-double: row-streamed i–p–j loops with the Hida–Li–Bailey
//! product and sum inlined; their renormalization branches keep the compiler from vectorizing
//! them). Imports: `eft` only.

use super::eft::two_prod;

/// One row update c += a·b_row over the structure-of-arrays buffers (portable form).
#[inline(always)]
pub(crate) fn dd_row_update_portable(ah: f64, al: f64, bh: &[f64], bl: &[f64], ch: &mut [f64], cl: &mut [f64]) {
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
pub(crate) fn have_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// c += a·b_row with (ah, al) = a: the FMA form where `fma` (from [`have_fma`]), else portable.
#[inline(always)]
pub(crate) fn dd_row_update(fma: bool, ah: f64, al: f64, bh: &[f64], bl: &[f64], ch: &mut [f64], cl: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if fma {
        // SAFETY: the caller read `fma` from `have_fma`: the CPU has AVX2 and FMA.
        unsafe { dd_row_update_fma(ah, al, bh, bl, ch, cl) };
        return;
    }
    let _ = fma;
    dd_row_update_portable(ah, al, bh, bl, ch, cl);
}
