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

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

PG_FUNCTION_INFO_V1(mf_recommend_all);
PG_FUNCTION_INFO_V1(mf_recommend_all_by_name);

/* Candidates kept beyond n for the exact rescoring. */
#define MF_BATCH_SPARE		8
/* Bytes of scores one thread holds for a block of users (about L2). */
#define MF_BATCH_BLOCK_BYTES	(1024 * 1024)
/* Result rows written per INSERT. */
#define MF_BATCH_INSERT_ROWS	65536

/* One thread's scratch space. */
typedef struct BatchBuffers
{
	void	   *products;		/* block_users x n_items reals */
	double	   *scores;			/* n_items */
	bool	   *excluded;		/* n_items */
	int32	   *candidates;		/* keep */
	double	   *exact;			/* keep */
} BatchBuffers;

/* A whole mf_recommend_all run, shared by its threads. */
typedef struct BatchRun
{
	const MfBlas *blas;
	const MfFactors *f;
	const int64 *item_ids;
	int32		n;				/* items per user to keep */
	int32		keep;			/* candidates per user: n + spare, at most n_items */
	int32		block_users;
	const int64 *rated_start;	/* n_users + 1 offsets into rated, or NULL */
	const int32 *rated;			/* dense item indices each user rated */
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
	int			k = f->k;

	for (int64 block = first; block < last; block++)
	{
		int32		u0 = (int32) (block * run->block_users);
		int32		count = Min(run->block_users, f->n_users - u0);

		/* products[j * n_items + i] = u_(u0 + j) . v_i */
		if (f->single)
			run->blas->sgemm(CblasColMajor, CblasTrans, CblasNoTrans, f->n_items, count, k,
							 1, f->item_factors, k,
							 (const float *) f->user_factors + (Size) u0 * k, k,
							 0, b->products, f->n_items);
		else
			run->blas->dgemm(CblasColMajor, CblasTrans, CblasNoTrans, f->n_items, count, k,
							 1, f->item_factors, k,
							 (const double *) f->user_factors + (Size) u0 * k, k,
							 0, b->products, f->n_items);

		for (int32 j = 0; j < count; j++)
		{
			int32		user = u0 + j;
			int32		n_candidates;
			int32		kept;

			if (f->single)
			{
				const float *row = (const float *) b->products + (Size) j * f->n_items;

				for (int32 i = 0; i < f->n_items; i++)
					b->scores[i] = row[i];
			}
			else
				memcpy(b->scores, (const double *) b->products + (Size) j * f->n_items,
					   sizeof(double) * f->n_items);
			/* the user's bias and mu shift every score alike: only items' count */
			if (f->biases)
				for (int32 i = 0; i < f->n_items; i++)
					b->scores[i] += f->item_bias[i];
			if (run->rated_start)
				for (int64 e = run->rated_start[user]; e < run->rated_start[user + 1]; e++)
					b->excluded[run->rated[e]] = true;
			n_candidates = mf_select_top(b->scores, run->item_ids,
										 run->rated_start ? b->excluded : NULL,
										 f->n_items, run->keep, b->candidates);
			if (run->rated_start)
				for (int64 e = run->rated_start[user]; e < run->rated_start[user + 1]; e++)
					b->excluded[run->rated[e]] = false;

			for (int32 c = 0; c < n_candidates; c++)
				b->exact[c] = mf_score(f, user, b->candidates[c]);
			sort_candidates(run, b->candidates, b->exact, n_candidates);
			kept = Min(n_candidates, run->n);
			memcpy(run->best + (Size) user * run->n, b->candidates, sizeof(int32) * kept);
			memcpy(run->best_scores + (Size) user * run->n, b->exact, sizeof(double) * kept);
			run->found[user] = kept;
		}
	}
	return -1;
}

/* State of load_rated while it scans the users' rated items. */
typedef struct RatedLoad
{
	const MfModel *model;
	int64	   *start;			/* n_users + 1 */
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
	for (int e = 0; e < count; e++)
	{
		int32		item = mf_id_index(load->model->item_map, ids[e]);

		if (item >= 0)
			load->items[load->n++] = item;
	}
	load->start[user + 1] = load->n;
}

/* Inserts the first rows of the four columns into target through plan. */
static void
insert_rows(SPIPlanPtr plan, const int64 *user_ids, const int32 *ranks,
			const int64 *item_ids, const double *scores, int rows)
{
	Datum		args[4] = {
		PointerGetDatum(mf_flat_array(INT8OID, user_ids, rows)),
		PointerGetDatum(mf_flat_array(INT4OID, ranks, rows)),
		PointerGetDatum(mf_flat_array(INT8OID, item_ids, rows)),
		PointerGetDatum(mf_flat_array(FLOAT8OID, scores, rows))
	};

	if (SPI_execute_plan(plan, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not insert the recommendations");
	for (int a = 0; a < 4; a++)
		pfree(DatumGetPointer(args[a]));
}

/* Writes the results into target (quoted), in batches; returns the rows. */
static int64
write_results(const char *target, const MfModel *model, const BatchRun *run)
{
	Oid			argtypes[4] = {INT8ARRAYOID, INT4ARRAYOID, INT8ARRAYOID, FLOAT8ARRAYOID};
	SPIPlanPtr	plan = SPI_prepare(psprintf("INSERT INTO %s SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4))",
											target), 4, argtypes);
	int64	   *user_ids = palloc(sizeof(int64) * MF_BATCH_INSERT_ROWS);
	int32	   *ranks = palloc(sizeof(int32) * MF_BATCH_INSERT_ROWS);
	int64	   *item_ids = palloc(sizeof(int64) * MF_BATCH_INSERT_ROWS);
	double	   *scores = palloc(sizeof(double) * MF_BATCH_INSERT_ROWS);
	int64		written = 0;
	int			rows = 0;

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	for (int32 user = 0; user < model->factors.n_users; user++)
	{
		if (rows + run->n > MF_BATCH_INSERT_ROWS)
		{
			insert_rows(plan, user_ids, ranks, item_ids, scores, rows);
			written += rows;
			rows = 0;
			CHECK_FOR_INTERRUPTS();
		}
		for (int32 r = 0; r < run->found[user]; r++)
		{
			user_ids[rows] = model->user_ids[user];
			ranks[rows] = r + 1;
			item_ids[rows] = model->item_ids[run->best[(Size) user * run->n + r]];
			scores[rows] = run->best_scores[(Size) user * run->n + r];
			rows++;
		}
	}
	if (rows > 0)
		insert_rows(plan, user_ids, ranks, item_ids, scores, rows);
	written += rows;
	SPI_freeplan(plan);
	return written;
}

/*
 * Creates the target table and returns its name, quoted; an existing
 * relation of that name is an error (nothing is overwritten).
 */
static char *
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
	return quoted;
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
	char	   *target;
	int			threads;
	Size		real_size;
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
	if (f->k == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("model \"%s\" has no factors (k = 0)", model->name),
				 errhint("Rank by the item biases in SQL, or train a model with k of 1 or more.")));

	run.blas = mf_blas();
	run.f = f;
	run.item_ids = model->item_ids;
	run.n = Min(run.n, Max(f->n_items, 1));
	run.keep = Min(run.n + MF_BATCH_SPARE, Max(f->n_items, 1));
	real_size = f->single ? sizeof(float) : sizeof(double);
	run.block_users = (int32) Max(1, Min(256, MF_BATCH_BLOCK_BYTES / Max((Size) f->n_items * real_size, 1)));
	threads = mf_thread_count();
	mf_check_memory(add_size(mul_size(mul_size(f->n_users, run.n), sizeof(int32) + sizeof(double)),
							 mul_size(threads, add_size(MF_BATCH_BLOCK_BYTES + (Size) f->n_items * real_size,
														mul_size(f->n_items, sizeof(double) + sizeof(bool))))),
					psprintf("Ranking %d items for each of %d users, %d at a time on %d threads.",
							 f->n_items, f->n_users, run.block_users, threads));

	if (PG_GETARG_BOOL(2))
	{
		RatedLoad	load = {model, NULL, NULL, 0, 1024};
		Oid			argtype = INT4OID;
		Datum		arg = Int32GetDatum(model_id);

		load.start = mf_alloc_array(cxt, (Size) f->n_users + 1, sizeof(int64));
		memset(load.start, 0, sizeof(int64) * ((Size) f->n_users + 1));
		load.items = mf_alloc_array(cxt, load.capacity, sizeof(int32));
		mf_spi_scan(psprintf("SELECT user_id, rated_items FROM %s.mf_user_factors WHERE model_id = $1 ORDER BY user_id",
							 mf_schema_quoted(fcinfo)),
					1, &argtype, &arg, load_rated, &load);
		/* users without a row keep the previous user's end: no items */
		for (int32 u = 0; u < f->n_users; u++)
			load.start[u + 1] = Max(load.start[u + 1], load.start[u]);
		run.rated_start = load.start;
		run.rated = load.items;
	}

	run.best = mf_alloc_array(cxt, mul_size(f->n_users, run.n), sizeof(int32));
	run.best_scores = mf_alloc_array(cxt, mul_size(f->n_users, run.n), sizeof(double));
	run.found = mf_alloc_array(cxt, f->n_users, sizeof(int32));
	run.buffers = mf_alloc_array(cxt, threads, sizeof(BatchBuffers));
	for (int t = 0; t < threads; t++)
	{
		BatchBuffers *b = &run.buffers[t];

		b->products = mf_alloc_array(cxt, mul_size(run.block_users, f->n_items), real_size);
		b->scores = mf_alloc_array(cxt, f->n_items, sizeof(double));
		b->excluded = mf_alloc_array(cxt, f->n_items, sizeof(bool));
		memset(b->excluded, 0, sizeof(bool) * f->n_items);
		b->candidates = mf_alloc_array(cxt, run.keep, sizeof(int32));
		b->exact = mf_alloc_array(cxt, run.keep, sizeof(double));
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
