/* The x87 part of the guest floating-point program: compiled with -mfpmath=387, so double
 * arithmetic runs on the x87 stack (with its 80-bit registers), plus long double. Only
 * results the manuals define exactly are printed in full: arithmetic, square root,
 * conversions, rounding, comparisons and the status flags. */
#include <fenv.h>
#include <math.h>
#include "fp_common.h"

static uint64_t ldhash(uint64_t h, long double x) {
    uint64_t lo; uint16_t hi;
    memcpy(&lo, &x, 8);
    memcpy(&hi, (char *)&x + 8, 2);
    return fp_mix(fp_mix(h, lo), hi);
}

void x87_part(void) {
    static const int modes[] = {FE_TONEAREST, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO};
    static const char *names[] = {"nearest", "down", "up", "zero"};
    for (int m = 0; m < 4; m++) {
        uint64_t seed = 6, h = 0;
        fesetround(modes[m]);
        feclearexcept(FE_ALL_EXCEPT);
        for (int i = 0; i < 20000; i++) {
            long double a = fp_interesting(&seed), b = fp_interesting(&seed);
            a *= 1.0L + (long double)(fp_next(&seed) >> 11) * 0x1p-64L;
            volatile long double s = a + b, d = a - b, p = a * b, q = a / b, r = sqrtl(a);
            volatile double dd = (double)q;
            volatile float ff = (float)p;
            h = ldhash(h, s); h = ldhash(h, d); h = ldhash(h, p); h = ldhash(h, q);
            h = ldhash(h, r); h = fp_mix(h, dbits(dd)); h = fp_mix(h, fbits(ff));
            h = fp_mix(h, (uint64_t)llrintl(a)); h = ldhash(h, rintl(q));
            h = ldhash(h, fmodl(a, b)); h = ldhash(h, remainderl(a, b));
            h = fp_mix(h, (uint64_t)(a < b) | (uint64_t)(a == b) << 1 | (uint64_t)isunordered(a, b) << 2);
        }
        int ex = fetestexcept(FE_ALL_EXCEPT);
        fesetround(FE_TONEAREST);
        printf("x87 arithmetic, round %s: hash %016llx, flags %02x\n", names[m],
               (unsigned long long)h, ex);
    }
    /* double arithmetic through the x87 (extended intermediates, rounded on store) */
    uint64_t seed = 7, h = 0;
    for (int i = 0; i < 20000; i++) {
        volatile double a = fp_interesting(&seed), b = fp_interesting(&seed);
        volatile double r = (a * b + a) / (b - 3.0);
        h = fp_mix(h, dbits(r));
    }
    printf("x87 double expressions: hash %016llx\n", (unsigned long long)h);
    /* long double transcendental functions use FSIN/FPATAN/F2XM1/FYL2X; their last bits
     * may differ between CPU vendors, so they are printed to 12 significant digits. */
    seed = 8;
    for (int i = 0; i < 6; i++) {
        long double x = (long double)(int32_t)(fp_next(&seed) >> 32) / 1e8L;
        printf("x87 transcendentals(%.6Lf): sin %.12Lg cos %.12Lg atan %.12Lg exp %.12Lg log %.12Lg\n",
               x, sinl(x), cosl(x), atanl(x), expl(x / 4), logl(fabsl(x) + 1));
    }
}
