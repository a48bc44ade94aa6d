/*-------------------------------------------------------------------------
 *
 * source.c
 *	  Reading a relation of ratings as the calling user (source.h).
 *
 *	  A plain table or materialized view that the caller may read in full
 *	  (SELECT on the table or on the three columns, no row-level security,
 *	  no inheritance children, not a Citus table) is read by a direct heap
 *	  scan; anything else (views, partitioned, foreign and Citus tables,
 *	  RLS) through an SPI cursor,
 *	  which applies every rule a SELECT would; so is a read of only some
 *	  ids' rows, with the filter in its query for an index to serve.  Ids
 *	  of types other than integers are read by their text form and
 *	  numbered as keys.  What a read goes through is locked, as planning
 *	  its query locks it, before the snapshot the call reads with is taken,
 *	  as a statement's is (mf_source_lock_read,
 *	  mf_source_push_read_snapshot).
 *
 *-------------------------------------------------------------------------
 */
#include "source.h"
#include "progress.h"
#include "query.h"

#include <ctype.h>

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "storage/sinval.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

/* Rows between resets of the numeric conversions' context. */
#define MF_CONVERT_ROWS	65536

/* Rows read between two reports of progress (a report at most once a second). */
#define MF_PROGRESS_ROWS	4096

/* A read in progress. */
typedef struct ReadState
{
	const MfSource *source;
	MfRows	   *rows;
	int64		n_skipped;
	int64		n_read;			/* rows read, skipped ones too */
	double		expected;		/* the planner's estimate of the rows, or 0 */
	int64		converted;		/* rows since convert_cxt was reset */
	MemoryContext convert_cxt;	/* numeric conversions */
	MemoryContext key_cxt;		/* text forms of one row's ids, reset per row */
} ReadState;

/*
 * A comma-separated list of the columns of desc, for error hints: those of
 * one of the n_accepted types accepted (all when n_accepted is 0) but the
 * two named taken (NULL: none), or "" when none is.
 */
static char *
relation_column_list(TupleDesc desc, const Oid *accepted, int n_accepted,
					 const char *const *taken)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int att = 0; att < desc->natts; att++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, att);
		bool		fits = n_accepted == 0;

		if (attr->attisdropped)
			continue;			/* its type is gone: atttypid 0 */
		for (int i = 0; i < n_accepted && !fits; i++)
			fits = getBaseType(attr->atttypid) == accepted[i];
		for (int t = 0; t < 2 && taken != NULL && fits; t++)
			fits = strcmp(NameStr(attr->attname), taken[t]) != 0;
		if (!fits)
			continue;
		appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "",
						 quote_literal_cstr(NameStr(attr->attname)));
	}
	return buf.data;
}

/* The number of desc's column named name, InvalidAttrNumber where it has none. */
static AttrNumber
column_attnum(TupleDesc desc, const char *name)
{
	for (int att = 0; att < desc->natts; att++)
		if (!TupleDescAttr(desc, att)->attisdropped &&
			strcmp(NameStr(TupleDescAttr(desc, att)->attname), name) == 0)
			return att + 1;
	return InvalidAttrNumber;
}

/*
 * Refuses (42703) a relation of three columns or more that lacks the
 * columns two or three of the source's arguments name, in one error
 * naming every such argument (a name two of them give, once): a table of
 * other column names had taken a call per column to learn them.  One
 * argument's, or a relation of fewer columns, is check_column's error,
 * whose hint knows the columns' types.
 */
static void
check_columns_exist(const MfSource *source, Relation rel)
{
	const char *columns[] = {source->user_col, source->item_col, source->rating_col};
	const char *arguments[] = {"user_col", "item_col", "rating_col"};
	TupleDesc	desc = RelationGetDescr(rel);
	int			missing[lengthof(columns)];
	const char *distinct[lengthof(columns)];
	int			n_missing = 0;
	int			n_names = 0;
	int			n_columns = 0;
	StringInfoData names;
	StringInfoData argnames;

	for (int att = 0; att < desc->natts; att++)
		n_columns += !TupleDescAttr(desc, att)->attisdropped;
	for (int c = 0; c < lengthof(columns); c++)
		if (column_attnum(desc, columns[c]) == InvalidAttrNumber)
			missing[n_missing++] = c;

	/*
	 * One missing column, or a relation of too few columns to name, is
	 * check_column's error, whose hint knows the columns' types.
	 */
	if (n_missing < 2 || n_columns < lengthof(columns))
		return;
	/* a name two arguments give is named once; both arguments are */
	for (int m = 0; m < n_missing; m++)
	{
		bool		named_before = false;

		for (int n = 0; n < n_names && !named_before; n++)
			named_before = strcmp(distinct[n], columns[missing[m]]) == 0;
		if (!named_before)
			distinct[n_names++] = columns[missing[m]];
	}
	initStringInfo(&names);
	initStringInfo(&argnames);
	for (int n = 0; n < n_names; n++)
		appendStringInfo(&names, "%s\"%s\"", n == 0 ? "" : n == n_names - 1 ? " and " : ", ",
						 distinct[n]);
	for (int m = 0; m < n_missing; m++)
		appendStringInfo(&argnames, "%s%s", m == 0 ? "" : m == n_missing - 1 ? " and " : ", ",
						 arguments[missing[m]]);
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 n_names > 1
			 ? errmsg("columns %s do not exist in relation %s",
					  names.data, mf_source_display_name(RelationGetRelid(rel)))
			 : errmsg("column %s does not exist in relation %s",
					  names.data, mf_source_display_name(RelationGetRelid(rel))),
			 errdetail("The user ids, item ids and ratings are read from the columns named by user_col, item_col and rating_col."),
			 source->fixed_columns
			 ? errhint("The %s must have the training data's columns %s; rename its columns (%s) in a view.",
					   source->argname, names.data, relation_column_list(desc, NULL, 0, NULL))
			 : errhint("Name its columns with %s: it has %s.",
					   argnames.data, relation_column_list(desc, NULL, 0, NULL))));
}

/*
 * Finds column colname of the locked relation rel and checks that it has
 * one of the accepted types (any when n_accepted is 0); sets *attnum and
 * returns that (base) type.  The hints of its errors list the columns of
 * the accepted types but the two the other arguments name (taken), the
 * ones the argument may name.
 */
static Oid
check_column(const MfSource *source, Relation rel, const char *role,
			 const char *argname, const char *colname, const char *const *taken,
			 const Oid *accepted, int n_accepted, const char *accepted_text,
			 AttrNumber *attnum)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Oid			relid = RelationGetRelid(rel);
	char	   *fitting = relation_column_list(desc, accepted, n_accepted, taken);
	char	   *all = relation_column_list(desc, NULL, 0, NULL);
	Oid			type;

	*attnum = column_attnum(desc, colname);
	if (*attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" does not exist in relation %s",
						colname, mf_source_display_name(relid)),
				 errdetail("The %s are read from the column named by %s.",
						   role, argname),
				 source->fixed_columns
				 ? errhint("The %s must have the training data's column \"%s\"; rename one of its columns (%s) in a view.",
						   source->argname, colname, all)
				 : fitting[0] != '\0'
				 ? errhint("Pass %s := one of: %s.", argname, fitting)
				 : errhint("No column of %s%s%s%s left for %s is %s: pass a view that casts one, and name that column with %s.",
						   mf_source_display_name(relid), all[0] ? " (" : "", all, all[0] ? ")" : "",
						   argname, accepted_text, argname)));

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
			 fitting[0] != '\0' && !source->fixed_columns
			 ? errhint("Pass a view that casts the column, or name another column with %s: one of %s.",
					   argname, fitting)
			 : errhint("Pass a view that casts the column.")));
	return InvalidOid;			/* not reached */
}

/* The types an id column may have: integers are read as they are, the rest by their text form. */
static const Oid id_types[] = {INT2OID, INT4OID, INT8OID,
TEXTOID, VARCHAROID, BPCHAROID, NAMEOID, UUIDOID};

#define ID_TYPES_TEXT	"an integer (smallint, integer, bigint) or text (text, varchar, char, name) or uuid"

bool
mf_is_integer_id_type(Oid type)
{
	return type == INT2OID || type == INT4OID || type == INT8OID;
}

void
mf_report_missing_relation(Oid relid, const char *argname)
{
	const char *as = argname ? psprintf(" as %s", argname) : "";

	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_TABLE),
			 errmsg("relation with OID %u does not exist", relid),
			 errdetail("The relation passed%s was dropped after the call named it (while the call waited for a lock, such as another session's training or refit of the same model), or its OID was given as a number.",
					   as),
			 errhint("Pass an existing table or view%s, by name.", as)));
}

char *
mf_source_display_name(Oid relid)
{
	return mf_argument_display_name(relid, NULL);
}

const char *
mf_no_ratings_hint(const MfRatings *ratings, const char *hint)
{
	return ratings->row_security
		? psprintf("%s (Row-level security on what it reads may leave this role none of its rows.)", hint)
		: hint;
}

char *
mf_argument_display_name(Oid relid, const char *argname)
{
	char	   *relname = get_rel_name(relid);

	if (relname == NULL)
		mf_report_missing_relation(relid, argname);
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  relname);
}

/*
 * The position in columns[0 .. n) of the first column role may not SELECT
 * from relation relid (neither on the relation nor on the column), or -1.
 */
static int
unreadable_column(Oid relid, Oid role, const AttrNumber *columns, int n)
{
	if (pg_class_aclcheck(relid, role, ACL_SELECT) == ACLCHECK_OK)
		return -1;
	for (int c = 0; c < n; c++)
		if (pg_attribute_aclcheck(relid, columns[c], role, ACL_SELECT) != ACLCHECK_OK)
			return c;
	return -1;
}

/*
 * 42501 unless the current role may read the relation rel: USAGE on its
 * schema and SELECT on it, or (columns given, n of them) on each of
 * those; with no columns, SELECT on any of its columns will do (the
 * columns are checked once found).  A read without it would fail inside
 * the internal SELECT, naming neither the grant nor the argument.
 */
static void
check_read_privilege(const MfSource *source, Relation rel, const AttrNumber *columns, int n)
{
	Oid			relid = RelationGetRelid(rel);
	Oid			role = GetUserId();
	char	   *name = mf_source_display_name(relid);

	if (pg_namespace_aclcheck(RelationGetNamespace(rel), role, ACL_USAGE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for schema %s",
						quote_identifier(get_namespace_name(RelationGetNamespace(rel)))),
				 errdetail("The ratings are read from %s, the %s argument, as role \"%s\".",
						   name, source->argname, GetUserNameFromId(role, false)),
				 errhint("Ask for USAGE on the schema, or pass a relation this role may read.")));
	if (n > 0)
	{
		int			c = unreadable_column(relid, role, columns, n);

		if (c < 0)
			return;
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for column %s of relation %s",
						quote_identifier(get_attname(relid, columns[c], false)), name),
				 errdetail("The ratings are read from columns %s, %s and %s of %s, the %s argument, as role \"%s\".",
						   quote_identifier(source->user_col), quote_identifier(source->item_col),
						   quote_identifier(source->rating_col), name, source->argname,
						   GetUserNameFromId(role, false)),
				 errhint("Ask for SELECT on %s or on those columns: GRANT SELECT (%s, %s, %s) ON %s TO %s.",
						 name, quote_identifier(source->user_col), quote_identifier(source->item_col),
						 quote_identifier(source->rating_col), name,
						 quote_identifier(GetUserNameFromId(role, false)))));
	}
	if (pg_class_aclcheck(relid, role, ACL_SELECT) != ACLCHECK_OK &&
		pg_attribute_aclcheck_all(relid, role, ACL_SELECT, ACLMASK_ANY) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for %s %s",
						rel->rd_rel->relkind == RELKIND_VIEW ? "view" : "table", name),
				 errdetail("The ratings are read from %s, the %s argument, as role \"%s\".",
						   name, source->argname, GetUserNameFromId(role, false)),
				 errhint("Ask for SELECT on it (GRANT SELECT ON %s TO %s), or pass a relation this role may read (a member of a role that may read it but does not inherit its privileges, NOINHERIT, must SET ROLE to it first).",
						 name, quote_identifier(GetUserNameFromId(role, false)))));
}

void
mf_source_validate(MfSource *source)
{
	static const Oid rating_types[] = {INT2OID, INT4OID, INT8OID,
	FLOAT4OID, FLOAT8OID, NUMERICOID};
	Relation	rel = try_relation_open(source->relid, AccessShareLock);
	bool		varlena;

	source->only = NULL;		/* every row, unless mf_source_only says otherwise */
	source->read_plan = NULL;
	if (rel == NULL)
		mf_report_missing_relation(source->relid, source->argname);
	/* as a lock's first taking does: a REVOKE (which takes no lock) committed meanwhile counts */
	AcceptInvalidationMessages();
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

	check_read_privilege(source, rel, NULL, 0);
	check_columns_exist(source, rel);
	source->user_type = check_column(source, rel, "user ids", "user_col", source->user_col,
									 (const char *[]) {source->item_col, source->rating_col},
									 id_types, lengthof(id_types),
									 ID_TYPES_TEXT, &source->user_attnum);
	source->item_type = check_column(source, rel, "item ids", "item_col", source->item_col,
									 (const char *[]) {source->user_col, source->rating_col},
									 id_types, lengthof(id_types),
									 ID_TYPES_TEXT, &source->item_attnum);
	/* integer ids are read as they are; any other type by its text form */
	source->user_keys = !mf_is_integer_id_type(source->user_type);
	source->item_keys = !mf_is_integer_id_type(source->item_type);
	if (source->user_keys)
		getTypeOutputInfo(source->user_type, &source->user_output, &varlena);
	if (source->item_keys)
		getTypeOutputInfo(source->item_type, &source->item_output, &varlena);
	source->rating_type = check_column(source, rel, "ratings", "rating_col", source->rating_col,
									   (const char *[]) {source->user_col, source->item_col},
									   rating_types,
									   lengthof(rating_types),
									   "a numeric type (smallint, integer, bigint, real, double precision or numeric)",
									   &source->rating_attnum);
	if (strcmp(source->user_col, source->item_col) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("user_col and item_col both name column \"%s\"",
						source->user_col),
				 errhint("Name the column of user ids with user_col and the column of item ids with item_col.")));
	if (strcmp(source->rating_col, source->user_col) == 0 ||
		strcmp(source->rating_col, source->item_col) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rating_col and %s both name column \"%s\"",
						strcmp(source->rating_col, source->user_col) == 0 ? "user_col" : "item_col",
						source->rating_col),
				 errdetail("The ratings would be the ids themselves."),
				 errhint("Name the column of ratings (or, with implicit feedback, of counts) with rating_col.")));
	check_read_privilege(source, rel,
						 (AttrNumber[]) {source->user_attnum, source->item_attnum, source->rating_attnum}, 3);
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
 * The text form of an id value (of type type, with output function
 * output) as a key: the one a cast to text gives, which is how callers
 * pass keys; for character(n), without the trailing blanks its output pads
 * with.
 */
char *
mf_id_key_text(Oid type, Oid output, Datum value)
{
	char	   *text = OidOutputFunctionCall(output, value);

	return type == BPCHAROID ? mf_key_without_blanks(text) : text;
}

char *
mf_key_without_blanks(char *key)
{
	size_t		length = strlen(key);

	while (length > 0 && key[length - 1] == ' ')
		key[--length] = '\0';
	return key;
}

MfKeyForm
mf_key_form(Oid key_type)
{
	if (!OidIsValid(key_type))
		return MF_KEY_TEXT;
	switch (getBaseType(key_type))
	{
		case UUIDOID:
			return MF_KEY_UUID;
		case BPCHAROID:
			return MF_KEY_CHARACTER;
		case NAMEOID:
			return MF_KEY_NAME;
		default:
			return MF_KEY_TEXT;
	}
}

char *
mf_uuid_key(const char *text, bool missing_ok)
{
	const char *p = text;
	int			digits = 0;
	bool		braces = *p == '{';

	if (missing_ok)
	{
		/* uuid_in's syntax checked first, so that it cannot raise an error */
		if (braces)
			p++;
		for (; *p != '\0' && *p != '}'; p++)
		{
			if (isxdigit((unsigned char) *p) && digits < 32)
				digits++;
			else if (!(*p == '-' && digits > 0 && digits < 32 && digits % 4 == 0 && p[-1] != '-'))
				return NULL;
		}
		if (digits != 32 || braces != (*p == '}') || (*p == '}' && p[1] != '\0'))
			return NULL;
	}
	return DatumGetCString(DirectFunctionCall1(uuid_out,
											   DirectFunctionCall1(uuid_in, CStringGetDatum(text))));
}

/*
 * The error for key, read from a column of type type (a base type) of
 * source for a side whose keys are of form form, which that form cannot
 * take: 22P02 for text that is no uuid, 22001 for text longer than a name.
 * Named, cut at 100 bytes, with the column's declared type.
 */
static void report_key_not_of_form(const MfSource *source, MfSide side, Oid type,
								   const char *key, MfKeyForm form) pg_attribute_noreturn();

static void
report_key_not_of_form(const MfSource *source, MfSide side, Oid type, const char *key,
					   MfKeyForm form)
{
	const char *name = mf_side_name(side);
	const char *column = quote_identifier(side == MF_USERS ? source->user_col : source->item_col);
	Oid			declared = get_atttype(source->relid, side == MF_USERS ? source->user_attnum
									   : source->item_attnum);
	char	   *declared_name = format_type_be(OidIsValid(declared) ? declared : type);
	size_t		length = strlen(key);
	bool		uuid = form == MF_KEY_UUID;

	ereport(ERROR,
			(errcode(uuid ? ERRCODE_INVALID_TEXT_REPRESENTATION : ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
			 errmsg("%s id %s in %s is %s", name, mf_text_for_message(key),
					mf_source_display_name(source->relid),
					uuid ? "not a uuid" : "longer than a name"),
			 uuid
			 ? errdetail("The model was trained on uuid %s ids: those of column %s, of type %s, are read as uuids.",
						 name, column, declared_name)
			 : errdetail("The model was trained on %s ids of type name, which hold at most %d bytes; this one, in column %s of type %s, has %zu.",
						 name, NAMEDATALEN - 1, column, declared_name, length),
			 uuid
			 ? errhint("Fix or delete that row, or pass a view that leaves out the %ss that are not uuids.",
					   name)
			 : errhint("Fix or delete that row, or pass a view that leaves out the %ss longer than %d bytes (a cast to name would cut them into another %s's id).",
					   name, NAMEDATALEN - 1, name)));
}

/*
 * The number of the text form of an id value among the side's keys.
 * Called with the key context current.
 */
/*
 * key, the text form of an id of base type type (mf_id_key_text), as a
 * side whose keys are of form form keeps it.  A side keeps its keys in the
 * form of the type it was trained from; read from a column of another
 * type (text), an id takes that form, so that it names the key a cast to
 * the trained type would: a uuid in any form a uuid cast reads, written
 * canonically; character(n) without trailing blanks, as it compares; a
 * name as it is.  NULL when the form cannot take it: text that is no
 * uuid, or longer than a name (which a cast would cut into another id,
 * silently merging two).  May shorten key itself.
 */
static char *
key_in_form(char *key, Oid type, MfKeyForm form)
{
	switch (form)
	{
		case MF_KEY_TEXT:
			break;
		case MF_KEY_UUID:
			return type == UUIDOID ? key : mf_uuid_key(key, true);
		case MF_KEY_CHARACTER:
			return mf_key_without_blanks(key);
		case MF_KEY_NAME:
			return strlen(key) < NAMEDATALEN ? key : NULL;
	}
	return key;
}

static int64
key_number(ReadState *state, MfSide side, Oid type, Oid output, Datum value)
{
	MfKeyForm	form = side == MF_USERS ? state->source->user_key_form
		: state->source->item_key_form;
	char	   *key;
	char	   *in_form;

	/*
	 * A key's unpacking, copy and hash take as long as it is, and a table's
	 * scan looks for interrupts once a page: a page of rows whose long keys
	 * are stored out of line made a cancel seconds late (attack helper 185).
	 */
	CHECK_FOR_INTERRUPTS();
	key = mf_id_key_text(type, output, value);
	in_form = key_in_form(key, type, form);
	if (in_form == NULL)
		report_key_not_of_form(state->source, side, type, key, form);
	return mf_rows_key(state->rows, side, in_form);
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

	/* progress: rows read of the estimate, while there is one above them */
	if ((++state->n_read & (MF_PROGRESS_ROWS - 1)) == 0)
		mf_progress_count(state->n_read, state->expected > state->n_read
						  ? (int64) state->expected : 0, "row");
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
		mf_source_report_non_finite(source,
									source->user_keys
									? mf_text_for_message(OidOutputFunctionCall(source->user_output, user))
									: psprintf(INT64_FORMAT, user_id),
									source->item_keys
									? mf_text_for_message(OidOutputFunctionCall(source->item_output, item))
									: psprintf(INT64_FORMAT, item_id),
									value);
	mf_rows_add(state->rows, user_id, item_id, value);
}

void
mf_source_report_non_finite(const MfSource *source, const char *user, const char *item,
							double value)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("rating of user %s for item %s in %s is %s", user, item,
					mf_source_display_name(source->relid),
					isnan(value) ? "NaN" : "infinite or beyond the range of double precision"),
			 errhint("Fix or delete that row, or pass a view that leaves out such ratings: WHERE abs(%s) < 1e300.",
					 quote_identifier(source->rating_col))));
}

/* An id named by mf_source_only's argument: its key and its value in the column's type. */
typedef struct NamedKey
{
	char	   *key;
	Datum		value;
} NamedKey;

static int
compare_named_keys(const void *a, const void *b)
{
	return strcmp(((const NamedKey *) a)->key, ((const NamedKey *) b)->key);
}

/* What mf_source_only converts, for the error context of a failed conversion. */
typedef struct OnlyConversion
{
	const char *argname;
	const char *column;
	Oid			type;
	Oid			relid;
} OnlyConversion;

static void
only_conversion_context(void *arg)
{
	const OnlyConversion *conversion = arg;

	errcontext("converting the ids of %s to the type %s of column \"%s\" of %s",
			   conversion->argname, format_type_be(conversion->type), conversion->column,
			   mf_source_display_name(conversion->relid));
}

/*
 * The error for an id that argument argname names, whose text form key
 * the keys of side, of form form (key_in_form), cannot take: 22P02 for
 * text that is no uuid, 22001 for text longer than a name.
 */
static void pg_attribute_noreturn()
report_named_not_of_form(const char *argname, MfSide side, const char *key, MfKeyForm form)
{
	const char *name = mf_side_name(side);
	bool		uuid = form == MF_KEY_UUID;

	ereport(ERROR,
			(errcode(uuid ? ERRCODE_INVALID_TEXT_REPRESENTATION : ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
			 errmsg("%s names %s, which is %s", argname,
					mf_text_for_message(key),
					uuid ? "not a uuid" : "longer than a name"),
			 uuid
			 ? errdetail("The model was trained on uuid %s ids.", name)
			 : errdetail("The model was trained on %s ids of type name, which hold at most %d bytes; this one has %zu.",
						 name, NAMEDATALEN - 1, strlen(key)),
			 errhint("Pass the %ss' ids as the model holds them.", name)));
}

/* An integer id named by its text form, for an integer id column. */
static int64
named_integer(const char *text, const char *argname, const char *column, Oid relid)
{
	int64		id;
	MfIdParse	parsed = mf_parse_id(text, &id);

	if (parsed == MF_ID_OUT_OF_RANGE)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("%s names %s, which is out of range for bigint ids", argname,
						mf_text_for_message(text)),
				 errdetail("Column \"%s\" of %s holds integer ids, named as bigint values.", column,
						   mf_source_display_name(relid)),
				 errhint("Pass ids between -9223372036854775808 and 9223372036854775807.")));
	if (parsed != MF_ID_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("%s names %s, which is not an integer id", argname,
						mf_text_for_message(text)),
				 errdetail("Column \"%s\" of %s holds integer ids, named as bigint values.", column,
						   mf_source_display_name(relid)),
				 errhint("Pass the ids as integers: %s := ARRAY[42, 7].", argname)));
	return id;
}

/*
 * An untyped literal, '{42,7}', read as text[]: array_in's error for one it
 * cannot read quotes the whole literal (a megabyte of it, its newlines
 * too) or names no argument at all (bounds '[1:0]={}', seven dimensions);
 * this one names argument argname and the literal cut within 100 bytes as
 * a JSON string, with array_in's SQLSTATE (22P02 malformed, 2202E bounds,
 * 54000 past a limit) and its detail, or for the last two, whose message
 * does not quote the literal, that message.
 */
static ArrayType *
array_literal(const char *literal, const char *argname)
{
	MemoryContext cxt = CurrentMemoryContext;
	ArrayType  *array = NULL;

	PG_TRY();
	{
		array = DatumGetArrayTypeP(OidInputFunctionCall(F_ARRAY_IN, unconstify(char *, literal),
														TEXTOID, -1));
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(cxt);
		error = CopyErrorData();
		if (error->sqlerrcode != ERRCODE_INVALID_TEXT_REPRESENTATION &&
			error->sqlerrcode != ERRCODE_ARRAY_SUBSCRIPT_ERROR &&
			error->sqlerrcode != ERRCODE_PROGRAM_LIMIT_EXCEEDED)
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(error->sqlerrcode),
				 errmsg("%s is not an array literal: %s", argname, mf_text_for_message(literal)),
				 error->detail ? errdetail("%s", error->detail)
				 : error->sqlerrcode != ERRCODE_INVALID_TEXT_REPRESENTATION
				 ? errdetail("%c%s.", pg_toupper((unsigned char) error->message[0]),
							 error->message + 1) : 0,
				 errhint("Pass %s := ARRAY[42, 7], or '{42,7}' (with double quotes around ids holding commas, braces or spaces: '{\"a b\"}').",
						 argname)));
	}
	PG_END_TRY();
	return array;
}

ArrayType *
mf_id_array(Oid argtype, Datum value, MfSide side, const char *argname, bool nulls_allowed)
{
	const char *literal = argtype == UNKNOWNOID ? DatumGetCString(value) : NULL;
	Oid			elemtype;
	bool		accepted = false;
	ArrayType  *array;

	if (!OidIsValid(argtype))
		elog(ERROR, "could not determine the type of %s", argname);
	/* an untyped literal, '{42,7}', is an array of text forms */
	elemtype = literal ? TEXTOID : get_element_type(getBaseType(argtype));
	for (int t = 0; OidIsValid(elemtype) && t < lengthof(id_types); t++)
		accepted |= getBaseType(elemtype) == id_types[t];
	while (literal && isspace((unsigned char) *literal))
		literal++;
	if (!accepted || (literal && *literal != '{' && *literal != '['))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s must be an array of %s ids, not %s", argname, mf_side_name(side),
						literal ? mf_text_for_message(DatumGetCString(value))
						: format_type_be(argtype)),
				 errdetail("An id is %s.", ID_TYPES_TEXT),
				 errhint("Pass %s := ARRAY[42, 7], or ARRAY['u1', 'u2'] for text keys.",
						 argname)));
	array = literal ? array_literal(literal, argname) : DatumGetArrayTypeP(value);
	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", argname),
				 errdetail("It has %d dimensions.", ARR_NDIM(array)),
				 errhint("Pass the %ss as a list: %s := ARRAY[42, 7].",
						 mf_side_name(side), argname)));
	if (!nulls_allowed && ARR_HASNULL(array))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not contain NULL", argname),
				 errhint("Leave the NULLs out: %s := ARRAY(SELECT DISTINCT id FROM ... WHERE id IS NOT NULL).",
						 argname)));
	return array;
}

/*
 * How the read filters the rows of the keys of list, named for side of
 * form form (values: the same keys in the column's type), as
 * source->only and source->only_value: by the column
 * itself where its = matches the keys' own equality (an index on the
 * column serves it), in its own collation (a parameter's is its type's:
 * a name column of another collation could not compare with it), or byte
 * for byte where that collation is nondeterministic ('u2' = 'U2' would
 * read rows of other keys, which reading could refuse: a name longer
 * than a name); text read as uuids or character(n), whose = does not
 * match their keys ('A0EEBC99-...' and 'u1  ' are the keys 'a0eebc99-...'
 * and 'u1'), by their key form: the hexadecimal digits in lowercase, or
 * the text without trailing blanks.
 */
static void
only_filter(MfSource *source, MfSide side, MfKeyForm form, const MfIdList *list, Datum *values)
{
	bool		users = side == MF_USERS;
	Oid			column_type = users ? source->user_type : source->item_type;
	AttrNumber	attnum = users ? source->user_attnum : source->item_attnum;
	const char *column = quote_identifier(users ? source->user_col : source->item_col);
	Oid			type;
	int32		typmod;
	Oid			collation;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	if ((form == MF_KEY_UUID && column_type != UUIDOID) ||
		(form == MF_KEY_CHARACTER && column_type != BPCHAROID))
	{
		bool		uuid = form == MF_KEY_UUID;

		for (int e = 0; e < list->n; e++)
		{
			char	   *key = pstrdup(list->keys[e]);

			if (uuid)
			{
				char	   *to = key;

				for (const char *from = key; *from != '\0'; from++)
					if (*from != '-')
						*to++ = *from;
				*to = '\0';
			}
			values[e] = CStringGetTextDatum(key);
		}
		source->only = construct_array(values, list->n, TEXTOID, -1, false, TYPALIGN_INT);
		source->only_value = uuid
			? psprintf("pg_catalog.translate(pg_catalog.lower(%s::pg_catalog.text COLLATE pg_catalog.\"C\"), '{}-', '')",
					   column)
			: psprintf("pg_catalog.rtrim(%s::pg_catalog.text, ' ') COLLATE pg_catalog.\"C\"", column);
		return;
	}
	get_typlenbyvalalign(column_type, &typlen, &typbyval, &typalign);
	source->only = construct_array(values, list->n, column_type, typlen, typbyval, typalign);
	get_atttypetypmodcoll(source->relid, attnum, &type, &typmod, &collation);
	if (!OidIsValid(collation))
		source->only_value = column;
	else
	{
		HeapTuple	tuple = SearchSysCache1(COLLOID, ObjectIdGetDatum(collation));
		Form_pg_collation form_collation;

		if (!HeapTupleIsValid(tuple))
			elog(ERROR, "cache lookup failed for collation %u", collation);
		form_collation = (Form_pg_collation) GETSTRUCT(tuple);

		/*
		 * a deterministic collation compares equal what "C" does, byte for
		 * byte; it is named (so that an index of the column serves the
		 * filter) where the caller may use its schema, which naming it
		 * needs and reading the column does not
		 */
		source->only_value =
			form_collation->collisdeterministic &&
			pg_namespace_aclcheck(form_collation->collnamespace, GetUserId(),
								  ACL_USAGE) == ACLCHECK_OK
			? psprintf("%s COLLATE %s", column,
					   quote_qualified_identifier(get_namespace_name(form_collation->collnamespace),
												  NameStr(form_collation->collname)))
			: psprintf("%s COLLATE pg_catalog.\"C\"", column);
		ReleaseSysCache(tuple);
	}
}

MfIdList
mf_source_only(MfSource *source, MfSide side, Oid argtype, Datum value, const char *argname)
{
	bool		users = side == MF_USERS;
	Oid			column_type = users ? source->user_type : source->item_type;
	Oid			column_output = users ? source->user_output : source->item_output;
	OnlyConversion conversion = {argname, users ? source->user_col : source->item_col,
	column_type, source->relid};
	ArrayType  *array = mf_id_array(argtype, value, side, argname, false);
	Oid			elemtype = ARR_ELEMTYPE(array);
	Oid			elembase = getBaseType(elemtype);
	Datum	   *elements;
	int			n;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Oid			elem_output;
	bool		varlena;
	MfIdList	list = {0};

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(array, elemtype, typlen, typbyval, typalign, &elements, NULL, &n);
	getTypeOutputInfo(elemtype, &elem_output, &varlena);
	if (!(users ? source->user_keys : source->item_keys))
	{
		Datum	   *values;
		int			in_range = 0;
		int16		column_typlen;
		bool		column_byval;
		char		column_align;

		/*
		 * integer ids: list.ids as bigint, the filter in the column's own
		 * type, whose = ANY hashes the array (an integer column's = ANY of
		 * bigint[] compares each row with every id) and uses the column's
		 * index; an id beyond the column's range names no row
		 */
		list.ids = mf_alloc_array(CurrentMemoryContext, Max(n, 1), sizeof(int64));
		for (int e = 0; e < n; e++)
		{
			CHECK_FOR_INTERRUPTS();
			list.ids[e] = mf_is_integer_id_type(elembase) ? id_value(elements[e], elembase)
				: named_integer(mf_id_key_text(elembase, elem_output, elements[e]), argname,
								conversion.column, source->relid);
		}
		mf_sort(list.ids, n, sizeof(int64), mf_compare_int64);
		for (int e = 0; e < n; e++)
			if (list.n == 0 || list.ids[e] != list.ids[list.n - 1])
				list.ids[list.n++] = list.ids[e];
		values = mf_alloc_array(CurrentMemoryContext, Max(list.n, 1), sizeof(Datum));
		for (int e = 0; e < list.n; e++)
		{
			int64		id = list.ids[e];

			if (column_type == INT2OID && id >= PG_INT16_MIN && id <= PG_INT16_MAX)
				values[in_range++] = Int16GetDatum((int16) id);
			else if (column_type == INT4OID && id >= PG_INT32_MIN && id <= PG_INT32_MAX)
				values[in_range++] = Int32GetDatum((int32) id);
			else if (column_type == INT8OID)
				values[in_range++] = Int64GetDatum(id);
		}
		get_typlenbyvalalign(column_type, &column_typlen, &column_byval, &column_align);
		source->only = construct_array(values, in_range, column_type, column_typlen,
									   column_byval, column_align);
		source->only_value = quote_identifier(users ? source->user_col : source->item_col);
	}
	else
	{
		/*
		 * keys: converted from their text forms to the column's type, as
		 * keys by its text form in the side's form (only_filter)
		 */
		MfKeyForm	form = users ? source->user_key_form : source->item_key_form;
		NamedKey   *named = mf_alloc_array(CurrentMemoryContext, Max(n, 1), sizeof(NamedKey));
		ErrorContextCallback context = {error_context_stack, only_conversion_context, &conversion};
		Oid			input;
		Oid			ioparam;
		Datum	   *values;

		getTypeInputInfo(column_type, &input, &ioparam);
		error_context_stack = &context;
		for (int e = 0; e < n; e++)
		{
			char	   *text = mf_is_integer_id_type(elembase)
				? psprintf(INT64_FORMAT, id_value(elements[e], elembase))
				: mf_id_key_text(elembase, elem_output, elements[e]);

			CHECK_FOR_INTERRUPTS();
			/* name's input cuts text past NAMEDATALEN - 1 bytes: into another id */
			if (getBaseType(column_type) == NAMEOID && strlen(text) >= NAMEDATALEN)
				ereport(ERROR,
						(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
						 errmsg("%s names %s, which is longer than a name", argname,
								mf_text_for_message(text)),
						 errdetail("Column \"%s\" of %s is of type name, which holds at most %d bytes; this id has %zu, and a cast would cut it into another %s's.",
								   conversion.column, mf_source_display_name(source->relid),
								   NAMEDATALEN - 1, strlen(text), mf_side_name(side)),
						 errhint("Pass the %ss' ids as that column holds them.", mf_side_name(side))));
			/* uuid's input would quote the whole text in its error */
			if (getBaseType(column_type) == UUIDOID && mf_uuid_key(text, true) == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						 errmsg("%s names %s, which is not a uuid", argname, mf_text_for_message(text)),
						 errdetail("Column \"%s\" of %s is of type uuid.", conversion.column,
								   mf_source_display_name(source->relid)),
						 errhint("Pass the %ss' ids as that column holds them.", mf_side_name(side))));
			named[e].value = OidInputFunctionCall(input, text, ioparam, -1);
			named[e].key = key_in_form(mf_id_key_text(column_type, column_output, named[e].value),
									   column_type, form);
			if (named[e].key == NULL)
			{
				error_context_stack = context.previous;
				report_named_not_of_form(argname, side, text, form);
			}
		}
		error_context_stack = context.previous;
		mf_sort(named, n, sizeof(NamedKey), compare_named_keys);
		list.keys = mf_alloc_array(CurrentMemoryContext, Max(n, 1), sizeof(char *));
		values = mf_alloc_array(CurrentMemoryContext, Max(n, 1), sizeof(Datum));
		for (int e = 0; e < n; e++)
			if (list.n == 0 || strcmp(named[e].key, list.keys[list.n - 1]) != 0)
			{
				list.keys[list.n] = named[e].key;
				values[list.n++] = named[e].value;
			}
		only_filter(source, side, form, &list, values);
	}
	source->only_side = side;
	return list;
}

/* mf_spi_scan callback. */
static void
accept_spi_row(TupleTableSlot *slot, void *arg)
{
	accept_row(arg, slot->tts_values[0], slot->tts_isnull[0], slot->tts_values[1],
			   slot->tts_isnull[1], slot->tts_values[2], slot->tts_isnull[2]);
}

/*
 * Whether relid is a Citus table (distributed, reference, or local but
 * managed by Citus): Citus lists them in pg_catalog.pg_dist_partition,
 * and a SELECT on one reads its shards through Citus's planner, not the
 * coordinator's own table (an empty shell, or the rows it held before it
 * was distributed).  A catalog of another shape counts every table.
 */
static bool
is_citus_table(Oid relid)
{
	Oid			catalog = get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE);
	AttrNumber	logicalrelid;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	bool		found;

	if (!OidIsValid(catalog))
		return false;
	logicalrelid = get_attnum(catalog, "logicalrelid");
	if (logicalrelid == InvalidAttrNumber)
		return true;
	rel = table_open(catalog, AccessShareLock);
	ScanKeyInit(&key, logicalrelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 1, &key);
	found = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * True when a direct heap scan of the locked relation rel returns exactly
 * the rows the caller's SELECT would: a heap table or populated
 * materialized view without inheritance children or row-level security,
 * not a Citus table, readable by the current user (schema usage, and
 * SELECT on the table or the three columns), and no security module
 * hooked into permission checks.
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
	if (has_subclass(relid) || is_citus_table(relid))
		return false;
	if (check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
		return false;
	if (pg_namespace_aclcheck(RelationGetNamespace(rel), user, ACL_USAGE) != ACLCHECK_OK)
		return false;
	return unreadable_column(relid, user, columns, 3) < 0;
}

/*
 * Reads the rows by a heap scan under the active snapshot, when
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

	/* a read of some ids' rows filters in SQL, where an index serves it */
	if (source->only != NULL || !can_scan_directly(source, rel))
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

/*
 * Whether source is read for named ids none of which its column can hold
 * (none named, or all beyond an integer column's range).
 */
static bool
names_no_row(const MfSource *source)
{
	return source->only != NULL &&
		ArrayGetNItems(ARR_NDIM(source->only), ARR_DIMS(source->only)) == 0;
}

/*
 * The query read_by_spi reads source with, into query; returns its number
 * of parameters (0, or 1 for mf_source_only's ids: its type in *argtype,
 * its value in *arg).  For ids none of which the column can hold, WHERE
 * false: planned and run, so that PostgreSQL checks what it checks of any
 * read (a view's privileges on what it reads, row-level security), yet
 * locks no partition and scans nothing, which a filter = ANY('{}') did
 * (pruning cannot use an empty array).
 */
static int
read_query(const MfSource *source, StringInfo query, Oid *argtype, Datum *arg)
{
	initStringInfo(query);
	appendStringInfo(query, "SELECT %s, %s, %s FROM %s",
					 quote_identifier(source->user_col),
					 quote_identifier(source->item_col),
					 quote_identifier(source->rating_col),
					 mf_source_display_name(source->relid));
	if (source->only == NULL)
		return 0;
	if (names_no_row(source))
	{
		appendStringInfoString(query, " WHERE false");
		return 0;
	}
	*argtype = get_array_type(ARR_ELEMTYPE(source->only));
	*arg = PointerGetDatum(source->only);
	/*
	 * qualified: the caller's search_path reads this query, and for a
	 * varchar column or a domain's, an operator = planted in public would
	 * match more exactly than pg_catalog's
	 */
	appendStringInfo(query, " WHERE %s OPERATOR(pg_catalog.=) ANY($1)", source->only_value);
	return 1;
}

static void
read_by_spi(ReadState *state)
{
	const MfSource *source = state->source;
	Oid			types[3];
	StringInfoData query;
	Oid			argtype = InvalidOid;
	Datum		arg = (Datum) 0;
	int			nargs = read_query(source, &query, &argtype, &arg);

	source_types(source, types);
	if (source->read_plan != NULL)
		mf_spi_scan_prepared(source->read_plan, nargs, &argtype, &arg, types, 3,
							 mf_source_display_name(source->relid), accept_spi_row, state);
	else
		mf_spi_scan(query.data, nargs, &argtype, &arg, types, 3,
					mf_source_display_name(source->relid), accept_spi_row, state);
}

/*
 * The argument a relation read for other than a training's or refit's
 * ratings came from ("validation", "test"), for the memory errors; NULL
 * for those ratings.
 */
static const char *
relation_argument(const MfSource *source)
{
	return strcmp(source->argname, "source") == 0 ? NULL : source->argname;
}

/*
 * The planner's row estimate of the source (0 when it has none), after
 * failing early when it already exceeds the limit.
 */
static double
check_estimated_rows(const MfSource *source)
{
	char		relkind = get_rel_relkind(source->relid);
	HeapTuple	tuple;
	float4		reltuples;

	if (relkind != RELKIND_RELATION && relkind != RELKIND_MATVIEW)
		return 0;
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(source->relid));
	if (!HeapTupleIsValid(tuple))
		return 0;
	reltuples = ((Form_pg_class) GETSTRUCT(tuple))->reltuples;
	ReleaseSysCache(tuple);
	mf_rows_check_estimate(reltuples, source->held_bytes, relation_argument(source));
	return Max(reltuples, 0);
}

/*
 * 42501 unless the caller may still read source: its privileges checked
 * again after a lock was waited for (a REVOKE committed meanwhile).
 */
static void
recheck_read_privilege(const MfSource *source)
{
	Relation	rel = relation_open(source->relid, NoLock);

	check_read_privilege(source, rel, NULL, 0);
	check_read_privilege(source, rel,
						 (AttrNumber[]) {source->user_attnum, source->item_attnum,
						 source->rating_attnum}, 3);
	relation_close(rel, NoLock);
}

/*
 * 42501 unless the current role is still reader: a function the relation
 * runs (a view's, as the reader, or an immutable one its planning folds)
 * may set the session's role with set_config('role', ..., false), and the
 * call would then check privileges, and record who trained, as another
 * role.
 */
static void
check_role_kept(Oid reader, const MfSource *source)
{
	mf_check_role_kept(reader, psprintf("reading %s", mf_source_display_name(source->relid)),
					   "A function the relation runs set the role; mf_ext checks privileges, and records who trained, as the role that called it.",
					   "Read a relation whose functions leave the role alone.");
}

/* Passes of planning again that mf_source_push_read_snapshot makes at most. */
#define MF_REPLANS	10

void
mf_source_lock_read(MfSource *source)
{
	Relation	rel = table_open(source->relid, AccessShareLock);
	bool		direct = source->only == NULL && can_scan_directly(source, rel);
	Oid			reader = GetUserId();
	StringInfoData query;
	Oid			argtype = InvalidOid;
	Datum		arg = (Datum) 0;
	int			nargs;

	table_close(rel, NoLock);
	source->read_plan = NULL;
	source->row_security = false;
	if (direct || is_citus_table(source->relid))
		return;
	source->planned_at = SharedInvalidMessageCounter;
	nargs = read_query(source, &query, &argtype, &arg);
	source->read_plan = mf_spi_prepare(query.data, nargs, &argtype);
	/* before planning, which checks a view's privileges with the planner's bare error */
	recheck_read_privilege(source);
	source->row_security = mf_spi_plan_locked(source->read_plan, nargs, &argtype, &arg);
	check_role_kept(reader, source);
	pfree(query.data);
}

/* Whether source's plan predates an invalidation this backend has taken in since. */
static bool
plan_is_stale(const MfSource *source)
{
	return source->read_plan != NULL && source->planned_at != SharedInvalidMessageCounter;
}

void
mf_source_push_read_snapshot(MfSource *const *sources, int n_sources)
{
	CommandId	statement_command = GetActiveSnapshot()->curcid;

	/*
	 * A plan made before a later lock was waited for may be stale (a
	 * partition attached, a function it inlined replaced), and a prepared
	 * plan is never invalidated: plan again each source whose plan
	 * predates an invalidation, until none does; the reads run those
	 * plans under the snapshot taken after them.  Relations that keep
	 * changing at each pass are an error, never a stale plan read.
	 */
	for (int pass = 0;; pass++)
	{
		MfSource   *stale = NULL;

		for (int s = 0; s < n_sources && stale == NULL; s++)
			if (plan_is_stale(sources[s]))
				stale = sources[s];
		if (stale == NULL)
			break;
		if (pass == MF_REPLANS)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("what reading %s touches kept changing while the call locked it",
							mf_source_display_name(stale->relid)),
					 errdetail("Its read was planned %d times; each time another transaction had changed relations the reads touch (a partition attached or detached, a view or function replaced) meanwhile.",
							   MF_REPLANS + 1),
					 errhint("Run the call again.")));
		for (int s = 0; s < n_sources; s++)
			if (plan_is_stale(sources[s]))
			{
				SPI_freeplan(sources[s]->read_plan);
				mf_source_lock_read(sources[s]);
			}
	}
	/* a REVOKE committed while a lock was waited for counts, with mf_ext's error */
	for (int s = 0; s < n_sources; s++)
		recheck_read_privilege(sources[s]);
	PushCopiedSnapshot(GetTransactionSnapshot());
	GetActiveSnapshot()->curcid = statement_command;
}

MfRatings *
mf_source_read(const MfSource *source, MemoryContext cxt)
{
	MemoryContext scratch = AllocSetContextCreate(cxt, "mf_ext source read",
												  ALLOCSET_SMALL_SIZES);
	ReadState	state = {0};
	MfRatings  *ratings;
	double		expected = source->only == NULL ? check_estimated_rows(source) : 0;
	Oid			reader = GetUserId();
	bool		row_security = false;

	state.source = source;
	state.expected = expected;
	state.rows = mf_rows_create(cxt, source->user_keys, source->item_keys, expected,
								source->held_bytes, relation_argument(source));
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

		/*
		 * read as planned, or a table read through SQL unplanned (a Citus
		 * table, or one row-level security came to apply to after the lock
		 * chose a heap scan, which it never does where it applies)
		 */
		row_security = source->read_plan != NULL ? source->row_security
			: check_enable_rls(source->relid, InvalidOid, true) == RLS_ENABLED;
	}
	MemoryContextDelete(scratch);

	check_role_kept(reader, source);
	mf_progress_phase("indexing");
	ratings = mf_ratings_from_rows(state.rows, state.n_skipped, cxt);
	ratings->relation = MemoryContextStrdup(cxt, mf_source_display_name(source->relid));
	ratings->row_security = row_security;
	return ratings;
}
