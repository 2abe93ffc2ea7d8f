/* Shared helpers of the floating-point guest program (tests/linux_float.rs). */
#ifndef FP_COMMON_H
#define FP_COMMON_H
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* A deterministic generator: the same inputs on every host and in every guest. */
static inline uint64_t fp_next(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    uint64_t x = *s;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ULL;
    return x ^ (x >> 32);
}

static inline uint64_t dbits(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }
static inline uint32_t fbits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline double bitsd(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }
static inline float bitsf(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* A double worth testing: special values, powers of two, small integers, random bits. */
static inline double fp_interesting(uint64_t *s) {
    static const uint64_t special[] = {
        0x0000000000000000ULL, 0x8000000000000000ULL, 0x7ff0000000000000ULL,
        0xfff0000000000000ULL, 0x7ff8000000000000ULL, 0x7ff4000000000001ULL,
        0x0000000000000001ULL, 0x000fffffffffffffULL, 0x0010000000000000ULL,
        0x7fefffffffffffffULL, 0x3ff0000000000000ULL, 0xbff0000000000000ULL,
        0x3fe0000000000000ULL, 0x400921fb54442d18ULL, 0x3ff921fb54442d18ULL,
        0x4005bf0a8b145769ULL, 0x3fe62e42fefa39efULL, 0x41dfffffffc00000ULL,
    };
    uint64_t r = fp_next(s);
    switch (r % 8) {
    case 0: return bitsd(special[(r >> 8) % (sizeof special / sizeof special[0])]);
    case 1: return (double)(int32_t)(r >> 32) / (double)((r >> 8 & 0xff) + 1);
    case 2: return bitsd(fp_next(s));
    default: {
        /* moderate magnitudes: exponent in [-40, 40] */
        uint64_t m = fp_next(s) & 0x000fffffffffffffULL;
        int e = (int)((r >> 16) % 81) - 40;
        return bitsd(((uint64_t)(1023 + e) << 52 | m) | (r >> 63) << 63);
    }
    }
}

/* Fold a result into a running hash so long loops print one line. */
static inline uint64_t fp_mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
}

void x87_part(void);
void sse2_part(void);
#endif
