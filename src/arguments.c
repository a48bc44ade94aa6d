/*-------------------------------------------------------------------------
 *
 * arguments.c
 *	  A call's arguments by name, and the training options among them
 *	  (arguments.h).
 *
 *-------------------------------------------------------------------------
 */
#include "arguments.h"

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/syscache.h"

/* The position of argument name, or -1. */
static int
argument_position(const MfArguments *args, const char *name)
{
	for (int a = 0; a < args->fcinfo->nargs; a++)
		if (args->names[a] != NULL && strcmp(args->names[a], name) == 0)
			return a;
	return -1;
}

static bool
listed(const char *const *list, const char *name)
{
	for (; list != NULL && *list != NULL; list++)
		if (strcmp(*list, name) == 0)
			return true;
	return false;
}

/* The names of the count input arguments of function's pg_proc entry proc. */
static char **
input_names(HeapTuple proc, const char *function, int count)
{
	Oid		   *types;
	char	  **names;
	char	   *modes;
	int			n = get_func_arg_info(proc, &types, &names, &modes);
	int			inputs = 0;

	for (int a = 0; a < n && names != NULL; a++)
		if (modes == NULL || modes[a] == PROARGMODE_IN || modes[a] == PROARGMODE_INOUT ||
			modes[a] == PROARGMODE_VARIADIC)
			names[inputs++] = names[a];
	if (names == NULL || inputs != count)
		elog(ERROR, "%s is not declared with %d named arguments", function, count);
	return names;
}

MfArguments
mf_arguments(FunctionCallInfo fcinfo, const char *function, int count,
			 const char *const *nullable, const char *(*null_hint) (const char *name))
{
	MfArguments args = {fcinfo, function, NULL};
	HeapTuple	proc;

	if (fcinfo->nargs != count)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s was called with %d arguments, but this version of the module takes %d",
						function, fcinfo->nargs, count),
				 errhint("Run ALTER EXTENSION mf_ext UPDATE.")));
	proc = SearchSysCache1(PROCOID, ObjectIdGetDatum(fcinfo->flinfo->fn_oid));
	if (!HeapTupleIsValid(proc))
		elog(ERROR, "cache lookup failed for function %u", fcinfo->flinfo->fn_oid);
	args.names = input_names(proc, function, count);
	ReleaseSysCache(proc);

	for (int a = 0; a < count; a++)
		if (PG_ARGISNULL(a) && !listed(nullable, args.names[a]))
		{
			const char *hint = null_hint ? null_hint(args.names[a]) : NULL;

			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be NULL", args.names[a]),
					 errhint("%s", hint ? hint : "Omit the argument to use its default.")));
		}
	return args;
}

/* Whether the call has an argument of that name. */
static bool
has_argument(const MfArguments *args, const char *name)
{
	return argument_position(args, name) >= 0;
}

/* The position of argument name, which the function must have. */
static int
required_position(const MfArguments *args, const char *name)
{
	int			a = argument_position(args, name);

	if (a < 0)
		elog(ERROR, "%s has no argument named %s", args->function, name);
	return a;
}

bool
mf_argument_isnull(const MfArguments *args, const char *name)
{
	return args->fcinfo->args[required_position(args, name)].isnull;
}

bool
mf_argument_given(const MfArguments *args, const char *name)
{
	return has_argument(args, name) && !mf_argument_isnull(args, name);
}

Datum
mf_argument(const MfArguments *args, const char *name)
{
	return args->fcinfo->args[required_position(args, name)].value;
}

char *
mf_text_argument(const MfArguments *args, const char *name)
{
	return mf_argument_isnull(args, name) ? NULL
		: TextDatumGetCString(mf_argument(args, name));
}

/*
 * Sets the feedback kind and solver from their text arguments (NULL: not
 * given).  A solver not given stays as options has it, unless the
 * feedback kind or the non-negativity (was_nonnegative before) changes or
 * the factors are non-negative: then it is the kind's usual one, Cholesky
 * for explicit and conjugate gradient for implicit feedback; non-negative
 * factors have a solver of their own.
 */
static void
parse_feedback(const char *feedback, const char *solver, bool was_nonnegative,
			   MfFitOptions *options)
{
	bool		was_implicit = options->implicit;

	if (options->nonnegative && solver != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("solver cannot be chosen with nonnegative := true"),
				 errdetail("Non-negative factors are solved by coordinate descent."),
				 errhint("Omit solver, or pass nonnegative := false (a retrained model keeps its last training's).")));
	if (feedback == NULL)
		;
	else if (strcmp(feedback, "explicit") == 0)
		options->implicit = false;
	else if (strcmp(feedback, "implicit") == 0)
		options->implicit = true;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("feedback must be 'explicit' or 'implicit', got %s", mf_text_for_message(feedback)),
				 errhint("'explicit' for ratings (stars); 'implicit' for counts of views, plays or purchases.")));
	if (solver == NULL)
	{
		if (options->implicit != was_implicit || options->nonnegative != was_nonnegative ||
			options->nonnegative)
			options->conjugate_gradient = options->implicit && !options->nonnegative;
	}
	else if (strcmp(solver, "cholesky") == 0)
		options->conjugate_gradient = false;
	else if (strcmp(solver, "cg") == 0)
		options->conjugate_gradient = true;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("solver must be 'cholesky' or 'cg', got %s", mf_text_for_message(solver)),
				 errhint("Omit solver for the usual one: Cholesky for explicit, conjugate gradient for implicit feedback.")));
}

void
mf_read_fit_options(const MfArguments *args, MfFitOptions *options)
{
	bool		was_nonnegative = options->nonnegative;

#define READ(name, field, convert) \
	if (mf_argument_given(args, name)) \
		options->field = convert(mf_argument(args, name))

	READ("k", k, DatumGetInt32);
	READ("lambda", lambda, DatumGetFloat8);
	READ("iterations", iterations, DatumGetInt32);
	READ("seed", seed, DatumGetInt32);
	READ("double_precision", single, !DatumGetBool);
	READ("biases", biases, DatumGetBool);
	READ("weighted_lambda", weighted_lambda, DatumGetBool);
	READ("tolerance", tolerance, DatumGetFloat8);
	READ("alpha", alpha, DatumGetFloat8);
	READ("nonnegative", nonnegative, DatumGetBool);
	READ("patience", patience, DatumGetInt32);	/* mf_train's only */
	READ("bias_lambda", bias_lambda, DatumGetFloat8);
	READ("lambda_per_rating", lambda_per_rating, DatumGetFloat8);
	READ("implicit_weight", implicit_weight, DatumGetFloat8);
	READ("clip", clip, DatumGetBool);
#undef READ
	if (has_argument(args, "feedback"))
		parse_feedback(mf_text_argument(args, "feedback"),
					   mf_text_argument(args, "solver"), was_nonnegative, options);
}
