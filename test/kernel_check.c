/*
 * kernel_check.c -- the Gram kernel and the scores of each of mf_ext's own
 * kernels (src/kernel.c: MfKernel.gram, MfKernel.scores) against sums in
 * double precision, outside PostgreSQL, for every instruction set this CPU
 * runs.
 *
 * For k from 1 to 300 (across the vector widths, the diagonal blocks'
 * rotated sums up to 256 and the tiles past it) and rows of 1 to 600
 * ratings (one block of rows to several, and the longest a sum takes at
 * once), with and without weights, targets and the bias row, onto a
 * matrix that already holds numbers (as the penalty and the other side's
 * Gram matrix leave it) with a leading dimension past the system's:
 *
 *   - every element of the lower triangle and of the right-hand side is
 *     the double-precision sum within single-precision rounding (relative
 *     to the sum of the magnitudes added, as summing in float allows);
 *   - nothing past the system's d = k (+ 1) rows, nor past the right-hand
 *     side's d numbers, is written (they hold -0.0, which any addition, of
 *     +0.0 too, changes);
 *
 * and once more onto a matrix holding numbers on its diagonal only (an
 * explicit solve's penalty), where the vector kernels (AVX-512, AVX2) also
 * give the same bits (see SIMD(gram) in src/kernel_simd.h for why not
 * onto any matrix); the scores (MfKernel.scores) for the same k and
 * rows, with and without the bias, each within rounding and the same bits
 * as its row scored alone; and the conjugate gradient's product
 * (MfKernel.apply) for the same calls, its sums and dot products within
 * rounding, its dot products the scores' bits, and nothing written past
 * its d numbers.
 *
 *   kernel_check
 *
 * prints one line per kernel and a line per failure (at most 20), and
 * exits 1 when any element is off.  Run by test/t/020_kernel_check.pl.
 */
#include "../src/kernel.c"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernel_stubs.h"

/* The matrix's rows past d and the right-hand side's numbers past d hold -0.0. */
#define GUARD (-0.0f)

static bool
guard_kept(float x)
{
	return x == 0.0f && signbit(x);
}

static int	failures = 0;

static void
fail(const MfKernel *kernel, int k, int n, int variant, const char *what, int i, int j,
	 double got, double want, double bound)
{
	if (++failures <= 20)
		printf("FAIL %s k=%d n=%d variant=%d %s (%d, %d): %.9g, expected %.9g (bound %.3g)\n",
			   kernel->name, k, n, variant, what, i, j, got, want, bound);
}

/*
 * Rows of the next call after an even-length call's own (the kernel may ask
 * the cache for them, never sum them): more than a block of them.
 */
#define CALL_NEXT 300

/* One call's inputs and what the kernel left in the matrix and right-hand side. */
typedef struct GramCall
{
	int			k;
	int			n;
	int			variant;		/* bits: weights (1), targets (2), the bias row (4) */
	int			d;
	int			ld;
	int32	   *cols;			/* n + n_next: the next call's rows follow */
	int			n_next;
	float	   *weights;
	float	   *targets;
	float	   *a;				/* ld x d, as the caller leaves it */
	float	   *rhs;			/* d + 8 */
} GramCall;

static GramCall
call_make(int n_other, int k, int n, int variant, bool diagonal_only)
{
	GramCall	call = {.k = k, .n = n, .variant = variant};

	call.d = k + (variant & 4 ? 1 : 0);
	call.ld = call.d + 5;
	call.n_next = n % 2 ? 0 : CALL_NEXT;
	call.cols = malloc(sizeof(int32) * (n + call.n_next));
	call.weights = malloc(sizeof(float) * n);
	call.targets = malloc(sizeof(float) * n);
	call.a = malloc(sizeof(float) * (size_t) call.ld * call.d);
	call.rhs = malloc(sizeof(float) * (call.d + 8));
	for (int e = 0; e < n; e++)
	{
		call.cols[e] = (int32) (uniform() * n_other);
		call.weights[e] = (float) (0.5 + 4 * uniform());
		call.targets[e] = (float) (1 + 4 * uniform());
	}
	for (int e = n; e < n + call.n_next; e++)
		call.cols[e] = (int32) (uniform() * n_other);
	for (int j = 0; j < call.d; j++)
		for (int i = 0; i < call.ld; i++)
			call.a[(size_t) j * call.ld + i] = i >= call.d ? GUARD
				: i == j || !diagonal_only ? (float) (uniform() - 0.5) : 0.0f;
	for (int i = 0; i < call.d + 8; i++)
		call.rhs[i] = i < call.d ? (float) (uniform() - 0.5) : GUARD;
	return call;
}

static GramCall
call_copy(const GramCall *from)
{
	GramCall	call = *from;
	size_t		a_bytes = sizeof(float) * (size_t) from->ld * from->d;
	size_t		rhs_bytes = sizeof(float) * (from->d + 8);

	call.a = memcpy(malloc(a_bytes), from->a, a_bytes);
	call.rhs = memcpy(malloc(rhs_bytes), from->rhs, rhs_bytes);
	return call;
}

/* Frees what call_copy made (the matrix and right-hand side). */
static void
call_free_copy(GramCall *call)
{
	free(call->a);
	free(call->rhs);
}

static void
call_free(GramCall *call)
{
	call_free_copy(call);
	free(call->cols);
	free(call->weights);
	free(call->targets);
}

/*
 * kernel->gram on a copy of call's inputs, checked against double
 * precision; the copy is returned, for the vector kernels' comparison.
 */
static GramCall
check_one(const MfKernel *kernel, const float *other, const GramCall *inputs)
{
	GramCall	call = call_copy(inputs);
	int			k = call.k,
				n = call.n,
				d = call.d,
				ld = call.ld,
				variant = call.variant;
	bool		weighted = variant & 1,
				summed = variant & 2,
				bias = variant & 4;
	float	   *a = call.a;
	float	   *rhs = call.rhs;
	double	   *want = calloc((size_t) d * d, sizeof(double));
	double	   *size = calloc((size_t) d * d, sizeof(double));
	double	   *want_rhs = calloc(d, sizeof(double));
	double	   *size_rhs = calloc(d, sizeof(double));

	for (int j = 0; j < d; j++)
	{
		want_rhs[j] = rhs[j];
		size_rhs[j] = fabs(rhs[j]);
		for (int i = j; i < d; i++)
		{
			want[(size_t) j * d + i] = a[(size_t) j * ld + i];
			size[(size_t) j * d + i] = fabs(a[(size_t) j * ld + i]);
		}
	}
	for (int e = 0; e < n; e++)
	{
		const float *o = other + (size_t) call.cols[e] * k;
		double		w = weighted ? call.weights[e] : 1.0;

		for (int j = 0; j < d; j++)
		{
			double		oj = j < k ? o[j] : 1.0;

			if (summed)
			{
				want_rhs[j] += call.targets[e] * oj;
				size_rhs[j] += fabs(call.targets[e] * oj);
			}
			for (int i = j; i < d; i++)
			{
				double		oi = i < k ? o[i] : 1.0;

				want[(size_t) j * d + i] += w * oi * oj;
				size[(size_t) j * d + i] += fabs(w * oi * oj);
			}
		}
	}

	kernel->gram(other, k, call.cols, n, weighted ? call.weights : NULL,
				 summed ? call.targets : NULL, bias, a, ld, rhs, call.n_next);

	for (int j = 0; j < d; j++)
	{
		for (int i = j; i < d; i++)
		{
			double		bound = 1e-5 * (size[(size_t) j * d + i] + 1e-30);
			double		got = a[(size_t) j * ld + i];

			if (!(fabs(got - want[(size_t) j * d + i]) <= bound))
				fail(kernel, k, n, variant, "element", i, j, got, want[(size_t) j * d + i], bound);
		}
		for (int i = d; i < ld; i++)
			if (!guard_kept(a[(size_t) j * ld + i]))
				fail(kernel, k, n, variant, "written past the system", i, j,
					 a[(size_t) j * ld + i], GUARD, 0);
		if (summed && !(fabs(rhs[j] - want_rhs[j]) <= 1e-5 * size_rhs[j]))
			fail(kernel, k, n, variant, "right-hand side", j, 0, rhs[j], want_rhs[j],
				 1e-5 * size_rhs[j]);
	}
	for (int i = d; i < d + 8; i++)
		if (!guard_kept(rhs[i]))
			fail(kernel, k, n, variant, "written past the right-hand side", i, 0, rhs[i], GUARD, 0);

	free(want);
	free(size);
	free(want_rhs);
	free(size_rhs);
	return call;
}

/*
 * Whether two kernels' results of the same inputs are the same bits: the
 * lower triangle and the right-hand side (the upper triangle is scratch).
 */
static bool
same_bits(const GramCall *x, const GramCall *y)
{
	for (int j = 0; j < x->d; j++)
		if (memcmp(x->a + (size_t) j * x->ld + j, y->a + (size_t) j * y->ld + j,
				   sizeof(float) * (x->d - j)) != 0)
			return false;
	return memcmp(x->rhs, y->rhs, sizeof(float) * x->d) == 0;
}

/*
 * kernel->scores of n rows (with the bias's 1 when bias) against products
 * in double precision, and each row's score against the call of that row
 * alone: the same bits (a row's score never depends on the other rows of
 * its call, so that J and a fold-in's predictions do not depend on how
 * rows are split into calls).  False on a failure.
 */
static bool
check_scores(const MfKernel *kernel, const float *other, int k, const int32 *cols, int n,
			 bool bias)
{
	float	   *x = malloc(sizeof(float) * (k + 1));
	float	   *scores = malloc(sizeof(float) * n);
	int			before = failures;

	for (int j = 0; j <= k; j++)
		x[j] = (float) (uniform() - 0.5);
	kernel->scores(other, k, cols, n, bias, x, scores);
	for (int e = 0; e < n; e++)
	{
		const float *o = other + (size_t) cols[e] * k;
		double		want = bias ? x[k] : 0;
		double		magnitude = bias ? fabs(x[k]) : 0;
		float		alone;

		for (int j = 0; j < k; j++)
		{
			want += (double) o[j] * x[j];
			magnitude += fabs((double) o[j] * x[j]);
		}
		if (fabs(scores[e] - want) > 4 * (k + 2) * FLT_EPSILON * magnitude)
			fail(kernel, k, n, bias, "score", e, 0, scores[e], want,
				 4 * (k + 2) * FLT_EPSILON * magnitude);
		kernel->scores(other, k, cols + e, 1, bias, x, &alone);
		if (memcmp(&alone, &scores[e], sizeof(float)) != 0)
			fail(kernel, k, n, bias, "score (not the bits of the row alone)", e, 0, scores[e],
				 alone, 0);
	}
	free(x);
	free(scores);
	return failures == before;
}

/*
 * kernel->apply (the conjugate gradient's product, MfKernel.apply) for
 * inputs' rows, weights, targets and bias row as its variant says, onto
 * the right-hand side's numbers: every element of out and every dot
 * product within single-precision rounding of double precision, each dot
 * product the same bits as the row's score (MfKernel.scores: the same
 * lanes summed in the same pairs, which VSUMALL promises; a reordered sum
 * passes the rounding bounds but changes models' bits, attack helper
 * 231), and nothing past out's d numbers written.  False on a failure.
 */
static bool
check_apply(const MfKernel *kernel, const float *other, const GramCall *inputs)
{
	int			k = inputs->k;
	int			n = inputs->n;
	int			d = inputs->d;
	bool		weighted = inputs->variant & 1;
	bool		targeted = inputs->variant & 2;
	bool		bias = inputs->variant & 4;
	float	   *v = malloc(sizeof(float) * d);
	float	   *out = malloc(sizeof(float) * (d + 8));
	float	   *dots = malloc(sizeof(float) * n);
	float	   *scores = malloc(sizeof(float) * n);
	double	   *want = malloc(sizeof(double) * d);
	double	   *bound = malloc(sizeof(double) * d);
	int			before = failures;

	for (int j = 0; j < d; j++)
		v[j] = (float) (uniform() - 0.5);
	memcpy(out, inputs->rhs, sizeof(float) * (d + 8));
	kernel->apply(other, k, inputs->cols, n, weighted ? inputs->weights : NULL,
				  targeted ? inputs->targets : NULL, bias, v, out, dots);
	kernel->scores(other, k, inputs->cols, n, bias, v, scores);
	for (int j = 0; j < d; j++)
	{
		want[j] = inputs->rhs[j];
		bound[j] = 4 * (n + 2) * FLT_EPSILON * fabs(inputs->rhs[j]);
	}
	for (int e = 0; e < n; e++)
	{
		const float *o = other + (size_t) inputs->cols[e] * k;
		double		dot = bias ? v[k] : 0;
		double		magnitude = bias ? fabs(v[k]) : 0;
		double		w = weighted ? inputs->weights[e] : 1;
		double		scale,
					scale_error;

		for (int j = 0; j < k; j++)
		{
			dot += (double) o[j] * v[j];
			magnitude += fabs((double) o[j] * v[j]);
		}
		if (fabs(dots[e] - dot) > 4 * (k + 2) * FLT_EPSILON * magnitude)
			fail(kernel, k, n, inputs->variant, "apply's dot", e, 0, dots[e], dot,
				 4 * (k + 2) * FLT_EPSILON * magnitude);
		/* the same additions as the scores' horizontal sum (VSUMALL's promise) */
		if (memcmp(&dots[e], &scores[e], sizeof(float)) != 0)
			fail(kernel, k, n, inputs->variant, "apply's dot (not the bits of the score)", e, 0,
				 dots[e], scores[e], 0);
		scale = targeted ? inputs->targets[e] - w * dot : w * dot;
		scale_error = (4 * (k + 2) * magnitude * w + 2 * fabs(scale)) * FLT_EPSILON;
		for (int j = 0; j <= k; j++)
		{
			double		x = j < k ? o[j] : 1;

			if (j == k && !bias)
				break;
			want[j] += scale * x;
			bound[j] += 4 * (n + 2) * FLT_EPSILON * fabs(scale * x) + scale_error * fabs(x);
		}
	}
	for (int j = 0; j < d; j++)
		if (fabs(out[j] - want[j]) > bound[j])
			fail(kernel, k, n, inputs->variant, "apply", j, 0, out[j], want[j], bound[j]);
	for (int i = d; i < d + 8; i++)
		if (!guard_kept(out[i]))
			fail(kernel, k, n, inputs->variant, "apply wrote past out", i, 0, out[i], -0.0, 0);
	free(v);
	free(out);
	free(dots);
	free(scores);
	free(want);
	free(bound);
	return failures == before;
}

int
main(void)
{
	static const int ks[] = {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 20, 24, 31, 32, 33, 40, 47, 48,
	49, 63, 64, 65, 80, 100, 127, 128, 129, 200, 255, 256, 257, 300};
	static const int ns[] = {1, 2, 3, 7, 16, 17, 33, 130, 257, 600};
	const MfKernel *kernels[3];
	int			calls[3] = {0};
	int			failed[3] = {0};
	int			score_calls[3] = {0};
	int			scores_failed[3] = {0};
	int			apply_calls[3] = {0};
	int			apply_failed[3] = {0};
	int			n_kernels = 0;
	int			n_vector = 0;	/* the first n_vector kernels are vector ones */
	int			calls_compared = 0;
	int			calls_differing = 0;	/* of those, not the same bits */
	int			n_other = 300;
	float	   *other;

	random_state = 7;
#ifdef MF_KERNEL_X86
	if (cpu_runs(MF_KERNEL_AVX512))
		kernels[n_kernels++] = &avx512_kernel;
	if (cpu_runs(MF_KERNEL_AVX2))
		kernels[n_kernels++] = &avx2_kernel;
#endif
	n_vector = n_kernels;
	kernels[n_kernels++] = &portable_kernel;

	other = malloc(sizeof(float) * (size_t) n_other * 300);
	for (int ki = 0; ki < (int) lengthof(ks); ki++)
	{
		int			k = ks[ki];

		/* factors of either sign, some rows of larger ones */
		for (int i = 0; i < n_other * k; i++)
			other[i] = (float) ((uniform() - 0.4) * (i / k % 7 == 0 ? 8 : 1));
		for (int ni = 0; ni < (int) lengthof(ns); ni++)
			for (int variant = 0; variant < 8; variant++)
			{
				GramCall	inputs = call_make(n_other, k, ns[ni], variant, false);
				GramCall	first_vector;

				for (int t = 0; t < n_kernels; t++)
				{
					int			before = failures;
					GramCall	result = check_one(kernels[t], other, &inputs);

					calls[t]++;
					failed[t] += failures > before;
					call_free_copy(&result);
					apply_calls[t]++;
					apply_failed[t] += !check_apply(kernels[t], other, &inputs);
				}
				call_free(&inputs);

				/* the vector kernels onto the penalty alone: the same bits */
				inputs = call_make(n_other, k, ns[ni], variant, true);
				for (int t = 0; t < n_vector; t++)
				{
					int			before = failures;
					GramCall	result = check_one(kernels[t], other, &inputs);

					failed[t] += failures > before;
					if (t == 0)
					{
						first_vector = result;
						continue;
					}
					calls_compared++;
					if (!same_bits(&first_vector, &result))
					{
						calls_differing++;
						if (++failures <= 20)
							printf("FAIL %s k=%d n=%d variant=%d: not the same bits as %s\n",
								   kernels[t]->name, k, ns[ni], variant, kernels[0]->name);
					}
					call_free_copy(&result);
				}
				if (n_vector > 0)
					call_free_copy(&first_vector);
				call_free(&inputs);
			}
		for (int ni = 0; ni < (int) lengthof(ns); ni++)
		{
			GramCall	inputs = call_make(n_other, k, ns[ni], 0, false);

			for (int t = 0; t < n_kernels; t++)
				for (int bias = 0; bias < 2; bias++)
				{
					score_calls[t]++;
					scores_failed[t] += !check_scores(kernels[t], other, k, inputs.cols,
													  ns[ni], bias);
				}
			call_free(&inputs);
		}
	}
	for (int t = 0; t < n_kernels; t++)
		printf("%s: %d calls, %s\n", kernels[t]->name, calls[t],
			   failed[t] == 0 ? "every element within rounding" : "FAILED");
	for (int t = 0; t < n_kernels; t++)
		printf("%s scores: %d calls, %s\n", kernels[t]->name, score_calls[t],
			   scores_failed[t] == 0 ? "each within rounding and the bits of its row alone"
			   : "FAILED");
	for (int t = 0; t < n_kernels; t++)
		printf("%s apply: %d calls, %s\n", kernels[t]->name, apply_calls[t],
			   apply_failed[t] == 0 ? "every element and dot product within rounding, the dots the scores' bits"
			   : "FAILED");
	if (n_vector > 1)
		printf("%s and %s: %d calls, %s\n", kernels[0]->name, kernels[1]->name, calls_compared,
			   calls_differing == 0 ? "the same bits" : "FAILED (not the same bits)");
	free(other);
	return failures == 0 ? 0 : 1;
}
