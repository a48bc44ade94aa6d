/*-------------------------------------------------------------------------
 *
 * als_kernel.h
 *	  The per-row ALS solve, written once for both precisions: gather a
 *	  row's ratings, solve its system, and measure its share of J.  als.c
 *	  includes this file twice, with
 *
 *		REAL			float or double
 *		KERNEL(name)	name##_single or name##_double
 *		SYRK, GEMV, POTRF, POTRS, POCON	the MfBlas members of that precision
 *		REAL_EPSILON
 *		OWN_KERNELS		defined for single precision: kernel.h's kernels
 *						solve the rows where als->kernel is set
 *
 *	  Row r has ratings val[e] against the other side's rows
 *	  o_e = other[col[e]].  Explicit feedback, without biases, solves for
 *	  the row's k factors x
 *
 *		  (sum_e o_e o_e' + lambda_r I) x = sum_e val[e] o_e
 *
 *	  and with biases, for x = [factors, own bias] (d = k + 1 unknowns),
 *	  the same system with o_e extended by a 1 and the right-hand side's
 *	  ratings less mean + the other side's bias.  Implicit feedback (Hu,
 *	  Koren and Volinsky 2008) counts every pair: an observed one with
 *	  preference 1 and confidence c_e = 1 + alpha val[e], every other with
 *	  preference 0 and confidence 1, which the other side's Gram matrix
 *	  G = sum_all o o' covers at once:
 *
 *		  (G + sum_e (c_e - 1) o_e o_e' + lambda_r I) x = sum_e c_e o_e
 *
 *	  lambda_r is lambda, or lambda times the row's rating count with
 *	  weighted_lambda (ALS-WR, Zhou et al. 2008).  The system is solved by
 *	  Cholesky, or by a few conjugate-gradient steps from the row's current
 *	  x (solver 'cg', Takacs, Pilaszy and Tikk 2011), or, with nonnegative,
 *	  as a least-squares problem with factors >= 0.
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
 * x . y over n numbers, accumulated in double: four sums of every fourth
 * product (four chains of additions, not one), added pairwise in a fixed
 * order.  The own kernels' dot (kernel.h) gives the same number in vector
 * registers; this loop is the portable kernel's and OpenBLAS's path's.
 */
static double
KERNEL(dot) (const MfAls *als, const REAL *x, const REAL *y, int n)
{
	double		sum[4] = {0.0, 0.0, 0.0, 0.0};
	int			j;

#ifdef OWN_KERNELS
	if (als->kernel && als->kernel->dot)
		return als->kernel->dot(x, y, n);
#endif

	for (j = 0; j + 4 <= n; j += 4)
	{
		sum[0] += (double) x[j] * y[j];
		sum[1] += (double) x[j + 1] * y[j + 1];
		sum[2] += (double) x[j + 2] * y[j + 2];
		sum[3] += (double) x[j + 3] * y[j + 3];
	}
	for (; j < n; j++)
		sum[j % 4] += (double) x[j] * y[j];
	return (sum[0] + sum[1]) + (sum[2] + sum[3]);
}

/*
 * out[0..k) = the sum of rows cols[0..n) of from (k reals each), each
 * times scales[e] unless scales is NULL: the own kernel's blocked sum,
 * else a sum in double (scratch: k doubles).  Plain C, for any thread.
 */
static void
KERNEL(rows_sum) (const MfAls *als, const REAL *from, const int32 *cols, int n,
				  const REAL *scales, REAL *out, double *scratch)
{
	const int	k = als->factors.k;

#ifdef OWN_KERNELS
	if (als->kernel)
	{
		memset(out, 0, sizeof(REAL) * k);
		als->kernel->row_sum(from, k, cols, n, scales, out);
		return;
	}
#endif
	memset(scratch, 0, sizeof(double) * k);
	for (int e = 0; e < n; e++)
	{
		const REAL *row = from + (Size) cols[e] * k;
		double		scale = scales ? scales[e] : 1.0;

		for (int j = 0; j < k; j++)
			scratch[j] += scale * row[j];
	}
	for (int j = 0; j < k; j++)
		out[j] = (REAL) scratch[j];
}

/*
 * With implicit information: buffers->implicit_sum = the fixed side's
 * implicit factors summed over row r's entries (from begin, degree of
 * them), and x[0..k) += w times it, their share of the right-hand side.
 * Nothing without it.
 */
static void
KERNEL(add_implicit_rhs) (const HalfStep *step, SolveBuffers *buffers, int64 begin, int degree,
						  REAL *x)
{
	const MfAls *als = step->als;
	const REAL	weight = (REAL) als->implicit_weight;
	REAL	   *sum = buffers->implicit_sum;

	if (step->implicit_other == NULL)
		return;
	KERNEL(rows_sum) (als, step->implicit_other, step->rows->col + begin, degree, NULL, sum,
					  buffers->nnls);
	for (int j = 0; j < als->factors.k; j++)
		x[j] += weight * sum[j];
}

/*
 * mf_parallel_for task: an ImplicitPass over rows [first, last): each
 * row's sum of the rows of from over its entries, into sums.
 */
static int64
KERNEL(implicit_pass_rows) (void *arg, int thread, int64 first, int64 last)
{
	const ImplicitPass *pass = arg;
	const MfAls *als = pass->als;
	const MfCsr *rows = pass->rows;

	for (int64 r = first; r < last; r++)
	{
		if (mf_parallel_stopping())
			return mf_task_stopped(r);
		KERNEL(rows_sum) (als, pass->from, rows->col + rows->row_start[r],
						  (int) (rows->row_start[r + 1] - rows->row_start[r]), NULL,
						  (REAL *) pass->sums + (Size) r * als->factors.k,
						  als->buffers[thread].nnls);
	}
	return MF_TASK_DONE;
}

/*
 * gram = F'F (k x k, upper triangle) of the n rows of F (k reals each), in
 * calls of side_chunk(k) rows with a look for interrupts between (on the
 * backend's thread).
 */
static void
KERNEL(side_gram) (const MfAls *als, const REAL *rows, int64 n, REAL *gram)
{
	const int	k = als->factors.k;
	const int64 chunk = side_chunk(k);

	if (n == 0)
		memset(gram, 0, sizeof(REAL) * k * k);
	for (int64 first = 0; first < n; first += chunk)
	{
		if (first > 0)
			CHECK_FOR_INTERRUPTS();
		als->blas->SYRK(CblasColMajor, CblasUpper, CblasNoTrans, k, (int) Min(chunk, n - first), 1,
						rows + first * k, k, first > 0 ? 1 : 0, gram, k);
	}
}

/*
 * The implicit factors of the side whose rows are rows (y of the items
 * from the users' factors, or z of the users from the items'): row t of
 * out = (F'F + lambda / w I)^-1 (the rows of from over t's entries,
 * summed), F the n_from rows of from.  The sums on every thread, the
 * k x k system on the backend's.  False when it cannot be factored.
 */
static bool
KERNEL(implicit_side) (MfAls *als, const MfCsr *rows, const REAL *from, int32 n_from,
					   REAL *out)
{
	const MfBlas *blas = als->blas;
	const int	k = als->factors.k;
	const char	upper = 'U';
	const int	n = rows->n_rows;
	REAL	   *gram = als->implicit_scratch;
	ImplicitPass pass = {als, rows, from, out};
	const int64 chunk = side_chunk(k);
	int			info;

	KERNEL(side_gram) (als, from, n_from, gram);
	for (int j = 0; j < k; j++)
		gram[j * k + j] += (REAL) (als->lambda / als->implicit_weight);
	blas->POTRF(&upper, &k, gram, &k, &info, 1);
	if (info != 0)
		return false;
	(void) mf_parallel_for(als->threads, n, implicit_chunk(rows), KERNEL(implicit_pass_rows),
						   NULL, &pass);
	for (int64 first = 0; first < n && info == 0; first += chunk)
	{
		int			columns = (int) Min(chunk, n - first);

		if (first > 0)
			CHECK_FOR_INTERRUPTS();
		blas->POTRS(&upper, &k, &columns, gram, &k, out + first * k, &k, &info, 1);
	}
	return info == 0;
}

/*
 * als->implicit_gram = w (T'T (+) 0): the n rows of implicit factors T
 * summed as outer products into the factors' block of a d x d matrix
 * (both triangles; the bias's row and column 0), which every system of
 * the half-step that reads T adds; T'T itself (upper triangle) into kept
 * unless NULL.
 */
static void
KERNEL(implicit_gram) (MfAls *als, const REAL *implicit, int32 n, REAL *kept)
{
	const int	k = als->factors.k;
	const int	d = als->unknowns;
	REAL	   *gram = kept ? kept : (REAL *) als->implicit_scratch;
	REAL	   *out = als->implicit_gram;

	KERNEL(side_gram) (als, implicit, n, gram);
	memset(out, 0, sizeof(REAL) * d * d);
	for (int j = 0; j < k; j++)
		for (int i = 0; i <= j; i++)
			out[j * d + i] = out[i * d + j] = (REAL) (als->implicit_weight * gram[j * k + i]);
}

/*
 * Implicit information's share of 2 J for the fit's factors and implicit
 * factors after an iteration: w (sum over all pairs of (e - u . y)^2 +
 * the same of v and z) + lambda (|Y|^2 + |Z|^2).  The sum over all pairs
 * of (u . y)^2 is <U'U, Y'Y> (Y'Y kept by the users' half-step), the sum
 * over rated pairs of e u . y the users' implicit_dots (summed in a fixed
 * order; a pair rated c times is c entries), the sum of e^2
 * rated_pair_squares; likewise for V and Z.
 */
static double
KERNEL(implicit_loss) (MfAls *als)
{
	const MfFactors *f = &als->factors;
	const int	k = f->k;
	double		loss = 0.0;

	for (int side = 0; side < 2; side++)
	{
		bool		users = side == 0;
		const REAL *own = users ? f->user_factors : f->item_factors;
		const REAL *implicit_own = users ? f->user_implicit : f->item_implicit;
		const double *dots = users ? als->user_implicit_dots : als->item_implicit_dots;
		int32		n_own = users ? f->n_users : f->n_items;
		const REAL *implicit_gram = (const REAL *) als->implicit_grams + (Size) side * k * k;
		REAL	   *own_gram = als->implicit_scratch;
		double		cross = 0.0;
		double		products = 0.0;
		double		squares = 0.0;

		KERNEL(side_gram) (als, own, n_own, own_gram);
		for (int j = 0; j < k; j++)
			for (int i = 0; i <= j; i++)
				cross += (i == j ? 1.0 : 2.0) * own_gram[j * k + i] * implicit_gram[j * k + i];
		for (int32 r = 0; r < n_own; r++)
			products += dots[r];
		for (int32 r = 0; r < n_own; r++)
		{
			for (Size j = (Size) r * k; j < (Size) (r + 1) * k; j++)
				squares += (double) implicit_own[j] * implicit_own[j];
			mf_interrupts_every(r, MF_INTERRUPT_ROWS);
		}
		loss += als->implicit_weight * (cross - 2 * products + als->rated_pair_squares) +
			als->lambda * squares;
	}
	return loss;
}

/*
 * out = sign P v for a row's penalty P (lambda_r on its k factors, its
 * own lambda on a bias: d is k or k + 1), sign 1 or -1: each the penalty
 * rounded to REAL times v_j, as a diagonal matrix's product (the
 * penalties converted once, not once an element, which had cost 5% of an
 * implicit CG iteration).
 */
static inline void
KERNEL(penalty_times) (const RowPenalty *penalty, int k, int d, REAL sign, const REAL *v,
					   REAL *out)
{
	const REAL	factors = sign * (REAL) penalty->factors;

	for (int j = 0; j < k; j++)
		out[j] = factors * v[j];
	if (d > k)
		out[k] = sign * (REAL) penalty->bias * v[k];
}

/*
 * out = beta out + alpha G v for the fixed side's Gram matrix G (d x d,
 * both triangles; implicit feedback's, or implicit information's):
 * matrix_apply where the own kernels solve, OpenBLAS's gemv otherwise.
 * alpha is 1 or -1, beta 0 or 1.
 */
static void
KERNEL(gram_product) (const MfAls *als, const REAL *g, int d, REAL alpha, const REAL *v,
					  REAL beta, REAL *out)
{
#ifdef OWN_KERNELS
	if (als->kernel)
	{
		if (beta == 0)
			memset(out, 0, sizeof(REAL) * d);
		als->kernel->matrix_apply(g, d, d, v, alpha, out);
		return;
	}
#endif
	als->blas->GEMV(CblasColMajor, CblasNoTrans, d, d, alpha, g, d, v, 1, beta, out, 1);
}

/*
 * out = A v for one row's system, A = the row's penalty (lambda_r I; its
 * own lambda on a bias) (+ the other side's Gram
 * matrix G, implicit feedback) + sum_e w_e g_e g_e', with the gathered
 * rows g_e and weights w_e (1 for explicit feedback).  scratch holds
 * degree reals.  The own kernels read the rows through their columns
 * cols instead, in one pass, and with dots set dots[e] = g_e . v too
 * (degree reals; NULL on the BLAS path).
 */
static void
KERNEL(apply_system) (const HalfStep *step, const REAL *gathered,
					  const int32 *cols, const REAL *weights, int degree, int d,
					  const RowPenalty *penalty, const REAL *v, REAL *out, REAL *scratch,
					  REAL *dots)
{
	const MfBlas *blas = step->als->blas;

	KERNEL(penalty_times) (penalty, step->als->factors.k, d, 1, v, out);
	if (step->other_gram)
		KERNEL(gram_product) (step->als, step->other_gram, d, 1, v, 1, out);
#ifdef OWN_KERNELS
	if (step->als->kernel)
	{
		/* one pass over the rated rows: sum_e w_e (o_e . v) o_e */
		step->als->kernel->apply(step->other, step->als->factors.k, cols, degree,
								 weights, NULL, step->other_bias != NULL, v, out, dots);
		return;
	}
#endif
	Assert(dots == NULL);
	blas->GEMV(CblasColMajor, CblasTrans, d, degree, 1, gathered, d, v, 1, 0,
			  scratch, 1);
	if (weights)
		for (int e = 0; e < degree; e++)
			scratch[e] *= weights[e];
	blas->GEMV(CblasColMajor, CblasNoTrans, d, degree, 1, gathered, d, scratch, 1,
			  1, out, 1);
}

/*
 * Conjugate gradient's vector work on d numbers: x += step p and
 * r -= step q, returning r . r (cg_step); p = r + beta p (cg_direction).
 * The own kernels' versions (kernel.h) compute the same numbers in vector
 * registers; these loops are the portable kernel's and OpenBLAS's path's.
 */
static double
KERNEL(cg_step) (const MfAls *als, REAL *x, REAL *r, const REAL *p, const REAL *q,
				 double step, int d)
{
#ifdef OWN_KERNELS
	if (als->kernel && als->kernel->cg_step)
		return als->kernel->cg_step(x, r, p, q, step, d);
#endif
	for (int j = 0; j < d; j++)
	{
		x[j] += (REAL) (step * p[j]);
		r[j] -= (REAL) (step * q[j]);
	}
	return KERNEL(dot) (als, r, r, d);
}

static void
KERNEL(cg_direction) (const MfAls *als, REAL *p, const REAL *r, REAL beta, int d)
{
#ifdef OWN_KERNELS
	if (als->kernel && als->kernel->cg_direction)
	{
		als->kernel->cg_direction(p, r, beta, d);
		return;
	}
#endif
	for (int j = 0; j < d; j++)
		p[j] = r[j] + beta * p[j];
}

/*
 * A few conjugate-gradient steps on A x = b from x's current value (the
 * row's previous factors): the solver of Takacs et al. for implicit ALS,
 * usable for explicit feedback too.  cg holds 3d reals; with b NULL, its
 * first d already hold the residual b - A x (initial_residual).  With
 * predicted (the own kernels only), predicted[e] = g_e . x on entry is
 * kept so as x moves, from each step's products g_e . p (in scratch),
 * for J (row_loss).  Returns false when a number overflowed (A p, a norm
 * or x not finite): where a Cholesky factorisation fails, CG must not
 * stop with x as it was.
 */
static bool
KERNEL(conjugate_gradient) (const HalfStep *step, const REAL *gathered,
							const int32 *cols, const REAL *weights, int degree, int d,
							const RowPenalty *penalty, const REAL *b, REAL *x, REAL *cg,
							REAL *predicted, REAL *scratch)
{
	REAL	   *residual = cg;
	REAL	   *direction = cg + d;
	REAL	   *product = cg + 2 * d;
	double		old_norm;
	double		converged;

	if (b != NULL)
	{
		KERNEL(apply_system) (step, gathered, cols, weights, degree, d, penalty, x,
							  product, scratch, NULL);
		for (int j = 0; j < d; j++)
			residual[j] = b[j] - product[j];
	}
	memcpy(direction, residual, sizeof(REAL) * d);
	old_norm = KERNEL(dot) (step->als, residual, residual, d);
	if (!isfinite(old_norm))
		return false;

	/*
	 * converged: r . r at 1e-20 of its first value, whatever the ratings'
	 * scale.  An absolute 1e-20 had taken no step at all where the ratings
	 * were about 1e-8 (r . r about 1e-24), and left the factors as
	 * initialised, without a word.
	 */
	converged = old_norm * 1e-20;
	for (int iteration = 0; iteration < MF_CG_STEPS && old_norm > converged; iteration++)
	{
		double		curvature;
		double		step_size;
		double		new_norm;

		if (mf_parallel_stopping())
			return true;		/* the caller sees the stop */
		KERNEL(apply_system) (step, gathered, cols, weights, degree, d, penalty,
							  direction, product, scratch, predicted ? scratch : NULL);
		curvature = KERNEL(dot) (step->als, direction, product, d);
		if (!isfinite(curvature))
			return false;
		if (!(curvature > 0))
			break;				/* rounding: A is positive definite */
		step_size = old_norm / curvature;
		new_norm = KERNEL(cg_step) (step->als, x, residual, direction, product, step_size, d);
		if (predicted)
			for (int e = 0; e < degree; e++)
				predicted[e] = (REAL) (predicted[e] + step_size * scratch[e]);
		if (!isfinite(new_norm))
			return false;
		KERNEL(cg_direction) (step->als, direction, residual, (REAL) (new_norm / old_norm), d);
		old_norm = new_norm;
	}
	for (int j = 0; j < d; j++)
		if (!isfinite(x[j]))
			return false;
	return true;
}

/*
 * min 1/2 x'Ax - b'x subject to x_j >= 0 for j < constrained (the
 * factors; a bias stays free), by cyclic coordinate descent from 0, in
 * double: exact minimisation along each coordinate, then projection.  A
 * is symmetric positive (semi)definite, d x d with its upper triangle in
 * a.  work holds 2d doubles.  Stops when a sweep moves no coordinate by
 * more than MF_NNLS_TOLERANCE of the largest, or after MF_NNLS_SWEEPS.
 */
static void
KERNEL(nonnegative_least_squares) (const REAL *a, int d, int constrained,
								   const REAL *b, REAL *x, double *work)
{
	double	   *solution = work;
	double	   *gradient = work + d;	/* A x - b */

	for (int j = 0; j < d; j++)
	{
		solution[j] = 0.0;
		gradient[j] = -(double) b[j];
	}
	for (int sweep = 0; sweep < MF_NNLS_SWEEPS; sweep++)
	{
		double		largest_step = 0.0;
		double		largest_value = 0.0;

		if (mf_parallel_stopping())
			return;				/* the caller sees the stop */

		for (int j = 0; j < d; j++)
		{
			double		diagonal = a[j * d + j];
			double		value;
			double		delta;

			if (!(diagonal > 0))
				continue;
			value = solution[j] - gradient[j] / diagonal;
			if (j < constrained && value < 0)
				value = 0;
			delta = value - solution[j];
			if (delta == 0)
				continue;
			solution[j] = value;
			for (int i = 0; i < d; i++)
				gradient[i] += delta * (i <= j ? a[j * d + i] : a[i * d + j]);
			largest_step = Max(largest_step, fabs(delta));
		}
		for (int j = 0; j < d; j++)
			largest_value = Max(largest_value, fabs(solution[j]));
		if (largest_step <= MF_NNLS_TOLERANCE * largest_value)
			break;
	}
	for (int j = 0; j < d; j++)
		x[j] = (REAL) solution[j];
}

/*
 * Gathers row r's entries (from begin, degree of them): the other side's
 * rows into gathered (d reals each, a 1 last for the row's own bias; not
 * for the own kernels, which have no gathered buffer), the
 * right-hand side's weights into targets and, for implicit feedback,
 * c_e - 1 = alpha * strength into weights.  Returns false when the run
 * asked it to stop (checked every row_segment(k) entries).
 */
static bool
KERNEL(gather_row) (const HalfStep *step, SolveBuffers *buffers, int64 begin,
					int degree)
{
	const MfAls *als = step->als;
	const MfCsr *rows = step->rows;
	const REAL *other = step->other;
	const double *other_bias = step->other_bias;
	const int	k = als->factors.k;
	const int	d = als->unknowns;
	const int	segment = row_segment(k);
	REAL	   *gathered = buffers->gathered;
	REAL	   *targets = buffers->targets;
	REAL	   *weights = buffers->weights;

	if (gathered == NULL && other_bias == NULL && !als->factors.implicit)
	{
		/* the own kernels' plain rows: the ratings are the targets, as they are */
		const double *ratings = rows->val ? rows->val + begin : NULL;
		const float *ratings_single = rows->val ? NULL : rows->val_single + begin;

		for (int e = 0; e < degree; e++)
			targets[e] = (REAL) (ratings ? ratings[e] : ratings_single[e]);
		return !mf_parallel_stopping();
	}
	for (int e = 0; e < degree; e++)
	{
		int32		c = rows->col[begin + e];

		if ((e & (segment - 1)) == segment - 1 && mf_parallel_stopping())
			return false;
		if (gathered)
			memcpy(gathered + (Size) e * d, other + (Size) c * k, sizeof(REAL) * k);
		if (other_bias)
		{
			if (gathered)
				gathered[(Size) e * d + k] = 1;
			targets[e] = (REAL) (mf_csr_value(rows, begin + e) - als->factors.mean - other_bias[c]);
		}
		else if (als->factors.implicit)
		{
			weights[e] = (REAL) (als->alpha * mf_csr_value(rows, begin + e));
			targets[e] = 1 + weights[e];
		}
		else
			targets[e] = (REAL) mf_csr_value(rows, begin + e);
	}
	return true;
}

/*
 * x = the gathered rows times weights (degree of each): the right-hand
 * side, in segments of MF_ROW_SEGMENT rows with a stop check between;
 * false when stopped.
 */
static bool
KERNEL(gathered_times) (const MfAls *als, const REAL *gathered, const REAL *weights,
						int degree, REAL *x)
{
	const int	d = als->unknowns;

	if (degree == 0)
		memset(x, 0, sizeof(REAL) * d);
	for (int s = 0; s < degree; s += MF_ROW_SEGMENT)
	{
		if (s > 0 && mf_parallel_stopping())
			return false;
		als->blas->GEMV(CblasColMajor, CblasNoTrans, d, Min(MF_ROW_SEGMENT, degree - s), 1,
					   gathered + (Size) s * d, d, weights + s, 1, s > 0 ? 1 : 0, x, 1);
	}
	return true;
}

#ifdef OWN_KERNELS
/*
 * residual = b - A x for row r's system (entries from begin, degree of
 * them) with the own kernel: b's and the rated rows' part of A x in one
 * pass over the rows, in segments of MF_ROW_SEGMENT rows with a stop check
 * between, and with dots the predictions o_e . x (degree reals); false
 * when stopped.
 */
static bool
KERNEL(initial_residual) (const HalfStep *step, SolveBuffers *buffers, int64 begin,
						  int degree, const RowPenalty *penalty, const REAL *x, REAL *residual,
						  REAL *dots)
{
	const MfAls *als = step->als;
	const REAL *weights = als->factors.implicit ? buffers->weights : NULL;

	KERNEL(penalty_times) (penalty, als->factors.k, als->unknowns, -1, x, residual);
	if (step->other_gram)
		KERNEL(gram_product) (als, step->other_gram, als->unknowns, -1, x, 1, residual);
	for (int s = 0; s < degree; s += MF_ROW_SEGMENT)
	{
		if (s > 0 && mf_parallel_stopping())
			return false;
		als->kernel->apply(step->other, als->factors.k, step->rows->col + begin + s,
						   Min(MF_ROW_SEGMENT, degree - s), weights ? weights + s : NULL,
						   (const REAL *) buffers->targets + s, step->other_bias != NULL,
						   x, residual, dots ? dots + s : NULL);
	}
	return true;
}
#endif

/*
 * Whether a CG row solve leaves the row's predictions with its solution
 * in buffers->targets, for J: with the own kernels, whose passes give
 * them, when J is wanted (the items' half-step).  A pass of its own for
 * them (row_loss) cost about 6% of an explicit CG iteration at the ML-10M
 * shape, and a fifth of an implicit one.
 */
static inline bool
KERNEL(cg_keeps_predictions) (const HalfStep *step)
{
#ifdef OWN_KERNELS
	return step->als->kernel != NULL && step->als->conjugate_gradient && step->sse != NULL;
#else
	return false;
#endif
}

/*
 * A few conjugate-gradient steps on row r's system from the row's current
 * factors (and bias), into x.
 */
static RowOutcome
KERNEL(solve_row_cg) (const HalfStep *step, SolveBuffers *buffers, int32 r,
					  int64 begin, int degree, const RowPenalty *penalty, REAL *x)
{
	const MfAls *als = step->als;
	const int	k = als->factors.k;
	const int	d = als->unknowns;
	REAL	   *rhs = (REAL *) buffers->cg + 3 * d;
	REAL	   *weights = als->factors.implicit ? buffers->weights : NULL;
	REAL	   *predicted = NULL;

	memcpy(x, (const REAL *) step->out + (Size) r * k, sizeof(REAL) * k);
	if (step->other_bias)
		x[k] = (REAL) step->out_bias[r];
#ifdef OWN_KERNELS
	if (als->kernel)
	{
		bool		keep = KERNEL(cg_keeps_predictions) (step);

		/*
		 * the residual in one pass, the right-hand side with it; the
		 * predictions go to scratch, then to the targets' place, free once
		 * the residual is taken
		 */
		if (!KERNEL(initial_residual) (step, buffers, begin, degree, penalty, x,
									   (REAL *) buffers->cg, keep ? buffers->scratch : NULL))
			return ROW_STOPPED;
		if (keep)
		{
			predicted = buffers->targets;
			memcpy(predicted, buffers->scratch, sizeof(REAL) * degree);
			buffers->predictions_kept = true;
		}
		KERNEL(add_implicit_rhs) (step, buffers, begin, degree, (REAL *) buffers->cg);
		rhs = NULL;
	}
	else
#endif
	if (!KERNEL(gathered_times) (als, buffers->gathered, (const REAL *) buffers->targets,
								 degree, rhs))
		return ROW_STOPPED;
	if (rhs != NULL)
		KERNEL(add_implicit_rhs) (step, buffers, begin, degree, rhs);
	if (!KERNEL(conjugate_gradient) (step, buffers->gathered, step->rows->col + begin,
									 weights, degree, d, penalty, rhs, x, buffers->cg,
									 predicted, buffers->scratch))
		return ROW_FAILED;
	return mf_parallel_stopping() ? ROW_STOPPED : ROW_SOLVED;
}

/*
 * Row r's system in gram (buffers->gram, or a batch's system; upper
 * triangle; G + the penalty + the gathered rows' Gram matrix, weighted for
 * implicit feedback; the lower triangle where the own Cholesky solves it)
 * and its right-hand side in x (the own kernels sum both in one pass over
 * the rows), in segments of row_segment(k) rows with a stop check
 * between; false when stopped.
 */
static bool
KERNEL(build_system) (const HalfStep *step, SolveBuffers *buffers, int64 begin,
					  int degree, const RowPenalty *penalty, REAL *gram, REAL *x)
{
	const MfAls *als = step->als;
	const int	d = als->unknowns;
	const int	segment = row_segment(als->factors.k);
	REAL	   *gathered = buffers->gathered;

	if (step->other_gram)
		memcpy(gram, step->other_gram, sizeof(REAL) * d * d);
	else
		memset(gram, 0, sizeof(REAL) * d * d);
	for (int j = 0; j < d; j++)
		gram[j * d + j] += (REAL) penalty_of(penalty, j, als->factors.k);
#ifdef OWN_KERNELS
	if (als->kernel)
	{
		/* the lower triangle and x, from the other side's rows */
		memset(x, 0, sizeof(REAL) * d);
		for (int s = 0; s < degree; s += segment)
		{
			int			n = Min(segment, degree - s);

			/* the entries after these, the next segment's or row's: asked ahead */
			int64		after = step->rows->row_start[step->rows->n_rows] - (begin + s + n);

			if (s > 0 && mf_parallel_stopping())
				return false;
			als->kernel->gram(step->other, als->factors.k, step->rows->col + begin + s, n,
							  als->factors.implicit ? (const REAL *) buffers->weights + s : NULL,
							  (const REAL *) buffers->targets + s,
							  step->other_bias != NULL, gram, d, x, (int) Min(after, segment));
		}
		KERNEL(add_implicit_rhs) (step, buffers, begin, degree, x);
		if (!als->own_cholesky)
		{
			/* LAPACK and the non-negative solve read the upper triangle */
			for (int j = 0; j < d; j++)
				for (int i = j + 1; i < d; i++)
					gram[i * d + j] = gram[j * d + i];
		}
		return true;
	}
#endif
	if (!KERNEL(gathered_times) (als, buffers->gathered, (const REAL *) buffers->targets,
								 degree, x))
		return false;
	KERNEL(add_implicit_rhs) (step, buffers, begin, degree, x);
	for (int s = 0; s < degree; s += segment)
	{
		int			n = Min(segment, degree - s);
		REAL	   *rows = gathered + (Size) s * d;

		if (mf_parallel_stopping())
			return false;
		if (als->factors.implicit)
		{
			/* the Gram matrix of the observed rows takes c_e - 1 */
			const REAL *weights = (const REAL *) buffers->weights + s;

			for (int e = 0; e < n; e++)
			{
				REAL		scale = (REAL) sqrt(weights[e]);

				for (int j = 0; j < d; j++)
					rows[(Size) e * d + j] *= scale;
			}
		}
		als->blas->SYRK(CblasColMajor, CblasUpper, CblasNoTrans, d, n,
					   1, rows, d, 1, gram, d);
	}
	return true;
}

/*
 * Solves the system in buffers->gram for the right-hand side in x, in
 * place: non-negative coordinate descent, or Cholesky.  Returns false when
 * the factorisation fails (or, at lambda = 0, where the system may be
 * singular, when its reciprocal condition is below d * epsilon).  With
 * lambda > 0 the system is positive definite; checking its condition as
 * well would reject systems that are merely well regularised in a few
 * directions.
 */
static bool
KERNEL(solve_system) (const MfAls *als, SolveBuffers *buffers, REAL *x)
{
	const MfBlas *blas = als->blas;
	const int	d = als->unknowns;
	const char	upper = 'U';
	const int	one = 1;
	REAL	   *gram = buffers->gram;
	int			info;

#ifdef OWN_KERNELS
	if (als->own_cholesky)
	{
		if (!als->kernel->cholesky(gram, d, d))
			return false;
		als->kernel->cholesky_solve(gram, d, d, x);
		return true;
	}
#endif
	if (als->nonnegative)
	{
		REAL	   *rhs = buffers->cg;

		memcpy(rhs, x, sizeof(REAL) * d);
		KERNEL(nonnegative_least_squares) (gram, d, als->factors.k, rhs, x,
										   buffers->nnls);
		return true;
	}
	if (als->lambda == 0)
	{
		REAL		anorm = KERNEL(symmetric_one_norm) (gram, d);
		REAL		rcond;

		blas->POTRF(&upper, &d, gram, &d, &info, 1);
		if (info != 0)
			return false;
		blas->POCON(&upper, &d, gram, &d, &anorm, &rcond,
					 buffers->lapack_work, buffers->lapack_iwork, &info, 1);
		if (info != 0 || !(rcond > d * REAL_EPSILON))
			return false;
	}
	else
	{
		blas->POTRF(&upper, &d, gram, &d, &info, 1);
		if (info != 0)
			return false;
	}
	blas->POTRS(&upper, &d, &one, gram, &d, x, &d, &info, 1);
	return info == 0;
}

/*
 * sum_e (t_e - own_bias - predicted[e])^2 over a row's entries, in entry
 * order, each target t_e its rating (less the mean, then the other side's
 * bias, with biases); own_bias is the row's own bias where predicted leaves it
 * out (else 0), so that a bias far larger than the residuals is taken
 * from the rating in double, as the other side's is, not rounded into a
 * float score.  Not inlined, so that the accumulator stays in a register:
 * inlined into the row's solve, GCC kept it on the stack, and each
 * addition waited for the store of the one before (about 40% of the
 * solve's own time with CG).
 */
static pg_noinline double
KERNEL(residual_squares) (const MfCsr *rows, int64 begin, int degree,
						  const double *other_bias, double mean, double own_bias,
						  const REAL *predicted)
{
	double		sum = 0.0;

	for (int e = 0; e < degree; e++)
	{
		double		target = mf_csr_value(rows, begin + e);
		double		residual;

		/* as the solve's targets: (rating - mean) - bias, not rating - (mean + bias) */
		if (other_bias)
			target = target - mean - other_bias[rows->col[begin + e]];
		residual = target - own_bias - (double) predicted[e];
		sum += residual * residual;
	}
	return sum;
}

/*
 * The products o_e . x of a row's entries with the row's factors x (k
 * reals; a row's own bias is left out: residual_squares takes it) into
 * predicted (degree reals): the own kernels' scores, on the BLAS path from
 * the gathered rows, or for implicit feedback the other side's rows.  NULL
 * when the run asked it to stop.
 */
static const REAL *
KERNEL(predict_row) (const HalfStep *step, SolveBuffers *buffers, int64 begin,
					 int degree, const REAL *x, REAL *predicted)
{
	const MfAls *als = step->als;

	for (int s = 0; s < degree; s += MF_ROW_SEGMENT)
	{
		int			n = Min(MF_ROW_SEGMENT, degree - s);

		if (s > 0 && mf_parallel_stopping())
			return NULL;
		if (als->factors.k == 0)
		{
			/* no factors (k = 0, biases alone): BLAS would leave predicted as it was */
			memset(predicted + s, 0, sizeof(REAL) * n);
			continue;
		}
#ifdef OWN_KERNELS
		if (als->kernel)
		{
			als->kernel->scores(step->other, als->factors.k, step->rows->col + begin + s, n,
								false, x, predicted + s);
			continue;
		}
#endif
		if (als->factors.implicit)
		{
			/* Cholesky's system scaled the gathered rows by their weights */
			const REAL *other = step->other;
			const int32 *cols = step->rows->col + begin + s;

			for (int e = 0; e < n; e++)
				predicted[s + e] = (REAL) KERNEL(dot) (als, x, other + (Size) cols[e] * als->factors.k,
														als->factors.k);
			continue;
		}
		/* the gathered rows' first k entries: the last, with biases, is the bias's 1 */
		als->blas->GEMV(CblasColMajor, CblasTrans, als->factors.k, n, 1,
					   (const REAL *) buffers->gathered + (Size) s * als->unknowns,
					   als->unknowns, x, 1, 0, predicted + s, 1);
	}
	return predicted;
}

/*
 * Row r's data term of J with the factors (and bias) it had before this
 * half-step, the previous iteration's, against the fixed side, which that
 * iteration's second half-step left as this one reads it: the data term
 * that half-step would have summed over its own rows (defers_loss), here
 * while the row's rated rows are in the cache from its solve.  Its
 * products go to the scratch buffer, free after the solve.  0 when the run
 * asked it to stop (the caller sees the stop).
 */
static double
KERNEL(previous_row_loss) (const HalfStep *step, SolveBuffers *buffers, int32 r, int64 begin,
						   int degree)
{
	const MfAls *als = step->als;
	const REAL *predicted = KERNEL(predict_row) (step, buffers, begin, degree,
												 (const REAL *) step->out + (Size) r * als->factors.k,
												 buffers->scratch);

	if (predicted == NULL)
		return 0.0;
	return KERNEL(residual_squares) (step->rows, begin, degree, step->other_bias,
									  als->factors.mean, step->other_bias ? step->out_bias[r] : 0.0,
									  predicted);
}

/*
 * Row r's data term of J with its solution x and the other side as they
 * are (after the item half-step: both sides new): from the predictions
 * the row's solve kept in buffers->targets (buffers->predictions_kept: CG
 * where cg_keeps_predictions, with the row's own bias; the Woodbury
 * identity), else from its products computed there (predict_row), the
 * targets being free again once the row is solved.  0 when the run asked
 * it to stop.
 */
static double
KERNEL(row_loss) (const HalfStep *step, SolveBuffers *buffers, int64 begin,
				  int degree, const REAL *x)
{
	const MfAls *als = step->als;
	const MfCsr *rows = step->rows;
	const int	d = als->unknowns;
	bool		kept = buffers->predictions_kept;
	const REAL *predicted = kept ? buffers->targets
		: KERNEL(predict_row) (step, buffers, begin, degree, x, buffers->targets);

	if (predicted == NULL)
		return 0.0;				/* the caller sees the stop */
	if (als->factors.implicit)
	{
		/*
		 * sum over all pairs of c (p - x . o)^2 (one entry per pair:
		 * duplicates were summed): the unobserved pairs' scores squared,
		 * x' G x less the observed ones', plus the observed pairs' terms.
		 * The difference is never negative in exact arithmetic; where
		 * rounding makes it so (a near-perfect fit), it counts as 0, so
		 * that J stays >= 0.
		 */
		REAL	   *gx = buffers->cg;
		double		unobserved = buffers->quadratic;
		double		observed = 0.0;

		if (!buffers->quadratic_kept)
		{
			KERNEL(gram_product) (als, step->other_gram, d, 1, x, 0, gx);
			unobserved = KERNEL(dot) (als, x, gx, d);
		}
		for (int e = 0; e < degree; e++)
		{
			double		score = predicted[e];
			double		confidence = 1.0 + als->alpha * mf_csr_value(rows, begin + e);

			unobserved -= score * score;
			observed += confidence * (1.0 - score) * (1.0 - score);
		}
		return Max(unobserved, 0.0) + observed;
	}
	return KERNEL(residual_squares) (rows, begin, degree, step->other_bias, als->factors.mean,
									  !kept && step->other_bias ? (double) x[als->factors.k] : 0.0,
									  predicted);
}

/*
 * What follows row r's solve, x: the data term of its factors before the
 * half-step when step->previous_sse is set and the row's is not yet
 * summed (previous_row_loss; a task stopped and started again finishes
 * some rows twice, and the second time the factors are already x), its
 * data term of J with x when step->sse is set (row_loss), then x into
 * step->out (and out_bias) and its share of the penalty into norm[r]
 * (row_penalty).  False, having written nothing to out, when the run asked
 * it to stop.
 */
static bool
KERNEL(finish_row) (const HalfStep *step, SolveBuffers *buffers, int32 r, int64 begin,
					int degree, const RowPenalty *penalty, const REAL *x)
{
	const MfAls *als = step->als;
	const int	k = als->factors.k;
	const int	d = als->unknowns;
	double		loss = 0.0;

	if (step->previous_sse != NULL && step->previous_sse[r] < 0)
	{
		double		previous = KERNEL(previous_row_loss) (step, buffers, r, begin, degree);

		if (mf_parallel_stopping())
			return false;
		step->previous_sse[r] = previous;
	}
	if (step->sse != NULL)
		loss = KERNEL(row_loss) (step, buffers, begin, degree, x);
	/* what the row's solve kept for J is the row's alone */
	buffers->predictions_kept = buffers->quadratic_kept = false;
	if (step->sse != NULL && mf_parallel_stopping())
		return false;
	memcpy((REAL *) step->out + (Size) r * k, x, sizeof(REAL) * k);
	if (step->other_bias)
		step->out_bias[r] = x[k];
	if (step->implicit_dots)
		step->implicit_dots[r] = KERNEL(dot) (als, x, buffers->implicit_sum, k);
	step->norm[r] = d == k || penalty->norm_bias == penalty->norm_factors
		? KERNEL(dot) (als, x, x, d) * penalty->norm_factors
		: KERNEL(dot) (als, x, x, k) * penalty->norm_factors +
		(double) x[k] * x[k] * penalty->norm_bias;
	if (step->sse != NULL)
		step->sse[r] = loss;
	return true;
}

/*
 * The Woodbury identity's transformed other side for a half-step against
 * the n rows of other (k reals each): with G + lambda I = U'U
 * (als->other_gram, then als->woodbury_factor), left = U'^-1 O' and
 * right = U^-1 left = (G + lambda I)^-1 O' (k x n, a row's k reals
 * together, as other), by OpenBLAS's triangular solves in calls of
 * side_chunk(k) rows, the same calls whatever the thread count, with a
 * look for interrupts between.  Runs in the backend's thread.  False when
 * G + lambda I cannot be factored (overflow): the rows are then solved the
 * primal way.
 */
static bool
KERNEL(woodbury_transform) (MfAls *als, const REAL *other, int32 n, REAL *left, REAL *right)
{
	const int	k = als->factors.k;
	const int64 chunk = side_chunk(k);
	const char	upper = 'U';
	REAL	   *factor = als->woodbury_factor;
	int			info;

	memcpy(factor, als->other_gram, sizeof(REAL) * k * k);
	for (int j = 0; j < k; j++)
		factor[j * k + j] += (REAL) als->lambda;
	als->blas->POTRF(&upper, &k, factor, &k, &info, 1);
	if (info != 0)
		return false;
	for (int64 first = 0; first < n; first += chunk)
	{
		int			count = (int) Min(chunk, n - first);

		CHECK_FOR_INTERRUPTS();
		memcpy(left + first * k, other + first * k, sizeof(REAL) * count * k);
		als->blas->TRSM(CblasColMajor, CblasLeft, CblasUpper, CblasTrans, CblasNonUnit, k, count,
						1, factor, k, left + first * k, k);
		memcpy(right + first * k, left + first * k, sizeof(REAL) * count * k);
		als->blas->TRSM(CblasColMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, k,
						count, 1, factor, k, right + first * k, k);
	}
	return true;
}

/* out = A v for A symmetric, n x n, its lower triangle in a (column-major). */
static void
KERNEL(symmetric_times) (const REAL *a, int n, const REAL *v, REAL *out)
{
	for (int e = 0; e < n; e++)
	{
		REAL		sum = 0;

		for (int f = 0; f < e; f++)
			sum += a[f * n + e] * v[f];
		for (int f = e; f < n; f++)
			sum += a[e * n + f] * v[f];
		out[e] = sum;
	}
}

/*
 * Row r's solution x (entries from begin, n of them, gathered: w_e = c_e - 1
 * in buffers->weights, c_e in buffers->targets) of implicit feedback's
 * system (M + sum_e w_e o_e o_e') x = sum_e c_e o_e, M = G + lambda I = U'U
 * the half-step's, by the Woodbury identity (Woodbury 1950; Hager,
 * "Updating the inverse of a matrix", SIAM Review 31, 1989): with the
 * other side transformed (woodbury_transform: p_e = U'^-1 o_e, z_e =
 * M^-1 o_e), K the n x n matrix of p_e . p_f (= o_e' M^-1 o_f) and
 * W = diag(w_e), (I + W^1/2 K W^1/2) q = W^1/2 K c and
 * x = sum_e (c_e - w_e^1/2 q_e) z_e: an n x n system, eigenvalues >= 1,
 * where the primal one is k x k.  K gives J's terms too: the predictions
 * o_e . x = (K t)_e (t the coefficients) replace c in buffers->targets
 * (buffers->predictions_kept), and x'Gx = t'Kt - lambda |x|^2 goes to
 * buffers->quadratic (quadratic_kept).  n <= woodbury_degree, so that K and
 * the system fit in buffers->gram.  False, the targets untouched and x
 * garbage, when an element of the system's diagonal passes
 * MF_WOODBURY_LIMIT (large confidences: the subtraction's rounding grows
 * with them), when the system is not numerically positive definite, or
 * when x is not finite: the caller solves the row the primal way.
 */
static bool
KERNEL(woodbury_solve) (const HalfStep *step, SolveBuffers *buffers, int64 begin, int n,
						REAL *x)
{
	const MfAls *als = step->als;
	const int	k = als->factors.k;
	const int32 *cols = step->rows->col + begin;
	const REAL *left = step->woodbury_left;
	const REAL *right = step->woodbury_right;
	const REAL *weights = buffers->weights;
	REAL	   *targets = buffers->targets;
	REAL	   *products = buffers->gram;	/* K, lower triangle */
	REAL	   *system = products + n * n;	/* I + W^1/2 K W^1/2 */
	REAL	   *roots = buffers->cg;	/* w_e^1/2 */
	REAL	   *coefficients = roots + n;
	double		fit = 0.0;

	/* K's column f from its diagonal down: p_e . p_f for e >= f */
	for (int f = 0; f < n; f++)
	{
		const REAL *p = left + (Size) cols[f] * k;

#ifdef OWN_KERNELS
		if (als->kernel)
		{
			als->kernel->scores(left, k, cols + f, n - f, false, p, products + f * n + f);
			continue;
		}
#endif
		for (int e = f; e < n; e++)
			products[f * n + e] = (REAL) KERNEL(dot) (als, left + (Size) cols[e] * k, p, k);
	}
	for (int e = 0; e < n; e++)
		roots[e] = sqrt(weights[e]);
	for (int f = 0; f < n; f++)
	{
		system[f * n + f] = 1 + weights[f] * products[f * n + f];
		if (!(system[f * n + f] <= MF_WOODBURY_LIMIT))
			return false;
		for (int e = f + 1; e < n; e++)
			system[f * n + e] = roots[f] * roots[e] * products[f * n + e];
	}
	/* q = (I + W^1/2 K W^1/2)^-1 W^1/2 K c, then the coefficients t = c - W^1/2 q */
	KERNEL(symmetric_times) (products, n, targets, coefficients);
	for (int e = 0; e < n; e++)
		coefficients[e] *= roots[e];
#ifdef OWN_KERNELS
	if (als->kernel && n <= als->kernel->cholesky_max)
	{
		if (!als->kernel->cholesky(system, n, n))
			return false;
		als->kernel->cholesky_solve(system, n, n, coefficients);
	}
	else
#endif
	{
		const char	lower = 'L';
		const int	one = 1;
		int			info;

		als->blas->POTRF(&lower, &n, system, &n, &info, 1);
		if (info != 0)
			return false;
		als->blas->POTRS(&lower, &n, &one, system, &n, coefficients, &n, &info, 1);
	}
	for (int e = 0; e < n; e++)
		coefficients[e] = targets[e] - roots[e] * coefficients[e];
	/* x = sum_e t_e z_e */
	KERNEL(rows_sum) (als, right, cols, n, coefficients, x, buffers->nnls);
	for (int j = 0; j < k; j++)
		if (!isfinite(x[j]))
			return false;
	/* the predictions o_e . x = (K t)_e into the targets; x'Mx = t'Kt */
	KERNEL(symmetric_times) (products, n, coefficients, targets);
	for (int e = 0; e < n; e++)
		fit += (double) coefficients[e] * targets[e];
	buffers->quadratic = fit - als->lambda * KERNEL(dot) (als, x, x, k);
	buffers->predictions_kept = buffers->quadratic_kept = true;
	buffers->woodbury_solved++;
	return true;
}

/*
 * Solves row r (entries from begin, degree of them, gathered) by the
 * Woodbury identity into x where the half-step has the transformed other
 * side and the row is short enough (woodbury_solve); false where it is
 * not, or where the identity declines it: the caller then solves the row
 * the primal way.
 */
static bool
KERNEL(woodbury_row) (const HalfStep *step, SolveBuffers *buffers, int64 begin, int degree,
					  REAL *x)
{
	buffers->predictions_kept = buffers->quadratic_kept = false;
	return step->woodbury_left != NULL && degree >= 1 &&
		degree <= step->als->woodbury_degree &&
		KERNEL(woodbury_solve) (step, buffers, begin, degree, x);
}

#ifdef OWN_KERNELS
/*
 * solve_rows with the own Cholesky, als->batch_lanes rows at a time
 * (kernel.h's cholesky_batch; a batch of a quarter of that or fewer rows
 * one by one with cholesky_one, the same solutions bit for bit): each
 * row's system is built into the batch, the batch solved, then its rows
 * finished in order.  A row of at most als->dual_degree ratings, no
 * partner rated twice (row_repeats_partner), is solved and finished on
 * its own, in the dual form (mf_kernel_dual_solve), as it comes; the
 * batch fills with the rows after it.
 */
static int64
KERNEL(solve_rows_batched) (const HalfStep *step, SolveBuffers *buffers,
							int32 first, int32 last)
{
	const MfAls *als = step->als;
	const MfCsr *rows = step->rows;
	int32		batched[MF_KERNEL_MAX_LANES];
	int			n = 0;
	int32		dual_failed = -1;

	for (int32 r = first; r < last || n > 0; r++)
	{
		unsigned	failed;

		if (r < last)
		{
			int64		begin = rows->row_start[r];
			int			degree = (int) (rows->row_start[r + 1] - begin);
			RowPenalty	penalty = row_penalty(als, degree);

			/* a batched row not yet finished is where a stopped task starts again */
			if (!KERNEL(gather_row) (step, buffers, begin, degree))
				return mf_task_stopped(n > 0 ? batched[0] : r);
			if (KERNEL(woodbury_row) (step, buffers, begin, degree, buffers->solution))
			{
				if (mf_parallel_stopping() ||
					!KERNEL(finish_row) (step, buffers, r, begin, degree, &penalty,
										 buffers->solution))
					return mf_task_stopped(n > 0 ? batched[0] : r);
				continue;
			}
			if (degree > als->dual_degree || row_repeats_partner(rows->col + begin, degree))
			{
				if (!KERNEL(build_system) (step, buffers, begin, degree, &penalty,
										   buffers->batch_grams[n], buffers->batch_solutions[n]))
					return mf_task_stopped(n > 0 ? batched[0] : r);
				batched[n++] = r;
				if (n < als->batch_lanes)
					continue;
			}
			else if (mf_kernel_dual_solve(als->kernel, step->other, als->factors.k,
										  rows->col + begin, degree, (float) penalty.factors,
										  step->other_bias != NULL,
										  penalty.bias / penalty.factors,
										  buffers->targets, als->dual_identity,
										  buffers->dual_rows, buffers->gram, buffers->solution))
			{
				if (!KERNEL(finish_row) (step, buffers, r, begin, degree, &penalty,
										 buffers->solution))
					return mf_task_stopped(n > 0 ? batched[0] : r);
				continue;
			}
			else
			{
				/* the batched rows before it are solved first: the first failure is named */
				dual_failed = r;
				if (n == 0)
					return r;
			}
		}
		if (n > als->batch_lanes / 4)
			failed = als->kernel->cholesky_batch(buffers->batch_grams, n, als->unknowns,
												 als->unknowns, buffers->batch_solutions,
												 buffers->batch_scratch);
		else
		{
			/* a short batch (a chunk's last rows, a row alone) costs a whole one */
			failed = 0;
			for (int s = 0; s < n; s++)
				if (!als->kernel->cholesky_one(buffers->batch_grams[s], als->unknowns,
											   als->unknowns, buffers->batch_solutions[s],
											   buffers->batch_scratch))
					failed |= 1u << s;
		}
		if (mf_parallel_stopping())
			return mf_task_stopped(batched[0]);
		for (int s = 0; s < n; s++)
		{
			int64		begin = rows->row_start[batched[s]];
			int			degree = (int) (rows->row_start[batched[s] + 1] - begin);
			RowPenalty	penalty = row_penalty(als, degree);

			if (failed & (1u << s))
				return batched[s];
			if (!KERNEL(finish_row) (step, buffers, batched[s], begin, degree, &penalty,
									 buffers->batch_solutions[s]))
				return mf_task_stopped(batched[s]);
		}
		n = 0;
		if (dual_failed >= 0)
			return dual_failed;
	}
	return MF_TASK_DONE;
}
#endif

/*
 * Solves rows [first, last) of one half-step into step->out (and
 * out_bias), with finish_row after each.  Returns MF_TASK_DONE, the first
 * row whose system could not be solved, or mf_task_stopped(r) when the
 * run asked it to stop while it solved row r: nothing of row r is written
 * before it is solved whole, so it can be solved again from the start.
 */
static int64
KERNEL(solve_rows) (const HalfStep *step, SolveBuffers *buffers,
					int32 first, int32 last)
{
	const MfAls *als = step->als;
	const MfCsr *rows = step->rows;

#ifdef OWN_KERNELS
	if (als->batch_lanes > 0)
		return KERNEL(solve_rows_batched) (step, buffers, first, last);
#endif
	for (int32 r = first; r < last; r++)
	{
		int64		begin = rows->row_start[r];
		int			degree = (int) (rows->row_start[r + 1] - begin);
		RowPenalty	penalty = row_penalty(als, degree);
		REAL	   *x = buffers->solution;

		if (!KERNEL(gather_row) (step, buffers, begin, degree))
			return mf_task_stopped(r);
		if (KERNEL(woodbury_row) (step, buffers, begin, degree, x))
		{
			/* a row of up to k/2 ratings: at k = 1024 many of them took seconds between looks */
			if (mf_parallel_stopping())
				return mf_task_stopped(r);
		}
		else if (als->conjugate_gradient)
		{
			RowOutcome	outcome = KERNEL(solve_row_cg) (step, buffers, r, begin, degree,
													&penalty, x);

			if (outcome == ROW_STOPPED)
				return mf_task_stopped(r);
			if (outcome == ROW_FAILED)
				return r;
		}
		else
		{
			if (!KERNEL(build_system) (step, buffers, begin, degree, &penalty,
									   buffers->gram, x))
				return mf_task_stopped(r);
			if (!KERNEL(solve_system) (als, buffers, x))
				return r;
			if (mf_parallel_stopping())
				return mf_task_stopped(r);
		}
		if (!KERNEL(finish_row) (step, buffers, r, begin, degree, &penalty, x))
			return mf_task_stopped(r);
	}
	return MF_TASK_DONE;
}

/*
 * G = V^T V of the fixed side's n rows of k factors (k x k, both
 * triangles filled): the Gram matrix implicit feedback's systems share.
 */
static void
KERNEL(fixed_side_gram) (const MfAls *als, const REAL *other, int32 n, REAL *gram)
{
	int			k = als->factors.k;

	KERNEL(side_gram) (als, other, n, gram);
	for (int j = 0; j < k; j++)
		for (int i = j + 1; i < k; i++)
			gram[j * k + i] = gram[i * k + j];
}

/* This file is included once per precision: forget the parameters. */

#undef REAL
#undef KERNEL
#undef SYRK
#undef GEMV
#undef TRSM
#undef POTRF
#undef POTRS
#undef POCON
#undef REAL_EPSILON
#undef OWN_KERNELS
