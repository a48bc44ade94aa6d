/*-------------------------------------------------------------------------
 *
 * cache.c
 *	  Per-backend cache of models' factors, for the serving functions.
 *
 *	  An answer may only use what the calling role could read itself, in
 *	  the statement's snapshot (DESIGN.md: the cache follows the caller).
 *	  So every lookup is keyed by a ViewKey: the role (GetUserId()) and the
 *	  session's user (a policy may name session_user), the
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
 *	  Where row-level security applied to that lookup, also only while every
 *	  setting has the value it had then: a policy may read any of them
 *	  (current_setting('app.tenant')), and a SET changes nothing the key
 *	  holds (a PL/pgSQL loop that set another tenant had been served the
 *	  model of the tenant before).
 *	  Any other lookup checks the role's privileges on the three model
 *	  tables (as a SELECT would: table or column SELECT, schema USAGE,
 *	  row-level security) and then looks the model's version up in
 *	  mf_models, as the role, under the active snapshot, unless a lookup
 *	  with the same key but for the role has just done so and no row-level
 *	  security applies to mf_models; the factors cached in the backend are
 *	  reused while that version, the write that made the row (its xmin,
 *	  and its command id where it was this backend's: same_row_write)
 *	  and the OID of mf_models (new after the extension is re-created)
 *	  match.  mf_train draws every version from a sequence, but a restored
 *	  dump sets the sequence back, and a later training may get a version
 *	  number a session has cached other factors of (which it had served);
 *	  two writes are never one.
 *
 *	  Where row-level security applies to a factor table for the role, the
 *	  factors it may read are loaded for that call site and key alone,
 *	  never shared with other roles or lookups.
 *
 *-------------------------------------------------------------------------
 */
#include "cache.h"
#include "source.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc_tables.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
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
	Oid			session_role;	/* GetSessionUserId(), which policies may read */
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
	bool		rls;			/* row-level security applied to the lookup */
	StringInfoData settings;	/* then: every setting's value (settings_save) */
	uint8		memo[MF_CALL_MEMO_SLOTS];	/* mf_call_memo */
} CallState;

static HTAB *model_cache = NULL;

/*
 * Bumped whenever a cached model is freed, and on every (sub)transaction
 * abort (which may have rolled back a retrain), so that every key taken
 * before no longer matches.
 */
static uint64 cache_generation = 0;

/* Counts lookups; each cached model remembers when it was last used. */
static uint64 lookup_clock = 0;

static void evict(CacheEntry *entry);

/*
 * Forgets the cached models that the aborting transaction read after it
 * had written (mf_cache_note_read): its writes, rolled back, may be in
 * them (a hand edit of the factor tables, undone).  A prepared transaction
 * counts as aborting: this backend will not learn how it ends (ROLLBACK
 * PREPARED may undo it).  For a subtransaction's
 * abort (sub), only those it may have written into: read while it was
 * open (ids are handed out in order, so the subtransactions open at a read
 * have its id or lower), and only if it wrote (it, or a subtransaction
 * within it, has a transaction id).
 */
static void
forget_models_read_in_aborted(SubTransactionId sub)
{
	TransactionId xid = GetTopTransactionIdIfAny();
	HASH_SEQ_STATUS scan;
	CacheEntry *entry;

	if (model_cache == NULL || !TransactionIdIsValid(xid) ||
		(sub != InvalidSubTransactionId && !TransactionIdIsValid(GetCurrentTransactionIdIfAny())))
		return;
	hash_seq_init(&scan, model_cache);
	while ((entry = hash_seq_search(&scan)) != NULL)
		if (TransactionIdEquals(entry->model->read_in_writer, xid) &&
			(sub == InvalidSubTransactionId || sub <= entry->model->read_in_subxact))
			evict(entry);		/* (dynahash lets the current entry go) */
}

static void
abort_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		forget_models_read_in_aborted(InvalidSubTransactionId);
		cache_generation++;
	}
}

static void
subabort_callback(SubXactEvent event, SubTransactionId sub, SubTransactionId parent,
				  void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		forget_models_read_in_aborted(sub);
		cache_generation++;
	}
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
		key->session_role == GetSessionUserId() &&
		key->generation == cache_generation &&
		key->curcid == snap->curcid &&
		key->xmin == snap->xmin && key->xmax == snap->xmax &&
		key->xcnt == snap->xcnt && key->subxcnt == snap->subxcnt &&
		key->suboverflowed == snap->suboverflowed &&
		TransactionIdEquals(key->own_xid, GetTopTransactionIdIfAny()) &&
		(snap->xcnt == 0 ||
		 memcmp(key->xids, snap->xip, sizeof(TransactionId) * snap->xcnt) == 0) &&
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
	key->session_role = GetSessionUserId();
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

/*
 * One setting's value as settings_save keeps it: a bool's, int's, real's
 * or enum's bits, or a string's length with its NUL (the bytes follow the
 * array); kind its type, with MF_SETTING_NULL for a NULL string and
 * MF_SETTING_DEFAULT for a setting at its built-in default (source
 * PGC_S_DEFAULT: its value is then the default, and is not read).
 */
typedef struct SavedSetting
{
	uint64		value;
	uint32		kind;
} SavedSetting;

#define MF_SETTING_NULL		0x100
#define MF_SETTING_DEFAULT	0x200

/* setting's value as a SavedSetting, into *out, and a string's bytes, into *string. */
static inline void
setting_value(const struct config_generic *setting, SavedSetting *out, const char **string)
{
	out->value = 0;
	out->kind = setting->vartype;
	*string = NULL;
	if (setting->source == PGC_S_DEFAULT)
	{
		out->kind |= MF_SETTING_DEFAULT;
		return;
	}
	switch (setting->vartype)
	{
		case PGC_BOOL:
			out->value = *((const struct config_bool *) setting)->variable;
			break;
		case PGC_INT:
			out->value = (uint32) *((const struct config_int *) setting)->variable;
			break;
		case PGC_REAL:
			memcpy(&out->value, ((const struct config_real *) setting)->variable, sizeof(double));
			break;
		case PGC_ENUM:
			out->value = (uint32) *((const struct config_enum *) setting)->variable;
			break;
		case PGC_STRING:
			if ((*string = *((const struct config_string *) setting)->variable) == NULL)
				out->kind |= MF_SETTING_NULL;
			else
				out->value = strlen(*string) + 1;
			break;
	}
}

/*
 * Saves every setting's value, the session's custom ones (app.tenant)
 * too, into out (n, the n SavedSettings, then the strings' bytes), for
 * settings_unchanged.
 */
static void
settings_save(StringInfo out)
{
	struct config_generic **settings = get_guc_variables();
	uint64		n = GetNumConfigOptions();

	Size		array = sizeof(n) + n * sizeof(SavedSetting);

	/* n and the array first, filled in place as the strings are appended */
	resetStringInfo(out);
	enlargeStringInfo(out, array);
	memcpy(out->data, &n, sizeof(n));
	out->len = (int) array;
	out->data[out->len] = '\0';
	for (uint64 s = 0; s < n; s++)
	{
		SavedSetting saved;
		const char *string;

		setting_value(settings[s], &saved, &string);
		memcpy(out->data + sizeof(n) + s * sizeof(SavedSetting), &saved, sizeof(saved));
		if (string != NULL)
			appendBinaryStringInfo(out, string, saved.value);
	}
}

/*
 * Whether every setting has the value settings_save saved in saved: under
 * row-level security, once a call (about a microsecond for PostgreSQL's
 * few hundred settings).
 */
static bool
settings_unchanged(const StringInfoData *saved)
{
	struct config_generic **settings = get_guc_variables();
	uint64		n = GetNumConfigOptions();
	const SavedSetting *values = (const SavedSetting *) (saved->data + sizeof(n));
	const char *strings = (const char *) (values + n);
	const char *end = saved->data + saved->len;

	if (memcmp(saved->data, &n, sizeof(n)) != 0 || strings > end)
		return false;
	for (uint64 s = 0; s < n; s++)
	{
		SavedSetting current;
		const char *string;

		setting_value(settings[s], &current, &string);
		if (current.kind != values[s].kind || current.value != values[s].value)
			return false;
		if (string != NULL)
		{
			if ((Size) (end - strings) < current.value ||
				memcmp(strings, string, current.value) != 0)
				return false;
			strings += current.value;
		}
	}
	return strings == end;
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
		if (strcmp(entry->model->row.name, wanted) == 0)
		{
			hash_seq_term(&scan);
			break;
		}
	pfree(wanted);
	return entry;
}

/*
 * row's strings, copied into cxt: the row was read in SPI's context, which
 * goes at SPI_finish.
 */
static void
copy_row_strings(MfModelRow *row, MemoryContext cxt)
{
	row->name = MemoryContextStrdup(cxt, row->name);
	row->source = MemoryContextStrdup(cxt, row->source);
	row->user_col = MemoryContextStrdup(cxt, row->user_col);
	row->item_col = MemoryContextStrdup(cxt, row->item_col);
	row->rating_col = MemoryContextStrdup(cxt, row->rating_col);
}

/* True when every value survives a round trip through float. */
static bool
all_floats(const double *values, Size n)
{
	for (Size i = 0; i < n; i++)
	{
		if ((double) (float) values[i] != values[i])
			return false;
		mf_interrupts_every(i, MF_INTERRUPT_VALUES);
	}
	return true;
}

static float *
to_floats(MemoryContext cxt, const double *values, Size n)
{
	float	   *out = mf_alloc_aligned(cxt, n, sizeof(float));

	for (Size i = 0; i < n; i++)
	{
		out[i] = (float) values[i];
		mf_interrupts_every(i, MF_INTERRUPT_VALUES);
	}
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
	double	   *user_implicit = f->user_implicit;
	double	   *item_implicit = f->item_implicit;

	f->single = !double_precision && all_floats(users, n_user) && all_floats(items, n_item) &&
		(user_implicit == NULL ||
		 (all_floats(user_implicit, n_user) && all_floats(item_implicit, n_item)));
	if (!f->single)
		return;
	f->user_factors = to_floats(model->cxt, users, n_user);
	f->item_factors = to_floats(model->cxt, items, n_item);
	mf_free_aligned(users);
	mf_free_aligned(items);
	if (user_implicit)
	{
		f->user_implicit = to_floats(model->cxt, user_implicit, n_user);
		f->item_implicit = to_floats(model->cxt, item_implicit, n_item);
		mf_free_aligned(user_implicit);
		mf_free_aligned(item_implicit);
	}
}

/*
 * Loads a model's factors, as the current role, into a new context made a
 * child of parent once the load has succeeded (until then it hangs below
 * the caller's, so an error frees it).  (SPI calls change
 * CurrentMemoryContext, so every allocation names its context.)
 */
static MfModel *
load_model(const MfSchema *schema, const MfModelRow *row, MemoryContext parent)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "mf_ext cached model",
											  ALLOCSET_DEFAULT_SIZES);
	MfModel    *model = MemoryContextAllocZero(cxt, sizeof(MfModel));
	MfFactors  *f = &model->factors;
	int			k = row->options.k;

	model->cxt = cxt;
	model->row = *row;
	copy_row_strings(&model->row, cxt);
	model->user_key_form = mf_key_form(row->user_key_type);
	model->item_key_form = mf_key_form(row->item_key_type);
	f->k = k;
	f->implicit = row->options.implicit;
	f->biases = row->options.biases;
	f->clip = row->options.clip;
	f->rating_min = row->rating_min;
	f->rating_max = row->rating_max;
	if (f->biases)
	{
		f->mean = row->global_mean;
		f->user_bias = mf_alloc_array(cxt, row->n_users, sizeof(double));
		f->item_bias = mf_alloc_array(cxt, row->n_items, sizeof(double));
	}
	model->user_ids = mf_alloc_array(cxt, row->n_users, sizeof(int64));
	model->item_ids = mf_alloc_array(cxt, row->n_items, sizeof(int64));
	f->user_factors = mf_alloc_aligned(cxt, mul_size(row->n_users, k), sizeof(double));
	f->item_factors = mf_alloc_aligned(cxt, mul_size(row->n_items, k), sizeof(double));
	if (OidIsValid(row->user_key_type))
		model->user_keys = mf_alloc_array(cxt, row->n_users, sizeof(char *));
	if (OidIsValid(row->item_key_type))
		model->item_keys = mf_alloc_array(cxt, row->n_items, sizeof(char *));
	/* implicit information: fold-in and refits read the implicit factors */
	if (row->options.implicit_weight > 0)
	{
		f->user_implicit = mf_alloc_aligned(cxt, mul_size(row->n_users, k), sizeof(double));
		f->item_implicit = mf_alloc_aligned(cxt, mul_size(row->n_items, k), sizeof(double));
	}
	f->n_users = mf_catalog_load_side(schema, row, MF_USERS, row->n_users, model->user_ids,
									  f->user_factors, f->user_bias, model->user_keys,
									  f->user_implicit, cxt);
	f->n_items = mf_catalog_load_side(schema, row, MF_ITEMS, row->n_items, model->item_ids,
									  f->item_factors, f->item_bias, model->item_keys,
									  f->item_implicit, cxt);
	if (model->user_keys)
		model->user_keymap = mf_key_map(cxt, model->user_keys, f->n_users);
	if (model->item_keys)
		model->item_keymap = mf_key_map(cxt, model->item_keys, f->n_items);
	model->user_map = mf_id_map_from_sorted(cxt, model->user_ids, f->n_users);
	model->item_map = mf_id_map_from_sorted(cxt, model->item_ids, f->n_items);
	narrow_to_float(model, !row->options.single);
	model->row.options.single = f->single;

	MemoryContextSetParent(cxt, parent);
	model->home = parent;
	return model;
}

/* Frees a model no longer cached, or, while it is pinned, leaves that to the last unpin. */
static void
release_model(MfModel *model)
{
	if (model->pins > 0)
		model->released = true;
	else
		MemoryContextDelete(model->cxt);
}

void
mf_cache_note_read(MfModel *model)
{
	TransactionId xid = GetTopTransactionIdIfAny();
	SubTransactionId sub = GetCurrentSubTransactionId();

	if (!TransactionIdIsValid(xid))
		return;
	if (!TransactionIdEquals(model->read_in_writer, xid))
	{
		model->read_in_writer = xid;
		model->read_in_subxact = sub;
	}
	else
		model->read_in_subxact = Max(model->read_in_subxact, sub);
}

void
mf_cache_pin(MfModel *model)
{
	if (model->pins++ == 0 && model->home != CacheMemoryContext)
		MemoryContextSetParent(model->cxt, TopTransactionContext);
}

void
mf_cache_unpin(MfModel *model)
{
	Assert(model->pins > 0);
	if (--model->pins > 0)
		return;
	if (model->released)
		MemoryContextDelete(model->cxt);
	else if (model->home != CacheMemoryContext)
		MemoryContextSetParent(model->cxt, model->home);
}

/* Frees a cached model (release_model) and removes its entry. */
static void
evict(CacheEntry *entry)
{
	int32		model_id = entry->model_id;

	if (entry->validated.xids)
		pfree(entry->validated.xids);
	release_model(entry->model);
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
		if (strcmp(entry->model->row.name, keep->model->row.name) == 0)
			evict(entry);		/* removing the current element is allowed */
		else if (oldest == NULL || entry->model->last_used < oldest->model->last_used)
			oldest = entry;
	}
	if (oldest != NULL && hash_get_num_entries(model_cache) > MF_CACHE_MAX_MODELS)
		evict(oldest);
}

/*
 * mf_catalog_read_model, but when a model looked up by id is gone
 * (dropped), its cached factors are freed before the error propagates.
 */
static MfModelRow
read_model_or_forget(MfModelTables *tables, int32 model_id, text *name)
{
	MfModelRow	row;

	PG_TRY();
	{
		row = mf_catalog_read_model(tables, model_id, name);
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

/*
 * Records in the call site's state which model its lookup found, and
 * whether row-level security applied to the lookup (rls: then with every
 * setting's value).
 */
static void
remember_call(FunctionCallInfo fcinfo, CallState *state, MfModel *model,
			  text *name, Snapshot snap, bool rls)
{
	state->model_id = name ? 0 : model->row.model_id;
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
	state->rls = rls;
	if (rls && snap)
	{
		if (state->settings.data == NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

			initStringInfo(&state->settings);
			MemoryContextSwitchTo(old);
		}
		settings_save(&state->settings);
	}
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
 * Where a model's factors were read from: the OID of mf_models, this
 * node's or, on a Citus worker, the coordinator's (new after the
 * extension is re-created there, when model_id and version start again).
 */
static Oid
models_source(const MfModelTables *tables)
{
	return tables->schema.remote ? tables->remote_models : tables->models;
}

/*
 * Whether the cached model's row and row were made by one write: the same
 * transaction and, where the cached row was this backend's own write when
 * it was read (a transaction may write the row again, the version number
 * too after the sequence was set back, and commit), the same command,
 * also after that commit.  Another transaction's command id is left alone:
 * an update of the row that rolled back, or is still running, rewrites
 * it, which would reload the factors for nothing.
 */
static bool
same_row_write(const MfModel *cached, const MfModelRow *row)
{
	return TransactionIdEquals(cached->row.row_xmin, row->row_xmin) &&
		(!cached->row_written_here || cached->row.row_cid == row->row_cid);
}

/*
 * The shared cache entry for row's model, (re)loaded unless the cached
 * factors are those of row's version.
 */
static CacheEntry *
shared_entry(const MfModelTables *tables, const MfModelRow *row)
{
	CacheEntry *entry = hash_search(model_cache, &row->model_id, HASH_FIND, NULL);
	bool		found;

	if (entry != NULL && (entry->model->row.version != row->version ||
						  !same_row_write(entry->model, row) ||
						  entry->model->models_relid != models_source(tables)))
	{
		evict(entry);
		entry = NULL;
	}
	else if (entry != NULL && strcmp(entry->model->row.name, row->name) != 0)
	{
		/*
		 * Renamed without a retrain: the shortcut by name (find_entry) must
		 * find it under the name this snapshot gives it, and only that.
		 */
		entry->model->row.name = MemoryContextStrdup(entry->model->cxt, row->name);
	}
	if (entry == NULL)
	{
		MfModel    *model = load_model(&tables->schema, row, CacheMemoryContext);

		model->models_relid = models_source(tables);
		model->row_written_here = TransactionIdIsCurrentTransactionId(row->row_xmin);
		mf_cache_note_read(model);
		entry = hash_search(model_cache, &row->model_id, HASH_ENTER, &found);
		entry->model = model;
		memset(&entry->validated, 0, sizeof(ViewKey));
	}
	return entry;
}

/* The call site's state, made zeroed on its first call. */
static CallState *
call_state(FunctionCallInfo fcinfo)
{
	if (fcinfo->flinfo->fn_extra == NULL)
		fcinfo->flinfo->fn_extra = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt,
														  sizeof(CallState));
	return fcinfo->flinfo->fn_extra;
}

uint8 *
mf_call_memo(FunctionCallInfo fcinfo)
{
	return call_state(fcinfo)->memo;
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
	CallState  *state = call_state(fcinfo);
	Snapshot	snap = ActiveSnapshotSet() ? GetActiveSnapshot() : NULL;
	MfSchema	schema;
	MfModelTables tables;
	MfModelRow	row;
	CacheEntry *entry;
	MfModel    *model;

	if (state->model != NULL && snap != NULL && key_matches(&state->key, snap, false) &&
		same_model_argument(state, model_id, name) &&
		(!state->rls || settings_unchanged(&state->settings)))
		return state->model;

	schema = mf_schema_of(fcinfo);
	cache_init();
	if (state->restricted)
	{
		/* loaded for a key that no longer holds */
		release_model(state->restricted);
		state->restricted = NULL;
		state->model = NULL;
	}
	tables = mf_catalog_open_for_reading(&schema);

	/*
	 * A shared model whose row this snapshot has already confirmed; but a
	 * serializable transaction reads the row itself, for the predicate lock
	 * that makes a concurrent retrain a conflict.
	 */
	entry = snap != NULL && !tables.models_rls && !tables.factors_rls &&
		!IsolationIsSerializable() && !schema.remote ? find_entry(model_id, name) : NULL;
	if (entry != NULL && key_matches(&entry->validated, snap, true))
	{
		mf_catalog_check_implicit_read(&tables, &entry->model->row);
		entry->model->last_used = ++lookup_clock;
		remember_call(fcinfo, state, entry->model, name, snap, false);
		return entry->model;
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	row = read_model_or_forget(&tables, model_id, name);
	mf_catalog_check_implicit_read(&tables, &row);
	if (tables.factors_rls)
	{
		/* the factors this role may see, for this call site alone */
		model = load_model(&tables.schema, &row, fcinfo->flinfo->fn_mcxt);
		model->models_relid = models_source(&tables);
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
	SPI_finish();

	remember_call(fcinfo, state, model, name, snap, tables.models_rls || tables.factors_rls);
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

MfModel *
mf_cache_model_current(FunctionCallInfo fcinfo, int32 model_id, Snapshot *kept)
{
	MfModel    *model;

	CommandCounterIncrement();
	if (kept)
	{
		*kept = RegisterSnapshot(GetTransactionSnapshot());
		PushActiveSnapshot(*kept);
	}
	else
		PushActiveSnapshot(GetTransactionSnapshot());
	model = cache_lookup(fcinfo, model_id, NULL);
	PopActiveSnapshot();
	return model;
}
