/*-------------------------------------------------------------------------
 *
 * cache.c
 *	  Per-backend cache of models' factors, for the serving functions.
 *
 *	  An answer may only use what the calling role could read itself, in
 *	  the statement's snapshot (DESIGN.md: the cache follows the caller).
 *	  So every lookup is keyed by a ViewKey: the role (GetUserId()), the
 *	  visibility the active snapshot gives (its xmin, xmax, in-progress
 *	  transaction ids and command id, and this transaction's own id), and
 *	  a generation bumped by every (sub)transaction abort in this backend
 *	  and every eviction.  Two lookups with equal keys see the same rows of
 *	  the model tables with the same privileges; any transaction that wrote
 *	  and has ended since (a retrain, a drop, a GRANT, a policy change)
 *	  changes the snapshot, and so the key.
 *
 *	  A call site (FmgrInfo) remembers the model and key of its last lookup
 *	  and reuses it while the key is the same: the many calls of one query,
 *	  and a PL/pgSQL expression evaluated again under the same snapshot.
 *	  Any other lookup checks the role's privileges on the three model
 *	  tables (as a SELECT would: table or column SELECT, schema USAGE,
 *	  row-level security) and then looks the model's version up in
 *	  mf_models, as the role, under the active snapshot, unless a lookup
 *	  with the same key but for the role has just done so and no row-level
 *	  security applies to mf_models; the factors cached in the backend are
 *	  reused while that version (and the OID of mf_models, new after the
 *	  extension is re-created) matches.  mf_train draws every version from
 *	  a sequence, so a version number is never reused.
 *
 *	  Where row-level security applies to a factor table for the role, the
 *	  factors it may read are loaded for that call site and key alone,
 *	  never shared with other roles or lookups.
 *
 *-------------------------------------------------------------------------
 */
#include "mf_ext.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/inval.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"

/* Models cached per backend at the most. */
#define MF_CACHE_MAX_MODELS 8

/*
 * What an answer from the model tables depends on: the role whose
 * privileges apply, and the rows the active snapshot makes visible.
 */
typedef struct ViewKey
{
	bool		valid;			/* false: matches nothing */
	Oid			role;
	uint64		generation;		/* cache_generation */
	TransactionId own_xid;		/* this transaction's writes, if any */
	CommandId	curcid;			/* which of them are visible */
	TransactionId xmin;
	TransactionId xmax;
	bool		suboverflowed;
	uint32		xcnt;
	int32		subxcnt;
	TransactionId *xids;		/* xip[xcnt], then subxip[subxcnt] */
	uint32		xids_room;		/* allocated length of xids */
} ViewKey;

typedef struct CacheEntry
{
	int32		model_id;		/* hash key */
	MfModel    *model;			/* never NULL */
	ViewKey		validated;		/* the lookup mf_models last confirmed it in */
} CacheEntry;

/* What a call site (FmgrInfo) knows about the model it used last. */
typedef struct CallState
{
	ViewKey		key;			/* the key it was looked up under */
	int32		model_id;
	text	   *name;			/* when called by name */
	MfModel    *model;			/* NULL: none to reuse */
	MfModel    *restricted;		/* loaded for this call site under row-level security */
} CallState;

/* The row of mf_models describing a model. */
typedef struct ModelRow
{
	Oid			models_relid;	/* mf_models itself: new after re-CREATE EXTENSION */
	char	   *name;
	int32		model_id;
	int64		version;
	int			k;
	int64		n_users;
	int64		n_items;
	bool		biases;
	double		mean;			/* with biases */
	bool		implicit;		/* trained on implicit feedback */
	double		lambda;			/* how it was trained, for fold-in */
	bool		weighted_lambda;
	double		alpha;
	bool		conjugate_gradient;
	bool		nonnegative;
	bool		user_keys;		/* ids kept as text keys */
	bool		item_keys;
	bool		double_precision;	/* trained in double precision */
} ModelRow;

/* The three model tables, as the privilege checks see them. */
typedef struct ModelTables
{
	Oid			schema;
	Oid			models;			/* mf_models */
	Oid			users;			/* mf_user_factors */
	Oid			items;			/* mf_item_factors */
	bool		models_rls;		/* row-level security applies to the role */
	bool		factors_rls;
} ModelTables;

static HTAB *model_cache = NULL;

/*
 * Bumped whenever a cached model is freed, and on every (sub)transaction
 * abort (which may have rolled back a retrain), so that every key taken
 * before no longer matches.
 */
static uint64 cache_generation = 0;

/* Counts lookups; each cached model remembers when it was last used. */
static uint64 lookup_clock = 0;

static void
abort_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		cache_generation++;
}

static void
subabort_callback(SubXactEvent event, SubTransactionId sub, SubTransactionId parent,
				  void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		cache_generation++;
}

/*
 * Whether key describes the current role and the active snapshot snap;
 * with any_role, whoever the role.
 */
static bool
key_matches(const ViewKey *key, Snapshot snap, bool any_role)
{
	return key->valid &&
		(any_role || key->role == GetUserId()) &&
		key->generation == cache_generation &&
		key->curcid == snap->curcid &&
		key->xmin == snap->xmin && key->xmax == snap->xmax &&
		key->xcnt == snap->xcnt && key->subxcnt == snap->subxcnt &&
		key->suboverflowed == snap->suboverflowed &&
		TransactionIdEquals(key->own_xid, GetTopTransactionIdIfAny()) &&
		memcmp(key->xids, snap->xip, sizeof(TransactionId) * snap->xcnt) == 0 &&
		(snap->subxcnt <= 0 ||
		 memcmp(key->xids + snap->xcnt, snap->subxip,
				sizeof(TransactionId) * snap->subxcnt) == 0);
}

/* Sets key to the current role and active snapshot snap (key's xids in cxt). */
static void
key_set(ViewKey *key, Snapshot snap, MemoryContext cxt)
{
	uint32		n = snap->xcnt + (uint32) Max(snap->subxcnt, 0);

	if (key->xids == NULL || key->xids_room < n)
	{
		if (key->xids)
			pfree(key->xids);
		key->xids_room = Max(n, 16);
		key->xids = MemoryContextAlloc(cxt, sizeof(TransactionId) * key->xids_room);
	}
	memcpy(key->xids, snap->xip, sizeof(TransactionId) * snap->xcnt);
	if (snap->subxcnt > 0)
		memcpy(key->xids + snap->xcnt, snap->subxip,
			   sizeof(TransactionId) * snap->subxcnt);
	key->role = GetUserId();
	key->generation = cache_generation;
	key->own_xid = GetTopTransactionIdIfAny();
	key->curcid = snap->curcid;
	key->xmin = snap->xmin;
	key->xmax = snap->xmax;
	key->xcnt = snap->xcnt;
	key->subxcnt = snap->subxcnt;
	key->suboverflowed = snap->suboverflowed;
	key->valid = true;
}

/* The cached entry for model_id or name, if any. */
static CacheEntry *
find_entry(int32 model_id, text *name)
{
	HASH_SEQ_STATUS scan;
	CacheEntry *entry;
	char	   *wanted;

	if (name == NULL)
		return hash_search(model_cache, &model_id, HASH_FIND, NULL);
	wanted = text_to_cstring(name);
	hash_seq_init(&scan, model_cache);
	while ((entry = hash_seq_search(&scan)) != NULL)
		if (strcmp(entry->model->name, wanted) == 0)
		{
			hash_seq_term(&scan);
			break;
		}
	pfree(wanted);
	return entry;
}

/*
 * Raises the error a SELECT of columns[] of table relid would raise for
 * the current role: "permission denied" without SELECT on the table or on
 * each of the columns.
 */
static void
check_select(Oid relid, const char *const *columns, int n)
{
	Oid			role = GetUserId();

	if (pg_class_aclcheck(relid, role, ACL_SELECT) == ACLCHECK_OK)
		return;
	for (int c = 0; c < n; c++)
	{
		AttrNumber	attnum = get_attnum(relid, columns[c]);

		if (attnum != InvalidAttrNumber &&
			pg_attribute_aclcheck(relid, attnum, role, ACL_SELECT) != ACLCHECK_OK)
			aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, get_rel_name(relid));
	}
}

/*
 * The OID of the extension's table name in schema, locked as a SELECT
 * locks it, until the transaction ends, so that it is not dropped or
 * altered while its rows are answered from; and with the invalidations
 * other sessions have committed (a REVOKE, a new policy) processed, so
 * that the privilege checks that follow see them.
 */
static Oid
lock_model_table(const char *name, Oid schema)
{
	Oid			relid = get_relname_relid(name, schema);

	if (OidIsValid(relid))
	{
		LockRelationOid(relid, AccessShareLock);
		/* as the lock's first taking does; a REVOKE takes no lock on the table */
		AcceptInvalidationMessages();
		if (get_relname_relid(name, schema) == relid)
			return relid;
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_TABLE),
			 errmsg("table %s of mf_ext is missing from schema %s, or was just re-created",
					name, get_namespace_name(schema)),
			 errhint("Run the call again; if the table is missing, re-create the extension: DROP EXTENSION mf_ext; CREATE EXTENSION mf_ext.")));
	return InvalidOid;			/* not reached */
}

/*
 * The model tables of the extension in schema, with the current role's
 * right to read them checked as a SELECT of the columns the cache reads
 * would check it (schema USAGE, SELECT, row-level security: an error where
 * row_security = off would hide rows).
 */
static ModelTables
check_model_tables(Oid schema)
{
	static const char *const model_columns[] = {
		"model_id", "version", "k", "n_users", "n_items", "name", "biases",
		"global_mean", "feedback", "lambda", "weighted_lambda", "alpha", "solver",
		"nonnegative", "user_key_type", "item_key_type"
	};
	static const char *const user_columns[] = {"model_id", "user_id", "factors", "bias", "user_key"};
	static const char *const item_columns[] = {"model_id", "item_id", "factors", "bias", "item_key"};
	ModelTables tables;
	AclResult	usage = pg_namespace_aclcheck(schema, GetUserId(), ACL_USAGE);

	if (usage != ACLCHECK_OK)
		aclcheck_error(usage, OBJECT_SCHEMA, get_namespace_name(schema));
	tables.schema = schema;
	tables.models = lock_model_table("mf_models", schema);
	tables.users = lock_model_table("mf_user_factors", schema);
	tables.items = lock_model_table("mf_item_factors", schema);
	check_select(tables.models, model_columns, lengthof(model_columns));
	check_select(tables.users, user_columns, lengthof(user_columns));
	check_select(tables.items, item_columns, lengthof(item_columns));
	tables.models_rls = check_enable_rls(tables.models, InvalidOid, false) == RLS_ENABLED;
	tables.factors_rls = check_enable_rls(tables.users, InvalidOid, false) == RLS_ENABLED ||
		check_enable_rls(tables.items, InvalidOid, false) == RLS_ENABLED;
	return tables;
}

/* Raises the error for a stored model row that no training writes. */
static void
corrupt_row(const ModelRow *row, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("the row of model %d in mf_models is not valid", row->model_id),
			 errdetail("%s", detail),
			 errhint("Retrain the model with mf_train, or restore mf_models from a dump.")));
}

/*
 * Reads the model's row by id or (when name is not NULL) by name, as the
 * current role, and checks it is one a training could have written.
 * Until ALTER EXTENSION UPDATE has run, mf_models may lack the columns of
 * 0.3 (biases) and 0.4 (feedback): its models have neither.
 */
static ModelRow
read_model_row(const ModelTables *tables, int32 model_id, text *name)
{
	static const char *const columns[] = {
		/* 0.1: trained in double precision */
		"false, NULL::float8, false, lambda, false, NULL::float8, false, false, false, false, true",
		/* 0.2 */
		"false, NULL::float8, false, lambda, false, NULL::float8, false, false, false, false, double_precision",
		/* 0.3 */
		"biases, global_mean, false, lambda, weighted_lambda, NULL::float8, false, false, false, false,"
		" double_precision",
		/* 0.4 */
		"biases, global_mean, feedback = 'implicit', lambda, weighted_lambda, alpha, solver = 'cg', nonnegative,"
		" user_key_type IS NOT NULL, item_key_type IS NOT NULL, double_precision"
	};
	static const Oid types[] = {INT4OID, INT8OID, INT4OID, INT8OID, INT8OID, TEXTOID,
		BOOLOID, FLOAT8OID, BOOLOID, FLOAT8OID, BOOLOID, FLOAT8OID, BOOLOID, BOOLOID,
	BOOLOID, BOOLOID, BOOLOID};
	static MfSavedPlan plans[2][lengthof(columns)];
	Oid			argtype = name ? TEXTOID : INT4OID;
	Datum		arg = name ? PointerGetDatum(name) : Int32GetDatum(model_id);
	int			level = get_attnum(tables->models, "feedback") != InvalidAttrNumber ? 3
		: get_attnum(tables->models, "global_mean") != InvalidAttrNumber ? 2
		: get_attnum(tables->models, "double_precision") != InvalidAttrNumber ? 1 : 0;
	SPIPlanPtr	plan;
	ModelRow	row;
	TupleDesc	desc;
	HeapTuple	tuple;
	bool		isnull;
	bool		mean_null;

	plan = mf_saved_plan(&plans[name != NULL][level], tables->schema,
						 psprintf("SELECT model_id, version, k, n_users, n_items, name, %s FROM %%s.mf_models WHERE %s = $1",
								  columns[level], name ? "name" : "model_id"),
						 1, &argtype);
	if (SPI_execute_plan(plan, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the model's row from mf_models");
	if (SPI_processed == 0)
	{
		if (name)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("model \"%s\" does not exist", text_to_cstring(name)),
					 errhint("Train it with mf_train, or see SELECT model_id, name FROM mf_models.")));
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model %d does not exist", model_id),
				 errhint("Train it with mf_train, or see SELECT model_id, name FROM mf_models.")));
	}
	desc = SPI_tuptable->tupdesc;
	mf_check_column_types(desc, NULL, types, lengthof(types), "mf_models");
	tuple = SPI_tuptable->vals[0];
	row.model_id = DatumGetInt32(SPI_getbinval(tuple, desc, 1, &isnull));
	row.version = DatumGetInt64(SPI_getbinval(tuple, desc, 2, &isnull));
	row.k = DatumGetInt32(SPI_getbinval(tuple, desc, 3, &isnull));
	row.n_users = DatumGetInt64(SPI_getbinval(tuple, desc, 4, &isnull));
	row.n_items = DatumGetInt64(SPI_getbinval(tuple, desc, 5, &isnull));
	row.name = SPI_getvalue(tuple, desc, 6);
	row.biases = DatumGetBool(SPI_getbinval(tuple, desc, 7, &isnull));
	row.mean = DatumGetFloat8(SPI_getbinval(tuple, desc, 8, &mean_null));
	row.implicit = DatumGetBool(SPI_getbinval(tuple, desc, 9, &isnull));
	row.lambda = DatumGetFloat8(SPI_getbinval(tuple, desc, 10, &isnull));
	row.weighted_lambda = DatumGetBool(SPI_getbinval(tuple, desc, 11, &isnull));
	row.alpha = DatumGetFloat8(SPI_getbinval(tuple, desc, 12, &isnull));
	if (isnull)
		row.alpha = 0.0;
	row.conjugate_gradient = DatumGetBool(SPI_getbinval(tuple, desc, 13, &isnull));
	row.nonnegative = DatumGetBool(SPI_getbinval(tuple, desc, 14, &isnull));
	row.user_keys = DatumGetBool(SPI_getbinval(tuple, desc, 15, &isnull));
	row.item_keys = DatumGetBool(SPI_getbinval(tuple, desc, 16, &isnull));
	row.double_precision = DatumGetBool(SPI_getbinval(tuple, desc, 17, &isnull));
	row.models_relid = tables->models;

	/* what the serving and fold-in code relies on */
	if (row.k < 0 || row.k > MF_MAX_K)
		corrupt_row(&row, psprintf("k = %d is outside 0 to %d.", row.k, MF_MAX_K));
	if (row.k == 0 && !row.biases)
		corrupt_row(&row, "k = 0 without biases: the model predicts nothing.");
	if (row.n_users < 0 || row.n_users > PG_INT32_MAX ||
		row.n_items < 0 || row.n_items > PG_INT32_MAX)
		corrupt_row(&row, psprintf("n_users = " INT64_FORMAT " and n_items = " INT64_FORMAT " must be between 0 and %d.",
								   row.n_users, row.n_items, PG_INT32_MAX));
	if (row.biases && (mean_null || !isfinite(row.mean)))
		corrupt_row(&row, "It has biases but no finite global_mean.");
	if (!(row.lambda >= 0) || isinf(row.lambda))
		corrupt_row(&row, psprintf("lambda = %g is not a finite number >= 0.", row.lambda));
	if (row.implicit && !(row.alpha > 0 && isfinite(row.alpha)))
		corrupt_row(&row, psprintf("alpha = %g of an implicit-feedback model is not a finite number > 0.",
								   row.alpha));
	return row;
}

/* State of load_side while it scans one side's factor rows. */
typedef struct SideLoad
{
	const ModelRow *row;
	const char *side;			/* "user" or "item" */
	int64		capacity;		/* n_users or n_items of the model row */
	int64		n;				/* rows so far */
	int64	   *ids;
	double	   *factors;
	double	   *bias;			/* with biases, else NULL */
	char	  **keys;			/* with text keys, else NULL */
	MemoryContext cxt;			/* where the keys go */
} SideLoad;

/* Column column of the factor row being loaded, which must not be NULL. */
static Datum
required_value(HeapTuple tuple, TupleDesc desc, int column, const SideLoad *load,
			   const char *what)
{
	bool		isnull;
	Datum		value = SPI_getbinval(tuple, desc, column, &isnull);

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("stored %s of %s " INT64_FORMAT " in model %d is NULL",
						what, load->side, load->ids[load->n], load->row->model_id),
				 errhint("Retrain the model with mf_train, or restore its factor rows.")));
	return value;
}

/* mf_spi_scan callback: appends one factor row (and bias and key). */
static void
load_factor_row(HeapTuple tuple, TupleDesc desc, void *arg)
{
	SideLoad   *load = arg;
	bool		isnull;
	Datum		value;

	if (load->n >= load->capacity)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("model %d has more %s factor rows than its n_%ss (" INT64_FORMAT ")",
						load->row->model_id, load->side, load->side, load->capacity),
				 errhint("Retrain the model with mf_train.")));
	load->ids[load->n] = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
	value = SPI_getbinval(tuple, desc, 2, &isnull);
	mf_factors_from_datum(value, isnull, load->row->k,
						  load->factors + (Size) load->n * load->row->k,
						  load->side, load->ids[load->n]);
	if (load->bias)
	{
		load->bias[load->n] = DatumGetFloat8(required_value(tuple, desc, 3, load, "bias"));
		if (!isfinite(load->bias[load->n]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("stored bias of %s " INT64_FORMAT " in model %d is not finite",
							load->side, load->ids[load->n], load->row->model_id),
					 errhint("Retrain the model with mf_train, or restore its factor rows.")));
	}
	if (load->keys)
		load->keys[load->n] = MemoryContextStrdup(load->cxt,
												  TextDatumGetCString(required_value(tuple, desc, 4,
																					 load, "key")));
	load->n++;
}

/*
 * Reads one side's factor rows into ids (ascending), factors and, with
 * biases, bias; returns how many there were.
 */
static int32
load_side(const char *schema, const ModelRow *row, bool users, int64 capacity,
		  int64 *ids, double *factors, double *bias, char **keys,
		  MemoryContext cxt)
{
	static const Oid types[] = {INT8OID, FLOAT8ARRAYOID, FLOAT8OID, TEXTOID};
	SideLoad	load = {row, users ? "user" : "item", capacity, 0, ids, factors, bias,
	keys, cxt};
	Oid			argtype = INT4OID;
	Datum		arg = Int32GetDatum(row->model_id);

	mf_spi_scan(psprintf("SELECT %s_id, factors, %s, %s FROM %s.mf_%s_factors WHERE model_id = $1 ORDER BY %s_id",
						 load.side, bias ? "bias" : "NULL::float8",
						 keys ? (users ? "user_key" : "item_key") : "NULL::text",
						 schema, load.side, load.side),
				1, &argtype, &arg, types, lengthof(types),
				users ? "mf_user_factors" : "mf_item_factors", load_factor_row, &load);
	return (int32) load.n;
}

/* True when every value survives a round trip through float. */
static bool
all_floats(const double *values, Size n)
{
	for (Size i = 0; i < n; i++)
		if ((double) (float) values[i] != values[i])
			return false;
	return true;
}

static float *
to_floats(MemoryContext cxt, const double *values, Size n)
{
	float	   *out = mf_alloc_aligned(cxt, n, sizeof(float));

	for (Size i = 0; i < n; i++)
		out[i] = (float) values[i];
	return out;
}

/*
 * Keeps the factors of a model trained in single precision as floats
 * (unless edited values would not survive): half the memory, and half the
 * cache lines per score.  Fold-in and refit then solve in the precision
 * the model was trained in, as its factors are held.
 */
static void
narrow_to_float(MfModel *model, bool double_precision)
{
	MfFactors  *f = &model->factors;
	Size		n_user = (Size) f->n_users * f->k;
	Size		n_item = (Size) f->n_items * f->k;
	double	   *users = f->user_factors;
	double	   *items = f->item_factors;

	f->single = !double_precision && all_floats(users, n_user) && all_floats(items, n_item);
	if (!f->single)
		return;
	f->user_factors = to_floats(model->cxt, users, n_user);
	f->item_factors = to_floats(model->cxt, items, n_item);
	mf_free_aligned(users);
	mf_free_aligned(items);
}

/*
 * Loads a model's factors, as the current role, into a new context made a
 * child of parent once the load has succeeded (until then it hangs below
 * the caller's, so an error frees it).  (SPI calls change
 * CurrentMemoryContext, so every allocation names its context.)
 */
static MfModel *
load_model(const char *schema, const ModelRow *row, MemoryContext parent)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "mf_ext cached model",
											  ALLOCSET_DEFAULT_SIZES);
	MfModel    *model = MemoryContextAllocZero(cxt, sizeof(MfModel));
	MfFactors  *f = &model->factors;

	model->cxt = cxt;
	model->models_relid = row->models_relid;
	model->name = MemoryContextStrdup(cxt, row->name);
	model->model_id = row->model_id;
	model->version = row->version;
	f->k = row->k;
	f->implicit = row->implicit;
	f->biases = row->biases;
	model->fit.k = row->k;
	model->fit.lambda = row->lambda;
	model->fit.weighted_lambda = row->weighted_lambda;
	model->fit.implicit = row->implicit;
	model->fit.alpha = row->alpha;
	model->fit.conjugate_gradient = row->conjugate_gradient;
	model->fit.nonnegative = row->nonnegative;
	model->fit.biases = row->biases;
	if (f->biases)
	{
		f->mean = row->mean;
		f->user_bias = mf_alloc_array(cxt, row->n_users, sizeof(double));
		f->item_bias = mf_alloc_array(cxt, row->n_items, sizeof(double));
	}
	model->item_ids = mf_alloc_array(cxt, row->n_items, sizeof(int64));
	f->user_factors = mf_alloc_aligned(cxt, mul_size(row->n_users, row->k), sizeof(double));
	f->item_factors = mf_alloc_aligned(cxt, mul_size(row->n_items, row->k), sizeof(double));
	model->user_ids = mf_alloc_array(cxt, row->n_users, sizeof(int64));
	if (row->user_keys)
		model->user_keys = mf_alloc_array(cxt, row->n_users, sizeof(char *));
	if (row->item_keys)
		model->item_keys = mf_alloc_array(cxt, row->n_items, sizeof(char *));
	f->n_users = load_side(schema, row, true, row->n_users, model->user_ids,
						   f->user_factors, f->user_bias, model->user_keys, cxt);
	f->n_items = load_side(schema, row, false, row->n_items, model->item_ids,
						   f->item_factors, f->item_bias, model->item_keys, cxt);
	if (model->user_keys)
		model->user_keymap = mf_key_index(cxt, model->user_keys, f->n_users);
	if (model->item_keys)
		model->item_keymap = mf_key_index(cxt, model->item_keys, f->n_items);
	model->user_map = mf_id_index_from_sorted(cxt, model->user_ids, f->n_users);
	model->item_map = mf_id_index_from_sorted(cxt, model->item_ids, f->n_items);
	narrow_to_float(model, row->double_precision);
	model->fit.single = f->single;

	MemoryContextSetParent(cxt, parent);
	return model;
}

/* Frees a cached model and removes its entry. */
static void
evict(CacheEntry *entry)
{
	int32		model_id = entry->model_id;

	if (entry->validated.xids)
		pfree(entry->validated.xids);
	MemoryContextDelete(entry->model->cxt);
	cache_generation++;
	hash_search(model_cache, &model_id, HASH_REMOVE, NULL);
}

/*
 * Keeps the cache small: evicts models that another model_id now holds the
 * name of (dropped or replaced), and the least recently used ones beyond
 * MF_CACHE_MAX_MODELS.  keep is the entry in use.
 */
static void
evict_stale(CacheEntry *keep)
{
	HASH_SEQ_STATUS scan;
	CacheEntry *entry;
	CacheEntry *oldest = NULL;

	hash_seq_init(&scan, model_cache);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		if (entry == keep)
			continue;
		if (strcmp(entry->model->name, keep->model->name) == 0)
			evict(entry);		/* removing the current element is allowed */
		else if (oldest == NULL || entry->model->last_used < oldest->model->last_used)
			oldest = entry;
	}
	if (oldest != NULL && hash_get_num_entries(model_cache) > MF_CACHE_MAX_MODELS)
		evict(oldest);
}

/*
 * read_model_row, but when a model looked up by id is gone (dropped), its
 * cached factors are freed before the error propagates.
 */
static ModelRow
read_model_row_or_forget(const ModelTables *tables, int32 model_id, text *name)
{
	ModelRow	row;

	PG_TRY();
	{
		row = read_model_row(tables, model_id, name);
	}
	PG_CATCH();
	{
		CacheEntry *entry = name ? NULL :
		hash_search(model_cache, &model_id, HASH_FIND, NULL);

		if (entry)
			evict(entry);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return row;
}

/* Whether the call site state last looked up the model given by model_id or name. */
static bool
same_model_argument(const CallState *state, int32 model_id, text *name)
{
	if (name == NULL)
		return state->name == NULL && state->model_id == model_id;
	return state->name != NULL &&
		VARSIZE_ANY_EXHDR(name) == VARSIZE_ANY_EXHDR(state->name) &&
		memcmp(VARDATA_ANY(name), VARDATA_ANY(state->name), VARSIZE_ANY_EXHDR(name)) == 0;
}

/* Records in the call site's state which model its lookup found. */
static void
remember_call(FunctionCallInfo fcinfo, CallState *state, MfModel *model,
			  text *name, Snapshot snap)
{
	state->model_id = name ? 0 : model->model_id;
	if (state->name)
		pfree(state->name);
	state->name = name ? (text *) MemoryContextAlloc(fcinfo->flinfo->fn_mcxt,
													 VARSIZE_ANY(name)) : NULL;
	if (name)
		memcpy(state->name, name, VARSIZE_ANY(name));
	/* without a snapshot there is nothing to recognise the next call by */
	state->model = snap ? model : NULL;
	if (snap)
		key_set(&state->key, snap, fcinfo->flinfo->fn_mcxt);
	else
		state->key.valid = false;
}

/* The cache's hash table, made on first use. */
static void
cache_init(void)
{
	HASHCTL		ctl;

	if (model_cache != NULL)
		return;
	ctl.keysize = sizeof(int32);
	ctl.entrysize = sizeof(CacheEntry);
	ctl.hcxt = CacheMemoryContext;
	model_cache = hash_create("mf_ext model cache", MF_CACHE_MAX_MODELS, &ctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	RegisterXactCallback(abort_callback, NULL);
	RegisterSubXactCallback(subabort_callback, NULL);
}

/*
 * The shared cache entry for row's model, (re)loaded unless the cached
 * factors are those of row's version.
 */
static CacheEntry *
shared_entry(const ModelTables *tables, const ModelRow *row)
{
	CacheEntry *entry = hash_search(model_cache, &row->model_id, HASH_FIND, NULL);
	bool		found;

	if (entry != NULL && (entry->model->version != row->version ||
						  entry->model->models_relid != row->models_relid))
	{
		evict(entry);
		entry = NULL;
	}
	else if (entry != NULL && strcmp(entry->model->name, row->name) != 0)
	{
		/*
		 * Renamed without a retrain: the shortcut by name (find_entry) must
		 * find it under the name this snapshot gives it, and only that.
		 */
		entry->model->name = MemoryContextStrdup(entry->model->cxt, row->name);
	}
	if (entry == NULL)
	{
		MfModel    *model = load_model(quote_identifier(get_namespace_name(tables->schema)),
									   row, CacheMemoryContext);

		entry = hash_search(model_cache, &row->model_id, HASH_ENTER, &found);
		entry->model = model;
		memset(&entry->validated, 0, sizeof(ViewKey));
	}
	return entry;
}

/*
 * The model for this call: the call site's own when its key still
 * matches, else after the role's privileges are checked, the shared
 * cache's when mf_models confirms its version (or confirmed it under the
 * same snapshot), loaded anew otherwise.
 */
static MfModel *
cache_lookup(FunctionCallInfo fcinfo, int32 model_id, text *name)
{
	CallState  *state = fcinfo->flinfo->fn_extra;
	Snapshot	snap = ActiveSnapshotSet() ? GetActiveSnapshot() : NULL;
	ModelTables tables;
	ModelRow	row;
	CacheEntry *entry;
	MfModel    *model;
	int			nest_level;

	if (state == NULL)
	{
		state = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(CallState));
		fcinfo->flinfo->fn_extra = state;
	}
	else if (state->model != NULL && snap != NULL && key_matches(&state->key, snap, false) &&
			 same_model_argument(state, model_id, name))
		return state->model;

	cache_init();
	if (state->restricted)
	{
		/* loaded for a key that no longer holds */
		MemoryContextDelete(state->restricted->cxt);
		state->restricted = NULL;
		state->model = NULL;
	}
	tables = check_model_tables(get_func_namespace(fcinfo->flinfo->fn_oid));

	/*
	 * A shared model whose row this snapshot has already confirmed; but a
	 * serializable transaction reads the row itself, for the predicate lock
	 * that makes a concurrent retrain a conflict.
	 */
	entry = snap != NULL && !tables.models_rls && !tables.factors_rls &&
		!IsolationIsSerializable() ? find_entry(model_id, name) : NULL;
	if (entry != NULL && key_matches(&entry->validated, snap, true))
	{
		entry->model->last_used = ++lookup_clock;
		remember_call(fcinfo, state, entry->model, name, snap);
		return entry->model;
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	nest_level = mf_internal_sql_begin();
	row = read_model_row_or_forget(&tables, model_id, name);
	if (tables.factors_rls)
	{
		/* the factors this role may see, for this call site alone */
		model = load_model(quote_identifier(get_namespace_name(tables.schema)), &row,
						   fcinfo->flinfo->fn_mcxt);
		state->restricted = model;
	}
	else
	{
		entry = shared_entry(&tables, &row);
		entry->model->last_used = ++lookup_clock;
		evict_stale(entry);		/* first: an eviction changes the generation */
		if (snap != NULL && !tables.models_rls)
			key_set(&entry->validated, snap, CacheMemoryContext);
		else
			entry->validated.valid = false;
		model = entry->model;
	}
	mf_internal_sql_end(nest_level);
	SPI_finish();

	remember_call(fcinfo, state, model, name, snap);
	return model;
}

MfModel *
mf_cache_model_by_id(FunctionCallInfo fcinfo, int32 model_id)
{
	return cache_lookup(fcinfo, model_id, NULL);
}

MfModel *
mf_cache_model_by_name(FunctionCallInfo fcinfo, text *name)
{
	return cache_lookup(fcinfo, 0, name);
}
