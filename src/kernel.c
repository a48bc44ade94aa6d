/*-------------------------------------------------------------------------
 *
 * kernel.c
 *	  mf_ext's own single-precision ALS kernels (kernel.h): kernel_simd.h
 *	  instantiated for AVX-512, for AVX2 with FMA and in portable C, and the
 *	  choice among them (mf_ext.kernel).  The vector versions are compiled
 *	  with function target attributes, so the module still loads on any
 *	  x86-64 CPU; each is only called where the CPU reports its features.
 *
 *-------------------------------------------------------------------------
 */
#include "kernel.h"

#include <math.h>

#include "utils/guc.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define MF_KERNEL_X86 1
#endif

int			mf_kernel_choice = MF_KERNEL_AUTO;

/* Floats in a 64-byte cache line: the step of each request for a row. */
#define LINE_FLOATS 16

/*
 * Asks the cache for a rated row's n floats some rows before a kernel
 * reads them (one request per cache line, LINE_FLOATS floats): the rows
 * come from anywhere in the other side, beyond the reach of the hardware's
 * prefetchers, and the passes that do little work a row (the CG product,
 * the predictions) otherwise wait on each one.
 */
static inline __attribute__((always_inline)) void
prefetch_row(const float *row, int n)
{
	/* unrolled where n is a constant: as a loop, 15% of the CG product's samples */
	_Pragma("GCC unroll 8")
	for (int j = 0; j < n; j += LINE_FLOATS)
		__builtin_prefetch(row + j);
}

/*
 * The rows of a Gram kernel's next block of rated rows, asked of the L2
 * cache a line at a time while the passes over the current block run (a
 * line for each row a pass reads): the first pass over a block then finds
 * its rows there, not in memory, and the requests are spread over the
 * block's work rather than bunched where they would wait on each other.
 * The L1 cache holds one block (SIMD_BLOCK_FLOATS), not two.
 */
typedef struct GramAhead
{
	const int32 *cols;			/* the next block's column indices */
	int			rows;			/* its rows: 0 for none */
	int			row;			/* the next row to ask for, and its line */
	int			line;
} GramAhead;

/* Asks for the next line of ahead's rows, if any is left. */
static inline __attribute__((always_inline)) void
gram_ahead_step(const float *other, int k, const GramAhead *ahead, int *row, int *line)
{
	if (*row < ahead->rows)
	{
		__builtin_prefetch(other + (Size) ahead->cols[*row] * k + *line * LINE_FLOATS, 0, 2);
		if (++*line * LINE_FLOATS >= k)
		{
			*line = 0;
			++*row;
		}
	}
}

/* Portable C: a vector of one float. */
#define SIMD(name) name##_portable
#define SIMD_FN
#define V 1
#define VEC float
#define VZERO() 0.0f
#define VLOAD(p) (*(p))
#define VLOADN(p, n) ((n) > 0 ? *(p) : 0.0f)
#define VSTORE(p, x) (*(p) = (x))
#define VSTOREN(p, x, n) ((n) > 0 ? (void) (*(p) = (x)) : (void) 0)
#define VBCAST(s) (s)
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VFNMA(a, b, c) ((c) - (a) * (b))
#define VMUL(a, b) ((a) * (b))
#define VADD(a, b) ((a) + (b))
#define VSUB(a, b) ((a) - (b))
#define VSUM(x) (x)
#define VSUMALL(x) (x)
#define VFIRST(x) (x)
#define TILE_VECTORS 4
#define TILE_COLUMNS 6
#define GRAM_COLUMNS(vectors) 6
#define GRAM_COLUMNS_MOST 6
#define GRAM_GROUP 6
#define VDIV(a, b) ((a) / (b))
#define VSQRT(x) sqrtf(x)
#define VLANE(x, i) (x)
#define VLOADRANGE(p, from, n) ((from) <= 0 && (n) > 0 ? *(p) : 0.0f)
#include "kernel_simd.h"

#ifdef MF_KERNEL_X86

/* The first n of 16 lanes (n <= 0: none, n >= 16: all). */
static inline __attribute__((target("avx512f"), always_inline)) __mmask16
lanes16(int n)
{
	return (__mmask16) (n >= 16 ? 0xFFFF : n <= 0 ? 0 : (1u << n) - 1);
}

/*
 * The first n lanes of a vector, loaded and stored unmasked when n covers
 * it (here and for AVX2 below): the Cholesky steps load what the step
 * before stored, and a load after a masked store waited for it (measured:
 * the panel step about 25% faster, the same numbers).
 */
static inline __attribute__((target("avx512f"), always_inline)) __m512
load16(const float *p, int n)
{
	return n >= 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(lanes16(n), p);
}

static inline __attribute__((target("avx512f"), always_inline)) void
store16(float *p, __m512 x, int n)
{
	if (n >= 16)
		_mm512_storeu_ps(p, x);
	else
		_mm512_mask_storeu_ps(p, lanes16(n), x);
}

/*
 * A 16 x 16 transpose in registers: r[i] becomes the vector of lane i of
 * every r[j], in lane j.  Its loops unroll whole, so that r stays in
 * registers (rolled, the transpose took a third of a batch's solve).
 */
static inline __attribute__((target("avx512f"), always_inline)) void
transpose16(__m512 *r)
{
	__m512		t[16];

	_Pragma("GCC unroll 16")
	for (int i = 0; i < 16; i += 2)
	{
		t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
		t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
	}
	_Pragma("GCC unroll 16")
	for (int i = 0; i < 16; i += 4)
	{
		r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
		r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
		r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
		r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
	}
	/* r[4g + m]: in its 128-bit part h, elements (4g .. 4g + 3, 4h + m) */
	_Pragma("GCC unroll 16")
	for (int g = 0; g < 16; g += 8)
		_Pragma("GCC unroll 16")
		for (int m = 0; m < 4; m++)
		{
			t[g + m] = _mm512_shuffle_f32x4(r[g + m], r[g + 4 + m], 0x88);
			t[g + 4 + m] = _mm512_shuffle_f32x4(r[g + m], r[g + 4 + m], 0xdd);
		}
	_Pragma("GCC unroll 16")
	for (int m = 0; m < 4; m++)
	{
		r[m] = _mm512_shuffle_f32x4(t[m], t[8 + m], 0x88);
		r[8 + m] = _mm512_shuffle_f32x4(t[m], t[8 + m], 0xdd);
		r[4 + m] = _mm512_shuffle_f32x4(t[4 + m], t[12 + m], 0x88);
		r[12 + m] = _mm512_shuffle_f32x4(t[4 + m], t[12 + m], 0xdd);
	}
}

/*
 * The sum of x's lanes in every lane, by the same additions in the same
 * pairs as _mm512_reduce_add_ps (lanes 8 apart, then 4, 2 and 1), so lane
 * 0 holds its value bit for bit: the CG product's score then multiplies the
 * row without a trip through a scalar register and a broadcast back (with
 * prefetch_row unrolled, 4.2 ns a rated row against 5.1 ns at k = 64).
 */
static inline __attribute__((target("avx512f"), always_inline)) __m512
sum16_all(__m512 x)
{
	x = _mm512_add_ps(x, _mm512_shuffle_f32x4(x, x, 0x4e));
	x = _mm512_add_ps(x, _mm512_shuffle_f32x4(x, x, 0xb1));
	x = _mm512_add_ps(x, _mm512_permute_ps(x, 0x4e));
	return _mm512_add_ps(x, _mm512_permute_ps(x, 0xb1));
}

/* x rotated by s lanes: lane i holds x's lane (i + s) mod 16. */
static inline __attribute__((target("avx512f"), always_inline)) __m512
rotate16(__m512 x, int s)
{
	__m512i		lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

	return _mm512_permutexvar_ps(_mm512_and_si512(_mm512_add_epi32(lane, _mm512_set1_epi32(s)),
												  _mm512_set1_epi32(15)), x);
}

/* The lanes of x that are positive and finite, as bits. */
static inline __attribute__((target("avx512f"), always_inline)) unsigned
positive16(__m512 x)
{
	return _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ) &
		_mm512_cmp_ps_mask(x, _mm512_set1_ps(INFINITY), _CMP_LT_OQ);
}

#define SIMD(name) name##_avx512
#define SIMD_FN __attribute__((target("avx512f,avx2,fma")))
#define V 16
#define VEC __m512
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VLOADN(p, n) load16((p), (n))
#define VSTORE(p, x) _mm512_storeu_ps((p), (x))
#define VSTOREN(p, x, n) store16((p), (x), (n))
#define VBCAST(s) _mm512_set1_ps(s)
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VFNMA(a, b, c) _mm512_fnmadd_ps((a), (b), (c))
#define VMUL(a, b) _mm512_mul_ps((a), (b))
#define VADD(a, b) _mm512_add_ps((a), (b))
#define VSUB(a, b) _mm512_sub_ps((a), (b))
#define VSUM(x) _mm512_reduce_add_ps(x)
#define VSUMALL(x) sum16_all(x)
#define VFIRST(x) _mm512_cvtss_f32(x)
#define TILE_VECTORS 4
#define TILE_COLUMNS 6
/* 24, 24, 16 and 16 sums in 32 registers */
#define GRAM_COLUMNS(vectors) ((vectors) == 4 ? 6 : (vectors) == 1 ? 16 : 8)
#define GRAM_COLUMNS_MOST 16
#define GRAM_GROUP V
#define VDIV(a, b) _mm512_div_ps((a), (b))
#define VSQRT(x) _mm512_sqrt_ps(x)
#define VLANE(x, i) _mm512_permutexvar_ps(_mm512_set1_epi32(i), (x))
#define VROTATE(x, s) rotate16((x), (s))
/* 18 sums and 2 of the right-hand side */
#define GRAM_DIAGONAL_BLOCKS 2
#define VLOADRANGE(p, from, n) _mm512_maskz_loadu_ps(lanes16(n) & ~lanes16(from), (p))
#define VTRANSPOSE(r) transpose16(r)
#define BATCH_TILE 4
#define VPOSITIVE(x) positive16(x)
#define VKEEP(x, bits, other) _mm512_mask_mov_ps((other), (__mmask16) (bits), (x))
#include "kernel_simd.h"

/* The first n of 8 lanes, as maskload/maskstore take them. */
static inline __attribute__((target("avx2"), always_inline)) __m256i
lanes8(int n)
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __attribute__((target("avx2"), always_inline)) __m256
load8(const float *p, int n)
{
	return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, lanes8(n));
}

static inline __attribute__((target("avx2"), always_inline)) void
store8(float *p, __m256 x, int n)
{
	if (n >= 8)
		_mm256_storeu_ps(p, x);
	else
		_mm256_maskstore_ps(p, lanes8(n), x);
}

static inline __attribute__((target("avx2"), always_inline)) float
sum8(__m256 x)
{
	__m128		s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));

	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
	return _mm_cvtss_f32(s);
}

/* The sum of x's lanes in every lane, by sum8's additions (see sum16_all). */
static inline __attribute__((target("avx2"), always_inline)) __m256
sum8_all(__m256 x)
{
	x = _mm256_add_ps(x, _mm256_permute2f128_ps(x, x, 0x01));
	x = _mm256_add_ps(x, _mm256_permute_ps(x, 0x4e));
	return _mm256_add_ps(x, _mm256_permute_ps(x, 0xb1));
}

/* x rotated by s lanes: lane i holds x's lane (i + s) mod 8. */
static inline __attribute__((target("avx2"), always_inline)) __m256
rotate8(__m256 x, int s)
{
	__m256i		lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);

	return _mm256_permutevar8x32_ps(x, _mm256_and_si256(_mm256_add_epi32(lane,
																		  _mm256_set1_epi32(s)),
														_mm256_set1_epi32(7)));
}

/* An 8 x 8 transpose in registers, as transpose16. */
static inline __attribute__((target("avx2"), always_inline)) void
transpose8(__m256 *r)
{
	__m256		t[8];

	_Pragma("GCC unroll 16")
	for (int i = 0; i < 8; i += 2)
	{
		t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
		t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
	}
	_Pragma("GCC unroll 16")
	for (int i = 0; i < 8; i += 4)
	{
		r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
		r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
		r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
		r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
	}
	_Pragma("GCC unroll 16")
	for (int m = 0; m < 4; m++)
	{
		t[m] = _mm256_permute2f128_ps(r[m], r[4 + m], 0x20);
		t[4 + m] = _mm256_permute2f128_ps(r[m], r[4 + m], 0x31);
	}
	_Pragma("GCC unroll 16")
	for (int i = 0; i < 8; i++)
		r[i] = t[i];
}

/* The lanes of x that are positive and finite, as bits. */
static inline __attribute__((target("avx2"), always_inline)) unsigned
positive8(__m256 x)
{
	return (unsigned) _mm256_movemask_ps(_mm256_and_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ),
													   _mm256_cmp_ps(x, _mm256_set1_ps(INFINITY), _CMP_LT_OQ)));
}

/* x in the lanes whose bit is set, other in the rest. */
static inline __attribute__((target("avx2"), always_inline)) __m256
keep8(__m256 x, unsigned bits, __m256 other)
{
	__m256i		bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
	__m256i		set = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int) bits), bit), bit);

	return _mm256_blendv_ps(other, x, _mm256_castsi256_ps(set));
}

#define SIMD(name) name##_avx2
#define SIMD_FN __attribute__((target("avx2,fma")))
#define V 8
#define VEC __m256
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VLOADN(p, n) load8((p), (n))
#define VSTORE(p, x) _mm256_storeu_ps((p), (x))
#define VSTOREN(p, x, n) store8((p), (x), (n))
#define VBCAST(s) _mm256_set1_ps(s)
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VFNMA(a, b, c) _mm256_fnmadd_ps((a), (b), (c))
#define VMUL(a, b) _mm256_mul_ps((a), (b))
#define VADD(a, b) _mm256_add_ps((a), (b))
#define VSUB(a, b) _mm256_sub_ps((a), (b))
#define VSUM(x) sum8(x)
#define VSUMALL(x) sum8_all(x)
#define VFIRST(x) _mm256_cvtss_f32(x)
#define TILE_VECTORS 3
#define TILE_COLUMNS 4
/* 12, 8 and 8 sums in 16 registers */
#define GRAM_COLUMNS(vectors) ((vectors) == 1 ? 8 : 4)
#define GRAM_COLUMNS_MOST 8
#define GRAM_GROUP V
#define VDIV(a, b) _mm256_div_ps((a), (b))
#define VSQRT(x) _mm256_sqrt_ps(x)
#define VLANE(x, i) _mm256_permutevar8x32_ps((x), _mm256_set1_epi32(i))
#define VROTATE(x, s) rotate8((x), (s))
/* 5 sums and 1 of the right-hand side, beside 4 rotations */
#define GRAM_DIAGONAL_BLOCKS 1
#define VLOADRANGE(p, from, n) _mm256_maskload_ps((p), _mm256_andnot_si256(lanes8(from), lanes8(n)))
#define VTRANSPOSE(r) transpose8(r)
#define BATCH_TILE 3
#define VPOSITIVE(x) positive8(x)
#define VKEEP(x, bits, other) keep8((x), (bits), (other))
#include "kernel_simd.h"

/*
 * The vector work of MfKernel.dot, cg_step and cg_direction for the
 * AVX-512 and AVX2 kernels alike: four doubles a vector, lane l holding
 * the partial sum of the elements j = l mod 4 in the order als_kernel.h's
 * dot adds them, so that the sums are its own bit for bit.  A product of
 * two floats is exact in double, so a fused multiply-add of one rounds as
 * its separate multiply and add.  The products step p_j are formed in
 * double and rounded to float one at a time, as the scalar loop does.
 */
static inline __attribute__((target("avx2,fma"), always_inline)) double
sum4_tail(__m256d lanes, const float *x, const float *y, int from, int d)
{
	double		sum[4];

	_mm256_storeu_pd(sum, lanes);
	for (int j = from; j < d; j++)
		sum[j % 4] += (double) x[j] * y[j];
	return (sum[0] + sum[1]) + (sum[2] + sum[3]);
}

static __attribute__((target("avx2,fma"))) double
cg_step_vector(float *x, float *r, const float *p, const float *q, double step, int d)
{
	__m256d		factor = _mm256_set1_pd(step);
	__m256d		sum = _mm256_setzero_pd();
	int			j;

	for (j = 0; j + 4 <= d; j += 4)
	{
		__m128		moved = _mm256_cvtpd_ps(_mm256_mul_pd(factor, _mm256_cvtps_pd(_mm_loadu_ps(p + j))));
		__m128		change = _mm256_cvtpd_ps(_mm256_mul_pd(factor, _mm256_cvtps_pd(_mm_loadu_ps(q + j))));
		__m128		residual = _mm_sub_ps(_mm_loadu_ps(r + j), change);
		__m256d		wide = _mm256_cvtps_pd(residual);

		_mm_storeu_ps(x + j, _mm_add_ps(_mm_loadu_ps(x + j), moved));
		_mm_storeu_ps(r + j, residual);
		sum = _mm256_fmadd_pd(wide, wide, sum);
	}
	for (int t = j; t < d; t++)
	{
		x[t] += (float) (step * p[t]);
		r[t] -= (float) (step * q[t]);
	}
	return sum4_tail(sum, r, r, j, d);
}

static __attribute__((target("avx2,fma"))) double
dot_vector(const float *x, const float *y, int d)
{
	__m256d		sum = _mm256_setzero_pd();
	int			j;

	for (j = 0; j + 4 <= d; j += 4)
		sum = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + j)),
							  _mm256_cvtps_pd(_mm_loadu_ps(y + j)), sum);
	return sum4_tail(sum, x, y, j, d);
}

/* Compiled without FMA, so that p = r + beta p stays a multiply and an add. */
static __attribute__((target("avx2"))) void
cg_direction_vector(float *p, const float *r, float beta, int d)
{
	__m256		factor = _mm256_set1_ps(beta);
	int			j;

	for (j = 0; j + 8 <= d; j += 8)
		_mm256_storeu_ps(p + j, _mm256_add_ps(_mm256_loadu_ps(r + j),
											  _mm256_mul_ps(factor, _mm256_loadu_ps(p + j))));
	for (; j < d; j++)
		p[j] = r[j] + beta * p[j];
}

#endif							/* MF_KERNEL_X86 */

#define MF_KERNEL_TABLE(suffix, dot, cg_step, cg_direction, cholesky_max, batch, one, \
						batch_scratch, lanes) \
	{#suffix, gram_##suffix, apply_##suffix, gather_transposed_##suffix, scores_##suffix, \
	 row_sum_##suffix, matrix_apply_##suffix, \
	 dot, cg_step, cg_direction, \
	 cholesky_##suffix, cholesky_solve_##suffix, cholesky_max, batch, one, batch_scratch, lanes}

/* the portable kernel's rows take als_kernel.h's loops for dot, cg_step and cg_direction */
static const MfKernel portable_kernel = MF_KERNEL_TABLE(portable, NULL, NULL, NULL, 24, NULL, NULL,
														NULL, 0);
#ifdef MF_KERNEL_X86
static const MfKernel avx512_kernel = MF_KERNEL_TABLE(avx512, dot_vector, cg_step_vector,
											   cg_direction_vector, MF_MAX_K + 1,
											   cholesky_batch_avx512, cholesky_one_avx512,
											   cholesky_batch_scratch_avx512, 16);
static const MfKernel avx2_kernel = MF_KERNEL_TABLE(avx2, dot_vector, cg_step_vector,
											 cg_direction_vector, 512, cholesky_batch_avx2,
											 cholesky_one_avx2, cholesky_batch_scratch_avx2, 8);
#endif

bool
mf_kernel_dual_solve(const MfKernel *kernel, const float *other, int k, const int32 *cols,
					 int n, float penalty, bool bias, double bias_penalty_ratio, float *y,
					 const int32 *identity, float *transposed, float *gram, float *x)
{
	float		largest = 0;
	int			exponent = 0;

	/*
	 * z is about y / |o|^2 where the primal's X'y is about y |o|: ratings
	 * near the float range are scaled by a power of two (exactly), so that
	 * z stays in range wherever x does
	 */
	for (int e = 0; e < n; e++)
		largest = Max(largest, fabsf(y[e]));
	if (largest > 0x1p64f)
	{
		(void) frexpf(largest, &exponent);
		for (int e = 0; e < n; e++)
			y[e] = ldexpf(y[e], -exponent);
	}
	kernel->gather_transposed(other, k, cols, n, transposed);
	memset(gram, 0, sizeof(float) * n * n);
	for (int e = 0; e < n; e++)
		gram[e * n + e] = penalty;
	/* A = X X' + penalty I: the Gram matrix of X's k columns, the rows of transposed */
	kernel->gram(transposed, n, identity, k, NULL, NULL, false, gram, n, NULL, 0);
	if (!kernel->cholesky(gram, n, n))
		return false;
	kernel->cholesky_solve(gram, n, n, y);
	if (bias)
	{
		/*
		 * The bias's column of ones, weighted w = 1 / bias_penalty_ratio:
		 * (A + w 1 1')^-1 y = u - (1'u) / (1/w + 1'v) v with u = A^-1 y,
		 * v = A^-1 1 (Sherman-Morrison), and the bias w 1'z = (1'u) / (1/w
		 * + 1'v).  A stays as conditioned as without a bias; adding w to
		 * every element of A had swamped it where bias_lambda is far below
		 * lambda.  Written with 1/w, in double: w as a float had overflowed
		 * where lambda / bias_lambda passes 3.4e38 (inf / inf, and the row
		 * "could not be solved"); a ratio of 0 or infinity is the limit.
		 */
		float	   *v = transposed;
		double		sum_u = 0,
					sum_v = 0,
					bias;

		for (int e = 0; e < n; e++)
			v[e] = 1;
		kernel->cholesky_solve(gram, n, n, v);
		for (int e = 0; e < n; e++)
		{
			sum_u += y[e];
			sum_v += v[e];
		}
		bias = sum_u / (bias_penalty_ratio + sum_v);
		for (int e = 0; e < n; e++)
			y[e] -= (float) (bias * v[e]);
		x[k] = (float) bias;
	}
	/* x = X'z: the CG product's right-hand side with v = 0 */
	memset(transposed, 0, sizeof(float) * k);
	memset(x, 0, sizeof(float) * k);
	kernel->apply(other, k, cols, n, NULL, y, false, transposed, x, NULL);
	if (exponent != 0)
		for (int j = 0; j < (bias ? k + 1 : k); j++)
			x[j] = ldexpf(x[j], exponent);
	return true;
}

/*
 * MfCodeDots, three ways: each row's int8 codes widened to int16 and
 * multiplied in pairs into int32 lanes (vpmaddwd), the lanes added at the
 * row's end.  Integer sums are exact, so all three give the same.
 */
#ifdef MF_KERNEL_X86
static __attribute__((target("avx512f,avx512bw"))) void
code_dots_avx512(const int16 *u, const int8 *codes, int stride, int32 n, int32 *out)
{
	for (int32 i = 0; i < n; i++)
	{
		const int8 *row = codes + (Size) i * stride;
		__m512i		sum = _mm512_setzero_si512();

		for (int j = 0; j < stride; j += 32)
			sum = _mm512_add_epi32(sum,
								   _mm512_madd_epi16(_mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *) (row + j))),
													 _mm512_loadu_si512(u + j)));
		out[i] = _mm512_reduce_add_epi32(sum);
	}
}

static __attribute__((target("avx2"))) void
code_dots_avx2(const int16 *u, const int8 *codes, int stride, int32 n, int32 *out)
{
	for (int32 i = 0; i < n; i++)
	{
		const int8 *row = codes + (Size) i * stride;
		__m256i		sum = _mm256_setzero_si256();
		__m128i		half;

		for (int j = 0; j < stride; j += 16)
			sum = _mm256_add_epi32(sum,
								   _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *) (row + j))),
													 _mm256_loadu_si256((const __m256i *) (u + j))));
		half = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
		half = _mm_add_epi32(half, _mm_shuffle_epi32(half, _MM_SHUFFLE(1, 0, 3, 2)));
		half = _mm_add_epi32(half, _mm_shuffle_epi32(half, _MM_SHUFFLE(2, 3, 0, 1)));
		out[i] = _mm_cvtsi128_si32(half);
	}
}
#endif

static void
code_dots_portable(const int16 *u, const int8 *codes, int stride, int32 n, int32 *out)
{
	for (int32 i = 0; i < n; i++)
	{
		const int8 *row = codes + (Size) i * stride;
		int32		sum = 0;

		for (int j = 0; j < stride; j++)
			sum += (int32) u[j] * row[j];
		out[i] = sum;
	}
}

/* Whether the CPU (and the operating system) runs choice's instructions. */
static bool
cpu_runs(int choice)
{
#ifdef MF_KERNEL_X86
	__builtin_cpu_init();
	if (choice == MF_KERNEL_AVX512)
		return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
			__builtin_cpu_supports("fma");
	if (choice == MF_KERNEL_AVX2)
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
	if (choice == MF_KERNEL_AVX512 || choice == MF_KERNEL_AVX2)
		return false;
#endif
	return true;
}

const MfKernel *
mf_kernel(void)
{
	switch (mf_kernel_choice)
	{
		case MF_KERNEL_BLAS:
			return NULL;
		case MF_KERNEL_PORTABLE:
			return &portable_kernel;
#ifdef MF_KERNEL_X86
		case MF_KERNEL_AVX512:
			return &avx512_kernel;	/* the setting's check saw the CPU run it */
		case MF_KERNEL_AVX2:
			return &avx2_kernel;
		default:
			if (cpu_runs(MF_KERNEL_AVX512))
				return &avx512_kernel;
			if (cpu_runs(MF_KERNEL_AVX2))
				return &avx2_kernel;
			return &portable_kernel;
#else
		default:
			return &portable_kernel;
#endif
	}
}

MfCodeDots
mf_code_dots(void)
{
	const MfKernel *kernel = mf_kernel();

	if (kernel == &portable_kernel)
		return code_dots_portable;
#ifdef MF_KERNEL_X86
	/* 'blas' trains with BLAS; scoring takes the widest the CPU runs */
	if ((kernel == NULL || kernel == &avx512_kernel) && cpu_runs(MF_KERNEL_AVX512) &&
		__builtin_cpu_supports("avx512bw"))
		return code_dots_avx512;
	if (cpu_runs(MF_KERNEL_AVX2))
		return code_dots_avx2;
#endif
	return code_dots_portable;
}

/* mf_ext.kernel's check: an instruction set this CPU does not run is refused. */
static bool
check_kernel(int *newval, void **extra, GucSource source)
{
	if (!cpu_runs(*newval))
	{
		GUC_check_errdetail("This CPU does not run the %s instructions.",
							*newval == MF_KERNEL_AVX512 ? "AVX-512" : "AVX2 and FMA");
		GUC_check_errhint("Use 'auto', which picks the widest kernels the CPU runs, or 'portable'.");
		return false;
	}
	return true;
}

void
mf_kernel_define_setting(void)
{
	static const struct config_enum_entry options[] = {
		{"auto", MF_KERNEL_AUTO, false},
		{"avx512", MF_KERNEL_AVX512, false},
		{"avx2", MF_KERNEL_AVX2, false},
		{"portable", MF_KERNEL_PORTABLE, false},
		{"blas", MF_KERNEL_BLAS, false},
		{NULL, 0, false}
	};

	DefineCustomEnumVariable("mf_ext.kernel",
							 "Which kernels solve single-precision ALS rows: auto (the widest the CPU runs), avx512, avx2, portable, or blas (OpenBLAS's ssyrk and spotrf).",
							 "Every choice solves the same systems; their results differ only in rounding.  For tests and benchmarks.",
							 &mf_kernel_choice,
							 MF_KERNEL_AUTO, options,
							 PGC_USERSET, 0,
							 check_kernel, NULL, NULL);
}
