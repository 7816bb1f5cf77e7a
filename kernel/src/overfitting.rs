//! Overfitting statistics of a sweep, from per-combo, per-block sums of returns: the
//! deflated Sharpe ratio (Bailey and López de Prado, 2014) and the probability of backtest
//! overfitting by combinatorially symmetric cross-validation (Bailey, Borwein, López de
//! Prado and Zhu, 2017). No returns matrix is held: each combo brings, for each of `S`
//! contiguous blocks of its `T` returns, the sum of its returns and of their squares (the
//! count is the block's length, the same for every combo).
//!
//! Definitions (Sharpe per period, not annualised):
//!
//! * The blocks: `T` returns in `S` contiguous blocks, the first `T mod S` one return
//!   longer ([`Blocks`]).
//! * Sharpe of `n` returns with sum `s` and sum of squares `q`: `mean / std` with
//!   `mean = s / n`, `std = sqrt((q - s·mean) / (n - 1))` (ddof 1); 0 where the variance
//!   is not > 0 ([`sharpe`]). A sum over several blocks adds the blocks in ascending
//!   order within each half of the blocks (`0..S/2`, `S/2..S`), then the two halves: one
//!   fixed order for every combo, so combos whose blocks are equal bit for bit get equal
//!   Sharpe ratios and tie exactly (ties are broken by combo id).
//! * Trials: the combos whose full-sample variance is > 0; `K` of them. The best: the
//!   largest full-sample Sharpe, lowest id on ties.
//! * DSR ([`deflated_sharpe`]): `V` = sample variance (ddof 1) of the trials' Sharpe
//!   ratios, `SR0 = sqrt(V)·((1-γ)·Φ⁻¹(1 - 1/K) + γ·Φ⁻¹(1 - 1/(K·e)))`,
//!   `DSR = Φ((SR* - SR0)·sqrt(T-1) / sqrt(1 - skew·SR* + (kurt-1)/4·SR*²))`, with the best
//!   combo's skewness and kurtosis (central moments, 1/T). PSR: the same with `SR0 = 0`.
//! * PBO ([`cscv`]): for each of the `C(S, S/2)` choices of `S/2` blocks as in-sample,
//!   `n*` = the trial with the best in-sample Sharpe (lowest id on ties); `w` = the
//!   average rank of `n*`'s out-of-sample Sharpe among the trials' (1 = worst) over
//!   `K + 1`; `λ = ln(w / (1 - w))`. PBO = the share of choices with `λ <= 0`. Also the
//!   OLS slope of `n*`'s out-of-sample on in-sample Sharpe over the choices (performance
//!   degradation) and the share of choices where `n*` loses money out of sample.
//!   Within a split, trials are ranked by [`order_key`], which orders them as their
//!   Sharpe ratios without a square root (equal block sums: equal keys, an exact tie).
//!
//! Cost: the full-sample statistics are `O(K·S)`; CSCV computes `2·C(S, S/2)·K` keys
//! (S = 16: 12,870 splits), in tiles of trials whose half-block subset sums stay in cache
//! (see [`cscv`] and BENCHMARKS.md for measured times). Memory: the block sums,
//! `16·S` bytes per combo (S = 16, 79,398 combos: 20 MB), plus 2 MiB of tiles.

use std::fmt;

/// The Euler-Mascheroni constant.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// Why the statistics cannot be computed for a sweep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OverfittingError {
    /// `S` is odd or below 2.
    OddBlocks(usize),
    /// `S` is above [`MAX_BLOCKS`].
    TooManySplits(usize),
    /// `S` is larger than `T / 2`: some block would hold fewer than two returns.
    TooManyBlocks {
        /// The blocks asked for.
        blocks: usize,
        /// The returns there are.
        returns: usize,
    },
}

impl fmt::Display for OverfittingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OverfittingError::OddBlocks(s) => write!(f, "CSCV needs an even number of blocks >= 2, got {s}"),
            OverfittingError::TooManySplits(s) => write!(
                f,
                "{s} CSCV blocks is more than {MAX_BLOCKS} (C({s}, {}) splits would take hours on a large grid)",
                s / 2
            ),
            OverfittingError::TooManyBlocks { blocks, returns } => write!(
                f,
                "{blocks} CSCV blocks is more than half of the {returns} returns (each block needs at least 2)"
            ),
        }
    }
}

impl std::error::Error for OverfittingError {}

/// The most CSCV blocks: C(24, 12) = 2,704,156 splits, 210 times the work of S = 16.
pub const MAX_BLOCKS: usize = 24;

/// `T` returns cut into `S` contiguous blocks, the first `T mod S` one return longer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocks {
    lengths: Vec<usize>,
}

impl Blocks {
    /// The blocks of `returns` returns; `blocks` must be even, >= 2, <= [`MAX_BLOCKS`] and
    /// <= returns / 2.
    pub fn new(returns: usize, blocks: usize) -> Result<Blocks, OverfittingError> {
        if blocks < 2 || !blocks.is_multiple_of(2) {
            return Err(OverfittingError::OddBlocks(blocks));
        }
        if blocks > MAX_BLOCKS {
            return Err(OverfittingError::TooManySplits(blocks));
        }
        if blocks > returns / 2 {
            return Err(OverfittingError::TooManyBlocks { blocks, returns });
        }
        let (base, longer) = (returns / blocks, returns % blocks);
        Ok(Blocks { lengths: (0..blocks).map(|b| base + usize::from(b < longer)).collect() })
    }

    /// `S`.
    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    /// Always false (there are at least two blocks).
    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// Returns per block.
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }

    /// `T`.
    pub fn returns(&self) -> usize {
        self.lengths.iter().sum()
    }

    /// How many ways to choose `S/2` blocks: `C(S, S/2)`.
    pub fn splits(&self) -> usize {
        let s = self.len();
        (0..s / 2).fold(1usize, |c, i| c * (s - i) / (i + 1))
    }
}

/// Per-period Sharpe of `n` returns with sum `sum` and sum of squares `squares`: 0 where
/// the sample variance (ddof 1) is not > 0.
pub fn sharpe(n: f64, sum: f64, squares: f64) -> f64 {
    let mean = sum / n;
    let variance = variance(n, sum, squares);
    if variance > 0.0 {
        mean / variance.sqrt()
    } else {
        0.0
    }
}

/// Sample variance (ddof 1) of `n` returns with sum `sum` and sum of squares `squares`.
fn variance(n: f64, sum: f64, squares: f64) -> f64 {
    (squares - sum * (sum / n)) / (n - 1.0)
}

/// The normal CDF Φ.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// The inverse normal CDF Φ⁻¹: Wichura's algorithm AS 241 (PPND16, about 1e-16
/// relative), with the coefficients as CPython's `statistics.NormalDist.inv_cdf` has them.
/// Written out: no small, well-kept crate has it (statrs pulls in nalgebra).
#[allow(clippy::excessive_precision, clippy::inconsistent_digit_grouping, clippy::unreadable_literal)]
#[rustfmt::skip]
pub fn normal_quantile(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        let num = (((((((2.50908_09287_30122_6727e+3 * r + 3.34305_75583_58812_8105e+4) * r + 6.72657_70927_00870_0853e+4) * r + 4.59219_53931_54987_1457e+4) * r + 1.37316_93765_50946_1125e+4) * r + 1.97159_09503_06551_4427e+3) * r + 1.33141_66789_17843_7745e+2) * r + 3.38713_28727_96366_6080e+0) * q;
        let den = ((((((5.22649_52788_52854_5610e+3 * r + 2.87290_85735_72194_2674e+4) * r + 3.93078_95800_09271_0610e+4) * r + 2.12137_94301_58659_5867e+4) * r + 5.39419_60214_24751_1077e+3) * r + 6.87187_00749_20579_0830e+2) * r + 4.23133_30701_60091_1252e+1) * r + 1.0;
        return num / den;
    }
    let mut r = (-(if q <= 0.0 { p } else { 1.0 - p }).ln()).sqrt();
    let (num, den) = if r <= 5.0 {
        r -= 1.6;
        ((((((((7.74545_01427_83414_07640e-4 * r + 2.27238_44989_26918_45833e-2) * r + 2.41780_72517_74506_11770e-1) * r + 1.27045_82524_52368_38258e+0) * r + 3.64784_83247_63204_60504e+0) * r + 5.76949_72214_60691_40550e+0) * r + 4.63033_78461_56545_29590e+0) * r + 1.42343_71107_49683_57734e+0), (((((((1.05075_00716_44416_84324e-9 * r + 5.47593_80849_95344_94600e-4) * r + 1.51986_66563_61645_71966e-2) * r + 1.48103_97642_74800_74590e-1) * r + 6.89767_33498_51000_04550e-1) * r + 1.67638_48301_83803_84940e+0) * r + 2.05319_16266_37758_82187e+0) * r + 1.0))
    } else {
        r -= 5.0;
        ((((((((2.01033_43992_92288_13265e-7 * r + 2.71155_55687_43487_57815e-5) * r + 1.24266_09473_88078_43860e-3) * r + 2.65321_89526_57612_30930e-2) * r + 2.96560_57182_85048_91230e-1) * r + 1.78482_65399_17291_33580e+0) * r + 5.46378_49111_64114_36990e+0) * r + 6.65790_46435_01103_77720e+0), (((((((2.04426_31033_89939_78564e-15 * r + 1.42151_17583_16445_88870e-7) * r + 1.84631_83175_10054_68180e-5) * r + 7.86869_13114_56132_59100e-4) * r + 1.48753_61290_85061_48525e-2) * r + 1.36929_88092_27358_05310e-1) * r + 5.99832_20655_58879_37690e-1) * r + 1.0))
    };
    let x = num / den;
    if q < 0.0 { -x } else { x }
}

/// Where an evaluate call writes per-combo block sums (`SmaBatch::evaluate_blocks_on`,
/// `MomentumBatch::evaluate_blocks`): combo `c`'s block `b` at `c·S + b`.
#[derive(Debug)]
pub struct BlockSumsOut<'a> {
    /// The blocks of returns.
    pub blocks: &'a Blocks,
    /// Sums of returns.
    pub sums: &'a mut [f64],
    /// Sums of squared returns.
    pub squares: &'a mut [f64],
}

/// The block sums of one equity curve (`returns + 1` points) into `sums` and `squares`
/// (one slot per block): its `standard` returns `r_t = equity_t / equity_(t-1) - 1`,
/// added in order into their blocks.
pub fn curve_block_sums(curve: &[f64], blocks: &Blocks, sums: &mut [f64], squares: &mut [f64]) {
    assert_eq!(curve.len(), blocks.returns() + 1, "one return per point after the first");
    let mut t = 1;
    for (b, &len) in blocks.lengths().iter().enumerate() {
        let (mut sum, mut sum_sq) = (0.0, 0.0);
        for _ in 0..len {
            let r = curve[t] / curve[t - 1] - 1.0;
            sum += r;
            sum_sq += r * r;
            t += 1;
        }
        sums[b] = sum;
        squares[b] = sum_sq;
    }
}

/// Per-combo block sums of one sweep: combo `c`'s block `b` at `c·S + b`.
#[derive(Clone, Copy, Debug)]
pub struct BlockSums<'a> {
    /// The blocks.
    pub blocks: &'a Blocks,
    /// Sums of returns.
    pub sums: &'a [f64],
    /// Sums of squared returns.
    pub squares: &'a [f64],
}

impl BlockSums<'_> {
    /// Number of combos.
    pub fn combos(&self) -> usize {
        self.sums.len() / self.blocks.len()
    }

    /// Combo `c`'s (sum, squares) over the blocks in `mask` (bit b = block b), added in
    /// the module's fixed order: ascending within each half, then the halves.
    fn over(&self, c: usize, mask: u64) -> (f64, f64) {
        let s = self.blocks.len();
        let half = s / 2;
        let row = c * s;
        let add_half = |from: usize, to: usize| {
            let (mut sum, mut squares) = (0.0, 0.0);
            for b in from..to {
                if mask >> b & 1 == 1 {
                    sum += self.sums[row + b];
                    squares += self.squares[row + b];
                }
            }
            (sum, squares)
        };
        let (low, high) = (add_half(0, half), add_half(half, s));
        (low.0 + high.0, low.1 + high.1)
    }

    fn count(&self, mask: u64) -> f64 {
        self.blocks.lengths.iter().enumerate().filter(|(b, _)| mask >> b & 1 == 1).map(|(_, &n)| n).sum::<usize>()
            as f64
    }
}

/// The trials of a sweep: the combos with full-sample variance > 0, in id order, with
/// their full-sample Sharpe ratios.
#[derive(Clone, Debug, PartialEq)]
pub struct Trials {
    /// Combo index of each trial (ascending).
    pub combos: Vec<usize>,
    /// Full-sample per-period Sharpe of each trial.
    pub sharpe: Vec<f64>,
}

impl Trials {
    /// The trials among `sums`' combos.
    pub fn new(sums: &BlockSums) -> Trials {
        let all = (1u64 << sums.blocks.len()) - 1;
        let n = sums.count(all);
        let mut trials = Trials { combos: Vec::new(), sharpe: Vec::new() };
        for c in 0..sums.combos() {
            let (sum, squares) = sums.over(c, all);
            if variance(n, sum, squares) > 0.0 {
                trials.combos.push(c);
                trials.sharpe.push(sharpe(n, sum, squares));
            }
        }
        trials
    }

    /// `K`.
    pub fn len(&self) -> usize {
        self.combos.len()
    }

    /// Whether no combo is a trial.
    pub fn is_empty(&self) -> bool {
        self.combos.is_empty()
    }

    /// The index (into the trials) of the best: the largest Sharpe, the first on ties.
    pub fn best(&self) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, &sr) in self.sharpe.iter().enumerate() {
            if best.is_none_or(|b| sr > self.sharpe[b]) {
                best = Some(i);
            }
        }
        best
    }
}

/// The deflated and probabilistic Sharpe ratios of the best trial.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Deflated {
    /// `SR*`, the best trial's per-period Sharpe.
    pub sharpe: f64,
    /// The expected maximum Sharpe of `K` unskilled trials.
    pub sr0: f64,
    /// `P(SR > 0)` for the best trial (PSR).
    pub psr: f64,
    /// `P(SR > SR0)` (DSR).
    pub deflated: f64,
}

/// DSR and PSR of the best of `sharpes` (`K >= 2` trials, `T` returns), whose returns have
/// skewness `skew` and kurtosis `kurt` (not excess). `None` with fewer than two trials.
/// A value whose variance term is not positive (extreme skew) is NaN.
pub fn deflated_sharpe(sharpes: &[f64], best: usize, returns: usize, skew: f64, kurt: f64) -> Option<Deflated> {
    let k = sharpes.len();
    if k < 2 {
        return None;
    }
    let kf = k as f64;
    let mean = sharpes.iter().sum::<f64>() / kf;
    let variance = sharpes.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / (kf - 1.0);
    let sr0 = variance.sqrt()
        * ((1.0 - EULER_GAMMA) * normal_quantile(1.0 - 1.0 / kf)
            + EULER_GAMMA * normal_quantile(1.0 - 1.0 / (kf * std::f64::consts::E)));
    let sr = sharpes[best];
    let scale = (returns as f64 - 1.0).sqrt() / (1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr).sqrt();
    Some(Deflated { sharpe: sr, sr0, psr: normal_cdf(sr * scale), deflated: normal_cdf((sr - sr0) * scale) })
}

/// Skewness and kurtosis (not excess) of `returns`: central moments with 1/T.
pub fn moments(returns: &[f64]) -> (f64, f64) {
    let n = returns.len() as f64;
    let mean = returns.iter().sum::<f64>() / n;
    let central = |p: i32| returns.iter().map(|r| (r - mean).powi(p)).sum::<f64>() / n;
    let m2 = central(2);
    (central(3) / m2.powf(1.5), central(4) / (m2 * m2))
}

/// What CSCV finds.
#[derive(Clone, Debug, PartialEq)]
pub struct Cscv {
    /// `C(S, S/2)`.
    pub splits: usize,
    /// The share of splits with `λ <= 0`.
    pub pbo: f64,
    /// `λ` of each split, in split order (lexicographic in the in-sample blocks).
    pub lambdas: Vec<f64>,
    /// `n*`'s in-sample and out-of-sample Sharpe in each split.
    pub in_sample: Vec<f64>,
    /// See `in_sample`.
    pub out_of_sample: Vec<f64>,
    /// OLS slope of out-of-sample on in-sample Sharpe over the splits.
    pub degradation_slope: f64,
    /// The share of splits where `n*` loses money out of sample.
    pub prob_oos_loss: f64,
}

/// The in-sample block masks of every split: the `S/2`-subsets of `0..S`, in
/// lexicographic order of their sorted blocks.
pub fn split_masks(blocks: usize) -> Vec<u64> {
    let half = blocks / 2;
    let mut masks = Vec::new();
    let mut chosen: Vec<usize> = (0..half).collect();
    loop {
        masks.push(chosen.iter().fold(0u64, |m, &b| m | 1 << b));
        // The next combination: bump the rightmost index that can move.
        let Some(i) = (0..half).rev().find(|&i| chosen[i] < blocks - half + i) else { break };
        chosen[i] += 1;
        for j in i + 1..half {
            chosen[j] = chosen[j - 1] + 1;
        }
    }
    masks
}

/// Trials per tile: a tile's half-block subset sums (`2·2^(S/2)` subsets, sums and
/// squares) stay in L2 for S = 16 (2 MiB).
const TILE: usize = 256;

/// Every subset of one half of the blocks, summed for the trials of one tile: subset `m`
/// (bit i: block `first + i`) of trial `j` at `m·TILE + j`, added in ascending block
/// order (subset `m` = subset `m` without its top block, plus that block), so exactly the
/// sums [`BlockSums::over`] adds for that half.
struct HalfSubsets {
    first: usize,
    sums: Vec<f64>,
    squares: Vec<f64>,
    /// The tile's sums of this half's blocks, block-major (block `b` of trial `j` at
    /// `b·TILE + j`): gathered once per tile, so the subset sums read them contiguously.
    block_sums: Vec<f64>,
    block_squares: Vec<f64>,
}

impl HalfSubsets {
    fn new(first: usize, half: usize) -> HalfSubsets {
        let size = (1usize << half) * TILE;
        HalfSubsets {
            first,
            sums: vec![0.0; size],
            squares: vec![0.0; size],
            block_sums: vec![0.0; half * TILE],
            block_squares: vec![0.0; half * TILE],
        }
    }

    fn fill(&mut self, sums: &BlockSums, tile: &[usize]) {
        let s = sums.blocks.len();
        let half = self.block_sums.len() / TILE;
        for b in 0..half {
            for (j, &c) in tile.iter().enumerate() {
                self.block_sums[b * TILE + j] = sums.sums[c * s + self.first + b];
                self.block_squares[b * TILE + j] = sums.squares[c * s + self.first + b];
            }
        }
        let subsets = self.sums.len() / TILE;
        for m in 1..subsets {
            let top = usize::BITS as usize - 1 - m.leading_zeros() as usize;
            let rest = m & !(1 << top);
            // Subset m = subset `rest` (computed before m) plus block `top`.
            let (done, row) = self.sums.split_at_mut(m * TILE);
            add_rows(&done[rest * TILE..][..TILE], &self.block_sums[top * TILE..][..TILE], &mut row[..TILE]);
            let (done, row) = self.squares.split_at_mut(m * TILE);
            add_rows(&done[rest * TILE..][..TILE], &self.block_squares[top * TILE..][..TILE], &mut row[..TILE]);
        }
    }

    fn row(values: &[f64], m: usize, len: usize) -> &[f64] {
        &values[m * TILE..m * TILE + len]
    }
}

/// `out = a + b`, element by element (a loop the compiler vectorizes).
fn add_rows(a: &[f64], b: &[f64], out: &mut [f64]) {
    for ((out, a), b) in out.iter_mut().zip(a).zip(b) {
        *out = a + b;
    }
}

/// The order keys ([`order_key`]) of a tile's trials over the blocks `low` ∪ `high` (one
/// subset per half) into `out`, in a loop the compiler vectorizes; compiled for AVX-512
/// and AVX2 too, chosen at run time.
fn tile_keys(low: &HalfSubsets, high: &HalfSubsets, (m_low, m_high): (usize, usize), n: f64, out: &mut [f64]) {
    let len = out.len();
    let rows = [
        HalfSubsets::row(&low.sums, m_low, len),
        HalfSubsets::row(&high.sums, m_high, len),
        HalfSubsets::row(&low.squares, m_low, len),
        HalfSubsets::row(&high.squares, m_high, len),
    ];
    #[inline(always)]
    fn keys(n: f64, [sum_low, sum_high, sq_low, sq_high]: [&[f64]; 4], out: &mut [f64]) {
        for (j, key) in out.iter_mut().enumerate() {
            *key = order_key(n, sum_low[j] + sum_high[j], sq_low[j] + sq_high[j]);
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        /// # Safety
        /// The CPU must have AVX-512F.
        #[target_feature(enable = "avx512f")]
        unsafe fn keys_avx512(n: f64, rows: [&[f64]; 4], out: &mut [f64]) {
            keys(n, rows, out)
        }
        /// # Safety
        /// The CPU must have AVX2.
        #[target_feature(enable = "avx2")]
        unsafe fn keys_avx2(n: f64, rows: [&[f64]; 4], out: &mut [f64]) {
            keys(n, rows, out)
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (detected above).
            return unsafe { keys_avx512(n, rows, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (detected above).
            return unsafe { keys_avx2(n, rows, out) };
        }
    }
    keys(n, rows, out)
}

/// The largest of `values` (no NaNs), with eight independent maxima so the compiler
/// keeps them in one vector instead of a chain of dependent compares.
fn maximum(values: &[f64]) -> f64 {
    let mut lanes = [f64::NEG_INFINITY; 8];
    let chunks = values.chunks_exact(8);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (m, &v) in lanes.iter_mut().zip(chunk) {
            *m = if v > *m { v } else { *m };
        }
    }
    lanes.iter().chain(rest).fold(f64::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}

/// Orders the trials of one split (one `n`) as their Sharpe ratios order, with one
/// division and no square root: `sign(s)·s²/(n·q)`, 0 where the variance is not > 0.
/// (Sharpe² = (n-1)/n · x/(1-x) with x = s²/(n·q) in [0, 1): increasing in x.) Equal
/// inputs give equal keys, so trials with equal block sums tie exactly.
pub fn order_key(n: f64, sum: f64, squares: f64) -> f64 {
    let scale = n * squares;
    let square = sum * sum;
    if scale - square > 0.0 {
        (square / scale).copysign(sum)
    } else {
        0.0
    }
}

/// PBO by CSCV over `trials` (at least two) of `sums`, on `threads` threads (each takes
/// a contiguous share of the trials; the result does not depend on the count).
///
/// Two passes over the trials, a tile at a time, each with every split: the first finds
/// each split's `n*`, the second counts the trials below and level with `n*` out of
/// sample. A split's in-sample (or out-of-sample) sums of a trial are one addition of two
/// precomputed half-block subset sums, the same values the definition's fixed order
/// gives, so the result is the plain computation's bit for bit. Cost: `2 · splits · K`
/// Sharpe ratios (S = 16: 12,870 splits), plus `2^(S/2)` subset sums per trial and pass.
/// Threads share the trials, not the splits, so each tile's subset sums are made once per
/// pass (they are as much work as the keys when the splits are few, S = 8).
pub fn cscv(sums: &BlockSums, trials: &Trials, threads: usize) -> Option<Cscv> {
    let k = trials.len();
    if k < 2 {
        return None;
    }
    let plan = SplitPlan::new(sums);
    // The trials in contiguous shares of whole tiles, one thread each.
    let share = k.div_ceil(threads.max(1)).div_ceil(TILE) * TILE;
    let shares: Vec<std::ops::Range<usize>> =
        (0..k).step_by(share).map(|start| start..(start + share).min(k)).collect();
    // Pass 1: n* per split, the first maximum in trial order (shares are in trial order).
    let per_share: Vec<Vec<Option<(f64, usize)>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = shares
            .iter()
            .map(|range| {
                let plan = &plan;
                scope.spawn(move || plan.best_in_sample(sums, trials, range.clone()))
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("a CSCV thread panicked")).collect()
    });
    let mut best: Vec<Option<(f64, usize)>> = vec![None; plan.masks.len()];
    for share in &per_share {
        for (best, candidate) in best.iter_mut().zip(share) {
            if let Some((value, i)) = *candidate {
                if best.is_none_or(|(b, _)| value > b) {
                    *best = Some((value, i));
                }
            }
        }
    }
    let mut outcomes = Vec::with_capacity(plan.masks.len());
    let mut targets = Vec::with_capacity(plan.masks.len());
    for (split, best) in best.iter().enumerate() {
        let (_, i) = best.expect("every split has a best trial");
        let (n_is, n_oos) = plan.counts[split];
        let mask = plan.masks[split];
        let (sum, squares) = sums.over(trials.combos[i], mask);
        let in_sample = sharpe(n_is, sum, squares);
        let (sum, squares) = sums.over(trials.combos[i], plan.all & !mask);
        let out_of_sample = sharpe(n_oos, sum, squares);
        targets.push(order_key(n_oos, sum, squares));
        outcomes.push(SplitOutcome { in_sample, out_of_sample, loses: sum < 0.0, below: 0, level: 0 });
    }
    // Pass 2: n*'s out-of-sample rank, counted per share and added.
    let counted: Vec<Vec<(usize, usize)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = shares
            .iter()
            .map(|range| {
                let (plan, targets) = (&plan, &targets);
                scope.spawn(move || plan.ranks_out_of_sample(sums, trials, range.clone(), targets))
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("a CSCV thread panicked")).collect()
    });
    for share in &counted {
        for (outcome, &(below, level)) in outcomes.iter_mut().zip(share) {
            outcome.below += below;
            outcome.level += level;
        }
    }
    let splits = plan.masks.len() as f64;
    let mut result = Cscv {
        splits: plan.masks.len(),
        pbo: 0.0,
        lambdas: Vec::with_capacity(plan.masks.len()),
        in_sample: outcomes.iter().map(|o| o.in_sample).collect(),
        out_of_sample: outcomes.iter().map(|o| o.out_of_sample).collect(),
        degradation_slope: f64::NAN,
        prob_oos_loss: outcomes.iter().filter(|o| o.loses).count() as f64 / splits,
    };
    let mut overfit = 0usize;
    for outcome in &outcomes {
        let rank = outcome.below as f64 + (outcome.level as f64 + 1.0) / 2.0;
        let w = rank / (k as f64 + 1.0);
        let lambda = (w / (1.0 - w)).ln();
        overfit += usize::from(lambda <= 0.0);
        result.lambdas.push(lambda);
    }
    result.pbo = overfit as f64 / splits;
    result.degradation_slope = ols_slope(&result.in_sample, &result.out_of_sample);
    Some(result)
}

/// What one split finds: `n*`'s Sharpe in and out of sample, whether it loses out of
/// sample, and how many trials are below and level with it out of sample.
struct SplitOutcome {
    in_sample: f64,
    out_of_sample: f64,
    loses: bool,
    below: usize,
    level: usize,
}

/// The splits as the passes use them: each one's in-sample mask, its blocks as one subset
/// of each half (in and out of sample), and its return counts.
struct SplitPlan {
    masks: Vec<u64>,
    all: u64,
    half: usize,
    in_halves: Vec<(usize, usize)>,
    out_halves: Vec<(usize, usize)>,
    counts: Vec<(f64, f64)>,
}

impl SplitPlan {
    fn new(sums: &BlockSums) -> SplitPlan {
        let s = sums.blocks.len();
        let half = s / 2;
        let all = (1u64 << s) - 1;
        let half_mask = (1u64 << half) - 1;
        let masks = split_masks(s);
        let halves = |m: u64| ((m & half_mask) as usize, (m >> half & half_mask) as usize);
        SplitPlan {
            in_halves: masks.iter().map(|&m| halves(m)).collect(),
            out_halves: masks.iter().map(|&m| halves(all & !m)).collect(),
            counts: masks.iter().map(|&m| (sums.count(m), sums.count(all & !m))).collect(),
            masks,
            all,
            half,
        }
    }

    /// Pass 1 over the trials `range`: per split, the largest in-sample order key and the
    /// first trial (index into `trials`) that has it.
    fn best_in_sample(
        &self,
        sums: &BlockSums,
        trials: &Trials,
        range: std::ops::Range<usize>,
    ) -> Vec<Option<(f64, usize)>> {
        let mut low = HalfSubsets::new(0, self.half);
        let mut high = HalfSubsets::new(self.half, self.half);
        let mut tile_values = vec![0.0; TILE];
        let mut best: Vec<Option<(f64, usize)>> = vec![None; self.masks.len()];
        let first = range.start;
        for (t, tile) in trials.combos[range].chunks(TILE).enumerate() {
            low.fill(sums, tile);
            high.fill(sums, tile);
            for (split, best) in best.iter_mut().enumerate() {
                let values = &mut tile_values[..tile.len()];
                tile_keys(&low, &high, self.in_halves[split], self.counts[split].0, values);
                let top = maximum(values);
                if best.is_none_or(|(b, _)| top > b) {
                    let j = values.iter().position(|&v| v == top).expect("the maximum is a value");
                    *best = Some((top, first + t * TILE + j));
                }
            }
        }
        best
    }

    /// Pass 2 over the trials `range`: per split, how many are below and level with the
    /// split's `targets` out of sample.
    fn ranks_out_of_sample(
        &self,
        sums: &BlockSums,
        trials: &Trials,
        range: std::ops::Range<usize>,
        targets: &[f64],
    ) -> Vec<(usize, usize)> {
        let mut low = HalfSubsets::new(0, self.half);
        let mut high = HalfSubsets::new(self.half, self.half);
        let mut tile_values = vec![0.0; TILE];
        let mut counts = vec![(0usize, 0usize); self.masks.len()];
        for tile in trials.combos[range].chunks(TILE) {
            low.fill(sums, tile);
            high.fill(sums, tile);
            for (split, (below, level)) in counts.iter_mut().enumerate() {
                let values = &mut tile_values[..tile.len()];
                tile_keys(&low, &high, self.out_halves[split], self.counts[split].1, values);
                let target = targets[split];
                *below += values.iter().filter(|&&x| x < target).count();
                *level += values.iter().filter(|&&x| x == target).count();
            }
        }
        counts
    }
}

/// The OLS slope of `y` on `x` (NaN when `x` does not vary).
fn ols_slope(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let mean_x = x.iter().sum::<f64>() / n;
    let mean_y = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, y) in x.iter().zip(y) {
        sxy += (x - mean_x) * (y - mean_y);
        sxx += (x - mean_x) * (x - mean_x);
    }
    if sxx > 0.0 {
        sxy / sxx
    } else {
        f64::NAN
    }
}

/// [`cscv`] the plain way (each split sums its blocks per combo): the tiled version
/// must equal it bit for bit.
#[cfg(test)]
fn cscv_direct(sums: &BlockSums, trials: &Trials) -> Option<Cscv> {
    let k = trials.len();
    if k < 2 {
        return None;
    }
    let s = sums.blocks.len();
    let all = (1u64 << s) - 1;
    let masks = split_masks(s);
    let mut result = Cscv {
        splits: masks.len(),
        pbo: 0.0,
        lambdas: Vec::with_capacity(masks.len()),
        in_sample: Vec::with_capacity(masks.len()),
        out_of_sample: Vec::with_capacity(masks.len()),
        degradation_slope: f64::NAN,
        prob_oos_loss: 0.0,
    };
    let (mut is_sharpe, mut oos_sharpe) = (vec![0.0; k], vec![0.0; k]);
    let (mut is_key, mut oos_key) = (vec![0.0; k], vec![0.0; k]);
    let (mut overfit, mut losses) = (0usize, 0usize);
    for &mask in &masks {
        let (n_is, n_oos) = (sums.count(mask), sums.count(all & !mask));
        let mut best = 0;
        let mut best_oos_sum = 0.0;
        for (i, &c) in trials.combos.iter().enumerate() {
            let (sum, squares) = sums.over(c, mask);
            is_key[i] = order_key(n_is, sum, squares);
            is_sharpe[i] = sharpe(n_is, sum, squares);
            let (sum_oos, squares_oos) = sums.over(c, all & !mask);
            oos_key[i] = order_key(n_oos, sum_oos, squares_oos);
            oos_sharpe[i] = sharpe(n_oos, sum_oos, squares_oos);
            if i == 0 || is_key[i] > is_key[best] {
                best = i;
                best_oos_sum = sum_oos;
            }
        }
        let target = oos_key[best];
        let below = oos_key.iter().filter(|&&x| x < target).count();
        let equal = oos_key.iter().filter(|&&x| x == target).count();
        let rank = below as f64 + (equal as f64 + 1.0) / 2.0;
        let w = rank / (k as f64 + 1.0);
        let lambda = (w / (1.0 - w)).ln();
        overfit += usize::from(lambda <= 0.0);
        losses += usize::from(best_oos_sum < 0.0);
        result.lambdas.push(lambda);
        result.in_sample.push(is_sharpe[best]);
        result.out_of_sample.push(oos_sharpe[best]);
    }
    let splits = masks.len() as f64;
    result.pbo = overfit as f64 / splits;
    result.prob_oos_loss = losses as f64 / splits;
    result.degradation_slope = ols_slope(&result.in_sample, &result.out_of_sample);
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_put_the_remainder_first() {
        let blocks = Blocks::new(2147, 16).unwrap();
        assert_eq!(blocks.returns(), 2147);
        assert_eq!(&blocks.lengths()[..4], &[135, 135, 135, 134]);
        assert_eq!(blocks.lengths().iter().filter(|&&n| n == 135).count(), 2147 % 16);
        assert_eq!(blocks.splits(), 12870);
        assert_eq!(split_masks(16).len(), 12870);
        assert_eq!(split_masks(4), vec![0b0011, 0b0101, 0b1001, 0b0110, 0b1010, 0b1100]);
    }

    #[test]
    fn bad_block_counts_are_refused() {
        assert_eq!(Blocks::new(100, 3), Err(OverfittingError::OddBlocks(3)));
        assert_eq!(Blocks::new(100, 0), Err(OverfittingError::OddBlocks(0)));
        assert_eq!(Blocks::new(40, 22), Err(OverfittingError::TooManyBlocks { blocks: 22, returns: 40 }));
        assert!(Blocks::new(40, 20).is_ok());
        assert_eq!(Blocks::new(10_000, MAX_BLOCKS + 2), Err(OverfittingError::TooManySplits(MAX_BLOCKS + 2)));
        assert_eq!(Blocks::new(10_000, MAX_BLOCKS).unwrap().splits(), 2_704_156);
    }

    #[test]
    fn the_normal_quantile_inverts_the_cdf() {
        for &p in &[1e-300, 1e-12, 0.001, 0.02425, 0.1, 0.425, 0.5, 0.575, 0.9, 0.97575, 0.999, 1.0 - 1e-12] {
            let x = normal_quantile(p);
            assert!((normal_cdf(x) - p).abs() <= 1e-14 * p.max(1e-3), "p {p}: x {x}, cdf {}", normal_cdf(x));
        }
        assert_eq!(normal_quantile(0.5), 0.0);
        // Published values: Φ⁻¹(0.975) = 1.959963984540054, Φ⁻¹(0.999) = 3.090232306167813.
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-15);
        assert!((normal_quantile(0.999) - 3.090_232_306_167_813_5).abs() < 1e-14);
        assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
        assert!(normal_quantile(1.5).is_nan());
    }

    #[test]
    fn identical_combos_tie_and_the_lowest_id_wins() {
        // Combos 1 and 2 have the same blocks; combo 0 is flat (not a trial).
        let blocks = Blocks::new(40, 4).unwrap();
        let sums = [0.0, 0.0, 0.0, 0.0, 0.1, -0.05, 0.2, 0.03, 0.1, -0.05, 0.2, 0.03, -0.1, 0.05, 0.02, 0.0];
        let squares = [0.0, 0.0, 0.0, 0.0, 0.02, 0.03, 0.05, 0.01, 0.02, 0.03, 0.05, 0.01, 0.04, 0.01, 0.02, 0.01];
        let block_sums = BlockSums { blocks: &blocks, sums: &sums, squares: &squares };
        let trials = Trials::new(&block_sums);
        assert_eq!(trials.combos, vec![1, 2, 3]);
        assert_eq!(trials.sharpe[0].to_bits(), trials.sharpe[1].to_bits());
        assert_eq!(trials.best(), Some(0));
        let cscv = cscv(&block_sums, &trials, 2).unwrap();
        assert_eq!(cscv, cscv_direct(&block_sums, &trials).unwrap());
        assert_eq!(cscv.splits, 6);
        // n* is combo 1 or its twin: its out-of-sample rank averages the tie.
        for lambda in &cscv.lambdas {
            assert!(lambda.is_finite());
        }
    }

    /// The tiled passes against the plain computation, bit for bit: several tiles, a
    /// partial last one, duplicate trials across tiles, flat combos.
    #[test]
    fn tiled_cscv_equals_the_plain_computation() {
        let blocks = Blocks::new(400, 8).unwrap();
        let combos = 2 * TILE + 77;
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let (mut sums, mut squares) = (Vec::new(), Vec::new());
        for c in 0..combos {
            for b in 0..8 {
                let (s, q) = match c % 11 {
                    0 => (0.0, 0.0),
                    5 if c > TILE => (sums[(c - TILE) * 8 + b], squares[(c - TILE) * 8 + b]),
                    _ => {
                        let s = next() * 0.2;
                        (s, s * s / 50.0 + 0.01 * (next() + 0.5))
                    }
                };
                sums.push(s);
                squares.push(q);
            }
        }
        let block_sums = BlockSums { blocks: &blocks, sums: &sums, squares: &squares };
        let trials = Trials::new(&block_sums);
        assert!(trials.len() > 2 * TILE);
        let tiled = cscv(&block_sums, &trials, 1).unwrap();
        assert_eq!(tiled, cscv(&block_sums, &trials, 3).unwrap());
        let plain = cscv_direct(&block_sums, &trials).unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&tiled.lambdas), bits(&plain.lambdas));
        assert_eq!(bits(&tiled.in_sample), bits(&plain.in_sample));
        assert_eq!(bits(&tiled.out_of_sample), bits(&plain.out_of_sample));
        assert_eq!((tiled.pbo, tiled.prob_oos_loss), (plain.pbo, plain.prob_oos_loss));
        assert!(tiled.pbo > 0.0 && tiled.pbo < 1.0, "{}", tiled.pbo);
    }
}
