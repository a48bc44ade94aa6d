/*-------------------------------------------------------------------------
 *
 * score.c
 *	  Scoring and top-n selection (score.h): plain C, safe in worker
 *	  threads.
 *
 *-------------------------------------------------------------------------
 */
#include "score.h"

/*
 * Scoring.  u . v is accumulated in double in sixteen lanes (four vectors
 * of four, so that four additions are in flight at once): lane i sums the
 * products at positions i mod 16, then the lanes are added in a fixed
 * order.  Written with vector types, the compiler emits SIMD code; on
 * x86-64 an AVX2 version, chosen at run time, loads and widens four floats
 * in one instruction (GCC 12 widens vector types in halves).  AVX2 does
 * not bring FMA along, so every version rounds the same way and a score is
 * the same on every x86-64 machine.  Products of floats are exact in
 * double, so a model with float factors scores as the double dot product
 * of its stored factors would, up to the rounding of the sum.
 */
typedef double v4df __attribute__((vector_size(32)));
typedef float v4sf __attribute__((vector_size(16)));
typedef int64 v4di __attribute__((vector_size(32)));
typedef float v8sf __attribute__((vector_size(32)));

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MF_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#define MF_IF_DOT_AVX2(code) code
#include <immintrin.h>
#else
#define MF_SIMD_CLONES
#define MF_IF_DOT_AVX2(code)
#endif

/* Four numbers from u + j (float or double) as doubles. */
#define LOAD4_single(p, j) \
	({ v4sf f_; memcpy(&f_, (p) + (j), sizeof(f_)); __builtin_convertvector(f_, v4df); })
#define LOAD4_double(p, j) \
	({ v4df d_; memcpy(&d_, (p) + (j), sizeof(d_)); d_; })
#define LOAD4_single_avx2(p, j)	((v4df) _mm256_cvtps_pd(_mm_loadu_ps((p) + (j))))
#define LOAD4_double_avx2(p, j)	((v4df) _mm256_loadu_pd((p) + (j)))

/* dot_NAME_VERSION(u, v, k): the sum above, with ATTRIBUTES and loads ULOAD, VLOAD. */
#define DEFINE_DOT(name, version, ATTRIBUTES, UREAL, ULOAD, VREAL, VLOAD) \
ATTRIBUTES \
static double \
dot_##name##_##version(const UREAL *u, const VREAL *v, int k) \
{ \
	v4df		s0 = {0, 0, 0, 0}, s1 = s0, s2 = s0, s3 = s0, sum; \
	double		total; \
	int			j = 0; \
\
	for (; j + 16 <= k; j += 16) \
	{ \
		s0 += ULOAD(u, j) * VLOAD(v, j); \
		s1 += ULOAD(u, j + 4) * VLOAD(v, j + 4); \
		s2 += ULOAD(u, j + 8) * VLOAD(v, j + 8); \
		s3 += ULOAD(u, j + 12) * VLOAD(v, j + 12); \
	} \
	for (; j + 4 <= k; j += 4) \
		s0 += ULOAD(u, j) * VLOAD(v, j); \
	sum = (s0 + s1) + (s2 + s3); \
	total = (sum[0] + sum[1]) + (sum[2] + sum[3]); \
	for (; j < k; j++) \
		total += (double) u[j] * (double) v[j]; \
	return total; \
}

/*
 * dot_NAME(u, v, k): the AVX2 version where the CPU has it, else the
 * portable one.
 */
#define DEFINE_DOT_DISPATCH(name, UREAL, ULOAD, VREAL, VLOAD) \
DEFINE_DOT(name, portable, , UREAL, ULOAD, VREAL, VLOAD) \
MF_IF_DOT_AVX2(DEFINE_DOT(name, avx2, __attribute__((target("avx2"))), \
						  UREAL, ULOAD##_avx2, VREAL, VLOAD##_avx2)) \
static inline double \
dot_##name(const UREAL *u, const VREAL *v, int k) \
{ \
	MF_IF_DOT_AVX2(if (__builtin_cpu_supports("avx2")) return dot_##name##_avx2(u, v, k);) \
	return dot_##name##_portable(u, v, k); \
}

DEFINE_DOT_DISPATCH(single, float, LOAD4_single, float, LOAD4_single)
DEFINE_DOT_DISPATCH(double, double, LOAD4_double, double, LOAD4_double)
/* a double u against float v: as dot_single once u is widened, bit for bit */
DEFINE_DOT_DISPATCH(mixed, double, LOAD4_double, float, LOAD4_single)

double
mf_row_dot(const MfFactors *f, const void *a, const void *b)
{
	return f->single ? dot_single(a, b, f->k) : dot_double(a, b, f->k);
}

double
mf_user_base(const MfFactors *f, int32 user)
{
	return f->mean + (user >= 0 ? f->user_bias[user] : 0.0);
}

static inline double
item_bias(const MfFactors *f, int32 item)
{
	return item >= 0 ? f->item_bias[item] : 0.0;
}

double
mf_score(const MfFactors *f, int32 user, int32 item)
{
	double		dot = 0.0;

	if (user >= 0 && item >= 0)
		dot = mf_row_dot(f, mf_factor_row(f, MF_USERS, user), mf_factor_row(f, MF_ITEMS, item));
	if (!f->biases)
		return dot;
	return dot + (mf_user_base(f, user) + item_bias(f, item));
}

double
mf_prediction(const MfFactors *f, int32 user, int32 item)
{
	double		score = mf_score(f, user, item);

	return f->clip ? Min(Max(score, f->rating_min), f->rating_max) : score;
}

void
mf_score_items(const MfFactors *f, const void *u, double base, const bool *excluded,
			   double *wide, double *scores)
{
	int			k = f->k;
	bool		widened = u != NULL && f->single;

	/* floats widened once: dot_mixed of the widened row is dot_single, exactly */
	if (widened)
		for (int j = 0; j < k; j++)
			wide[j] = ((const float *) u)[j];
	for (int32 item = 0; item < f->n_items; item++)
	{
		double		dot = 0.0;

		if (excluded != NULL && excluded[item])
		{
			scores[item] = -INFINITY;	/* never chosen; read by the vector pre-test */
			continue;
		}
		if (u != NULL)
			dot = widened ? dot_mixed(wide, mf_factor_row(f, MF_ITEMS, item), k)
				: dot_double(u, mf_factor_row(f, MF_ITEMS, item), k);
		scores[item] = f->biases ? dot + (base + f->item_bias[item]) : dot;
	}
}

void
mf_row_norms(const MfFactors *f, MfSide side, int32 first, int32 count, double *norms)
{
	for (int32 r = first; r < first + count; r++)
	{
		const void *row = mf_factor_row(f, side, r);

		norms[r] = sqrt(mf_row_dot(f, row, row));
	}
}

/* Candidate ordering: whether (score a, item a) ranks below (score b, item b). */
static inline bool
ranks_below(const MfTop *top, double score_a, int32 a, double score_b, int32 b)
{
	return score_a < score_b || (score_a == score_b && top->ids[a] > top->ids[b]);
}

/* Swaps heap entries a and b. */
static inline void
top_swap(MfTop *top, int32 a, int32 b)
{
	int32		item = top->items[a];
	double		score = top->scores[a];

	top->items[a] = top->items[b];
	top->scores[a] = top->scores[b];
	top->items[b] = item;
	top->scores[b] = score;
}

/* Restores the heap property below position at of the first size entries. */
static void
top_sift_down(MfTop *top, int32 size, int32 at)
{
	for (;;)
	{
		int32		worst = at;
		int32		left = 2 * at + 1;
		int32		right = left + 1;

		if (left < size && ranks_below(top, top->scores[left], top->items[left],
									   top->scores[worst], top->items[worst]))
			worst = left;
		if (right < size && ranks_below(top, top->scores[right], top->items[right],
										top->scores[worst], top->items[worst]))
			worst = right;
		if (worst == at)
			return;
		top_swap(top, at, worst);
		at = worst;
	}
}

void
mf_top_init(MfTop *top, int32 n, const int64 *ids, int32 *items, double *scores)
{
	top->n = n;
	top->size = 0;
	top->bound = n > 0 ? -INFINITY : INFINITY;
	top->ids = ids;
	top->items = items;
	top->scores = scores;
}

void
mf_top_insert(MfTop *top, double score, int32 item)
{
	if (top->size < top->n)
	{
		/* grow: append, then sift up */
		int32		at = top->size++;

		top->items[at] = item;
		top->scores[at] = score;
		while (at > 0 && ranks_below(top, top->scores[at], top->items[at],
									 top->scores[(at - 1) / 2], top->items[(at - 1) / 2]))
		{
			top_swap(top, at, (at - 1) / 2);
			at = (at - 1) / 2;
		}
	}
	else if (ranks_below(top, top->scores[0], top->items[0], score, item))
	{
		top->items[0] = item;
		top->scores[0] = score;
		top_sift_down(top, top->size, 0);
	}
	else
		return;
	if (top->size == top->n)
		top->bound = top->scores[0];
}

int32
mf_top_finish(MfTop *top)
{
	/* heap sort in place: repeatedly move the worst to the end */
	for (int32 end = top->size - 1; end > 0; end--)
	{
		top_swap(top, 0, end);
		top_sift_down(top, end, 0);
	}
	return top->size;
}

/*
 * Offers row[i] as the score of item i, for i below n_items, unless
 * excluded[i] (excluded may be NULL).  Once the selection is
 * full, most items score below its bound: sixteen at a time are tested
 * against it with vector compares, and only the contenders are offered
 * one by one.  Floats are compared with the bound rounded down to a
 * float, which lets every float through that is at or above the bound.
 */
#define DEFINE_OFFER_ROW(name, REAL, VECTOR, LANES, BOUND) \
MF_SIMD_CLONES \
static void \
offer_row_##name(MfTop *top, const REAL *row, const bool *excluded, \
				 int32 n_items) \
{ \
	int32		i = 0; \
	VECTOR		bound; \
\
	for (int lane = 0; lane < LANES; lane++) \
		bound[lane] = BOUND(top->bound); \
	for (; i + 16 <= n_items; i += 16) \
	{ \
		VECTOR		v; \
		v4di		above = {0}; \
\
		for (int q = 0; q < 16; q += LANES) \
		{ \
			memcpy(&v, row + i + q, sizeof(v)); \
			above |= (v4di) (v >= bound); \
		} \
		if (((above[0] | above[1]) | (above[2] | above[3])) == 0) \
			continue; \
		for (int32 j = i; j < i + 16; j++) \
			if (mf_top_admits(top, row[j]) && !(excluded && excluded[j])) \
				mf_top_insert(top, row[j], j); \
		for (int lane = 0; lane < LANES; lane++) \
			bound[lane] = BOUND(top->bound); \
	} \
	for (; i < n_items; i++) \
		if (mf_top_admits(top, row[i]) && !(excluded && excluded[i])) \
			mf_top_insert(top, row[i], i); \
}

/* The largest float at or below x (-inf for -inf, NaN for NaN). */
static inline float
float_at_or_below(double x)
{
	float		f = (float) x;

	return (double) f > x ? nextafterf(f, -INFINITY) : f;
}

static inline double
double_bound(double x)
{
	return x;
}

DEFINE_OFFER_ROW(single, float, v8sf, 8, float_at_or_below)
DEFINE_OFFER_ROW(double, double, v4df, 4, double_bound)

void
mf_top_offer_row(MfTop *top, const void *row, bool single, const bool *excluded,
				 int32 n_items)
{
	if (single)
		offer_row_single(top, row, excluded, n_items);
	else
		offer_row_double(top, row, excluded, n_items);
}

int32
mf_select_top(const double *scores, const int64 *ids, const bool *excluded,
			  int32 n_items, int32 n, int32 *best, double *best_scores)
{
	MfTop		top;

	mf_top_init(&top, n, ids, best, best_scores);
	mf_top_offer_row(&top, scores, false, excluded, n_items);
	return mf_top_finish(&top);
}

/*
 * Pre-scoring.  A float dot product computed in float, in any order and
 * with or without fused multiply-adds, is within gamma_k |u| |v| of the
 * exact one, gamma_k = k eps / (1 - k eps), eps = 2^-24 (Higham, Accuracy
 * and Stability of Numerical Algorithms, 2nd ed., 2002, section 3.1, with
 * Cauchy-Schwarz for sum |u_j v_j|); the exact path's double sum is within
 * the same bound with eps = 2^-53.  Items whose pre-score plus that bound
 * cannot reach the n-th best pre-score minus its bound cannot be among the
 * n best, whatever the exact scores; the rest are scored exactly.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MF_PRESCORE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MF_PRESCORE_CLONES
#endif

/*
 * The pre-scores u . v_i of n_items rows of k floats (row-major) in float
 * arithmetic, sixteen lanes, into out[] (as doubles): one call for all the
 * items, so that the instruction set is dispatched once.
 */
MF_PRESCORE_CLONES
static void
prescore_rows(const float *u, const float *rows, int k, int32 n_items, double *out)
{
	for (int32 item = 0; item < n_items; item++)
	{
		const float *v = rows + (Size) item * k;
		v8sf		s0 = {0}, s1 = {0};
		float		total;
		int			j = 0;

		for (; j + 16 <= k; j += 16)
		{
			v8sf		u0, u1, v0, v1;

			memcpy(&u0, u + j, sizeof(u0));
			memcpy(&u1, u + j + 8, sizeof(u1));
			memcpy(&v0, v + j, sizeof(v0));
			memcpy(&v1, v + j + 8, sizeof(v1));
			s0 += u0 * v0;
			s1 += u1 * v1;
		}
		s0 += s1;
		total = ((s0[0] + s0[4]) + (s0[1] + s0[5])) + ((s0[2] + s0[6]) + (s0[3] + s0[7]));
		for (; j < k; j++)
			total += u[j] * v[j];
		out[item] = total;
	}
}

/* gamma_k = k eps / (1 - k eps) for unit roundoff eps (k at most MF_MAX_K: k eps is small). */
static double
gamma_bound(int k, double eps)
{
	return k * eps / (1 - k * eps);
}

/*
 * How far an item's pre-score (score, whose bias terms come to shift) can
 * be from its exact score: gamma |u| |v| for the dot products (with room
 * for the rounding of the norms), a few roundings of the sums, and what
 * products in float's subnormal range lose; +inf for a pre-score that
 * overflowed float.
 */
static inline double
prescore_bound(double gamma, int k, double u_norm, double v_norm, double score, double shift)
{
	double		dots = gamma * u_norm * v_norm * (1 + 0x1p-20);

	if (!isfinite(score))
		return INFINITY;
	return dots + 0x1p-50 * (fabs(score) + fabs(shift) + dots) + k * 0x1p-148;
}

int32
mf_top_scored_items(const MfFactors *f, const void *u, double base, const double *item_norms,
					const bool *excluded, const int64 *ids, int32 n,
					double *wide, double *scores, int32 *best, double *best_scores)
{
	int			k = f->k;
	const float *uf = u;
	double		gamma = gamma_bound(k, 0x1p-24) + gamma_bound(k, 0x1p-53);
	double		u_norm = 0.0;
	double		floor;			/* the n-th best of pre-score minus bound */
	MfTop		top;

	if (u == NULL || !f->single)
	{
		/* no user factors, or double ones: score every item exactly */
		mf_score_items(f, u, base, excluded, wide, scores);
		return mf_select_top(scores, ids, excluded, f->n_items, n, best, best_scores);
	}
	for (int j = 0; j < k; j++)
		u_norm += (double) uf[j] * uf[j];
	u_norm = sqrt(u_norm);

	/*
	 * The n best pre-scores less their bounds; scores[] keeps each item's
	 * pre-score plus its bound.  (Fewer than n + 1 items, or an infinite
	 * bound, leave the floor at -inf: every item is then scored exactly.)
	 */
	prescore_rows(uf, f->item_factors, k, f->n_items, scores);
	mf_top_init(&top, n, ids, best, best_scores);
	for (int32 item = 0; item < f->n_items; item++)
	{
		double		shift = f->biases ? base + f->item_bias[item] : 0.0;
		double		score = scores[item] + shift;
		double		bound = prescore_bound(gamma, k, u_norm, item_norms[item], score, shift);

		if (excluded != NULL && excluded[item])
			continue;
		if (mf_top_admits(&top, score - bound))
			mf_top_insert(&top, score - bound, item);
		scores[item] = score + bound;
	}
	floor = top.bound;

	/* exact scores for the items that can reach the floor; the n best of them */
	for (int j = 0; j < k; j++)
		wide[j] = uf[j];
	mf_top_init(&top, n, ids, best, best_scores);
	for (int32 item = 0; item < f->n_items; item++)
	{
		if ((excluded != NULL && excluded[item]) || scores[item] < floor)
			continue;
		scores[item] = dot_mixed(wide, mf_factor_row(f, MF_ITEMS, item), k);
		if (f->biases)
			scores[item] = scores[item] + (base + f->item_bias[item]);
		if (mf_top_admits(&top, scores[item]))
			mf_top_insert(&top, scores[item], item);
	}
	return mf_top_finish(&top);
}
