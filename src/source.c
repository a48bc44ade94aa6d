/*-------------------------------------------------------------------------
 *
 * source.c
 *	  Reading a relation of ratings as the calling user (source.h).
 *
 *	  A plain table or materialized view that the caller may read in full
 *	  (SELECT on the table or on the three columns, no row-level security,
 *	  no inheritance children) is read by a direct heap scan; anything else
 *	  (views, partitioned and foreign tables, RLS) through an SPI cursor,
 *	  which applies every rule a SELECT would.  Ids of types other than
 *	  integers are read by their text form and numbered as keys.
 *
 *-------------------------------------------------------------------------
 */
#include "source.h"
#include "progress.h"
#include "query.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

/* Rows between resets of the numeric conversions' context. */
#define MF_CONVERT_ROWS	65536

/* A read in progress. */
typedef struct ReadState
{
	const MfSource *source;
	MfRows	   *rows;
	int64		n_skipped;
	int64		converted;		/* rows since convert_cxt was reset */
	MemoryContext convert_cxt;	/* numeric conversions */
	MemoryContext key_cxt;		/* text forms of one row's ids, reset per row */
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

/*
 * The number of the text form of an id value (of type type, with output
 * function output) among the side's keys.  The text form is the one a
 * cast to text gives, which is how callers pass keys: for character(n),
 * without the trailing blanks its output pads with.  Called with the key
 * context current.
 */
static int64
key_number(ReadState *state, MfSide side, Oid type, Oid output, Datum value)
{
	char	   *text = OidOutputFunctionCall(output, value);

	if (type == BPCHAROID)
	{
		size_t		length = strlen(text);

		while (length > 0 && text[length - 1] == ' ')
			text[--length] = '\0';
	}
	return mf_rows_key(state->rows, side, text);
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

	if (user_null || item_null || rating_null)
	{
		state->n_skipped++;
		return;
	}
	if (source->user_keys || source->item_keys)
	{
		/* text forms (and any detoasted copies) live for this row only */
		MemoryContext old = MemoryContextSwitchTo(state->key_cxt);

		user_id = source->user_keys
			? key_number(state, MF_USERS, source->user_type, source->user_output, user)
			: id_value(user, source->user_type);
		item_id = source->item_keys
			? key_number(state, MF_ITEMS, source->item_type, source->item_output, item)
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
		if (++state->converted == MF_CONVERT_ROWS)
		{
			MemoryContextReset(state->convert_cxt);
			state->converted = 0;
		}
	}
	else
		value = rating_value(rating, source->rating_type);
	if (!isfinite(value))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("rating of user %s for item %s in %s is %s",
						source->user_keys ? OidOutputFunctionCall(source->user_output, user)
						: psprintf(INT64_FORMAT, user_id),
						source->item_keys ? OidOutputFunctionCall(source->item_output, item)
						: psprintf(INT64_FORMAT, item_id),
						mf_source_display_name(source->relid),
						isnan(value) ? "NaN" : "infinite or beyond the range of double precision"),
				 errhint("Fix or delete that row, or pass a view that leaves out such ratings: WHERE abs(%s) < 1e300.",
						 quote_identifier(source->rating_col))));
	mf_rows_add(state->rows, user_id, item_id, value);
}

/* mf_spi_scan callback. */
static void
accept_spi_row(TupleTableSlot *slot, void *arg)
{
	accept_row(arg, slot->tts_values[0], slot->tts_isnull[0], slot->tts_values[1],
			   slot->tts_isnull[1], slot->tts_values[2], slot->tts_isnull[2]);
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
	mf_rows_check_estimate(reltuples);
}

MfRatings *
mf_source_read(const MfSource *source, MemoryContext cxt)
{
	MemoryContext scratch = AllocSetContextCreate(cxt, "mf_ext source read",
												  ALLOCSET_SMALL_SIZES);
	ReadState	state = {0};
	MfRatings  *ratings;

	check_estimated_rows(source);
	state.source = source;
	state.rows = mf_rows_create(cxt, source->user_keys, source->item_keys);
	state.convert_cxt = AllocSetContextCreate(scratch, "mf_ext numeric conversion",
											  ALLOCSET_SMALL_SIZES);
	state.key_cxt = AllocSetContextCreate(scratch, "mf_ext id text forms",
										  ALLOCSET_SMALL_SIZES);
	if (read_by_scan(&state))
		elog(DEBUG1, "mf_ext read %s by a heap scan", mf_source_display_name(source->relid));
	else
	{
		read_by_spi(&state);
		elog(DEBUG1, "mf_ext read %s through SPI", mf_source_display_name(source->relid));
	}
	MemoryContextDelete(scratch);
	mf_progress_phase("indexing");
	ratings = mf_ratings_from_rows(state.rows, state.n_skipped, cxt);
	return ratings;
}
