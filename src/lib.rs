//! marginflow: gradient flow on two-layer leaky-ReLU networks, followed deep into the asymptotic
//! regime in normalized time, and checked against independently solved max-margin problems
//! (Frei, Vardi, Bartlett, Srebro, Hu, ICLR 2023).
#![warn(missing_docs)]
// Numerical kernels walk several arrays in lockstep by index; iterator chains would hide that.
#![allow(clippy::needless_range_loop)]

/// Evaluate `$body` with the type alias `$t` bound to the scalar of `$bits`: `f64` (53),
/// [`marginflow_solvers::Dd`] (106), [`marginflow_solvers::Qd`] (212), otherwise `rug::Float`
/// (feature `mpfr`; without it `$missing` is evaluated instead). The one place where a precision
/// in bits becomes a type: flow, maxmargin and descent all dispatch through it.
macro_rules! with_real {
    ($bits:expr, $t:ident => $body:expr, missing => $missing:expr) => {{
        match marginflow_solvers::Precision::from_bits($bits) {
            marginflow_solvers::Precision::F64 => {
                type $t = f64;
                $body
            }
            marginflow_solvers::Precision::DoubleDouble => {
                type $t = marginflow_solvers::Dd;
                $body
            }
            marginflow_solvers::Precision::QuadDouble => {
                type $t = marginflow_solvers::Qd;
                $body
            }
            marginflow_solvers::Precision::Mpfr(_) => {
                #[cfg(feature = "mpfr")]
                {
                    type $t = rug::Float;
                    $body
                }
                #[cfg(not(feature = "mpfr"))]
                {
                    $missing
                }
            }
        }
    }};
}
pub(crate) use with_real;

pub mod descent;
pub mod error;
pub mod experiments;
pub mod flow;
pub mod io;
pub mod maxmargin;
pub mod metrics;
pub mod model;
pub mod thresholds;

pub use error::{Error, Result};
