/*-------------------------------------------------------------------------
 *
 * ratings.c
 *	  Reads (user, item, rating) rows from the source relation as the
 *	  calling user, numbers users and items densely in ascending id order,
 *	  and builds compressed sparse rows in both directions.
 *
 *	  A plain table or materialized view that the caller may read in full
 *	  (SELECT on the table or on the three columns, no row-level security,
 *	  no inheritance children) is read by a direct heap scan; anything else
 *	  (views, partitioned and foreign tables, RLS) through an SPI cursor,
 *	  which applies every rule a SELECT would.  Rows are kept in fixed-size
 *	  chunks while reading, with ids mapped to indices on the fly, so that
 *	  nothing is ever copied to grow: 16 bytes a rating while reading, at
 *	  most 40 while the sparse rows are built, 24 after.
 *
 *	  Never writes anything.  The caller must be connected to SPI.
 *
 *-------------------------------------------------------------------------
 */
#include "mf_ext.h"

#include <math.h>

#include "access/relation.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_am_d.h"
#include "access/tableam.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

/* Rows per chunk of the rows being read. */
#define MF_CHUNK_ROWS	65536

/*
 * Bytes per rating while reading (a chunk row) and at the peak of building
 * the sparse rows (chunks plus the first CSR); see the file header.
 */
#define MF_READ_BYTES_PER_RATING	16
#define MF_BUILD_BYTES_PER_RATING	40
/* Per distinct user or item: ids, counts, map entries, remaps, row starts. */
#define MF_BYTES_PER_ID				80

/* One chunk of rows read: dense indices in order of first appearance. */
typedef struct RowChunk
{
	int32		user[MF_CHUNK_ROWS];
	int32		item[MF_CHUNK_ROWS];
	double		rating[MF_CHUNK_ROWS];
} RowChunk;

/* Distinct ids in order of first appearance, with a map back. */
typedef struct IdNumbering
{
	int32	   *direct;			/* ids below direct_size: index + 1, or 0 */
	int64		direct_size;	/* grows with the ids seen, to MF_DIRECT_READ_IDS */
	mf_idmap_hash *hash;		/* every other id -> index */
	int64	   *ids;			/* index -> id */
	int64	   *counts;			/* rows seen per index */
	int32		n;
	int32		capacity;
	const char *kind;			/* "users" or "items", for errors */
} IdNumbering;

/* Distinct text keys of one side in order of first appearance (key ids). */
typedef struct KeySide
{
	mf_keymap_hash *map;		/* key -> its number */
	char	  **keys;			/* number -> key */
	int32		n;
	int32		capacity;
} KeySide;

/* Everything read so far. */
typedef struct ReadState
{
	const MfSource *source;
	MemoryContext cxt;
	IdNumbering users;
	IdNumbering items;
	RowChunk  **chunks;
	int32		n_chunks;
	int32		chunk_capacity;
	int64		n_rows;
	int64		n_skipped;
	MemoryContext convert_cxt;	/* numeric conversions, reset per chunk */
	KeySide    *user_keys;		/* for ids read by their text form, else NULL */
	KeySide    *item_keys;
	MemoryContext key_cxt;		/* text forms of one row's ids, reset per row */
	Size		key_bytes;		/* bytes of the distinct keys kept */
	bool		sorted;			/* rows so far in (user id, item id) order */
	int64		last_user;
	int64		last_item;
} ReadState;

/* A comma-separated list of the columns of desc, for error hints. */
static char *
relation_column_list(TupleDesc desc)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int att = 0; att < desc->natts; att++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, att);

		if (attr->attisdropped)
			continue;
		appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "",
						 quote_literal_cstr(NameStr(attr->attname)));
	}
	return buf.data;
}

/*
 * Finds column colname of the locked relation rel and checks that it has
 * one of the accepted types (any when n_accepted is 0); sets *attnum and
 * returns that (base) type.
 */
static Oid
check_column(const MfSource *source, Relation rel, const char *role,
			 const char *argname, const char *colname, const Oid *accepted,
			 int n_accepted, const char *accepted_text, AttrNumber *attnum)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Oid			relid = RelationGetRelid(rel);
	Oid			type;

	*attnum = InvalidAttrNumber;
	for (int att = 0; att < desc->natts; att++)
		if (!TupleDescAttr(desc, att)->attisdropped &&
			strcmp(NameStr(TupleDescAttr(desc, att)->attname), colname) == 0)
			*attnum = att + 1;
	if (*attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" does not exist in relation %s",
						colname, mf_source_display_name(relid)),
				 errdetail("The %s are read from the column named by %s.",
						   role, argname),
				 source->fixed_columns
				 ? errhint("The %s must have the model's column \"%s\"; rename one of its columns (%s) in a view.",
						   source->argname, colname, relation_column_list(desc))
				 : errhint("Pass %s := one of: %s.", argname,
						   relation_column_list(desc))));

	type = getBaseType(TupleDescAttr(desc, *attnum - 1)->atttypid);
	if (n_accepted == 0)
		return type;			/* any type will do */
	for (int i = 0; i < n_accepted; i++)
		if (type == accepted[i])
			return type;

	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("column \"%s\" of relation %s has type %s, but %s must be %s",
					colname, mf_source_display_name(relid),
					format_type_be(type), role, accepted_text),
			 errhint("Pass a view that casts the column, or name another column with %s.",
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

/*
 * Checks the source's columns, with the relation locked as a SELECT locks
 * it (AccessShareLock); the lock is kept until the transaction ends, so
 * that no other session can rename, swap or retype the columns between
 * this check and the read (DESIGN.md: what you checked is what you read).
 */
void
mf_source_validate(MfSource *source)
{
	/* integers are read as they are; the rest by their text form */
	static const Oid id_types[] = {INT2OID, INT4OID, INT8OID,
	TEXTOID, VARCHAROID, BPCHAROID, NAMEOID, UUIDOID};
	static const Oid rating_types[] = {INT2OID, INT4OID, INT8OID,
	FLOAT4OID, FLOAT8OID, NUMERICOID};
	Relation	rel = try_relation_open(source->relid, AccessShareLock);
	bool		varlena;

	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", source->relid),
				 errhint("Pass an existing table or view as %s.", source->argname)));
	switch (rel->rd_rel->relkind)
	{
		case RELKIND_RELATION:
		case RELKIND_PARTITIONED_TABLE:
		case RELKIND_VIEW:
		case RELKIND_MATVIEW:
		case RELKIND_FOREIGN_TABLE:
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("%s is not a table, partitioned table, view, materialized view or foreign table",
							mf_source_display_name(source->relid)),
					 errhint("Pass the table or view that holds the ratings as %s.",
							 source->argname)));
	}

	source->user_type = check_column(source, rel, "user ids", "user_col",
									 source->user_col, id_types, lengthof(id_types),
									 "an integer (smallint, integer, bigint) or text (text, varchar, char, name) or uuid",
									 &source->user_attnum);
	source->item_type = check_column(source, rel, "item ids", "item_col",
									 source->item_col, id_types, lengthof(id_types),
									 "an integer (smallint, integer, bigint) or text (text, varchar, char, name) or uuid",
									 &source->item_attnum);
	/* integer ids are read as they are; any other type by its text form */
	source->user_keys = source->user_type != INT2OID && source->user_type != INT4OID &&
		source->user_type != INT8OID;
	source->item_keys = source->item_type != INT2OID && source->item_type != INT4OID &&
		source->item_type != INT8OID;
	if (source->user_keys)
		getTypeOutputInfo(source->user_type, &source->user_output, &varlena);
	if (source->item_keys)
		getTypeOutputInfo(source->item_type, &source->item_output, &varlena);
	source->rating_type = check_column(source, rel, "ratings", "rating_col",
									   source->rating_col, rating_types,
									   lengthof(rating_types),
									   "a numeric type (smallint, integer, bigint, real, double precision or numeric)",
									   &source->rating_attnum);
	if (strcmp(source->user_col, source->item_col) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("user_col and item_col both name column \"%s\"",
						source->user_col),
				 errhint("Name the column of user ids with user_col and the column of item ids with item_col.")));
	relation_close(rel, NoLock);	/* the lock stays until the transaction ends */
}

/* The three columns' types, in the order they are read. */
static void
source_types(const MfSource *source, Oid *types)
{
	types[0] = source->user_type;
	types[1] = source->item_type;
	types[2] = source->rating_type;
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

/* Ids below this are numbered through a direct array while reading. */
#define MF_DIRECT_READ_IDS	(1 << 20)

/* Gives id the next index. */
static int32
append_id(IdNumbering *numbering, int64 id)
{
	if (numbering->n == PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many distinct %s", numbering->kind),
				 errdetail("mf_ext supports at most %d distinct %s.",
						   PG_INT32_MAX - 1, numbering->kind)));
	if (numbering->n == numbering->capacity)
	{
		numbering->capacity = (int32) Min((int64) numbering->capacity * 2, PG_INT32_MAX);
		numbering->ids = repalloc_huge(numbering->ids,
									   mul_size(numbering->capacity, sizeof(int64)));
		numbering->counts = repalloc_huge(numbering->counts,
										  mul_size(numbering->capacity, sizeof(int64)));
	}
	numbering->ids[numbering->n] = id;
	numbering->counts[numbering->n] = 0;
	return numbering->n++;
}

/* Makes the direct array cover id (doubling; ids are usually dense). */
static void
grow_direct(IdNumbering *numbering, int64 id)
{
	int64		size = numbering->direct_size;

	while (size <= id)
		size *= 2;
	size = Min(size, MF_DIRECT_READ_IDS);
	numbering->direct = repalloc(numbering->direct, sizeof(int32) * size);
	memset(numbering->direct + numbering->direct_size, 0,
		   sizeof(int32) * (size - numbering->direct_size));
	numbering->direct_size = size;
}

/* The dense index of id (numbering it if it is new), counting the row. */
static int32
number_id(IdNumbering *numbering, int64 id)
{
	int32		index;

	if ((uint64) id < MF_DIRECT_READ_IDS)
	{
		if (id >= numbering->direct_size)
			grow_direct(numbering, id);
		index = numbering->direct[id] - 1;
		if (index < 0)
		{
			index = append_id(numbering, id);
			numbering->direct[id] = index + 1;
		}
	}
	else
	{
		bool		found;
		MfIdEntry  *entry = mf_idmap_insert(numbering->hash, id, &found);

		if (!found)
			entry->index = append_id(numbering, id);
		index = entry->index;
	}
	numbering->counts[index]++;
	return index;
}

static void
numbering_init(IdNumbering *numbering, MemoryContext cxt, const char *kind)
{
	numbering->direct_size = 1024;
	numbering->direct = MemoryContextAllocZero(cxt, sizeof(int32) * numbering->direct_size);
	numbering->hash = mf_idmap_create(cxt, 1024, NULL);
	numbering->capacity = 1024;
	numbering->ids = MemoryContextAlloc(cxt, sizeof(int64) * numbering->capacity);
	numbering->counts = MemoryContextAlloc(cxt, sizeof(int64) * numbering->capacity);
	numbering->n = 0;
	numbering->kind = kind;
}

/*
 * The number of the text form of value (of type type, with output function
 * output) among the side's keys, numbering it if new.  The text form is
 * the one a cast to text gives, which is how callers pass keys: for
 * character(n), without the trailing blanks its output pads with.  Called
 * with the conversion context current; the key is kept in the state's.
 */
static int64
key_number(ReadState *state, KeySide *side, Oid type, Oid output, Datum value)
{
	char	   *text = OidOutputFunctionCall(output, value);
	MfKeyEntry *entry;
	bool		found;

	if (type == BPCHAROID)
	{
		size_t		length = strlen(text);

		while (length > 0 && text[length - 1] == ' ')
			text[--length] = '\0';
	}

	entry = mf_keymap_insert(side->map, text, &found);
	if (!found)
	{
		if (side->n == side->capacity)
		{
			side->capacity *= 2;
			side->keys = repalloc_huge(side->keys, mul_size(side->capacity, sizeof(char *)));
		}
		side->keys[side->n] = MemoryContextStrdup(state->cxt, text);
		entry->key = side->keys[side->n];
		entry->index = side->n++;
		/* kept here, and once more, sorted, in the result */
		state->key_bytes = add_size(state->key_bytes, mul_size(strlen(text) + 1, 2));
	}
	return entry->index;
}

static KeySide *
key_side_create(MemoryContext cxt)
{
	KeySide    *side = MemoryContextAllocZero(cxt, sizeof(KeySide));

	side->map = mf_keymap_create(cxt, 1024, NULL);
	side->capacity = 1024;
	side->keys = MemoryContextAlloc(cxt, sizeof(char *) * side->capacity);
	return side;
}

/*
 * Sorts a side's keys into out (byte order) and renumbers its ids from key
 * numbers to positions in that order, so that the model is numbered by
 * key whatever the order the rows came in.
 */
static char **
sort_keys(KeySide *side, IdNumbering *numbering, MemoryContext cxt)
{
	int32	   *rank = mf_alloc_array(cxt, side->n, sizeof(int32));
	char	  **sorted = mf_alloc_array(cxt, side->n, sizeof(char *));

	memcpy(sorted, side->keys, sizeof(char *) * side->n);
	qsort(sorted, side->n, sizeof(char *), mf_compare_keys);
	for (int32 r = 0; r < side->n; r++)
		sorted[r] = MemoryContextStrdup(cxt, sorted[r]);
	/* the rank of each key number: look it up among the sorted keys */
	for (int32 r = 0; r < side->n; r++)
		rank[mf_keymap_lookup(side->map, sorted[r])->index] = r;
	for (int32 a = 0; a < numbering->n; a++)
		numbering->ids[a] = rank[numbering->ids[a]];
	pfree(rank);
	return sorted;
}

/* Keeps one row: skips NULLs, rejects non-finite ratings, appends. */
static void
accept_row(ReadState *state, Datum user, bool user_null, Datum item,
		   bool item_null, Datum rating, bool rating_null)
{
	const MfSource *source = state->source;
	int64		user_id,
				item_id;
	double		value;
	RowChunk   *chunk;
	int32		slot;

	if (user_null || item_null || rating_null)
	{
		state->n_skipped++;
		return;
	}
	if (state->user_keys || state->item_keys)
	{
		/* text forms (and any detoasted copies) live for this row only */
		MemoryContext old = MemoryContextSwitchTo(state->key_cxt);

		user_id = state->user_keys
			? key_number(state, state->user_keys, source->user_type, source->user_output, user)
			: id_value(user, source->user_type);
		item_id = state->item_keys
			? key_number(state, state->item_keys, source->item_type, source->item_output, item)
			: id_value(item, source->item_type);
		MemoryContextSwitchTo(old);
		MemoryContextReset(state->key_cxt);
	}
	else
	{
		user_id = id_value(user, source->user_type);
		item_id = id_value(item, source->item_type);
	}
	if (source->rating_type == NUMERICOID)
	{
		/* numeric_float8 detoasts (copies) its argument: do it off to the side */
		MemoryContext old = MemoryContextSwitchTo(state->convert_cxt);

		value = rating_value(rating, source->rating_type);
		MemoryContextSwitchTo(old);
	}
	else
		value = rating_value(rating, source->rating_type);
	if (!isfinite(value))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("rating of user %s for item %s in %s is %s",
						state->user_keys ? OidOutputFunctionCall(source->user_output, user)
						: psprintf(INT64_FORMAT, user_id),
						state->item_keys ? OidOutputFunctionCall(source->item_output, item)
						: psprintf(INT64_FORMAT, item_id),
						mf_source_display_name(source->relid),
						isnan(value) ? "NaN" : "infinite or beyond the range of double precision"),
				 errhint("Fix or delete that row, or pass a view that leaves out such ratings: WHERE abs(%s) < 1e300.",
						 quote_identifier(source->rating_col))));

	if (state->sorted && state->n_rows > 0 &&
		(user_id < state->last_user ||
		 (user_id == state->last_user && item_id < state->last_item)))
		state->sorted = false;
	state->last_user = user_id;
	state->last_item = item_id;

	slot = (int32) (state->n_rows % MF_CHUNK_ROWS);
	if (slot == 0)
	{
		/* a new chunk: within the memory limit, with room in the list */
		mf_check_memory(add_size(add_size(mul_size(add_size(state->n_rows, MF_CHUNK_ROWS),
												   MF_READ_BYTES_PER_RATING),
										  mul_size(state->users.capacity + state->items.capacity,
												   MF_BYTES_PER_ID)),
								 state->key_bytes),
						psprintf("Reading the ratings: " INT64_FORMAT " rows of %d users and %d items so far, and room for %d more.",
								 state->n_rows, state->users.n, state->items.n, MF_CHUNK_ROWS));
		if (state->n_chunks == state->chunk_capacity)
		{
			state->chunk_capacity *= 2;
			state->chunks = repalloc_huge(state->chunks,
										  mul_size(state->chunk_capacity, sizeof(RowChunk *)));
		}
		state->chunks[state->n_chunks++] = MemoryContextAlloc(state->cxt, sizeof(RowChunk));
		MemoryContextReset(state->convert_cxt);
		CHECK_FOR_INTERRUPTS();
	}
	chunk = state->chunks[state->n_chunks - 1];
	chunk->user[slot] = number_id(&state->users, user_id);
	chunk->item[slot] = number_id(&state->items, item_id);
	chunk->rating[slot] = value;
	state->n_rows++;
}

/* mf_spi_scan callback. */
static void
accept_spi_row(HeapTuple tuple, TupleDesc desc, void *arg)
{
	bool		user_null,
				item_null,
				rating_null;
	Datum		user = SPI_getbinval(tuple, desc, 1, &user_null);
	Datum		item = SPI_getbinval(tuple, desc, 2, &item_null);
	Datum		rating = SPI_getbinval(tuple, desc, 3, &rating_null);

	accept_row(arg, user, user_null, item, item_null, rating, rating_null);
}

/*
 * True when a direct heap scan of the locked relation rel returns exactly
 * the rows the caller's SELECT would: a heap table or populated
 * materialized view without inheritance children or row-level security,
 * readable by the current user (schema usage, and SELECT on the table or
 * the three columns), and no security module hooked into permission checks.
 */
static bool
can_scan_directly(const MfSource *source, Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	Oid			user = GetUserId();
	AttrNumber	columns[3] = {source->user_attnum, source->item_attnum,
	source->rating_attnum};

	if (rel->rd_rel->relkind != RELKIND_RELATION &&
		rel->rd_rel->relkind != RELKIND_MATVIEW)
		return false;
	if (rel->rd_rel->relam != HEAP_TABLE_AM_OID || !RelationIsPopulated(rel))
		return false;
	if (ExecutorCheckPerms_hook != NULL)
		return false;
	if (has_subclass(relid))
		return false;
	if (check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
		return false;
	if (pg_namespace_aclcheck(RelationGetNamespace(rel), user, ACL_USAGE) != ACLCHECK_OK)
		return false;
	if (pg_class_aclcheck(relid, user, ACL_SELECT) == ACLCHECK_OK)
		return true;
	for (int c = 0; c < 3; c++)
		if (pg_attribute_aclcheck(relid, columns[c], user, ACL_SELECT) != ACLCHECK_OK)
			return false;
	return true;
}

/*
 * Reads the rows by a heap scan under the statement's snapshot, when
 * can_scan_directly allows it (checked with the relation locked, as a
 * SELECT would hold it).  Returns false, having read nothing, otherwise.
 */
static bool
read_by_scan(ReadState *state)
{
	const MfSource *source = state->source;
	Relation	rel = table_open(source->relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	attnums[3] = {source->user_attnum, source->item_attnum,
	source->rating_attnum};
	Oid			types[3];
	Snapshot	snapshot;
	TableScanDesc scan;
	HeapTuple	tuple;

	if (!can_scan_directly(source, rel))
	{
		table_close(rel, AccessShareLock);
		return false;
	}
	source_types(source, types);
	mf_check_column_types(desc, attnums, types, 3, mf_source_display_name(source->relid));
	snapshot = RegisterSnapshot(GetActiveSnapshot());
	/* no synchronized scan: rows in table order keep indexing cheap */
	scan = table_beginscan_strat(rel, snapshot, 0, NULL, true, false);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		user_null,
					item_null,
					rating_null;
		Datum		user = heap_getattr(tuple, source->user_attnum, desc, &user_null);
		Datum		item = heap_getattr(tuple, source->item_attnum, desc, &item_null);
		Datum		rating = heap_getattr(tuple, source->rating_attnum, desc, &rating_null);

		accept_row(state, user, user_null, item, item_null, rating, rating_null);
	}
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	return true;
}

static void
read_by_spi(ReadState *state)
{
	const MfSource *source = state->source;
	char	   *relation = mf_source_display_name(source->relid);
	Oid			types[3];

	source_types(source, types);
	mf_spi_scan(psprintf("SELECT %s, %s, %s FROM %s",
						 quote_identifier(source->user_col),
						 quote_identifier(source->item_col),
						 quote_identifier(source->rating_col),
						 relation),
				0, NULL, NULL, types, 3, relation, accept_spi_row, state);
}

/* Fails early when the planner's row estimate already exceeds the limit. */
static void
check_estimated_rows(const MfSource *source)
{
	char		relkind = get_rel_relkind(source->relid);
	HeapTuple	tuple;
	float4		reltuples;

	if (relkind != RELKIND_RELATION && relkind != RELKIND_MATVIEW)
		return;
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(source->relid));
	if (!HeapTupleIsValid(tuple))
		return;
	reltuples = ((Form_pg_class) GETSTRUCT(tuple))->reltuples;
	ReleaseSysCache(tuple);
	if (reltuples > 0)
		mf_check_memory((Size) reltuples * MF_BUILD_BYTES_PER_RATING,
					 psprintf("The ratings: about %.0f rows by the planner's estimate (ANALYZE the table if that is out of date), %d bytes each while they are indexed.",
							  reltuples, MF_BUILD_BYTES_PER_RATING));
}

/* An id with its index in order of first appearance. */
typedef struct NumberedId
{
	int64		id;
	int32		index;
} NumberedId;

static int
compare_numbered_ids(const void *a, const void *b)
{
	int64		x = ((const NumberedId *) a)->id;
	int64		y = ((const NumberedId *) b)->id;

	return (x > y) - (x < y);
}

/*
 * The ids in ascending order, into *sorted_ids, and the map from each
 * index in order of first appearance to the position in that order.
 */
static int32 *
sorted_numbering(IdNumbering *numbering, MemoryContext cxt, int64 **sorted_ids)
{
	int32		n = numbering->n;
	NumberedId *pairs = mf_alloc_array(cxt, n, sizeof(NumberedId));
	int64	   *ids = mf_alloc_array(cxt, n, sizeof(int64));
	int32	   *remap = mf_alloc_array(cxt, n, sizeof(int32));

	for (int32 a = 0; a < n; a++)
	{
		pairs[a].id = numbering->ids[a];
		pairs[a].index = a;
	}
	qsort(pairs, n, sizeof(NumberedId), compare_numbered_ids);
	for (int32 i = 0; i < n; i++)
	{
		ids[i] = pairs[i].id;
		remap[pairs[i].index] = i;
	}
	pfree(pairs);
	*sorted_ids = ids;
	return remap;
}

static void
csr_alloc(MfCsr *csr, MemoryContext cxt, int32 n_rows, int64 n)
{
	csr->n_rows = n_rows;
	csr->row_start = mf_alloc_array(cxt, (Size) n_rows + 1, sizeof(int64));
	csr->col = mf_alloc_array(cxt, n, sizeof(int32));
	csr->val = mf_alloc_array(cxt, n, sizeof(double));
	memset(csr->row_start, 0, sizeof(int64) * ((Size) n_rows + 1));
}

/* Turns per-row counts in row_start[r + 1] into offsets; returns cursors. */
static int64 *
csr_offsets(MfCsr *csr, MemoryContext cxt)
{
	int64	   *next = mf_alloc_array(cxt, csr->n_rows, sizeof(int64));

	for (int32 r = 0; r < csr->n_rows; r++)
		csr->row_start[r + 1] += csr->row_start[r];
	memcpy(next, csr->row_start, sizeof(int64) * csr->n_rows);
	return next;
}

static void
csr_free(MfCsr *csr)
{
	pfree(csr->row_start);
	pfree(csr->col);
	pfree(csr->val);
}

/*
 * Builds one side's rows (users when by_user, else items) from the chunks
 * by counting sort, entries in reading order.  row_remap and col_remap map
 * indices in order of first appearance to the final dense indices.
 */
static void
csr_from_chunks(const ReadState *state, bool by_user, const int32 *row_remap,
				const int32 *col_remap, MfCsr *out, MemoryContext cxt)
{
	const IdNumbering *rows = by_user ? &state->users : &state->items;
	int64		n = state->n_rows;
	int64	   *next;

	csr_alloc(out, cxt, rows->n, n);
	for (int32 a = 0; a < rows->n; a++)
		out->row_start[row_remap[a] + 1] = rows->counts[a];
	next = csr_offsets(out, cxt);
	for (int32 c = 0; c < state->n_chunks; c++)
	{
		const RowChunk *chunk = state->chunks[c];
		const int32 *row_of = by_user ? chunk->user : chunk->item;
		const int32 *col_of = by_user ? chunk->item : chunk->user;
		int32		count = (int32) Min(MF_CHUNK_ROWS, n - (int64) c * MF_CHUNK_ROWS);

		for (int32 r = 0; r < count; r++)
		{
			int64		slot = next[row_remap[row_of[r]]]++;

			out->col[slot] = col_remap[col_of[r]];
			out->val[slot] = chunk->rating[r];
		}
		CHECK_FOR_INTERRUPTS();
	}
	pfree(next);
}

/*
 * out = the transpose of in (n_cols columns), by counting sort: each row of
 * out lists its entries in the order of in's rows, i.e. sorted by column.
 * Returns whether any row of out holds a column twice (a duplicate pair).
 */
static bool
csr_transpose(const MfCsr *in, int32 n_cols, MfCsr *out, MemoryContext cxt)
{
	bool		duplicates = false;
	int64		n = in->row_start[in->n_rows];
	int64	   *next;

	csr_alloc(out, cxt, n_cols, n);
	for (int64 e = 0; e < n; e++)
		out->row_start[in->col[e] + 1]++;
	next = csr_offsets(out, cxt);
	for (int32 r = 0; r < in->n_rows; r++)
	{
		for (int64 e = in->row_start[r]; e < in->row_start[r + 1]; e++)
		{
			int32		c = in->col[e];
			int64		slot = next[c]++;

			duplicates |= slot > out->row_start[c] && out->col[slot - 1] == r;
			out->col[slot] = r;
			out->val[slot] = in->val[e];
		}
		if ((r & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	pfree(next);
	return duplicates;
}

/* True when every row lists its columns in non-decreasing order. */
static bool
csr_rows_sorted(const MfCsr *csr)
{
	for (int32 r = 0; r < csr->n_rows; r++)
		for (int64 e = csr->row_start[r] + 1; e < csr->row_start[r + 1]; e++)
			if (csr->col[e - 1] > csr->col[e])
				return false;
	return true;
}

/* True when some row (sorted by column) holds a column twice. */
static bool
csr_has_duplicates(const MfCsr *csr)
{
	for (int32 r = 0; r < csr->n_rows; r++)
		for (int64 e = csr->row_start[r] + 1; e < csr->row_start[r + 1]; e++)
			if (csr->col[e - 1] == csr->col[e])
				return true;
	return false;
}

static int
compare_doubles(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/*
 * Within each row (already sorted by column), orders the values of
 * duplicate entries (same column: the same pair rated twice) ascending, so
 * that not even their order depends on the scan.  Each run of one column
 * is sorted by qsort: a pair may be repeated millions of times.
 */
static void
csr_sort_duplicates(MfCsr *csr)
{
	for (int32 r = 0; r < csr->n_rows; r++)
	{
		int64		e = csr->row_start[r];

		while (e < csr->row_start[r + 1])
		{
			int64		run = e + 1;

			while (run < csr->row_start[r + 1] && csr->col[run] == csr->col[e])
				run++;
			if (run - e > 1)
				qsort(csr->val + e, run - e, sizeof(double), compare_doubles);
			e = run;
		}
		if ((r & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Sums the values of each row's duplicate entries (sorted by column, their
 * values ascending: the same order on both sides, so both sums are the
 * same double) into one entry; returns how many entries are left.
 */
static int64
csr_sum_duplicates(MfCsr *csr)
{
	int64		kept = 0;
	int64		begin = 0;

	for (int32 r = 0; r < csr->n_rows; r++)
	{
		int64		end = csr->row_start[r + 1];

		for (int64 e = begin; e < end;)
		{
			int64		run = e;
			double		sum = 0.0;
			double		magnitude = 0.0;

			for (; run < end && csr->col[run] == csr->col[e]; run++)
			{
				sum += csr->val[run];
				magnitude += fabs(csr->val[run]);
			}
			csr->col[kept] = csr->col[e];
			csr->val[kept] = mf_exact_sum(sum, magnitude, run - e);
			kept++;
			e = run;
		}
		begin = end;
		csr->row_start[r + 1] = kept;
		if ((r & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	return kept;
}

void
mf_ratings_sum_duplicates(MfRatings *ratings)
{
	ratings->n_ratings = csr_sum_duplicates(&ratings->by_user);
	if (ratings->by_item.row_start != NULL)
		csr_sum_duplicates(&ratings->by_item);
}

void
mf_ratings_free_by_item(MfRatings *ratings)
{
	csr_free(&ratings->by_item);
	memset(&ratings->by_item, 0, sizeof(MfCsr));
}

int64
mf_csr_longest_row(const MfCsr *rows)
{
	int64		longest = 0;

	for (int32 r = 0; r < rows->n_rows; r++)
		longest = Max(longest, rows->row_start[r + 1] - rows->row_start[r]);
	return longest;
}

/*
 * Reads the source into a new MfRatings allocated in cxt.  Both CSRs are
 * sorted within each row by the other side's index, so the model does not
 * depend on the order in which the rows were read.
 */
MfRatings *
mf_ratings_read(const MfSource *source, MemoryContext cxt)
{
	MfRatings  *ratings = MemoryContextAllocZero(cxt, sizeof(MfRatings));
	MemoryContext scratch = AllocSetContextCreate(cxt, "mf_ext ratings scratch",
												  ALLOCSET_DEFAULT_SIZES);
	ReadState	state = {0};
	int32	   *user_remap;
	int32	   *item_remap;
	MfCsr		by_item_unsorted;
	bool		duplicates;
	int64		n;
	instr_time	started;
	instr_time	elapsed;

	INSTR_TIME_SET_CURRENT(started);
	check_estimated_rows(source);

	state.source = source;
	state.cxt = scratch;
	state.convert_cxt = AllocSetContextCreate(scratch, "mf_ext numeric conversion",
											  ALLOCSET_SMALL_SIZES);
	state.sorted = !source->user_keys && !source->item_keys;
	state.user_keys = source->user_keys ? key_side_create(scratch) : NULL;
	state.item_keys = source->item_keys ? key_side_create(scratch) : NULL;
	state.key_cxt = AllocSetContextCreate(scratch, "mf_ext id text forms",
										  ALLOCSET_SMALL_SIZES);
	numbering_init(&state.users, scratch, "users");
	numbering_init(&state.items, scratch, "items");
	state.chunk_capacity = 64;
	state.chunks = MemoryContextAlloc(scratch, sizeof(RowChunk *) * state.chunk_capacity);
	if (read_by_scan(&state))
		elog(DEBUG1, "mf_train read %s by a heap scan", mf_source_display_name(source->relid));
	else
	{
		read_by_spi(&state);
		elog(DEBUG1, "mf_train read %s through SPI", mf_source_display_name(source->relid));
	}

	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, started);
	elog(DEBUG2, "mf_train read " INT64_FORMAT " rows in %.3f s",
		 state.n_rows, INSTR_TIME_GET_DOUBLE(elapsed));
	n = ratings->n_ratings = state.n_rows;
	ratings->n_skipped = state.n_skipped;
	if (n == 0)
	{
		MemoryContextDelete(scratch);
		return ratings;
	}
	mf_check_memory(add_size(add_size(mul_size(n, MF_BUILD_BYTES_PER_RATING),
									  mul_size(state.users.capacity + state.items.capacity,
											   MF_BYTES_PER_ID)),
							 state.key_bytes),
				 psprintf("Indexing " INT64_FORMAT " ratings of %d users and %d items takes %d bytes a rating.",
						  n, state.users.n, state.items.n, MF_BUILD_BYTES_PER_RATING));

	ratings->n_users = state.users.n;
	ratings->n_items = state.items.n;
	if (state.user_keys)
		ratings->user_keys = sort_keys(state.user_keys, &state.users, cxt);
	if (state.item_keys)
		ratings->item_keys = sort_keys(state.item_keys, &state.items, cxt);
	user_remap = sorted_numbering(&state.users, cxt, &ratings->user_ids);
	item_remap = sorted_numbering(&state.items, cxt, &ratings->item_ids);

	if (state.sorted)
	{
		/*
		 * Rows read in (user, item) order, as tables often are: the rows of
		 * each side come out of the chunks sorted by the other side's id.
		 */
		csr_from_chunks(&state, true, user_remap, item_remap, &ratings->by_user, cxt);
		csr_from_chunks(&state, false, item_remap, user_remap, &ratings->by_item, cxt);
		MemoryContextDelete(scratch);	/* the chunks and id maps */
		duplicates = csr_has_duplicates(&ratings->by_user);
	}
	else
	{
		/*
		 * Otherwise three counting sorts: by item in reading order, then by
		 * user (sorted by item within each user), then by item again
		 * (sorted by user) unless the first already was.
		 */
		csr_from_chunks(&state, false, item_remap, user_remap, &by_item_unsorted, cxt);
		MemoryContextDelete(scratch);
		csr_transpose(&by_item_unsorted, ratings->n_users, &ratings->by_user, cxt);
		if (csr_rows_sorted(&by_item_unsorted))
		{
			ratings->by_item = by_item_unsorted;
			duplicates = csr_has_duplicates(&ratings->by_item);
		}
		else
		{
			csr_free(&by_item_unsorted);
			duplicates = csr_transpose(&ratings->by_user, ratings->n_items,
									   &ratings->by_item, cxt);
		}
	}
	pfree(user_remap);
	pfree(item_remap);
	if (duplicates)
	{
		csr_sort_duplicates(&ratings->by_user);
		csr_sort_duplicates(&ratings->by_item);
	}
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, started);
	elog(DEBUG2, "mf_train read and indexed " INT64_FORMAT " ratings in %.3f s",
		 n, INSTR_TIME_GET_DOUBLE(elapsed));
	return ratings;
}

/*
 * One side's ids (and text keys) of the subset: the kept ids, or for text
 * keys their positions among the kept keys, in byte order, as reading a
 * relation of just the subset's ratings numbers them.
 */
static void
subset_side(const MfRatings *all, bool users, const int32 *remap, MfRatings *subset,
			MemoryContext cxt)
{
	int32		n_all = users ? all->n_users : all->n_items;
	int32		n = users ? subset->n_users : subset->n_items;
	const int64 *all_ids = users ? all->user_ids : all->item_ids;
	char	  **all_keys = users ? all->user_keys : all->item_keys;
	int64	   *ids = mf_alloc_array(cxt, n, sizeof(int64));
	char	  **keys = all_keys ? mf_alloc_array(cxt, n, sizeof(char *)) : NULL;

	for (int32 r = 0; r < n_all; r++)
	{
		if (remap[r] < 0)
			continue;
		ids[remap[r]] = all_keys ? remap[r] : all_ids[r];
		if (keys)
			keys[remap[r]] = all_keys[r];
	}
	if (users)
	{
		subset->user_ids = ids;
		subset->user_keys = keys;
	}
	else
	{
		subset->item_ids = ids;
		subset->item_keys = keys;
	}
}

/*
 * The ratings of all whose entry e in all->by_user has keep[e], as a new
 * MfRatings in cxt: users and items without a kept rating are left out and
 * the rest renumbered densely in the same (ascending id) order.
 * user_remap[] and item_remap[] (all's sizes) receive each old index's new
 * one, or -1.  Used to split ratings into training and test folds.
 */
MfRatings *
mf_ratings_subset(const MfRatings *all, const bool *keep, int32 *user_remap,
				  int32 *item_remap, MemoryContext cxt)
{
	MfRatings  *subset = MemoryContextAllocZero(cxt, sizeof(MfRatings));
	const MfCsr *in = &all->by_user;
	MfCsr	   *out = &subset->by_user;
	int64		n = 0;
	int64		next = 0;

	for (int32 i = 0; i < all->n_items; i++)
		item_remap[i] = -1;
	for (int32 u = 0; u < all->n_users; u++)
	{
		int64		kept = 0;

		for (int64 e = in->row_start[u]; e < in->row_start[u + 1]; e++)
			if (keep[e])
			{
				kept++;
				item_remap[in->col[e]] = 0;
			}
		user_remap[u] = kept > 0 ? subset->n_users++ : -1;
		n += kept;
	}
	for (int32 i = 0; i < all->n_items; i++)
		if (item_remap[i] == 0)
			item_remap[i] = subset->n_items++;
	subset->n_ratings = n;

	subset_side(all, true, user_remap, subset, cxt);
	subset_side(all, false, item_remap, subset, cxt);

	csr_alloc(out, cxt, subset->n_users, n);
	for (int32 u = 0; u < all->n_users; u++)
	{
		if (user_remap[u] < 0)
			continue;
		for (int64 e = in->row_start[u]; e < in->row_start[u + 1]; e++)
			if (keep[e])
			{
				out->col[next] = item_remap[in->col[e]];
				out->val[next] = in->val[e];
				next++;
			}
		out->row_start[user_remap[u] + 1] = next;
		if ((u & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	csr_transpose(out, subset->n_items, &subset->by_item, cxt);
	return subset;
}

/* The id of dense user (item) index as text: its key, or the integer. */
char *
mf_ratings_id_text(const MfRatings *ratings, bool users, int32 index)
{
	char	  **keys = users ? ratings->user_keys : ratings->item_keys;

	if (keys)
		return pstrdup(keys[index]);
	return psprintf(INT64_FORMAT, users ? ratings->user_ids[index] : ratings->item_ids[index]);
}
