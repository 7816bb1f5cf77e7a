//! `sma_cross` across combos: `V::N` combos per vector register, advanced bar by bar.
//!
//! Each lane is one combo running the scalar kernel's arithmetic (same operations, same
//! order, no fused multiply-adds), so equity paths, trades and drawdowns are the scalar
//! kernel's bit for bit. What changes is the layout:
//!
//! * The window sums are laid out bar-major, one column per distinct fast window and one
//!   per distinct slow window of the call, so the slow sums of a group of combos (same
//!   fast, consecutive slows in grid order) are one vector load at each bar, and the fast
//!   sum one broadcast. Groups that are not contiguous gather their lanes one by one.
//! * The SMA comparison `sum_fast·slow > sum_slow·fast` runs in f64: exactly, on integer
//!   prefix sums, when every window sum times a window length stays below 2^53; otherwise
//!   (float-written prices) through a float filter with a proven error bound, lanes inside
//!   the bound (near-ties) being decided by the exact integer comparison (see `signal`).
//! * Position changes are rare: a bar where any lane trades leaves the vector code for a
//!   scalar update of those lanes.
//! * Long-only lanes that did not trade take the asset's return instead of dividing their
//!   equities (the one deviation from bit-identity: ~1e-16 per return, far inside the
//!   1e-9 tolerance; equity, drawdowns and trades stay bit-identical). Between two of its
//!   trades such a lane is flat (return +0.0) or holds the asset, so its held bars enter
//!   its three sums (returns, squares, downside squares) at once, at its next trade or
//!   the last bar, as differences of prefix sums over the asset's returns
//!   ([`HeldPrefix`]): a bar where no lane trades adds nothing to any sum. The order of
//!   a lane's additions depends only on its own trades, so a combo's numbers do not
//!   depend on which combos share its vector.
//! * Long-only trades are decided on masks (target above xor holding); the 0/1 target
//!   vector is built only on bars where a lane trades.

use super::signal::{ExactPrefix, FILTER_TOLERANCE};
use super::{Account, Direction, Fill, SmaCombo, SmaConfig};
use crate::arch::Lanes;
use crate::metrics::{standard_metrics, Metrics, StandardSums};

/// Window sums of one evaluate call, laid out for streaming: each group of combos reads
/// its sums as two sequential streams over the bars (no strided or scattered loads).
#[derive(Clone)]
pub(crate) struct SumTables {
    bars: usize,
    /// Lanes per tile of the slow table (the vector width).
    tile: usize,
    fast_windows: Vec<u32>,
    slow_windows: Vec<u32>,
    /// Column-major: `fast[i * bars + t]` = sum of the closes of bars `t+1-w..=t`
    /// (w = fast_windows[i]); 0 before the window fills.
    fast: Vec<f64>,
    /// Tiles of `tile` slow columns, bar-major inside a tile:
    /// `slow[(i / tile) * bars * tile + t * tile + i % tile]`.
    slow: Vec<f64>,
}

impl std::fmt::Debug for SumTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SumTables({} fast x {} slow windows, {} bars, tile {})",
            self.fast_windows.len(),
            self.slow_windows.len(),
            self.bars,
            self.tile
        )
    }
}

impl SumTables {
    /// Tables of the windows `combos` use, from the f64 prefix sums, for `tile` lanes.
    pub(crate) fn new(prefix: &[f64], combos: &[SmaCombo], tile: usize) -> SumTables {
        let fast: Vec<u32> = combos.iter().map(|c| c.fast).collect();
        let slow: Vec<u32> = combos.iter().map(|c| c.slow).collect();
        SumTables::from_windows(prefix, &fast, &slow, tile)
    }

    /// Tables of the given windows (any order, duplicates allowed). Each sum is
    /// `prefix[t+1] - prefix[t+1-w]` in f64, as the prefix groups compute it (so the
    /// filter's error bound covers both).
    pub(crate) fn from_windows(prefix: &[f64], fast: &[u32], slow: &[u32], tile: usize) -> SumTables {
        let distinct = |windows: &[u32]| {
            let mut windows = windows.to_vec();
            windows.sort_unstable();
            windows.dedup();
            windows
        };
        let fast_windows = distinct(fast);
        let slow_windows = distinct(slow);
        let bars = prefix.len() - 1;
        let window_sum = |w: u32, t: usize| {
            let w = w as usize;
            if t + 1 >= w {
                prefix[t + 1] - prefix[t + 1 - w]
            } else {
                0.0
            }
        };
        let mut fast = Vec::with_capacity(fast_windows.len() * bars);
        for &w in &fast_windows {
            fast.extend((0..bars).map(|t| window_sum(w, t)));
        }
        let tiles = slow_windows.len().div_ceil(tile);
        let mut slow = vec![0.0; tiles * bars * tile];
        for (i, &w) in slow_windows.iter().enumerate() {
            let base = (i / tile) * bars * tile + i % tile;
            for t in 0..bars {
                slow[base + t * tile] = window_sum(w, t);
            }
        }
        SumTables { bars, tile, fast_windows, slow_windows, fast, slow }
    }

    /// No tables (for groups that never read them).
    pub(crate) fn empty(tile: usize) -> SumTables {
        SumTables { bars: 0, tile, fast_windows: vec![], slow_windows: vec![], fast: vec![], slow: vec![] }
    }

    fn column(windows: &[u32], window: u32) -> usize {
        windows.binary_search(&window).expect("window of a combo in this call")
    }

    #[inline(always)]
    fn slow_at(&self, col: usize, t: usize) -> f64 {
        self.slow[(col / self.tile) * self.bars * self.tile + t * self.tile + col % self.tile]
    }
}

/// Lane layout of one group of combos.
#[derive(Clone, Copy)]
pub(crate) struct Group<const MAX: usize> {
    len: usize,
    fast_col: [usize; MAX],
    slow_col: [usize; MAX],
    same_fast: bool,
    /// The lanes are exactly one tile of the slow table.
    whole_tile: bool,
    /// One fast window and slow windows `s, s+k, s+2k, ..` (see [`prefix_group_len`]): the
    /// slow sums come straight from the prefix sums (one vector load of adjacent entries of
    /// the prefix laid out by stride `k`, an array small enough to stay in cache), the lanes
    /// running in descending slow order; no tables are read.
    prefix_slow: bool,
}

impl Group<MAX_LANES> {
    /// A group of `len` lanes served from the prefix sums.
    fn from_prefix(len: usize) -> Self {
        Group {
            len,
            fast_col: [0; MAX_LANES],
            slow_col: [0; MAX_LANES],
            same_fast: true,
            whole_tile: false,
            prefix_slow: true,
        }
    }
}

/// The padded prefix sums laid out by stride `k`, for prefix groups whose slow windows are
/// `k` apart: row `r` holds `P'[r], P'[r+k], P'[r+2k], ..` where `P'` is the prefix after
/// `MAX_LANES·k` zeros. Lane `j` of a group with slowest window `S` needs
/// `P[t+1-S+j·k] = P'[x + j·k]` (`x = t+1-S+MAX_LANES·k`): entries `q..q+N` of row
/// `x mod k`, with `q = x div k`, adjacent, so one vector load. Stride 1 is the padded
/// prefix itself. A permutation of the prefix (plus padding): built per evaluate call, in
/// microseconds.
pub(crate) struct StridedPrefix {
    stride: usize,
    /// Entries per row.
    row_len: usize,
    values: Vec<f64>,
    /// `offsets[x]` = `(x mod k)·row_len + x div k`, where `P'[x]` lives: a bar's load
    /// address is one table load instead of a walk with compares and conditional moves
    /// (a fifth of the hot loop's instructions, which is front-end bound).
    offsets: Vec<u32>,
}

impl StridedPrefix {
    fn new(prefix: &[f64], stride: usize) -> StridedPrefix {
        let pad = MAX_LANES * stride;
        let padded_len = pad + prefix.len();
        // Room for a full vector load past the last entry of every row.
        let row_len = padded_len.div_ceil(stride) + MAX_LANES;
        let mut values = vec![0.0; stride * row_len];
        for (i, &p) in prefix.iter().enumerate() {
            let x = pad + i;
            values[(x % stride) * row_len + x / stride] = p;
        }
        let offsets = (0..padded_len)
            .map(|x| u32::try_from((x % stride) * row_len + x / stride).expect("a price series of < 2^32 / 8 bars"))
            .collect();
        StridedPrefix { stride, row_len, values, offsets }
    }
}

/// What a prefix group reads: the prefix laid out by its slow windows' stride, and its
/// fast window's sums per bar (`P[t+1] - P[t+1-fast]`, 0 before the window fills: one
/// broadcast load per bar instead of a subtraction and a broadcast).
#[derive(Clone, Copy)]
pub(crate) struct PrefixSums<'a> {
    strided: &'a StridedPrefix,
    fast: &'a [f64],
}

/// The largest lane count of any instruction set (AVX2: 4).
pub(crate) const MAX_LANES: usize = 8;

/// Zeros in front of the prefix sums, so that a prefix group's vector load stays in
/// bounds at the bars before its longest window is full.
pub(crate) const PREFIX_PAD: usize = MAX_LANES;

/// Prefix sums over the asset's returns `r[t] = close[t] / close[t-1] - 1` (t >= 1) of
/// `r`, `r·r` and `min(r, 0)²`: entry `i` sums bars `1..i`, so bars `a..b` held by a
/// long-only lane add `entry[b] - entry[a]` to its three sums. A lane that holds from
/// one trade to the next never divides or adds per bar (see `run`).
#[derive(Clone, Debug)]
pub(crate) struct HeldPrefix {
    returns: Vec<f64>,
    squares: Vec<f64>,
    downside: Vec<f64>,
}

impl HeldPrefix {
    pub(crate) fn new(close: &[f64]) -> HeldPrefix {
        let bars = close.len();
        let mut held = HeldPrefix {
            returns: Vec::with_capacity(bars + 1),
            squares: Vec::with_capacity(bars + 1),
            downside: Vec::with_capacity(bars + 1),
        };
        let (mut sum, mut sum_sq, mut downside_sq) = (0.0, 0.0, 0.0);
        for t in 0..=bars {
            if (2..=bars).contains(&t) {
                let r = close[t - 1] / close[t - 2] - 1.0;
                sum += r;
                sum_sq += r * r;
                // As the vector `min(r, 0)` (minpd: the second operand unless r < 0).
                let down = if r < 0.0 { r } else { 0.0 };
                downside_sq += down * down;
            }
            held.returns.push(sum);
            held.squares.push(sum_sq);
            held.downside.push(downside_sq);
        }
        held
    }
}

/// The shared inputs of one evaluate call.
pub(crate) struct Inputs<'a> {
    /// Window-sum tables for `V::N` lanes, built on first call (only groups whose slow
    /// windows are not consecutive need them).
    pub(crate) tables: &'a dyn Fn() -> &'a SumTables,
    /// Prefix sums of the closes as f64 (exact integers, or the filtered prefix), after
    /// [`PREFIX_PAD`] zeros.
    pub(crate) prefix: &'a [f64],
    /// The exact prefix sums, for lanes the filter cannot decide.
    pub(crate) exact: &'a ExactPrefix,
    /// Closes.
    pub(crate) close: &'a [f64],
    /// What long-only lanes add for the bars they hold between trades.
    pub(crate) held: &'a HeldPrefix,
    /// Fill prices (opens or closes).
    pub(crate) fill_price: &'a [f64],
    /// Fee per fill.
    pub(crate) fee: f64,
    /// The bars where the CSCV blocks of returns start, and the end (`S + 1` entries: 1,
    /// .., bars), or empty: no block sums.
    pub(crate) block_bounds: &'a [usize],
}

/// The sums of each combo's returns and squared returns per CSCV block: combo `c`'s
/// block `b` at `c·S + b`.
pub(crate) struct BlockOut<'a> {
    pub(crate) sums: &'a mut [f64],
    pub(crate) squares: &'a mut [f64],
}

/// What one group writes: its lanes' metrics, and lane `l`'s block sums at
/// `blocks[l·2S..l·2S+S]`, squares after them (empty: no blocks).
pub(crate) struct GroupOut<'a> {
    pub(crate) metrics: &'a mut [Metrics],
    pub(crate) blocks: &'a mut [f64],
}

/// Evaluates `combos` with `V`, writing one [`Metrics`] per combo (and block sums to
/// `block_out` when `inputs.block_bounds` has blocks).
///
/// # Safety
/// The CPU must support the instruction set of `V`, and `inputs.tables` must give tables
/// built for `V::N` lanes that cover `combos`' windows.
#[inline(always)]
pub(crate) unsafe fn evaluate<V: GroupKernel>(
    inputs: &Inputs,
    filtered: bool,
    config: &SmaConfig,
    combos: &[SmaCombo],
    out: &mut [Metrics],
    mut block_out: Option<BlockOut>,
) {
    let blocks = inputs.block_bounds.len().saturating_sub(1);
    let mut group_blocks = vec![0.0; MAX_LANES * 2 * blocks];
    // Copies lane `lane`'s block sums of the group just run to combo `combo`'s slots.
    let mut copy_blocks = |group_blocks: &[f64], lane: usize, combo: usize| {
        if let Some(BlockOut { sums, squares }) = block_out.as_mut() {
            let from = &group_blocks[lane * 2 * blocks..(lane + 1) * 2 * blocks];
            sums[combo * blocks..(combo + 1) * blocks].copy_from_slice(&from[..blocks]);
            squares[combo * blocks..(combo + 1) * blocks].copy_from_slice(&from[blocks..]);
        }
    };
    // What prefix groups get for tables: they never read them.
    let no_tables = SumTables::empty(V::N);
    // The prefix laid out by each stride met so far (a grid has one or two).
    let mut strided: Vec<StridedPrefix> = Vec::new();
    let unpadded = &inputs.prefix[PREFIX_PAD..];
    // The fast sums of the last prefix group's fast window (groups of one fast window are
    // consecutive in grid order, so each column is built about once).
    let mut fast_column: Option<(u32, Vec<f64>)> = None;
    let mut start = 0;
    while start < combos.len() {
        let rest = &combos[start..];
        let (len, stride) = prefix_group_len::<V>(rest);
        if len > 0 {
            // Lanes in descending slow order, so that their prefix sums are adjacent.
            let reversed: Vec<SmaCombo> = rest[..len].iter().rev().copied().collect();
            let group = Group::from_prefix(len);
            let layout = match strided.iter().position(|s| s.stride == stride) {
                Some(i) => i,
                None => {
                    strided.push(StridedPrefix::new(unpadded, stride));
                    strided.len() - 1
                }
            };
            let fast = rest[0].fast;
            if fast_column.as_ref().is_none_or(|(window, _)| *window != fast) {
                let w = fast as usize;
                let column = (0..unpadded.len() - 1)
                    .map(|t| if t + 1 >= w { unpadded[t + 1] - unpadded[t + 1 - w] } else { 0.0 })
                    .collect();
                fast_column = Some((fast, column));
            }
            let fast_sums = fast_column.as_ref().map_or(&[][..], |(_, column)| column.as_slice());
            let mut results = [Metrics::default(); MAX_LANES];
            // SAFETY: forwarded from the caller.
            unsafe {
                run_variant::<V, true>(
                    inputs,
                    Some(PrefixSums { strided: &strided[layout], fast: fast_sums }),
                    &no_tables,
                    filtered,
                    config,
                    &group,
                    &reversed,
                    GroupOut { metrics: &mut results[..len], blocks: &mut group_blocks[..len * 2 * blocks] },
                )
            };
            for (slot, result) in out[start..start + len].iter_mut().zip(results[..len].iter().rev()) {
                *slot = *result;
            }
            for lane in 0..len {
                copy_blocks(&group_blocks, lane, start + len - 1 - lane);
            }
            start += len;
        } else {
            let tables = (inputs.tables)();
            debug_assert_eq!(tables.tile, V::N);
            let group = next_group::<V>(tables, rest);
            let slots = GroupOut {
                metrics: &mut out[start..start + group.len],
                blocks: &mut group_blocks[..group.len * 2 * blocks],
            };
            // SAFETY: forwarded from the caller.
            unsafe {
                run_variant::<V, false>(inputs, None, tables, filtered, config, &group, &rest[..group.len], slots)
            };
            for lane in 0..group.len {
                copy_blocks(&group_blocks, lane, start + lane);
            }
            start += group.len;
        }
    }
}

/// The length and stride of the group at the start of `combos` whose sums all come from
/// the prefix sums (length 0: none, use the tables). Such a group has one fast window and
/// slow windows `s, s+k, s+2k, ..` (`k >= 1`, as a grid's range of slow windows gives):
/// all `V::N` of them, or fewer where the fast window's run ends (a partial group: the
/// spare lanes run windows below the smallest, results discarded, so every lane's window
/// must be at least 1).
fn prefix_group_len<V: Lanes>(combos: &[SmaCombo]) -> (usize, usize) {
    let first = combos[0];
    let stride = match combos.get(1) {
        Some(next) if next.fast == first.fast && next.slow > first.slow => (next.slow - first.slow) as usize,
        _ => 1,
    };
    let mut len = 1;
    while len < V::N
        && len < combos.len()
        && combos[len].fast == first.fast
        && combos[len].slow as usize == first.slow as usize + len * stride
    {
        len += 1;
    }
    let run_ends = len == V::N || len == combos.len() || combos[len].fast != first.fast;
    let slowest = first.slow as usize + (len - 1) * stride;
    if run_ends && slowest > (V::N - 1) * stride {
        (len, stride)
    } else {
        (0, stride)
    }
}

/// # Safety
/// The CPU must support the instruction set of `V`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn run_variant<V: GroupKernel, const PREFIX: bool>(
    inputs: &Inputs,
    prefix_sums: Option<PrefixSums>,
    tables: &SumTables,
    filtered: bool,
    config: &SmaConfig,
    group: &Group<MAX_LANES>,
    lanes: &[SmaCombo],
    slots: GroupOut,
) {
    macro_rules! dispatch {
        ($long_short:literal, $fill_open:literal) => {
            if filtered {
                V::run_group::<$long_short, $fill_open, PREFIX, true>(inputs, prefix_sums, tables, group, lanes, slots)
            } else {
                V::run_group::<$long_short, $fill_open, PREFIX, false>(inputs, prefix_sums, tables, group, lanes, slots)
            }
        };
    }
    // SAFETY: forwarded from the caller.
    unsafe {
        match (config.direction, config.fill) {
            (Direction::Long, Fill::Open) => dispatch!(false, true),
            (Direction::Long, Fill::Close) => dispatch!(false, false),
            (Direction::LongShort, Fill::Open) => dispatch!(true, true),
            (Direction::LongShort, Fill::Close) => dispatch!(true, false),
        }
    }
}

/// Up to `V::N` consecutive combos. A group also ends where the fast window changes or a
/// new tile of slow columns starts, so most groups are one whole tile with one fast window.
fn next_group<V: Lanes>(tables: &SumTables, combos: &[SmaCombo]) -> Group<MAX_LANES> {
    let mut group = Group {
        len: 0,
        fast_col: [0; MAX_LANES],
        slow_col: [0; MAX_LANES],
        same_fast: true,
        whole_tile: true,
        prefix_slow: false,
    };
    for combo in combos.iter().take(V::N) {
        let fast_col = SumTables::column(&tables.fast_windows, combo.fast);
        let slow_col = SumTables::column(&tables.slow_windows, combo.slow);
        if group.len > 0 && (fast_col != group.fast_col[0] || slow_col.is_multiple_of(V::N)) {
            break;
        }
        let i = group.len;
        group.fast_col[i] = fast_col;
        group.slow_col[i] = slow_col;
        group.same_fast &= fast_col == group.fast_col[0];
        group.whole_tile &= slow_col == group.slow_col[0] + i;
        group.len += 1;
    }
    group.whole_tile &= group.len == V::N && group.slow_col[0].is_multiple_of(V::N);
    // A partial group runs with its last combo repeated in the spare lanes.
    for i in group.len..V::N {
        group.fast_col[i] = group.fast_col[group.len - 1];
        group.slow_col[i] = group.slow_col[group.len - 1];
    }
    group
}

/// The fast sums of a group's lanes at bar `t`.
///
/// # Safety
/// The CPU must support `V`.
#[inline(always)]
unsafe fn fast_sums<V: Lanes>(tables: &SumTables, group: &Group<MAX_LANES>, t: usize) -> V {
    // SAFETY: the caller guarantees V is supported; `lanes` has MAX_LANES >= V::N values.
    unsafe {
        if group.same_fast {
            V::splat(tables.fast[group.fast_col[0] * tables.bars + t])
        } else {
            let mut lanes = [0.0; MAX_LANES];
            for (lane, &col) in lanes.iter_mut().zip(&group.fast_col).take(V::N) {
                *lane = tables.fast[col * tables.bars + t];
            }
            V::load(lanes.as_ptr())
        }
    }
}

/// The slow sums of a group's lanes at bar `t`.
///
/// # Safety
/// The CPU must support `V`.
#[inline(always)]
unsafe fn slow_sums<V: Lanes>(tables: &SumTables, group: &Group<MAX_LANES>, t: usize) -> V {
    // SAFETY: the caller guarantees V is supported; a whole tile holds V::N values at
    // this offset (checked by the slice), `lanes` has MAX_LANES >= V::N values.
    unsafe {
        if group.whole_tile {
            let offset = (group.slow_col[0] / V::N) * tables.bars * V::N + t * V::N;
            V::load(tables.slow[offset..offset + V::N].as_ptr())
        } else {
            let mut lanes = [0.0; MAX_LANES];
            for (lane, &col) in lanes.iter_mut().zip(&group.slow_col).take(V::N) {
                *lane = tables.slow_at(col, t);
            }
            V::load(lanes.as_ptr())
        }
    }
}

/// Per-lane array copies of vector state, for the scalar trade updates.
struct Spill {
    cash: [f64; MAX_LANES],
    shares: [f64; MAX_LANES],
    position: [f64; MAX_LANES],
    target: [f64; MAX_LANES],
}

/// Moves the lanes whose `target` differs from their position, at `price`, through
/// their scalar [`Account`]s. A function rather than a closure: closures do not inherit
/// the caller's target features, so the vector loads and stores in one would become calls.
///
/// # Safety
/// The CPU must support the instruction set of `V`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn trade<V: Lanes>(
    cash: &mut V,
    shares: &mut V,
    position: &mut V,
    target: V,
    price: f64,
    fee: f64,
    spill: &mut Spill,
    trades: &mut [u32; MAX_LANES],
) {
    // SAFETY: the caller guarantees V is supported; every pointer is to a
    // `[f64; MAX_LANES]` with MAX_LANES >= V::N.
    unsafe {
        cash.store(spill.cash.as_mut_ptr());
        shares.store(spill.shares.as_mut_ptr());
        position.store(spill.position.as_mut_ptr());
        target.store(spill.target.as_mut_ptr());
    }
    // The counts stay in memory: promoted to registers, the eight of them were carried
    // (and shuffled between registers) through every bar of the loop.
    let trades = std::hint::black_box(trades);
    for (lane, lane_trades) in trades.iter_mut().enumerate().take(V::N) {
        if spill.target[lane] != spill.position[lane] {
            let mut account = Account {
                cash: spill.cash[lane],
                shares: spill.shares[lane],
                position: spill.position[lane] as i8,
                trades: *lane_trades,
            };
            account.execute(spill.target[lane] as i8, price, fee);
            spill.cash[lane] = account.cash;
            spill.shares[lane] = account.shares;
            spill.position[lane] = f64::from(account.position);
            *lane_trades = account.trades;
        }
    }
    // SAFETY: as above.
    unsafe {
        *cash = V::load(spill.cash.as_ptr());
        *shares = V::load(spill.shares.as_ptr());
        *position = V::load(spill.position.as_ptr());
    }
}

/// `above` with the `undecided` lanes of the real combos (at or past their first signal;
/// the rest are masked later or discarded) decided by the exact comparison. Inlined into
/// the bar loop (vector arguments need its target features); the scalar work is out of line.
///
/// # Safety
/// The CPU must support the instruction set of `V`.
#[inline(always)]
unsafe fn resolve_undecided<V: Lanes>(
    above: V::Mask,
    undecided: V::Mask,
    exact: &ExactPrefix,
    combos: &[SmaCombo],
    t: usize,
) -> V::Mask {
    let mut above_lanes = [0.0; MAX_LANES];
    let mut undecided_lanes = [0.0; MAX_LANES];
    // SAFETY: the caller guarantees V is supported; both arrays hold MAX_LANES >= V::N values.
    unsafe {
        let (set, zero) = (V::splat(f64::from_bits(u64::MAX)), V::splat(0.0));
        V::select(above, set, zero).store(above_lanes.as_mut_ptr());
        V::select(undecided, set, zero).store(undecided_lanes.as_mut_ptr());
    }
    resolve_lanes(&mut above_lanes, &undecided_lanes, exact, &combos[..combos.len().min(V::N)], t);
    // SAFETY: as above. All-ones lanes are NaNs: != 0 (unordered compares unequal).
    unsafe { V::ne(V::load(above_lanes.as_ptr()), V::splat(0.0)) }
}

/// The scalar part of [`resolve_undecided`]: runs on ~1 bar in 10^6 of float-written data.
#[cold]
#[inline(never)]
fn resolve_lanes(
    above: &mut [f64; MAX_LANES],
    undecided: &[f64; MAX_LANES],
    exact: &ExactPrefix,
    combos: &[SmaCombo],
    t: usize,
) {
    for (lane, combo) in combos.iter().enumerate() {
        if undecided[lane].to_bits() != 0 && t >= combo.first_signal() {
            let exact_above = exact.fast_above(combo.fast, combo.slow, t);
            above[lane] = if exact_above { f64::from_bits(u64::MAX) } else { 0.0 };
        }
    }
}

/// An instruction set's compiled copies of [`run`], one per variant. Implemented (in the
/// parent module) by out-of-line functions with the instruction set enabled: inlined
/// into one big function, the eight bar loops shared a register allocation that kept
/// some accumulators on the stack (a store and reload per bar, ~10 % slower).
pub(crate) trait GroupKernel: Lanes {
    /// [`run`] for `Self`.
    ///
    /// # Safety
    /// As [`run`].
    unsafe fn run_group<const LONG_SHORT: bool, const FILL_OPEN: bool, const PREFIX: bool, const FILTER: bool>(
        inputs: &Inputs,
        prefix_sums: Option<PrefixSums>,
        tables: &SumTables,
        group: &Group<MAX_LANES>,
        combos: &[SmaCombo],
        out: GroupOut,
    );
}

/// One group of combos, all bars.
///
/// # Safety
/// The CPU must support the instruction set of `V`.
#[inline(always)]
pub(crate) unsafe fn run<
    V: Lanes,
    const LONG_SHORT: bool,
    const FILL_OPEN: bool,
    const PREFIX: bool,
    const FILTER: bool,
>(
    inputs: &Inputs,
    prefix_sums: Option<PrefixSums>,
    tables: &SumTables,
    group: &Group<MAX_LANES>,
    combos: &[SmaCombo],
    out: GroupOut,
) {
    let Inputs { prefix: padded_prefix, exact, close, held, fill_price, fee, block_bounds, .. } = *inputs;
    let prefix = &padded_prefix[PREFIX_PAD..];
    let n = V::N;
    let bars = close.len();
    let lane_value = |f: &dyn Fn(&SmaCombo) -> f64| {
        let mut v = [0.0; MAX_LANES];
        for (i, slot) in v.iter_mut().enumerate().take(n) {
            *slot = f(&combos[i.min(combos.len() - 1)]);
        }
        v
    };
    let fast_len = lane_value(&|c| f64::from(c.fast));
    let slow_len = lane_value(&|c| f64::from(c.slow));
    let first_signal = lane_value(&|c| c.first_signal() as f64);
    // The filter's bound per unit of P[t+1]: (slow + fast)·2^-49, exact in f64.
    let tolerance = lane_value(&|c| f64::from(c.slow + c.fast) * FILTER_TOLERANCE);
    let start = combos.iter().map(|c| c.first_signal()).min().unwrap_or(0);
    // From this bar on every lane's slow SMA exists and the signal needs no mask.
    let all_started = combos.iter().map(|c| c.first_signal()).max().unwrap_or(0);
    let mut trades = [0u32; MAX_LANES];
    let mut spill = Spill {
        cash: [1.0; MAX_LANES],
        shares: [0.0; MAX_LANES],
        position: [0.0; MAX_LANES],
        target: [0.0; MAX_LANES],
    };

    // SAFETY: the caller guarantees the CPU supports V; every pointer handed to V::load /
    // V::store points into a local `[f64; MAX_LANES]` array with MAX_LANES >= V::N.
    unsafe {
        let (zero, one) = (V::splat(0.0), V::splat(1.0));
        let minus_one = V::splat(-1.0);
        let fast_len = V::load(fast_len.as_ptr());
        let slow_len = V::load(slow_len.as_ptr());
        let first_signal = V::load(first_signal.as_ptr());
        let tolerance = V::load(tolerance.as_ptr());
        let mut cash = one;
        let mut shares = zero;
        let mut position = zero;
        // The target decided at the last bar, taken at this bar's open: a vector of -1, 0, 1
        // (long-short) or the mask of lanes above (long-only, where a position is 0 or 1).
        let mut pending = zero;
        let mut pending_long = V::none();
        let mut equity_prev = one;
        let (mut sum, mut sum_sq, mut downside_sq) = (zero, zero, zero);
        let mut peak = one;
        let mut min_ratio = one;
        // `min_ratio` scaled up by a few ulps: a lane below `peak * bound` may have set a new
        // low, and only those lanes pay for the exact division.
        let mut min_ratio_bound = one;
        let (mut run_length, mut longest) = (zero, zero);
        // Long-only: the lanes holding the asset (`position > 0`), updated when lanes trade.
        let mut holding = V::none();
        // Long-only: the `held` prefix entries where each lane's run of held bars began.
        let (mut begin_sum, mut begin_sq, mut begin_down) = (zero, zero, zero);

        let slowest = combos[0].slow as usize;
        let fast = combos[0].fast as usize;
        assert_eq!(PREFIX, group.prefix_slow);
        assert_eq!(prefix.len(), bars + 1);
        // (Lets the bar loop index the per-bar inputs without bounds checks.)
        let HeldPrefix { returns: held_returns, squares: held_squares, downside: held_downside } = held;
        assert_eq!(held_returns.len(), bars + 1);
        assert_eq!(held_squares.len(), bars + 1);
        assert_eq!(held_downside.len(), bars + 1);
        assert_eq!(fill_price.len(), bars);
        // A prefix group reads its slow sums from the prefix laid out by its stride: lane j
        // (window slowest - j·k) at bar t reads entry `offsets[x] + j` of that layout, for
        // x = t+1-slowest+MAX_LANES·k (see StridedPrefix).
        let (slow_layout, stride, row_len, all_offsets, fast_column) = match (PREFIX, prefix_sums) {
            (true, Some(PrefixSums { strided: layout, fast })) => {
                (layout.values.as_slice(), layout.stride, layout.row_len, layout.offsets.as_slice(), fast)
            }
            (true, None) => panic!("a prefix group needs its strided prefix"),
            (false, _) => (&[][..], 1, 0, &[][..], &[][..]),
        };
        assert!(!PREFIX || fast_column.len() == bars);
        // `slow_offsets[t - start]`: where bar t's load starts.
        let mut slow_offsets: &[u32] = &[];
        if PREFIX {
            // Every lane's window is >= 1 (checked by prefix_group_len), and the smallest
            // real window (slowest - (len-1)·k) signals first: x >= MAX_LANES·k - (len-1)·k > 0.
            assert!(slowest > (n - 1) * stride && start + 1 + (n - 1) * stride >= slowest);
            let x = start + 1 + MAX_LANES * stride - slowest;
            slow_offsets = &all_offsets[x..x + (bars - start)];
            // The last bar's load stays inside its row: x_max div k + N <= row_len.
            let x_max = bars + MAX_LANES * stride - slowest;
            assert!(x_max / stride + n <= row_len && stride * row_len == slow_layout.len());
        }
        // Every lane's first signal is at bar max(fast, slow) - 1 >= 1 (slow >= 2), so every
        // bar of the loop has a return.
        assert!(start >= 1, "a slow window of at least 2 bars");
        // A group of one fast window takes its fast sum from the prefix sums: every bar from
        // `start` on has the window full (t >= first signal >= fast - 1).
        assert!(!group.same_fast || start + 1 >= fast);
        let slow_tile = group.whole_tile.then(|| {
            let first = (group.slow_col[0] / n) * tables.bars * n;
            let tile = &tables.slow[first..first + tables.bars * n];
            assert_eq!(tile.len(), bars * n);
            tile
        });
        // The bars in segments, one per CSCV block (bars `bounds[b]..bounds[b+1]` hold the
        // block's returns), each followed by a flush of the block's sums; without blocks,
        // one segment.
        let whole = [1, bars];
        let blocks_on = !block_bounds.is_empty();
        let bounds = if blocks_on { block_bounds } else { &whole[..] };
        let blocks = bounds.len() - 1;
        assert!(
            bounds[0] == 1
                && bounds[blocks] == bars
                && out.blocks.len() == if blocks_on { out.metrics.len() * 2 * blocks } else { 0 }
        );
        // This block's sums so far; long-only: the `held` entries where each lane's run of
        // held bars inside this block began.
        let (mut block_sum, mut block_sq) = (zero, zero);
        let (mut block_begin_sum, mut block_begin_sq) = (zero, zero);
        for (b, segment) in bounds.windows(2).enumerate() {
            let (segment_start, segment_end) = (segment[0].max(start), segment[1]);
            for t in segment_start..segment_end {
                // Lanes that trade this bar take the exact equity ratio as their return.
                let mut traded = V::none();
                let mut any_traded = false;
                if FILL_OPEN {
                    let changing = if LONG_SHORT { V::ne(pending, position) } else { V::xor(pending_long, holding) };
                    if V::any(changing) {
                        let target = if LONG_SHORT { pending } else { V::select(pending_long, one, zero) };
                        trade::<V>(
                            &mut cash,
                            &mut shares,
                            &mut position,
                            target,
                            fill_price[t],
                            fee,
                            &mut spill,
                            &mut trades,
                        );
                        traded = changing;
                        any_traded = true;
                    }
                }
                // The common cases read the prefix sums (one broadcast, one vector load) or
                // stream one tile; the rest gathers lane by lane.
                // SAFETY: t < bars = prefix.len() - 1 (asserted above).
                let prefix_end = *prefix.get_unchecked(t + 1);
                let sum_fast: V = if PREFIX {
                    // SAFETY: t < bars = fast_column.len() (asserted above).
                    V::splat(*fast_column.get_unchecked(t))
                } else if group.same_fast {
                    // SAFETY: fast - 1 <= start <= t < bars = prefix.len() - 1 (asserted above).
                    V::splat(prefix_end - *prefix.get_unchecked(t + 1 - fast))
                } else {
                    fast_sums(tables, group, t)
                };
                let sum_slow: V = if PREFIX {
                    // Lane j has slow window `slowest - j·k`: P[t+1] - P[t+1-slowest+j·k] for all
                    // j at once. Before a lane's window is full this reads padding zeros or a
                    // partial sum: finite, and masked by the lane's first signal below.
                    // SAFETY: `slow_offsets` holds bars - start entries, each the start of a
                    // load inside its row (asserted for the last bar above; x only grows).
                    let offset = *slow_offsets.get_unchecked(t - start) as usize;
                    V::splat(prefix_end).sub(V::load(slow_layout.as_ptr().add(offset)))
                } else {
                    match slow_tile {
                        // SAFETY: t < bars and the tile holds `bars * V::N` values (asserted above).
                        Some(tile) => V::load(tile.as_ptr().add(t * n)),
                        None => slow_sums(tables, group, t),
                    }
                };
                let above = if FILTER {
                    // Outside ±bound the f64 sign is the exact one; inside, the exact integers
                    // decide (rare: near-ties, and lanes whose window is not yet full).
                    let diff = sum_fast.mul(slow_len).sub(sum_slow.mul(fast_len));
                    let bound = V::splat(prefix_end).mul(tolerance);
                    let undecided = V::ge(bound, diff.max(zero.sub(diff)));
                    let above = V::gt(diff, zero);
                    if V::any(undecided) {
                        resolve_undecided::<V>(above, undecided, exact, combos, t)
                    } else {
                        above
                    }
                } else {
                    V::gt(sum_fast.mul(slow_len), sum_slow.mul(fast_len))
                };
                // Long-short: the target position, -1 or 1 (0 before the lane's first signal).
                // Long-only: the mask of lanes whose target is 1 (the rest: 0).
                let mut target = V::select(above, one, minus_one);
                let mut target_long = above;
                if t < all_started {
                    let signal_exists = V::ge(V::splat(t as f64), first_signal);
                    target = V::select(signal_exists, target, zero);
                    target_long = V::and(signal_exists, target_long);
                }
                if FILL_OPEN {
                    pending = target;
                    pending_long = target_long;
                } else {
                    let changing = if LONG_SHORT { V::ne(target, position) } else { V::xor(target_long, holding) };
                    if V::any(changing) {
                        let target = if LONG_SHORT { target } else { V::select(target_long, one, zero) };
                        trade::<V>(
                            &mut cash,
                            &mut shares,
                            &mut position,
                            target,
                            fill_price[t],
                            fee,
                            &mut spill,
                            &mut trades,
                        );
                        traded = V::or(traded, changing);
                        any_traded = true;
                    }
                }
                let was_holding = holding;
                if !LONG_SHORT && any_traded {
                    holding = V::gt(position, zero);
                }
                let equity = cash.add(shares.mul(V::splat(close[t])));
                if !LONG_SHORT && any_traded {
                    // A long-only lane between trades is flat (return 0 exactly) or all in (cash
                    // ~1e-17 of equity): its return is the asset's, to ~1e-16. So its held bars
                    // enter its sums only here, when it trades: a lane that held since bar `e`
                    // adds the prefix differences over bars e+1..t-1 (no division or add per
                    // bar), then, like every lane that trades, its exact equity ratio. Per lane,
                    // so a combo's numbers never depend on which lanes it shares.
                    let closing = V::and(traded, was_holding);
                    // SAFETY: t + 1 <= bars and every `held` prefix holds bars + 1 entries.
                    let (at_sum, at_sq, at_down) = (
                        V::splat(*held_returns.get_unchecked(t)),
                        V::splat(*held_squares.get_unchecked(t)),
                        V::splat(*held_downside.get_unchecked(t)),
                    );
                    sum = sum.add_where(closing, at_sum.sub(begin_sum));
                    sum_sq = sum_sq.add_where(closing, at_sq.sub(begin_sq));
                    downside_sq = downside_sq.add_where(closing, at_down.sub(begin_down));
                    let r = equity.div(equity_prev).sub(one);
                    let (squared, down) = (r.mul(r), r.min(zero));
                    sum = sum.add_where(traded, r);
                    sum_sq = sum_sq.add_where(traded, squared);
                    downside_sq = downside_sq.add_where(traded, down.mul(down));
                    // A lane that now holds starts its run at bar t + 1.
                    // SAFETY: as above.
                    let (next_sum, next_sq) =
                        (V::splat(*held_returns.get_unchecked(t + 1)), V::splat(*held_squares.get_unchecked(t + 1)));
                    begin_sum = V::select(traded, next_sum, begin_sum);
                    begin_sq = V::select(traded, next_sq, begin_sq);
                    begin_down = V::select(traded, V::splat(*held_downside.get_unchecked(t + 1)), begin_down);
                    if blocks_on {
                        // The same additions, into this block's sums.
                        block_sum = block_sum.add_where(closing, at_sum.sub(block_begin_sum)).add_where(traded, r);
                        block_sq = block_sq.add_where(closing, at_sq.sub(block_begin_sq)).add_where(traded, squared);
                        block_begin_sum = V::select(traded, next_sum, block_begin_sum);
                        block_begin_sq = V::select(traded, next_sq, block_begin_sq);
                    }
                }
                if LONG_SHORT {
                    let r = equity.div(equity_prev).sub(one);
                    let squared = r.mul(r);
                    sum = sum.add(r);
                    sum_sq = sum_sq.add(squared);
                    let down = r.min(zero);
                    downside_sq = downside_sq.add(down.mul(down));
                    if blocks_on {
                        block_sum = block_sum.add(r);
                        block_sq = block_sq.add(squared);
                    }
                }
                // `below` is `!(equity >= peak)`: the run under the peak goes on (or a new
                // peak resets it). `equity.max(peak)` is `equity` exactly where equity >= peak
                // (maxpd: the second operand unless the first is greater; equal values are
                // the same positive number, and a NaN equity keeps the peak).
                let below = V::nge(equity, peak);
                peak = equity.max(peak);
                run_length = run_length.add_or_zero(below, one);
                longest = longest.max(run_length);
                if V::any(V::lt(equity, peak.mul(min_ratio_bound))) {
                    min_ratio = min_ratio.min(equity.div(peak));
                    min_ratio_bound = min_ratio.mul(V::splat(1.0 + 4.0 * f64::EPSILON));
                }
                equity_prev = equity;
            }
            if blocks_on {
                if !LONG_SHORT {
                    // Lanes holding at the block's end close the block's part of their run.
                    let (at_sum, at_sq) = (V::splat(held_returns[segment_end]), V::splat(held_squares[segment_end]));
                    block_sum = block_sum.add_where(holding, at_sum.sub(block_begin_sum));
                    block_sq = block_sq.add_where(holding, at_sq.sub(block_begin_sq));
                    (block_begin_sum, block_begin_sq) = (at_sum, at_sq);
                }
                let mut lanes = [[0.0; MAX_LANES]; 2];
                block_sum.store(lanes[0].as_mut_ptr());
                block_sq.store(lanes[1].as_mut_ptr());
                for (lane, slots) in out.blocks.chunks_exact_mut(2 * blocks).enumerate() {
                    slots[b] = lanes[0][lane];
                    slots[blocks + b] = lanes[1][lane];
                }
                (block_sum, block_sq) = (zero, zero);
            }
        }

        if !LONG_SHORT {
            // Lanes still holding at the last bar close their run over bars e+1..bars-1.
            sum = sum.add_where(holding, V::splat(held_returns[bars]).sub(begin_sum));
            sum_sq = sum_sq.add_where(holding, V::splat(held_squares[bars]).sub(begin_sq));
            downside_sq = downside_sq.add_where(holding, V::splat(held_downside[bars]).sub(begin_down));
        }
        let mut lanes = [[0.0; MAX_LANES]; 7];
        for (array, vector) in lanes.iter_mut().zip([sum, sum_sq, downside_sq, equity_prev, min_ratio, longest, cash]) {
            vector.store(array.as_mut_ptr());
        }
        let [sum, sum_sq, downside_sq, equity, min_ratio, longest, _] = lanes;
        for (lane, slot) in out.metrics.iter_mut().enumerate() {
            *slot = standard_metrics(StandardSums {
                returns: bars as u32 - 1,
                sum: sum[lane],
                sum_sq: sum_sq[lane],
                downside_sq: downside_sq[lane],
                growth: equity[lane],
                max_drawdown: 1.0 - min_ratio[lane],
                longest_underwater_run: longest[lane] as u32,
                trades: trades[lane],
            });
        }
    }
}
