//! AVX2: four f64 lanes in a 256-bit register.

use super::super::Lanes;
use std::arch::x86_64::*;

/// Four f64 lanes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2(__m256d);

// SAFETY: every method uses AVX instructions only; callers check AVX2 support
// (`KernelPath::Avx2.is_available()`) before using this type, and the entry points that
// instantiate the generic algorithms with it carry `#[target_feature(enable = "avx2")]`.
unsafe impl Lanes for Avx2 {
    const N: usize = 4;
    /// All-ones or zero lanes.
    type Mask = __m256d;
    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        Avx2(unsafe { _mm256_set1_pd(x) })
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        // SAFETY: the caller passes a pointer to 4 readable f64 (no alignment needed).
        Avx2(unsafe { _mm256_loadu_pd(p) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64) {
        // SAFETY: the caller passes a pointer to 4 writable f64.
        unsafe { _mm256_storeu_pd(p, self.0) }
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        Avx2(unsafe { _mm256_add_pd(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        Avx2(unsafe { _mm256_sub_pd(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        Avx2(unsafe { _mm256_mul_pd(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        Avx2(unsafe { _mm256_div_pd(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn min(self, o: Self) -> Self {
        // minpd returns the second operand when either is NaN; f64::min returns the
        // non-NaN one. Returns are never NaN while equity stays positive.
        Avx2(unsafe { _mm256_min_pd(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn max(self, o: Self) -> Self {
        Avx2(unsafe { _mm256_max_pd(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn gt(self, o: Self) -> __m256d {
        unsafe { _mm256_cmp_pd::<_CMP_GT_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    unsafe fn ge(self, o: Self) -> __m256d {
        unsafe { _mm256_cmp_pd::<_CMP_GE_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    unsafe fn lt(self, o: Self) -> __m256d {
        unsafe { _mm256_cmp_pd::<_CMP_LT_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    unsafe fn ne(self, o: Self) -> __m256d {
        unsafe { _mm256_cmp_pd::<_CMP_NEQ_UQ>(self.0, o.0) }
    }
    #[inline(always)]
    unsafe fn nge(self, o: Self) -> __m256d {
        unsafe { _mm256_cmp_pd::<_CMP_NGE_UQ>(self.0, o.0) }
    }
    #[inline(always)]
    unsafe fn select(m: __m256d, a: Self, b: Self) -> Self {
        Avx2(unsafe { _mm256_blendv_pd(b.0, a.0, m) })
    }
    #[inline(always)]
    unsafe fn any(m: __m256d) -> bool {
        unsafe { _mm256_movemask_pd(m) != 0 }
    }
    #[inline(always)]
    unsafe fn none() -> __m256d {
        unsafe { _mm256_setzero_pd() }
    }
    #[inline(always)]
    unsafe fn and(a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_and_pd(a, b) }
    }
    #[inline(always)]
    unsafe fn or(a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_or_pd(a, b) }
    }
    #[inline(always)]
    unsafe fn xor(a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_xor_pd(a, b) }
    }
    #[inline(always)]
    unsafe fn add_where(self, m: __m256d, x: Self) -> Self {
        Avx2(unsafe { _mm256_blendv_pd(self.0, _mm256_add_pd(self.0, x.0), m) })
    }
    #[inline(always)]
    unsafe fn add_or_zero(self, m: __m256d, x: Self) -> Self {
        Avx2(unsafe { _mm256_and_pd(m, _mm256_add_pd(self.0, x.0)) })
    }
}
