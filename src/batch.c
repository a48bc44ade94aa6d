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
 *	  sinks (BatchWriter).  mf_recommend_users_all(): the top n users of
 *	  every item (item_id, rank, user_id, score), the same run with the
 *	  sides' roles swapped (BatchRun.side).
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
 *	  overlap the ranking.  With the roles swapped (an item's list of users)
 *	  the items' raters are known only once every user is read: the ranking
 *	  then starts after the reading.
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
#include "catalog/catalog.h"
#include "catalog/namespace.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "common/shortest_dec.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "parser/parse_coerce.h"
#include "parser/scansup.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/cash.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"
#include "utils/varlena.h"

PG_FUNCTION_INFO_V1(mf_recommend_all);
PG_FUNCTION_INFO_V1(mf_recommend_all_by_name);
PG_FUNCTION_INFO_V1(mf_recommend_all_rows);
PG_FUNCTION_INFO_V1(mf_recommend_all_rows_by_name);
PG_FUNCTION_INFO_V1(mf_recommend_users_all);
PG_FUNCTION_INFO_V1(mf_recommend_users_all_by_name);

/* Whether a batch call of this backend is ranking or writing (batch_run). */
static bool batch_running = false;

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
	float	   *products;		/* block_rows x n_offered */
	bool	   *excluded;		/* n_offered */
	int32	   *candidates;		/* keep */
	double	   *scores;			/* keep: product scores */
	double	   *all_scores;		/* n_offered: exact scores, for a row ranked exactly */
	double	   *wide;			/* k: scratch of mf_score_items */
	int64		exact_rows;		/* rows this thread ranked exactly */
} BatchBuffers;

/*
 * The table's columns for a model's lists of one side: (user_id, rank,
 * item_id, score) for mf_recommend_all, (item_id, rank, user_id, score)
 * for mf_recommend_users_all; ids bigint, or text for text keys.
 */
typedef struct BatchShape
{
	MfSide		side;			/* whose lists */
	const char *function;		/* the SQL function, for messages */
	const char *names[MF_BATCH_COLUMNS];
	Oid			types[MF_BATCH_COLUMNS];
} BatchShape;

/*
 * What a column of an existing target holds of the integer ids or text
 * keys written into it, when not every one as it is (narrow_id_column).
 */
typedef enum IdHolding
{
	ID_EXACT,					/* every bigint or key: bigint, numeric, text, ... */
	ID_RANGE,					/* from min to max, multiples of step */
	ID_FLOAT4,					/* those a real holds exactly */
	ID_FLOAT8,					/* those a double precision holds exactly */
	ID_CHARS					/* keys of at most max characters (character
								 * (n): not counting trailing spaces) */
} IdHolding;

typedef struct IdColumn
{
	IdHolding	holding;
	Oid			type;
	int32		typmod;
	int64		min;
	int64		max;			/* ID_CHARS: the characters */
	int64		step;
	bool		padded;			/* ID_CHARS: character(n), whose trailing
								 * spaces do not count */
} IdColumn;

/* Writes result rows into the sink, a batch at a time. */
typedef struct BatchWriter
{
	BatchSink	sink;
	BatchShape	shape;
	/* SINK_NEW_TABLE */
	Relation	rel;
	BulkInsertState bistate;
	CommandId	cid;
	TupleTableSlot **slots;		/* MF_BATCH_INSERT_ROWS */
	/* SINK_EXISTING_TABLE: the INSERT, and its arrays' elements */
	SPIPlanPtr	insert;
	Datum	   *columns[MF_BATCH_COLUMNS];	/* MF_BATCH_INSERT_ROWS each */
	char	   *table;			/* quoted, for messages */
	IdColumn	id_columns[MF_BATCH_COLUMNS];	/* what each column holds of
												 * integer ids */
	bool		score_as_text;	/* a text or varchar score column: each score
								 * written as its shortest exact decimal, not
								 * as the session's extra_float_digits gives */
	/* SINK_ROWS */
	ReturnSetInfo *rsinfo;

	int			used;			/* rows waiting */
	Size		bytes;			/* their text keys' bytes */
	MemoryContext rows_cxt;		/* the text keys of the rows waiting */
	int64		written;		/* rows written */
	int64		next_block;		/* the first block not written yet */
	Oid			role;			/* the current role when writing began */
} BatchWriter;

/*
 * A whole run, shared by its threads.  Each row of side (a user for
 * mf_recommend_all, an item for mf_recommend_users_all) gets a list of the
 * rows of the other side, the offered ones (items, or users).
 */
typedef struct BatchRun
{
	const MfBlas *blas;
	const MfFactors *f;
	MfSide		side;			/* whose lists */
	int32		n_rows;			/* rows of side */
	int32		n_offered;		/* rows of the other side */
	const float *rows;			/* n_rows x width: factors, then 1 with biases */
	const float *offered;		/* n_offered x width: factors, then their bias */
	int			width;			/* k, or k + 1 with biases */
	double	   *row_scale;		/* per row: the power of two it was scaled by */
	double		offered_scale;	/* the power of two every offered row was scaled by */
	double	   *column_max;		/* width: the largest scaled offered value per column */
	const int64 *offered_ids;	/* their ids, which break ties */
	int32		n;				/* offered rows per list */
	int32		keep;			/* candidates per row: n + spare, at most n_offered */
	int32		block_rows;		/* rows per block */
	int64		n_blocks;
	int32	  **rated;			/* per row: the offered rows it is rated with */
	int32	   *rated_count;	/* per row: how many (0 until read) */
	BatchBuffers *buffers;		/* one per thread */
	int32	   *best;			/* n_rows x n: dense offered indices */
	double	   *best_scores;	/* n_rows x n */
	int32	   *found;			/* per row: how many of its n are set */
	bool	   *filter;			/* n_offered: left out of every list (candidates, exclude), or NULL */
	atomic_bool *done;			/* per block: its rows' best are set */

	MfModel    *pinned;			/* the model looked up again, pinned (batch_open_target) */
	Snapshot	snapshot;		/* registered: the one it was looked up under,
								 * for its rated items too; NULL: the
								 * statement's */
	MemoryContext cxt;			/* what the workers read (recommend_all) */
	/* the backend's side (feed_blocks) */
	const MfModel *model;
	Portal		rated_cursor;	/* the users' rated items by user id, or NULL */
	MemoryContext batch_cxt;	/* one fetch's detoasted arrays */
	int32		rows_read;		/* the rows below this have their rated lists */
	int64		rated_users;	/* the model's users the cursor has read */
	/* side MF_ITEMS: the (item, user) pairs read, inverted at the end */
	int32	   *pairs;			/* 2 x pairs_used */
	Size		pairs_used;
	Size		pairs_size;
	BatchWriter writer;
} BatchRun;

/* The prediction for row of run's side and row offered of the other. */
static inline double
pair_score(const BatchRun *run, int32 row, int32 offered)
{
	return run->side == MF_USERS ? mf_score(run->f, row, offered) : mf_score(run->f, offered, row);
}

/* mean + row's bias (of run's side): the part of its scores all its list shares. */
static inline double
row_base(const BatchRun *run, int32 row)
{
	const MfFactors *f = run->f;

	if (!f->biases)
		return 0.0;
	return run->side == MF_USERS ? mf_user_base(f, row) : f->mean + f->item_bias[row];
}

/*
 * Rescores one row's candidates as mf_predict does and keeps the best n
 * of them (higher score first, then lower id) in the row's slots of
 * run->best and run->best_scores; returns how many.  A top selection, so
 * O(count log n) however the products' rounding had ordered them.
 */
static int32
rank_candidates(const BatchRun *run, const int32 *candidates, int32 count, int32 row)
{
	MfTop		top;

	mf_top_init(&top, run->n, run->offered_ids, run->best + (Size) row * run->n,
				run->best_scores + (Size) row * run->n);
	for (int32 c = 0; c < count; c++)
	{
		double		exact = pair_score(run, row, candidates[c]);

		if (mf_top_admits(&top, exact))
			mf_top_insert(&top, exact, candidates[c]);
	}
	return mf_top_finish(&top);
}

/*
 * Whether the row's best found exact scores are certainly its best n of
 * all offered rows: its n-th best exact score, scaled as its products were,
 * beats by more than the products' rounding error the worst float product
 * kept (top), which every row left out scored at most.  The error of a float
 * product is at most (width + 3) 2^-24 sum_j |u_j| max_i |v_ij| (the
 * operands' conversion to float, the products and the sum's rounding,
 * doubled for safety), plus what underflow can lose, plus the rounding of
 * the exact scores themselves.
 */
static bool
candidates_certain(const BatchRun *run, const MfTop *top, int32 row, int32 found)
{
	const float *u = run->rows + (Size) row * run->width;
	double		weight = 0.0;
	double		error;
	double		exact = run->best_scores[(Size) row * run->n + found - 1];
	double		base = row_base(run, row);
	double		scale = run->row_scale[row] * run->offered_scale;
	double		nth;

	if (top->size < top->n || found < run->n)
		return true;			/* every row offered was a candidate */
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
 * Ranks one row as mf_recommend (mf_recommend_users) does, from exact
 * scores of every offered row: for a row whose float products could not
 * separate its candidates from the rest (factors of very different
 * magnitudes).
 */
static int32
rank_exactly(const BatchRun *run, BatchBuffers *b, int32 row)
{
	const MfFactors *f = run->f;

	if (run->side == MF_USERS)
		mf_score_items(f, mf_factor_row(f, MF_USERS, row), row_base(run, row),
					   b->excluded, b->wide, b->all_scores);
	else
		for (int32 o = 0; o < run->n_offered; o++)
			b->all_scores[o] = b->excluded[o] ? -INFINITY : pair_score(run, row, o);
	b->exact_rows++;
	return mf_select_top(b->all_scores, run->offered_ids, b->excluded, run->n_offered, run->n,
						 run->best + (Size) row * run->n,
						 run->best_scores + (Size) row * run->n);
}

/*
 * mf_parallel_for task: the rows of blocks [first, last).  A block stopped
 * between its rows is run again whole: the rows it ranked are ranked
 * again, to the same lists, and none is written before the block is done.
 */
static int64
recommend_blocks(void *arg, int thread, int64 first, int64 last)
{
	const BatchRun *run = arg;
	BatchBuffers *b = &run->buffers[thread];

	for (int64 block = first; block < last; block++)
	{
		int32		r0 = (int32) (block * run->block_rows);
		int32		count = Min(run->block_rows, run->n_rows - r0);

		/* products[j * n_offered + o] = u_(r0 + j) . v_o (+ b_o), each scaled */
		run->blas->sgemm(CblasColMajor, CblasTrans, CblasNoTrans, run->n_offered, count,
						 run->width, 1, run->offered, run->width,
						 run->rows + (Size) r0 * run->width, run->width,
						 0, b->products, run->n_offered);

		for (int32 j = 0; j < count; j++)
		{
			int32		r = r0 + j;
			const int32 *rated = run->rated[r];
			int32		n_rated = run->rated_count[r];
			Size		offset = (Size) j * run->n_offered;
			MfTop		top;

			/* a row ranks up to millions of scores: a cancel need not wait for the block */
			if (j > 0 && mf_parallel_stopping())
				return mf_task_stopped(block);
			for (int32 e = 0; e < n_rated; e++)
				b->excluded[rated[e]] = true;
			mf_top_init(&top, run->keep, run->offered_ids, b->candidates, b->scores);
			mf_top_offer_row(&top, b->products + offset, true, b->excluded, run->n_offered);
			run->found[r] = rank_candidates(run, b->candidates, top.size, r);
			if (!candidates_certain(run, &top, r, run->found[r]))
				run->found[r] = rank_exactly(run, b, r);
			for (int32 e = 0; e < n_rated; e++)
				b->excluded[rated[e]] = run->filter ? run->filter[rated[e]] : false;
		}
		atomic_store(&run->done[block], true);
	}
	return -1;
}

/*
 * mf_catalog_fetch_rated_items callback: one user's rated items, as dense
 * indices: the user's list of items (side MF_USERS), or (item, user) pairs
 * for the items' lists, made once every user is read (invert_pairs).
 */
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
	run->rated_users++;
	if (run->side == MF_ITEMS && run->pairs_used + count > run->pairs_size)
	{
		run->pairs_size = Max(run->pairs_size * 2, run->pairs_used + count + 1024);
		run->pairs = run->pairs
			? repalloc_huge(run->pairs, mul_size(run->pairs_size, 2 * sizeof(int32)))
			: MemoryContextAllocHuge(run->cxt, mul_size(run->pairs_size, 2 * sizeof(int32)));
	}
	items = run->side == MF_USERS ? mf_alloc_array(run->cxt, count, sizeof(int32)) : NULL;
	for (int e = 0; e < count; e++)
	{
		int32		item = mf_model_find_id(model, MF_ITEMS, ids[e]);

		if (item < 0)
			continue;
		if (items)
			items[known++] = item;
		else
		{
			run->pairs[2 * run->pairs_used] = item;
			run->pairs[2 * run->pairs_used + 1] = user;
			run->pairs_used++;
		}
	}
	if (items)
	{
		run->rated[user] = items;
		run->rated_count[user] = known;
		run->rows_read = user + 1;
	}
}

/* Side MF_ITEMS, every user read: each item's list of its raters, from the pairs. */
static void
invert_pairs(BatchRun *run)
{
	int32	   *raters = mf_alloc_array(run->cxt, Max(run->pairs_used, 1), sizeof(int32));
	Size		offset = 0;

	for (Size p = 0; p < run->pairs_used; p++)
		run->rated_count[run->pairs[2 * p]]++;
	for (int32 item = 0; item < run->n_rows; item++)
	{
		run->rated[item] = raters + offset;
		offset += run->rated_count[item];
		run->rated_count[item] = 0;
	}
	for (Size p = 0; p < run->pairs_used; p++)
	{
		int32		item = run->pairs[2 * p];

		run->rated[item][run->rated_count[item]++] = run->pairs[2 * p + 1];
		mf_interrupts_every(p, MF_INTERRUPT_ROWS);
	}
	if (run->pairs)
		pfree(run->pairs);
	run->pairs = NULL;
}

/*
 * Reads the next users' rows of the rated-items cursor (in user id order,
 * which is the users' dense order) into run->rated (side MF_USERS) or
 * run->pairs; at the end, closes it (and makes the items' lists).
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
		/* a user without a row would be ranked as if they had rated nothing */
		mf_catalog_check_users_read(run->model->row.model_id, run->rated_users,
									run->model->factors.n_users);
		SPI_cursor_close(run->rated_cursor);
		run->rated_cursor = NULL;
		if (run->side == MF_ITEMS)
			invert_pairs(run);
		run->rows_read = run->n_rows;
	}
}

/*
 * The length in bytes of the longest name of raw, a dotted list of names
 * that SplitIdentifierString read (which cuts each to NAMEDATALEN - 1
 * bytes without a word): quoted names count a doubled quote once.
 */
static size_t
longest_name(const char *raw)
{
	const char *p = raw;
	size_t		longest = 0;

	for (;;)
	{
		size_t		length = 0;

		while (scanner_isspace(*p))
			p++;
		if (*p == '"')
			for (p++; *p != '\0' && !(*p == '"' && p[1] != '"'); p += *p == '"' ? 2 : 1)
				length++;
		else
			for (; *p != '\0' && *p != '.' && !scanner_isspace(*p); p++)
				length++;
		if (*p == '"')
			p++;
		longest = Max(longest, length);
		while (scanner_isspace(*p))
			p++;
		if (*p != '.')
			return longest;
		p++;
	}
}

/* Whether raw is one to three dotted names, none of them empty ('""'). */
static pg_noinline bool
is_table_name(const char *raw)
{
	List	   *names;
	ListCell   *cell;

	if (!SplitIdentifierString(pstrdup(raw), '.', &names) || list_length(names) < 1 ||
		list_length(names) > 3)
		return false;
	foreach(cell, names)
		if (*(const char *) lfirst(cell) == '\0')
			return false;
	return true;
}

/*
 * mf_recommend_all's target as a name, and its text quoted for SQL: 42602
 * for text that is none (an empty name too), 42622 for a name longer than
 * an identifier, which SQL would cut (so that two targets are one table).
 */
static RangeVar *
target_name(text *target, char **quoted)
{
	char	   *raw = text_to_cstring(target);
	RangeVar   *relation;

	if (!is_table_name(raw))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("target %s is not a table name", mf_text_for_message(raw)),
				 errhint("Pass a name such as top10 or myschema.top10; double-quote a name with spaces, capitals or other characters: '\"My Top 10\"'.")));
	if (longest_name(raw) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("target %s has a name longer than %d bytes", mf_text_for_message(raw), NAMEDATALEN - 1),
				 errdetail("SQL would cut it to its first %d bytes, which can name another table: two targets would be one.",
						   NAMEDATALEN - 1),
				 errhint("Pass a name of at most %d bytes.", NAMEDATALEN - 1)));
	relation = makeRangeVarFromNameList(textToQualifiedNameList(target));
	/* PostgreSQL's own error for this, which comes with no hint (attack helper 198) */
	if (relation->catalogname != NULL &&
		strcmp(relation->catalogname, get_database_name(MyDatabaseId)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cross-database references are not implemented: %s", mf_text_for_message(raw)),
				 errdetail("The first part of a three-part target names a database: it must be the current one, %s.",
						   get_database_name(MyDatabaseId)),
				 errhint("Pass the target as table or schema.table.")));
	*quoted = quote_qualified_identifier(relation->schemaname, relation->relname);
	return relation;
}

/* The SQL function ranking the rows of side, into a table or (rows) returning them. */
static const char *
batch_function(MfSide side, bool rows)
{
	if (rows)
		return "mf_recommend_all_rows";
	return side == MF_USERS ? "mf_recommend_all" : "mf_recommend_users_all";
}

/* The shape of the lists of model's rows of side, for batch_function(side, rows). */
static BatchShape
batch_shape(const MfModel *model, MfSide side, bool rows)
{
	MfSide		other = side == MF_USERS ? MF_ITEMS : MF_USERS;
	BatchShape	shape = {side, batch_function(side, rows),
		{side == MF_USERS ? "user_id" : "item_id", "rank", other == MF_USERS ? "user_id" : "item_id",
		"score"},
		{mf_model_keys(model, side) ? TEXTOID : INT8OID, INT4OID,
		mf_model_keys(model, other) ? TEXTOID : INT8OID, FLOAT8OID}};

	return shape;
}

/*
 * The shape as a column list, with types ("(user_id bigint, rank integer,
 * item_id bigint, score double precision)") or without.
 */
static char *
shape_columns(const BatchShape *shape, bool with_types)
{
	StringInfoData columns;

	initStringInfo(&columns);
	for (int c = 0; c < MF_BATCH_COLUMNS; c++)
	{
		appendStringInfo(&columns, "%s%s", c == 0 ? "(" : ", ", shape->names[c]);
		if (with_types)
			appendStringInfo(&columns, " %s NOT NULL", format_type_be(shape->types[c]));
	}
	appendStringInfoChar(&columns, ')');
	return columns.data;
}

/* The shape for hints: the column list with types, without NOT NULL. */
static char *
expected_shape(const BatchShape *shape)
{
	StringInfoData columns;

	initStringInfo(&columns);
	for (int c = 0; c < MF_BATCH_COLUMNS; c++)
		appendStringInfo(&columns, "%s%s %s", c == 0 ? "(" : ", ", shape->names[c],
						 format_type_be(shape->types[c]));
	appendStringInfoChar(&columns, ')');
	return columns.data;
}

/*
 * Whether namespace is one of the system's: pg_catalog, pg_toast, or
 * information_schema (which initdb makes, and pg_dump leaves out: a
 * target there would be lost from dumps).
 */
static bool
is_system_schema(Oid namespace)
{
	char	   *name;

	if (IsCatalogNamespace(namespace) || IsToastNamespace(namespace))
		return true;
	name = get_namespace_name(namespace);
	return name != NULL && strcmp(name, "information_schema") == 0;
}

/* The error for a target in a schema of the system (is_system_schema). */
static void pg_attribute_noreturn()
refuse_system_schema(Oid namespace, const char *quoted, const char *relname,
					 const BatchShape *shape)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s cannot write its target %s in schema %s", shape->function, quoted,
					get_namespace_name(namespace)),
			 errdetail("That schema is the system's: only PostgreSQL keeps tables there (and pg_dump leaves them out)."),
			 errhint("Pass a target in another schema, such as public.%s (or pg_temp.%s for a table of this session).",
					 quote_identifier(relname), quote_identifier(relname))));
}

/* A table's schema-qualified name, quoted as needed. */
static char *
qualified_table_name(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/*
 * 42501 when a trigger on the target table (qualified: its name,
 * schema-qualified), or an event trigger of its creation, set the
 * session's role since role was current: the call would go on writing,
 * and reading rated items, as another role (mf_check_role_kept).
 */
static void
check_target_role_kept(Oid role, const char *qualified)
{
	mf_check_role_kept(role, psprintf("writing %s", qualified),
					   "A trigger on the table, or an event trigger of its creation, ran a function that set the role; mf_ext checks privileges, and reads rated items, as the role that called it.",
					   "Drop that trigger, or have its function leave the role alone.");
}

/*
 * Creates the target table of shape and returns its oid; first, a schema
 * of the system (is_system_schema) or another session's temporary one
 * is refused, and a role that may not create in the table's schema is told
 * what to grant (CREATE TABLE's own errors would show the internal
 * statement, and say nothing of the target).
 */
static Oid
create_target(RangeVar *relation, const char *quoted, const BatchShape *shape)
{
	Oid			namespace = RangeVarGetCreationNamespace(relation);
	Oid			role = GetUserId();

	if (is_system_schema(namespace))
		refuse_system_schema(namespace, quoted, relation->relname, shape);
	if (isOtherTempNamespace(namespace))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s cannot create its target %s in schema %s", shape->function, quoted,
						get_namespace_name(namespace)),
				 errdetail("That schema holds another session's temporary tables."),
				 errhint("Pass a target in another schema, such as public.%s (or pg_temp.%s for a table of this session).",
						 quote_identifier(relation->relname), quote_identifier(relation->relname))));
	if (pg_namespace_aclcheck(namespace, GetUserId(), ACL_CREATE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for schema %s", get_namespace_name(namespace)),
				 errdetail("%s creates its target %s there, and role \"%s\" may not create in that schema.",
						   shape->function, quoted, GetUserNameFromId(GetUserId(), false)),
				 errhint("Grant CREATE on schema %s to the role, pass a target in a schema it may create in, or create the table and pass mode := 'append' or 'replace'.",
						 quote_identifier(get_namespace_name(namespace)))));
	if (SPI_execute(psprintf("CREATE TABLE %s %s", quoted, shape_columns(shape, true)),
					false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not create %s", quoted);
	/* before the table is looked up as another role: event triggers ran */
	check_target_role_kept(role, quote_qualified_identifier(get_namespace_name(namespace),
															relation->relname));
	/* CREATE TABLE holds its AccessExclusiveLock until the transaction ends */
	return get_relname_relid(relation->relname, namespace);
}

/*
 * Whether an existing target's column of type type would change text keys
 * assigned to it, so that two could be stored as one: name cuts them at 63
 * bytes, character(n) pads them with spaces (keys differing in trailing
 * spaces compare equal), "char" keeps their first byte, and regclass
 * (an alias of oid) reads them as names of tables, storing the OID of a
 * table a key names and failing on the others; keys read from that type
 * (key_type) fit it.
 */
static bool
changes_text_keys(Oid type, Oid key_type)
{
	Oid			base = getBaseType(type);

	return (base == NAMEOID || base == BPCHAROID || base == CHAROID ||
			IsBinaryCoercible(base, OIDOID)) &&
		!(OidIsValid(key_type) && getBaseType(key_type) == base);
}

/* What a column of type type (changes_text_keys) would do to text keys, for an error's detail. */
static const char *
text_key_change(Oid type)
{
	switch (getBaseType(type))
	{
		case NAMEOID:
			return "Type name cuts the model's text keys at 63 bytes, so that two could be stored as one.";
		case BPCHAROID:
			return "Type character pads the model's text keys with spaces, so that keys differing only in trailing spaces would be stored as one.";
		case CHAROID:
			return "Type \"char\" keeps the first byte of each of the model's text keys, so that two could be stored as one.";
		default:
			return psprintf("Type %s reads the model's text keys as names of objects: it would store the OID of an object that a key names, and fail on the other keys.",
							format_type_be(type));
	}
}

/*
 * Whether column c of shape, of type type in an existing target, takes
 * model's values: by assignment (bigint ids into integer or numeric
 * columns, text keys into varchar, ..., not into a column that would
 * change them: changes_text_keys), or, for *cast, text keys into a column
 * of the type they were read from (a uuid column for a model trained on
 * uuid ids), through an explicit cast from their text form.
 */
static bool
column_takes(const MfModel *model, const BatchShape *shape, int c, Oid type, bool *cast)
{
	MfSide		side = c == 0 ? shape->side : shape->side == MF_USERS ? MF_ITEMS : MF_USERS;
	Oid			key_type = side == MF_USERS ? model->row.user_key_type : model->row.item_key_type;

	*cast = false;
	if ((c == 0 || c == 2) && shape->types[c] == TEXTOID && changes_text_keys(type, key_type))
		return false;
	if (can_coerce_type(1, &shape->types[c], &type, COERCION_ASSIGNMENT))
		return true;
	*cast = (c == 0 || c == 2) && shape->types[c] == TEXTOID && OidIsValid(key_type) &&
		getBaseType(type) == getBaseType(key_type);
	return *cast;
}

/*
 * The existing target relid's name, schema-qualified: an unqualified
 * target names the table a search_path lookup finds, which may be in a
 * schema after the one a new table would be created in (helper 237).
 */
static char *
existing_target_name(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/*
 * The error for a caller who may not write the existing target table
 * relid: not INSERT into it (or into its column column), or with delete
 * not DELETE from it.  Said with what to grant: the executor's error has
 * no hint.
 */
static void
deny_target(Oid relid, const BatchShape *shape, const char *column, bool delete)
{
	const char *role = GetUserNameFromId(GetUserId(), false);
	const char *table = existing_target_name(relid);

	if (delete)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", table),
				 errdetail("mode 'replace' deletes the table's rows with DELETE, which role \"%s\" may not.",
						   role),
				 errhint("Grant DELETE on it to role \"%s\" (as the table's owner, or ask the owner), pass mode := 'append' to add to its rows, or pass a new table name (%s creates it).",
						 role, shape->function)));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for table %s", table),
			 column
			 ? errdetail("%s writes its rows into an existing table with INSERT, and role \"%s\" may not insert into its column \"%s\".",
						 shape->function, role, column)
			 : errdetail("%s writes its rows into an existing table with INSERT, which role \"%s\" may not.",
						 shape->function, role),
			 errhint("Grant INSERT on it to role \"%s\" (as the table's owner, or ask the owner), or pass a new table name (%s creates it).",
					 role, shape->function)));
}

/* What the target's lookup checks before it locks the table. */
typedef struct TargetLookup
{
	const BatchShape *shape;
	BatchMode	mode;
	const char *quoted;
} TargetLookup;

/*
 * RangeVarGetRelidExtended callback: an existing target is refused before
 * it is locked, as LOCK TABLE refuses a table before waiting for it, so
 * that a role that may not write it cannot queue a lock that holds up its
 * writers: a table of the system's schemas is never a target; with
 * 'create' it exists; 'append' and 'replace' need INSERT on
 * it or on some of its columns (check_existing_target checks those
 * written), and 'replace' DELETE.
 */
static void
check_target_before_lock(const RangeVar *relation, Oid relid, Oid old_relid, void *arg)
{
	const TargetLookup *lookup = arg;
	Oid			role = GetUserId();

	if (!OidIsValid(relid) || get_rel_name(relid) == NULL)
		return;
	if (is_system_schema(get_rel_namespace(relid)))
		refuse_system_schema(get_rel_namespace(relid), lookup->quoted, relation->relname,
							 lookup->shape);
	if (lookup->mode == BATCH_CREATE)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("relation %s already exists", existing_target_name(relid)),
				 errhint("Pass mode := 'replace' to replace its rows, or mode := 'append' to add to them; or drop it, or pass another name.")));
	if (pg_class_aclcheck(relid, role, ACL_INSERT) != ACLCHECK_OK &&
		pg_attribute_aclcheck_all(relid, role, ACL_INSERT, ACLMASK_ANY) != ACLCHECK_OK)
		deny_target(relid, lookup->shape, NULL, false);
	if (lookup->mode == BATCH_REPLACE && pg_class_aclcheck(relid, role, ACL_DELETE) != ACLCHECK_OK)
		deny_target(relid, lookup->shape, NULL, true);
}

/*
 * The target's OID, locked (a 'replace' locks out other writers, not
 * readers, until its transaction ends, with the partitions and tables
 * that inherit from it, whose rows its DELETE deletes too: two replaces
 * at once would each delete only the rows they saw, and both lists would
 * stay; the second waits, then deletes the first's), or InvalidOid when
 * it does not exist: the name in its creation schema is then held until
 * the transaction ends against the other calls that would create it.  Two
 * calls into a table that did not exist yet each ran CREATE TABLE, and
 * the second failed with the catalog's bare duplicate-key error; now the
 * second waits for the first's transaction and finds its table, as if it
 * had existed.  The name's lock is an advisory lock (pg_locks: classid
 * the schema's OID, objid a hash of the name, objsubid
 * MF_TARGET_NAME_LOCK), which only these calls take; two names of the
 * same hash wait for each other.
 */
static Oid
lookup_target(RangeVar *relation, TargetLookup *lookup)
{
	LOCKMODE	mode = lookup->mode == BATCH_REPLACE ? ShareRowExclusiveLock : RowExclusiveLock;
	Oid			relid = RangeVarGetRelidExtended(relation, mode, RVR_MISSING_OK,
												 check_target_before_lock, lookup);

	if (!OidIsValid(relid))
	{
		/* the creation schema's own error, 3F000, said nothing of the target */
		if (relation->schemaname == NULL && fetch_search_path(false) == NIL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_SCHEMA_NAME),
					 errmsg("no schema has been selected to create target %s in", lookup->quoted),
					 strcmp(namespace_search_path, "") == 0 || strcmp(namespace_search_path, "\"\"") == 0
					 ? errdetail("%s creates a missing target in the first schema of search_path that exists, and search_path is empty.",
								 lookup->shape->function)
					 : errdetail("%s creates a missing target in the first schema of search_path that exists, and search_path (%s) names none.",
								 lookup->shape->function, namespace_search_path),
					 errhint("Pass a schema-qualified target such as public.%s, or SET search_path to a schema the role may create in.",
							 quote_identifier(relation->relname))));
		mf_lock_name(RangeVarGetCreationNamespace(relation), relation->relname,
					 MF_TARGET_NAME_LOCK);
		AcceptInvalidationMessages();	/* the catalog as the other call left it */
		relid = RangeVarGetRelidExtended(relation, mode, RVR_MISSING_OK,
										 check_target_before_lock, lookup);
	}
	if (OidIsValid(relid) && lookup->mode == BATCH_REPLACE)
		(void) find_all_inheritors(relid, mode, NULL);
	return relid;
}

/*
 * Whether relid or a table that inherits from it (all locked) holds a row
 * live now that snapshot does not see: one a transaction committed after
 * the snapshot was taken.  The rows are read through the tables' access
 * methods, with no privilege check and no row-level security: only
 * whether such a row exists is told.  Foreign tables and other sessions'
 * temporary tables are not read (the DELETE skips the latter too).
 */
static bool
rows_committed_since(Oid relid, Snapshot snapshot)
{
	List	   *relids = find_all_inheritors(relid, NoLock, NULL);
	Snapshot	now = RegisterSnapshot(GetLatestSnapshot());
	bool		found = false;
	ListCell   *cell;

	foreach(cell, relids)
	{
		Relation	rel = table_open(lfirst_oid(cell), NoLock);

		/* as the DELETE, not another session's temporary tables */
		if (RELKIND_HAS_STORAGE(rel->rd_rel->relkind) && !RELATION_IS_OTHER_TEMP(rel))
		{
			TableScanDesc scan = table_beginscan(rel, now, 0, NULL);
			TupleTableSlot *slot = table_slot_create(rel, NULL);

			while (!found && table_scan_getnextslot(scan, ForwardScanDirection, slot))
			{
				CHECK_FOR_INTERRUPTS();
				found = !table_tuple_satisfies_snapshot(rel, slot, snapshot);
			}
			ExecDropSingleTupleTableSlot(slot);
			table_endscan(scan);
		}
		table_close(rel, NoLock);
		if (found)
			break;
	}
	UnregisterSnapshot(now);
	return found;
}

/*
 * mode 'replace': the rows of the target relid (locked, with its
 * partitions and the tables that inherit from it) deleted.  With
 * REPEATABLE READ or SERIALIZABLE, whose snapshot does not see the rows a
 * transaction committed after it was taken (another 'replace' or an
 * INSERT that committed while this call waited for the table, or created
 * it), such rows left are a serialization failure: they would have stayed
 * beside the new ones.  (The DELETE itself reads as the snapshot does, its
 * row-level security policies and triggers included; a row the snapshot
 * sees that another transaction deleted is its own serialization
 * failure.)  A row committed since that the DELETE would not have deleted
 * anyway (a policy or trigger keeps it) fails too: running the
 * transaction again, whose snapshot then sees it, clears that.
 */
static void
delete_target_rows(Oid relid, const char *quoted)
{
	Oid			role = GetUserId();
	char	   *qualified = qualified_table_name(relid);

	mf_progress_phase("deleting");
	if (SPI_execute(psprintf("DELETE FROM %s", qualified), false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete the rows of %s", quoted);
	check_target_role_kept(role, qualified);	/* its triggers ran */
	if (IsolationUsesXactSnapshot())
	{
		CommandCounterIncrement();	/* the rows just deleted are gone */
		if (rows_committed_since(relid, GetTransactionSnapshot()))
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to concurrent insert into %s", quoted),
					 errdetail("Another transaction wrote rows into %s after this transaction's snapshot was taken; mode 'replace' deletes only the rows the snapshot sees, and those rows would have stayed beside the new ones.",
							   quoted),
					 errhint("Run the transaction again.")));
	}
	mf_progress_phase("scoring");
}

/*
 * What a column of an existing target, of type type (typmod), holds of the
 * values of value_type (the shape's type) when not every one exactly:
 * integer ids and ranks (bigint, integer):
 * smallint, integer, oid and its aliases (regclass, ...), money (in the
 * locale's smallest unit), numeric(p, s) (with s < 0 in multiples of
 * 10^-s), character varying(n) and character(n) (n digits and signs) a
 * range, real and double precision the integers they represent exactly;
 * and of text keys (shape type text): character varying(n) and
 * character(n) those of at most n characters (INSERT's own error was a
 * bare 22001, and it cut a key's trailing spaces past n without one, so
 * that two keys could be stored as one); domains as their base types.
 * writer_put checks each id written (id_fits, check_key_fits), and
 * check_existing_target the ranks.
 */
static IdColumn
id_column_holding(Oid value_type, Oid type, int32 typmod)
{
	IdColumn	holding = {ID_EXACT, type, typmod, 0, 0, 1, false};
	IdColumn   *column = &holding;
	int32		base_typmod = typmod;
	Oid			base = getBaseTypeAndTypmod(type, &base_typmod);
	bool		limited = (base == VARCHAROID || base == BPCHAROID) && base_typmod >= (int32) VARHDRSZ;

	if (value_type != INT8OID && value_type != INT4OID && !(value_type == TEXTOID && limited))
		return holding;
	column->holding = ID_RANGE;
	if (limited && value_type == TEXTOID)
	{
		column->holding = ID_CHARS;
		column->max = base_typmod - VARHDRSZ;
		column->padded = base == BPCHAROID;
	}
	else if (limited)
	{
		int			chars = base_typmod - VARHDRSZ;
		int64		nines = 0;	/* 10^(chars - 1) - 1, while it fits */

		for (int d = 0; d < chars - 1 && d < 18; d++)
			nines = nines * 10 + 9;
		/* chars digits, or a minus sign and chars - 1 digits */
		column->min = chars >= 20 ? PG_INT64_MIN : -nines;
		column->max = chars >= 19 ? PG_INT64_MAX : nines * 10 + 9;
	}
	else if (base == INT2OID || base == INT4OID)
	{
		column->min = base == INT2OID ? PG_INT16_MIN : PG_INT32_MIN;
		column->max = base == INT2OID ? PG_INT16_MAX : PG_INT32_MAX;
	}
	else if (base == OIDOID || IsBinaryCoercible(base, OIDOID))
	{
		/* oid and its aliases (regclass, regtype, ...): INSERT's bare "OID out of range" */
		column->min = 0;
		column->max = PG_UINT32_MAX;
	}
	else if (base == NUMERICOID && base_typmod >= (int32) VARHDRSZ)
	{
		int			precision = ((base_typmod - VARHDRSZ) >> 16) & 0xffff;
		int			scale = (((base_typmod - VARHDRSZ) & 0x7ff) ^ 1024) - 1024;

		/* p - s integer digits, the last -s of them 0 when s < 0 (rounded to that) */
		if (scale < -18)
			column->min = column->max = 0;	/* rounds every other bigint */
		else if (precision - scale > 18)
		{
			for (int d = 0; d < -scale; d++)
				column->step *= 10;
			/* the multiples of step a bigint can be */
			column->min = PG_INT64_MIN / column->step * column->step;
			column->max = PG_INT64_MAX / column->step * column->step;
		}
		else
		{
			int64		largest = 0;

			for (int d = 0; d < precision - Max(scale, 0); d++)
				largest = largest * 10 + 9;
			for (int d = 0; d < -scale; d++)
			{
				largest *= 10;
				column->step *= 10;
			}
			column->min = -largest;
			column->max = largest;
		}
	}
	else if (base == CASHOID)
	{
		/* an amount of the locale's smallest unit: an id times 10^frac_digits */
		Cash		unit = DatumGetCash(DirectFunctionCall1(int8_cash, Int64GetDatum(1)));

		column->min = PG_INT64_MIN / unit;
		column->max = PG_INT64_MAX / unit;
	}
	else if (base == FLOAT4OID)
		column->holding = ID_FLOAT4;
	else if (base == FLOAT8OID)
		column->holding = ID_FLOAT8;
	else
		column->holding = ID_EXACT;
	return holding;
}

/* Whether id converts to v and back to the same number. */
#define EXACT_IN(v, id) \
	((v) < 9223372036854775808.0 && (int64) (v) == (id))

/* Whether a column holding integers as column says holds id exactly. */
static bool
id_fits(const IdColumn *column, int64 id)
{
	switch (column->holding)
	{
		case ID_EXACT:
		case ID_CHARS:
			break;
		case ID_RANGE:
			return id >= column->min && id <= column->max && id % column->step == 0;
		case ID_FLOAT4:
			return EXACT_IN((float) id, id);
		case ID_FLOAT8:
			return EXACT_IN((double) id, id);
	}
	return true;
}

/* Whether a rank column of type type (typmod) holds the ranks 1 to max_rank. */
static bool
ranks_fit(Oid type, int32 typmod, int32 max_rank)
{
	IdColumn	ranks = id_column_holding(INT4OID, type, typmod);

	return id_fits(&ranks, 1) && id_fits(&ranks, max_rank);
}

/*
 * Whether a score column of type type (typmod) holds the scores, double
 * precision numbers: double precision, real (to its 24 bits), numeric
 * without a precision, text, character varying without a length or of
 * the longest shortest exact decimal (writer_put writes those); domains
 * over those.  Integers, numeric(p, s) and shorter lengths would round,
 * overflow or cut them.
 */
static bool
holds_scores(Oid type, int32 typmod)
{
	Oid			base = getBaseTypeAndTypmod(type, &typmod);

	return base == FLOAT8OID || base == FLOAT4OID || base == TEXTOID ||
		(base == NUMERICOID && typmod < 0) ||
		(base == VARCHAROID &&
		 (typmod < 0 || typmod - VARHDRSZ >= DOUBLE_SHORTEST_DECIMAL_LEN - 1));
}

/*
 * An existing target (locked; check_target_before_lock passed) must be a
 * table or a partitioned table with the columns of shape, which take
 * model's values (column_takes; other columns take their defaults),
 * ranks 1 to max_rank (22003 otherwise) and scores (holds_scores, 42804),
 * and which the caller may INSERT into: checked before anything is
 * deleted.
 */
static void
check_existing_target(Oid relid, const MfModel *model, const BatchShape *shape, int32 max_rank)
{
	Relation	rel = relation_open(relid, NoLock);
	char		relkind = rel->rd_rel->relkind;
	bool		may_insert = pg_class_aclcheck(relid, GetUserId(), ACL_INSERT) == ACLCHECK_OK;

	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", RelationGetRelationName(rel)),
				 errhint("%s writes into a table %s: pass the name of one, or a new name to create it.",
						 shape->function, expected_shape(shape))));
	if (RELATION_IS_OTHER_TEMP(rel))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("table \"%s\" is another session's temporary table", RelationGetRelationName(rel)),
				 errdetail("%s writes with INSERT, which cannot reach another session's temporary tables.",
						   shape->function),
				 errhint("Pass a table of this session or a permanent one.")));
	if (mf_relation_has_rules(rel))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("table \"%s\" has rules", RelationGetRelationName(rel)),
				 errdetail("%s writes its rows with INSERT (and for 'replace' deletes with DELETE), which the table's rules would rewrite.",
						   shape->function),
				 errhint("Write into a table without rules, then copy the rows where the rules apply.")));
	for (int c = 0; c < MF_BATCH_COLUMNS; c++)
	{
		AttrNumber	attnum = get_attnum(relid, shape->names[c]);
		Oid			type;
		int32		typmod;
		bool		cast;

		if (attnum == InvalidAttrNumber || attnum < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("table \"%s\" has no column \"%s\"", RelationGetRelationName(rel),
							shape->names[c]),
					 errhint("%s writes into a table %s (other columns take their defaults): add the column, or pass another table.",
							 shape->function, expected_shape(shape))));
		if (TupleDescAttr(RelationGetDescr(rel), attnum - 1)->attgenerated)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("column \"%s\" of table \"%s\" is generated", shape->names[c],
							RelationGetRelationName(rel)),
					 errhint("%s writes into a table %s: make the column a plain one, or pass another table.",
							 shape->function, expected_shape(shape))));
		if (TupleDescAttr(RelationGetDescr(rel), attnum - 1)->attidentity == ATTRIBUTE_IDENTITY_ALWAYS)
			ereport(ERROR,
					(errcode(ERRCODE_GENERATED_ALWAYS),
					 errmsg("column \"%s\" of table \"%s\" is an identity column defined as GENERATED ALWAYS",
							shape->names[c], RelationGetRelationName(rel)),
					 errdetail("%s writes the model's values into it, which such a column refuses.",
							   shape->function),
					 errhint("ALTER TABLE %s ALTER COLUMN %s SET GENERATED BY DEFAULT, or pass another table.",
							 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
														RelationGetRelationName(rel)),
							 quote_identifier(shape->names[c]))));
		if (!may_insert &&
			pg_attribute_aclcheck(relid, attnum, GetUserId(), ACL_INSERT) != ACLCHECK_OK)
			deny_target(relid, shape, shape->names[c], false);
		type = TupleDescAttr(RelationGetDescr(rel), attnum - 1)->atttypid;
		typmod = TupleDescAttr(RelationGetDescr(rel), attnum - 1)->atttypmod;
		if (!column_takes(model, shape, c, type, &cast))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of table \"%s\" is of type %s, which model %s's %s values cannot be assigned to",
							shape->names[c], RelationGetRelationName(rel), format_type_be(type),
							mf_text_for_message(model->row.name), format_type_be(shape->types[c])),
					 shape->types[c] == TEXTOID && can_coerce_type(1, &shape->types[c], &type, COERCION_ASSIGNMENT)
					 ? errdetail("%s", text_key_change(type))
					 : 0,
					 errhint("%s writes into a table %s%s: alter the column's type, or pass another table.",
							 shape->function, expected_shape(shape),
							 shape->types[c] == TEXTOID
							 ? " (text keys also into a column of the type they were trained from, such as uuid)"
							 : "")));
		if (c == 1 && max_rank > 0 && !ranks_fit(type, typmod, max_rank))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("column \"rank\" of table \"%s\", of type %s, cannot hold the ranks 1 to %d",
							RelationGetRelationName(rel), format_type_with_typemod(type, typmod), max_rank),
					 errdetail("%s ranks up to %d %ss for each %s.", shape->function, max_rank,
							   mf_side_name(mf_other_side(shape->side)), mf_side_name(shape->side)),
					 errhint("Alter the column's type to integer, or pass a new table name (%s creates it).",
							 shape->function)));
		if (c == 3 && !holds_scores(type, typmod))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"score\" of table \"%s\" is of type %s, which would round, overflow or cut the scores",
							RelationGetRelationName(rel), format_type_with_typemod(type, typmod)),
					 errdetail("%s writes each score as a double precision number: a column of that type holds it, and so do real (rounded to about 7 digits), numeric without a precision (to 15 significant digits), and text and varchar without a length or of at least %d characters (its shortest exact decimal).",
							   shape->function, DOUBLE_SHORTEST_DECIMAL_LEN - 1),
					 errhint("Alter the column's type to double precision, or pass a new table name (%s creates it).",
							 shape->function)));
	}
	relation_close(rel, NoLock);
}

/*
 * Rows go into the target without the executor, so it must still be the
 * plain table create_target made: an event trigger may have changed it.
 */
static void
require_plain_target(Relation rel, const BatchShape *shape)
{
	TupleDesc	desc = RelationGetDescr(rel);
	bool		plain = rel->rd_rel->relkind == RELKIND_RELATION &&
		!rel->rd_rel->relhasindex && rel->trigdesc == NULL &&
		!mf_relation_has_rules(rel) && !rel->rd_rel->relispartition &&
		!rel->rd_rel->relrowsecurity &&
		(desc->constr == NULL || desc->constr->num_check == 0) &&
		desc->natts == MF_BATCH_COLUMNS;

	for (int a = 0; plain && a < MF_BATCH_COLUMNS; a++)
		plain = !TupleDescAttr(desc, a)->attisdropped &&
			TupleDescAttr(desc, a)->atttypid == shape->types[a] &&
			strcmp(NameStr(TupleDescAttr(desc, a)->attname), shape->names[a]) == 0;
	if (!plain)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" was changed while %s created it",
						RelationGetRelationName(rel), shape->function),
				 errdetail("An event trigger added columns, indexes, triggers, rules, constraints or row-level security, or made it a partition; %s writes its rows directly and would bypass them.",
						   shape->function),
				 errhint("Let the event trigger skip this table, or create the table first and pass mode := 'replace' to write into it through its indexes and triggers.")));
}

/* Starts a writer of sink's kind for rows of shape: the parts every sink shares. */
static void
writer_init(BatchWriter *w, BatchSink sink, const BatchShape *shape)
{
	w->sink = sink;
	w->shape = *shape;
	w->rows_cxt = AllocSetContextCreate(CurrentMemoryContext, "mf_recommend_all rows",
										ALLOCSET_DEFAULT_SIZES);
	w->used = 0;
	w->bytes = 0;
	w->written = 0;
	w->next_block = 0;
	w->role = GetUserId();
	memset(w->id_columns, 0, sizeof(w->id_columns));	/* ID_EXACT */
}

/* Starts writing into the table relid, which this call created. */
static void
writer_open_new(BatchWriter *w, Oid relid, const BatchShape *shape)
{
	writer_init(w, SINK_NEW_TABLE, shape);
	w->rel = table_open(relid, RowExclusiveLock);
	require_plain_target(w->rel, shape);
	w->bistate = GetBulkInsertState();
	w->cid = GetCurrentCommandId(true);
	w->slots = palloc(sizeof(TupleTableSlot *) * MF_BATCH_INSERT_ROWS);
	for (int s = 0; s < MF_BATCH_INSERT_ROWS; s++)
		w->slots[s] = table_slot_create(w->rel, NULL);
}

/*
 * 40001 for a model retrained, while the call prepared its table, on ids
 * the table (created or checked for the ids before) cannot take.
 */
static void
retrained_on_other_ids(const MfModel *model, const BatchShape *shape)
{
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("model %s was retrained on ids of another type while %s prepared its table",
					mf_text_for_message(model->row.name), shape->function),
			 errdetail("The table was prepared for the model's ids before the retraining, by another session, an earlier call of this statement or the table's own triggers."),
			 errhint("Run %s again in a statement after the retraining (not in the same statement, nor from the table's triggers), into a table whose id columns take the new ids.",
					 shape->function)));
}

/*
 * 22001 for a text key longer than column c holds (ID_CHARS): INSERT's
 * own error names no column, and it cuts trailing spaces past the length
 * without one, so that two keys could be stored as one.
 */
static void
check_key_fits(const BatchWriter *w, int c, const text *key)
{
	const IdColumn *column = &w->id_columns[c];
	const char *bytes = VARDATA_ANY(key);
	int			length = VARSIZE_ANY_EXHDR(key);
	int			chars;

	if (length <= column->max)
		return;					/* a character is at least a byte */
	if (column->padded)
		while (length > 0 && bytes[length - 1] == ' ')
			length--;
	chars = pg_mbstrlen_with_len(bytes, length);
	if (chars <= column->max)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
			 errmsg("%s %s is too long for column \"%s\" of table %s, of type %s",
					strcmp(w->shape.names[c], "user_id") == 0 ? "user" : "item",
					mf_text_for_message(pnstrdup(bytes, length)),
					w->shape.names[c], w->table, format_type_with_typemod(column->type, column->typmod)),
			 errdetail_plural("%s writes the model's keys as they are, and that type holds %d character%s; the key has %d.",
							  "%s writes the model's keys as they are, and that type holds %d characters%s; the key has %d.",
							  column->max, w->shape.function, (int) column->max,
							  column->padded ? " (trailing spaces not counted)" : "", chars),
			 errhint("Alter the column's type to text, or pass a new table name (%s creates it).",
					 w->shape.function)));
}

/*
 * 22003 for an id that column c cannot hold exactly: the INSERT's cast
 * would fail with only "out of range" (naming no column), or round it
 * into another id without an error; for a text key, check_key_fits.
 */
static void
check_id_fits(const BatchWriter *w, int c, Datum value)
{
	const IdColumn *column = &w->id_columns[c];
	int64		id;
	const char *which;
	char	   *type;

	if (column->holding == ID_EXACT)
		return;
	if (column->holding == ID_CHARS)
	{
		check_key_fits(w, c, (const text *) DatumGetPointer(value));
		return;
	}
	id = DatumGetInt64(value);
	if (id_fits(column, id))
		return;
	/* only the error's: this runs for every row written */
	which = strcmp(w->shape.names[c], "user_id") == 0 ? "user" : "item";
	type = format_type_with_typemod(column->type, column->typmod);
	if (column->holding == ID_RANGE && column->step == 1)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("%s " INT64_FORMAT " is out of range for column \"%s\" of table %s, of type %s",
						which, id, w->shape.names[c], w->table, type),
				 errdetail("%s writes the model's ids as they are, and that type holds " INT64_FORMAT " to " INT64_FORMAT ".",
						   w->shape.function, column->min, column->max),
				 errhint("Alter the column's type to bigint, or pass a new table name (%s creates it).",
						 w->shape.function)));
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("%s " INT64_FORMAT " cannot be stored exactly in column \"%s\" of table %s, of type %s",
					which, id, w->shape.names[c], w->table, type),
			 column->holding == ID_RANGE
			 ? errdetail("%s writes the model's ids as they are, and that type holds the multiples of " INT64_FORMAT " from " INT64_FORMAT " to " INT64_FORMAT ": it would round the id into another.",
						 w->shape.function, column->step, column->min, column->max)
			 : errdetail("%s writes the model's ids as they are, and that type holds integers exactly only up to %s in magnitude: it would round the id into another.",
						 w->shape.function,
						 column->holding == ID_FLOAT4 ? "2^24 (16777216)" : "2^53 (9007199254740992)"),
			 errhint("Alter the column's type to bigint, or pass a new table name (%s creates it).",
					 w->shape.function)));
}

/*
 * Starts writing into the existing table relid (locked, its shape
 * checked) through the executor: INSERT INTO it (user_id, rank, item_id,
 * score) the rows of four arrays, one statement a batch, as the caller;
 * text keys cast to a column of their trained type (column_takes).
 */
static void
writer_open_existing(BatchWriter *w, Oid relid, const MfModel *model, const BatchShape *shape)
{
	Oid			array_types[MF_BATCH_COLUMNS];
	char	   *table = qualified_table_name(relid);
	StringInfoData values;

	writer_init(w, SINK_EXISTING_TABLE, shape);
	w->table = table;
	initStringInfo(&values);
	for (int c = 0; c < MF_BATCH_COLUMNS; c++)
	{
		AttrNumber	attnum = get_attnum(relid, shape->names[c]);
		Oid			type;
		int32		typmod;
		Oid			collation;
		bool		cast;

		get_atttypetypmodcoll(relid, attnum, &type, &typmod, &collation);
		/* checked for the model first looked up: a retrain (text keys from uuid ones) */
		if (!column_takes(model, shape, c, type, &cast))
			retrained_on_other_ids(model, shape);
		if (c == 0 || c == 2)
			w->id_columns[c] = id_column_holding(shape->types[c], type, typmod);
		appendStringInfo(&values, "%sv%d%s%s", c == 0 ? "" : ", ", c, cast ? "::" : "",
						 cast ? format_type_extended(type, typmod,
													 FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY)
						 : "");
		array_types[c] = get_array_type(shape->types[c]);
		if (c == 3 && (getBaseType(type) == TEXTOID || getBaseType(type) == VARCHAROID))
		{
			w->score_as_text = true;
			array_types[c] = TEXTARRAYOID;
		}
		w->columns[c] = palloc(sizeof(Datum) * MF_BATCH_INSERT_ROWS);
	}
	w->insert = SPI_prepare(psprintf("INSERT INTO %s %s SELECT %s"
									 " FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
									 " pg_catalog.unnest($3), pg_catalog.unnest($4)) AS r (v0, v1, v2, v3)",
									 table, shape_columns(shape, false), values.data),
							MF_BATCH_COLUMNS, array_types);
	if (w->insert == NULL)
		elog(ERROR, "SPI_prepare failed for the INSERT into %s: %s", table,
			 SPI_result_code_string(SPI_result));
}

/* Starts returning the rows (of shape: each user's items) as the function's result. */
static void
writer_open_rows(BatchWriter *w, FunctionCallInfo fcinfo, const BatchShape *shape)
{
	writer_init(w, SINK_ROWS, shape);
	w->rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
}

/* Writes the rows waiting. */
static void
writer_flush(BatchWriter *w)
{
	if (w->used > 0 && w->sink == SINK_NEW_TABLE)
	{
		table_multi_insert(w->rel, w->slots, w->used, w->cid, TABLE_INSERT_SKIP_FSM, w->bistate);
		w->written += w->used;
	}
	else if (w->used > 0 && w->sink == SINK_EXISTING_TABLE)
	{
		Datum		arrays[MF_BATCH_COLUMNS];
		MemoryContext old = MemoryContextSwitchTo(w->rows_cxt);

		for (int c = 0; c < MF_BATCH_COLUMNS; c++)
		{
			Oid			type = c == 3 && w->score_as_text ? TEXTOID : w->shape.types[c];
			int16		length;
			bool		by_value;
			char		align;

			get_typlenbyvalalign(type, &length, &by_value, &align);
			arrays[c] = PointerGetDatum(construct_array(w->columns[c], w->used, type,
														length, by_value, align));
		}
		MemoryContextSwitchTo(old);
		if (SPI_execute_plan(w->insert, arrays, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "the INSERT of %s's rows failed", w->shape.function);
		w->written += SPI_processed;
		check_target_role_kept(w->role, w->table);
	}
	w->used = 0;
	w->bytes = 0;
	MemoryContextReset(w->rows_cxt);
}

/* The id of dense index index of one side as a value: its text key, or its id. */
static Datum
id_value(const MfModel *model, MfSide side, int32 index)
{
	char	   *const *keys = mf_model_keys(model, side);

	return keys ? CStringGetTextDatum(keys[index]) : Int64GetDatum(mf_model_ids(model, side)[index]);
}

/*
 * Adds the row (row, rank, offered, score) of dense indices (row of the
 * shape's side, offered of the other) to the sink.
 */
static void
writer_put(BatchWriter *w, const MfModel *model, int32 row, int32 rank, int32 offered,
		   double score)
{
	MfSide		side = w->shape.side;
	MfSide		other = side == MF_USERS ? MF_ITEMS : MF_USERS;
	Datum		values[MF_BATCH_COLUMNS];
	MemoryContext old = MemoryContextSwitchTo(w->rows_cxt);

	values[0] = id_value(model, side, row);
	values[1] = Int32GetDatum(rank);
	values[2] = id_value(model, other, offered);
	values[3] = Float8GetDatum(score);
	if (w->sink == SINK_ROWS)
	{
		/* each user's items; ids as in the factor tables: with keys, their positions */
		Datum		columns[6] = {Int64GetDatum(model->user_ids[row]), values[1],
		Int64GetDatum(model->item_ids[offered]), values[3], values[0], values[2]};
		bool		nulls[6] = {false, false, false, false,
		model->user_keys == NULL, model->item_keys == NULL};

		Assert(side == MF_USERS);
		tuplestore_putvalues(w->rsinfo->setResult, w->rsinfo->setDesc, columns, nulls);
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
	{
		check_id_fits(w, 0, values[0]);
		check_id_fits(w, 2, values[2]);
		if (w->score_as_text)
		{
			char		digits[DOUBLE_SHORTEST_DECIMAL_LEN];

			double_to_shortest_decimal_buf(score, digits);
			values[3] = CStringGetTextDatum(digits);
			w->bytes += VARSIZE(DatumGetPointer(values[3]));
		}
		for (int c = 0; c < MF_BATCH_COLUMNS; c++)
			w->columns[c][w->used] = values[c];
	}
	w->used++;
	MemoryContextSwitchTo(old);
	if (mf_model_keys(model, side))
		w->bytes += VARSIZE(DatumGetPointer(values[0]));
	if (mf_model_keys(model, other))
		w->bytes += VARSIZE(DatumGetPointer(values[2]));
	if (w->used == MF_BATCH_INSERT_ROWS || w->bytes >= MF_BATCH_INSERT_BYTES)
		writer_flush(w);
}

/* Writes the rows of the next block, whose rows' best are set. */
static void
write_next_block(BatchRun *run)
{
	BatchWriter *w = &run->writer;
	int32		r0 = (int32) (w->next_block * run->block_rows);
	int32		end = Min(r0 + run->block_rows, run->n_rows);

	for (int32 row = r0; row < end; row++)
		for (int32 r = 0; r < run->found[row]; r++)
			writer_put(w, run->model, row, r + 1, run->best[(Size) row * run->n + r],
					   run->best_scores[(Size) row * run->n + r]);
	w->next_block++;
	mf_progress_step(end, run->n_rows, mf_side_name(run->side), NAN, NAN);
}

/* Finishes writing; returns the rows written. */
static int64
writer_close(BatchWriter *w)
{
	writer_flush(w);
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
		mf_interrupts_every(i, MF_INTERRUPT_ROWS);
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
	return run->rated_cursor ? run->rows_read / run->block_rows : run->n_blocks;
}

/*
 * Column j of row r of one side's operand of the products: its factors,
 * then, with biases, 1 for a row of the ranked side and its bias for a
 * row offered (mu and the ranked row's bias shift all of its scores
 * alike, so only the offered rows' biases count).
 */
static double
operand_value(const BatchRun *run, MfSide side, Size r, int j)
{
	const MfFactors *f = run->f;
	const void *rows = side == MF_USERS ? f->user_factors : f->item_factors;

	if (j < f->k)
		return f->single ? ((const float *) rows)[r * f->k + j]
			: ((const double *) rows)[r * f->k + j];
	if (side == run->side)
		return 1.0;
	return side == MF_USERS ? f->user_bias[r] : f->item_bias[r];
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
copy_scaled(const BatchRun *run, MfSide side, double *row_scales, double scale, float *to)
{
	int32		rows = side == MF_USERS ? run->f->n_users : run->f->n_items;
	int			width = run->width;

	for (Size r = 0; r < rows; r++)
	{
		double		row_scale = scale;

		if (row_scales)
		{
			double		largest = 0.0;

			for (int j = 0; j < width; j++)
				largest = Max(largest, fabs(operand_value(run, side, r, j)));
			row_scale = row_scales[r] = unit_scale(largest);
		}
		for (int j = 0; j < width; j++)
			to[r * width + j] = (float) (operand_value(run, side, r, j) * row_scale);
		mf_interrupts_every(r, MF_INTERRUPT_ROWS);
	}
}

/*
 * Makes run->rows and run->offered, the float operands of the candidates'
 * products: each ranked row scaled by a power of two of its own, the
 * offered rows by one for all of them.  A row's ranking does not change
 * when its scores are multiplied by a positive number, and the scaling
 * keeps the products in float's range whatever the model's (a
 * double-precision model trained on ratings of 1e45 or of 1e-45).  The
 * candidates are rescored exactly, so the rounding only matters to which
 * candidates are kept.
 */
static void
prepare_products(MemoryContext cxt, BatchRun *run)
{
	const MfFactors *f = run->f;
	MfSide		other = run->side == MF_USERS ? MF_ITEMS : MF_USERS;
	float	   *rows;
	float	   *offered;
	double		largest = 0.0;

	run->width = f->biases ? f->k + 1 : f->k;
	rows = mf_alloc_array(cxt, mul_size(run->n_rows, run->width), sizeof(float));
	offered = mf_alloc_array(cxt, mul_size(run->n_offered, run->width), sizeof(float));
	run->row_scale = mf_alloc_array(cxt, run->n_rows, sizeof(double));
	run->column_max = mf_alloc_array(cxt, run->width, sizeof(double));
	for (Size o = 0; o < run->n_offered; o++)
	{
		for (int j = 0; j < run->width; j++)
			largest = Max(largest, fabs(operand_value(run, other, o, j)));
		mf_interrupts_every(o, MF_INTERRUPT_ROWS);
	}
	run->offered_scale = unit_scale(largest);
	copy_scaled(run, other, NULL, run->offered_scale, offered);
	copy_scaled(run, run->side, run->row_scale, 1.0, rows);
	/* row by row, in each column the same values in the same order as column by column */
	for (int j = 0; j < run->width; j++)
		run->column_max[j] = 0.0;
	for (Size o = 0; o < run->n_offered; o++)
	{
		const float *row = offered + o * run->width;

		for (int j = 0; j < run->width; j++)
			run->column_max[j] = Max(run->column_max[j], fabs(row[j]));
		mf_interrupts_every(o, MF_INTERRUPT_ROWS);
	}
	run->rows = rows;
	run->offered = offered;
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
	static const char *const hint = "Pass mode := 'create' (a new table), 'replace' (the table's rows deleted, then the new ones written, in the caller's transaction) or 'append' (added to its rows); 'replace' and 'append' create the table when it does not exist.";
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
			 errmsg("unknown mode %s", mf_text_for_message(mode)),
			 errhint("%s", hint)));
	return BATCH_CREATE;		/* keep the compiler quiet */
}

/*
 * The arguments (model, n, exclude_rated, target, mode, candidates,
 * exclude) of mf_recommend_all, (model, n, exclude_rated, target, mode) of
 * mf_recommend_users_all (side MF_ITEMS), or with rows those (model, n,
 * exclude_rated, candidates, exclude) of mf_recommend_all_rows.
 */
static BatchArgs
batch_arguments(FunctionCallInfo fcinfo, MfSide side, bool rows)
{
	BatchArgs	args = {0};
	static const char *const hint = "Omit it to use the default, or pass a value.";

	mf_check_not_null(fcinfo, 1, "n", hint);
	mf_check_not_null(fcinfo, 2, "exclude_rated", hint);
	if (!rows)
		mf_check_not_null(fcinfo, 3, "target",
						  "Pass the name of the table to write the recommendations into.");
	args.n = PG_GETARG_INT32(1);
	mf_check_count(args.n, "n", side == MF_USERS ? "n is how many items to recommend to each user."
				   : "n is how many users to list for each item.");
	args.exclude_rated = PG_GETARG_BOOL(2);
	args.target = rows ? NULL : PG_GETARG_TEXT_PP(3);
	args.mode = rows ? BATCH_CREATE : batch_mode_argument(fcinfo, 4);
	args.filter_arg = rows ? 3 : 5;
	return args;
}

/*
 * Opens the writer of the target of shape's lists for the model found: a
 * new table, created, or with mode 'replace' or 'append' an existing one,
 * checked (and for 'replace' emptied by a DELETE).  The model is then
 * looked up again into run->model, as last committed or written by this
 * transaction: creating the table or deleting its rows may run the
 * caller's triggers, which may retrain it, and so may an earlier call of
 * the statement.  The lists written are those of the model the call
 * leaves, as for a refit.
 */
static void
batch_open_target(FunctionCallInfo fcinfo, const BatchArgs *args, const MfModel *found,
				  const BatchShape *shape, BatchRun *run)
{
	int32		model_id = found->row.model_id;
	bool		user_keys = found->user_keys != NULL;
	bool		item_keys = found->item_keys != NULL;
	char	   *quoted;
	RangeVar   *relation = target_name(args->target, &quoted);
	TargetLookup lookup = {shape, args->mode, quoted};
	Oid			relid = lookup_target(relation, &lookup);
	bool		existed = OidIsValid(relid);
	MfModel    *model;

	/* a read-only transaction writes existing temporary tables only */
	if (!existed || get_rel_persistence(relid) != RELPERSISTENCE_TEMP)
		mf_check_read_write(shape->function, psprintf("its lists into table %s", quoted));
	if (existed)
	{
		check_existing_target(relid, found, shape,
							  Min(args->n, shape->side == MF_USERS ? found->factors.n_items
								  : found->factors.n_users));
		if (args->mode == BATCH_REPLACE)
			delete_target_rows(relid, quoted);
	}
	else
		relid = create_target(relation, quoted, shape);

	/*
	 * As it is now, its snapshot kept for its rated items: a retrain or
	 * refit by those triggers, or by an earlier call of the statement
	 * (SELECT mf_refit_users(...), mf_recommend_all(...)), counts.
	 */
	PG_TRY();
	{
		model = mf_cache_model_current(fcinfo, model_id, &run->snapshot);
	}
	PG_CATCH();
	{
		/* "model 7 does not exist" for a call by name: say which, and when */
		MemoryContext error_cxt = MemoryContextSwitchTo(run->cxt);
		ErrorData  *error = CopyErrorData();

		MemoryContextSwitchTo(error_cxt);
		if (error->sqlerrcode != ERRCODE_UNDEFINED_OBJECT)
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model %s was dropped while %s prepared its table",
						mf_text_for_message(found->row.name), shape->function),
				 errdetail("Another session, an earlier call of this statement or the table's own triggers dropped it."),
				 errhint("Run %s again in a later statement, naming the model, once one named %s exists (train it again if none does; a model trained anew has a new model_id); if the table's own triggers drop it, change them or pass another table.",
						 shape->function, mf_text_for_message(found->row.name))));
	}
	PG_END_TRY();
	if (model != found)
	{
		mf_cache_pin(model);
		run->pinned = model;
	}
	if ((model->user_keys != NULL) != user_keys || (model->item_keys != NULL) != item_keys)
		retrained_on_other_ids(model, shape);
	run->model = model;
	if (existed)
		writer_open_existing(&run->writer, relid, model, shape);
	else
		writer_open_new(&run->writer, relid, shape);
}

/*
 * Sizes the run (candidates, rows per block) and checks its memory
 * against mf_ext.max_memory; returns the threads.
 */
static int
batch_plan(BatchRun *run, bool exclude_rated)
{
	const MfModel *model = run->model;
	const MfFactors *f = run->f;
	MfSide		other = run->side == MF_USERS ? MF_ITEMS : MF_USERS;
	MfMemory	memory = {0};
	Size		real = sizeof(float);
	int			threads = mf_thread_count();

	run->n = Min(run->n, Max(run->n_offered, 1));
	run->keep = Min(run->n + MF_BATCH_SPARE, Max(run->n_offered, 1));
	run->block_rows = (int32) Max(1, Min(run->n_rows, MF_BATCH_BLOCK_BYTES / Max((Size) run->n_offered * real, 1)));
	run->n_blocks = (run->n_rows + run->block_rows - 1) / run->block_rows;
	/* the lists; the factors for the products; each thread's buffers */
	mf_memory_add(&memory, mul_size(run->n_rows, run->n), sizeof(int32) + sizeof(double));
	mf_memory_add(&memory, mul_size(add_size(f->n_users, f->n_items), f->k + 1), real);
	mf_memory_add(&memory, mul_size(threads, run->n_offered), mul_size(run->block_rows, real) + sizeof(bool));
	mf_memory_add(&memory, mul_size(threads, run->keep), sizeof(int32) + sizeof(double));
	mf_memory_add(&memory, mul_size(threads, run->n_offered), sizeof(double));	/* exact ranking */
	mf_memory_add(&memory, run->n_rows, sizeof(double));	/* row scales */
	/* the items' lists of raters: the (item, user) pairs, then the lists */
	if (run->side == MF_ITEMS && exclude_rated)
		mf_memory_add(&memory, Max(model->row.n_ratings, 0), 3 * sizeof(int32));
	/* the rows waiting for the multi-insert: their keys, and the longest row's copies */
	if (model->user_keys || model->item_keys)
		mf_memory_add(&memory, 1, add_size(MF_BATCH_INSERT_BYTES,
										   mul_size(4, add_size(longest_key(model->user_keys, f->n_users),
																longest_key(model->item_keys, f->n_items)))));
	mf_memory_check(&memory, run->writer.shape.function,
					psprintf("Ranking %d %ss for each of %d %ss, %d at a time on each of %d threads.",
							 run->n_offered, mf_side_name(other), run->n_rows,
							 mf_side_name(run->side), run->block_rows, threads),
					"Raise mf_ext.max_memory (a superuser setting), lower mf_ext.threads, or pass fewer candidates.");
	return threads;
}

/* Allocates the run's lists, flags and each thread's buffers in run->cxt. */
static void
batch_allocate(BatchRun *run, int threads)
{
	MemoryContext cxt = run->cxt;

	run->rated = mf_alloc_array(cxt, run->n_rows, sizeof(int32 *));
	memset(run->rated, 0, sizeof(int32 *) * run->n_rows);
	run->rated_count = mf_alloc_array(cxt, run->n_rows, sizeof(int32));
	memset(run->rated_count, 0, sizeof(int32) * run->n_rows);
	run->best = mf_alloc_array(cxt, mul_size(run->n_rows, run->n), sizeof(int32));
	run->best_scores = mf_alloc_array(cxt, mul_size(run->n_rows, run->n), sizeof(double));
	run->found = mf_alloc_array(cxt, run->n_rows, sizeof(int32));
	run->done = mf_alloc_array(cxt, run->n_blocks, sizeof(atomic_bool));
	for (int64 block = 0; block < run->n_blocks; block++)
		atomic_init(&run->done[block], false);
	run->buffers = mf_alloc_array(cxt, threads, sizeof(BatchBuffers));
	for (int t = 0; t < threads; t++)
	{
		BatchBuffers *b = &run->buffers[t];

		b->products = mf_alloc_array(cxt, mul_size(run->block_rows, run->n_offered), sizeof(float));
		b->excluded = mf_alloc_array(cxt, run->n_offered, sizeof(bool));
		if (run->filter)
			memcpy(b->excluded, run->filter, sizeof(bool) * run->n_offered);
		else
			memset(b->excluded, 0, sizeof(bool) * run->n_offered);
		b->candidates = mf_alloc_array(cxt, run->keep, sizeof(int32));
		b->scores = mf_alloc_array(cxt, run->keep, sizeof(double));
		b->all_scores = mf_alloc_array(cxt, run->n_offered, sizeof(double));
		b->wide = mf_alloc_array(cxt, Max(run->f->k, 1), sizeof(double));
		b->exact_rows = 0;
	}
	run->batch_cxt = AllocSetContextCreate(cxt, "mf_recommend_all rated items",
										   ALLOCSET_DEFAULT_SIZES);
}

/*
 * Ranks every row's list on the threads while the backend reads the rated
 * items (exclude_rated) and writes the finished blocks into the writer's
 * sink (run->writer.written counts the rows).
 */
static void
batch_run(FunctionCallInfo fcinfo, BatchRun *run, bool exclude_rated, int threads)
{
	int64		exact_rows;

	if (exclude_rated)
	{
		MfSchema	schema = mf_schema_of(fcinfo);

		/* the rated items of the version ranked (a cursor keeps its snapshot) */
		if (run->snapshot)
			PushActiveSnapshot(run->snapshot);
		run->rated_cursor = mf_catalog_open_rated_items(&schema, run->model->row.model_id);
		if (run->snapshot)
			PopActiveSnapshot();
	}
	/*
	 * The rows go into an existing table as the ranking goes on, so its
	 * triggers run while the workers wait for the backend: a batch call in
	 * one of them would start threads of its own beside the waiting ones,
	 * and one into the same table (a trigger calling mf_recommend_all)
	 * would nest again at each of its rows until the stack ran out.
	 */
	if (batch_running)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s cannot run inside another mf_ext batch call",
						run->writer.shape.function),
				 errdetail("A trigger, rule or default of the table the outer call writes into, or a function the outer call runs, called it."),
				 errhint("Call it after the outer call, in the same transaction if need be.")));
	batch_running = true;
	PG_TRY();
	{
		mf_parallel_for(threads, run->n_blocks, 1, recommend_blocks, feed_blocks, run);
		if (run->rated_cursor)
			SPI_cursor_close(run->rated_cursor);
		if (run->writer.next_block < run->n_blocks)
			mf_progress_phase("writing");
		while (run->writer.next_block < run->n_blocks)
		{
			write_next_block(run);
			CHECK_FOR_INTERRUPTS();
		}
		(void) writer_close(&run->writer);
	}
	PG_FINALLY();
	{
		batch_running = false;
	}
	PG_END_TRY();
	exact_rows = 0;
	for (int t = 0; t < threads; t++)
		exact_rows += run->buffers[t].exact_rows;
	elog(DEBUG1, "%s ranked " INT64_FORMAT " of %d %ss from exact scores of every %s",
		 run->writer.shape.function, exact_rows, run->n_rows, mf_side_name(run->side),
		 run->side == MF_USERS ? "item" : "user");
}

/*
 * mf_recommend_all(model, n, exclude_rated, target, mode, candidates,
 * exclude) (side MF_USERS) and mf_recommend_users_all(model, n,
 * exclude_rated, target, mode) (side MF_ITEMS), returning the rows written,
 * or with rows mf_recommend_all_rows(model, n, exclude_rated, candidates,
 * exclude), returning them.  found is the model as first looked up.
 */
static void
recommend_all_pinned(FunctionCallInfo fcinfo, MfModel *found, MfSide side, bool rows,
					 BatchRun *run)
{
	BatchArgs	args = batch_arguments(fcinfo, side, rows);
	BatchShape	shape = batch_shape(found, side, rows);
	MfSide		other = side == MF_USERS ? MF_ITEMS : MF_USERS;
	MemoryContext old;
	int			threads;

	if (rows)
		InitMaterializedSRF(fcinfo, 0);
	old = MemoryContextSwitchTo(run->cxt);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MemoryContextSwitchTo(run->cxt);	/* not SPI's, which the portal's abort frees */
	mf_progress_phase("scoring");
	/* the filters are checked before the target is touched */
	run->filter = mf_filter_mask_any(fcinfo, args.filter_arg, found, other, NULL);
	if (rows)
	{
		run->model = found;
		writer_open_rows(&run->writer, fcinfo, &shape);
	}
	else
		batch_open_target(fcinfo, &args, found, &shape, run);
	if (run->model != found)	/* retrained meanwhile: its rows may differ */
		run->filter = mf_filter_mask_any(fcinfo, args.filter_arg, run->model, other, NULL);
	run->side = side;
	run->f = &run->model->factors;
	run->n_rows = side == MF_USERS ? run->f->n_users : run->f->n_items;
	run->n_offered = side == MF_USERS ? run->f->n_items : run->f->n_users;
	run->offered_ids = mf_model_ids(run->model, other);
	run->n = args.n;
	run->blas = mf_blas();
	threads = batch_plan(run, args.exclude_rated);
	prepare_products(run->cxt, run);
	batch_allocate(run, threads);
	batch_run(fcinfo, run, args.exclude_rated, threads);
	SPI_finish();
	MemoryContextSwitchTo(old);
}

/*
 * recommend_all_pinned with the models it uses pinned (mf_cache_pin): the
 * INSERTs into an existing target fire its triggers, and the DELETE and
 * the CREATE TABLE run event triggers, any of which may retrain or drop
 * the model, or load others, while the workers still read its factors.
 *
 * What the workers read (the run's operands, lists, filter and buffers)
 * lives in run.cxt, a child of TopTransactionContext, not of the call's
 * context: a FATAL in the feeder (pg_terminate_backend while it runs the
 * caller's SQL) exits without unwinding, and the transaction's abort on
 * the way out frees the active portal's memory (AtAbort_Portals) before
 * its callbacks stop and join the workers (parallel.c); the transaction's
 * own context goes only after them.  An error has joined them (parallel.c)
 * before run.cxt is deleted here.
 */
static Datum
recommend_all(FunctionCallInfo fcinfo, bool by_name, MfSide side, bool rows)
{
	BatchRun	run = {0};
	MemoryContext caller = CurrentMemoryContext;
	MfModel    *found;

	found = mf_model_argument_reported(fcinfo, by_name, batch_function(side, rows));
	run.cxt = AllocSetContextCreate(TopTransactionContext, "mf_recommend_all",
									ALLOCSET_DEFAULT_SIZES);
	mf_cache_pin(found);
	PG_TRY();
	{
		recommend_all_pinned(fcinfo, found, side, rows, &run);
	}
	PG_FINALLY();
	{
		mf_cache_unpin(found);
		if (run.pinned)
			mf_cache_unpin(run.pinned);
		if (run.snapshot)
			UnregisterSnapshot(run.snapshot);
		MemoryContextSwitchTo(caller);	/* an error may have left run.cxt current */
		MemoryContextDelete(run.cxt);
	}
	PG_END_TRY();
	mf_progress_end();
	if (rows)
		return (Datum) 0;
	PG_RETURN_INT64(run.writer.written);
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
	return recommend_all(fcinfo, false, MF_USERS, false);
}

Datum
mf_recommend_all_by_name(PG_FUNCTION_ARGS)
{
	return recommend_all(fcinfo, true, MF_USERS, false);
}

/*
 * mf_recommend_all_rows(model, n DEFAULT 10, exclude_rated DEFAULT true,
 * candidates DEFAULT NULL, exclude DEFAULT NULL) -> (user_id, rank,
 * item_id, score, user_key, item_key), by model_id or name.
 */
Datum
mf_recommend_all_rows(PG_FUNCTION_ARGS)
{
	return recommend_all(fcinfo, false, MF_USERS, true);
}

Datum
mf_recommend_all_rows_by_name(PG_FUNCTION_ARGS)
{
	return recommend_all(fcinfo, true, MF_USERS, true);
}

/*
 * mf_recommend_users_all(model, n DEFAULT 10, exclude_rated DEFAULT true,
 * target text, mode DEFAULT 'create') -> bigint, by model_id or name:
 * writes every item's top n users (item_id, rank, user_id, score) into the
 * table target, as mf_recommend_users lists them.
 */
Datum
mf_recommend_users_all(PG_FUNCTION_ARGS)
{
	return recommend_all(fcinfo, false, MF_ITEMS, false);
}

Datum
mf_recommend_users_all_by_name(PG_FUNCTION_ARGS)
{
	return recommend_all(fcinfo, true, MF_ITEMS, false);
}
