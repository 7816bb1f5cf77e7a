//! Differential test of every available SIMD path (and the one-lane portable path) against
//! the scalar kernel, on random prices of 1..600 bars, combo counts that are not multiples
//! of the vector width, shuffled (non-contiguous) and grid-ordered (contiguous) combos,
//! all 8 variants.

use proptest::prelude::*;
use sweeprun_kernel::arch::KernelPath;
use sweeprun_kernel::date::Date;
use sweeprun_kernel::decimal::{Decimal, ExactCloses};
use sweeprun_kernel::metrics::PERIODS_PER_YEAR;
use sweeprun_kernel::metrics::{Convention, Metrics};
use sweeprun_kernel::overfitting::{self, BlockSumsOut, Blocks};
use sweeprun_kernel::prices::AssetSeries;
use sweeprun_kernel::sma::{Direction, Fill, SmaBatch, SmaCombo, SmaConfig};

fn series(open: &[i64], close: &[i64]) -> AssetSeries {
    AssetSeries {
        symbol: "RND".into(),
        dates: (0..close.len() as i32).map(Date::from_days).collect(),
        open: Some(open.iter().map(|&c| c as f64 / 100.0).collect()),
        close: close.iter().map(|&c| c as f64 / 100.0).collect(),
        close_exact: ExactCloses::from_i64(close.to_vec(), 2),
    }
}

/// Random walk in cents; lengths 1..600.
fn prices() -> impl Strategy<Value = (Vec<i64>, Vec<i64>)> {
    (1usize..600, 100i64..50_000).prop_flat_map(|(bars, start)| {
        (prop::collection::vec(-60i64..=60, bars), prop::collection::vec(-40i64..=40, bars)).prop_map(
            move |(steps, gaps)| {
                let mut level = start;
                let close: Vec<i64> = steps
                    .iter()
                    .map(|s| {
                        level = (level + s).max(1);
                        level
                    })
                    .collect();
                let open = close.iter().zip(gaps).map(|(c, g)| (c + g).max(1)).collect();
                (open, close)
            },
        )
    })
}

/// The reference tolerance `|a - b| <= 1e-9 · max(1, |b|)`. The paths agree far closer
/// (equity paths are bit-identical; long-only returns differ by ~1e-16 each), but a ratio
/// whose mean return is near zero amplifies that to ~1e-12 absolute.
fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

fn check(path: KernelPath, batch: &SmaBatch, combos: &[SmaCombo]) -> Result<(), TestCaseError> {
    for direction in [Direction::Long, Direction::LongShort] {
        for fill in [Fill::Open, Fill::Close] {
            for fee in [0.0, 0.001] {
                let config = SmaConfig { direction, fill, fee, convention: Convention::Standard };
                let mut want = vec![Metrics::default(); combos.len()];
                let mut got = want.clone();
                batch.evaluate_on(KernelPath::Scalar, &config, combos, &mut want).unwrap();
                batch.evaluate_on(path, &config, combos, &mut got).unwrap();
                for ((combo, g), w) in combos.iter().zip(&got).zip(&want) {
                    let what = format!("{path} {config:?} {combo:?}");
                    prop_assert_eq!(g.trades, w.trades, "{}: trades", what);
                    prop_assert_eq!(g.max_drawdown_duration, w.max_drawdown_duration, "{}: dd duration", what);
                    for (name, x, y) in [
                        ("total_return", g.total_return, w.total_return),
                        ("cagr", g.cagr, w.cagr),
                        ("sharpe", g.sharpe, w.sharpe),
                        ("sortino", g.sortino, w.sortino),
                        ("volatility", g.volatility, w.volatility),
                        ("max_drawdown", g.max_drawdown, w.max_drawdown),
                    ] {
                        prop_assert!(same(x, y), "{}: {} {} vs scalar {}", what, name, x, y);
                    }
                }
            }
        }
    }
    Ok(())
}

/// [`check`] on a batch prepared for `combos`' windows, over the whole list and in
/// `split`-sized pieces, on every vector path.
fn check_prepared(data: &AssetSeries, bars: u32, combos: &[SmaCombo], split: usize) -> Result<(), TestCaseError> {
    for path in vector_paths() {
        let mut batch = SmaBatch::new(data, bars).unwrap();
        let fast: Vec<u32> = combos.iter().map(|c| c.fast).collect();
        let slow: Vec<u32> = combos.iter().map(|c| c.slow).collect();
        batch.prepare(path, &fast, &slow);
        check(path, &batch, combos)?;
        for part in combos.chunks(split) {
            check(path, &batch, part)?;
        }
    }
    Ok(())
}

fn vector_paths() -> Vec<KernelPath> {
    KernelPath::available().into_iter().filter(|p| *p != KernelPath::Scalar).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_path_equals_scalar((open, close) in prices(), seed in any::<u64>(), count in 1usize..40) {
        let bars = close.len() as u32;
        let data = series(&open, &close);
        let batch = SmaBatch::new(&data, bars).unwrap();
        // Random windows (fast may even exceed slow: the kernel must not care); slow >= 2.
        let mut x = seed | 1;
        let mut next = |n: u32| { x ^= x << 13; x ^= x >> 7; x ^= x << 17; (x % u64::from(n)) as u32 + 1 };
        if bars < 2 {
            let degenerate = SmaCombo { fast: 1, slow: 1 };
            prop_assert!(batch.check_combo(degenerate).is_err(), "a slow window of 1 is refused");
            return Ok(());
        }
        let shuffled: Vec<SmaCombo> =
            (0..count).map(|_| SmaCombo { fast: next(bars), slow: next(bars - 1) + 1 }).collect();
        // Grid order: one fast, consecutive slows (whole tiles plus a partial one).
        let fast = next(bars);
        let grid: Vec<SmaCombo> = (2..=bars).take(count + 3).map(|slow| SmaCombo { fast, slow }).collect();
        // Grid order with a slow step (a range with `step = k`): strided prefix groups.
        let stride = next(7) as usize;
        let strided: Vec<SmaCombo> =
            (2..=bars).step_by(stride).take(count + 3).map(|slow| SmaCombo { fast, slow }).collect();
        for path in vector_paths() {
            check(path, &batch, &shuffled)?;
            check(path, &batch, &grid)?;
            check(path, &batch, &strided)?;
        }
    }
}

#[test]
fn the_vector_paths_of_this_machine_are_tested() {
    let paths = vector_paths();
    assert!(paths.contains(&KernelPath::Portable));
    if cfg!(target_arch = "aarch64") {
        assert!(paths.contains(&KernelPath::Neon), "NEON is baseline on aarch64");
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        assert!(paths.contains(&KernelPath::Avx2));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// A combo's numbers must not depend on which combos share its vector: the launcher
    /// splits a sweep into chunks differently for every rank count, and the tables of
    /// `-np 1` and `-np 4` runs (and resumed runs) must be byte-identical.
    #[test]
    fn results_do_not_depend_on_grouping((open, close) in prices(), split in 1usize..9) {
        let bars = close.len() as u32;
        prop_assume!(bars >= 12);
        let data = series(&open, &close);
        let batch = SmaBatch::new(&data, bars).unwrap();
        let combos: Vec<SmaCombo> =
            (1..=4u32).flat_map(|fast| (fast + 1..=bars.min(fast + 10)).map(move |slow| SmaCombo { fast, slow })).collect();
        for path in vector_paths() {
            for direction in [Direction::Long, Direction::LongShort] {
                let config = SmaConfig { direction, fill: Fill::Open, fee: 0.001, convention: Convention::Standard };
                let mut whole = vec![Metrics::default(); combos.len()];
                batch.evaluate_on(path, &config, &combos, &mut whole).unwrap();
                let mut pieces = vec![Metrics::default(); combos.len()];
                for (part, slots) in combos.chunks(split).zip(pieces.chunks_mut(split)) {
                    batch.evaluate_on(path, &config, part, slots).unwrap();
                }
                for (combo, (a, b)) in combos.iter().zip(whole.iter().zip(&pieces)) {
                    let bits = |m: &Metrics| [m.total_return, m.sharpe, m.sortino, m.cagr, m.volatility, m.max_drawdown].map(f64::to_bits);
                    prop_assert_eq!(bits(a), bits(b), "{} {:?} {:?}", path, direction, combo);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// A sweep's batch announces its windows (`prepare`): groups of consecutive slow
    /// windows read the prefix sums, the rest the tables built on first need. Both kinds in
    /// one call, in whole-grid and chunked calls, against the scalar kernel.
    #[test]
    fn a_prepared_batch_mixing_prefix_and_table_groups_equals_scalar((open, close) in prices(), split in 1usize..20) {
        let bars = close.len() as u32;
        prop_assume!(bars >= 40);
        let data = series(&open, &close);
        // Per fast window: slows fast+1..fast+9 (consecutive: prefix groups), every third up
        // to fast+21 (a step: strided prefix groups), then gaps of 1, 2, 3, 4 (no step: tables).
        let combos: Vec<SmaCombo> = (1..=3u32)
            .flat_map(|fast| {
                let consecutive = fast + 1..=fast + 9;
                let spaced = (fast + 12..=fast + 21).step_by(3);
                let irregular = [1, 3, 6, 10, 15].map(|gap| fast + 21 + gap);
                consecutive.chain(spaced).chain(irregular).map(move |slow| SmaCombo { fast, slow })
            })
            .collect();
        check_prepared(&data, bars, &combos, split)?;
    }
}

/// A series from closes written as decimal text (opens 0.3 % above), as the loader builds it.
fn float_series(texts: &[String]) -> AssetSeries {
    let decimals: Vec<Decimal> = texts.iter().map(|t| Decimal::parse(t).unwrap()).collect();
    let close: Vec<f64> = texts.iter().map(|t| t.parse().unwrap()).collect();
    AssetSeries {
        symbol: "FLT".into(),
        dates: (0..close.len() as i32).map(Date::from_days).collect(),
        open: Some(close.iter().map(|c| c * 1.003).collect()),
        close_exact: ExactCloses::from_decimals(&decimals).unwrap(),
        close,
    }
}

/// Float-written prices (17 significant digits, like a pandas `Adj Close`) with planted
/// exact ties: stretches where the closes alternate between two values, so that the 2-bar
/// and 4-bar SMAs are equal as written while their f64 window sums differ by rounding.
fn float_prices() -> impl Strategy<Value = Vec<String>> {
    (8usize..300, 50.0f64..5000.0, prop::collection::vec((-300i32..=300, 0u8..6), 300)).prop_map(
        |(bars, start, steps)| {
            let mut level = start;
            let mut texts: Vec<String> = Vec::with_capacity(bars);
            for &(step, kind) in steps.iter().take(bars) {
                level *= 1.0 + f64::from(step) * 1e-4;
                // kind 0: repeat the close two bars back (ties of 2 vs 4 bars follow).
                let text = match (kind, texts.len()) {
                    (0, n) if n >= 2 => texts[n - 2].clone(),
                    _ => format!("{:?}", level * 1.000_000_000_123_456_7),
                };
                texts.push(text);
            }
            texts
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The filtered comparison of float-written prices, near-ties decided exactly, equals
    /// the scalar kernel's exact comparison on every vector path, for prefix and table groups.
    #[test]
    fn float_written_prices_every_path_equals_scalar(texts in float_prices(), split in 1usize..12) {
        let data = float_series(&texts);
        let bars = texts.len() as u32;
        let combos: Vec<SmaCombo> = (1..=4u32)
            .flat_map(|fast| (fast + 1..=bars.min(fast + 14)).map(move |slow| SmaCombo { fast, slow }))
            .chain((2..=bars).step_by(3).map(|slow| SmaCombo { fast: 2, slow }))
            .collect();
        check_prepared(&data, bars, &combos, split)?;
    }
}

/// Closes alternating between two 17-digit values: the 2-bar and 4-bar SMAs tie exactly
/// as written on every bar, but not in f64 (the naive float comparison says "above" on
/// some bars). Every path must see the tie: long-only never enters, long/short goes
/// short once.
#[test]
fn float_written_ties_are_not_crossings_on_any_path() {
    let (a, b) = ("1234.5678901234567", "1187.0000000000002");
    let texts: Vec<String> = (0..400).map(|t| if t % 2 == 0 { a } else { b }.to_string()).collect();
    let data = float_series(&texts);
    // Window sums as differences of running f64 sums, as a vector path computes them.
    let prefix: Vec<f64> = std::iter::once(0.0)
        .chain(data.close.iter().scan(0.0, |sum, &c| {
            *sum += c;
            Some(*sum)
        }))
        .collect();
    let naive_above = (3..texts.len()).any(|t| {
        let (fast, slow) = (prefix[t + 1] - prefix[t - 1], prefix[t + 1] - prefix[t - 3]);
        fast * 4.0 > slow * 2.0
    });
    assert!(naive_above, "the f64 sums must not tie everywhere, or this test shows nothing");
    let batch = SmaBatch::new(&data, 4).unwrap();
    let combo = [SmaCombo { fast: 2, slow: 4 }; 9];
    for path in KernelPath::available() {
        for (direction, trades) in [(Direction::Long, 0), (Direction::LongShort, 1)] {
            let config = SmaConfig { direction, fill: Fill::Close, fee: 0.0, convention: Convention::Standard };
            let mut out = [Metrics::default(); 9];
            batch.evaluate_on(path, &config, &combo, &mut out).unwrap();
            assert!(out.iter().all(|m| m.trades == trades), "{path} {direction:?}: {out:?}");
        }
    }
}

/// Long-only equity never goes below zero, whatever the prices: an absurd open (1e-300)
/// at a bar where a position is sold must not leave the rounding residue of the buy as
/// negative equity (a drawdown above 100 %). Every path, every combo.
#[test]
fn long_only_drawdowns_never_exceed_everything() {
    let close: Vec<i64> = (0..120).map(|t| 10_000 + ((t * 37) % 23) * 40 - ((t * 11) % 7) * 60).collect();
    let data = series(&close, &close);
    let combos: Vec<SmaCombo> =
        (1..=6u32).flat_map(|fast| (fast + 1..=fast + 12).map(move |slow| SmaCombo { fast, slow })).collect();
    for absurd_bar in 1..close.len() {
        let mut data = data.clone();
        data.open.as_mut().unwrap()[absurd_bar] = 1e-300;
        let batch = SmaBatch::new(&data, 18).unwrap();
        for path in KernelPath::available() {
            for fee in [0.0, 0.001, 0.1] {
                let config =
                    SmaConfig { direction: Direction::Long, fill: Fill::Open, fee, convention: Convention::Standard };
                let mut out = vec![Metrics::default(); combos.len()];
                batch.evaluate_on(path, &config, &combos, &mut out).unwrap();
                for (combo, m) in combos.iter().zip(&out) {
                    assert!(m.max_drawdown <= 1.0, "{path} fee {fee} {combo:?} open 1e-300 at {absurd_bar}: {m:?}");
                    assert!(m.total_return >= -1.0, "{path} {combo:?}: {m:?}");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The per-block sums of returns and squared returns (the overfitting statistics'
    /// inputs): every vector path against the scalar path's, which adds each return of its
    /// equity curve into its block; also bit for bit the same whether the combos run in
    /// one call or in pieces (they are journaled per chunk and resumed), and adding up to
    /// the full-sample return sum the Sharpe ratio comes from.
    #[test]
    fn block_sums_match_the_scalar_path_and_do_not_depend_on_grouping(
        (open, close) in prices(),
        half in 1usize..4,
        split in 1usize..9,
    ) {
        let bars = close.len() as u32;
        let blocks = 2 * half;
        prop_assume!(bars as usize > 2 * blocks && bars >= 12);
        let data = series(&open, &close);
        let batch = SmaBatch::new(&data, bars).unwrap();
        let combos: Vec<SmaCombo> =
            (1..=4u32).flat_map(|fast| (fast + 1..=bars.min(fast + 12)).map(move |slow| SmaCombo { fast, slow })).collect();
        let layout = Blocks::new(bars as usize - 1, blocks).unwrap();
        let run = |path: KernelPath, config: &SmaConfig, combos: &[SmaCombo]| {
            let mut metrics = vec![Metrics::default(); combos.len()];
            let mut sums = vec![f64::NAN; combos.len() * blocks];
            let mut squares = sums.clone();
            let out = BlockSumsOut { blocks: &layout, sums: &mut sums, squares: &mut squares };
            batch.evaluate_blocks_on(path, config, combos, &mut metrics, Some(out)).unwrap();
            (metrics, sums, squares)
        };
        for direction in [Direction::Long, Direction::LongShort] {
            for fill in [Fill::Open, Fill::Close] {
                let config = SmaConfig { direction, fill, fee: 0.001, convention: Convention::Standard };
                let (_, want_sums, want_squares) = run(KernelPath::Scalar, &config, &combos);
                for path in vector_paths() {
                    let (metrics, sums, squares) = run(path, &config, &combos);
                    for (i, combo) in combos.iter().enumerate() {
                        for b in 0..blocks {
                            let at = i * blocks + b;
                            prop_assert!(same(sums[at], want_sums[at]) && same(squares[at], want_squares[at]),
                                "{} {:?} {:?} {:?} block {}: ({}, {}) vs scalar ({}, {})", path, direction, fill, combo, b,
                                sums[at], squares[at], want_sums[at], want_squares[at]);
                        }
                        // The blocks add up to the full sample: the table's Sharpe ratio.
                        let n = f64::from(bars - 1);
                        let sum: f64 = sums[i * blocks..(i + 1) * blocks].iter().sum();
                        let sum_sq: f64 = squares[i * blocks..(i + 1) * blocks].iter().sum();
                        let annualised = overfitting::sharpe(n, sum, sum_sq) * PERIODS_PER_YEAR.sqrt();
                        let table = metrics[i].sharpe;
                        prop_assert!(same(annualised, table) || (!table.is_finite() && annualised == 0.0),
                            "{} {:?} {:?} {:?}: Sharpe from blocks {} vs {}", path, direction, fill, combo, annualised, table);
                    }
                    let mut piece_sums = Vec::new();
                    let mut piece_squares = Vec::new();
                    for part in combos.chunks(split) {
                        let (_, s, q) = run(path, &config, part);
                        piece_sums.extend(s);
                        piece_squares.extend(q);
                    }
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    prop_assert_eq!(bits(&sums), bits(&piece_sums), "{} {:?} {:?}: sums by grouping", path, direction, fill);
                    prop_assert_eq!(bits(&squares), bits(&piece_squares), "{} {:?} {:?}", path, direction, fill);
                }
            }
        }
    }
}
