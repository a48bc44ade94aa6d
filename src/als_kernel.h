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

/* 1-norm of the symmetric d x d matrix whose upper triangle is in a. */
static REAL
KERNEL(symmetric_one_norm) (const REAL *a, int d)
{
	REAL		best = 0;

	for (int j = 0; j < d; j++)
	{
		REAL		sum = 0;

		for (int i = 0; i < d; i++)
			sum += fabs(i <= j ? a[j * d + i] : a[i * d + j]);
		best = Max(best, sum);
	}
	return best;
}

/*
 * Solves rows [first, last) of one half-step.  Row r has ratings val[e]
 * against the other side's rows o_e = other[col[e]].  Without biases it
 * solves, for its k factors x,
 *
 *	   (sum_e o_e o_e' + lambda_r I) x = sum_e val[e] o_e
 *
 * and with biases, for x = [factors, own bias] (d = k + 1 unknowns), the
 * same system with o_e extended by a 1 and the right-hand side's ratings
 * less mean + the other side's bias.  lambda_r is lambda, or lambda times
 * the row's rating count with weighted_lambda (ALS-WR).
 *
 * Per row it also records lambda_r / lambda * |x|^2 in norm[r] (the row's
 * share of the penalty) and, when step->sse is set, the row's squared
 * errors with both sides at their new values (the data term of J, after
 * the item half-step).
 *
 * Returns -1, or the first row whose system is not positive definite (or,
 * at lambda = 0, where it may be singular, has reciprocal condition below
 * d * epsilon).  With lambda > 0 the system is positive definite; checking
 * its condition as well would reject systems that are merely well
 * regularised in a few directions.
 */
static int32
KERNEL(solve_rows) (const HalfStep *step, SolveBuffers *buffers,
					int32 first, int32 last)
{
	const MfAls *als = step->als;
	const MfBlas *blas = als->blas;
	const MfCsr *rows = step->rows;
	const REAL *other = step->other;
	const double *other_bias = step->other_bias;
	const int	k = als->factors.k;
	const int	d = als->unknowns;
	const double mean = als->factors.mean;
	const char	upper = 'U';
	const int	one = 1;

	for (int32 r = first; r < last; r++)
	{
		int64		begin = rows->row_start[r];
		int			degree = (int) (rows->row_start[r + 1] - begin);
		double		weight = als->weighted_lambda ? degree : 1;
		REAL	   *gathered = buffers->gathered;
		REAL	   *gram = buffers->gram;
		REAL	   *targets = buffers->targets;
		REAL	   *x = buffers->solution;
		int			info;

		for (int e = 0; e < degree; e++)
		{
			int32		c = rows->col[begin + e];

			memcpy(gathered + (Size) e * d, other + (Size) c * k, sizeof(REAL) * k);
			if (other_bias)
			{
				gathered[(Size) e * d + k] = 1;
				targets[e] = (REAL) (rows->val[begin + e] - mean - other_bias[c]);
			}
			else
				targets[e] = (REAL) rows->val[begin + e];
		}

		memset(gram, 0, sizeof(REAL) * d * d);
		for (int j = 0; j < d; j++)
			gram[j * d + j] = (REAL) (als->lambda * weight);
		blas->SYRK(CblasColMajor, CblasUpper, CblasNoTrans, d, degree,
				  1, gathered, d, 1, gram, d);
		blas->GEMV(CblasColMajor, CblasNoTrans, d, degree, 1, gathered, d,
				  targets, 1, 0, x, 1);

		if (als->lambda == 0)
		{
			REAL		anorm = KERNEL(symmetric_one_norm) (gram, d);
			REAL		rcond;

			blas->POTRF(&upper, &d, gram, &d, &info, 1);
			if (info != 0)
				return r;
			blas->POCON(&upper, &d, gram, &d, &anorm, &rcond,
						 buffers->lapack_work, buffers->lapack_iwork, &info, 1);
			if (info != 0 || !(rcond > d * REAL_EPSILON))
				return r;
		}
		else
		{
			blas->POTRF(&upper, &d, gram, &d, &info, 1);
			if (info != 0)
				return r;
		}
		blas->POTRS(&upper, &d, &one, gram, &d, x, &d, &info, 1);
		if (info != 0)
			return r;

		memcpy((REAL *) step->out + (Size) r * k, x, sizeof(REAL) * k);
		if (other_bias)
			step->out_bias[r] = x[k];
		step->norm[r] = 0.0;
		for (int j = 0; j < d; j++)
			step->norm[r] += (double) x[j] * x[j];
		step->norm[r] *= weight;

		if (step->sse != NULL)
		{
			/*
			 * residuals with the gathered rows still at hand; the targets
			 * buffer is free again and takes the predictions
			 */
			REAL	   *predicted = targets;
			double		sum = 0.0;

			blas->GEMV(CblasColMajor, CblasTrans, d, degree, 1, gathered, d,
					  x, 1, 0, predicted, 1);
			for (int e = 0; e < degree; e++)
			{
				double		target = rows->val[begin + e];
				double		residual;

				if (other_bias)
					target -= mean + other_bias[rows->col[begin + e]];
				residual = target - (double) predicted[e];
				sum += residual * residual;
			}
			step->sse[r] = sum;
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
