/*-------------------------------------------------------------------------
 *
 * source.h
 *	  A relation of ratings as the caller reads it: its user, item and
 *	  rating columns checked with the relation locked until the read is
 *	  done, and its rows read (by a heap scan where that is provably what
 *	  the caller's SELECT returns, else through SPI) into sparse rows
 *	  (ratings.h).  Never writes anything.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MF_SOURCE_H
#define MF_SOURCE_H

#include "mf_ext.h"
#include "ratings.h"

#include "access/attnum.h"
#include "executor/spi.h"
#include "utils/array.h"

/*
 * The form of a side's text keys, from the type it was trained from
 * (mf_key_form): ids of another type (text) read into such a side take it,
 * so that an id names the key a cast to the trained type would.
 */
typedef enum MfKeyForm
{
	MF_KEY_TEXT,				/* as they are (text, varchar, integer ids) */
	MF_KEY_UUID,				/* a uuid's canonical text (mf_uuid_key) */
	MF_KEY_CHARACTER,			/* character(n): trailing blanks do not count */
	MF_KEY_NAME					/* name: at most NAMEDATALEN - 1 bytes */
} MfKeyForm;

/* Where and how to read the ratings. */
typedef struct MfSource
{
	const char *argname;		/* "source", "validation" or "test", for errors */
	bool		fixed_columns;	/* the columns are the training's (a validation's), not arguments */
	Oid			relid;
	const char *user_col;
	const char *item_col;
	const char *rating_col;
	MfKeyForm	user_key_form;	/* the form of the keys the model's side */
	MfKeyForm	item_key_form;	/* was trained from: ids of another type
								 * are read in that form */
	Size		held_bytes;		/* memory the call already holds beside
								 * this read (a training's ratings, for its
								 * validation), counted with the read's
								 * against mf_ext.max_memory; 0 otherwise */
	/* set by mf_source_validate: */
	AttrNumber	user_attnum;
	AttrNumber	item_attnum;
	AttrNumber	rating_attnum;
	Oid			user_type;		/* base types of the columns */
	Oid			item_type;
	Oid			rating_type;
	bool		user_keys;		/* ids not integers: read by their text form */
	bool		item_keys;
	Oid			user_output;	/* their output functions */
	Oid			item_output;
	/* set by mf_source_only (only to NULL by mf_source_validate): */
	MfSide		only_side;		/* the side only's ids are of */
	ArrayType  *only;			/* read only the rows whose only_value is one
								 * of these (bigint[], text[] or the column's
								 * type's array), or NULL: every row */
	const char *only_value;		/* SQL: the id column, or its key form */
	/* set by mf_source_lock_read: */
	SPIPlanPtr	read_plan;		/* the read's query, planned; NULL for a
								 * direct scan or a Citus table */
	uint64		planned_at;		/* SharedInvalidMessageCounter before */
	bool		row_security;	/* with read_plan: row-level security applies
								 * to what it reads, for the role each
								 * relation is read as */
} MfSource;

/*
 * The distinct ids a caller named (mf_source_only): integers, sorted; or,
 * for a text-keyed side, keys by text form, in byte order.
 */
typedef struct MfIdList
{
	int			n;
	int64	   *ids;
	char	  **keys;			/* NULL for integer ids */
} MfIdList;

/*
 * Checks the source's relation kind and columns (errors 42P01, 42809,
 * 42703, 42804, 22023), with the relation locked as a SELECT locks it
 * until the transaction ends, so that no other session can rename, swap
 * or retype them before the read.
 */
extern void mf_source_validate(MfSource *source);

/*
 * Restricts a validated source to the rows of the ids in value, an
 * argument named argname of type argtype: a one-dimensional array without
 * NULLs of integers, text, varchar, char, name or uuid, or an untyped
 * literal such as '{42,7}' (errors 42804, 2202E, 22004, 22P02).  For an
 * integer id column they must be integers (or their text forms); for any
 * other, they are converted from their text forms to the column's type
 * and taken in the side's key form, as reading takes the column's ids.
 * The read then filters in its SQL: by the column itself (an index on it
 * serves the filter), compared in its own collation or, where that is
 * nondeterministic, byte for byte; text read as uuids or character(n) by
 * their key form (lowercase hexadecimal digits, no trailing blanks).  The
 * caller keeps the rows of the ids returned, the distinct ones, in order
 * (keys in byte order).
 */
extern MfIdList mf_source_only(MfSource *source, MfSide side, Oid argtype, Datum value,
							   const char *argname);

/* Whether an id column of type type (a base type) holds integer ids: smallint, integer, bigint. */
extern bool mf_is_integer_id_type(Oid type);

/*
 * An argument declared "any" (argname, of type argtype in the call; value
 * not NULL) that names ids of one side, as a one-dimensional array: of a
 * type id columns may have (smallint, integer, bigint, text, varchar, char,
 * name, uuid, or a domain over one), or an untyped literal such as
 * '{42,7}', read as text[].  42804 for any other type, 2202E for more
 * dimensions, 22004 for NULL elements unless nulls_allowed.
 */
extern ArrayType *mf_id_array(Oid argtype, Datum value, MfSide side, const char *argname,
							  bool nulls_allowed);

/*
 * The text form of an id value of type type (output: its output function)
 * as a key: the one a cast to text gives (character(n) without the blanks
 * that pad it), which is how training keeps keys.
 */
extern char *mf_id_key_text(Oid type, Oid output, Datum value);

/*
 * The form of a side's keys from its key type (mf_models.user_key_type or
 * item_key_type, or a source column's type; a domain's base type counts;
 * InvalidOid for integer ids is MF_KEY_TEXT).
 */
extern MfKeyForm mf_key_form(Oid key_type);

/*
 * Removes the trailing blanks of key in place, as character(n) compares
 * it; returns key.
 */
extern char *mf_key_without_blanks(char *key);

/*
 * The key a side trained from uuids keeps for a uuid written as text (any
 * form a uuid cast reads: capitals, no hyphens or a hyphen after any group
 * of four digits, braces): its canonical text, as training wrote it.  Text
 * that is no uuid is NULL with missing_ok (it names no key), else 22P02.
 */
extern char *mf_uuid_key(const char *text, bool missing_ok);

/* A relation's schema-qualified, quoted name; an error (42P01) if it is gone. */
extern char *mf_source_display_name(Oid relid);

/*
 * hint, of an error for ratings read without a rating, with a word on
 * row-level security where it applied to the read (a policy of the
 * relation, or of one a view reads, may have hidden every row; what it
 * hid is not told).
 */
extern const char *mf_no_ratings_hint(const MfRatings *ratings, const char *hint);

/* mf_source_display_name of the relation passed as argument argname, whose error names it. */
extern char *mf_argument_display_name(Oid relid, const char *argname);

/*
 * The error (42P01) for relation argument argname (or NULL when not known)
 * whose OID relid no relation has: dropped after the call named it, or an
 * OID given as a number.
 */
extern void mf_report_missing_relation(Oid relid, const char *argname) pg_attribute_noreturn();

/*
 * Reads a validated source as the caller (row-level security and every
 * privilege apply) into new ratings in cxt: every row, or only those of
 * mf_source_only's ids.  Rows with a NULL user, item
 * or rating are skipped and counted; a non-finite rating is an error
 * (22000).  The caller must be connected to SPI.
 */
extern MfRatings *mf_source_read(const MfSource *source, MemoryContext cxt);

/*
 * Locks what reading a validated source will touch beyond the relation
 * mf_source_validate locked, as planning its query does (a view's tables,
 * the partitions its ids leave, the tables a row-level security policy
 * reads), and keeps the query so planned for mf_source_read (read_plan);
 * 42501 if a REVOKE committed while it waited, and an error if planning
 * (an immutable function it folds) set the role.
 * A Citus table's shards are read on the workers, under their own
 * snapshots.  The caller must be connected to SPI.
 */
extern void mf_source_lock_read(MfSource *source);

/*
 * Once every source a call reads is locked (mf_source_lock_read), plans
 * again each whose plan predates an invalidation (a lock waited for after
 * it was made: a partition attached, a function it inlined replaced;
 * 40001 when they still change after ten passes),
 * checks the caller may still read each of n_sources sources (42501: a
 * REVOKE committed while a lock was waited for), then pushes the snapshot
 * they are read with, to be popped with PopActiveSnapshot.  Under READ
 * COMMITTED it is taken after the locks, as a statement's is: a relation
 * rewritten (ALTER TABLE ... TYPE, a volatile DEFAULT) by a transaction
 * that committed while the call waited for its lock is read as committed,
 * not as empty (an older snapshot sees none of the rewritten rows); so is
 * what other transactions committed while a training or refit waited for
 * the model's row (mf_catalog_trained_options, mf_catalog_lock_model).  Of
 * the caller's own transaction only what the statement's snapshot sees (an
 * SPI query since advanced the command counter, past rows the enclosing
 * statement, a data-modifying CTE, had half written).  Under REPEATABLE
 * READ and SERIALIZABLE, the transaction's snapshot.
 */
extern void mf_source_push_read_snapshot(MfSource *const *sources, int n_sources);

/*
 * The error (22000) for a rating of user for item (their text forms) that
 * is not finite (value), as mf_source_read raises it.
 */
extern void mf_source_report_non_finite(const MfSource *source, const char *user,
										const char *item, double value) pg_attribute_noreturn();

#endif							/* MF_SOURCE_H */
