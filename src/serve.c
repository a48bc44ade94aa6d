/*-------------------------------------------------------------------------
 *
 * serve.c
 *	  The answering functions: mf_predict (one score) and mf_recommend (the
 *	  n best items for a user), each by model id and by model name.  Factors
 *	  come from the backend cache (cache.c).
 *
 *-------------------------------------------------------------------------
 */
#include "mf_ext.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(mf_predict);
PG_FUNCTION_INFO_V1(mf_predict_by_name);
PG_FUNCTION_INFO_V1(mf_recommend);
PG_FUNCTION_INFO_V1(mf_recommend_by_name);

/*
 * Scoring.  u . v is accumulated in double in sixteen lanes (four vectors
 * of four, so that four additions are in flight at once): lane i sums the
 * products at positions i mod 16, then the lanes are added in a fixed
 * order.  Written with vector types, the compiler emits SIMD code; with
 * target_clones the loop also gets an AVX2 version, chosen at load time.
 * AVX2 does not bring FMA along, so every version rounds the same way and
 * a score is the same on every x86-64 machine.  Products of floats are
 * exact in double, so a model with float factors scores as the double dot
 * product of its stored factors would, up to the rounding of the sum.
 */
typedef double v4df __attribute__((vector_size(32)));
typedef float v4sf __attribute__((vector_size(16)));

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MF_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define MF_SIMD_CLONES
#endif

/* Four numbers from u + j (float or double) as doubles. */
#define LOAD4_single(p, j) \
	({ v4sf f_; memcpy(&f_, (p) + (j), sizeof(f_)); __builtin_convertvector(f_, v4df); })
#define LOAD4_double(p, j) \
	({ v4df d_; memcpy(&d_, (p) + (j), sizeof(d_)); d_; })

#define DEFINE_DOT(name, UREAL, ULOAD, VREAL, VLOAD) \
MF_SIMD_CLONES \
static double \
dot_##name(const UREAL *u, const VREAL *v, int k) \
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

DEFINE_DOT(single, float, LOAD4_single, float, LOAD4_single)
DEFINE_DOT(double, double, LOAD4_double, double, LOAD4_double)
/* a double u against float v: as dot_single once u is widened, bit for bit */
DEFINE_DOT(mixed, double, LOAD4_double, float, LOAD4_single)

/*
 * The bias terms of a prediction: (mean + user bias) + item bias, added in
 * that order everywhere, so that every path to a score rounds alike.
 */
static inline double
user_base(const MfFactors *f, int32 user)
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
	{
		Size		u = (Size) user * f->k;
		Size		v = (Size) item * f->k;

		if (f->single)
			dot = dot_single((const float *) f->user_factors + u,
							 (const float *) f->item_factors + v, f->k);
		else
			dot = dot_double((const double *) f->user_factors + u,
							 (const double *) f->item_factors + v, f->k);
	}
	if (!f->biases)
		return dot;
	return dot + (user_base(f, user) + item_bias(f, item));
}

/*
 * The prediction for the given ids.  A user or item the model lacks is
 * NULL without biases; with biases it is scored from what is known.
 */
static Datum
predict(FunctionCallInfo fcinfo, MfModel *model)
{
	int32		user = mf_id_index(model->user_map, PG_GETARG_INT64(1));
	int32		item = mf_id_index(model->item_map, PG_GETARG_INT64(2));

	if ((user < 0 || item < 0) && !model->factors.biases)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(mf_score(&model->factors, user, item));
}

Datum
mf_predict(PG_FUNCTION_ARGS)
{
	return predict(fcinfo, mf_cache_model_by_id(fcinfo, PG_GETARG_INT32(0)));
}

Datum
mf_predict_by_name(PG_FUNCTION_ARGS)
{
	return predict(fcinfo, mf_cache_model_by_name(fcinfo, PG_GETARG_TEXT_PP(0)));
}

/*
 * The user's score for every item (excluded ones are skipped); user -1 is
 * a user the model lacks (biases only).  Floats are widened once for the
 * user's row; each score equals mf_score() exactly.
 */
static double *
score_items(const MfFactors *f, int32 user, const bool *excluded)
{
	double	   *scores = mf_alloc_array(CurrentMemoryContext, f->n_items,
										sizeof(double));
	int			k = f->k;

	if (user < 0)
	{
		for (int32 item = 0; item < f->n_items; item++)
			scores[item] = mf_score(f, user, item);
	}
	else if (f->single)
	{
		const float *u = (const float *) f->user_factors + (Size) user * k;
		const float *v = f->item_factors;
		double	   *wide = palloc(sizeof(double) * Max(k, 1));
		double		base = f->biases ? user_base(f, user) : 0.0;

		for (int j = 0; j < k; j++)
			wide[j] = u[j];
		for (int32 item = 0; item < f->n_items; item++)
			if (excluded == NULL || !excluded[item])
			{
				double		dot = dot_mixed(wide, v + (Size) item * k, k);

				scores[item] = f->biases ? dot + (base + f->item_bias[item]) : dot;
			}
		pfree(wide);
	}
	else
	{
		for (int32 item = 0; item < f->n_items; item++)
			if (excluded == NULL || !excluded[item])
				scores[item] = mf_score(f, user, item);
	}
	return scores;
}

/* Candidate ordering: higher score first, then lower item id. */
static inline bool
ranks_below(const double *scores, const int64 *ids, int32 a, int32 b)
{
	return scores[a] < scores[b] || (scores[a] == scores[b] && ids[a] > ids[b]);
}

/* Restores the heap property below position at (worst candidate on top). */
static void
heap_sift_down(int32 *heap, int32 size, int32 at, const double *scores,
			   const int64 *ids)
{
	for (;;)
	{
		int32		worst = at;
		int32		left = 2 * at + 1;
		int32		right = left + 1;
		int32		swap;

		if (left < size && ranks_below(scores, ids, heap[left], heap[worst]))
			worst = left;
		if (right < size && ranks_below(scores, ids, heap[right], heap[worst]))
			worst = right;
		if (worst == at)
			return;
		swap = heap[at];
		heap[at] = heap[worst];
		heap[worst] = swap;
		at = worst;
	}
}

/*
 * Chooses the n best of the items not excluded; writes them best first into
 * best[] and returns how many there are.  A bounded heap keeps the current
 * n best with the worst on top: O(n_items log n).
 */
static int32
select_top(const double *scores, const int64 *ids, const bool *excluded,
		   int32 n_items, int32 n, int32 *best)
{
	int32		size = 0;

	for (int32 i = 0; i < n_items; i++)
	{
		if (excluded && excluded[i])
			continue;
		if (size < n)
		{
			/* grow: append, then sift up */
			int32		at = size++;

			best[at] = i;
			while (at > 0 && ranks_below(scores, ids, best[at], best[(at - 1) / 2]))
			{
				int32		parent = (at - 1) / 2;
				int32		swap = best[at];

				best[at] = best[parent];
				best[parent] = swap;
				at = parent;
			}
		}
		else if (ranks_below(scores, ids, best[0], i))
		{
			best[0] = i;
			heap_sift_down(best, size, 0, scores, ids);
		}
	}

	/* heap sort in place: repeatedly move the worst to the end */
	for (int32 end = size - 1; end > 0; end--)
	{
		int32		swap = best[0];

		best[0] = best[end];
		best[end] = swap;
		heap_sift_down(best, end, 0, scores, ids);
	}
	return size;
}

/*
 * Marks the items the user rated in the training data, from the
 * rated_items array stored with the user's factors.
 */
static bool *
rated_items_mask(FunctionCallInfo fcinfo, const MfModel *model, int64 user_id)
{
	static MfSavedPlan rated_items = {NULL, InvalidOid, ""};
	int32		n_items = model->factors.n_items;
	bool	   *mask = mf_alloc_array(CurrentMemoryContext, n_items, sizeof(bool));
	Oid			argtypes[2] = {INT4OID, INT8OID};
	Datum		args[2] = {Int32GetDatum(model->model_id), Int64GetDatum(user_id)};
	SPIPlanPtr	plan;

	memset(mask, 0, sizeof(bool) * n_items);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = mf_saved_plan(&rated_items, get_func_namespace(fcinfo->flinfo->fn_oid),
						 "SELECT rated_items FROM %s.mf_user_factors WHERE model_id = $1 AND user_id = $2",
						 2, argtypes);
	if (SPI_execute_plan(plan, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the rated items of user " INT64_FORMAT, user_id);
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		value = SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			ArrayType  *rated = DatumGetArrayTypeP(value);
			int			n_rated = ArrayGetNItems(ARR_NDIM(rated), ARR_DIMS(rated));
			const int64 *ids = (const int64 *) ARR_DATA_PTR(rated);

			if (ARR_ELEMTYPE(rated) != INT8OID || ARR_HASNULL(rated))
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("rated_items of user " INT64_FORMAT " in model %d is not a bigint[] without NULLs",
								user_id, model->model_id),
						 errhint("Retrain the model with mf_train.")));
			for (int r = 0; r < n_rated; r++)
			{
				int32		item = mf_id_index(model->item_map, ids[r]);

				if (item >= 0)
					mask[item] = true;
			}
		}
	}
	SPI_finish();
	return mask;
}

int32
mf_top_items(FunctionCallInfo fcinfo, const MfModel *model, int32 user,
			 int64 user_id, int32 n, bool exclude_rated, int32 *best,
			 double **scores)
{
	const MfFactors *f = &model->factors;
	bool	   *excluded = NULL;
	int32		found;

	if (exclude_rated && user >= 0)
		excluded = rated_items_mask(fcinfo, model, user_id);
	*scores = score_items(f, user, excluded);
	found = select_top(*scores, model->item_ids, excluded, f->n_items,
					   Min(n, f->n_items), best);
	if (excluded)
		pfree(excluded);
	return found;
}

static Datum
recommend(FunctionCallInfo fcinfo, MfModel *model)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		user_id;
	int32		n;
	int32		user;
	double	   *scores;
	int32	   *best;
	int32		n_best;

	if (PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", PG_ARGISNULL(2) ? "n" : "exclude_rated"),
				 errhint("Omit it to use the default, or pass a value.")));
	n = PG_GETARG_INT32(2);
	if (n < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("n must be at least 1, got %d", n),
				 errhint("n is how many items to recommend.")));

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(1))
		return (Datum) 0;		/* no user: no rows, as for an unknown one */
	user_id = PG_GETARG_INT64(1);
	user = mf_id_index(model->user_map, user_id);
	if (user < 0 && !model->factors.biases)
		return (Datum) 0;

	best = mf_alloc_array(CurrentMemoryContext, Min(n, model->factors.n_items),
						  sizeof(int32));
	n_best = mf_top_items(fcinfo, model, user, user_id, n, PG_GETARG_BOOL(3),
						  best, &scores);
	for (int32 r = 0; r < n_best; r++)
	{
		Datum		values[2] = {Int64GetDatum(model->item_ids[best[r]]),
		Float8GetDatum(scores[best[r]])};
		bool		nulls[2] = {false, false};

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

void
mf_require_model_argument(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model must not be NULL"),
				 errhint("Pass a model_id or name from mf_models.")));
}

Datum
mf_recommend(PG_FUNCTION_ARGS)
{
	mf_require_model_argument(fcinfo);
	return recommend(fcinfo, mf_cache_model_by_id(fcinfo, PG_GETARG_INT32(0)));
}

Datum
mf_recommend_by_name(PG_FUNCTION_ARGS)
{
	mf_require_model_argument(fcinfo);
	return recommend(fcinfo, mf_cache_model_by_name(fcinfo, PG_GETARG_TEXT_PP(0)));
}
