/*-------------------------------------------------------------------------
 *
 * cache.c
 *	  Per-backend cache of models' factors, for mf_predict / mf_recommend.
 *
 *	  Each cached model remembers the version it was loaded at.  A function
 *	  call looks the model's current version up in mf_models once per
 *	  statement (under that statement's snapshot), keeps the answer in its
 *	  fn_extra, and reuses the cached factors only while the versions match;
 *	  a later statement skips the look-up when no transaction has completed
 *	  anywhere since (so nothing in mf_models can look different).
 *	  mf_train draws every version from a sequence, so a version number is
 *	  never reused, not even after a rolled-back retrain; and since the
 *	  sequence starts afresh when the extension is re-created, the OID of
 *	  mf_models is part of the check too.
 *
 *-------------------------------------------------------------------------
 */
#include "mf_ext.h"

#include "catalog/pg_type.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "utils/lsyscache.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

/* Models cached per backend at the most. */
#define MF_CACHE_MAX_MODELS 8

/*
 * What identifies the data a lookup saw: the transaction and command, the
 * number of transactions completed anywhere when the snapshot was taken,
 * and the cache generation.
 */
typedef struct SnapshotKey
{
	LocalTransactionId lxid;
	CommandId	cid;
	uint64		completion_count;
	uint64		generation;
} SnapshotKey;

typedef struct CacheEntry
{
	int32		model_id;		/* hash key */
	MfModel    *model;			/* never NULL */
	SnapshotKey validated;		/* when mf_models last confirmed it */
} CacheEntry;

/* What a call site (FmgrInfo) knows about the model it used last. */
typedef struct CallState
{
	SnapshotKey key;			/* the statement it was looked up in */
	int32		model_id;
	text	   *name;			/* when called by name */
	MfModel    *model;
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
} ModelRow;

static HTAB *model_cache = NULL;

/*
 * Bumped whenever a cached model is freed, and on every (sub)transaction
 * abort (which may have rolled back a retrain), so that CallStates look
 * their model up again.
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

/* The key of the running statement; false when there is no snapshot. */
static bool
current_key(SnapshotKey *key)
{
	Snapshot	snapshot;

	if (!ActiveSnapshotSet())
		return false;
	snapshot = GetActiveSnapshot();
	key->lxid = MyProc->lxid;
	key->cid = snapshot->curcid;
	key->completion_count = snapshot->snapXactCompletionCount;
	key->generation = cache_generation;
	return true;
}

/* True when a and b are the same statement. */
static bool
same_statement(const SnapshotKey *a, const SnapshotKey *b)
{
	return a->lxid == b->lxid && a->cid == b->cid &&
		a->completion_count == b->completion_count &&
		a->generation == b->generation;
}

/*
 * True when nothing that now's statement can see in mf_models may differ
 * from what the lookup at then saw: no transaction has completed since
 * (a retrain commits, a rolled-back one aborts: both count), no abort in
 * this backend, and within one transaction no command since.  Lets a model
 * be reused across statements without asking mf_models again.
 */
static bool
nothing_changed(const SnapshotKey *then, const SnapshotKey *now)
{
	return then->completion_count != 0 &&	/* 0: unknown (imported snapshot) */
		then->completion_count == now->completion_count &&
		then->generation == now->generation &&
		(then->lxid != now->lxid || then->cid == now->cid);
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
 * Reads the model's row by id or (when name is not NULL) by name.  Until
 * ALTER EXTENSION UPDATE has run, mf_models may lack the columns of 0.3
 * (biases) and 0.4 (feedback): its models have neither.
 */
static ModelRow
read_model_row(Oid schema_oid, int32 model_id, text *name)
{
	static const char *const columns[] = {
		/* before 0.3 */
		"false, NULL::float8, false, lambda, false, NULL::float8, false, false, false, false",
		/* 0.3 */
		"biases, global_mean, false, lambda, weighted_lambda, NULL::float8, false, false, false, false",
		/* 0.4 */
		"biases, global_mean, feedback = 'implicit', lambda, weighted_lambda, alpha, solver = 'cg', nonnegative,"
		" user_key_type IS NOT NULL, item_key_type IS NOT NULL"
	};
	static MfSavedPlan plans[2][lengthof(columns)];
	Oid			argtype = name ? TEXTOID : INT4OID;
	Datum		arg = name ? PointerGetDatum(name) : Int32GetDatum(model_id);
	Oid			models_relid = get_relname_relid("mf_models", schema_oid);
	int			level = get_attnum(models_relid, "feedback") != InvalidAttrNumber ? 2
		: get_attnum(models_relid, "global_mean") != InvalidAttrNumber ? 1 : 0;
	SPIPlanPtr	plan;
	ModelRow	row;
	TupleDesc	desc;
	HeapTuple	tuple;
	bool		isnull;

	plan = mf_saved_plan(&plans[name != NULL][level], schema_oid,
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
	tuple = SPI_tuptable->vals[0];
	row.model_id = DatumGetInt32(SPI_getbinval(tuple, desc, 1, &isnull));
	row.version = DatumGetInt64(SPI_getbinval(tuple, desc, 2, &isnull));
	row.k = DatumGetInt32(SPI_getbinval(tuple, desc, 3, &isnull));
	row.n_users = DatumGetInt64(SPI_getbinval(tuple, desc, 4, &isnull));
	row.n_items = DatumGetInt64(SPI_getbinval(tuple, desc, 5, &isnull));
	row.name = SPI_getvalue(tuple, desc, 6);
	row.biases = DatumGetBool(SPI_getbinval(tuple, desc, 7, &isnull));
	row.mean = DatumGetFloat8(SPI_getbinval(tuple, desc, 8, &isnull));
	if (row.biases && isnull)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("model %d has biases but no global_mean", row.model_id),
				 errhint("Retrain the model with mf_train.")));
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
	row.models_relid = models_relid;
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
		load->bias[load->n] = DatumGetFloat8(required_value(tuple, desc, 3, load, "bias"));
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
	SideLoad	load = {row, users ? "user" : "item", capacity, 0, ids, factors, bias,
	keys, cxt};
	Oid			argtype = INT4OID;
	Datum		arg = Int32GetDatum(row->model_id);

	mf_spi_scan(psprintf("SELECT %s_id, factors, %s, %s FROM %s.mf_%s_factors WHERE model_id = $1 ORDER BY %s_id",
						 load.side, bias ? "bias" : "NULL::float8",
						 keys ? (users ? "user_key" : "item_key") : "NULL::text",
						 schema, load.side, load.side),
				1, &argtype, &arg, load_factor_row, &load);
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
	float	   *out = mf_alloc_array(cxt, n, sizeof(float));

	for (Size i = 0; i < n; i++)
		out[i] = (float) values[i];
	return out;
}

/*
 * Keeps the factors as floats when that loses nothing (a model trained in
 * single precision): half the memory, and half the cache lines per score.
 */
static void
narrow_to_float(MfModel *model)
{
	MfFactors  *f = &model->factors;
	Size		n_user = (Size) f->n_users * f->k;
	Size		n_item = (Size) f->n_items * f->k;
	double	   *users = f->user_factors;
	double	   *items = f->item_factors;

	f->single = all_floats(users, n_user) && all_floats(items, n_item);
	if (!f->single)
		return;
	f->user_factors = to_floats(model->cxt, users, n_user);
	f->item_factors = to_floats(model->cxt, items, n_item);
	pfree(users);
	pfree(items);
}

/*
 * Loads a model's factors into a new context.  The context hangs below the
 * caller's until the load has succeeded, so an error frees it.  (SPI calls
 * change CurrentMemoryContext, so every allocation names its context.)
 */
static MfModel *
load_model(const char *schema, const ModelRow *row)
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
	f->user_factors = mf_alloc_array(cxt, mul_size(row->n_users, row->k), sizeof(double));
	f->item_factors = mf_alloc_array(cxt, mul_size(row->n_items, row->k), sizeof(double));
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
	narrow_to_float(model);
	model->fit.single = f->single;

	MemoryContextSetParent(cxt, CacheMemoryContext);
	return model;
}

/* Frees a cached model and removes its entry. */
static void
evict(CacheEntry *entry)
{
	int32		model_id = entry->model_id;

	if (entry->model)
	{
		MemoryContextDelete(entry->model->cxt);
		cache_generation++;
	}
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
read_model_row_or_forget(Oid schema_oid, int32 model_id, text *name)
{
	ModelRow	row;

	PG_TRY();
	{
		row = read_model_row(schema_oid, model_id, name);
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

/* Records in the call site's state which model this statement uses. */
static void
remember_call(FunctionCallInfo fcinfo, CallState *state, MfModel *model,
			  text *name, const SnapshotKey *now)
{
	state->model_id = model->model_id;
	if (state->name)
		pfree(state->name);
	state->name = name ? (text *) MemoryContextAlloc(fcinfo->flinfo->fn_mcxt,
													 VARSIZE_ANY(name)) : NULL;
	if (name)
		memcpy(state->name, name, VARSIZE_ANY(name));
	/* without a snapshot there is nothing to recognise the statement by */
	state->model = now ? model : NULL;
	if (now)
		state->key = *now;
}

/*
 * The model for this call: from fn_extra when this statement has already
 * looked it up, from the cache when no transaction has completed since it
 * was last confirmed, else validated against mf_models and (re)loaded as
 * needed.
 */
static MfModel *
cache_lookup(FunctionCallInfo fcinfo, int32 model_id, text *name)
{
	CallState  *state = fcinfo->flinfo->fn_extra;
	Oid			schema_oid;
	ModelRow	row;
	CacheEntry *entry;
	SnapshotKey now;
	bool		have_key = current_key(&now);
	bool		found;

	if (state == NULL)
	{
		state = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(CallState));
		fcinfo->flinfo->fn_extra = state;
	}
	else if (state->model != NULL && have_key && same_statement(&state->key, &now) &&
			 (name ? (state->name != NULL &&
					  VARSIZE_ANY_EXHDR(name) == VARSIZE_ANY_EXHDR(state->name) &&
					  memcmp(VARDATA_ANY(name), VARDATA_ANY(state->name),
							 VARSIZE_ANY_EXHDR(name)) == 0)
			  : state->model_id == model_id))
		return state->model;

	if (model_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(int32);
		ctl.entrysize = sizeof(CacheEntry);
		ctl.hcxt = CacheMemoryContext;
		model_cache = hash_create("mf_ext model cache", MF_CACHE_MAX_MODELS, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		RegisterXactCallback(abort_callback, NULL);
		RegisterSubXactCallback(subabort_callback, NULL);
	}

	/* a model confirmed by an earlier statement that saw the same data */
	entry = have_key ? find_entry(model_id, name) : NULL;
	if (entry != NULL && nothing_changed(&entry->validated, &now))
	{
		entry->model->last_used = ++lookup_clock;
		remember_call(fcinfo, state, entry->model, name, &now);
		return entry->model;
	}

	schema_oid = get_func_namespace(fcinfo->flinfo->fn_oid);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	row = read_model_row_or_forget(schema_oid, model_id, name);

	entry = hash_search(model_cache, &row.model_id, HASH_FIND, NULL);
	if (entry != NULL && (entry->model->version != row.version ||
						  entry->model->models_relid != row.models_relid))
	{
		evict(entry);
		entry = NULL;
	}
	if (entry == NULL)
	{
		MfModel    *model = load_model(quote_identifier(get_namespace_name(schema_oid)),
									   &row);

		entry = hash_search(model_cache, &row.model_id, HASH_ENTER, &found);
		entry->model = model;
	}
	entry->model->last_used = ++lookup_clock;
	if (have_key)
		entry->validated = now;
	else
		memset(&entry->validated, 0xFF, sizeof(SnapshotKey));	/* matches nothing */
	evict_stale(entry);
	SPI_finish();

	remember_call(fcinfo, state, entry->model, name, have_key ? &now : NULL);
	return entry->model;
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
