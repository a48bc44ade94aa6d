/*-------------------------------------------------------------------------
 *
 * checks.h
 *	  The checks several SQL functions share: arguments that must not be
 *	  NULL or must be positive, the training options, fold counts, model
 *	  names, the privileges a writer of models needs, and the error for a
 *	  row whose least-squares system cannot be solved.  Each raises an
 *	  error with its SQLSTATE, a message, and a hint saying what to do.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MF_CHECKS_H
#define MF_CHECKS_H

#include "mf_ext.h"
#include "als.h"
#include "query.h"

/* 22004 unless argument arg of the call is given; hint says what to pass. */
extern void mf_check_not_null(FunctionCallInfo fcinfo, int arg, const char *name,
							  const char *hint);

/* The model argument (argument 0) of a serving function must not be NULL. */
extern void mf_require_model_argument(FunctionCallInfo fcinfo);

/* 22023 unless count (an argument named name) is at least 1; hint says what it is. */
extern void mf_check_count(int32 count, const char *name, const char *hint);

/*
 * 22023 for a training option out of its range, or options that do not go
 * together (k = 0 without biases, biases or patience with implicit
 * feedback, solver 'cg' with lambda = 0).
 */
extern void mf_check_fit_options(const MfFitOptions *options);

/*
 * 22023 for a row penalty the precision cannot take: in single precision a
 * row's lambda (lambda + lambda_per_rating * n, lambda * n with
 * weighted_lambda, for a row of n ratings) and bias_lambda must be floats
 * with room for the Gram matrix beside them (at most
 * MF_MAX_SINGLE_LAMBDA), in double precision finite.  longest is the
 * longest row's count: 1 before the data is read, as mf_check_fit_options
 * checks it (attack helpers 235 and 244).
 */
extern void mf_check_row_penalty(const MfFitOptions *options, int64 longest);

/*
 * 22023 for patience (early stopping) without a validation relation
 * (validation false): there is no validation RMSE to watch.
 */
extern void mf_check_patience_validation(const MfFitOptions *options, bool validation);

/* 22023 unless folds is 2 to MF_MAX_FOLDS. */
extern void mf_check_folds(int folds);

/* 22023 for an empty or too long model name. */
extern void mf_check_model_name(const char *model_name);

/*
 * 25006 in a read-only transaction (BEGIN READ ONLY,
 * default_transaction_read_only, a standby): function writes what, which
 * such a transaction may not, and would fail only at its first write, in
 * a statement of its own.
 */
extern void mf_check_read_write(const char *function, const char *what);

/*
 * 42501 unless the caller may write models (the privileges the README's
 * Privileges section grants a trainer: with history, a training's, on
 * mf_model_history too) and no row-level security hides part of the
 * model tables from it; function names the caller.  Checked before any
 * reading.  0A000 on a Citus worker (schema->remote): models are written
 * on the coordinator; 25006 in a read-only transaction; 55000 with
 * session_replication_role = replica, where the model tables' triggers
 * (provenance, foreign keys) do not fire.
 */
extern void mf_check_write_privileges(const MfSchema *schema, const char *function,
									  bool history);

/* Where a least-squares system could not be solved. */
typedef enum MfSolveWhere
{
	MF_SOLVE_TRAINING,
	MF_SOLVE_FOLD_IN,
	MF_SOLVE_REFIT
} MfSolveWhere;

/*
 * Raises the error for a row of side, id id (text; NULL: a new user being
 * folded in), whose system could not be solved: singular (22023) at
 * lambda = 0, else (22003) lost to rounding or overflow.  model names the
 * model folded into or refitted (NULL in training).  other_rows is the
 * other side's row count (0: not known): with implicit feedback, fewer than
 * k of them make every row's system singular at lambda = 0.  partner is the id of
 * the other side's row that the row lists most often, times times (NULL
 * and 0 when not known): from MF_REPEATS_NAMED times on, the error names
 * the pair, whose repeats each add to the system again.  A penalty
 * (lambda, bias_lambda or lambda_per_rating) of MF_LARGE_PENALTY or more
 * is named as the cause instead of the small lambda the message
 * otherwise suspects: eight orders above the usual 0.01 to 100, it leaves
 * factors of about 0, and conjugate gradient's products, which grow with
 * its square, overflow single precision from about 1e19.
 */
#define MF_REPEATS_NAMED	100
#define MF_LARGE_PENALTY	1e10
extern void mf_report_unsolvable(MfSolveWhere where, MfSide side, const char *id,
								 const MfFitOptions *options, const char *model,
								 const char *partner, int64 times,
								 int64 other_rows) pg_attribute_noreturn();

#endif							/* MF_CHECKS_H */
