/*-------------------------------------------------------------------------
 *
 * evaluate.c
 *	  Judging a model on ratings it has not seen: deterministic splits
 *	  (mf_is_test, mf_fold), test sets mapped onto a model's users and
 *	  items, error measures (RMSE, MAE, coverage), and mf_evaluate, which
 *	  adds ranking measures (precision, recall, NDCG and MAP at k).
 *
 *	  The error measures are computed by the same code during training (a
 *	  validation set), in cross-validation (tune.c) and in mf_evaluate, so
 *	  that the three agree to the last bit on the same data.
 *
 *-------------------------------------------------------------------------
 */
#include "evaluate.h"
#include "checks.h"
#include "serve.h"
#include "source.h"

#include "common/hashfn.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(mf_is_test);
PG_FUNCTION_INFO_V1(mf_fold);
PG_FUNCTION_INFO_V1(mf_is_test_text);
PG_FUNCTION_INFO_V1(mf_fold_text);
PG_FUNCTION_INFO_V1(mf_evaluate);
PG_FUNCTION_INFO_V1(mf_evaluate_by_name);

/*
 * A number in [0, 1) that depends only on (user_id, item_id, seed) and the
 * salt: splitmix64 hashes, 53 bits.
 */
static double
pair_uniform(int64 user_id, int64 item_id, int32 seed, uint64 salt)
{
	uint64		h = mf_mix64(mf_mix64(mf_mix64((uint64) (uint32) seed ^ salt)
									  ^ (uint64) user_id) ^ (uint64) item_id);

	return (double) (h >> 11) / 9007199254740992.0;	/* 2^53 */
}

/* Salts of the two splits: "mf_split" and "mf_folds" in ASCII. */
#define MF_SPLIT_SALT	UINT64CONST(0x6d665f73706c6974)
#define MF_FOLDS_SALT	UINT64CONST(0x6d665f666f6c6473)

int
mf_fold_of(int64 user_id, int64 item_id, int folds, int32 seed)
{
	int			fold = (int) (pair_uniform(user_id, item_id, seed, MF_FOLDS_SALT) * folds);

	return Min(fold, folds - 1);
}

int64
mf_key_hash(const char *key)
{
	return (int64) hash_bytes_extended((const unsigned char *) key, strlen(key), 0);
}

/* Argument 0 or 1 of the split functions: an integer id, or a text one. */
static int64
split_id(FunctionCallInfo fcinfo, int arg, bool text_ids)
{
	if (!text_ids)
		return PG_GETARG_INT64(arg);
	return mf_key_hash(text_to_cstring(PG_GETARG_TEXT_PP(arg)));
}

/* mf_is_test(user_id, item_id, fraction, seed): is the pair held out? */
static Datum
is_test(FunctionCallInfo fcinfo, bool text_ids)
{
	double		fraction = PG_GETARG_FLOAT8(2);

	if (!(fraction >= 0.0 && fraction <= 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("fraction must be between 0 and 1, got %s", float8out_internal(fraction)),
				 errhint("fraction is the share of ratings to hold out for testing, for example 0.2.")));
	PG_RETURN_BOOL(pair_uniform(split_id(fcinfo, 0, text_ids), split_id(fcinfo, 1, text_ids),
								PG_GETARG_INT32(3), MF_SPLIT_SALT) < fraction);
}

/* mf_fold(user_id, item_id, folds, seed): the pair's fold, 0 .. folds - 1. */
static Datum
fold(FunctionCallInfo fcinfo, bool text_ids)
{
	int			folds = PG_GETARG_INT32(2);

	mf_check_folds(folds);
	PG_RETURN_INT32(mf_fold_of(split_id(fcinfo, 0, text_ids), split_id(fcinfo, 1, text_ids),
							   folds, PG_GETARG_INT32(3)));
}

Datum
mf_is_test(PG_FUNCTION_ARGS)
{
	return is_test(fcinfo, false);
}

Datum
mf_is_test_text(PG_FUNCTION_ARGS)
{
	return is_test(fcinfo, true);
}

Datum
mf_fold(PG_FUNCTION_ARGS)
{
	return fold(fcinfo, false);
}

Datum
mf_fold_text(PG_FUNCTION_ARGS)
{
	return fold(fcinfo, true);
}

int32
mf_model_index(const MfIdMap *ids, mf_keymap_hash *keys, const MfRatings *ratings,
			   MfSide side, int32 index)
{
	if (keys)
		return mf_key_find(keys, mf_ratings_keys(ratings, side)[index]);
	return mf_id_map_find(ids, mf_ratings_ids(ratings, side)[index]);
}

void
mf_check_same_id_kind(bool relation_user_keys, bool relation_item_keys,
					  bool user_keys, bool item_keys, const char *relation, bool training)
{
	if (relation_user_keys != user_keys || relation_item_keys != item_keys)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 training
				 ? errmsg("the ids in %s are not of the training data's kind", relation)
				 : errmsg("the ids in %s are not of the model's kind", relation),
				 errdetail("%s user ids are %s and its item ids %s; those of %s are %s and %s.",
						   training ? "The training data's" : "The model's",
						   user_keys ? "text" : "integers", item_keys ? "text" : "integers",
						   relation, relation_user_keys ? "text" : "integers",
						   relation_item_keys ? "text" : "integers"),
				 training
				 ? errhint("Pass a validation relation whose id columns have the types of the training data's, casting them in a view where needed.")
				 : errhint("Pass a relation whose id columns have the types the model was trained on.")));
}

MfTestSet *
mf_test_set(const MfRatings *test, const MfIdMap *users, const MfIdMap *items,
			mf_keymap_hash *user_keys, mf_keymap_hash *item_keys, MemoryContext cxt)
{
	MfTestSet  *set = MemoryContextAllocZero(cxt, sizeof(MfTestSet));
	const MfCsr *rows = &test->by_user;
	int32	   *item_of = mf_alloc_array(cxt, test->n_items, sizeof(int32));

	set->n = test->n_ratings;
	set->user = mf_alloc_array(cxt, set->n, sizeof(int32));
	set->item = mf_alloc_array(cxt, set->n, sizeof(int32));
	set->rating = mf_alloc_array(cxt, set->n, sizeof(double));
	for (int32 i = 0; i < test->n_items; i++)
		item_of[i] = mf_model_index(items, item_keys, test, MF_ITEMS, i);
	for (int32 u = 0; u < rows->n_rows; u++)
	{
		int32		user = mf_model_index(users, user_keys, test, MF_USERS, u);

		for (int64 e = rows->row_start[u]; e < rows->row_start[u + 1]; e++)
		{
			set->user[e] = user;
			set->item[e] = item_of[rows->col[e]];
			set->rating[e] = mf_csr_value(rows, e);
		}
	}
	pfree(item_of);
	return set;
}

/*
 * Sets *error to the error of test row r under factors; false when the
 * model cannot score it (an unknown user or item, without biases).
 */
static bool
test_error(const MfFactors *factors, const MfTestSet *test, int64 r, double *error)
{
	if (!factors->biases && (test->user[r] < 0 || test->item[r] < 0))
		return false;
	*error = (factors->implicit ? 1.0 : test->rating[r]) -
		mf_prediction(factors, test->user[r], test->item[r]);
	return true;
}

/*
 * RMSE and MAE over errors too large to square or add up in double (test
 * ratings near 1e200): every error is divided by the largest first, and
 * both measures are at most the largest error, so they come out finite.
 * An error that is itself beyond double's range (a score that overflowed)
 * has no finite measure: an error says so.
 */
static void
scaled_errors(const MfFactors *factors, const MfTestSet *test, MfErrorMeasures *errors)
{
	double		largest = 0.0;
	double		squares = 0.0;
	double		absolutes = 0.0;

	for (int64 r = 0; r < test->n; r++)
	{
		double		error;

		if (!test_error(factors, test, r, &error))
			continue;
		if (isinf(error))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("the error of a test rating is beyond the range of double precision"),
					 errdetail("Rating %g is scored %g.", test->rating[r],
							   mf_prediction(factors, test->user[r], test->item[r])),
					 errhint("Retrain the model if its scores overflow, or leave out ratings beyond double's range in a view: WHERE abs(rating) < 1e300.")));
		largest = Max(largest, fabs(error));
	}
	for (int64 r = 0; r < test->n; r++)
	{
		double		error;

		if (!test_error(factors, test, r, &error))
			continue;
		squares += (error / largest) * (error / largest);
		absolutes += fabs(error) / largest;
	}
	/* both at most the largest error, so finite */
	errors->rmse = largest * sqrt(squares / errors->scored);
	errors->mae = largest * (absolutes / errors->scored);
}

void
mf_test_error_measures(const MfFactors *factors, const MfTestSet *test,
					   MfErrorMeasures *errors)
{
	double		squares = 0.0;
	double		absolutes = 0.0;

	errors->rows = test->n;
	errors->scored = 0;
	for (int64 r = 0; r < test->n; r++)
	{
		double		error;

		mf_interrupts_every(r, MF_INTERRUPT_ROWS);
		if (!test_error(factors, test, r, &error))
			continue;
		squares += error * error;
		absolutes += fabs(error);
		errors->scored++;
	}
	errors->rmse = errors->scored > 0 ? sqrt(squares / errors->scored) : NAN;
	errors->mae = errors->scored > 0 ? absolutes / errors->scored : NAN;
	if (isinf(squares) || isinf(absolutes))
		scaled_errors(factors, test, errors);
}

/* Sums of the ranking measures over the users ranked. */
typedef struct RankingSums
{
	int64		users;
	double		precision;
	double		recall;
	double		ndcg;
	double		map;
} RankingSums;

/*
 * Adds one test user's ranking measures: the model's top k items (not
 * rated in training) against relevant[] (marks over the model's items),
 * of which n_relevant are relevant in all, known to the model or not.
 * user is -1 for a user the model does not know (a model with biases).
 */
static void
rank_user(const MfSchema *schema, MfModel *model, int32 user,
		  int64 user_id, int k, const bool *relevant, int64 n_relevant,
		  int32 *best, RankingSums *sums)
{
	double	   *scores;
	int32		n_best = mf_top_items(schema, model, user, user_id, k, true, NULL, best,
									  &scores);
	int64		hits = 0;
	double		dcg = 0.0;
	double		ideal = 0.0;
	double		precisions = 0.0;

	pfree(scores);
	for (int32 position = 0; position < n_best; position++)
		if (relevant[best[position]])
		{
			hits++;
			dcg += 1.0 / log2(position + 2.0);
			precisions += (double) hits / (position + 1);
		}
	for (int64 position = 0; position < Min(n_relevant, k); position++)
		ideal += 1.0 / log2(position + 2.0);

	sums->users++;
	sums->precision += (double) hits / k;
	sums->recall += (double) hits / n_relevant;
	sums->ndcg += dcg / ideal;
	sums->map += precisions / Min(n_relevant, k);
}

/*
 * Ranking measures over every test user with a relevant rating (rating >=
 * threshold, or any rating when threshold is NULL) whom the model can
 * rank: a user it does not know only with biases, as for the errors.
 */
static void
rank_users(const MfSchema *schema, MfModel *model, const MfRatings *test,
		   int k, bool has_threshold, double threshold, RankingSums *sums)
{
	const MfCsr *rows = &test->by_user;
	MemoryContext user_cxt = AllocSetContextCreate(CurrentMemoryContext,
												   "mf_evaluate user",
												   ALLOCSET_DEFAULT_SIZES);
	bool	   *relevant = mf_alloc_array(CurrentMemoryContext,
										  model->factors.n_items, sizeof(bool));
	int32	   *best = mf_alloc_array(CurrentMemoryContext,
									  Min(k, model->factors.n_items), sizeof(int32));
	int32	   *item_of = mf_alloc_array(CurrentMemoryContext, test->n_items,
										 sizeof(int32));

	memset(relevant, 0, sizeof(bool) * model->factors.n_items);
	memset(sums, 0, sizeof(RankingSums));
	for (int32 i = 0; i < test->n_items; i++)
		item_of[i] = mf_model_index(model->item_map, model->item_keymap, test, MF_ITEMS, i);

	for (int32 u = 0; u < rows->n_rows; u++)
	{
		int64		begin = rows->row_start[u];
		int64		end = rows->row_start[u + 1];
		int64		n_relevant = 0;
		int32		last_counted = -1;
		int32		user = mf_model_index(model->user_map, model->user_keymap, test, MF_USERS, u);
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		if (user < 0 && !model->factors.biases)
			continue;
		/* entries are sorted by item: count each relevant item once */
		for (int64 e = begin; e < end; e++)
			if ((!has_threshold || mf_csr_value(rows, e) >= threshold) &&
				rows->col[e] != last_counted)
			{
				last_counted = rows->col[e];
				n_relevant++;
				if (item_of[rows->col[e]] >= 0)
					relevant[item_of[rows->col[e]]] = true;
			}
		if (n_relevant == 0)
			continue;

		old = MemoryContextSwitchTo(user_cxt);
		rank_user(schema, model, user, user >= 0 ? model->user_ids[user] : 0, k,
				  relevant, n_relevant,
				  best, sums);
		MemoryContextSwitchTo(old);
		MemoryContextReset(user_cxt);

		for (int64 e = begin; e < end; e++)
			if (item_of[rows->col[e]] >= 0)
				relevant[item_of[rows->col[e]]] = false;
	}
	MemoryContextDelete(user_cxt);
}

/* One (metric, value) row of mf_evaluate's result. */
static void
put_metric(ReturnSetInfo *rsinfo, const char *metric, double value)
{
	Datum		values[2] = {CStringGetTextDatum(metric), Float8GetDatum(value)};
	bool		nulls[2] = {false, isnan(value)};

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * Reads the test relation (argument 1) with the given columns (arguments
 * 4 to 6), or where NULL the columns model was trained on, in cxt: each
 * pair once for an implicit-feedback model.
 */
static MfRatings *
read_test_relation(FunctionCallInfo fcinfo, const MfModel *model, MemoryContext cxt)
{
	const char *trained[3] = {model->row.user_col, model->row.item_col, model->row.rating_col};
	bool		implicit = model->factors.implicit; /* model may be gone after the read */
	const char *columns[3];
	MfSource	source = {0};
	MfRatings  *test;

	for (int c = 0; c < 3; c++)
		columns[c] = PG_ARGISNULL(4 + c) ? MemoryContextStrdup(cxt, trained[c])
			: NameStr(*PG_GETARG_NAME(4 + c));
	source.argname = "test";
	source.fixed_columns = false;
	source.relid = PG_GETARG_OID(1);
	source.user_key_form = model->user_key_form;
	source.item_key_form = model->item_key_form;
	source.user_col = columns[0];
	source.item_col = columns[1];
	source.rating_col = columns[2];
	mf_source_validate(&source);
	mf_check_same_id_kind(source.user_keys, source.item_keys, model->user_keys != NULL,
						  model->item_keys != NULL,
						  mf_argument_display_name(source.relid, "test"), false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	mf_source_lock_read(&source);
	mf_source_push_read_snapshot((MfSource *[]) {&source}, 1);
	test = mf_source_read(&source, cxt);
	PopActiveSnapshot();
	SPI_finish();
	if (implicit)
		mf_ratings_event_log(test);	/* each held-out pair once */
	if (test->n_ratings == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("test relation %s has no ratings", mf_source_display_name(source.relid)),
				 errhint("%s", mf_no_ratings_hint(test, "Pass a relation of held-out ratings, for example rows where mf_is_test(user, item, 0.2) holds."))));
	return test;
}

/* The arguments of mf_evaluate beyond the model: test, k, threshold. */
static void
check_evaluate_arguments(FunctionCallInfo fcinfo)
{
	mf_check_not_null(fcinfo, 1, "test", "Pass the relation of held-out ratings.");
	mf_check_not_null(fcinfo, 2, "k", "Omit k to rank the top 10.");
	mf_check_count(PG_GETARG_INT32(2), "k",
				   "k is the length of the ranked list the ranking measures judge; 10 is usual.");
	if (!PG_ARGISNULL(3) && !isfinite(PG_GETARG_FLOAT8(3)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("threshold must be a finite number, got %s", float8out_internal(PG_GETARG_FLOAT8(3))),
				 errhint("Ratings at or above threshold count as relevant; NULL makes every test rating relevant.")));
}

/* mf_evaluate's rows: the error measures, then the ranking measures at k. */
static void
put_measures(ReturnSetInfo *rsinfo, const MfErrorMeasures *errors,
			 const RankingSums *sums, int k)
{
	put_metric(rsinfo, "rmse", errors->rmse);
	put_metric(rsinfo, "mae", errors->mae);
	put_metric(rsinfo, "rows", (double) errors->rows);
	put_metric(rsinfo, "scored", (double) errors->scored);
	put_metric(rsinfo, "coverage", (double) errors->scored / errors->rows);
	put_metric(rsinfo, "users", (double) sums->users);
	put_metric(rsinfo, psprintf("precision@%d", k),
			   sums->users ? sums->precision / sums->users : NAN);
	put_metric(rsinfo, psprintf("recall@%d", k),
			   sums->users ? sums->recall / sums->users : NAN);
	put_metric(rsinfo, psprintf("ndcg@%d", k),
			   sums->users ? sums->ndcg / sums->users : NAN);
	put_metric(rsinfo, psprintf("map@%d", k),
			   sums->users ? sums->map / sums->users : NAN);
}

/*
 * mf_evaluate(model, test, k, threshold, user_col, item_col, rating_col):
 * the model's error and ranking measures on the ratings in test.  Reading
 * the test relation runs the caller's SQL (a view may serve or retrain
 * other models), which may evict the model first looked up from the
 * cache, so only its id is kept across the read.
 */
static Datum
evaluate(FunctionCallInfo fcinfo, bool by_name)
{
	MfModel    *model = mf_model_argument(fcinfo, by_name);
	int32		model_id = model->row.model_id;
	MfSchema	schema = mf_schema_of(fcinfo);
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "mf_evaluate",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old;
	MfRatings  *test;
	MfTestSet  *set;
	MfErrorMeasures errors;
	RankingSums sums;

	check_evaluate_arguments(fcinfo);
	/* before the test relation is read: the ranking leaves training items out */
	(void) mf_catalog_check_rated_items_read(&schema,
											 "Ranking each test user's top k without the items rated in training (mf_evaluate's precision@k, recall@k, ndcg@k and map@k)",
											 "run mf_evaluate as a role that may read it");
	InitMaterializedSRF(fcinfo, 0);
	old = MemoryContextSwitchTo(cxt);
	test = read_test_relation(fcinfo, model, cxt);
	/* the model of the statement's snapshot, as before the read: its ids' kind checked */
	model = mf_cache_model_by_id(fcinfo, model_id);
	set = mf_test_set(test, model->user_map, model->item_map,
					  model->user_keymap, model->item_keymap, cxt);
	mf_test_error_measures(&model->factors, set, &errors);
	rank_users(&schema, model, test, PG_GETARG_INT32(2), !PG_ARGISNULL(3),
			   PG_ARGISNULL(3) ? 0.0 : PG_GETARG_FLOAT8(3), &sums);
	MemoryContextSwitchTo(old);
	put_measures((ReturnSetInfo *) fcinfo->resultinfo, &errors, &sums, PG_GETARG_INT32(2));
	MemoryContextDelete(cxt);
	return (Datum) 0;
}

Datum
mf_evaluate(PG_FUNCTION_ARGS)
{
	return evaluate(fcinfo, false);
}

Datum
mf_evaluate_by_name(PG_FUNCTION_ARGS)
{
	return evaluate(fcinfo, true);
}
