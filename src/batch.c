/*-------------------------------------------------------------------------
 *
 * batch.c
 *	  mf_recommend_all(): the top n items of every user of a model, written
 *	  into a new table (user_id, rank, item_id, score).
 *
 *	  Users are taken in blocks; for a block, one matrix product (?gemm)
 *	  scores every item for every user of the block, on all threads
 *	  (parallel.c).  Each user's n + MF_BATCH_SPARE best candidates (the
 *	  items it rated left out) are then rescored with mf_score, the scoring
 *	  mf_predict and mf_recommend use, and the best n kept: every score
 *	  written is mf_predict's, and the list differs from mf_recommend's
 *	  only where a matrix product's rounding reorders items whose scores
 *	  agree to within float precision.
 *
 *-------------------------------------------------------------------------
 */
#include "mf_ext.h"
#include "blas.h"

#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/varlena.h"

PG_FUNCTION_INFO_V1(mf_recommend_all);
PG_FUNCTION_INFO_V1(mf_recommend_all_by_name);

/* Candidates kept beyond n for the exact rescoring. */
#define MF_BATCH_SPARE		8
/* Bytes of products one thread holds for a block of users (about L2). */
#define MF_BATCH_BLOCK_BYTES	(1024 * 1024)
/* Result rows handed to the table's multi-insert at a time. */
#define MF_BATCH_INSERT_ROWS	1000

/* One thread's scratch space. */
typedef struct BatchBuffers
{
	float	   *products;		/* block_users x n_items */
	bool	   *excluded;		/* n_items */
	int32	   *candidates;		/* keep */
	double	   *scores;			/* keep: product scores, then exact ones */
} BatchBuffers;

/* A whole mf_recommend_all run, shared by its threads. */
typedef struct BatchRun
{
	const MfBlas *blas;
	const MfFactors *f;
	const float *users;			/* n_users x width: factors, then 1 with biases */
	const float *items;			/* n_items x width: factors, then the item bias */
	int			width;			/* k, or k + 1 with biases */
	const int64 *item_ids;
	int32		n;				/* items per user to keep */
	int32		keep;			/* candidates per user: n + spare, at most n_items */
	int32		block_users;	/* users per block */
	const int64 *rated_start;	/* per user: its first entry in rated, or NULL */
	const int32 *rated_count;	/* per user: its entries in rated */
	const int32 *rated;			/* dense item indices the users rated */
	BatchBuffers *buffers;		/* one per thread */
	int32	   *best;			/* n_users x n: dense item indices */
	double	   *best_scores;	/* n_users x n */
	int32	   *found;			/* per user: how many of its n are set */
} BatchRun;

/*
 * Ranks one user's candidates by their exact scores (higher first, then
 * lower id): an insertion sort of at most n + MF_BATCH_SPARE entries.
 */
static void
sort_candidates(const BatchRun *run, int32 *items, double *exact, int32 count)
{
	for (int32 a = 1; a < count; a++)
	{
		int32		item = items[a];
		double		score = exact[a];
		int32		at = a;

		while (at > 0 && (exact[at - 1] < score ||
						  (exact[at - 1] == score &&
						   run->item_ids[items[at - 1]] > run->item_ids[item])))
		{
			items[at] = items[at - 1];
			exact[at] = exact[at - 1];
			at--;
		}
		items[at] = item;
		exact[at] = score;
	}
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

		/* products[j * n_items + i] = u_(u0 + j) . v_i (+ b_i) */
		run->blas->sgemm(CblasColMajor, CblasTrans, CblasNoTrans, f->n_items, count,
						 run->width, 1, run->items, run->width,
						 run->users + (Size) u0 * run->width, run->width,
						 0, b->products, f->n_items);

		for (int32 j = 0; j < count; j++)
		{
			int32		user = u0 + j;
			const int32 *rated = run->rated_start ? run->rated + run->rated_start[user] : NULL;
			int32		n_rated = run->rated_start ? run->rated_count[user] : 0;
			MfTop		top;
			int32		kept;

			for (int32 e = 0; e < n_rated; e++)
				b->excluded[rated[e]] = true;
			mf_top_init(&top, run->keep, run->item_ids, b->candidates, b->scores);
			mf_top_offer_row(&top, b->products + (Size) j * f->n_items, true,
							 b->excluded, f->n_items);
			for (int32 e = 0; e < n_rated; e++)
				b->excluded[rated[e]] = false;

			/* rescore the candidates as mf_predict does, and rank them again */
			for (int32 c = 0; c < top.size; c++)
				b->scores[c] = mf_score(f, user, b->candidates[c]);
			sort_candidates(run, b->candidates, b->scores, top.size);
			kept = Min(top.size, run->n);
			memcpy(run->best + (Size) user * run->n, b->candidates, sizeof(int32) * kept);
			memcpy(run->best_scores + (Size) user * run->n, b->scores, sizeof(double) * kept);
			run->found[user] = kept;
		}
	}
	return -1;
}

/* State of load_rated while it scans the users' rated items. */
typedef struct RatedLoad
{
	const MfModel *model;
	int64	   *start;			/* per user */
	int32	   *count;			/* per user, 0 until its row is read */
	int32	   *items;
	int64		n;
	int64		capacity;
} RatedLoad;

/* mf_spi_scan callback: one user's rated items, as dense item indices. */
static void
load_rated(HeapTuple tuple, TupleDesc desc, void *arg)
{
	RatedLoad  *load = arg;
	bool		isnull;
	int64		user_id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
	int32		user = mf_id_index(load->model->user_map, user_id);
	Datum		value = SPI_getbinval(tuple, desc, 2, &isnull);
	const int64 *ids;
	int			count;

	if (user < 0 || isnull)
		return;
	ids = mf_rated_item_ids(load->model, user_id, value, &count);
	if (load->n + count > load->capacity)
	{
		load->capacity = Max(load->capacity * 2, load->n + count);
		load->items = repalloc_huge(load->items, mul_size(load->capacity, sizeof(int32)));
	}
	load->start[user] = load->n;
	for (int e = 0; e < count; e++)
	{
		int32		item = mf_id_index(load->model->item_map, ids[e]);

		if (item >= 0)
			load->items[load->n++] = item;
	}
	load->count[user] = (int32) (load->n - load->start[user]);
}

/* Reads the items each user of the model rated into run (rated_*). */
static void
read_rated_items(FunctionCallInfo fcinfo, MemoryContext cxt, const MfModel *model,
				 BatchRun *run)
{
	RatedLoad	load = {model, NULL, NULL, NULL, 0, 1024};
	Oid			argtype = INT4OID;
	Datum		arg = Int32GetDatum(model->model_id);

	load.start = mf_alloc_array(cxt, model->factors.n_users, sizeof(int64));
	load.count = mf_alloc_array(cxt, model->factors.n_users, sizeof(int32));
	memset(load.count, 0, sizeof(int32) * model->factors.n_users);
	load.items = mf_alloc_array(cxt, load.capacity, sizeof(int32));
	mf_spi_scan(psprintf("SELECT user_id, rated_items FROM %s.mf_user_factors WHERE model_id = $1",
						 mf_schema_quoted(fcinfo)),
				1, &argtype, &arg, load_rated, &load);
	/* a user without a row rated nothing; its start is never read */
	run->rated_start = load.start;
	run->rated_count = load.count;
	run->rated = load.items;
}

/*
 * Creates the target table and returns its oid; an existing relation of
 * that name is an error (nothing is overwritten).
 */
static Oid
create_target(text *target)
{
	List	   *names = textToQualifiedNameList(target);
	RangeVar   *relation = makeRangeVarFromNameList(names);
	char	   *quoted = quote_qualified_identifier(relation->schemaname, relation->relname);

	if (OidIsValid(RangeVarGetRelid(relation, NoLock, true)))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("relation %s already exists", quoted),
				 errhint("mf_recommend_all writes into a new table: drop that one, or pass another name.")));
	if (SPI_execute(psprintf("CREATE TABLE %s (user_id bigint NOT NULL, rank integer NOT NULL,"
							 " item_id bigint NOT NULL, score double precision NOT NULL)",
							 quoted), false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not create %s", quoted);
	/* CREATE TABLE holds its AccessExclusiveLock until the transaction ends */
	return RangeVarGetRelid(relation, NoLock, false);
}

/*
 * Rows go into the target without the executor, so it must still be the
 * plain table create_target made: an event trigger may have changed it.
 */
static void
require_plain_target(Relation rel)
{
	static const Oid column_types[4] = {INT8OID, INT4OID, INT8OID, FLOAT8OID};
	TupleDesc	desc = RelationGetDescr(rel);
	bool		plain = rel->rd_rel->relkind == RELKIND_RELATION &&
		!rel->rd_rel->relhasindex && rel->trigdesc == NULL &&
		!rel->rd_rel->relrowsecurity &&
		(desc->constr == NULL || desc->constr->num_check == 0) &&
		desc->natts == 4;

	for (int a = 0; plain && a < 4; a++)
		plain = !TupleDescAttr(desc, a)->attisdropped &&
			TupleDescAttr(desc, a)->atttypid == column_types[a];
	if (!plain)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" was changed while mf_recommend_all created it",
						RelationGetRelationName(rel)),
				 errdetail("An event trigger added columns, indexes, triggers, constraints or row-level security; mf_recommend_all writes its rows directly and would bypass them."),
				 errhint("Let the event trigger skip this table, or copy the rows from it into the table you need.")));
}

/*
 * Writes the results into the table relid, which this call created, in
 * batches of tuples (the table access method's multi-insert, as COPY
 * does); returns the rows written.
 */
static int64
write_results(Oid relid, const MfModel *model, const BatchRun *run)
{
	Relation	rel = table_open(relid, RowExclusiveLock);
	BulkInsertState bistate = GetBulkInsertState();
	CommandId	cid = GetCurrentCommandId(true);
	TupleTableSlot *slots[MF_BATCH_INSERT_ROWS];
	int			used = 0;
	int64		written = 0;

	require_plain_target(rel);
	for (int s = 0; s < MF_BATCH_INSERT_ROWS; s++)
		slots[s] = table_slot_create(rel, NULL);
	for (int32 user = 0; user < model->factors.n_users; user++)
	{
		for (int32 r = 0; r < run->found[user]; r++)
		{
			TupleTableSlot *slot = slots[used++];

			ExecClearTuple(slot);
			slot->tts_values[0] = Int64GetDatum(model->user_ids[user]);
			slot->tts_values[1] = Int32GetDatum(r + 1);
			slot->tts_values[2] = Int64GetDatum(model->item_ids[run->best[(Size) user * run->n + r]]);
			slot->tts_values[3] = Float8GetDatum(run->best_scores[(Size) user * run->n + r]);
			memset(slot->tts_isnull, 0, sizeof(bool) * 4);
			ExecStoreVirtualTuple(slot);
			if (used == MF_BATCH_INSERT_ROWS)
			{
				table_multi_insert(rel, slots, used, cid, TABLE_INSERT_SKIP_FSM, bistate);
				written += used;
				used = 0;
				CHECK_FOR_INTERRUPTS();
			}
		}
	}
	if (used > 0)
		table_multi_insert(rel, slots, used, cid, TABLE_INSERT_SKIP_FSM, bistate);
	written += used;
	FreeBulkInsertState(bistate);
	table_finish_bulk_insert(rel, TABLE_INSERT_SKIP_FSM);
	for (int s = 0; s < MF_BATCH_INSERT_ROWS; s++)
		ExecDropSingleTupleTableSlot(slots[s]);
	table_close(rel, NoLock);
	return written;
}

/*
 * Points run->users and run->items at float factors for the candidates'
 * products: the model's own when it has float factors and no biases, else
 * copies rounded to float, a column of ones beside the users' and the item
 * biases beside the items' (the user's bias and mu shift all of a user's
 * scores alike, so only the items' count).  The candidates are rescored
 * exactly, so the rounding only matters to which candidates are kept.
 */
static void
prepare_products(MemoryContext cxt, const MfFactors *f, BatchRun *run)
{
	float	   *users;
	float	   *items;
	int			k = f->k;

	run->width = f->biases ? k + 1 : k;
	if (f->single && !f->biases)
	{
		run->users = f->user_factors;
		run->items = f->item_factors;
		return;
	}
	users = mf_alloc_array(cxt, mul_size(f->n_users, run->width), sizeof(float));
	items = mf_alloc_array(cxt, mul_size(f->n_items, run->width), sizeof(float));
	for (int side = 0; side < 2; side++)
	{
		int32		rows = side == 0 ? f->n_users : f->n_items;
		const void *from = side == 0 ? f->user_factors : f->item_factors;
		float	   *to = side == 0 ? users : items;

		for (Size r = 0; r < rows; r++)
		{
			for (int j = 0; j < k; j++)
				to[r * run->width + j] = f->single ? ((const float *) from)[r * k + j]
					: (float) ((const double *) from)[r * k + j];
			if (f->biases)
				to[r * run->width + k] = side == 0 ? 1.0f : (float) f->item_bias[r];
		}
	}
	run->users = users;
	run->items = items;
}

/*
 * mf_recommend_all(model, n, exclude_rated, target): returns the rows
 * written.  found is the model as first looked up; creating the target
 * may run the caller's event triggers, so only its id is kept across.
 */
static Datum
recommend_all(FunctionCallInfo fcinfo, MfModel *found)
{
	int32		model_id = found->model_id;
	MemoryContext cxt;
	MemoryContext old;
	BatchRun	run = {0};
	MfModel    *model;
	const MfFactors *f;
	Oid			target;
	int			threads;
	Size		per_thread;
	int64		written;

	mf_require_integer_ids(found->user_keys || found->item_keys, "mf_recommend_all");
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL",
						PG_ARGISNULL(1) ? "n" : PG_ARGISNULL(2) ? "exclude_rated" : "target"),
				 errhint(PG_ARGISNULL(3) ? "Pass the name of a new table to write the recommendations into."
						 : "Omit it to use the default, or pass a value.")));
	run.n = PG_GETARG_INT32(1);
	if (run.n < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("n must be at least 1, got %d", run.n),
				 errhint("n is how many items to recommend to each user.")));

	cxt = AllocSetContextCreate(CurrentMemoryContext, "mf_recommend_all",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	target = create_target(PG_GETARG_TEXT_PP(3));
	model = mf_cache_model_by_id(fcinfo, model_id);
	f = &model->factors;

	run.blas = mf_blas();
	run.f = f;
	run.item_ids = model->item_ids;
	run.n = Min(run.n, Max(f->n_items, 1));
	run.keep = Min(run.n + MF_BATCH_SPARE, Max(f->n_items, 1));
	run.block_users = (int32) Max(1, Min(f->n_users, MF_BATCH_BLOCK_BYTES / Max((Size) f->n_items * sizeof(float), 1)));
	threads = mf_thread_count();
	per_thread = add_size(mul_size(add_size(mul_size(run.block_users, sizeof(float)), sizeof(bool)),
								   f->n_items),
						  mul_size(run.keep, sizeof(int32) + sizeof(double)));
	mf_check_memory(add_size(add_size(mul_size(mul_size(f->n_users, run.n), sizeof(int32) + sizeof(double)),
									  mul_size(mul_size(add_size(f->n_users, f->n_items), f->k + 1),
											   sizeof(float))),
							 mul_size(threads, per_thread)),
					psprintf("Ranking %d items for each of %d users, %d at a time on each of %d threads.",
							 f->n_items, f->n_users, run.block_users, threads));

	if (PG_GETARG_BOOL(2))
		read_rated_items(fcinfo, cxt, model, &run);

	prepare_products(cxt, f, &run);
	run.best = mf_alloc_array(cxt, mul_size(f->n_users, run.n), sizeof(int32));
	run.best_scores = mf_alloc_array(cxt, mul_size(f->n_users, run.n), sizeof(double));
	run.found = mf_alloc_array(cxt, f->n_users, sizeof(int32));
	run.buffers = mf_alloc_array(cxt, threads, sizeof(BatchBuffers));
	for (int t = 0; t < threads; t++)
	{
		BatchBuffers *b = &run.buffers[t];

		b->products = mf_alloc_array(cxt, mul_size(run.block_users, f->n_items), sizeof(float));
		b->excluded = mf_alloc_array(cxt, f->n_items, sizeof(bool));
		memset(b->excluded, 0, sizeof(bool) * f->n_items);
		b->candidates = mf_alloc_array(cxt, run.keep, sizeof(int32));
		b->scores = mf_alloc_array(cxt, run.keep, sizeof(double));
	}
	mf_parallel_for(threads, (f->n_users + run.block_users - 1) / run.block_users, 1,
					recommend_blocks, &run);

	written = write_results(target, model, &run);
	SPI_finish();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	PG_RETURN_INT64(written);
}

Datum
mf_recommend_all(PG_FUNCTION_ARGS)
{
	mf_require_model_argument(fcinfo);
	return recommend_all(fcinfo, mf_cache_model_by_id(fcinfo, PG_GETARG_INT32(0)));
}

Datum
mf_recommend_all_by_name(PG_FUNCTION_ARGS)
{
	mf_require_model_argument(fcinfo);
	return recommend_all(fcinfo, mf_cache_model_by_name(fcinfo, PG_GETARG_TEXT_PP(0)));
}
