/*-------------------------------------------------------------------------
 *
 * blas.c
 *	  Loads OpenBLAS into the backend, single-threaded, on first use.
 *
 *	  Debian's default OpenBLAS (the pthread flavour) starts a pool of
 *	  nproc - 1 threads as soon as it is loaded, with the backend's signals
 *	  unblocked, and openblas_set_num_threads(1) does not stop them.  So
 *	  mf_ext does not link it: the first call that needs BLAS dlopen()s it
 *	  with OPENBLAS_NUM_THREADS=1 and OMP_NUM_THREADS=1 in the environment
 *	  for the duration of the load (the library reads them in its
 *	  constructor), which starts no threads at all.  mf_ext's own worker
 *	  threads then call it: at most as many as the build's MAX_THREADS, and
 *	  only one with a build without internal locking (the SINGLE_THREADED
 *	  flavour).  Never called in the postmaster: _PG_init does not load it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dlfcn.h>
#include <stdlib.h>

#include "blas.h"

#define MF_OPENBLAS_LIBRARY "libopenblas.so.0"

static MfBlas blas_table;
static bool blas_loaded = false;

/* Looks symbol up in the loaded library, or raises an error. */
static void *
required_symbol(void *library, const char *symbol)
{
	void	   *address = dlsym(library, symbol);

	if (address == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("%s has no function %s", MF_OPENBLAS_LIBRARY, symbol),
				 errhint("Install Debian's libopenblas0-pthread (OpenBLAS with LAPACK).")));
	return address;
}

const MfBlas *
mf_blas(void)
{
	static const char *const thread_variables[] = {"OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"};
	char	   *saved[lengthof(thread_variables)];
	void	   *library;
	const char *(*get_config) (void);
	void		(*set_num_threads) (int);
	int			(*get_num_threads) (void);
	const char *config;
	const char *max_threads;

	if (blas_loaded)
		return &blas_table;

	/* the pthread flavour reads the first, the OpenMP flavour the second */
	for (int v = 0; v < lengthof(thread_variables); v++)
	{
		saved[v] = getenv(thread_variables[v]);
		saved[v] = saved[v] ? pstrdup(saved[v]) : NULL;
		setenv(thread_variables[v], "1", 1);
	}
	library = dlopen(MF_OPENBLAS_LIBRARY, RTLD_NOW | RTLD_LOCAL);
	for (int v = 0; v < lengthof(thread_variables); v++)
	{
		if (saved[v])
			setenv(thread_variables[v], saved[v], 1);
		else
			unsetenv(thread_variables[v]);
	}

	if (library == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("could not load %s: %s", MF_OPENBLAS_LIBRARY, dlerror()),
				 errhint("Install Debian's libopenblas0-pthread (OpenBLAS with LAPACK).")));

	blas_table.ssyrk = required_symbol(library, "cblas_ssyrk");
	blas_table.dsyrk = required_symbol(library, "cblas_dsyrk");
	blas_table.sgemv = required_symbol(library, "cblas_sgemv");
	blas_table.dgemv = required_symbol(library, "cblas_dgemv");
	blas_table.sgemm = required_symbol(library, "cblas_sgemm");
	blas_table.strsm = required_symbol(library, "cblas_strsm");
	blas_table.dtrsm = required_symbol(library, "cblas_dtrsm");
	blas_table.spotrf = required_symbol(library, "spotrf_");
	blas_table.dpotrf = required_symbol(library, "dpotrf_");
	blas_table.spotrs = required_symbol(library, "spotrs_");
	blas_table.dpotrs = required_symbol(library, "dpotrs_");
	blas_table.spocon = required_symbol(library, "spocon_");
	blas_table.dpocon = required_symbol(library, "dpocon_");
	get_config = required_symbol(library, "openblas_get_config");
	set_num_threads = required_symbol(library, "openblas_set_num_threads");
	get_num_threads = required_symbol(library, "openblas_get_num_threads");

	/*
	 * In case another module loaded it first, with threads: one thread.
	 * Callers' threads are safe with a build that has locking (not
	 * SINGLE_THREADED), up to the MAX_THREADS it was built for (it keeps a
	 * fixed table of buffers per calling thread).
	 */
	set_num_threads(1);
	config = get_config();
	max_threads = strstr(config, "MAX_THREADS=");
	if (strstr(config, "SINGLE_THREADED") != NULL || get_num_threads() != 1)
		blas_table.max_threads = 1;
	else if (max_threads != NULL)
		blas_table.max_threads = Max(1, atoi(max_threads + strlen("MAX_THREADS=")));
	else
		blas_table.max_threads = 1;

	blas_loaded = true;
	return &blas_table;
}
