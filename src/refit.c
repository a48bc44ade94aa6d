/*-------------------------------------------------------------------------
 *
 * refit.c
 *	  mf_refit_users() and mf_refit_items(): after new ratings arrive,
 *	  recompute the factors of the users (items) that have ratings in a
 *	  relation, with the other side of the stored model held fixed, and
 *	  write them into the model — an incremental update without a full
 *	  retraining.
 *
 *	  Each row is solved exactly as a new row is in training's half-step
 *	  (and as mf_fold_in solves a user), from 0, against the stored other
 *	  side; ratings of items (users) the model does not know are skipped.
 *	  Rows are replaced or added in the caller's transaction, under the
 *	  model row's lock, and the model gets a new version; a user's
 *	  rated_items become the items it rates in the relation, and a refitted
 *	  item joins the rated_items of the users who rate it there.  With the users
 *	  (items) argument only the rows of the ids it names are read, all of
 *	  them, and refitted.  The steps are those of a RefitState: read, attach
 *	  the model, collect, solve, store.
 *
 *-------------------------------------------------------------------------
 */
#include "mf_ext.h"
#include "als.h"
#include "cache.h"
#include "catalog.h"
#include "checks.h"
#include "evaluate.h"
#include "idmap.h"
#include "progress.h"
#include "query.h"
#include "serve.h"
#include "source.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(mf_refit_users);
PG_FUNCTION_INFO_V1(mf_refit_users_by_name);
PG_FUNCTION_INFO_V1(mf_refit_items);
PG_FUNCTION_INFO_V1(mf_refit_items_by_name);

/* One call of mf_refit_users or mf_refit_items. */
typedef struct RefitState
{
	FunctionCallInfo fcinfo;
	const char *function;		/* "mf_refit_users" or "mf_refit_items" */
	MfSide		side;			/* the side refitted */
	MfSchema	schema;
	MfModelRow	locked;			/* the model's row as locked */
	MfRatings  *ratings;		/* the relation refitted from */
	const char *source_name;	/* its name, for messages */
	bool		named;			/* only the ids of argument users (items) */
	MfIdList	ids_named;		/* those ids, distinct */
	const char *named_column;	/* the source's column of them */
	MfModel    *model;			/* the cached model of that version */
	MfCsr		rows;			/* the rows to solve: known partners only */
	int64	   *ids;			/* rows.n_rows ids */
	char	  **keys;			/* and keys (text-keyed side), or NULL */
	int32	   *support;		/* rows.n_rows: each row's distinct partners */
	int32	   *rated_start;	/* users: rows.n_rows + 1 offsets into rated */
	int64	   *rated;			/* users: each row's distinct rated items */
	double	   *factors;		/* the solution, rows.n_rows x k */
	double	   *bias;			/* with biases, else NULL */
	double	   *implicit;		/* implicit factors, rows.n_rows x k, with
								 * implicit information, else NULL */
	Size		held_bytes;		/* the ratings read and the collected rows */
	MemoryContext cxt;
} RefitState;

/*
 * The relation a model was trained on, as recorded in mf_models.source,
 * to refit from by default.  Any role that may train can write that
 * column, and reading a relation runs code its owner chose (functions in
 * a view, row-level security policies) with the reader's rights: so it is
 * read only when the caller owns it, and it must be schema-qualified, as
 * training records it.
 */
static Oid
stored_source(const char *stored, const char *function)
{
	List	   *names = stringToQualifiedNameList(stored);
	Oid			relid;
	HeapTuple	tuple;
	Oid			owner;

	if (list_length(names) < 2)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the model's source \"%s\" is not schema-qualified", stored),
				 errdetail("mf_train records the source as schema.relation."),
				 errhint("Pass the relation to refit from as source.")));
	relid = RangeVarGetRelid(makeRangeVarFromNameList(names), NoLock, true);
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the model's source %s does not exist", stored),
				 errhint("Pass the relation to refit from as source.")));
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	if (owner != GetUserId())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s reads the model's source only when you own it, and %s is owned by role %s",
						function, stored, GetUserNameFromId(owner, false)),
				 errdetail("Any role that may train can name the source a model records, and reading a relation runs code its owner chose (functions in a view, row-level security policies) with your rights."),
				 errhint("Pass it explicitly if you trust its owner: %s(model, source := %s); or refit as its owner.",
						 function, quote_literal_cstr(stored))));
	return relid;
}

/*
 * Argument arg of the call, or NULL when it is NULL or absent (0.4's
 * definitions, before ALTER EXTENSION UPDATE, have only model and source).
 */
static Datum *
given_argument(FunctionCallInfo fcinfo, int arg)
{
	return arg < PG_NARGS() && !PG_ARGISNULL(arg) ? &fcinfo->args[arg].value : NULL;
}

/*
 * The model's recorded source and columns are followed only when the
 * caller recorded them (mf_models.source_recorded_by, which a trigger
 * stamps on every write that sets them): another role that can write
 * mf_models, also through a view or a function, could point them at what
 * the caller may read (a table's secret columns), which the refit would
 * then copy into the model tables for it to read.
 */
static void
require_own_record(const RefitState *state)
{
	Oid			recorder = state->locked.source_recorded_by;
	Relation	models;
	char	   *hook;

	/*
	 * A trigger of another role's on mf_models (TRIGGER privilege), or a
	 * rule, could have rewritten the stamp after mf_models_provenance set
	 * it.
	 */
	models = table_open(get_relname_relid("mf_models", state->schema.oid), AccessShareLock);
	hook = mf_catalog_models_hook(RelationGetRelid(models), AccessShareLock);
	if (hook != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s does not follow the source and columns models record while mf_models has %s",
						state->function, hook),
				 errdetail("A trigger or rule on mf_models can change who a model's source and columns look recorded by."),
				 errhint("Name them: %s(model, source := ..., user_col := ..., item_col := ..., rating_col := ...), or drop the trigger or rule (and grant no one TRIGGER on mf_models).",
						 state->function)));
	/* 0.4's mf_models records no one, and its refits cannot name the columns */
	if (get_attnum(RelationGetRelid(models), "source_recorded_by") == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s needs the update to mf_ext 0.5", state->function),
				 errdetail("A refit follows the columns a model records only for the role that recorded them; mf_ext 0.4's tables record no one, and its %s cannot name the columns.",
						   state->function),
				 errhint("Run ALTER EXTENSION mf_ext UPDATE, then %s(model, source := ..., user_col := ..., item_col := ..., rating_col := ...) or retrain.",
						 state->function)));
	table_close(models, AccessShareLock);

	if (recorder == GetUserId())
		return;
	if (!OidIsValid(recorder))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s follows the source and columns a model records only for the role that recorded them, and model %d records none",
						state->function, state->locked.model_id),
				 errdetail("Only a training records them: they were last set by another write (an UPDATE, a COPY, a restore from a dump), by a training while mf_models had a user's trigger or rule, or the model was stored before mf_ext 0.5."),
				 errhint("Name them: %s(model, source := ..., user_col := ..., item_col := ..., rating_col := ...), or retrain the model.",
						 state->function)));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s follows the source and columns a model records only for the role that recorded them, and role %s did",
					state->function, GetUserNameFromId(recorder, true) ? GetUserNameFromId(recorder, true)
					: psprintf("with OID %u", recorder)),
			 errdetail("A role that can write mf_models can point a model's source and columns at what you may read, and the refit would copy it into the model tables."),
			 errhint("Name them: %s(model, source := ..., user_col := ..., item_col := ..., rating_col := ...).",
					 state->function)));
}

/* The argument naming the rows to refit: "users" or "items". */
static const char *
named_argument(const RefitState *state)
{
	return state->side == MF_USERS ? "users" : "items";
}

/*
 * Locks the model's row (an error if it was dropped since found, or
 * renamed since when by_name) and reads the relation to refit from: the
 * arguments source, user_col, item_col and rating_col, or the ones the
 * model records; only the rows of the users (items) argument's ids when
 * it is given.
 */
static void
refit_read(RefitState *state, const MfModel *found, bool by_name)
{
	FunctionCallInfo fcinfo = state->fcinfo;
	MfSource	source = {0};
	Datum	   *columns[3] = {given_argument(fcinfo, 2), given_argument(fcinfo, 3),
	given_argument(fcinfo, 4)};
	Datum	   *named = given_argument(fcinfo, 5);

	state->schema = mf_schema_of(fcinfo);
	mf_check_write_privileges(&state->schema, state->function, false);
	state->locked = mf_catalog_lock_model(&state->schema, &found->row, by_name,
										  state->function);
	mf_progress_phase("reading");

	if (!given_argument(fcinfo, 1) || !columns[0] || !columns[1] || !columns[2])
		require_own_record(state);
	source.argname = "source";
	source.fixed_columns = false;	/* the columns may be named */
	source.relid = given_argument(fcinfo, 1) ? PG_GETARG_OID(1)
		: stored_source(state->locked.source, state->function);
	source.user_col = columns[0] ? NameStr(*DatumGetName(*columns[0])) : state->locked.user_col;
	source.item_col = columns[1] ? NameStr(*DatumGetName(*columns[1])) : state->locked.item_col;
	source.rating_col = columns[2] ? NameStr(*DatumGetName(*columns[2])) : state->locked.rating_col;
	source.user_key_form = mf_key_form(state->locked.user_key_type);
	source.item_key_form = mf_key_form(state->locked.item_key_type);
	mf_source_validate(&source);
	state->source_name = mf_source_display_name(source.relid);
	mf_check_same_id_kind(source.user_keys, source.item_keys,
						  OidIsValid(state->locked.user_key_type),
						  OidIsValid(state->locked.item_key_type), state->source_name, false);
	state->named = named != NULL;
	state->named_column = state->side == MF_USERS ? source.user_col : source.item_col;
	if (named)
		state->ids_named = mf_source_only(&source, state->side,
										  get_fn_expr_argtype(fcinfo->flinfo, 5), *named,
										  named_argument(state));

	/*
	 * The source as committed once the model's row and the source are
	 * locked, as the model is read (refit_attach_model): a refit that
	 * waited for another's refits from the rows the other's transaction
	 * added, which the statement's snapshot predates (it refitted the same
	 * users from their older history, over the newer factors); a source
	 * rewritten while the refit waited for its lock was read as empty.
	 */
	mf_source_lock_read(&source);
	mf_source_push_read_snapshot((MfSource *[]) {&source}, 1);
	state->ratings = mf_source_read(&source, state->cxt);
	PopActiveSnapshot();
}

/* Rows of a shorter history named in the NOTICE at most. */
#define MF_REFIT_SHORTER_SHOWN	3

/*
 * A NOTICE when rows refitted have fewer distinct partners in the source
 * (their support, counted by refit_collect) than the model holds for them
 * (the stored support, from its training or the row's last refit): a
 * refit solves each row from the source's ratings alone, so a relation of
 * only the new ratings would replace a long history by a fit to a few.
 */
static void
notice_shorter_histories(const RefitState *state)
{
	const MfCsr *rows = &state->rows;
	int64	   *had = palloc(sizeof(int64) * Max(rows->n_rows, 1));
	int64		shorter = 0;
	StringInfoData shown;

	mf_catalog_partner_counts(&state->schema, state->locked.model_id, state->side,
							  state->ids, rows->n_rows, had);
	initStringInfo(&shown);
	for (int32 r = 0; r < rows->n_rows; r++)
	{
		int64		has = state->support[r];

		if (had[r] < 0 || has >= had[r])
			continue;
		if (shorter++ < MF_REFIT_SHORTER_SHOWN)
		{
			/* a text key cut, quoted and escaped as in JSON: no control character, no fake entry */
			appendStringInfo(&shown, "%s%s ", shown.len > 0 ? "; " : "", mf_side_name(state->side));
			if (state->keys)
				appendStringInfoString(&shown, mf_text_for_message(state->keys[r]));
			else
				appendStringInfo(&shown, INT64_FORMAT, state->ids[r]);
			appendStringInfo(&shown, ": " INT64_FORMAT " of " INT64_FORMAT, has, had[r]);
		}
	}
	if (shorter > 0)
		ereport(NOTICE,
				(errmsg_plural("refitting " INT64_FORMAT " %s of model %s from fewer %ss than the model holds for it",
							   "refitting " INT64_FORMAT " %ss of model %s from fewer %ss than the model holds for them",
							   shorter, shorter, mf_side_name(state->side), mf_text_for_message(state->model->row.name),
							   mf_side_name(mf_other_side(state->side))),
				 errdetail("%s%s (distinct %ss in %s, of those the model holds from its training or last refit).",
						   shown.data, shorter > MF_REFIT_SHORTER_SHOWN ? "; ..." : "",
						   mf_side_name(mf_other_side(state->side)), state->source_name),
				 errhint("A refit solves each %s from the source's ratings alone: refit from a relation with their whole history (the model's source, by default), or retrain.",
						 mf_side_name(state->side))));
}

/* Ids named in the NOTICE of rows named but not refitted at most. */
#define MF_REFIT_UNNAMED_SHOWN	5

/*
 * A NOTICE when ids named by argument users (items) were not refitted
 * (their rows, if the model has any, are left as they are): the source
 * has no rows of them, or none of partners the model knows.
 * The refitted rows are in the source's order, ascending ids or keys in
 * byte order, as the named ones are.
 */
static void
notice_not_refitted(const RefitState *state)
{
	const MfIdList *named = &state->ids_named;
	int32		n_rows = state->rows.n_rows;
	int32		r = 0;
	int			missing = 0;
	StringInfoData shown;

	initStringInfo(&shown);
	for (int e = 0; e < named->n; e++)
	{
		int			order = 1;

		/* advance r to the first refitted row not before named id e */
		while (r < n_rows &&
			   (order = named->keys ? strcmp(named->keys[e], state->keys[r])
				: (named->ids[e] > state->ids[r]) - (named->ids[e] < state->ids[r])) > 0)
			r++;
		if (r < n_rows && order == 0)
			continue;
		if (missing++ < MF_REFIT_UNNAMED_SHOWN)
		{
			appendStringInfoString(&shown, shown.len > 0 ? ", " : "");
			if (named->keys)
				appendStringInfoString(&shown, mf_text_for_message(named->keys[e]));
			else
				appendStringInfo(&shown, INT64_FORMAT, named->ids[e]);
		}
	}
	if (missing > 0)
		ereport(NOTICE,
				(named->n == 1
				 ? errmsg("the %s named has no ratings of %ss the model knows in %s",
						  mf_side_name(state->side), mf_side_name(mf_other_side(state->side)),
						  state->source_name)
				 : missing == named->n
				 ? errmsg("none of the %d %ss named has ratings of %ss the model knows in %s",
						  named->n, mf_side_name(state->side),
						  mf_side_name(mf_other_side(state->side)), state->source_name)
				 : errmsg_plural("%d of the %d %ss named has no ratings of %ss the model knows in %s",
								 "%d of the %d %ss named have no ratings of %ss the model knows in %s",
								 missing, missing, named->n, mf_side_name(state->side),
								 mf_side_name(mf_other_side(state->side)), state->source_name),
				 errdetail("Not refitted: %s%s.", shown.data,
						   missing > MF_REFIT_UNNAMED_SHOWN ? ", ..." : ""),
				 errhint("Check the ids against column %s of %s: %ss with no ratings there keep their factors.",
						 quote_identifier(state->named_column), state->source_name,
						 mf_side_name(state->side))));
}

/*
 * The model's factors of the locked version.  The row is locked now, as
 * it was last committed (or as this transaction last wrote it: another
 * refit in the same statement): a snapshot taken after the lock sees the
 * factors of that version, which the statement's own snapshot may
 * predate.
 */
static void
refit_attach_model(RefitState *state)
{
	state->model = mf_cache_model_current(state->fcinfo, state->locked.model_id, NULL);
	if (state->model->row.version != state->locked.version)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("model %s changed while %s read it",
						mf_text_for_message(state->model->row.name), state->function),
				 errdetail("The locked row of mf_models has version " INT64_FORMAT ", the factors read have version " INT64_FORMAT ".",
						   state->locked.version, state->model->row.version),
				 errhint("Run %s again.", state->function)));
	if (state->model->factors.implicit)
		mf_ratings_implicit_strengths(state->ratings, state->model->row.options.alpha);
	else
	{
		/* measured from the model's mean: no mean of their own */
		MfRatingsSummary summary = mf_ratings_summarize(state->ratings, false);

		mf_ratings_check_scale(state->ratings, &summary, state->model->factors.single,
							   state->model->factors.biases, &state->model->factors.mean);
	}
}

/*
 * The id a refitted row of the source (row r of the refitted side) gets
 * in the model: its own integer id; for a text key, the model's id of
 * that key, or a new one after the model's last (*next_id counts them).
 */
static int64
refit_row_id(RefitState *state, int32 r, int64 *next_id)
{
	const MfModel *model = state->model;
	char	   *const *row_keys = mf_ratings_keys(state->ratings, state->side);
	int32		known;

	if (row_keys == NULL)
		return mf_ratings_ids(state->ratings, state->side)[r];
	known = mf_model_find_key(model, state->side, row_keys[r]);
	state->keys[state->rows.n_rows] = row_keys[r];
	return known >= 0 ? mf_model_ids(model, state->side)[known] : (*next_id)++;
}

/*
 * Allocates the collected rows, ids (keys for a text-keyed side) and, for
 * users, rated items, for at most every source row of the side and every
 * rating; returns the first id a new key gets: the model's last plus one.
 */
static int64
refit_allocate(RefitState *state)
{
	const MfModel *model = state->model;
	MfSide		side = state->side;
	int32		n_source = mf_ratings_side(state->ratings, side)->n_rows;
	int64		n_ratings = state->ratings->n_ratings;
	int64		next_id = 0;
	MfMemory	memory = {0};

	/* what refit_allocate allocates, beside the ratings read */
	mf_memory_add(&memory, 1, mf_ratings_bytes(state->ratings));
	mf_memory_add(&memory, n_source, sizeof(int64) * 2 + sizeof(int32) * 2 + sizeof(char *));
	mf_memory_add(&memory, n_ratings, sizeof(int32) + sizeof(double) +
				  (side == MF_USERS ? sizeof(int64) : 0));
	mf_memory_check(&memory, "collecting the rows to refit",
					psprintf("The rows of %d %ss, " INT64_FORMAT " ratings, collected beside the ratings read.",
							 n_source, mf_side_name(side), n_ratings),
					"Raise mf_ext.max_memory (a superuser setting); or refit fewer users or items at a time (users := or items := a part of them).");
	state->held_bytes = memory.bytes;

	if (mf_ratings_keys(state->ratings, side))
	{
		int32		n_model = side == MF_USERS ? model->factors.n_users : model->factors.n_items;

		for (int32 r = 0; r < n_model; r++)
			next_id = Max(next_id, mf_model_ids(model, side)[r] + 1);
		state->keys = mf_alloc_array(state->cxt, n_source, sizeof(char *));
	}
	state->rows.row_start = mf_alloc_array(state->cxt, (Size) n_source + 1, sizeof(int64));
	state->rows.col = mf_alloc_array(state->cxt, n_ratings, sizeof(int32));
	state->rows.val = mf_alloc_array(state->cxt, n_ratings, sizeof(double));
	state->ids = mf_alloc_array(state->cxt, n_source, sizeof(int64));
	state->support = mf_alloc_array(state->cxt, n_source, sizeof(int32));
	if (side == MF_USERS)
	{
		state->rated_start = mf_alloc_array(state->cxt, (Size) n_source + 1, sizeof(int32));
		state->rated = mf_alloc_array(state->cxt, n_ratings, sizeof(int64));
		state->rated_start[0] = 0;
	}
	state->rows.n_rows = 0;
	state->rows.row_start[0] = 0;
	return next_id;
}

/*
 * Whether source row r of the refitted side is one that argument users
 * (items) names: the source's = can match more (a nondeterministic
 * collation), or the read was not filtered (mf_source_only).
 */
static bool
row_named(const RefitState *state, int32 r)
{
	const MfIdList *named = &state->ids_named;
	char	   *const *keys = mf_ratings_keys(state->ratings, state->side);
	int64		id;

	if (keys)
		return bsearch(&keys[r], named->keys, named->n, sizeof(char *), mf_compare_keys) != NULL;
	id = mf_ratings_ids(state->ratings, state->side)[r];
	return bsearch(&id, named->ids, named->n, sizeof(int64), mf_compare_int64) != NULL;
}

/*
 * Collects the rows to solve: each source row of the refitted side with
 * its ratings of partners the model knows (as model indices), in rows
 * (with users or items, only the named rows);
 * rows left without any are dropped; each row's support (its distinct
 * partners) and, for users, its distinct rated items too.
 */
static void
refit_collect(RefitState *state)
{
	const MfModel *model = state->model;
	MfSide		side = state->side;
	MfSide		other = mf_other_side(side);
	const MfRatings *ratings = state->ratings;
	const MfCsr *source_rows = mf_ratings_side(ratings, side);
	int32		n_other = mf_ratings_side(ratings, other)->n_rows;
	int32	   *model_index = mf_alloc_array(state->cxt, n_other, sizeof(int32));
	bool		users = side == MF_USERS;
	int64		next_id = refit_allocate(state);
	int64		skipped = 0;
	int64		n = 0;
	int32		n_rated = 0;
	MfCsr	   *rows = &state->rows;

	for (int32 c = 0; c < n_other; c++)
		model_index[c] = mf_model_index(users ? model->item_map : model->user_map,
										users ? model->item_keymap : model->user_keymap,
										ratings, other, c);
	for (int32 r = 0; r < source_rows->n_rows; r++)
	{
		int64		begin = n;
		int32		support = 0;
		int32		rated_begin = n_rated;

		mf_interrupts_every(r, MF_INTERRUPT_ROWS);
		if (state->named && !row_named(state, r))
			continue;
		for (int64 e = source_rows->row_start[r]; e < source_rows->row_start[r + 1]; e++)
		{
			int32		c = model_index[source_rows->col[e]];

			if (c < 0)
			{
				skipped++;
				continue;
			}
			rows->col[n] = c;
			rows->val[n] = mf_csr_value(source_rows, e);
			/* entries are sorted by the other side: count each partner once */
			if (n == begin || c != rows->col[n - 1])
			{
				support++;
				if (users)
					state->rated[n_rated++] = model->item_ids[c];
			}
			n++;
		}
		if (n == begin)
			continue;
		/* in the model's indices, which keys a refit added do not follow */
		mf_sort_row_entries(rows->col + begin, rows->val + begin, n - begin);
		/* rated_items are sorted: a new key's id (the next) may not sort by key */
		if (users)
			mf_sort(state->rated + rated_begin, n_rated - rated_begin, sizeof(int64), mf_compare_int64);
		state->ids[rows->n_rows] = refit_row_id(state, r, &next_id);
		state->support[rows->n_rows] = support;
		rows->row_start[++rows->n_rows] = n;
		if (users)
			state->rated_start[rows->n_rows] = n_rated;
	}
	if (skipped > 0)
		ereport(NOTICE,
				(errmsg("skipped " INT64_FORMAT " ratings of %ss the model does not know",
						skipped, mf_side_name(other)),
				 errhint("Run mf_refit_%ss first to add them, or retrain.", mf_side_name(other))));
}

/* numbers values (floats if single, else doubles) as doubles, in cxt. */
static double *
as_doubles(const void *values, bool single, Size numbers, MemoryContext cxt)
{
	double	   *out = mf_alloc_array(cxt, numbers, sizeof(double));

	for (Size j = 0; j < numbers; j++)
	{
		mf_interrupts_every(j, MF_INTERRUPT_VALUES);
		out[j] = single ? ((const float *) values)[j] : ((const double *) values)[j];
	}
	return out;
}

/* Solves the collected rows against the model's other side, as doubles. */
static void
refit_solve(RefitState *state)
{
	const MfFactors *f = &state->model->factors;
	int32		n = state->rows.n_rows;
	Size		numbers = mul_size(n, f->k);
	Size		real_size = f->single ? sizeof(float) : sizeof(double);
	void	   *solved = mf_alloc_array(state->cxt, numbers, real_size);
	void	   *implicit = state->model->row.options.implicit_weight > 0
		? mf_alloc_array(state->cxt, numbers, real_size) : NULL;
	int32		failed;

	state->bias = f->biases ? mf_alloc_array(state->cxt, n, sizeof(double)) : NULL;
	/* beside the solve: what refit_allocate holds, and the solution as doubles */
	failed = mf_als_solve_against(f, state->side, &state->model->row.options, &state->rows,
								  add_size(state->held_bytes,
										   mul_size(numbers, sizeof(double) * (implicit ? 2 : 1))),
								  solved, state->bias, implicit, state->cxt);
	if (failed >= 0)
	{
		MfSide		other = state->side == MF_USERS ? MF_ITEMS : MF_USERS;
		int64		times;
		int32		partner = mf_csr_most_repeated(&state->rows, failed, &times);
		char	   *const *other_keys = mf_model_keys(state->model, other);

		mf_report_unsolvable(MF_SOLVE_REFIT, state->side,
							 state->keys ? mf_text_for_message(state->keys[failed])
							 : psprintf(INT64_FORMAT, state->ids[failed]),
							 &state->model->row.options, state->model->row.name,
							 partner < 0 ? NULL : other_keys ? mf_text_for_message(other_keys[partner])
							 : psprintf(INT64_FORMAT, mf_model_ids(state->model, other)[partner]),
							 times, other == MF_ITEMS ? state->model->row.n_items : state->model->row.n_users);
	}
	state->factors = as_doubles(solved, f->single, numbers, state->cxt);
	if (implicit)
		state->implicit = as_doubles(implicit, f->single, numbers, state->cxt);
}

/* A refit of items' pairs of raters' rated_items to add (refit_add_to_raters). */
typedef struct RatersLack
{
	const MfModel *model;
	const int64 *start;			/* per model user: offsets into items */
	const int64 *items;			/* the refitted items the user rates */
	int64	   *users;			/* out: the pairs the stored lists lack */
	int64	   *lacked;
	int64		n;
} RatersLack;

/* mf_catalog_read_rated_items_now callback: the user's items its stored list lacks. */
static void
note_items_lacked(int64 user_id, const int64 *stored, int count, void *arg)
{
	RatersLack *lack = arg;
	int32		u = mf_model_find_id(lack->model, MF_USERS, user_id);

	if (u < 0 || stored == NULL)
		return;					/* no list (NULL) is not extended */
	for (int64 e = lack->start[u]; e < lack->start[u + 1]; e++)
	{
		/* a list that is not sorted (edited by hand) lacks what it is not found to hold */
		if (bsearch(&lack->items[e], stored, count, sizeof(int64), mf_compare_int64) != NULL)
			continue;
		lack->users[lack->n] = user_id;
		lack->lacked[lack->n++] = lack->items[e];
	}
}

/*
 * After a refit of items: each refitted item joins the rated_items of the
 * model's users who rate it in the source, where their stored lists lack
 * it, so that exclude_rated leaves it out of their lists (before, only a
 * refit of the users did).  The raters' lists are read first, as
 * committed now (the statement's snapshot predates the wait for the
 * model's lock, and another refit of users may have rewritten them
 * since), and only those that lack an item written: a refit from the model's own source
 * writes none (an UPDATE checking every pair in SQL doubled the time of
 * refitting ML-10M's items).
 */
static void
refit_add_to_raters(RefitState *state)
{
	const MfModel *model = state->model;
	const MfCsr *rows = &state->rows;
	int32		n_users = model->factors.n_users;
	int64	   *start = mf_alloc_array(state->cxt, (Size) n_users + 1, sizeof(int64));
	int64	   *next = mf_alloc_array(state->cxt, (Size) n_users + 1, sizeof(int64));
	int64		pairs = 0;
	int64	   *items;
	int64	   *raters;
	int32		n_raters = 0;
	RatersLack	lack = {0};

	/* each row's entries are sorted by user: count each rater of an item once */
	memset(start, 0, sizeof(int64) * ((Size) n_users + 1));
	for (int32 r = 0; r < rows->n_rows; r++)
		for (int64 e = rows->row_start[r]; e < rows->row_start[r + 1]; e++)
			if (e == rows->row_start[r] || rows->col[e] != rows->col[e - 1])
			{
				start[rows->col[e] + 1]++;
				pairs++;
			}
	for (int32 u = 0; u < n_users; u++)
		start[u + 1] += start[u];
	items = mf_alloc_array(state->cxt, pairs, sizeof(int64));
	raters = mf_alloc_array(state->cxt, n_users, sizeof(int64));
	memcpy(next, start, sizeof(int64) * ((Size) n_users + 1));
	for (int32 r = 0; r < rows->n_rows; r++)
	{
		mf_interrupts_every(r, MF_INTERRUPT_ROWS);
		for (int64 e = rows->row_start[r]; e < rows->row_start[r + 1]; e++)
			if (e == rows->row_start[r] || rows->col[e] != rows->col[e - 1])
				items[next[rows->col[e]]++] = state->ids[r];
	}
	for (int32 u = 0; u < n_users; u++)
		if (start[u + 1] > start[u])
			raters[n_raters++] = model->user_ids[u];
	lack.model = model;
	lack.start = start;
	lack.items = items;
	lack.users = mf_alloc_array(state->cxt, pairs, sizeof(int64));
	lack.lacked = mf_alloc_array(state->cxt, pairs, sizeof(int64));
	mf_catalog_read_rated_items_now(&state->schema, state->locked.model_id, raters, n_raters,
									note_items_lacked, &lack);
	if (lack.n > 0)
		mf_catalog_add_rated_items(&state->schema, state->locked.model_id, lack.users,
								   lack.lacked, lack.n);
}

/*
 * mf_refit_users / mf_refit_items: returns the number of rows refitted.
 * found is the model as first looked up (by_name: by its name, else by
 * its id); reading the source runs the caller's SQL, so only its id is
 * kept across the read.
 */
static Datum
refit(FunctionCallInfo fcinfo, bool by_name, MfSide side)
{
	RefitState	state = {0};
	MemoryContext old;
	MfModel    *found;

	state.fcinfo = fcinfo;
	state.side = side;
	state.function = side == MF_USERS ? "mf_refit_users" : "mf_refit_items";
	found = mf_model_argument_reported(fcinfo, by_name, state.function);
	state.cxt = AllocSetContextCreate(CurrentMemoryContext, "mf_refit", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(state.cxt);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	mf_progress_phase("locking");
	refit_read(&state, found, by_name);
	refit_attach_model(&state);
	refit_collect(&state);
	if (state.named)
		notice_not_refitted(&state);
	if (state.rows.n_rows > 0)
	{
		notice_shorter_histories(&state);
		mf_progress_phase("solving");
		refit_solve(&state);
		mf_progress_phase("storing");
		mf_catalog_replace_rows(&state.schema, state.function, state.locked.model_id, side,
								state.model->factors.k, state.ids, state.keys,
								state.rows.n_rows, state.factors, state.bias, state.implicit,
								state.support, state.rated_start, state.rated);
		if (side == MF_ITEMS)
			refit_add_to_raters(&state);
	}
	mf_progress_end();
	SPI_finish();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(state.cxt);
	PG_RETURN_INT32(state.rows.n_rows);
}

/*
 * mf_refit_users(model, source regclass, user_col, item_col, rating_col
 * name, users "any", each DEFAULT NULL) -> integer, by model_id or name:
 * refits the users with ratings in source (default: the model's recorded
 * source and columns, when the caller owns the relation and no other role
 * can write mf_models), or only those users array names.
 */
Datum
mf_refit_users(PG_FUNCTION_ARGS)
{
	return refit(fcinfo, false, MF_USERS);
}

Datum
mf_refit_users_by_name(PG_FUNCTION_ARGS)
{
	return refit(fcinfo, true, MF_USERS);
}

/* mf_refit_items(model, source, ..., items DEFAULT NULL): as mf_refit_users, for items. */
Datum
mf_refit_items(PG_FUNCTION_ARGS)
{
	return refit(fcinfo, false, MF_ITEMS);
}

Datum
mf_refit_items_by_name(PG_FUNCTION_ARGS)
{
	return refit(fcinfo, true, MF_ITEMS);
}
