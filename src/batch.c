/*-------------------------------------------------------------------------
 *
 * batch.c
 *	  mf_recommend_all(): the top n items of every user of a model (among
 *	  candidates, less exclusions), written into a table (user_id, rank,
 *	  item_id, score): a new one directly (table_multi_insert), an existing
 *	  one through the executor (mode 'replace' or 'append': an INSERT of
 *	  unnested arrays, so that its indexes, constraints, triggers, row-level
 *	  security and the caller's privileges apply); mf_recommend_all_rows():
 *	  the same rows as a set-returning function's result.  One ranking, three
 *	  sinks (BatchWriter).
 *
 *	  Users are taken in blocks; for a block, one matrix product (sgemm on
 *	  float copies of the factors, each user's row and the items scaled by
 *	  powers of two into float's range: prepare_products) scores every
 *	  item for every user of the block, on all threads (parallel.c).  Each
 *	  user's n + MF_BATCH_SPARE best candidates (the items it rated left
 *	  out) are then rescored with mf_score, the scoring mf_predict and
 *	  mf_recommend use, and the best n kept: every score written is
 *	  mf_predict's.  When the products' rounding could hide a better item
 *	  among those left out (candidates_certain), the user is ranked from
 *	  exact scores of every item instead: every list is mf_recommend's.
 *
 *	  The backend's thread, between its own blocks, reads the users' rated
 *	  items in user order (a block is ranked once its users' are read) and
 *	  inserts the rows of the blocks finished so far: reading and writing
 *	  overlap the ranking.
 *
 *-------------------------------------------------------------------------
 */
#include "mf_ext.h"
#include "blas.h"
#include "cache.h"
#include "catalog.h"
#include "checks.h"
#include "parallel.h"
#include "progress.h"
#include "score.h"
#include "serve.h"

#include <math.h>
#include <stdatomic.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "parser/parse_coerce.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"
#include "utils/varlena.h"

PG_FUNCTION_INFO_V1(mf_recommend_all);
PG_FUNCTION_INFO_V1(mf_recommend_all_by_name);
PG_FUNCTION_INFO_V1(mf_recommend_all_rows);
PG_FUNCTION_INFO_V1(mf_recommend_all_rows_by_name);

/* Candidates kept beyond n for the exact rescoring. */
#define MF_BATCH_SPARE		8
/* Bytes of products one thread holds for a block of users (about L2). */
#define MF_BATCH_BLOCK_BYTES	(1024 * 1024)
/*
 * Result rows handed to the table's multi-insert at a time: this many, or
 * fewer when their text keys reach MF_BATCH_INSERT_BYTES.
 */
#define MF_BATCH_INSERT_ROWS	1000
#define MF_BATCH_INSERT_BYTES	(8 * 1024 * 1024)
/* Users whose rated items are read per fetch. */
#define MF_BATCH_FETCH_USERS	1000
/* Columns of the table written, in the order of its rows' values. */
#define MF_BATCH_COLUMNS	4

/* mf_recommend_all's mode argument. */
typedef enum BatchMode
{
	BATCH_CREATE,				/* a new table */
	BATCH_REPLACE,				/* an existing table's rows deleted, then written */
	BATCH_APPEND				/* added to an existing table's rows */
} BatchMode;

/* Where the rows go. */
typedef enum BatchSink
{
	SINK_NEW_TABLE,				/* the table this call created: table_multi_insert */
	SINK_EXISTING_TABLE,		/* an INSERT through the executor, by SPI */
	SINK_ROWS					/* the function's result (tuplestore) */
} BatchSink;

/* One thread's scratch space. */
typedef struct BatchBuffers
{
	float	   *products;		/* block_users x n_items */
	bool	   *excluded;		/* n_items */
	int32	   *candidates;		/* keep */
	double	   *scores;			/* keep: product scores */
	double	   *all_scores;		/* n_items: exact scores, for a user ranked exactly */
	double	   *wide;			/* k: scratch of mf_score_items */
	int64		exact_users;	/* users this thread ranked exactly */
} BatchBuffers;

/* Writes result rows into the sink, a batch at a time. */
typedef struct BatchWriter
{
	BatchSink	sink;
	/* SINK_NEW_TABLE */
	Relation	rel;
	BulkInsertState bistate;
	CommandId	cid;
	TupleTableSlot **slots;		/* MF_BATCH_INSERT_ROWS */
	/* SINK_EXISTING_TABLE: the INSERT, and its arrays' elements */
	SPIPlanPtr	insert;
	Datum	   *columns[MF_BATCH_COLUMNS];	/* MF_BATCH_INSERT_ROWS each */
	/* SINK_ROWS */
	ReturnSetInfo *rsinfo;

	int			used;			/* rows waiting */
	Size		bytes;			/* their text keys' bytes */
	MemoryContext rows_cxt;		/* the text keys of the rows waiting */
	int64		written;		/* rows written */
	int64		next_block;		/* the first block not written yet */
} BatchWriter;

/* A whole mf_recommend_all run, shared by its threads. */
typedef struct BatchRun
{
	const MfBlas *blas;
	const MfFactors *f;
	const float *users;			/* n_users x width: factors, then 1 with biases */
	const float *items;			/* n_items x width: factors, then the item bias */
	int			width;			/* k, or k + 1 with biases */
	double	   *user_scale;		/* per user: the power of two its row was scaled by */
	double		item_scale;		/* the power of two every item was scaled by */
	double	   *column_max;		/* width: the largest scaled item value per column */
	const int64 *item_ids;
	int32		n;				/* items per user to keep */
	int32		keep;			/* candidates per user: n + spare, at most n_items */
	int32		block_users;	/* users per block */
	int64		n_blocks;
	int32	  **rated;			/* per user: the dense item indices it rated */
	int32	   *rated_count;	/* per user: how many (0 until read) */
	BatchBuffers *buffers;		/* one per thread */
	int32	   *best;			/* n_users x n: dense item indices */
	double	   *best_scores;	/* n_users x n */
	int32	   *found;			/* per user: how many of its n are set */
	bool	   *filter;			/* n_items: left out of every list (candidates, exclude), or NULL */
	atomic_bool *done;			/* per block: its users' best are set */

	/* the backend's side (feed_blocks) */
	MemoryContext cxt;
	const MfModel *model;
	Portal		rated_cursor;	/* the users' rated items by user id, or NULL */
	MemoryContext batch_cxt;	/* one fetch's detoasted arrays */
	int32		users_read;		/* the users below this have their rated items */
	BatchWriter writer;
} BatchRun;

/*
 * Rescores one user's candidates as mf_predict does and keeps the best n
 * of them (higher score first, then lower id) in the user's slots of
 * run->best and run->best_scores; returns how many.  A top selection, so
 * O(count log n) however the products' rounding had ordered them.
 */
static int32
rank_candidates(const BatchRun *run, const int32 *candidates, int32 count, int32 user)
{
	MfTop		top;

	mf_top_init(&top, run->n, run->item_ids, run->best + (Size) user * run->n,
				run->best_scores + (Size) user * run->n);
	for (int32 c = 0; c < count; c++)
	{
		double		exact = mf_score(run->f, user, candidates[c]);

		if (mf_top_admits(&top, exact))
			mf_top_insert(&top, exact, candidates[c]);
	}
	return mf_top_finish(&top);
}

/*
 * Whether the user's best found exact scores are certainly its best n of
 * all items: its n-th best exact score, scaled as its products were, beats
 * by more than the products' rounding error the worst float product kept
 * (top), which every item left out scored at most.  The error of a float
 * product is at most (width + 3) 2^-24 sum_j |u_j| max_i |v_ij| (the
 * operands' conversion to float, the products and the sum's rounding,
 * doubled for safety), plus what underflow can lose, plus the rounding of
 * the exact scores themselves.
 */
static bool
candidates_certain(const BatchRun *run, const MfTop *top, int32 user, int32 found)
{
	const float *u = run->users + (Size) user * run->width;
	double		weight = 0.0;
	double		error;
	double		exact = run->best_scores[(Size) user * run->n + found - 1];
	double		base = run->f->biases ? mf_user_base(run->f, user) : 0.0;
	double		scale = run->user_scale[user] * run->item_scale;
	double		nth;

	if (top->size < top->n || found < run->n)
		return true;			/* every item offered was a candidate */
	for (int j = 0; j < run->width; j++)
		weight += fabs(u[j]) * run->column_max[j];
	error = (run->width + 3) * ldexp(weight, -23) + run->width * ldexp(1.0, -146);
	nth = (exact - base) * scale;

	/*
	 * Exact scores are doubles rounded at the magnitude of the whole score
	 * (base included): two items whose products differ can score the same,
	 * and then the lower id is first.  An item left out must fall below
	 * the n-th by more than that rounding too.
	 */
	return nth > top->bound + error + (fabs(exact) + fabs(base)) * scale * ldexp(1.0, -50);
}

/*
 * Ranks one user as mf_recommend does, from exact scores of every item:
 * for a user whose float products could not separate its candidates from
 * the rest (factors of very different magnitudes).
 */
static int32
rank_exactly(const BatchRun *run, BatchBuffers *b, int32 user)
{
	const MfFactors *f = run->f;

	mf_score_items(f, mf_factor_row(f, MF_USERS, user), f->biases ? mf_user_base(f, user) : 0.0,
				   b->excluded, b->wide, b->all_scores);
	b->exact_users++;
	return mf_select_top(b->all_scores, run->item_ids, b->excluded, f->n_items, run->n,
						 run->best + (Size) user * run->n,
						 run->best_scores + (Size) user * run->n);
}

/* mf_parallel_for task: the users of blocks [first, last). */
static int64
recommend_blocks(void *arg, int thread, int64 first, int64 last)
{
	const BatchRun *run = arg;
	const MfFactors *f = run->f;
	BatchBuffers *b = &run->buffers[thread];

	for (int64 block = first; block < last; block++)
	{
		int32		u0 = (int32) (block * run->block_users);
		int32		count = Min(run->block_users, f->n_users - u0);

		/* products[j * n_items + i] = u_(u0 + j) . v_i (+ b_i), each scaled */
		run->blas->sgemm(CblasColMajor, CblasTrans, CblasNoTrans, f->n_items, count,
						 run->width, 1, run->items, run->width,
						 run->users + (Size) u0 * run->width, run->width,
						 0, b->products, f->n_items);

		for (int32 j = 0; j < count; j++)
		{
			int32		user = u0 + j;
			const int32 *rated = run->rated[user];
			int32		n_rated = run->rated_count[user];
			Size		row = (Size) j * f->n_items;
			MfTop		top;

			for (int32 e = 0; e < n_rated; e++)
				b->excluded[rated[e]] = true;
			mf_top_init(&top, run->keep, run->item_ids, b->candidates, b->scores);
			mf_top_offer_row(&top, b->products + row, true, b->excluded, f->n_items);
			run->found[user] = rank_candidates(run, b->candidates, top.size, user);
			if (!candidates_certain(run, &top, user, run->found[user]))
				run->found[user] = rank_exactly(run, b, user);
			for (int32 e = 0; e < n_rated; e++)
				b->excluded[rated[e]] = run->filter ? run->filter[rated[e]] : false;
		}
		atomic_store(&run->done[block], true);
	}
	return -1;
}

/* mf_catalog_fetch_rated_items callback: one user's rated items, as dense indices. */
static void
add_rated_items(int64 user_id, const int64 *ids, int count, void *arg)
{
	BatchRun   *run = arg;
	const MfModel *model = run->model;
	int32		user = mf_model_find_id(model, MF_USERS, user_id);
	int32	   *items;
	int32		known = 0;

	if (user < 0)
		return;
	items = mf_alloc_array(run->cxt, count, sizeof(int32));
	for (int e = 0; e < count; e++)
	{
		int32		item = mf_model_find_id(model, MF_ITEMS, ids[e]);

		if (item >= 0)
			items[known++] = item;
	}
	run->rated[user] = items;
	run->rated_count[user] = known;
	run->users_read = user + 1;
}

/*
 * Reads the next users' rows of the rated-items cursor (in user id order,
 * which is the users' dense order) into run->rated; at the end, closes it.
 */
static void
read_rated_batch(BatchRun *run)
{
	/* the arrays detoasted go with the batch's context */
	MemoryContext old = MemoryContextSwitchTo(run->batch_cxt);
	uint64		fetched = mf_catalog_fetch_rated_items(run->rated_cursor,
													   run->model->row.model_id,
													   MF_BATCH_FETCH_USERS,
													   add_rated_items, run);

	MemoryContextSwitchTo(old);
	MemoryContextReset(run->batch_cxt);
	if (fetched == 0)
	{
		SPI_cursor_close(run->rated_cursor);
		run->rated_cursor = NULL;
		run->users_read = run->model->factors.n_users;
	}
}

/* mf_recommend_all's target as a name, and its text quoted for SQL. */
static RangeVar *
target_name(text *target, char **quoted)
{
	char	   *raw = text_to_cstring(target);
	List	   *names;
	RangeVar   *relation;

	if (!SplitIdentifierString(pstrdup(raw), '.', &names) || list_length(names) > 3)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("target \"%s\" is not a table name", raw),
				 errhint("Pass a name such as top10 or myschema.top10; double-quote a name with spaces, capitals or other characters: '\"My Top 10\"'.")));
	relation = makeRangeVarFromNameList(textToQualifiedNameList(target));
	*quoted = quote_qualified_identifier(relation->schemaname, relation->relname);
	return relation;
}

/*
 * Creates the target table and returns its oid.  Ids that are text keys
 * (user_keys, item_keys) get text columns.
 */
static Oid
create_target(RangeVar *relation, const char *quoted, bool user_keys, bool item_keys)
{
	if (SPI_execute(psprintf("CREATE TABLE %s (user_id %s NOT NULL, rank integer NOT NULL,"
							 " item_id %s NOT NULL, score double precision NOT NULL)",
							 quoted, user_keys ? "text" : "bigint", item_keys ? "text" : "bigint"),
					false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not create %s", quoted);
	/* CREATE TABLE holds its AccessExclusiveLock until the transaction ends */
	return RangeVarGetRelid(relation, NoLock, false);
}

/* The types of the rows' values: ids (bigint, or text keys), rank, score. */
static void
column_types(const MfModel *model, Oid types[MF_BATCH_COLUMNS])
{
	types[0] = model->user_keys ? TEXTOID : INT8OID;
	types[1] = INT4OID;
	types[2] = model->item_keys ? TEXTOID : INT8OID;
	types[3] = FLOAT8OID;
}

static const char *const column_names[MF_BATCH_COLUMNS] = {"user_id", "rank", "item_id", "score"};

/*
 * The shape an existing target must have for model's rows, for hints:
 * "(user_id bigint, rank integer, item_id bigint, score double precision)".
 */
static char *
expected_shape(const MfModel *model)
{
	Oid			types[MF_BATCH_COLUMNS];
	StringInfoData shape;

	column_types(model, types);
	initStringInfo(&shape);
	for (int c = 0; c < MF_BATCH_COLUMNS; c++)
		appendStringInfo(&shape, "%s%s %s", c == 0 ? "(" : ", ", column_names[c],
						 format_type_be(types[c]));
	appendStringInfoChar(&shape, ')');
	return shape.data;
}

/*
 * An existing target (locked) must be a table or a partitioned table with
 * columns user_id, rank, item_id and score to which model's values can be
 * assigned (other columns take their defaults): checked before anything
 * is deleted.
 */
static void
check_existing_target(Oid relid, const MfModel *model)
{
	Relation	rel = relation_open(relid, NoLock);
	Oid			types[MF_BATCH_COLUMNS];
	char		relkind = rel->rd_rel->relkind;

	column_types(model, types);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", RelationGetRelationName(rel)),
				 errhint("mf_recommend_all writes into a table %s: pass the name of one, or a new name to create it.",
						 expected_shape(model))));
	for (int c = 0; c < MF_BATCH_COLUMNS; c++)
	{
		AttrNumber	attnum = get_attnum(relid, column_names[c]);
		Oid			type;

		if (attnum == InvalidAttrNumber || attnum < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("table \"%s\" has no column \"%s\"", RelationGetRelationName(rel),
							column_names[c]),
					 errhint("mf_recommend_all writes into a table %s (other columns take their defaults): add the column, or pass another table.",
							 expected_shape(model))));
		type = TupleDescAttr(RelationGetDescr(rel), attnum - 1)->atttypid;
		if (!can_coerce_type(1, &types[c], &type, COERCION_ASSIGNMENT))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of table \"%s\" is of type %s, which model \"%s\"'s %s values cannot be assigned to",
							column_names[c], RelationGetRelationName(rel), format_type_be(type),
							model->row.name, format_type_be(types[c])),
					 errhint("mf_recommend_all writes into a table %s: alter the column's type, or pass another table.",
							 expected_shape(model))));
	}
	relation_close(rel, NoLock);
}

/*
 * Rows go into the target without the executor, so it must still be the
 * plain table create_target made: an event trigger may have changed it.
 */
static void
require_plain_target(Relation rel, const MfModel *model)
{
	Oid			types[MF_BATCH_COLUMNS];
	TupleDesc	desc = RelationGetDescr(rel);
	bool		plain = rel->rd_rel->relkind == RELKIND_RELATION &&
		!rel->rd_rel->relhasindex && rel->trigdesc == NULL &&
		!rel->rd_rel->relhasrules && !rel->rd_rel->relispartition &&
		!rel->rd_rel->relrowsecurity &&
		(desc->constr == NULL || desc->constr->num_check == 0) &&
		desc->natts == MF_BATCH_COLUMNS;

	column_types(model, types);
	for (int a = 0; plain && a < MF_BATCH_COLUMNS; a++)
		plain = !TupleDescAttr(desc, a)->attisdropped &&
			TupleDescAttr(desc, a)->atttypid == types[a];
	if (!plain)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" was changed while mf_recommend_all created it",
						RelationGetRelationName(rel)),
				 errdetail("An event trigger added columns, indexes, triggers, rules, constraints or row-level security, or made it a partition; mf_recommend_all writes its rows directly and would bypass them."),
				 errhint("Let the event trigger skip this table, or create the table first and pass mode => 'replace' to write into it through its indexes and triggers.")));
}

/* Starts a writer of sink's kind: the parts every sink shares. */
static void
writer_init(BatchWriter *w, BatchSink sink)
{
	w->sink = sink;
	w->rows_cxt = AllocSetContextCreate(CurrentMemoryContext, "mf_recommend_all rows",
										ALLOCSET_DEFAULT_SIZES);
	w->used = 0;
	w->bytes = 0;
	w->written = 0;
	w->next_block = 0;
}

/* Starts writing into the table relid, which this call created. */
static void
writer_open_new(BatchWriter *w, Oid relid, const MfModel *model)
{
	writer_init(w, SINK_NEW_TABLE);
	w->rel = table_open(relid, RowExclusiveLock);
	require_plain_target(w->rel, model);
	w->bistate = GetBulkInsertState();
	w->cid = GetCurrentCommandId(true);
	w->slots = palloc(sizeof(TupleTableSlot *) * MF_BATCH_INSERT_ROWS);
	for (int s = 0; s < MF_BATCH_INSERT_ROWS; s++)
		w->slots[s] = table_slot_create(w->rel, NULL);
}

/*
 * Starts writing into the existing table relid (locked, its shape
 * checked) through the executor: INSERT INTO it (user_id, rank, item_id,
 * score) the rows of four arrays, one statement a batch, as the caller.
 */
static void
writer_open_existing(BatchWriter *w, Oid relid, const MfModel *model)
{
	Oid			types[MF_BATCH_COLUMNS];
	Oid			array_types[MF_BATCH_COLUMNS];
	char	   *table = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
												   get_rel_name(relid));

	writer_init(w, SINK_EXISTING_TABLE);
	column_types(model, types);
	for (int c = 0; c < MF_BATCH_COLUMNS; c++)
	{
		array_types[c] = get_array_type(types[c]);
		w->columns[c] = palloc(sizeof(Datum) * MF_BATCH_INSERT_ROWS);
	}
	w->insert = SPI_prepare(psprintf("INSERT INTO %s (user_id, rank, item_id, score)"
									 " SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
									 " pg_catalog.unnest($3), pg_catalog.unnest($4))", table),
							MF_BATCH_COLUMNS, array_types);
	if (w->insert == NULL)
		elog(ERROR, "SPI_prepare failed for the INSERT into %s: %s", table,
			 SPI_result_code_string(SPI_result));
}

/* Starts returning the rows as the function's result. */
static void
writer_open_rows(BatchWriter *w, FunctionCallInfo fcinfo)
{
	writer_init(w, SINK_ROWS);
	w->rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
}

/* Writes the rows waiting. */
static void
writer_flush(BatchWriter *w, const MfModel *model)
{
	if (w->used > 0 && w->sink == SINK_NEW_TABLE)
	{
		table_multi_insert(w->rel, w->slots, w->used, w->cid, TABLE_INSERT_SKIP_FSM, w->bistate);
		w->written += w->used;
	}
	else if (w->used > 0 && w->sink == SINK_EXISTING_TABLE)
	{
		Oid			types[MF_BATCH_COLUMNS];
		Datum		arrays[MF_BATCH_COLUMNS];
		MemoryContext old = MemoryContextSwitchTo(w->rows_cxt);

		column_types(model, types);
		for (int c = 0; c < MF_BATCH_COLUMNS; c++)
		{
			int16		length;
			bool		by_value;
			char		align;

			get_typlenbyvalalign(types[c], &length, &by_value, &align);
			arrays[c] = PointerGetDatum(construct_array(w->columns[c], w->used, types[c],
														length, by_value, align));
		}
		MemoryContextSwitchTo(old);
		if (SPI_execute_plan(w->insert, arrays, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "the INSERT of mf_recommend_all's rows failed");
		w->written += SPI_processed;
	}
	w->used = 0;
	w->bytes = 0;
	MemoryContextReset(w->rows_cxt);
}

/* Adds the row (user, rank, item, score) of dense indices to the sink. */
static void
writer_put(BatchWriter *w, const MfModel *model, int32 user, int32 rank, int32 item,
		   double score)
{
	Datum		values[MF_BATCH_COLUMNS];
	MemoryContext old = MemoryContextSwitchTo(w->rows_cxt);

	values[0] = model->user_keys ? CStringGetTextDatum(model->user_keys[user])
		: Int64GetDatum(model->user_ids[user]);
	values[1] = Int32GetDatum(rank);
	values[2] = model->item_keys ? CStringGetTextDatum(model->item_keys[item])
		: Int64GetDatum(model->item_ids[item]);
	values[3] = Float8GetDatum(score);
	if (w->sink == SINK_ROWS)
	{
		/* ids as in the factor tables: with keys, their positions */
		Datum		row[6] = {Int64GetDatum(model->user_ids[user]), values[1],
		Int64GetDatum(model->item_ids[item]), values[3], values[0], values[2]};
		bool		nulls[6] = {false, false, false, false,
		model->user_keys == NULL, model->item_keys == NULL};

		tuplestore_putvalues(w->rsinfo->setResult, w->rsinfo->setDesc, row, nulls);
		w->written++;
		MemoryContextSwitchTo(old);
		MemoryContextReset(w->rows_cxt);
		return;
	}
	if (w->sink == SINK_NEW_TABLE)
	{
		TupleTableSlot *slot = w->slots[w->used];

		ExecClearTuple(slot);
		memcpy(slot->tts_values, values, sizeof(values));
		memset(slot->tts_isnull, 0, sizeof(bool) * MF_BATCH_COLUMNS);
		ExecStoreVirtualTuple(slot);
	}
	else
		for (int c = 0; c < MF_BATCH_COLUMNS; c++)
			w->columns[c][w->used] = values[c];
	w->used++;
	MemoryContextSwitchTo(old);
	if (model->user_keys)
		w->bytes += VARSIZE(DatumGetPointer(values[0]));
	if (model->item_keys)
		w->bytes += VARSIZE(DatumGetPointer(values[2]));
	if (w->used == MF_BATCH_INSERT_ROWS || w->bytes >= MF_BATCH_INSERT_BYTES)
		writer_flush(w, model);
}

/* Writes the rows of the next block, whose users' best are set. */
static void
write_next_block(BatchRun *run)
{
	BatchWriter *w = &run->writer;
	const MfModel *model = run->model;
	int32		u0 = (int32) (w->next_block * run->block_users);
	int32		end = Min(u0 + run->block_users, model->factors.n_users);

	for (int32 user = u0; user < end; user++)
		for (int32 r = 0; r < run->found[user]; r++)
			writer_put(w, model, user, r + 1, run->best[(Size) user * run->n + r],
					   run->best_scores[(Size) user * run->n + r]);
	w->next_block++;
	mf_progress_step(end, model->factors.n_users, "user", NAN, NAN);
}

/* Finishes writing; returns the rows written. */
static int64
writer_close(BatchWriter *w, const MfModel *model)
{
	writer_flush(w, model);
	if (w->sink == SINK_NEW_TABLE)
	{
		FreeBulkInsertState(w->bistate);
		table_finish_bulk_insert(w->rel, TABLE_INSERT_SKIP_FSM);
		for (int s = 0; s < MF_BATCH_INSERT_ROWS; s++)
			ExecDropSingleTupleTableSlot(w->slots[s]);
		table_close(w->rel, NoLock);
	}
	else if (w->sink == SINK_EXISTING_TABLE)
		SPI_freeplan(w->insert);
	return w->written;
}

/* The bytes of the longest of count text keys (0 without keys). */
static Size
longest_key(char *const *keys, int32 count)
{
	Size		longest = 0;

	for (int32 i = 0; keys != NULL && i < count; i++)
	{
		if (i % 65536 == 65535)
			CHECK_FOR_INTERRUPTS();
		longest = Max(longest, strlen(keys[i]));
	}
	return longest;
}

/*
 * mf_parallel_for feeder, on the backend's thread between its blocks:
 * reads the next users' rated items, writes the blocks finished in
 * order, and returns how many blocks have their users' rated items.
 */
static int64
feed_blocks(void *arg)
{
	BatchRun   *run = arg;

	if (run->rated_cursor)
		read_rated_batch(run);
	while (run->writer.next_block < run->n_blocks &&
		   atomic_load(&run->done[run->writer.next_block]))
		write_next_block(run);
	return run->rated_cursor ? run->users_read / run->block_users : run->n_blocks;
}

/*
 * Column j of row r of one side's operand of the products: its factors,
 * then, with biases, 1 for a user and the bias for an item (the user's
 * bias and mu shift all of a user's scores alike, so only the items'
 * count).
 */
static double
operand_value(const MfFactors *f, MfSide side, Size r, int j)
{
	const void *rows = side == MF_USERS ? f->user_factors : f->item_factors;

	if (j < f->k)
		return f->single ? ((const float *) rows)[r * f->k + j]
			: ((const double *) rows)[r * f->k + j];
	return side == MF_USERS ? 1.0 : f->item_bias[r];
}

/*
 * The power of two that brings largest to [0.5, 1) (1 for 0): scaling by
 * it is exact, and leaves values far from float's overflow and underflow.
 */
static double
unit_scale(double largest)
{
	int			exponent;

	if (!(largest > 0.0) || !isfinite(largest))
		return 1.0;
	(void) frexp(largest, &exponent);
	return ldexp(1.0, -Max(-1000, Min(1000, exponent)));
}

/*
 * Copies side's operand as floats, times scale, or (row_scales not NULL)
 * each row times its own, recorded in row_scales.
 */
static void
copy_scaled(const MfFactors *f, MfSide side, int width, double *row_scales, double scale,
			float *to)
{
	int32		rows = side == MF_USERS ? f->n_users : f->n_items;

	for (Size r = 0; r < rows; r++)
	{
		double		row_scale = scale;

		if (row_scales)
		{
			double		largest = 0.0;

			for (int j = 0; j < width; j++)
				largest = Max(largest, fabs(operand_value(f, side, r, j)));
			row_scale = row_scales[r] = unit_scale(largest);
		}
		for (int j = 0; j < width; j++)
			to[r * width + j] = (float) (operand_value(f, side, r, j) * row_scale);
		if ((r & 65535) == 65535)
			CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Makes run->users and run->items, the float operands of the candidates'
 * products: each user's row scaled by a power of two of its own, the items
 * by one for all of them.  A user's ranking does not change when its
 * scores are multiplied by a positive number, and the scaling keeps the
 * products in float's range whatever the model's (a double-precision model
 * trained on ratings of 1e45 or of 1e-45).  The candidates are rescored
 * exactly, so the rounding only matters to which candidates are kept.
 */
static void
prepare_products(MemoryContext cxt, const MfFactors *f, BatchRun *run)
{
	float	   *users;
	float	   *items;
	double		largest_item = 0.0;

	run->width = f->biases ? f->k + 1 : f->k;
	users = mf_alloc_array(cxt, mul_size(f->n_users, run->width), sizeof(float));
	items = mf_alloc_array(cxt, mul_size(f->n_items, run->width), sizeof(float));
	run->user_scale = mf_alloc_array(cxt, f->n_users, sizeof(double));
	run->column_max = mf_alloc_array(cxt, run->width, sizeof(double));
	for (Size i = 0; i < f->n_items; i++)
		for (int j = 0; j < run->width; j++)
			largest_item = Max(largest_item, fabs(operand_value(f, MF_ITEMS, i, j)));
	run->item_scale = unit_scale(largest_item);
	copy_scaled(f, MF_ITEMS, run->width, NULL, run->item_scale, items);
	copy_scaled(f, MF_USERS, run->width, run->user_scale, 1.0, users);
	for (int j = 0; j < run->width; j++)
	{
		run->column_max[j] = 0.0;
		for (Size i = 0; i < f->n_items; i++)
			run->column_max[j] = Max(run->column_max[j], fabs(items[i * run->width + j]));
	}
	run->users = users;
	run->items = items;
}

/* The arguments of a call, checked. */
typedef struct BatchArgs
{
	int32		n;
	bool		exclude_rated;
	text	   *target;			/* NULL: the rows are the result */
	BatchMode	mode;
	int			filter_arg;		/* the candidates argument, followed by exclude */
} BatchArgs;

/* The mode argument (arg), or 'create' in a call through 0.4's definitions. */
static BatchMode
batch_mode_argument(FunctionCallInfo fcinfo, int arg)
{
	static const char *const hint = "Pass mode => 'create' (a new table), 'replace' (the table's rows deleted, then the new ones written, in the caller's transaction) or 'append' (added to its rows); 'replace' and 'append' create the table when it does not exist.";
	char	   *mode;

	if (arg >= PG_NARGS())
		return BATCH_CREATE;
	mf_check_not_null(fcinfo, arg, "mode", hint);
	mode = text_to_cstring(PG_GETARG_TEXT_PP(arg));
	if (strcmp(mode, "create") == 0)
		return BATCH_CREATE;
	if (strcmp(mode, "replace") == 0)
		return BATCH_REPLACE;
	if (strcmp(mode, "append") == 0)
		return BATCH_APPEND;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown mode \"%s\"", mode),
			 errhint("%s", hint)));
	return BATCH_CREATE;		/* keep the compiler quiet */
}

/*
 * The arguments (model, n, exclude_rated, target, mode, candidates,
 * exclude) of mf_recommend_all, or with rows those (model, n,
 * exclude_rated, candidates, exclude) of mf_recommend_all_rows.
 */
static BatchArgs
batch_arguments(FunctionCallInfo fcinfo, bool rows)
{
	BatchArgs	args = {0};
	static const char *const hint = "Omit it to use the default, or pass a value.";

	mf_check_not_null(fcinfo, 1, "n", hint);
	mf_check_not_null(fcinfo, 2, "exclude_rated", hint);
	if (!rows)
		mf_check_not_null(fcinfo, 3, "target",
						  "Pass the name of the table to write the recommendations into.");
	args.n = PG_GETARG_INT32(1);
	mf_check_count(args.n, "n", "n is how many items to recommend to each user.");
	args.exclude_rated = PG_GETARG_BOOL(2);
	args.target = rows ? NULL : PG_GETARG_TEXT_PP(3);
	args.mode = rows ? BATCH_CREATE : batch_mode_argument(fcinfo, 4);
	args.filter_arg = rows ? 3 : 5;
	return args;
}

/*
 * Opens the writer of mf_recommend_all's target for the model found: a
 * new table, created, or with mode 'replace' or 'append' an existing one,
 * checked (and for 'replace' emptied by a DELETE).  The model is then
 * looked up again into run->model: creating the table or deleting its
 * rows may run the caller's triggers, which may retrain it.
 */
static void
batch_open_target(FunctionCallInfo fcinfo, const BatchArgs *args, const MfModel *found,
				  BatchRun *run)
{
	int32		model_id = found->row.model_id;
	bool		user_keys = found->user_keys != NULL;
	bool		item_keys = found->item_keys != NULL;
	char	   *quoted;
	RangeVar   *relation = target_name(args->target, &quoted);
	Oid			relid = RangeVarGetRelidExtended(relation, RowExclusiveLock, RVR_MISSING_OK,
												 NULL, NULL);
	bool		existed = OidIsValid(relid);
	MfModel    *model;

	if (existed && args->mode == BATCH_CREATE)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("relation %s already exists", quoted),
				 errhint("Pass mode => 'replace' to replace its rows, or mode => 'append' to add to them; or drop it, or pass another name.")));
	if (existed)
	{
		check_existing_target(relid, found);
		if (args->mode == BATCH_REPLACE)
		{
			mf_progress_phase("deleting");
			if (SPI_execute(psprintf("DELETE FROM %s",
									 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
																get_rel_name(relid))),
							false, 0) != SPI_OK_DELETE)
				elog(ERROR, "could not delete the rows of %s", quoted);
			mf_progress_phase("scoring");
		}
	}
	else
		relid = create_target(relation, quoted, user_keys, item_keys);

	model = mf_cache_model_by_id(fcinfo, model_id);
	if ((model->user_keys != NULL) != user_keys || (model->item_keys != NULL) != item_keys)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("model \"%s\" was retrained on ids of another type while mf_recommend_all prepared its table",
						model->row.name),
				 errhint("Run mf_recommend_all again.")));
	run->model = model;
	if (existed)
		writer_open_existing(&run->writer, relid, model);
	else
		writer_open_new(&run->writer, relid, model);
}

/*
 * Sizes the run (candidates, users per block) and checks its memory
 * against mf_ext.max_memory; returns the threads.
 */
static int
batch_plan(BatchRun *run)
{
	const MfModel *model = run->model;
	const MfFactors *f = run->f;
	MfMemory	memory = {0};
	Size		real = sizeof(float);
	int			threads = mf_thread_count();

	run->n = Min(run->n, Max(f->n_items, 1));
	run->keep = Min(run->n + MF_BATCH_SPARE, Max(f->n_items, 1));
	run->block_users = (int32) Max(1, Min(f->n_users, MF_BATCH_BLOCK_BYTES / Max((Size) f->n_items * real, 1)));
	run->n_blocks = (f->n_users + run->block_users - 1) / run->block_users;
	/* the lists; the factors for the products; each thread's buffers */
	mf_memory_add(&memory, mul_size(f->n_users, run->n), sizeof(int32) + sizeof(double));
	mf_memory_add(&memory, mul_size(add_size(f->n_users, f->n_items), f->k + 1), real);
	mf_memory_add(&memory, mul_size(threads, f->n_items), mul_size(run->block_users, real) + sizeof(bool));
	mf_memory_add(&memory, mul_size(threads, run->keep), sizeof(int32) + sizeof(double));
	mf_memory_add(&memory, mul_size(threads, f->n_items), sizeof(double));	/* exact ranking */
	mf_memory_add(&memory, f->n_users, sizeof(double));	/* user scales */
	/* the rows waiting for the multi-insert: their keys, and the longest row's copies */
	if (model->user_keys || model->item_keys)
		mf_memory_add(&memory, 1, add_size(MF_BATCH_INSERT_BYTES,
										   mul_size(4, add_size(longest_key(model->user_keys, f->n_users),
																longest_key(model->item_keys, f->n_items)))));
	mf_memory_check(&memory, "mf_recommend_all",
					psprintf("Ranking %d items for each of %d users, %d at a time on each of %d threads.",
							 f->n_items, f->n_users, run->block_users, threads),
					NULL);
	return threads;
}

/* Allocates the run's lists, flags and each thread's buffers in cxt. */
static void
batch_allocate(BatchRun *run, int threads, MemoryContext cxt)
{
	const MfFactors *f = run->f;

	run->rated = mf_alloc_array(cxt, f->n_users, sizeof(int32 *));
	memset(run->rated, 0, sizeof(int32 *) * f->n_users);
	run->rated_count = mf_alloc_array(cxt, f->n_users, sizeof(int32));
	memset(run->rated_count, 0, sizeof(int32) * f->n_users);
	run->best = mf_alloc_array(cxt, mul_size(f->n_users, run->n), sizeof(int32));
	run->best_scores = mf_alloc_array(cxt, mul_size(f->n_users, run->n), sizeof(double));
	run->found = mf_alloc_array(cxt, f->n_users, sizeof(int32));
	run->done = mf_alloc_array(cxt, run->n_blocks, sizeof(atomic_bool));
	for (int64 block = 0; block < run->n_blocks; block++)
		atomic_init(&run->done[block], false);
	run->buffers = mf_alloc_array(cxt, threads, sizeof(BatchBuffers));
	for (int t = 0; t < threads; t++)
	{
		BatchBuffers *b = &run->buffers[t];

		b->products = mf_alloc_array(cxt, mul_size(run->block_users, f->n_items), sizeof(float));
		b->excluded = mf_alloc_array(cxt, f->n_items, sizeof(bool));
		if (run->filter)
			memcpy(b->excluded, run->filter, sizeof(bool) * f->n_items);
		else
			memset(b->excluded, 0, sizeof(bool) * f->n_items);
		b->candidates = mf_alloc_array(cxt, run->keep, sizeof(int32));
		b->scores = mf_alloc_array(cxt, run->keep, sizeof(double));
		b->all_scores = mf_alloc_array(cxt, f->n_items, sizeof(double));
		b->wide = mf_alloc_array(cxt, Max(f->k, 1), sizeof(double));
		b->exact_users = 0;
	}
	run->cxt = cxt;
	run->batch_cxt = AllocSetContextCreate(cxt, "mf_recommend_all rated items",
										   ALLOCSET_DEFAULT_SIZES);
}

/*
 * Ranks every user's items on the threads while the backend reads the
 * rated items (exclude_rated) and writes the finished blocks into the
 * writer's sink; returns the rows written.
 */
static int64
batch_run(FunctionCallInfo fcinfo, BatchRun *run, bool exclude_rated, int threads)
{
	int64		exact_users = 0;

	if (exclude_rated)
	{
		MfSchema	schema = mf_schema_of(fcinfo);

		run->rated_cursor = mf_catalog_open_rated_items(&schema, run->model->row.model_id);
	}
	mf_parallel_for(threads, run->n_blocks, 1, recommend_blocks, feed_blocks, run);
	for (int t = 0; t < threads; t++)
		exact_users += run->buffers[t].exact_users;
	elog(DEBUG1, "mf_recommend_all ranked " INT64_FORMAT " of %d users from exact scores of every item",
		 exact_users, run->f->n_users);
	if (run->rated_cursor)
		SPI_cursor_close(run->rated_cursor);
	if (run->writer.next_block < run->n_blocks)
		mf_progress_phase("writing");
	while (run->writer.next_block < run->n_blocks)
	{
		write_next_block(run);
		CHECK_FOR_INTERRUPTS();
	}
	return writer_close(&run->writer, run->model);
}

/*
 * mf_recommend_all(model, n, exclude_rated, target, mode, candidates,
 * exclude), returning the rows written, or with rows
 * mf_recommend_all_rows(model, n, exclude_rated, candidates, exclude),
 * returning them.  found is the model as first looked up.
 */
static Datum
recommend_all(FunctionCallInfo fcinfo, MfModel *found, bool rows)
{
	BatchArgs	args = batch_arguments(fcinfo, rows);
	const char *function = rows ? "mf_recommend_all_rows" : "mf_recommend_all";
	BatchRun	run = {0};
	MemoryContext cxt;
	MemoryContext old;
	int			threads;
	int64		written;

	if (rows)
		InitMaterializedSRF(fcinfo, 0);
	cxt = AllocSetContextCreate(CurrentMemoryContext, "mf_recommend_all", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	mf_progress_begin(function, found->row.name, "scoring");
	/* the filters are checked before the target is touched */
	run.filter = mf_filter_mask_any(fcinfo, args.filter_arg, found, MF_ITEMS, NULL);
	if (rows)
	{
		run.model = found;
		writer_open_rows(&run.writer, fcinfo);
	}
	else
		batch_open_target(fcinfo, &args, found, &run);
	if (run.model != found)		/* retrained meanwhile: its items may differ */
		run.filter = mf_filter_mask_any(fcinfo, args.filter_arg, run.model, MF_ITEMS, NULL);
	run.f = &run.model->factors;
	run.item_ids = run.model->item_ids;
	run.n = args.n;
	run.blas = mf_blas();
	threads = batch_plan(&run);
	prepare_products(cxt, run.f, &run);
	batch_allocate(&run, threads, cxt);
	written = batch_run(fcinfo, &run, args.exclude_rated, threads);
	mf_progress_end();
	SPI_finish();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	if (rows)
		return (Datum) 0;
	PG_RETURN_INT64(written);
}

/*
 * mf_recommend_all(model, n DEFAULT 10, exclude_rated DEFAULT true,
 * target text, mode DEFAULT 'create', candidates DEFAULT NULL, exclude
 * DEFAULT NULL) -> bigint, by model_id or name: writes every user's top n
 * (user_id, rank, item_id, score) into the table target.
 */
Datum
mf_recommend_all(PG_FUNCTION_ARGS)
{
	return recommend_all(fcinfo, mf_model_argument(fcinfo, false), false);
}

Datum
mf_recommend_all_by_name(PG_FUNCTION_ARGS)
{
	return recommend_all(fcinfo, mf_model_argument(fcinfo, true), false);
}

/*
 * mf_recommend_all_rows(model, n DEFAULT 10, exclude_rated DEFAULT true,
 * candidates DEFAULT NULL, exclude DEFAULT NULL) -> (user_id, rank,
 * item_id, score, user_key, item_key), by model_id or name.
 */
Datum
mf_recommend_all_rows(PG_FUNCTION_ARGS)
{
	return recommend_all(fcinfo, mf_model_argument(fcinfo, false), true);
}

Datum
mf_recommend_all_rows_by_name(PG_FUNCTION_ARGS)
{
	return recommend_all(fcinfo, mf_model_argument(fcinfo, true), true);
}
