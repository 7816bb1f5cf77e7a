//! Property test: the batch `sma_cross` kernel (shared prefix sums, streaming statistics)
//! against the plain per-combo reference (direct window sums, stored equity curve,
//! two-pass statistics), on random whole-cent price paths, for all 8 variants under both statistics conventions.

use proptest::prelude::*;
use sweeprun_kernel::date::Date;
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
        close_ticks: Some(close_cents.to_vec()),
        close_decimals: 2,
    }
}

fn close_enough(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn assert_same(batch: &Metrics, plain: &Metrics, what: &str) -> Result<(), TestCaseError> {
    let pairs = [
        ("total_return", batch.total_return, plain.total_return),
        ("cagr", batch.cagr, plain.cagr),
        ("sharpe", batch.sharpe, plain.sharpe),
        ("sortino", batch.sortino, plain.sortino),
        ("volatility", batch.volatility, plain.volatility),
        ("max_drawdown", batch.max_drawdown, plain.max_drawdown),
    ];
    for (name, a, b) in pairs {
        prop_assert!(close_enough(a, b), "{what}: {name} batch {a} vs plain {b}");
    }
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
                let plain = reference::evaluate_one(open_px, &data.close, &close, &config, *combo);
                assert_same(got, &plain, &format!("{config:?} {combo:?} over {bars} bars"))?;
            }
        }
    }
}

#[test]
fn an_exact_tie_is_not_a_crossing() {
    // fast(2) and slow(4) means are both 10.00 at bar 3: exactly equal, so no entry.
    let close = [1000, 1000, 1000, 1000, 1100, 1200];
    let data = series(&close, &close);
    let batch = SmaBatch::new(&data, 4).unwrap();
    let config =
        SmaConfig { direction: Direction::Long, fill: Fill::Close, fee: 0.0, convention: Convention::Standard };
    let mut out = [Metrics::default()];
    batch.evaluate(&config, &[SmaCombo { fast: 2, slow: 4 }], &mut out).unwrap();
    // Entered at bar 4's close (11.00 > mean 10.25), then held to 12.00.
    assert_eq!(out[0].trades, 1);
    assert!((out[0].total_return - (12.0 / 11.0 - 1.0)).abs() < 1e-15);
}
