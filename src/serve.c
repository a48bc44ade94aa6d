/*-------------------------------------------------------------------------
 *
 * serve.c
 *	  The answering functions: mf_predict (one score), mf_recommend (the n
 *	  best items for a user) and mf_similar_items / mf_similar_users (the n
 *	  nearest by cosine), each by model id and by model name.  Factors come
 *	  from the backend cache (cache.c).
 *
 *-------------------------------------------------------------------------
 */
#include "mf_ext.h"

#include <errno.h>
#include <math.h>

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
PG_FUNCTION_INFO_V1(mf_predict_key);
PG_FUNCTION_INFO_V1(mf_predict_key_by_name);
PG_FUNCTION_INFO_V1(mf_recommend_key);
PG_FUNCTION_INFO_V1(mf_recommend_key_by_name);
PG_FUNCTION_INFO_V1(mf_fold_in);
PG_FUNCTION_INFO_V1(mf_fold_in_by_name);
PG_FUNCTION_INFO_V1(mf_recommend_folded);
PG_FUNCTION_INFO_V1(mf_recommend_folded_by_name);
PG_FUNCTION_INFO_V1(mf_fold_in_keys);
PG_FUNCTION_INFO_V1(mf_fold_in_keys_by_name);
PG_FUNCTION_INFO_V1(mf_recommend_keys);
PG_FUNCTION_INFO_V1(mf_recommend_keys_by_name);
PG_FUNCTION_INFO_V1(mf_similar_items);
PG_FUNCTION_INFO_V1(mf_similar_items_by_name);
PG_FUNCTION_INFO_V1(mf_similar_users);
PG_FUNCTION_INFO_V1(mf_similar_users_by_name);

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
typedef int64 v4di __attribute__((vector_size(32)));
typedef float v8sf __attribute__((vector_size(32)));

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

/* Factor row index of one side. */
static const void *
side_row(const MfFactors *f, bool users, int32 index)
{
	const char *base = users ? f->user_factors : f->item_factors;

	return base + (Size) index * f->k * (f->single ? sizeof(float) : sizeof(double));
}

/* The dot product of two factor rows of a model. */
static double
row_dot(const MfFactors *f, const void *a, const void *b)
{
	return f->single ? dot_single(a, b, f->k) : dot_double(a, b, f->k);
}

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
		dot = row_dot(f, side_row(f, true, user), side_row(f, false, item));
	if (!f->biases)
		return dot;
	return dot + (user_base(f, user) + item_bias(f, item));
}

/*
 * The functions that take integer ids refuse a model whose ids are text
 * keys (trained on a text, uuid, ... column): its integer ids are only
 * positions, which the caller cannot know.
 */
static void
require_integer_model(const MfModel *model, const char *function)
{
	if (model->user_keys || model->item_keys)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("model \"%s\" identifies its %s by text keys, not integers",
						model->name, model->user_keys ? "users" : "items"),
				 errhint("Pass the ids as text to mf_predict or mf_recommend, for example %s(model, user_id::text, ...); %s with integer ids needs a model trained on integer ids.",
						 strcmp(function, "mf_predict") == 0 ? "mf_predict" : "mf_recommend",
						 function)));
}

/*
 * The prediction for the given ids.  A user or item the model lacks is
 * NULL without biases; with biases it is scored from what is known.
 */
static Datum
predict(FunctionCallInfo fcinfo, MfModel *model)
{
	int32		user;
	int32		item;

	require_integer_model(model, "mf_predict");
	user = mf_id_index(model->user_map, PG_GETARG_INT64(1));
	item = mf_id_index(model->item_map, PG_GETARG_INT64(2));

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
 * The score of every item (-inf for excluded ones) for the user row u
 * (float or double as the model; NULL: a user with no factors) whose
 * bias terms come to base (mean + the user's bias).  Floats are widened
 * once; each score equals mf_score() for a stored user exactly.
 */
static double *
score_vector(const MfFactors *f, const void *u, double base, const bool *excluded)
{
	double	   *scores = mf_alloc_array(CurrentMemoryContext, f->n_items,
										sizeof(double));
	int			k = f->k;
	double	   *wide = NULL;

	if (u != NULL && f->single)
	{
		wide = palloc(sizeof(double) * Max(k, 1));
		for (int j = 0; j < k; j++)
			wide[j] = ((const float *) u)[j];
	}
	for (int32 item = 0; item < f->n_items; item++)
	{
		double		dot = 0.0;

		if (excluded != NULL && excluded[item])
		{
			scores[item] = -INFINITY;	/* never chosen; read by the vector pre-test */
			continue;
		}
		if (u != NULL)
			dot = wide ? dot_mixed(wide, side_row(f, false, item), k)
				: dot_double(u, side_row(f, false, item), k);
		scores[item] = f->biases ? dot + (base + f->item_bias[item]) : dot;
	}
	if (wide)
		pfree(wide);
	return scores;
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

/*
 * Offers a candidate that mf_top_admits: a bounded heap keeps the n best
 * with the worst on top, so n_items offers cost O(n_items log n) at most
 * and, once the heap is full, mostly one comparison each.
 */
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

/*
 * Chooses the n best of the items not excluded (excluded may be NULL);
 * writes them best first into best[] and returns how many there are.
 */
static int32
select_top(const double *scores, const int64 *ids, const bool *excluded,
		   int32 n_items, int32 n, int32 *best)
{
	MfTop		top;
	int32		found;

	mf_top_init(&top, n, ids, best, palloc(sizeof(double) * Max(n, 1)));
	mf_top_offer_row(&top, scores, false, excluded, n_items);
	found = mf_top_finish(&top);
	pfree(top.scores);
	return found;
}

const int64 *
mf_rated_item_ids(const MfModel *model, int64 user_id, Datum value, int *count)
{
	ArrayType  *rated = DatumGetArrayTypeP(value);

	if (ARR_ELEMTYPE(rated) != INT8OID || ARR_HASNULL(rated))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("rated_items of user " INT64_FORMAT " in model %d is not a bigint[] without NULLs",
						user_id, model->model_id),
				 errhint("Retrain the model with mf_train.")));
	*count = ArrayGetNItems(ARR_NDIM(rated), ARR_DIMS(rated));
	return (const int64 *) ARR_DATA_PTR(rated);
}

/*
 * Marks the items the user rated in the training data, from the
 * rated_items array stored with the user's factors.
 */
static bool *
rated_items_mask(FunctionCallInfo fcinfo, const MfModel *model, int64 user_id)
{
	static MfSavedPlan rated_items = {NULL, InvalidOid, ""};
	static const Oid rated_type = INT8ARRAYOID;
	int32		n_items = model->factors.n_items;
	bool	   *mask = mf_alloc_array(CurrentMemoryContext, n_items, sizeof(bool));
	Oid			argtypes[2] = {INT4OID, INT8OID};
	Datum		args[2] = {Int32GetDatum(model->model_id), Int64GetDatum(user_id)};
	SPIPlanPtr	plan;
	int			nest_level;

	memset(mask, 0, sizeof(bool) * n_items);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	nest_level = mf_internal_sql_begin();
	plan = mf_saved_plan(&rated_items, get_func_namespace(fcinfo->flinfo->fn_oid),
						 "SELECT rated_items FROM %s.mf_user_factors WHERE model_id = $1 AND user_id = $2",
						 2, argtypes);
	if (SPI_execute_plan(plan, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the rated items of user " INT64_FORMAT, user_id);
	mf_check_column_types(SPI_tuptable->tupdesc, NULL, &rated_type, 1, "mf_user_factors");
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		value = SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			int			n_rated;
			const int64 *ids = mf_rated_item_ids(model, user_id, value, &n_rated);

			for (int r = 0; r < n_rated; r++)
			{
				int32		item = mf_id_index(model->item_map, ids[r]);

				if (item >= 0)
					mask[item] = true;
			}
		}
	}
	mf_internal_sql_end(nest_level);
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
	*scores = score_vector(f, user >= 0 ? side_row(f, true, user) : NULL,
						   f->biases ? user_base(f, user) : 0.0, excluded);
	found = select_top(*scores, model->item_ids, excluded, f->n_items,
					   Min(n, f->n_items), best);
	if (excluded)
		pfree(excluded);
	return found;
}

/*
 * The n argument (at position n_arg, followed by exclude_rated) of the
 * mf_recommend forms: neither may be NULL, and n must be at least 1.
 */
static int32
recommend_count(FunctionCallInfo fcinfo, int n_arg)
{
	int32		n;

	if (PG_ARGISNULL(n_arg) || PG_ARGISNULL(n_arg + 1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", PG_ARGISNULL(n_arg) ? "n" : "exclude_rated"),
				 errhint("Omit it to use the default, or pass a value.")));
	n = PG_GETARG_INT32(n_arg);
	if (n < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("n must be at least 1, got %d", n),
				 errhint("n is how many items to recommend.")));
	return n;
}

/*
 * The id of a user or item (dense index) as a result column: its key or
 * the text of its integer id when as_text, else the integer id.
 */
static Datum
side_id_datum(const MfModel *model, bool users, int32 index, bool as_text)
{
	char	   *const *keys = users ? model->user_keys : model->item_keys;
	int64		id = (users ? model->user_ids : model->item_ids)[index];

	if (!as_text)
		return Int64GetDatum(id);
	return CStringGetTextDatum(keys ? keys[index] : psprintf(INT64_FORMAT, id));
}

/*
 * Returns rows (id, score) for the chosen rows best[0..n_best) of one
 * side, ids as text when as_text.
 */
static void
put_ranked(FunctionCallInfo fcinfo, const MfModel *model, bool users, bool as_text,
		   const double *scores, const int32 *best, int32 n_best)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	for (int32 r = 0; r < n_best; r++)
	{
		Datum		values[2] = {side_id_datum(model, users, best[r], as_text),
		Float8GetDatum(scores[best[r]])};
		bool		nulls[2] = {false, false};

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/* Whether argument arg of this call is text (the form by keys) or bigint. */
static bool
keyed_form(FunctionCallInfo fcinfo, int arg)
{
	Oid			type = get_fn_expr_argtype(fcinfo->flinfo, arg);

	if (type != TEXTOID && type != INT8OID)
		elog(ERROR, "cannot tell the type of argument %d of this mf_ext function", arg + 1);
	return type == TEXTOID;
}

static Datum
recommend(FunctionCallInfo fcinfo, MfModel *model)
{
	int64		user_id;
	int32		n = recommend_count(fcinfo, 2);
	int32		user;
	double	   *scores;
	int32	   *best;
	int32		n_best;

	require_integer_model(model, "mf_recommend");
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
	put_ranked(fcinfo, model, false, false, scores, best, n_best);
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

/*
 * The dense index of a text key of one side: a stored key of a model with
 * keys, else the text of an integer id.  -1 when the model lacks it.
 */
static int32
key_index(const MfModel *model, bool users, text *key)
{
	char	   *value = text_to_cstring(key);
	int32		index;

	if ((users ? model->user_keys : model->item_keys) != NULL)
		index = mf_key_lookup(users ? model->user_keymap : model->item_keymap, value);
	else
	{
		char	   *end;
		long long	id;

		errno = 0;
		id = strtoll(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("%s id \"%s\" is not an integer", users ? "user" : "item", value),
					 errhint("Model \"%s\" was trained on integer %s ids: pass one.",
							 model->name, users ? "user" : "item")));
		index = mf_id_index(users ? model->user_map : model->item_map, (int64) id);
	}
	pfree(value);
	return index;
}

/* |x| of every row of one side, computed on first need and cached. */
static const double *
side_norms(MfModel *model, bool users)
{
	const MfFactors *f = &model->factors;
	double	  **norms = users ? &model->user_norms : &model->item_norms;
	int32		n = users ? f->n_users : f->n_items;

	if (*norms == NULL)
	{
		double	   *computed = mf_alloc_array(model->cxt, n, sizeof(double));

		for (int32 r = 0; r < n; r++)
		{
			const void *row = side_row(f, users, r);

			computed[r] = sqrt(row_dot(f, row, row));
		}
		*norms = computed;
	}
	return *norms;
}

/*
 * mf_similar_items / mf_similar_users: the n rows of the side nearest to
 * the given id's by cosine of their factors (0 against a zero row), the
 * row itself left out; best first, ties by ascending id.  The id is an
 * integer, or text in the form by keys (which answers in text too).
 */
static Datum
similar(FunctionCallInfo fcinfo, MfModel *model, bool users)
{
	const MfFactors *f = &model->factors;
	const char *side = users ? "user" : "item";
	int32		n_rows = users ? f->n_users : f->n_items;
	const int64 *ids = users ? model->user_ids : model->item_ids;
	bool		as_text = keyed_form(fcinfo, 1);
	const double *norms;
	const void *target_row;
	double	   *scores;
	bool	   *excluded;
	int32	   *best;
	int32		target;
	int32		n;
	int32		n_best;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("n must not be NULL"),
				 errhint("Omit it to use the default, or pass a value.")));
	n = PG_GETARG_INT32(2);
	if (n < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("n must be at least 1, got %d", n),
				 errhint("n is how many similar %ss to return.", side)));
	if (!as_text && (users ? model->user_keys : model->item_keys) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("model \"%s\" identifies its %ss by text keys, not integers",
						model->name, side),
				 errhint("Pass the %s id as text, for example mf_similar_%ss(model, %s_id::text, n).",
						 side, side, side)));
	if (f->k == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("model \"%s\" has no factors (k = 0)", model->name),
				 errdetail("Similarity is the cosine of factor vectors; a biases-only model has none."),
				 errhint("Train a model with k of 1 or more.")));

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(1))
		return (Datum) 0;
	target = as_text ? key_index(model, users, PG_GETARG_TEXT_PP(1))
		: mf_id_index(users ? model->user_map : model->item_map, PG_GETARG_INT64(1));
	if (target < 0)
		return (Datum) 0;

	norms = side_norms(model, users);
	target_row = side_row(f, users, target);
	scores = mf_alloc_array(CurrentMemoryContext, n_rows, sizeof(double));
	excluded = mf_alloc_array(CurrentMemoryContext, n_rows, sizeof(bool));
	memset(excluded, 0, sizeof(bool) * n_rows);
	excluded[target] = true;
	for (int32 r = 0; r < n_rows; r++)
	{
		double		scale = norms[target] * norms[r];

		scores[r] = scale > 0 ? row_dot(f, target_row, side_row(f, users, r)) / scale : 0.0;
	}
	best = mf_alloc_array(CurrentMemoryContext, Min(n, n_rows), sizeof(int32));
	n_best = select_top(scores, ids, excluded, n_rows, Min(n, n_rows), best);
	put_ranked(fcinfo, model, users, as_text, scores, best, n_best);
	return (Datum) 0;
}

Datum
mf_similar_items(PG_FUNCTION_ARGS)
{
	mf_require_model_argument(fcinfo);
	return similar(fcinfo, mf_cache_model_by_id(fcinfo, PG_GETARG_INT32(0)), false);
}

Datum
mf_similar_items_by_name(PG_FUNCTION_ARGS)
{
	mf_require_model_argument(fcinfo);
	return similar(fcinfo, mf_cache_model_by_name(fcinfo, PG_GETARG_TEXT_PP(0)), false);
}

Datum
mf_similar_users(PG_FUNCTION_ARGS)
{
	mf_require_model_argument(fcinfo);
	return similar(fcinfo, mf_cache_model_by_id(fcinfo, PG_GETARG_INT32(0)), true);
}

Datum
mf_similar_users_by_name(PG_FUNCTION_ARGS)
{
	mf_require_model_argument(fcinfo);
	return similar(fcinfo, mf_cache_model_by_name(fcinfo, PG_GETARG_TEXT_PP(0)), true);
}

/* An item and one of its ratings, for sorting a new user's ratings. */
typedef struct ItemRating
{
	int32		item;
	double		rating;
} ItemRating;

static int
compare_item_ratings(const void *a, const void *b)
{
	const ItemRating *x = a;
	const ItemRating *y = b;

	if (x->item != y->item)
		return (x->item > y->item) - (x->item < y->item);
	return (x->rating > y->rating) - (x->rating < y->rating);
}

/*
 * A new user's ratings of an implicit-feedback model, as training reads an
 * event log: one entry per item, its strength the sum of the item's
 * ratings (added in ascending order, as mf_ratings_sum_duplicates adds
 * them), which must not be negative.  Returns the number of items.
 */
static int32
implicit_strengths(const MfModel *model, int32 *cols, double *vals, int32 n)
{
	ItemRating *pairs = palloc(sizeof(ItemRating) * n);
	int32		kept = 0;

	for (int32 e = 0; e < n; e++)
	{
		pairs[e].item = cols[e];
		pairs[e].rating = vals[e];
	}
	qsort(pairs, n, sizeof(ItemRating), compare_item_ratings);
	for (int32 e = 0; e < n;)
	{
		int32		run = e;
		double		sum = 0.0;
		double		magnitude = 0.0;

		for (; run < n && pairs[run].item == pairs[e].item; run++)
		{
			sum += pairs[run].rating;
			magnitude += fabs(pairs[run].rating);
		}
		cols[kept] = pairs[e].item;
		vals[kept] = mf_exact_sum(sum, magnitude, run - e);
		kept++;
		e = run;
	}
	for (int32 e = 0; e < kept; e++)
		if (vals[e] < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the ratings of item %s sum to %g, but an implicit-feedback model needs strengths >= 0",
							model->item_keys ? model->item_keys[cols[e]]
							: psprintf(INT64_FORMAT, model->item_ids[cols[e]]),
							vals[e]),
					 errdetail("Model \"%s\" is of implicit feedback: an item's strength is the sum of its ratings.",
							   model->name),
					 errhint("Pass the strengths as the training data had them (counts, durations: 0 or more).")));
	pfree(pairs);
	return kept;
}

/*
 * Folds in the user given by arguments 1 and 2 (item_ids bigint[], or
 * text[] when as_text; ratings double precision[]): their factors into out (k reals of
 * the model's precision) and *bias, the rated items the model knows
 * marked in rated[] (n_items).  Items the model does not know are
 * skipped; returns false when none is left.
 */
static bool
fold_in(FunctionCallInfo fcinfo, const MfModel *model, bool as_text, void *out,
		double *bias, bool *rated)
{
	const MfFactors *f = &model->factors;
	ArrayType  *item_ids;
	ArrayType  *ratings;
	int			n;
	int32	   *cols;
	double	   *vals;
	int32		known = 0;
	MfCsr		row;
	int64		row_start[2] = {0, 0};
	Datum	   *keys = NULL;

	if (!as_text && model->item_keys != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("model \"%s\" identifies its items by text keys, not integers", model->name),
				 errhint("Pass the item ids as text to mf_fold_in_keys or mf_recommend_keys.")));
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", PG_ARGISNULL(1) ? "item_ids" : "ratings"),
				 errhint("Pass the items the new user rated and their ratings, as two arrays of the same length.")));
	item_ids = PG_GETARG_ARRAYTYPE_P(1);
	ratings = PG_GETARG_ARRAYTYPE_P(2);
	n = ArrayGetNItems(ARR_NDIM(item_ids), ARR_DIMS(item_ids));
	if (ARR_NDIM(item_ids) > 1 || ARR_NDIM(ratings) > 1 ||
		n != ArrayGetNItems(ARR_NDIM(ratings), ARR_DIMS(ratings)))
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("item_ids and ratings must be one-dimensional arrays of the same length"),
				 errdetail("item_ids has %d dimensions and %d elements, ratings %d and %d.",
						   ARR_NDIM(item_ids), n, ARR_NDIM(ratings),
						   ArrayGetNItems(ARR_NDIM(ratings), ARR_DIMS(ratings))),
				 errhint("Pass one rating per item: ratings[i] is the rating of item_ids[i].")));
	if (ARR_HASNULL(item_ids) || ARR_HASNULL(ratings))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("item_ids and ratings must not contain NULL"),
				 errhint("Leave out the items without a rating.")));

	if (as_text)
		deconstruct_array(item_ids, TEXTOID, -1, false, TYPALIGN_INT, &keys, NULL, &n);
	cols = mf_alloc_array(CurrentMemoryContext, n, sizeof(int32));
	vals = mf_alloc_array(CurrentMemoryContext, n, sizeof(double));
	memset(rated, 0, sizeof(bool) * f->n_items);
	for (int e = 0; e < n; e++)
	{
		double		value = ((const double *) ARR_DATA_PTR(ratings))[e];
		int32		item = as_text ? key_index(model, false, DatumGetTextPP(keys[e]))
			: mf_id_index(model->item_map, ((const int64 *) ARR_DATA_PTR(item_ids))[e]);

		if (!isfinite(value))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("rating %d is %g, but must be finite", e + 1, value),
					 errhint("Pass the ratings as the training data had them.")));
		if (item < 0)
			continue;
		cols[known] = item;
		vals[known] = value;
		rated[item] = true;
		known++;
	}
	if (known == 0)
		return false;
	if (f->implicit)
		known = implicit_strengths(model, cols, vals, known);
	row.n_rows = 1;
	row.row_start = row_start;
	row.col = cols;
	row.val = vals;
	row_start[1] = known;
	if (mf_als_solve_against(f, true, &model->fit, &row, out, bias,
							 CurrentMemoryContext) >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("the least-squares system of the new user could not be solved"),
				 model->fit.lambda == 0
				 ? errdetail("Model \"%s\" was trained with lambda = 0, and the %d rated items known to it do not determine all the user's unknowns (or the ratings are so large that floating point overflowed).",
							 model->name, known)
				 : errdetail("The ratings are so large that floating point overflowed."),
				 errhint("Pass ratings on the training data's scale, more rated items, or use a model trained with lambda > 0.")));
	pfree(cols);
	pfree(vals);
	return true;
}

/* Room for one user's factors in the model's precision. */
static void *
user_row_buffer(const MfFactors *f)
{
	return palloc(Max(f->k, 1) * (f->single ? sizeof(float) : sizeof(double)));
}

/*
 * mf_fold_in(model, item_ids, ratings): the new user's k factors (then
 * the bias, with biases), or NULL when the model knows none of the items.
 */
static Datum
fold_in_factors(FunctionCallInfo fcinfo, MfModel *model, bool as_text)
{
	const MfFactors *f = &model->factors;
	void	   *row = user_row_buffer(f);
	bool	   *rated = mf_alloc_array(CurrentMemoryContext, f->n_items, sizeof(bool));
	int			n = f->k + (f->biases ? 1 : 0);
	Datum	   *values = palloc(sizeof(Datum) * Max(n, 1));
	double		bias;

	if (!fold_in(fcinfo, model, as_text, row, &bias, rated))
		PG_RETURN_NULL();
	for (int j = 0; j < f->k; j++)
		values[j] = Float8GetDatum(f->single ? ((float *) row)[j] : ((double *) row)[j]);
	if (f->biases)
		values[f->k] = Float8GetDatum(bias);
	PG_RETURN_ARRAYTYPE_P(construct_array(values, n, FLOAT8OID, sizeof(float8),
										  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * mf_recommend(model, item_ids, ratings, n, exclude_rated): the n best
 * items for the user folded in from those ratings; exclude_rated leaves
 * out the given items.
 */
static Datum
recommend_folded(FunctionCallInfo fcinfo, MfModel *model, bool as_text)
{
	const MfFactors *f = &model->factors;
	int32		n = recommend_count(fcinfo, 3);
	void	   *row = user_row_buffer(f);
	bool	   *rated = mf_alloc_array(CurrentMemoryContext, f->n_items, sizeof(bool));
	const bool *excluded;
	double		bias;
	double	   *scores;
	int32	   *best;
	int32		n_best;

	InitMaterializedSRF(fcinfo, 0);
	if (!fold_in(fcinfo, model, as_text, row, &bias, rated))
		return (Datum) 0;

	excluded = PG_GETARG_BOOL(4) ? rated : NULL;
	scores = score_vector(f, row, f->biases ? f->mean + bias : 0.0, excluded);
	best = mf_alloc_array(CurrentMemoryContext, Min(n, f->n_items), sizeof(int32));
	n_best = select_top(scores, model->item_ids, excluded, f->n_items,
						Min(n, f->n_items), best);
	put_ranked(fcinfo, model, false, as_text, scores, best, n_best);
	return (Datum) 0;
}

#define FOLD_IN_ENTRY(name, body, lookup, as_text) \
Datum \
name(PG_FUNCTION_ARGS) \
{ \
	mf_require_model_argument(fcinfo); \
	return body(fcinfo, lookup, as_text); \
}
#define BY_ID mf_cache_model_by_id(fcinfo, PG_GETARG_INT32(0))
#define BY_NAME mf_cache_model_by_name(fcinfo, PG_GETARG_TEXT_PP(0))

FOLD_IN_ENTRY(mf_fold_in, fold_in_factors, BY_ID, false)
FOLD_IN_ENTRY(mf_fold_in_by_name, fold_in_factors, BY_NAME, false)
FOLD_IN_ENTRY(mf_fold_in_keys, fold_in_factors, BY_ID, true)
FOLD_IN_ENTRY(mf_fold_in_keys_by_name, fold_in_factors, BY_NAME, true)
FOLD_IN_ENTRY(mf_recommend_folded, recommend_folded, BY_ID, false)
FOLD_IN_ENTRY(mf_recommend_folded_by_name, recommend_folded, BY_NAME, false)
FOLD_IN_ENTRY(mf_recommend_keys, recommend_folded, BY_ID, true)
FOLD_IN_ENTRY(mf_recommend_keys_by_name, recommend_folded, BY_NAME, true)

/* mf_predict(model, user_key text, item_key text). */
static Datum
predict_key(FunctionCallInfo fcinfo, MfModel *model)
{
	int32		user = key_index(model, true, PG_GETARG_TEXT_PP(1));
	int32		item = key_index(model, false, PG_GETARG_TEXT_PP(2));

	if ((user < 0 || item < 0) && !model->factors.biases)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(mf_score(&model->factors, user, item));
}

/*
 * mf_recommend(model, user_key text, n, exclude_rated): as mf_recommend,
 * with the user and the items as text keys.
 */
static Datum
recommend_key(FunctionCallInfo fcinfo, MfModel *model)
{
	int32		n = recommend_count(fcinfo, 2);
	int32		user;
	double	   *scores;
	int32	   *best;
	int32		n_best;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(1))
		return (Datum) 0;
	user = key_index(model, true, PG_GETARG_TEXT_PP(1));
	if (user < 0 && !model->factors.biases)
		return (Datum) 0;
	best = mf_alloc_array(CurrentMemoryContext, Min(n, model->factors.n_items),
						  sizeof(int32));
	n_best = mf_top_items(fcinfo, model, user, user >= 0 ? model->user_ids[user] : 0, n,
						  PG_GETARG_BOOL(3), best, &scores);
	put_ranked(fcinfo, model, false, true, scores, best, n_best);
	return (Datum) 0;
}

Datum
mf_predict_key(PG_FUNCTION_ARGS)
{
	return predict_key(fcinfo, mf_cache_model_by_id(fcinfo, PG_GETARG_INT32(0)));
}

Datum
mf_predict_key_by_name(PG_FUNCTION_ARGS)
{
	return predict_key(fcinfo, mf_cache_model_by_name(fcinfo, PG_GETARG_TEXT_PP(0)));
}

Datum
mf_recommend_key(PG_FUNCTION_ARGS)
{
	mf_require_model_argument(fcinfo);
	return recommend_key(fcinfo, mf_cache_model_by_id(fcinfo, PG_GETARG_INT32(0)));
}

Datum
mf_recommend_key_by_name(PG_FUNCTION_ARGS)
{
	mf_require_model_argument(fcinfo);
	return recommend_key(fcinfo, mf_cache_model_by_name(fcinfo, PG_GETARG_TEXT_PP(0)));
}
