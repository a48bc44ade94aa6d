/*
 * The matrix-product floor of mf_recommend_all: times the ?gemm calls alone
 * (blocks of users x all items, as src/batch.c makes them) for random
 * factors of the given shape on the given number of threads.
 *
 *   gemm_probe N_USERS N_ITEMS K THREADS   -> prints seconds
 */
#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BLOCK_BYTES (1024 * 1024)

static int n_users, n_items, k, block_users;
static float *users, *items;
static atomic_int next_block;

static void *
work(void *arg)
{
	float	   *products = malloc(sizeof(float) * (size_t) block_users * n_items);
	int			blocks = (n_users + block_users - 1) / block_users;

	for (;;)
	{
		int			block = atomic_fetch_add(&next_block, 1);
		int			u0 = block * block_users;
		int			count;

		if (block >= blocks)
			break;
		count = n_users - u0 < block_users ? n_users - u0 : block_users;
		cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans, n_items, count, k, 1,
					items, k, users + (size_t) u0 * k, k, 0, products, n_items);
	}
	free(products);
	return arg;
}

int
main(int argc, char **argv)
{
	int			threads;
	pthread_t  *handles;
	struct timespec start, end;

	if (argc != 5)
	{
		fprintf(stderr, "usage: gemm_probe N_USERS N_ITEMS K THREADS\n");
		return 2;
	}
	n_users = atoi(argv[1]);
	n_items = atoi(argv[2]);
	k = atoi(argv[3]);
	threads = atoi(argv[4]);
	block_users = BLOCK_BYTES / ((size_t) n_items * sizeof(float));
	if (block_users < 1)
		block_users = 1;
	if (block_users > n_users)
		block_users = n_users;
	users = malloc(sizeof(float) * (size_t) n_users * k);
	items = malloc(sizeof(float) * (size_t) n_items * k);
	for (size_t i = 0; i < (size_t) n_users * k; i++)
		users[i] = (float) rand() / RAND_MAX - 0.5f;
	for (size_t i = 0; i < (size_t) n_items * k; i++)
		items[i] = (float) rand() / RAND_MAX - 0.5f;
	handles = malloc(sizeof(pthread_t) * threads);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (int t = 0; t < threads; t++)
		pthread_create(&handles[t], NULL, work, NULL);
	for (int t = 0; t < threads; t++)
		pthread_join(handles[t], NULL);
	clock_gettime(CLOCK_MONOTONIC, &end);
	printf("%.3f\n", (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9);
	return 0;
}
