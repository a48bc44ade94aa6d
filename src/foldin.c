/*-------------------------------------------------------------------------
 *
 * foldin.c
 *	  A user the model does not have, given by the items they rated:
 *	  mf_fold_in (their factors) and mf_recommend for them, by integer
 *	  item ids or text keys (mf_fold_in_keys, mf_recommend_keys).  Their
 *	  factors are training's user half-step for them, solved exactly
 *	  against the model's item factors (als.c), in its precision; nothing
 *	  is stored.
 *
 *-------------------------------------------------------------------------
 */
#include "serve.h"
#include "checks.h"
#include "ratings.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(mf_fold_in);
PG_FUNCTION_INFO_V1(mf_fold_in_by_name);
PG_FUNCTION_INFO_V1(mf_fold_in_keys);
PG_FUNCTION_INFO_V1(mf_fold_in_keys_by_name);
PG_FUNCTION_INFO_V1(mf_recommend_new_user);
PG_FUNCTION_INFO_V1(mf_recommend_new_user_by_name);
PG_FUNCTION_INFO_V1(mf_recommend_keys);
PG_FUNCTION_INFO_V1(mf_recommend_keys_by_name);

/*
 * A new user's ratings (sorted by mf_sort_row_entries) of an implicit-feedback
 * model, as training reads an event log: one entry per item, its strength
 * the sum of the item's ratings (added in ascending order, as
 * mf_ratings_event_log adds them), which must not be negative.  Returns
 * the number of items.
 */
static int32
implicit_strengths(const MfModel *model, int32 *cols, double *vals, int32 n)
{
	int32		kept = 0;

	for (int32 e = 0; e < n;)
	{
		int32		run = e;
		int32		item = cols[e];
		double		sum = 0.0;
		double		magnitude = 0.0;

		mf_interrupts_every(kept, MF_INTERRUPT_ROWS);

		for (; run < n && cols[run] == item; run++)
		{
			sum += vals[run];
			magnitude += fabs(vals[run]);
		}
		cols[kept] = item;
		vals[kept] = mf_exact_sum(sum, magnitude, run - e);
		kept++;
		e = run;
	}
	for (int32 e = 0; e < kept; e++)
		if (vals[e] < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the ratings of item %s sum to %g, but an implicit-feedback model needs strengths >= 0",
							model->item_keys ? mf_text_for_message(model->item_keys[cols[e]])
							: psprintf(INT64_FORMAT, model->item_ids[cols[e]]),
							vals[e]),
					 errdetail("Model %s is of implicit feedback: an item's strength is the sum of its ratings.",
							   mf_text_for_message(model->row.name)),
					 errhint("Pass the strengths as the training data had them (counts, durations: 0 or more).")));
	return kept;
}

/*
 * The arrays of a fold-in (arguments 1, the items, named items_name in the
 * SQL function, and 2, ratings): one dimension, the same length, no NULLs.
 * Returns their length.
 */
static int
check_arrays(FunctionCallInfo fcinfo, const char *items_name, ArrayType **item_ids,
			 ArrayType **ratings)
{
	int			n;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", PG_ARGISNULL(1) ? items_name : "ratings"),
				 errhint("Pass the items the new user rated and their ratings, as two arrays of the same length.")));
	*item_ids = PG_GETARG_ARRAYTYPE_P(1);
	*ratings = PG_GETARG_ARRAYTYPE_P(2);
	n = ArrayGetNItems(ARR_NDIM(*item_ids), ARR_DIMS(*item_ids));
	if (ARR_NDIM(*item_ids) > 1 || ARR_NDIM(*ratings) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s and ratings must be one-dimensional arrays of the same length", items_name),
				 errdetail("%s is %d-dimensional.",
						   ARR_NDIM(*item_ids) > 1 ? items_name : "ratings",
						   Max(ARR_NDIM(*item_ids), ARR_NDIM(*ratings))),
				 errhint("Pass one rating per item as two lists: ratings[i] is the rating of %s[i].",
						 items_name)));
	if (n != ArrayGetNItems(ARR_NDIM(*ratings), ARR_DIMS(*ratings)))
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s and ratings must be one-dimensional arrays of the same length", items_name),
				 errdetail("Their lengths are %d and %d.",
						   n, ArrayGetNItems(ARR_NDIM(*ratings), ARR_DIMS(*ratings))),
				 errhint("Pass one rating per item: ratings[i] is the rating of %s[i].", items_name)));
	if (ARR_HASNULL(*item_ids) || ARR_HASNULL(*ratings))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s and ratings must not contain NULL", items_name),
				 errhint("Leave out the items without a rating.")));
	return n;
}

/* Item e of a fold-in's item_ids, as an error names it: keys[e] where given as text. */
static char *
item_for_message(ArrayType *item_ids, const Datum *keys, int e)
{
	return keys ? mf_text_for_message(text_to_cstring(DatumGetTextPP(keys[e])))
		: psprintf(INT64_FORMAT, ((const int64 *) ARR_DATA_PTR(item_ids))[e]);
}

/*
 * The new user's ratings of items the model knows, as one row of a sparse
 * matrix (cols, vals, in cxt), their items marked in rated[] (n_items);
 * the items given as integers, or as_text.  Returns how many there are.
 */
static int32
known_ratings(FunctionCallInfo fcinfo, const MfModel *model, bool as_text,
			  int32 **cols, double **vals, bool *rated)
{
	ArrayType  *item_ids;
	ArrayType  *ratings;
	const char *items_name = as_text ? "item_keys" : "item_ids";
	int			n = check_arrays(fcinfo, items_name, &item_ids, &ratings);
	Datum	   *keys = NULL;
	int32		known = 0;

	if (as_text)
		deconstruct_array(item_ids, TEXTOID, -1, false, TYPALIGN_INT, &keys, NULL, &n);
	*cols = mf_alloc_array(CurrentMemoryContext, n, sizeof(int32));
	*vals = mf_alloc_array(CurrentMemoryContext, n, sizeof(double));
	memset(rated, 0, sizeof(bool) * model->factors.n_items);
	for (int e = 0; e < n; e++)
	{
		double		value = ((const double *) ARR_DATA_PTR(ratings))[e];
		int32		item;

		mf_interrupts_every(e, MF_INTERRUPT_ROWS);
		item = as_text ? mf_text_id_index(model, MF_ITEMS, DatumGetTextPP(keys[e]))
			: mf_model_find_id(model, MF_ITEMS, ((const int64 *) ARR_DATA_PTR(item_ids))[e]);

		if (!isfinite(value))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ratings[%d] is %g, but must be finite", ARR_LBOUND(ratings)[0] + e, value),
					 errdetail("It is the rating of item %s (%s[%d]).",
							   item_for_message(item_ids, keys, e), items_name,
							   ARR_LBOUND(item_ids)[0] + e),
					 errhint("Leave that item and its rating out of both arrays, or pass a finite rating on the training data's scale.")));
		if (item < 0)
			continue;
		/*
		 * an explicit rating beyond a float from the center, refused as a
		 * refit of a single-precision model refuses it (mf_ratings_check_scale)
		 */
		if (model->factors.single && !model->factors.implicit &&
			!mf_rating_within_float(value, model->factors.biases ? model->factors.mean : 0.0))
		{
			mf_report_rating_scale(psprintf("the new user for item %s",
											item_for_message(item_ids, keys, e)), value,
								   model->factors.biases, model->factors.mean, MF_SCALE_FOLD_IN);
		}
		(*cols)[known] = item;
		(*vals)[known] = value;
		rated[item] = true;
		known++;
	}
	return known;
}

/*
 * Folds in the user given by arguments 1 and 2 (item ids, integers or
 * as_text; ratings): their factors into out (k reals of the model's
 * precision) and *bias, the rated items the model knows marked in rated[]
 * (n_items).  Items the model does not know are skipped; returns false
 * when none is left.
 */
static bool
fold_in(FunctionCallInfo fcinfo, const MfModel *model, bool as_text, void *out,
		double *bias, bool *rated)
{
	MfCsr		row = {0};
	int64		row_start[2] = {0, 0};
	int32	   *cols;
	double	   *vals;
	int32		known;

	if (!as_text && model->item_keys != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("model %s identifies its items by text keys, not integers", mf_text_for_message(model->row.name)),
				 errhint("Pass the item ids as text to mf_fold_in_keys or mf_recommend_keys.")));
	known = known_ratings(fcinfo, model, as_text, &cols, &vals, rated);
	if (known == 0)
		return false;
	mf_sort_row_entries(cols, vals, known);
	if (model->factors.implicit)
		known = implicit_strengths(model, cols, vals, known);
	row.n_rows = 1;
	row.row_start = row_start;
	row.col = cols;
	row.val = vals;
	row_start[1] = known;
	if (mf_als_solve_against(&model->factors, MF_USERS, &model->row.options, &row, 0, out, bias,
							 NULL, CurrentMemoryContext) >= 0)
		mf_report_unsolvable(MF_SOLVE_FOLD_IN, MF_USERS, NULL, &model->row.options,
							 model->row.name, NULL, 0, model->row.n_items);
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
fold_in_factors(FunctionCallInfo fcinfo, bool by_name, bool as_text)
{
	MfModel    *model = mf_model_argument(fcinfo, by_name);
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
 * mf_recommend(model, item_ids, ratings, n, exclude_rated, candidates,
 * exclude): the n best items for the user folded in from those ratings,
 * among the candidates (NULL: all items) less those excluded;
 * exclude_rated leaves out the given items.
 */
static Datum
recommend_new_user(FunctionCallInfo fcinfo, bool by_name, bool as_text)
{
	MfModel    *model = mf_model_argument(fcinfo, by_name);
	const MfFactors *f = &model->factors;
	int32		n = mf_recommend_count(fcinfo, 3, "n is how many items to recommend.");
	void	   *row = user_row_buffer(f);
	bool	   *rated = mf_alloc_array(CurrentMemoryContext, f->n_items, sizeof(bool));
	double	   *wide = palloc(sizeof(double) * Max(f->k, 1));
	bool	   *excluded;
	double		bias;
	double	   *scores;
	double	   *best_scores;
	int32	   *best;
	int32		n_best;

	InitMaterializedSRF(fcinfo, 0);
	if (!fold_in(fcinfo, model, as_text, row, &bias, rated))
		return (Datum) 0;

	excluded = mf_filter_mask(fcinfo, 5, model, MF_ITEMS, as_text,
							  PG_GETARG_BOOL(4) ? rated : NULL);
	scores = mf_alloc_array(CurrentMemoryContext, f->n_items, sizeof(double));
	mf_score_items(f, row, f->biases ? f->mean + bias : 0.0, excluded, wide, scores);
	best = mf_alloc_array(CurrentMemoryContext, Min(n, f->n_items), sizeof(int32));
	best_scores = mf_alloc_array(CurrentMemoryContext, Min(n, f->n_items), sizeof(double));
	n_best = mf_select_top(scores, model->item_ids, excluded, f->n_items,
						   Min(n, f->n_items), best, best_scores);
	mf_put_ranked(fcinfo, model, MF_ITEMS, as_text, scores, best, n_best);
	return (Datum) 0;
}

#define FOLD_IN_ENTRY(name, body, by_name, as_text) \
Datum \
name(PG_FUNCTION_ARGS) \
{ \
	return body(fcinfo, by_name, as_text); \
}

FOLD_IN_ENTRY(mf_fold_in, fold_in_factors, false, false)
FOLD_IN_ENTRY(mf_fold_in_by_name, fold_in_factors, true, false)
FOLD_IN_ENTRY(mf_fold_in_keys, fold_in_factors, false, true)
FOLD_IN_ENTRY(mf_fold_in_keys_by_name, fold_in_factors, true, true)
FOLD_IN_ENTRY(mf_recommend_new_user, recommend_new_user, false, false)
FOLD_IN_ENTRY(mf_recommend_new_user_by_name, recommend_new_user, true, false)
FOLD_IN_ENTRY(mf_recommend_keys, recommend_new_user, false, true)
FOLD_IN_ENTRY(mf_recommend_keys_by_name, recommend_new_user, true, true)
