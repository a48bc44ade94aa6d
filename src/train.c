/*-------------------------------------------------------------------------
 *
 * train.c
 *	  mf_train(): validates the arguments, reads the ratings, runs the
 *	  alternating least squares iterations, and stores the model.
 *
 *	  All working memory lives in one context per call.  Nothing is written
 *	  until the fit has finished, and the write happens in the caller's
 *	  transaction, so a failed or cancelled training leaves the previous
 *	  model as it was.
 *
 *-------------------------------------------------------------------------
 */
#include "mf_ext.h"

#include <math.h>

#include "executor/spi.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(mf_train);

/* Argument positions of mf_train, as declared in sql/mf_ext--0.1--0.2.sql. */
enum
{
	ARG_SOURCE,
	ARG_K,
	ARG_LAMBDA,
	ARG_ITERATIONS,
	ARG_USER_COL,
	ARG_ITEM_COL,
	ARG_RATING_COL,
	ARG_MODEL_NAME,
	ARG_WARM_START,
	ARG_SEED,
	ARG_DOUBLE_PRECISION
};

static const char *const arg_names[] = {
	"source", "k", "lambda", "iterations", "user_col", "item_col",
	"rating_col", "model_name", "warm_start", "seed", "double_precision"
};

/* Every argument but model_name must be given (or left to its default). */
static void
check_not_null(FunctionCallInfo fcinfo)
{
	/* 0.1's SQL definition has fewer arguments: the module needs 0.2's */
	if (PG_NARGS() != lengthof(arg_names))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("mf_train was called with %d arguments, but this version of the module takes %d",
						PG_NARGS(), (int) lengthof(arg_names)),
				 errhint("Run ALTER EXTENSION mf_ext UPDATE.")));
	for (int arg = ARG_SOURCE; arg <= ARG_DOUBLE_PRECISION; arg++)
		if (arg != ARG_MODEL_NAME && PG_ARGISNULL(arg))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be NULL", arg_names[arg]),
					 errhint("Omit the argument to use its default.")));
}

static void
check_parameters(int k, double lambda, int iterations, const char *model_name)
{
	if (k < MF_MIN_K || k > MF_MAX_K)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be between %d and %d, got %d", MF_MIN_K, MF_MAX_K, k),
				 errhint("k is the number of latent factors per user and item; 10 to 100 is usual.")));
	if (!(lambda >= 0.0) || isinf(lambda))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lambda must be a finite number >= 0, got %g", lambda),
				 errhint("lambda is the regularisation weight; 0.01 to 1 is usual.")));
	if (iterations < 1 || iterations > MF_MAX_ITERATIONS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("iterations must be between 1 and %d, got %d",
						MF_MAX_ITERATIONS, iterations),
				 errhint("Each iteration solves all users, then all items; 10 is usual.")));
	if (model_name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model_name must not be empty"),
				 errhint("Pass a name, or NULL to name the model after the source relation.")));
	if (strlen(model_name) > MF_MAX_MODEL_NAME)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model_name must be at most %d bytes long, got %zu",
						MF_MAX_MODEL_NAME, strlen(model_name)),
				 errhint("Pass a shorter name, or NULL to name the model after the source relation.")));
}

/* Raises the error for a singular system on row index of one side. */
static void
report_singular(const MfRatings *ratings, bool users, int32 index, double lambda,
				bool double_precision)
{
	const char *side = users ? "user" : "item";
	int64		id = users ? ratings->user_ids[index] : ratings->item_ids[index];

	if (lambda == 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the least-squares system of %s " INT64_FORMAT " is singular",
						side, id),
				 errdetail("With lambda = 0 the factors of a %s are unique only when its ratings determine all k of them; fewer rated partners than k, or partners whose factors are alike, leave some undetermined.",
						   side),
				 errhint("Raise lambda above 0 (0.01 or more), or lower k.")));
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("the least-squares system of %s " INT64_FORMAT " could not be solved",
					side, id),
			 errdetail("With lambda = %g > 0 the system is positive definite in exact arithmetic; it failed in %s precision because lambda is too small to keep it well conditioned, or because the ratings are so large that floating point overflowed.",
					   lambda, double_precision ? "double" : "single"),
			 errhint("Raise lambda (0.01 or more), scale the ratings into a moderate range (for example 0 to 10)%s.",
					 double_precision ? "" : ", or pass double_precision := true")));
}

static double
seconds_since(instr_time start)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	return INSTR_TIME_GET_DOUBLE(now);
}

Datum
mf_train(PG_FUNCTION_ARGS)
{
	MfSource	source;
	MfModelRecord record = {0};
	MemoryContext cxt;
	MemoryContext old;
	MfRatings  *ratings;
	MfAls	   *als;
	const char *schema;
	instr_time	start;
	instr_time	iteration_start;
	double		sse = 0.0;
	int32		model_id;
	Size		estimate;
	int			threads;

	check_not_null(fcinfo);
	INSTR_TIME_SET_CURRENT(start);

	source.relid = PG_GETARG_OID(ARG_SOURCE);
	source.user_col = NameStr(*PG_GETARG_NAME(ARG_USER_COL));
	source.item_col = NameStr(*PG_GETARG_NAME(ARG_ITEM_COL));
	source.rating_col = NameStr(*PG_GETARG_NAME(ARG_RATING_COL));

	record.k = PG_GETARG_INT32(ARG_K);
	record.lambda = PG_GETARG_FLOAT8(ARG_LAMBDA);
	record.iterations = PG_GETARG_INT32(ARG_ITERATIONS);
	record.warm_start = PG_GETARG_BOOL(ARG_WARM_START);
	record.seed = PG_GETARG_INT32(ARG_SEED);
	record.double_precision = PG_GETARG_BOOL(ARG_DOUBLE_PRECISION);
	record.user_col = source.user_col;
	record.item_col = source.item_col;
	record.rating_col = source.rating_col;
	record.name = PG_ARGISNULL(ARG_MODEL_NAME) ? get_rel_name(source.relid)
		: text_to_cstring(PG_GETARG_TEXT_PP(ARG_MODEL_NAME));
	if (record.name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", source.relid)));
	check_parameters(record.k, record.lambda, record.iterations, record.name);
	mf_source_validate(&source);
	record.source = mf_source_display_name(source.relid);
	schema = mf_schema_quoted(fcinfo);

	cxt = AllocSetContextCreate(CurrentMemoryContext, "mf_train",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	ratings = mf_ratings_read(&source, cxt);
	if (ratings->n_skipped > 0)
		ereport(NOTICE,
				(errmsg("skipped " INT64_FORMAT " rows with a NULL user, item or rating",
						ratings->n_skipped)));
	if (ratings->n_ratings == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s has no ratings to train on", record.source),
				 errdetail("Rows with a NULL user, item or rating are skipped; " INT64_FORMAT " were.",
						   ratings->n_skipped),
				 errhint("Load ratings into the relation, or pass the one that holds them.")));
	record.load_seconds = seconds_since(start);

	estimate = mf_als_memory_estimate(ratings, record.k, !record.double_precision,
									  &threads);
	mf_check_memory(estimate,
					psprintf("Training on " INT64_FORMAT " ratings of %d users and %d items with k = %d in %s precision on %d threads.",
							 ratings->n_ratings, ratings->n_users, ratings->n_items,
							 record.k, record.double_precision ? "double" : "single",
							 threads));

	als = mf_als_create(ratings, record.k, record.lambda,
						!record.double_precision, cxt);
	mf_als_init_items(als, record.seed);
	if (record.warm_start &&
		!mf_store_load_items(schema, record.name, record.k, ratings, als))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("cannot warm-start: model \"%s\" does not exist", record.name),
				 errhint("Train it once without warm_start, or pass the model_name of an existing model.")));

	record.loss = mf_alloc_array(cxt, record.iterations, sizeof(double));
	record.iteration_seconds = mf_alloc_array(cxt, record.iterations, sizeof(double));
	for (int iteration = 0; iteration < record.iterations; iteration++)
	{
		MfAlsFailure failure;

		INSTR_TIME_SET_CURRENT(iteration_start);
		failure = mf_als_iterate(als, &record.loss[iteration], &sse);
		if (failure.index >= 0)
			report_singular(ratings, failure.users, failure.index, record.lambda,
							record.double_precision);
		if (!isfinite(record.loss[iteration]))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("training overflowed %s precision floating point in iteration %d",
							record.double_precision ? "double" : "single", iteration + 1),
					 errdetail("The objective J became %g: the ratings are too large.",
							   record.loss[iteration]),
					 errhint("Scale the ratings into a moderate range, for example 0 to 10%s.",
							 record.double_precision ? "" : ", or pass double_precision := true")));
		record.iteration_seconds[iteration] = seconds_since(iteration_start);
		ereport(NOTICE,
				(errmsg("iteration %d of %d: J = %.6g, training RMSE = %.6g",
						iteration + 1, record.iterations, record.loss[iteration],
						sqrt(sse / ratings->n_ratings)),
				 errdetail("%.3f s this iteration on %d threads, %.3f s since mf_train started.",
						   record.iteration_seconds[iteration], mf_als_threads(als),
						   seconds_since(start))));
	}
	record.train_rmse = sqrt(sse / ratings->n_ratings);
	record.train_seconds = seconds_since(start);

	/* storing needs only the users' rows (for rated_items): free the rest */
	mf_ratings_free_by_item(ratings);
	model_id = mf_store_model(schema, &record, ratings, als);

	SPI_finish();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	PG_RETURN_INT32(model_id);
}
