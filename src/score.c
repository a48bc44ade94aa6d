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
typedef int32 v4si __attribute__((vector_size(16)));

/* |x| of each lane of a v4df. */
#define V4DF_ABS(x) ((v4df) ((v4di) (x) & (v4di) {INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX}))

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MF_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#define MF_IF_DOT_AVX2(code) code
#include <immintrin.h>
#else
#define MF_SIMD_CLONES
#define MF_IF_DOT_AVX2(code)
#endif

/* Loops of doubles without branches, vectorised for the widest vectors the CPU has. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MF_SIMD_WIDE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MF_SIMD_WIDE_CLONES
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
 * Pre-scoring from 8-bit codes.  For a query row u (the user's, to rank
 * items; the item's, to rank users) with u_j = t c_j + d_j (its codes c_j
 * and scale t, made per call as the rows' are) and each ranked row v_i =
 * s_i q_i + e_i, exactly in real numbers
 *
 *	   u . v_i - t s_i (c . q_i) = u . e_i + d . (s_i q_i),
 *
 * so by Cauchy-Schwarz the pre-score t s_i (c . q_i) (c . q_i an exact
 * integer sum) is within |u| |e_i| + |d| |s_i q_i| of u . v_i; the exact
 * path's double sum of the products (each exact in double) is within
 * gamma_k |u| |v_i| of u . v_i, gamma_k = k eps / (1 - k eps), eps = 2^-53
 * (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., 2002,
 * section 3.1).  Rows whose pre-score plus those bounds cannot reach the
 * n-th best pre-score minus its bound cannot be among the n best, whatever
 * the exact scores; the rest are scored exactly.  The codes take a quarter
 * of the float factors' bytes, a row's scale and norms 20 more (a 1 MB
 * cache holds 10,000 items' codes at k = 64), their products are
 * integers, and on ML-10M-shaped models about 50 items of 10,677 are left
 * to score exactly for a top-10.
 */

int
mf_codes_stride(int k)
{
	return (k + MF_CODE_ALIGN - 1) / MF_CODE_ALIGN * MF_CODE_ALIGN;
}

/*
 * Codes of the k floats x (zero from k to stride) at scale *scale = the
 * largest |x_j| / 127 as a float, each code the nearest integer to x_j /
 * scale (all zero for a scale of 0); returns |x - scale q| and sets
 * *code_norm to |scale q|, both rounded up (the differences and products
 * are exact in double: see MfCodes).  x is finite (the cache refuses
 * stored factors that are not).  Written for int16 codes too (a query's):
 * CODE is the type.
 */
#define DEFINE_QUANTISE(name, CODE) \
static double \
quantise_##name(const float *x, int k, int stride, CODE *codes, float *scale, \
				double *code_norm) \
{ \
	float		largest = 0.0f; \
	double		errors = 0.0, \
				products = 0.0; \
\
	for (int j = 0; j < k; j++) \
		largest = Max(largest, fabsf(x[j])); \
	*scale = (float) (largest / 127.0); \
	for (int j = 0; j < stride; j++) \
	{ \
		double		code = 0.0; \
		double		error; \
\
		if (j < k && *scale > 0.0f) \
			code = Max(-127.0, Min(127.0, rint(x[j] / (double) *scale))); \
		codes[j] = (CODE) code; \
		if (j >= k) \
			continue; \
		error = x[j] - (double) *scale * code; \
		errors += error * error; \
		products += ((double) *scale * code) * ((double) *scale * code); \
	} \
	*code_norm = sqrt(products) * (1 + 0x1p-30); \
	return sqrt(errors) * (1 + 0x1p-30); \
}
DEFINE_QUANTISE(row, int8)
DEFINE_QUANTISE(query, int16)

/* gamma_k = k eps / (1 - k eps) for unit roundoff eps (k at most MF_MAX_K: k eps is small). */
static double
gamma_bound(int k, double eps)
{
	return k * eps / (1 - k * eps);
}

void
mf_codes_fill(const MfFactors *f, MfSide side, MfCodes *codes, int32 first, int32 count)
{
	double		gamma = gamma_bound(f->k, 0x1p-53);

	for (int32 r = first; r < first + count; r++)
	{
		const float *x = mf_factor_row(f, side, r);
		double		error = quantise_row(x, f->k, codes->stride,
										 codes->codes + (Size) r * codes->stride,
										 &codes->scales[r], &codes->code_norms[r]);
		double		norm = 0.0;

		for (int j = 0; j < f->k; j++)
			norm += (double) x[j] * x[j];
		codes->error_bounds[r] = (error + gamma * sqrt(norm)) * (1 + 0x1p-30);
	}
}

/*
 * Each row's pre-score less and plus its bound (above) into lower[] and
 * upper[]: the norms' products with room for their rounding, and a few
 * roundings of the sums (the pre-score's product and the addition of the
 * row's shift, its bias terms, here and in the exact path).  A row whose
 * shift is not finite gets NaN, which is never admitted below the floor
 * and always scored exactly.  shifted is a constant in each call, so that
 * the loop has no branch.
 */
static inline __attribute__((always_inline)) void
prescore_bounds_loop(const MfCodes *codes, int32 first, int32 end, const int32 *dots,
					 double query_scale, double u_norm, double d_norm, const double *shifts,
					 double *lower, double *upper, const bool shifted)
{
	int32		r = first;

	/* four rows at a time (the compiler leaves a loop of unknown length scalar) */
	for (; r + 4 <= end; r += 4)
	{
		v4sf		scales;
		v4si		row_dots;
		v4df		shift = {0, 0, 0, 0},
					score,
					dots_bound,
					bound,
					low,
					high;

		memcpy(&scales, codes->scales + r, sizeof(scales));
		memcpy(&row_dots, dots + r, sizeof(row_dots));
		if (shifted)
			memcpy(&shift, shifts + r, sizeof(shift));
		score = __builtin_convertvector(scales, v4df) * query_scale *
			__builtin_convertvector(row_dots, v4df) + shift;
		dots_bound = (u_norm * LOAD4_double(codes->error_bounds, r) +
					  d_norm * LOAD4_double(codes->code_norms, r)) * (1 + 0x1p-20);
		bound = dots_bound + 0x1p-50 * (V4DF_ABS(score) + V4DF_ABS(shift) + dots_bound);
		low = score - bound;
		high = score + bound;
		memcpy(lower + r, &low, sizeof(low));
		memcpy(upper + r, &high, sizeof(high));
	}
	for (; r < end; r++)
	{
		double		shift = shifted ? shifts[r] : 0.0;
		double		score = (double) codes->scales[r] * query_scale * dots[r] + shift;
		double		dots_bound = (u_norm * codes->error_bounds[r] +
								  d_norm * codes->code_norms[r]) * (1 + 0x1p-20);
		double		bound = dots_bound + 0x1p-50 * (fabs(score) + fabs(shift) + dots_bound);

		lower[r] = score - bound;
		upper[r] = score + bound;
	}
}

/* prescore_bounds_loop over rows first .. end - 1. */
MF_SIMD_WIDE_CLONES
static void
prescore_bounds(const MfCodes *codes, int32 first, int32 end, const int32 *dots,
				double query_scale, double u_norm, double d_norm, const double *shifts,
				double *lower, double *upper)
{
	if (shifts)
		prescore_bounds_loop(codes, first, end, dots, query_scale, u_norm, d_norm, shifts,
							 lower, upper, true);
	else
		prescore_bounds_loop(codes, first, end, dots, query_scale, u_norm, d_norm, NULL,
							 lower, upper, false);
}

/*
 * The first row from first on whose upper bound is not below floor (NaN
 * is not), or n_rows: four at a time, since most are below.
 */
MF_SIMD_WIDE_CLONES
static int32
next_candidate(const double *upper, int32 first, int32 n_rows, double floor)
{
	v4df		floors = {floor, floor, floor, floor};
	int32		r = first;

	for (; r + 4 <= n_rows; r += 4)
	{
		v4df		bounds;
		v4di		below;

		memcpy(&bounds, upper + r, sizeof(bounds));
		below = (v4di) (bounds < floors);
		if (!(below[0] & below[1] & below[2] & below[3]))
			break;
	}
	for (; r < n_rows; r++)
		if (!(upper[r] < floor))
			return r;
	return n_rows;
}

/* Rows pre-scored between two of the caller's looks for interrupts. */
#define MF_PRESCORE_BLOCK 65536

/*
 * The n best rows of side (those of a float model, with their codes) for
 * the query row u of the other side, each row's score u . v_r (as
 * dot_mixed gives it) plus shifts[r] (none when shifts is NULL): best[n],
 * best_scores[n], scores[r] exact for each row returned; returns how many.
 */
static int32
top_prescored(const MfFactors *f, MfSide side, const float *u, const MfCodes *codes,
			  MfCodeDots code_dots, const double *shifts, const bool *excluded,
			  const int64 *ids, int32 n, const MfScoreScratch *scratch, double *scores,
			  int32 *best, double *best_scores)
{
	int			k = f->k;
	int32		n_rows = side == MF_USERS ? f->n_users : f->n_items;
	double		u_norm = 0.0;
	double		d_norm;
	float		query_scale;
	double		code_norm;
	double		floor;			/* the n-th best of pre-score minus bound */
	MfTop		top;

	for (int j = 0; j < k; j++)
		u_norm += (double) u[j] * u[j];
	u_norm = sqrt(u_norm) * (1 + 0x1p-30);
	d_norm = quantise_query(u, k, codes->stride, scratch->query_codes, &query_scale, &code_norm);

	/*
	 * The n best pre-scores less their bounds; scores[] keeps each row's
	 * pre-score plus its bound.  (Fewer than n + 1 rows, or an infinite
	 * bound, leave the floor at -inf: every row is then scored exactly.)
	 */
	for (int32 first = 0; first < n_rows; first += MF_PRESCORE_BLOCK)
	{
		int32		end = Min(n_rows, first + MF_PRESCORE_BLOCK);

		if (scratch->interrupts)
			scratch->interrupts();
		code_dots(scratch->query_codes, codes->codes + (Size) first * codes->stride,
				  codes->stride, end - first, scratch->dots + first);
		prescore_bounds(codes, first, end, scratch->dots, query_scale, u_norm, d_norm, shifts,
						scratch->lower, scores);
	}
	mf_top_init(&top, n, ids, best, best_scores);
	mf_top_offer_row(&top, scratch->lower, false, excluded, n_rows);
	floor = top.bound;

	/* exact scores for the rows that can reach the floor; the n best of them */
	for (int j = 0; j < k; j++)
		scratch->wide[j] = u[j];
	mf_top_init(&top, n, ids, best, best_scores);
	for (int32 r = next_candidate(scores, 0, n_rows, floor); r < n_rows;
		 r = next_candidate(scores, r + 1, n_rows, floor))
	{
		if (excluded != NULL && excluded[r])
			continue;
		scores[r] = dot_mixed(scratch->wide, mf_factor_row(f, side, r), k);
		if (shifts)
			scores[r] = scores[r] + shifts[r];
		if (mf_top_admits(&top, scores[r]))
			mf_top_insert(&top, scores[r], r);
	}
	return mf_top_finish(&top);
}

int32
mf_top_scored_items(const MfFactors *f, const void *u, double base, const MfCodes *item_codes,
					MfCodeDots code_dots, const bool *excluded, const int64 *ids, int32 n,
					const MfScoreScratch *scratch, double *scores, int32 *best,
					double *best_scores)
{
	if (u != NULL && item_codes != NULL)
	{
		/* each item's bias terms, added as mf_score_items adds them */
		if (f->biases)
			for (int32 item = 0; item < f->n_items; item++)
				scratch->shifts[item] = base + f->item_bias[item];
		return top_prescored(f, MF_ITEMS, u, item_codes, code_dots,
							 f->biases ? scratch->shifts : NULL, excluded, ids, n, scratch,
							 scores, best, best_scores);
	}
	/* no user factors, or double ones: score every item exactly */
	mf_score_items(f, u, base, excluded, scratch->wide, scores);
	return mf_select_top(scores, ids, excluded, f->n_items, n, best, best_scores);
}

int32
mf_top_scored_users(const MfFactors *f, int32 item, const MfCodes *user_codes,
					MfCodeDots code_dots, const bool *excluded, const int64 *ids, int32 n,
					const MfScoreScratch *scratch, double *scores, int32 *best,
					double *best_scores)
{
	/* each user's bias terms with the item's, added as mf_score adds them */
	if (f->biases)
		for (int32 user = 0; user < f->n_users; user++)
			scratch->shifts[user] = mf_user_base(f, user) + item_bias(f, item);
	return top_prescored(f, MF_USERS, mf_factor_row(f, MF_ITEMS, item), user_codes, code_dots,
						 f->biases ? scratch->shifts : NULL, excluded, ids, n, scratch, scores,
						 best, best_scores);
}
