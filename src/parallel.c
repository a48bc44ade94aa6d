/*-------------------------------------------------------------------------
 *
 * parallel.c
 *	  Runs a plain-C task function over a range of task indices on several
 *	  threads: the backend's own and pthread workers.  Tasks are handed out
 *	  in chunks through an atomic counter.  Workers have every signal
 *	  blocked and never call PostgreSQL; the backend's thread, between its
 *	  chunks, watches for interrupts: on one it stops the workers, joins
 *	  them, and only then lets PostgreSQL process the interrupt (which may
 *	  throw), then carries on where the run stopped.
 *
 *-------------------------------------------------------------------------
 */
#include "mf_ext.h"
#include "blas.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#include "miscadmin.h"

/*
 * Threads a parallel run uses: what mf_ext.threads asks for (0: every core
 * this backend may run on), at most as many as OpenBLAS allows callers.
 */
int
mf_thread_count(void)
{
	int			wanted = mf_threads;
	cpu_set_t	cpus;

	if (wanted <= 0)
		wanted = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus)
			: (int) sysconf(_SC_NPROCESSORS_ONLN);
	return Max(1, Min(Min(wanted, MF_MAX_THREADS), mf_blas()->max_threads));
}

/* One run, shared by its threads. */
typedef struct Run
{
	MfTaskFn	fn;
	void	   *arg;
	int64		n;
	int64		chunk;
	atomic_llong next;			/* first task of the next chunk to take */
	atomic_llong failed;		/* smallest failed task, or INT64_MAX */
	atomic_bool stop;			/* set on failure or interrupt */
} Run;

typedef struct Worker
{
	Run		   *run;
	int			thread;
	pthread_t	handle;
} Worker;

/*
 * Takes chunks and runs them until none is left or the run is stopped.
 * When watch_interrupts (the backend's thread only), an interrupt waiting
 * to be processed stops the run.
 */
static void
run_chunks(Run *run, int thread, bool watch_interrupts)
{
	while (!atomic_load(&run->stop))
	{
		int64		first = atomic_fetch_add(&run->next, run->chunk);
		int64		failed;

		if (first >= run->n)
			break;
		failed = run->fn(run->arg, thread, first, Min(run->n, first + run->chunk));
		if (failed >= 0)
		{
			long long	current = atomic_load(&run->failed);

			while (failed < current &&
				   !atomic_compare_exchange_weak(&run->failed, &current, failed))
				;
			atomic_store(&run->stop, true);
		}
		if (watch_interrupts && INTERRUPTS_PENDING_CONDITION() &&
			INTERRUPTS_CAN_BE_PROCESSED())
			atomic_store(&run->stop, true);
	}
}

static void *
worker_main(void *arg)
{
	Worker	   *worker = arg;

	run_chunks(worker->run, worker->thread, false);
	return NULL;
}

int64
mf_parallel_for(int threads, int64 n, int64 chunk, MfTaskFn fn, void *arg)
{
	Run			run;
	Worker	   *workers = palloc0(sizeof(Worker) * Max(threads, 1));

	run.fn = fn;
	run.arg = arg;
	run.n = n;
	run.chunk = Max(chunk, 1);
	atomic_init(&run.next, (long long) 0);
	atomic_init(&run.failed, (long long) INT64_MAX);
	atomic_init(&run.stop, false);

	for (;;)
	{
		sigset_t	all_signals,
					saved;
		int			started = 0;

		/* workers inherit a mask that blocks every signal */
		sigfillset(&all_signals);
		pthread_sigmask(SIG_SETMASK, &all_signals, &saved);
		for (int t = 1; t < threads; t++)
		{
			workers[t].run = &run;
			workers[t].thread = t;
			if (pthread_create(&workers[t].handle, NULL, worker_main, &workers[t]) != 0)
				break;			/* fewer threads; the work still gets done */
			started = t;
		}
		pthread_sigmask(SIG_SETMASK, &saved, NULL);

		run_chunks(&run, 0, true);
		for (int t = 1; t <= started; t++)
			pthread_join(workers[t].handle, NULL);

		if (atomic_load(&run.failed) != INT64_MAX)
			break;
		if (!atomic_load(&run.stop))
			break;				/* all tasks done */

		/* stopped for an interrupt: process it (may throw), then go on */
		CHECK_FOR_INTERRUPTS();
		atomic_store(&run.stop, false);
	}
	pfree(workers);
	return atomic_load(&run.failed) == INT64_MAX ? -1 : atomic_load(&run.failed);
}
