/*-------------------------------------------------------------------------
 *
 * arguments.h
 *	  A call's arguments by their SQL names, and the training options read
 *	  from them: mf_train and mf_cross_validate take the same options under
 *	  the same names, in different positions, and the C code depends on
 *	  the names only.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MF_ARGUMENTS_H
#define MF_ARGUMENTS_H

#include "mf_ext.h"
#include "als.h"

#include "fmgr.h"

/* A call's arguments and their names (from its pg_proc entry). */
typedef struct MfArguments
{
	FunctionCallInfo fcinfo;
	const char *function;		/* for messages */
	char	  **names;			/* fcinfo->nargs of them */
} MfArguments;

/*
 * The arguments of function's call, which must take count of them (an
 * older SQL definition, before ALTER EXTENSION UPDATE, may take fewer:
 * 55000); every one but those named in nullable (NULL-terminated) must
 * not be NULL (22004, hint null_hint(name), or "Omit the argument to use
 * its default." when that is NULL or returns NULL).
 */
extern MfArguments mf_arguments(FunctionCallInfo fcinfo, const char *function, int count,
								const char *const *nullable,
								const char *(*null_hint) (const char *name));

/* The argument name is NULL. */
extern bool mf_argument_isnull(const MfArguments *args, const char *name);

/* The function has an argument name and the call gives it (not NULL). */
extern bool mf_argument_given(const MfArguments *args, const char *name);

/* The value of argument name (an error if the function has none of that name). */
extern Datum mf_argument(const MfArguments *args, const char *name);

/* A text argument as a C string, or NULL for NULL. */
extern char *mf_text_argument(const MfArguments *args, const char *name);

/*
 * The training options of the call's arguments, each read when the call
 * gives it (k, lambda, iterations, seed, double_precision, biases,
 * weighted_lambda, tolerance, feedback, alpha, solver, nonnegative,
 * patience; NULL is not given, nor an argument the function lacks:
 * mf_cross_validate has no patience), else left as options has it (a
 * solver not given follows a change of feedback kind); feedback and solver are checked here
 * (22023), the rest by mf_check_fit_options.  A new training option: its
 * line here, a field of MfFitOptions, its check, its column in catalog.c
 * (kept by retraining), its argument in the SQL.
 */
extern void mf_read_fit_options(const MfArguments *args, MfFitOptions *options);

#endif							/* MF_ARGUMENTS_H */
