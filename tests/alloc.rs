//! No allocation per right-hand-side evaluation or per Dormand–Prince step after a warm-up
//! (issue 4): the flow's `FlowSystem::eval_inplace` on the problem (Gaussian n = 6,
//! d = 300, seed 1; width 4, leak 0.5) at f64 and, with `--features mpfr`, at 128 and 256 bits,
//! at margins q ≈ 10 (every log1p a full series) and q in the thousands; and steps of
//! `rk::Integrator` on the flow at widths 4 and 32.
//!
//! At MPFR precisions the one exception is MPFR's own exponential, which allocates big-integer
//! temporaries inside the library; the test asserts that those are the only allocations.
//!
//! Rust allocations are counted by a counting `#[global_allocator]`; GMP/MPFR allocations (every
//! `rug::Float` limb buffer, every MPFR temporary that does not fit on the stack) by wrapping
//! GMP's memory functions (`mp_set_memory_functions`). Counters are per thread, so the tests
//! can run in parallel.

use marginflow::flow::FlowSystem;
use marginflow::model::data::{generate, DataKind, GenSettings};
use marginflow::model::network::{ModelSettings, Network};
use marginflow_solvers::ode::OdeSystem;
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
    let mut y: Vec<T> = net.theory_pattern().iter().map(|&sji| T::from_f64(scale * f64::from(sji), prec)).collect();
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

/// Stops after a given number of observer calls (the first is at the start).
struct StopAfter(usize);

impl<T: Real, S: OdeSystem<T>> marginflow_solvers::ode::Observer<T, S> for StopAfter {
    fn on_step(&mut self, _: &S, _: &marginflow_solvers::ode::IntegratorState<T>) -> marginflow_solvers::ode::Control {
        if self.0 == 0 {
            return marginflow_solvers::ode::Control::Stop;
        }
        self.0 -= 1;
        marginflow_solvers::ode::Control::Continue
    }
}

/// What [`allocations_per_step`] saw in its measured window.
struct StepWindow {
    allocations: usize,
    rhs: u64,
    accepted: u64,
    rejected: u64,
    events: u64,
}

/// Allocations in `steps` accepted Dormand–Prince steps of the flow (events on, rtol 1e-12) after
/// `warm` warm-up steps, on the data (Gaussian n = 6, d = 300, seed 1; leak 0.5) at
/// `width`, from W0 of scale 1e-3.
fn allocations_per_step<T: Real>(prec: u32, width: usize, warm: usize, steps: usize) -> StepWindow {
    use marginflow_solvers::ode::{Horizon, IntegratorSettings, IntegratorState};
    use marginflow_solvers::rk::Integrator;
    use marginflow_solvers::tableau::Method;
    let data =
        generate(&GenSettings { kind: DataKind::Gaussian, n: 6, d: 300, seed: 1, ..Default::default() }).expect("data");
    let model = ModelSettings { width, leak: 0.5, ..Default::default() };
    let net: Network<T> = Network::new(&data, &model, prec).expect("network");
    let mn = net.m * net.n;
    let settings = IntegratorSettings { rtol: 1e-12, atol: 1e-14, ..Default::default() };
    let mut integ = Integrator::new(Method::Dopri5.tableau::<T>(1e-12, prec), settings, mn + 1, prec).expect("integ");
    let horizon = Horizon { s_end: Some(T::from_f64(1e6, prec)), component_reaches: None };
    let mut state = IntegratorState::new(T::zero(prec), vec![T::zero(prec); mn + 1]);
    let mut sys = FlowSystem::new(&net, &state.y[..mn]);
    integ.integrate(&mut sys, &mut state, &horizon, &mut StopAfter(warm));
    let st0 = state.stats.clone();
    let before = count();
    integ.integrate(&mut sys, &mut state, &horizon, &mut StopAfter(steps));
    StepWindow {
        allocations: count() - before,
        rhs: state.stats.rhs_evaluations - st0.rhs_evaluations,
        accepted: state.stats.accepted - st0.accepted,
        rejected: state.stats.rejected - st0.rejected,
        events: state.stats.events - st0.events,
    }
}

/// A Dormand–Prince step at f64 allocates nothing: 50 steps after a warm-up, through a second
/// `integrate` call (which reuses the buffers of the first), make no allocation.
#[test]
fn f64_integrator_steps_allocate_nothing() {
    let w = allocations_per_step::<f64>(53, 4, 200, 50);
    assert_eq!((w.accepted, w.events), (50, 0));
    // Six new stages per attempt (first same as last), none to restart the second call.
    assert_eq!(w.rhs, 6 * (w.accepted + w.rejected));
    assert_eq!(w.allocations, 0, "{} allocations in 50 f64 steps", w.allocations);
}

/// At MPFR precisions a Dormand–Prince step allocates nothing of its own: between 50 and 100
/// steps after the same warm-up (so that what `integrate` sets up per call cancels), the only
/// allocations are MPFR's exponential temporaries ((n + 1) exponentials per right-hand side), at
/// width 4 (25 unknowns) and width 32 (193 unknowns).
#[cfg(feature = "mpfr")]
#[test]
fn mpfr_integrator_steps_allocate_only_inside_mpfr_exp() {
    gmp_hooks::install();
    let n = 6;
    for prec in [128, 256] {
        let per_exp = allocations_per_exp(prec);
        for width in [4, 32] {
            let short = allocations_per_step::<rug::Float>(prec, width, 200, 50);
            let long = allocations_per_step::<rug::Float>(prec, width, 200, 100);
            // Rejected steps are steps too; events (which locate roots and restart) are not in scope.
            assert_eq!((long.accepted, long.events), (100, 0), "a window without events, width {width}");
            let steps = long.accepted - short.accepted;
            let rhs = (long.rhs - short.rhs) as usize;
            let extra = long.allocations - short.allocations;
            assert_eq!(
                extra,
                rhs * (n + 1) * per_exp,
                "{prec} bits, width {width}: {extra} allocations in {steps} steps with {rhs} right-hand sides"
            );
        }
    }
}
