/*-------------------------------------------------------------------------
 *
 * cache.h
 *	  A backend's models, as the serving functions use them: looked up per
 *	  caller (role and snapshot) and kept across calls (cache.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef MF_CACHE_H
#define MF_CACHE_H

#include "mf_ext.h"
#include "catalog.h"
#include "idmap.h"
#include "score.h"
#include "source.h"

#include "utils/snapshot.h"

/* A model's factors as cached in this backend. */
typedef struct MfModel
{
	Oid			models_relid;	/* OID of the mf_models it was read from */
	bool		row_written_here;	/* its row was this backend's uncommitted write
									 * when read (same_row_write) */
	uint64		last_used;		/* cache.c's lookup clock at the last use */
	MfModelRow	row;			/* its row of mf_models: id, name, version, options */
	int64	   *user_ids;		/* dense user index -> id */
	int64	   *item_ids;		/* dense item index -> id */
	MfIdMap    *user_map;
	MfIdMap    *item_map;
	char	  **user_keys;		/* dense index -> text key, or NULL (integer ids) */
	char	  **item_keys;
	mf_keymap_hash *user_keymap;	/* text key -> dense index, with keys */
	mf_keymap_hash *item_keymap;
	MfKeyForm	user_key_form;	/* form of the keys (uuid, character(n), */
	MfKeyForm	item_key_form;	/* name) from the type trained from */
	MfFactors	factors;		/* in the precision it was trained in */
	double	   *user_norms;		/* |u| per user, computed on first need */
	double	   *item_norms;		/* |v| per item, computed on first need */
	MfCodes    *codes[2];		/* per side (MfSide), a float model's codes for
								 * pre-scoring, made on first need */
	int64	   *rater_start;	/* item i's raters, from the users' rated_items,
								 * read on first need (serve.c): */
	uint8	   *raters;			/* raters[rater_start[i] .. rater_start[i + 1]),
								 * their ascending dense user indices as gaps
								 * (the first from -1), 7 bits a byte */
	TransactionId read_in_writer;	/* a transaction that had written (its
									 * writes may be in what it read of the
									 * model) when it read the model or its
									 * raters, else invalid: forgotten if it
									 * aborts, */
	SubTransactionId read_in_subxact;	/* or a subtransaction of it open then
										 * (this or a lower id) that wrote */
	MemoryContext cxt;
	MemoryContext home;			/* what cxt hangs below unpinned: the cache's,
								 * or one call site's (row-level security) */
	int			pins;			/* mf_cache_pin calls not yet undone */
	bool		released;		/* evicted while pinned: the last unpin frees it */
} MfModel;

/* The ids of one side. */
static inline const int64 *
mf_model_ids(const MfModel *model, MfSide side)
{
	return side == MF_USERS ? model->user_ids : model->item_ids;
}

/* The text keys of one side, or NULL for integer ids. */
static inline char *const *
mf_model_keys(const MfModel *model, MfSide side)
{
	return side == MF_USERS ? model->user_keys : model->item_keys;
}

/* The dense index of integer id id of one side, or -1. */
static inline int32
mf_model_find_id(const MfModel *model, MfSide side, int64 id)
{
	return mf_id_map_find(side == MF_USERS ? model->user_map : model->item_map, id);
}

/* The dense index of text key key of a side with keys, or -1. */
static inline int32
mf_model_find_key(const MfModel *model, MfSide side, const char *key)
{
	return mf_key_find(side == MF_USERS ? model->user_keymap : model->item_keymap, key);
}

/*
 * The model with that model_id (or name) for this call, as the calling
 * role may read it in the active snapshot: errors 42501 (no privilege),
 * 42704 (no such model), XX001 (a corrupt row).  The model stays valid
 * until the next lookup through the same fcinfo; across the caller's SQL
 * (a view it reads) keep only its model_id and look it up again.
 */
extern MfModel *mf_cache_model_by_id(FunctionCallInfo fcinfo, int32 model_id);
extern MfModel *mf_cache_model_by_name(FunctionCallInfo fcinfo, text *name);

/*
 * mf_cache_model_by_id for a call that writes from the model: the model
 * as last committed or as this transaction last wrote it, looked up under
 * a snapshot taken now (the statement's may predate a retrain or refit
 * earlier in the statement, by a trigger, or one a lock waited for).  With
 * kept not NULL, *kept is that snapshot, registered, for more reads of the
 * same version (the caller unregisters it).
 */
extern MfModel *mf_cache_model_current(FunctionCallInfo fcinfo, int32 model_id, Snapshot *kept);

/*
 * Slots of a call site's memo: facts its callers derive from the call's
 * expression, which are the same at every call through that FmgrInfo
 * (the kinds of its id arguments).  0 means not derived yet.
 */
#define MF_CALL_MEMO_SLOTS	4

/*
 * The call site's memo (MF_CALL_MEMO_SLOTS bytes, zeroed at first), kept
 * in fn_extra beside the model the site used last: a predict join derives
 * its arguments' kinds once, not at every row.
 */
extern uint8 *mf_call_memo(FunctionCallInfo fcinfo);

/*
 * Keeps a model's memory valid while its caller runs SQL that may evict it
 * (a batch call's INSERTs fire the target's triggers, which may retrain or
 * drop it, or load others): an eviction meanwhile only unlinks it from the
 * cache, and the last mf_cache_unpin frees it.  A model loaded for one
 * call site (row-level security on the factor tables) hangs below the
 * transaction's memory while pinned: a FATAL's abort frees the call's
 * memory before its callback joins the threads reading the model
 * (parallel.c).  Unpin in a PG_FINALLY block, so that an error unpins too.
 */
extern void mf_cache_pin(MfModel *model);
extern void mf_cache_unpin(MfModel *model);

/*
 * Notes that the current transaction has read (part of) the model from the
 * tables: if it has written anything, what it read may hold its own
 * uncommitted writes, and the model is forgotten (the serving cache's
 * entry; the next call reads the tables again) if the transaction aborts,
 * or a subtransaction open at the read that has written.
 */
extern void mf_cache_note_read(MfModel *model);

#endif							/* MF_CACHE_H */
