/*-------------------------------------------------------------------------
 *
 * distributed.c
 *	  Training next to the shards on Citus (distributed.h): the
 *	  coordinator's driver of the half-steps, and the aggregate the
 *	  workers solve them with.
 *
 *	  The training reads two copies of the ratings, one distributed by the
 *	  user column and one (made from it) by the item column: one read of
 *	  the source, whatever writes it meanwhile.  A half-step of side s
 *	  (solving s's rows against the fixed other side f) is one query:
 *
 *		WITH fixed AS MATERIALIZED (SELECT $1::bytea AS side)
 *		SELECT s_col, mf_als_half_step(f_col, rating,
 *		       CASE WHEN mf_als_half_step_cached(token) THEN NULL
 *		            ELSE (SELECT side FROM fixed) END)
 *		FROM the copy distributed by s_col GROUP BY s_col
 *
 *	  Citus runs the CTE on the coordinator and sends its one row to each
 *	  worker once; a shard's query reads it as an initplan's parameter
 *	  unless its backend has it already, and groups its own ratings by
 *	  s_col, the distribution column, so the aggregate runs whole on the
 *	  workers.  The aggregate
 *	  collects a row's ratings (the fixed side's indices and the values),
 *	  sorts them as a training on one node does, and solves the row with
 *	  the same kernel (als.h, mf_als_row_solve).  The fixed side travels as
 *	  a FixedHeader and its arrays; each row's solution comes back as a
 *	  RowResult and k reals.
 *
 *-------------------------------------------------------------------------
 */
#include "distributed.h"

#include "idmap.h"
#include "parallel.h"

#include <float.h>
#include <math.h>

#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "access/xact.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(mf_als_half_step_accumulate);
PG_FUNCTION_INFO_V1(mf_als_half_step_solve);
PG_FUNCTION_INFO_V1(mf_als_half_step_cached);

int			mf_citus_training = MF_CITUS_TRAINING_AUTO;

#define FIXED_MAGIC		0x6d664653	/* "mfFS" */
#define FIXED_VERSION	1

/* FixedHeader.flags */
#define FIXED_SINGLE		0x01	/* reals are floats, else doubles */
#define FIXED_BIASES		0x02	/* biases follow the header */
#define FIXED_KEYS			0x04	/* text keys, else integer ids */
#define FIXED_WEIGHTED		0x08	/* weighted_lambda */
#define FIXED_NONNEGATIVE	0x10
#define FIXED_LOSS			0x20	/* each row's squared errors are wanted */
#define FIXED_ALL_FLAGS		0x3f

/*
 * The fixed side of a half-step, as the workers receive it (a bytea): this
 * header; with biases, n doubles; the ids (n int64, ascending) or, for
 * keys, nothing here; the factors (n x k reals); for keys, n + 1 int32
 * offsets into the keys' bytes and the bytes (each key NUL-terminated, in
 * ascending byte order).
 */
typedef struct FixedHeader
{
	uint32		magic;
	int32		version;
	int32		k;
	int32		n;				/* rows of the fixed side */
	int32		solved_side;	/* MfSide of the rows being solved */
	int32		flags;
	uint64		token;			/* this half-step's, random: a worker backend
								 * decodes each fixed side once */
	double		lambda;
	double		bias_lambda;
	double		lambda_per_rating;
	double		mean;
} FixedHeader;

/* One row's solution, as a worker returns it: this, then k reals. */
typedef struct RowResult
{
	double		bias;
	double		norm;			/* its share of J's penalty */
	double		sse;			/* its squared errors (with FIXED_LOSS) */
	int32		degree;			/* the ratings it was solved from */
	int32		solved;			/* 0: the system could not be solved */
} RowResult;

struct MfDistributed
{
	const MfSchema *schema;
	const MfSource *source;
	MfFitOptions options;
	MemoryContext cxt;
	const char *relation;		/* the source, qualified and quoted */
	const char *column[3];		/* user, item, rating columns, quoted */
	bool		keys[2];		/* per side: text keys */
	const char *table[2];		/* per side: the copy distributed by its column */
	const char *copy[2];		/* per side: the copy made, to drop, or NULL */
	MfRatings  *ratings;
	int64	   *degree[2];		/* per side and row: its ratings */
	MfIdMap    *ids[2];
	mf_keymap_hash *key_map[2];
	MfRatingsSummary summary;
	int			nest_level;		/* of the settings the training changed */
	int			pool;			/* connections per worker */

	/* the half-step being received */
	MfSide		side;
	MfFactors  *factors;
	double	   *norm;
	double	   *sse;
	bool	   *seen;
	int32		rows_seen;
	int64		ratings_seen;
	int32		failed;
	Size		bytes_received;
};

/* A group's ratings on a worker, as the aggregate collects them. */
typedef struct GroupEntry
{
	int32		col;			/* the fixed side's index */
	double		value;
} GroupEntry;

/*
 * A group's ratings in chunks of about 1 kB, linked: a shard's groups grow
 * side by side in the order its rows come, and chunks of one size are
 * reused from the context's free list, where arrays that double would be
 * copied and scattered.
 */
#define GROUP_CHUNK_ENTRIES	62

typedef struct GroupChunk
{
	struct GroupChunk *next;
	int32		n;
	GroupEntry	entries[GROUP_CHUNK_ENTRIES];
} GroupChunk;

#define GROUP_ROWS_MAGIC	0x6d664752	/* "mfGR" */

typedef struct GroupRows
{
	uint32		magic;			/* GROUP_ROWS_MAGIC: the final function's check
								 * of its state (an aggregate of another
								 * transition could hand it anything) */
	struct FixedSide *fixed;	/* held until the aggregate resets its memory */
	MemoryContextCallback release;
	int32		n;
	GroupChunk *first;
	GroupChunk *last;
} GroupRows;

/*
 * The fixed side decoded on a worker: once per backend and half-step
 * (backend_fixed), in a context of its own, freed once no running query
 * uses it and another half-step's has replaced it or the transaction ended.
 */
typedef struct FixedSide
{
	uint64		token;
	int			users;			/* group states that hold it */
	MfSide		solved;
	bool		keys;
	bool		loss;
	MfFitOptions options;
	MfFactors	factors;		/* the fixed side's arrays only */
	MfIdMap    *id_map;
	mf_keymap_hash *key_map;
	MfAlsRowSolver *solver;		/* made by the first group's final call */
	MemoryContext cxt;
} FixedSide;

/* ---------------------------------------------------------------------
 * The coordinator
 * ---------------------------------------------------------------------
 */

/*
 * An answer of the workers that does not match the copies the training
 * read (which nothing else writes): an internal error.
 */
static void
report_mismatch(const MfDistributed *dist, const char *what)
{
	elog(ERROR, "mf_train on the Citus workers: %s (reading %s)", what, dist->relation);
}

/* mf_spi_scan callback: a count into *(int64 *) arg. */
static void
receive_count(TupleTableSlot *slot, void *arg)
{
	*(int64 *) arg = DatumGetInt64(slot->tts_values[0]);
}

/* Whether relid is a hash-distributed Citus table (partitioned or not); false without Citus. */
static bool
hash_distributed(Oid relid)
{
	Oid			argtype = OIDOID;
	Datum		arg = ObjectIdGetDatum(relid);
	Oid			type = INT8OID;
	int64		found = 0;

	if (!OidIsValid(get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE)))
		return false;
	mf_spi_scan("SELECT pg_catalog.count(*) FROM pg_catalog.pg_dist_partition"
				" WHERE logicalrelid = $1::pg_catalog.regclass AND partmethod = 'h'",
				1, &argtype, &arg, &type, 1, "Citus's pg_dist_partition", receive_count, &found);
	return found > 0;
}

/* The column name of side (or the rating) of source. */
static const char *
source_column(const MfSource *source, int column)
{
	return column == 0 ? source->user_col : column == 1 ? source->item_col : source->rating_col;
}

/*
 * Why options or source keep a training off the workers, or NULL; *remedy
 * says how to train there, where the role can (else NULL).
 */
static char *
unsupported(const MfSource *source, const MfFitOptions *options, char **remedy)
{
	Oid			namespace = get_rel_namespace(source->relid);
	AttrNumber	attnums[2] = {source->user_attnum, source->item_attnum};

	if (options->implicit)
		return pstrdup("The workers solve explicit ratings; implicit feedback trains on the coordinator.");
	if (options->conjugate_gradient)
		return pstrdup("The workers solve each row exactly; solver 'cg' trains on the coordinator.");
	if (options->implicit_weight > 0)
		return pstrdup("The workers solve without implicit information; implicit_weight trains on the coordinator.");
	for (int s = 0; s < 2; s++)
	{
		Oid			type;
		int32		typmod;
		Oid			collation;

		get_atttypetypmodcoll(source->relid, attnums[s], &type, &typmod, &collation);

		if (OidIsValid(collation) && !get_collation_isdeterministic(collation))
			return psprintf("Column %s has a nondeterministic collation: a shard's groups of it would join distinct ids.",
							quote_identifier(source_column(source, s)));
	}
	/* the half-steps read copies distributed by each side's column (mf_distributed_read) */
	if (pg_namespace_aclcheck(namespace, GetUserId(), ACL_CREATE) != ACLCHECK_OK)
	{
		const char *schema = quote_identifier(get_namespace_name(namespace));

		*remedy = psprintf("To train on the workers, GRANT CREATE ON SCHEMA %s TO %s (or keep the ratings in a schema where the role may create tables).",
						   schema, quote_identifier(GetUserNameFromId(GetUserId(), false)));
		return psprintf("mf_train copies the ratings, distributed by user and by item, into schema %s while it trains, and the current role may not create tables there.",
						schema);
	}
	return NULL;
}

MfDistributed *
mf_distributed_begin(const MfSchema *schema, const MfSource *source,
					 const MfFitOptions *options, MemoryContext cxt)
{
	char	   *why;
	char	   *remedy = NULL;
	MfDistributed *dist;

	if (mf_citus_training == MF_CITUS_TRAINING_COORDINATOR)
		return NULL;
	if (!hash_distributed(source->relid))
	{
		if (mf_citus_training == MF_CITUS_TRAINING_WORKERS)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("%s is not a hash-distributed Citus table, and mf_ext.citus_training is 'workers'",
							mf_source_display_name(source->relid)),
					 errhint("Distribute it with create_distributed_table, or SET mf_ext.citus_training = 'auto' to train where it is.")));
		return NULL;
	}
	why = unsupported(source, options, &remedy);
	if (why != NULL && mf_citus_training == MF_CITUS_TRAINING_WORKERS)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("mf_train cannot solve %s on the Citus workers, and mf_ext.citus_training is 'workers'",
						mf_source_display_name(source->relid)),
				 errdetail("%s", why),
				 errhint("%sSET mf_ext.citus_training = 'auto' to read the ratings onto the coordinator for this training.",
						 remedy ? psprintf("%s Or ", remedy) : "")));
	if (why != NULL)
	{
		ereport(NOTICE,
				(errmsg("mf_train reads the ratings of %s onto the coordinator instead of solving next to the shards",
						mf_source_display_name(source->relid)),
				 errdetail("%s", why),
				 errhint("%sSET mf_ext.citus_training = 'coordinator' to train there without this notice.",
						 remedy ? psprintf("%s Or ", remedy) : "")));
		return NULL;
	}

	dist = MemoryContextAllocZero(cxt, sizeof(MfDistributed));
	dist->schema = schema;
	dist->source = source;
	dist->options = *options;
	dist->cxt = cxt;
	dist->relation = mf_source_display_name(source->relid);
	for (int c = 0; c < 3; c++)
		dist->column[c] = quote_identifier(source_column(source, c));
	dist->keys[MF_USERS] = source->user_keys;
	dist->keys[MF_ITEMS] = source->item_keys;
	return dist;
}

/* The rows' condition: no NULL user, item or rating. */
static char *
not_null(const MfDistributed *dist)
{
	return psprintf("%s IS NOT NULL AND %s IS NOT NULL AND %s IS NOT NULL",
					dist->column[0], dist->column[1], dist->column[2]);
}

/* A side's id as the driver reads it: bigint, or the key's text. */
static char *
id_expression(const MfDistributed *dist, MfSide side)
{
	return psprintf("%s::pg_catalog.%s", dist->column[side], dist->keys[side] ? "text" : "int8");
}

/* Runs a statement that writes (the copies), through SPI; returns the rows it processed. */
static uint64
execute(const char *sql, int expected)
{
	int			result = SPI_execute(sql, false, 0);

	if (result != expected)
		elog(ERROR, "%s failed: %s", sql, SPI_result_code_string(result));
	return SPI_processed;
}

/* The declared type (with its modifier, schema-qualified) of a column of the source. */
static char *
column_type(const MfSource *source, AttrNumber attnum)
{
	Oid			type;
	int32		typmod;
	Oid			collation;

	get_atttypetypmodcoll(source->relid, attnum, &type, &typmod, &collation);
	return format_type_extended(type, typmod,
								FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
}

/*
 * A copy of the ratings in from (no NULLs, ratings as double precision,
 * the source's column names and types) distributed by side's column, in
 * the source's schema, under a name no other training uses and no table
 * there has (a role that may create in the schema could have taken the
 * next one, the backend's pid being easy to know): the table that side's
 * half-steps read.  Returns the rows copied.
 */
static uint64
make_copy(MfDistributed *dist, MfSide side, const char *from)
{
	static uint32 copies = 0;
	const MfSource *source = dist->source;
	Oid			namespace = get_rel_namespace(source->relid);
	char	   *relname;
	char	   *name;

	do
		relname = psprintf("mf_train_by_%s_%d_%u", mf_side_name(side), MyProcPid, ++copies);
	while (OidIsValid(get_relname_relid(relname, namespace)));
	name = psprintf("%s.%s", quote_identifier(get_namespace_name(namespace)),
					quote_identifier(relname));

	execute(psprintf("CREATE TABLE %s (%s %s, %s %s, %s pg_catalog.float8)", name,
					 dist->column[0], column_type(source, source->user_attnum),
					 dist->column[1], column_type(source, source->item_attnum),
					 dist->column[2]), SPI_OK_UTILITY);

	/*
	 * As many shards as connections the training uses (a shard created in
	 * this transaction is read over the connection that made it): the
	 * nodes with shards times the pool of each.
	 */
	execute(psprintf("SELECT pg_catalog.create_distributed_table(%s, %s, colocate_with => 'none',"
					 " shard_count => (SELECT %d * pg_catalog.count(*)::pg_catalog.int4"
					 " FROM pg_catalog.pg_dist_node"
					 " WHERE noderole = 'primary' AND isactive AND shouldhaveshards))",
					 quote_literal_cstr(name), quote_literal_cstr(source_column(source, side)),
					 dist->pool), SPI_OK_SELECT);
	dist->table[side] = name;
	dist->copy[side] = name;
	return execute(psprintf("INSERT INTO %s SELECT %s, %s, %s::pg_catalog.float8 FROM %s WHERE %s",
							name, dist->column[0], dist->column[1], dist->column[2], from,
							not_null(dist)), SPI_OK_INSERT);
}

/* The first row with a rating the training cannot take. */
typedef struct BadRating
{
	bool		in_source;		/* the source's look: its rows are beyond
								 * double precision */
	MemoryContext cxt;			/* the caller's, for the strings */
	char	   *user;
	char	   *item;
	double		value;			/* NaN, infinite (beyond double precision too),
								 * or too large to sum */
	bool		found;
} BadRating;

static void
receive_bad_rating(TupleTableSlot *slot, void *arg)
{
	BadRating  *row = arg;

	row->user = MemoryContextStrdup(row->cxt, TextDatumGetCString(slot->tts_values[0]));
	row->item = MemoryContextStrdup(row->cxt, TextDatumGetCString(slot->tts_values[1]));
	row->value = strtod(TextDatumGetCString(slot->tts_values[2]), NULL);
	if (row->in_source && isfinite(row->value))
		row->value = INFINITY;	/* a numeric just beyond double precision's range */
	row->found = true;
}

/*
 * Refuses the first row query returns (user, item and rating as text), if
 * any: a rating double precision does not hold, as mf_source_read reports
 * it (every row of the source's look, in_source), or in the copy's
 * look one whose square, summed over the ratings, would pass the largest
 * double-precision number (a training on one node fails on such ratings
 * too; the workers' sums had failed with PostgreSQL's bare overflow
 * error).  The source's look reads under the statement's snapshot, the
 * copy's under one that sees the copy.  With single_center, the rating
 * is one whose distance from *single_center passes single precision's
 * range, refused as mf_ratings_check_scale refuses it on one node.
 */
static void
refuse_rating(const MfDistributed *dist, const char *query, bool in_source,
			  const double *single_center)
{
	const MfSource *source = dist->source;
	Oid			text_types[3] = {TEXTOID, TEXTOID, TEXTOID};
	BadRating	row = {.in_source = in_source, .cxt = CurrentMemoryContext};
	const char *user;
	const char *item;

	if (in_source)
		mf_spi_scan(query, 0, NULL, NULL, text_types, 3, dist->relation, receive_bad_rating, &row);
	else
		mf_spi_scan_fresh(query, 0, NULL, NULL, text_types, 3, dist->relation, receive_bad_rating, &row);
	if (!row.found)
		return;
	user = source->user_keys ? mf_text_for_message(row.user) : row.user;
	item = source->item_keys ? mf_text_for_message(row.item) : row.item;
	if (!isfinite(row.value))
		mf_source_report_non_finite(source, user, item, row.value);
	if (single_center)
		mf_report_rating_scale(psprintf("user %s for item %s in %s", user, item, dist->relation),
							   row.value, dist->options.biases, *single_center, MF_SCALE_TRAINING);
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("rating of user %s for item %s in %s is %g, too large to train on", user, item,
					dist->relation, row.value),
			 errdetail("Ratings that large, squared and summed over the ratings, pass the largest double-precision number."),
			 errhint("Scale the ratings into a moderate range (for example 0 to 10), or pass a view that does.")));
}

/* The counts, sum, sum of squares and range of the ratings. */
typedef struct Totals
{
	int64		ratings;
	double		sum;
	double		sum_squares;
	double		min;
	double		max;
} Totals;

static void
receive_totals(TupleTableSlot *slot, void *arg)
{
	Totals	   *totals = arg;

	totals->ratings = DatumGetInt64(slot->tts_values[0]);
	totals->sum = slot->tts_isnull[1] ? 0.0 : DatumGetFloat8(slot->tts_values[1]);
	totals->min = slot->tts_isnull[2] ? INFINITY : DatumGetFloat8(slot->tts_values[2]);
	totals->max = slot->tts_isnull[3] ? -INFINITY : DatumGetFloat8(slot->tts_values[3]);
	totals->sum_squares = slot->tts_isnull[4] ? 0.0 : DatumGetFloat8(slot->tts_values[4]);
}

/* One side's distinct ids and their rating counts, as they arrive. */
typedef struct IdCount
{
	int64		id;				/* first: mf_compare_int64 sorts by it */
	int64		count;
} IdCount;

typedef struct KeyCount
{
	char	   *key;			/* first: mf_compare_keys sorts by it */
	int64		count;
} KeyCount;

typedef struct IdList
{
	bool		keys;
	int64		n;
	int64		capacity;
	void	   *rows;			/* IdCount or KeyCount */
	MemoryContext cxt;
} IdList;

static void
receive_id(TupleTableSlot *slot, void *arg)
{
	IdList	   *list = arg;
	Size		size = list->keys ? sizeof(KeyCount) : sizeof(IdCount);

	if (list->n == list->capacity)
	{
		list->capacity = Max(1024, list->capacity * 2);
		if (list->capacity > INT32_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("the ratings have more than %d distinct ids of a side", INT32_MAX)));
		list->rows = list->rows
			? repalloc_huge(list->rows, mul_size(list->capacity, size))
			: MemoryContextAllocHuge(list->cxt, mul_size(list->capacity, size));
	}
	if (list->keys)
	{
		KeyCount   *row = (KeyCount *) list->rows + list->n;

		row->key = MemoryContextStrdup(list->cxt, TextDatumGetCString(slot->tts_values[0]));
		row->count = DatumGetInt64(slot->tts_values[1]);
	}
	else
	{
		IdCount    *row = (IdCount *) list->rows + list->n;

		row->id = DatumGetInt64(slot->tts_values[0]);
		row->count = DatumGetInt64(slot->tts_values[1]);
	}
	list->n++;
}

/*
 * Reads side's distinct ids and counts into the ratings (ids ascending,
 * keys in byte order and numbered by position, as mf_source_read does),
 * the side's degrees and id map.
 */
static void
read_ids(MfDistributed *dist, MfSide side)
{
	MfRatings  *ratings = dist->ratings;
	IdList		list = {dist->keys[side], 0, 0, NULL, dist->cxt};
	Oid			types[2] = {dist->keys[side] ? TEXTOID : INT8OID, INT8OID};
	int32		n;
	int64	   *ids;
	char	  **keys = NULL;
	int64	   *degree;

	mf_spi_scan_fresh(psprintf("SELECT %s, pg_catalog.count(*) FROM %s GROUP BY %s",
							   id_expression(dist, side), dist->table[side], dist->column[side]),
					  0, NULL, NULL, types, 2, dist->relation, receive_id, &list);
	n = (int32) list.n;
	ids = mf_alloc_array(dist->cxt, Max(n, 1), sizeof(int64));
	degree = mf_alloc_array(dist->cxt, Max(n, 1), sizeof(int64));
	if (list.keys)
	{
		KeyCount   *rows = list.rows;

		if (n > 0)
			mf_sort(rows, n, sizeof(KeyCount), mf_compare_keys);
		keys = mf_alloc_array(dist->cxt, Max(n, 1), sizeof(char *));
		for (int32 r = 0; r < n; r++)
		{
			ids[r] = r;
			keys[r] = rows[r].key;
			degree[r] = rows[r].count;
		}
		dist->key_map[side] = mf_key_map(dist->cxt, keys, n);
	}
	else
	{
		IdCount    *rows = list.rows;

		if (n > 0)
			mf_sort(rows, n, sizeof(IdCount), mf_compare_int64);
		for (int32 r = 0; r < n; r++)
		{
			ids[r] = rows[r].id;
			degree[r] = rows[r].count;
		}
		dist->ids[side] = mf_id_map_from_sorted(dist->cxt, ids, n);
	}
	if (list.rows)
		pfree(list.rows);
	for (int32 r = 0; r < n; r++)
		dist->summary.longest = Max(dist->summary.longest, degree[r]);
	dist->degree[side] = degree;
	if (side == MF_USERS)
	{
		ratings->n_users = n;
		ratings->user_ids = ids;
		ratings->user_keys = keys;
	}
	else
	{
		ratings->n_items = n;
		ratings->item_ids = ids;
		ratings->item_keys = keys;
	}
}

MfRatings *
mf_distributed_read(MfDistributed *dist)
{
	const MfSource *source = dist->source;
	MemoryContext old = MemoryContextSwitchTo(dist->cxt);
	Oid			totals_types[5] = {INT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID};
	Totals		totals = {0};
	int64		skipped = 0;
	uint64		copied;
	Oid			count_type = INT8OID;
	const char *r = dist->column[2];
	const char *citus_pool = GetConfigOption("citus.max_adaptive_executor_pool_size", true, false);

	/*
	 * A worker's connections run its shards' tasks in turn, each backend
	 * decoding a half-step's fixed side once: as many per worker as this
	 * node's mf_ext.threads (or Citus's pool size, if smaller), each
	 * solving its rows on one core.  Set for the whole training: a shard
	 * the copies wrote is read again over the connection that wrote it.
	 */
	dist->pool = mf_thread_count();
	if (citus_pool != NULL && atoi(citus_pool) > 0)
		dist->pool = Min(dist->pool, atoi(citus_pool));
	dist->nest_level = NewGUCNestLevel();
	(void) set_config_option("citus.max_adaptive_executor_pool_size", psprintf("%d", dist->pool),
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);

	/* a rating double precision does not hold, compared in the column's own type */
	refuse_rating(dist, psprintf("SELECT %s::pg_catalog.text, %s::pg_catalog.text, %s::pg_catalog.text FROM %s"
								 " WHERE %s AND NOT pg_catalog.abs(%s%s) OPERATOR(pg_catalog.<=)"
								 " '1.7976931348623157e308'::pg_catalog.%s LIMIT 1",
								 dist->column[0], dist->column[1], r, dist->relation, not_null(dist), r,
								 source->rating_type == NUMERICOID ? "" : "::pg_catalog.float8",
								 source->rating_type == NUMERICOID ? "numeric" : "float8"),
				  true, NULL);

	mf_spi_scan(psprintf("SELECT pg_catalog.count(*) FROM %s WHERE NOT (%s)",
						 dist->relation, not_null(dist)),
				0, NULL, NULL, &count_type, 1, dist->relation, receive_count, &skipped);

	/*
	 * Both half-steps read copies, the items' made from the users': what
	 * one read of the source returned, however it changes while the
	 * training runs (a half-step is a statement of its own on the
	 * workers).  Then everything is read from the copies, with a snapshot
	 * that sees them (SPI's read-write mode): Citus runs the shards the
	 * coordinator holds in this backend.
	 */
	copied = make_copy(dist, MF_USERS, dist->relation);

	/*
	 * The copy is what the training reads: a rating committed into the
	 * source after the look above (each statement reads the shards anew)
	 * is looked at here, as are ratings whose squares, summed over the
	 * ratings copied, would overflow.
	 */
	refuse_rating(dist, psprintf("SELECT %s::pg_catalog.text, %s::pg_catalog.text, %s::pg_catalog.text FROM %s"
								 " WHERE NOT pg_catalog.abs(%s) OPERATOR(pg_catalog.<=) '%.17g'::pg_catalog.float8 LIMIT 1",
								 dist->column[0], dist->column[1], r, dist->copy[MF_USERS], r,
								 sqrt(DBL_MAX / (double) Max(copied, 1))),
				  false, NULL);
	make_copy(dist, MF_ITEMS, dist->copy[MF_USERS]);
	mf_spi_scan_fresh(psprintf("SELECT pg_catalog.count(*), pg_catalog.sum(%s),"
							   " pg_catalog.min(%s), pg_catalog.max(%s),"
							   " pg_catalog.sum(%s OPERATOR(pg_catalog.*) %s) FROM %s",
							   r, r, r, r, r, dist->table[MF_USERS]),
					  0, NULL, NULL, totals_types, 5, dist->relation, receive_totals, &totals);
	dist->ratings = palloc0(sizeof(MfRatings));
	dist->ratings->n_ratings = totals.ratings;
	dist->ratings->n_skipped = skipped;
	dist->summary.sum = totals.sum;
	dist->summary.sum_squares = totals.sum_squares;
	dist->summary.min = totals.min;
	dist->summary.max = totals.max;
	if (dist->options.single)
	{
		/* as mf_ratings_check_scale refuses on one node, the pair looked up here */
		double		center = mf_ratings_center(&dist->summary, totals.ratings,
											   dist->options.biases);

		if (!mf_ratings_within_float(&dist->summary, center))
			refuse_rating(dist, psprintf("SELECT %s::pg_catalog.text, %s::pg_catalog.text, %s::pg_catalog.text FROM %s"
										 " WHERE NOT pg_catalog.abs(%s OPERATOR(pg_catalog.-) '%.17g'::pg_catalog.float8)"
										 " OPERATOR(pg_catalog.<=) '%.17g'::pg_catalog.float8 LIMIT 1",
										 dist->column[0], dist->column[1], r, dist->table[MF_USERS], r,
										 center, (double) FLT_MAX),
						  false, &center);
	}
	read_ids(dist, MF_USERS);
	read_ids(dist, MF_ITEMS);
	MemoryContextSwitchTo(old);
	return dist->ratings;
}

/*
 * The fixed side of a half-step solving side, as the workers receive it
 * (FixedHeader).  An error (54000) past what one value may hold.
 */
static bytea *
encode_fixed(const MfDistributed *dist, MfSide side, const MfFactors *factors, bool loss,
			 uint64 *token)
{
	MfSide		fixed = mf_other_side(side);
	const MfRatings *ratings = dist->ratings;
	int32		n = fixed == MF_USERS ? ratings->n_users : ratings->n_items;
	char	   *const *keys = mf_ratings_keys(ratings, fixed);
	Size		real_size = factors->single ? sizeof(float) : sizeof(double);
	Size		key_bytes = 0;
	Size		size = sizeof(FixedHeader);
	FixedHeader header = {0};
	bytea	   *blob;
	char	   *p;

	if (factors->biases)
		size = add_size(size, mul_size(n, sizeof(double)));
	if (keys)
	{
		for (int32 r = 0; r < n; r++)
			key_bytes = add_size(key_bytes, strlen(keys[r]) + 1);
		size = add_size(size, add_size(mul_size((Size) n + 1, sizeof(int32)), key_bytes));
	}
	else
		size = add_size(size, mul_size(n, sizeof(int64)));
	size = add_size(size, mul_size(mul_size(n, factors->k), real_size));
	if (size > MaxAllocSize - VARHDRSZ || key_bytes > INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the %s factors (%zu bytes) are more than one half-step sends to the Citus workers (1 GB)",
						mf_side_name(fixed), size),
				 errhint("Pass a smaller k, or SET mf_ext.citus_training = 'coordinator'.")));

	header.magic = FIXED_MAGIC;
	header.version = FIXED_VERSION;
	header.k = factors->k;
	header.n = n;
	header.solved_side = side;
	if (!pg_strong_random(&header.token, sizeof(header.token)))
		elog(ERROR, "could not generate a random token");
	header.flags = (factors->single ? FIXED_SINGLE : 0) | (factors->biases ? FIXED_BIASES : 0) |
		(keys ? FIXED_KEYS : 0) | (dist->options.weighted_lambda ? FIXED_WEIGHTED : 0) |
		(dist->options.nonnegative ? FIXED_NONNEGATIVE : 0) | (loss ? FIXED_LOSS : 0);
	header.lambda = dist->options.lambda;
	header.bias_lambda = dist->options.bias_lambda;
	header.lambda_per_rating = dist->options.lambda_per_rating;
	header.mean = factors->mean;

	blob = palloc(VARHDRSZ + size);
	SET_VARSIZE(blob, VARHDRSZ + size);
	p = VARDATA(blob);
	memcpy(p, &header, sizeof(header));
	p += sizeof(header);
	if (factors->biases)
	{
		memcpy(p, fixed == MF_USERS ? factors->user_bias : factors->item_bias,
			   sizeof(double) * n);
		p += sizeof(double) * n;
	}
	if (!keys)
	{
		memcpy(p, mf_ratings_ids(ratings, fixed), sizeof(int64) * n);
		p += sizeof(int64) * n;
	}
	memcpy(p, fixed == MF_USERS ? factors->user_factors : factors->item_factors,
		   (Size) n * factors->k * real_size);
	p += (Size) n * factors->k * real_size;
	if (keys)
	{
		int32		offset = 0;

		for (int32 r = 0; r <= n; r++)
		{
			memcpy(p, &offset, sizeof(int32));
			p += sizeof(int32);
			if (r < n)
				offset += (int32) strlen(keys[r]) + 1;
		}
		for (int32 r = 0; r < n; r++)
		{
			Size		length = strlen(keys[r]) + 1;

			memcpy(p, keys[r], length);
			p += length;
		}
	}
	Assert(p == (char *) blob + VARHDRSZ + size);
	*token = header.token;
	return blob;
}

/* The dense index of a received id of side, or -1. */
static int32
received_index(const MfDistributed *dist, MfSide side, Datum id)
{
	if (dist->keys[side])
	{
		char	   *key = TextDatumGetCString(id);

		return mf_key_find(dist->key_map[side], key);
	}
	return mf_id_map_find(dist->ids[side], DatumGetInt64(id));
}

/* mf_spi_scan callback: one row's solution from a worker. */
static void
receive_solution(TupleTableSlot *slot, void *arg)
{
	MfDistributed *dist = arg;
	MfFactors  *f = dist->factors;
	Size		real_size = f->single ? sizeof(float) : sizeof(double);
	int32		index = received_index(dist, dist->side, slot->tts_values[0]);
	bytea	   *solution = DatumGetByteaPP(slot->tts_values[1]);
	RowResult	result;
	char	   *out;

	if (index < 0 || dist->seen[index])
		report_mismatch(dist, psprintf("a worker solved %s %s, which the coordinator read %s",
									  mf_side_name(dist->side),
									  dist->keys[dist->side] ? TextDatumGetCString(slot->tts_values[0])
									  : psprintf(INT64_FORMAT, DatumGetInt64(slot->tts_values[0])),
									  index < 0 ? "no rating of" : "in another shard as well"));
	if (VARSIZE_ANY_EXHDR(solution) != sizeof(RowResult) + f->k * real_size)
		elog(ERROR, "a worker's solution has %zu bytes", (Size) VARSIZE_ANY_EXHDR(solution));
	memcpy(&result, VARDATA_ANY(solution), sizeof(RowResult));
	if (result.degree != dist->degree[dist->side][index])
		report_mismatch(dist, psprintf("the coordinator read " INT64_FORMAT " ratings of %s %s, a worker solved it from %d",
									  dist->degree[dist->side][index], mf_side_name(dist->side),
									  mf_ratings_id_for_message(dist->ratings, dist->side, index),
									  result.degree));
	out = (char *) (dist->side == MF_USERS ? f->user_factors : f->item_factors) +
		(Size) index * f->k * real_size;
	memcpy(out, VARDATA_ANY(solution) + sizeof(RowResult), f->k * real_size);
	if (f->biases)
		(dist->side == MF_USERS ? f->user_bias : f->item_bias)[index] = result.bias;
	dist->norm[index] = result.norm;
	if (dist->sse)
		dist->sse[index] = result.sse;
	if (!result.solved && (dist->failed < 0 || index < dist->failed))
		dist->failed = index;
	dist->seen[index] = true;
	dist->rows_seen++;
	dist->ratings_seen += result.degree;
	dist->bytes_received += VARSIZE_ANY(solution);
}

/* MfHalfStepFn: one half-step, solved on the workers. */
static int32
half_step(void *arg, MfSide side, MfFactors *factors, double *norm, double *sse)
{
	MfDistributed *dist = arg;
	int32		n = side == MF_USERS ? dist->ratings->n_users : dist->ratings->n_items;
	MfSide		fixed = mf_other_side(side);
	uint64		token;
	bytea	   *blob = encode_fixed(dist, side, factors, sse != NULL, &token);
	Oid			argtype = BYTEAOID;
	Datum		arg_value = PointerGetDatum(blob);
	Oid			types[2] = {dist->keys[side] ? TEXTOID : INT8OID, BYTEAOID};
	instr_time	start;

	INSTR_TIME_SET_CURRENT(start);
	dist->side = side;
	dist->factors = factors;
	dist->norm = norm;
	dist->sse = sse;
	dist->seen = palloc0(sizeof(bool) * Max(n, 1));
	dist->rows_seen = 0;
	dist->ratings_seen = 0;
	dist->failed = -1;
	dist->bytes_received = 0;
	/* a backend that has the half-step's fixed side does not read it again */
	mf_spi_scan_fresh(psprintf("WITH fixed AS MATERIALIZED (SELECT $1::pg_catalog.bytea AS side)"
							   " SELECT %s, %s.mf_als_half_step(%s, %s,"
							   " CASE WHEN %s.mf_als_half_step_cached(" INT64_FORMAT ") THEN NULL"
							   " ELSE (SELECT side FROM fixed) END)"
							   " FROM %s GROUP BY %s",
							   id_expression(dist, side), dist->schema->quoted,
							   id_expression(dist, fixed), dist->column[2], dist->schema->quoted,
							   (int64) token, dist->table[side], dist->column[side]),
					  1, &argtype, &arg_value, types, 2, dist->relation, receive_solution, dist);
	if (dist->rows_seen != n || dist->ratings_seen != dist->ratings->n_ratings)
		report_mismatch(dist, psprintf("the coordinator read " INT64_FORMAT " ratings of %d %ss, the workers solved " INT64_FORMAT " of %d",
									  dist->ratings->n_ratings, n, mf_side_name(side),
									  dist->ratings_seen, dist->rows_seen));
	elog(DEBUG1, "mf_train: %s half-step on the Citus workers: %zu bytes of %s factors sent to each worker, %zu bytes of solutions received, %.3f s",
		 mf_side_name(side), (Size) VARSIZE(blob), mf_side_name(fixed), dist->bytes_received,
		 mf_seconds_since(start));
	pfree(dist->seen);
	pfree(blob);
	return dist->failed;
}

MfAls *
mf_distributed_als(MfDistributed *dist, const MfFitOptions *options)
{
	return mf_als_create(dist->ratings, options, &dist->summary, half_step, dist, dist->cxt);
}

/* Each user's rated items, as they arrive (the by_user rows being filled). */
static void
receive_rated(TupleTableSlot *slot, void *arg)
{
	MfDistributed *dist = arg;
	MfCsr	   *by_user = &dist->ratings->by_user;
	int32		user = received_index(dist, MF_USERS, slot->tts_values[0]);
	ArrayType  *items = DatumGetArrayTypeP(slot->tts_values[1]);
	Datum	   *elements;
	bool	   *nulls;
	int			n;
	int64		begin;

	deconstruct_array(items, dist->keys[MF_ITEMS] ? TEXTOID : INT8OID,
					  dist->keys[MF_ITEMS] ? -1 : 8, !dist->keys[MF_ITEMS] && FLOAT8PASSBYVAL,
					  dist->keys[MF_ITEMS] ? TYPALIGN_INT : TYPALIGN_DOUBLE,
					  &elements, &nulls, &n);
	if (user < 0 || n != dist->degree[MF_USERS][user])
		report_mismatch(dist, "a user's rated items are not those the coordinator read");
	begin = by_user->row_start[user];
	for (int e = 0; e < n; e++)
	{
		int32		item = received_index(dist, MF_ITEMS, elements[e]);

		if (item < 0)
			report_mismatch(dist, "a user rated an item the coordinator did not read");
		by_user->col[begin + e] = item;
	}
	mf_sort(by_user->col + begin, n, sizeof(int32), mf_compare_int32);
}

void
mf_distributed_rated_items(MfDistributed *dist)
{
	MfRatings  *ratings = dist->ratings;
	MfCsr	   *by_user = &ratings->by_user;
	Oid			types[2] = {dist->keys[MF_USERS] ? TEXTOID : INT8OID,
	dist->keys[MF_ITEMS] ? TEXTARRAYOID : INT8ARRAYOID};

	by_user->n_rows = ratings->n_users;
	by_user->row_start = mf_alloc_array(dist->cxt, (Size) ratings->n_users + 1, sizeof(int64));
	by_user->row_start[0] = 0;
	for (int32 u = 0; u < ratings->n_users; u++)
		by_user->row_start[u + 1] = by_user->row_start[u] + dist->degree[MF_USERS][u];
	by_user->col = mf_alloc_array(dist->cxt, Max(ratings->n_ratings, 1), sizeof(int32));
	mf_spi_scan_fresh(psprintf("SELECT %s, pg_catalog.array_agg(%s) FROM %s GROUP BY %s",
							   id_expression(dist, MF_USERS), id_expression(dist, MF_ITEMS),
							   dist->table[MF_USERS], dist->column[MF_USERS]),
					  0, NULL, NULL, types, 2, dist->relation, receive_rated, dist);
}

void
mf_distributed_end(MfDistributed *dist)
{
	for (MfSide side = MF_USERS; side <= MF_ITEMS; side++)
		if (dist->copy[side])
			execute(psprintf("DROP TABLE %s", dist->copy[side]), SPI_OK_UTILITY);
	AtEOXact_GUC(true, dist->nest_level);
}

/* ---------------------------------------------------------------------
 * The workers: the aggregate mf_als_half_step
 * ---------------------------------------------------------------------
 */

/* An error about a fixed side that is not one mf_train sent. */
static void
bad_fixed_side(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("mf_als_half_step's fixed side is not one mf_train sent: %s", what),
			 errhint("mf_als_half_step is the worker's part of mf_train on a Citus table; call mf_train.")));
}

/*
 * Decodes (checking every length) the fixed side blob into cxt.  The
 * arrays are copied to aligned memory, as the kernels read them.
 */
static FixedSide *
decode_fixed(const bytea *blob)
{
	/* below the query's memory until it is whole: an error frees it */
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "mf_ext fixed side",
											  ALLOCSET_DEFAULT_SIZES);
	const char *p = VARDATA_ANY(blob);
	Size		length = VARSIZE_ANY_EXHDR(blob);
	const char *end = p + length;
	FixedHeader header;
	FixedSide  *fixed;
	MfFactors  *f;
	Size		real_size;
	Size		factor_bytes;
	int64	   *ids = NULL;
	char	  **keys = NULL;
	void	   *factors;
	double	   *biases = NULL;

	if (length < sizeof(FixedHeader))
		bad_fixed_side("too short");
	memcpy(&header, p, sizeof(header));
	p += sizeof(header);
	if (header.magic != FIXED_MAGIC || header.version != FIXED_VERSION)
		bad_fixed_side("unknown format");
	if (header.k < MF_MIN_K || header.k > MF_MAX_K || header.n < 0 ||
		(header.solved_side != MF_USERS && header.solved_side != MF_ITEMS) ||
		(header.flags & ~FIXED_ALL_FLAGS) != 0 ||
		(header.k == 0 && !(header.flags & FIXED_BIASES)) ||
		!(header.lambda >= 0 && header.lambda <= MF_MAX_SINGLE_LAMBDA) ||
		!((header.bias_lambda >= 0 && header.bias_lambda <= MF_MAX_SINGLE_LAMBDA) ||
		  header.bias_lambda == -1) ||
		!(header.lambda_per_rating >= 0 && header.lambda_per_rating <= MF_MAX_SINGLE_LAMBDA) ||
		!isfinite(header.mean))
		bad_fixed_side("options out of range");
	real_size = (header.flags & FIXED_SINGLE) ? sizeof(float) : sizeof(double);
	factor_bytes = mul_size(mul_size(header.n, header.k), real_size);

	fixed = MemoryContextAllocZero(cxt, sizeof(FixedSide));
	fixed->cxt = cxt;
	fixed->token = header.token;
	fixed->solved = header.solved_side;
	fixed->keys = (header.flags & FIXED_KEYS) != 0;
	fixed->loss = (header.flags & FIXED_LOSS) != 0;
	if (header.flags & FIXED_BIASES)
	{
		if ((Size) (end - p) < mul_size(header.n, sizeof(double)))
			bad_fixed_side("too short for its biases");
		biases = mf_alloc_array(cxt, Max(header.n, 1), sizeof(double));
		memcpy(biases, p, sizeof(double) * header.n);
		p += sizeof(double) * header.n;
	}
	if (!fixed->keys)
	{
		if ((Size) (end - p) < mul_size(header.n, sizeof(int64)))
			bad_fixed_side("too short for its ids");
		ids = mf_alloc_array(cxt, Max(header.n, 1), sizeof(int64));
		memcpy(ids, p, sizeof(int64) * header.n);
		p += sizeof(int64) * header.n;
		for (int32 r = 1; r < header.n; r++)
			if (ids[r] <= ids[r - 1])
				bad_fixed_side("ids not ascending");
	}
	if ((Size) (end - p) < factor_bytes)
		bad_fixed_side("too short for its factors");
	factors = mf_alloc_aligned(cxt, Max(factor_bytes, 1), 1);
	memcpy(factors, p, factor_bytes);
	p += factor_bytes;
	if (fixed->keys)
	{
		const int32 *offsets = (const int32 *) p;	/* read by memcpy: unaligned */
		const char *bytes;
		Size		key_bytes;
		int32		last = 0;
		MfStrings	key_copies;

		if ((Size) (end - p) < mul_size((Size) header.n + 1, sizeof(int32)))
			bad_fixed_side("too short for its keys");
		bytes = p + ((Size) header.n + 1) * sizeof(int32);
		key_bytes = end - bytes;
		keys = mf_alloc_array(cxt, Max(header.n, 1), sizeof(char *));
		mf_strings_init(&key_copies, cxt);
		for (int32 r = 0; r <= header.n; r++)
		{
			int32		offset;

			memcpy(&offset, offsets + r, sizeof(int32));
			if ((r == 0 && offset != 0) || offset < last || (Size) offset > key_bytes ||
				(r > 0 && (offset == last || bytes[offset - 1] != '\0')))
				bad_fixed_side("malformed keys");
			if (r > 0)
			{
				/* a NUL inside a key would cut it short */
				if (strlen(bytes + last) != (Size) (offset - last - 1))
					bad_fixed_side("malformed keys");
				keys[r - 1] = mf_strings_copy(&key_copies, bytes + last, offset - last - 1);
				if (r > 1 && strcmp(keys[r - 2], keys[r - 1]) >= 0)
					bad_fixed_side("keys not ascending");
			}
			last = offset;
		}
		if ((Size) last != key_bytes)
			bad_fixed_side("too long");
		fixed->key_map = mf_key_map(cxt, keys, header.n);
	}
	else
	{
		if (p != end)
			bad_fixed_side("too long");
		fixed->id_map = mf_id_map_from_sorted(cxt, ids, header.n);
	}

	fixed->options.k = header.k;
	fixed->options.lambda = header.lambda;
	fixed->options.bias_lambda = header.bias_lambda;
	fixed->options.lambda_per_rating = header.lambda_per_rating;
	fixed->options.weighted_lambda = (header.flags & FIXED_WEIGHTED) != 0;
	fixed->options.nonnegative = (header.flags & FIXED_NONNEGATIVE) != 0;
	fixed->options.biases = (header.flags & FIXED_BIASES) != 0;
	fixed->options.single = (header.flags & FIXED_SINGLE) != 0;
	f = &fixed->factors;
	f->k = header.k;
	f->single = fixed->options.single;
	f->biases = fixed->options.biases;
	f->mean = header.mean;
	if (fixed->solved == MF_USERS)
	{
		f->n_items = header.n;
		f->item_factors = factors;
		f->item_bias = biases;
	}
	else
	{
		f->n_users = header.n;
		f->user_factors = factors;
		f->user_bias = biases;
	}
	MemoryContextSetParent(cxt, TopMemoryContext);
	return fixed;
}

/* The fixed side this backend decoded last, or NULL. */
static FixedSide *backend_fixed = NULL;

/* Frees a fixed side no group uses that is not the backend's current one. */
static void
free_if_unused(FixedSide *fixed)
{
	if (fixed->users == 0 && fixed != backend_fixed)
		MemoryContextDelete(fixed->cxt);
}

/*
 * Memory context callback: the aggregate is done with a group (its
 * context was reset): the group's ratings are freed, and its hold on its
 * fixed side let go.
 */
static void
release_group(void *arg)
{
	GroupRows  *group = arg;
	FixedSide  *fixed = group->fixed;

	for (GroupChunk *chunk = group->first, *next; chunk != NULL; chunk = next)
	{
		next = chunk->next;
		pfree(chunk);
	}
	pfree(group);
	fixed->users--;
	free_if_unused(fixed);
}

/* Transaction end: the backend's fixed side is forgotten (freed once unused). */
static void
forget_fixed(XactEvent event, void *arg)
{
	FixedSide  *fixed = backend_fixed;

	if (fixed == NULL || event == XACT_EVENT_PRE_COMMIT ||
		event == XACT_EVENT_PARALLEL_PRE_COMMIT || event == XACT_EVENT_PRE_PREPARE)
		return;
	backend_fixed = NULL;
	free_if_unused(fixed);
}

/*
 * The fixed side a row of mf_als_half_step names: its argument, decoded
 * unless it is the backend's current one (which it then becomes); NULL,
 * the backend's current one, which mf_als_half_step_cached said it has.
 * Each group holds the one of its first row (release_fixed lets go).
 */
static FixedSide *
current_fixed(FunctionCallInfo fcinfo)
{
	static bool registered = false;
	bytea	   *blob;
	FixedHeader header;
	FixedSide  *previous = backend_fixed;

	if (PG_ARGISNULL(3))
	{
		if (backend_fixed == NULL)
			bad_fixed_side("NULL");
		return backend_fixed;
	}
	/* the header alone, not the whole value (a stored one would be detoasted a row) */
	blob = PG_GETARG_BYTEA_P_SLICE(3, 0, sizeof(FixedHeader));
	if (VARSIZE(blob) - VARHDRSZ < sizeof(FixedHeader))
		bad_fixed_side("too short");
	memcpy(&header, VARDATA(blob), sizeof(header));
	if (backend_fixed != NULL && backend_fixed->token == header.token)
		return backend_fixed;
	blob = PG_GETARG_BYTEA_PP(3);
	if (!registered)
	{
		RegisterXactCallback(forget_fixed, NULL);
		registered = true;
	}
	backend_fixed = decode_fixed(blob);
	if (previous != NULL)
		free_if_unused(previous);
	return backend_fixed;
}

/*
 * mf_als_half_step_cached(token bigint): whether this backend holds the
 * fixed side of half-step token (so that a shard's query need not read it
 * again).
 */
Datum
mf_als_half_step_cached(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(backend_fixed != NULL && !PG_ARGISNULL(0) &&
				   backend_fixed->token == (uint64) PG_GETARG_INT64(0));
}

/*
 * mf_als_half_step's transition (internal, id bigint or text, rating
 * double precision, fixed bytea): adds a rating of the group's row
 * against the fixed side's row id.  The fixed side is decoded once per
 * query.
 */
Datum
mf_als_half_step_accumulate(PG_FUNCTION_ARGS)
{
	MemoryContext aggregate_cxt;
	GroupRows  *group = PG_ARGISNULL(0) ? NULL : (GroupRows *) PG_GETARG_POINTER(0);
	FixedSide  *fixed;
	int32		index;
	double		value;

	if (!AggCheckCallContext(fcinfo, &aggregate_cxt))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("mf_als_half_step_accumulate is mf_als_half_step's transition and runs only in it")));
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_POINTER(group);
	fixed = current_fixed(fcinfo);
	if (group != NULL && group->fixed != fixed)
		bad_fixed_side("a second one in a group");
	if (fixed->keys != (get_fn_expr_argtype(fcinfo->flinfo, 1) == TEXTOID))
		bad_fixed_side("ids of another kind");
	if (fixed->keys)
	{
		char	   *key = text_to_cstring(PG_GETARG_TEXT_PP(1));

		index = mf_key_find(fixed->key_map, key);
		if (index < 0)
			bad_fixed_side(psprintf("it holds no %s %s", mf_side_name(mf_other_side(fixed->solved)),
									key));
	}
	else
	{
		index = mf_id_map_find(fixed->id_map, PG_GETARG_INT64(1));
		if (index < 0)
			bad_fixed_side(psprintf("it holds no %s " INT64_FORMAT,
									mf_side_name(mf_other_side(fixed->solved)), PG_GETARG_INT64(1)));
	}
	value = PG_GETARG_FLOAT8(2);
	if (!isfinite(value))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("a rating is %s", isnan(value) ? "NaN" : "infinite"),
				 errhint("Fix or delete that row, or pass a view that leaves out such ratings.")));
	if (group == NULL)
	{
		/*
		 * Outside the aggregate's memory, which the hash aggregate counts
		 * against work_mem: a shard's groups, all held until its end, would
		 * spill its input to disk again and again.  A shard's ratings take
		 * 16 bytes each here (its size is the copy's: ratings / (workers *
		 * connections)); each group is freed when the aggregate resets its
		 * memory.
		 */
		group = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(GroupRows));
		group->magic = GROUP_ROWS_MAGIC;
		group->fixed = fixed;
		fixed->users++;
		group->release.func = release_group;
		group->release.arg = group;
		MemoryContextRegisterResetCallback(aggregate_cxt, &group->release);
	}
	if (group->n == INT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a user or item has more than %d ratings", INT_MAX)));
	if (group->last == NULL || group->last->n == GROUP_CHUNK_ENTRIES)
	{
		GroupChunk *chunk = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(GroupChunk));

		chunk->next = NULL;
		chunk->n = 0;
		if (group->last)
			group->last->next = chunk;
		else
			group->first = chunk;
		group->last = chunk;
	}
	group->last->entries[group->last->n].col = index;
	group->last->entries[group->last->n].value = value;
	group->last->n++;
	group->n++;
	PG_RETURN_POINTER(group);
}

/* Entries by the fixed side's index, then value: the order of a training's rows. */
static int
compare_entries(const void *a, const void *b)
{
	const GroupEntry *x = a;
	const GroupEntry *y = b;

	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return x->value < y->value ? -1 : x->value > y->value ? 1 : 0;
}

/*
 * mf_als_half_step's final function: solves the group's row from its
 * ratings, as a RowResult and k reals (bytea).
 */
Datum
mf_als_half_step_solve(PG_FUNCTION_ARGS)
{
	GroupRows  *group = PG_ARGISNULL(0) ? NULL : (GroupRows *) PG_GETARG_POINTER(0);
	FixedSide  *fixed;
	Size		real_size;
	int32	   *cols;
	double	   *values;
	void	   *x;
	RowResult	result = {0};
	bytea	   *out;
	GroupEntry *entries;
	int32		gathered = 0;

	if (!AggCheckCallContext(fcinfo, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("mf_als_half_step_solve is mf_als_half_step's final function and runs only in it")));
	if (group == NULL)
		PG_RETURN_NULL();
	if (group->magic != GROUP_ROWS_MAGIC)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("mf_als_half_step_solve is mf_als_half_step's final function and takes only its state")));
	CHECK_FOR_INTERRUPTS();
	fixed = group->fixed;
	real_size = fixed->options.single ? sizeof(float) : sizeof(double);
	if (fixed->solver == NULL)
		fixed->solver = mf_als_row_solver(&fixed->factors, fixed->solved, &fixed->options,
										  fixed->cxt);
	entries = mf_alloc_array(CurrentMemoryContext, group->n, sizeof(GroupEntry));
	for (GroupChunk *chunk = group->first; chunk != NULL; chunk = chunk->next)
	{
		memcpy(entries + gathered, chunk->entries, sizeof(GroupEntry) * chunk->n);
		gathered += chunk->n;
	}
	/* rows stored in order (a table loaded sorted) need no sort */
	for (int32 e = 1; e < group->n; e++)
		if (compare_entries(&entries[e - 1], &entries[e]) > 0)
		{
			mf_sort(entries, group->n, sizeof(GroupEntry), compare_entries);
			break;
		}
	cols = palloc(sizeof(int32) * group->n);
	values = palloc(sizeof(double) * group->n);
	for (int32 e = 0; e < group->n; e++)
	{
		cols[e] = entries[e].col;
		values[e] = entries[e].value;
	}
	x = mf_alloc_aligned(CurrentMemoryContext, fixed->options.k + 1, real_size);
	result.degree = group->n;
	result.solved = mf_als_row_solve(fixed->solver, cols, values, group->n, fixed->loss, x,
									 &result.bias, &result.norm, &result.sse);
	out = palloc(VARHDRSZ + sizeof(RowResult) + fixed->options.k * real_size);
	SET_VARSIZE(out, VARHDRSZ + sizeof(RowResult) + fixed->options.k * real_size);
	memcpy(VARDATA(out), &result, sizeof(RowResult));
	memcpy(VARDATA(out) + sizeof(RowResult), x, fixed->options.k * real_size);
	PG_RETURN_BYTEA_P(out);
}
