/*-------------------------------------------------------------------------
 *
 * blas.c
 *	  Loads OpenBLAS into the backend, single-threaded, on first use.
 *
 *	  Debian's default OpenBLAS (the pthread flavour) starts a pool of
 *	  nproc - 1 threads as soon as it is loaded, with the backend's signals
 *	  unblocked, and openblas_set_num_threads(1) does not stop them.  So
 *	  mf_ext does not link it: the first call that needs BLAS dlopen()s it
 *	  with OPENBLAS_NUM_THREADS=1 in the environment for the duration of
 *	  the load (the library reads it in its constructor), which starts no
 *	  threads at all.  mf_ext's own worker threads then call it; a build
 *	  without internal locking (OpenBLAS's SINGLE_THREADED flavour) is not
 *	  safe for that and is reported as such.  Never called in the
 *	  postmaster: _PG_init does not load it.
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
	char	   *saved;
	void	   *library;
	const char *(*get_config) (void);

	if (blas_loaded)
		return &blas_table;

	saved = getenv("OPENBLAS_NUM_THREADS");
	saved = saved ? pstrdup(saved) : NULL;
	setenv("OPENBLAS_NUM_THREADS", "1", 1);
	library = dlopen(MF_OPENBLAS_LIBRARY, RTLD_NOW | RTLD_LOCAL);
	if (saved)
		setenv("OPENBLAS_NUM_THREADS", saved, 1);
	else
		unsetenv("OPENBLAS_NUM_THREADS");

	if (library == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("could not load %s: %s", MF_OPENBLAS_LIBRARY, dlerror()),
				 errhint("Install Debian's libopenblas0-pthread (OpenBLAS with LAPACK).")));

	blas_table.ssyrk = required_symbol(library, "cblas_ssyrk");
	blas_table.dsyrk = required_symbol(library, "cblas_dsyrk");
	blas_table.sgemv = required_symbol(library, "cblas_sgemv");
	blas_table.dgemv = required_symbol(library, "cblas_dgemv");
	blas_table.spotrf = required_symbol(library, "spotrf_");
	blas_table.dpotrf = required_symbol(library, "dpotrf_");
	blas_table.spotrs = required_symbol(library, "spotrs_");
	blas_table.dpotrs = required_symbol(library, "dpotrs_");
	blas_table.spocon = required_symbol(library, "spocon_");
	blas_table.dpocon = required_symbol(library, "dpocon_");
	get_config = required_symbol(library, "openblas_get_config");
	blas_table.thread_safe = strstr(get_config(), "SINGLE_THREADED") == NULL;

	blas_loaded = true;
	return &blas_table;
}
