/*-------------------------------------------------------------------------
 *
 * als.c
 *	  The alternating-least-squares solver and its objective.
 *
 *	  One half-step fixes one side's factors and solves, for every row
 *	  (user or item) with ratings r_e against the other side's rows v_e,
 *
 *		  (sum_e v_e v_e' + lambda I) x = sum_e r_e v_e
 *
 *	  by gathering the v_e into a contiguous k x deg block, one dsyrk for
 *	  the Gram matrix, one dgemv for the right-hand side, and a Cholesky
 *	  factorisation (dpotrf/dpotrs).  solve_rows() is plain C over plain
 *	  arrays and calls nothing from PostgreSQL; the driver around it does
 *	  the allocation and interrupt checks.
 *
 *-------------------------------------------------------------------------
 */
#include "mf_ext.h"
#include "blas.h"

#include <float.h>
#include <limits.h>
#include <math.h>

#include "miscadmin.h"
#include "utils/memutils.h"

/* Rows solved between two interrupt checks. */
#define MF_ROWS_PER_CHUNK	256

/* Scratch space for solve_rows, sized for the longest row. */
typedef struct SolveWork
{
	double	   *gathered;		/* k x max_degree, column per rating */
	double	   *gram;			/* k x k */
	double	   *rhs;			/* k */
	double	   *lapack_work;	/* 3k */
	int		   *lapack_iwork;	/* k */
} SolveWork;

/*
 * A standard normal number that depends only on (seed, id, j): splitmix64
 * hashes give two uniforms in (0, 1], Box-Muller turns them into N(0, 1).
 */
double
mf_seeded_normal(int32 seed, int64 id, int j)
{
	uint64		h = mf_mix64(mf_mix64(mf_mix64((uint64) (uint32) seed) ^ (uint64) id) ^ (uint64) j);
	uint64		h2 = mf_mix64(h);
	double		u1 = ((double) (h >> 11) + 1.0) / 9007199254740992.0;	/* 2^53 */
	double		u2 = (double) (h2 >> 11) / 9007199254740992.0;

	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Initial factors: entry j of the row for id is N(0, 1/k), seeded. */
void
mf_init_factors(double *factors, const int64 *ids, int32 n, int k, int32 seed)
{
	double		scale = 1.0 / sqrt((double) k);

	for (int32 i = 0; i < n; i++)
		for (int j = 0; j < k; j++)
			factors[(Size) i * k + j] = scale * mf_seeded_normal(seed, ids[i], j);
}

/*
 * Solves rows [first, last) of one half-step into out.  Returns -1, or the
 * first row whose system is singular (not positive definite, or so badly
 * conditioned that the solution would be noise).
 */
static int32
solve_rows(const MfBlas *blas, const MfCsr *rows, const double *other, int k,
		   double lambda, double *out, SolveWork *work, int32 first, int32 last)
{
	const char	upper = 'U';
	const int	one = 1;

	for (int32 r = first; r < last; r++)
	{
		int64		begin = rows->row_start[r];
		int			degree = (int) (rows->row_start[r + 1] - begin);
		double	   *x = out + (Size) r * k;
		double		anorm,
					rcond;
		int			info;

		for (int e = 0; e < degree; e++)
			memcpy(work->gathered + (Size) e * k,
				   other + (Size) rows->col[begin + e] * k,
				   sizeof(double) * k);

		memset(work->gram, 0, sizeof(double) * k * k);
		for (int j = 0; j < k; j++)
			work->gram[j * k + j] = lambda;
		blas->dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, k, degree,
					1.0, work->gathered, k, 1.0, work->gram, k);
		blas->dgemv(CblasColMajor, CblasNoTrans, k, degree, 1.0,
					work->gathered, k, rows->val + begin, 1, 0.0, work->rhs, 1);

		anorm = 0.0;
		for (int j = 0; j < k; j++)
		{
			double		column = 0.0;

			for (int i = 0; i < k; i++)
				column += fabs(i <= j ? work->gram[j * k + i] : work->gram[i * k + j]);
			anorm = Max(anorm, column);
		}
		blas->dpotrf(&upper, &k, work->gram, &k, &info, 1);
		if (info != 0)
			return r;
		blas->dpocon(&upper, &k, work->gram, &k, &anorm, &rcond,
				work->lapack_work, work->lapack_iwork, &info, 1);
		if (info != 0 || !(rcond > k * DBL_EPSILON))
			return r;
		blas->dpotrs(&upper, &k, &one, work->gram, &k, work->rhs, &k, &info, 1);
		if (info != 0)
			return r;
		memcpy(x, work->rhs, sizeof(double) * k);
	}
	return -1;
}

/*
 * One half-step: solves every row of rows against the fixed factors other
 * and writes them to out.  Returns -1 on success, else the index of a row
 * whose system is singular (out is then partly written).
 */
int32
mf_als_solve_side(const MfCsr *rows, const double *other, int k,
				  double lambda, double *out)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "mf_ext solve",
											  ALLOCSET_SMALL_SIZES);
	const MfBlas *blas = mf_blas();
	SolveWork	work;
	int64		max_degree = 1;
	int32		failed = -1;

	for (int32 r = 0; r < rows->n_rows; r++)
		max_degree = Max(max_degree, rows->row_start[r + 1] - rows->row_start[r]);
	if (max_degree > INT_MAX / k)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a user or item has " INT64_FORMAT " ratings, too many for k = %d",
						max_degree, k)));

	work.gathered = mf_alloc_array(cxt, mul_size(max_degree, k), sizeof(double));
	work.gram = mf_alloc_array(cxt, (Size) k * k, sizeof(double));
	work.rhs = mf_alloc_array(cxt, k, sizeof(double));
	work.lapack_work = mf_alloc_array(cxt, (Size) 3 * k, sizeof(double));
	work.lapack_iwork = mf_alloc_array(cxt, k, sizeof(int));

	for (int32 first = 0; first < rows->n_rows && failed < 0; first += MF_ROWS_PER_CHUNK)
	{
		int32		last = Min(rows->n_rows, first + MF_ROWS_PER_CHUNK);

		CHECK_FOR_INTERRUPTS();
		failed = solve_rows(blas, rows, other, k, lambda, out, &work, first, last);
	}
	MemoryContextDelete(cxt);
	return failed;
}

static double
sum_of_squares(const double *values, Size n)
{
	double		sum = 0.0;

	for (Size i = 0; i < n; i++)
		sum += values[i] * values[i];
	return sum;
}

/*
 * The objective J = sum (r - u.v)^2 / 2 + lambda/2 (sum |u|^2 + sum |v|^2)
 * and the plain sum of squared errors, over every observation.
 */
void
mf_als_loss(const MfRatings *ratings, const double *user_factors,
			const double *item_factors, int k, double lambda,
			double *objective, double *sse)
{
	const MfCsr *rows = &ratings->by_user;
	double		squared_errors = 0.0;
	double		norms;

	for (int32 u = 0; u < rows->n_rows; u++)
	{
		const double *x = user_factors + (Size) u * k;

		for (int64 e = rows->row_start[u]; e < rows->row_start[u + 1]; e++)
		{
			const double *v = item_factors + (Size) rows->col[e] * k;
			double		residual = rows->val[e];

			for (int j = 0; j < k; j++)
				residual -= x[j] * v[j];

			squared_errors += residual * residual;
		}
		if ((u & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	norms = sum_of_squares(user_factors, (Size) ratings->n_users * k) +
		sum_of_squares(item_factors, (Size) ratings->n_items * k);

	*sse = squared_errors;
	*objective = squared_errors / 2.0 + lambda / 2.0 * norms;
}
