/*
 * probe.c -- the BLAS floor of one ALS iteration, outside PostgreSQL.
 *
 * Does the work mf_train does per iteration and nothing else: for every user
 * row, then every item row, gather the other side's factor rows of its
 * ratings into a contiguous block, ssyrk the Gram matrix, add lambda to the
 * diagonal, sgemv the right-hand side, spotrf + spotrs.  Rows are handed to
 * threads in dynamic chunks, OpenBLAS runs single-threaded inside them.
 *
 * The rows have the degrees read from two files (one degree per line: user
 * rows, then item rows), with the rated columns drawn at random, so the
 * probe sees the same degree distribution as the benchmarked table.
 *
 *   probe USER_DEGREES ITEM_DEGREES K THREADS ITERATIONS
 *
 * prints: median seconds per iteration.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cblas.h>

extern void spotrf_(const char *uplo, const int *n, float *a, const int *lda,
					int *info, size_t uplo_len);
extern void spotrs_(const char *uplo, const int *n, const int *nrhs,
					const float *a, const int *lda, float *b, const int *ldb,
					int *info, size_t uplo_len);

#define CHUNK 64

typedef struct Side
{
	int			n_rows;
	int			n_other;
	int64_t    *start;
	int		   *col;
	float	   *val;
} Side;

typedef struct Job
{
	const Side *side;
	const float *other;
	float	   *out;
	int			k;
	atomic_int	next;
} Job;

static int
read_degrees(const char *path, int **degrees)
{
	FILE	   *f = fopen(path, "r");
	int			n = 0,
				cap = 1024,
				d;

	if (!f)
	{
		perror(path);
		exit(1);
	}
	*degrees = malloc(sizeof(int) * cap);
	while (fscanf(f, "%d", &d) == 1)
	{
		if (n == cap)
			*degrees = realloc(*degrees, sizeof(int) * (cap *= 2));
		(*degrees)[n++] = d;
	}
	fclose(f);
	return n;
}

static uint64_t
next_random(uint64_t *state)
{
	uint64_t	x = (*state += 0x9E3779B97F4A7C15ULL);

	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

static void
make_side(Side *side, const int *degrees, int n_rows, int n_other, uint64_t seed)
{
	int64_t		nnz = 0;

	side->n_rows = n_rows;
	side->n_other = n_other;
	side->start = malloc(sizeof(int64_t) * (n_rows + 1));
	for (int r = 0; r < n_rows; r++)
	{
		side->start[r] = nnz;
		nnz += degrees[r];
	}
	side->start[n_rows] = nnz;
	side->col = malloc(sizeof(int) * nnz);
	side->val = malloc(sizeof(float) * nnz);
	for (int64_t e = 0; e < nnz; e++)
	{
		side->col[e] = (int) (next_random(&seed) % (uint64_t) n_other);
		side->val[e] = 1.0f + (float) (next_random(&seed) % 9) / 2.0f;
	}
}

static void *
worker(void *arg)
{
	Job		   *job = arg;
	const Side *side = job->side;
	int			k = job->k;
	int			max_degree = 1;
	float	   *gathered,
			   *gram,
			   *rhs;
	const int	one = 1;

	for (int r = 0; r < side->n_rows; r++)
		if (side->start[r + 1] - side->start[r] > max_degree)
			max_degree = (int) (side->start[r + 1] - side->start[r]);
	gathered = malloc(sizeof(float) * (size_t) max_degree * k);
	gram = malloc(sizeof(float) * k * k);
	rhs = malloc(sizeof(float) * k);

	for (;;)
	{
		int			first = atomic_fetch_add(&job->next, CHUNK);

		if (first >= side->n_rows)
			break;
		for (int r = first; r < first + CHUNK && r < side->n_rows; r++)
		{
			int64_t		begin = side->start[r];
			int			degree = (int) (side->start[r + 1] - begin);
			int			info;

			for (int e = 0; e < degree; e++)
				memcpy(gathered + (size_t) e * k,
					   job->other + (size_t) side->col[begin + e] * k,
					   sizeof(float) * k);
			memset(gram, 0, sizeof(float) * k * k);
			for (int j = 0; j < k; j++)
				gram[j * k + j] = 0.1f;
			cblas_ssyrk(CblasColMajor, CblasUpper, CblasNoTrans, k, degree,
						1.0f, gathered, k, 1.0f, gram, k);
			cblas_sgemv(CblasColMajor, CblasNoTrans, k, degree, 1.0f,
						gathered, k, side->val + begin, 1, 0.0f, rhs, 1);
			spotrf_("U", &k, gram, &k, &info, 1);
			spotrs_("U", &k, &one, gram, &k, rhs, &k, &info, 1);
			memcpy(job->out + (size_t) r * k, rhs, sizeof(float) * k);
		}
	}
	free(gathered);
	free(gram);
	free(rhs);
	return NULL;
}

static void
solve_side(const Side *side, const float *other, float *out, int k, int threads)
{
	Job			job = {side, other, out, k, 0};
	pthread_t  *ids = malloc(sizeof(pthread_t) * threads);

	for (int t = 1; t < threads; t++)
		pthread_create(&ids[t], NULL, worker, &job);
	worker(&job);
	for (int t = 1; t < threads; t++)
		pthread_join(ids[t], NULL);
	free(ids);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
compare_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
	int		   *user_degrees,
			   *item_degrees;
	int			n_users,
				n_items,
				k,
				threads,
				iterations;
	Side		users,
				items;
	float	   *U,
			   *V;
	double	   *seconds;
	uint64_t	seed = 42;

	if (argc != 6)
	{
		fprintf(stderr, "usage: probe USER_DEGREES ITEM_DEGREES K THREADS ITERATIONS\n");
		return 2;
	}
	n_users = read_degrees(argv[1], &user_degrees);
	n_items = read_degrees(argv[2], &item_degrees);
	k = atoi(argv[3]);
	threads = atoi(argv[4]);
	iterations = atoi(argv[5]);
	openblas_set_num_threads(1);

	make_side(&users, user_degrees, n_users, n_items, 1);
	make_side(&items, item_degrees, n_items, n_users, 2);
	U = malloc(sizeof(float) * (size_t) n_users * k);
	V = malloc(sizeof(float) * (size_t) n_items * k);
	for (size_t i = 0; i < (size_t) n_items * k; i++)
		V[i] = (float) (next_random(&seed) % 1000) / 1000.0f - 0.5f;

	seconds = malloc(sizeof(double) * iterations);
	for (int it = 0; it < iterations; it++)
	{
		double		start = now();

		solve_side(&users, V, U, k, threads);
		solve_side(&items, U, V, k, threads);
		seconds[it] = now() - start;
	}
	qsort(seconds, iterations, sizeof(double), compare_double);
	printf("%.6f\n", seconds[iterations / 2]);
	return 0;
}
