/*
 * elax_plan._f32json: float32 vectors -> JSON array text, byte-identical to orjson.
 *
 * orjson (OPT_SERIALIZE_NUMPY) writes a numpy float32 as the shortest decimal that reads back
 * as the same float32 -- of several such, the one closest to the exact value, ties to even --
 * laid out as:
 *
 *   - integral and below 1e13:      123456790.0, 1e7 -> 10000000.0
 *   - else from 1e-6 up to 1e13:    1234567.8, 0.001, 0.000001234
 *   - anything else:                1e-7, 1.5e-7, 1e+13, 3.4028235e+38
 *
 * All arithmetic is exact integer arithmetic. For x = m * 2^e2 (m the 24-bit significand):
 *
 *   - Fast path (normal values 2^-27 <= |x| < 2^24 that are not powers of two: nearly every
 *     value of an embedding): with s such that one ulp * 10^s lies in [1, 10), the interval of
 *     decimals that round to x holds at most one multiple of ten, and the integer nearest to
 *     x * 10^s. The answer is that multiple of ten if there is one, else that integer. Both come
 *     from 64-bit products m * M with M = 10^s * 2^e2 * 2^35 exact (a table per exponent).
 *   - General path (everything else): the interval scaled so that x * 10^s has 9-10 digits, in
 *     128/192-bit integers; digits stripped while the interval holds a multiple of ten; then the
 *     candidate closest to the exact value.
 *
 * The text of a row is written backwards, from its end: each number is laid out right-aligned
 * in a 16-byte window ending where the number ends; whatever lies left of the number in that
 * window is rewritten later by the numbers before it. So the digits need no shifting by their
 * count, and one branch-free sequence serves 12.345 and 0.0012345 alike.
 *
 * scripts/verify_f32json.py checks all 2^32 bit patterns against orjson. No numpy headers: the
 * matrix is read through the buffer protocol (format "f", C-contiguous). Needs GCC or Clang on
 * a 64-bit target (unsigned __int128, __builtin_ctzll); elsewhere the build fails and, the
 * extension being optional, elax_plan uses orjson instead.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#if !defined(__GNUC__) || !defined(__SIZEOF_INT128__)
#error "elax_plan._f32json needs GCC or Clang on a 64-bit target"
#endif

/* SSE2 (every x86-64) for the 16-byte text windows; plain 64-bit code elsewhere, or when built
 * with -DF32JSON_NO_SSE2 (to test that code on x86-64). */
#if defined(__SSE2__) && !defined(F32JSON_NO_SSE2)
#define F32JSON_SSE2 1
#include <emmintrin.h>
#else
#define F32JSON_SSE2 0
#endif

typedef unsigned __int128 u128;

#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#define NOINLINE __attribute__((noinline))
#define COLD __attribute__((cold))

/* The longest number: "-0.000001234567" style, 1 + 2 + 5 + 9 = 17 bytes. A number's window
 * reaches 16 bytes below its end, so buffers keep slack below the text. */
#define MAX_NUMBER_LEN 17
#define SLACK 32

/* A decimal d * 10^e: d has no trailing zeros, the shortest digits that read back as x. */
typedef struct {
    uint32_t d;
    int e;
} decimal_t;

/* ---------------------------------------------------------------------------------------- */
/* Tables */

static const uint64_t POW5[28] = {
    1ULL,
    5ULL,
    25ULL,
    125ULL,
    625ULL,
    3125ULL,
    15625ULL,
    78125ULL,
    390625ULL,
    1953125ULL,
    9765625ULL,
    48828125ULL,
    244140625ULL,
    1220703125ULL,
    6103515625ULL,
    30517578125ULL,
    152587890625ULL,
    762939453125ULL,
    3814697265625ULL,
    19073486328125ULL,
    95367431640625ULL,
    476837158203125ULL,
    2384185791015625ULL,
    11920928955078125ULL,
    59604644775390625ULL,
    298023223876953125ULL,
    1490116119384765625ULL,
    7450580596923828125ULL,
};

/* "00" .. "99" */
static const char D2[201] =
    "00010203040506070809"
    "10111213141516171819"
    "20212223242526272829"
    "30313233343536373839"
    "40414243444546474849"
    "50515253545556575859"
    "60616263646566676869"
    "70717273747576777879"
    "80818283848586878889"
    "90919293949596979899";

/* The 4 digits of 0..9999 as byte values 0..9, the first in the lowest byte. (A 20 KB table of
 * nibbles, or arithmetic, measured slower.) */
static uint32_t DIGITS4[10000];

/* Fast-path scale per biased exponent: x * 10^s * 2^35 = m * M exactly, for
 * M = 5^s * 2^(s + e2 + 35) = 10^s * 2^e2 * 2^35 (one ulp spans [1, 10) units), and
 * M10 = M / 10 (exact for s >= 1). M10 = 0: the general path. */
#define FAST_SHIFT 35
typedef struct {
    uint64_t M, M10;
    int64_t s, unused; /* 32 bytes: indexed by a shift */
} fast_scale_t;
static fast_scale_t FAST[256];

/* For a fraction with t digits after the point (1 <= t <= 15), masks over a 16-byte window
 * (byte i of the window is byte i % 8 of u[i / 8]): `tail` keeps the last t bytes, `head` the
 * 15 - t bytes before the point, `point` puts '.' between them. */
typedef union {
    uint64_t u[2];
#if F32JSON_SSE2
    __m128i v;
#endif
} window_t;
typedef struct {
    window_t tail, head, point, unused; /* 64 bytes: indexed by a shift */
} window_masks_t;
static window_masks_t WINDOW[16];

static void
init_tables(void)
{
    for (uint32_t i = 0; i < 10000; i++) {
        DIGITS4[i] = (i / 1000) | ((i / 100 % 10) << 8) | ((i / 10 % 10) << 16) | ((i % 10) << 24);
    }
    for (int ieee_exp = 1; ieee_exp < 255; ieee_exp++) {
        int e2 = ieee_exp - 150;
        int s = -((e2 * 78913) >> 18); /* -floor(log10(2^e2)), exact for |e2| < 1650 */
        if (s >= 1 && s + e2 + FAST_SHIFT - 1 >= 0) {
            FAST[ieee_exp].M = POW5[s] << (s + e2 + FAST_SHIFT); /* < 10 * 2^35 */
            FAST[ieee_exp].M10 = POW5[s - 1] << (s + e2 + FAST_SHIFT - 1);
            FAST[ieee_exp].s = s;
        }
    }
    for (int t = 1; t < 16; t++) {
        for (int i = 0; i < 16; i++) {
            if (i >= 16 - t) {
                WINDOW[t].tail.u[i / 8] |= 0xFFULL << (8 * (i % 8));
            }
            else if (i < 15 - t) {
                WINDOW[t].head.u[i / 8] |= 0xFFULL << (8 * (i % 8));
            }
            else {
                WINDOW[t].point.u[i / 8] |= (uint64_t)'.' << (8 * (i % 8));
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* General path */

/* Scaled bounds and centre for one value: floor and exactness of lo and hi, floor of twice the
 * centre and whether anything was dropped below that. */
typedef struct {
    uint64_t lo, hi, c2;
    int lo_exact, hi_exact, c_sticky;
} scaled_t;

/* floor(A * P / 2^r) (known to fit 64 bits) and whether the division was inexact; A < 2^28,
 * P < 2^128, 0 < r < 192. */
static uint64_t
mul_shift_192(uint32_t A, u128 P, int r, int *inexact)
{
    uint64_t p0 = (uint64_t)P, p1 = (uint64_t)(P >> 64);
    u128 a0 = (u128)A * p0;
    u128 a1 = (u128)A * p1 + (uint64_t)(a0 >> 64);
    uint64_t w0 = (uint64_t)a0, w1 = (uint64_t)a1, w2 = (uint64_t)(a1 >> 64);
    if (r < 64) {
        *inexact = (w0 & ((1ULL << r) - 1)) != 0;
        return (w0 >> r) | (w1 << (64 - r));
    }
    if (r < 128) {
        int rr = r - 64;
        if (rr == 0) {
            *inexact = w0 != 0;
            return w1;
        }
        *inexact = w0 != 0 || (w1 & ((1ULL << rr) - 1)) != 0;
        return (w1 >> rr) | (w2 << (64 - rr));
    }
    {
        int rr = r - 128;
        if (rr == 0) {
            *inexact = (w0 | w1) != 0;
            return w2;
        }
        *inexact = (w0 | w1) != 0 || (w2 & ((1ULL << rr) - 1)) != 0;
        return w2 >> rr;
    }
}

/* floor((A << t) / D) and whether the division was inexact; A < 2^28, 0 <= t < 100. */
static uint64_t
div_shift(uint32_t A, int t, u128 D, int *inexact)
{
    u128 n = (u128)A << t;
    u128 q = n / D;
    *inexact = (n - q * D) != 0;
    return (uint64_t)q;
}

/* For every finite nonzero x = m * 2^e2: the rounding interval (its lower half halved for
 * powers of two, `asym`; inclusive for even m) scaled by 10^s so that x * 10^s lies in
 * [1e8, 2e9) (at least 5 integers inside), then trailing digits stripped while the interval
 * holds a multiple of ten, then the candidate closest to the exact value. d < 2e8. */
static NOINLINE decimal_t
to_decimal_general(uint32_t m, int e2, int asym, int inclusive)
{
    int p2 = 31 - __builtin_clz(m);
    int k = ((e2 + p2) * 78913) >> 18; /* floor(log10(2^(e2 + p2))) */
    int s = 8 - k;
    int t = e2 - 2 + s; /* scaled bound = A * 5^s * 2^t for A = 4m -/+ 2 */
    uint32_t A_lo = asym ? 4 * m - 1 : 4 * m - 2, A_hi = 4 * m + 2, A_c2 = 8 * m;
    scaled_t v;
    int inexact;
    if (s >= 0) {
        /* 5^s < 2^128 for s <= 55; here s <= 53 */
        u128 P = s <= 27 ? (u128)POW5[s] : (u128)POW5[27] * POW5[s - 27];
        if (t >= 0) {
            /* only for s == 0 or so: the products are small */
            v.lo = (uint64_t)((u128)A_lo * P << t);
            v.hi = (uint64_t)((u128)A_hi * P << t);
            v.c2 = (uint64_t)((u128)A_c2 * P << t);
            v.lo_exact = v.hi_exact = 1;
            v.c_sticky = 0;
        }
        else {
            v.lo = mul_shift_192(A_lo, P, -t, &inexact);
            v.lo_exact = !inexact;
            v.hi = mul_shift_192(A_hi, P, -t, &inexact);
            v.hi_exact = !inexact;
            v.c2 = mul_shift_192(A_c2, P, -t, &v.c_sticky);
        }
    }
    else {
        /* |x| >= 1e9: divide by 5^-s (< 2^70); t > 0 here */
        int ns = -s;
        u128 D = ns <= 27 ? (u128)POW5[ns] : (u128)POW5[27] * POW5[ns - 27];
        v.lo = div_shift(A_lo, t, D, &inexact);
        v.lo_exact = !inexact;
        v.hi = div_shift(A_hi, t, D, &inexact);
        v.hi_exact = !inexact;
        v.c2 = div_shift(A_c2, t, D, &v.c_sticky);
    }

    /* Integer candidates at this scale: [nlo, nhi]. */
    uint32_t nlo = (uint32_t)v.lo + !(v.lo_exact && inclusive);
    uint32_t nhi = (uint32_t)v.hi - (v.hi_exact && !inclusive);
    uint32_t c = (uint32_t)(v.c2 >> 1);
    /* Rounding state of the centre: `last` is the first digit dropped below c (5 for an exact
     * half, 6 for more than half, 1 for less), `rest` whether anything below that is nonzero. */
    uint32_t last = (uint32_t)(v.c2 & 1) * 5 + (uint32_t)v.c_sticky;
    uint32_t rest = 0;
    int q = 0;
    while (nhi / 10 >= (nlo + 9) / 10) {
        nhi /= 10;
        nlo = (nlo + 9) / 10;
        rest |= last;
        last = c % 10;
        c /= 10;
        q++;
    }
    uint32_t d = c + (last > 5 || (last == 5 && (rest != 0 || (c & 1))));
    if (d < nlo) {
        d = nlo;
    }
    else if (d > nhi) {
        d = nhi;
    }
    decimal_t r = {d, q - s};
    return r;
}

/* The general path for a finite nonzero float32. */
static NOINLINE decimal_t
to_decimal_slow(uint32_t bits)
{
    uint32_t ieee_exp = (bits >> 23) & 0xff;
    uint32_t ieee_mant = bits & 0x7fffff;
    if (ieee_exp == 0) {
        return to_decimal_general(ieee_mant, -149, 0, ~ieee_mant & 1); /* subnormal */
    }
    uint32_t m = ieee_mant | (1u << 23);
    /* the lower neighbour is half as far for a power of two above the smallest normal */
    return to_decimal_general(m, (int)ieee_exp - 150, ieee_mant == 0 && ieee_exp > 1, ~m & 1);
}

/* ---------------------------------------------------------------------------------------- */
/* Fast path */

/* The decimal of a normal float32 that is not a power of two, whose exponent has a fast scale
 * (M10 != 0). */
static ALWAYS_INLINE decimal_t
to_decimal_fast(uint32_t bits, const fast_scale_t *scale)
{
    uint64_t M = scale->M, M10 = scale->M10;
    int s = (int)scale->s;
    uint32_t m = (bits & 0x7fffff) | (1u << 23);
    /* x * 10^s * 2^36 = X = 2 m M < 10 * 2^60, and half an ulp is M in these units. */
    uint64_t X = (uint64_t)(2 * m) * M;
    /* The integer nearest to x * 10^s, ties to even: adding just under a half, plus one unit
     * when the integer part is odd, carries exactly when rounding goes up. It is inside the
     * rounding interval, which is over one unit wide. */
    uint32_t d = (uint32_t)((X + ((1ULL << FAST_SHIFT) - 1) + ((X >> (FAST_SHIFT + 1)) & 1)) >>
                            (FAST_SHIFT + 1));
    /* A multiple of ten inside the interval beats it (otherwise none of the integers inside is
     * one, so d has no trailing zero): an integer inside the interval scaled by 1/10, whose
     * centre and half-width are X10 = X / 10 and M10 in the same units. The interval is
     * inclusive for even m (round-half-even reads its ends back as x), so the integers k in
     * it are those with lo < k * 2^36 <= hi, for lo and hi its ends less one unit of 2^-36
     * where they are excluded. */
    uint64_t odd = m & 1;
    uint64_t X10 = (uint64_t)(2 * m) * M10;
    uint64_t lo = X10 - M10 - 1 + odd;
    uint64_t hi = X10 + M10 - odd;
    uint32_t d10 = (uint32_t)(hi >> (FAST_SHIFT + 1));
    uint32_t ten = d10 > (uint32_t)(lo >> (FAST_SHIFT + 1));
    /* Selected with a mask: it is a coin toss, and gcc turns `?:` into a branch. */
    uint32_t pick = 0u - ten;
    d = (d10 & pick) | (d & ~pick);
    int e = (int)ten - s;
    /* Any more trailing zeros (then d10 was the only candidate at coarser scales too). The test
     * is d % 10 == 0 as d * (the inverse of 5 mod 2^32), rotated right by one, <= (2^32-1)/10
     * (gcc computes d - 10 * (d / 10) otherwise). */
    while (UNLIKELY(((d * 0xCCCCCCCDu) >> 1 | (d * 0xCCCCCCCDu) << 31) <= 0x19999999u)) {
        d /= 10;
        e++;
    }
    decimal_t res = {d, e};
    return res;
}

/* ---------------------------------------------------------------------------------------- */
/* Text */

/* The decimal digits of 0 < d < 2e8, right-aligned in a 16-byte window of ASCII '0'-padded
 * text (lo: bytes 0-7, hi: bytes 8-15), and how many digits there are. */
typedef struct {
    uint64_t lo, hi;
    int len;
} digits_t;

static ALWAYS_INLINE digits_t
to_digits(uint32_t d)
{
    digits_t r;
    uint32_t a = d > 99999999; /* a ninth digit, 1 */
    uint32_t b = d;
    if (UNLIKELY(a)) { /* a branch: predictable, and measured faster than a mask */
        b -= 100000000;
    }
    uint32_t hi4 = b / 10000;
    uint64_t w = DIGITS4[hi4] | ((uint64_t)DIGITS4[b - hi4 * 10000] << 32);
    /* Leading zeros of the 8 digits are the low zero bytes of w (w != 0 when a is 0; with a
     * ninth digit, a's bit makes them none). */
    int lz = __builtin_ctzll(w | a) >> 3;
    r.len = 8 - lz + (int)a;
    r.hi = w + 0x3030303030303030ULL;
    r.lo = 0x3030303030303030ULL + ((uint64_t)a << 56);
    return r;
}

/* Lay out a finite float32 forwards at p (any form; used for the rare ones: zero, |x| < 1e-6,
 * integral, or at least 1e13); return the end. */
static NOINLINE char *
format_forward(char *p, uint32_t bits, decimal_t dec)
{
    if (bits >> 31) {
        *p++ = '-';
    }
    if ((bits & 0x7fffffff) == 0) {
        memcpy(p, "0.0", 3);
        return p + 3;
    }
    char digits[16];
    int len = 0;
    for (uint32_t v = dec.d; v != 0; v /= 10) {
        digits[15 - len++] = (char)('0' + v % 10);
    }
    const char *first = digits + 16 - len;
    int kk = len + dec.e; /* 10^(kk-1) <= |x| < 10^kk */
    if (dec.e >= 0 && kk <= 13) {
        /* ddd000.0 */
        memcpy(p, first, (size_t)len);
        memset(p + len, '0', (size_t)dec.e);
        memcpy(p + kk, ".0", 2);
        return p + kk + 2;
    }
    if (dec.e < 0 && kk > -6) {
        if (kk > 0) {
            /* ddd.ddd */
            memcpy(p, first, (size_t)kk);
            p[kk] = '.';
            memcpy(p + kk + 1, first + kk, (size_t)(len - kk));
            return p + len + 1;
        }
        /* 0.000ddd */
        memcpy(p, "0.", 2);
        memset(p + 2, '0', (size_t)-kk);
        memcpy(p + 2 - kk, first, (size_t)len);
        return p + 2 - kk + len;
    }
    /* d.ddde+XX / d.ddde-XX */
    *p++ = first[0];
    if (len > 1) {
        *p++ = '.';
        memcpy(p, first + 1, (size_t)(len - 1));
        p += len - 1;
    }
    int e = kk - 1;
    *p++ = 'e';
    *p++ = e < 0 ? '-' : '+';
    e = e < 0 ? -e : e;
    if (e >= 10) {
        memcpy(p, D2 + 2 * e, 2);
        return p + 2;
    }
    *p = (char)('0' + e);
    return p + 1;
}

/* format_back for what its fast path leaves: zeros, NaN and infinities (nothing written, and
 * *non_finite set), values without a fast scale or powers of two, and the layouts other than
 * ddd.ddd and 0.000ddd. */
static NOINLINE COLD char *
format_back_slow(char *end, uint32_t bits, int *non_finite)
{
    uint32_t ieee_exp = (bits >> 23) & 0xff;
    if (ieee_exp == 0xff) {
        *non_finite = 1;
        return end;
    }
    decimal_t dec = {0, 0};
    if ((bits & 0x7fffffff) != 0) {
        const fast_scale_t *scale = &FAST[ieee_exp];
        dec = scale->M10 != 0 && (bits & 0x7fffff) != 0 ? to_decimal_fast(bits, scale)
                                                         : to_decimal_slow(bits);
    }
    char text[32];
    size_t n = (size_t)(format_forward(text, bits, dec) - text);
    memcpy(end - n, text, n);
    return end - n;
}

/* Write the float32 with these bits so that it ends at `end` (bytes down to end - 16 may be
 * overwritten); return where it starts. For a NaN or an infinity, set *non_finite instead (and
 * write nothing): checked once per row, not per value. */
static ALWAYS_INLINE char *
format_back(char *end, uint32_t bits, int *non_finite)
{
    /* One table lookup sends zeros, subnormals, NaN and infinities, and values outside the fast
     * range, to the slow path (their M10 is 0); powers of two go there too. */
    const fast_scale_t *scale = &FAST[(bits >> 23) & 0xff];
    if (UNLIKELY(scale->M10 == 0 || (bits & 0x7fffff) == 0)) {
        return format_back_slow(end, bits, non_finite);
    }
    decimal_t dec = to_decimal_fast(bits, scale);
    digits_t g = to_digits(dec.d);
    /* Fractions down to 1e-6 are written ddd.ddd or 0.000ddd: t = -e digits after the point
     * with 1 <= t < len + 6, as 10^(kk-1) <= |x| < 10^kk for kk = len + e > -6. Before the
     * point, the first kk digits, or a single 0 (from the window's padding). In the window:
     * keep the last t bytes, move the rest one byte down (left), put '.' in the gap. No
     * branch: data mixing |x| < 1 and |x| >= 1 would mispredict one often. */
    unsigned t = (unsigned)-dec.e;
    if (UNLIKELY(dec.e >= 0) || UNLIKELY((int)t >= g.len + 6)) {
        return format_back_slow(end, bits, non_finite); /* integral, or below 1e-6 */
    }
    const window_masks_t *mask = &WINDOW[t];
#if F32JSON_SSE2
    __m128i r = _mm_set_epi64x((long long)g.hi, (long long)g.lo);
    __m128i w = _mm_or_si128(_mm_or_si128(_mm_and_si128(r, mask->tail.v),
                                          _mm_and_si128(_mm_srli_si128(r, 1), mask->head.v)),
                             mask->point.v);
    _mm_storeu_si128((__m128i *)(void *)(end - 16), w);
#else
    uint64_t mlo = mask->tail.u[0], mhi = mask->tail.u[1];
    uint64_t head_lo = g.lo & ~mlo, head_hi = g.hi & ~mhi;
    uint64_t lo = (g.lo & mlo) | (head_lo >> 8) | (head_hi << 56) | mask->point.u[0];
    uint64_t hi = (g.hi & mhi) | (head_hi >> 8) | mask->point.u[1];
    memcpy(end - 16, &lo, 8);
    memcpy(end - 8, &hi, 8);
#endif
    /* kk = len - t digits before the point, or a single 0: len + 1 or t + 2 bytes */
    int size = g.len > (int)t ? g.len + 1 : (int)t + 2;
    char *start = end - size;
    start[-1] = '-';
    return start - (bits >> 31);
}

/* Write "[v0,v1,...]" for n values so that it ends at `end` (the buffer below must hold
 * 2 + n * (MAX_NUMBER_LEN + 1) + SLACK bytes). Return where it starts, or NULL if a value is
 * NaN or infinite. */
static char *
format_row(char *end, const float *values, Py_ssize_t n)
{
    char *p = end;
    int non_finite = 0;
    *--p = ']';
    for (Py_ssize_t i = n - 1; i >= 0; i--) {
        uint32_t bits;
        memcpy(&bits, values + i, 4);
        p = format_back(p, bits, &non_finite);
        *--p = ',';
    }
    if (non_finite) {
        return NULL;
    }
    if (n == 0) {
        *--p = '[';
    }
    else {
        *p = '['; /* over the last ',' */
    }
    return p;
}

/* ---------------------------------------------------------------------------------------- */
/* Python */

typedef struct {
    Py_buffer view;
    Py_ssize_t rows, dims;
    const float *data;
} matrix_t;

static int
format_is_float32(const char *fmt)
{
    if (fmt == NULL) {
        return 0; /* unsigned bytes */
    }
    const union {
        uint16_t u;
        uint8_t b[2];
    } probe = {1};
    int little = probe.b[0] == 1;
    switch (fmt[0]) {
    case '@':
    case '=':
        fmt++;
        break;
    case '<':
        if (!little) {
            return 0;
        }
        fmt++;
        break;
    case '>':
    case '!':
        if (little) {
            return 0;
        }
        fmt++;
        break;
    default:
        break;
    }
    return fmt[0] == 'f' && fmt[1] == '\0';
}

/* Get a C-contiguous float32 buffer of ndim 1 or 2; on failure set an exception and return -1
 * with nothing to release. */
static int
get_matrix(PyObject *obj, matrix_t *mx)
{
    if (!PyObject_CheckBuffer(obj)) {
        PyErr_Format(PyExc_TypeError,
                     "matrix must be a float32 array (an object exporting a buffer), not %.200s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (PyObject_GetBuffer(obj, &mx->view, PyBUF_RECORDS_RO) < 0) {
        return -1;
    }
    Py_buffer *view = &mx->view;
    if (!format_is_float32(view->format) || view->itemsize != 4) {
        PyErr_Format(PyExc_TypeError,
                     "matrix must hold float32 values (buffer format 'f', itemsize 4), got "
                     "format '%.20s' with itemsize %zd",
                     view->format ? view->format : "B", view->itemsize);
        goto fail;
    }
    if (view->ndim == 1) {
        mx->rows = 1;
        mx->dims = view->shape[0];
    }
    else if (view->ndim == 2) {
        mx->rows = view->shape[0];
        mx->dims = view->shape[1];
    }
    else {
        PyErr_Format(PyExc_ValueError,
                     "matrix must be 1-dimensional (one vector) or 2-dimensional (rows, dims), "
                     "got %d dimensions",
                     view->ndim);
        goto fail;
    }
    if (!PyBuffer_IsContiguous(view, 'C')) {
        PyErr_SetString(PyExc_ValueError,
                        "matrix must be C-contiguous (use numpy.ascontiguousarray)");
        goto fail;
    }
    mx->data = (const float *)view->buf;
    return 0;
fail:
    PyBuffer_Release(view);
    return -1;
}

static int
index_arg(PyObject *obj, const char *name, Py_ssize_t *out)
{
    if (!PyIndex_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an integer, not %.200s", name,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    Py_ssize_t v = PyNumber_AsSsize_t(obj, NULL); /* clamps huge values, then range-checked */
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Rows up to this many bytes of scratch are formatted on the stack (768 dims need 13,858). */
#define STACK_SCRATCH 16384

/* One row's text between `prefix` and `suffix` as bytes (new reference), Py_None (new
 * reference) if the row has non-finite values, or NULL with an exception set. The text is
 * written backwards into a scratch buffer (the suffix, the numbers, then the prefix), then
 * copied into a bytes object of its exact size. (Writing into a bytes object of the largest
 * possible size, then moving the text to its start and shrinking it, is as fast when each
 * result is dropped at once, and ~35 % slower when results are kept, as in a write batch.) */
static PyObject *
row_bytes(const float *values, Py_ssize_t n, const char *prefix, Py_ssize_t prefix_len,
          const char *suffix, Py_ssize_t suffix_len)
{
    if (n > (PY_SSIZE_T_MAX / 2 - prefix_len - suffix_len - 2 - SLACK) / (MAX_NUMBER_LEN + 1)) {
        return PyErr_NoMemory();
    }
    Py_ssize_t cap = prefix_len + 2 + n * (MAX_NUMBER_LEN + 1) + suffix_len + SLACK;
    char stack[STACK_SCRATCH];
    char *scratch = stack;
    if (cap > STACK_SCRATCH) {
        scratch = PyMem_Malloc((size_t)cap);
        if (scratch == NULL) {
            return PyErr_NoMemory();
        }
    }
    char *end = scratch + cap;
    memcpy(end - suffix_len, suffix, (size_t)suffix_len);
    char *start = format_row(end - suffix_len, values, n);
    PyObject *out;
    if (start == NULL) {
        out = Py_NewRef(Py_None);
    }
    else {
        start -= prefix_len;
        memcpy(start, prefix, (size_t)prefix_len);
        out = PyBytes_FromStringAndSize(start, end - start);
    }
    if (scratch != stack) {
        PyMem_Free(scratch);
    }
    return out;
}

/* The matrix and row arguments: on success (0) the buffer is held, to be released. */
static int
matrix_row_args(PyObject *matrix, PyObject *row_arg, matrix_t *mx, Py_ssize_t *row)
{
    if (index_arg(row_arg, "row", row) < 0 || get_matrix(matrix, mx) < 0) {
        return -1;
    }
    if (*row < 0 || *row >= mx->rows) {
        PyErr_Format(PyExc_IndexError, "row %zd out of range for a matrix of %zd row%s", *row,
                     mx->rows, mx->rows == 1 ? "" : "s");
        PyBuffer_Release(&mx->view);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(row_json_doc,
             "row_json(matrix, row, /)\n--\n\n"
             "The JSON array text of one float32 row: b\"[v0,v1,...]\", each value written "
             "exactly as orjson writes a numpy float32.\n\n"
             "matrix: a C-contiguous float32 buffer, 1-d (one vector; row must be 0) or 2-d "
             "(rows, dims).\nReturns None if the row holds a NaN or an infinity.");

static PyObject *
row_json(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "row_json() takes 2 arguments (matrix, row), got %zd",
                     nargs);
        return NULL;
    }
    matrix_t mx;
    Py_ssize_t row;
    if (matrix_row_args(args[0], args[1], &mx, &row) < 0) {
        return NULL;
    }
    PyObject *result = row_bytes(mx.data + row * mx.dims, mx.dims, "", 0, "", 0);
    PyBuffer_Release(&mx.view);
    return result;
}

PyDoc_STRVAR(row_document_doc,
             "row_document(matrix, row, prefix, suffix, /)\n--\n\n"
             "prefix + row_json(matrix, row) + suffix, built in one allocation (prefix and "
             "suffix: bytes).\nReturns None if the row holds a NaN or an infinity.");

static PyObject *
row_document(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError,
                     "row_document() takes 4 arguments (matrix, row, prefix, suffix), got %zd",
                     nargs);
        return NULL;
    }
    if (!PyBytes_Check(args[2]) || !PyBytes_Check(args[3])) {
        PyErr_Format(PyExc_TypeError, "prefix and suffix must be bytes, not %.200s and %.200s",
                     Py_TYPE(args[2])->tp_name, Py_TYPE(args[3])->tp_name);
        return NULL;
    }
    matrix_t mx;
    Py_ssize_t row;
    if (matrix_row_args(args[0], args[1], &mx, &row) < 0) {
        return NULL;
    }
    PyObject *result =
        row_bytes(mx.data + row * mx.dims, mx.dims, PyBytes_AS_STRING(args[2]),
                  PyBytes_GET_SIZE(args[2]), PyBytes_AS_STRING(args[3]), PyBytes_GET_SIZE(args[3]));
    PyBuffer_Release(&mx.view);
    return result;
}

static PyMethodDef methods[] = {
    {"row_json", (PyCFunction)(void (*)(void))row_json, METH_FASTCALL, row_json_doc},
    {"row_document", (PyCFunction)(void (*)(void))row_document, METH_FASTCALL,
     row_document_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "elax_plan._f32json",
    "float32 vectors -> JSON array text, byte-identical to orjson's numpy float32 output.",
    0,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__f32json(void)
{
    init_tables();
    return PyModule_Create(&module_def);
}
