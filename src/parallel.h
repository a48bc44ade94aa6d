/*-------------------------------------------------------------------------
 *
 * parallel.h
 *	  Parallel loops over a range of tasks on the backend's thread and
 *	  signal-blocked worker threads, with PostgreSQL's interrupts handled
 *	  on the backend's thread between its chunks (parallel.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef MF_PARALLEL_H
#define MF_PARALLEL_H

#include "mf_ext.h"

/*
 * A task function: runs tasks [first, last) on thread thread (0 .. threads
 * - 1; 0 is the backend's) and returns MF_TASK_DONE, the index of the
 * first of them that failed (the run then takes no new chunk; the chunks
 * before it finish, since one may hold a smaller failure, those after it
 * stop), or mf_task_stopped(index) when it
 * stopped at that task, without having written any of its results,
 * because mf_parallel_stopping() said so: tasks [index, last) are run
 * again, from the start, once the interrupt has been processed.  It runs
 * in worker threads: plain C only, no PostgreSQL calls, no palloc, no
 * elog.
 */
typedef int64 (*MfTaskFn) (void *arg, int thread, int64 first, int64 last);

#define MF_TASK_DONE	(-1)

static inline int64
mf_task_stopped(int64 index)
{
	return -2 - index;
}

/*
 * Whether the running task should stop now: the run is stopping, a task
 * before its chunk has failed, or (on the backend's thread) an interrupt
 * waits to be processed.  A task whose single step can take long (a row
 * of millions of ratings) asks between parts of it.  Plain C, for any
 * thread.  Outside a run (only the backend's thread works outside one: a
 * Citus worker solving a row) it says whether a cancel or termination
 * waits, so that such a row stops half-way too; its caller then processes
 * the interrupt.
 */
extern bool mf_parallel_stopping(void);

/*
 * A feeder: runs on the backend's thread between its chunks, may use
 * PostgreSQL (interrupts are processed as anywhere: an error stops and
 * joins the workers first), and returns how many tasks are ready (never
 * fewer than before); tasks are taken in order and none past that.  It
 * must make progress: the run waits on it.  The workers may still run
 * while a FATAL in it exits, until the transaction's abort callback joins
 * them, after the abort has freed the call's memory (the active portal's):
 * what a fed run's tasks read must be in TopTransactionContext or longer.
 */
typedef int64 (*MfFeedFn) (void *arg);

/*
 * Threads a parallel run uses: mf_ext.threads (0: every core this backend
 * may run on), at most as many as OpenBLAS allows callers.
 */
extern int	mf_thread_count(void);

/*
 * Runs fn over tasks [0, n) in chunks of chunk on threads threads, with
 * feed (NULL: every task is ready at once).  Returns -1 or the smallest
 * failed task, whatever threads is (chunks are taken in order, and every
 * one taken before a failure is finished).  An interrupt is processed,
 * and an error of feed goes on up, only after every worker has been
 * joined; so is a transaction's abort on the way out of a FATAL.  Runs
 * may nest (a feeder's SQL may start one).
 */
extern int64 mf_parallel_for(int threads, int64 n, int64 chunk, MfTaskFn fn,
							 MfFeedFn feed, void *arg);

/* Arrays one mf_prefault takes at the most. */
#define MF_PREFAULT_ARRAYS	5

/* An array whose elements [from, to) are to be faulted in (mf_prefault). */
typedef struct MfPrefaultArray
{
	void	   *base;			/* element 0 */
	Size		element;		/* bytes an element */
	int64		from;
	int64		to;
} MfPrefaultArray;

/*
 * Faults in the pages of the elements [from, to) of n arrays (n at most
 * MF_PREFAULT_ARRAYS), those below limit only, on a background thread,
 * while the backend's thread goes on: memory the backend is about to fill
 * for the first time, whose page faults (the kernel zeroing each page, and
 * on some virtual machines the host backing it) would otherwise stall the
 * backend's thread.  The arrays are taken in order: the first one's
 * elements below the limit before the second's.  The thread has every
 * signal blocked and only asks the kernel (madvise MADV_POPULATE_WRITE,
 * Linux 5.14 on; elsewhere nothing happens), a few megabytes at a time;
 * the contents do not change, so the backend may read and write the
 * arrays meanwhile.  Stops the faulting in asked before, if any, first.
 * Nothing when mf_thread_count() is 1: the second core is what it uses.
 * The transaction's abort, a subtransaction's and the backend's exit stop
 * it as they join workers, but the memory of the call that failed may be
 * gone by then: the caller stops it too, from its memory's reset callback.
 */
extern void mf_prefault(const MfPrefaultArray *arrays, int n, int64 limit);

/*
 * Lets the background faulting in, if any, go on up to element limit of
 * its arrays (it waits there): the caller keeps it a bounded way ahead of
 * what it fills, so that a count that was expected but never comes (a
 * stale estimate) does not make the memory resident.  An atomic store.
 */
extern void mf_prefault_limit(int64 limit);

/*
 * Stops the background faulting in, if any (within a few megabytes),
 * and joins its thread.  Call it before memory it may be faulting in is
 * freed or moved.
 */
extern void mf_prefault_stop(void);

#endif							/* MF_PARALLEL_H */
