//! Butcher tableaux of embedded explicit Runge–Kutta pairs, built as exact rationals rounded once
//! at the working precision.

use crate::scalar::Real;

/// How a method provides values inside an accepted step.
#[derive(Clone, Debug)]
pub enum Dense<T> {
    /// Dormand–Prince's fourth-order continuous extension (Hairer–Nørsett–Wanner I, II.6,
    /// routine CONTD5) with coefficients `d` for stages 1..7 (d2 = 0).
    DormandPrince {
        /// The coefficients d_1..d_7.
        d: Vec<T>,
    },
    /// No continuous extension: values inside a step come from re-stepping with the method itself
    /// (full order, more right-hand-side evaluations).
    Restep,
}

/// An embedded explicit Runge–Kutta pair.
#[derive(Clone, Debug)]
pub struct Tableau<T> {
    /// Short name (as in `--method`).
    pub name: &'static str,
    /// Order p of the propagated solution.
    pub order: u32,
    /// Order of the embedded solution (the error estimate is O(h^(embedded_order+1))).
    pub embedded_order: u32,
    /// Nodes c_i.
    pub c: Vec<T>,
    /// Strictly lower-triangular coupling a_ij, row i holds i entries.
    pub a: Vec<Vec<T>>,
    /// Weights b_i of the propagated solution.
    pub b: Vec<T>,
    /// Error weights e_i = b_i − b̂_i.
    pub e: Vec<T>,
    /// First same as last: the last stage is f(s + h, y_new) and row a_last equals b.
    pub fsal: bool,
    /// Continuous extension.
    pub dense: Dense<T>,
}

impl<T: Real> Tableau<T> {
    /// Number of stages.
    pub fn stages(&self) -> usize {
        self.c.len()
    }
}

fn r<T: Real>(p: i64, q: i64, prec: u32) -> T {
    T::ratio(p, q, prec)
}

/// Dormand–Prince 5(4) (Dormand & Prince 1980, J. Comput. Appl. Math. 6), FSAL, seven stages,
/// with Shampine's dense output as in Hairer–Nørsett–Wanner's DOPRI5.
pub fn dopri5<T: Real>(prec: u32) -> Tableau<T> {
    let rr = |p, q| r::<T>(p, q, prec);
    let z = || T::zero(prec);
    let c = vec![z(), rr(1, 5), rr(3, 10), rr(4, 5), rr(8, 9), rr(1, 1), rr(1, 1)];
    let a = vec![
        vec![],
        vec![rr(1, 5)],
        vec![rr(3, 40), rr(9, 40)],
        vec![rr(44, 45), rr(-56, 15), rr(32, 9)],
        vec![rr(19372, 6561), rr(-25360, 2187), rr(64448, 6561), rr(-212, 729)],
        vec![rr(9017, 3168), rr(-355, 33), rr(46732, 5247), rr(49, 176), rr(-5103, 18656)],
        vec![rr(35, 384), z(), rr(500, 1113), rr(125, 192), rr(-2187, 6784), rr(11, 84)],
    ];
    let b = vec![rr(35, 384), z(), rr(500, 1113), rr(125, 192), rr(-2187, 6784), rr(11, 84), z()];
    let e = vec![
        rr(71, 57600),
        z(),
        rr(-71, 16695),
        rr(71, 1920),
        rr(-17253, 339200),
        rr(22, 525),
        rr(-1, 40),
    ];
    let d = vec![
        rr(-12715105075, 11282082432),
        z(),
        rr(87487479700, 32700410799),
        rr(-10690763975, 1880347072),
        rr(701980252875, 199316789632),
        rr(-1453857185, 822651844),
        rr(69997945, 29380423),
    ];
    Tableau { name: "dopri5", order: 5, embedded_order: 4, c, a, b, e, fsal: true, dense: Dense::DormandPrince { d } }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Row sums equal c and weights sum to one (to round-off in f64).
    #[test]
    fn dopri5_consistency_f64() {
        let t = dopri5::<f64>(53);
        for (i, row) in t.a.iter().enumerate() {
            let s: f64 = row.iter().sum();
            assert!((s - t.c[i]).abs() < 1e-15, "row {i}");
        }
        assert!((t.b.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert!(t.e.iter().sum::<f64>().abs() < 1e-16);
    }
}

/// Integration method, as chosen by `--method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Dormand–Prince 5(4) for rtol ≥ 1e-14, the high-order pair below that.
    Auto,
    /// Dormand–Prince 5(4).
    Dopri5,
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Method::Auto),
            "dopri5" => Ok(Method::Dopri5),
            other => Err(format!("unknown method {other:?} (expected auto or dopri5)")),
        }
    }
}

impl Method {
    /// The tableau this method uses at tolerance `rtol` and precision `prec`.
    pub fn tableau<T: Real>(self, _rtol: f64, prec: u32) -> Tableau<T> {
        match self {
            Method::Auto | Method::Dopri5 => dopri5(prec),
        }
    }
}
