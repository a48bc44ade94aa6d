/*-------------------------------------------------------------------------
 *
 * refit.c
 *	  mf_refit_users() and mf_refit_items(): after new ratings arrive,
 *	  recompute the factors of the users (items) that have ratings in a
 *	  relation, with the other side of the stored model held fixed, and
 *	  write them into the model — an incremental update without a full
 *	  retraining.
 *
 *	  Each row is solved exactly as a new row is in training's half-step
 *	  (and as mf_fold_in solves a user), from 0, against the stored other
 *	  side; ratings of items (users) the model does not know are skipped.
 *	  Rows are replaced or added in the caller's transaction, under the
 *	  model row's lock, and the model gets a new version.
 *
 *-------------------------------------------------------------------------
 */
#include "mf_ext.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(mf_refit_users);
PG_FUNCTION_INFO_V1(mf_refit_users_by_name);
PG_FUNCTION_INFO_V1(mf_refit_items);
PG_FUNCTION_INFO_V1(mf_refit_items_by_name);

/*
 * The relation a model was trained on, as recorded in mf_models.source,
 * to refit from by default.  Any role that may train can write that
 * column, and reading a relation runs code its owner chose (functions in
 * a view, row-level security policies) with the reader's rights: so it is
 * read only when the caller owns it, and it must be schema-qualified, as
 * training records it.
 */
static Oid
stored_source(const char *stored, FunctionCallInfo fcinfo)
{
	const char *function = get_func_name(fcinfo->flinfo->fn_oid);
	List	   *names = stringToQualifiedNameList(stored);
	Oid			relid;
	HeapTuple	tuple;
	Oid			owner;

	if (list_length(names) < 2)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the model's source \"%s\" is not schema-qualified", stored),
				 errdetail("mf_train records the source as schema.relation."),
				 errhint("Pass the relation to refit from as source.")));
	relid = RangeVarGetRelid(makeRangeVarFromNameList(names), NoLock, true);
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the model's source %s does not exist", stored),
				 errhint("Pass the relation to refit from as source.")));
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	if (owner != GetUserId())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s reads the model's source only when you own it, and %s is owned by role %s",
						function, stored, GetUserNameFromId(owner, false)),
				 errdetail("Any role that may train can name the source a model records, and reading a relation runs code its owner chose (functions in a view, row-level security policies) with your rights."),
				 errhint("Pass it explicitly if you trust its owner: %s(model, source := %s); or refit as its owner.",
						 function, quote_literal_cstr(stored))));
	return relid;
}

/*
 * Locks the model's row, notes its version in *version, and reads the
 * relation to refit from (argument 1, or the model's source) with the
 * model's columns.
 */
static MfRatings *
read_refit_source(FunctionCallInfo fcinfo, const char *schema, int32 model_id,
				  int64 *version, MemoryContext cxt)
{
	static const Oid model_types[] = {TEXTOID, NAMEOID, NAMEOID, NAMEOID, INT8OID};
	Oid			argtype = INT4OID;
	Datum		arg = Int32GetDatum(model_id);
	MfSource	source;
	bool		isnull;
	int			nest_level = mf_internal_sql_begin();

	if (SPI_execute_with_args(psprintf("SELECT source, user_col, item_col, rating_col, version FROM %s.mf_models WHERE model_id = $1 FOR UPDATE",
									   schema),
							  1, &argtype, &arg, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model %d does not exist", model_id)));
	mf_internal_sql_end(nest_level);
	mf_check_column_types(SPI_tuptable->tupdesc, NULL, model_types, lengthof(model_types),
						  "mf_models");
	*version = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5, &isnull));
	source.argname = "source";
	source.fixed_columns = true;
	if (PG_ARGISNULL(1))
		source.relid = stored_source(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
									 fcinfo);
	else
		source.relid = PG_GETARG_OID(1);
	source.user_col = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
	source.item_col = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3));
	source.rating_col = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4));
	mf_source_validate(&source);
	return mf_ratings_read(&source, cxt);
}

/*
 * mf_refit_users / mf_refit_items (users tells which): returns the number
 * of rows refitted.  found is the model as first looked up; reading the
 * source runs the caller's SQL, so only its id is kept across the read.
 */
static Datum
refit(FunctionCallInfo fcinfo, MfModel *found, bool users)
{
	int32		model_id = found->model_id;
	const char *schema = mf_schema_quoted(fcinfo);
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "mf_refit",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	MfRatings  *ratings;
	MfModel    *model;
	const MfFactors *f;
	const MfCsr *source_rows;
	const int64 *row_ids;
	char	  **row_keys;
	char	  **keys = NULL;
	int64		new_id = 0;
	int32	   *fixed_of;
	int32		n_fixed_source;
	MfCsr		rows;
	int64	   *ids;
	int32	   *rated_start = NULL;
	int64	   *rated = NULL;
	int64		skipped = 0;
	int64		n = 0;
	int32		n_rated = 0;
	int64		version;
	int32		failed;
	void	   *solved;
	double	   *bias;
	double	   *factors;

	mf_check_write_privileges(get_func_namespace(fcinfo->flinfo->fn_oid),
							  users ? "mf_refit_users" : "mf_refit_items");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ratings = read_refit_source(fcinfo, schema, model_id, &version, cxt);

	/*
	 * The row is locked now, as it was last committed (or as this
	 * transaction last wrote it: another refit in the same statement): a
	 * snapshot taken after the lock sees the factors of that version,
	 * which the statement's own snapshot may predate.
	 */
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	model = mf_cache_model_by_id(fcinfo, model_id);
	PopActiveSnapshot();
	f = &model->factors;
	if (model->version != version)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("model \"%s\" changed while mf_refit_%s read it",
						model->name, users ? "users" : "items"),
				 errdetail("The locked row of mf_models has version " INT64_FORMAT ", the factors read have version " INT64_FORMAT ".",
						   version, model->version),
				 errhint("Run mf_refit_%s again.", users ? "users" : "items")));
	mf_check_same_id_kind(ratings, model->user_keys != NULL, model->item_keys != NULL,
						  "the relation to refit from");
	if (f->implicit)
		mf_implicit_strengths(ratings, model->fit.alpha);

	/* the source's rows of the side to refit, in the model's other side */
	source_rows = users ? &ratings->by_user : &ratings->by_item;
	row_ids = users ? ratings->user_ids : ratings->item_ids;
	n_fixed_source = users ? ratings->n_items : ratings->n_users;
	fixed_of = mf_alloc_array(cxt, n_fixed_source, sizeof(int32));
	for (int32 c = 0; c < n_fixed_source; c++)
		fixed_of[c] = users
			? mf_model_index(model->item_map, model->item_keymap, ratings, false, c)
			: mf_model_index(model->user_map, model->user_keymap, ratings, true, c);
	row_keys = users ? ratings->user_keys : ratings->item_keys;
	if (row_keys)
	{
		/* a key the model lacks becomes a new row, numbered after the last */
		const int64 *model_ids = users ? model->user_ids : model->item_ids;
		int32		n_model = users ? f->n_users : f->n_items;

		for (int32 r = 0; r < n_model; r++)
			new_id = Max(new_id, model_ids[r] + 1);
		keys = mf_alloc_array(cxt, Max(source_rows->n_rows, 1), sizeof(char *));
	}

	rows.n_rows = 0;
	rows.row_start = mf_alloc_array(cxt, (Size) source_rows->n_rows + 1, sizeof(int64));
	rows.col = mf_alloc_array(cxt, ratings->n_ratings, sizeof(int32));
	rows.val = mf_alloc_array(cxt, ratings->n_ratings, sizeof(double));
	rows.row_start[0] = 0;
	ids = mf_alloc_array(cxt, source_rows->n_rows, sizeof(int64));
	if (users)
	{
		rated_start = mf_alloc_array(cxt, (Size) source_rows->n_rows + 1, sizeof(int32));
		rated = mf_alloc_array(cxt, ratings->n_ratings, sizeof(int64));
		rated_start[0] = 0;
	}
	for (int32 r = 0; r < source_rows->n_rows; r++)
	{
		int64		begin = n;

		for (int64 e = source_rows->row_start[r]; e < source_rows->row_start[r + 1]; e++)
		{
			int32		c = fixed_of[source_rows->col[e]];

			if (c < 0)
			{
				skipped++;
				continue;
			}
			rows.col[n] = c;
			rows.val[n] = source_rows->val[e];
			/* entries are sorted by the other side: list each item once */
			if (users && (n == begin || c != rows.col[n - 1]))
				rated[n_rated++] = model->item_ids[c];
			n++;
		}
		if (n == begin)
			continue;
		if (row_keys)
		{
			int32		known = mf_key_lookup(users ? model->user_keymap : model->item_keymap,
											  row_keys[r]);

			keys[rows.n_rows] = row_keys[r];
			ids[rows.n_rows] = known >= 0 ? (users ? model->user_ids : model->item_ids)[known]
				: new_id++;
		}
		else
			ids[rows.n_rows] = row_ids[r];
		rows.row_start[++rows.n_rows] = n;
		if (users)
			rated_start[rows.n_rows] = n_rated;
	}
	if (skipped > 0)
		ereport(NOTICE,
				(errmsg("skipped " INT64_FORMAT " ratings of %s the model does not know",
						skipped, users ? "items" : "users"),
				 errhint("Run mf_refit_%s first to add them, or retrain.",
						 users ? "items" : "users")));

	solved = mf_alloc_array(cxt, mul_size(Max(rows.n_rows, 1), Max(f->k, 1)),
							f->single ? sizeof(float) : sizeof(double));
	bias = f->biases ? mf_alloc_array(cxt, Max(rows.n_rows, 1), sizeof(double)) : NULL;
	failed = rows.n_rows > 0
		? mf_als_solve_against(f, users, &model->fit, &rows, solved, bias, cxt) : -1;
	if (failed >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("the least-squares system of %s %s could not be solved in refitting model \"%s\"",
						users ? "user" : "item",
						keys ? keys[failed] : psprintf(INT64_FORMAT, ids[failed]), model->name),
				 model->fit.lambda == 0
				 ? errdetail("The model was trained with lambda = 0, and that %s's ratings do not determine all its unknowns (or are so large that floating point overflowed).",
							 users ? "user" : "item")
				 : errdetail("Its ratings are so large that floating point overflowed."),
				 errhint("Give the ratings the training data's scale, or retrain the model with lambda > 0.")));

	factors = mf_alloc_array(cxt, mul_size(Max(rows.n_rows, 1), Max(f->k, 1)), sizeof(double));
	for (Size j = 0; j < (Size) rows.n_rows * f->k; j++)
		factors[j] = f->single ? ((float *) solved)[j] : ((double *) solved)[j];
	if (rows.n_rows > 0)
		mf_store_replace_rows(schema, model_id, users, f->k, ids, keys, rows.n_rows,
							  factors, bias, rated_start, rated);
	SPI_finish();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	PG_RETURN_INT32(rows.n_rows);
}

Datum
mf_refit_users(PG_FUNCTION_ARGS)
{
	mf_require_model_argument(fcinfo);
	return refit(fcinfo, mf_cache_model_by_id(fcinfo, PG_GETARG_INT32(0)), true);
}

Datum
mf_refit_users_by_name(PG_FUNCTION_ARGS)
{
	mf_require_model_argument(fcinfo);
	return refit(fcinfo, mf_cache_model_by_name(fcinfo, PG_GETARG_TEXT_PP(0)), true);
}

Datum
mf_refit_items(PG_FUNCTION_ARGS)
{
	mf_require_model_argument(fcinfo);
	return refit(fcinfo, mf_cache_model_by_id(fcinfo, PG_GETARG_INT32(0)), false);
}

Datum
mf_refit_items_by_name(PG_FUNCTION_ARGS)
{
	mf_require_model_argument(fcinfo);
	return refit(fcinfo, mf_cache_model_by_name(fcinfo, PG_GETARG_TEXT_PP(0)), false);
}
