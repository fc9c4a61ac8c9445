//! No allocation per right-hand-side evaluation after a warm-up call (issue 4): the flow's
//! `FlowSystem::eval_inplace` on the problem (Gaussian n = 6, d = 300, seed 1; width 4,
//! leak 0.5) at f64 and, with `--features mpfr`, at 128 and 256 bits, at margins q ≈ 10 (every
//! log1p a full series) and q in the thousands.
//!
//! At MPFR precisions the one exception is MPFR's own exponential, which allocates big-integer
//! temporaries inside the library; the test asserts that those are the only allocations.
//!
//! Rust allocations are counted by a counting `#[global_allocator]`; GMP/MPFR allocations (every
//! `rug::Float` limb buffer, every MPFR temporary that does not fit on the stack) by wrapping
//! GMP's memory functions (`mp_set_memory_functions`). Counters are per thread, so the tests
//! can run in parallel.

use marginflow::data::{generate, DataKind, GenSettings};
use marginflow::flow::FlowSystem;
use marginflow::network::{ModelSettings, Network};
use marginflow_solvers::rk::OdeSystem;
use marginflow_solvers::Real;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn bump() {
    // try_with: the allocator also runs while thread-locals are torn down.
    let _ = COUNT.try_with(|c| c.set(c.get() + 1));
}

fn count() -> usize {
    COUNT.with(|c| c.get())
}

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[cfg(feature = "mpfr")]
mod gmp_hooks {
    //! GMP's `mp_set_memory_functions`, declared here (the symbol is in the GMP that rug links
    //! statically) so that the test needs no direct dependency on gmp-mpfr-sys.
    use std::ffi::c_void;
    use std::sync::Once;

    type AllocFn = unsafe extern "C" fn(usize) -> *mut c_void;
    type ReallocFn = unsafe extern "C" fn(*mut c_void, usize, usize) -> *mut c_void;
    type FreeFn = unsafe extern "C" fn(*mut c_void, usize);

    extern "C" {
        #[link_name = "__gmp_set_memory_functions"]
        fn set_memory_functions(a: Option<AllocFn>, r: Option<ReallocFn>, f: Option<FreeFn>);
        #[link_name = "__gmp_get_memory_functions"]
        fn get_memory_functions(a: *mut Option<AllocFn>, r: *mut Option<ReallocFn>, f: *mut Option<FreeFn>);
    }

    static mut ORIG: (Option<AllocFn>, Option<ReallocFn>, Option<FreeFn>) = (None, None, None);

    unsafe extern "C" fn alloc(n: usize) -> *mut c_void {
        super::bump();
        unsafe { (ORIG.0.unwrap())(n) }
    }
    unsafe extern "C" fn realloc(p: *mut c_void, old: usize, new: usize) -> *mut c_void {
        super::bump();
        unsafe { (ORIG.1.unwrap())(p, old, new) }
    }
    unsafe extern "C" fn free(p: *mut c_void, n: usize) {
        unsafe { (ORIG.2.unwrap())(p, n) }
    }

    /// Route GMP's (and so MPFR's) allocations through the counter, once per process.
    pub fn install() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| unsafe {
            let (mut a, mut r, mut f) = (None, None, None);
            get_memory_functions(&mut a, &mut r, &mut f);
            ORIG = (a, r, f);
            set_memory_functions(Some(alloc), Some(realloc), Some(free));
        });
    }
}

/// Allocations during `calls` evaluations after one warm-up evaluation, at state
/// B_ji = scale·sign(a_j) y_i, u = 3 (the states of benches/rhs.rs).
fn allocations_per_rhs<T: Real>(prec: u32, scale: f64, calls: usize) -> (usize, Vec<f64>) {
    let data =
        generate(&GenSettings { kind: DataKind::Gaussian, n: 6, d: 300, seed: 1, ..Default::default() }).expect("data");
    let model = ModelSettings { width: 4, leak: 0.5, ..Default::default() };
    let net: Network<T> = Network::new(&data, &model, prec).expect("network");
    let (m, n) = (net.m, net.n);
    let mut y: Vec<T> = Vec::with_capacity(m * n + 1);
    for j in 0..m {
        for i in 0..n {
            y.push(T::from_f64(scale * net.a_f64[j].signum() * data.y[i], prec));
        }
    }
    y.push(T::from_f64(3.0, prec));
    let mut sys = FlowSystem::new(&net, &y[..m * n]);
    let mut dy = vec![T::zero(prec); m * n + 1];
    let s = T::from_f64(1.0, prec);
    sys.eval_inplace(&s, &y, &mut dy);
    let before = count();
    for _ in 0..calls {
        sys.eval_inplace(&s, &y, &mut dy);
    }
    let allocations = count() - before;
    (allocations, dy.iter().map(Real::to_f64).collect())
}

/// The counter sees allocations (so that a zero below means something).
#[test]
fn counter_counts() {
    let before = count();
    let v: Vec<u64> = std::hint::black_box(vec![1, 2, 3]);
    assert!(count() > before, "{v:?}");
    #[cfg(feature = "mpfr")]
    {
        gmp_hooks::install();
        let before = count();
        let x = std::hint::black_box(rug::Float::with_val(256, 1.5));
        assert!(count() > before, "a 256-bit Float allocates its limbs through GMP: {x}");
    }
}

#[test]
fn f64_rhs_allocates_nothing() {
    for scale in [0.02, 5.0] {
        let (allocs, dy) = allocations_per_rhs::<f64>(53, scale, 10);
        // dB is finite and nonzero (du/ds = n e^{−u}/(nL) overflows f64 at q ~ 1e3).
        let db = &dy[..dy.len() - 1];
        assert!(db.iter().all(|v| v.is_finite() && *v != 0.0), "{dy:?}");
        assert_eq!(allocs, 0, "scale {scale}: {allocs} allocations in 10 f64 evaluations");
    }
}

/// GMP allocations inside one MPFR exponential at `prec` bits (mpfr_exp's mpz temporaries;
/// MPFR 4 allocates 3 at 128 and 256 bits), after a warm-up call that fills MPFR's constant caches.
#[cfg(feature = "mpfr")]
fn allocations_per_exp(prec: u32) -> usize {
    let mut x = rug::Float::with_val(prec, -10.3);
    x.exp_mut();
    let mut x = rug::Float::with_val(prec, -7.1);
    let before = count();
    x.exp_mut();
    count() - before
}

/// At 128 and 256 bits the right-hand side itself allocates nothing: the only allocations left
/// are the temporaries inside MPFR's exponential, of which one evaluation calls n + 1
/// (e^{−|q_i|} per point, e^{−u} for du/ds).
#[cfg(feature = "mpfr")]
#[test]
fn mpfr_rhs_allocates_only_inside_mpfr_exp() {
    gmp_hooks::install();
    let (n, calls) = (6, 10);
    for prec in [128, 256] {
        let per_exp = allocations_per_exp(prec);
        for scale in [0.02, 5.0] {
            let (allocs, dy) = allocations_per_rhs::<rug::Float>(prec, scale, calls);
            let (_, dy64) = allocations_per_rhs::<f64>(53, scale, 1);
            // The same dB/ds as f64's log-domain path, to f64's accuracy.
            for (a, b) in dy.iter().zip(&dy64).take(dy.len() - 1) {
                assert!((a - b).abs() <= 1e-11 * b.abs(), "{prec} bits, scale {scale}: {a} vs {b}");
            }
            assert!(dy[dy.len() - 1] > 0.0);
            assert_eq!(
                allocs,
                calls * (n + 1) * per_exp,
                "{prec} bits, scale {scale}: {allocs} allocations in {calls} evaluations, \
                 {per_exp} per MPFR exponential"
            );
        }
    }
}
