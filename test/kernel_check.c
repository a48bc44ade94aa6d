/*
 * kernel_check.c -- the Gram kernel of each of mf_ext's own kernels
 * (src/kernel.c: MfKernel.gram) against sums in double precision, outside
 * PostgreSQL, for every instruction set this CPU runs.
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
 *     side's d numbers, is written.
 *
 *   kernel_check
 *
 * prints one line per kernel and a line per failure (at most 20), and
 * exits 1 when any element is off.  Run by test/t/020_kernel_check.pl.
 */
#include "../src/kernel.c"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernel_stubs.h"

/* The matrix's rows past d and the right-hand side's numbers past d hold this. */
#define GUARD 12345.0f

static uint64_t random_state = 7;

static double
uniform(void)
{
	uint64_t	x = (random_state += 0x9E3779B97F4A7C15ULL);

	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return (double) ((x ^ (x >> 31)) >> 11) / 9007199254740992.0;
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
 * One call of kernel->gram on rows of n ratings at k, variant's bits
 * choosing weights (1), targets (2) and the bias row (4); checked against
 * double precision.
 */
static void
check_one(const MfKernel *kernel, const float *other, int n_other, int k, int n, int variant)
{
	bool		weighted = variant & 1,
				summed = variant & 2,
				bias = variant & 4;
	int			d = k + (bias ? 1 : 0);
	int			ld = d + 5;
	int32	   *cols = malloc(sizeof(int32) * n);
	float	   *weights = malloc(sizeof(float) * n);
	float	   *targets = malloc(sizeof(float) * n);
	float	   *a = malloc(sizeof(float) * (size_t) ld * d);
	float	   *rhs = malloc(sizeof(float) * (d + 8));
	double	   *want = calloc((size_t) d * d, sizeof(double));
	double	   *size = calloc((size_t) d * d, sizeof(double));
	double	   *want_rhs = calloc(d, sizeof(double));
	double	   *size_rhs = calloc(d, sizeof(double));

	for (int e = 0; e < n; e++)
	{
		cols[e] = (int32) (uniform() * n_other);
		weights[e] = (float) (0.5 + 4 * uniform());
		targets[e] = (float) (1 + 4 * uniform());
	}
	for (int j = 0; j < d; j++)
		for (int i = 0; i < ld; i++)
			a[(size_t) j * ld + i] = i < d ? (float) (uniform() - 0.5) : GUARD;
	for (int i = 0; i < d + 8; i++)
		rhs[i] = i < d ? (float) (uniform() - 0.5) : GUARD;
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
		const float *o = other + (size_t) cols[e] * k;
		double		w = weighted ? weights[e] : 1.0;

		for (int j = 0; j < d; j++)
		{
			double		oj = j < k ? o[j] : 1.0;

			if (summed)
			{
				want_rhs[j] += targets[e] * oj;
				size_rhs[j] += fabs(targets[e] * oj);
			}
			for (int i = j; i < d; i++)
			{
				double		oi = i < k ? o[i] : 1.0;

				want[(size_t) j * d + i] += w * oi * oj;
				size[(size_t) j * d + i] += fabs(w * oi * oj);
			}
		}
	}

	kernel->gram(other, k, cols, n, weighted ? weights : NULL, summed ? targets : NULL, bias,
				 a, ld, rhs);

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
			if (a[(size_t) j * ld + i] != GUARD)
				fail(kernel, k, n, variant, "written past the system", i, j,
					 a[(size_t) j * ld + i], GUARD, 0);
		if (summed && !(fabs(rhs[j] - want_rhs[j]) <= 1e-5 * size_rhs[j]))
			fail(kernel, k, n, variant, "right-hand side", j, 0, rhs[j], want_rhs[j],
				 1e-5 * size_rhs[j]);
	}
	for (int i = d; i < d + 8; i++)
		if (rhs[i] != GUARD)
			fail(kernel, k, n, variant, "written past the right-hand side", i, 0, rhs[i], GUARD, 0);

	free(cols);
	free(weights);
	free(targets);
	free(a);
	free(rhs);
	free(want);
	free(size);
	free(want_rhs);
	free(size_rhs);
}

int
main(void)
{
	static const int ks[] = {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 20, 24, 31, 32, 33, 40, 47, 48,
	49, 63, 64, 65, 80, 100, 127, 128, 129, 200, 255, 256, 257, 300};
	static const int ns[] = {1, 2, 3, 7, 16, 17, 33, 130, 257, 600};
	const MfKernel *kernels[3];
	int			n_kernels = 0;
	int			n_other = 300;
	float	   *other;

#ifdef MF_KERNEL_X86
	if (cpu_runs(MF_KERNEL_AVX512))
		kernels[n_kernels++] = &avx512_kernel;
	if (cpu_runs(MF_KERNEL_AVX2))
		kernels[n_kernels++] = &avx2_kernel;
#endif
	kernels[n_kernels++] = &portable_kernel;

	other = malloc(sizeof(float) * (size_t) n_other * 300);
	for (int t = 0; t < n_kernels; t++)
	{
		int			before = failures;
		int			calls = 0;

		for (int ki = 0; ki < (int) lengthof(ks); ki++)
		{
			int			k = ks[ki];

			/* factors of either sign, some rows of larger ones */
			for (int i = 0; i < n_other * k; i++)
				other[i] = (float) ((uniform() - 0.4) * (i / k % 7 == 0 ? 8 : 1));
			for (int ni = 0; ni < (int) lengthof(ns); ni++)
				for (int variant = 0; variant < 8; variant++)
				{
					check_one(kernels[t], other, n_other, k, ns[ni], variant);
					calls++;
				}
		}
		printf("%s: %d calls, %s\n", kernels[t]->name, calls,
			   failures == before ? "every element within rounding" : "FAILED");
	}
	free(other);
	return failures == 0 ? 0 : 1;
}
