/* The SIMD part of the guest floating-point program: SSE and SSE2 intrinsics, MXCSR
 * rounding modes, DAZ/FTZ and the sticky flags, integer SIMD. */
#include <emmintrin.h>
#include "fp_common.h"

static uint64_t vh(uint64_t h, __m128i v) {
    uint64_t q[2];
    _mm_storeu_si128((__m128i *)q, v);
    return fp_mix(fp_mix(h, q[0]), q[1]);
}
#define VHD(h, v) vh(h, _mm_castpd_si128(v))
#define VHS(h, v) vh(h, _mm_castps_si128(v))

void sse2_part(void) {
    const unsigned csr0 = _mm_getcsr();
    for (unsigned mode = 0; mode < 16; mode++) {
        /* rounding control, FTZ, DAZ; all exceptions masked */
        unsigned csr = 0x1f80 | (mode & 3) << 13 | (mode >> 2 & 1) << 15 | (mode >> 3 & 1) << 6;
        uint64_t seed = 9, h = 0;
        _mm_setcsr(csr);
        for (int i = 0; i < 5000; i++) {
            __m128d a = _mm_set_pd(fp_interesting(&seed), fp_interesting(&seed));
            __m128d b = _mm_set_pd(fp_interesting(&seed), fp_interesting(&seed));
            __m128d tiny = _mm_set_pd(bitsd(fp_next(&seed) & 0x801fffffffffffffULL),
                                      bitsd(fp_next(&seed) & 0x001fffffffffffffULL));
            h = VHD(h, _mm_add_pd(a, b)); h = VHD(h, _mm_sub_pd(a, b));
            h = VHD(h, _mm_mul_pd(a, b)); h = VHD(h, _mm_div_pd(a, b));
            h = VHD(h, _mm_sqrt_pd(a)); h = VHD(h, _mm_min_pd(a, b));
            h = VHD(h, _mm_max_pd(a, b)); h = VHD(h, _mm_mul_pd(tiny, a));
            h = VHD(h, _mm_cmplt_pd(a, b)); h = VHD(h, _mm_cmpunord_pd(a, b));
            h = VHD(h, _mm_add_sd(a, tiny));
            h = vh(h, _mm_cvtpd_epi32(a)); h = vh(h, _mm_cvttpd_epi32(b));
            h = fp_mix(h, (uint64_t)_mm_cvtsd_si32(a)); h = fp_mix(h, (uint64_t)_mm_comilt_sd(a, b));
            __m128 fa = _mm_cvtpd_ps(a), fb = _mm_cvtpd_ps(b);
            fa = _mm_movelh_ps(fa, _mm_cvtpd_ps(tiny));
            h = VHS(h, fa); h = VHS(h, _mm_add_ps(fa, fb)); h = VHS(h, _mm_mul_ps(fa, fb));
            h = VHS(h, _mm_div_ps(fa, fb)); h = VHS(h, _mm_sqrt_ps(fa));
            h = VHS(h, _mm_max_ps(fa, fb)); h = VHS(h, _mm_cmpnle_ps(fa, fb));
            h = VHD(h, _mm_cvtps_pd(fa)); h = vh(h, _mm_cvtps_epi32(fa));
            h = VHS(h, _mm_cvtepi32_ps(_mm_castpd_si128(b)));
            h = VHD(h, _mm_cvtepi32_pd(_mm_castpd_si128(a)));
            h = fp_mix(h, (uint64_t)_mm_movemask_pd(a) | (uint64_t)_mm_movemask_ps(fb) << 2);
        }
        unsigned flags = _mm_getcsr() & 0x3f;
        _mm_setcsr(csr0);
        printf("sse2 packed, mxcsr %04x: hash %016llx, flags %02x\n", csr,
               (unsigned long long)h, flags);
    }
    /* integer SIMD */
    uint64_t seed = 10, h = 0;
    for (int i = 0; i < 20000; i++) {
        __m128i a = _mm_set_epi64x((long long)fp_next(&seed), (long long)fp_next(&seed));
        __m128i b = _mm_set_epi64x((long long)fp_next(&seed), (long long)fp_next(&seed));
        h = vh(h, _mm_adds_epi16(a, b)); h = vh(h, _mm_subs_epu8(a, b));
        h = vh(h, _mm_madd_epi16(a, b)); h = vh(h, _mm_mulhi_epu16(a, b));
        h = vh(h, _mm_mul_epu32(a, b)); h = vh(h, _mm_sad_epu8(a, b));
        h = vh(h, _mm_packs_epi32(a, b)); h = vh(h, _mm_packus_epi16(a, b));
        h = vh(h, _mm_unpackhi_epi8(a, b)); h = vh(h, _mm_shuffle_epi32(a, 0x1b));
        h = vh(h, _mm_shufflehi_epi16(a, 0x9c)); h = vh(h, _mm_slli_si128(a, 5));
        h = vh(h, _mm_srai_epi16(a, 3)); h = vh(h, _mm_sll_epi32(a, _mm_cvtsi32_si128(i & 31)));
        h = vh(h, _mm_cmpgt_epi8(a, b)); h = vh(h, _mm_avg_epu8(a, b));
        h = vh(h, _mm_min_epi16(a, b)); h = vh(h, _mm_max_epu8(a, b));
        h = vh(h, _mm_add_epi64(a, b)); h = vh(h, _mm_insert_epi16(a, i, 3));
        h = fp_mix(h, (uint64_t)_mm_movemask_epi8(a) | (uint64_t)_mm_extract_epi16(b, 5) << 16);
    }
    printf("sse2 integer: hash %016llx\n", (unsigned long long)h);
}
