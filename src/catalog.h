/*-------------------------------------------------------------------------
 *
 * catalog.h
 *	  The model tables, mf_models, mf_user_factors and mf_item_factors:
 *	  every statement on them lives in catalog.c.  A model's row is
 *	  described once, column by column (catalog.c's columns[]), and the
 *	  lists training writes and serving reads are made from that
 *	  description, for this version's tables and for older ones not yet
 *	  updated.
 *
 *	  Every statement runs as the caller (privileges and row-level security
 *	  apply) with search_path = pg_catalog, pg_temp, so that nothing
 *	  another role created in a schema on the caller's path can stand in
 *	  for PostgreSQL's functions and operators.  The caller must be
 *	  connected to SPI.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MF_CATALOG_H
#define MF_CATALOG_H

#include "mf_ext.h"

#include "storage/lockdefs.h"
#include "utils/portal.h"

#include "als.h"
#include "query.h"
#include "ratings.h"

/* A model's row of mf_models. */
typedef struct MfModelRow
{
	int32		model_id;
	const char *name;
	const char *source;			/* schema-qualified relation */
	const char *user_col;
	const char *item_col;
	const char *rating_col;
	MfFitOptions options;		/* how it was trained */
	bool		warm_start;
	Oid			user_key_type;	/* type of ids kept as text keys, or */
	Oid			item_key_type;	/* InvalidOid for integer ids */
	int64		n_users;
	int64		n_items;
	int64		n_ratings;
	int64		skipped_rows;
	double		global_mean;	/* mu, with biases */
	double		rating_min;		/* with options.clip: the training ratings' range */
	double		rating_max;
	MfFitHistory history;		/* per iteration run */
	double		train_rmse;		/* after the last iteration run */
	const char *validation;		/* the validation relation, or NULL */
	double		train_seconds;
	double		load_seconds;	/* reading and indexing the ratings */
	int64		version;		/* from mf_model_version_seq */
	TransactionId row_xmin;		/* the transaction that last wrote the row, and */
	CommandId	row_cid;		/* its raw command id, as mf_catalog_read_model
								 * read them (not on a Citus worker:
								 * InvalidTransactionId) */
	Oid			source_recorded_by; /* the role that set source and columns, or
									 * InvalidOid (read by mf_catalog_lock_model) */
} MfModelRow;

/* The model tables' names. */
#define MF_MODELS_TABLE			"mf_models"
#define MF_USER_FACTORS_TABLE	"mf_user_factors"
#define MF_ITEM_FACTORS_TABLE	"mf_item_factors"
#define MF_MODEL_HISTORY_TABLE	"mf_model_history"

/*
 * objsubids of the advisory locks mf_lock_name takes: "mf" and "mn" in
 * ASCII, apart from the 1 and 2 of pg_advisory_lock's keys.
 */
#define MF_TARGET_NAME_LOCK	0x6d66	/* a batch call's missing target (batch.c) */
#define MF_MODEL_NAME_LOCK	0x6d6e	/* a first training's model name */

/*
 * Holds name in schema (an OID) until the transaction ends against the
 * other calls that lock it with the same kind, waiting for them: an
 * advisory lock (pg_locks: classid the schema's OID, objid a hash of the
 * name, objsubid kind), which only mf_ext takes; two names of the same
 * hash wait for each other.
 */
extern void mf_lock_name(Oid schema, const char *name, uint16 kind);

/*
 * After a user's trigger, rule or policy on the model tables ran: 42501
 * when the current role is no longer role, the one the catalog's
 * statements began as (mf_check_role_kept); the catalog's search_path and
 * jit put back, at a GUC nest level the statements' bracket pops, when its
 * function set others.
 */
extern void mf_catalog_keep_session(Oid role);

/*
 * What on mf_models (models, its relid) other than mf_ext's own could
 * change who a model's source and columns look recorded by: "the trigger
 * \"name\"" for an enabled trigger of a user's (TRIGGER privilege; one
 * named mf_models_provenance is mf_ext's only while it runs the
 * extension's function of that name), "a rule", or NULL.  While there is one, a training records no one and a
 * refit follows no record.  mf_models is locked in lockmode until the
 * transaction ends (ROW EXCLUSIVE, a write's, keeps triggers and rules
 * from being made meanwhile).
 */
extern char *mf_catalog_models_hook(Oid models, LOCKMODE lockmode);

/*
 * Replaces (or creates) the model row->name with row (its version and
 * trained_at are set here) and the factors of als, in the current
 * transaction, the caller's right to write models checked again
 * (checks.h) with the tables locked: the row is upserted (keeping
 * model_id), the factor rows deleted and written again, users with their
 * distinct rated items.  row->model_id is the row mf_catalog_trained_options
 * locked, or 0 when it found none: another row holding the name by now,
 * or none where one was locked (a rename, drop or INSERT since, by another
 * transaction or the call's own statement), is an error (40001).
 * Returns the model_id.
 */
extern int32 mf_catalog_store_model(const MfSchema *schema, const MfModelRow *row,
									const MfRatings *ratings, const MfAls *als);

/* The model tables, opened for serving. */
typedef struct MfModelTables
{
	MfSchema	schema;
	Oid			models;			/* mf_models */
	Oid			users;			/* mf_user_factors */
	Oid			items;			/* mf_item_factors */
	bool		models_rls;		/* row-level security applies to the caller */
	bool		factors_rls;
	Oid			remote_models;	/* on a Citus worker: the coordinator's OID of
								 * mf_models, once the model's row is read */
} MfModelTables;

/*
 * The model tables of the extension in schema, each locked as a SELECT
 * locks it until the transaction ends (so that it is not dropped or
 * altered while answered from) with the invalidations other sessions
 * committed processed, and the caller's right to read them checked as a
 * SELECT of the columns serving reads would check it: schema USAGE, table
 * or column SELECT (42501), row-level security (an error where
 * row_security = off would hide rows).  No row is read.
 */
extern MfModelTables mf_catalog_open_for_reading(const MfSchema *schema);
/*
 * On a Citus worker (schema->remote) nothing is locked or checked here:
 * every read goes to the coordinator as the caller, where its privileges
 * and row-level security apply (mf_catalog_read_model).
 */

/*
 * The relid of the training history table mf_model_history in schema, or
 * InvalidOid where it is not the extension's own (the SQL of a version
 * before 0.5, which keeps no history; a table of that name someone else
 * made is never written or locked).
 */
extern Oid	mf_catalog_history_table(Oid schema);

/*
 * counts[r] = how many distinct partners model model_id holds for ids[r],
 * a row of side (from its training or its last refit): the row's stored
 * support (NULL: 0); -1 where the model has no such row, and for every
 * row of 0.4's tables (no support before ALTER EXTENSION UPDATE).
 * Through SPI (connected by the caller), under a new snapshot: the
 * version the caller's lock waited for.
 */
extern void mf_catalog_partner_counts(const MfSchema *schema, int32 model_id, MfSide side,
									  const int64 *ids, int32 n, int64 *counts);

/*
 * The options model name was trained with, those a retraining keeps when
 * it does not name them (source columns, k, lambda, iterations, seed,
 * double_precision, biases, weighted_lambda, tolerance, feedback, alpha,
 * solver, nonnegative, patience, bias_lambda, lambda_per_rating,
 * implicit_weight, clip: mf_catalog_kept_options), its key types and who
 * recorded its columns (source_recorded_by) and model_id, set in *row;
 * false when there is no such model (row->model_id 0).  The row is locked
 * (FOR UPDATE) until the transaction ends, so that a concurrent retraining
 * waits for this one and then reads what it stored; a row the wait saw
 * renamed or dropped is looked for again, so that a model created or
 * renamed to name meanwhile is the one locked.  Without a model, the name
 * is locked instead (an advisory lock), so that another first training of
 * it waits and then retrains this one's model.  Read as the caller, through SPI (connected by the
 * caller); columns an older version lacks read as it meant them.
 */
extern bool mf_catalog_trained_options(const MfSchema *schema, const char *name,
									   MfModelRow *row);

/*
 * The options a retraining keeps, in mf_models' order: their names (each
 * also mf_train's argument) in names and their values in row as text in
 * values (NULL where the column would be NULL: alpha of an explicit
 * model); returns their number, at most MF_KEPT_OPTIONS.
 */
#define MF_KEPT_OPTIONS	20
extern int	mf_catalog_kept_options(const MfModelRow *row, const char **names, char **values);

/*
 * The served columns of the model with that model_id or (name not NULL)
 * name, read as the caller under the active snapshot; an error (42704)
 * when there is none, and (XX001) for a row no training writes.  On a
 * Citus worker (tables->schema.remote) read on the coordinator, which
 * also sets tables->models_rls and factors_rls as they apply there and
 * tables->remote_models, checks the caller may read the factor tables'
 * served columns there, and raises 0A000 when the coordinator backend
 * whose distributed query this worker runs a part of has written or
 * locked the model tables (uncommitted, so invisible here).  row_xmin and
 * row_cid are read from the table itself, whatever the caller's column
 * privileges: the cache tells versions apart by them too, since a
 * restored dump sets mf_model_version_seq back and a version number comes
 * again.
 */
extern MfModelRow mf_catalog_read_model(MfModelTables *tables, int32 model_id,
										const text *name);

/*
 * With implicit information (row's implicit_weight > 0), which serving
 * loads: 42501 unless the caller may read both factor tables'
 * implicit_factors (column or table SELECT), here or on the coordinator.
 */
extern void mf_catalog_check_implicit_read(const MfModelTables *tables,
										   const MfModelRow *row);

/*
 * Locks the row of model found (FOR UPDATE) and reads what a refit needs:
 * source, columns, version, key types and who recorded the source and
 * columns (InvalidOid in tables of versions before 0.5, or rows stored
 * before).  An error (42704) naming the model and function when it was
 * dropped since it was found, or when by_name (the call named it) it was
 * renamed since; (XX001) for a NULL source or column.
 */
extern MfModelRow mf_catalog_lock_model(const MfSchema *schema, const MfModelRow *found,
										bool by_name, const char *function);

/*
 * One side's factor rows of the model of row, in id order: ids[], factors
 * (row->options.k doubles each), bias (with biases, else NULL), keys (in
 * cxt; NULL for integer ids) and implicit factors (k doubles each; NULL:
 * not read), for capacity rows, the model row's n_users or n_items.
 * Returns how many there were: fewer only where a row-level security
 * policy on the table applies to the role.  Errors (XX001): more rows
 * than capacity, fewer without such a policy, a NULL or non-finite value,
 * factors of another length.
 */
extern int32 mf_catalog_load_side(const MfSchema *schema, const MfModelRow *row,
								  MfSide side, int64 capacity, int64 *ids, double *factors,
								  double *bias, char **keys, double *implicit,
								  MemoryContext cxt);

/*
 * Calls fn with the id and the support (distinct partners; 0 for NULL) of
 * every row of one side of model model_id, read as the caller (its
 * privileges on the column apply: 42501 without them, naming support and
 * the arguments that read it), in no order.  The caller must be connected
 * to SPI.
 */
typedef void (*MfSupportFn) (int64 id, int32 support, void *arg);
extern void mf_catalog_scan_supports(const MfSchema *schema, int32 model_id, MfSide side,
									 MfSupportFn fn, void *arg);

/*
 * Overwrites als's item factors (and biases) with those of the stored
 * model named model_name for the items ratings has (by id, or by key):
 * a warm start.  Returns false when there is no such model; 40001 when
 * its k or its kind of item ids is no longer the one the caller checked
 * before reading (train.c): retrained since;
 * a NOTICE when it has none of ratings' items (all stay seeded random).
 */
extern bool mf_catalog_warm_start(const MfSchema *schema, const char *model_name,
								  const MfFitOptions *options, const MfRatings *ratings,
								  MfAls *als);

/*
 * Replaces (or adds) the rows of the given ids (and text keys, or NULL) of
 * one side of model model_id, which the caller has locked (a refit by
 * function; its right to write models checked again with the tables locked):
 * factors n x k, bias (or NULL), implicit factors n x k (or NULL),
 * support (n: each row's distinct partners) and for users rated_start
 * (n + 1 offsets) into rated, their rated_items.  Then gives the model a
 * new version, so that every cache reloads it, and counts its users and
 * items again.
 */
extern void mf_catalog_replace_rows(const MfSchema *schema, const char *function,
									int32 model_id, MfSide side,
									int k, const int64 *ids, char *const *keys, int32 n,
									const double *factors, const double *bias,
									const double *implicit, const int32 *support,
									const int32 *rated_start, const int64 *rated);

/*
 * Adds items[p] to the rated_items of user users[p] of model model_id (the
 * n pairs in any order; users the model lacks are skipped), keeping each
 * array sorted and distinct; for a refit of items, whose tables the
 * caller has locked for writing (mf_catalog_replace_rows).
 */
extern void mf_catalog_add_rated_items(const MfSchema *schema, int32 model_id,
									   const int64 *users, const int64 *items, int64 n);

/*
 * The ids of the items user_id, a user of the model's factors the caller
 * holds, rated in the training data (rated_items of mf_user_factors), in
 * cxt: *count of them.  An error (XX001) for an array that is not a
 * bigint[] without NULLs, and for a row that is gone
 * (mf_catalog_user_rows_gone; on a Citus worker, none).
 */
extern int64 *mf_catalog_rated_items(const MfSchema *schema, int32 model_id,
									 int64 user_id, int *count, MemoryContext cxt);

/*
 * The error (XX001) for rows of mf_user_factors gone while this session
 * holds the model's factors (which: "the row of user_id 5", "3 of its 40
 * users' rows"): deleted by hand since it read them, and their rated items
 * with them.
 */
extern void mf_catalog_user_rows_gone(int32 model_id, const char *which) pg_attribute_noreturn();

/*
 * That error where a pass over every user's rated items (MfRatedFn) found
 * users_read of the n_users users whose factors this session holds.
 */
extern void mf_catalog_check_users_read(int32 model_id, int64 users_read, int32 n_users);

/*
 * Every user's rated items, in user id order, for the batch: a cursor.
 * Not on a Citus worker (0A000: the batch runs on the coordinator).
 */
extern Portal mf_catalog_open_rated_items(const MfSchema *schema, int32 model_id);

/*
 * The next users (at most max) of a rated-items cursor: fn gets each
 * user's id and rated items (valid during the call; NULL, count 0, where
 * rated_items is NULL, so that every row is seen).  Returns how many were
 * fetched; 0 at the end.
 */
typedef void (*MfRatedFn) (int64 user_id, const int64 *items, int count, void *arg);
extern uint64 mf_catalog_fetch_rated_items(Portal cursor, int32 model_id, int max,
										   MfRatedFn fn, void *arg);

/*
 * Every user's rated items in one pass (here through SPI, or on the
 * coordinator from a Citus worker): fn as above, in no particular order.
 */
extern void mf_catalog_scan_rated_items(const MfSchema *schema, int32 model_id,
										MfRatedFn fn, void *arg);

/*
 * The rated items of the n_users users listed, as committed now (a new
 * snapshot under READ COMMITTED, not the statement's, which predates the
 * wait for the model's lock; and what this transaction wrote): for a
 * writer holding the model's row.  fn as above, in no particular order.
 */
extern void mf_catalog_read_rated_items_now(const MfSchema *schema, int32 model_id,
											const int64 *users, int n_users,
											MfRatedFn fn, void *arg);

/*
 * Raises, for the current role, the error that mf_catalog_scan_rated_items'
 * SELECT would raise for want of privileges (42501 with a hint; its DETAIL
 * says what_reads the column, e.g. "mf_evaluate's ranking", and its hint
 * offers alternative, e.g. "pass exclude_rated := false": NULL for those
 * of exclude_rated).  Returns
 * true when that SELECT would see every row of a model; false where
 * row-level security on mf_user_factors applies to the caller, and on a
 * Citus worker (the read goes to the coordinator; nothing checked here).
 */
extern bool mf_catalog_check_rated_items_read(const MfSchema *schema, const char *what_reads,
											  const char *alternative);

#endif							/* MF_CATALOG_H */
