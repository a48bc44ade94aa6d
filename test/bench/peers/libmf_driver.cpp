/*
 * libmf_driver.cpp: the LIBMF side of `make bench-peers` (test/bench/peers.sh).
 *
 * Trains one LIBMF model (real-valued matrix factorization, squared loss,
 * L2 regularisation, parallel SGD: what `mf-train -f 0` does) on a training
 * file and scores it on a held-out file with LIBMF's own calc_rmse, then
 * prints one line:
 *
 *     fit wall seconds <TAB> fit CPU seconds (all threads) <TAB> held-out RMSE
 *
 * Only mf_train() is timed; reading the files (LIBMF's read_problem, as
 * mf-train does) and scoring are not.  Parameters are mf-train's for
 * `-k K -l2 L2 -t EPOCHS -s THREADS -f 0` (its defaults otherwise: learning
 * rate 0.1, nr_bins = max(20, 2 * threads + 1), no data copy).
 *
 * Usage: libmf_driver TRAIN TEST k l2 epochs threads
 * Files: "user item rating" lines (tabs are fine) with 0-based ids.
 */
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "mf.h"

using namespace mf;

static double
seconds(clockid_t clock)
{
	timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int
main(int argc, char **argv)
{
	if (argc != 7)
	{
		fprintf(stderr, "usage: libmf_driver TRAIN TEST k l2 epochs threads\n");
		return 1;
	}
	mf_problem train = read_problem(argv[1]);
	mf_problem test = read_problem(argv[2]);
	if (train.nnz == 0 || test.nnz == 0)
	{
		fprintf(stderr, "libmf_driver: cannot read %s or %s\n", argv[1], argv[2]);
		return 1;
	}

	mf_parameter param = mf_get_default_param();
	param.fun = P_L2_MFR;
	param.k = atoi(argv[3]);
	param.lambda_p2 = param.lambda_q2 = (mf_float) atof(argv[4]);
	param.lambda_p1 = param.lambda_q1 = 0;
	param.nr_iters = atoi(argv[5]);
	param.nr_threads = atoi(argv[6]);
	param.nr_bins = std::max(param.nr_bins, 2 * param.nr_threads + 1);
	param.copy_data = false;
	param.quiet = true;

	double wall0 = seconds(CLOCK_MONOTONIC), cpu0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
	mf_model *model = mf_train(&train, param);
	double wall = seconds(CLOCK_MONOTONIC) - wall0;
	double cpu = seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
	if (model == nullptr)
	{
		fprintf(stderr, "libmf_driver: mf_train failed\n");
		return 1;
	}

	printf("%.4f\t%.4f\t%.6f\n", wall, cpu, calc_rmse(&test, model));
	mf_destroy_model(&model);
	return 0;
}
