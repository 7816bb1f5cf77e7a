//! The exact SMA comparison `SMA_fast > SMA_slow`, i.e. `sum_fast·slow > sum_slow·fast`
//! on the closes as written, fast.
//!
//! Three regimes, chosen per series and grid ([`Signals::new`]):
//!
//! * **Exact in f64** (prices with a few decimals, e.g. cents): the integer prefix sums and
//!   every window product stay below 2^53, so f64 arithmetic on them *is* the integer
//!   arithmetic. The vector paths compare directly.
//! * **Filtered** (float-written prices: 13+ decimals, 17 significant digits): the products
//!   need up to ~75 bits. The vector paths compare f64 window sums of an f64 prefix with a
//!   proven error bound (a float filter, as robust geometric predicates use): outside the
//!   bound the sign is certain; inside it (a near-tie, ~1 bar in 10^6) the exact integer
//!   comparison decides, in 64/128-bit or arbitrary-precision integers.
//! * **Exact only**: prices so extreme (below 1e-290, or sums near f64's range) that the
//!   filter's bound does not hold; every comparison is exact (scalar kernel; no real
//!   price series is like this).
//!
//! The filter's bound. Let `x_i` be the closes as written, `P_k = Σ_{i<k} x_i` and `P̂_k`
//! the f64 prefix: the Neumaier-compensated sum of the correctly rounded `fl(x_i)`, so
//! `|P̂_k − P_k| ≤ α·P_k` with `α = 3u + O(k·u²) < 4u` (`u = 2^-53`: `u·x_i` from each
//! parse, `2u·P_k` from the compensated sum, Higham, *Accuracy and Stability*, §4.3).
//! A window sum `Ŝ = fl(P̂_a − P̂_b)` (`b < a`, all terms positive) is within
//! `2α·P_a + u·P̂_a < 9.01u·P_a` of `S = P_a − P_b`; the products `fl(Ŝ_f·slow)` and
//! `fl(Ŝ_s·fast)` add `u·P̂_a` per unit of window, so the computed difference
//! `D̂ = fl(fl(Ŝ_f·slow) − fl(Ŝ_s·fast))` satisfies
//! `|D̂/(1±u) − D| ≤ 10.02u·(slow + fast)·P_a`. The kernel uses the bound
//! `T = fl(P̂_a · (slow + fast)·2^-49)` (= 16u·(slow+fast)·P̂_a, the factor exact), which
//! exceeds that by 50 %: `D̂ > T` proves `D > 0`, `D̂ < −T` proves `D < 0`, anything
//! between goes to the exact comparison. It needs no underflow (closes >= 1e-290) and
//! no overflow (`P_total · max window` well below f64's range), which [`Signals::new`]
//! checks.

use crate::decimal::{ExactCloses, Ticks};
use num_bigint::BigUint;

/// The filter's tolerance per unit of `slow + fast`: `16u = 2^-49` (see the module docs).
pub(crate) const FILTER_TOLERANCE: f64 = 1.0 / (1u64 << 49) as f64;

/// Smallest close the filter's error bound holds for (no underflow in the bound).
const FILTER_MIN_CLOSE: f64 = 1e-290;

/// Largest `P_total · max window` the filter accepts (far from overflow).
const FILTER_MAX_PRODUCT: f64 = 1e300;

/// Exact integer prefix sums of the closes as written: `prefix[t]` = sum of bars `0..t`.
#[derive(Clone, Debug)]
pub(crate) enum ExactPrefix {
    /// Sums and window products fit in i64.
    I64(Vec<i64>),
    /// Sums and window products fit in i128.
    I128(Vec<i128>),
    /// Anything larger.
    Big(Vec<BigUint>),
}

impl ExactPrefix {
    /// The prefix sums of `closes` in the narrowest type that holds every window sum times
    /// a window length up to `max_window`.
    fn new(closes: &ExactCloses, max_window: u32) -> ExactPrefix {
        let window = i128::from(max_window);
        let fits_i64 = |ticks: &[i64]| -> Option<Vec<i64>> {
            let max_tick = ticks.iter().copied().max().unwrap_or(0);
            // Every comparison multiplies a window sum (<= max tick · window) by a window length.
            max_tick.checked_mul(max_window.into())?.checked_mul(max_window.into())?;
            prefix_sums(ticks.iter().copied(), 0i64, i64::checked_add)
        };
        let fits_i128 = |ticks: &mut dyn Iterator<Item = i128>| -> Option<Vec<i128>> {
            let prefix = prefix_sums(ticks, 0i128, i128::checked_add)?;
            prefix.last().copied().unwrap_or(0).checked_mul(window)?;
            Some(prefix)
        };
        match &closes.ticks {
            Ticks::I64(ticks) => {
                if let Some(prefix) = fits_i64(ticks) {
                    return ExactPrefix::I64(prefix);
                }
                if let Some(prefix) = fits_i128(&mut ticks.iter().map(|&t| i128::from(t))) {
                    return ExactPrefix::I128(prefix);
                }
            }
            Ticks::I128(ticks) => {
                if let Some(prefix) = fits_i128(&mut ticks.iter().copied()) {
                    return ExactPrefix::I128(prefix);
                }
            }
            Ticks::Big(_) => {}
        }
        let big: Vec<BigUint> = match &closes.ticks {
            Ticks::I64(t) => t.iter().map(|&x| BigUint::from(x as u64)).collect(),
            Ticks::I128(t) => t.iter().map(|&x| BigUint::from(x as u128)).collect(),
            Ticks::Big(t) => t.clone(),
        };
        let mut prefix = Vec::with_capacity(big.len() + 1);
        let mut total = BigUint::ZERO;
        prefix.push(total.clone());
        for tick in big {
            total += tick;
            prefix.push(total.clone());
        }
        ExactPrefix::Big(prefix)
    }

    /// Whether the fast SMA is strictly above the slow one at the close of bar `t`
    /// (`t + 1 >= max(fast, slow)`), exactly.
    #[inline]
    pub(crate) fn fast_above(&self, fast: u32, slow: u32, t: usize) -> bool {
        let (f, s) = (fast as usize, slow as usize);
        match self {
            ExactPrefix::I64(p) => window_above(p, fast, slow, t),
            ExactPrefix::I128(p) => window_above(p, fast, slow, t),
            ExactPrefix::Big(p) => {
                let end = &p[t + 1];
                (end - &p[t + 1 - f]) * slow > (end - &p[t + 1 - s]) * fast
            }
        }
    }
}

/// `sum_fast·slow > sum_slow·fast` at bar `t` on integer prefix sums `p` (whose window
/// products were checked to fit `T`).
#[inline(always)]
pub(crate) fn window_above<T>(p: &[T], fast: u32, slow: u32, t: usize) -> bool
where
    T: Copy + From<u32> + PartialOrd + std::ops::Sub<Output = T> + std::ops::Mul<Output = T>,
{
    let end = p[t + 1];
    (end - p[t + 1 - fast as usize]) * T::from(slow) > (end - p[t + 1 - slow as usize]) * T::from(fast)
}

/// `[0, x0, x0+x1, ..]` with checked additions; `None` on overflow.
fn prefix_sums<T: Copy>(values: impl Iterator<Item = T>, zero: T, add: fn(T, T) -> Option<T>) -> Option<Vec<T>> {
    let mut prefix = vec![zero];
    let mut total = zero;
    for value in values {
        total = add(total, value)?;
        prefix.push(total);
    }
    Some(prefix)
}

/// How a batch decides its signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Regime {
    /// f64 arithmetic on the integer prefix is exact.
    ExactInF64,
    /// f64 comparisons with an error bound; near-ties exactly.
    Filtered,
    /// Every comparison exact (scalar).
    ExactOnly,
}

/// The signal machinery of one price series and grid.
#[derive(Clone, Debug)]
pub(crate) struct Signals {
    pub(crate) exact: ExactPrefix,
    pub(crate) regime: Regime,
    /// The prefix the vector paths read: the exact integers as f64 (`ExactInF64`) or the
    /// compensated f64 prefix of the closes (`Filtered`); empty for `ExactOnly`.
    pub(crate) approx: Vec<f64>,
}

impl Signals {
    /// The exact prefix of `exact` (the closes as written) and, when possible, an f64
    /// prefix for the vector paths: exact integers, or a filtered prefix of `close`
    /// (their nearest f64 values), for windows up to `max_window`.
    pub(crate) fn new(exact: &ExactCloses, close: &[f64], max_window: u32) -> Signals {
        let prefix = ExactPrefix::new(exact, max_window);
        if let ExactPrefix::I64(p) = &prefix {
            let max_tick = p.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
            let window = i64::from(max_window);
            let total = p.last().copied().unwrap_or(0);
            // Checked by ExactPrefix::new: these products fit in i64.
            if max_tick * window * window < 1 << 53 && total < 1 << 53 {
                let approx = p.iter().map(|&x| x as f64).collect();
                return Signals { exact: prefix, regime: Regime::ExactInF64, approx };
            }
        }
        let approx = compensated_prefix(close);
        let smallest = close.iter().copied().fold(f64::INFINITY, f64::min);
        let total = approx.last().copied().unwrap_or(0.0);
        if smallest >= FILTER_MIN_CLOSE && total * f64::from(max_window) < FILTER_MAX_PRODUCT {
            Signals { exact: prefix, regime: Regime::Filtered, approx }
        } else {
            Signals { exact: prefix, regime: Regime::ExactOnly, approx: Vec::new() }
        }
    }

    /// Whether the fast SMA is above the slow one at bar `t`, exactly; the f64 filter
    /// first where it applies (the exact comparison in wide integers is slower).
    #[inline]
    pub(crate) fn fast_above(&self, fast: u32, slow: u32, t: usize) -> bool {
        if self.regime == Regime::Filtered && matches!(self.exact, ExactPrefix::Big(_)) {
            let p = &self.approx;
            let end = p[t + 1];
            let diff =
                (end - p[t + 1 - fast as usize]) * f64::from(slow) - (end - p[t + 1 - slow as usize]) * f64::from(fast);
            let bound = end * (f64::from(slow + fast) * FILTER_TOLERANCE);
            if diff > bound {
                return true;
            }
            if diff < -bound {
                return false;
            }
        }
        self.exact.fast_above(fast, slow, t)
    }
}

/// `[0, fl(x0), ..]`: running Neumaier (Kahan-Babuška) sums, each within `2u·P + O(k·u²)·P`
/// of the exact sum of the f64 values.
fn compensated_prefix(values: &[f64]) -> Vec<f64> {
    let mut prefix = Vec::with_capacity(values.len() + 1);
    prefix.push(0.0);
    let (mut sum, mut compensation) = (0.0f64, 0.0f64);
    for &x in values {
        let t = sum + x;
        compensation += if sum.abs() >= x.abs() { (sum - t) + x } else { (x - t) + sum };
        sum = t;
        prefix.push(sum + compensation);
    }
    prefix
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decimal::Decimal;

    fn exact_of(texts: &[&str]) -> (ExactCloses, Vec<f64>) {
        let decimals: Vec<Decimal> = texts.iter().map(|t| Decimal::parse(t).unwrap()).collect();
        (ExactCloses::from_decimals(&decimals).unwrap(), texts.iter().map(|t| t.parse().unwrap()).collect())
    }

    #[test]
    fn regimes_follow_the_data() {
        let (cents, close) = exact_of(&["100.25", "101.5", "99.75"]);
        assert_eq!(Signals::new(&cents, &close, 3).regime, Regime::ExactInF64);
        let (floats, close) = exact_of(&["1469.2500000000002", "1455.2244897959183", "1399.4233333333331"]);
        let signals = Signals::new(&floats, &close, 3);
        assert_eq!(signals.regime, Regime::Filtered);
        assert!(matches!(signals.exact, ExactPrefix::I64(_)));
        let (large, close) = exact_of(&["654321.0000000000001", "654320.9999999999999", "654322.5"]);
        let signals = Signals::new(&large, &close, 3);
        assert_eq!(signals.regime, Regime::Filtered);
        assert!(matches!(signals.exact, ExactPrefix::I128(_)));
        let (tiny, close) = exact_of(&["1e-300", "2", "3"]);
        let signals = Signals::new(&tiny, &close, 3);
        assert_eq!(signals.regime, Regime::ExactOnly);
        assert!(matches!(signals.exact, ExactPrefix::Big(_)));
    }

    /// A tie as written: a + b = 2c, so the slow SMA of (a, b, c) equals the last close
    /// c (a fast window of 1). The exact comparison says "not above" in every width, and
    /// so does the filtered path (it must defer to the exact comparison here).
    #[test]
    fn exact_ties_are_not_crossings_in_every_width() {
        let (exact, close) = exact_of(&["1.1000000000000001", "3.3000000000000003", "2.2000000000000002"]);
        let signals = Signals::new(&exact, &close, 3);
        assert_eq!(signals.regime, Regime::Filtered);
        assert!(matches!(signals.exact, ExactPrefix::I64(_)));
        let Ticks::I64(ticks) = &exact.ticks else { panic!("cents-like ticks fit in i64") };
        let widened =
            ExactCloses { scale: exact.scale, ticks: Ticks::I128(ticks.iter().map(|&t| i128::from(t)).collect()) };
        let big = ExactCloses {
            scale: exact.scale,
            ticks: Ticks::Big(ticks.iter().map(|&t| BigUint::from(t as u64)).collect()),
        };
        assert!(matches!(ExactPrefix::new(&widened, 3), ExactPrefix::I128(_)));
        assert!(matches!(ExactPrefix::new(&big, 3), ExactPrefix::Big(_)));
        for prefix in [ExactPrefix::new(&exact, 3), ExactPrefix::new(&widened, 3), ExactPrefix::new(&big, 3)] {
            assert!(!prefix.fast_above(1, 3, 2), "{prefix:?}");
            assert!(!prefix.fast_above(3, 1, 2), "a tie either way round");
        }
        assert!(!signals.fast_above(1, 3, 2));
        let big_signals =
            Signals { exact: ExactPrefix::new(&big, 3), regime: Regime::Filtered, approx: signals.approx.clone() };
        assert!(!big_signals.fast_above(1, 3, 2), "the filter defers a tie to the exact comparison");
    }

    #[test]
    fn the_filter_never_contradicts_the_exact_comparison() {
        // Random float-written walks with planted near-ties: wherever the filter decides,
        // it agrees with the exact comparison.
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20 {
            let mut price = 1000.0 + (next() % 1000) as f64;
            let mut texts = Vec::new();
            for _ in 0..300 {
                price *= 1.0 + ((next() % 2001) as f64 - 1000.0) * 1e-5;
                // Every 7th bar repeats the previous close: ties between windows of 1 and 2.
                let text = if texts.len() % 7 == 6 { texts.last().cloned().unwrap() } else { format!("{price:?}") };
                texts.push(text);
            }
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let (exact, close) = exact_of(&refs);
            let signals = Signals::new(&exact, &close, 60);
            assert_eq!(signals.regime, Regime::Filtered);
            for (fast, slow) in [(1, 2), (2, 3), (3, 60), (10, 20), (5, 50)] {
                for t in slow as usize - 1..texts.len() {
                    let p = &signals.approx;
                    let end = p[t + 1];
                    let diff = (end - p[t + 1 - fast as usize]) * f64::from(slow)
                        - (end - p[t + 1 - slow as usize]) * f64::from(fast);
                    let bound = end * (f64::from(slow + fast) * FILTER_TOLERANCE);
                    let exact_answer = signals.exact.fast_above(fast, slow, t);
                    if diff > bound {
                        assert!(exact_answer, "{fast}/{slow} at {t}");
                    } else if diff < -bound {
                        assert!(!exact_answer, "{fast}/{slow} at {t}");
                    }
                }
            }
        }
    }
}
