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
 *	  (with biases, each row's bias joins its factors, with its lambda or
 *	  bias_lambda; ALS-WR scales a row's lambda by its rating count,
 *	  lambda_per_rating adds to it per rating; implicit feedback sums over
 *	  every pair with confidences, Hu, Koren and Volinsky 2008).  With
 *	  implicit_weight w > 0 (implicit information in an explicit model,
 *	  Koren 2008's SVD++ in the ALS form of cmfrec's add_implicit_features)
 *	  J also has
 *
 *	      w / 2 sum over all pairs (e_ui - u . y_i)^2
 *	      + w / 2 sum over all pairs (e_ui - v_i . z_u)^2
 *	      + lambda / 2 (sum |y|^2 + sum |z|^2)
 *
 *	  with e_ui the number of u's ratings of i (1 for a pair rated, 0 for
 *	  every other): an iteration sets Y from U, solves the users, sets Z
 *	  from V, solves the items.  Each step solves its block in closed form
 *	  with the others fixed, so J never rises.
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
	double		lambda_per_rating;	/* a row of n ratings: its factors' lambda +
									 * this * n (0: lambda alone) */
	double		bias_lambda;	/* with biases: the biases' lambda; -1 (NULL):
								 * the row's factors' lambda */
	bool		clip;			/* predictions clipped to the training ratings' range */
	double		implicit_weight;	/* w: which items each user rated (and which
									 * users rated each item) as implicit
									 * feedback beside the ratings; 0: none */
	bool		implicit;		/* implicit feedback (Hu, Koren, Volinsky) */
	double		alpha;			/* confidence 1 + alpha * strength (implicit) */
	bool		conjugate_gradient; /* solver 'cg', else Cholesky */
	bool		nonnegative;	/* factors >= 0, by coordinate descent */
	bool		biases;
	bool		single;			/* float factors, else double */
	int			iterations;
	double		tolerance;		/* stop when J falls by less than this fraction */
	int			patience;		/* with a validation set: stop after this many
								 * iterations without a lower validation RMSE,
								 * keeping the factors of the lowest; 0: never */
	int32		seed;
} MfFitOptions;

/* A fit in progress. */
typedef struct MfAls MfAls;

/*
 * A half-step solved elsewhere (the Citus workers, distributed.h): solves
 * every row of side against factors' other side, held fixed, into
 * factors' side (and its biases), each row's share of J's penalty into
 * norm[] and, for the items (sse not NULL), its squared errors into
 * sse[]; indexed as the fit's ratings number the rows.  Returns -1, or the
 * index of a row whose system could not be solved.
 */
typedef int32 (*MfHalfStepFn) (void *arg, MfSide side, MfFactors *factors, double *norm,
							   double *sse);

/*
 * What a fit recorded: per iteration run, J, the training RMSE, the
 * validation RMSE (NULL array without a validation set) and seconds; and
 * which iteration's factors the fit kept.
 */
typedef struct MfFitHistory
{
	int			iterations_run; /* fewer than asked when tolerance or patience
								 * stopped it */
	int			kept_iteration; /* 1 to iterations_run: the iteration whose
								 * factors the fit holds at its end */
	bool		kept_best;		/* with patience: kept_iteration is the one of
								 * the lowest validation RMSE (else the last) */
	double	   *loss;
	double	   *train_rmse;
	double	   *validation_rmse;
	double	   *seconds;
} MfFitHistory;

struct MfTestSet;

/*
 * Adds to memory the bytes a training on ratings will hold while solving
 * (the ratings' rows, the factors, per-row sums, each thread's buffers;
 * with patience, a copy of the factors and biases: the best iteration's);
 * returns the number of threads it assumes.
 */
extern int	mf_als_memory_estimate(const MfRatings *ratings,
								   const MfFitOptions *options, MfMemory *memory);

/*
 * A fit of ratings with options, its item factors not yet set, in cxt
 * (with patience, also the arrays the best iteration's factors are kept
 * in), from summary, the ratings' (mf_ratings_summarize; on Citus, where
 * ratings hold ids and counts but not the values, the workers' totals),
 * whose half-steps remote_step solves if not NULL.
 */
extern MfAls *mf_als_create(const MfRatings *ratings, const MfFitOptions *options,
							const MfRatingsSummary *summary, MfHalfStepFn remote_step,
							void *remote_arg, MemoryContext cxt);

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

/*
 * Rows first .. first + count - 1 of one side's factors (implicit: its
 * implicit factors, which the fit must have), as doubles, into out.
 */
extern void mf_als_get_rows(const MfAls *als, MfSide side, bool implicit, int32 first,
							int32 count, double *out);

/*
 * Runs the iterations (options->iterations, or fewer: tolerance, patience),
 * with a validation set scored after each (may be NULL; options->patience
 * > 0 needs one), into history (allocated here).  With patience, the fit
 * stops once patience iterations in a row have not lowered the validation
 * RMSE below the lowest so far, and ends holding the factors and biases of
 * the iteration of the lowest (history->kept_iteration), however it
 * stopped.  With report, a NOTICE per iteration and one for an early stop.
 * Errors: a singular row (22023, lambda = 0), an unsolvable one or
 * overflow (22003); a cancel between iterations or while the best factors
 * are copied.
 */
extern void mf_fit(MfAls *als, const MfFitOptions *options,
				   const struct MfTestSet *validation, bool report,
				   MfFitHistory *history);

/*
 * Solves the rows of side (their columns dense indices of factors' other
 * side) against factors' other side, held fixed, with training's kernel
 * and threads, each from 0 and exactly (Cholesky, or the non-negative
 * solve): what a retraining's half-step gives a new row.  Into out
 * (rows->n_rows x k reals of factors' precision) and bias (with biases);
 * with implicit information, the rows' own implicit factors (solved from
 * the other side's factors, as training does) into implicit_out (the same
 * shape) unless it is NULL.  Returns -1, or the first row that could not
 * be solved (or whose solution is not finite).  Fold-in and refit.  The
 * solve's memory, with held bytes the caller holds beside it, is checked
 * against mf_ext.max_memory first (54000 when it would pass it).
 */
extern int32 mf_als_solve_against(const MfFactors *factors, MfSide side,
								  const MfFitOptions *options, const MfCsr *rows, Size held,
								  void *out, double *bias, void *implicit_out, MemoryContext cxt);

/*
 * Solving rows one at a time against fixed factors, in the backend's
 * thread, as a training's half-step solves them (exactly: Cholesky, or
 * the non-negative solve): what a Citus worker does for its shards' rows
 * (distributed.h).  fixed holds the other side's factors (and biases,
 * mean); it must outlive the solver, which lives in cxt.
 */
typedef struct MfAlsRowSolver MfAlsRowSolver;

extern MfAlsRowSolver *mf_als_row_solver(const MfFactors *fixed, MfSide side,
										 const MfFitOptions *options, MemoryContext cxt);

/*
 * Solves one row of degree ratings values[] against fixed rows cols[]
 * (sorted, as a training sorts them: by index, then value) into x (k
 * reals of the factors' precision) and *bias, with its share of J's
 * penalty in *norm and, with loss, its squared errors in *sse.  False
 * when the system cannot be solved or the solution is not finite.
 * Processes interrupts.
 */
extern bool mf_als_row_solve(MfAlsRowSolver *solver, const int32 *cols, const double *values,
							 int32 degree, bool loss, void *x, double *bias, double *norm,
							 double *sse);

#endif							/* MF_ALS_H */
