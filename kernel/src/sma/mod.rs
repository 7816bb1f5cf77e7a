//! `sma_cross`: the moving-average crossover, evaluated as a batch of (fast, slow) combos.
//!
//! Semantics (normative: `reference/sma/README.md` of the project's reference data):
//!
//! * `SMA(n)[t]` = mean of `close[t-n+1..=t]`; the signal at close `t` compares the fast and
//!   slow means **exactly, on the closes as written** (decimal text), as
//!   `sum_fast·slow > sum_slow·fast` on integer window sums, so a tie is "not greater"
//!   (see `sma/signal.rs` for how float-written prices keep this fast).
//! * `long`: target 1 if fast > slow else 0; `long_short`: +1 else -1; target 0 until the
//!   slow SMA exists (`t < slow-1`; with a fast window longer than the slow one, until
//!   both exist).
//! * `fill = open`: the target of close `t` executes at `open[t+1]`; `fill = close`: at `close[t]`.
//! * An execution closes any open position, then opens the new one with all the cash
//!   (fractional shares), charging `fee · |shares| · price` on every fill. Shorts hold a
//!   constant share count. Equity is marked at the close.
//!
//! The batch shares all precomputation (one prefix sum of integer closes serves every
//! window) and allocates nothing per combo.

pub mod reference;
mod signal;
mod simd;

use crate::arch::{KernelChoiceError, KernelPath};
use crate::metrics::{Convention, EquityStats, Metrics, QstraderStats, StandardStats};
use crate::overfitting::{curve_block_sums, BlockSumsOut, Blocks};
use crate::prices::AssetSeries;
use signal::{Regime, Signals};
use std::fmt;

/// Long-only or long/short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Long when fast > slow, flat otherwise.
    Long,
    /// Long when fast > slow, short otherwise.
    LongShort,
}

/// When a signal is executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// At the next bar's open.
    Open,
    /// At the same bar's close.
    Close,
}

/// The fixed (non-swept) settings of a sweep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SmaConfig {
    /// Long-only or long/short.
    pub direction: Direction,
    /// Fill timing.
    pub fill: Fill,
    /// Fraction of traded value charged on every fill.
    pub fee: f64,
    /// Statistics convention of the metrics.
    pub convention: Convention,
}

/// One (fast, slow) window pair, in bars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmaCombo {
    /// Fast window length (>= 1).
    pub fast: u32,
    /// Slow window length (>= 1).
    pub slow: u32,
}

impl SmaCombo {
    /// The first bar whose close has both SMAs (`max(fast, slow) - 1`); flat before it.
    pub fn first_signal(self) -> usize {
        self.fast.max(self.slow) as usize - 1
    }
}

/// Why a batch cannot be prepared or a combo evaluated.
#[derive(Clone, Debug, PartialEq)]
pub enum SmaError {
    /// `fill = open` needs open prices, and the data has none.
    NoOpenPrices,
    /// A window is 0 or longer than the data, or the slow window is 1.
    BadWindow {
        /// The window length.
        window: u32,
        /// Bars in the data.
        bars: usize,
    },
    /// The fee is negative, NaN or >= 1.
    BadFee(f64),
    /// `SWEEPRUN_KERNEL` names a path this machine cannot run.
    Kernel(KernelChoiceError),
}

impl fmt::Display for SmaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SmaError::NoOpenPrices => {
                write!(f, "fill = \"open\" needs an Open column in the data (or use fill = \"close\")")
            }
            SmaError::BadWindow { window, bars } => {
                write!(f, "window {window} must be between 1 (2 for slow) and the {bars} bars of data")
            }
            SmaError::BadFee(fee) => write!(f, "fee must be a fraction in [0, 1), got {fee}"),
            SmaError::Kernel(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SmaError {}

/// Precomputed state for evaluating many combos over one price series.
#[derive(Clone, Debug)]
pub struct SmaBatch<'a> {
    open: Option<&'a [f64]>,
    close: &'a [f64],
    /// Exact prefix sums of the closes as written, and how signals are decided.
    signals: Signals,
    /// Largest window length the products were checked for.
    max_window: u32,
    /// Prefix sums of the asset's returns, their squares and downside squares: what a
    /// long-only lane adds for a run of bars it holds between trades (see `simd::Inputs`).
    held: simd::HeldPrefix,
    /// The windows announced by [`SmaBatch::prepare`], with their tables once needed.
    prepared: Option<Prepared>,
    /// The vector paths' f64 prefix (exact integers, or the filtered prefix of the
    /// closes: see `signal.rs`), after [`simd::PREFIX_PAD`] zeros.
    prefix_f64: Vec<f64>,
}

/// Windows announced for a sweep and their tables, built on first need.
#[derive(Clone, Debug)]
struct Prepared {
    lanes: usize,
    /// Sorted, distinct.
    fast: Vec<u32>,
    /// Sorted, distinct.
    slow: Vec<u32>,
    tables: std::sync::OnceLock<simd::SumTables>,
}

impl Prepared {
    fn covers(&self, combos: &[SmaCombo]) -> bool {
        combos.iter().all(|c| self.fast.binary_search(&c.fast).is_ok() && self.slow.binary_search(&c.slow).is_ok())
    }
}

impl<'a> SmaBatch<'a> {
    /// Prepares `series` for combos whose windows are all `<= max_window`.
    pub fn new(series: &'a AssetSeries, max_window: u32) -> Result<SmaBatch<'a>, SmaError> {
        let bars = series.len();
        if max_window == 0 || max_window as usize > bars {
            return Err(SmaError::BadWindow { window: max_window, bars });
        }
        let signals = Signals::new(&series.close_exact, &series.close, max_window);
        let padding = std::iter::repeat_n(0.0, simd::PREFIX_PAD);
        let prefix_f64 = padding.chain(signals.approx.iter().copied()).collect();
        let close = &series.close;
        let held = simd::HeldPrefix::new(close);
        Ok(SmaBatch { open: series.open.as_deref(), close, signals, max_window, held, prepared: None, prefix_f64 })
    }

    /// Announces every fast and slow window a sweep uses, so that the SIMD window-sum
    /// tables are built once, for all of them (consecutive slow windows in adjacent
    /// columns), when the first group of combos needs them. Groups of consecutive slow
    /// windows never do (they read the prefix sums), so a grid of step-1 slow windows
    /// builds no tables at all. Without it, each evaluate call that needs tables builds
    /// them for its own combos.
    pub fn prepare(&mut self, path: KernelPath, fast_windows: &[u32], slow_windows: &[u32]) {
        if path != KernelPath::Scalar && self.signals.regime != Regime::ExactOnly {
            let distinct = |windows: &[u32]| {
                let mut windows = windows.to_vec();
                windows.sort_unstable();
                windows.dedup();
                windows
            };
            self.prepared = Some(Prepared {
                lanes: lanes_of(path),
                fast: distinct(fast_windows),
                slow: distinct(slow_windows),
                tables: std::sync::OnceLock::new(),
            });
        }
    }

    /// Number of bars.
    pub fn bars(&self) -> usize {
        self.close.len()
    }

    /// Checks that `combo` can be evaluated by this batch.
    pub fn check_combo(&self, combo: SmaCombo) -> Result<(), SmaError> {
        for window in [combo.fast, combo.slow] {
            if window == 0 || window > self.max_window {
                return Err(SmaError::BadWindow { window, bars: self.bars() });
            }
        }
        // A slow window of 1 would trade at bar 0, before the first return.
        if combo.slow < 2 {
            return Err(SmaError::BadWindow { window: combo.slow, bars: self.bars() });
        }
        Ok(())
    }

    /// Evaluates `combos` under `config`, writing one [`Metrics`] per combo into `out`.
    ///
    /// # Panics
    /// If `out.len() != combos.len()`, or a combo fails [`SmaBatch::check_combo`].
    pub fn evaluate(&self, config: &SmaConfig, combos: &[SmaCombo], out: &mut [Metrics]) -> Result<(), SmaError> {
        let path = crate::arch::selected_kernel().map_err(SmaError::Kernel)?;
        self.evaluate_on(path, config, combos, out)
    }

    /// The path that [`SmaBatch::evaluate`] takes for `config` on `requested`: the SIMD
    /// paths cover the `standard` statistics of every series whose signals an f64 filter
    /// can decide (any real price series); the rest runs on the scalar kernel.
    pub fn path_for(&self, config: &SmaConfig, requested: KernelPath) -> KernelPath {
        if self.signals.regime != Regime::ExactOnly && config.convention == Convention::Standard {
            requested
        } else {
            KernelPath::Scalar
        }
    }

    /// [`SmaBatch::evaluate`] on an explicit kernel path (which must be available here).
    pub fn evaluate_on(
        &self,
        path: KernelPath,
        config: &SmaConfig,
        combos: &[SmaCombo],
        out: &mut [Metrics],
    ) -> Result<(), SmaError> {
        self.evaluate_blocks_on(path, config, combos, out, None)
    }

    /// [`SmaBatch::evaluate_on`], also writing each combo's sums of `standard` returns
    /// (`r_t = equity_t / equity_(t-1) - 1`, bars 1..) and of their squares per block of
    /// `blocks` (which must cover this batch's `bars - 1` returns), the inputs of the
    /// overfitting statistics ([`crate::overfitting`]).
    ///
    /// # Panics
    /// As [`SmaBatch::evaluate`], or if `blocks` does not fit the bars or the combos.
    pub fn evaluate_blocks_on(
        &self,
        path: KernelPath,
        config: &SmaConfig,
        combos: &[SmaCombo],
        out: &mut [Metrics],
        blocks: Option<BlockSumsOut>,
    ) -> Result<(), SmaError> {
        let bounds: Vec<usize> = match &blocks {
            Some(b) => {
                assert_eq!(b.blocks.returns() + 1, self.bars(), "blocks over every return");
                assert!(b.sums.len() == combos.len() * b.blocks.len() && b.squares.len() == b.sums.len());
                std::iter::once(1)
                    .chain(b.blocks.lengths().iter().scan(1, |bar, len| {
                        *bar += len;
                        Some(*bar)
                    }))
                    .collect()
            }
            None => Vec::new(),
        };
        assert_eq!(combos.len(), out.len(), "one output slot per combo");
        if !(config.fee >= 0.0 && config.fee < 1.0) {
            return Err(SmaError::BadFee(config.fee));
        }
        if !path.is_available() {
            return Err(SmaError::Kernel(KernelChoiceError(format!("the {path} kernel is not available here"))));
        }
        let open = match config.fill {
            Fill::Open => self.open.ok_or(SmaError::NoOpenPrices)?,
            Fill::Close => self.close,
        };
        for combo in combos {
            self.check_combo(*combo).unwrap_or_else(|e| panic!("unchecked combo {combo:?}: {e}"));
        }
        let path = self.path_for(config, path);
        let layout = blocks.as_ref().map(|b| b.blocks);
        let mut blocks = blocks.map(|b| simd::BlockOut { sums: b.sums, squares: b.squares });
        if path == KernelPath::Scalar {
            match config.convention {
                Convention::Standard => self.evaluate_with::<StandardStats>(config, combos, open, out),
                Convention::Qstrader => self.evaluate_with::<QstraderStats>(config, combos, open, out),
            }
            if let (Some(blocks), Some(layout)) = (blocks.as_mut(), layout) {
                self.scalar_block_sums(config, combos, open, layout, blocks);
            }
            return Ok(());
        }
        let lanes = lanes_of(path);
        let prepared = self.prepared.as_ref().filter(|p| p.lanes == lanes && p.covers(combos));
        let for_this_call = std::sync::OnceLock::new();
        let tables = || match prepared {
            Some(p) => {
                p.tables.get_or_init(|| simd::SumTables::from_windows(&self.signals.approx, &p.fast, &p.slow, lanes))
            }
            None => for_this_call.get_or_init(|| simd::SumTables::new(&self.signals.approx, combos, lanes)),
        };
        let inputs = simd::Inputs {
            tables: &tables,
            prefix: &self.prefix_f64,
            exact: &self.signals.exact,
            close: self.close,
            held: &self.held,
            fill_price: open,
            fee: config.fee,
            block_bounds: &bounds,
        };
        let filtered = self.signals.regime == Regime::Filtered;
        // SAFETY: `path.is_available()` was checked above, so the CPU runs its instructions.
        unsafe {
            match path {
                KernelPath::Portable => {
                    simd::evaluate::<crate::arch::portable::One>(&inputs, filtered, config, combos, out, blocks)
                }
                #[cfg(target_arch = "x86_64")]
                KernelPath::Avx512 => evaluate_avx512(&inputs, filtered, config, combos, out, blocks),
                #[cfg(target_arch = "x86_64")]
                KernelPath::Avx2 => evaluate_avx2(&inputs, filtered, config, combos, out, blocks),
                #[cfg(target_arch = "aarch64")]
                KernelPath::Neon => evaluate_neon(&inputs, filtered, config, combos, out, blocks),
                _ => unreachable!("{path} is not available on this target"),
            }
        }
        Ok(())
    }

    /// The scalar path's block sums: each combo's `standard` returns, from its equity
    /// curve (`reference::equity_curve`, the scalar kernel's own account), added in
    /// return order into their blocks.
    fn scalar_block_sums(
        &self,
        config: &SmaConfig,
        combos: &[SmaCombo],
        fill: &[f64],
        layout: &Blocks,
        out: &mut simd::BlockOut,
    ) {
        let blocks = layout.len();
        for (c, combo) in combos.iter().enumerate() {
            let (curve, _) = self.equity_path(config, *combo, fill);
            let at = c * blocks..(c + 1) * blocks;
            curve_block_sums(&curve, layout, &mut out.sums[at.clone()], &mut out.squares[at]);
        }
    }

    /// One combo's equity at every bar, as the scalar kernel runs it.
    fn equity_path(&self, config: &SmaConfig, combo: SmaCombo, fill: &[f64]) -> (Vec<f64>, Metrics) {
        let mut curve = CurveStats::default();
        curve.reset(1.0);
        let metrics = self.run_variant(config, combo, fill, &mut curve);
        (curve.equity, metrics)
    }

    fn evaluate_with<S: EquityStats>(
        &self,
        config: &SmaConfig,
        combos: &[SmaCombo],
        fill: &[f64],
        out: &mut [Metrics],
    ) {
        let mut stats = S::default();
        for (combo, slot) in combos.iter().zip(out.iter_mut()) {
            stats.reset(1.0);
            *slot = self.run_variant(config, *combo, fill, &mut stats);
        }
    }

    /// One combo on the scalar kernel: the signal's exact comparison is chosen once per
    /// combo (a closure per integer width, inlined into the bar loop), not per bar.
    #[inline(always)]
    fn run_variant<S: EquityStats>(&self, config: &SmaConfig, combo: SmaCombo, fill: &[f64], stats: &mut S) -> Metrics {
        let (fast, slow) = (combo.fast, combo.slow);
        match &self.signals.exact {
            signal::ExactPrefix::I64(p) => {
                self.run_direction(config, combo, fill, stats, |t| signal::window_above(p, fast, slow, t))
            }
            signal::ExactPrefix::I128(p) => {
                self.run_direction(config, combo, fill, stats, |t| signal::window_above(p, fast, slow, t))
            }
            signal::ExactPrefix::Big(_) => {
                self.run_direction(config, combo, fill, stats, |t| self.signals.fast_above(fast, slow, t))
            }
        }
    }

    #[inline(always)]
    fn run_direction<S: EquityStats>(
        &self,
        config: &SmaConfig,
        combo: SmaCombo,
        fill: &[f64],
        stats: &mut S,
        fast_above: impl Fn(usize) -> bool,
    ) -> Metrics {
        match (config.direction, config.fill) {
            (Direction::Long, Fill::Open) => self.run::<S, false, true>(combo, fill, config.fee, stats, fast_above),
            (Direction::Long, Fill::Close) => self.run::<S, false, false>(combo, fill, config.fee, stats, fast_above),
            (Direction::LongShort, Fill::Open) => self.run::<S, true, true>(combo, fill, config.fee, stats, fast_above),
            (Direction::LongShort, Fill::Close) => {
                self.run::<S, true, false>(combo, fill, config.fee, stats, fast_above)
            }
        }
    }

    /// One combo's simulation; `fill_price` is the open (fill at next open) or the close.
    #[inline(always)]
    fn run<S: EquityStats, const LONG_SHORT: bool, const FILL_OPEN: bool>(
        &self,
        combo: SmaCombo,
        fill_price: &[f64],
        fee: f64,
        stats: &mut S,
        fast_above: impl Fn(usize) -> bool,
    ) -> Metrics {
        let close = self.close;
        let bars = close.len();
        let mut account = Account { cash: 1.0, shares: 0.0, position: 0, trades: 0 };
        // Before the slow SMA exists the target is 0: equity stays 1.0, every return is 0.
        let first_signal = combo.first_signal();
        stats.push_flat(first_signal.saturating_sub(1) as u32);
        let mut pending: i8 = 0;
        for t in first_signal..bars {
            if FILL_OPEN && pending != account.position {
                account.execute(pending, fill_price[t], fee);
            }
            let target = if fast_above(t) {
                1
            } else if LONG_SHORT {
                -1
            } else {
                0
            };
            if FILL_OPEN {
                pending = target;
            } else if target != account.position {
                account.execute(target, fill_price[t], fee);
            }
            if t > 0 {
                stats.push(account.cash + account.shares * close[t]);
            }
        }
        stats.finish(account.trades)
    }
}

/// An [`EquityStats`] that keeps the whole equity curve (bar 0 on).
#[derive(Default)]
struct CurveStats {
    equity: Vec<f64>,
}

impl EquityStats for CurveStats {
    fn reset(&mut self, initial: f64) {
        self.equity.clear();
        self.equity.push(initial);
    }
    fn push_flat(&mut self, count: u32) {
        let last = *self.equity.last().expect("reset first");
        self.equity.extend(std::iter::repeat_n(last, count as usize));
    }
    fn push(&mut self, equity: f64) {
        self.equity.push(equity);
    }
    fn finish(&self, trades: u32) -> Metrics {
        Metrics { trades, ..Metrics::default() }
    }
}

/// Lanes per vector of a path.
fn lanes_of(path: KernelPath) -> usize {
    match path {
        KernelPath::Avx512 => 8,
        KernelPath::Avx2 => 4,
        KernelPath::Neon => 2,
        _ => 1,
    }
}

/// Implements [`simd::GroupKernel`] for a lane type: out-of-line copies of the group
/// loop compiled with its instruction set (`$features`, empty for none).
macro_rules! group_kernel {
    ($lanes:ty $(, $features:literal)?) => {
        impl simd::GroupKernel for $lanes {
            $(#[target_feature(enable = $features)])?
            #[inline(never)]
            unsafe fn run_group<const LONG_SHORT: bool, const FILL_OPEN: bool, const PREFIX: bool, const FILTER: bool>(
                inputs: &simd::Inputs,
                prefix_sums: Option<simd::PrefixSums>,
                tables: &simd::SumTables,
                group: &simd::Group<{ simd::MAX_LANES }>,
                combos: &[SmaCombo],
                out: simd::GroupOut,
            ) {
                // SAFETY: forwarded from the caller.
                unsafe {
                    simd::run::<Self, LONG_SHORT, FILL_OPEN, PREFIX, FILTER>(inputs, prefix_sums, tables, group, combos, out)
                }
            }
        }
    };
}

group_kernel!(crate::arch::portable::One);
#[cfg(target_arch = "x86_64")]
group_kernel!(crate::arch::x86_64::avx2::Avx2, "avx2");
#[cfg(target_arch = "x86_64")]
group_kernel!(crate::arch::x86_64::avx512::Avx512, "avx512f,avx512dq");
#[cfg(target_arch = "aarch64")]
group_kernel!(crate::arch::aarch64::neon::Neon, "neon");

/// The generic lane algorithm compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn evaluate_avx2(
    inputs: &simd::Inputs,
    filtered: bool,
    config: &SmaConfig,
    combos: &[SmaCombo],
    out: &mut [Metrics],
    blocks: Option<simd::BlockOut>,
) {
    // SAFETY: forwarded from the caller.
    unsafe { simd::evaluate::<crate::arch::x86_64::avx2::Avx2>(inputs, filtered, config, combos, out, blocks) }
}

/// The generic lane algorithm compiled for AVX-512.
///
/// # Safety
/// The CPU must support AVX-512F and AVX-512DQ.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
unsafe fn evaluate_avx512(
    inputs: &simd::Inputs,
    filtered: bool,
    config: &SmaConfig,
    combos: &[SmaCombo],
    out: &mut [Metrics],
    blocks: Option<simd::BlockOut>,
) {
    // SAFETY: forwarded from the caller.
    unsafe { simd::evaluate::<crate::arch::x86_64::avx512::Avx512>(inputs, filtered, config, combos, out, blocks) }
}

/// The generic lane algorithm compiled for NEON.
///
/// # Safety
/// Always safe on AArch64 (NEON is baseline); unsafe for symmetry with the other paths.
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon")]
unsafe fn evaluate_neon(
    inputs: &simd::Inputs,
    filtered: bool,
    config: &SmaConfig,
    combos: &[SmaCombo],
    out: &mut [Metrics],
    blocks: Option<simd::BlockOut>,
) {
    // SAFETY: forwarded from the caller.
    unsafe { simd::evaluate::<crate::arch::aarch64::neon::Neon>(inputs, filtered, config, combos, out, blocks) }
}

/// Cash, shares and position of one simulated account.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Account {
    pub(crate) cash: f64,
    pub(crate) shares: f64,
    pub(crate) position: i8,
    pub(crate) trades: u32,
}

impl Account {
    /// Moves to `target` (-1, 0, +1) at `price`: close what is open, then open with all the cash.
    #[inline(always)]
    pub(crate) fn execute(&mut self, target: i8, price: f64, fee: f64) {
        if self.position != 0 {
            self.cash = self.cash + self.shares * price - fee * self.shares.abs() * price;
            self.shares = 0.0;
        }
        if target != 0 {
            let size = self.cash / (price * (1.0 + fee));
            if target > 0 {
                self.shares = size;
                // Zero up to rounding (~1e-17 either way). Never below zero: a long-only
                // book that later sells at an absurd price (an open of 1e-300) would
                // otherwise be left with negative equity, a drawdown above 100 %.
                self.cash = (self.cash - size * price - fee * size * price).max(0.0);
            } else {
                self.shares = -size;
                self.cash = self.cash + size * price - fee * size * price;
            }
            self.trades += 1;
        }
        self.position = target;
    }
}

/// Parses a direction as written in a spec (`long`, `long_short`; `longshort` is accepted too).
pub fn parse_direction(text: &str) -> Option<Direction> {
    match text {
        "long" => Some(Direction::Long),
        "long_short" | "longshort" => Some(Direction::LongShort),
        _ => None,
    }
}

/// Parses a fill timing (`open`, `close`).
pub fn parse_fill(text: &str) -> Option<Fill> {
    match text {
        "open" => Some(Fill::Open),
        "close" => Some(Fill::Close),
        _ => None,
    }
}
