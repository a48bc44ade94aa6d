/*-------------------------------------------------------------------------
 *
 * tune.c
 *	  mf_cross_validate(): k-fold cross-validation over a grid of k and
 *	  lambda, in one call and without writing anything.
 *
 *	  The ratings are read once.  Fold f holds the pairs with
 *	  mf_fold(user, item, folds, seed) = f; for each fold, the other folds
 *	  are indexed once and every (k, lambda) of the grid is fitted on them
 *	  and scored on fold f with the same code as mf_train's validation and
 *	  mf_evaluate.  Each fit lives in a memory context reset after it.
 *
 *-------------------------------------------------------------------------
 */
#include "mf_ext.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(mf_cross_validate);

/* Argument positions, as declared in sql/mf_ext--0.2--0.3.sql. */
enum
{
	ARG_SOURCE,
	ARG_KS,
	ARG_LAMBDAS,
	ARG_FOLDS,
	ARG_ITERATIONS,
	ARG_BIASES,
	ARG_WEIGHTED_LAMBDA,
	ARG_USER_COL,
	ARG_ITEM_COL,
	ARG_RATING_COL,
	ARG_SEED,
	ARG_DOUBLE_PRECISION,
	ARG_TOLERANCE,
	N_ARGS
};

static const char *const arg_names[] = {
	"source", "ks", "lambdas", "folds", "iterations", "biases",
	"weighted_lambda", "user_col", "item_col", "rating_col", "seed",
	"double_precision", "tolerance"
};

/* One (k, lambda) of the grid, with its results per fold. */
typedef struct GridPoint
{
	MfFitOptions options;
	double	   *rmse;			/* per fold */
	double	   *mae;
	double		coverage;		/* summed over folds */
	double		seconds;
} GridPoint;

/* The hint for a missing or empty ks or lambdas argument. */
static int
grid_hint(const char *name)
{
	return errhint("Pass the %s to try, for example %s.", name,
				   strcmp(name, "ks") == 0 ? "ARRAY[10, 20, 50]" : "ARRAY[0.01, 0.1, 1]");
}

/* The elements of a one-dimensional array argument without NULLs. */
static Datum *
array_elements(ArrayType *array, Oid elemtype, const char *name, int *n)
{
	Datum	   *elements;
	bool	   *nulls;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", name),
				 grid_hint(name)));
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(array, elemtype, typlen, typbyval, typalign,
					  &elements, &nulls, n);
	if (*n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", name),
				 grid_hint(name)));
	for (int i = 0; i < *n; i++)
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain NULL", name),
					 errhint("Remove the NULL from %s.", name)));
	return elements;
}

/* The grid: every k of ks with every lambda of lambdas, k outermost. */
static GridPoint *
build_grid(FunctionCallInfo fcinfo, int folds, int *n_points)
{
	int			n_ks;
	int			n_lambdas;
	Datum	   *ks = array_elements(PG_GETARG_ARRAYTYPE_P(ARG_KS), INT4OID, "ks", &n_ks);
	Datum	   *lambdas = array_elements(PG_GETARG_ARRAYTYPE_P(ARG_LAMBDAS), FLOAT8OID,
										 "lambdas", &n_lambdas);
	Size		n = mul_size(n_ks, n_lambdas);
	GridPoint  *grid;
	int			p = 0;

	/* each point keeps an RMSE and an MAE per fold */
	mf_check_memory_hint(mul_size(n, add_size(sizeof(GridPoint), mul_size(folds, 2 * sizeof(double)))),
						 psprintf("A grid of %d values of k by %d of lambda, %d folds each.",
								  n_ks, n_lambdas, folds),
						 "Cross-validate fewer values of k and lambda at a time, or fewer folds.");
	if (n > INT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a grid of %d values of k by %d of lambda is too large", n_ks, n_lambdas),
				 grid_hint("ks")));
	grid = palloc0(mul_size(n, sizeof(GridPoint)));
	for (int a = 0; a < n_ks; a++)
		for (int b = 0; b < n_lambdas; b++)
		{
			MfFitOptions *options = &grid[p].options;

			CHECK_FOR_INTERRUPTS();

			options->k = DatumGetInt32(ks[a]);
			options->lambda = DatumGetFloat8(lambdas[b]);
			options->iterations = PG_GETARG_INT32(ARG_ITERATIONS);
			options->biases = PG_GETARG_BOOL(ARG_BIASES);
			options->weighted_lambda = PG_GETARG_BOOL(ARG_WEIGHTED_LAMBDA);
			options->seed = PG_GETARG_INT32(ARG_SEED);
			options->single = !PG_GETARG_BOOL(ARG_DOUBLE_PRECISION);
			options->tolerance = PG_GETARG_FLOAT8(ARG_TOLERANCE);
			mf_check_fit_options(options);
			grid[p].rmse = palloc(sizeof(double) * folds);
			grid[p].mae = palloc(sizeof(double) * folds);
			p++;
		}
	*n_points = p;
	return grid;
}

/*
 * Fits every grid point on the ratings outside fold and scores it on the
 * fold's ratings.  fold_of[e] is the fold of entry e of all->by_user.
 */
static void
run_fold(const MfRatings *all, const uint8 *fold_of, int fold, GridPoint *grid,
		 int n_points, MemoryContext cxt)
{
	MemoryContext fold_cxt = AllocSetContextCreate(cxt, "mf_cross_validate fold",
												   ALLOCSET_DEFAULT_SIZES);
	MemoryContext fit_cxt = AllocSetContextCreate(fold_cxt, "mf_cross_validate fit",
												  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(fold_cxt);
	int64		n = all->n_ratings;
	bool	   *keep = mf_alloc_array(fold_cxt, n, sizeof(bool));
	int32	   *user_remap = mf_alloc_array(fold_cxt, all->n_users, sizeof(int32));
	int32	   *item_remap = mf_alloc_array(fold_cxt, all->n_items, sizeof(int32));
	MfTestSet  *test = palloc0(sizeof(MfTestSet));
	MfRatings  *training;
	const MfCsr *rows = &all->by_user;

	for (int64 e = 0; e < n; e++)
	{
		keep[e] = fold_of[e] != fold;
		test->n += !keep[e];
	}
	training = mf_ratings_subset(all, keep, user_remap, item_remap, fold_cxt);

	test->user = mf_alloc_array(fold_cxt, test->n, sizeof(int32));
	test->item = mf_alloc_array(fold_cxt, test->n, sizeof(int32));
	test->rating = mf_alloc_array(fold_cxt, test->n, sizeof(double));
	test->n = 0;
	for (int32 u = 0; u < rows->n_rows; u++)
		for (int64 e = rows->row_start[u]; e < rows->row_start[u + 1]; e++)
			if (!keep[e])
			{
				test->user[test->n] = user_remap[u];
				test->item[test->n] = item_remap[rows->col[e]];
				test->rating[test->n] = rows->val[e];
				test->n++;
			}

	for (int p = 0; p < n_points; p++)
	{
		GridPoint  *point = &grid[p];
		MfFitHistory history;
		MfErrors	errors;
		MfAls	   *als;
		instr_time	start;
		instr_time	elapsed;
		int			threads;

		INSTR_TIME_SET_CURRENT(start);
		MemoryContextSwitchTo(fit_cxt);
		mf_check_memory(mf_als_memory_estimate(training, &point->options, &threads),
						psprintf("Cross-validating on " INT64_FORMAT " ratings of %d users and %d items with k = %d.",
								 training->n_ratings, training->n_users,
								 training->n_items, point->options.k));
		als = mf_als_create(training, &point->options, fit_cxt);
		mf_als_init_items(als, point->options.seed);
		mf_fit(als, training, &point->options, NULL, false, &history);
		mf_test_errors(mf_als_factors(als), test, &errors);
		if (errors.scored == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("no rating in fold %d is of a user and an item with ratings in the other folds",
							fold),
					 errdetail("Without biases, a model cannot predict the ratings of users or items it was not trained on."),
					 errhint("Pass biases := true, cross-validate on more ratings, or use fewer folds.")));
		point->rmse[fold] = errors.rmse;
		point->mae[fold] = errors.mae;
		point->coverage += (double) errors.scored / errors.rows;
		MemoryContextReset(fit_cxt);

		INSTR_TIME_SET_CURRENT(elapsed);
		INSTR_TIME_SUBTRACT(elapsed, start);
		point->seconds += INSTR_TIME_GET_DOUBLE(elapsed);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(fold_cxt);
}

/* Mean, sample standard deviation, minimum and maximum of values[0..n). */
static void
summarize(const double *values, int n, double *mean, double *stddev,
		  double *min, double *max)
{
	double		sum = 0.0;
	double		squares = 0.0;

	*min = *max = values[0];
	for (int i = 0; i < n; i++)
	{
		sum += values[i];
		*min = Min(*min, values[i]);
		*max = Max(*max, values[i]);
	}
	*mean = sum / n;
	for (int i = 0; i < n; i++)
		squares += (values[i] - *mean) * (values[i] - *mean);
	*stddev = sqrt(squares / (n - 1));
}

Datum
mf_cross_validate(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext cxt;
	MemoryContext old;
	MfSource	source;
	MfRatings  *all;
	GridPoint  *grid;
	uint8	   *fold_of;
	int64	   *fold_sizes;
	int			n_points;
	int			folds;
	int32		seed;

	for (int arg = 0; arg < N_ARGS; arg++)
		if (PG_ARGISNULL(arg))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be NULL", arg_names[arg]),
					 arg == ARG_SOURCE ? errhint("Pass the relation that holds the ratings.")
					 : arg <= ARG_LAMBDAS ? grid_hint(arg_names[arg])
					 : errhint("Omit the argument to use its default.")));
	folds = PG_GETARG_INT32(ARG_FOLDS);
	seed = PG_GETARG_INT32(ARG_SEED);
	mf_check_folds(folds);
	grid = build_grid(fcinfo, folds, &n_points);

	source.argname = "source";
	source.fixed_columns = false;
	source.relid = PG_GETARG_OID(ARG_SOURCE);
	source.user_col = NameStr(*PG_GETARG_NAME(ARG_USER_COL));
	source.item_col = NameStr(*PG_GETARG_NAME(ARG_ITEM_COL));
	source.rating_col = NameStr(*PG_GETARG_NAME(ARG_RATING_COL));
	mf_source_validate(&source);

	InitMaterializedSRF(fcinfo, 0);
	cxt = AllocSetContextCreate(CurrentMemoryContext, "mf_cross_validate",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	all = mf_ratings_read(&source, cxt);
	SPI_finish();
	if (all->n_ratings == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s has no ratings to cross-validate on",
						mf_source_display_name(source.relid)),
				 errhint("Load ratings into the relation, or pass the one that holds them.")));

	fold_of = mf_alloc_array(cxt, all->n_ratings, sizeof(uint8));
	fold_sizes = palloc0(sizeof(int64) * folds);
	for (int32 u = 0; u < all->n_users; u++)
	{
		/* text ids fold by their text, as mf_fold(text, text) does */
		int64		user = all->user_keys ? mf_key_hash(all->user_keys[u]) : all->user_ids[u];

		for (int64 e = all->by_user.row_start[u]; e < all->by_user.row_start[u + 1]; e++)
		{
			int32		item = all->by_user.col[e];

			fold_of[e] = (uint8) mf_fold_of(user,
											all->item_keys ? mf_key_hash(all->item_keys[item])
											: all->item_ids[item],
											folds, seed);
			fold_sizes[fold_of[e]]++;
		}
	}
	for (int fold = 0; fold < folds; fold++)
		if (fold_sizes[fold] == 0 || fold_sizes[fold] == all->n_ratings)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s ratings fall in fold %d (mf_fold = %d of %d folds)",
							fold_sizes[fold] == 0 ? "no" : "all", fold, fold, folds),
					 errdetail("Every fold must hold some ratings for testing and leave some for training."),
					 errhint("Cross-validate on more ratings, or with fewer folds.")));
	/* the folds are cut from users' rows: the item side is not needed */
	mf_ratings_free_by_item(all);

	for (int fold = 0; fold < folds; fold++)
	{
		instr_time	start;
		instr_time	elapsed;

		INSTR_TIME_SET_CURRENT(start);
		run_fold(all, fold_of, fold, grid, n_points, cxt);
		INSTR_TIME_SET_CURRENT(elapsed);
		INSTR_TIME_SUBTRACT(elapsed, start);
		ereport(NOTICE,
				(errmsg("fold %d (of folds 0 to %d): %d fits in %.3f s", fold,
						folds - 1, n_points, INSTR_TIME_GET_DOUBLE(elapsed))));
	}
	MemoryContextSwitchTo(old);

	for (int p = 0; p < n_points; p++)
	{
		GridPoint  *point = &grid[p];
		double		mean,
					stddev,
					min,
					max,
					mae,
					ignored;
		Datum		values[10];
		bool		nulls[10] = {false};

		summarize(point->rmse, folds, &mean, &stddev, &min, &max);
		summarize(point->mae, folds, &mae, &ignored, &ignored, &ignored);
		values[0] = Int32GetDatum(point->options.k);
		values[1] = Float8GetDatum(point->options.lambda);
		values[2] = Int32GetDatum(folds);
		values[3] = Float8GetDatum(mean);
		values[4] = Float8GetDatum(stddev);
		values[5] = Float8GetDatum(min);
		values[6] = Float8GetDatum(max);
		values[7] = Float8GetDatum(mae);
		values[8] = Float8GetDatum(point->coverage / folds);
		values[9] = Float8GetDatum(point->seconds);
		for (int c = 3; c < 9; c++)
			nulls[c] = isnan(DatumGetFloat8(values[c]));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	MemoryContextDelete(cxt);
	return (Datum) 0;
}
