/*-------------------------------------------------------------------------
 *
 * mf_ext.c
 *	  Module entry point and the small helpers every other file uses:
 *	  the id -> dense index hash map, checked array allocation, and the
 *	  extension's schema name for building SQL text.
 *
 *-------------------------------------------------------------------------
 */
#include "mf_ext.h"

#include "common/hashfn.h"

#include "executor/spi.h"
#include "miscadmin.h"

#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

PG_MODULE_MAGIC;

#define SH_PREFIX		mf_idmap
#define SH_ELEMENT_TYPE MfIdEntry
#define SH_KEY_TYPE		int64
#define SH_KEY			id
#define SH_HASH_KEY(tb, key) ((uint32) mf_mix64((uint64) (key)))
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE		extern
#define SH_DEFINE
#include "lib/simplehash.h"

#define SH_PREFIX		mf_keymap
#define SH_ELEMENT_TYPE MfKeyEntry
#define SH_KEY_TYPE		const char *
#define SH_KEY			key
#define SH_HASH_KEY(tb, key) hash_bytes((const unsigned char *) (key), strlen(key))
#define SH_EQUAL(tb, a, b) (strcmp((a), (b)) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE		extern
#define SH_DEFINE
#include "lib/simplehash.h"

mf_keymap_hash *
mf_key_index(MemoryContext cxt, char *const *keys, int32 n)
{
	mf_keymap_hash *map = mf_keymap_create(cxt, Max(16, n), NULL);

	for (int32 i = 0; i < n; i++)
	{
		bool		found;

		mf_keymap_insert(map, keys[i], &found)->index = i;
	}
	return map;
}

int32
mf_key_lookup(mf_keymap_hash *map, const char *key)
{
	MfKeyEntry *entry = mf_keymap_lookup(map, key);

	return entry ? entry->index : -1;
}

int
mf_compare_keys(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Rows fetched per cursor batch by mf_spi_scan. */
#define MF_SPI_BATCH_ROWS	10000

/* GUC values; see _PG_init for their meaning. */
int			mf_threads = 0;
int			mf_max_memory_mb = 4096;

void		_PG_init(void);

/*
 * Module load: defines the GUCs.  OpenBLAS is loaded later, on first use
 * (blas.c), so that the postmaster never loads it even when mf_ext is in
 * shared_preload_libraries.
 */
void
_PG_init(void)
{
	DefineCustomIntVariable("mf_ext.threads",
							"Threads mf_train uses to solve users and items (0: every online core).",
							"Each thread solves whole rows, so the model is the same for any value.",
							&mf_threads,
							0, 0, MF_MAX_THREADS,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("mf_ext.max_memory",
							"Largest amount of memory one mf_train may use.",
							"mf_train estimates its memory from the data's counts and refuses, before allocating, to go above this.",
							&mf_max_memory_mb,
							4096, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_MB,
							NULL, NULL, NULL);
	MarkGUCPrefixReserved("mf_ext");
}

/* Direct arrays are used while they take at most this many slots per id. */
#define MF_DIRECT_SLOTS_PER_ID	8

MfIdIndex *
mf_id_index_from_sorted(MemoryContext cxt, const int64 *ids, int32 n)
{
	MfIdIndex  *index = MemoryContextAllocZero(cxt, sizeof(MfIdIndex));
	int64		limit = 0;

	/* the direct array covers [0, largest id + 1) if that is small enough */
	if (n > 0 && ids[n - 1] >= 0 &&
		ids[n - 1] < (int64) n * MF_DIRECT_SLOTS_PER_ID + 1024)
		limit = ids[n - 1] + 1;
	index->direct_limit = limit;
	index->direct = MemoryContextAllocHuge(cxt, mul_size(Max(limit, 1), sizeof(int32)));
	memset(index->direct, 0, sizeof(int32) * Max(limit, 1));
	index->hash = mf_idmap_create(cxt, 16, NULL);
	for (int32 i = 0; i < n; i++)
	{
		if (ids[i] >= 0 && ids[i] < limit)
			index->direct[ids[i]] = i + 1;
		else
		{
			bool		found;

			mf_idmap_insert(index->hash, ids[i], &found)->index = i;
		}
	}
	return index;
}

void
mf_check_memory(Size bytes, const char *detail)
{
	mf_check_memory_hint(bytes, detail,
						 "Raise mf_ext.max_memory (a superuser setting), lower k or mf_ext.threads, or train on a sample of the ratings.");
}

void
mf_check_memory_hint(Size bytes, const char *detail, const char *hint)
{
	Size		limit = (Size) mf_max_memory_mb * 1024 * 1024;

	if (bytes > limit)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("training would need about %zu MB of memory, more than mf_ext.max_memory (%d MB)",
						bytes / (1024 * 1024) + 1, mf_max_memory_mb),
				 errdetail("%s", detail),
				 errhint("%s", hint)));
}

void *
mf_alloc_array(MemoryContext cxt, Size count, Size size)
{
	Size		bytes = mul_size(Max(count, 1), size);

	return MemoryContextAllocHuge(cxt, bytes);
}

void *
mf_alloc_aligned(MemoryContext cxt, Size count, Size size)
{
	char	   *raw = MemoryContextAllocHuge(cxt, add_size(mul_size(Max(count, 1), size),
														 MF_ALIGNMENT + sizeof(void *)));
	char	   *aligned = (char *) TYPEALIGN(MF_ALIGNMENT, raw + sizeof(void *));

	((void **) aligned)[-1] = raw;	/* for mf_free_aligned */
	return aligned;
}

void
mf_free_aligned(void *pointer)
{
	pfree(((void **) pointer)[-1]);
}

void
mf_check_column_types(TupleDesc desc, const AttrNumber *attnums,
					  const Oid *types, int n, const char *what)
{
	for (int c = 0; c < n; c++)
	{
		AttrNumber	attnum = attnums ? attnums[c] : c + 1;
		Form_pg_attribute attr = attnum >= 1 && attnum <= desc->natts
		? TupleDescAttr(desc, attnum - 1) : NULL;

		if (attr == NULL || attr->attisdropped || getBaseType(attr->atttypid) != types[c])
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("column %d read from %s is of type %s, not %s",
							attnum, what,
							attr && !attr->attisdropped ? format_type_be(attr->atttypid) : "(none)",
							format_type_be(types[c])),
					 errdetail("The relation changed after its columns were checked."),
					 errhint("Run the call again.")));
	}
}

void
mf_spi_scan(const char *query, int nargs, Oid *argtypes, Datum *args,
			const Oid *types, int n_columns, const char *what,
			MfRowFn row_fn, void *arg)
{
	Portal		portal = SPI_cursor_open_with_args(NULL, query, nargs, argtypes,
												   args, NULL, true,
												   CURSOR_OPT_NO_SCROLL);

	mf_check_column_types(portal->tupDesc, NULL, types, n_columns, what);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, MF_SPI_BATCH_ROWS);
		if (SPI_processed == 0)
			break;
		for (uint64 row = 0; row < SPI_processed; row++)
			row_fn(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, arg);
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
}

SPIPlanPtr
mf_saved_plan(MfSavedPlan *saved, Oid schema, const char *query, int nargs,
			  Oid *argtypes)
{
	char	   *name = get_namespace_name(schema);
	SPIPlanPtr	plan;

	/* the text names the schema: a renamed schema needs a new plan */
	if (saved->plan != NULL && saved->schema == schema &&
		name != NULL && strcmp(saved->schema_name, name) == 0)
		return saved->plan;
	if (name == NULL)
		elog(ERROR, "schema with OID %u does not exist", schema);
	plan = SPI_prepare(psprintf(query, quote_identifier(name)), nargs, argtypes);
	if (plan == NULL || SPI_keepplan(plan) != 0)
		elog(ERROR, "could not prepare query: %s", query);
	if (saved->plan != NULL)
		SPI_freeplan(saved->plan);
	saved->plan = plan;
	saved->schema = schema;
	strlcpy(saved->schema_name, name, NAMEDATALEN);
	return plan;
}

int
mf_internal_sql_begin(void)
{
	int			nest_level = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return nest_level;
}

void
mf_internal_sql_end(int nest_level)
{
	AtEOXact_GUC(true, nest_level);
}

/*
 * The extension's schema, quoted for SQL text.  mf_ext is not relocatable,
 * so the schema of the SQL function being called is the extension's.
 */
const char *
mf_schema_quoted(FunctionCallInfo fcinfo)
{
	Oid			nsp = get_func_namespace(fcinfo->flinfo->fn_oid);

	return quote_identifier(get_namespace_name(nsp));
}
