//! AVX-512 (F + DQ): eight f64 lanes in a 512-bit register.
//!
//! Comparisons produce mask registers; the generic algorithms keep masks as vectors, so
//! they are widened with `vpmovm2q` and narrowed back with `vpmovq2m` (both AVX-512DQ).

use super::super::Lanes;
use std::arch::x86_64::*;

/// Eight f64 lanes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512(__m512d);

#[inline(always)]
unsafe fn widen(mask: __mmask8) -> Avx512 {
    Avx512(unsafe { _mm512_castsi512_pd(_mm512_movm_epi64(mask)) })
}

#[inline(always)]
unsafe fn narrow(v: Avx512) -> __mmask8 {
    unsafe { _mm512_movepi64_mask(_mm512_castpd_si512(v.0)) }
}

// SAFETY: every method uses AVX-512F/DQ instructions only; callers check support
// (`KernelPath::Avx512.is_available()`) before using this type, and the entry point that
// instantiates the generic algorithms with it enables `avx512f,avx512dq`.
unsafe impl Lanes for Avx512 {
    const N: usize = 8;
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
    unsafe fn gt(self, o: Self) -> Self {
        unsafe { widen(_mm512_cmp_pd_mask::<_CMP_GT_OQ>(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn ge(self, o: Self) -> Self {
        unsafe { widen(_mm512_cmp_pd_mask::<_CMP_GE_OQ>(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn lt(self, o: Self) -> Self {
        unsafe { widen(_mm512_cmp_pd_mask::<_CMP_LT_OQ>(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn ne(self, o: Self) -> Self {
        unsafe { widen(_mm512_cmp_pd_mask::<_CMP_NEQ_UQ>(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn nge(self, o: Self) -> Self {
        unsafe { widen(_mm512_cmp_pd_mask::<_CMP_NGE_UQ>(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn select(m: Self, a: Self, b: Self) -> Self {
        Avx512(unsafe { _mm512_mask_blend_pd(narrow(m), b.0, a.0) })
    }
    #[inline(always)]
    unsafe fn any(m: Self) -> bool {
        unsafe { narrow(m) != 0 }
    }
    #[inline(always)]
    unsafe fn add_where(self, m: Self, x: Self) -> Self {
        Avx512(unsafe { _mm512_mask_add_pd(self.0, narrow(m), self.0, x.0) })
    }
    #[inline(always)]
    unsafe fn add_or_zero(self, m: Self, x: Self) -> Self {
        Avx512(unsafe { _mm512_maskz_add_pd(narrow(m), self.0, x.0) })
    }
}
