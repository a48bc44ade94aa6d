/*-------------------------------------------------------------------------
 *
 * query.h
 *	  Running queries through SPI: reading their rows in batches, and
 *	  checking that the columns a query returned are of the types the
 *	  caller converts them by; and the extension's schema, resolved once
 *	  per call, for the queries on its tables (catalog.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef MF_QUERY_H
#define MF_QUERY_H

#include "mf_ext.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "utils/relcache.h"

/*
 * The schema mf_ext is installed in: the schema of the SQL function being
 * called, since the extension is not relocatable.
 */
typedef struct MfSchema
{
	Oid			oid;
	const char *quoted;			/* its name, quoted for SQL text */
	bool		remote;			/* a Citus worker: serving reads the coordinator's
								 * model tables, and nothing writes them (remote.h) */
} MfSchema;

extern MfSchema mf_schema_of(FunctionCallInfo fcinfo);

/*
 * Raises an error (55000) unless columns attnums[0 .. n) of desc (1 .. n
 * when attnums is NULL) exist and have the types types[0 .. n) (or
 * domains over them): a datum is only ever converted by the type of the
 * descriptor it came with, never by one decided before the relation was
 * read (it may have changed since).  what names the relation read.
 */
extern void mf_check_column_types(TupleDesc desc, const AttrNumber *attnums,
								  const Oid *types, int n, const char *what);

/*
 * Runs a read-only query (nargs parameters) and calls row_fn on each row
 * as the executor produces it: no batch of rows is held, whatever their
 * width, and interrupts are processed as the executor runs.  The query's
 * n_columns columns must have the types types[] (checked once, on the
 * result's descriptor).  What row_fn allocates in the current memory
 * context lasts until the next row; what it keeps must go to a context of
 * its own.  The caller must be connected to SPI.
 */
typedef void (*MfRowFn) (TupleTableSlot *slot, void *arg);
extern void mf_spi_scan(const char *query, int nargs, Oid *argtypes,
						Datum *args, const Oid *types, int n_columns,
						const char *what, MfRowFn row_fn, void *arg);

/*
 * mf_spi_scan with a new snapshot, which sees what the caller's
 * transaction wrote before it (SPI's read-write mode): for a query after
 * the call's own writes (Citus runs the shards this node holds in this
 * backend, under the query's snapshot).
 */
extern void mf_spi_scan_fresh(const char *query, int nargs, Oid *argtypes,
							  Datum *args, const Oid *types, int n_columns,
							  const char *what, MfRowFn row_fn, void *arg);

/*
 * Prepares query (nargs parameters of types argtypes), one statement: its
 * parse analysis and rewriting lock what it names (a view's tables, the
 * tables a row-level security policy reads).  The caller must be
 * connected to SPI; the statement lasts until SPI_finish.
 */
extern SPIPlanPtr mf_spi_prepare(const char *query, int nargs, Oid *argtypes);

/*
 * Plans a statement mf_spi_prepare prepared, with the values args of its
 * parameters, as running it would (a custom plan, whatever
 * plan_cache_mode says, as for a one-shot query): planning locks the
 * partitions the values leave.  The locks are held until the transaction
 * ends; a statement without parameters keeps the plan for
 * mf_spi_scan_prepared, which revalidates nothing (an SPI_prepare'd plan
 * is not invalidated): plan again after any invalidation that may concern
 * it.  Returns whether row-level security applies to what the plan reads,
 * a view's relations included, for the role each is read as.
 */
extern bool mf_spi_plan_locked(SPIPlanPtr plan, int nargs, Oid *argtypes, Datum *args);

/*
 * mf_spi_scan of a statement mf_spi_prepare prepared and
 * mf_spi_plan_locked planned, with the same values.
 */
extern void mf_spi_scan_prepared(SPIPlanPtr plan, int nargs, Oid *argtypes, Datum *args,
								 const Oid *types, int n_columns, const char *what,
								 MfRowFn row_fn, void *arg);

/*
 * Whether rel has rules now: its rules as the relation cache read them
 * from pg_rewrite, not pg_class.relhasrules, which stays true after the
 * last rule is dropped until a VACUUM of the table clears it.
 */
extern bool mf_relation_has_rules(Relation rel);

#endif							/* MF_QUERY_H */
