/*-------------------------------------------------------------------------
 *
 * serve.c
 *	  The answering functions for stored users and items: mf_predict (one
 *	  score), mf_recommend (the n best items for a user) and
 *	  mf_similar_items / mf_similar_users (the n nearest by cosine), each
 *	  by model id and by model name, with integer ids or text ones.
 *	  Models come from the backend's cache (cache.c), scores from score.c.
 *
 *	  C entry points are named after the SQL function, then _text for the
 *	  forms that take ids as text, then _by_name for the forms that take
 *	  the model's name (compat.c keeps the names older versions' install
 *	  scripts gave the text forms).
 *
 *-------------------------------------------------------------------------
 */
#include "serve.h"
#include "checks.h"

#include <errno.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(mf_predict);
PG_FUNCTION_INFO_V1(mf_predict_by_name);
PG_FUNCTION_INFO_V1(mf_predict_text);
PG_FUNCTION_INFO_V1(mf_predict_text_by_name);
PG_FUNCTION_INFO_V1(mf_recommend);
PG_FUNCTION_INFO_V1(mf_recommend_by_name);
PG_FUNCTION_INFO_V1(mf_recommend_text);
PG_FUNCTION_INFO_V1(mf_recommend_text_by_name);
PG_FUNCTION_INFO_V1(mf_similar_items);
PG_FUNCTION_INFO_V1(mf_similar_items_by_name);
PG_FUNCTION_INFO_V1(mf_similar_items_text);
PG_FUNCTION_INFO_V1(mf_similar_items_text_by_name);
PG_FUNCTION_INFO_V1(mf_similar_users);
PG_FUNCTION_INFO_V1(mf_similar_users_by_name);
PG_FUNCTION_INFO_V1(mf_similar_users_text);
PG_FUNCTION_INFO_V1(mf_similar_users_text_by_name);

MfModel *
mf_model_argument(FunctionCallInfo fcinfo, bool by_name)
{
	mf_require_model_argument(fcinfo);
	return by_name ? mf_cache_model_by_name(fcinfo, PG_GETARG_TEXT_PP(0))
		: mf_cache_model_by_id(fcinfo, PG_GETARG_INT32(0));
}

/*
 * 42804 when the model identifies the side's rows by text keys: a form
 * taking integer ids (function) cannot name them.
 */
static void
require_integer_ids(const MfModel *model, MfSide side, const char *function)
{
	if (mf_model_keys(model, side) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("model \"%s\" identifies its %ss by text keys, not integers",
						model->row.name, mf_side_name(side)),
				 errhint("Pass the ids as text to mf_predict or mf_recommend, for example %s(model, user_id::text, ...); %s with integer ids needs a model trained on integer ids.",
						 strcmp(function, "mf_predict") == 0 ? "mf_predict" : "mf_recommend",
						 function)));
}

/*
 * The functions that take integer ids refuse a model whose ids are text
 * keys (trained on a text, uuid, ... column): its integer ids are only
 * positions, which the caller cannot know.
 */
static void
require_integer_model(const MfModel *model, const char *function)
{
	require_integer_ids(model, model->user_keys ? MF_USERS : MF_ITEMS, function);
}

int32
mf_text_id_index(const MfModel *model, MfSide side, text *id)
{
	char	   *value = text_to_cstring(id);
	int32		index;

	if (mf_model_keys(model, side) != NULL)
		index = mf_model_find_key(model, side, value);
	else
	{
		char	   *end;
		long long	integer;

		errno = 0;
		integer = strtoll(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("%s id \"%s\" is not an integer", mf_side_name(side), value),
					 errhint("Model \"%s\" was trained on integer %s ids: pass one.",
							 model->row.name, mf_side_name(side))));
		index = mf_model_find_id(model, side, (int64) integer);
	}
	pfree(value);
	return index;
}

/*
 * mf_predict: the prediction for the given ids (integers, or as_text).  A
 * user or item the model lacks is NULL without biases; with biases it is
 * scored from what is known.
 */
static Datum
predict(FunctionCallInfo fcinfo, bool by_name, bool as_text)
{
	MfModel    *model = mf_model_argument(fcinfo, by_name);
	int32		user;
	int32		item;

	if (as_text)
	{
		user = mf_text_id_index(model, MF_USERS, PG_GETARG_TEXT_PP(1));
		item = mf_text_id_index(model, MF_ITEMS, PG_GETARG_TEXT_PP(2));
	}
	else
	{
		require_integer_model(model, "mf_predict");
		user = mf_model_find_id(model, MF_USERS, PG_GETARG_INT64(1));
		item = mf_model_find_id(model, MF_ITEMS, PG_GETARG_INT64(2));
	}
	if ((user < 0 || item < 0) && !model->factors.biases)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(mf_score(&model->factors, user, item));
}

Datum
mf_predict(PG_FUNCTION_ARGS)
{
	return predict(fcinfo, false, false);
}

Datum
mf_predict_by_name(PG_FUNCTION_ARGS)
{
	return predict(fcinfo, true, false);
}

Datum
mf_predict_text(PG_FUNCTION_ARGS)
{
	return predict(fcinfo, false, true);
}

Datum
mf_predict_text_by_name(PG_FUNCTION_ARGS)
{
	return predict(fcinfo, true, true);
}

/* |x| of every row of one side, computed on first need and cached. */
static const double *
side_norms(MfModel *model, MfSide side)
{
	double	  **norms = side == MF_USERS ? &model->user_norms : &model->item_norms;

	if (*norms == NULL)
	{
		int32		n = side == MF_USERS ? model->factors.n_users : model->factors.n_items;
		double	   *computed = mf_alloc_array(model->cxt, n, sizeof(double));

		mf_row_norms(&model->factors, side, computed);
		*norms = computed;
	}
	return *norms;
}

/*
 * Marks the items the user rated in the training data, from the
 * rated_items array stored with the user's factors.
 */
static bool *
rated_items_mask(const MfSchema *schema, const MfModel *model, int64 user_id)
{
	int32		n_items = model->factors.n_items;
	bool	   *mask = mf_alloc_array(CurrentMemoryContext, n_items, sizeof(bool));
	MemoryContext cxt = CurrentMemoryContext;
	int64	   *ids;
	int			n_rated;

	memset(mask, 0, sizeof(bool) * n_items);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ids = mf_catalog_rated_items(schema, model->row.model_id, user_id, &n_rated, cxt);
	SPI_finish();
	for (int r = 0; r < n_rated; r++)
	{
		int32		item = mf_model_find_id(model, MF_ITEMS, ids[r]);

		if (item >= 0)
			mask[item] = true;
	}
	if (ids)
		pfree(ids);
	return mask;
}

int32
mf_top_items(const MfSchema *schema, MfModel *model, int32 user, int64 user_id,
			 int32 n, bool exclude_rated, int32 *best, double **scores)
{
	const MfFactors *f = &model->factors;
	bool	   *excluded = NULL;
	double	   *wide = palloc(sizeof(double) * Max(f->k, 1));
	double	   *best_scores = mf_alloc_array(CurrentMemoryContext, Min(n, f->n_items),
												 sizeof(double));
	int32		found;

	if (exclude_rated && user >= 0)
		excluded = rated_items_mask(schema, model, user_id);
	*scores = mf_alloc_array(CurrentMemoryContext, f->n_items, sizeof(double));
	found = mf_top_scored_items(f, user >= 0 ? mf_factor_row(f, MF_USERS, user) : NULL,
								f->biases ? mf_user_base(f, user) : 0.0,
								f->single && user >= 0 ? side_norms(model, MF_ITEMS) : NULL,
								excluded, model->item_ids, Min(n, f->n_items), wide,
								*scores, best, best_scores);
	if (excluded)
		pfree(excluded);
	pfree(wide);
	pfree(best_scores);
	return found;
}

int32
mf_recommend_count(FunctionCallInfo fcinfo, int n_arg)
{
	mf_check_not_null(fcinfo, n_arg, "n", "Omit it to use the default, or pass a value.");
	mf_check_not_null(fcinfo, n_arg + 1, "exclude_rated", "Omit it to use the default, or pass a value.");
	mf_check_count(PG_GETARG_INT32(n_arg), "n", "n is how many items to recommend.");
	return PG_GETARG_INT32(n_arg);
}

/*
 * The id of a user or item (dense index) as a result column: its key or
 * the text of its integer id when as_text, else the integer id.
 */
static Datum
id_datum(const MfModel *model, MfSide side, int32 index, bool as_text)
{
	char	   *const *keys = mf_model_keys(model, side);
	int64		id = mf_model_ids(model, side)[index];

	if (!as_text)
		return Int64GetDatum(id);
	return CStringGetTextDatum(keys ? keys[index] : psprintf(INT64_FORMAT, id));
}

void
mf_put_ranked(FunctionCallInfo fcinfo, const MfModel *model, MfSide side, bool as_text,
			  const double *scores, const int32 *best, int32 n_best)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	for (int32 r = 0; r < n_best; r++)
	{
		Datum		values[2] = {id_datum(model, side, best[r], as_text),
		Float8GetDatum(scores[best[r]])};
		bool		nulls[2] = {false, false};

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/*
 * mf_recommend(model, user_id, n, exclude_rated): the n best items for a
 * stored user (integer id, or as_text), or with biases for an unknown one
 * the items of highest mu + b_i; no rows for a NULL user.
 */
static Datum
recommend(FunctionCallInfo fcinfo, bool by_name, bool as_text)
{
	MfModel    *model = mf_model_argument(fcinfo, by_name);
	MfSchema	schema = mf_schema_of(fcinfo);
	int32		n = mf_recommend_count(fcinfo, 2);
	int64		user_id = 0;
	int32		user;
	double	   *scores;
	int32	   *best;
	int32		n_best;

	if (!as_text)
		require_integer_model(model, "mf_recommend");
	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(1))
		return (Datum) 0;		/* no user: no rows, as for an unknown one */
	if (as_text)
	{
		user = mf_text_id_index(model, MF_USERS, PG_GETARG_TEXT_PP(1));
		user_id = user >= 0 ? model->user_ids[user] : 0;
	}
	else
	{
		user_id = PG_GETARG_INT64(1);
		user = mf_model_find_id(model, MF_USERS, user_id);
	}
	if (user < 0 && !model->factors.biases)
		return (Datum) 0;

	best = mf_alloc_array(CurrentMemoryContext, Min(n, model->factors.n_items),
						  sizeof(int32));
	n_best = mf_top_items(&schema, model, user, user_id, n, PG_GETARG_BOOL(3),
						  best, &scores);
	mf_put_ranked(fcinfo, model, MF_ITEMS, as_text, scores, best, n_best);
	return (Datum) 0;
}

Datum
mf_recommend(PG_FUNCTION_ARGS)
{
	return recommend(fcinfo, false, false);
}

Datum
mf_recommend_by_name(PG_FUNCTION_ARGS)
{
	return recommend(fcinfo, true, false);
}

Datum
mf_recommend_text(PG_FUNCTION_ARGS)
{
	return recommend(fcinfo, false, true);
}

Datum
mf_recommend_text_by_name(PG_FUNCTION_ARGS)
{
	return recommend(fcinfo, true, true);
}

/* The arguments of mf_similar_*: n at least 1, a model with factors. */
static int32
check_similar(FunctionCallInfo fcinfo, const MfModel *model, MfSide side, bool as_text)
{
	const char *name = mf_side_name(side);

	mf_check_not_null(fcinfo, 2, "n", "Omit it to use the default, or pass a value.");
	mf_check_count(PG_GETARG_INT32(2), "n",
				   psprintf("n is how many similar %ss to return.", name));
	if (!as_text && mf_model_keys(model, side) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("model \"%s\" identifies its %ss by text keys, not integers",
						model->row.name, name),
				 errhint("Pass the %s id as text, for example mf_similar_%ss(model, %s_id::text, n).",
						 name, name, name)));
	if (model->factors.k == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("model \"%s\" has no factors (k = 0)", model->row.name),
				 errdetail("Similarity is the cosine of factor vectors; a biases-only model has none."),
				 errhint("Train a model with k of 1 or more.")));
	return PG_GETARG_INT32(2);
}

/*
 * mf_similar_items / mf_similar_users: the n rows of the side nearest to
 * the given id's (integer, or as_text) by cosine of their factors (0
 * against a zero row), the row itself left out; best first, ties by
 * ascending id.
 */
static Datum
similar(FunctionCallInfo fcinfo, MfSide side, bool by_name, bool as_text)
{
	MfModel    *model = mf_model_argument(fcinfo, by_name);
	const MfFactors *f = &model->factors;
	int32		n_rows = side == MF_USERS ? f->n_users : f->n_items;
	int32		n = check_similar(fcinfo, model, side, as_text);
	const double *norms;
	const void *target_row;
	double	   *scores;
	double	   *best_scores;
	bool	   *excluded;
	int32	   *best;
	int32		target;
	int32		n_best;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(1))
		return (Datum) 0;
	target = as_text ? mf_text_id_index(model, side, PG_GETARG_TEXT_PP(1))
		: mf_model_find_id(model, side, PG_GETARG_INT64(1));
	if (target < 0)
		return (Datum) 0;

	norms = side_norms(model, side);
	target_row = mf_factor_row(f, side, target);
	scores = mf_alloc_array(CurrentMemoryContext, n_rows, sizeof(double));
	excluded = mf_alloc_array(CurrentMemoryContext, n_rows, sizeof(bool));
	memset(excluded, 0, sizeof(bool) * n_rows);
	excluded[target] = true;
	for (int32 r = 0; r < n_rows; r++)
	{
		double		scale = norms[target] * norms[r];

		scores[r] = scale > 0 ? mf_row_dot(f, target_row, mf_factor_row(f, side, r)) / scale : 0.0;
	}
	best = mf_alloc_array(CurrentMemoryContext, Min(n, n_rows), sizeof(int32));
	best_scores = mf_alloc_array(CurrentMemoryContext, Min(n, n_rows), sizeof(double));
	n_best = mf_select_top(scores, mf_model_ids(model, side), excluded, n_rows,
						   Min(n, n_rows), best, best_scores);
	mf_put_ranked(fcinfo, model, side, as_text, scores, best, n_best);
	return (Datum) 0;
}

/*
 * Whether the id argument of this mf_similar_* call is text.  Before
 * ALTER EXTENSION mf_ext UPDATE to 0.5, 0.4's text forms call the bigint
 * forms' C functions (0.4 told the forms apart at run time): their
 * declared type tells.
 */
static bool
declared_text_id(FunctionCallInfo fcinfo)
{
	Oid		   *arg_types;
	int			n_args;

	(void) get_func_signature(fcinfo->flinfo->fn_oid, &arg_types, &n_args);
	return n_args > 1 && arg_types[1] == TEXTOID;
}

/*
 * mf_similar_items(model, item_id, n DEFAULT 10) and mf_similar_users(model,
 * user_id, n): (id, similarity) rows, by model_id or name, ids bigint or
 * (_text) text.
 */
Datum
mf_similar_items(PG_FUNCTION_ARGS)
{
	return similar(fcinfo, MF_ITEMS, false, declared_text_id(fcinfo));
}

Datum
mf_similar_items_by_name(PG_FUNCTION_ARGS)
{
	return similar(fcinfo, MF_ITEMS, true, declared_text_id(fcinfo));
}

Datum
mf_similar_items_text(PG_FUNCTION_ARGS)
{
	return similar(fcinfo, MF_ITEMS, false, true);
}

Datum
mf_similar_items_text_by_name(PG_FUNCTION_ARGS)
{
	return similar(fcinfo, MF_ITEMS, true, true);
}

Datum
mf_similar_users(PG_FUNCTION_ARGS)
{
	return similar(fcinfo, MF_USERS, false, declared_text_id(fcinfo));
}

Datum
mf_similar_users_by_name(PG_FUNCTION_ARGS)
{
	return similar(fcinfo, MF_USERS, true, declared_text_id(fcinfo));
}

Datum
mf_similar_users_text(PG_FUNCTION_ARGS)
{
	return similar(fcinfo, MF_USERS, false, true);
}

Datum
mf_similar_users_text_by_name(PG_FUNCTION_ARGS)
{
	return similar(fcinfo, MF_USERS, true, true);
}
