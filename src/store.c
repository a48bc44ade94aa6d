/*-------------------------------------------------------------------------
 *
 * store.c
 *	  Writes a trained model into mf_models / mf_user_factors /
 *	  mf_item_factors, and reads stored item factors back for warm starts.
 *
 *	  A model is replaced inside the caller's transaction: the model row is
 *	  upserted (which locks it and keeps its model_id), its factor rows are
 *	  deleted and rewritten, and its version is taken from a sequence.  Other
 *	  sessions keep seeing the old rows until the transaction commits; an
 *	  error rolls everything back.  The caller must be connected to SPI.
 *
 *-------------------------------------------------------------------------
 */
#include "mf_ext.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

/* Factor rows, and factors, written per INSERT statement at the most. */
#define MF_STORE_BATCH_ROWS		10000
#define MF_STORE_BATCH_NUMBERS	(256 * 1024)
/* Rated item ids written per INSERT statement (soft limit). */
#define MF_STORE_BATCH_RATED	(256 * 1024)

/* A one-dimensional array of n fixed-width, no-NULL elements. */
ArrayType *
mf_flat_array(Oid elemtype, const void *values, int n)
{
	int16		elem_len = get_typlen(elemtype);
	Size		bytes = add_size(ARR_OVERHEAD_NONULLS(1), mul_size(n, elem_len));
	ArrayType  *array;

	if (n == 0)
		return construct_empty_array(elemtype);
	array = palloc0(bytes);

	SET_VARSIZE(array, bytes);
	array->ndim = 1;
	array->dataoffset = 0;
	array->elemtype = elemtype;
	ARR_DIMS(array)[0] = n;
	ARR_LBOUND(array)[0] = 1;
	memcpy(ARR_DATA_PTR(array), values, (Size) n * elem_len);
	return array;
}

/*
 * Copies a stored factors array (double precision[] of exactly k numbers;
 * empty for k = 0) into out, or raises an error naming the user or item
 * whose row is bad.
 */
void
mf_factors_from_datum(Datum datum, bool isnull, int k, double *out,
					  const char *side, int64 id)
{
	ArrayType  *array = isnull ? NULL : DatumGetArrayTypeP(datum);

	if (array == NULL || ARR_ELEMTYPE(array) != FLOAT8OID || ARR_HASNULL(array) ||
		ArrayGetNItems(ARR_NDIM(array), ARR_DIMS(array)) != k ||
		(k > 0 && ARR_NDIM(array) != 1))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("stored factors of %s " INT64_FORMAT " are not an array of %d numbers",
						side, id, k),
				 errhint("Retrain the model with mf_train, or restore its factor rows.")));
	if (k > 0)
		memcpy(out, ARR_DATA_PTR(array), sizeof(double) * k);
	for (int j = 0; j < k; j++)
		if (!isfinite(out[j]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("stored factors of %s " INT64_FORMAT " are not all finite", side, id),
					 errhint("Retrain the model with mf_train, or restore its factor rows.")));
}

/* State of mf_store_load_items while it scans the stored item factors. */
typedef struct ItemLoad
{
	MfIdIndex  *items;			/* item id -> dense index in the new data */
	mf_keymap_hash *item_keys;	/* or, for text ids, item key -> dense index */
	MfAls	   *als;
	double	   *values;			/* k numbers */
	int			k;
} ItemLoad;

/*
 * mf_spi_scan callback: copies one stored item's factors and bias (0 when
 * the stored model has none), if the item is still rated.
 */
static void
load_item_row(HeapTuple tuple, TupleDesc desc, void *arg)
{
	ItemLoad   *load = arg;
	bool		isnull;
	int64		item_id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
	Datum		factors = SPI_getbinval(tuple, desc, 2, &isnull);
	bool		key_isnull;
	Datum		key = SPI_getbinval(tuple, desc, 4, &key_isnull);
	int32		index;

	if (load->item_keys)
		index = key_isnull ? -1 : mf_key_lookup(load->item_keys, TextDatumGetCString(key));
	else
		index = mf_id_index(load->items, item_id);

	if (index >= 0)
	{
		Datum		bias;

		mf_factors_from_datum(factors, isnull, load->k, load->values, "item", item_id);
		bias = SPI_getbinval(tuple, desc, 3, &isnull);
		mf_als_set_item(load->als, index, load->values,
						isnull ? 0.0 : DatumGetFloat8(bias));
	}
}

/*
 * Overwrites the solver's item factors (and biases) for the items that the
 * stored model named model_name holds.  Returns false when there is no
 * such model.
 */
static bool
load_items(const char *schema, const char *model_name,
		   const MfFitOptions *options, const MfRatings *ratings, MfAls *als)
{
	static const Oid model_types[] = {INT4OID, INT4OID, BOOLOID};
	static const Oid item_types[] = {INT8OID, FLOAT8ARRAYOID, FLOAT8OID, TEXTOID};
	int			k = options->k;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(model_name)};
	char	   *query;
	bool		isnull;
	int32		model_id;
	int			stored_k;
	ItemLoad	load;

	query = psprintf("SELECT model_id, k, item_key_type IS NOT NULL"
					 " FROM %s.mf_models WHERE name = $1", schema);
	if (SPI_execute_with_args(query, 1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", query);
	mf_check_column_types(SPI_tuptable->tupdesc, NULL, model_types, 3, "mf_models");
	if (SPI_processed == 0)
		return false;
	model_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	stored_k = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 2, &isnull));
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull)) !=
		(ratings->item_keys != NULL))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("warm start needs item ids of the kind stored model \"%s\" has", model_name),
				 errdetail("Its items are identified by %s, those of the source by %s.",
						   ratings->item_keys ? "integers" : "text keys",
						   ratings->item_keys ? "text keys" : "integers"),
				 errhint("Train without warm_start, or from a relation whose item column has the stored model's type.")));
	if (stored_k != k)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("warm start needs k = %d, the k of stored model \"%s\", but k = %d was given",
						stored_k, model_name, k),
				 errhint("Pass k := %d, or train without warm_start.", stored_k)));

	load.items = mf_id_index_from_sorted(CurrentMemoryContext, ratings->item_ids,
										 ratings->n_items);
	load.item_keys = ratings->item_keys
		? mf_key_index(CurrentMemoryContext, ratings->item_keys, ratings->n_items) : NULL;
	load.k = k;
	load.als = als;
	load.values = palloc(sizeof(double) * Max(k, 1));
	argtypes[0] = INT4OID;
	args[0] = Int32GetDatum(model_id);
	mf_spi_scan(psprintf("SELECT item_id, factors, bias, item_key FROM %s.mf_item_factors WHERE model_id = $1",
						 schema),
				1, argtypes, args, item_types, lengthof(item_types), "mf_item_factors",
				load_item_row, &load);
	return true;
}

/* Inserts or updates the model row; returns its model_id. */
static int32
upsert_model_row(const char *schema, const MfModelRecord *record,
				 const MfRatings *ratings, const MfFactors *factors)
{
	static const Oid model_id_type = INT4OID;
	const MfFitOptions *options = &record->options;
	const MfFitHistory *history = &record->history;
	Oid			argtypes[] = {TEXTOID, TEXTOID, NAMEOID, NAMEOID, NAMEOID,
		INT4OID, FLOAT8OID, INT4OID, INT4OID, BOOLOID,
		INT8OID, INT8OID, INT8OID, INT8OID,
		FLOAT8ARRAYOID, FLOAT8OID, FLOAT8OID,
		BOOLOID, FLOAT8OID, FLOAT8ARRAYOID,
		BOOLOID, FLOAT8OID, BOOLOID, FLOAT8OID, INT4OID, FLOAT8ARRAYOID,
		TEXTOID, FLOAT8ARRAYOID,
	TEXTOID, FLOAT8OID, TEXTOID, BOOLOID, REGTYPEOID, REGTYPEOID};
	Datum		args[lengthof(argtypes)];
	char		nulls[lengthof(argtypes)];
	const char *columns = "source, user_col, item_col, rating_col, k, lambda,"
		" iterations, seed, warm_start, n_users, n_items, n_ratings,"
		" skipped_rows, loss, train_rmse, train_seconds, double_precision,"
		" load_seconds, iteration_seconds, biases, global_mean,"
		" weighted_lambda, tolerance, iterations_run, train_rmse_history,"
		" validation, validation_rmse, feedback, alpha, solver, nonnegative,"
		" user_key_type, item_key_type, trained_at, version";
	int			run = history->iterations_run;
	char	   *values;
	char	   *query;
	bool		isnull;
	int			n = 0;

	memset(nulls, ' ', sizeof(nulls));
	args[n++] = CStringGetTextDatum(record->name);
	args[n++] = CStringGetTextDatum(record->source);
	args[n++] = DirectFunctionCall1(namein, CStringGetDatum(record->user_col));
	args[n++] = DirectFunctionCall1(namein, CStringGetDatum(record->item_col));
	args[n++] = DirectFunctionCall1(namein, CStringGetDatum(record->rating_col));
	args[n++] = Int32GetDatum(options->k);
	args[n++] = Float8GetDatum(options->lambda);
	args[n++] = Int32GetDatum(options->iterations);
	args[n++] = Int32GetDatum(options->seed);
	args[n++] = BoolGetDatum(record->warm_start);
	args[n++] = Int64GetDatum(ratings->n_users);
	args[n++] = Int64GetDatum(ratings->n_items);
	args[n++] = Int64GetDatum(ratings->n_ratings);
	args[n++] = Int64GetDatum(ratings->n_skipped);
	args[n++] = PointerGetDatum(mf_flat_array(FLOAT8OID, history->loss, run));
	args[n++] = Float8GetDatum(record->train_rmse);
	args[n++] = Float8GetDatum(record->train_seconds);
	args[n++] = BoolGetDatum(!options->single);
	args[n++] = Float8GetDatum(record->load_seconds);
	args[n++] = PointerGetDatum(mf_flat_array(FLOAT8OID, history->seconds, run));
	args[n++] = BoolGetDatum(options->biases);
	if (!options->biases)
		nulls[n] = 'n';
	args[n++] = Float8GetDatum(factors->mean);
	args[n++] = BoolGetDatum(options->weighted_lambda);
	args[n++] = Float8GetDatum(options->tolerance);
	args[n++] = Int32GetDatum(run);
	args[n++] = PointerGetDatum(mf_flat_array(FLOAT8OID, history->train_rmse, run));
	if (record->validation == NULL)
	{
		nulls[n] = 'n';
		nulls[n + 1] = 'n';
		args[n++] = (Datum) 0;
		args[n++] = (Datum) 0;
	}
	else
	{
		args[n++] = CStringGetTextDatum(record->validation);
		args[n++] = PointerGetDatum(mf_flat_array(FLOAT8OID, history->validation_rmse, run));
	}
	args[n++] = CStringGetTextDatum(options->implicit ? "implicit" : "explicit");
	if (!options->implicit)
		nulls[n] = 'n';
	args[n++] = Float8GetDatum(options->alpha);
	args[n++] = CStringGetTextDatum(options->nonnegative ? "nnls"
									: options->conjugate_gradient ? "cg" : "cholesky");
	args[n++] = BoolGetDatum(options->nonnegative);
	if (!OidIsValid(record->user_key_type))
		nulls[n] = 'n';
	args[n++] = ObjectIdGetDatum(record->user_key_type);
	if (!OidIsValid(record->item_key_type))
		nulls[n] = 'n';
	args[n++] = ObjectIdGetDatum(record->item_key_type);
	Assert(n == lengthof(argtypes));

	/*
	 * Lock and update the existing row first, so that a retrain does not
	 * draw a model_id from the serial; insert only when there is none (and
	 * should a concurrent session insert the same name first, update that
	 * row).  Replacing a model trained on another relation is worth a word.
	 */
	query = psprintf("SELECT source FROM %s.mf_models WHERE name = $1 FOR UPDATE", schema);
	if (SPI_execute_with_args(query, 1, argtypes, args, nulls, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not lock the model row");
	if (SPI_processed == 1)
	{
		char	   *old_source = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (strcmp(old_source, record->source) != 0)
			ereport(NOTICE,
					(errmsg("model \"%s\" was trained on %s and is now replaced by one trained on %s",
							record->name, old_source, record->source),
					 errhint("Pass model_name to keep models of different relations apart.")));
	}

	values = psprintf("$2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
					  " $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25,"
					  " $26, $27, $28, $29, $30, $31, $32, $33, $34, pg_catalog.now(),"
					  " pg_catalog.nextval(%s::pg_catalog.regclass)",
					  quote_literal_cstr(psprintf("%s.mf_model_version_seq", schema)));
	query = psprintf("UPDATE %s.mf_models SET (%s) = ROW(%s) WHERE name = $1 RETURNING model_id",
					 schema, columns, values);
	if (SPI_execute_with_args(query, lengthof(argtypes), argtypes, args, nulls,
							  false, 0) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not update the model row");
	if (SPI_processed == 0)
	{
		query = psprintf("INSERT INTO %s.mf_models (name, %s) VALUES ($1, %s)"
						 " ON CONFLICT (name) DO UPDATE SET (%s) = ROW(%s)"
						 " RETURNING model_id",
						 schema, columns, values, columns, values);
		if (SPI_execute_with_args(query, lengthof(argtypes), argtypes, args, nulls,
								  false, 0) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "could not insert the model row");
	}
	if (SPI_processed != 1)
		elog(ERROR, "could not write the model row");
	mf_check_column_types(SPI_tuptable->tupdesc, NULL, &model_id_type, 1, "mf_models");
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * An INSERT of factor rows from array parameters: $2 the ids, $3 their
 * factors ($4 = k per row), $5 the biases (or NULL), $6 the text keys (or
 * NULL) and, for users, $7 the offsets of each row's rated items in $8.
 */
static SPIPlanPtr
prepare_row_insert(const char *schema, bool users)
{
	Oid			argtypes[] = {INT4OID, INT8ARRAYOID, FLOAT8ARRAYOID, INT4OID,
	FLOAT8ARRAYOID, TEXTARRAYOID, INT4ARRAYOID, INT8ARRAYOID};
	SPIPlanPtr	plan;

	/* $6 is joined by position: subscripting a text[] walks it from the start */
	plan = SPI_prepare(psprintf("INSERT INTO %s.%s (model_id, %s, factors, bias, %s%s)"
								" SELECT $1, $2[i], $3[(i - 1) * $4 + 1 : i * $4], $5[i], key.value%s"
								" FROM pg_catalog.generate_subscripts($2, 1) AS i"
								" LEFT JOIN ROWS FROM (pg_catalog.unnest($6)) WITH ORDINALITY"
								" AS key (value, position) ON key.position = i",
								schema, users ? "mf_user_factors" : "mf_item_factors",
								users ? "user_id" : "item_id",
								users ? "user_key" : "item_key",
								users ? ", rated_items" : "",
								users ? ", $8[$7[i] + 1 : $7[i + 1]]" : ""),
					   users ? 8 : 6, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	return plan;
}

/*
 * Inserts n rows through plan (prepare_row_insert): ids, factors (n x k),
 * bias (n, or NULL), keys (n, or NULL) and, for users, rated_start (n + 1
 * offsets from 0) into rated.
 */
static void
insert_batch(SPIPlanPtr plan, bool users, int32 model_id, int k,
			 const int64 *ids, int32 n, const double *factors, const double *bias,
			 char *const *keys, const int32 *rated_start, const int64 *rated)
{
	Datum		args[8];
	char		nulls[8];
	int			nargs = users ? 8 : 6;

	memset(nulls, ' ', sizeof(nulls));
	args[0] = Int32GetDatum(model_id);
	args[1] = PointerGetDatum(mf_flat_array(INT8OID, ids, n));
	args[2] = PointerGetDatum(mf_flat_array(FLOAT8OID, factors, n * k));
	args[3] = Int32GetDatum(k);
	args[4] = bias ? PointerGetDatum(mf_flat_array(FLOAT8OID, bias, n)) : (Datum) 0;
	if (!bias)
		nulls[4] = 'n';
	args[5] = (Datum) 0;
	if (keys)
	{
		Datum	   *texts = palloc(sizeof(Datum) * Max(n, 1));

		for (int32 r = 0; r < n; r++)
			texts[r] = CStringGetTextDatum(keys[r]);
		args[5] = PointerGetDatum(construct_array(texts, n, TEXTOID, -1, false, TYPALIGN_INT));
	}
	else
		nulls[5] = 'n';
	if (users)
	{
		args[6] = PointerGetDatum(mf_flat_array(INT4OID, rated_start, n + 1));
		args[7] = PointerGetDatum(mf_flat_array(INT8OID, rated, rated_start[n]));
	}
	if (SPI_execute_plan(plan, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write the factors of model %d", model_id);
	for (int a = 1; a < nargs; a++)
		if (a != 3 && nulls[a] != 'n')
			pfree(DatumGetPointer(args[a]));
}

/*
 * Writes one side's factors and biases (and, for users, the sorted distinct
 * ids of the items each rated) in batches of one INSERT ... SELECT over
 * array parameters.
 */
static void
insert_factor_rows(const char *schema, int32 model_id, int k, bool users,
				   const MfRatings *ratings, const MfAls *als)
{
	int32		batch_rows = Min(MF_STORE_BATCH_ROWS,
								 Max(1, MF_STORE_BATCH_NUMBERS / Max(k, 1)));
	const MfFactors *f = mf_als_factors(als);
	const double *bias = users ? f->user_bias : f->item_bias;
	double	   *factors = mf_alloc_array(CurrentMemoryContext,
										 (Size) batch_rows * k, sizeof(double));
	const int64 *ids = users ? ratings->user_ids : ratings->item_ids;
	char	  **keys = users ? ratings->user_keys : ratings->item_keys;
	int32		n_rows = users ? ratings->n_users : ratings->n_items;
	const MfCsr *csr = &ratings->by_user;
	SPIPlanPtr	plan = prepare_row_insert(schema, users);
	int32	   *rated_start = NULL;
	int64	   *rated = NULL;

	if (users)
	{
		rated_start = palloc(sizeof(int32) * (batch_rows + 1));
		rated = mf_alloc_array(CurrentMemoryContext,
							   MF_STORE_BATCH_RATED + (Size) mf_csr_longest_row(csr),
							   sizeof(int64));
	}

	for (int32 first = 0; first < n_rows;)
	{
		int32		last = first;
		int32		n_rated = 0;

		/* One batch: up to batch_rows rows, fewer when users rated a lot. */
		while (last < n_rows && last - first < batch_rows &&
			   (!users || last == first || n_rated < MF_STORE_BATCH_RATED))
		{
			if (users)
			{
				rated_start[last - first] = n_rated;
				for (int64 e = csr->row_start[last]; e < csr->row_start[last + 1]; e++)
				{
					int64		item = ratings->item_ids[csr->col[e]];

					/* entries are sorted by item: skip duplicate pairs */
					if (e == csr->row_start[last] || item != rated[n_rated - 1])
						rated[n_rated++] = item;
				}
			}
			last++;
		}
		if (users)
			rated_start[last - first] = n_rated;
		mf_als_get_rows(als, users, first, last - first, factors);
		insert_batch(plan, users, model_id, k, ids + first, last - first, factors,
					 bias ? bias + first : NULL, keys ? keys + first : NULL,
					 rated_start, rated);
		first = last;
		CHECK_FOR_INTERRUPTS();
	}
	SPI_freeplan(plan);
}

/*
 * Replaces (or adds) the rows of the given ids (and text keys, or NULL) of
 * one side of model model_id, which the caller has locked (refit): factors
 * n x k, bias (or NULL), and for users rated_start (n + 1 offsets) into
 * rated.  Then gives
 * the model a new version, so that every cache reloads it, and recounts
 * its users and items.
 */
static void
replace_rows(const char *schema, int32 model_id, bool users, int k,
			 const int64 *ids, char *const *keys, int32 n, const double *factors,
			 const double *bias, const int32 *rated_start, const int64 *rated)
{
	int32		batch_rows = Min(MF_STORE_BATCH_ROWS,
								 Max(1, MF_STORE_BATCH_NUMBERS / Max(k, 1)));
	const char *table = users ? "mf_user_factors" : "mf_item_factors";
	const char *id_col = users ? "user_id" : "item_id";
	Oid			argtypes[2] = {INT4OID, INT8ARRAYOID};
	Datum		args[2] = {Int32GetDatum(model_id),
	PointerGetDatum(mf_flat_array(INT8OID, ids, n))};
	int32	   *local_start = users ? palloc(sizeof(int32) * (batch_rows + 1)) : NULL;
	SPIPlanPtr	plan = prepare_row_insert(schema, users);

	if (SPI_execute_with_args(psprintf("DELETE FROM %s.%s WHERE model_id = $1 AND %s = ANY ($2)",
									   schema, table, id_col),
							  2, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete the old rows of model %d", model_id);
	for (int32 first = 0; first < n; first += batch_rows)
	{
		int32		count = Min(batch_rows, n - first);

		if (users)
			for (int32 j = 0; j <= count; j++)
				local_start[j] = rated_start[first + j] - rated_start[first];
		insert_batch(plan, users, model_id, k, ids + first, count,
					 factors + (Size) first * k, bias ? bias + first : NULL,
					 keys ? keys + first : NULL,
					 local_start, users ? rated + rated_start[first] : NULL);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_freeplan(plan);

	if (SPI_execute_with_args(psprintf("UPDATE %s.mf_models SET"
									   " version = pg_catalog.nextval(%s::pg_catalog.regclass),"
									   " n_users = (SELECT pg_catalog.count(*) FROM %s.mf_user_factors WHERE model_id = $1),"
									   " n_items = (SELECT pg_catalog.count(*) FROM %s.mf_item_factors WHERE model_id = $1)"
									   " WHERE model_id = $1",
									   schema,
									   quote_literal_cstr(psprintf("%s.mf_model_version_seq", schema)),
									   schema, schema),
							  1, argtypes, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not give model %d a new version", model_id);
}

/*
 * Replaces (or creates) the model named record->name with the given
 * factors, in the current transaction.  Returns its model_id.
 */
static int32
store_model(const char *schema, const MfModelRecord *record,
			const MfRatings *ratings, const MfAls *als)
{
	int32		model_id = upsert_model_row(schema, record, ratings,
											mf_als_factors(als));
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(model_id)};

	if (SPI_execute_with_args(psprintf("DELETE FROM %s.mf_user_factors WHERE model_id = $1",
									   schema),
							  1, argtypes, args, NULL, false, 0) != SPI_OK_DELETE ||
		SPI_execute_with_args(psprintf("DELETE FROM %s.mf_item_factors WHERE model_id = $1",
									   schema),
							  1, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete the old factors of model %d", model_id);

	insert_factor_rows(schema, model_id, record->options.k, true, ratings, als);
	insert_factor_rows(schema, model_id, record->options.k, false, ratings, als);
	return model_id;
}

/*
 * The entry points, each running its queries with a search_path of
 * pg_catalog alone (mf_internal_sql_begin).
 */
bool
mf_store_load_items(const char *schema, const char *model_name,
					const MfFitOptions *options, const MfRatings *ratings,
					MfAls *als)
{
	int			nest_level = mf_internal_sql_begin();
	bool		found = load_items(schema, model_name, options, ratings, als);

	mf_internal_sql_end(nest_level);
	return found;
}

void
mf_store_replace_rows(const char *schema, int32 model_id, bool users, int k,
					  const int64 *ids, char *const *keys, int32 n, const double *factors,
					  const double *bias, const int32 *rated_start, const int64 *rated)
{
	int			nest_level = mf_internal_sql_begin();

	replace_rows(schema, model_id, users, k, ids, keys, n, factors, bias,
				 rated_start, rated);
	mf_internal_sql_end(nest_level);
}

int32
mf_store_model(const char *schema, const MfModelRecord *record,
			   const MfRatings *ratings, const MfAls *als)
{
	int			nest_level = mf_internal_sql_begin();
	int32		model_id = store_model(schema, record, ratings, als);

	mf_internal_sql_end(nest_level);
	return model_id;
}
