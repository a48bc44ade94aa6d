/*-------------------------------------------------------------------------
 *
 * parallel.c
 *	  Runs a plain-C task function over a range of task indices on several
 *	  threads: the backend's own and pthread workers.  Tasks are handed out
 *	  in order, in chunks, through an atomic counter.  Workers have every
 *	  signal blocked and never call PostgreSQL; the backend's thread,
 *	  between its chunks, watches for interrupts: on one it stops the
 *	  workers, joins them, and only then lets PostgreSQL process the
 *	  interrupt (which may throw), then carries on where the run stopped.
 *
 *	  A run may have a feeder: a function the backend's thread calls
 *	  between its chunks, which may use PostgreSQL (read what the next
 *	  tasks need, write what finished tasks made) and says how many tasks
 *	  are ready; workers wait for tasks past that.  An error it throws
 *	  stops and joins the workers before it goes on up.
 *
 *-------------------------------------------------------------------------
 */
#include "parallel.h"
#include "blas.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/ipc.h"

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

/* Yields a waiting worker makes before it sleeps between looks. */
#define MF_IDLE_SPINS		64

/* One run, shared by its threads. */
typedef struct Run
{
	MfTaskFn	fn;
	MfFeedFn	feed;			/* or NULL: every task is ready */
	void	   *arg;
	int64		n;
	int64		chunk;
	atomic_llong next;			/* first task of the next chunk to take */
	atomic_llong ready;			/* tasks below this may be taken */
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
 * The backend's thread (backend) feeds the run before each chunk, and
 * stops it when an interrupt is waiting to be processed; a worker that
 * finds no ready task yields until there is one.
 */
static void
run_chunks(Run *run, int thread, bool backend)
{
	int			idle = 0;

	while (!atomic_load(&run->stop))
	{
		long long	first;
		int64		last;
		int64		failed;

		if (backend && run->feed)
		{
			int64		ready;

			/*
			 * The feeder runs SQL, the caller's too (a row-level security
			 * policy), with interrupts processed as anywhere: an ERROR
			 * stops and joins the workers (mf_parallel_for's PG_CATCH), a
			 * FATAL's exit joins them before any memory goes
			 * (join_at_exit).  Holding interrupts here would make that SQL
			 * deaf to cancel, and an error it catches would reset the
			 * hold count under us.
			 */
			ready = run->feed(run->arg);
			atomic_store(&run->ready, Min(run->n, ready));
		}
		first = atomic_load(&run->next);
		if (first >= run->n)
			break;
		last = Min(first + run->chunk, atomic_load(&run->ready));
		if (first >= last)
		{
			/* a worker waits for the backend to feed the run */
			if (!backend && ++idle > MF_IDLE_SPINS)
				usleep(100);
			else if (!backend)
				sched_yield();
		}
		else if (atomic_compare_exchange_weak(&run->next, &first, last))
		{
			idle = 0;
			failed = run->fn(run->arg, thread, first, last);
			if (failed >= 0)
			{
				long long	current = atomic_load(&run->failed);

				while (failed < current &&
					   !atomic_compare_exchange_weak(&run->failed, &current, failed))
					;
				atomic_store(&run->stop, true);
			}
		}
		if (backend && INTERRUPTS_PENDING_CONDITION() && INTERRUPTS_CAN_BE_PROCESSED())
			atomic_store(&run->stop, true);
	}
}

/*
 * The run in progress, if any, and its started workers: should the backend
 * exit (FATAL) while they run, join_at_exit stops and joins them before
 * the backend's memory goes away.  It is registered at the first run, after
 * PostgreSQL's own exit callbacks, so it runs before them (they run in
 * reverse order).
 */
static Run *active_run = NULL;
static Worker *active_workers = NULL;
static int	active_started = 0;

static void
join_at_exit(int code, Datum arg)
{
	if (active_run == NULL)
		return;
	atomic_store(&active_run->stop, true);
	for (int t = 1; t <= active_started; t++)
		pthread_join(active_workers[t].handle, NULL);
	active_run = NULL;
}

static void *
worker_main(void *arg)
{
	Worker	   *worker = arg;

	run_chunks(worker->run, worker->thread, false);
	return NULL;
}

int64
mf_parallel_for(int threads, int64 n, int64 chunk, MfTaskFn fn, MfFeedFn feed,
				void *arg)
{
	static bool exit_callback = false;
	Run			run;
	Worker	   *workers = palloc0(sizeof(Worker) * Max(threads, 1));

	if (!exit_callback)
	{
		before_shmem_exit(join_at_exit, (Datum) 0);
		exit_callback = true;
	}

	run.fn = fn;
	run.feed = feed;
	run.arg = arg;
	run.n = n;
	run.chunk = Max(chunk, 1);
	atomic_init(&run.next, (long long) 0);
	atomic_init(&run.ready, (long long) (feed ? 0 : n));
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
		active_run = &run;
		active_workers = workers;
		active_started = started;

		PG_TRY();
		{
			run_chunks(&run, 0, true);
		}
		PG_CATCH();
		{
			/* the feeder threw: the workers must be gone before it goes on */
			atomic_store(&run.stop, true);
			for (int t = 1; t <= started; t++)
				pthread_join(workers[t].handle, NULL);
			active_run = NULL;
			PG_RE_THROW();
		}
		PG_END_TRY();
		for (int t = 1; t <= started; t++)
			pthread_join(workers[t].handle, NULL);
		active_run = NULL;

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
