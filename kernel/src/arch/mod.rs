//! Instruction-set paths of the kernel.
//!
//! The batch algorithms are written once, generically over `Lanes` (a few f64 vector
//! operations), and instantiated for each instruction set: `portable` (one lane, any
//! target: it runs the same generic code, for tests), `x86_64::avx2` and `x86_64::avx512`
//! (4 and 8 lanes, detected at run time and cached) and `aarch64::neon` (2 lanes; NEON is part of every AArch64 CPU,
//! including the Pi 4's Cortex-A72, so it is chosen at compile time). The scalar
//! per-combo kernels in the strategy modules stay the reference every path is tested
//! against.
//!
//! `SWEEPRUN_KERNEL=scalar|avx2|neon` overrides the choice (an unavailable path is an error).

#[cfg(target_arch = "aarch64")]
pub(crate) mod aarch64;
pub(crate) mod portable;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_64;

use std::fmt;
use std::sync::OnceLock;

/// A kernel path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelPath {
    /// The per-combo scalar reference.
    Scalar,
    /// The generic algorithm on one lane (tests and targets without SIMD).
    Portable,
    /// AVX2, 4 combos per instruction.
    Avx2,
    /// AVX-512 (F + DQ), 8 combos per instruction.
    Avx512,
    /// NEON, 2 combos per instruction.
    Neon,
}

impl KernelPath {
    /// Name as written in `SWEEPRUN_KERNEL` and sidecars.
    pub fn name(self) -> &'static str {
        match self {
            KernelPath::Scalar => "scalar",
            KernelPath::Portable => "portable",
            KernelPath::Avx2 => "avx2",
            KernelPath::Avx512 => "avx512",
            KernelPath::Neon => "neon",
        }
    }

    /// Whether this machine can run the path.
    pub fn is_available(self) -> bool {
        match self {
            KernelPath::Scalar | KernelPath::Portable => true,
            KernelPath::Avx2 => avx2_available(),
            KernelPath::Avx512 => avx512_available(),
            KernelPath::Neon => cfg!(target_arch = "aarch64"),
        }
    }

    /// The paths this machine can run, best first.
    pub fn available() -> Vec<KernelPath> {
        [KernelPath::Avx512, KernelPath::Avx2, KernelPath::Neon, KernelPath::Portable, KernelPath::Scalar]
            .into_iter()
            .filter(|p| p.is_available())
            .collect()
    }
}

impl fmt::Display for KernelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(target_arch = "x86_64")]
fn avx2_available() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

#[cfg(not(target_arch = "x86_64"))]
fn avx2_available() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
fn avx512_available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512dq")
}

#[cfg(not(target_arch = "x86_64"))]
fn avx512_available() -> bool {
    false
}

/// The environment variable that overrides the kernel path.
pub const KERNEL_ENV: &str = "SWEEPRUN_KERNEL";

/// Why `SWEEPRUN_KERNEL` cannot be honoured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelChoiceError(pub String);

impl fmt::Display for KernelChoiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KernelChoiceError {}

/// Parses a `SWEEPRUN_KERNEL` value, checking the path is available here.
pub fn parse_kernel(name: &str) -> Result<KernelPath, KernelChoiceError> {
    let path = match name {
        "scalar" => KernelPath::Scalar,
        "portable" => KernelPath::Portable,
        "avx2" => KernelPath::Avx2,
        "avx512" => KernelPath::Avx512,
        "neon" => KernelPath::Neon,
        other => {
            return Err(KernelChoiceError(format!(
                "{KERNEL_ENV}={other}: unknown kernel (expected scalar, portable, avx2, avx512 or neon)"
            )))
        }
    };
    if path.is_available() {
        Ok(path)
    } else {
        Err(KernelChoiceError(format!("{KERNEL_ENV}={name}: this CPU or build cannot run the {name} kernel")))
    }
}

/// The kernel path to use: `SWEEPRUN_KERNEL` if set, else the best available one.
/// Detected once and cached.
pub fn selected_kernel() -> Result<KernelPath, KernelChoiceError> {
    static CHOICE: OnceLock<Result<KernelPath, KernelChoiceError>> = OnceLock::new();
    CHOICE
        .get_or_init(|| match std::env::var(KERNEL_ENV) {
            Ok(name) if !name.is_empty() => parse_kernel(&name),
            _ => Ok(KernelPath::available()[0]),
        })
        .clone()
}

/// A vector of f64 lanes, with a mask type for lane-wise conditions (AVX-512: a mask
/// register; AVX2 and NEON: a vector of all-ones or zero lanes; portable: a bool).
///
/// # Safety
/// Implementations use instructions of one instruction set: callers must only use an
/// implementation on a CPU that has it (see [`KernelPath::is_available`]).
pub(crate) unsafe trait Lanes: Copy {
    /// Number of f64 lanes.
    const N: usize;
    /// One condition per lane.
    type Mask: Copy;
    /// All lanes `x`.
    unsafe fn splat(x: f64) -> Self;
    /// Loads `N` values from `p` (unaligned).
    unsafe fn load(p: *const f64) -> Self;
    /// Stores the lanes to `p` (unaligned).
    unsafe fn store(self, p: *mut f64);
    /// Lane-wise `+`.
    unsafe fn add(self, other: Self) -> Self;
    /// Lane-wise `-`.
    unsafe fn sub(self, other: Self) -> Self;
    /// Lane-wise `*` (separately rounded: no fused multiply-add, to stay bit-identical to
    /// the scalar kernel).
    unsafe fn mul(self, other: Self) -> Self;
    /// Lane-wise `/`.
    unsafe fn div(self, other: Self) -> Self;
    /// Lane-wise minimum (as `f64::min` for non-NaN inputs).
    unsafe fn min(self, other: Self) -> Self;
    /// Lane-wise maximum.
    unsafe fn max(self, other: Self) -> Self;
    /// Mask of `self > other`.
    unsafe fn gt(self, other: Self) -> Self::Mask;
    /// Mask of `self >= other`.
    unsafe fn ge(self, other: Self) -> Self::Mask;
    /// Mask of `self < other`.
    unsafe fn lt(self, other: Self) -> Self::Mask;
    /// Mask of `self != other` (set where either is NaN).
    unsafe fn ne(self, other: Self) -> Self::Mask;
    /// Mask of `!(self >= other)` (set where either is NaN).
    unsafe fn nge(self, other: Self) -> Self::Mask;
    /// `mask ? a : b`, lane-wise.
    unsafe fn select(mask: Self::Mask, a: Self, b: Self) -> Self;
    /// Whether any lane of `mask` is set.
    unsafe fn any(mask: Self::Mask) -> bool;
    /// The mask with no lane set.
    unsafe fn none() -> Self::Mask;
    /// Lane-wise `a && b`.
    unsafe fn and(a: Self::Mask, b: Self::Mask) -> Self::Mask;
    /// Lane-wise `a || b`.
    unsafe fn or(a: Self::Mask, b: Self::Mask) -> Self::Mask;
    /// Lane-wise `a != b`.
    unsafe fn xor(a: Self::Mask, b: Self::Mask) -> Self::Mask;
    /// `mask ? self + x : self`, lane-wise (a masked add on AVX-512).
    unsafe fn add_where(self, mask: Self::Mask, x: Self) -> Self;
    /// `mask ? self + x : 0.0`, lane-wise (a zero-masked add on AVX-512).
    unsafe fn add_or_zero(self, mask: Self::Mask, x: Self) -> Self;
}
