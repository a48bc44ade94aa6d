/*-------------------------------------------------------------------------
 *
 * als.h
 *	  The alternating-least-squares solver: how to fit (MfFitOptions), a
 *	  fit in progress (MfAls: factors, threads, buffers), its iterations
 *	  with the objective J after each (mf_fit), and solving rows of one
 *	  side against a stored model's other side (fold-in, refit).
 *
 *	  J = sum over observed pairs of (r - prediction)^2 / 2
 *	      + lambda / 2 (sum |u|^2 + sum |v|^2)
 *
 *	  (with biases, each row's bias joins its factors, with its lambda;
 *	  ALS-WR scales a row's lambda by its rating count; implicit feedback
 *	  sums over every pair with confidences, Hu, Koren and Volinsky 2008).
 *	  Each half-step solves every row of one side in closed form with the
 *	  other side fixed, so J never rises.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MF_ALS_H
#define MF_ALS_H

#include "mf_ext.h"
#include "ratings.h"
#include "score.h"

/*
 * How to fit: mf_train's options that shape the solve.  Adding one: a
 * field here, its check (checks.c), its column in the catalog's
 * description (catalog.c) and its argument in the SQL signature.
 */
typedef struct MfFitOptions
{
	int			k;
	double		lambda;
	bool		weighted_lambda;	/* ALS-WR: lambda * n for a row of n ratings */
	bool		implicit;		/* implicit feedback (Hu, Koren, Volinsky) */
	double		alpha;			/* confidence 1 + alpha * strength (implicit) */
	bool		conjugate_gradient; /* solver 'cg', else Cholesky */
	bool		nonnegative;	/* factors >= 0, by coordinate descent */
	bool		biases;
	bool		single;			/* float factors, else double */
	int			iterations;
	double		tolerance;		/* stop when J falls by less than this fraction */
	int32		seed;
} MfFitOptions;

/* A fit in progress. */
typedef struct MfAls MfAls;

/*
 * What a fit recorded: per iteration run, J, the training RMSE, the
 * validation RMSE (NULL array without a validation set) and seconds.
 */
typedef struct MfFitHistory
{
	int			iterations_run; /* fewer than asked when tolerance stopped it */
	double	   *loss;
	double	   *train_rmse;
	double	   *validation_rmse;
	double	   *seconds;
} MfFitHistory;

struct MfTestSet;

/*
 * Adds to memory the bytes a training on ratings will hold while solving
 * (the ratings' rows, the factors, per-row sums, each thread's buffers);
 * returns the number of threads it assumes.
 */
extern int	mf_als_memory_estimate(const MfRatings *ratings,
								   const MfFitOptions *options, MfMemory *memory);

/* A fit of ratings with options, its item factors not yet set, in cxt. */
extern MfAls *mf_als_create(const MfRatings *ratings, const MfFitOptions *options,
							MemoryContext cxt);

/* The fit's factors (as they are after the last iteration). */
extern const MfFactors *mf_als_factors(const MfAls *als);

/*
 * Seeds every item's factors: v_ij = z / sqrt(k), z a standard normal from
 * splitmix64 hashes of (seed, item id, j), so they depend on the item's
 * id, not on row order.
 */
extern void mf_als_init_items(MfAls *als, int32 seed);

/* Sets item index's factors (k numbers) and bias: a warm start. */
extern void mf_als_set_item(MfAls *als, int32 index, const double *values, double bias);

/* Rows first .. first + count - 1 of one side's factors, as doubles, into out. */
extern void mf_als_get_rows(const MfAls *als, MfSide side, int32 first, int32 count,
							double *out);

/*
 * Runs the iterations (options->iterations, or fewer: tolerance), with a
 * validation set scored after each (may be NULL), into history (allocated
 * here).  With report, a NOTICE per iteration.  Errors: a singular row
 * (22023, lambda = 0), an unsolvable one or overflow (22003).
 */
extern void mf_fit(MfAls *als, const MfFitOptions *options,
				   const struct MfTestSet *validation, bool report,
				   MfFitHistory *history);

/*
 * Solves the rows of side (their columns dense indices of factors' other
 * side) against factors' other side, held fixed, with training's kernel
 * and threads, each from 0 and exactly (Cholesky, or the non-negative
 * solve): what a retraining's half-step gives a new row.  Into out
 * (rows->n_rows x k reals of factors' precision) and bias (with biases).
 * Returns -1, or the first row that could not be solved (or whose solution
 * is not finite).  Fold-in and refit.
 */
extern int32 mf_als_solve_against(const MfFactors *factors, MfSide side,
								  const MfFitOptions *options, const MfCsr *rows,
								  void *out, double *bias, MemoryContext cxt);

#endif							/* MF_ALS_H */
