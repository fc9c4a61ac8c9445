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

/// Dormand–Prince 5(4) nodes c_i as exact rationals (p, q).
pub const DOPRI5_C: [(i64, i64); 7] = [(0, 1), (1, 5), (3, 10), (4, 5), (8, 9), (1, 1), (1, 1)];
/// Dormand–Prince 5(4) coupling a_ij (row i has i entries) as exact rationals.
pub const DOPRI5_A: [&[(i64, i64)]; 7] = [
    &[],
    &[(1, 5)],
    &[(3, 40), (9, 40)],
    &[(44, 45), (-56, 15), (32, 9)],
    &[(19372, 6561), (-25360, 2187), (64448, 6561), (-212, 729)],
    &[(9017, 3168), (-355, 33), (46732, 5247), (49, 176), (-5103, 18656)],
    &[(35, 384), (0, 1), (500, 1113), (125, 192), (-2187, 6784), (11, 84)],
];
/// Dormand–Prince 5(4) fifth-order weights b_i.
pub const DOPRI5_B: [(i64, i64); 7] = [(35, 384), (0, 1), (500, 1113), (125, 192), (-2187, 6784), (11, 84), (0, 1)];
/// Dormand–Prince 5(4) error weights e_i = b_i − b̂_i.
pub const DOPRI5_E: [(i64, i64); 7] =
    [(71, 57600), (0, 1), (-71, 16695), (71, 1920), (-17253, 339200), (22, 525), (-1, 40)];
/// Shampine's dense-output coefficients d_i (HNW DOPRI5, CONTD5).
pub const DOPRI5_D: [(i64, i64); 7] = [
    (-12715105075, 11282082432),
    (0, 1),
    (87487479700, 32700410799),
    (-10690763975, 1880347072),
    (701980252875, 199316789632),
    (-1453857185, 822651844),
    (69997945, 29380423),
];

/// Dormand–Prince 5(4) (Dormand & Prince 1980, J. Comput. Appl. Math. 6), FSAL, seven stages,
/// with Shampine's dense output as in Hairer–Nørsett–Wanner's DOPRI5. Every coefficient is the
/// exact rational of the tables above, rounded once to `prec` bits.
pub fn dopri5<T: Real>(prec: u32) -> Tableau<T> {
    let rr = |&(p, q): &(i64, i64)| r::<T>(p, q, prec);
    let c = DOPRI5_C.iter().map(rr).collect();
    let a = DOPRI5_A.iter().map(|row| row.iter().map(rr).collect()).collect();
    let b = DOPRI5_B.iter().map(rr).collect();
    let e = DOPRI5_E.iter().map(rr).collect();
    let d = DOPRI5_D.iter().map(rr).collect();
    Tableau { name: "dopri5", order: 5, embedded_order: 4, c, a, b, e, fsal: true, dense: Dense::DormandPrince { d } }
}

/// Verner's "most efficient" 9(8) pair, RKV98.IIa.Efficient (J. H. Verner, "Numerically optimal
/// Runge–Kutta pairs with interpolants", Numer. Algorithms 53 (2010) 383–396; table
/// "RK9(8)12 efficient"), sixteen stages, not FSAL, propagating the ninth-order solution.
///
/// Coefficient source: Verner's published table `RKV98.IIa.Efficient.000000349.081209.FLOAT6040OnWeb`
/// (https://www.sfu.ca/~jverner/: computed with 60 digits, printed with 40 significant digits),
/// as reproduced in public code (e.g. jacobwilliams/rklib, `rkv98e`). Several nodes are irrational
/// (c3, c4, c6, c7, c12 involve √6 and the roots of the order conditions), so *no* exact rational
/// table exists: each 40-digit decimal is read as the exact decimal fraction it is and rounded once
/// to the working precision ([`Real::parse_decimal`]). The tableau therefore satisfies its order
/// conditions to about 1e-40 (row sums Σ_j a_ij = c_i and Σ b_i = 1 to ≲ 1e-39, checked in the
/// tests), which bounds the attainable accuracy near 1e-39 relative per unit of s — far below the
/// tolerances (≥ 1e-35) it is meant for. No continuous extension is used: values inside a step come
/// from re-stepping at full order ([`Dense::Restep`]).
pub fn verner98<T: Real>(prec: u32) -> Tableau<T> {
    let dec = |s: &str| T::parse_decimal(s, prec).expect("Verner coefficient parses");
    let z = || T::zero(prec);
    let c: Vec<T> = VERNER98_C.iter().map(|s| dec(s)).collect();
    let mut a: Vec<Vec<T>> = (0..16).map(|i| (0..i).map(|_| z()).collect()).collect();
    for &(i, j, v) in VERNER98_A {
        a[i - 1][j - 1] = dec(v);
    }
    let mut b: Vec<T> = (0..16).map(|_| z()).collect();
    for &(i, v) in VERNER98_B {
        b[i - 1] = dec(v);
    }
    let mut bhat: Vec<T> = (0..16).map(|_| z()).collect();
    for &(i, v) in VERNER98_BHAT {
        bhat[i - 1] = dec(v);
    }
    let e = b.iter().zip(&bhat).map(|(bi, bh)| bi.clone() - bh).collect();
    Tableau { name: "verner98", order: 9, embedded_order: 8, c, a, b, e, fsal: false, dense: Dense::Restep }
}

/// Nodes c_1..c_16 of RKV98.IIa.Efficient (40 significant digits, exact where finite decimals).
const VERNER98_C: [&str; 16] = [
    "0",
    "0.03462",
    "0.09702435063878044594828361677100617517633",
    "0.1455365259581706689224254251565092627645",
    "0.561",
    "0.2290079115904850126662751771814700052182",
    "0.5449920884095149873337248228185299947818",
    "0.645",
    "0.48375",
    "0.06757",
    "0.25",
    "0.6590650618730998549405331618649220295334",
    "0.8206",
    "0.9012",
    "1",
    "1",
];

/// Nonzero a_ij of RKV98.IIa.Efficient as (i, j, value), 1-based stage indices.
const VERNER98_A: &[(usize, usize, &str)] = &[
    (2, 1, "0.03462"),
    (3, 1, "-0.0389335438857287327017042687229284478532"),
    (3, 2, "0.1359578945245091786499878854939346230295"),
    (4, 1, "0.03638413148954266723060635628912731569111"),
    (4, 3, "0.1091523944686280016918190688673819470733"),
    (5, 1, "2.025763914393969636805657604282571047511"),
    (5, 3, "-7.638023836496292020387602153091964592952"),
    (5, 4, "6.173259922102322383581944548809393545442"),
    (6, 1, "0.05112275589406060872792270881648288397197"),
    (6, 4, "0.1770823794555021537929910813839068684087"),
    (6, 5, "0.00080277624092225014536138698108025283759"),
    (7, 1, "0.1316006357975216279279871693164256985334"),
    (7, 4, "-0.2957276252669636417685183174672273730699"),
    (7, 5, "0.0878137803564295237421124704053886667082"),
    (7, 6, "0.6213052975225274774321435005639430026100"),
    (8, 1, "0.07166666666666666666666666666666666666667"),
    (8, 6, "0.3305533578915319409260346730051472207728"),
    (8, 7, "0.2427799754418013924072986603281861125606"),
    (9, 1, "0.07180664062500000000000000000000000000000"),
    (9, 6, "0.3294380283228177160744825466257672816401"),
    (9, 7, "0.1165190029271822839255174533742327183599"),
    (9, 8, "-0.03401367187500000000000000000000000000000"),
    (10, 1, "0.04836757646340646986611287718844085773549"),
    (10, 6, "0.03928989925676163974333190042057047002852"),
    (10, 7, "0.1054740945890344608263649267140088017604"),
    (10, 8, "-0.02143865284648312665982642293830533996214"),
    (10, 9, "-0.1041229174627194437759832813847147895623"),
    (11, 1, "-0.02664561487201478635337289243849737340534"),
    (11, 6, "0.03333333333333333333333333333333333333333"),
    (11, 7, "-0.1631072244872467239162704487554706387141"),
    (11, 8, "0.03396081684127761199487954930015522928244"),
    (11, 9, "0.1572319413814626097110769806810024118077"),
    (11, 10, "0.2152267478031879552303534778794770376960"),
    (12, 1, "0.03689009248708622334786359863227633989718"),
    (12, 6, "-0.1465181576725542928653609891758501156785"),
    (12, 7, "0.2242577768172024345345469822625833796001"),
    (12, 8, "0.02294405717066072637090897902753790803034"),
    (12, 9, "-0.0035850052905728761357394424889330334334"),
    (12, 10, "0.08669223316444385506869203619044453906053"),
    (12, 11, "0.4383840651968337846196219974168630120572"),
    (13, 1, "-0.4866012215113340846662212357570395295088"),
    (13, 6, "-6.304602650282852990657772792012007122988"),
    (13, 7, "-0.281245618289472564778284183790118418111"),
    (13, 8, "-2.679019236219849057687906597489223155566"),
    (13, 9, "0.518815663924157511565311164615012522024"),
    (13, 10, "1.365353187603341710683633635235238678626"),
    (13, 11, "5.885091088503946585721274891680604830712"),
    (13, 12, "2.802808786272062889819965117517532194812"),
    (14, 1, "0.4185367457753471441471025246471931649633"),
    (14, 6, "6.724547581906459363100870806514855026676"),
    (14, 7, "-0.425444280164611790606983409697113064616"),
    (14, 8, "3.343279153001265577811816947557982637749"),
    (14, 9, "0.617081663117537759528421117507709784737"),
    (14, 10, "-0.929966123939932833937749523988800852013"),
    (14, 11, "-6.099948804751010722472962837945508844846"),
    (14, 12, "-3.002206187889399044804158084895173690015"),
    (14, 13, "0.2553202529443445472336424602988558373637"),
    (15, 1, "-0.779374086122884664644623040843840506343"),
    (15, 6, "-13.93734253810777678786523664804936051203"),
    (15, 7, "1.252048853379357320949735183924200895136"),
    (15, 8, "-14.69150040801686878191527989293072091588"),
    (15, 9, "-0.494705058533141685655191992136962873577"),
    (15, 10, "2.242974909146236657906984549543692874755"),
    (15, 11, "13.36789380382864375813864978592679139881"),
    (15, 12, "14.39665048665068644512236935340272139005"),
    (15, 13, "-0.7975813331776800379127866056663258667437"),
    (15, 14, "0.4409353709534277758753793068298041158235"),
    (16, 1, "2.058051337466886442151242368989994043993"),
    (16, 6, "22.35793772796803295519317565842520212899"),
    (16, 7, "0.90949810997556332745009198137971890783"),
    (16, 8, "35.89110098240264104710550686568482456493"),
    (16, 9, "-3.442515027624453437985000403608480262211"),
    (16, 10, "-4.865481358036368826566013387928704014496"),
    (16, 11, "-18.90980381354342625688427480879773032857"),
    (16, 12, "-34.26354448030451782929251177395134170515"),
    (16, 13, "1.264756521695642578827783499806516664686"),
];

/// Nonzero weights b_i of the ninth-order solution, (i, value).
const VERNER98_B: &[(usize, &str)] = &[
    (1, "0.01461197685842315252051541915018784713459"),
    (8, "-0.3915211862331339089410228267288242030810"),
    (9, "0.2310932500289506415909675644868993669908"),
    (10, "0.1274766769992852382560589467488989175618"),
    (11, "0.2246434176204157731566981937082069688984"),
    (12, "0.5684352689748512932705226972873692126743"),
    (13, "0.05825871557215827200814768021863420902155"),
    (14, "0.1364317403482215641609022744494239843327"),
    (15, "0.03057013983082797397721005067920369646664"),
];

/// Nonzero weights b̂_i of the eighth-order embedded solution, (i, value).
const VERNER98_BHAT: &[(usize, &str)] = &[
    (1, "0.01996996514886773085518508418098868756464"),
    (8, "2.191499304949330054530747099310837524864"),
    (9, "0.08857071848208438030833722031786358862953"),
    (10, "0.1140560234865965622484956605091432032674"),
    (11, "0.2533163805345107065564577734569651977347"),
    (12, "-2.056564386240941011158999594595981300493"),
    (13, "0.3408096799013119935160094894224543812830"),
    (16, "0.04834231373823958314376726739772871714902"),
];

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
    /// Two phases: first the explicit pair [`Method::resolve`] gives (Dormand–Prince 5(4) for
    /// rtol ≥ 1e-12, Verner 9(8) below), then, once the caller finds the problem stiff
    /// (stability-bound constant steps, no events), linearly implicit Euler extrapolation
    /// ([`Method::Seulex`]) from the same integrator state. The switch criterion belongs to the
    /// caller (the flow driver, `marginflow::flow::Phase`); this crate only names the methods.
    Auto,
    /// Dormand–Prince 5(4).
    Dopri5,
    /// Verner's "most efficient" 9(8) pair.
    Verner98,
    /// Linearly implicit Euler extrapolation (SEULEX, [`crate::extrapolation`]) for stiff systems;
    /// it has no tableau ([`Method::tableau`] gives the explicit Dormand–Prince pair).
    Seulex,
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Method::Auto),
            "dopri5" => Ok(Method::Dopri5),
            "verner98" => Ok(Method::Verner98),
            "seulex" => Ok(Method::Seulex),
            other => Err(format!("unknown method {other:?} (expected auto, dopri5, verner98 or seulex)")),
        }
    }
}

impl Method {
    /// Tolerance below which `Auto` picks the ninth-order pair: Dormand–Prince needs about
    /// rtol^(−1/5) steps, Verner 9(8) about rtol^(−1/9); and in f64 below 1e-12 Dormand–Prince's
    /// error estimate is dominated by round-off on long flows (issue 23: rtol 1e-13 on
    /// n = 20, d = 4000 shrank its steps to the round-off floor at s = 1.9).
    pub const AUTO_HIGH_ORDER_BELOW: f64 = 1e-12;

    /// The concrete method used at tolerance `rtol` (for `Auto`, in its first, explicit phase):
    /// `Auto` is Verner 9(8) when rtol < [`Method::AUTO_HIGH_ORDER_BELOW`], Dormand–Prince 5(4)
    /// otherwise. The other methods resolve to themselves.
    pub fn resolve(self, rtol: f64) -> Method {
        match self {
            Method::Auto if rtol < Self::AUTO_HIGH_ORDER_BELOW => Method::Verner98,
            Method::Auto => Method::Dopri5,
            other => other,
        }
    }

    /// Whether this is the linearly implicit extrapolation method (no tableau).
    pub fn is_extrapolation(self) -> bool {
        self == Method::Seulex
    }

    /// The tableau this method uses at tolerance `rtol` and precision `prec` (Dormand–Prince 5(4)
    /// for [`Method::Seulex`], which has none).
    pub fn tableau<T: Real>(self, rtol: f64, prec: u32) -> Tableau<T> {
        match self.resolve(rtol) {
            Method::Verner98 => verner98(prec),
            _ => dopri5(prec),
        }
    }
}

#[cfg(test)]
mod high_order_tests {
    use super::*;

    /// Exact rational arithmetic on i128 for the identity checks.
    fn add((p1, q1): (i128, i128), (p2, q2): (i64, i64)) -> (i128, i128) {
        let (p2, q2) = (p2 as i128, q2 as i128);
        let (p, q) = (p1 * q2 + p2 * q1, q1 * q2);
        let g = gcd(p.abs(), q.abs()).max(1);
        (p / g, q / g)
    }
    fn gcd(a: i128, b: i128) -> i128 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }

    /// The Dormand–Prince rationals satisfy Σ_j a_ij = c_i, Σ b = 1, Σ e = 0 exactly (integers).
    #[test]
    fn dopri5_rational_identities_exact() {
        for (i, row) in DOPRI5_A.iter().enumerate() {
            let s = row.iter().fold((0i128, 1i128), |acc, &x| add(acc, x));
            let c = add((0, 1), DOPRI5_C[i]);
            assert_eq!(s, c, "row {i}");
        }
        assert_eq!(DOPRI5_B.iter().fold((0, 1), |acc, &x| add(acc, x)), (1, 1));
        assert_eq!(DOPRI5_E.iter().fold((0, 1), |acc, &x| add(acc, x)), (0, 1));
        // FSAL: the last row equals b.
        assert_eq!(DOPRI5_A[6], &DOPRI5_B[..6]);
    }

    /// Verner 9(8) at f64: row sums, and the quadrature conditions Σ b_i c_i^(k−1) = 1/k for
    /// k ≤ 9 (propagated solution) and k ≤ 8 (embedded one).
    #[test]
    fn verner98_conditions_f64() {
        let t = verner98::<f64>(53);
        assert_eq!(t.stages(), 16);
        for (i, row) in t.a.iter().enumerate() {
            let s: f64 = row.iter().sum();
            assert!(
                (s - t.c[i]).abs() < 4e-15 * (1.0 + row.iter().map(|v| v.abs()).sum::<f64>()),
                "row {i}: {s} vs {}",
                t.c[i]
            );
        }
        let bhat: Vec<f64> = t.b.iter().zip(&t.e).map(|(b, e)| b - e).collect();
        for k in 1..=9 {
            let q: f64 = t.b.iter().zip(&t.c).map(|(b, c)| b * c.powi(k - 1)).sum();
            assert!((q - 1.0 / k as f64).abs() < 1e-14, "b, k={k}: {q}");
        }
        for k in 1..=8 {
            let q: f64 = bhat.iter().zip(&t.c).map(|(b, c)| b * c.powi(k - 1)).sum();
            assert!((q - 1.0 / k as f64).abs() < 1e-13, "bhat, k={k}: {q}");
        }
        // The embedded pair really differs at order 9: Σ b̂ c^8 ≠ 1/9.
        let q9: f64 = bhat.iter().zip(&t.c).map(|(b, c)| b * c.powi(8)).sum();
        assert!((q9 - 1.0 / 9.0).abs() > 1e-6, "{q9}");
    }

    #[test]
    fn auto_picks_by_tolerance() {
        assert_eq!(Method::Auto.resolve(1e-10), Method::Dopri5);
        assert_eq!(Method::Auto.resolve(1e-12), Method::Dopri5);
        assert_eq!(Method::Auto.resolve(1e-13), Method::Verner98);
        assert_eq!(Method::Dopri5.resolve(1e-30), Method::Dopri5);
        assert_eq!(Method::Verner98.resolve(1e-3), Method::Verner98);
        assert_eq!(Method::Auto.tableau::<f64>(1e-20, 53).name, "verner98");
        assert_eq!("verner98".parse::<Method>(), Ok(Method::Verner98));
        assert!("rk4".parse::<Method>().is_err());
        assert_eq!("seulex".parse::<Method>(), Ok(Method::Seulex));
        assert_eq!(Method::Seulex.resolve(1e-30), Method::Seulex);
        assert!(Method::Seulex.is_extrapolation() && !Method::Auto.is_extrapolation());
    }
}
