/*-------------------------------------------------------------------------
 *
 * distributed.h
 *	  Training next to the shards: mf_train on a hash-distributed Citus
 *	  table runs each half-step of alternating least squares on the
 *	  workers that hold the ratings.
 *
 *	  The coordinator reads the ratings' ids, counts, sum and range (small
 *	  aggregates the workers compute), holds the factors of both sides and
 *	  per half-step sends the fixed side's factors to each worker once (a
 *	  materialized CTE, which Citus broadcasts as an intermediate result).
 *	  The ratings are copied once, into a table distributed by the user
 *	  column and one distributed by the item column; each shard groups its
 *	  ratings by the side being solved, its distribution column, and the
 *	  aggregate mf_als_half_step solves each row there, with the same
 *	  kernel and order as a single node: a row's k factors (and bias) come
 *	  back, not its ratings.  The copies and the model are written in the
 *	  caller's transaction.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MF_DISTRIBUTED_H
#define MF_DISTRIBUTED_H

#include "mf_ext.h"
#include "als.h"
#include "query.h"
#include "ratings.h"
#include "source.h"

/* mf_ext.citus_training: where mf_train solves a distributed source. */
typedef enum MfCitusTraining
{
	MF_CITUS_TRAINING_AUTO,		/* the workers when the options allow it */
	MF_CITUS_TRAINING_WORKERS,	/* the workers, or an error saying why not */
	MF_CITUS_TRAINING_COORDINATOR	/* read the ratings onto the coordinator */
} MfCitusTraining;

extern int	mf_citus_training;

/* A training whose half-steps run on the Citus workers. */
typedef struct MfDistributed MfDistributed;

/*
 * Whether a validated source trains on the workers (mf_ext.citus_training,
 * the source a hash-distributed Citus table, options that the workers
 * solve): the training in cxt, or NULL to read the ratings onto this node.
 * Where the setting is 'auto' and the source is distributed but cannot be
 * trained there, a NOTICE says why; with 'workers', an error (0A000).
 * Needs SPI.
 */
extern MfDistributed *mf_distributed_begin(const MfSchema *schema, const MfSource *source,
										   const MfFitOptions *options, MemoryContext cxt);

/*
 * The ratings' ids, counts and how many rows were skipped, without their
 * values (the by_user and by_item rows are empty): each side's distinct
 * ids as mf_source_read numbers them.  Makes the copies the half-steps
 * read.  A rating double precision does not hold is mf_source_read's
 * error (22000).
 */
extern MfRatings *mf_distributed_read(MfDistributed *dist);

/* A fit of the ratings mf_distributed_read gave, its half-steps solved on the workers. */
extern MfAls *mf_distributed_als(MfDistributed *dist, const MfFitOptions *options);

/*
 * Fills the ratings' by_user rows with each user's rated items (no
 * values), read on the workers: what storing the model needs.
 */
extern void mf_distributed_rated_items(MfDistributed *dist);

/* Drops the copies of the ratings the training made. */
extern void mf_distributed_end(MfDistributed *dist);

#endif							/* MF_DISTRIBUTED_H */
