/*-------------------------------------------------------------------------
 *
 * ratings.c
 *	  Reads (user, item, rating) rows from the source relation through SPI,
 *	  as the calling user, numbers users and items densely in ascending id
 *	  order, and builds compressed sparse rows in both directions.
 *
 *	  Never writes anything.  The caller must be connected to SPI.
 *
 *-------------------------------------------------------------------------
 */
#include "mf_ext.h"

#include <math.h>

#include "access/relation.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

/* Raw rows as read, before ids are mapped; grown by doubling. */
typedef struct RawRatings
{
	int64		n;
	int64		capacity;
	int64	   *user;
	int64	   *item;
	double	   *rating;
} RawRatings;

/* A comma-separated list of the relation's columns, for error hints. */
static char *
relation_column_list(Oid relid)
{
	StringInfoData buf;
	Relation	rel = relation_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);

	initStringInfo(&buf);
	for (int att = 0; att < desc->natts; att++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, att);

		if (attr->attisdropped)
			continue;
		appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "",
						 quote_literal_cstr(NameStr(attr->attname)));
	}
	relation_close(rel, AccessShareLock);
	return buf.data;
}

/*
 * Checks that column colname exists and has one of the accepted types;
 * returns that (base) type.
 */
static Oid
check_column(Oid relid, const char *role, const char *argname,
			 const char *colname, const Oid *accepted, int n_accepted,
			 const char *accepted_text)
{
	AttrNumber	attnum = get_attnum(relid, colname);
	Oid			type;

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" does not exist in relation %s",
						colname, mf_source_display_name(relid)),
				 errdetail("mf_train reads the %s from the column named by %s.",
						   role, argname),
				 errhint("Pass %s := one of: %s.", argname,
						 relation_column_list(relid))));

	type = getBaseType(get_atttype(relid, attnum));
	for (int i = 0; i < n_accepted; i++)
		if (type == accepted[i])
			return type;

	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("column \"%s\" of relation %s has type %s, but %s must be %s",
					colname, mf_source_display_name(relid),
					format_type_be(type), role, accepted_text),
			 errhint("Train on a view that casts the column, or name another column with %s.",
					 argname)));
	return InvalidOid;			/* not reached */
}

char *
mf_source_display_name(Oid relid)
{
	char	   *relname = get_rel_name(relid);

	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  relname);
}

void
mf_source_validate(MfSource *source)
{
	static const Oid id_types[] = {INT2OID, INT4OID, INT8OID};
	static const Oid rating_types[] = {INT2OID, INT4OID, INT8OID,
	FLOAT4OID, FLOAT8OID, NUMERICOID};
	char		relkind = get_rel_relkind(source->relid);

	switch (relkind)
	{
		case RELKIND_RELATION:
		case RELKIND_PARTITIONED_TABLE:
		case RELKIND_VIEW:
		case RELKIND_MATVIEW:
		case RELKIND_FOREIGN_TABLE:
			break;
		case '\0':
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("relation with OID %u does not exist",
							source->relid)));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("%s is not a table, partitioned table, view, materialized view or foreign table",
							mf_source_display_name(source->relid)),
					 errhint("Pass the table or view that holds the ratings as source.")));
	}

	source->user_type = check_column(source->relid, "user ids", "user_col",
									 source->user_col, id_types, lengthof(id_types),
									 "smallint, integer or bigint");
	source->item_type = check_column(source->relid, "item ids", "item_col",
									 source->item_col, id_types, lengthof(id_types),
									 "smallint, integer or bigint");
	source->rating_type = check_column(source->relid, "ratings", "rating_col",
									   source->rating_col, rating_types,
									   lengthof(rating_types),
									   "a numeric type (smallint, integer, bigint, real, double precision or numeric)");
	if (strcmp(source->user_col, source->item_col) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("user_col and item_col both name column \"%s\"",
						source->user_col),
				 errhint("Name the column of user ids with user_col and the column of item ids with item_col.")));
}

static void
raw_append(RawRatings *raw, MemoryContext cxt, int64 user, int64 item,
		   double rating)
{
	if (raw->n == raw->capacity)
	{
		int64		capacity = raw->capacity == 0 ? 65536 : raw->capacity * 2;
		Size		bytes = mul_size((Size) capacity, sizeof(int64));

		if (raw->capacity == 0)
		{
			raw->user = MemoryContextAllocHuge(cxt, bytes);
			raw->item = MemoryContextAllocHuge(cxt, bytes);
			raw->rating = MemoryContextAllocHuge(cxt, bytes);
		}
		else
		{
			raw->user = repalloc_huge(raw->user, bytes);
			raw->item = repalloc_huge(raw->item, bytes);
			raw->rating = repalloc_huge(raw->rating, bytes);
		}
		raw->capacity = capacity;
	}
	raw->user[raw->n] = user;
	raw->item[raw->n] = item;
	raw->rating[raw->n] = rating;
	raw->n++;
}

/* An id column's value (smallint, integer or bigint) as int64. */
static int64
id_value(Datum value, Oid type)
{
	switch (type)
	{
		case INT2OID:
			return DatumGetInt16(value);
		case INT4OID:
			return DatumGetInt32(value);
		default:
			return DatumGetInt64(value);
	}
}

/*
 * A rating column's value as double; a numeric beyond double's range
 * becomes an infinity (reported as such by the caller).
 */
static double
rating_value(Datum value, Oid type)
{
	switch (type)
	{
		case INT2OID:
			return DatumGetInt16(value);
		case INT4OID:
			return DatumGetInt32(value);
		case INT8OID:
			return (double) DatumGetInt64(value);
		case FLOAT4OID:
			return DatumGetFloat4(value);
		case FLOAT8OID:
			return DatumGetFloat8(value);
		default:
			return DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, value));
	}
}

/* State of read_rows while it scans. */
typedef struct ReadState
{
	const MfSource *source;
	MemoryContext cxt;
	RawRatings *raw;
	int64		n_skipped;
} ReadState;

/* mf_spi_scan callback: keeps one (user, item, rating) row. */
static void
read_one_row(HeapTuple tuple, TupleDesc desc, void *arg)
{
	ReadState  *state = arg;
	bool		user_null,
				item_null,
				rating_null;
	Datum		user = SPI_getbinval(tuple, desc, 1, &user_null);
	Datum		item = SPI_getbinval(tuple, desc, 2, &item_null);
	Datum		rating = SPI_getbinval(tuple, desc, 3, &rating_null);
	const MfSource *source = state->source;
	int64		user_id,
				item_id;
	double		value;

	if (user_null || item_null || rating_null)
	{
		state->n_skipped++;
		return;
	}
	user_id = id_value(user, source->user_type);
	item_id = id_value(item, source->item_type);
	value = rating_value(rating, source->rating_type);
	if (!isfinite(value))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("rating of user " INT64_FORMAT " for item " INT64_FORMAT " is %s",
						user_id, item_id,
						isnan(value) ? "NaN" : "infinite or beyond the range of double precision"),
				 errhint("Fix or delete that row, or train on a view that leaves out such ratings: WHERE abs(%s) < 1e300.",
						 quote_identifier(source->rating_col))));
	raw_append(state->raw, state->cxt, user_id, item_id, value);
}

/* Reads the source's non-NULL rows into raw; returns how many were skipped. */
static int64
read_rows(const MfSource *source, MemoryContext cxt, RawRatings *raw)
{
	ReadState	state = {source, cxt, raw, 0};
	char	   *query;

	query = psprintf("SELECT %s, %s, %s FROM %s",
					 quote_identifier(source->user_col),
					 quote_identifier(source->item_col),
					 quote_identifier(source->rating_col),
					 mf_source_display_name(source->relid));
	mf_spi_scan(query, 0, NULL, NULL, read_one_row, &state);
	return state.n_skipped;
}

static int
compare_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/*
 * Distinct values of ids[0..n-1], sorted ascending, into *distinct; returns
 * their count.  kind names them in the error for too many.
 */
static int32
distinct_sorted(MemoryContext cxt, const int64 *ids, int64 n,
				int64 **distinct, const char *kind)
{
	mf_idmap_hash *seen = mf_idmap_create(cxt, 1024, NULL);
	mf_idmap_iterator iter;
	MfIdEntry  *entry;
	int64	   *out;
	int64		count = 0;

	for (int64 r = 0; r < n; r++)
	{
		bool		found;

		mf_idmap_insert(seen, ids[r], &found);
		if ((r & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	if (seen->members > (uint64) PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many distinct %s: " UINT64_FORMAT, kind,
						(uint64) seen->members),
				 errdetail("mf_ext supports at most %d distinct %s.",
						   PG_INT32_MAX, kind)));

	out = mf_alloc_array(cxt, seen->members, sizeof(int64));
	mf_idmap_start_iterate(seen, &iter);
	while ((entry = mf_idmap_iterate(seen, &iter)) != NULL)
		out[count++] = entry->id;
	mf_idmap_destroy(seen);

	qsort(out, count, sizeof(int64), compare_int64);
	*distinct = out;
	return (int32) count;
}

/*
 * Fills csr (n_rows rows) from entries given as (row, col, val) arrays, by
 * counting sort: within a row, entries keep the order they are given in.
 */
static void
csr_build(MfCsr *csr, MemoryContext cxt, int32 n_rows, int64 n,
		  const int32 *row, const int32 *col, const double *val)
{
	int64	   *next;

	csr->n_rows = n_rows;
	csr->row_start = mf_alloc_array(cxt, (Size) n_rows + 1, sizeof(int64));
	csr->col = mf_alloc_array(cxt, n, sizeof(int32));
	csr->val = mf_alloc_array(cxt, n, sizeof(double));

	memset(csr->row_start, 0, sizeof(int64) * ((Size) n_rows + 1));
	for (int64 e = 0; e < n; e++)
		csr->row_start[row[e] + 1]++;
	for (int32 r = 0; r < n_rows; r++)
		csr->row_start[r + 1] += csr->row_start[r];

	next = mf_alloc_array(cxt, n_rows, sizeof(int64));
	memcpy(next, csr->row_start, sizeof(int64) * n_rows);
	for (int64 e = 0; e < n; e++)
	{
		int64		slot = next[row[e]]++;

		csr->col[slot] = col[e];
		csr->val[slot] = val[e];
	}
	pfree(next);
}

/*
 * Within each row (already sorted by column), orders the values of
 * duplicate entries (same column: the same pair rated twice) ascending, so
 * that not even their order depends on the scan.  Runs are tiny.
 */
static void
csr_sort_duplicates(MfCsr *csr)
{
	for (int32 r = 0; r < csr->n_rows; r++)
		for (int64 e = csr->row_start[r] + 1; e < csr->row_start[r + 1]; e++)
		{
			int64		at = e;

			while (at > csr->row_start[r] && csr->col[at - 1] == csr->col[at] &&
				   csr->val[at - 1] > csr->val[at])
			{
				double		swap = csr->val[at];

				csr->val[at] = csr->val[at - 1];
				csr->val[at - 1] = swap;
				at--;
			}
		}
}

/* Expands a CSR's implicit row numbers into an explicit array. */
static int32 *
csr_row_of_entries(const MfCsr *csr, MemoryContext cxt)
{
	int32	   *row = mf_alloc_array(cxt, csr->row_start[csr->n_rows], sizeof(int32));

	for (int32 r = 0; r < csr->n_rows; r++)
		for (int64 e = csr->row_start[r]; e < csr->row_start[r + 1]; e++)
			row[e] = r;
	return row;
}

/*
 * Reads the source into a new MfRatings allocated in cxt.  Both CSRs are
 * sorted within each row by the other side's index, so the model does not
 * depend on the order in which the scan returned the rows.
 */
MfRatings *
mf_ratings_read(const MfSource *source, MemoryContext cxt)
{
	MfRatings  *ratings = MemoryContextAllocZero(cxt, sizeof(MfRatings));
	MemoryContext scratch = AllocSetContextCreate(cxt, "mf_ext ratings scratch",
												  ALLOCSET_DEFAULT_SIZES);
	RawRatings	raw = {0};
	int32	   *user_index;
	int32	   *item_index;
	int32	   *row_of_entry;
	mf_idmap_hash *map;
	MfCsr		item_first;

	ratings->n_skipped = read_rows(source, scratch, &raw);
	ratings->n_ratings = raw.n;
	if (raw.n == 0)
		return ratings;

	ratings->n_users = distinct_sorted(cxt, raw.user, raw.n,
									   &ratings->user_ids, "users");
	ratings->n_items = distinct_sorted(cxt, raw.item, raw.n,
									   &ratings->item_ids, "items");

	user_index = mf_alloc_array(scratch, raw.n, sizeof(int32));
	map = mf_idmap_from_sorted(scratch, ratings->user_ids, ratings->n_users);
	for (int64 r = 0; r < raw.n; r++)
		user_index[r] = mf_idmap_index(map, raw.user[r]);
	item_index = mf_alloc_array(scratch, raw.n, sizeof(int32));
	map = mf_idmap_from_sorted(scratch, ratings->item_ids, ratings->n_items);
	for (int64 r = 0; r < raw.n; r++)
		item_index[r] = mf_idmap_index(map, raw.item[r]);
	CHECK_FOR_INTERRUPTS();

	/*
	 * Three counting sorts: by item in scan order, then by user (now sorted
	 * by item within each user), then by item again (sorted by user).
	 */
	csr_build(&item_first, scratch, ratings->n_items, raw.n,
			  item_index, user_index, raw.rating);
	row_of_entry = csr_row_of_entries(&item_first, scratch);
	csr_build(&ratings->by_user, cxt, ratings->n_users, raw.n,
			  item_first.col, row_of_entry, item_first.val);
	row_of_entry = csr_row_of_entries(&ratings->by_user, scratch);
	csr_build(&ratings->by_item, cxt, ratings->n_items, raw.n,
			  ratings->by_user.col, row_of_entry, ratings->by_user.val);
	csr_sort_duplicates(&ratings->by_user);
	csr_sort_duplicates(&ratings->by_item);

	MemoryContextDelete(scratch);
	return ratings;
}
