/*
 * cmfrec_driver.c: the cmfrec side of `make bench-peers` (test/bench/peers.sh).
 *
 * Trains one cmfrec ALS model (fit_collective_explicit_als or
 * fit_collective_implicit_als from cmfrec's C API, built with USE_FLOAT) on a
 * training file and scores it on a held-out file, then prints one line:
 *
 *     fit wall seconds <TAB> fit CPU seconds (all threads) <TAB> metric
 *
 * The metric is the held-out RMSE (explicit) or precision@10 (implicit: per
 * test user, hits among the 10 best-scored items not in that user's training
 * rows, divided by 10, averaged over the test users; mf_evaluate's
 * definition).  Only the fit call is timed; reading the files and scoring are
 * not.
 *
 * Files: "user<TAB>item<TAB>value" lines with dense 0-based ids (the test
 * file holds only users and items of the training file).
 *
 * Usage: cmfrec_driver explicit|implicit cholesky|cg TRAIN TEST k lambda
 *                      iterations threads [alpha]
 *
 * The objective is set up to be mf_ext's (README, "How it works"): plain,
 * unscaled lambda (scale_lam off); explicit: global mean, user and item biases
 * regularised with the same lambda; implicit: confidence 1 + alpha * value
 * (adjust_weight and the log transform off).  CG takes 3 steps per row
 * (max_cg_steps) without preconditioning and without the final Cholesky pass
 * (finalize_chol off), as mf_ext's solver := 'cg' does.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>

#include "cmfrec.h"

typedef struct
{
	int *u, *i;
	float *r;
	size_t n, cap;
	int m_users, n_items;		/* largest id + 1 */
} Triples;

static void
die(const char *what)
{
	fprintf(stderr, "cmfrec_driver: %s\n", what);
	exit(1);
}

static void
read_triples(const char *path, Triples *t)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t len = 0;

	if (f == NULL)
		die(path);
	memset(t, 0, sizeof(*t));
	while (getline(&line, &len, f) > 0)
	{
		char *p = line, *end;
		long u = strtol(p, &end, 10), i;
		float r;

		if (end == p)
			continue;
		i = strtol(p = end, &end, 10);
		r = strtof(p = end, &end);
		if (t->n == t->cap)
		{
			t->cap = t->cap ? 2 * t->cap : 1 << 16;
			t->u = realloc(t->u, t->cap * sizeof(int));
			t->i = realloc(t->i, t->cap * sizeof(int));
			t->r = realloc(t->r, t->cap * sizeof(float));
			if (!t->u || !t->i || !t->r)
				die("out of memory");
		}
		t->u[t->n] = (int) u;
		t->i[t->n] = (int) i;
		t->r[t->n] = r;
		t->n++;
		if (u + 1 > t->m_users)
			t->m_users = (int) u + 1;
		if (i + 1 > t->n_items)
			t->n_items = (int) i + 1;
	}
	free(line);
	fclose(f);
}

static double
seconds(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CSR offsets and columns of a triple set, by user. */
static void
by_user(const Triples *t, int m, size_t **start, int **items)
{
	size_t *s = calloc(m + 1, sizeof(size_t)), *pos = malloc(m * sizeof(size_t));
	int *it = malloc(t->n * sizeof(int));

	if (!s || !pos || !it)
		die("out of memory");
	for (size_t j = 0; j < t->n; j++)
		s[t->u[j] + 1]++;
	for (int a = 0; a < m; a++)
		s[a + 1] += s[a];
	memcpy(pos, s, m * sizeof(size_t));
	for (size_t j = 0; j < t->n; j++)
		it[pos[t->u[j]]++] = t->i[j];
	free(pos);
	*start = s;
	*items = it;
}

/* precision@10 as mf_evaluate computes it (every test pair relevant). */
static double
precision_at_10(const Triples *train, const Triples *test, int m, int n, int k,
				const float *A, const float *B)
{
	size_t *tr_s, *te_s;
	int *tr_i, *te_i;
	int *seen = malloc(n * sizeof(int));
	float *score = malloc(n * sizeof(float));
	double sum = 0;
	int users = 0;

	if (!seen || !score)
		die("out of memory");
	by_user(train, m, &tr_s, &tr_i);
	by_user(test, m, &te_s, &te_i);
	for (int i = 0; i < n; i++)
		seen[i] = -1;
	for (int a = 0; a < m; a++)
	{
		int best[10], nbest = 0, hits = 0;

		if (te_s[a] == te_s[a + 1])
			continue;
		for (size_t j = tr_s[a]; j < tr_s[a + 1]; j++)
			seen[tr_i[j]] = a;
		for (int i = 0; i < n; i++)
		{
			float s = 0;
			int p;

			for (int f = 0; f < k; f++)
				s += A[(size_t) a * k + f] * B[(size_t) i * k + f];
			score[i] = s;
			if (seen[i] == a)
				continue;
			if (nbest == 10 && s <= score[best[9]])
				continue;
			p = nbest < 10 ? nbest++ : 9;
			while (p > 0 && score[best[p - 1]] < s)
			{
				best[p] = best[p - 1];
				p--;
			}
			best[p] = i;
		}
		for (int b = 0; b < nbest; b++)
			for (size_t j = te_s[a]; j < te_s[a + 1]; j++)
				if (te_i[j] == best[b])
				{
					hits++;
					break;
				}
		sum += hits / 10.0;
		users++;
	}
	return users ? sum / users : NAN;
}

int
main(int argc, char **argv)
{
	Triples train, test;
	bool implicit, cg;
	int k, iterations, threads, m, n, rc;
	float lambda, alpha = 1;
	float *A, *B, *biasA = NULL, *biasB = NULL, glob_mean = 0, w_mult = 1;
	double wall0, cpu0, wall, cpu, metric;

	if (argc < 9 || argc > 10)
		die("usage: cmfrec_driver explicit|implicit cholesky|cg TRAIN TEST k lambda iterations threads [alpha]");
	implicit = strcmp(argv[1], "implicit") == 0;
	cg = strcmp(argv[2], "cg") == 0;
	k = atoi(argv[5]);
	lambda = strtof(argv[6], NULL);
	iterations = atoi(argv[7]);
	threads = atoi(argv[8]);
	if (argc == 10)
		alpha = strtof(argv[9], NULL);

	read_triples(argv[3], &train);
	read_triples(argv[4], &test);
	m = train.m_users;
	n = train.n_items;
	A = malloc((size_t) m * k * sizeof(float));
	B = malloc((size_t) n * k * sizeof(float));
	if (!implicit)
	{
		biasA = malloc(m * sizeof(float));
		biasB = malloc(n * sizeof(float));
	}
	if (!A || !B || (!implicit && (!biasA || !biasB)))
		die("out of memory");

	wall0 = seconds(CLOCK_MONOTONIC);
	cpu0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
	if (!implicit)
		rc = fit_collective_explicit_als(
			biasA, biasB, A, B, NULL, NULL, NULL, NULL,
			false,				/* add_implicit_features */
			true, 1,			/* reset_values, seed */
			&glob_mean, NULL, NULL,
			m, n, k,
			train.u, train.i, train.r, train.n,
			NULL, NULL,			/* Xfull, weight */
			true, true, true,	/* user_bias, item_bias, center */
			lambda, NULL, 0, NULL,	/* lam, lam_unique, l1_lam, l1_lam_unique */
			false, false, false,	/* scale_lam, scale_lam_sideinfo, scale_bias_const */
			NULL, NULL,			/* scaling_biasA, scaling_biasB */
			NULL, 0, 0, NULL, 0, 0,	/* U, m_u, p, II, n_i, q */
			NULL, NULL, NULL, 0, NULL, NULL, NULL, 0,	/* sparse side info */
			false, false, false,	/* NA_as_zero_X, _U, _I */
			0, 0, 0,			/* k_main, k_user, k_item */
			1, 1, 1, 1,			/* w_main, w_user, w_item, w_implicit */
			iterations, threads,
			false, false,		/* verbose, handle_interrupt */
			cg, 3, false, false,	/* use_cg, max_cg_steps, precondition_cg, finalize_chol */
			false, 0, false, false,	/* nonneg, max_cd_steps, nonneg_C, nonneg_D */
			false, true,		/* precompute_for_predictions, include_all_X */
			NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
	else
		rc = fit_collective_implicit_als(
			A, B, NULL, NULL,
			true, 1,			/* reset_values, seed */
			NULL, NULL,
			m, n, k,
			train.u, train.i, train.r, train.n,
			lambda, NULL, 0, NULL,
			NULL, 0, 0, NULL, 0, 0,
			NULL, NULL, NULL, 0, NULL, NULL, NULL, 0,
			false, false,		/* NA_as_zero_U, _I */
			0, 0, 0,
			1, 1, 1,			/* w_main, w_user, w_item */
			&w_mult,
			alpha, false, false,	/* alpha, adjust_weight, apply_log_transf */
			iterations, threads,
			false, false,
			cg, 3, false, false,
			false, 0, false, false,
			false,				/* precompute_for_predictions */
			NULL, NULL, NULL, NULL);
	wall = seconds(CLOCK_MONOTONIC) - wall0;
	cpu = seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
	if (rc != 0)
	{
		fprintf(stderr, "cmfrec_driver: fit returned %d\n", rc);
		return 1;
	}

	if (!implicit)
	{
		double sse = 0;

		for (size_t j = 0; j < test.n; j++)
		{
			int a = test.u[j], i = test.i[j];
			double p = glob_mean + biasA[a] + biasB[i];

			for (int f = 0; f < k; f++)
				p += (double) A[(size_t) a * k + f] * B[(size_t) i * k + f];
			sse += (test.r[j] - p) * (test.r[j] - p);
		}
		metric = sqrt(sse / test.n);
	}
	else
		metric = precision_at_10(&train, &test, m, n, k, A, B);

	printf("%.4f\t%.4f\t%.6f\n", wall, cpu, metric);
	return 0;
}
