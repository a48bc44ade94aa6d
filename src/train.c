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
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rls.h"

PG_FUNCTION_INFO_V1(mf_train);

/* Argument positions of mf_train, as declared in sql/mf_ext--0.2--0.3.sql. */
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
	ARG_DOUBLE_PRECISION,
	ARG_BIASES,
	ARG_WEIGHTED_LAMBDA,
	ARG_TOLERANCE,
	ARG_VALIDATION,
	ARG_FEEDBACK,
	ARG_ALPHA,
	ARG_SOLVER,
	ARG_NONNEGATIVE
};

static const char *const arg_names[] = {
	"source", "k", "lambda", "iterations", "user_col", "item_col",
	"rating_col", "model_name", "warm_start", "seed", "double_precision",
	"biases", "weighted_lambda", "tolerance", "validation", "feedback", "alpha",
	"solver", "nonnegative"
};

/*
 * Every argument but model_name, validation and solver must be given (or
 * left to its default).
 */
static void
check_not_null(FunctionCallInfo fcinfo)
{
	/* older SQL definitions have fewer arguments: the module needs 0.4's */
	if (PG_NARGS() != lengthof(arg_names))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("mf_train was called with %d arguments, but this version of the module takes %d",
						PG_NARGS(), (int) lengthof(arg_names)),
				 errhint("Run ALTER EXTENSION mf_ext UPDATE.")));
	for (int arg = ARG_SOURCE; arg < lengthof(arg_names); arg++)
		if (arg != ARG_MODEL_NAME && arg != ARG_VALIDATION && arg != ARG_SOLVER &&
			PG_ARGISNULL(arg))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be NULL", arg_names[arg]),
					 errhint("Omit the argument to use its default.")));
}

/* Raises an error for an option out of its range. */
void
mf_check_fit_options(const MfFitOptions *options)
{
	if (options->k < MF_MIN_K || options->k > MF_MAX_K)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be between %d and %d, got %d", MF_MIN_K, MF_MAX_K,
						options->k),
				 errhint("k is the number of latent factors per user and item; 10 to 100 is usual.")));
	if (options->k == 0 && !options->biases)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k = 0 needs biases := true"),
				 errdetail("A model with no factors and no biases predicts nothing."),
				 errhint("Pass biases := true for a biases-only model, or k of 1 or more.")));
	if (!(options->lambda >= 0.0) || isinf(options->lambda))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lambda must be a finite number >= 0, got %g", options->lambda),
				 errhint("lambda is the regularisation weight, usually 0.01 to 10 (mf_cross_validate finds a good one).")));
	if (options->iterations < 1 || options->iterations > MF_MAX_ITERATIONS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("iterations must be between 1 and %d, got %d",
						MF_MAX_ITERATIONS, options->iterations),
				 errhint("Each iteration solves all users, then all items; 10 is usual.")));
	if (!(options->tolerance >= 0.0 && options->tolerance < 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tolerance must be at least 0 and below 1, got %g",
						options->tolerance),
				 errhint("tolerance is the relative drop in J below which training stops early, for example 0.001; 0 runs every iteration.")));
	if (options->implicit && !(options->alpha > 0.0 && isfinite(options->alpha)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alpha must be a finite number > 0, got %g", options->alpha),
				 errhint("alpha scales a rating into confidence 1 + alpha * rating; 1 to 100 is usual (40 is the default).")));
	if (options->conjugate_gradient && options->lambda == 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("solver 'cg' needs lambda > 0"),
				 errdetail("Without regularisation a row's system may be singular, and a few conjugate-gradient steps then diverge instead of failing."),
				 errhint("Pass lambda > 0, or solver := 'cholesky', which reports a singular row.")));
	if (options->implicit && options->biases)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("biases are for explicit feedback"),
				 errdetail("Implicit feedback models preferences (1 for an observed pair, 0 for every other), not ratings around a mean."),
				 errhint("Omit biases, or pass feedback := 'explicit'.")));
}

/*
 * Sets the feedback kind and solver from mf_train's text arguments.  The
 * solver defaults to Cholesky for explicit and conjugate gradient for
 * implicit feedback; non-negative factors have a solver of their own.
 */
static void
parse_feedback(const char *feedback, const char *solver, MfFitOptions *options)
{
	if (options->nonnegative && solver != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("solver cannot be chosen with nonnegative := true"),
				 errdetail("Non-negative factors are solved by coordinate descent."),
				 errhint("Omit solver.")));
	if (strcmp(feedback, "explicit") == 0)
		options->implicit = false;
	else if (strcmp(feedback, "implicit") == 0)
		options->implicit = true;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("feedback must be 'explicit' or 'implicit', got \"%s\"", feedback),
				 errhint("'explicit' for ratings (stars); 'implicit' for counts of views, plays or purchases.")));
	if (solver == NULL)
		options->conjugate_gradient = options->implicit && !options->nonnegative;
	else if (strcmp(solver, "cholesky") == 0)
		options->conjugate_gradient = false;
	else if (strcmp(solver, "cg") == 0)
		options->conjugate_gradient = true;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("solver must be 'cholesky' or 'cg', got \"%s\"", solver),
				 errhint("Omit solver for the usual one: Cholesky for explicit, conjugate gradient for implicit feedback.")));
}

/*
 * Checks, before any work, that the caller may write models: the
 * privileges the README's Privileges section grants a trainer.  function
 * names the caller in the error.
 */
void
mf_check_write_privileges(Oid schema, const char *function)
{
	static const char *const tables[] = {"mf_models", "mf_user_factors", "mf_item_factors"};
	static const char *const sequences[] = {"mf_models_model_id_seq", "mf_model_version_seq"};

	for (int t = 0; t < lengthof(tables) + lengthof(sequences); t++)
	{
		bool		table = t < lengthof(tables);
		const char *name = table ? tables[t] : sequences[t - lengthof(tables)];
		Oid			relid = get_relname_relid(name, schema);
		AclMode		needed = table ? ACL_SELECT | ACL_INSERT | ACL_UPDATE | ACL_DELETE
			: ACL_USAGE | ACL_UPDATE;

		/* every privilege on the tables; either one (for nextval) on the sequences */
		if (OidIsValid(relid) &&
			(table ? pg_class_aclmask(relid, GetUserId(), needed, ACLMASK_ALL) != needed
			 : pg_class_aclmask(relid, GetUserId(), needed, ACLMASK_ANY) == 0))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for %s %s", table ? "table" : "sequence", name),
					 errdetail("%s writes models into mf_models, mf_user_factors and mf_item_factors, and needs SELECT, INSERT, UPDATE and DELETE on them and USAGE (or UPDATE) on mf_models_model_id_seq and mf_model_version_seq.",
							   function),
					 errhint("Ask the extension's owner to grant them (see Privileges in the README).")));

		/*
		 * A model is written whole: deleting, writing and counting only the
		 * rows a policy lets the writer see would leave the rest stale.
		 */
		if (OidIsValid(relid) && table &&
			check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("row-level security on table %s applies to you, and %s writes whole models",
							name, function),
					 errdetail("It would replace and count only the rows your policies let you see, and leave the others of the model stale."),
					 errhint("Train and refit as a role that row-level security does not apply to: the tables' owner, or a role with BYPASSRLS.")));
	}
}

/*
 * Implicit feedback reads the ratings as an event log: a pair's strength
 * is the sum of its rows, which must not be negative, and the largest
 * confidence, 1 + alpha * strength, must stay far from overflow.
 */
void
mf_implicit_strengths(MfRatings *ratings, double alpha)
{
	const MfCsr *rows = &ratings->by_user;
	double		largest = 0.0;

	mf_ratings_sum_duplicates(ratings);
	for (int32 u = 0; u < rows->n_rows; u++)
		for (int64 e = rows->row_start[u]; e < rows->row_start[u + 1]; e++)
		{
			if (rows->val[e] < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("rating of user %s for item %s is %g, but implicit feedback needs ratings >= 0",
								mf_ratings_id_text(ratings, true, u),
								mf_ratings_id_text(ratings, false, rows->col[e]),
								rows->val[e]),
						 errdetail("With implicit feedback a rating is the strength of an interaction (a count, a duration), the sum of the pair's rows: confidence 1 + alpha * strength."),
						 errhint("Leave out or rescale negative ratings in a view; explicit feedback takes any ratings.")));
			largest = Max(largest, rows->val[e]);
		}
	if (!(alpha * largest <= MF_MAX_CONFIDENCE))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alpha * the largest rating is %g, above %g", alpha * largest,
						MF_MAX_CONFIDENCE),
				 errdetail("Confidences 1 + alpha * rating that large overflow single precision in the solve."),
				 errhint("Lower alpha, or scale the ratings down (for example log(1 + count)).")));
}

static void
check_model_name(const char *model_name)
{
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
report_singular(const MfRatings *ratings, bool users, int32 index,
				const MfFitOptions *options)
{
	const char *side = users ? "user" : "item";
	const char *article = users ? "a" : "an";
	char	   *id = mf_ratings_id_text(ratings, users, index);

	if (options->lambda == 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the least-squares system of %s %s is singular",
						side, id),
				 errdetail("With lambda = 0 the %d unknowns of %s %s (its k factors%s) are unique only when its ratings determine all of them; fewer rated partners than that, or partners whose factors are alike, leave some undetermined.",
						   options->k + (options->biases ? 1 : 0), article, side,
						   options->biases ? " and its bias" : ""),
				 errhint("Raise lambda above 0 (0.01 or more), or lower k.")));
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("the least-squares system of %s %s could not be solved",
					side, id),
			 errdetail("With lambda = %g > 0 the system is positive definite in exact arithmetic; it failed in %s precision because lambda is too small to keep it well conditioned, or because the ratings are so large that floating point overflowed.",
					   options->lambda, options->single ? "single" : "double"),
			 errhint("Raise lambda (0.01 or more), scale the ratings into a moderate range (for example 0 to 10)%s.",
					 options->single ? ", or pass double_precision := true" : "")));
}

static double
seconds_since(instr_time start)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	return INSTR_TIME_GET_DOUBLE(now);
}

/*
 * Runs the iterations: after each, J, the training RMSE and, given a
 * validation set, its RMSE, into history (allocated here).  Stops early
 * once an iteration lowers J by less than options->tolerance of its value.
 * With report, a NOTICE per iteration.
 */
void
mf_fit(MfAls *als, const MfRatings *ratings, const MfFitOptions *options,
	   const MfTestSet *validation, bool report, MfFitHistory *history)
{
	instr_time	start;
	int			n = options->iterations;

	/* the pairs J's data term sums over: with implicit feedback, all */
	double		pairs = options->implicit
		? (double) ratings->n_users * ratings->n_items : (double) ratings->n_ratings;

	INSTR_TIME_SET_CURRENT(start);
	history->iterations_run = 0;
	history->loss = mf_alloc_array(CurrentMemoryContext, n, sizeof(double));
	history->train_rmse = mf_alloc_array(CurrentMemoryContext, n, sizeof(double));
	history->seconds = mf_alloc_array(CurrentMemoryContext, n, sizeof(double));
	history->validation_rmse = validation == NULL ? NULL
		: mf_alloc_array(CurrentMemoryContext, n, sizeof(double));

	for (int iteration = 0; iteration < n; iteration++)
	{
		MfAlsFailure failure;
		instr_time	iteration_start;
		double		loss;
		double		sse;
		char	   *validation_text = "";

		INSTR_TIME_SET_CURRENT(iteration_start);
		failure = mf_als_iterate(als, &loss, &sse);
		if (failure.index >= 0)
			report_singular(ratings, failure.users, failure.index, options);
		if (!isfinite(loss))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("training overflowed %s precision floating point in iteration %d",
							options->single ? "single" : "double", iteration + 1),
					 errdetail("The objective J became %g: the ratings are too large, or lambda = %g too small to keep the solve stable.",
							   loss, options->lambda),
					 errhint("Scale the ratings into a moderate range (for example 0 to 10)%s.",
							 options->single ? ", raise lambda, or pass double_precision := true"
							 : ", or raise lambda")));
		history->loss[iteration] = loss;
		history->train_rmse[iteration] = sqrt(sse / pairs);
		if (validation)
		{
			MfErrors	errors;

			mf_test_errors(mf_als_factors(als), validation, &errors);
			history->validation_rmse[iteration] = errors.rmse;
			validation_text = psprintf(", validation RMSE = %.6g", errors.rmse);
		}
		history->seconds[iteration] = seconds_since(iteration_start);
		history->iterations_run = iteration + 1;
		if (report)
			ereport(NOTICE,
					(errmsg("iteration %d of %d: J = %.6g, training RMSE = %.6g%s",
							iteration + 1, n, loss, history->train_rmse[iteration],
							validation_text),
					 errdetail("%.3f s this iteration on %d threads, %.3f s in all iterations so far.",
							   history->seconds[iteration], mf_als_threads(als),
							   seconds_since(start))));
		if (options->tolerance > 0 && iteration > 0 &&
			history->loss[iteration - 1] - loss < options->tolerance * history->loss[iteration - 1])
		{
			if (report && iteration + 1 < n)
				ereport(NOTICE,
						(errmsg("stopped after iteration %d of %d: J fell by less than tolerance = %g of its value",
								iteration + 1, n, options->tolerance)));
			break;
		}
	}
}

/*
 * Reads the validation relation (the training's columns) and maps it onto
 * the training's users and items.  A model without biases cannot score a
 * rating of a user or item it has not seen: when that leaves nothing to
 * score, the validation is useless, and an error says so.
 */
static MfTestSet *
read_validation(Oid relid, const MfSource *training, const MfRatings *ratings,
				const MfFitOptions *options, MemoryContext cxt)
{
	MfSource	source = *training;
	MfRatings  *held_out;
	MfTestSet  *test;
	int64		known = 0;
	char	   *name;

	source.argname = "validation";
	source.fixed_columns = true;
	source.relid = relid;
	mf_source_validate(&source);
	name = mf_source_display_name(relid);
	held_out = mf_ratings_read(&source, cxt);
	if (options->implicit)
		mf_ratings_sum_duplicates(held_out);	/* each held-out pair once */
	if (held_out->n_skipped > 0)
		ereport(NOTICE,
				(errmsg("validation: skipped " INT64_FORMAT " rows of %s with a NULL user, item or rating",
						held_out->n_skipped, name)));
	if (held_out->n_ratings == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("validation relation %s has no ratings", name),
				 errhint("Pass a relation of held-out ratings, for example rows where mf_is_test(user, item, 0.2) holds, or omit validation.")));
	mf_check_same_id_kind(held_out, ratings->user_keys != NULL, ratings->item_keys != NULL, name);
	test = mf_test_set_from_ratings(held_out,
									mf_id_index_from_sorted(cxt, ratings->user_ids, ratings->n_users),
									mf_id_index_from_sorted(cxt, ratings->item_ids, ratings->n_items),
									ratings->user_keys ? mf_key_index(cxt, ratings->user_keys, ratings->n_users) : NULL,
									ratings->item_keys ? mf_key_index(cxt, ratings->item_keys, ratings->n_items) : NULL,
									cxt);
	for (int64 r = 0; r < test->n; r++)
		known += test->user[r] >= 0 && test->item[r] >= 0;
	if (known == 0 && !options->biases)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no rating in validation relation %s is of a user and an item in the training data", name),
				 errhint("Hold out ratings of users and items that also have training ratings, or pass biases := true to score unknown ones from their biases.")));
	if (known < test->n)
		ereport(NOTICE,
				(errmsg("validation: " INT64_FORMAT " of " INT64_FORMAT " ratings in %s are of a user or item not in the training data",
						test->n - known, test->n, name),
				 errdetail(options->biases ? "They are scored from the biases that are known."
						   : "They are left out of the validation RMSE.")));
	return test;
}

Datum
mf_train(PG_FUNCTION_ARGS)
{
	MfSource	source;
	MfModelRecord record = {0};
	MfFitOptions *options = &record.options;
	MfTestSet  *validation = NULL;
	MemoryContext cxt;
	MemoryContext old;
	MfRatings  *ratings;
	MfAls	   *als;
	const char *schema;
	instr_time	start;
	int32		model_id;
	Size		estimate;
	int			threads;

	check_not_null(fcinfo);
	INSTR_TIME_SET_CURRENT(start);

	source.argname = "source";
	source.fixed_columns = false;
	source.relid = PG_GETARG_OID(ARG_SOURCE);
	source.user_col = NameStr(*PG_GETARG_NAME(ARG_USER_COL));
	source.item_col = NameStr(*PG_GETARG_NAME(ARG_ITEM_COL));
	source.rating_col = NameStr(*PG_GETARG_NAME(ARG_RATING_COL));

	options->k = PG_GETARG_INT32(ARG_K);
	options->lambda = PG_GETARG_FLOAT8(ARG_LAMBDA);
	options->iterations = PG_GETARG_INT32(ARG_ITERATIONS);
	options->seed = PG_GETARG_INT32(ARG_SEED);
	options->single = !PG_GETARG_BOOL(ARG_DOUBLE_PRECISION);
	options->biases = PG_GETARG_BOOL(ARG_BIASES);
	options->weighted_lambda = PG_GETARG_BOOL(ARG_WEIGHTED_LAMBDA);
	options->tolerance = PG_GETARG_FLOAT8(ARG_TOLERANCE);
	options->alpha = PG_GETARG_FLOAT8(ARG_ALPHA);
	options->nonnegative = PG_GETARG_BOOL(ARG_NONNEGATIVE);
	parse_feedback(text_to_cstring(PG_GETARG_TEXT_PP(ARG_FEEDBACK)),
				   PG_ARGISNULL(ARG_SOLVER) ? NULL
				   : text_to_cstring(PG_GETARG_TEXT_PP(ARG_SOLVER)),
				   options);
	record.warm_start = PG_GETARG_BOOL(ARG_WARM_START);
	record.user_col = source.user_col;
	record.item_col = source.item_col;
	record.rating_col = source.rating_col;
	record.name = PG_ARGISNULL(ARG_MODEL_NAME) ? get_rel_name(source.relid)
		: text_to_cstring(PG_GETARG_TEXT_PP(ARG_MODEL_NAME));
	if (record.name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", source.relid)));
	mf_check_fit_options(options);
	check_model_name(record.name);
	mf_check_write_privileges(get_func_namespace(fcinfo->flinfo->fn_oid), "mf_train");
	mf_source_validate(&source);
	record.source = mf_source_display_name(source.relid);
	schema = mf_schema_quoted(fcinfo);
	if (source.user_keys || source.item_keys)
	{
		record.user_key_type = source.user_keys ? source.user_type : InvalidOid;
		record.item_key_type = source.item_keys ? source.item_type : InvalidOid;
	}

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
	if (options->implicit)
		mf_implicit_strengths(ratings, options->alpha);
	if (!PG_ARGISNULL(ARG_VALIDATION))
	{
		validation = read_validation(PG_GETARG_OID(ARG_VALIDATION), &source, ratings,
									 options, cxt);
		record.validation = mf_source_display_name(PG_GETARG_OID(ARG_VALIDATION));
	}
	record.load_seconds = seconds_since(start);

	estimate = mf_als_memory_estimate(ratings, options, &threads);
	mf_check_memory(estimate,
					psprintf("Training on " INT64_FORMAT " ratings of %d users and %d items with k = %d in %s precision on %d threads.",
							 ratings->n_ratings, ratings->n_users, ratings->n_items,
							 options->k, options->single ? "single" : "double",
							 threads));

	als = mf_als_create(ratings, options, cxt);
	mf_als_init_items(als, options->seed);
	if (record.warm_start &&
		!mf_store_load_items(schema, record.name, options, ratings, als))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("cannot warm-start: model \"%s\" does not exist", record.name),
				 errhint("Train it once without warm_start, or pass the model_name of an existing model.")));

	mf_fit(als, ratings, options, validation, true, &record.history);
	record.train_rmse = record.history.train_rmse[record.history.iterations_run - 1];
	record.train_seconds = seconds_since(start);

	/* storing needs only the users' rows (for rated_items): free the rest */
	mf_ratings_free_by_item(ratings);
	model_id = mf_store_model(schema, &record, ratings, als);

	SPI_finish();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	PG_RETURN_INT32(model_id);
}
