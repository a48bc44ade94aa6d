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
 *	  mf_evaluate.  Each fit lives in a memory context reset after it.  The
 *	  steps are those of a CvState: init, read, run each fold, put results.
 *
 *-------------------------------------------------------------------------
 */
#include "mf_ext.h"
#include "als.h"
#include "arguments.h"
#include "checks.h"
#include "evaluate.h"
#include "progress.h"
#include "ratings.h"
#include "source.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(mf_cross_validate);

/* mf_cross_validate's arguments in this version (sql/mf_ext.sql). */
#define CV_ARGUMENTS	17

/* One point of the grid (k, lambda, bias_lambda, implicit_weight), with its results per fold. */
typedef struct GridPoint
{
	MfFitOptions options;
	double	   *rmse;			/* per fold */
	double	   *mae;
	double		coverage;		/* summed over folds */
	double		seconds;
} GridPoint;

/* The hint for a NULL argument name: for ks or lambdas, what to pass. */
static const char *
argument_hint(const char *name)
{
	if (strcmp(name, "source") == 0)
		return "Pass the relation that holds the ratings.";
	if (strcmp(name, "ks") == 0 || strcmp(name, "lambdas") == 0)
		return psprintf("Pass the %s to try, for example %s.", name,
						strcmp(name, "ks") == 0 ? "ARRAY[10, 20, 50]" : "ARRAY[0.01, 0.1, 1]");
	if (strcmp(name, "bias_lambdas") == 0)
		return "Pass the bias_lambda values to try, for example ARRAY[0, 1, 10], or omit bias_lambdas to regularise the biases as the factors.";
	if (strcmp(name, "implicit_weights") == 0)
		return "Pass the implicit_weight values to try, for example ARRAY[0, 0.2, 0.5], or omit implicit_weights to leave the implicit information out.";
	return NULL;
}

static int
grid_hint(const char *name)
{
	return errhint("%s", argument_hint(name));
}

/* A grid value's entry in refuse_repeats' hash table, its share of buckets with it. */
#define MF_GRID_VALUE_BYTES 64

/*
 * An error (22023) for a value listed twice in grid argument name (n
 * elements of type elemtype, int4 or float8, each already checked as a
 * grid point's, the grid's memory too): the fits are deterministic, so a
 * repeated point would be fitted again for the same row.  The values go
 * into a hash table (-0 as 0), with looks for a cancel.
 */
static void
refuse_repeats(const Datum *elements, Oid elemtype, const char *name, int n)
{
	HASHCTL		ctl = {.keysize = sizeof(double), .entrysize = sizeof(double),
	.hcxt = CurrentMemoryContext};
	HTAB	   *seen = hash_create("mf_cross_validate grid values", n, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	for (int i = 0; i < n; i++)
	{
		double		value = (elemtype == INT4OID ? (double) DatumGetInt32(elements[i])
							 : DatumGetFloat8(elements[i])) + 0.0;
		bool		found;

		mf_interrupts_every(i, MF_INTERRUPT_ROWS);
		(void) hash_search(seen, &value, HASH_ENTER, &found);
		if (found)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s lists %s more than once", name, float8out_internal(value)),
					 errdetail("Each fit is deterministic: a repeated value would fit the same models again and give the same result row twice."),
					 errhint("List each value of %s once.", name)));
	}
	hash_destroy(seen);
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

/* One call of mf_cross_validate. */
typedef struct CvState
{
	int			folds;
	int32		seed;
	GridPoint  *grid;
	int			n_points;
	MfSource	source;
	MemoryContext cxt;			/* everything below lives here */
	MfRatings  *all;			/* every rating (users' rows only, once folded) */
	uint8	   *fold_of;		/* per entry of all->by_user */
} CvState;

/*
 * A grid point's values, "k = 2, lambda = 0.1" and those of the optional
 * grids, then which of mf_cross_validate's arguments each name stands for:
 * an error the point meets is mf_train's, and names mf_train's options.
 */
static char *
grid_point_values(const MfFitOptions *options)
{
	bool		bias_lambda = options->bias_lambda != -1;
	bool		implicit_weight = options->implicit_weight != 0;

	return psprintf("k = %d, lambda = %g%s%s (in this error k, lambda%s%s are values of ks, lambdas%s%s)",
					options->k, options->lambda,
					bias_lambda ? psprintf(", bias_lambda = %g", options->bias_lambda) : "",
					implicit_weight ? psprintf(", implicit_weight = %g", options->implicit_weight) : "",
					bias_lambda ? ", bias_lambda" : "", implicit_weight ? ", implicit_weight" : "",
					bias_lambda ? ", bias_lambdas" : "", implicit_weight ? ", implicit_weights" : "");
}

/* Error context of a grid point's check: which point, and which arguments made it. */
static void
grid_point_context(void *arg)
{
	const MfFitOptions *options = arg;

	errcontext("the cross-validation grid's point %s: leave out the values, or the argument, "
			   "the error names, or cross-validate the values it pairs in calls of their own",
			   grid_point_values(options));
}

/* A fit of a grid point on a fold's training ratings, for its error context. */
typedef struct FitContext
{
	const MfFitOptions *options;
	int			fold;
} FitContext;

/* Error context of a grid point's fit: which point, on which fold's ratings. */
static void
fit_context(void *arg)
{
	const FitContext *fit = arg;

	errcontext("fitting the cross-validation grid's point %s on the training ratings of fold %d",
			   grid_point_values(fit->options), fit->fold);
}

/* The elements of the optional grid argument name (NULL: not given; *n = 1). */
static Datum *
optional_elements(const MfArguments *args, const char *name, int *n)
{
	*n = 1;
	if (!mf_argument_given(args, name))
		return NULL;
	return array_elements(DatumGetArrayTypeP(mf_argument(args, name)), FLOAT8OID, name, n);
}

/*
 * The grid: every k of ks with every lambda of lambdas, every bias_lambda
 * of bias_lambdas (none given: the factors' lambda) and every
 * implicit_weight of implicit_weights (none given: 0), k outermost, the
 * other options those of the call's arguments.
 */
static void
build_grid(CvState *state, const MfArguments *args)
{
	int			n_ks;
	int			n_lambdas;
	int			n_bias;
	int			n_implicit;
	Datum	   *ks = array_elements(DatumGetArrayTypeP(mf_argument(args, "ks")), INT4OID,
									"ks", &n_ks);
	Datum	   *lambdas = array_elements(DatumGetArrayTypeP(mf_argument(args, "lambdas")),
										 FLOAT8OID, "lambdas", &n_lambdas);
	Datum	   *bias_lambdas = optional_elements(args, "bias_lambdas", &n_bias);
	Datum	   *implicit_weights = optional_elements(args, "implicit_weights", &n_implicit);
	Size		n = mul_size(mul_size(mul_size(n_ks, n_lambdas), n_bias), n_implicit);
	MfFitOptions base = {.bias_lambda = -1};
	double	   *fold_results;	/* per point an RMSE, then an MAE, per fold */
	MfMemory	memory = {0};
	ErrorContextCallback context = {error_context_stack, grid_point_context, NULL};
	char	   *shape = psprintf("%d values of k by %d of lambda%s%s", n_ks, n_lambdas,
								 bias_lambdas ? psprintf(" by %d of bias_lambda", n_bias) : "",
								 implicit_weights ? psprintf(" by %d of implicit_weight", n_implicit) : "");

	/* each point keeps an RMSE and an MAE per fold; each value an entry of refuse_repeats' table */
	mf_memory_add(&memory, n, add_size(sizeof(GridPoint), mul_size(state->folds, 2 * sizeof(double))));
	mf_memory_add(&memory, (Size) n_ks + n_lambdas + n_bias + n_implicit, MF_GRID_VALUE_BYTES);
	mf_memory_check(&memory, "the cross-validation grid",
					psprintf("A grid of %s, %d folds each.", shape, state->folds),
					"Cross-validate fewer values of k and lambda at a time, or fewer folds.");
	if (n > INT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a grid of %s is too large", shape),
				 grid_hint("ks")));
	mf_read_fit_options(args, &base);
	if (bias_lambdas && !base.biases)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bias_lambdas needs biases := true"),
				 errdetail("bias_lambda regularises the biases, and without biases the models have none."),
				 errhint("Pass biases := true, or leave out bias_lambdas.")));
	/*
	 * the options no grid value sets (iterations, alpha, ...) refused as
	 * such, before the points, whose errors blame the point's values
	 */
	{
		MfFitOptions outside_grid = base;

		outside_grid.k = 1;
		outside_grid.lambda = 1.0;
		mf_check_fit_options(&outside_grid);
	}
	/* zeroed point by point below, with looks for a cancel */
	state->grid = MemoryContextAllocHuge(CurrentMemoryContext, mul_size(n, sizeof(GridPoint)));
	fold_results = MemoryContextAllocHuge(CurrentMemoryContext,
										  mul_size(n, mul_size(state->folds, 2 * sizeof(double))));
	state->n_points = (int) n;
	for (int p = 0; p < state->n_points; p++)
	{
		GridPoint  *point = &state->grid[p];
		int			rest = p;

		CHECK_FOR_INTERRUPTS();
		*point = (GridPoint) {.options = base};
		if (implicit_weights)
			point->options.implicit_weight = DatumGetFloat8(implicit_weights[rest % n_implicit]);
		rest /= n_implicit;
		if (bias_lambdas)
			point->options.bias_lambda = DatumGetFloat8(bias_lambdas[rest % n_bias]);
		rest /= n_bias;
		point->options.lambda = DatumGetFloat8(lambdas[rest % n_lambdas]);
		point->options.k = DatumGetInt32(ks[rest / n_lambdas]);
		context.arg = &point->options;
		error_context_stack = &context;
		mf_check_fit_options(&point->options);
		error_context_stack = context.previous;
		point->rmse = fold_results + (Size) p * 2 * state->folds;
		point->mae = point->rmse + state->folds;
	}
	refuse_repeats(ks, INT4OID, "ks", n_ks);
	refuse_repeats(lambdas, FLOAT8OID, "lambdas", n_lambdas);
	if (bias_lambdas)
		refuse_repeats(bias_lambdas, FLOAT8OID, "bias_lambdas", n_bias);
	if (implicit_weights)
		refuse_repeats(implicit_weights, FLOAT8OID, "implicit_weights", n_implicit);
}

/* Checks the arguments and builds the grid and the source, before any reading. */
static void
cv_init(CvState *state, FunctionCallInfo fcinfo)
{
	static const char *const nullable[] = {"bias_lambdas", "implicit_weights", NULL};
	MfArguments args = mf_arguments(fcinfo, "mf_cross_validate", CV_ARGUMENTS, nullable,
									argument_hint);

	state->folds = DatumGetInt32(mf_argument(&args, "folds"));
	state->seed = DatumGetInt32(mf_argument(&args, "seed"));
	mf_check_folds(state->folds);
	build_grid(state, &args);
	state->source.argname = "source";
	state->source.fixed_columns = false;
	state->source.relid = DatumGetObjectId(mf_argument(&args, "source"));
	state->source.user_col = NameStr(*DatumGetName(mf_argument(&args, "user_col")));
	state->source.item_col = NameStr(*DatumGetName(mf_argument(&args, "item_col")));
	state->source.rating_col = NameStr(*DatumGetName(mf_argument(&args, "rating_col")));
	mf_source_validate(&state->source);
	state->cxt = AllocSetContextCreate(CurrentMemoryContext, "mf_cross_validate",
									   ALLOCSET_DEFAULT_SIZES);
}

/*
 * The numbers one side's ids are folded by, as mf_fold folds them: with
 * text ids on either side, every id by the hash of its text (as
 * mf_fold(user_id::text, item_id::text, ...)), else the integers.
 */
static int64 *
fold_ids(const MfRatings *all, MfSide side, MemoryContext cxt)
{
	int32		n = side == MF_USERS ? all->n_users : all->n_items;
	char	   *const *keys = mf_ratings_keys(all, side);
	const int64 *ids = mf_ratings_ids(all, side);
	bool		by_text = all->user_keys != NULL || all->item_keys != NULL;
	int64	   *fold_id = mf_alloc_array(cxt, n, sizeof(int64));

	for (int32 r = 0; r < n; r++)
	{
		char	   *text = keys || !by_text ? NULL : psprintf(INT64_FORMAT, ids[r]);

		mf_interrupts_every(r, MF_INTERRUPT_ROWS);
		fold_id[r] = keys ? mf_key_hash(keys[r]) : text ? mf_key_hash(text) : ids[r];
		if (text)
			pfree(text);
	}
	return fold_id;
}

/*
 * Reads the ratings and numbers each one's fold; every fold must hold
 * some ratings and leave some.
 */
static void
cv_read(CvState *state)
{
	MfRatings  *all;
	int64	   *fold_sizes = palloc0(sizeof(int64) * state->folds);
	int64	   *user_fold_ids;
	int64	   *item_fold_ids;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	mf_source_lock_read(&state->source);
	mf_source_push_read_snapshot((MfSource *[]) {&state->source}, 1);
	all = state->all = mf_source_read(&state->source, state->cxt);
	PopActiveSnapshot();
	SPI_finish();
	if (all->n_ratings == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s has no ratings to cross-validate on",
						mf_source_display_name(state->source.relid)),
				 errhint("%s", mf_no_ratings_hint(all, "Load ratings into the relation, or pass the one that holds them."))));
	state->fold_of = mf_alloc_array(state->cxt, all->n_ratings, sizeof(uint8));
	user_fold_ids = fold_ids(all, MF_USERS, state->cxt);
	item_fold_ids = fold_ids(all, MF_ITEMS, state->cxt);
	for (int32 u = 0; u < all->n_users; u++)
		for (int64 e = all->by_user.row_start[u]; e < all->by_user.row_start[u + 1]; e++)
		{
			mf_interrupts_every(e, MF_INTERRUPT_VALUES);
			state->fold_of[e] = (uint8) mf_fold_of(user_fold_ids[u], item_fold_ids[all->by_user.col[e]],
												   state->folds, state->seed);
			fold_sizes[state->fold_of[e]]++;
		}
	for (int fold = 0; fold < state->folds; fold++)
		if (fold_sizes[fold] == 0 || fold_sizes[fold] == all->n_ratings)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s ratings fall in fold %d (mf_fold = %d of %d folds)",
							fold_sizes[fold] == 0 ? "no" : "all", fold, fold, state->folds),
					 errdetail("Every fold must hold some ratings for testing and leave some for training."),
					 state->folds > 2 ? errhint("Cross-validate on more ratings, or with fewer folds.")
					 : errhint("Cross-validate on more ratings (two folds are the fewest).")));
	/* the folds are cut from users' rows: the item side is not needed */
	mf_ratings_free_by_item(all);
}

/*
 * The ratings of all whose entries keep[] leaves out, as a test set of the
 * subset's users and items (remapped by user_remap, item_remap).
 */
static MfTestSet *
held_out_ratings(const MfRatings *all, const bool *keep, const int32 *user_remap,
				 const int32 *item_remap, MemoryContext cxt)
{
	const MfCsr *rows = &all->by_user;
	MfTestSet  *test = MemoryContextAllocZero(cxt, sizeof(MfTestSet));

	for (int64 e = 0; e < all->n_ratings; e++)
	{
		mf_interrupts_every(e, MF_INTERRUPT_VALUES);
		test->n += !keep[e];
	}
	test->user = mf_alloc_array(cxt, test->n, sizeof(int32));
	test->item = mf_alloc_array(cxt, test->n, sizeof(int32));
	test->rating = mf_alloc_array(cxt, test->n, sizeof(double));
	test->n = 0;
	for (int32 u = 0; u < rows->n_rows; u++)
		for (int64 e = rows->row_start[u]; e < rows->row_start[u + 1]; e++)
		{
			mf_interrupts_every(e, MF_INTERRUPT_VALUES);
			if (!keep[e])
			{
				test->user[test->n] = user_remap[u];
				test->item[test->n] = item_remap[rows->col[e]];
				test->rating[test->n] = mf_csr_value(rows, e);
				test->n++;
			}
		}
	return test;
}

/*
 * Fits grid point point on training, scores it on fold's test set (of
 * folds), in cxt;
 * held: the bytes the cross-validation holds beside the fit (all the
 * ratings, the fold's split and test set), counted with its estimate.
 */
static void
fit_point(GridPoint *point, const MfRatings *training, const MfRatingsSummary *summary,
		  const MfTestSet *test, int fold, int folds, Size held, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	MfMemory	memory = {0};
	MfFitHistory history;
	MfErrorMeasures measures;
	MfAls	   *als;
	instr_time	start;
	FitContext	fit = {&point->options, fold};
	ErrorContextCallback context = {error_context_stack, fit_context, &fit};

	INSTR_TIME_SET_CURRENT(start);
	error_context_stack = &context;
	mf_memory_add(&memory, 1, held);
	(void) mf_als_memory_estimate(training, &point->options, &memory);
	mf_memory_check(&memory, "cross-validation",
					psprintf("Cross-validating on " INT64_FORMAT " ratings of %d users and %d items with k = %d, beside all " INT64_FORMAT " ratings and the fold's " INT64_FORMAT " held out.",
							 training->n_ratings, training->n_users,
							 training->n_items, point->options.k,
							 training->n_ratings + test->n, test->n),
					psprintf("Raise mf_ext.max_memory (a superuser setting), leave k = %d out of ks, lower mf_ext.threads, or cross-validate on a sample of the ratings.",
							 point->options.k));
	als = mf_als_create(training, &point->options, summary, NULL, NULL, cxt);
	mf_als_init_items(als, point->options.seed);
	mf_fit(als, &point->options, NULL, false, &history);
	error_context_stack = context.previous;
	mf_test_error_measures(mf_als_factors(als), test, &measures);
	if (measures.scored == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no rating in fold %d is of a user and an item with ratings in the other folds",
						fold),
				 errdetail("Without biases, a model cannot predict the ratings of users or items it was not trained on."),
				 folds > 2 ? errhint("Pass biases := true, cross-validate on more ratings, or use fewer folds.")
				 : errhint("Pass biases := true, or cross-validate on more ratings (two folds are the fewest).")));
	point->rmse[fold] = measures.rmse;
	point->mae[fold] = measures.mae;
	point->coverage += (double) measures.scored / measures.rows;
	MemoryContextSwitchTo(old);
	MemoryContextReset(cxt);
	point->seconds += mf_seconds_since(start);
}

/* Error context of a fold's check of its training ratings. */
static void
fold_context(void *arg)
{
	errcontext("the training ratings of cross-validation fold %d (the other folds' ratings)",
			   *(const int *) arg);
}

/*
 * Fits every grid point on the ratings outside fold and scores it on the
 * fold's ratings.
 */
static void
cv_run_fold(CvState *state, int fold)
{
	const MfRatings *all = state->all;
	MemoryContext fold_cxt = AllocSetContextCreate(state->cxt, "mf_cross_validate fold",
												   ALLOCSET_DEFAULT_SIZES);
	MemoryContext fit_cxt = AllocSetContextCreate(fold_cxt, "mf_cross_validate fit",
												  ALLOCSET_DEFAULT_SIZES);
	bool	   *keep = mf_alloc_array(fold_cxt, all->n_ratings, sizeof(bool));
	int32	   *user_remap = mf_alloc_array(fold_cxt, all->n_users, sizeof(int32));
	int32	   *item_remap = mf_alloc_array(fold_cxt, all->n_items, sizeof(int32));
	MfRatings  *training;
	MfRatingsSummary summary;	/* of training, the same for every point's fit */
	MfTestSet  *test;
	ErrorContextCallback context = {error_context_stack, fold_context, NULL};
	MfMemory	held = {0};
	MfMemory	split;
	int64		kept = 0;
	instr_time	start;

	/* all the ratings (users' rows), each one's fold and whether the fold keeps it, the remaps */
	mf_memory_add(&held, 1, mf_ratings_bytes(all));
	mf_memory_add(&held, all->n_ratings, sizeof(uint8) + sizeof(bool));
	mf_memory_add(&held, (Size) all->n_users + all->n_items, sizeof(int32));
	INSTR_TIME_SET_CURRENT(start);
	mf_progress_part(psprintf("fold %d of %d", fold + 1, state->folds), "splitting");
	for (int64 e = 0; e < all->n_ratings; e++)
	{
		mf_interrupts_every(e, MF_INTERRUPT_VALUES);
		keep[e] = state->fold_of[e] != fold;
		kept += keep[e];
	}
	/* the split: the kept ratings in both orders, the others as a test set */
	split = held;
	mf_memory_add(&split, kept,
				  2 * (sizeof(int32) + (all->by_user.val ? sizeof(double) : sizeof(float))));
	mf_memory_add(&split, all->n_ratings - kept, MF_TEST_SET_BYTES_PER_RATING);
	mf_memory_check(&split, "cross-validation",
					psprintf("Splitting fold %d (of folds 0 to %d): " INT64_FORMAT " ratings to train on and " INT64_FORMAT " held out, beside all " INT64_FORMAT " ratings.",
							 fold, state->folds - 1, kept, all->n_ratings - kept, all->n_ratings),
					"Raise mf_ext.max_memory (a superuser setting), or cross-validate on a sample of the ratings (neither k nor mf_ext.threads changes the split).");
	training = mf_ratings_subset(all, keep, user_remap, item_remap, fold_cxt);
	summary = mf_ratings_summarize(training, state->grid[0].options.biases);
	/* every point of the grid has the precision and biases of the arguments */
	context.arg = &fold;
	error_context_stack = &context;
	mf_ratings_check_scale(training, &summary, state->grid[0].options.single,
						   state->grid[0].options.biases, NULL);
	error_context_stack = context.previous;
	test = held_out_ratings(all, keep, user_remap, item_remap, fold_cxt);
	mf_memory_add(&held, test->n, MF_TEST_SET_BYTES_PER_RATING);
	for (int p = 0; p < state->n_points; p++)
	{
		mf_progress_part(psprintf("fold %d of %d, fit %d of %d", fold + 1, state->folds,
								  p + 1, state->n_points), "iterating");
		fit_point(&state->grid[p], training, &summary, test, fold, state->folds, held.bytes,
				  fit_cxt);
	}
	MemoryContextDelete(fold_cxt);
	ereport(NOTICE,
			(errmsg("fold %d (of folds 0 to %d): %d fits in %.3f s", fold,
					state->folds - 1, state->n_points, mf_seconds_since(start))));
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

/* One result row per grid point, its measures summarized over the folds. */
static void
cv_put_results(const CvState *state, FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			folds = state->folds;

	for (int p = 0; p < state->n_points; p++)
	{
		const GridPoint *point = &state->grid[p];
		double		mean,
					stddev,
					min,
					max,
					mae,
					ignored;
		Datum		values[12];
		bool		nulls[12] = {false};

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
		values[10] = Float8GetDatum(point->options.bias_lambda);
		nulls[10] = point->options.bias_lambda < 0;
		values[11] = Float8GetDatum(point->options.implicit_weight);
		for (int c = 3; c < 9; c++)
			nulls[c] = isnan(DatumGetFloat8(values[c]));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/*
 * mf_cross_validate(source, ks int[], lambdas float8[], folds DEFAULT 5,
 * ...) -> rows (k, lambda, folds, rmse, rmse_stddev, rmse_min, rmse_max,
 * mae, coverage, seconds, bias_lambda, implicit_weight), one per grid
 * point.  Writes nothing.
 */
Datum
mf_cross_validate(PG_FUNCTION_ARGS)
{
	CvState		state = {0};
	MemoryContext old;

	cv_init(&state, fcinfo);
	InitMaterializedSRF(fcinfo, 0);
	old = MemoryContextSwitchTo(state.cxt);
	mf_progress_begin("mf_cross_validate", NULL, "reading");
	cv_read(&state);
	for (int fold = 0; fold < state.folds; fold++)
		cv_run_fold(&state, fold);
	mf_progress_end();
	MemoryContextSwitchTo(old);
	cv_put_results(&state, fcinfo);
	MemoryContextDelete(state.cxt);
	return (Datum) 0;
}
