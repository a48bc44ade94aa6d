/*-------------------------------------------------------------------------
 *
 * store.c
 *	  Factor rows written into mf_user_factors or mf_item_factors (store.h).
 *
 *	  Directly, as COPY writes: the rows of a batch go to the table access
 *	  method's multi-insert, then each into the table's indexes, checked
 *	  against the table's constraints.  That is what an INSERT would do
 *	  only while the table is a plain one (not partitioned, no rule, no
 *	  row-level security), has no column the extension did not create and
 *	  no generated or identity column, and no trigger that fires on INSERT
 *	  (or TRUNCATE) but the check of the extension's own foreign key on
 *	  model_id, which the caller's write of the model's row (locked until
 *	  commit) already satisfies.  Any other table (a user's audit trigger or
 *	  foreign key, a Citus table) is written through an INSERT ... SELECT
 *	  over array parameters, a batch a statement.
 *
 *-------------------------------------------------------------------------
 */
#include "store.h"
#include "catalog.h"

#include <math.h>

#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "progress.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

/* Direct writes: rows per multi-insert, or fewer when their arrays reach the bytes. */
#define MF_STORE_DIRECT_ROWS	1000
#define MF_STORE_DIRECT_BYTES	(8 * 1024 * 1024)
/* INSERT statements: rows, factors and rated item ids per statement at the most. */
#define MF_STORE_BATCH_ROWS		10000
#define MF_STORE_BATCH_NUMBERS	(256 * 1024)
#define MF_STORE_BATCH_RATED	(256 * 1024)
/* ... and keys' bytes (a text[] of a batch's long keys had passed 1 GB; attack helper 182) */
#define MF_STORE_BATCH_KEY_BYTES	(8 * 1024 * 1024)

/* The factor tables' columns, in the order a row's values are kept. */
typedef enum StoreColumn
{
	COL_MODEL_ID,
	COL_ID,
	COL_FACTORS,
	COL_BIAS,
	COL_KEY,
	COL_SUPPORT,
	COL_IMPLICIT,
	COL_RATED_ITEMS,			/* users only */
	N_STORE_COLUMNS
} StoreColumn;

struct MfStoreWriter
{
	MfSide		side;
	int32		model_id;
	int			k;
	bool		biases;
	bool		keys;
	bool		has_support;	/* whether the table has the column (0.5 on) */
	bool		implicit;		/* rows carry implicit factors */
	bool		has_implicit;	/* whether the table has implicit_factors (0.5 on) */
	int64		written;
	int64		progress_done;	/* mf_store_report_progress's; total 0: none */
	int64		progress_total;
	MemoryContext cxt;			/* the writer's; deleted at the end */
	MemoryContext batch_cxt;	/* one batch's values, reset per batch */
	bool		direct;
	Oid			role;			/* the current role at mf_store_begin */

	/* direct writes */
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *result;
	BulkInsertState bistate;
	CommandId	cid;
	AttrNumber	attnums[N_STORE_COLUMNS];	/* 0 when the side has no such column */
	TupleTableSlot *slots[MF_STORE_DIRECT_ROWS];
	Size		bytes;			/* of the arrays and keys in the slots, or of a
								 * statement batch's keys */

	/* INSERT statements */
	SPIPlanPtr	plan;
	int32		batch_rows;		/* rows per statement at the most */
	int64	   *ids;
	double	   *factors;		/* batch_rows x k */
	double	   *implicit_factors;	/* batch_rows x k, with implicit */
	double	   *bias;
	char	  **key;
	int32	   *support;
	int32	   *rated_start;	/* batch_rows + 1 */
	int64	   *rated;
	Size		rated_capacity;

	int32		used;			/* rows in the batch */
};

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
 * Whether constraint is the extension's own foreign key of rel: its
 * model_id column (model_id_attnum) alone referencing mf_models'
 * (models_relid) model_id.
 */
static bool
is_model_key(Relation rel, Oid constraint, AttrNumber model_id_attnum, Oid models_relid)
{
	ListCell   *cell;

	foreach(cell, RelationGetFKeyList(rel))
	{
		ForeignKeyCacheInfo *key = lfirst_node(ForeignKeyCacheInfo, cell);

		if (key->conoid == constraint)
			return key->confrelid == models_relid && key->nkeys == 1 &&
				key->conkey[0] == model_id_attnum &&
				key->confkey[0] == get_attnum(models_relid, "model_id");
	}
	return false;
}

/*
 * Whether an INSERT into rel would fire no trigger but the check of the
 * extension's own foreign key (is_model_key).  A TRUNCATE trigger, which
 * an INSERT does not fire, counts too: Citus puts one on the tables it
 * distributes, whose rows an INSERT must reach through its planner.
 */
static bool
fires_only_model_key_check(Relation rel, AttrNumber model_id_attnum, Oid models_relid)
{
	TriggerDesc *triggers = rel->trigdesc;

	for (int t = 0; triggers != NULL && t < triggers->numtriggers; t++)
	{
		const Trigger *trigger = &triggers->triggers[t];

		if (!TRIGGER_FOR_INSERT(trigger->tgtype) && !TRIGGER_FOR_TRUNCATE(trigger->tgtype))
			continue;			/* fires on UPDATE or DELETE only */
		if (!(trigger->tgisinternal && trigger->tgfoid == F_RI_FKEY_CHECK_INS &&
			  is_model_key(rel, trigger->tgconstraint, model_id_attnum, models_relid)))
			return false;
	}
	return true;
}

/*
 * Whether rows can go into rel directly (file header): if so, attnums[]
 * receives its columns' numbers.
 */
static bool
can_write_directly(Relation rel, Oid models_relid, MfSide side, bool support,
				   bool implicit, AttrNumber *attnums)
{
	bool		users = side == MF_USERS;
	const char *names[N_STORE_COLUMNS] = {"model_id", users ? "user_id" : "item_id",
		"factors", "bias", users ? "user_key" : "item_key", "support", "implicit_factors",
	users ? "rated_items" : NULL};
	const Oid	types[N_STORE_COLUMNS] = {INT4OID, INT8OID, FLOAT8ARRAYOID, FLOAT8OID,
	TEXTOID, INT4OID, FLOAT8ARRAYOID, INT8ARRAYOID};
	TupleDesc	desc = RelationGetDescr(rel);
	int			expected = (users ? N_STORE_COLUMNS : N_STORE_COLUMNS - 1) - (support ? 0 : 1) -
		(implicit ? 0 : 1);
	int			found = 0;

	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->rd_rel->relispartition ||
		mf_relation_has_rules(rel) || rel->rd_rel->relrowsecurity)
		return false;
	memset(attnums, 0, sizeof(AttrNumber) * N_STORE_COLUMNS);
	for (int a = 0; a < desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);
		int			c;

		if (att->attisdropped)
			continue;
		for (c = 0; c < N_STORE_COLUMNS; c++)
			if (names[c] != NULL && strcmp(NameStr(att->attname), names[c]) == 0)
				break;
		if (c == N_STORE_COLUMNS || att->atttypid != types[c] || att->attgenerated ||
			att->attidentity || attnums[c] != 0)
			return false;		/* a column the extension did not create */
		attnums[c] = att->attnum;
		found++;
	}
	return found == expected &&
		fires_only_model_key_check(rel, attnums[COL_MODEL_ID], models_relid);
}

/*
 * The INSERT of one side's rows from array parameters: $2 the ids, $3
 * their factors ($4 = k per row), $5 the biases (or NULL), $6 the text
 * keys (or NULL), $7 the supports, $8 the implicit factors (k per row, or
 * NULL) and, for users, $9 the offsets of each row's rated items in $10.
 */
static SPIPlanPtr
prepare_insert(const MfSchema *schema, Oid relid, MfSide side, bool support, bool implicit)
{
	Oid			argtypes[] = {INT4OID, INT8ARRAYOID, FLOAT8ARRAYOID, INT4OID,
		FLOAT8ARRAYOID, TEXTARRAYOID, INT4ARRAYOID, FLOAT8ARRAYOID, INT4ARRAYOID,
	INT8ARRAYOID};
	bool		users = side == MF_USERS;
	SPIPlanPtr	plan;

	/* $6 is joined by position: subscripting a text[] walks it from the start */
	plan = SPI_prepare(psprintf("INSERT INTO %s.%s (model_id, %s, factors, bias, %s%s%s%s)"
								" SELECT $1, $2[i], $3[(i - 1) * $4 + 1 : i * $4], $5[i], key.value%s%s%s"
								" FROM pg_catalog.generate_subscripts($2, 1) AS i"
								" LEFT JOIN ROWS FROM (pg_catalog.unnest($6)) WITH ORDINALITY"
								" AS key (value, position) ON key.position = i",
								schema->quoted, quote_identifier(get_rel_name(relid)),
								users ? "user_id" : "item_id",
								users ? "user_key" : "item_key",
								support ? ", support" : "",
								implicit ? ", implicit_factors" : "",
								users ? ", rated_items" : "",
								support ? ", $7[i]" : "",
								implicit ? ", $8[(i - 1) * $4 + 1 : i * $4]" : "",
								users ? ", $10[$9[i] + 1 : $9[i + 1]]" : ""),
					   users ? 10 : 8, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	return plan;
}

MfStoreWriter *
mf_store_begin(const MfSchema *schema, Oid relid, Oid models_relid, MfSide side,
			   int32 model_id, int k, bool biases, bool keys, bool implicit)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "mf_ext store",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	MfStoreWriter *w = palloc0(sizeof(MfStoreWriter));

	w->side = side;
	w->model_id = model_id;
	w->role = GetUserId();
	w->k = k;
	w->biases = biases;
	w->keys = keys;
	w->cxt = cxt;
	w->batch_cxt = AllocSetContextCreate(cxt, "mf_ext store batch", ALLOCSET_DEFAULT_SIZES);
	w->rel = table_open(relid, RowExclusiveLock);
	/* 0.4's tables, written until ALTER EXTENSION UPDATE, have no support */
	w->has_support = get_attnum(relid, "support") != InvalidAttrNumber;
	w->has_implicit = get_attnum(relid, "implicit_factors") != InvalidAttrNumber;
	w->implicit = implicit;
	if (implicit && !w->has_implicit)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s has no column implicit_factors", get_rel_name(relid)),
				 errhint("Update the extension: ALTER EXTENSION mf_ext UPDATE.")));
	w->direct = can_write_directly(w->rel, models_relid, side, w->has_support,
								   w->has_implicit, w->attnums);
	if (w->direct)
	{
		TupleDesc	slot_desc;

		w->estate = CreateExecutorState();
		w->result = makeNode(ResultRelInfo);
		InitResultRelInfo(w->result, w->rel, 0, NULL, 0);
		ExecOpenIndices(w->result, false);
		w->bistate = GetBulkInsertState();
		w->cid = GetCurrentCommandId(true);

		/*
		 * The slots share a copy of the table's descriptor, which is not
		 * reference-counted: slots of the relation's own would pin it a
		 * thousand times in the resource owner, where each further pin
		 * (the unique check's slot for every row whose deleted
		 * predecessor it visits, on a retrain) probes past all of them.
		 */
		slot_desc = CreateTupleDescCopy(RelationGetDescr(w->rel));
		for (int s = 0; s < MF_STORE_DIRECT_ROWS; s++)
			w->slots[s] = MakeSingleTupleTableSlot(slot_desc, table_slot_callbacks(w->rel));
	}
	else
	{
		w->plan = prepare_insert(schema, relid, side, w->has_support, w->has_implicit);
		w->batch_rows = Min(MF_STORE_BATCH_ROWS, Max(1, MF_STORE_BATCH_NUMBERS / Max(k, 1)));
		w->ids = palloc(sizeof(int64) * w->batch_rows);
		w->factors = mf_alloc_array(cxt, (Size) w->batch_rows * Max(k, 1), sizeof(double));
		if (implicit)
			w->implicit_factors = mf_alloc_array(cxt, (Size) w->batch_rows * Max(k, 1),
												 sizeof(double));
		w->bias = palloc(sizeof(double) * w->batch_rows);
		w->key = palloc(sizeof(char *) * w->batch_rows);
		w->support = palloc(sizeof(int32) * w->batch_rows);
		w->rated_start = palloc(sizeof(int32) * (w->batch_rows + 1));
		w->rated_capacity = side == MF_USERS ? MF_STORE_BATCH_RATED : 0;
		w->rated = palloc(sizeof(int64) * Max(w->rated_capacity, 1));
		w->rated_start[0] = 0;
	}
	MemoryContextSwitchTo(old);
	return w;
}

/* Writes the batch in the slots: the heap, then each row's index entries. */
static void
flush_direct(MfStoreWriter *w)
{
	ExprContext *econtext = GetPerTupleExprContext(w->estate);

	table_multi_insert(w->rel, w->slots, w->used, w->cid, 0, w->bistate);
	for (int32 s = 0; s < w->used; s++)
	{
		List	   *recheck;

		econtext->ecxt_scantuple = w->slots[s];
		recheck = ExecInsertIndexTuples(w->result, w->slots[s], w->estate,
										false, false, NULL, NIL);
		if (recheck != NIL)
			elog(ERROR, "a deferred constraint on \"%s\" needs a recheck",
				 RelationGetRelationName(w->rel));
		ResetPerTupleExprContext(w->estate);
	}
}

/* Writes the batch in the arrays through one INSERT statement. */
static void
flush_insert(MfStoreWriter *w)
{
	bool		users = w->side == MF_USERS;
	Datum		args[10];
	char		nulls[10];

	memset(nulls, ' ', sizeof(nulls));
	args[0] = Int32GetDatum(w->model_id);
	args[1] = PointerGetDatum(mf_flat_array(INT8OID, w->ids, w->used));
	args[2] = PointerGetDatum(mf_flat_array(FLOAT8OID, w->factors, w->used * w->k));
	args[3] = Int32GetDatum(w->k);
	args[4] = w->biases ? PointerGetDatum(mf_flat_array(FLOAT8OID, w->bias, w->used)) : (Datum) 0;
	nulls[4] = w->biases ? ' ' : 'n';
	args[5] = (Datum) 0;
	nulls[5] = 'n';
	if (w->keys)
	{
		Datum	   *texts = palloc(sizeof(Datum) * w->used);

		for (int32 r = 0; r < w->used; r++)
			texts[r] = CStringGetTextDatum(w->key[r]);
		args[5] = PointerGetDatum(construct_array(texts, w->used, TEXTOID, -1, false, TYPALIGN_INT));
		nulls[5] = ' ';
	}
	args[6] = PointerGetDatum(mf_flat_array(INT4OID, w->support, w->used));
	args[7] = w->implicit
		? PointerGetDatum(mf_flat_array(FLOAT8OID, w->implicit_factors, w->used * w->k)) : (Datum) 0;
	nulls[7] = w->implicit ? ' ' : 'n';
	if (users)
	{
		args[8] = PointerGetDatum(mf_flat_array(INT4OID, w->rated_start, w->used + 1));
		args[9] = PointerGetDatum(mf_flat_array(INT8OID, w->rated, w->rated_start[w->used]));
	}
	if (SPI_execute_plan(w->plan, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write the factors of model %d", w->model_id);
	if (SPI_processed != (uint64) w->used)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s got " UINT64_FORMAT " of %d rows of model %d",
						RelationGetRelationName(w->rel), (uint64) SPI_processed, w->used,
						w->model_id),
				 errdetail("A rule or trigger on %s kept rows from being written.",
						   RelationGetRelationName(w->rel)),
				 errhint("Drop the rule or trigger: a model needs the row of every user and item it was trained on.")));
	w->rated_start[0] = 0;
}

/* Writes the pending batch, if any. */
static void
flush(MfStoreWriter *w)
{
	MemoryContext old;

	if (w->used == 0)
		return;
	old = MemoryContextSwitchTo(w->batch_cxt);
	if (w->direct)
		flush_direct(w);
	else
		flush_insert(w);
	/* the INSERT's triggers, or the direct write's constraints and index expressions, ran */
	mf_catalog_keep_session(w->role);
	MemoryContextSwitchTo(old);
	w->written += w->used;
	w->used = 0;
	w->bytes = 0;
	MemoryContextReset(w->batch_cxt);
	if (w->progress_total > 0)
		mf_progress_step(w->progress_done + w->written, w->progress_total, "row", NAN, NAN);
	CHECK_FOR_INTERRUPTS();
}

/* Fills the next slot with one row (direct writes). */
static void
fill_slot(MfStoreWriter *w, int64 id, const double *factors, const double *bias,
		  const char *key, int32 support, const int64 *rated, int32 n_rated,
		  const double *implicit)
{
	TupleTableSlot *slot = w->slots[w->used];
	int			natts = slot->tts_tupleDescriptor->natts;
	MemoryContext old = MemoryContextSwitchTo(w->batch_cxt);
	ArrayType  *array;

	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, sizeof(bool) * natts);	/* dropped columns */
#define SET_COLUMN(column, value) \
	do { \
		slot->tts_values[w->attnums[column] - 1] = (value); \
		slot->tts_isnull[w->attnums[column] - 1] = false; \
	} while (0)
	SET_COLUMN(COL_MODEL_ID, Int32GetDatum(w->model_id));
	SET_COLUMN(COL_ID, Int64GetDatum(id));
	array = mf_flat_array(FLOAT8OID, factors, w->k);
	w->bytes += VARSIZE(array);
	SET_COLUMN(COL_FACTORS, PointerGetDatum(array));
	if (bias != NULL)
		SET_COLUMN(COL_BIAS, Float8GetDatum(*bias));
	if (key != NULL)
	{
		text	   *value = cstring_to_text(key);

		w->bytes += VARSIZE(value);
		SET_COLUMN(COL_KEY, PointerGetDatum(value));
	}
	if (w->has_support)
		SET_COLUMN(COL_SUPPORT, Int32GetDatum(support));
	if (implicit != NULL)
	{
		array = mf_flat_array(FLOAT8OID, implicit, w->k);
		w->bytes += VARSIZE(array);
		SET_COLUMN(COL_IMPLICIT, PointerGetDatum(array));
	}
	if (w->side == MF_USERS)
	{
		array = mf_flat_array(INT8OID, rated, n_rated);
		w->bytes += VARSIZE(array);
		SET_COLUMN(COL_RATED_ITEMS, PointerGetDatum(array));
	}
#undef SET_COLUMN
	ExecStoreVirtualTuple(slot);
	MemoryContextSwitchTo(old);
	if (RelationGetDescr(w->rel)->constr != NULL)
		ExecConstraints(w->result, slot, w->estate);
}

void
mf_store_row(MfStoreWriter *w, int64 id, const double *factors, const double *bias,
			 const char *key, int32 support, const int64 *rated, int32 n_rated,
			 const double *implicit)
{
	Size		key_bytes;

	Assert((bias != NULL) == w->biases && (key != NULL) == w->keys &&
		   (implicit != NULL) == w->implicit);
	if (w->direct)
	{
		fill_slot(w, id, factors, bias, key, support, rated, n_rated, implicit);
		w->used++;
		if (w->used == MF_STORE_DIRECT_ROWS || w->bytes >= MF_STORE_DIRECT_BYTES)
			flush(w);
		return;
	}

	/* a statement's batch: rows, and a user's rated items and keys up to soft limits */
	key_bytes = key != NULL ? strlen(key) : 0;
	if (w->used == w->batch_rows ||
		(w->side == MF_USERS && w->used > 0 &&
		 w->rated_start[w->used] + (Size) n_rated > w->rated_capacity) ||
		(w->used > 0 && w->bytes + key_bytes > MF_STORE_BATCH_KEY_BYTES))
		flush(w);
	if (w->side == MF_USERS && (Size) n_rated > w->rated_capacity)
	{
		w->rated_capacity = n_rated;
		w->rated = repalloc_huge(w->rated, mul_size(n_rated, sizeof(int64)));
	}
	w->ids[w->used] = id;
	if (w->k > 0)
		memcpy(w->factors + (Size) w->used * w->k, factors, sizeof(double) * w->k);
	if (implicit != NULL)
		memcpy(w->implicit_factors + (Size) w->used * w->k, implicit, sizeof(double) * w->k);
	if (bias != NULL)
		w->bias[w->used] = *bias;
	if (key != NULL)
	{
		w->key[w->used] = MemoryContextStrdup(w->batch_cxt, key);
		w->bytes += key_bytes;
	}
	w->support[w->used] = support;
	if (w->side == MF_USERS)
	{
		if (n_rated > 0)
			memcpy(w->rated + w->rated_start[w->used], rated, sizeof(int64) * n_rated);
		w->rated_start[w->used + 1] = w->rated_start[w->used] + n_rated;
	}
	w->used++;
}

void
mf_store_report_progress(MfStoreWriter *w, int64 done, int64 total)
{
	w->progress_done = done;
	w->progress_total = total;
}

int64
mf_store_end(MfStoreWriter *w)
{
	int64		written;

	flush(w);
	if (w->direct)
	{
		FreeBulkInsertState(w->bistate);
		table_finish_bulk_insert(w->rel, 0);
		for (int s = 0; s < MF_STORE_DIRECT_ROWS; s++)
			ExecDropSingleTupleTableSlot(w->slots[s]);
		ExecCloseIndices(w->result);
		FreeExecutorState(w->estate);
		/* the statements that follow see the rows */
		CommandCounterIncrement();
	}
	else
		SPI_freeplan(w->plan);
	table_close(w->rel, NoLock);
	written = w->written;
	MemoryContextDelete(w->cxt);
	return written;
}
