/*-------------------------------------------------------------------------
 *
 * store.h
 *	  Factor rows written into mf_user_factors or mf_item_factors, for
 *	  catalog.c only (every statement on the model tables lives there):
 *	  straight through the table access method's multi-insert and the
 *	  table's indexes while the table is as the extension created it, else
 *	  through an INSERT of array parameters, so that nothing a user added
 *	  to the table (a trigger, a rule, row-level security, a column, a
 *	  Citus shell) is bypassed.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MF_STORE_H
#define MF_STORE_H

#include "mf_ext.h"

#include "utils/array.h"

#include "query.h"

typedef struct MfStoreWriter MfStoreWriter;

/*
 * Starts writing one side's rows of model model_id (k factors a row) into
 * the factor table relid in schema, locked RowExclusiveLock by the caller
 * with the model's row of mf_models (models_relid) written or locked in
 * this transaction: the foreign key holds for every row written.  biases,
 * keys and implicit: whether rows carry a bias, a text key and implicit
 * factors (k numbers; implicit information).  The caller must be
 * connected to SPI (the INSERT path).
 */
extern MfStoreWriter *mf_store_begin(const MfSchema *schema, Oid relid, Oid models_relid,
									 MfSide side, int32 model_id, int k,
									 bool biases, bool keys, bool implicit);

/*
 * Writes one row: id, factors (k numbers), bias (NULL without biases), key
 * (NULL for integer ids), support (the row's distinct partners: items a
 * user rated, users who rated an item) and, for users, the n_rated
 * distinct ids of the items the user rated (sorted); implicit (k numbers,
 * NULL for a writer without them).  Values are copied.
 */
extern void mf_store_row(MfStoreWriter *writer, int64 id, const double *factors,
						 const double *bias, const char *key, int32 support,
						 const int64 *rated, int32 n_rated, const double *implicit);

/*
 * From now on, each batch written reports done plus the writer's rows
 * written so far, of total, as the call's progress in rows ("row",
 * progress.h): the caller's rows before this writer's count in done.
 */
extern void mf_store_report_progress(MfStoreWriter *writer, int64 done, int64 total);

/* Writes what is pending and frees the writer; returns the rows written. */
extern int64 mf_store_end(MfStoreWriter *writer);

/* A one-dimensional array of n fixed-width, no-NULL elements, palloc'd. */
extern ArrayType *mf_flat_array(Oid elemtype, const void *values, int n);

#endif							/* MF_STORE_H */
