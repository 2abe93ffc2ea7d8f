/* A floating-point workload for the x86emu Linux guest test (tests/linux_float.rs).
 *
 * Built static for i386 (gcc -m32); the test runs the same binary natively on the host
 * and inside the emulated Linux guest and requires byte-identical output. Every line is
 * exact bits (hex) or a hash of exact bits, so any difference in any result shows.
 *
 * This file is compiled with -msse2 -mfpmath=sse: double arithmetic is SSE2 scalar code
 * and glibc's libm picks its SSE2 variants (ifunc on CPUID) both natively and in a guest
 * whose CPU model has SSE2. fp_x87.c covers the x87 unit, fp_sse2.c SIMD intrinsics.
 */
#include <fenv.h>
#include <math.h>
#include <stdlib.h>
#include "fp_common.h"

typedef double (*fn1)(double);
typedef double (*fn2)(double, double);

static const struct { const char *name; fn1 f; } ones[] = {
    {"sin", sin}, {"cos", cos}, {"tan", tan}, {"asin", asin}, {"acos", acos},
    {"atan", atan}, {"exp", exp}, {"exp2", exp2}, {"expm1", expm1}, {"log", log},
    {"log2", log2}, {"log10", log10}, {"log1p", log1p}, {"sinh", sinh}, {"cosh", cosh},
    {"tanh", tanh}, {"cbrt", cbrt}, {"sqrt", sqrt}, {"erf", erf}, {"lgamma", lgamma},
    {"floor", floor}, {"ceil", ceil}, {"rint", rint}, {"trunc", trunc}, {"round", round},
};
static const struct { const char *name; fn2 f; } twos[] = {
    {"pow", pow}, {"atan2", atan2}, {"hypot", hypot}, {"fmod", fmod},
    {"remainder", remainder}, {"fmin", fmin}, {"fmax", fmax}, {"copysign", copysign},
};

static void libm_double(void) {
    uint64_t seed = 1;
    for (size_t k = 0; k < sizeof ones / sizeof ones[0]; k++) {
        uint64_t h = 0;
        for (int i = 0; i < 4000; i++) {
            double x = fp_interesting(&seed);
            double y = ones[k].f(x);
            h = fp_mix(h, dbits(y));
            if (i < 3)
                printf("%s(%016llx) = %016llx\n", ones[k].name,
                       (unsigned long long)dbits(x), (unsigned long long)dbits(y));
        }
        printf("%s: 4000 results, hash %016llx\n", ones[k].name, (unsigned long long)h);
    }
    for (size_t k = 0; k < sizeof twos / sizeof twos[0]; k++) {
        uint64_t h = 0;
        for (int i = 0; i < 4000; i++) {
            double x = fp_interesting(&seed), y = fp_interesting(&seed);
            double z = twos[k].f(x, y);
            h = fp_mix(h, dbits(z));
        }
        printf("%s: 4000 results, hash %016llx\n", twos[k].name, (unsigned long long)h);
    }
}

static void libm_float(void) {
    static const struct { const char *name; float (*f)(float); } fs[] = {
        {"sinf", sinf}, {"cosf", cosf}, {"expf", expf}, {"logf", logf},
        {"sqrtf", sqrtf}, {"atanf", atanf}, {"tanhf", tanhf},
    };
    uint64_t seed = 2;
    for (size_t k = 0; k < sizeof fs / sizeof fs[0]; k++) {
        uint64_t h = 0;
        for (int i = 0; i < 4000; i++) {
            float x = (float)fp_interesting(&seed);
            float y = fs[k].f(x);
            h = fp_mix(h, fbits(y));
        }
        printf("%s: 4000 results, hash %016llx\n", fs[k].name, (unsigned long long)h);
    }
    uint64_t h = 0;
    for (int i = 0; i < 4000; i++) {
        float x = (float)fp_interesting(&seed), y = (float)fp_interesting(&seed);
        float z = powf(x, y);
        h = fp_mix(h, fbits(z));
    }
    printf("powf: 4000 results, hash %016llx\n", (unsigned long long)h);
}

/* SSE2 scalar arithmetic under every rounding mode, with the sticky exception flags. */
static void rounding_modes(void) {
    static const int modes[] = {FE_TONEAREST, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO};
    static const char *names[] = {"nearest", "down", "up", "zero"};
    for (int m = 0; m < 4; m++) {
        uint64_t seed = 3, h = 0;
        fesetround(modes[m]);
        feclearexcept(FE_ALL_EXCEPT);
        for (int i = 0; i < 20000; i++) {
            volatile double a = fp_interesting(&seed), b = fp_interesting(&seed);
            volatile double s = a + b, d = a - b, p = a * b, q = a / b, r = sqrt(a);
            volatile float f = (float)a;
            h = fp_mix(h, dbits(s)); h = fp_mix(h, dbits(d)); h = fp_mix(h, dbits(p));
            h = fp_mix(h, dbits(q)); h = fp_mix(h, dbits(r)); h = fp_mix(h, fbits(f));
            h = fp_mix(h, (uint64_t)lrint(a / 1e6));
        }
        int ex = fetestexcept(FE_ALL_EXCEPT);
        fesetround(FE_TONEAREST);
        printf("sse2 arithmetic, round %s: hash %016llx, flags %02x\n", names[m],
               (unsigned long long)h, ex);
    }
}

/* A small numeric kernel: LU factorisation and an n-body step, printed exactly. */
static void kernels(void) {
    enum { N = 24 };
    static double a[N][N];
    uint64_t seed = 4;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            a[i][j] = (double)(int32_t)(fp_next(&seed) >> 40) / 1024.0 + (i == j ? 50.0 : 0.0);
    double det = 1.0;
    for (int k = 0; k < N; k++) {
        det *= a[k][k];
        for (int i = k + 1; i < N; i++) {
            double l = a[i][k] / a[k][k];
            for (int j = k; j < N; j++)
                a[i][j] -= l * a[k][j];
        }
    }
    printf("LU determinant %.17g (%016llx)\n", det, (unsigned long long)dbits(det));

    double px[8], py[8], vx[8] = {0}, vy[8] = {0};
    for (int i = 0; i < 8; i++) {
        px[i] = cos(i * 0.785398163397448);
        py[i] = sin(i * 0.785398163397448) * (1.0 + i / 10.0);
    }
    for (int step = 0; step < 200; step++) {
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < 8; j++) {
                if (i == j)
                    continue;
                double dx = px[j] - px[i], dy = py[j] - py[i];
                double r2 = dx * dx + dy * dy + 1e-3;
                double inv = 1.0 / (r2 * sqrt(r2));
                vx[i] += dx * inv * 1e-3;
                vy[i] += dy * inv * 1e-3;
            }
        for (int i = 0; i < 8; i++) {
            px[i] += vx[i] * 1e-2;
            py[i] += vy[i] * 1e-2;
        }
    }
    uint64_t h = 0;
    for (int i = 0; i < 8; i++)
        h = fp_mix(fp_mix(h, dbits(px[i])), dbits(py[i]));
    printf("n-body: x0 %.17g y7 %.17g hash %016llx\n", px[0], py[7], (unsigned long long)h);

    char buf[64];
    double back = 0;
    uint64_t hs = 0;
    seed = 5;
    for (int i = 0; i < 3000; i++) {
        double x = fp_interesting(&seed);
        snprintf(buf, sizeof buf, "%.17g", x);
        back = strtod(buf, NULL);
        hs = fp_mix(hs, dbits(back));
        for (char *c = buf; *c; c++)
            hs = fp_mix(hs, (uint64_t)*c);
    }
    printf("printf/strtod round trips: hash %016llx\n", (unsigned long long)hs);
}

int main(void) {
    printf("FP-BEGIN\n");
    libm_double();
    libm_float();
    rounding_modes();
    kernels();
    x87_part();
    sse2_part();
    printf("FP-END\n");
    return 0;
}
