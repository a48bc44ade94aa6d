/*-------------------------------------------------------------------------
 *
 * als.c
 *	  The alternating-least-squares solver (als.h): factor storage in
 *	  single or double precision, worker threads, the objective, and the
 *	  iterations of a fit.
 *
 *	  One iteration solves every user for the current item factors, then
 *	  every item for the new user factors.  Each row's system (als_kernel.h)
 *	  is independent of the others', so rows are solved in parallel
 *	  (parallel.c) and the result is bit-identical whatever the number of
 *	  threads.  The threads run only the kernel: plain C, mf_ext's own
 *	  single-precision kernels (kernel.h) and BLAS/LAPACK (OpenBLAS
 *	  single-threaded), on buffers the backend allocated beforehand.
 *
 *-------------------------------------------------------------------------
 */
#include "als.h"
#include "blas.h"
#include "checks.h"
#include "evaluate.h"
#include "kernel.h"
#include "parallel.h"

#include <float.h>
#include <limits.h>
#include <math.h>

#include "progress.h"

#include "miscadmin.h"
#include "utils/memutils.h"

/* Ratings per chunk of rows handed to a thread, on average. */
#define MF_RATINGS_PER_CHUNK	8192

/* A long row is gathered and summed in parts of this many ratings, checking for a stop between. */
#define MF_ROW_SEGMENT	65536

/*
 * Rows (a power of two, at least 256) that cost about k^2 each and fit in
 * budget / k^2, at most most: how many a loop over rows takes between two
 * looks for a stop.
 */
static inline int64
rows_per_look(int k, int64 most, int64 budget)
{
	int64		rows = most;

	while (rows > 256 && rows * k * k > budget)
		rows /= 2;
	return rows;
}

/*
 * Ratings of a long row gathered or added to its Gram matrix between two
 * stop checks: MF_ROW_SEGMENT up to k = 64, and fewer as k grows, since a
 * rating's share of the Gram matrix costs k(k + 1) (at k = 1024 a row of
 * 65,000 ratings, one segment, held a cancel off for 0.5 s, 1.4 s in
 * double precision); 256 at k = 1024.
 */
static inline int
row_segment(int k)
{
	return (int) rows_per_look(k, MF_ROW_SEGMENT, (int64) MF_ROW_SEGMENT * 64 * 64);
}

/*
 * Rows of a whole side per BLAS call that sums its Gram matrix or solves
 * its rows (implicit feedback and information), with a look for interrupts
 * between calls: at most 2^30 / k^2 rows (about 0.02 s; a side of 62,000
 * rows at k = 1024, one call, had kept a cancel waiting 6-8 s).  A side of
 * no more rows is one call, as before.
 */
static inline int64
side_chunk(int k)
{
	return rows_per_look(k, (int64) 1 << 30, (int64) 1 << 30);
}

/*
 * The largest diagonal element 1 + w_e p_e . p_e of a row's Woodbury
 * system (als_kernel.h's woodbury_solve) it solves that way: the
 * identity's subtraction loses about that many times the precision's
 * epsilon.  On Last.fm (k = 64, lambda = 50, five exact iterations in
 * single precision against double) predictions were 1.4e-6 off at
 * alpha = 1000 with 100, against 8.8e-7 solving every row the primal way
 * and 3.3e-5 with 1e3; at alpha = 10, 4.2e-7 against 3.7e-7.
 */
#define MF_WOODBURY_LIMIT	100.0

/* Conjugate-gradient steps per row and half-step (solver 'cg'). */
#define MF_CG_STEPS	3

/* Coordinate-descent sweeps at most, and the relative step that ends them. */
#define MF_NNLS_SWEEPS		1000
#define MF_NNLS_TOLERANCE	1e-10

/* One thread's scratch space, sized for the longest row of either side. */
typedef struct SolveBuffers
{
	void	   *gathered;		/* d x max_degree reals: the other side's rows
								 * (NULL with the own kernels) */
	void	   *gram;			/* d x d reals */
	void	   *targets;		/* max_degree reals: right-hand side weights */
	void	   *weights;		/* max_degree reals: c - 1 (implicit feedback) */
	void	   *scratch;		/* max_degree reals */
	void	   *solution;		/* d reals */
	void	   *cg;				/* 4d reals: conjugate-gradient vectors */
	double	   *nnls;			/* 2d doubles: non-negative solve; implicit sums */
	void	   *implicit_sum;	/* d reals: the row's implicit factors summed */
	void	   *lapack_work;	/* 3d reals */
	int		   *lapack_iwork;	/* d ints */
	float	  **batch_grams;	/* batch_lanes systems (d x d floats each) */
	float	  **batch_solutions;	/* batch_lanes right-hand sides (d floats) */
	float	   *batch_scratch;	/* the kernel's cholesky_batch_scratch(d) */
	float	   *dual_rows;		/* k x dual_degree floats: a short row's rated
								 * rows transposed (mf_kernel_dual_solve), or
								 * NULL */
	bool		predictions_kept;	/* the row's solve left its predictions in
									 * targets (cg_keeps_predictions; the
									 * Woodbury identity), for J */
	bool		quadratic_kept; /* the Woodbury identity left x'Gx in
								 * quadratic, for J */
	double		quadratic;
	int64		woodbury_solved;	/* rows the Woodbury identity solved in the
									 * half-step (DEBUG1) */
} SolveBuffers;

struct MfAls
{
	const MfBlas *blas;
	const MfKernel *kernel;		/* single precision's own kernels, or NULL */
	const MfRatings *ratings;
	MfFactors	factors;
	int			unknowns;		/* d: k, plus 1 for the row's own bias */
	double		lambda;
	bool		weighted_lambda;
	double		bias_lambda;	/* the biases' lambda, or -1: the row's factors' */
	double		zero_loss;		/* J of all-zero factors (and biases): the scale of J */
	double		farthest;		/* explicit: the largest |rating - the mean with biases, else 0| */
	double		lambda_per_rating;	/* added to lambda per rating of the row */
	bool		absolute_norms; /* norm[] holds penalties, not multiples of lambda */
	double		alpha;			/* confidence per unit of rating (implicit) */
	bool		conjugate_gradient; /* else Cholesky */
	bool		nonnegative;	/* factors >= 0 (coordinate descent) */
	bool		own_cholesky;	/* the own kernel's Cholesky solves the systems */
	int			batch_lanes;	/* ... that many rows at a time, or 0: one by one */
	int			dual_degree;	/* rows of at most this many ratings are
								 * solved in the dual form, or 0 */
	int32	   *dual_identity;	/* 0 .. d - 1, for the dual form's Gram matrix */
	int			woodbury_degree;	/* implicit feedback: rows of at most this
									 * many ratings are solved by the Woodbury
									 * identity where the half-step has the
									 * transformed other side, or 0 */
	void	   *woodbury_factor;	/* k x k reals: U of G + lambda I = U'U */
	void	   *other_gram;		/* k x k reals: G of the fixed side (implicit) */
	double		implicit_weight;	/* w of implicit information, or 0 */
	void	   *implicit_gram;	/* d x d reals: w (T'T (+) 0) of the fixed side's
								 * implicit factors T, for a half-step */
	void	   *implicit_scratch;	/* k x k reals */
	void	   *implicit_grams;	/* 2 k x k reals: Y'Y and Z'Z as the half-steps
								 * read them (J's inner products) */
	double		rated_pair_squares;	/* sum over the rated pairs of c^2, c the
									 * pair's entries: implicit information's
									 * sum over all pairs of e^2 */
	double	   *user_implicit_dots; /* per user u: u . (sum of y over u's items) */
	double	   *item_implicit_dots; /* per item i: v . (sum of z over i's users) */
	Size		real_size;		/* sizeof(float) or sizeof(double) */
	int			threads;
	double	   *user_norm;		/* each user's share of the penalty */
	double	   *item_norm;		/* each item's share of the penalty */
	double	   *item_sse;		/* squared errors per item, after an iteration */
	double	   *user_previous_sse;	/* squared errors per user with the
									 * factors before the user half-step: the
									 * previous iteration's data term, where
									 * the fit can sum it late (can_defer_loss),
									 * else NULL */
	SolveBuffers *buffers;		/* one per thread */
	MfFactors	best;			/* with patience: the factors and biases of the
								 * iteration of the lowest validation RMSE so
								 * far (the arrays only; else all NULL) */
	MfHalfStepFn remote_step;	/* solves each half-step elsewhere (the Citus
								 * workers), or NULL: here, from ratings */
	void	   *remote_arg;
};

/* One half-step, shared by the threads that work on it. */
typedef struct HalfStep
{
	const MfAls *als;
	const MfCsr *rows;
	const void *other;			/* the fixed side's factors */
	const double *other_bias;	/* the fixed side's biases, or NULL */
	const void *other_gram;		/* its Gram matrix (implicit feedback), or
								 * implicit information's implicit_gram, or NULL */
	const void *implicit_other; /* the fixed side's implicit factors, or NULL */
	const void *woodbury_left;	/* the fixed side's rows as U'^-1 o and */
	const void *woodbury_right; /* (G + lambda I)^-1 o (woodbury_solve), or
								 * NULL: no row is solved that way */
	double	   *implicit_dots;	/* per row: its solution's factors . its
								 * implicit sum (J), or NULL */
	void	   *out;			/* the side being solved */
	double	   *out_bias;
	double	   *norm;
	double	   *sse;
	double	   *previous_sse;	/* per row: the data term of its factors
								 * before the half-step, -1 until summed
								 * (previous_row_loss), or NULL */
} HalfStep;

/*
 * A row's regularisation: on its factors lambda (times its rating count n
 * with weighted_lambda) + lambda_per_rating * n, on its own bias
 * bias_lambda where given, else the factors' lambda.  norm_factors and
 * norm_bias weigh |factors|^2 and bias^2 in the row's share of J's
 * penalty (norm[]): the penalties themselves with bias_lambda or
 * lambda_per_rating, else the penalty divided by lambda, which J
 * multiplies back (0.4's J, to the bit).
 */
typedef struct RowPenalty
{
	double		factors;
	double		bias;
	double		norm_factors;
	double		norm_bias;
} RowPenalty;

static inline RowPenalty
row_penalty(const MfAls *als, int degree)
{
	double		weight = als->weighted_lambda ? degree : 1;
	RowPenalty	penalty;

	penalty.factors = als->lambda * weight + als->lambda_per_rating * degree;
	penalty.bias = als->bias_lambda >= 0 ? als->bias_lambda : penalty.factors;
	penalty.norm_factors = als->absolute_norms ? penalty.factors : weight;
	penalty.norm_bias = als->absolute_norms ? penalty.bias : weight;
	return penalty;
}

/*
 * Whether a row rates one partner more than once (its degree columns are
 * sorted, so a repeat is next to its twin).  Such a row is not solved in
 * the dual form: two equal rows of X give z large entries of opposite
 * signs, about (y_1 - y_2) / lambda, which X'z cancels in single
 * precision (a prediction of 2.84 for 3.00 at lambda = 0.001; attack
 * helper 166); the primal system has no such direction.
 */
static inline bool
row_repeats_partner(const int32 *col, int degree)
{
	for (int e = 1; e < degree; e++)
		if (col[e] == col[e - 1])
			return true;
	return false;
}

/* The penalty on unknown j of a row's k factors (and bias, j = k). */
static inline double
penalty_of(const RowPenalty *penalty, int j, int k)
{
	return j < k ? penalty->factors : penalty->bias;
}

/*
 * A pass over one side's rows (implicit information): each row's sum of
 * the rows of from over its entries, into sums (k reals a row).
 */
typedef struct ImplicitPass
{
	const MfAls *als;
	const MfCsr *rows;
	const void *from;
	void	   *sums;
} ImplicitPass;

/* Rows per chunk of a pass over rows: about MF_RATINGS_PER_CHUNK entries. */
static inline int64
implicit_chunk(const MfCsr *rows)
{
	int64		per_row = Max(1, rows->row_start[rows->n_rows] / Max(rows->n_rows, 1));

	return Max(1, Min(256, MF_RATINGS_PER_CHUNK / per_row));
}

/* What solving one row by conjugate gradient came to. */
typedef enum RowOutcome
{
	ROW_SOLVED,
	ROW_STOPPED,				/* the run asked it to stop: solve it again */
	ROW_FAILED					/* a number overflowed: the row is unsolvable */
} RowOutcome;

/*
 * The own kernels that solve a fit with options (kernel.h), or NULL:
 * double precision, or mf_ext.kernel = 'blas', gathers the rows for BLAS.
 */
static const MfKernel *
fit_kernel(const MfFitOptions *options)
{
	return options->single ? mf_kernel() : NULL;
}

/*
 * Whether the own kernel's Cholesky solves systems of d unknowns: with
 * lambda > 0 (at 0 LAPACK's condition estimate rejects singular systems),
 * without the non-negative constraint, and for at most the kernel's
 * cholesky_max unknowns (beyond, LAPACK's blocked factorisation is
 * faster).
 */
static bool
own_cholesky(const MfKernel *kernel, const MfFitOptions *options, int d)
{
	return kernel && options->lambda > 0 && !options->nonnegative && d <= kernel->cholesky_max;
}

/*
 * How many rows the own Cholesky solves at a time (cholesky_batch), or 0:
 * one by one, with conjugate gradient (which needs no Cholesky), with
 * implicit information (whose rows keep a sum from their system to their
 * end) and past MF_KERNEL_BATCH_MAX unknowns.
 */
static int
batch_lanes(const MfKernel *kernel, const MfFitOptions *options, int d)
{
	return own_cholesky(kernel, options, d) && !options->conjugate_gradient &&
		options->implicit_weight == 0 && d <= MF_KERNEL_BATCH_MAX ? kernel->batch_lanes : 0;
}

/*
 * The most ratings of a row that the batched solve solves in the dual form
 * (mf_kernel_dual_solve), or 0: explicit feedback (with biases, a
 * bias_lambda > 0) where the batches solve the systems.  A row of n <= k ratings o_e (the n x k matrix X) has
 * (X'X + lambda I)^-1 X'y = X' (X X' + lambda I)^-1 y: an n x n system in
 * place of k x k.  Where the dual costs less than the batched primal
 * (test/bench/kernels.c's "row of n ratings" lines, one thread, Zen 4,
 * 2026-12-03, AVX-512 / AVX2): at k = 128 0.14x / 0.08x at 8 ratings,
 * 0.70-0.75x / 0.45-0.56x at 64, 0.82-0.92x / 0.66-0.76x at 80,
 * 0.94-1.12x / 0.79-0.97x at 96; at k = 64 0.43-0.47x / 0.21-0.24x at 8,
 * 0.94-0.98x / 0.76-0.81x at 32, 1.30-1.63x / 0.96-1.10x at 40; at k = 32
 * 1.19x / 0.53x at 8 (so not below k = 64).
 */
static int
dual_degree(const MfKernel *kernel, const MfFitOptions *options, int d)
{
	/* batch_lanes leaves out non-negativity, implicit information and lambda = 0 */
	if (batch_lanes(kernel, options, d) == 0 || options->implicit ||
		(options->biases && options->bias_lambda == 0))
		return 0;
	return Min(kernel->cholesky_max, d >= 96 ? d * 5 / 8 : d >= 64 ? d / 2 : 0);
}

/*
 * The most ratings of an implicit-feedback row that the Woodbury identity
 * solves exactly (als_kernel.h's woodbury_solve), whichever the solver, or
 * 0: with lambda > 0 and the same lambda for every row (G + lambda I is
 * then the half-step's, and is factored once), without non-negativity.
 * Such a row's system is G + lambda I plus n weighted outer products; with
 * the other side transformed once a half-step it is an n x n system, where
 * conjugate gradient's three steps cost four k x k products G v and
 * Cholesky a k x k factorisation.  k / 2 whatever the precision and
 * kernel, so that they all solve the same rows so; it bounds the n x n
 * system's two n^2 reals by the d x d of a thread's gram buffer.  On
 * Last.fm (1,892 users, 17,632 items of 1 to 600 listeners; one round each,
 * two threads, Zen 4, 2026-12-04) rows of up to 24-32 ratings at k = 64
 * and 32-64 at k = 128 were as fast as any: implicit CG iterations 0.55-0.65x
 * and 0.4x the time without it; at k = 16 about 0.7x.
 */
static int
woodbury_degree(const MfFitOptions *options)
{
	if (!options->implicit || options->implicit_weight > 0 || options->nonnegative ||
		!(options->lambda > 0) || options->weighted_lambda || options->lambda_per_rating > 0)
		return 0;
	return options->k / 2;
}

/*
 * Whether a half-step over rows against n_other rows of the other side
 * solves its short rows (of at most max_degree ratings, from
 * woodbury_degree) by the Woodbury identity: when they are at least as
 * many as the other side's rows, whose transformation (two triangular
 * solves of each, k^2 multiply-adds) costs about what one short row's
 * conjugate gradient saves.
 */
static bool
woodbury_half_step(int max_degree, const MfCsr *rows, int32 n_other)
{
	int64		short_rows = 0;

	if (max_degree == 0 || n_other == 0)
		return false;
	for (int32 r = 0; r < rows->n_rows; r++)
	{
		int64		degree = rows->row_start[r + 1] - rows->row_start[r];

		short_rows += degree >= 1 && degree <= max_degree;
	}
	return short_rows >= n_other;
}

/*
 * Bytes of the transformed other side (woodbury_transform) a half-step
 * over rows against n_other rows allocates with options, or 0.
 */
static Size
woodbury_memory(const MfFitOptions *options, const MfCsr *rows, int32 n_other)
{
	if (!woodbury_half_step(woodbury_degree(options), rows, n_other))
		return 0;
	return mul_size(mul_size(n_other, 2 * options->k),
					options->single ? sizeof(float) : sizeof(double));
}

/*
 * Adds to memory each of threads threads' batch buffers (SolveBuffers'
 * batch_* and dual_*), when a fit with options solves systems of d
 * unknowns in batches.
 */
static void
add_batch_memory(MfMemory *memory, const MfFitOptions *options, int d, int threads)
{
	const MfKernel *kernel = fit_kernel(options);
	int			lanes = batch_lanes(kernel, options, d);

	if (lanes == 0)
		return;
	mf_memory_add(memory,
				  mul_size(add_size(mul_size(lanes, add_size(mul_size(d, d), d + 2 * MF_ALIGNMENT)),
									kernel->cholesky_batch_scratch(d)),
						   threads),
				  sizeof(float));
	mf_memory_add(memory, add_size(mul_size(mul_size(d, dual_degree(kernel, options, d)), threads),
								   d),
				  sizeof(float));
}

#define REAL float
#define KERNEL(name) name##_single
#define SYRK ssyrk
#define GEMV sgemv
#define TRSM strsm
#define POTRF spotrf
#define POTRS spotrs
#define POCON spocon
#define REAL_EPSILON FLT_EPSILON
#define OWN_KERNELS
#include "als_kernel.h"

#define REAL double
#define KERNEL(name) name##_double
#define SYRK dsyrk
#define GEMV dgemv
#define TRSM dtrsm
#define POTRF dpotrf
#define POTRS dpotrs
#define POCON dpocon
#define REAL_EPSILON DBL_EPSILON
#include "als_kernel.h"

int
mf_als_memory_estimate(const MfRatings *ratings, const MfFitOptions *options,
					   MfMemory *memory)
{
	Size		real_size = options->single ? sizeof(float) : sizeof(double);
	int			d = options->k + (options->biases ? 1 : 0);
	Size		rows = add_size(ratings->n_users, ratings->n_items);
	Size		longest = mf_ratings_longest_row(ratings);
	int			threads = mf_thread_count();
	bool		gathers = fit_kernel(options) == NULL;

	/*
	 * both sides' rows; factors; per-row penalties and biases, the items'
	 * and (can_defer_loss) the users' squared errors; the Gram matrix
	 */
	mf_memory_add(memory, ratings->n_ratings,
				  2 * (sizeof(int32) + (ratings->by_user.val ? sizeof(double) : sizeof(float))));
	mf_memory_add(memory, mul_size(rows, options->k), real_size);
	mf_memory_add(memory, add_size(mul_size(rows, options->biases ? 2 : 1), rows),
				  sizeof(double));
	mf_memory_add(memory, (Size) options->k * options->k, real_size);
	/* each thread's buffers: the gathered rows (BLAS), the system and its d-long vectors */
	mf_memory_add(memory, mul_size(mul_size(add_size(gathers ? longest : 0, d + 9), d), threads),
				  real_size);
	mf_memory_add(memory, mul_size(mul_size(longest, 3), threads), real_size);
	mf_memory_add(memory, mul_size(d, threads), sizeof(int) + 2 * sizeof(double));
	add_batch_memory(memory, options, d, threads);
	/* one half-step's transformed other side at a time (implicit feedback) */
	mf_memory_add(memory, Max(woodbury_memory(options, &ratings->by_user, ratings->n_items),
							  woodbury_memory(options, &ratings->by_item, ratings->n_users)),
				  1);
	/* implicit information: both sides' implicit factors, J's products, its k x k and d x d */
	if (options->implicit_weight > 0)
	{
		mf_memory_add(memory, mul_size(rows, options->k), real_size);
		mf_memory_add(memory, rows, sizeof(double));
		mf_memory_add(memory, add_size(mul_size(3 * options->k, options->k), mul_size(d, d)),
					  real_size);
	}
	/* with patience, the best iteration's factors (and implicit ones) and biases beside them */
	if (options->patience > 0)
	{
		mf_memory_add(memory, mul_size(rows, options->k),
					  options->implicit_weight > 0 ? 2 * real_size : real_size);
		if (options->biases)
			mf_memory_add(memory, rows, sizeof(double));
	}
	return threads;
}

/*
 * Sets up everything of als but its ratings and factors: the options, the
 * threads (at most one per row to solve), the implicit-feedback Gram
 * matrix and each thread's buffers, sized for rows of up to longest
 * ratings.  als->factors must be set.
 */
static void
init_solver(MfAls *als, const MfFitOptions *options, int64 longest,
			int64 rows, MemoryContext cxt)
{
	int			d = options->k + (options->biases ? 1 : 0);

	Assert(d >= 1);
	if (longest > INT_MAX / d)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a user or item has " INT64_FORMAT " ratings, too many for k = %d",
						longest, options->k)));
	mf_check_row_penalty(options, longest);

	als->blas = mf_blas();
	als->kernel = fit_kernel(options);
	als->real_size = options->single ? sizeof(float) : sizeof(double);
	als->unknowns = d;
	als->lambda = options->lambda;
	als->weighted_lambda = options->weighted_lambda;
	als->bias_lambda = options->biases ? options->bias_lambda : -1;
	als->lambda_per_rating = options->lambda_per_rating;
	als->absolute_norms = als->bias_lambda >= 0 || als->lambda_per_rating > 0;
	als->alpha = options->alpha;
	als->conjugate_gradient = options->conjugate_gradient;
	als->nonnegative = options->nonnegative;
	als->own_cholesky = own_cholesky(als->kernel, options, d);
	als->batch_lanes = batch_lanes(als->kernel, options, d);
	als->dual_degree = dual_degree(als->kernel, options, d);
	als->woodbury_degree = woodbury_degree(options);
	if (als->woodbury_degree > 0)
		als->woodbury_factor = mf_alloc_aligned(cxt, (Size) d * d, als->real_size);
	if (als->dual_degree > 0)
	{
		als->dual_identity = mf_alloc_array(cxt, d, sizeof(int32));
		for (int j = 0; j < d; j++)
			als->dual_identity[j] = j;
	}
	als->threads = (int) Max(1, Min(mf_thread_count(), rows));
	if (options->implicit)
		als->other_gram = mf_alloc_aligned(cxt, (Size) options->k * options->k,
										 als->real_size);
	als->implicit_weight = options->implicit_weight;
	if (options->implicit_weight > 0)
	{
		als->implicit_gram = mf_alloc_aligned(cxt, (Size) d * d, als->real_size);
		als->implicit_scratch = mf_alloc_aligned(cxt, (Size) options->k * options->k,
												 als->real_size);
		als->implicit_grams = mf_alloc_aligned(cxt, (Size) 2 * options->k * options->k,
											   als->real_size);
	}

	/* zeroed: the batch's buffers stay NULL without a batched solve */
	als->buffers = mf_alloc_array(cxt, als->threads, sizeof(SolveBuffers));
	memset(als->buffers, 0, sizeof(SolveBuffers) * als->threads);
	longest = Max(longest, 1);
	for (int t = 0; t < als->threads; t++)
	{
		SolveBuffers *b = &als->buffers[t];

		b->gathered = als->kernel ? NULL
			: mf_alloc_aligned(cxt, mul_size(longest, d), als->real_size);
		b->gram = mf_alloc_aligned(cxt, (Size) d * d, als->real_size);
		b->targets = mf_alloc_aligned(cxt, longest, als->real_size);
		b->weights = mf_alloc_aligned(cxt, longest, als->real_size);
		b->scratch = mf_alloc_aligned(cxt, longest, als->real_size);
		b->solution = mf_alloc_aligned(cxt, d, als->real_size);
		b->cg = mf_alloc_aligned(cxt, (Size) 4 * d, als->real_size);
		b->nnls = mf_alloc_aligned(cxt, (Size) 2 * d, sizeof(double));
		b->implicit_sum = mf_alloc_aligned(cxt, d, als->real_size);
		b->lapack_work = mf_alloc_aligned(cxt, (Size) 3 * d, als->real_size);
		b->lapack_iwork = mf_alloc_array(cxt, d, sizeof(int));
		if (als->batch_lanes > 0)
		{
			/* systems a cache line more than d x d apart: an element's copies fall in different sets */
			Size		stride = (Size) d * d + MF_ALIGNMENT / sizeof(float);

			b->batch_grams = mf_alloc_array(cxt, als->batch_lanes, sizeof(float *));
			b->batch_solutions = mf_alloc_array(cxt, als->batch_lanes, sizeof(float *));
			b->batch_grams[0] = mf_alloc_aligned(cxt, mul_size(als->batch_lanes, stride),
												 sizeof(float));
			for (int s = 0; s < als->batch_lanes; s++)
			{
				b->batch_grams[s] = b->batch_grams[0] + s * stride;
				b->batch_solutions[s] = mf_alloc_aligned(cxt, d, sizeof(float));
			}
			b->batch_scratch = mf_alloc_aligned(cxt, als->kernel->cholesky_batch_scratch(d),
												sizeof(float));
		}
		if (als->dual_degree > 0)
			b->dual_rows = mf_alloc_aligned(cxt, (Size) d * als->dual_degree, sizeof(float));
	}
}

/*
 * The sum over the rated pairs of c^2, c the pair's entries (duplicate rows
 * of the source; rows list their entries by column, a pair's together):
 * implicit information's sum over all pairs of e^2, e = c for a rated pair.
 */
static double
rated_pair_squares(const MfCsr *rows)
{
	double		total = 0.0;

	for (int32 r = 0; r < rows->n_rows; r++)
	{
		int64		end = rows->row_start[r + 1];

		mf_interrupts_every(r, MF_INTERRUPT_ROWS);
		for (int64 e = rows->row_start[r]; e < end;)
		{
			int64		next = e + 1;

			while (next < end && rows->col[next] == rows->col[e])
				next++;
			total += (double) (next - e) * (double) (next - e);
			e = next;
		}
	}
	return total;
}

/*
 * Whether a fit of als with options can sum each iteration's data term of
 * J a half-step late (defers_loss): from the users' rows while the next
 * iteration solves them (previous_row_loss), their rated rows in the
 * cache for the solve, rather than from the items' rows after their
 * solve, which fetches every rater's factors once more (about a tenth of
 * an iteration at the ML-10M shape, k = 64, where the users' factors are
 * 18 MB).  Where nothing reads J before the next iteration starts (no
 * tolerance, no patience), on the own kernels' Cholesky (CG follows its
 * predictions through its steps, so its J costs no fetch), with explicit
 * ratings and no implicit information, solved here.  Double precision,
 * on OpenBLAS, keeps J's own pass.
 */
static bool
can_defer_loss(const MfAls *als, const MfFitOptions *options)
{
	return als->kernel != NULL && als->remote_step == NULL && !options->implicit &&
		options->implicit_weight == 0 && !options->conjugate_gradient &&
		options->tolerance == 0 && options->patience == 0;
}

MfAls *
mf_als_create(const MfRatings *ratings, const MfFitOptions *options,
			  const MfRatingsSummary *summary, MfHalfStepFn remote_step, void *remote_arg,
			  MemoryContext cxt)
{
	MfAls	   *als = MemoryContextAllocZero(cxt, sizeof(MfAls));
	MfFactors  *f = &als->factors;
	Size		real_size = options->single ? sizeof(float) : sizeof(double);

	als->ratings = ratings;
	/*
	 * J where the fit starts from nothing: all-zero factors, predicting 0
	 * or, with biases, the mean (the sum of squares about it); with implicit
	 * feedback each rated pair's preference 1, its confidence at least 1
	 */
	if (options->implicit)
		als->zero_loss = 0.5 * (double) ratings->n_ratings;
	else if (options->biases && ratings->n_ratings > 0)
		als->zero_loss = 0.5 * Max(summary->sum_squares -
								   summary->sum * summary->sum / (double) ratings->n_ratings, 0.0);
	else
		als->zero_loss = 0.5 * summary->sum_squares;
	if (!options->implicit && ratings->n_ratings > 0)
	{
		double		center = mf_ratings_center(summary, ratings->n_ratings, options->biases);

		als->farthest = Max(fabs(summary->max - center), fabs(summary->min - center));
	}
	als->remote_step = remote_step;
	als->remote_arg = remote_arg;
	f->k = options->k;
	f->single = options->single;
	f->implicit = options->implicit;
	f->n_users = ratings->n_users;
	f->n_items = ratings->n_items;
	f->user_factors = mf_alloc_aligned(cxt, mul_size(ratings->n_users, f->k), real_size);
	f->item_factors = mf_alloc_aligned(cxt, mul_size(ratings->n_items, f->k), real_size);
	mf_zero_checked(f->user_factors, mul_size(mul_size(ratings->n_users, f->k), real_size));
	f->biases = options->biases;
	if (f->biases)
	{
		f->mean = mf_ratings_center(summary, ratings->n_ratings, true);
		f->user_bias = mf_alloc_array(cxt, ratings->n_users, sizeof(double));
		f->item_bias = mf_alloc_array(cxt, ratings->n_items, sizeof(double));
		memset(f->user_bias, 0, sizeof(double) * ratings->n_users);
		memset(f->item_bias, 0, sizeof(double) * ratings->n_items);
	}
	if (options->implicit_weight > 0)
	{
		f->user_implicit = mf_alloc_aligned(cxt, mul_size(ratings->n_users, f->k), real_size);
		f->item_implicit = mf_alloc_aligned(cxt, mul_size(ratings->n_items, f->k), real_size);
		mf_zero_checked(f->user_implicit, mul_size(mul_size(ratings->n_users, f->k), real_size));
		mf_zero_checked(f->item_implicit, mul_size(mul_size(ratings->n_items, f->k), real_size));
		als->user_implicit_dots = mf_alloc_array(cxt, ratings->n_users, sizeof(double));
		als->item_implicit_dots = mf_alloc_array(cxt, ratings->n_items, sizeof(double));
		als->rated_pair_squares = rated_pair_squares(&ratings->by_user);
	}
	if (options->patience > 0)
	{
		als->best = *f;
		als->best.user_factors = mf_alloc_aligned(cxt, mul_size(ratings->n_users, f->k), real_size);
		als->best.item_factors = mf_alloc_aligned(cxt, mul_size(ratings->n_items, f->k), real_size);
		if (f->biases)
		{
			als->best.user_bias = mf_alloc_array(cxt, ratings->n_users, sizeof(double));
			als->best.item_bias = mf_alloc_array(cxt, ratings->n_items, sizeof(double));
		}
		if (f->user_implicit)
		{
			als->best.user_implicit = mf_alloc_aligned(cxt, mul_size(ratings->n_users, f->k), real_size);
			als->best.item_implicit = mf_alloc_aligned(cxt, mul_size(ratings->n_items, f->k), real_size);
		}
	}
	if (options->clip)
	{
		f->clip = true;
		f->rating_min = summary->min;
		f->rating_max = summary->max;
	}
	als->user_norm = mf_alloc_array(cxt, ratings->n_users, sizeof(double));
	als->item_norm = mf_alloc_array(cxt, ratings->n_items, sizeof(double));
	als->item_sse = mf_alloc_array(cxt, ratings->n_items, sizeof(double));
	init_solver(als, options, summary->longest,
				Max(ratings->n_users, ratings->n_items), cxt);
	if (can_defer_loss(als, options))
		als->user_previous_sse = mf_alloc_array(cxt, ratings->n_users, sizeof(double));
	return als;
}

const MfFactors *
mf_als_factors(const MfAls *als)
{
	return &als->factors;
}

/* Address of row index of one side's factors. */
static void *
factor_row(const MfAls *als, MfSide side, int32 index)
{
	char	   *base = side == MF_USERS ? als->factors.user_factors : als->factors.item_factors;

	return base + (Size) index * als->factors.k * als->real_size;
}

void
mf_als_set_item(MfAls *als, int32 index, const double *values, double bias)
{
	void	   *row = factor_row(als, MF_ITEMS, index);

	for (int j = 0; j < als->factors.k; j++)
	{
		if (als->factors.single)
			((float *) row)[j] = (float) values[j];
		else
			((double *) row)[j] = values[j];
	}
	if (als->factors.biases)
		als->factors.item_bias[index] = als->factors.single ? (float) bias : bias;
}

/*
 * A standard normal number that depends only on (seed, id, j): splitmix64
 * hashes give two uniforms in (0, 1], Box-Muller turns them into N(0, 1).
 */
static double
seeded_normal(int32 seed, int64 id, int j)
{
	uint64		h = mf_mix64(mf_mix64(mf_mix64((uint64) (uint32) seed) ^ (uint64) id) ^ (uint64) j);
	uint64		h2 = mf_mix64(h);
	double		u1 = ((double) (h >> 11) + 1.0) / 9007199254740992.0;	/* 2^53 */
	double		u2 = (double) (h2 >> 11) / 9007199254740992.0;

	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void
mf_als_init_items(MfAls *als, int32 seed)
{
	int			k = als->factors.k;
	double	   *values = palloc(sizeof(double) * Max(k, 1));
	double		scale = 1.0 / sqrt((double) Max(k, 1));

	for (int32 i = 0; i < als->ratings->n_items; i++)
	{
		/* 100,000 items at k = 512 take seconds */
		mf_interrupts_every(i, MF_INTERRUPT_ROWS);
		for (int j = 0; j < k; j++)
			values[j] = scale * seeded_normal(seed, als->ratings->item_ids[i], j);
		mf_als_set_item(als, i, values, 0.0);
	}
	pfree(values);
}

void
mf_als_get_rows(const MfAls *als, MfSide side, bool implicit, int32 first, int32 count,
				double *out)
{
	const MfFactors *f = &als->factors;
	int			k = f->k;
	const void *rows = implicit ? (side == MF_USERS ? f->user_implicit : f->item_implicit)
		: (side == MF_USERS ? f->user_factors : f->item_factors);

	for (int32 r = 0; r < count; r++)
		for (int j = 0; j < k; j++)
			out[(Size) r * k + j] = f->single
				? ((const float *) rows)[(Size) (first + r) * k + j]
				: ((const double *) rows)[(Size) (first + r) * k + j];
}

/* mf_parallel_for task: solves rows [first, last) of a half-step. */
static int64
solve_chunk(void *arg, int thread, int64 first, int64 last)
{
	const HalfStep *step = arg;
	const MfAls *als = step->als;
	SolveBuffers *buffers = &als->buffers[thread];

	if (als->factors.single)
		return solve_rows_single(step, buffers, (int32) first, (int32) last);
	return solve_rows_double(step, buffers, (int32) first, (int32) last);
}

/*
 * als->other_gram = sum over the n rows o of other of o o' (both
 * triangles), for implicit feedback.  Runs in the backend's thread.
 */
static void
fixed_side_gram(MfAls *als, const void *other, int32 n)
{
	if (als->factors.single)
		fixed_side_gram_single(als, other, n, als->other_gram);
	else
		fixed_side_gram_double(als, other, n, als->other_gram);
}

/*
 * Whether the other side's n rows of factors from (k reals each) have a
 * column whose squares sum past the factors' precision (or are not
 * finite): what overflows their k x k Gram matrix F'F.
 */
static bool
side_gram_overflows(const MfAls *als, const void *from, int32 n)
{
	const int	k = als->factors.k;
	const double largest = als->factors.single ? FLT_MAX : DBL_MAX;

	for (int j = 0; j < k; j++)
	{
		double		sum = 0.0;

		for (int32 r = 0; r < n; r++)
		{
			double		x = als->factors.single ? ((const float *) from)[(Size) r * k + j]
				: ((const double *) from)[(Size) r * k + j];

			sum += x * x;
		}
		if (!(sum <= largest))
			return true;
	}
	return false;
}

/*
 * Implicit information's step: the implicit factors out of the side whose
 * rows are rows, from the other side's n_from factors from (the kernel's
 * implicit_side).  Its k x k system, F'F + lambda / w I, is positive
 * definite in exact arithmetic, but its factorisation fails where the
 * factors overflow F'F, or where lambda / w is too small beside F'F for
 * the precision's rounding: an error (22003) saying which, with what to
 * change (in training; a refit or fold-in, whose system is the trained
 * model's, names a retraining).  lambda and w are printed apart, since
 * their ratio can underflow; double precision is suggested only where it
 * does not.
 */
static void
implicit_side(MfAls *als, const MfCsr *rows, const void *from, int32 n_from, void *out,
			  bool training)
{
	const char *precision = als->factors.single ? "single" : "double";

	if (als->factors.single ? implicit_side_single(als, rows, from, n_from, out)
		: implicit_side_double(als, rows, from, n_from, out))
		return;
	if (side_gram_overflows(als, from, n_from))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("the implicit factors could not be solved: the factors overflowed %s precision",
						precision),
				 errdetail("Their system sums the squares of the other side's factors, which pass the largest %s-precision number.",
						   precision),
				 training
				 ? errhint("Scale the ratings into a moderate range (for example 0 to 10), raise lambda, or lower implicit_weight.")
				 : errhint("Retrain the model with ratings on a moderate scale (for example 0 to 10) or a larger lambda.")));
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("the implicit factors could not be solved"),
			 errdetail("Their system, the Gram matrix of the other side's factors plus lambda / implicit_weight = %g / %g on its diagonal, is positive definite in exact arithmetic; it failed in %s precision because lambda is too small beside implicit_weight to keep it well conditioned.",
					   als->lambda, als->implicit_weight, precision),
			 training
			 ? errhint("Raise lambda (%g here; try %g) or lower implicit_weight (%g here)%s.",
					   als->lambda, als->lambda < 0.01 ? 0.01 : 10 * als->lambda,
					   als->implicit_weight,
					   als->factors.single && als->lambda / als->implicit_weight > 0
					   ? ", or pass double_precision := true" : "")
			 : errhint("Retrain the model with a larger lambda or a smaller implicit_weight.")));
}

/*
 * One half-step over rows against the fixed factors other (and, with
 * implicit information, the fixed side's implicit factors
 * implicit_other, whose k x k Gram matrix goes to implicit_gram_kept if
 * not NULL, and each row's J product to implicit_dots if not NULL),
 * written to out; each row's norm (its share of J's penalty) to norm, its
 * data term of J to sse if not NULL, and the data term of its factors
 * before the half-step to previous_sse if not NULL.  Returns -1, or the
 * index of the first row whose system is singular, whatever
 * mf_ext.threads is (mf_parallel_for).
 */
static int32
solve_side(MfAls *als, const MfCsr *rows, const void *other, int32 n_other,
		   const double *other_bias, const void *implicit_other, void *out, double *out_bias,
		   double *norm, double *sse, double *previous_sse, double *implicit_dots,
		   void *implicit_gram_kept)
{
	HalfStep	step;
	int64		n_ratings = rows->row_start[rows->n_rows];
	int64		per_row = Max(1, n_ratings / Max(rows->n_rows, 1));
	char	   *woodbury = NULL;
	int32		failed;

	step.als = als;
	step.rows = rows;
	step.other = other;
	step.other_bias = other_bias;
	step.other_gram = NULL;
	if (als->factors.implicit)
	{
		fixed_side_gram(als, other, n_other);
		step.other_gram = als->other_gram;
	}
	step.woodbury_left = step.woodbury_right = NULL;
	if (woodbury_half_step(als->woodbury_degree, rows, n_other))
	{
		Size		side_bytes = mul_size(mul_size(n_other, als->factors.k), als->real_size);
		void	   *left;
		void	   *right;

		woodbury = mf_alloc_aligned(CurrentMemoryContext, mul_size(side_bytes, 2), 1);
		left = woodbury;
		right = woodbury + side_bytes;
		if (als->factors.single
			? woodbury_transform_single(als, other, n_other, left, right)
			: woodbury_transform_double(als, other, n_other, left, right))
		{
			step.woodbury_left = left;
			step.woodbury_right = right;
		}
	}
	step.implicit_other = implicit_other;
	step.implicit_dots = implicit_dots;
	if (implicit_other)
	{
		if (als->factors.single)
			implicit_gram_single(als, implicit_other, n_other, implicit_gram_kept);
		else
			implicit_gram_double(als, implicit_other, n_other, implicit_gram_kept);
		step.other_gram = als->implicit_gram;
	}
	step.out = out;
	step.out_bias = out_bias;
	step.norm = norm;
	step.sse = sse;
	step.previous_sse = previous_sse;
	if (previous_sse)
		for (int32 r = 0; r < rows->n_rows; r++)
			previous_sse[r] = -1.0;
	for (int t = 0; t < als->threads; t++)
		als->buffers[t].woodbury_solved = 0;
	/* a non-negative row can take many sweeps: one row a chunk, for cancels */
	failed = (int32) mf_parallel_for(als->threads, rows->n_rows,
									 als->nonnegative ? 1
									 : Max(1, Min(256, MF_RATINGS_PER_CHUNK / per_row)),
									 solve_chunk, NULL, &step);
	if (woodbury)
	{
		int64		solved = 0;

		for (int t = 0; t < als->threads; t++)
			solved += als->buffers[t].woodbury_solved;
		elog(DEBUG1, "mf_ext solved " INT64_FORMAT " of %d rows by the Woodbury identity (rows of at most %d ratings, against %d rows)",
			 solved, rows->n_rows, als->woodbury_degree, n_other);
		mf_free_aligned(woodbury);
	}
	return failed;
}

/*
 * What an iteration sums of J: its data term times 2 (sse), NaN where the
 * next iteration sums it (defers_loss); its penalty term; and implicit
 * information's part of J (0 without).
 */
typedef struct IterationLoss
{
	double		sse;
	double		penalty;
	double		implicit;
} IterationLoss;

/* J from an iteration's sums. */
static double
objective_of(const IterationLoss *loss)
{
	return loss->sse / 2.0 + loss->penalty + loss->implicit;
}

/*
 * Whether iteration's data term of J is summed by the next iteration: a
 * fit made for it (can_defer_loss, from the options the fit runs with)
 * and an iteration that is not the last.
 */
static bool
defers_loss(const MfAls *als, const MfFitOptions *options, int iteration)
{
	Assert(als->user_previous_sse == NULL || can_defer_loss(als, options));
	return als->user_previous_sse != NULL && iteration + 1 < options->iterations;
}

/*
 * After a users' half-step that failed on a row: the data term of the
 * factors it started from, for the users' rows it did not finish (their
 * previous_sse still -1, their factors still the iteration before's),
 * summed here in the backend's thread, so that the iteration before is
 * reported (its J, a WARNING that J rose) before the failure that may
 * follow from it.
 */
static void
sum_unfinished_previous_loss(MfAls *als)
{
	const MfCsr *rows = &als->ratings->by_user;
	MfFactors  *f = &als->factors;
	HalfStep	step = {0};

	step.als = als;
	step.rows = rows;
	step.other = f->item_factors;
	step.other_bias = f->item_bias;
	step.out = f->user_factors;
	step.out_bias = f->user_bias;
	for (int32 r = 0; r < rows->n_rows; r++)
	{
		int64		begin = rows->row_start[r];

		if (als->user_previous_sse[r] < 0)
			als->user_previous_sse[r] =
				previous_row_loss_single(&step, &als->buffers[0], r, begin,
										 (int) (rows->row_start[r + 1] - begin));
		/* after the row: a long row stops its sum for a cancel, and leaves 0 */
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * One iteration: every user, then every item.  Sets *loss, its data term
 * NaN with defer (the next iteration's previous_sse sums it); with
 * previous_sse, sets *previous_sse to the data term times 2 of the factors
 * the iteration started from (the iteration before, which deferred it),
 * also when a row fails.  Returns -1, or the index of the first row of
 * *failed_side whose system could not be solved.
 */
static int32
iterate(MfAls *als, bool defer, double *previous_sse, IterationLoss *loss,
		MfSide *failed_side)
{
	const MfRatings *ratings = als->ratings;
	MfFactors  *f = &als->factors;
	double		squared_errors = 0.0;
	double		norms = 0.0;
	int32		failed;

	Assert(!(defer || previous_sse) || als->user_previous_sse != NULL);
	*failed_side = MF_USERS;
	if (als->remote_step)
		failed = als->remote_step(als->remote_arg, MF_USERS, f, als->user_norm, NULL);
	else
	{
		if (f->item_implicit)
			implicit_side(als, &ratings->by_item, f->user_factors, f->n_users, f->item_implicit,
						  true);
		/*
		 * progress: the users are the iteration's first half, the items its
		 * second; begun after implicit_side, whose parallel pass is over the
		 * other side's rows
		 */
		mf_progress_rows_begin(MF_USERS, ratings->n_users, 0.0, 0.5);
		failed = solve_side(als, &ratings->by_user, f->item_factors, f->n_items,
							f->item_bias, f->item_implicit, f->user_factors, f->user_bias,
							als->user_norm, NULL, previous_sse ? als->user_previous_sse : NULL,
							als->user_implicit_dots, als->implicit_grams);
		mf_progress_rows_end();
		if (failed >= 0 && previous_sse)
			sum_unfinished_previous_loss(als);
	}
	/* J in a fixed order, so that it too is the same for any thread count */
	if (previous_sse)
	{
		*previous_sse = 0.0;
		for (int32 u = 0; u < ratings->n_users; u++)
			*previous_sse += als->user_previous_sse[u];
	}
	if (failed >= 0)
		return failed;
	*failed_side = MF_ITEMS;
	if (als->remote_step)
		failed = als->remote_step(als->remote_arg, MF_ITEMS, f, als->item_norm, als->item_sse);
	else
	{
		if (f->user_implicit)
			implicit_side(als, &ratings->by_user, f->item_factors, f->n_items, f->user_implicit,
						  true);
		mf_progress_rows_begin(MF_ITEMS, ratings->n_items, 0.5, 0.5);
		failed = solve_side(als, &ratings->by_item, f->user_factors, f->n_users,
							f->user_bias, f->user_implicit, f->item_factors, f->item_bias,
							als->item_norm, defer ? NULL : als->item_sse, NULL,
							als->item_implicit_dots,
							f->user_implicit ? (char *) als->implicit_grams +
							(Size) f->k * f->k * als->real_size : NULL);
		mf_progress_rows_end();
	}
	if (failed >= 0)
		return failed;

	for (int32 u = 0; u < ratings->n_users; u++)
		norms += als->user_norm[u];
	for (int32 i = 0; i < ratings->n_items; i++)
	{
		norms += als->item_norm[i];
		if (!defer)
			squared_errors += als->item_sse[i];
	}
	loss->sse = defer ? NAN : squared_errors;
	loss->penalty = als->absolute_norms ? norms / 2.0 : als->lambda / 2.0 * norms;
	loss->implicit = f->user_implicit
		? (f->single ? implicit_loss_single(als) : implicit_loss_double(als)) / 2.0 : 0.0;
	return -1;
}

/*
 * Why J overflowed, or a row's system could not be solved: a rating's
 * residual against the center (the mean with biases, else 0) squared
 * passes the largest double; the squares of all of them sum past it; in
 * single precision, a row's targets, summed in floats, can pass the
 * largest float (the farthest rating times the longest row's count); in
 * single precision, the factors a first half-step fits from the seeded
 * item factors (of norm about 1) are about as large as the ratings, and
 * the other side's Gram matrices sum their squares (the farthest rating
 * squared times the longest row's count within MF_GRAM_MARGIN of the
 * largest float: a row of few ratings whose items' seeded factors are
 * short fits longer ones; ratings of 1e18 in rows of 100 failed at every
 * usual lambda, 3.4 times below it; attack helper 249); or none
 * of these, where lambda may be too small.  Only the last is helped by a
 * larger lambda, which pulls the predictions towards the center (attack
 * helpers 225, 235 and 245).
 */
#define MF_GRAM_MARGIN	1e4

typedef enum MfOverflow
{
	MF_OVERFLOW_RESIDUAL,
	MF_OVERFLOW_SQUARES,
	MF_OVERFLOW_ROW_SUM,
	MF_OVERFLOW_GRAM,
	MF_OVERFLOW_SOLVE
} MfOverflow;

static MfOverflow
overflow_cause(const MfAls *als, const MfFitOptions *options)
{
	double		longest = (double) mf_ratings_longest_row(als->ratings);

	if (!(als->farthest <= sqrt(DBL_MAX)))
		return MF_OVERFLOW_RESIDUAL;
	if (options->implicit)
		return MF_OVERFLOW_SOLVE;
	if (mf_ratings_squares_overflow(als->ratings, options->biases ? als->factors.mean : 0.0))
		return MF_OVERFLOW_SQUARES;
	if (options->single && !(als->farthest * longest <= FLT_MAX))
		return MF_OVERFLOW_ROW_SUM;
	if (options->single &&
		!(als->farthest * als->farthest * longest * MF_GRAM_MARGIN <= FLT_MAX))
		return MF_OVERFLOW_GRAM;
	return MF_OVERFLOW_SOLVE;
}

/*
 * Raises the error of a training that overflowed floating point in
 * iteration (from 0): what overflowed (J, or a row's system that could
 * not be solved), and why, by overflow_cause.
 */
static void
fail_overflowed(const MfAls *als, const MfFitOptions *options, int iteration,
				MfOverflow cause, const char *what)
{
	const char *center = options->biases ? "the ratings' mean" : "0";
	const char *towards = options->biases ? "the mean" : "0";
	const char *scale = "Scale the ratings into a moderate range (for example 0 to 10)";
	int64		longest = mf_ratings_longest_row(als->ratings);
	char	   *detail;
	char	   *hint;

	switch (cause)
	{
		case MF_OVERFLOW_RESIDUAL:
			detail = psprintf("%s: a rating lies %g from %s, and the square of a residual that large passes the largest double-precision number (a larger lambda only moves the predictions towards %s).",
							  what, als->farthest, center, towards);
			hint = psprintf("%s, or pass a view that does.", scale);
			break;
		case MF_OVERFLOW_SQUARES:
			detail = psprintf("%s: the squares of the ratings' distances from %s sum past the largest double-precision number (a larger lambda only moves the predictions towards %s).",
							  what, center, towards);
			hint = psprintf("%s, or pass a view that does.", scale);
			break;
		case MF_OVERFLOW_ROW_SUM:
			detail = psprintf("%s: in single precision a row's targets are summed in floats, and ratings up to %g from %s, " INT64_FORMAT " in the longest row, can sum past the largest single-precision number whatever lambda is.",
							  what, als->farthest, center, longest);
			hint = psprintf("%s, or pass double_precision := true.", scale);
			break;
		case MF_OVERFLOW_GRAM:
			detail = psprintf("%s: in single precision the factors fitted to ratings up to %g from %s are about as large as the ratings, and a row's system sums their squares over up to " INT64_FORMAT " ratings, past the largest single-precision number at any usual lambda (double precision holds the squares, but a lambda so small beside them may leave the systems too badly conditioned to solve).",
							  what, als->farthest, center, longest);
			hint = psprintf("%s, or pass a view that does.", scale);
			break;
		default:
			detail = psprintf("%s: the ratings are too large, or lambda = %g too small to keep the solve stable.",
							  what, options->lambda);
			hint = psprintf("%s%s.", scale,
							options->single ? ", raise lambda, or pass double_precision := true"
							: ", or raise lambda");
			break;
	}
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("training overflowed %s precision floating point in iteration %d",
					options->single ? "single" : "double", iteration + 1),
			 errdetail("%s", detail),
			 errhint("%s", hint)));
}

/* Raises the error for a J that overflowed in iteration (from 0), with its cause. */
static void
fail_unless_finite(const MfAls *als, const MfFitOptions *options, int iteration, double loss)
{
	if (!isfinite(loss))
		fail_overflowed(als, options, iteration, overflow_cause(als, options),
						psprintf("The objective J became %g", loss));
}

/*
 * Raises the error for row failed of side, which a fit could not solve in
 * iteration (from 0): an overflow when the ratings' scale explains it
 * whatever lambda is, else mf_report_unsolvable's.
 */
static void
fail_unsolvable(MfAls *als, const MfFitOptions *options, int iteration, int32 failed,
				MfSide side)
{
	MfSide		other = side == MF_USERS ? MF_ITEMS : MF_USERS;
	MfOverflow	cause = overflow_cause(als, options);
	const char *id = mf_ratings_id_for_message(als->ratings, side, failed);
	int64		times;
	int32		partner;

	/* without any penalty the row may be singular: mf_report_unsolvable says so */
	if (cause != MF_OVERFLOW_SOLVE && (options->lambda > 0 || options->lambda_per_rating > 0))
		fail_overflowed(als, options, iteration, cause,
						psprintf("The least-squares system of %s %s could not be solved",
								 mf_side_name(side), id));
	partner = mf_csr_most_repeated(side == MF_USERS ? &als->ratings->by_user
								   : &als->ratings->by_item, failed, &times);
	mf_report_unsolvable(MF_SOLVE_TRAINING, side, id, options, NULL,
						 partner >= 0 ? mf_ratings_id_for_message(als->ratings, other, partner) : NULL,
						 times, side == MF_USERS ? als->ratings->n_items : als->ratings->n_users);
}

/* history's arrays for n iterations, in the current context. */
static void
history_init(MfFitHistory *history, int n, bool validation)
{
	history->iterations_run = 0;
	history->kept_iteration = 0;
	history->kept_best = false;
	history->loss = mf_alloc_array(CurrentMemoryContext, n, sizeof(double));
	history->train_rmse = mf_alloc_array(CurrentMemoryContext, n, sizeof(double));
	history->seconds = mf_alloc_array(CurrentMemoryContext, n, sizeof(double));
	history->validation_rmse = validation
		? mf_alloc_array(CurrentMemoryContext, n, sizeof(double)) : NULL;
}

/*
 * The rise of J from one iteration to the next beyond which mf_fit warns:
 * MF_LOSS_RISE of J, and MF_LOSS_FLOOR of the J of all-zero factors (near
 * a perfect fit J is all rounding).  Where the systems are well
 * conditioned, rounding in the solves moves J by less than 1e-6 of its
 * value.
 */
#define MF_LOSS_RISE	1e-4
#define MF_LOSS_FLOOR	1e-7

/* Whether J fell by less than tolerance of its value in iteration. */
static bool
converged(const MfFitHistory *history, const MfFitOptions *options, int iteration)
{
	return options->tolerance > 0 && iteration > 0 &&
		history->loss[iteration - 1] - history->loss[iteration] <
		options->tolerance * history->loss[iteration - 1];
}

/* Copies the factors and biases of from into to's arrays (of the same shape). */
static void
copy_factors(MfFactors *to, const MfFactors *from, Size real_size)
{
	mf_copy_checked(to->user_factors, from->user_factors,
					mul_size(mul_size(from->n_users, from->k), real_size));
	mf_copy_checked(to->item_factors, from->item_factors,
					mul_size(mul_size(from->n_items, from->k), real_size));
	if (from->biases)
	{
		mf_copy_checked(to->user_bias, from->user_bias, mul_size(from->n_users, sizeof(double)));
		mf_copy_checked(to->item_bias, from->item_bias, mul_size(from->n_items, sizeof(double)));
	}
	if (from->user_implicit)
	{
		mf_copy_checked(to->user_implicit, from->user_implicit,
						mul_size(mul_size(from->n_users, from->k), real_size));
		mf_copy_checked(to->item_implicit, from->item_implicit,
						mul_size(mul_size(from->n_items, from->k), real_size));
	}
}

/*
 * Makes als's factors those kept in als->best, by exchanging the arrays
 * (both live in the fit's context).
 */
static void
restore_best(MfAls *als)
{
	MfFactors  *f = &als->factors;
	MfFactors	current = *f;

	f->user_factors = als->best.user_factors;
	f->item_factors = als->best.item_factors;
	f->user_bias = als->best.user_bias;
	f->item_bias = als->best.item_bias;
	f->user_implicit = als->best.user_implicit;
	f->item_implicit = als->best.item_implicit;
	als->best.user_factors = current.user_factors;
	als->best.item_factors = current.item_factors;
	als->best.user_bias = current.user_bias;
	als->best.item_bias = current.item_bias;
	als->best.user_implicit = current.user_implicit;
	als->best.item_implicit = current.item_implicit;
}

/*
 * Records J of iteration (from 0) in history from its sums, the data term
 * summed, and with report says so (NOTICE, from history's validation RMSE
 * and seconds) and warns the first time J rose (*said_rose).
 */
static void
record_loss(const MfAls *als, const MfFitOptions *options, MfFitHistory *history,
			int iteration, const IterationLoss *sums, double pairs, bool report,
			bool *said_rose)
{
	double		loss = objective_of(sums);
	double		all_seconds = 0.0;

	history->loss[iteration] = loss;
	history->train_rmse[iteration] = sqrt(sums->sse / pairs);
	if (!report)
		return;
	for (int i = 0; i <= iteration; i++)
		all_seconds += history->seconds[i];
	ereport(NOTICE,
			(errmsg("iteration %d of %d: J = %.6g, training RMSE = %.6g%s",
					iteration + 1, options->iterations, loss, history->train_rmse[iteration],
					history->validation_rmse
					? psprintf(", validation RMSE = %.6g", history->validation_rmse[iteration])
					: ""),
			 errdetail("%.3f s this iteration %s, %.3f s in all iterations so far.",
					   history->seconds[iteration],
					   als->remote_step ? "on the Citus workers"
					   : psprintf("on %d thread%s", als->threads, als->threads == 1 ? "" : "s"),
					   all_seconds)));
	if (!*said_rose && iteration > 0 &&
		loss - history->loss[iteration - 1] >
		Max(MF_LOSS_RISE * fabs(history->loss[iteration - 1]), MF_LOSS_FLOOR * als->zero_loss))
	{
		*said_rose = true;
		ereport(WARNING,
				(errmsg("J rose from %.6g to %.6g in iteration %d: the solves lost accuracy",
						history->loss[iteration - 1], loss, iteration + 1),
				 errdetail("Each step of ALS minimises J exactly, so J can rise only by rounding; this much means some rows' systems are too badly conditioned for %s precision, as a pair rated many times makes them.",
						   als->factors.single ? "single" : "double"),
				 als->factors.single
				 ? errhint("Pass double_precision := true, raise lambda, or collapse the pairs rated many times in the source (an average per pair).")
				 : errhint("Raise lambda, or collapse the pairs rated many times in the source (an average per pair).")));
	}
}

void
mf_fit(MfAls *als, const MfFitOptions *options, const MfTestSet *validation,
	   bool report, MfFitHistory *history)
{
	const MfRatings *ratings = als->ratings;
	int			n = options->iterations;
	int			patience = options->patience;
	int			best = -1;		/* iteration of the lowest validation RMSE */
	bool		said_kept = false;	/* a NOTICE named the iteration kept */
	bool		said_rose = false;	/* a WARNING said J rose */
	bool		pending = false;	/* the iteration before's data term is not yet summed */
	IterationLoss pending_sums = {0};

	/* the pairs J's data term sums over: with implicit feedback, all */
	double		pairs = options->implicit
		? (double) ratings->n_users * ratings->n_items : (double) ratings->n_ratings;

	if (patience > 0 && (validation == NULL || als->best.user_factors == NULL))
		elog(ERROR, "early stopping needs a validation set and a fit made for it");
	history_init(history, n, validation != NULL);
	mf_progress_phase("iterating");
	mf_progress_step(0, n, "iteration", NAN, NAN);
	for (int iteration = 0; iteration < n; iteration++)
	{
		instr_time	iteration_start;
		bool		defer = defers_loss(als, options, iteration);
		IterationLoss sums;
		MfSide		failed_side;
		int32		failed;

		INSTR_TIME_SET_CURRENT(iteration_start);
		failed = iterate(als, defer, pending ? &pending_sums.sse : NULL, &sums, &failed_side);
		/* the iteration before first, as if its J had been summed at its end */
		if (pending)
		{
			fail_unless_finite(als, options, iteration - 1, objective_of(&pending_sums));
			record_loss(als, options, history, iteration - 1, &pending_sums, pairs, report,
						&said_rose);
		}
		if (failed >= 0)
			fail_unsolvable(als, options, iteration, failed, failed_side);
		/* a deferred J that will overflow: said now, as it would have been */
		fail_unless_finite(als, options, iteration,
						   defer ? sums.penalty + sums.implicit : objective_of(&sums));
		if (validation)
		{
			MfErrorMeasures measures;

			mf_test_error_measures(&als->factors, validation, &measures);
			history->validation_rmse[iteration] = measures.rmse;
		}
		/* a lower validation RMSE (a NaN is never lower): keep this iteration's factors */
		if (patience > 0 &&
			(best < 0 || history->validation_rmse[iteration] < history->validation_rmse[best] ||
			 isnan(history->validation_rmse[best])))
		{
			copy_factors(&als->best, &als->factors, als->real_size);
			best = iteration;
		}
		history->seconds[iteration] = mf_seconds_since(iteration_start);
		history->iterations_run = iteration + 1;
		if (patience > 0)
			mf_progress_best(best + 1);
		pending = defer;
		if (defer)
			pending_sums = sums;
		else
			record_loss(als, options, history, iteration, &sums, pairs, report, &said_rose);
		/* J of the last iteration whose J is summed */
		mf_progress_step(iteration + 1, n, "iteration",
						 !defer ? history->loss[iteration]
						 : iteration > 0 ? history->loss[iteration - 1] : NAN,
						 validation ? history->validation_rmse[iteration] : NAN);
		if (patience > 0 && iteration - best >= patience)
		{
			said_kept = iteration + 1 < n;
			if (report && said_kept)
				ereport(NOTICE,
						(errmsg_plural("stopped after iteration %d of %d: no lower validation RMSE in patience = %d iteration; the model keeps the factors of iteration %d (validation RMSE %.6g)",
									   "stopped after iteration %d of %d: no lower validation RMSE in patience = %d iterations; the model keeps the factors of iteration %d (validation RMSE %.6g)",
									   patience, iteration + 1, n, patience, best + 1,
									   history->validation_rmse[best])));
			break;
		}
		if (converged(history, options, iteration))
		{
			if (report && iteration + 1 < n)
				ereport(NOTICE,
						(errmsg("stopped after iteration %d of %d: J fell by less than tolerance = %g of its value",
								iteration + 1, n, options->tolerance)));
			break;
		}
	}
	Assert(!pending);

	/* with patience, the fit ends with the best iteration's factors, however it stopped */
	history->kept_iteration = history->iterations_run;
	if (patience > 0)
	{
		history->kept_best = true;
		if (best + 1 < history->iterations_run)
		{
			restore_best(als);
			history->kept_iteration = best + 1;
			if (report && !said_kept)
				ereport(NOTICE,
						(errmsg("the model keeps the factors of iteration %d of %d, of the lowest validation RMSE (%.6g)",
								best + 1, history->iterations_run,
								history->validation_rmse[best])));
		}
	}
}

int32
mf_als_solve_against(const MfFactors *factors, MfSide side,
					 const MfFitOptions *options, const MfCsr *rows, Size held,
					 void *out, double *bias, void *implicit_out, MemoryContext cxt)
{
	MfAls		als = {0};
	MfFitOptions exact = *options;
	bool		users = side == MF_USERS;
	const void *other = users ? factors->item_factors : factors->user_factors;
	int32		n_other = users ? factors->n_items : factors->n_users;
	const double *other_bias = users ? factors->item_bias : factors->user_bias;
	Size		real_size = factors->single ? sizeof(float) : sizeof(double);
	Size		bytes = mul_size(mul_size(rows->n_rows, factors->k), real_size);
	int64		longest = mf_csr_longest_row(rows);
	int			d = factors->k + (factors->biases ? 1 : 0);
	MfMemory	memory = {0};
	double	   *norm;
	const void *implicit_other;
	int32		failed;

	/* a 'cg' model took a few steps a row from its previous factors: a new row has none */
	exact.conjugate_gradient = false;
	mf_memory_add(&memory, mul_size(Max(longest, 1), d + 4), mul_size(mf_thread_count(), real_size));
	add_batch_memory(&memory, &exact, d, mf_thread_count());
	mf_memory_add(&memory, woodbury_memory(&exact, rows, n_other), 1);
	mf_memory_add(&memory, rows->n_rows, real_size * d + sizeof(double));
	mf_memory_add(&memory, 1, held);
	mf_memory_check(&memory, "solving the new rows",
					psprintf("Solving %d %s of up to " INT64_FORMAT " ratings with k = %d%s.",
							 rows->n_rows, rows->n_rows == 1 ? "row" : "rows", longest,
							 factors->k,
							 held > 0 ? psprintf(", beside about %zu MB of ratings read, rows collected and their solutions",
												 held / (1024 * 1024) + 1) : ""),
					"Raise mf_ext.max_memory (a superuser setting) or lower mf_ext.threads; or refit fewer users or items at a time (users := or items := a part of them), or fold in fewer ratings.");
	norm = mf_alloc_array(cxt, rows->n_rows, sizeof(double));
	als.factors = *factors;
	init_solver(&als, &exact, longest, rows->n_rows, cxt);
	mf_zero_checked(out, bytes);
	if (bias)
		memset(bias, 0, sizeof(double) * rows->n_rows);
	implicit_other = exact.implicit_weight > 0
		? (users ? factors->item_implicit : factors->user_implicit) : NULL;
	if (exact.implicit_weight > 0 && implicit_other == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the model has implicit_weight %g but no stored implicit factors of its %ss",
						exact.implicit_weight, users ? "item" : "user"),
				 errhint("Retrain the model with mf_train.")));
	mf_progress_rows_begin(users ? MF_USERS : MF_ITEMS, rows->n_rows, 0.0, 1.0);
	failed = solve_side(&als, rows, other, n_other, other_bias, implicit_other, out, bias,
						norm, NULL, NULL, NULL, NULL);
	mf_progress_rows_end();
	/* the new rows' own implicit factors, from the other side's factors */
	if (failed < 0 && implicit_out != NULL && exact.implicit_weight > 0)
		implicit_side(&als, rows, other, n_other, implicit_out, false);
	for (int32 r = 0; failed < 0 && r < rows->n_rows; r++)
		if (!isfinite(norm[r]))
			failed = r;
	pfree(norm);
	return failed;
}

/* A row solver: one row at a time, in the backend's thread (mf_als_row_solver). */
struct MfAlsRowSolver
{
	MfAls		als;			/* factors: the fixed side's; one thread's buffers */
	MfFitOptions options;
	MfSide		side;			/* the side whose rows are solved */
	int64		longest;		/* the buffers' rows of ratings */
	MemoryContext cxt;
};

MfAlsRowSolver *
mf_als_row_solver(const MfFactors *fixed, MfSide side, const MfFitOptions *options,
				  MemoryContext cxt)
{
	MfAlsRowSolver *solver = MemoryContextAllocZero(cxt, sizeof(MfAlsRowSolver));

	solver->options = *options;
	solver->options.conjugate_gradient = false;
	solver->side = side;
	solver->cxt = cxt;
	solver->longest = 256;
	solver->als.factors = *fixed;
	init_solver(&solver->als, &solver->options, solver->longest, 1, cxt);
	return solver;
}

bool
mf_als_row_solve(MfAlsRowSolver *solver, const int32 *cols, const double *values,
				 int32 degree, bool loss, void *x, double *bias, double *norm, double *sse)
{
	MfAls	   *als = &solver->als;
	const MfFactors *f = &als->factors;
	bool		users = solver->side == MF_USERS;
	int64		row_start[2] = {0, degree};
	MfCsr		row = {1, row_start, (int32 *) cols, (double *) values, NULL};
	HalfStep	step = {0};
	int64		outcome;

	if (degree > solver->longest)
	{
		SolveBuffers old = als->buffers[0];

		/*
		 * buffers for a longer row: the old ones are left to the context,
		 * but for the batch's, which do not grow with the row
		 */
		solver->longest = Max((int64) degree, 2 * solver->longest);
		init_solver(als, &solver->options, solver->longest, 1, solver->cxt);
		if (old.batch_grams != NULL)
		{
			mf_free_aligned(old.batch_grams[0]);
			for (int s = 0; s < als->batch_lanes; s++)
				mf_free_aligned(old.batch_solutions[s]);
			mf_free_aligned(old.batch_scratch);
			pfree(old.batch_grams);
			pfree(old.batch_solutions);
		}
		if (old.dual_rows != NULL)
			mf_free_aligned(old.dual_rows);
	}
	step.als = als;
	step.rows = &row;
	step.other = users ? f->item_factors : f->user_factors;
	step.other_bias = users ? f->item_bias : f->user_bias;
	step.out = x;
	step.out_bias = bias;
	step.norm = norm;
	step.sse = loss ? sse : NULL;
	*bias = 0.0;
	*sse = 0.0;
	do
	{
		/* a row stops only for an interrupt: it is processed here, then solved again */
		CHECK_FOR_INTERRUPTS();
		outcome = f->single ? solve_rows_single(&step, &als->buffers[0], 0, 1)
			: solve_rows_double(&step, &als->buffers[0], 0, 1);
	} while (outcome != MF_TASK_DONE && outcome != 0);
	return outcome == MF_TASK_DONE && isfinite(*norm);
}
