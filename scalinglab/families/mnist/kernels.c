/* relu(max_pool2d(x, 2)) for channels_last (NHWC) tensors, forward and backward.

   The same function as torch's max_pool2d (kernel 2, stride 2, an odd last row
   or column dropped, the first maximum of a window in row-major order wins,
   a NaN wins, as in torch's kernel) followed by a ReLU, in one pass each way:

   forward   reads x once, writes y and one byte per output: the window slot
             (0..3) that won, or 4 where the ReLU is zero (no gradient flows).
   backward  writes every element of the input gradient once (no zero-fill,
             no scatter): g where the slot won, 0 elsewhere.

   Loops run over contiguous channels innermost so the compiler vectorises
   them. Built at first use by scalinglab/families/mnist/kernels.py. */

#include <stdint.h>
#include <string.h>

/* bf16 is the top half of a float32, so the conversions are exact shifts. */
static inline float bf16_load(uint16_t b) { union { uint32_t u; float f; } v; v.u = (uint32_t)b << 16; return v.f; }
static inline uint16_t bf16_store(float f) { union { float f; uint32_t u; } v; v.f = f; return (uint16_t)(v.u >> 16); }
static inline float f32_load(float f) { return f; }
static inline float f32_store(float f) { return f; }

/* torch's rule: a value replaces the running maximum if it is larger or NaN. */
#define WINS(v, m) ((v > m) | __builtin_isnan(v))

/* One window of C channels: p0 p1 are the window's top pair, p2 p3 its bottom pair (portable C). */
#define DEFINE_WINDOW(NAME, T)                                                                     \
__attribute__((unused)) static void NAME##_window(const T *p0, const T *p1, const T *p2, const T *p3, T *out,             \
                          uint8_t *slot, long C) {                                                 \
    for (long c = 0; c < C; c++) {                                                                 \
        float m0 = NAME##_load(p0[c]), v1 = NAME##_load(p1[c]);                                    \
        float v2 = NAME##_load(p2[c]), v3 = NAME##_load(p3[c]);                                    \
        _Bool t1 = WINS(v1, m0); float m1 = t1 ? v1 : m0;                                          \
        _Bool t2 = WINS(v2, m1); float m2 = t2 ? v2 : m1;                                          \
        _Bool t3 = WINS(v3, m2); float m3 = t3 ? v3 : m2;                                          \
        _Bool live = !(m3 <= 0); /* the ReLU passes it (NaN included, as torch's backward does) */ \
        uint8_t k = t1; k = t2 ? 2 : k; k = t3 ? 3 : k;                                            \
        out[c] = NAME##_store(live ? m3 : 0.0f);                                                   \
        slot[c] = live ? k : 4;                                                                    \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
__attribute__((unused)) static void NAME##_unpool(const T *g, const uint8_t *slot, T *a, T *b, uint8_t want_a, long C) {   \
    T zero = NAME##_store(0.0f);                                                                   \
    for (long c = 0; c < C; c++) {                                                                 \
        a[c] = slot[c] == want_a ? g[c] : zero;                                                    \
        b[c] = slot[c] == want_a + 1 ? g[c] : zero;                                                \
    }                                                                                              \
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
/* The same, 16 channels at a time with masked loads and stores, so any C runs vectorised. */
#include <immintrin.h>

static inline __m512 f32_vload(const float *p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
static inline void f32_vstore(float *p, __mmask16 m, __m512 v) { _mm512_mask_storeu_ps(p, m, v); }
static inline __m512 bf16_vload(const uint16_t *p, __mmask16 m) {
    __m512i wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}
static inline void bf16_vstore(uint16_t *p, __mmask16 m, __m512 v) {
    _mm512_mask_cvtepi32_storeu_epi16(p, m, _mm512_srli_epi32(_mm512_castps_si512(v), 16));
}
static inline __mmask16 vwins(__m512 v, __m512 m) {
    return _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
}

#define DEFINE_VECTOR(NAME, T)                                                                     \
static void NAME##_window_v(const T *p0, const T *p1, const T *p2, const T *p3, T *out,           \
                            uint8_t *slot, long C) {                                               \
    for (long c = 0; c < C; c += 16) {                                                             \
        __mmask16 m = C - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (C - c)) - 1);         \
        __m512 best = NAME##_vload(p0 + c, m);                                                     \
        __m512i k = _mm512_setzero_si512();                                                        \
        __m512 v; __mmask16 t;                                                                     \
        v = NAME##_vload(p1 + c, m); t = vwins(v, best);                                           \
        best = _mm512_mask_blend_ps(t, best, v); k = _mm512_mask_blend_epi32(t, k, _mm512_set1_epi32(1)); \
        v = NAME##_vload(p2 + c, m); t = vwins(v, best);                                           \
        best = _mm512_mask_blend_ps(t, best, v); k = _mm512_mask_blend_epi32(t, k, _mm512_set1_epi32(2)); \
        v = NAME##_vload(p3 + c, m); t = vwins(v, best);                                           \
        best = _mm512_mask_blend_ps(t, best, v); k = _mm512_mask_blend_epi32(t, k, _mm512_set1_epi32(3)); \
        __mmask16 dead = _mm512_cmp_ps_mask(best, _mm512_setzero_ps(), _CMP_LE_OQ);                \
        best = _mm512_mask_blend_ps(dead, best, _mm512_setzero_ps());                              \
        k = _mm512_mask_blend_epi32(dead, k, _mm512_set1_epi32(4));                                \
        NAME##_vstore(out + c, m, best);                                                           \
        _mm512_mask_cvtepi32_storeu_epi8(slot + c, m, k);                                          \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
static void NAME##_unpool_v(const T *g, const uint8_t *slot, T *a, T *b, uint8_t want_a, long C) { \
    __m512i wa = _mm512_set1_epi32(want_a), wb = _mm512_set1_epi32(want_a + 1);                    \
    for (long c = 0; c < C; c += 16) {                                                             \
        __mmask16 m = C - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (C - c)) - 1);         \
        __m512i s = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, slot + c));                       \
        __m512 v = NAME##_vload(g + c, m), zero = _mm512_setzero_ps();                             \
        NAME##_vstore(a + c, m, _mm512_mask_blend_ps(_mm512_cmpeq_epi32_mask(s, wa), zero, v));    \
        NAME##_vstore(b + c, m, _mm512_mask_blend_ps(_mm512_cmpeq_epi32_mask(s, wb), zero, v));    \
    }                                                                                              \
}
#define WINDOW _window_v
#define UNPOOL _unpool_v
#else
#define DEFINE_VECTOR(NAME, T)
#define WINDOW _window
#define UNPOOL _unpool
#endif
#define CAT(a, b) a##b
#define CALL(NAME, PART) CAT(NAME, PART)

/* Forward and backward over samples [n0, n1) of an (N, H, W, C) tensor. */
#define DEFINE_POOL(NAME, T)                                                                       \
DEFINE_WINDOW(NAME, T)                                                                             \
DEFINE_VECTOR(NAME, T)                                                                             \
void NAME##_forward(const T *x, T *y, uint8_t *slot, long n0, long n1, long H, long W, long C) {   \
    long Ho = H / 2, Wo = W / 2;                                                                   \
    for (long n = n0; n < n1; n++)                                                                 \
        for (long i = 0; i < Ho; i++)                                                              \
            for (long j = 0; j < Wo; j++) {                                                        \
                const T *p0 = x + ((n * H + 2 * i) * W + 2 * j) * C;                               \
                long o = ((n * Ho + i) * Wo + j) * C;                                              \
                CALL(NAME, WINDOW)(p0, p0 + C, p0 + W * C, p0 + W * C + C, y + o, slot + o, C);         \
            }                                                                                      \
}                                                                                                  \
                                                                                                   \
void NAME##_backward(const T *g, const uint8_t *slot, T *gx, long n0, long n1, long H, long W,    \
                     long C) {                                                                     \
    long Ho = H / 2, Wo = W / 2;                                                                   \
    for (long n = n0; n < n1; n++)                                                                 \
        for (long h = 0; h < H; h++) {                                                             \
            T *row = gx + (n * H + h) * W * C;                                                     \
            if (h / 2 >= Ho) { memset(row, 0, W * C * sizeof(T)); continue; }                     \
            long o = (n * Ho + h / 2) * Wo * C;                                                    \
            for (long j = 0; j < Wo; j++)                                                          \
                CALL(NAME, UNPOOL)(g + o + j * C, slot + o + j * C, row + 2 * j * C, row + (2 * j + 1) * C, \
                              (uint8_t)((h & 1) * 2), C);                                          \
            if (W > 2 * Wo) memset(row + 2 * Wo * C, 0, C * sizeof(T));                            \
        }                                                                                          \
}

DEFINE_POOL(f32, float)
DEFINE_POOL(bf16, uint16_t)

/* The first convolution: 3x3, padding 1, one input channel per group, (N, H, W, G) images in,
   (N, H, W, G*Cg) channels_last out; group g's Cg output channels read input channel g.
   oneDNN spends ~2 ms per batch of 128 on this layer whatever its width (a reorder of the
   one-channel input and a slow weight-gradient reduction); a direct loop over the nine taps
   does it in a fraction of that. Weights are tap-major, w[t * C + c]; sums are in fp32. */

#define FOR_TAPS(BODY)                                                                             \
    for (int dy = -1; dy <= 1; dy++) {                                                             \
        long yy = y + dy;                                                                          \
        for (int dx = -1; dx <= 1; dx++) {                                                         \
            long xx = x + dx, t = (dy + 1) * 3 + (dx + 1);                                         \
            float v = (yy >= 0 && yy < H && xx >= 0 && xx < W) ? img[((n * H + yy) * W + xx) * G + g] : 0.0f; \
            BODY                                                                                   \
        }                                                                                          \
    }

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define DEFINE_CONV1(NAME, T)                                                                      \
void NAME##_conv1_forward(const float *img, const float *w, const float *bias, T *out, long n0,    \
                          long n1, long H, long W, long G, long Cg) {                              \
    long C = G * Cg;                                                                               \
    for (long g = 0; g < G; g++)                                                                   \
        for (long c0 = g * Cg; c0 < (g + 1) * Cg; c0 += 16) {                                      \
            long left = (g + 1) * Cg - c0;                                                         \
            __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);         \
            __m512 wt[9], b = _mm512_maskz_loadu_ps(m, bias + c0);                                 \
            for (int t = 0; t < 9; t++) wt[t] = _mm512_maskz_loadu_ps(m, w + t * C + c0);          \
            for (long n = n0; n < n1; n++)                                                         \
                for (long y = 0; y < H; y++)                                                       \
                    for (long x = 0; x < W; x++) {                                                 \
                        __m512 acc = b;                                                            \
                        FOR_TAPS(acc = _mm512_fmadd_ps(_mm512_set1_ps(v), wt[t], acc);)            \
                        NAME##_vstore(out + ((n * H + y) * W + x) * C + c0, m, acc);               \
                    }                                                                              \
        }                                                                                          \
}                                                                                                  \
                                                                                                   \
void NAME##_conv1_backward(const float *img, const T *grad, float *gw, float *gb, long n0, long n1, \
                           long H, long W, long G, long Cg) {                                      \
    long C = G * Cg;                                                                               \
    for (long g = 0; g < G; g++)                                                                   \
        for (long c0 = g * Cg; c0 < (g + 1) * Cg; c0 += 16) {                                      \
            long left = (g + 1) * Cg - c0;                                                         \
            __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);         \
            __m512 acc[9], accb = _mm512_setzero_ps();                                             \
            for (int t = 0; t < 9; t++) acc[t] = _mm512_setzero_ps();                              \
            for (long n = n0; n < n1; n++)                                                         \
                for (long y = 0; y < H; y++)                                                       \
                    for (long x = 0; x < W; x++) {                                                 \
                        __m512 d = NAME##_vload(grad + ((n * H + y) * W + x) * C + c0, m);         \
                        accb = _mm512_add_ps(accb, d);                                             \
                        FOR_TAPS(acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(v), d, acc[t]);)          \
                    }                                                                              \
            for (int t = 0; t < 9; t++) _mm512_mask_storeu_ps(gw + t * C + c0, m, acc[t]);        \
            _mm512_mask_storeu_ps(gb + c0, m, accb);                                               \
        }                                                                                          \
}
#else
/* Portable loops with each group's channels innermost and contiguous, so the compiler vectorises
   them (AVX2, NEON); the fp32 sums live in a small per-pixel buffer. */
#define DEFINE_CONV1(NAME, T)                                                                      \
void NAME##_conv1_forward(const float *img, const float *w, const float *bias, T *out, long n0,    \
                          long n1, long H, long W, long G, long Cg) {                              \
    long C = G * Cg;                                                                               \
    float acc[C];                                                                                  \
    for (long n = n0; n < n1; n++)                                                                 \
        for (long y = 0; y < H; y++)                                                               \
            for (long x = 0; x < W; x++) {                                                         \
                for (long c = 0; c < C; c++) acc[c] = bias[c];                                     \
                for (long g = 0; g < G; g++) {                                                     \
                    float *a = acc + g * Cg;                                                       \
                    FOR_TAPS({ const float *wt = w + t * C + g * Cg;                               \
                               for (long c = 0; c < Cg; c++) a[c] += v * wt[c]; })                 \
                }                                                                                  \
                T *o = out + ((n * H + y) * W + x) * C;                                            \
                for (long c = 0; c < C; c++) o[c] = NAME##_store(acc[c]);                          \
            }                                                                                      \
}                                                                                                  \
                                                                                                   \
void NAME##_conv1_backward(const float *img, const T *grad, float *gw, float *gb, long n0, long n1, \
                           long H, long W, long G, long Cg) {                                      \
    long C = G * Cg;                                                                               \
    float d[C];                                                                                    \
    for (long c = 0; c < C; c++) {                                                                 \
        gb[c] = 0;                                                                                 \
        for (int t = 0; t < 9; t++) gw[t * C + c] = 0;                                             \
    }                                                                                              \
    for (long n = n0; n < n1; n++)                                                                 \
        for (long y = 0; y < H; y++)                                                               \
            for (long x = 0; x < W; x++) {                                                         \
                const T *row = grad + ((n * H + y) * W + x) * C;                                   \
                for (long c = 0; c < C; c++) { d[c] = NAME##_load(row[c]); gb[c] += d[c]; }        \
                for (long g = 0; g < G; g++) {                                                     \
                    const float *dg = d + g * Cg;                                                  \
                    FOR_TAPS({ float *gt = gw + t * C + g * Cg;                                    \
                               for (long c = 0; c < Cg; c++) gt[c] += v * dg[c]; })                \
                }                                                                                  \
            }                                                                                      \
}
#endif

DEFINE_CONV1(f32, float)
DEFINE_CONV1(bf16, uint16_t)

/* 16 where this build runs the AVX-512 loops, 1 for the portable ones. */
int vector_lanes(void) {
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
    return 16;
#else
    return 1;
#endif
}
