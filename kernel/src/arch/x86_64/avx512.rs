//! AVX-512 (F + DQ): eight f64 lanes in a 512-bit register.
//!
//! Comparisons produce mask registers, which the generic algorithms keep (`Mask` is
//! `__mmask8`): masked adds and blends take them directly.

use super::super::Lanes;
use std::arch::x86_64::*;

/// Eight f64 lanes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512(__m512d);

// SAFETY: every method uses AVX-512F/DQ instructions only; callers check support
// (`KernelPath::Avx512.is_available()`) before using this type, and the entry point that
// instantiates the generic algorithms with it enables `avx512f,avx512dq`.
unsafe impl Lanes for Avx512 {
    const N: usize = 8;
    type Mask = __mmask8;
    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        Avx512(unsafe { _mm512_set1_pd(x) })
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        // SAFETY: the caller passes a pointer to 8 readable f64.
        Avx512(unsafe { _mm512_loadu_pd(p) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64) {
        // SAFETY: the caller passes a pointer to 8 writable f64.
        unsafe { _mm512_storeu_pd(p, self.0) }
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        Avx512(unsafe { _mm512_add_pd(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        Avx512(unsafe { _mm512_sub_pd(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        Avx512(unsafe { _mm512_mul_pd(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        Avx512(unsafe { _mm512_div_pd(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn min(self, o: Self) -> Self {
        // Like minpd: the second operand when either is NaN (see the AVX2 note).
        Avx512(unsafe { _mm512_min_pd(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn max(self, o: Self) -> Self {
        Avx512(unsafe { _mm512_max_pd(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn gt(self, o: Self) -> __mmask8 {
        unsafe { _mm512_cmp_pd_mask::<_CMP_GT_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    unsafe fn ge(self, o: Self) -> __mmask8 {
        unsafe { _mm512_cmp_pd_mask::<_CMP_GE_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    unsafe fn lt(self, o: Self) -> __mmask8 {
        unsafe { _mm512_cmp_pd_mask::<_CMP_LT_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    unsafe fn ne(self, o: Self) -> __mmask8 {
        unsafe { _mm512_cmp_pd_mask::<_CMP_NEQ_UQ>(self.0, o.0) }
    }
    #[inline(always)]
    unsafe fn nge(self, o: Self) -> __mmask8 {
        unsafe { _mm512_cmp_pd_mask::<_CMP_NGE_UQ>(self.0, o.0) }
    }
    #[inline(always)]
    unsafe fn select(m: __mmask8, a: Self, b: Self) -> Self {
        Avx512(unsafe { _mm512_mask_blend_pd(m, b.0, a.0) })
    }
    #[inline(always)]
    unsafe fn any(m: __mmask8) -> bool {
        m != 0
    }
    #[inline(always)]
    unsafe fn none() -> __mmask8 {
        0
    }
    #[inline(always)]
    unsafe fn and(a: __mmask8, b: __mmask8) -> __mmask8 {
        a & b
    }
    #[inline(always)]
    unsafe fn or(a: __mmask8, b: __mmask8) -> __mmask8 {
        a | b
    }
    #[inline(always)]
    unsafe fn xor(a: __mmask8, b: __mmask8) -> __mmask8 {
        a ^ b
    }
    #[inline(always)]
    unsafe fn add_where(self, m: __mmask8, x: Self) -> Self {
        Avx512(unsafe { _mm512_mask_add_pd(self.0, m, self.0, x.0) })
    }
    #[inline(always)]
    unsafe fn add_or_zero(self, m: __mmask8, x: Self) -> Self {
        Avx512(unsafe { _mm512_maskz_add_pd(m, self.0, x.0) })
    }
}
