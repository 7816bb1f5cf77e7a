//! Property test: the batch `sma_cross` kernel (shared prefix sums, streaming statistics)
//! against the plain per-combo reference (direct window sums, stored equity curve,
//! two-pass statistics), on random whole-cent price paths, for all 8 variants under both statistics conventions.

use proptest::prelude::*;
use sweeprun_kernel::date::Date;
use sweeprun_kernel::decimal::ExactCloses;
use sweeprun_kernel::metrics::{Convention, Metrics};
use sweeprun_kernel::prices::AssetSeries;
use sweeprun_kernel::sma::{reference, Direction, Fill, SmaBatch, SmaCombo, SmaConfig};

/// A random walk in whole cents; small steps make exact SMA ties common.
fn price_path() -> impl Strategy<Value = (Vec<i64>, Vec<i64>)> {
    (20usize..400, 500i64..20_000).prop_flat_map(|(bars, start)| {
        (prop::collection::vec(-40i64..=40, bars), prop::collection::vec(-30i64..=30, bars)).prop_map(
            move |(steps, gaps)| {
                let mut close = Vec::with_capacity(steps.len());
                let mut level = start;
                for step in steps {
                    level = (level + step).max(1);
                    close.push(level);
                }
                let open = close.iter().zip(gaps).map(|(c, g)| (c + g).max(1)).collect();
                (open, close)
            },
        )
    })
}

fn series(open_cents: &[i64], close_cents: &[i64]) -> AssetSeries {
    AssetSeries {
        symbol: "RND".into(),
        dates: (0..close_cents.len() as i32).map(Date::from_days).collect(),
        open: Some(open_cents.iter().map(|&c| c as f64 / 100.0).collect()),
        close: close_cents.iter().map(|&c| c as f64 / 100.0).collect(),
        close_exact: ExactCloses::from_i64(close_cents.to_vec(), 2),
    }
}

fn close_enough(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn assert_same(batch: &Metrics, plain: &Metrics, what: &str) -> Result<(), TestCaseError> {
    assert_sortino(batch.sortino, plain.sortino, what)?;
    assert_counts(batch, plain, what)?;
    let pairs = [
        ("total_return", batch.total_return, plain.total_return),
        ("cagr", batch.cagr, plain.cagr),
        ("sharpe", batch.sharpe, plain.sharpe),
        ("volatility", batch.volatility, plain.volatility),
        ("max_drawdown", batch.max_drawdown, plain.max_drawdown),
    ];
    for (name, a, b) in pairs {
        prop_assert!(close_enough(a, b), "{what}: {name} batch {a} vs plain {b}");
    }
    Ok(())
}

/// Sortino divides by the spread of the losing returns. When the only losses are a couple
/// of near-identical fee-sized returns, that spread is ~1e-16 and the ratio ~1e13: any two
/// summation orders then differ in the 6th digit. Such ratios are compared loosely.
fn assert_sortino(batch: f64, plain: f64, what: &str) -> Result<(), TestCaseError> {
    let ill_conditioned = batch.abs().min(plain.abs()) > 1e6;
    let ok = batch == plain
        || if ill_conditioned { (batch - plain).abs() <= 1e-4 * plain.abs() } else { close_enough(batch, plain) };
    prop_assert!(ok, "{what}: sortino batch {batch} vs plain {plain}");
    Ok(())
}

fn assert_counts(batch: &Metrics, plain: &Metrics, what: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(batch.trades, plain.trades, "{}: trades", what);
    prop_assert_eq!(batch.max_drawdown_duration, plain.max_drawdown_duration, "{}: dd duration", what);
    Ok(())
}

fn variants() -> Vec<(Direction, Fill, Convention)> {
    let mut all = Vec::new();
    for direction in [Direction::Long, Direction::LongShort] {
        for fill in [Fill::Open, Fill::Close] {
            for convention in [Convention::Standard, Convention::Qstrader] {
                all.push((direction, fill, convention));
            }
        }
    }
    all
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn batch_equals_plain_loop((open, close) in price_path(), fee_bps in prop::sample::select(vec![0u32, 10, 25])) {
        let bars = close.len() as u32;
        let data = series(&open, &close);
        let batch = SmaBatch::new(&data, bars).unwrap();
        let combos: Vec<SmaCombo> = (1..bars.min(12))
            .flat_map(|fast| (fast + 1..=bars).step_by(7).map(move |slow| SmaCombo { fast, slow }))
            .collect();
        let open_px = data.open.as_deref().unwrap();
        for (direction, fill, convention) in variants() {
            let config = SmaConfig { direction, fill, fee: f64::from(fee_bps) / 10_000.0, convention };
            let mut out = vec![Metrics::default(); combos.len()];
            batch.evaluate(&config, &combos, &mut out).unwrap();
            for (combo, got) in combos.iter().zip(&out) {
                let plain = reference::evaluate_one(open_px, &data.close, &data.close_exact, &config, *combo);
                assert_same(got, &plain, &format!("{config:?} {combo:?} over {bars} bars"))?;
            }
        }
    }
}

/// The mean of `xs` computed the naive float way: `f64` closes summed left to right, then
/// divided by the count. That is what `np.mean` does for fewer than 8 values (its pairwise
/// summation only splits longer arrays).
fn naive_float_mean(xs: &[f64]) -> f64 {
    xs.iter().fold(0.0, |sum, &x| sum + x) / xs.len() as f64
}

#[test]
fn an_exact_tie_is_not_a_crossing() {
    // fast 2, slow 4. At bar 3 (the first bar with a slow SMA) the integer-cent window sums tie
    // exactly: (996 + 1005)·4 == (1000 + 1001 + 996 + 1005)·2 == 8004, so SMA_2 == SMA_4 and the
    // bar is "not greater". The naive float means are 10.005 and 10.004999999999999: a kernel
    // comparing float means would see fast > slow and enter at bar 3's close (10.05) instead of at
    // bar 4's (11.00, a genuine crossing). Found by a small search over whole-cent prices.
    let close = [1000, 1001, 996, 1005, 1100, 1200];
    let (fast, slow) = (2u32, 4u32);
    let tie = slow as usize - 1;
    let window = |n: u32| tie + 1 - n as usize..=tie;
    let sum_fast: i64 = close[window(fast)].iter().sum();
    let sum_slow: i64 = close[window(slow)].iter().sum();
    assert_eq!(sum_fast * i64::from(slow), sum_slow * i64::from(fast), "the integer sums tie");
    let data = series(&close, &close);
    let (mean_fast, mean_slow) =
        (naive_float_mean(&data.close[window(fast)]), naive_float_mean(&data.close[window(slow)]));
    assert!(mean_fast > mean_slow, "the float means must not tie: {mean_fast} vs {mean_slow}");

    let batch = SmaBatch::new(&data, slow).unwrap();
    let combo = SmaCombo { fast, slow };
    let config = |direction| SmaConfig { direction, fill: Fill::Close, fee: 0.0, convention: Convention::Standard };
    let run = |direction| {
        let mut out = [Metrics::default()];
        batch.evaluate(&config(direction), &[combo], &mut out).unwrap();
        out[0]
    };
    let plain =
        |direction| reference::evaluate_one(&data.close, &data.close, &data.close_exact, &config(direction), combo);
    // Long only: flat at the tie, entered at bar 4's close (11.00 > mean 10.255), held to 12.00.
    // (Entering at the tie would give 12.00 / 10.05 − 1 instead.)
    let long = run(Direction::Long);
    assert_eq!(long.trades, 1);
    assert!((long.total_return - (12.0 / 11.0 - 1.0)).abs() < 1e-15, "{}", long.total_return);
    // Long/short: the tie is "not greater", so short at 10.05 (1/10.05 shares, cash 2), then flip
    // long at 11.00: 2 trades. (Entering long at the tie would be 1 trade.)
    let long_short = run(Direction::LongShort);
    assert_eq!(long_short.trades, 2);
    let expected = (2.0 - 11.0 / 10.05) * (12.0 / 11.0) - 1.0;
    assert!((long_short.total_return - expected).abs() < 1e-12, "{} vs {expected}", long_short.total_return);
    // The reference agrees.
    assert_same(&long, &plain(Direction::Long), "long").unwrap();
    assert_same(&long_short, &plain(Direction::LongShort), "long_short").unwrap();
}
