/*
 * kernels.c -- mf_ext's own ALS kernels (src/kernel.c) against OpenBLAS and
 * against the CPU's measured FMA peak, on one thread, outside PostgreSQL.
 *
 * For each k: the Gram matrix and right-hand side of rows of `degree`
 * ratings drawn at random from n_other rows of k factors, by
 *   - the probe's way: gather the rows, ssyrk + sgemv (OpenBLAS), and
 *   - each own kernel the CPU runs (gram + rhs straight through the
 *     column indices),
 * then the k x k solve: spotrf + spotrs against the own Cholesky, and for
 * rows of a few degrees up to k, the batched solve against the dual form
 * (mf_kernel_dual_solve; "row of n ratings" lines).  The FMA
 * peak is measured here too: chains of independent vector FMAs, per
 * instruction set, the best of several measurements before each k and at
 * the end (printed again there as the run's best, which targets.sh
 * reads).  GFLOP/s count a Gram matrix as degree * k * (k + 1)
 * flops (its triangle) and a Cholesky solve as k^3 / 3 + 2 k^2.
 *
 *   kernels K[,K...] DEGREE N_OTHER SECONDS
 *
 * prints a TSV: what, k, ns per row (or per solve), GFLOP/s, share of the
 * instruction set's peak.
 *
 * Built by test/bench/run.sh against the server's headers; the stubs of
 * test/kernel_stubs.h stand in for the PostgreSQL functions kernel.c's
 * setting uses (never called here).
 */
#include "../../src/kernel.c"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <cblas.h>

#include "../kernel_stubs.h"

extern void spotrf_(const char *uplo, const int *n, float *a, const int *lda,
					int *info, size_t uplo_len);
extern void spotrs_(const char *uplo, const int *n, const int *nrhs,
					const float *a, const int *lda, float *b, const int *ldb,
					int *info, size_t uplo_len);

static double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Peak FMA rate of one instruction set on this core: GFLOP/s. */
#define PEAK_CHAINS 12
#ifdef MF_KERNEL_X86
__attribute__((target("avx512f"))) static double
peak_avx512(void)
{
	__m512		acc[PEAK_CHAINS];
	__m512		x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
	long		rounds = 20000000;
	double		start = now();
	float		sink = 0;

	for (int c = 0; c < PEAK_CHAINS; c++)
		acc[c] = _mm512_set1_ps((float) c);
	for (long r = 0; r < rounds; r++)
		_Pragma("GCC unroll 12")
			for (int c = 0; c < PEAK_CHAINS; c++)
			acc[c] = _mm512_fmadd_ps(acc[c], x, y);
	for (int c = 0; c < PEAK_CHAINS; c++)
		sink += _mm512_reduce_add_ps(acc[c]);
	if (sink == 12345)
		puts("");
	return 2.0 * 16 * PEAK_CHAINS * rounds / (now() - start) / 1e9;
}

__attribute__((target("avx2,fma"))) static double
peak_avx2(void)
{
	__m256		acc[PEAK_CHAINS];
	__m256		x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
	long		rounds = 20000000;
	double		start = now();
	float		sink = 0;

	for (int c = 0; c < PEAK_CHAINS; c++)
		acc[c] = _mm256_set1_ps((float) c);
	for (long r = 0; r < rounds; r++)
		_Pragma("GCC unroll 12")
			for (int c = 0; c < PEAK_CHAINS; c++)
			acc[c] = _mm256_fmadd_ps(acc[c], x, y);
	for (int c = 0; c < PEAK_CHAINS; c++)
		sink += sum8(acc[c]);
	if (sink == 12345)
		puts("");
	return 2.0 * 8 * PEAK_CHAINS * rounds / (now() - start) / 1e9;
}

/*
 * Raises *peak512 and *peak2 to the best of reps more measurements each: a
 * shared machine's clock dips for a while at times, and a peak measured in
 * a dip made the Gram kernel look nearer the machine than it is (81% of a
 * peak of 88.5 GFLOP/s where another run measured 113.2).
 */
static void
raise_peaks(double *peak512, double *peak2, int reps)
{
	for (int r = 0; r < reps; r++)
	{
		double		measured;

		if (cpu_runs(MF_KERNEL_AVX512) && (measured = peak_avx512()) > *peak512)
			*peak512 = measured;
		if (cpu_runs(MF_KERNEL_AVX2) && (measured = peak_avx2()) > *peak2)
			*peak2 = measured;
	}
}
#endif

/* A batch's systems and right-hand sides (as[s], xs[s]) and scratch, as mf_train keeps them. */
typedef struct Batch
{
	float	   *systems;
	float	   *solutions;
	float	   *scratch;
	float	   *as[16];
	float	   *xs[16];
} Batch;

static Batch
batch_alloc(const MfKernel *kernel, int k)
{
	Batch		b;
	size_t		stride = (size_t) k * k + 16;

	b.systems = aligned_alloc(64, sizeof(float) * stride * kernel->batch_lanes);
	b.solutions = aligned_alloc(64, sizeof(float) * (size_t) k * kernel->batch_lanes);
	b.scratch = aligned_alloc(64, sizeof(float) *
							  ((kernel->cholesky_batch_scratch(k) + 15) / 16 * 16));
	for (int s = 0; s < kernel->batch_lanes; s++)
	{
		b.as[s] = b.systems + s * stride;
		b.xs[s] = b.solutions + (size_t) s * k;
	}
	return b;
}

static void
batch_free(Batch *b)
{
	free(b->systems);
	free(b->solutions);
	free(b->scratch);
}

/*
 * Prints the solve of one k x k system (spd, right-hand side targets) as
 * mf_train solves it with kernel's batches: batch_lanes at once, and one
 * alone as a lane of a batch (ns per system, against OpenBLAS's blas_ns).
 */
static void
time_batched_solve(const MfKernel *kernel, int k, const float *spd, const float *targets,
				   double seconds, double peak, double solve_flops, double blas_ns)
{
	int			lanes = kernel->batch_lanes;
	Batch		b = batch_alloc(kernel, k);
	float	  **as = b.as,
			  **xs = b.xs;
	long		done = 0;
	double		start = now();
	double		ns;

	while (now() - start < seconds)
	{
		for (int s = 0; s < lanes; s++)
		{
			memcpy(as[s], spd, sizeof(float) * k * k);
			memcpy(xs[s], targets, sizeof(float) * k);
		}
		kernel->cholesky_batch(as, lanes, k, k, xs, b.scratch);
		done += lanes;
	}
	ns = (now() - start) / done * 1e9;
	printf("solve %s, %d at once\t%d\t%.0f\t%.1f\t%.2f\t(%.2fx openblas)\n",
		   kernel->name, lanes, k, ns, solve_flops / ns,
		   solve_flops / ns / peak, ns / blas_ns);
	/* one alone as a lane of the batch solves it (a short batch's rows) */
	done = 0;
	start = now();
	while (now() - start < seconds)
	{
		memcpy(as[0], spd, sizeof(float) * k * k);
		memcpy(xs[0], targets, sizeof(float) * k);
		kernel->cholesky_one(as[0], k, k, xs[0], b.scratch);
		done++;
	}
	ns = (now() - start) / done * 1e9;
	printf("solve %s, one as a batch's lane\t%d\t%.0f\t%.1f\t%.2f\t(%.2fx openblas)\n",
		   kernel->name, k, ns, solve_flops / ns,
		   solve_flops / ns / peak, ns / blas_ns);
	batch_free(&b);
}

/*
 * Prints, for rows of a few degrees up to k, a row's solve as mf_train
 * does it with kernel's batches (the Gram matrix and right-hand side into
 * a system, then a share of a batch's Cholesky) against the dual form
 * (mf_kernel_dual_solve), which mf_train uses for rows of at most
 * als.c's dual_degree ratings: ns per row, the dual's ratio to the primal.
 */
static void
time_short_rows(const MfKernel *kernel, int k, const float *other, int n_other)
{
	const double seconds = 0.25;
	int			lanes = kernel->batch_lanes;
	int			degrees[] = {8, k / 4, k / 2, k * 5 / 8, k * 3 / 4, k};
	int			rows = 256;		/* distinct rows, cycled */
	Batch		b = batch_alloc(kernel, k);
	float	  **as = b.as,
			  **xs = b.xs;
	float	   *transposed = aligned_alloc(64, sizeof(float) * (((size_t) k * k + 15) / 16 * 16));
	float	   *gram = aligned_alloc(64, sizeof(float) * (((size_t) k * k + 15) / 16 * 16));
	float	   *y = malloc(sizeof(float) * k);
	float	   *x = malloc(sizeof(float) * k);
	int32	   *identity = malloc(sizeof(int32) * k);
	int32	   *cols = malloc(sizeof(int32) * (size_t) rows * k);

	for (int j = 0; j < k; j++)
		identity[j] = j;
	for (int i = 0; i < rows * k; i++)
		cols[i] = (int32) (uniform() * n_other);
	for (int g = 0; g < (int) lengthof(degrees); g++)
	{
		int			n = degrees[g];
		long		done = 0;
		double		start;
		double		primal_ns,
					dual_ns;

		if (n < 1 || (g > 0 && n <= degrees[g - 1]) || n > kernel->cholesky_max)
			continue;
		start = now();
		while (now() - start < seconds)
		{
			for (int s = 0; s < lanes; s++)
			{
				const int32 *row = cols + (size_t) ((done + s) % rows) * k;

				memset(as[s], 0, sizeof(float) * k * k);
				for (int j = 0; j < k; j++)
					as[s][j * k + j] = 0.5f;
				memset(xs[s], 0, sizeof(float) * k);
				for (int e = 0; e < n; e++)
					y[e] = (float) (1 + e % 5);
				kernel->gram(other, k, row, n, NULL, y, false, as[s], k, xs[s], 0);
			}
			kernel->cholesky_batch(as, lanes, k, k, xs, b.scratch);
			done += lanes;
		}
		primal_ns = (now() - start) / done * 1e9;
		done = 0;
		start = now();
		while (now() - start < seconds)
		{
			for (int e = 0; e < n; e++)
				y[e] = (float) (1 + e % 5);
			mf_kernel_dual_solve(kernel, other, k, cols + (size_t) (done % rows) * k, n, 0.5f,
								 false, 0.0, y, identity, transposed, gram, x);
			done++;
		}
		dual_ns = (now() - start) / done * 1e9;
		printf("row of %d ratings, %s batched\t%d\t%.0f\t-\t-\n", n, kernel->name, k, primal_ns);
		printf("row of %d ratings, %s dual\t%d\t%.0f\t-\t-\t(%.2fx batched)\n",
			   n, kernel->name, k, dual_ns, dual_ns / primal_ns);
	}
	batch_free(&b);
	free(transposed);
	free(gram);
	free(y);
	free(x);
	free(identity);
	free(cols);
}

int
main(int argc, char **argv)
{
	int			degree,
				n_other;
	double		seconds;
	char	   *ks;
	double		peak512 = 0,
				peak2 = 0;

	if (argc != 5)
	{
		fprintf(stderr, "usage: kernels K[,K...] DEGREE N_OTHER SECONDS\n");
		return 2;
	}
	ks = argv[1];
	degree = atoi(argv[2]);
	n_other = atoi(argv[3]);
	seconds = atof(argv[4]);
	random_state = 42;

#ifdef MF_KERNEL_X86
	raise_peaks(&peak512, &peak2, 5);
#endif
	printf("what\tk\tns\tGFLOP/s\tshare of peak\n");
	if (peak512 > 0)
		printf("FMA peak avx512\t-\t-\t%.1f\t1\n", peak512);
	if (peak2 > 0)
		printf("FMA peak avx2\t-\t-\t%.1f\t1\n", peak2);

	for (char *token = strtok(ks, ","); token; token = strtok(NULL, ","))
	{
		int			k = atoi(token);
		int			rows = 64;	/* distinct rows, cycled */
		float	   *other = malloc(sizeof(float) * (size_t) n_other * k);
		int32	   *cols = malloc(sizeof(int32) * (size_t) rows * degree);
		float	   *targets = malloc(sizeof(float) * degree);
		float	   *gathered = aligned_alloc(64, sizeof(float) * (((size_t) degree * k + 15) / 16 * 16));
		float	   *gram = aligned_alloc(64, sizeof(float) * (((size_t) k * k + 15) / 16 * 16));
		float	   *x = malloc(sizeof(float) * k);
		double		gram_flops = (double) degree * k * (k + 1);
		double		solve_flops = (double) k * k * k / 3 + 2.0 * k * k;
		const MfKernel *kernels[3];
		double		peaks[3];
		int			n_kernels = 0;
		double		blas_gram_ns = 0;

		for (size_t i = 0; i < (size_t) n_other * k; i++)
			other[i] = (float) (uniform() - 0.5);
		for (int i = 0; i < rows * degree; i++)
			cols[i] = (int32) (uniform() * n_other);
		for (int e = 0; e < degree; e++)
			targets[e] = (float) (1 + 4 * uniform());

#ifdef MF_KERNEL_X86
		raise_peaks(&peak512, &peak2, 2);
		if (peak512 > 0)
		{
			kernels[n_kernels] = &avx512_kernel;
			peaks[n_kernels++] = peak512;
		}
		if (peak2 > 0)
		{
			kernels[n_kernels] = &avx2_kernel;
			peaks[n_kernels++] = peak2;
		}
#endif
		kernels[n_kernels] = &portable_kernel;
		peaks[n_kernels++] = peak512 > 0 ? peak512 : peak2;

		/* the probe's way: gather, ssyrk, sgemv */
		{
			long		done = 0;
			double		start = now();

			while (now() - start < seconds)
			{
				const int32 *c = cols + (size_t) (done % rows) * degree;

				for (int e = 0; e < degree; e++)
					memcpy(gathered + (size_t) e * k, other + (size_t) c[e] * k, sizeof(float) * k);
				memset(gram, 0, sizeof(float) * k * k);
				cblas_ssyrk(CblasColMajor, CblasUpper, CblasNoTrans, k, degree, 1,
							gathered, k, 0, gram, k);
				cblas_sgemv(CblasColMajor, CblasNoTrans, k, degree, 1, gathered, k,
							targets, 1, 0, x, 1);
				done++;
			}
			blas_gram_ns = (now() - start) / done * 1e9;
			printf("gram openblas (gather + ssyrk + sgemv)\t%d\t%.0f\t%.1f\t%.2f\n", k,
				   blas_gram_ns, gram_flops / blas_gram_ns, gram_flops / blas_gram_ns / peaks[0]);
		}
		for (int i = 0; i < n_kernels; i++)
		{
			long		done = 0;
			double		start = now();
			double		ns;

			while (now() - start < seconds)
			{
				const int32 *c = cols + (size_t) (done % rows) * degree;

				memset(gram, 0, sizeof(float) * k * k);
				memset(x, 0, sizeof(float) * k);
				kernels[i]->gram(other, k, c, degree, NULL, targets, false, gram, k, x,
								 (done % rows) + 1 < rows ? degree : 0);
				done++;
			}
			ns = (now() - start) / done * 1e9;
			printf("gram %s\t%d\t%.0f\t%.1f\t%.2f\t(%.2fx openblas)\n", kernels[i]->name, k, ns,
				   gram_flops / ns, gram_flops / ns / peaks[i], ns / blas_gram_ns);
		}

		/* the solve of one k x k system */
		{
			float	   *a = aligned_alloc(64, sizeof(float) * (((size_t) k * k + 15) / 16 * 16));
			float	   *spd = malloc(sizeof(float) * k * k);
			const char	upper = 'U';
			const int	one = 1;
			int			info;
			double		blas_ns = 0;

			memset(spd, 0, sizeof(float) * k * k);
			cblas_ssyrk(CblasColMajor, CblasUpper, CblasTrans, k, k, 1, other, k, 0, spd, k);
			for (int j = 0; j < k; j++)
			{
				spd[j * k + j] += 0.1f;
				for (int i = j + 1; i < k; i++)
					spd[j * k + i] = spd[i * k + j];	/* both triangles */
			}
			for (int variant = -1; variant < n_kernels; variant++)
			{
				long		done = 0;
				double		start = now();
				double		ns;

				while (now() - start < seconds)
				{
					memcpy(a, spd, sizeof(float) * k * k);
					memcpy(x, targets, sizeof(float) * k);
					if (variant < 0)
					{
						spotrf_(&upper, &k, a, &k, &info, 1);
						spotrs_(&upper, &k, &one, a, &k, x, &k, &info, 1);
					}
					else
					{
						kernels[variant]->cholesky(a, k, k);
						kernels[variant]->cholesky_solve(a, k, k, x);
					}
					done++;
				}
				ns = (now() - start) / done * 1e9;
				if (variant < 0)
				{
					blas_ns = ns;
					printf("solve openblas (spotrf + spotrs)\t%d\t%.0f\t%.1f\t%.2f\n", k, ns,
						   solve_flops / ns, solve_flops / ns / peaks[0]);
				}
				else
					printf("solve %s\t%d\t%.0f\t%.1f\t%.2f\t(%.2fx openblas)\n",
						   kernels[variant]->name, k, ns, solve_flops / ns,
						   solve_flops / ns / peaks[variant], ns / blas_ns);
			}
			/* batch_lanes systems at once, as mf_train solves them (per system) */
			for (int variant = 0; variant < n_kernels && k <= MF_KERNEL_BATCH_MAX; variant++)
				if (kernels[variant]->batch_lanes > 0)
					time_batched_solve(kernels[variant], k, spd, targets, seconds, peaks[variant],
									   solve_flops, blas_ns);
			/* short rows: the batched primal against the dual form */
			for (int variant = 0; variant < n_kernels && k <= MF_KERNEL_BATCH_MAX; variant++)
				if (kernels[variant]->batch_lanes > 0)
					time_short_rows(kernels[variant], k, other, n_other);
			free(a);
			free(spd);
		}
		free(other);
		free(cols);
		free(targets);
		free(gathered);
		free(gram);
		free(x);
	}
#ifdef MF_KERNEL_X86
	/* the shares above are against the best peak measured before them */
	raise_peaks(&peak512, &peak2, 3);
	if (peak512 > 0)
		printf("FMA peak avx512\t-\t-\t%.1f\t1\t(best of the run)\n", peak512);
	if (peak2 > 0)
		printf("FMA peak avx2\t-\t-\t%.1f\t1\t(best of the run)\n", peak2);
#endif
	return 0;
}
