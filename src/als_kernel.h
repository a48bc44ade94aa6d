/*-------------------------------------------------------------------------
 *
 * als_kernel.h
 *	  The per-row ALS solve, written once for both precisions.  als.c
 *	  includes this file twice, with
 *
 *		REAL			float or double
 *		KERNEL(name)	name##_single or name##_double
 *		SYRK, GEMV, POTRF, POTRS, POCON	the MfBlas members of that precision
 *		REAL_EPSILON
 *
 *	  Everything here is plain C over plain arrays: it runs in worker
 *	  threads and must not call PostgreSQL.  The parameters are #undef'd
 *	  at the end.
 *
 *-------------------------------------------------------------------------
 */

/*
 * Solves rows [first, last) of one half-step: for row r with ratings val[e]
 * against the other side's rows other[col[e]],
 *
 *	   (sum_e o_e o_e' + lambda I) x_r = sum_e val[e] o_e
 *
 * written to out.  Per row it also records |x_r|^2 in norm[r] and, when sse
 * is not NULL, sum_e (val[e] - x_r . o_e)^2 in sse[r] (the data term of J
 * with both sides at their new values, used after the item half-step).
 *
 * Returns -1, or the first row whose system is not positive definite (or,
 * at lambda = 0, where it may be singular, has reciprocal condition below
 * k * epsilon).  With lambda > 0 the system is positive definite; checking
 * its condition as well would reject systems that are merely well
 * regularised in a few directions.
 */
/* 1-norm of the symmetric k x k matrix whose upper triangle is in a. */
static REAL
KERNEL(symmetric_one_norm) (const REAL *a, int k)
{
	REAL		best = 0;

	for (int j = 0; j < k; j++)
	{
		REAL		sum = 0;

		for (int i = 0; i < k; i++)
			sum += fabs(i <= j ? a[j * k + i] : a[i * k + j]);
		best = Max(best, sum);
	}
	return best;
}

static int32
KERNEL(solve_rows) (const MfBlas *blas, const MfCsr *rows, const REAL *other,
					int k, REAL lambda, REAL *out, double *norm, double *sse,
					SolveBuffers *buffers, int32 first, int32 last)
{
	const char	upper = 'U';
	const int	one = 1;

	for (int32 r = first; r < last; r++)
	{
		int64		begin = rows->row_start[r];
		int			degree = (int) (rows->row_start[r + 1] - begin);
		REAL	   *gathered = buffers->gathered;
		REAL	   *gram = buffers->gram;
		REAL	   *ratings = buffers->ratings;
		REAL	   *x = out + (Size) r * k;
		int			info;

		for (int e = 0; e < degree; e++)
		{
			memcpy(gathered + (Size) e * k,
				   other + (Size) rows->col[begin + e] * k, sizeof(REAL) * k);
			ratings[e] = (REAL) rows->val[begin + e];
		}

		memset(gram, 0, sizeof(REAL) * k * k);
		for (int j = 0; j < k; j++)
			gram[j * k + j] = lambda;
		blas->SYRK(CblasColMajor, CblasUpper, CblasNoTrans, k, degree,
				  1, gathered, k, 1, gram, k);
		blas->GEMV(CblasColMajor, CblasNoTrans, k, degree, 1, gathered, k,
				  ratings, 1, 0, x, 1);

		if (lambda == 0)
		{
			REAL		anorm = KERNEL(symmetric_one_norm) (gram, k);
			REAL		rcond;

			blas->POTRF(&upper, &k, gram, &k, &info, 1);
			if (info != 0)
				return r;
			blas->POCON(&upper, &k, gram, &k, &anorm, &rcond,
						 buffers->lapack_work, buffers->lapack_iwork, &info, 1);
			if (info != 0 || !(rcond > k * REAL_EPSILON))
				return r;
		}
		else
		{
			blas->POTRF(&upper, &k, gram, &k, &info, 1);
			if (info != 0)
				return r;
		}
		blas->POTRS(&upper, &k, &one, gram, &k, x, &k, &info, 1);
		if (info != 0)
			return r;

		norm[r] = 0.0;
		for (int j = 0; j < k; j++)
			norm[r] += (double) x[j] * x[j];

		if (sse != NULL)
		{
			/*
			 * residuals r_e - x . o_e, with the gathered rows still at hand;
			 * the ratings buffer is free again and takes the predictions
			 */
			REAL	   *predicted = ratings;
			double		sum = 0.0;

			blas->GEMV(CblasColMajor, CblasTrans, k, degree, 1, gathered, k,
					  x, 1, 0, predicted, 1);
			for (int e = 0; e < degree; e++)
			{
				double		residual = rows->val[begin + e] - (double) predicted[e];

				sum += residual * residual;
			}
			sse[r] = sum;
		}
	}
	return -1;
}

/* This file is included once per precision: forget the parameters. */
#undef REAL
#undef KERNEL
#undef SYRK
#undef GEMV
#undef POTRF
#undef POTRS
#undef POCON
#undef REAL_EPSILON
