/*-------------------------------------------------------------------------
 *
 * parallel.c
 *	  Runs a plain-C task function over a range of task indices on several
 *	  threads: the backend's own and pthread workers.  Tasks are handed out
 *	  in order, in chunks, through an atomic counter.  Workers have every
 *	  signal blocked and never call PostgreSQL; the backend's thread,
 *	  between its chunks (and, through mf_parallel_stopping, inside a long
 *	  task), watches for interrupts: on a cancel, timeout or termination it
 *	  stops the workers (half-way through their tasks), on any other
 *	  interrupt it pauses them (after their tasks), joins them, and only
 *	  then lets PostgreSQL process the interrupt (which may throw), then
 *	  carries on where the run stopped, running again from the start the
 *	  tasks that stopped half-way.  Between its chunks it also passes the
 *	  tasks finished so far to mf_progress_rows, which shows them when the
 *	  caller began rows to report (a half-step's users or items).
 *
 *	  A run may have a feeder: a function the backend's thread calls
 *	  between its chunks, which may use PostgreSQL (read what the next
 *	  tasks need, write what finished tasks made) and says how many tasks
 *	  are ready; workers wait for tasks past that.  An error it throws
 *	  stops and joins the workers before it goes on up.  A FATAL in it
 *	  exits without unwinding, through the transaction's abort, whose
 *	  callback stops and joins the workers; but that abort frees the
 *	  active portal's memory (the call's) before its callbacks run, so
 *	  what a fed run's tasks read must live in a transaction's context.
 *
 *	  Beside runs, one background thread at a time faults in memory the
 *	  backend is about to fill (mf_prefault), stopped and joined on the
 *	  same ways out as the workers.
 *
 *-------------------------------------------------------------------------
 */
#include "parallel.h"
#include "blas.h"
#include "progress.h"

#include <limits.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#include "access/xact.h"
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
	atomic_llong finished;		/* tasks run to their end (for progress) */
	atomic_llong failed;		/* smallest failed task, or INT64_MAX */
	atomic_bool failing;		/* set on failure: the chunks taken before the
								 * failed task's finish (a smaller task may fail
								 * in one), later ones stop, no new one starts
								 * (their tasks are all larger) */
	atomic_bool stop;			/* set for an interrupt that ends the
								 * statement: tasks stop half-way */
	atomic_bool pause;			/* set for any other interrupt: tasks finish,
								 * no new one starts */
	atomic_int	busy;			/* threads taking or running a chunk */
	int			threads;
	int64	   *redo_first;		/* per thread: tasks [redo_first, redo_last) */
	int64	   *redo_last;		/* to run again (stopped half-way), or -1 */
	struct Run *outer;			/* the run this one is nested in, or NULL */
	SubTransactionId subxact;	/* the subtransaction it runs in */
	struct Worker *workers;		/* its started workers, 1 .. started */
	int			started;
} Run;

typedef struct Worker
{
	Run		   *run;
	int			thread;
	pthread_t	handle;
} Worker;

/*
 * The run a thread is working for, whether it is the backend's thread, and
 * the first task of the chunk it runs (-1 between chunks).
 */
static __thread Run *current_run = NULL;
static __thread bool current_is_backend = false;
static __thread int64 current_first = -1;

/*
 * Whether an interrupt that ends the statement (a cancel, a timeout, a
 * termination) is waiting and may be processed.  Any other interrupt
 * (a client connection check, a barrier, a catch-up) only pauses a run
 * between tasks: were it to stop a task half-way, interrupts arriving
 * more often than a long row takes would have it solved again forever.
 */
static bool
ending_interrupt_pending(void)
{
	return (QueryCancelPending || ProcDiePending) && INTERRUPTS_CAN_BE_PROCESSED();
}

bool
mf_parallel_stopping(void)
{
	Run		   *run = current_run;

	if (run == NULL)
		return ending_interrupt_pending();	/* the backend's thread */
	if (atomic_load(&run->stop))
		return true;
	/* a chunk after a failed task: none of its tasks can be the first to fail */
	if (current_first >= 0 && atomic_load(&run->failed) < current_first)
		return true;
	if (current_is_backend && ending_interrupt_pending())
	{
		atomic_store(&run->stop, true);
		return true;
	}
	return false;
}

/*
 * Runs the chunk [first, last) of run's tasks on thread thread and records
 * its result: a failure ends the run once the chunks taken before it are
 * done (those after it stop: their tasks are all larger); a stop half-way
 * is kept for running again, unless a smaller task has failed.
 */
static void
run_chunk(Run *run, int thread, int64 first, int64 last)
{
	int64		result;

	current_first = first;
	result = run->fn(run->arg, thread, first, last);
	current_first = -1;
	if (result <= -2 && atomic_load(&run->failed) < first)
		return;
	if (result <= -2)
	{
		run->redo_first[thread] = -2 - result;
		run->redo_last[thread] = last;
		atomic_store(&run->stop, true);
	}
	else if (result == MF_TASK_DONE)
		atomic_fetch_add(&run->finished, last - first);
	else if (result >= 0)
	{
		long long	current = atomic_load(&run->failed);

		while (result < current &&
			   !atomic_compare_exchange_weak(&run->failed, &current, result))
			;
		atomic_store(&run->failing, true);
	}
}

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

	current_run = run;
	current_is_backend = backend;
	while (!atomic_load(&run->stop) && !atomic_load(&run->pause) && !atomic_load(&run->failing))
	{
		long long	first;
		int64		last;

		if (backend && run->feed)
		{
			/*
			 * The feeder runs SQL, the caller's too (a row-level security
			 * policy), with interrupts processed as anywhere: holding them
			 * would make that SQL deaf to cancel, and an error it catches
			 * would reset the hold count under us.
			 */
			int64		ready = run->feed(run->arg);

			current_run = run;	/* a run nested in the feeder's SQL has ended */
			current_is_backend = true;
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
		else
		{
			atomic_fetch_add(&run->busy, 1);
			if (atomic_compare_exchange_weak(&run->next, &first, last))
			{
				idle = 0;
				run_chunk(run, thread, first, last);
			}
			atomic_fetch_sub(&run->busy, 1);
		}
		if (backend)
			mf_progress_rows(atomic_load(&run->finished));
		if (backend && INTERRUPTS_PENDING_CONDITION() && INTERRUPTS_CAN_BE_PROCESSED())
			atomic_store(ending_interrupt_pending() ? &run->stop : &run->pause, true);
	}

	/*
	 * The backend's thread waits for the workers' last chunks (those taken
	 * before a failure run to their end) still answering a cancel: it
	 * stops them half-way.
	 */
	while (backend && atomic_load(&run->busy) > 0)
	{
		if (ending_interrupt_pending())
			atomic_store(&run->stop, true);
		mf_progress_rows(atomic_load(&run->finished));
		usleep(100);
	}
}

/*
 * The innermost run in progress, if any (runs nest when a feeder's SQL
 * starts one).  Whatever ends the backend's work while runs are in
 * progress stops and joins their workers: the transaction's (or
 * subtransaction's) abort, which a FATAL goes through on its way out
 * (in the first exit callback that aborts it, temporary tables' cleanup
 * or the backend's shutdown), before the transaction's memory goes, and
 * at the last the exit itself.
 */
static Run *active_run = NULL;

/*
 * Joins the run's workers: after they ran out of tasks or were stopped,
 * or (stop) stopping them first.
 */
static void
join_workers(Run *run, bool stop)
{
	if (stop)
		atomic_store(&run->stop, true);
	for (int t = 1; t <= run->started; t++)
		pthread_join(run->workers[t].handle, NULL);
	run->started = 0;
}

/*
 * Joins the workers of the runs that run in subtransaction subxact or in
 * one begun inside it (every run, for InvalidSubTransactionId), innermost
 * first, and forgets them.
 */
static void
join_runs_from(SubTransactionId subxact)
{
	while (active_run != NULL &&
		   (subxact == InvalidSubTransactionId || active_run->subxact >= subxact))
	{
		join_workers(active_run, true);
		active_run = active_run->outer;
	}
	current_run = NULL;
}

static void
join_at_abort(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		join_runs_from(InvalidSubTransactionId);
		mf_prefault_stop();
	}
}

/*
 * A subtransaction's abort joins the runs begun inside it, whose memory
 * it frees; not those it was begun in (a feeder's SQL that catches an
 * error).
 */
static void
join_at_subabort(SubXactEvent event, SubTransactionId sub, SubTransactionId parent, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		join_runs_from(sub);
		mf_prefault_stop();		/* its memory may be the subtransaction's */
	}
}

static void
join_at_exit(int code, Datum arg)
{
	join_runs_from(InvalidSubTransactionId);
	mf_prefault_stop();
}

static void *
worker_main(void *arg)
{
	Worker	   *worker = arg;

	run_chunks(worker->run, worker->thread, false);
	return NULL;
}

/*
 * Starts a thread running main(arg) with every signal blocked (it inherits
 * the mask); false when it could not be started.
 */
static bool
start_blocked_thread(pthread_t *handle, void *(*main) (void *), void *arg)
{
	sigset_t	all_signals,
				saved;
	bool		started;

	sigfillset(&all_signals);
	pthread_sigmask(SIG_SETMASK, &all_signals, &saved);
	started = pthread_create(handle, NULL, main, arg) == 0;
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	return started;
}

/* Starts the run's workers (threads - 1 of them, fewer if some fail). */
static void
start_workers(Run *run)
{
	run->started = 0;
	for (int t = 1; t < run->threads; t++)
	{
		run->workers[t].run = run;
		run->workers[t].thread = t;
		if (!start_blocked_thread(&run->workers[t].handle, worker_main, &run->workers[t]))
			break;				/* fewer threads; the work still gets done */
		run->started = t;
	}
}

/*
 * Runs again, on the backend's thread, the tasks that stopped half-way
 * for an interrupt now processed.  Returns false when one stops again.
 */
static bool
redo_stopped(Run *run)
{
	for (int t = 0; t < run->threads; t++)
	{
		int64		first = run->redo_first[t];

		if (first < 0)
			continue;
		run->redo_first[t] = -1;
		run_chunk(run, 0, first, run->redo_last[t]);
		if (atomic_load(&run->stop))
			return false;
	}
	return true;
}

/* Registers the callbacks that join workers on the way out, once. */
static void
register_callbacks(void)
{
	static bool registered = false;

	if (registered)
		return;
	RegisterXactCallback(join_at_abort, NULL);
	RegisterSubXactCallback(join_at_subabort, NULL);
	before_shmem_exit(join_at_exit, (Datum) 0);
	registered = true;
}

/*
 * Bytes the background thread faults in between two looks at its stop flag
 * and limit: two huge pages, milliseconds even where the host backs each
 * page on its first touch (about 0.5 GB/s on some virtual machines).
 */
#define MF_PREFAULT_STEP	((Size) 4 * 1024 * 1024)

/*
 * Microseconds the background thread sleeps when it has reached its limit:
 * the first wait, doubled while the limit stays (a backend stalled in a
 * policy's function or on I/O) up to the longest.
 */
#define MF_PREFAULT_WAIT	500
#define MF_PREFAULT_WAIT_MOST	16000

/*
 * The background faulting in: its arrays (each with the element it has
 * faulted in up to), its thread, its limit and its stop flag.
 */
static MfPrefaultArray prefault_arrays[MF_PREFAULT_ARRAYS];
static int64 prefault_done[MF_PREFAULT_ARRAYS];
static int	prefault_n = 0;
static pthread_t prefault_thread;
static bool prefault_running = false;
static atomic_llong prefault_limit_at;
static atomic_bool prefault_halt;

/*
 * Faults in the pages of array a's elements [first, last): from the page
 * holding the first (its other bytes are the array's, or just before it in
 * the same allocation) to the last page wholly inside the array's to.
 * False where the kernel refused (one without MADV_POPULATE_WRITE).
 */
static bool
prefault_elements(const MfPrefaultArray *a, int64 first, int64 last, Size page)
{
#ifdef MADV_POPULATE_WRITE
	uintptr_t	begin = TYPEALIGN_DOWN(page, (uintptr_t) a->base + first * a->element);
	uintptr_t	end = Min(TYPEALIGN(page, (uintptr_t) a->base + last * a->element),
						  TYPEALIGN_DOWN(page, (uintptr_t) a->base + a->to * a->element));

	return end <= begin || madvise((void *) begin, end - begin, MADV_POPULATE_WRITE) == 0;
#else
	return false;
#endif
}

static void *
prefault_main(void *arg)
{
	Size		page = (Size) sysconf(_SC_PAGESIZE);
	useconds_t	wait = MF_PREFAULT_WAIT;

	while (!atomic_load(&prefault_halt))
	{
		int64		limit = atomic_load(&prefault_limit_at);
		int			r;

		/* the first array with elements left below the limit */
		for (r = 0; r < prefault_n; r++)
			if (prefault_done[r] < Min(limit, prefault_arrays[r].to))
				break;
		if (r == prefault_n)
		{
			bool		finished = true;

			for (int a = 0; a < prefault_n; a++)
				finished &= prefault_done[a] >= prefault_arrays[a].to;
			if (finished)
				break;
			usleep(wait);		/* for the backend to raise the limit */
			wait = Min(wait * 2, MF_PREFAULT_WAIT_MOST);
		}
		else
		{
			const MfPrefaultArray *a = &prefault_arrays[r];
			int64		last = Min(Min(limit, a->to),
								   prefault_done[r] + (int64) Max(MF_PREFAULT_STEP / a->element, 1));

			if (!prefault_elements(a, prefault_done[r], last, page))
				break;			/* a kernel without it: the backend faults */
			prefault_done[r] = last;
			wait = MF_PREFAULT_WAIT;
		}
	}
	return NULL;
}

void
mf_prefault(const MfPrefaultArray *arrays, int n, int64 limit)
{
	Assert(n <= MF_PREFAULT_ARRAYS);
	mf_prefault_stop();
	if (mf_thread_count() < 2 || n == 0)
		return;
	register_callbacks();
	prefault_n = n;
	for (int r = 0; r < n; r++)
	{
		prefault_arrays[r] = arrays[r];
		prefault_done[r] = arrays[r].from;
	}
	atomic_store(&prefault_limit_at, (long long) limit);
	atomic_store(&prefault_halt, false);
	prefault_running = start_blocked_thread(&prefault_thread, prefault_main, NULL);
}

void
mf_prefault_limit(int64 limit)
{
	if (prefault_running)
		atomic_store(&prefault_limit_at, (long long) limit);
}

void
mf_prefault_stop(void)
{
	if (!prefault_running)
		return;
	atomic_store(&prefault_halt, true);
	pthread_join(prefault_thread, NULL);
	prefault_running = false;
}

int64
mf_parallel_for(int threads, int64 n, int64 chunk, MfTaskFn fn, MfFeedFn feed,
				void *arg)
{
	Run			run = {0};
	Run		   *outer_current = current_run;
	bool		outer_backend = current_is_backend;

	register_callbacks();
	run.fn = fn;
	run.feed = feed;
	run.arg = arg;
	run.n = n;
	run.chunk = Max(chunk, 1);
	run.threads = Max(threads, 1);
	run.workers = palloc0(sizeof(Worker) * run.threads);
	run.redo_first = palloc(sizeof(int64) * run.threads);
	run.redo_last = palloc(sizeof(int64) * run.threads);
	for (int t = 0; t < run.threads; t++)
		run.redo_first[t] = -1;
	atomic_init(&run.next, (long long) 0);
	atomic_init(&run.finished, (long long) 0);
	atomic_init(&run.ready, (long long) (feed ? 0 : n));
	atomic_init(&run.failed, (long long) INT64_MAX);
	atomic_init(&run.failing, false);
	atomic_init(&run.stop, false);
	atomic_init(&run.pause, false);
	atomic_init(&run.busy, 0);
	run.outer = active_run;
	run.subxact = GetCurrentSubTransactionId();
	active_run = &run;

	for (;;)
	{
		current_run = &run;
		current_is_backend = true;
		if (redo_stopped(&run))
		{
			start_workers(&run);
			PG_TRY();
			{
				run_chunks(&run, 0, true);
			}
			PG_CATCH();
			{
				/* the feeder threw: the workers must be gone before it goes on */
				join_workers(&run, true);
				active_run = run.outer;
				current_run = outer_current;
				current_is_backend = outer_backend;
				PG_RE_THROW();
			}
			PG_END_TRY();
			join_workers(&run, false);
		}
		if (!atomic_load(&run.stop) && (atomic_load(&run.failing) || !atomic_load(&run.pause)))
			break;				/* all tasks done, or every chunk taken before a failure */

		/* stopped or paused for an interrupt: process it (may throw), then go on */
		active_run = run.outer;
		current_run = outer_current;
		current_is_backend = outer_backend;
		CHECK_FOR_INTERRUPTS();
		active_run = &run;
		atomic_store(&run.stop, false);
		atomic_store(&run.pause, false);
	}
	active_run = run.outer;
	current_run = outer_current;
	current_is_backend = outer_backend;
	pfree(run.workers);
	pfree(run.redo_first);
	pfree(run.redo_last);
	return atomic_load(&run.failed) == INT64_MAX ? -1 : atomic_load(&run.failed);
}
