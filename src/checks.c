/*-------------------------------------------------------------------------
 *
 * checks.c
 *	  Argument, option and privilege checks several SQL functions share
 *	  (checks.h).
 *
 *-------------------------------------------------------------------------
 */
#include "checks.h"
#include "catalog.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/rls.h"

void
mf_check_not_null(FunctionCallInfo fcinfo, int arg, const char *name, const char *hint)
{
	if (PG_ARGISNULL(arg))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name),
				 errhint("%s", hint)));
}

void
mf_require_model_argument(FunctionCallInfo fcinfo)
{
	mf_check_not_null(fcinfo, 0, "model", "Pass a model_id or name from mf_models.");
}

void
mf_check_count(int32 count, const char *name, const char *hint)
{
	if (count < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be at least 1, got %d", name, count),
				 errhint("%s", hint)));
}

void
mf_check_fit_options(const MfFitOptions *options)
{
	if (options->k < MF_MIN_K || options->k > MF_MAX_K)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be between %d and %d, got %d", MF_MIN_K, MF_MAX_K,
						options->k),
				 errhint("k is the number of latent factors per user and item; 10 to 100 is usual (0, biases only, with biases := true).")));
	/*
	 * The hints of the rules that biases and implicit feedback meet give no
	 * way out that another of them refuses (biases := true with implicit
	 * feedback, biases := false with k = 0 or bias_lambda).
	 */
	if (options->k == 0 && !options->biases)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k = 0 needs biases := true"),
				 errdetail("A model with no factors and no biases predicts nothing."),
				 errhint("%s", options->implicit
						 ? "Pass k of 1 or more: implicit feedback has no biases, so no biases-only model (or biases := true with feedback := 'explicit')."
						 : "Pass biases := true for a biases-only model, or k of 1 or more.")));
	if (!(options->lambda >= 0.0) || isinf(options->lambda))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lambda must be a finite number >= 0, got %s", float8out_internal(options->lambda)),
				 errhint("lambda is the regularisation weight, usually 0.01 to 10 (mf_cross_validate finds a good one).")));
	if (!(options->lambda_per_rating >= 0.0) || isinf(options->lambda_per_rating))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lambda_per_rating must be a finite number >= 0, got %s",
						float8out_internal(options->lambda_per_rating)),
				 errhint("A row of n ratings is regularised with lambda + lambda_per_rating * n; 0 (the default) leaves lambda alone, 0.01 to 0.1 is usual.")));
	if (!(options->bias_lambda >= 0.0 || options->bias_lambda == -1.0) || isinf(options->bias_lambda))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bias_lambda must be a finite number >= 0, or -1, got %s",
						float8out_internal(options->bias_lambda)),
				 errhint("bias_lambda is the regularisation of the biases, usually 0.1 to 10; -1 regularises them as their row's factors (the default).")));
	if (options->bias_lambda >= 0.0 && !options->biases)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bias_lambda needs biases := true"),
				 errhint("%s", options->implicit
						 ? "Leave out bias_lambda, as implicit feedback has no biases (a retraining keeps its last training's bias_lambda: pass bias_lambda := -1 there), or pass biases := true with feedback := 'explicit'."
						 : "Pass biases := true, or leave out bias_lambda (a retraining keeps its last training's bias_lambda: pass bias_lambda := -1 there).")));
	if (!(options->implicit_weight >= 0.0) || isinf(options->implicit_weight))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("implicit_weight must be a finite number >= 0, got %s",
						float8out_internal(options->implicit_weight)),
				 errhint("implicit_weight weighs which items each user rated beside the ratings, usually 0.1 to 1; 0 (the default) leaves it out.")));
	if (options->clip && options->implicit)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("clip is for explicit feedback"),
				 errdetail("An implicit-feedback model scores preferences, not ratings in a range."),
				 errhint("Pass clip := false (a retrained model keeps its last training's clip), or feedback := 'explicit'.")));
	if (options->implicit_weight > 0 && options->implicit)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("implicit_weight is for explicit feedback"),
				 errdetail("It adds which items each user rated to a model of ratings; implicit feedback models that alone."),
				 errhint("Pass implicit_weight := 0 (a retrained model keeps its last training's implicit_weight), or feedback := 'explicit'.")));
	if (options->implicit_weight > 0 && options->nonnegative)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("implicit_weight does not work with non-negative factors"),
				 errhint("Pass implicit_weight := 0, or nonnegative := false.")));
	if (options->implicit_weight > 0 && options->k == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("implicit_weight needs k >= 1"),
				 errdetail("The implicit information is held in factors, k per user and item."),
				 errhint("Pass k of 1 or more, or implicit_weight := 0.")));
	if (options->implicit_weight > 0 && options->lambda == 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("implicit_weight needs lambda > 0"),
				 errdetail("The implicit factors are solved from (U'U + lambda / implicit_weight I), which lambda keeps invertible."),
				 errhint("Pass lambda > 0, or implicit_weight := 0.")));
	if (options->iterations < 1 || options->iterations > MF_MAX_ITERATIONS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("iterations must be between 1 and %d, got %d",
						MF_MAX_ITERATIONS, options->iterations),
				 errhint("Each iteration solves all users, then all items; 10 is usual.")));
	if (!(options->tolerance >= 0.0 && options->tolerance < 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tolerance must be at least 0 and below 1, got %s",
						float8out_internal(options->tolerance)),
				 errhint("tolerance is the relative drop in J below which training stops early, for example 0.001; 0 runs every iteration.")));
	if (options->implicit && !(options->alpha > 0.0 && isfinite(options->alpha)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alpha must be a finite number > 0, got %s", float8out_internal(options->alpha)),
				 errhint("alpha scales a rating into confidence 1 + alpha * rating; 1 to 100 is usual (40 is the default).")));
	if (options->conjugate_gradient && options->lambda == 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("solver 'cg' needs lambda > 0"),
				 errdetail("Without regularisation a row's system may be singular, and a few conjugate-gradient steps then diverge instead of failing."),
				 errhint("Pass lambda > 0, or solver := 'cholesky', which reports a singular row.")));
	if (options->implicit && options->biases)
	{
		const char *hint = "Pass biases := false (a retrained model keeps its last training's biases), or feedback := 'explicit'.";

		if (options->k == 0)
			hint = "Pass feedback := 'explicit' for a biases-only model (k = 0), or biases := false with k of 1 or more.";
		else if (options->bias_lambda >= 0.0)
			hint = "Pass feedback := 'explicit', or biases := false and leave out bias_lambda (in a retraining, which keeps it, bias_lambda := -1).";
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("biases are for explicit feedback"),
				 errdetail("Implicit feedback models preferences (1 for an observed pair, 0 for every other), not ratings around a mean."),
				 errhint("%s", hint)));
	}
	if (options->patience < 0 || options->patience > MF_MAX_ITERATIONS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("patience must be between 0 and %d, got %d",
						MF_MAX_ITERATIONS, options->patience),
				 errhint("patience is how many iterations in a row without a lower validation RMSE stop the training, for example 3; 0 never stops on it.")));
	if (options->implicit && options->patience > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("patience is for explicit feedback"),
				 errdetail("With implicit feedback the validation RMSE scores only the held-out pairs, against preference 1: it falls as every score rises, and says nothing of how the items are ranked."),
				 errhint("Pass patience := 0 (a retrained model keeps its last training's patience) and choose iterations by mf_evaluate's ranking measures on held-out pairs, or feedback := 'explicit'.")));
	/* every row has a rating: the penalty of one is known before the read */
	mf_check_row_penalty(options, 1);
}

void
mf_check_row_penalty(const MfFitOptions *options, int64 longest)
{
	const char *precision = options->single ? "single" : "double";
	double		limit = options->single ? MF_MAX_SINGLE_LAMBDA : DBL_MAX;
	double		n = (double) Max(longest, 1);
	double		scaled = options->lambda * (options->weighted_lambda ? n : 1.0);
	double		largest = scaled + options->lambda_per_rating * n;
	const char *or_double = options->single ? ", or double_precision := true" : "";

	/* lambda + lambda_per_rating * n, or lambda * n, can overflow where each is finite */
	if (!(scaled <= limit))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lambda = %g is too large for %s precision", options->lambda, precision),
				 options->lambda <= limit
				 ? errdetail("With weighted_lambda a row of n ratings is regularised with lambda * n, up to %g here, and %s precision takes at most %g.",
							 scaled, precision, limit)
				 : errdetail("%g is more than %s precision takes, %g.", options->lambda, precision,
							 limit),
				 errhint("Pass a smaller lambda (the usual are 0.01 to 100)%s.", or_double)));
	if (!(largest <= limit))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lambda_per_rating = %g is too large for %s precision",
						options->lambda_per_rating, precision),
				 errdetail("With lambda_per_rating a row of n ratings is regularised with %s + lambda_per_rating * n, up to %g here, and %s precision takes at most %g.",
						   options->weighted_lambda ? "lambda * n" : "lambda", largest,
						   precision, limit),
				 errhint("Pass a smaller lambda_per_rating (the usual are 0.01 to 0.1)%s%s.",
						 /* a smaller lambda helps only where lambda_per_rating alone fits */
						 options->lambda_per_rating * n <= limit ? " or lambda" : "",
						 or_double)));
	if (options->single && options->biases && options->bias_lambda > MF_MAX_SINGLE_LAMBDA)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bias_lambda = %g is too large for single precision", options->bias_lambda),
				 errdetail("Single precision takes at most %g.", MF_MAX_SINGLE_LAMBDA),
				 errhint("Pass a smaller bias_lambda (the usual are 0 to 100), or double_precision := true.")));
}

void
mf_check_patience_validation(const MfFitOptions *options, bool validation)
{
	if (options->patience > 0 && !validation)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("patience = %d needs a validation relation", options->patience),
				 errdetail("Early stopping watches the validation RMSE after every iteration; without validation there is none."),
				 errhint("Pass validation := a relation of held-out ratings (for example those where mf_is_test(user_id, item_id, 0.2) holds, training on the others), or patience := 0 (a retrained model keeps its last training's patience).")));
}

void
mf_check_folds(int folds)
{
	if (folds < 2 || folds > MF_MAX_FOLDS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("folds must be between 2 and %d, got %d", MF_MAX_FOLDS, folds),
				 errhint("5 or 10 folds are usual.")));
}

void
mf_check_model_name(const char *model_name)
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

void
mf_check_read_write(const char *function, const char *what)
{
	if (XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot run %s in a read-only transaction", function),
				 errdetail("%s writes %s.", function, what),
				 RecoveryInProgress()
				 ? errhint("Call it on the primary server: this one is a standby.")
				 : errhint("Call it in a read-write transaction: not after BEGIN READ ONLY or SET TRANSACTION READ ONLY, and with default_transaction_read_only off.")));
}

void
mf_check_write_privileges(const MfSchema *schema, const char *function, bool history)
{
	static const char *const tables[] = {MF_MODELS_TABLE, MF_USER_FACTORS_TABLE,
	MF_ITEM_FACTORS_TABLE, MF_MODEL_HISTORY_TABLE};
	static const char *const sequences[] = {"mf_models_model_id_seq", "mf_model_version_seq"};
	bool		with_history = history && OidIsValid(mf_catalog_history_table(schema->oid));

	if (schema->remote)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s runs on the Citus coordinator, not on a worker", function),
				 errdetail("A Citus worker serves the models stored on the coordinator; its own model tables are not used."),
				 errhint("Connect to the coordinator and call %s there.", function)));
	mf_check_read_write(function, "the model into mf_models, mf_user_factors and mf_item_factors");
	if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot run %s with session_replication_role = replica", function),
				 errdetail("Triggers do not fire in that mode: not mf_models' trigger that records which role chose a model's source and columns, nor the foreign keys' of the model tables."),
				 errhint("SET session_replication_role = origin (or DEFAULT) first.")));
	for (int t = 0; t < lengthof(tables) + lengthof(sequences); t++)
	{
		bool		table = t < lengthof(tables);
		const char *name = table ? tables[t] : sequences[t - lengthof(tables)];
		Oid			relid;
		AclMode		needed = table ? ACL_SELECT | ACL_INSERT | ACL_UPDATE | ACL_DELETE
			: ACL_USAGE | ACL_UPDATE;

		/* the history: written by training, from 0.5's SQL on */
		if (table && strcmp(name, MF_MODEL_HISTORY_TABLE) == 0 && !with_history)
			continue;
		relid = get_relname_relid(name, schema->oid);
		if (!OidIsValid(relid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("%s %s of mf_ext is missing from schema %s",
							table ? "table" : "sequence", name,
							get_namespace_name(schema->oid)),
					 errhint("Re-create the extension: DROP EXTENSION mf_ext; CREATE EXTENSION mf_ext.")));

		/* every privilege on the tables; either one (for nextval) on the sequences */
		if ((table ? pg_class_aclmask(relid, GetUserId(), needed, ACLMASK_ALL) != needed
			 : pg_class_aclmask(relid, GetUserId(), needed, ACLMASK_ANY) == 0))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for %s %s", table ? "table" : "sequence", name),
					 errdetail("%s writes models into mf_models, mf_user_factors and mf_item_factors%s, and needs SELECT, INSERT, UPDATE and DELETE on them and USAGE (or UPDATE) on mf_models_model_id_seq and mf_model_version_seq.",
							   function, with_history ? " and its history into mf_model_history" : ""),
					 errhint("Ask the extension's owner to grant these privileges (a member of a role that has them but does not inherit them, NOINHERIT, must SET ROLE to it first; see Privileges in the README).")));

		/*
		 * A model is written whole: deleting, writing and counting only the
		 * rows a policy lets the writer see would leave the rest stale.
		 */
		if (table && check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("row-level security on table %s applies to you, and %s writes whole models",
							name, function),
					 errdetail("It would replace and count only the rows your policies let you see, and leave the others of the model stale."),
					 errhint("Train and refit as a role that row-level security does not apply to: the tables' owner, or a role with BYPASSRLS.")));
	}
}

void
mf_report_unsolvable(MfSolveWhere where, MfSide side, const char *id,
					 const MfFitOptions *options, const char *model,
					 const char *partner, int64 times, int64 other_rows)
{
	static const char *const singular_hints[] = {
		"Raise lambda above 0 (0.01 or more), or lower k.",
		"Pass more rated items, or use a model trained with lambda > 0.",
		"Give the row more ratings in the source, or retrain the model with lambda > 0."
	};
	/* with implicit feedback a row's system holds every partner: more ratings do not help */
	static const char *const implicit_singular_hints[] = {
		"Raise lambda above 0 (0.01 or more), lower k, or pass double_precision := true.",
		"Use a model trained with lambda > 0.",
		"Retrain the model with lambda > 0."
	};
	const char *side_name = mf_side_name(side);
	const char *or_double = options->single ? ", or pass double_precision := true" : "";
	const char *penalty_name = "lambda";
	const char *penalty_usual = "0.01 to 100";
	double		largest_penalty = options->lambda;
	/* the penalty the last error's hint raises: lambda_per_rating where it has one (lambda may be 0) */
	const char *raised_name = options->lambda_per_rating > 0 ? "lambda_per_rating" : "lambda";
	double		raised = options->lambda_per_rating > 0 ? options->lambda_per_rating : options->lambda;
	bool		repeated;
	char	   *subject = psprintf("%s%s", id ? psprintf("%s %s", side_name, id)
								   : psprintf("the new %s", side_name),
								   model ? psprintf(" of model %s", mf_text_for_message(model)) : "");

	/* no penalty at all: a row's system can be singular */
	if (options->lambda == 0.0 && options->lambda_per_rating == 0.0)
	{
		const char *article = side == MF_USERS ? "a" : "an";
		/* with implicit feedback a row's system holds the other side's every row */
		bool		too_few = options->implicit && other_rows > 0 && other_rows < options->k;
		char	   *detail;
		char	   *hint;

		if (!options->implicit)
			detail = psprintf("With lambda = 0 the %d unknowns of %s %s (its k factors%s) are unique only when its ratings determine all of them; fewer rated partners than that, or partners whose factors are alike, leave some undetermined.",
							  options->k + (options->biases ? 1 : 0), article, side_name,
							  options->biases ? " and its bias" : "");
		else if (too_few)
			detail = psprintf("With lambda = 0 %s %s's %d factors are unique only when the other side's factors (implicit feedback weighs all) span %d dimensions, and the " INT64_FORMAT " %ss' factors span at most " INT64_FORMAT ".",
							  article, side_name, options->k, options->k, other_rows,
							  mf_side_name(side == MF_USERS ? MF_ITEMS : MF_USERS), other_rows);
		else
			detail = psprintf("With lambda = 0 %s %s's %d factors are unique only when the other side's factors (implicit feedback weighs all) span %d dimensions%s.",
							  article, side_name, options->k, options->k,
							  options->single ? "; single precision may not tell nearly singular from singular" : "");
		if (too_few && where == MF_SOLVE_TRAINING)
			hint = psprintf("Raise lambda above 0 (0.01 or more), or lower k to " INT64_FORMAT " or less.",
							other_rows);
		else if (options->implicit && (options->single || where != MF_SOLVE_TRAINING))
			hint = pstrdup(implicit_singular_hints[where]);
		else
			hint = pstrdup(singular_hints[where]);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the least-squares system of %s is singular", subject),
				 errdetail("%s", detail),
				 errhint("%s", hint)));
	}
	if (options->biases && options->bias_lambda > largest_penalty)
	{
		penalty_name = "bias_lambda";
		penalty_usual = "0 to 100";
		largest_penalty = options->bias_lambda;
	}
	if (options->lambda_per_rating > largest_penalty)
	{
		penalty_name = "lambda_per_rating";
		penalty_usual = "0.01 to 0.1";
		largest_penalty = options->lambda_per_rating;
	}
	repeated = partner != NULL && times >= MF_REPEATS_NAMED;
	if (!repeated && largest_penalty >= MF_LARGE_PENALTY)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("the least-squares system of %s could not be solved", subject),
				 errdetail("With %s = %g the system is positive definite in exact arithmetic; it failed in %s precision because so large a penalty overflowed floating point%s.",
						   penalty_name, largest_penalty, options->single ? "single" : "double",
						   options->conjugate_gradient
						   ? " (conjugate gradient's products grow with its square)" : ""),
				 where != MF_SOLVE_TRAINING
				 ? errhint("Retrain the model with a smaller %s (the usual are %s).",
						   penalty_name, penalty_usual)
				 : errhint("Pass a smaller %s (the usual are %s)%s%s.", penalty_name,
						   penalty_usual,
						   !options->conjugate_gradient ? ""
						   : options->single ? ", pass solver := 'cholesky'" : " or pass solver := 'cholesky'",
						   or_double)));
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("the least-squares system of %s could not be solved", subject),
			 repeated
			 ? errdetail("Its ratings list %s %s " INT64_FORMAT " times. Each repeat of a pair adds it to the system again, and a pair repeated this often leaves the system too badly conditioned for %s precision at any usual %s (%g here).",
						 mf_side_name(side == MF_USERS ? MF_ITEMS : MF_USERS), partner, times,
						 options->single ? "single" : "double", raised_name, raised)
			 : options->lambda_per_rating > 0
			 ? errdetail("With lambda = %g and lambda_per_rating = %g > 0 the system is positive definite in exact arithmetic; it failed in %s precision because its penalty (lambda + lambda_per_rating * n) is too small to keep it well conditioned, or because the ratings are so large that floating point overflowed.",
						 options->lambda, options->lambda_per_rating,
						 options->single ? "single" : "double")
			 : errdetail("With lambda = %g > 0 the system is positive definite in exact arithmetic; it failed in %s precision because lambda is too small to keep it well conditioned, or because the ratings are so large that floating point overflowed.",
						 options->lambda, options->single ? "single" : "double"),
			 where != MF_SOLVE_TRAINING
			 ? errhint(repeated ? "Collapse the repeats in the source into one row per pair, as for training."
					   : "Pass ratings on the training data's scale, or retrain the model with a larger lambda.")
			 : repeated
			 ? errhint("Collapse the repeats in the source into one row per pair (for example a view with avg(rating) GROUP BY the user and item columns)%s.",
					   or_double)
			 : options->conjugate_gradient
			 ? errhint("Scale the ratings into a moderate range (for example 0 to 10), pass solver := 'cholesky', %sraise %s (%g here; try %g)%s.",
					   options->single ? "" : "or ", raised_name,
					   raised, raised < 0.01 ? 0.01 : 10 * raised,
					   or_double)
			 : errhint("Raise %s (%g here; try %g)%s scale the ratings into a moderate range (for example 0 to 10)%s.",
					   raised_name, raised, raised < 0.01 ? 0.01 : 10 * raised,
					   options->single ? "," : " or", or_double)));
}
