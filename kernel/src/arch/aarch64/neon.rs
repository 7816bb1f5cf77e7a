//! NEON: two f64 lanes in a 128-bit register (Cortex-A72: 2 x f64 per instruction).

use super::super::Lanes;
use std::arch::aarch64::*;

/// Two f64 lanes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Neon(float64x2_t);

// SAFETY: NEON is part of every AArch64 CPU this crate targets (it is a baseline feature
// of the aarch64 targets), so these instructions are always available.
unsafe impl Lanes for Neon {
    const N: usize = 2;
    /// All-ones or zero lanes.
    type Mask = uint64x2_t;
    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        Neon(unsafe { vdupq_n_f64(x) })
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        // SAFETY: the caller passes a pointer to 2 readable f64.
        Neon(unsafe { vld1q_f64(p) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64) {
        // SAFETY: the caller passes a pointer to 2 writable f64.
        unsafe { vst1q_f64(p, self.0) }
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        Neon(unsafe { vaddq_f64(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        Neon(unsafe { vsubq_f64(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        Neon(unsafe { vmulq_f64(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        Neon(unsafe { vdivq_f64(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn min(self, o: Self) -> Self {
        // fminnm: the non-NaN operand, like f64::min.
        Neon(unsafe { vminnmq_f64(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn max(self, o: Self) -> Self {
        Neon(unsafe { vmaxnmq_f64(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn gt(self, o: Self) -> uint64x2_t {
        unsafe { vcgtq_f64(self.0, o.0) }
    }
    #[inline(always)]
    unsafe fn ge(self, o: Self) -> uint64x2_t {
        unsafe { vcgeq_f64(self.0, o.0) }
    }
    #[inline(always)]
    unsafe fn lt(self, o: Self) -> uint64x2_t {
        unsafe { vcltq_f64(self.0, o.0) }
    }
    #[inline(always)]
    unsafe fn ne(self, o: Self) -> uint64x2_t {
        let equal = unsafe { vreinterpretq_u32_u64(vceqq_f64(self.0, o.0)) };
        unsafe { vreinterpretq_u64_u32(vmvnq_u32(equal)) }
    }
    #[inline(always)]
    unsafe fn nge(self, o: Self) -> uint64x2_t {
        let ge = unsafe { vreinterpretq_u32_u64(vcgeq_f64(self.0, o.0)) };
        unsafe { vreinterpretq_u64_u32(vmvnq_u32(ge)) }
    }
    #[inline(always)]
    unsafe fn select(m: uint64x2_t, a: Self, b: Self) -> Self {
        Neon(unsafe { vbslq_f64(m, a.0, b.0) })
    }
    #[inline(always)]
    unsafe fn any(m: uint64x2_t) -> bool {
        unsafe { vmaxvq_u32(vreinterpretq_u32_u64(m)) != 0 }
    }
    #[inline(always)]
    unsafe fn none() -> uint64x2_t {
        unsafe { vdupq_n_u64(0) }
    }
    #[inline(always)]
    unsafe fn and(a: uint64x2_t, b: uint64x2_t) -> uint64x2_t {
        unsafe { vandq_u64(a, b) }
    }
    #[inline(always)]
    unsafe fn or(a: uint64x2_t, b: uint64x2_t) -> uint64x2_t {
        unsafe { vorrq_u64(a, b) }
    }
    #[inline(always)]
    unsafe fn xor(a: uint64x2_t, b: uint64x2_t) -> uint64x2_t {
        unsafe { veorq_u64(a, b) }
    }
    #[inline(always)]
    unsafe fn add_where(self, m: uint64x2_t, x: Self) -> Self {
        Neon(unsafe { vbslq_f64(m, vaddq_f64(self.0, x.0), self.0) })
    }
    #[inline(always)]
    unsafe fn add_or_zero(self, m: uint64x2_t, x: Self) -> Self {
        let sum = unsafe { vreinterpretq_u64_f64(vaddq_f64(self.0, x.0)) };
        Neon(unsafe { vreinterpretq_f64_u64(vandq_u64(m, sum)) })
    }
}
