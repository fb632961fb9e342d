/* noise.c — the standard-normal stream of euler-maruyama: four xoshiro256** generators run
 * side by side (one vector of lanes) and a 256-layer ziggurat whose tables are computed here,
 * a block of 1024 draws at a time in loops without calls or branches; the rare draws outside
 * the ziggurat's rectangles (about 1 %) take a scalar path with a generator of their own.
 * Everything is integer arithmetic or exact IEEE operations in a fixed order, so a seed gives the
 * same draws on every run. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include "apical/error.h"
#include "noise.h"

enum {
    LANES = 4,    /* generators side by side */
    BLOCK = 1024, /* draws made at once (a multiple of LANES) */
    LAYERS = 256, /* ziggurat layers: the low 8 bits of a draw pick one */
};

struct ap_noise {
    uint64_t lane[4][LANES]; /* xoshiro256** states, word-major so that a word is a vector */
    uint64_t side[4];        /* the slow path's generator */
    size_t pos;              /* next unused draw of z (BLOCK: none left) */
    int avx2;                /* the rectangle test with AVX2 (same values; see ap_noise_new) */
    uint64_t raw[BLOCK];
    int64_t ok[BLOCK]; /* raw[k] fell inside its layer's rectangle */
    double z[BLOCK];
};

/* ---- the ziggurat's tables ----------------------------------------------------------------
 * Layers of equal area v under f(x) = exp(-x^2 / 2) on x >= 0. Layer 0 is the rectangle
 * [0, r] x [0, f(r)] with the tail x > r, as if of width w[0] = v / f(r); layer i >= 1 is
 * [0, x_i] x [f(x_i), f(x_{i+1})] with x_1 = r, x_{i+1} = f^-1(f(x_i) + v / x_i) and
 * x_256 = 0. A draw u w[i] (u uniform in [0, 1)) below x_{i+1} lies under f whatever its
 * height: accepted at once (ratio[i] = x_{i+1} / w[i]). r is found by bisection so that the
 * last layer, [0, x_255] x [f(x_255), 1], has area v too. */
static struct {
    double r;
    double w[LAYERS];     /* layer widths */
    double ratio[LAYERS]; /* x_{i+1} / w[i] */
    double f[LAYERS + 1]; /* f(x_i), f(x_256) = f(0) = 1 (f[0] unused) */
    double wr[LAYERS][2] __attribute__((aligned(16))); /* {w[i], ratio[i]}: one load for both */
} zig;
static once_flag zig_once = ONCE_FLAG_INIT;

static double gauss(double x) {
    return exp(-0.5 * x * x);
}

/* The layer edges for a given r into x[1..LAYERS-1]; returns the last layer's area minus v, or
 * -1 when the layers reach f = 1 before the last one (r too small). */
static double layers(double r, double *x, double *v_out) {
    const double v =
        r * gauss(r) + sqrt(2.0 * atan(1.0)) * erfc(r * sqrt(0.5)) /* pi / 2 = 2 atan 1 */;
    x[1] = r;
    for (int i = 1; i < LAYERS - 1; i++) {
        double a = gauss(x[i]) + v / x[i];
        if (a >= 1.0) return -1.0;
        x[i + 1] = sqrt(-2.0 * log(a));
    }
    *v_out = v;
    return x[LAYERS - 1] * (1.0 - gauss(x[LAYERS - 1])) - v;
}

static void zig_init(void) {
    double x[LAYERS + 1], v = 0.0, lo = 3.0, hi = 4.5;
    /* a larger r makes thinner layers, which leave a larger last layer */
    for (int it = 0; it < 200; it++) {
        double mid = 0.5 * (lo + hi);
        if (mid <= lo || mid >= hi) break;
        if (layers(mid, x, &v) > 0.0)
            hi = mid;
        else
            lo = mid;
    }
    const double r = hi; /* the last layer is at least v: nothing is left uncovered */
    layers(r, x, &v);
    x[LAYERS] = 0.0;
    zig.r = r;
    zig.w[0] = v / gauss(r);
    zig.ratio[0] = r / zig.w[0];
    for (int i = 1; i < LAYERS; i++) {
        zig.w[i] = x[i];
        zig.ratio[i] = x[i + 1] / x[i];
        zig.f[i] = gauss(x[i]);
    }
    for (int i = 0; i < LAYERS; i++)
        zig.wr[i][0] = zig.w[i], zig.wr[i][1] = zig.ratio[i];
    zig.f[LAYERS] = 1.0;
}

/* ---- generators -------------------------------------------------------------------------- */

static uint64_t splitmix(uint64_t *z) {
    uint64_t s = (*z += 0x9E3779B97F4A7C15u);
    s = (s ^ (s >> 30)) * 0xBF58476D1CE4E5B9u;
    s = (s ^ (s >> 27)) * 0x94D049BB133111EBu;
    return s ^ (s >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** (Blackman and Vigna) on one state of four words. */
static uint64_t side_next(uint64_t *s) {
    const uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* u in [0, 1) from the top 52 bits: 1.m - 1 is exact, and the loop stays vectorisable (no
 * 64-bit integer to double conversion). */
static inline double unit(uint64_t b) {
    uint64_t m = (b >> 12) | 0x3FF0000000000000u;
    double d;
    memcpy(&d, &m, sizeof d);
    return d - 1.0;
}

/* u in (0, 1], for logarithms */
static inline double unit_pos(uint64_t b) {
    return ((double)(b >> 11) + 1.0) * 0x1p-53;
}

static inline double with_sign(double x, uint64_t b) {
    uint64_t m;
    memcpy(&m, &x, sizeof m);
    m ^= (b & 0x100u) << 55; /* bit 8 of the draw */
    memcpy(&x, &m, sizeof x);
    return x;
}

/* A normal for a draw that fell outside its rectangle: the wedge or tail test, and on
 * rejection the whole ziggurat again with the side generator. Bits 0-7 of b pick the layer,
 * bit 8 the sign, bits 12-63 the position. */
static double slow_draw(ap_noise *g, uint64_t b) {
    for (;;) {
        const int i = (int)(b & 0xFF);
        const double u = unit(b);
        if (u < zig.ratio[i]) return with_sign(u * zig.w[i], b);
        if (i == 0) {
            /* the tail x > r (Marsaglia): r + a with a ~ Exp(r), accepted with prob. exp(-a^2/2) */
            double a, e;
            do {
                a = -log(unit_pos(side_next(g->side))) / zig.r;
                e = -log(unit_pos(side_next(g->side)));
            } while (e + e < a * a);
            return with_sign(zig.r + a, b);
        }
        const double x = u * zig.w[i];
        const double y = zig.f[i] + unit(side_next(g->side)) * (zig.f[i + 1] - zig.f[i]);
        if (y < gauss(x)) return with_sign(x, b);
        b = side_next(g->side);
    }
}

/* Four lanes as one GCC vector (one AVX2 or two SSE2 registers): the lanes' xoshiro256**
 * steps without branches (eight lanes were slower: the states spilled to the stack). */
typedef uint64_t v4u __attribute__((vector_size(32)));

/* a macro: a function taking a 32-byte vector would trip GCC's ABI warning */
#define VROTL(x, k) (((x) << (k)) | ((x) >> (64 - (k))))

/* The next BLOCK raw draws into g->raw: the lanes' xoshiro256** steps as one vector loop. */
__attribute__((target_clones("avx2", "default"))) static void make_bits(ap_noise *g) {
    v4u s0, s1, s2, s3;
    memcpy(&s0, g->lane[0], sizeof s0);
    memcpy(&s1, g->lane[1], sizeof s1);
    memcpy(&s2, g->lane[2], sizeof s2);
    memcpy(&s3, g->lane[3], sizeof s3);
    for (int k = 0; k < BLOCK; k += LANES) {
        v4u a = (s1 << 2) + s1; /* s1 * 5 */
        a = VROTL(a, 7);
        const v4u b = (a << 3) + a; /* * 9 */
        const v4u t = s1 << 17;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= t;
        s3 = VROTL(s3, 45);
        memcpy(g->raw + k, &b, sizeof b);
    }
    memcpy(g->lane[0], &s0, sizeof s0);
    memcpy(g->lane[1], &s1, sizeof s1);
    memcpy(g->lane[2], &s2, sizeof s2);
    memcpy(g->lane[3], &s3, sizeof s3);
}

/* The rectangle test of the raw draws (table lookups), then the rejected few through the slow
 * path in draw order: portable C. */
static void zig_block(ap_noise *g) {
    for (int k = 0; k < BLOCK; k++) {
        const uint64_t b = g->raw[k];
        const int i = (int)(b & 0xFF);
        const double u = unit(b);
        g->ok[k] = u < zig.ratio[i];
        g->z[k] = with_sign(u * zig.w[i], b);
    }
    for (int k = 0; k < BLOCK; k++)
        if (!g->ok[k]) g->z[k] = slow_draw(g, g->raw[k]);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* The same with AVX2, four draws at a time (each layer's width and ratio one 16-byte load,
 * cheaper than gathers): the same operations, so the same values; a rejected draw goes through
 * the slow path at once, in draw order. */
__attribute__((target("avx2"))) static void zig_block_avx2(ap_noise *g) {
    const __m256i bit8 = _mm256_set1_epi64x(0x100);
    const __m256i one_bits = _mm256_set1_epi64x(0x3FF0000000000000);
    const __m256d one = _mm256_set1_pd(1.0);
    for (int k = 0; k < BLOCK; k += 4) {
        const __m256i b = _mm256_loadu_si256((const __m256i *)(g->raw + k));
        const uint64_t *r = g->raw + k;
        const __m256d u = _mm256_sub_pd(
            _mm256_castsi256_pd(_mm256_or_si256(_mm256_srli_epi64(b, 12), one_bits)), one);
        /* {w0, r0, w2, r2} and {w1, r1, w3, r3}, then interleaved into w and ratio */
        const __m256d p02 =
            _mm256_set_m128d(_mm_load_pd(zig.wr[r[2] & 0xFF]), _mm_load_pd(zig.wr[r[0] & 0xFF]));
        const __m256d p13 =
            _mm256_set_m128d(_mm_load_pd(zig.wr[r[3] & 0xFF]), _mm_load_pd(zig.wr[r[1] & 0xFF]));
        const __m256d w = _mm256_unpacklo_pd(p02, p13), ratio = _mm256_unpackhi_pd(p02, p13);
        const __m256d x = _mm256_mul_pd(u, w);
        const __m256i sign = _mm256_slli_epi64(_mm256_and_si256(b, bit8), 55);
        _mm256_storeu_pd(g->z + k, _mm256_xor_pd(x, _mm256_castsi256_pd(sign)));
        const int in = _mm256_movemask_pd(_mm256_cmp_pd(u, ratio, _CMP_LT_OQ));
        if (in != 0xF)
            for (int j = 0; j < 4; j++)
                if (!(in >> j & 1)) g->z[k + j] = slow_draw(g, g->raw[k + j]);
    }
}
#endif

/* The next BLOCK draws into g->z. Integer operations, one exact subtraction and one product
 * per draw (no contraction possible), the slow path in draw order: the same values with or
 * without AVX2. */
static void refill(ap_noise *g) {
    make_bits(g);
#if defined(__x86_64__) && defined(__GNUC__)
    if (g->avx2) {
        zig_block_avx2(g);
        g->pos = 0;
        return;
    }
#endif
    zig_block(g);
    g->pos = 0;
}

int ap_noise_new(ap_noise **out, uint64_t seed) {
    call_once(&zig_once, zig_init);
    ap_noise *g = malloc(sizeof *g);
    *out = g;
    if (!g) return ap_error(AP_ENOMEM, "out of memory for a noise stream");
    uint64_t z = seed;
    for (int l = 0; l < LANES; l++)
        for (int w = 0; w < 4; w++)
            g->lane[w][l] = splitmix(&z);
    for (int w = 0; w < 4; w++)
        g->side[w] = splitmix(&z);
    g->pos = BLOCK;
    /* APICAL_NOISE_PORTABLE=1 keeps to the portable C path (the test that both give the same
     * draws uses it) */
    const char *portable = getenv("APICAL_NOISE_PORTABLE");
    g->avx2 = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    g->avx2 = __builtin_cpu_supports("avx2") && !(portable && strcmp(portable, "1") == 0);
#else
    (void)portable;
#endif
    return AP_OK;
}

void ap_noise_free(ap_noise **g) {
    if (!g) return;
    free(*g);
    *g = NULL;
}

/* The next draws of the stream, at most n of them (a block boundary may cut it short):
 * *m of them from the returned pointer. */
static const double *next_draws(ap_noise *g, size_t n, size_t *m) {
    if (g->pos == BLOCK) refill(g);
    *m = BLOCK - g->pos < n ? BLOCK - g->pos : n;
    const double *z = g->z + g->pos;
    g->pos += *m;
    return z;
}

void ap_noise_normal(ap_noise *g, double *z, size_t n) {
    while (n > 0) {
        size_t m;
        const double *draws = next_draws(g, n, &m);
        memcpy(z, draws, m * sizeof *z);
        z += m;
        n -= m;
    }
}

void apx_noise_add(ap_noise *g, double *x, size_t n, double scale) {
    while (n > 0) {
        size_t m;
        const double *z = next_draws(g, n, &m);
        for (size_t i = 0; i < m; i++)
            x[i] += scale * z[i];
        x += m;
        n -= m;
    }
}
