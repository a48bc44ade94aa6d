/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Every statement on the model tables (catalog.h).
 *
 *	  A model is replaced inside the caller's transaction: its row is
 *	  upserted (which locks it and keeps its model_id), its factor rows
 *	  deleted and written again, and its version taken from a sequence.
 *	  Other sessions keep seeing the old rows until the transaction
 *	  commits; an error rolls everything back.
 *
 *	  mf_models' columns are described once, in columns[]: the list a
 *	  training writes and the list serving reads (for tables of older
 *	  versions too, whose missing columns read as the value those versions
 *	  meant) are made from it.
 *
 *-------------------------------------------------------------------------
 */
#include "catalog.h"
#include "checks.h"
#include "idmap.h"
#include "remote.h"
#include "store.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "jit/jit.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/acl.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"

/* Factor rows fetched from the trained model per call, when storing it. */
#define MF_STORE_BLOCK_ROWS		1024

/* (user, item) pairs per statement adding items to rated_items. */
#define MF_RATED_PAIRS_PER_UPDATE	(1 << 20)

/*
 * The catalog's statements run between these two, with search_path =
 * pg_catalog, pg_temp, whatever the caller's path, and without JIT (a
 * model's factor rows make the load query costly enough to be compiled,
 * which took 0.2 s and held off a cancel meanwhile); an error restores
 * both too.  After each write that runs a user's code (execute_model_write,
 * the store's INSERTs) and at the end, mf_catalog_keep_session: a role a
 * user's trigger, rule or policy on the model tables set meanwhile is an
 * error (the call would go on, and stamp its model's row, as another
 * role); a search_path (or jit) it set is put back for the call's later
 * statements (a user's operators would take the place of PostgreSQL's).
 */
#define MF_INTERNAL_SEARCH_PATH "pg_catalog, pg_temp"

typedef struct InternalSql
{
	int			nest_level;		/* of the GUCs set */
	Oid			role;			/* the current role at the start */
} InternalSql;

/* The catalog's settings, saved at the current nest level. */
static void
set_internal_settings(void)
{
	(void) set_config_option("search_path", MF_INTERNAL_SEARCH_PATH, PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("jit", "off", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
}

static InternalSql
internal_sql_begin(void)
{
	InternalSql sql = {NewGUCNestLevel(), GetUserId()};

	set_internal_settings();
	return sql;
}

void
mf_catalog_keep_session(Oid role)
{
	mf_check_role_kept(role, "a trigger, rule or policy of the model tables",
					   "A function that a trigger, rule or row-level security policy of mf_models, mf_model_history, mf_user_factors or mf_item_factors ran set the role; mf_ext checks privileges, and records who trained, as the role that called it.",
					   "Drop that trigger, rule or policy, or have its function leave the role alone: the models as they were before this call are kept.");

	/*
	 * Saved again at a nest level of their own, which the bracket's end
	 * pops with its own: the session then has what the caller had, or what
	 * the user's function set, as after any statement that ran it
	 */
	if (strcmp(namespace_search_path, MF_INTERNAL_SEARCH_PATH) != 0 || jit_enabled)
	{
		(void) NewGUCNestLevel();
		set_internal_settings();
	}
}

/*
 * SPI_execute_with_args of a write (query) to the model tables, whose
 * triggers may run a user's code, between sql's begin and end: the
 * session kept after it (mf_catalog_keep_session), before the next
 * statement runs.
 */
static int
execute_model_write(InternalSql sql, const char *query, int n, Oid *argtypes, Datum *args,
					const char *nulls)
{
	int			result = SPI_execute_with_args(query, n, argtypes, args, nulls, false, 0);

	mf_catalog_keep_session(sql.role);
	return result;
}

static void
internal_sql_end(InternalSql sql)
{
	mf_catalog_keep_session(sql.role);
	AtEOXact_GUC(true, sql.nest_level);
}

/*
 * A statement prepared once per backend and kept (SPI_keepplan), prepared
 * again whenever its text changes (another schema, another version's
 * columns).
 */
typedef struct SavedPlan
{
	SPIPlanPtr	plan;
	char	   *query;			/* in TopMemoryContext */
} SavedPlan;

static SPIPlanPtr
saved_plan(SavedPlan *saved, const char *query, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan;

	if (saved->plan != NULL && strcmp(saved->query, query) == 0)
		return saved->plan;
	plan = SPI_prepare(query, nargs, argtypes);
	if (plan == NULL || SPI_keepplan(plan) != 0)
		elog(ERROR, "could not prepare query: %s", query);
	if (saved->plan != NULL)
	{
		SPI_freeplan(saved->plan);
		pfree(saved->query);
	}
	saved->plan = plan;
	saved->query = MemoryContextStrdup(TopMemoryContext, query);
	return plan;
}

/* How a column of mf_models holds a field of MfModelRow. */
typedef enum ColumnKind
{
	COL_INT4,
	COL_INT8,
	COL_FLOAT8,
	COL_OPTIONAL_FLOAT8,		/* double; negative (none) is NULL */
	COL_BOOL,
	COL_TEXT,					/* const char *; NULL is NULL */
	COL_NAME,					/* const char *, as name */
	COL_REGTYPE,				/* Oid; InvalidOid is NULL */
	COL_HISTORY,				/* double * of history.iterations_run; NULL is NULL */
	COL_FEEDBACK,				/* options.implicit: 'explicit' or 'implicit' */
	COL_SOLVER,					/* options.conjugate_gradient, nonnegative:
								 * 'cholesky', 'cg' or 'nnls' */
	COL_PRECISION				/* options.single, as double_precision */
} ColumnKind;

/*
 * Read by serving (the cache), written by training, may be NULL, kept by a
 * retraining that does not name it (an argument of mf_train of the same
 * name).
 */
#define SERVED		0x1
#define WRITTEN		0x2
#define NULLABLE	0x4
#define KEPT		0x8
#define COMPARED	0x10		/* read for a retraining to compare, not kept */

/* A column of mf_models. */
typedef struct CatalogColumn
{
	const char *name;
	ColumnKind	kind;
	size_t		offset;			/* of the field in MfModelRow */
	int			use;			/* SERVED, WRITTEN, NULLABLE, KEPT, COMPARED */
	const char *missing;		/* its value in tables of versions before it */
	int			null_unless;	/* offset of a bool: NULL unless it is set; or -1 */
} CatalogColumn;

#define FIELD(f) offsetof(MfModelRow, f)
#define OPTION(f) (offsetof(MfModelRow, options) + offsetof(MfFitOptions, f))

/*
 * mf_models' columns, in the order training writes them.  A new training
 * option: one line here (with the literal older tables read for it), a
 * field of MfFitOptions, its check, and its argument in the SQL.
 */
static const CatalogColumn columns[] = {
	{"model_id", COL_INT4, FIELD(model_id), SERVED, NULL, -1},
	{"name", COL_TEXT, FIELD(name), SERVED, NULL, -1},
	{"version", COL_INT8, FIELD(version), SERVED, NULL, -1},
	{"source", COL_TEXT, FIELD(source), SERVED | WRITTEN, NULL, -1},
	{"user_col", COL_NAME, FIELD(user_col), SERVED | WRITTEN | KEPT, NULL, -1},
	{"item_col", COL_NAME, FIELD(item_col), SERVED | WRITTEN | KEPT, NULL, -1},
	{"rating_col", COL_NAME, FIELD(rating_col), SERVED | WRITTEN | KEPT, NULL, -1},
	{"k", COL_INT4, OPTION(k), SERVED | WRITTEN | KEPT, NULL, -1},
	{"lambda", COL_FLOAT8, OPTION(lambda), SERVED | WRITTEN | KEPT, NULL, -1},
	{"iterations", COL_INT4, OPTION(iterations), WRITTEN | KEPT, NULL, -1},
	{"seed", COL_INT4, OPTION(seed), WRITTEN | KEPT, NULL, -1},
	{"warm_start", COL_BOOL, FIELD(warm_start), WRITTEN, NULL, -1},
	{"n_users", COL_INT8, FIELD(n_users), SERVED | WRITTEN, NULL, -1},
	{"n_items", COL_INT8, FIELD(n_items), SERVED | WRITTEN, NULL, -1},
	{"n_ratings", COL_INT8, FIELD(n_ratings), WRITTEN, NULL, -1},
	{"skipped_rows", COL_INT8, FIELD(skipped_rows), WRITTEN, NULL, -1},
	{"loss", COL_HISTORY, FIELD(history.loss), WRITTEN, NULL, -1},
	{"train_rmse", COL_FLOAT8, FIELD(train_rmse), WRITTEN, NULL, -1},
	{"train_seconds", COL_FLOAT8, FIELD(train_seconds), WRITTEN, NULL, -1},
	{"double_precision", COL_PRECISION, OPTION(single), SERVED | WRITTEN | KEPT, "true", -1},
	{"load_seconds", COL_FLOAT8, FIELD(load_seconds), WRITTEN, NULL, -1},
	{"iteration_seconds", COL_HISTORY, FIELD(history.seconds), WRITTEN, NULL, -1},
	{"biases", COL_BOOL, OPTION(biases), SERVED | WRITTEN | KEPT, "false", -1},
	{"global_mean", COL_FLOAT8, FIELD(global_mean), SERVED | WRITTEN | NULLABLE, "NULL::float8", OPTION(biases)},
	{"weighted_lambda", COL_BOOL, OPTION(weighted_lambda), SERVED | WRITTEN | KEPT, "false", -1},
	{"tolerance", COL_FLOAT8, OPTION(tolerance), WRITTEN | KEPT, NULL, -1},
	{"iterations_run", COL_INT4, FIELD(history.iterations_run), WRITTEN, NULL, -1},
	{"train_rmse_history", COL_HISTORY, FIELD(history.train_rmse), WRITTEN, NULL, -1},
	{"validation", COL_TEXT, FIELD(validation), WRITTEN | NULLABLE, NULL, -1},
	{"validation_rmse", COL_HISTORY, FIELD(history.validation_rmse), WRITTEN | NULLABLE, NULL, -1},
	{"feedback", COL_FEEDBACK, OPTION(implicit), SERVED | WRITTEN | KEPT, "'explicit'::text", -1},
	{"alpha", COL_FLOAT8, OPTION(alpha), SERVED | WRITTEN | NULLABLE | KEPT, "NULL::float8", OPTION(implicit)},
	{"solver", COL_SOLVER, OPTION(conjugate_gradient), SERVED | WRITTEN | KEPT, "'cholesky'::text", -1},
	{"nonnegative", COL_BOOL, OPTION(nonnegative), SERVED | WRITTEN | KEPT, "false", -1},
	{"user_key_type", COL_REGTYPE, FIELD(user_key_type), SERVED | WRITTEN | NULLABLE | COMPARED, "NULL::regtype", -1},
	{"item_key_type", COL_REGTYPE, FIELD(item_key_type), SERVED | WRITTEN | NULLABLE | COMPARED, "NULL::regtype", -1},
	{"patience", COL_INT4, OPTION(patience), WRITTEN | KEPT, "0", -1},
	{"best_iteration", COL_INT4, FIELD(history.kept_iteration), WRITTEN | NULLABLE, "NULL::int4", FIELD(history.kept_best)},
	{"bias_lambda", COL_OPTIONAL_FLOAT8, OPTION(bias_lambda), SERVED | WRITTEN | NULLABLE | KEPT, "NULL::float8", -1},
	{"lambda_per_rating", COL_FLOAT8, OPTION(lambda_per_rating), SERVED | WRITTEN | KEPT, "0::float8", -1},
	{"implicit_weight", COL_FLOAT8, OPTION(implicit_weight), SERVED | WRITTEN | KEPT, "0::float8", -1},
	{"clip", COL_BOOL, OPTION(clip), SERVED | WRITTEN | KEPT, "false", -1},
	{"rating_min", COL_FLOAT8, FIELD(rating_min), SERVED | WRITTEN | NULLABLE, "NULL::float8", OPTION(clip)},
	{"rating_max", COL_FLOAT8, FIELD(rating_max), SERVED | WRITTEN | NULLABLE, "NULL::float8", OPTION(clip)},
};

/* The SQL type of a column of kind. */
static Oid
column_type(ColumnKind kind)
{
	switch (kind)
	{
		case COL_INT4:
			return INT4OID;
		case COL_INT8:
			return INT8OID;
		case COL_FLOAT8:
		case COL_OPTIONAL_FLOAT8:
			return FLOAT8OID;
		case COL_BOOL:
		case COL_PRECISION:
			return BOOLOID;
		case COL_TEXT:
		case COL_FEEDBACK:
		case COL_SOLVER:
			return TEXTOID;
		case COL_NAME:
			return NAMEOID;
		case COL_REGTYPE:
			return REGTYPEOID;
		case COL_HISTORY:
			return FLOAT8ARRAYOID;
	}
	return InvalidOid;			/* not reached */
}

/* The value of column column of row, as a parameter; *isnull for NULL. */
static Datum
column_value(const CatalogColumn *column, const MfModelRow *row, bool *isnull)
{
	const char *field = (const char *) row + column->offset;
	const MfFitOptions *options = &row->options;

	*isnull = column->null_unless >= 0 &&
		!*(const bool *) ((const char *) row + column->null_unless);
	if (*isnull)
		return (Datum) 0;
	switch (column->kind)
	{
		case COL_INT4:
			return Int32GetDatum(*(const int32 *) field);
		case COL_INT8:
			return Int64GetDatum(*(const int64 *) field);
		case COL_FLOAT8:
			return Float8GetDatum(*(const double *) field);
		case COL_OPTIONAL_FLOAT8:
			*isnull = *(const double *) field < 0;
			return Float8GetDatum(*(const double *) field);
		case COL_BOOL:
			return BoolGetDatum(*(const bool *) field);
		case COL_PRECISION:
			return BoolGetDatum(!*(const bool *) field);
		case COL_TEXT:
			*isnull = *(char *const *) field == NULL;
			return *isnull ? (Datum) 0 : CStringGetTextDatum(*(char *const *) field);
		case COL_NAME:
			return DirectFunctionCall1(namein, CStringGetDatum(*(char *const *) field));
		case COL_REGTYPE:
			*isnull = !OidIsValid(*(const Oid *) field);
			return ObjectIdGetDatum(*(const Oid *) field);
		case COL_HISTORY:
			*isnull = *(double *const *) field == NULL;
			return *isnull ? (Datum) 0
				: PointerGetDatum(mf_flat_array(FLOAT8OID, *(double *const *) field,
											 row->history.iterations_run));
		case COL_FEEDBACK:
			return CStringGetTextDatum(options->implicit ? "implicit" : "explicit");
		case COL_SOLVER:
			return CStringGetTextDatum(options->nonnegative ? "nnls"
									   : options->conjugate_gradient ? "cg" : "cholesky");
	}
	return (Datum) 0;			/* not reached */
}

/*
 * Sets the field of column of row from value (NULL: the field's zero, or
 * NULL pointer).
 */
static void
set_column(const CatalogColumn *column, MfModelRow *row, Datum value, bool isnull)
{
	char	   *field = (char *) row + column->offset;

	switch (column->kind)
	{
		case COL_INT4:
			*(int32 *) field = isnull ? 0 : DatumGetInt32(value);
			break;
		case COL_INT8:
			*(int64 *) field = isnull ? 0 : DatumGetInt64(value);
			break;
		case COL_FLOAT8:
			*(double *) field = isnull ? 0.0 : DatumGetFloat8(value);
			break;
		case COL_OPTIONAL_FLOAT8:
			*(double *) field = isnull ? -1.0 : DatumGetFloat8(value);
			break;
		case COL_BOOL:
			*(bool *) field = !isnull && DatumGetBool(value);
			break;
		case COL_PRECISION:
			*(bool *) field = isnull || !DatumGetBool(value);
			break;
		case COL_TEXT:
			*(char **) field = isnull ? NULL : TextDatumGetCString(value);
			break;
		case COL_NAME:
			*(char **) field = isnull ? NULL : pstrdup(NameStr(*DatumGetName(value)));
			break;
		case COL_REGTYPE:
			*(Oid *) field = isnull ? InvalidOid : DatumGetObjectId(value);
			break;
		case COL_HISTORY:
			*(double **) field = NULL;	/* never served */
			break;
		case COL_FEEDBACK:
			row->options.implicit = !isnull &&
				strcmp(TextDatumGetCString(value), "implicit") == 0;
			break;
		case COL_SOLVER:
			row->options.conjugate_gradient = !isnull &&
				strcmp(TextDatumGetCString(value), "cg") == 0;
			break;
	}
}

/*
 * A read of the model tables for serving (mf_spi_scan's arguments): here,
 * or on the coordinator from a Citus worker.
 */
static void
serving_scan(const MfSchema *schema, const char *query, int nargs, Oid *argtypes,
			 Datum *args, const Oid *types, int n_columns, const char *what,
			 MfRowFn row_fn, void *arg)
{
	if (schema->remote)
		mf_remote_scan(query, nargs, argtypes, args, types, n_columns, what, row_fn, arg);
	else
		mf_spi_scan(query, nargs, argtypes, args, types, n_columns, what, row_fn, arg);
}

/* Raises the error for a stored model row that no training writes. */
static void
corrupt_row(const MfModelRow *row, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("the row of model %d in mf_models is not valid", row->model_id),
			 errdetail("%s", detail),
			 errhint("Retrain the model with mf_train (naming any option the detail names: a retraining keeps its last options), drop it with mf_drop_model, or restore mf_models from a dump.")));
}

/* What serving relies on in a model's row (hand edits aside). */
static void
check_served_row(const MfModelRow *row, bool mean_null)
{
	const MfFitOptions *options = &row->options;

	if (options->k < 0 || options->k > MF_MAX_K)
		corrupt_row(row, psprintf("k = %d is outside 0 to %d.", options->k, MF_MAX_K));
	if (options->k == 0 && !options->biases)
		corrupt_row(row, "k = 0 without biases: the model predicts nothing.");
	if (row->n_users < 0 || row->n_users > PG_INT32_MAX ||
		row->n_items < 0 || row->n_items > PG_INT32_MAX)
		corrupt_row(row, psprintf("n_users = " INT64_FORMAT " and n_items = " INT64_FORMAT " must be between 0 and %d.",
								  row->n_users, row->n_items, PG_INT32_MAX));
	if (options->biases && (mean_null || !isfinite(row->global_mean)))
		corrupt_row(row, "It has biases but no finite global_mean.");
	if (!(options->lambda >= 0) || isinf(options->lambda))
		corrupt_row(row, psprintf("lambda = %g is not a finite number >= 0.", options->lambda));
	if (options->implicit && !(options->alpha > 0 && isfinite(options->alpha)))
		corrupt_row(row, psprintf("alpha = %g of an implicit-feedback model is not a finite number > 0.",
								  options->alpha));
	if (!(options->lambda_per_rating >= 0) || isinf(options->lambda_per_rating))
		corrupt_row(row, psprintf("lambda_per_rating = %g is not a finite number >= 0.",
								  options->lambda_per_rating));
	if (!(options->bias_lambda >= 0 || options->bias_lambda == -1) || isinf(options->bias_lambda))
		corrupt_row(row, psprintf("bias_lambda = %g is not NULL or a finite number >= 0.",
								  options->bias_lambda));
	if (!(options->implicit_weight >= 0) || isinf(options->implicit_weight) ||
		(options->implicit_weight > 0 && (options->implicit || options->k == 0 ||
										  options->lambda == 0)))
		corrupt_row(row, psprintf("implicit_weight = %g is not 0, or a finite number > 0 of an explicit model with k >= 1 and lambda > 0.",
								  options->implicit_weight));
	if (options->clip && !(isfinite(row->rating_min) && isfinite(row->rating_max) &&
						   row->rating_min <= row->rating_max))
		corrupt_row(row, psprintf("It clips predictions, but rating_min = %g and rating_max = %g are not finite with rating_min <= rating_max.",
								  row->rating_min, row->rating_max));
}

/*
 * The error for a reader of models without the privilege serving needs:
 * column names the column it may not read, NULL for a whole table or schema.
 */
static void
deny_reading(const char *kind, const char *name, const char *column)
{
	if (column != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for %s %s", kind, name),
				 errdetail("Reading the model reads column %s of %s, which role \"%s\" may not read.",
						   column, name, GetUserNameFromId(GetUserId(), false)),
				 errhint("Ask the extension's owner to grant SELECT (%s) on %s, or SELECT on the table (see Privileges in the README).",
						 column, name)));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for %s %s", kind, name),
			 errhint("Reading a stored model (to serve it, refit it or rank from it) needs USAGE on the extension's schema and SELECT on mf_models, mf_user_factors and mf_item_factors: ask the extension's owner to grant them (a member of a role that has them but does not inherit them, NOINHERIT, must SET ROLE to it first; see Privileges in the README).")));
}

/*
 * Unless the current role may read column column of the model table relid
 * (an optional column, which only some calls read: what_reads, e.g.
 * "min_support and shrinkage"), the error saying so, with a hint to grant
 * it or to do without (alternative, e.g. "leave out min_support").
 */
static void
check_optional_column_read(Oid relid, const char *column, const char *what_reads,
						   const char *alternative)
{
	AttrNumber	attnum;
	const char *table;

	if (!OidIsValid(relid) || pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK)
		return;					/* (a missing table: the read says so) */
	attnum = get_attnum(relid, column);
	if (attnum == InvalidAttrNumber ||
		pg_attribute_aclcheck(relid, attnum, GetUserId(), ACL_SELECT) == ACLCHECK_OK)
		return;
	table = get_rel_name(relid);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for table %s", table),
			 errdetail("%s reads column %s of %s, which role \"%s\" may not read.",
					   what_reads, column, table, GetUserNameFromId(GetUserId(), false)),
			 errhint("Ask the extension's owner to grant SELECT (%s) on %s, or %s.",
					 column, table, alternative)));
}

/*
 * Raises the error a SELECT of columns[] of table relid would raise for
 * the current role: "permission denied" without SELECT on the table or on
 * each of the columns (with a hint saying what to grant).
 */
static void
check_select(Oid relid, const char *const *columns, int n)
{
	Oid			role = GetUserId();

	if (pg_class_aclcheck(relid, role, ACL_SELECT) == ACLCHECK_OK)
		return;
	/* a role with column grants is told which column it lacks */
	if (pg_attribute_aclcheck_all(relid, role, ACL_SELECT, ACLMASK_ANY) != ACLCHECK_OK)
		deny_reading("table", get_rel_name(relid), NULL);
	for (int c = 0; c < n; c++)
	{
		AttrNumber	attnum = get_attnum(relid, columns[c]);

		if (attnum != InvalidAttrNumber &&
			pg_attribute_aclcheck(relid, attnum, role, ACL_SELECT) != ACLCHECK_OK)
			deny_reading("table", get_rel_name(relid), columns[c]);
	}
}

/*
 * Raises the error for want of SELECT on the users' rated_items of
 * mf_user_factors, relid (the columns the reads of rated items name
 * besides it, model_id and user_id, serving reads too): with a hint
 * saying what to grant, or to do without (what_reads and alternative as
 * check_optional_column_read's; by default exclude_rated's).
 */
static void
check_rated_items_read(Oid relid, const char *what_reads, const char *alternative)
{
	static const char *const served_columns[] = {"model_id", "user_id"};

	if (!OidIsValid(relid))
		return;					/* (a missing table: the read says so) */
	check_select(relid, served_columns, lengthof(served_columns));
	check_optional_column_read(relid, "rated_items",
							   what_reads ? what_reads
							   : "Leaving each user's rated items out (exclude_rated)",
							   alternative ? alternative : "pass exclude_rated := false");
}

/* One side's factor table of schema (not remote), as serving found it: 0 if missing. */
static Oid
factors_relid(const MfSchema *schema, MfSide side)
{
	return get_relname_relid(side == MF_USERS ? MF_USER_FACTORS_TABLE : MF_ITEM_FACTORS_TABLE,
							 schema->oid);
}

/*
 * The OID of the extension's table name in schema, locked in mode (as a
 * SELECT locks it, or as a write does) until the transaction ends, so that
 * it is not dropped, altered or given a policy while it is read or
 * written; and with the invalidations other sessions have committed (a
 * REVOKE, a new policy) processed, so that the privilege checks that
 * follow see them.
 */
static Oid
lock_model_table(const char *name, Oid schema, LOCKMODE mode)
{
	Oid			relid = get_relname_relid(name, schema);

	if (OidIsValid(relid))
	{
		LockRelationOid(relid, mode);
		/* as the lock's first taking does; a REVOKE takes no lock on the table */
		AcceptInvalidationMessages();
		if (get_relname_relid(name, schema) == relid)
			return relid;
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_TABLE),
			 errmsg("table %s of mf_ext is missing from schema %s, or was just re-created",
					name, get_namespace_name(schema)),
			 errdetail("Another session dropped or re-created it, or the extension, while the call waited; or a function of a relation the call read dropped it."),
			 errhint("Run the call again; if the table is missing, re-create the extension: DROP EXTENSION mf_ext; CREATE EXTENSION mf_ext.")));
	return InvalidOid;			/* not reached */
}

MfModelTables
mf_catalog_open_for_reading(const MfSchema *schema)
{
	static const char *const user_columns[] = {"model_id", "user_id", "factors", "bias",
	"user_key"};
	static const char *const item_columns[] = {"model_id", "item_id", "factors", "bias",
	"item_key"};
	const char *model_columns[lengthof(columns)];
	int			n = 0;
	MfModelTables tables;
	AclResult	usage;

	tables.schema = *schema;
	tables.remote_models = InvalidOid;
	if (schema->remote)
	{
		/* the coordinator's tables: its locks, privileges and policies (read_model) */
		tables.models = get_relname_relid(MF_MODELS_TABLE, schema->oid);
		tables.users = tables.items = InvalidOid;
		tables.models_rls = tables.factors_rls = false;
		return tables;
	}
	usage = pg_namespace_aclcheck(schema->oid, GetUserId(), ACL_USAGE);
	if (usage != ACLCHECK_OK)
		deny_reading("schema", get_namespace_name(schema->oid), NULL);
	tables.models = lock_model_table(MF_MODELS_TABLE, schema->oid, AccessShareLock);
	tables.users = lock_model_table(MF_USER_FACTORS_TABLE, schema->oid, AccessShareLock);
	tables.items = lock_model_table(MF_ITEM_FACTORS_TABLE, schema->oid, AccessShareLock);
	for (int c = 0; c < lengthof(columns); c++)
		if (columns[c].use & SERVED)
			model_columns[n++] = columns[c].name;
	check_select(tables.models, model_columns, n);
	check_select(tables.users, user_columns, lengthof(user_columns));
	check_select(tables.items, item_columns, lengthof(item_columns));
	tables.models_rls = check_enable_rls(tables.models, InvalidOid, false) == RLS_ENABLED;
	tables.factors_rls = check_enable_rls(tables.users, InvalidOid, false) == RLS_ENABLED ||
		check_enable_rls(tables.items, InvalidOid, false) == RLS_ENABLED;
	return tables;
}

/* Reads by read_model_row_on_coordinator: the served columns, set in row. */
typedef struct ServedRead
{
	const int  *served;			/* index in columns[] of each value read */
	int			n;
	MfModelRow *row;
	bool		mean_null;
	bool		found;
	bool		factors_rls;	/* the extra columns on the coordinator */
	bool		models_rls;
	Oid			models_relid;
	MemoryContext cxt;			/* for the row's strings */
} ServedRead;

/* Sets read->row's served columns from n values (and more after them on the coordinator). */
static void
set_served_columns(ServedRead *read, const Datum *values, const bool *nulls)
{
	MemoryContext old = MemoryContextSwitchTo(read->cxt);

	for (int s = 0; s < read->n; s++)
	{
		const CatalogColumn *column = &columns[read->served[s]];

		if (nulls[s] && !(column->use & NULLABLE))
			corrupt_row(read->row, psprintf("Its %s is NULL.", column->name));
		set_column(column, read->row, values[s], nulls[s]);
		if (column->offset == FIELD(global_mean))
			read->mean_null = nulls[s];
	}
	MemoryContextSwitchTo(old);
	read->found = true;
}

/* mf_remote_scan callback: the model's row, then what the coordinator says of it. */
static void
read_served_row(TupleTableSlot *slot, void *arg)
{
	ServedRead *read = arg;

	set_served_columns(read, slot->tts_values, slot->tts_isnull);
	read->models_rls = DatumGetBool(slot->tts_values[read->n]);
	read->factors_rls = DatumGetBool(slot->tts_values[read->n + 1]);
	read->models_relid = DatumGetObjectId(slot->tts_values[read->n + 2]);
}

/* mf_remote_scan callback for a query run for its checks: nothing to keep. */
static void
ignore_row(TupleTableSlot *slot, void *arg)
{
}

/* mf_remote_scan callback: one boolean. */
static void
read_bool(TupleTableSlot *slot, void *arg)
{
	*(bool *) arg = DatumGetBool(slot->tts_values[0]);
}

/*
 * On a Citus worker: the model's row read on the coordinator (query, its
 * served columns, $1 the model), with whether row-level security applies
 * to the caller there (on mf_models; on the factor tables) and the
 * coordinator's OID of mf_models (new when the extension is re-created
 * there), the caller's right to read the factor tables' served columns
 * checked as a SELECT of them checks it.  First, when this worker runs a
 * part of a distributed query, whether its backend on the coordinator has
 * written the model tables in its transaction (0A000: that is not
 * committed, so invisible here, and reading the tables could wait on that
 * backend's locks while it waits for this worker).
 */
static void
read_model_row_on_coordinator(MfModelTables *tables, StringInfo query, bool by_name,
							  Oid argtype, Datum arg, Oid *types, ServedRead *read)
{
	const char *schema = tables->schema.quoted;
	char	   *models = quote_literal_cstr(psprintf("%s.%s", schema, MF_MODELS_TABLE));
	char	   *users = quote_literal_cstr(psprintf("%s.%s", schema, MF_USER_FACTORS_TABLE));
	char	   *items = quote_literal_cstr(psprintf("%s.%s", schema, MF_ITEM_FACTORS_TABLE));
	int32		initiator = mf_remote_initiator_pid();

	if (initiator != 0)
	{
		static const Oid bool_type = BOOLOID;
		Oid			pid_type = INT4OID;
		Datum		pid = Int32GetDatum(initiator);
		bool		written = false;

		mf_remote_scan(psprintf("SELECT EXISTS (SELECT FROM pg_catalog.pg_locks l"
								" WHERE l.pid = $1 AND l.locktype = 'relation' AND l.granted"
								" AND l.mode <> 'AccessShareLock'"
								" AND l.database = (SELECT oid FROM pg_catalog.pg_database"
								" WHERE datname = pg_catalog.current_database())"
								" AND l.relation IN (%s::pg_catalog.regclass, %s::pg_catalog.regclass,"
								" %s::pg_catalog.regclass))",
								models, users, items),
					   1, &pid_type, &pid, &bool_type, 1, MF_MODELS_TABLE, read_bool, &written);
		if (written)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("a model is served on a Citus worker in the transaction that wrote or locked the model tables on the coordinator"),
					 errdetail("A worker serves the models the coordinator has committed; this transaction's changes are not committed yet."),
					 errhint("Commit the training (or drop) first, or serve on the coordinator: compute the rows in a MATERIALIZED common table expression and call the function in the outer query.")));
	}
	appendStringInfo(query,
					 ", pg_catalog.row_security_active(%s)"
					 ", pg_catalog.row_security_active(%s) OR pg_catalog.row_security_active(%s)"
					 ", %s::pg_catalog.regclass::pg_catalog.oid"
					 ", (SELECT pg_catalog.count(*) FROM (SELECT model_id, user_id, factors, bias, user_key"
					 " FROM %s.%s WHERE false) AS users)"
					 ", (SELECT pg_catalog.count(*) FROM (SELECT model_id, item_id, factors, bias, item_key"
					 " FROM %s.%s WHERE false) AS items)"
					 " FROM %s.%s WHERE %s = $1",
					 models, users, items, models, schema, MF_USER_FACTORS_TABLE,
					 schema, MF_ITEM_FACTORS_TABLE, schema, MF_MODELS_TABLE,
					 by_name ? "name" : "model_id");
	types[read->n] = BOOLOID;
	types[read->n + 1] = BOOLOID;
	types[read->n + 2] = OIDOID;
	types[read->n + 3] = INT8OID;
	types[read->n + 4] = INT8OID;
	mf_remote_scan(query->data, 1, &argtype, &arg, types, read->n + 5, MF_MODELS_TABLE,
				   read_served_row, read);
	tables->models_rls = read->models_rls;
	tables->factors_rls = read->factors_rls;
	tables->remote_models = read->models_relid;
}

void
mf_catalog_check_implicit_read(const MfModelTables *tables, const MfModelRow *row)
{
	static const char *const implicit_column[] = {"implicit_factors"};

	if (row->options.implicit_weight <= 0)
		return;
	if (tables->schema.remote)
	{
		static const Oid types[] = {INT8OID, INT8OID};
		const char *schema = tables->schema.quoted;

		/* as a SELECT of the columns checks it, on the coordinator */
		mf_remote_scan(psprintf("SELECT (SELECT pg_catalog.count(*) FROM (SELECT implicit_factors FROM %s.%s WHERE false) AS u),"
								" (SELECT pg_catalog.count(*) FROM (SELECT implicit_factors FROM %s.%s WHERE false) AS i)",
								schema, MF_USER_FACTORS_TABLE, schema, MF_ITEM_FACTORS_TABLE),
					   0, NULL, NULL, types, lengthof(types), MF_USER_FACTORS_TABLE,
					   ignore_row, NULL);
		return;
	}
	check_select(tables->users, implicit_column, 1);
	check_select(tables->items, implicit_column, 1);
}

/*
 * Which write made model_id's row of mf_models (models) that the active
 * snapshot sees: its raw xmin and command id into row (row_xmin, row_cid),
 * found through the primary key where it is the model_id column's (else
 * by a scan); InvalidTransactionId when there is none (also without an
 * active snapshot, when the served read ran without one).  Read from the
 * table itself: the caller has read the row, and a column-privileged role
 * may not read the system columns.
 */
static void
read_row_write(Oid models, int32 model_id, MfModelRow *row)
{
	Relation	rel = table_open(models, AccessShareLock);
	AttrNumber	attnum = get_attnum(models, "model_id");
	Oid			index = RelationGetPrimaryKeyIndex(rel);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;

	row->row_xmin = InvalidTransactionId;
	row->row_cid = InvalidCommandId;

	if (attnum != InvalidAttrNumber && get_atttype(models, attnum) == INT4OID &&
		ActiveSnapshotSet())
	{
		if (OidIsValid(index))
		{
			Relation	index_rel = index_open(index, AccessShareLock);

			if (index_rel->rd_index->indnatts != 1 ||
				index_rel->rd_index->indkey.values[0] != attnum)
				index = InvalidOid;
			index_close(index_rel, AccessShareLock);
		}
		ScanKeyInit(&key, attnum, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(model_id));
		scan = systable_beginscan(rel, index, OidIsValid(index), GetActiveSnapshot(), 1, &key);
		if ((tuple = systable_getnext(scan)) != NULL)
		{
			row->row_xmin = HeapTupleHeaderGetRawXmin(tuple->t_data);
			row->row_cid = HeapTupleHeaderGetRawCommandId(tuple->t_data);
		}
		systable_endscan(scan);
	}
	table_close(rel, AccessShareLock);
}

MfModelRow
mf_catalog_read_model(MfModelTables *tables, int32 model_id, const text *name)
{
	static SavedPlan plans[2];
	Oid			argtype = name ? TEXTOID : INT4OID;
	Datum		arg = name ? PointerGetDatum(name) : Int32GetDatum(model_id);
	Oid			types[lengthof(columns) + 5];
	int			served[lengthof(columns)];
	int			n = 0;
	StringInfoData query;
	MfModelRow	row = {0};
	ServedRead	read = {served, 0, &row, true, false, false, false, InvalidOid, CurrentMemoryContext};
	InternalSql sql = internal_sql_begin();

	/* the served columns; those an older version lacks read as it meant them */
	initStringInfo(&query);
	appendStringInfoString(&query, "SELECT ");
	for (int c = 0; c < lengthof(columns); c++)
	{
		if (!(columns[c].use & SERVED))
			continue;
		appendStringInfo(&query, "%s%s", n > 0 ? ", " : "",
						 get_attnum(tables->models, columns[c].name) != InvalidAttrNumber
						 ? columns[c].name : columns[c].missing);
		types[n] = column_type(columns[c].kind);
		served[n++] = c;
	}
	read.n = n;
	if (tables->schema.remote)
		read_model_row_on_coordinator(tables, &query, name != NULL, argtype, arg, types, &read);
	else
	{
		appendStringInfo(&query, " FROM %s.mf_models WHERE %s = $1", tables->schema.quoted,
						 name ? "name" : "model_id");
		if (SPI_execute_plan(saved_plan(&plans[name != NULL], query.data, 1, &argtype),
							 &arg, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read the model's row from mf_models");
		mf_check_column_types(SPI_tuptable->tupdesc, NULL, types, n, "mf_models");
		if (SPI_processed == 1)
		{
			Datum		values[lengthof(columns)];
			bool		nulls[lengthof(columns)];

			for (int s = 0; s < n; s++)
				values[s] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
										  s + 1, &nulls[s]);
			set_served_columns(&read, values, nulls);
			read_row_write(tables->models, row.model_id, &row);
		}
	}
	if (!read.found)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 name ? errmsg("model %s does not exist",
							   mf_text_for_message(text_to_cstring(name)))
				 : errmsg("model %d does not exist", model_id),
				 errhint("Train it with mf_train, or see SELECT model_id, name FROM mf_models.")));
	internal_sql_end(sql);
	check_served_row(&row, read.mean_null);
	return row;
}

void
mf_lock_name(Oid schema, const char *name, uint16 kind)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, schema,
						 DatumGetUInt32(hash_any((const unsigned char *) name, strlen(name))),
						 kind);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/*
 * Runs query, a SELECT ... FOR UPDATE of the row of model name in
 * mf_models (SPI_execute_with_args's arguments, one row at the most), and
 * returns SPI's result.  Under REPEATABLE READ or SERIALIZABLE, PostgreSQL's
 * serialization failure for that row, changed by a transaction that
 * committed after the snapshot (no DETAIL, unlike a serializable
 * transaction's dependency failure; no trigger fires on the SELECT),
 * whose CONTEXT would be this internal query, becomes the extension's
 * error, which names the model and says what to do.
 */
static int
lock_model_row(const char *query, Oid *argtypes, Datum *args, const char *name)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			result = 0;

	PG_TRY();
	{
		result = SPI_execute_with_args(query, 1, argtypes, args, NULL, false, 1);
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(cxt);
		error = CopyErrorData();
		if (error->sqlerrcode != ERRCODE_T_R_SERIALIZATION_FAILURE || error->detail != NULL ||
			!IsolationUsesXactSnapshot())
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access to model %s: it was changed by a transaction that committed after this transaction's snapshot",
						mf_text_for_message(name)),
				 errdetail("A retraining, refit, rename, drop or other write of the model's row committed after this REPEATABLE READ or SERIALIZABLE transaction took its snapshot, which cannot read what it wrote (%s).",
						   error->message),
				 errhint("Run the transaction again.")));
	}
	PG_END_TRY();
	return result;
}

/*
 * Runs query, the SELECT ... FOR UPDATE of the model of name $1 (arg), and
 * returns whether it locked a row (then in SPI_tuptable).  A row found,
 * waited for and then deleted or renamed by the other transaction is no
 * row once it commits (READ COMMITTED): the model of the name may be one
 * that transaction created or renamed to it, which the query's snapshot
 * predates.  While a fresh snapshot (each SPI query takes one) finds a row
 * of the name that it had not found the time before, look again.  The
 * same row version found twice and not locked ends the looking (no
 * model), so that nothing can make it loop: row-level security on
 * mf_models, whose UPDATE policies FOR UPDATE would apply, is refused
 * before this (mf_check_write_privileges).
 */
static bool
lock_model_by_name(const MfSchema *schema, const char *query, Datum arg)
{
	Oid			argtype = TEXTOID;
	ItemPointerData seen;

	ItemPointerSetInvalid(&seen);
	for (;;)
	{
		ItemPointerData found;
		bool		isnull;

		if (lock_model_row(query, &argtype, &arg, TextDatumGetCString(arg)) != SPI_OK_SELECT)
			elog(ERROR, "could not read the model's options from mf_models");
		if (SPI_processed > 0)
			return true;
		if (SPI_execute_with_args(psprintf("SELECT ctid FROM %s.mf_models WHERE name = $1", schema->quoted),
								  1, &argtype, &arg, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look up the model in mf_models");
		if (SPI_processed == 0)
			return false;
		found = *(ItemPointer) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[0],
															 SPI_tuptable->tupdesc, 1, &isnull));
		if (ItemPointerIsValid(&seen) && ItemPointerEquals(&seen, &found))
			return false;
		seen = found;
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Whether a model of the name exists as last committed (or as this
 * transaction wrote it), whatever the transaction's snapshot sees: under
 * REPEATABLE READ or SERIALIZABLE, a model that a transaction committed
 * after the snapshot was taken.
 */
static bool
model_name_exists_now(const MfSchema *schema, Datum name)
{
	Oid			argtype = TEXTOID;
	uint64		found;

	PushActiveSnapshot(GetLatestSnapshot());
	/* read-only: the query reads as the snapshot just pushed */
	if (SPI_execute_with_args(psprintf("SELECT 1 FROM %s.mf_models WHERE name = $1",
									   schema->quoted),
							  1, &argtype, &name, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the model in mf_models");
	found = SPI_processed;
	PopActiveSnapshot();
	return found > 0;
}

/*
 * For a first training under REPEATABLE READ or SERIALIZABLE, whose
 * snapshot found no model of the name: the error (40001) if a transaction
 * that committed after that snapshot was taken (one whose first training
 * of the name this call may have waited for) has created or renamed a
 * model to the name.  The snapshot cannot read that model's options, and
 * the training's store would conflict with its row, after the whole fit.
 */
static void
check_name_untaken_since_snapshot(const MfSchema *schema, Datum name)
{
	if (model_name_exists_now(schema, name))
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access to model %s: it was created, or renamed to that name, by a transaction that committed after this transaction's snapshot",
						mf_text_for_message(TextDatumGetCString(name))),
				 errdetail("Under REPEATABLE READ or SERIALIZABLE this transaction cannot read that model's options, and training a new model of the name would conflict with it."),
				 errhint("Run the transaction again: mf_train then retrains that model, keeping the options it does not name; or pass another model_name.")));
}

bool
mf_catalog_trained_options(const MfSchema *schema, const char *name, MfModelRow *row)
{
	Oid			models = get_relname_relid(MF_MODELS_TABLE, schema->oid);
	Oid			types[lengthof(columns) + 2];
	int			read[lengthof(columns)];
	int			n = 0;
	Datum		arg = CStringGetTextDatum(name);
	StringInfoData query;
	bool		isnull;
	Datum		recorder;
	InternalSql sql = internal_sql_begin();

	row->model_id = 0;			/* none locked */
	if (!OidIsValid(models))
		elog(ERROR, "relation %s.%s does not exist", schema->quoted, MF_MODELS_TABLE);
	initStringInfo(&query);
	appendStringInfoString(&query, "SELECT ");
	for (int c = 0; c < lengthof(columns); c++)
	{
		if (!(columns[c].use & (KEPT | COMPARED)))
			continue;
		appendStringInfo(&query, "%s, ",
						 get_attnum(models, columns[c].name) != InvalidAttrNumber
						 ? columns[c].name : columns[c].missing);
		types[n] = column_type(columns[c].kind);
		read[n++] = c;
	}
	/* who recorded the columns (0.4 on), and the row locked against a concurrent retraining */
	appendStringInfo(&query, "%s, model_id FROM %s.mf_models WHERE name = $1 FOR UPDATE",
					 get_attnum(models, "source_recorded_by") != InvalidAttrNumber
					 ? "source_recorded_by" : "NULL::regrole", schema->quoted);
	types[n] = REGROLEOID;
	types[n + 1] = INT4OID;

	/*
	 * No model of the name: a first training, which holds the name until
	 * its transaction ends, as a retraining holds the row.  Another first
	 * training of the name waits for it, then finds its model and retrains
	 * it (until 2026-12-03 both trained from their own arguments, and the
	 * later commit replaced the earlier).
	 */
	if (!lock_model_by_name(schema, query.data, arg))
	{
		mf_lock_name(schema->oid, name, MF_MODEL_NAME_LOCK);
		if (!lock_model_by_name(schema, query.data, arg))
		{
			if (IsolationUsesXactSnapshot())
				check_name_untaken_since_snapshot(schema, arg);
			internal_sql_end(sql);
			return false;
		}
	}
	mf_check_column_types(SPI_tuptable->tupdesc, NULL, types, n + 2, "mf_models");
	for (int s = 0; s < n; s++)
	{
		Datum		value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
										  s + 1, &isnull);

		if (isnull && !(columns[read[s]].use & NULLABLE))
			corrupt_row(row, psprintf("Its %s is NULL.", columns[read[s]].name));
		set_column(&columns[read[s]], row, value, isnull);
	}
	recorder = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, n + 1, &isnull);
	row->source_recorded_by = isnull ? InvalidOid : DatumGetObjectId(recorder);
	row->model_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
												n + 2, &isnull));
	internal_sql_end(sql);
	return true;
}

int
mf_catalog_kept_options(const MfModelRow *row, const char **names, char **values)
{
	int			n = 0;

	for (int c = 0; c < lengthof(columns); c++)
	{
		bool		isnull;
		Datum		value;
		Oid			output;
		bool		varlena;

		if (!(columns[c].use & KEPT))
			continue;
		value = column_value(&columns[c], row, &isnull);
		names[n] = columns[c].name;
		if (isnull)
			values[n++] = NULL;
		else if (column_type(columns[c].kind) == BOOLOID)
			values[n++] = pstrdup(DatumGetBool(value) ? "true" : "false");
		else
		{
			getTypeOutputInfo(column_type(columns[c].kind), &output, &varlena);
			values[n++] = OidOutputFunctionCall(output, value);
		}
	}
	return n;
}

void
mf_catalog_partner_counts(const MfSchema *schema, int32 model_id, MfSide side,
						  const int64 *ids, int32 n, int64 *counts)
{
	const char *name = mf_side_name(side);
	const char *table = side == MF_USERS ? MF_USER_FACTORS_TABLE : MF_ITEM_FACTORS_TABLE;
	Oid			argtypes[2] = {INT4OID, INT8ARRAYOID};
	Datum		args[2];
	char	   *query;
	InternalSql sql;

	for (int32 r = 0; r < n; r++)
		counts[r] = -1;
	/* 0.4's tables, refitted through until ALTER EXTENSION UPDATE, keep no support */
	if (get_attnum(get_relname_relid(table, schema->oid), "support") == InvalidAttrNumber)
		return;
	sql = internal_sql_begin();
	args[0] = Int32GetDatum(model_id);
	args[1] = PointerGetDatum(mf_flat_array(INT8OID, ids, n));
	query = psprintf("SELECT a.r, COALESCE(f.support, 0)::pg_catalog.int8"
					 " FROM pg_catalog.unnest($2) WITH ORDINALITY AS a (id, r)"
					 " JOIN %s.%s f ON f.model_id OPERATOR(pg_catalog.=) $1"
					 " AND f.%s_id OPERATOR(pg_catalog.=) a.id",
					 schema->quoted, table, name);
	/* (not read-only: a new snapshot, the locked version's, as the refit's load takes) */
	if (SPI_execute_with_args(query, 2, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not count the partners of model %d's rows", model_id);
	for (uint64 t = 0; t < SPI_processed; t++)
	{
		bool		isnull;
		int64		r = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[t], SPI_tuptable->tupdesc,
													1, &isnull));
		int64		count = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[t],
														SPI_tuptable->tupdesc, 2, &isnull));

		if (r >= 1 && r <= n)
			counts[r - 1] = count;
	}
	internal_sql_end(sql);
}

MfModelRow
mf_catalog_lock_model(const MfSchema *schema, const MfModelRow *found, bool by_name,
					  const char *function)
{
	int32		model_id = found->model_id;
	static const Oid types[] = {TEXTOID, NAMEOID, NAMEOID, NAMEOID, INT8OID, REGROLEOID,
	REGTYPEOID, REGTYPEOID, TEXTOID};
	Oid			argtype = INT4OID;
	Datum		arg = Int32GetDatum(model_id);
	Oid			models = get_relname_relid(MF_MODELS_TABLE, schema->oid);
	bool		recorded = OidIsValid(models) &&
		get_attnum(models, "source_recorded_by") != InvalidAttrNumber;
	bool		key_types = OidIsValid(models) &&
		get_attnum(models, "user_key_type") != InvalidAttrNumber;
	HeapTuple	tuple;
	TupleDesc	desc;
	MfModelRow	row = {0};
	bool		isnull;
	InternalSql sql = internal_sql_begin();

	if (lock_model_row(psprintf("SELECT source, user_col, item_col, rating_col, version, %s, %s, name FROM %s.mf_models WHERE model_id = $1 FOR UPDATE",
								recorded ? "source_recorded_by" : "NULL::regrole",
								key_types ? "user_key_type, item_key_type"
								: "NULL::regtype, NULL::regtype",
								schema->quoted),
					   &argtype, &arg, found->name) != SPI_OK_SELECT ||
		SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model %s was dropped while %s read it", mf_text_for_message(found->name), function),
				 errdetail("Another session dropped it after this call had found it."),
				 errhint("Run %s again, naming the model, once one named %s exists (train it again if none does; a model trained anew has a new model_id).",
						 function, mf_text_for_message(found->name))));
	internal_sql_end(sql);
	desc = SPI_tuptable->tupdesc;
	tuple = SPI_tuptable->vals[0];
	mf_check_column_types(desc, NULL, types, lengthof(types), "mf_models");
	row.model_id = model_id;
	for (int c = 1; c <= 5; c++)
	{
		(void) SPI_getbinval(tuple, desc, c, &isnull);
		if (isnull)
			corrupt_row(&row, psprintf("Its %s is NULL.", SPI_fname(desc, c)));
	}
	row.source = SPI_getvalue(tuple, desc, 1);
	row.user_col = SPI_getvalue(tuple, desc, 2);
	row.item_col = SPI_getvalue(tuple, desc, 3);
	row.rating_col = SPI_getvalue(tuple, desc, 4);
	row.version = DatumGetInt64(SPI_getbinval(tuple, desc, 5, &isnull));
	row.source_recorded_by = DatumGetObjectId(SPI_getbinval(tuple, desc, 6, &isnull));
	if (isnull)
		row.source_recorded_by = InvalidOid;
	row.user_key_type = DatumGetObjectId(SPI_getbinval(tuple, desc, 7, &isnull));
	if (isnull)
		row.user_key_type = InvalidOid;
	row.item_key_type = DatumGetObjectId(SPI_getbinval(tuple, desc, 8, &isnull));
	if (isnull)
		row.item_key_type = InvalidOid;
	row.name = SPI_getvalue(tuple, desc, 9);
	/* named, and renamed while the call waited: the name now means another model, or none */
	if (by_name && strcmp(row.name, found->name) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model %s was renamed while %s read it", mf_text_for_message(found->name), function),
				 errdetail("It was renamed to %s after this call had found it.", mf_text_for_message(row.name)),
				 errhint("Run %s again, naming the model you mean.", function)));
	return row;
}

char *
mf_catalog_models_hook(Oid models, LOCKMODE lockmode)
{
	Relation	rel = table_open(models, lockmode);
	char	   *hook = NULL;
	Oid			extension = get_extension_oid("mf_ext", true);

	for (int t = 0; hook == NULL && rel->trigdesc && t < rel->trigdesc->numtriggers; t++)
	{
		const Trigger *trigger = &rel->trigdesc->triggers[t];

		/* mf_ext's own: its name, running the extension's function of that name */
		bool		own = strcmp(trigger->tgname, "mf_models_provenance") == 0 &&
			OidIsValid(extension) &&
			getExtensionOfObject(ProcedureRelationId, trigger->tgfoid) == extension &&
			strcmp(get_func_name(trigger->tgfoid), "mf_models_provenance") == 0;

		if (!own && !trigger->tgisinternal && trigger->tgenabled != TRIGGER_DISABLED)
			hook = psprintf("the trigger \"%s\"", trigger->tgname);
	}
	if (hook == NULL && mf_relation_has_rules(rel))
		hook = pstrdup("a rule");
	table_close(rel, NoLock);	/* kept: no trigger or rule is made meanwhile */
	return hook;
}

/* The columns of mf_models check_own_write compares with what the training wrote. */
static const char *const training_write_columns[] = {"name", "source", "user_col", "item_col",
"rating_col"};

/*
 * Whether a training's own write of its model row (upsert_model_row) is
 * under way and its row yet to be stamped: the one row mf_models_provenance
 * stamps with the writing role is the first written meanwhile.  (While
 * mf_models has a user's trigger or rule, which could write other rows or
 * change this one, nothing is stamped: execute_training_write; without,
 * the training's is the only write.)
 */
static bool training_write_pending = false;

/*
 * The values of training_write_columns that a training writes for row, as
 * the columns hold them (the columns' names cut to NAMEDATALEN - 1 bytes,
 * as namein cuts them).
 */
static void
training_written_values(const MfModelRow *row, const char **values)
{
	const char *const given[] = {row->name, row->source, row->user_col, row->item_col,
	row->rating_col};

	for (int c = 0; c < lengthof(given); c++)
		values[c] = c < 2 ? given[c]
			: NameStr(*DatumGetName(DirectFunctionCall1(namein, CStringGetDatum(given[c]))));
}

PG_FUNCTION_INFO_V1(mf_models_provenance);

/*
 * mf_models_provenance(): trigger BEFORE INSERT OR UPDATE ON mf_models FOR
 * EACH ROW.  A training's own write of its model row gets
 * source_recorded_by = the current role (whatever it changes: a retraining
 * in the transaction that wrote the row before may write the same values);
 * any other write that sets source, user_col, item_col, rating_col,
 * trained_at or source_recorded_by gets NULL (recorded by no one): an UPDATE, an INSERT or a COPY by anyone, a
 * restore included, so that no writer can make a source look like
 * another role's.  Refits follow a recorded source only for its recorder.
 */
Datum
mf_models_provenance(PG_FUNCTION_ARGS)
{
	static const char *const watched[] = {"source", "user_col", "item_col", "rating_col",
	"trained_at", "source_recorded_by"};
	TriggerData *trigger = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	tuple;
	bool		own;
	bool		stamp;
	int			stamp_column;
	Datum		value;
	bool		isnull;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigger->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigger->tg_event) || TRIGGER_FIRED_BY_DELETE(trigger->tg_event) ||
		TRIGGER_FIRED_BY_TRUNCATE(trigger->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("mf_models_provenance() must be a BEFORE INSERT OR UPDATE row trigger")));
	desc = RelationGetDescr(trigger->tg_relation);
	tuple = TRIGGER_FIRED_BY_UPDATE(trigger->tg_event) ? trigger->tg_newtuple : trigger->tg_trigtuple;
	stamp_column = SPI_fnumber(desc, "source_recorded_by");
	if (stamp_column <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("mf_models has no column source_recorded_by"),
				 errhint("Update the extension: ALTER EXTENSION mf_ext UPDATE.")));

	/* the training's own write, whatever it changes; another, if it changes what is watched */
	own = training_write_pending;
	training_write_pending = false;
	stamp = own || TRIGGER_FIRED_BY_INSERT(trigger->tg_event);
	for (int c = 0; !stamp && c < lengthof(watched); c++)
	{
		int			attnum = SPI_fnumber(desc, watched[c]);
		Form_pg_attribute attribute;
		bool		old_null;
		bool		new_null;
		Datum		old_value;
		Datum		new_value;

		if (attnum <= 0)
			continue;
		attribute = TupleDescAttr(desc, attnum - 1);
		old_value = heap_getattr(trigger->tg_trigtuple, attnum, desc, &old_null);
		new_value = heap_getattr(tuple, attnum, desc, &new_null);
		stamp = old_null != new_null ||
			(!old_null && !datum_image_eq(old_value, new_value, attribute->attbyval,
										  attribute->attlen));
	}
	if (!stamp)
		return PointerGetDatum(tuple);

	isnull = !own;
	value = ObjectIdGetDatum(isnull ? InvalidOid : GetUserId());
	return PointerGetDatum(heap_modify_tuple_by_cols(tuple, desc, 1, &stamp_column, &value, &isnull));
}

/*
 * Runs query (an INSERT or UPDATE of a model's row in mf_models, models)
 * as a training's own write of it; returns SPI's result.  While mf_models
 * has a user's trigger or rule (mf_catalog_models_hook, set in *hook; else
 * NULL), which could write or change rows during the write, it records no
 * one.  sql: the bracket it runs in.
 */
static int
execute_training_write(InternalSql sql, const char *query, int n, Oid *argtypes, Datum *args,
					   const char *nulls, Oid models, char **hook)
{
	int			result;

	/* the write's own lock, taken now: CREATE TRIGGER and RULE wait for it */
	*hook = mf_catalog_models_hook(models, RowExclusiveLock);
	training_write_pending = *hook == NULL;
	PG_TRY();
	{
		result = execute_model_write(sql, query, n, argtypes, args, nulls);
	}
	PG_FINALLY();
	{
		training_write_pending = false;
	}
	PG_END_TRY();
	return result;
}

/*
 * Raises the error for a model's row of mf_models that a write of this
 * transaction's own kept from being written or deleted (a user's rule,
 * trigger or constraint function): model names it, what says what
 * happened to it.
 */
static void
model_row_lost(const char *model, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("the row of %s in mf_models %s", model, what),
			 errdetail("A rule or trigger on the model tables, or a function a constraint of theirs calls, kept it from being written or deleted it."),
			 errhint("Drop that rule, trigger or constraint: the models as they were before this call are kept.")));
}

/*
 * What a training's own write of its model row returned (RETURNING
 * model_id, then training_write_columns, then source_recorded_by when the
 * table has it), checked: a user's trigger on mf_models that fires after
 * mf_models_provenance could have changed the name, source or columns the
 * training wrote, or the stamp, which would then record the training's
 * role (or another's) for values the training did not write.  stamped:
 * whether the write was to record the training's role (else no one).
 */
static void
check_own_write(const MfModelRow *row, bool recorded, bool stamped)
{
	HeapTuple	tuple = SPI_tuptable->vals[0];
	TupleDesc	desc = SPI_tuptable->tupdesc;
	const char *written[lengthof(training_write_columns)];
	bool		isnull;
	Datum		stamp;

	const char *changed = NULL;

	training_written_values(row, written);
	for (int c = 0; changed == NULL && c < lengthof(written); c++)
	{
		char	   *value = SPI_getvalue(tuple, desc, c + 2);

		if (value == NULL || strcmp(value, written[c]) != 0)
			changed = training_write_columns[c];
	}
	if (changed == NULL && recorded)
	{
		stamp = SPI_getbinval(tuple, desc, lengthof(written) + 2, &isnull);
		if (!isnull && (!stamped || DatumGetObjectId(stamp) != GetUserId()))
			changed = "source_recorded_by";
	}
	if (changed != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("a trigger on mf_models changed the row of model %s that mf_train wrote",
						mf_text_for_message(row->name)),
				 errdetail("Its %s is not what the training wrote.", changed),
				 errhint("Drop that trigger, or have it leave the name, source, columns and source_recorded_by of mf_models alone: the models as they were before this call are kept.")));
}

/*
 * The error (40001) for a training whose model name no longer means the
 * model it read its options from (or no model, for a first training): a
 * rename, drop or INSERT since, by another transaction or by the call's
 * own statement (a source view with side effects).
 */
static void
report_name_taken(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("model %s was renamed, dropped or created while mf_train trained it", mf_text_for_message(name)),
			 errdetail("This training read the options of the model of that name when it started (or found none) and trained with them; since then another transaction, or this call's own statement, has renamed, dropped or created a model of that name."),
			 errhint("Run mf_train again: it then trains the model that holds the name, keeping the options it does not name, or a new one from its arguments; or pass another model_name.")));
}

/*
 * Inserts or updates the model row (which locks it); returns its
 * model_id.  row->model_id is the row the training locked when it read
 * its options, or 0: another row of the name, or none where it locked
 * one, is an error (40001).  sql: the bracket it runs in.
 * Replacing a model trained on another relation is worth a word.
 */
static int32
upsert_model_row(InternalSql sql, const MfSchema *schema, const MfModelRow *row)
{
	static const Oid model_id_type = INT4OID;
	Oid			argtypes[lengthof(columns) + 1];
	Datum		args[lengthof(columns) + 1];
	char		nulls[lengthof(columns) + 1];
	StringInfoData names;
	StringInfoData values;
	char	   *query;
	int			n = 1;
	bool		isnull;
	Oid			models = get_relname_relid(MF_MODELS_TABLE, schema->oid);
	/* 0.4's tables, written until ALTER EXTENSION UPDATE, record no one */
	bool		recorded = get_attnum(models, "source_recorded_by") != InvalidAttrNumber;
	char	   *hook = NULL;
	StringInfoData returning;

	/* model_id, then what check_own_write checks */
	initStringInfo(&returning);
	appendStringInfoString(&returning, "model_id");
	for (int c = 0; c < lengthof(training_write_columns); c++)
		appendStringInfo(&returning, ", %s", training_write_columns[c]);
	if (recorded)
		appendStringInfoString(&returning, ", source_recorded_by");

	/* $1 the name, then every column written */
	argtypes[0] = TEXTOID;
	args[0] = CStringGetTextDatum(row->name);
	nulls[0] = ' ';
	initStringInfo(&names);
	initStringInfo(&values);
	for (int c = 0; c < lengthof(columns); c++)
	{
		if (!(columns[c].use & WRITTEN))
			continue;

		/*
		 * A column of a later version than the tables' (0.4's, not yet
		 * updated, lack patience and best_iteration): a training through
		 * that version's mf_train has what the version meant.
		 */
		if (columns[c].missing != NULL &&
			get_attnum(models, columns[c].name) == InvalidAttrNumber)
			continue;
		argtypes[n] = column_type(columns[c].kind);
		args[n] = column_value(&columns[c], row, &isnull);
		nulls[n] = isnull ? 'n' : ' ';
		appendStringInfo(&names, "%s, ", columns[c].name);
		appendStringInfo(&values, "$%d, ", ++n);
	}
	appendStringInfoString(&names, "trained_at, version");
	appendStringInfo(&values, "pg_catalog.now(), pg_catalog.nextval(%s::pg_catalog.regclass)",
					 quote_literal_cstr(psprintf("%s.mf_model_version_seq", schema->quoted)));

	/*
	 * The row the training locked when it read its options, or none for a
	 * first training (which holds the name, mf_catalog_trained_options):
	 * another row of the name now, or none where one was locked, was
	 * renamed, dropped or inserted since (by another transaction, or by
	 * the call's own statement), and this training did not keep its
	 * options.  Replacing it would lose them without a word: a
	 * serialization failure (report_name_taken).
	 */
	query = psprintf("SELECT model_id, source FROM %s.mf_models WHERE name = $1 FOR UPDATE",
					 schema->quoted);
	if (SPI_execute_with_args(query, 1, argtypes, args, nulls, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not lock the model row");
	if (SPI_processed == 1)
	{
		int32		model_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
														   SPI_tuptable->tupdesc, 1, &isnull));
		char	   *old_source = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);

		if (model_id != row->model_id)
			report_name_taken(row->name);
		if (strcmp(old_source, row->source) != 0)
			ereport(NOTICE,
					(errmsg("model %s was trained on %s and is now replaced by one trained on %s",
							mf_text_for_message(row->name), old_source, row->source),
					 errhint("Pass model_name to keep models of different relations apart.")));
		/* update the existing row, so that a retrain does not draw a model_id from the serial */
		query = psprintf("UPDATE %s.mf_models SET (%s) = ROW(%s) WHERE name = $1 RETURNING %s",
						 schema->quoted, names.data, values.data, returning.data);
		if (execute_training_write(sql, query, n, argtypes, args, nulls, models, &hook) != SPI_OK_UPDATE_RETURNING)
			elog(ERROR, "could not update the model row");
	}
	else
	{
		/*
		 * the row locked, renamed or dropped since; or, under REPEATABLE
		 * READ or SERIALIZABLE, a row of the name committed since the
		 * snapshot (the INSERT would fail with PostgreSQL's error)
		 */
		if (row->model_id != 0 ||
			(IsolationUsesXactSnapshot() && model_name_exists_now(schema, args[0])))
			report_name_taken(row->name);
		query = psprintf("INSERT INTO %s.mf_models (name, %s) VALUES ($1, %s)"
						 " ON CONFLICT (name) DO NOTHING RETURNING %s",
						 schema->quoted, names.data, values.data, returning.data);
		if (execute_training_write(sql, query, n, argtypes, args, nulls, models, &hook) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "could not insert the model row");
		if (SPI_processed == 0)
			report_name_taken(row->name);
	}
	if (SPI_processed != 1)
		model_row_lost(psprintf("model %s", mf_text_for_message(row->name)), "was not written");
	mf_check_column_types(SPI_tuptable->tupdesc, NULL, &model_id_type, 1, "mf_models");
	check_own_write(row, recorded, hook == NULL);
	if (recorded && hook != NULL)
		ereport(NOTICE,
				(errmsg("model %s records no one as having chosen its source and columns", mf_text_for_message(row->name)),
				 errdetail("mf_models has %s, which could change who they look recorded by.", hook),
				 errhint("Refits of this model need them named (source := ..., user_col := ..., item_col := ..., rating_col := ...), until it is trained again without that trigger or rule.")));
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

Oid
mf_catalog_history_table(Oid schema)
{
	Oid			relid = get_relname_relid(MF_MODEL_HISTORY_TABLE, schema);
	Oid			extension = get_extension_oid("mf_ext", true);

	if (!OidIsValid(relid) || !OidIsValid(extension) ||
		getExtensionOfObject(RelationRelationId, relid) != extension)
		return InvalidOid;
	return relid;
}

/*
 * Before a model named name is retrained, its last training as run 1 of
 * its history when it has none there (a model restored from a dump of a
 * version before 0.5 into 0.5, whose update would have copied it so).
 */
static void
carry_over_history(InternalSql sql, const MfSchema *schema, const char *name)
{
	Oid			argtype = TEXTOID;
	Datum		arg = CStringGetTextDatum(name);
	char	   *query;

	query = psprintf("INSERT INTO %s.mf_model_history (model_id, run, iteration, warm_start,"
					 " loss, train_rmse, validation_rmse, seconds, kept, trained_at)"
					 " SELECT m.model_id, 1, h.n, m.warm_start, h.j, h.t, h.v, h.s,"
					 " h.n = coalesce(m.best_iteration, m.iterations_run), m.trained_at"
					 " FROM %s.mf_models m, ROWS FROM (pg_catalog.unnest(m.loss),"
					 " pg_catalog.unnest(m.train_rmse_history), pg_catalog.unnest(m.validation_rmse),"
					 " pg_catalog.unnest(m.iteration_seconds)) WITH ORDINALITY AS h (j, t, v, s, n)"
					 " WHERE m.name = $1 AND h.n <= m.iterations_run AND h.j IS NOT NULL"
					 " AND NOT EXISTS (SELECT FROM %s.mf_model_history x WHERE x.model_id = m.model_id)",
					 schema->quoted, schema->quoted, schema->quoted);
	if (execute_model_write(sql, query, 1, &argtype, &arg, NULL) != SPI_OK_INSERT)
		elog(ERROR, "could not carry over the training history of model %s", mf_text_for_message(name));
}

/*
 * Appends the training's iterations to model_id's history as its next run
 * (1 for the first), the iteration whose factors it kept marked: iterations
 * numbered from 1, or with warm_start after the iteration whose factors the
 * model's latest run kept (its last, or with patience its best: the
 * factors the warm start continued from).
 */
static void
insert_history(InternalSql sql, const MfSchema *schema, int32 model_id, const MfModelRow *row)
{
	Oid			argtypes[7] = {INT4OID, BOOLOID, FLOAT8ARRAYOID, FLOAT8ARRAYOID,
	FLOAT8ARRAYOID, FLOAT8ARRAYOID, INT4OID};
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	const MfFitHistory *history = &row->history;
	char	   *query;

	args[0] = Int32GetDatum(model_id);
	args[1] = BoolGetDatum(row->warm_start);
	args[2] = PointerGetDatum(mf_flat_array(FLOAT8OID, history->loss, history->iterations_run));
	args[3] = PointerGetDatum(mf_flat_array(FLOAT8OID, history->train_rmse,
											history->iterations_run));
	if (history->validation_rmse)
		args[4] = PointerGetDatum(mf_flat_array(FLOAT8OID, history->validation_rmse,
												history->iterations_run));
	else
		nulls[4] = 'n';
	args[5] = PointerGetDatum(mf_flat_array(FLOAT8OID, history->seconds, history->iterations_run));
	args[6] = Int32GetDatum(history->kept_iteration);
	query = psprintf("INSERT INTO %s.mf_model_history (model_id, run, iteration, warm_start,"
					 " loss, train_rmse, validation_rmse, seconds, kept, trained_at)"
					 " SELECT $1, coalesce(latest.run, 0) + 1,"
					 " CASE WHEN $2 THEN coalesce(latest.iteration, 0) ELSE 0 END + h.n, $2,"
					 " h.j, h.t, h.v, h.s, h.n = $7, pg_catalog.now()"
					 " FROM (SELECT 1) one"
					 " LEFT JOIN LATERAL (SELECT run, iteration FROM %s.mf_model_history"
					 " WHERE model_id = $1 ORDER BY run DESC, kept DESC, iteration DESC LIMIT 1) latest ON true,"
					 " ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($4),"
					 " pg_catalog.unnest($5), pg_catalog.unnest($6))"
					 " WITH ORDINALITY AS h (j, t, v, s, n)",
					 schema->quoted, schema->quoted);
	if (execute_model_write(sql, query, 7, argtypes, args, nulls) != SPI_OK_INSERT)
		elog(ERROR, "could not write the training history of model %d", model_id);
	if (SPI_processed != (uint64) history->iterations_run)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the training history of model %s got " UINT64_FORMAT " of its %d rows",
						mf_text_for_message(row->name), (uint64) SPI_processed, history->iterations_run),
				 errdetail("A rule or trigger on mf_model_history kept rows from being written."),
				 errhint("Drop the rule or trigger: the history must hold every iteration.")));
}

/*
 * The distinct items (ids) user row u rated, appended to rated from
 * *n_rated on: entries are sorted by item, so duplicate pairs are
 * neighbours.
 */
static void
append_rated_items(const MfRatings *ratings, int32 u, int64 *rated, int32 *n_rated)
{
	const MfCsr *csr = &ratings->by_user;

	for (int64 e = csr->row_start[u]; e < csr->row_start[u + 1]; e++)
	{
		int64		item = ratings->item_ids[csr->col[e]];

		if (e == csr->row_start[u] || item != rated[*n_rated - 1])
			rated[(*n_rated)++] = item;
	}
}

/*
 * Each item's support: how many distinct users rated it (entries of a
 * user's row are sorted by item, so a duplicate pair is a neighbour).
 */
static int32 *
item_supports(const MfRatings *ratings)
{
	const MfCsr *csr = &ratings->by_user;
	int32	   *support = mf_alloc_array(CurrentMemoryContext, Max(ratings->n_items, 1),
										 sizeof(int32));

	memset(support, 0, sizeof(int32) * ratings->n_items);
	for (int32 u = 0; u < csr->n_rows; u++)
		for (int64 e = csr->row_start[u]; e < csr->row_start[u + 1]; e++)
			if (e == csr->row_start[u] || csr->col[e] != csr->col[e - 1])
				support[csr->col[e]]++;
	return support;
}

/*
 * Writes one side's factors, biases and supports (and, for users, the
 * sorted distinct ids of the items each rated) into the factor table relid
 * (store.h), reporting done plus its rows written of total as progress.
 */
static void
insert_factor_rows(const MfSchema *schema, const Oid *relids, int32 model_id, int k,
				   MfSide side, const MfRatings *ratings, const MfAls *als,
				   int64 done, int64 total)
{
	bool		users = side == MF_USERS;
	const MfFactors *f = mf_als_factors(als);
	const double *bias = users ? f->user_bias : f->item_bias;
	const int64 *ids = mf_ratings_ids(ratings, side);
	char	   *const *keys = mf_ratings_keys(ratings, side);
	int32		n_rows = users ? ratings->n_users : ratings->n_items;
	double	   *factors = mf_alloc_array(CurrentMemoryContext,
										 (Size) MF_STORE_BLOCK_ROWS * Max(k, 1), sizeof(double));
	int64	   *rated = users ? mf_alloc_array(CurrentMemoryContext,
											   Max(mf_csr_longest_row(&ratings->by_user), 1),
											   sizeof(int64)) : NULL;
	int32	   *support = users ? NULL : item_supports(ratings);
	bool		implicit = (users ? f->user_implicit : f->item_implicit) != NULL;
	double	   *implicit_factors = implicit
		? mf_alloc_array(CurrentMemoryContext, (Size) MF_STORE_BLOCK_ROWS * Max(k, 1), sizeof(double))
		: NULL;
	MfStoreWriter *writer = mf_store_begin(schema, relids[users ? 1 : 2], relids[0], side,
										   model_id, k, bias != NULL, keys != NULL, implicit);

	mf_store_report_progress(writer, done, total);
	for (int32 first = 0; first < n_rows; first += MF_STORE_BLOCK_ROWS)
	{
		int32		count = Min(MF_STORE_BLOCK_ROWS, n_rows - first);

		mf_als_get_rows(als, side, false, first, count, factors);
		if (implicit)
			mf_als_get_rows(als, side, true, first, count, implicit_factors);
		for (int32 r = first; r < first + count; r++)
		{
			int32		n_rated = 0;

			if (users)
				append_rated_items(ratings, r, rated, &n_rated);
			mf_store_row(writer, ids[r], factors + (Size) (r - first) * k,
						 bias ? &bias[r] : NULL, keys ? keys[r] : NULL,
						 users ? n_rated : support[r], rated, n_rated,
						 implicit ? implicit_factors + (Size) (r - first) * k : NULL);
		}
	}
	(void) mf_store_end(writer);
	pfree(factors);
	if (implicit_factors)
		pfree(implicit_factors);
	if (rated)
		pfree(rated);
	if (support)
		pfree(support);
}

/*
 * Locks the three model tables for writing (relids[]: mf_models, then the
 * users' and the items' factor tables), and with history (a training)
 * mf_model_history where it is the extension's, then checks again that the
 * caller may write models (checks.c): the check before the work may be
 * minutes old, and a table with the lock held can get no new policy or
 * row-level security until the transaction ends.  Returns whether the
 * history is written.
 */
static bool
lock_for_writing(const MfSchema *schema, const char *function, bool history, Oid *relids)
{
	relids[0] = lock_model_table(MF_MODELS_TABLE, schema->oid, RowExclusiveLock);
	relids[1] = lock_model_table(MF_USER_FACTORS_TABLE, schema->oid, RowExclusiveLock);
	relids[2] = lock_model_table(MF_ITEM_FACTORS_TABLE, schema->oid, RowExclusiveLock);
	/* the history, from 0.5's SQL on, which only training writes */
	history = history && OidIsValid(mf_catalog_history_table(schema->oid));
	if (history)
		(void) lock_model_table(MF_MODEL_HISTORY_TABLE, schema->oid, RowExclusiveLock);
	mf_check_write_privileges(schema, function, history);
	return history;
}

int32
mf_catalog_store_model(const MfSchema *schema, const MfModelRow *row,
					   const MfRatings *ratings, const MfAls *als)
{
	InternalSql sql;
	int32		model_id;
	Oid			relids[3];
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1];
	bool		with_history;
	int64		rows;

	with_history = lock_for_writing(schema, "mf_train", true, relids);
	sql = internal_sql_begin();
	if (with_history)
		carry_over_history(sql, schema, row->name);
	model_id = upsert_model_row(sql, schema, row);
	if (with_history)
		insert_history(sql, schema, model_id, row);
	args[0] = Int32GetDatum(model_id);
	if (execute_model_write(sql, psprintf("DELETE FROM %s.mf_user_factors WHERE model_id = $1",
										  schema->quoted),
							1, argtypes, args, NULL) != SPI_OK_DELETE ||
		execute_model_write(sql, psprintf("DELETE FROM %s.mf_item_factors WHERE model_id = $1",
										  schema->quoted),
							1, argtypes, args, NULL) != SPI_OK_DELETE)
		elog(ERROR, "could not delete the old factors of model %d", model_id);
	rows = (int64) ratings->n_users + ratings->n_items;
	insert_factor_rows(schema, relids, model_id, row->options.k, MF_USERS, ratings, als, 0, rows);
	insert_factor_rows(schema, relids, model_id, row->options.k, MF_ITEMS, ratings, als,
					   ratings->n_users, rows);

	/*
	 * The rows' foreign key, which direct writes take as given (store.c):
	 * the model's row, written above, must still be there.  Locked, it is,
	 * but for what this transaction itself ran meanwhile: a user's trigger
	 * or constraint function on the factor tables.
	 */
	if (SPI_execute_with_args(psprintf("SELECT FROM %s.mf_models WHERE model_id = $1",
									   schema->quoted),
							  1, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the row of model %d", model_id);
	if (SPI_processed != 1)
		model_row_lost(psprintf("model %s", mf_text_for_message(row->name)), "was deleted while its factors were stored");
	internal_sql_end(sql);
	return model_id;
}

void
mf_catalog_add_rated_items(const MfSchema *schema, int32 model_id, const int64 *users,
						   const int64 *items, int64 n)
{
	Oid			argtypes[3] = {INT4OID, INT8ARRAYOID, INT8ARRAYOID};
	Datum		args[3] = {Int32GetDatum(model_id)};
	char	   *query = psprintf("UPDATE %s.mf_user_factors f"
								 " SET rated_items = (SELECT pg_catalog.array_agg(DISTINCT e ORDER BY e)"
								 " FROM pg_catalog.unnest(pg_catalog.array_cat(f.rated_items, p.items)) e)"
								 " FROM (SELECT r.user_id, pg_catalog.array_agg(r.item_id) AS items"
								 " FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)) AS r(user_id, item_id)"
								 " GROUP BY r.user_id) p"
								 " WHERE f.model_id = $1 AND f.user_id = p.user_id",
								 schema->quoted);
	InternalSql sql = internal_sql_begin();

	for (int64 first = 0; first < n; first += MF_RATED_PAIRS_PER_UPDATE)
	{
		int			count = (int) Min(n - first, MF_RATED_PAIRS_PER_UPDATE);

		args[1] = PointerGetDatum(mf_flat_array(INT8OID, users + first, count));
		args[2] = PointerGetDatum(mf_flat_array(INT8OID, items + first, count));
		if (execute_model_write(sql, query, 3, argtypes, args, NULL) != SPI_OK_UPDATE)
			elog(ERROR, "could not add items to the rated_items of model %d", model_id);
		pfree(DatumGetPointer(args[1]));
		pfree(DatumGetPointer(args[2]));
	}
	internal_sql_end(sql);
	pfree(query);
}

void
mf_catalog_replace_rows(const MfSchema *schema, const char *function, int32 model_id,
						MfSide side, int k,
						const int64 *ids, char *const *keys, int32 n,
						const double *factors, const double *bias, const double *implicit,
						const int32 *support, const int32 *rated_start, const int64 *rated)
{
	bool		users = side == MF_USERS;
	Oid			relids[3];
	Oid			argtypes[2] = {INT4OID, INT8ARRAYOID};
	Datum		args[2] = {Int32GetDatum(model_id),
	PointerGetDatum(mf_flat_array(INT8OID, ids, n))};
	InternalSql sql;
	MfStoreWriter *writer;

	(void) lock_for_writing(schema, function, false, relids);
	sql = internal_sql_begin();
	if (execute_model_write(sql, psprintf("DELETE FROM %s.%s WHERE model_id = $1 AND %s = ANY ($2)",
										  schema->quoted,
										  users ? MF_USER_FACTORS_TABLE : MF_ITEM_FACTORS_TABLE,
										  users ? "user_id" : "item_id"),
							2, argtypes, args, NULL) != SPI_OK_DELETE)
		elog(ERROR, "could not delete the old rows of model %d", model_id);
	writer = mf_store_begin(schema, relids[users ? 1 : 2], relids[0], side, model_id, k,
							bias != NULL, keys != NULL, implicit != NULL);
	mf_store_report_progress(writer, 0, n);
	for (int32 r = 0; r < n; r++)
		mf_store_row(writer, ids[r], factors + (Size) r * k, bias ? &bias[r] : NULL,
					 keys ? keys[r] : NULL, support[r],
					 users ? rated + rated_start[r] : NULL,
					 users ? rated_start[r + 1] - rated_start[r] : 0,
					 implicit ? implicit + (Size) r * k : NULL);
	(void) mf_store_end(writer);

	/* the model's row, locked by the caller, must still be there: the rows' foreign key */
	if (execute_model_write(sql, psprintf("UPDATE %s.mf_models SET"
										  " version = pg_catalog.nextval(%s::pg_catalog.regclass),"
										  " n_users = (SELECT pg_catalog.count(*) FROM %s.mf_user_factors WHERE model_id = $1),"
										  " n_items = (SELECT pg_catalog.count(*) FROM %s.mf_item_factors WHERE model_id = $1)"
										  " WHERE model_id = $1",
										  schema->quoted,
										  quote_literal_cstr(psprintf("%s.mf_model_version_seq", schema->quoted)),
										  schema->quoted, schema->quoted),
							1, argtypes, args, NULL) != SPI_OK_UPDATE)
		elog(ERROR, "could not give model %d a new version", model_id);
	if (SPI_processed != 1)
		model_row_lost(psprintf("model %d", model_id), "was deleted while its rows were replaced");
	internal_sql_end(sql);
}

/* The hints of a stored row no training writes: read to serve, or to warm-start from. */
#define MF_STORED_ROW_HINT "Retrain the model with mf_train, or restore its factor rows."
#define MF_WARM_START_ROW_HINT "Train without warm_start, or restore the model's factor rows."

/*
 * Whether a stored number is one a training writes for a model in single
 * or double precision (single: its factors and biases are floats).
 */
static bool
stored_number_valid(double value, bool single)
{
	return single ? fabs(value) <= FLT_MAX : isfinite(value);
}

/*
 * Copies a stored factors array (double precision[] of exactly k numbers;
 * empty for k = 0) of a model in single or double precision into out, or
 * raises an error (XX001, with hint) naming the user or item whose row is
 * bad.
 */
static void
factors_from_datum(Datum datum, bool isnull, int k, double *out, MfSide side, int64 id,
				   const char *what, bool single, const char *hint)
{
	ArrayType  *array = isnull ? NULL : DatumGetArrayTypeP(datum);

	if (array == NULL || ARR_ELEMTYPE(array) != FLOAT8OID || ARR_HASNULL(array) ||
		ArrayGetNItems(ARR_NDIM(array), ARR_DIMS(array)) != k ||
		(k > 0 && ARR_NDIM(array) != 1))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("stored %s of %s " INT64_FORMAT " are not an array of %d numbers",
						what, mf_side_name(side), id, k),
				 errhint("%s", hint)));
	if (k > 0)
		memcpy(out, ARR_DATA_PTR(array), sizeof(double) * k);
	for (int j = 0; j < k; j++)
		if (!stored_number_valid(out[j], single))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("stored %s of %s " INT64_FORMAT " are not all finite%s",
							what, mf_side_name(side), id,
							single ? " single-precision numbers" : ""),
					 errhint("%s", hint)));
}

/*
 * The stored bias (column value, isnull) of side's id in model_id, a model
 * with biases in single or double precision; XX001 when it is NULL or not
 * a finite number of that precision, with hint.
 */
static double
stored_bias(Datum value, bool isnull, MfSide side, int64 id, int32 model_id, bool single,
			const char *hint)
{
	if (isnull || !stored_number_valid(DatumGetFloat8(value), single))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("stored bias of %s " INT64_FORMAT " in model %d is %s",
						mf_side_name(side), id, model_id,
						isnull ? "NULL" : single ? "not a finite single-precision number"
						: "not finite"),
				 errhint("%s", hint)));
	return DatumGetFloat8(value);
}

/* State of mf_catalog_load_side while it scans one side's factor rows. */
typedef struct SideLoad
{
	const MfModelRow *row;
	MfSide		side;
	int64		capacity;		/* n_users or n_items of the model row */
	int64		n;				/* rows so far */
	int64	   *ids;
	double	   *factors;
	double	   *bias;			/* with biases, else NULL */
	char	  **keys;			/* with text keys, else NULL */
	double	   *implicit;		/* implicit factors (k a row), or NULL: not read */
	MfStrings	key_copies;		/* the keys, in the caller's context */
} SideLoad;

/* Column column of the factor row being loaded, which must not be NULL. */
static Datum
required_value(TupleTableSlot *slot, int column, const SideLoad *load, const char *what)
{
	if (slot->tts_isnull[column - 1])
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("stored %s of %s " INT64_FORMAT " in model %d is NULL",
						what, mf_side_name(load->side), load->ids[load->n], load->row->model_id),
				 errhint("Retrain the model with mf_train, or restore its factor rows.")));
	return slot->tts_values[column - 1];
}

/* mf_spi_scan callback: appends one factor row (and bias and key). */
static void
load_factor_row(TupleTableSlot *slot, void *arg)
{
	SideLoad   *load = arg;
	const char *side = mf_side_name(load->side);

	if (load->n >= load->capacity)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("model %d has more %s factor rows than its n_%ss (" INT64_FORMAT ")",
						load->row->model_id, side, side, load->capacity),
				 errhint("Retrain the model with mf_train.")));
	load->ids[load->n] = DatumGetInt64(slot->tts_values[0]);
	factors_from_datum(slot->tts_values[1], slot->tts_isnull[1], load->row->options.k,
					   load->factors + (Size) load->n * load->row->options.k,
					   load->side, load->ids[load->n], "factors", load->row->options.single,
					   MF_STORED_ROW_HINT);
	if (load->bias)
		load->bias[load->n] = stored_bias(slot->tts_values[2], slot->tts_isnull[2], load->side,
										  load->ids[load->n], load->row->model_id,
										  load->row->options.single, MF_STORED_ROW_HINT);
	if (load->keys)
	{
		text	   *key = DatumGetTextPP(required_value(slot, 4, load, "key"));

		load->keys[load->n] = mf_strings_copy(&load->key_copies, VARDATA_ANY(key),
											  VARSIZE_ANY_EXHDR(key));
	}
	if (load->implicit)
		factors_from_datum(slot->tts_values[4], slot->tts_isnull[4], load->row->options.k,
						   load->implicit + (Size) load->n * load->row->options.k,
						   load->side, load->ids[load->n], "implicit_factors",
						   load->row->options.single, MF_STORED_ROW_HINT);
	load->n++;
}

int32
mf_catalog_load_side(const MfSchema *schema, const MfModelRow *row, MfSide side,
					 int64 capacity, int64 *ids, double *factors, double *bias,
					 char **keys, double *implicit, MemoryContext cxt)
{
	static const Oid types[] = {INT8OID, FLOAT8ARRAYOID, FLOAT8OID, TEXTOID, FLOAT8ARRAYOID};
	const char *name = mf_side_name(side);
	const char *table = side == MF_USERS ? MF_USER_FACTORS_TABLE : MF_ITEM_FACTORS_TABLE;
	SideLoad	load = {row, side, capacity, 0, ids, factors, bias, keys, implicit, {0}};
	Oid			argtype = INT4OID;
	Datum		arg = Int32GetDatum(row->model_id);
	InternalSql sql = internal_sql_begin();

	mf_strings_init(&load.key_copies, cxt);
	serving_scan(schema, psprintf("SELECT %s_id, factors, %s, %s, %s FROM %s.mf_%s_factors WHERE model_id = $1 ORDER BY %s_id",
								  name, bias ? "bias" : "NULL::float8",
								  keys ? (side == MF_USERS ? "user_key" : "item_key") : "NULL::text",
								  implicit ? "implicit_factors" : "NULL::float8[]",
								  schema->quoted, name, name),
				 1, &argtype, &arg, types, lengthof(types), table, load_factor_row, &load);
	/* fewer: rows lost, unless a row-level security policy hides them from this role */
	if (load.n < capacity &&
		check_enable_rls(get_relname_relid(table, schema->oid), InvalidOid, false) != RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("model %d has " INT64_FORMAT " %s factor rows, fewer than its n_%ss (" INT64_FORMAT ")",
						row->model_id, load.n, name, name, capacity),
				 errdetail("Rows were deleted from %s, or n_%ss in mf_models was changed, after the model was stored.",
						   table, name),
				 errhint("Retrain the model with mf_train, or restore its factor rows.")));
	internal_sql_end(sql);
	return (int32) load.n;
}

/* mf_catalog_scan_supports' state: the caller's function. */
typedef struct SupportScan
{
	MfSupportFn fn;
	void	   *arg;
} SupportScan;

/* mf_spi_scan callback: one row's id and support (NULL: 0). */
static void
scan_support_row(TupleTableSlot *slot, void *arg)
{
	SupportScan *scan = arg;

	scan->fn(DatumGetInt64(slot->tts_values[0]),
			 slot->tts_isnull[1] ? 0 : Max(DatumGetInt32(slot->tts_values[1]), 0), scan->arg);
}

void
mf_catalog_scan_supports(const MfSchema *schema, int32 model_id, MfSide side,
						 MfSupportFn fn, void *arg)
{
	static const Oid types[] = {INT8OID, INT4OID};
	const char *name = mf_side_name(side);
	SupportScan scan = {fn, arg};
	Oid			argtype = INT4OID;
	Datum		value = Int32GetDatum(model_id);
	InternalSql sql;

	if (!schema->remote)
		check_optional_column_read(factors_relid(schema, side), "support",
								   "Passing min_support or shrinkage", "leave them out");
	sql = internal_sql_begin();
	serving_scan(schema, psprintf("SELECT %s_id, support FROM %s.mf_%s_factors WHERE model_id = $1",
						 name, schema->quoted, name),
				1, &argtype, &value, types, lengthof(types),
				side == MF_USERS ? MF_USER_FACTORS_TABLE : MF_ITEM_FACTORS_TABLE,
				scan_support_row, &scan);
	internal_sql_end(sql);
}

/* State of mf_catalog_warm_start while it scans the stored item factors. */
typedef struct ItemLoad
{
	MfIdMap    *items;			/* item id -> dense index in the new data */
	mf_keymap_hash *item_keys;	/* or, for text ids, item key -> dense index */
	MfAls	   *als;
	double	   *values;			/* k numbers */
	int			k;
	int32		model_id;
	bool		biases;			/* the training's and the stored model's: its biases start */
	bool		single;			/* the training's precision */
	int32		matched;		/* items of the new data found stored */
} ItemLoad;

/*
 * mf_spi_scan callback: copies one stored item's factors and bias (0 when
 * the stored model has none), if the item is still rated.
 */
static void
load_item_row(TupleTableSlot *slot, void *arg)
{
	ItemLoad   *load = arg;
	int64		item_id = DatumGetInt64(slot->tts_values[0]);
	int32		index;

	if (load->item_keys)
		index = slot->tts_isnull[3] ? -1
			: mf_key_find(load->item_keys, TextDatumGetCString(slot->tts_values[3]));
	else
		index = mf_id_map_find(load->items, item_id);

	if (index >= 0)
	{
		/* as numbers of the training's precision, which they start */
		double		bias = !load->biases ? 0.0
			: stored_bias(slot->tts_values[2], slot->tts_isnull[2], MF_ITEMS, item_id,
						  load->model_id, load->single, MF_WARM_START_ROW_HINT);

		load->matched++;
		factors_from_datum(slot->tts_values[1], slot->tts_isnull[1], load->k, load->values,
						   MF_ITEMS, item_id, "factors", load->single, MF_WARM_START_ROW_HINT);
		mf_als_set_item(load->als, index, load->values, bias);
	}
}

bool
mf_catalog_warm_start(const MfSchema *schema, const char *model_name,
					  const MfFitOptions *options, const MfRatings *ratings,
					  MfAls *als)
{
	static const Oid model_types[] = {INT4OID, INT4OID, BOOLOID, BOOLOID};
	static const Oid item_types[] = {INT8OID, FLOAT8ARRAYOID, FLOAT8OID, TEXTOID};
	int			k = options->k;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(model_name)};
	char	   *query;
	bool		isnull;
	int32		model_id;
	int			stored_k;
	bool		stored_keys;
	bool		stored_biases;
	ItemLoad	load;
	InternalSql sql = internal_sql_begin();

	/*
	 * The model as the row the training locked holds it, under a snapshot
	 * taken now: the statement's may predate a retrain the lock waited for,
	 * or a refit earlier in the statement (SELECT mf_refit_items(...),
	 * mf_train(..., warm_start := true)).
	 */
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	query = psprintf("SELECT model_id, k, item_key_type IS NOT NULL, biases"
					 " FROM %s.mf_models WHERE name = $1", schema->quoted);
	if (SPI_execute_with_args(query, 1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", query);
	mf_check_column_types(SPI_tuptable->tupdesc, NULL, model_types, 4, "mf_models");
	if (SPI_processed == 0)
	{
		PopActiveSnapshot();
		internal_sql_end(sql);
		return false;
	}
	model_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	stored_k = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 2, &isnull));
	stored_keys = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 3, &isnull));
	stored_biases = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 4, &isnull));
	/* the caller checked both before reading: the model was retrained since */
	if (stored_k != k || stored_keys != (ratings->item_keys != NULL))
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("model %s was retrained after this training checked its warm start",
						mf_text_for_message(model_name)),
				 errdetail("The warm start needs item factors with k = %d and %s item ids; the model now has k = %d and %s item ids.",
						   k, ratings->item_keys ? "text" : "integer", stored_k,
						   stored_keys ? "text" : "integer"),
				 errhint("Run the training again once the other training has committed (a source that retrains the model as it is read, through a function in a view, does so every time).")));

	load.items = mf_id_map_from_sorted(CurrentMemoryContext, ratings->item_ids,
									   ratings->n_items);
	load.item_keys = ratings->item_keys
		? mf_key_map(CurrentMemoryContext, ratings->item_keys, ratings->n_items) : NULL;
	load.k = k;
	load.model_id = model_id;
	load.biases = options->biases && stored_biases;
	load.single = options->single;
	load.matched = 0;
	load.als = als;
	load.values = palloc(sizeof(double) * Max(k, 1));
	argtypes[0] = INT4OID;
	args[0] = Int32GetDatum(model_id);
	mf_spi_scan(psprintf("SELECT item_id, factors, bias, item_key FROM %s.mf_item_factors WHERE model_id = $1",
						 schema->quoted),
				1, argtypes, args, item_types, lengthof(item_types), MF_ITEM_FACTORS_TABLE,
				load_item_row, &load);
	PopActiveSnapshot();
	internal_sql_end(sql);
	/* a warm start from nothing: another item column, or another catalogue's ids */
	if (load.matched == 0)
		ereport(NOTICE,
				(errmsg("warm start from model %s found none of the %d items of the data among its stored items",
						mf_text_for_message(model_name), ratings->n_items),
				 errdetail("Every item starts as without warm_start."),
				 errhint("Check that the item column names the items the model was trained on.")));
	return true;
}

/*
 * The item ids of a stored rated_items array (value) of user_id, checked
 * to be a bigint[] without NULLs; *count gets their number.
 */
static const int64 *
rated_item_ids(int32 model_id, int64 user_id, Datum value, int *count)
{
	ArrayType  *rated = DatumGetArrayTypeP(value);

	if (ARR_ELEMTYPE(rated) != INT8OID || ARR_HASNULL(rated))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("rated_items of user " INT64_FORMAT " in model %d is not a bigint[] without NULLs",
						user_id, model_id),
				 errhint("Retrain the model with mf_train.")));
	*count = ArrayGetNItems(ARR_NDIM(rated), ARR_DIMS(rated));
	return (const int64 *) ARR_DATA_PTR(rated);
}

/* A rated-items read: the model, and fn or where one user's items go. */
typedef struct RatedRead
{
	int32		model_id;
	MfRatedFn	fn;				/* every user's, or */
	void	   *arg;
	int64	  **items;			/* one user's, copied into cxt */
	int		   *count;
	MemoryContext cxt;
} RatedRead;

/* serving_scan callback: one user's id and rated items (NULL: none). */
static void
read_rated_row(TupleTableSlot *slot, void *arg)
{
	RatedRead  *read = arg;
	int64		user_id = DatumGetInt64(slot->tts_values[0]);
	const int64 *ids = NULL;
	int			count = 0;

	if (!slot->tts_isnull[1])
		ids = rated_item_ids(read->model_id, user_id, slot->tts_values[1], &count);
	if (read->fn)
	{
		read->fn(user_id, ids, count, read->arg);
		return;
	}
	if (ids == NULL)
		return;
	*read->items = mf_alloc_array(read->cxt, Max(count, 1), sizeof(int64));
	memcpy(*read->items, ids, sizeof(int64) * count);
	*read->count = count;
}

int64 *
mf_catalog_rated_items(const MfSchema *schema, int32 model_id, int64 user_id,
					   int *count, MemoryContext cxt)
{
	static SavedPlan plan;
	static const Oid rated_type = INT8ARRAYOID;
	Oid			argtypes[2] = {INT4OID, INT8OID};
	Datum		args[2] = {Int32GetDatum(model_id), Int64GetDatum(user_id)};
	int64	   *items = NULL;
	InternalSql sql = internal_sql_begin();

	*count = 0;
	if (schema->remote)
	{
		static const Oid types[] = {INT8OID, INT8ARRAYOID};
		RatedRead	read = {model_id, NULL, NULL, &items, count, cxt};

		serving_scan(schema, psprintf("SELECT user_id, rated_items FROM %s.mf_user_factors WHERE model_id = $1 AND user_id = $2",
									  schema->quoted),
					 2, argtypes, args, types, lengthof(types), MF_USER_FACTORS_TABLE,
					 read_rated_row, &read);
		internal_sql_end(sql);
		return items;
	}
	check_rated_items_read(factors_relid(schema, MF_USERS), NULL, NULL);
	if (SPI_execute_plan(saved_plan(&plan,
									psprintf("SELECT rated_items FROM %s.mf_user_factors WHERE model_id = $1 AND user_id = $2",
											 schema->quoted),
									2, argtypes),
						 args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the rated items of user " INT64_FORMAT, user_id);
	mf_check_column_types(SPI_tuptable->tupdesc, NULL, &rated_type, 1, MF_USER_FACTORS_TABLE);
	if (SPI_processed == 0)
		mf_catalog_user_rows_gone(model_id, psprintf("the row of user_id " INT64_FORMAT, user_id));
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		value = SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			const int64 *ids = rated_item_ids(model_id, user_id, value, count);

			items = mf_alloc_array(cxt, Max(*count, 1), sizeof(int64));
			memcpy(items, ids, sizeof(int64) * *count);
		}
	}
	internal_sql_end(sql);
	return items;
}

void
mf_catalog_check_users_read(int32 model_id, int64 users_read, int32 n_users)
{
	if (users_read < n_users)
		mf_catalog_user_rows_gone(model_id,
								  psprintf(INT64_FORMAT " of its %d users' rows",
										   n_users - users_read, n_users));
}

void
mf_catalog_user_rows_gone(int32 model_id, const char *which)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("model %d lacks %s in %s, whose factors this session holds",
					model_id, which, MF_USER_FACTORS_TABLE),
			 errdetail("Rows were deleted from %s (by a DELETE or TRUNCATE of the table, not by mf_ext) after this session read the model's factors; the users' rated items, which exclude_rated leaves out, went with them.",
					   MF_USER_FACTORS_TABLE),
			 errhint("Retrain the model with mf_train, or restore its factor rows.")));
}

Portal
mf_catalog_open_rated_items(const MfSchema *schema, int32 model_id)
{
	Oid			argtype = INT4OID;
	Datum		arg = Int32GetDatum(model_id);
	InternalSql sql = internal_sql_begin();
	Portal		cursor;

	if (schema->remote)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("mf_recommend_all and mf_recommend_users_all with exclude_rated run on the Citus coordinator, not on a worker"),
				 errhint("Call it on the coordinator.")));
	check_rated_items_read(factors_relid(schema, MF_USERS), NULL, NULL);
	cursor = SPI_cursor_open_with_args(NULL,
									   psprintf("SELECT user_id, rated_items FROM %s.mf_user_factors WHERE model_id = $1 ORDER BY user_id",
												schema->quoted),
									   1, &argtype, &arg, NULL, true, 0);
	internal_sql_end(sql);
	return cursor;
}

uint64
mf_catalog_fetch_rated_items(Portal cursor, int32 model_id, int max, MfRatedFn fn, void *arg)
{
	static const Oid rated_types[] = {INT8OID, INT8ARRAYOID};
	uint64		fetched;

	InternalSql sql = internal_sql_begin();

	SPI_cursor_fetch(cursor, true, max);
	internal_sql_end(sql);		/* a policy's function ran */
	mf_check_column_types(SPI_tuptable->tupdesc, NULL, rated_types, 2, MF_USER_FACTORS_TABLE);
	fetched = SPI_processed;
	for (uint64 r = 0; r < fetched; r++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		user_id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
		Datum		value = SPI_getbinval(tuple, desc, 2, &isnull);
		const int64 *ids = NULL;
		int			count = 0;

		if (!isnull)
			ids = rated_item_ids(model_id, user_id, value, &count);
		fn(user_id, ids, count, arg);
	}
	SPI_freetuptable(SPI_tuptable);
	return fetched;
}

bool
mf_catalog_check_rated_items_read(const MfSchema *schema, const char *what_reads,
								  const char *alternative)
{
	MfModelTables tables;

	if (schema->remote)
		return false;
	tables = mf_catalog_open_for_reading(schema);
	check_rated_items_read(tables.users, what_reads, alternative);
	return !tables.factors_rls;
}

/*
 * fn for the rated items of model model_id's users: every user's, read by
 * serving_scan with the statement's snapshot; or (users not NULL) the
 * n_users listed, through SPI with a new snapshot (now).
 */
static void
scan_rated_items(const MfSchema *schema, int32 model_id, const int64 *users, int n_users,
				 MfRatedFn fn, void *arg)
{
	static const Oid types[] = {INT8OID, INT8ARRAYOID};
	RatedRead	read = {model_id, fn, arg, NULL, NULL, NULL};
	Oid			argtypes[2] = {INT4OID, INT8ARRAYOID};
	Datum		values[2] = {Int32GetDatum(model_id)};
	char	   *query = psprintf("SELECT user_id, rated_items FROM %s.mf_user_factors WHERE model_id = $1%s",
								 schema->quoted, users ? " AND user_id = ANY ($2)" : "");
	InternalSql sql = internal_sql_begin();

	if (users)
	{
		values[1] = PointerGetDatum(mf_flat_array(INT8OID, users, n_users));
		mf_spi_scan_fresh(query, 2, argtypes, values, types, lengthof(types),
						  MF_USER_FACTORS_TABLE, read_rated_row, &read);
	}
	else
		serving_scan(schema, query, 1, argtypes, values, types, lengthof(types),
					 MF_USER_FACTORS_TABLE, read_rated_row, &read);
	internal_sql_end(sql);
}

void
mf_catalog_scan_rated_items(const MfSchema *schema, int32 model_id, MfRatedFn fn, void *arg)
{
	scan_rated_items(schema, model_id, NULL, 0, fn, arg);
}

void
mf_catalog_read_rated_items_now(const MfSchema *schema, int32 model_id, const int64 *users,
								int n_users, MfRatedFn fn, void *arg)
{
	scan_rated_items(schema, model_id, users, n_users, fn, arg);
}
