/*-------------------------------------------------------------------------
 *
 * serve.c
 *	  The answering functions for stored users and items: mf_predict (one
 *	  score), mf_recommend (the n best items for a user, among candidates
 *	  and less exclusions), mf_recommend_users (the n users most likely to
 *	  want an item) and mf_similar_items / mf_similar_users (the n nearest
 *	  by cosine), each
 *	  by model id and by model name, with ids as integers, text or uuids.
 *	  Models come from the backend's cache (cache.c), scores from score.c.
 *
 *	  C entry points are named after the SQL function, then _text for the
 *	  forms that answer with ids as text (those taking a text or uuid id),
 *	  then _by_name for the forms that take the model's name.  An id
 *	  argument's type is read from the call (id_argument_kind), so
 *	  that one entry point serves every form of mf_predict by model_id,
 *	  every pair of id types included (compat.c keeps the names older
 *	  versions' install scripts gave the text forms).
 *
 *-------------------------------------------------------------------------
 */
#include "serve.h"
#include "source.h"
#include "checks.h"
#include "progress.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/fmgroids.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(mf_predict);
PG_FUNCTION_INFO_V1(mf_predict_by_name);
PG_FUNCTION_INFO_V1(mf_recommend);
PG_FUNCTION_INFO_V1(mf_recommend_by_name);
PG_FUNCTION_INFO_V1(mf_recommend_text);
PG_FUNCTION_INFO_V1(mf_recommend_text_by_name);
PG_FUNCTION_INFO_V1(mf_recommend_users);
PG_FUNCTION_INFO_V1(mf_recommend_users_by_name);
PG_FUNCTION_INFO_V1(mf_recommend_users_text);
PG_FUNCTION_INFO_V1(mf_recommend_users_text_by_name);
PG_FUNCTION_INFO_V1(mf_similar_items);
PG_FUNCTION_INFO_V1(mf_similar_items_by_name);
PG_FUNCTION_INFO_V1(mf_similar_items_text);
PG_FUNCTION_INFO_V1(mf_similar_items_text_by_name);
PG_FUNCTION_INFO_V1(mf_similar_users);
PG_FUNCTION_INFO_V1(mf_similar_users_by_name);
PG_FUNCTION_INFO_V1(mf_similar_users_text);
PG_FUNCTION_INFO_V1(mf_similar_users_text_by_name);

MfModel *
mf_model_argument(FunctionCallInfo fcinfo, bool by_name)
{
	mf_require_model_argument(fcinfo);
	return by_name ? mf_cache_model_by_name(fcinfo, PG_GETARG_TEXT_PP(0))
		: mf_cache_model_by_id(fcinfo, PG_GETARG_INT32(0));
}

/*
 * 42804 when the model identifies the side's rows by text keys: a form
 * taking integer ids (function) cannot name them, nor answer with them.
 */
static void
require_integer_ids(const MfModel *model, MfSide side, const char *function)
{
	const char *argument;
	MfKeyForm	argument_form;

	if (mf_model_keys(model, side) == NULL)
		return;
	argument = strcmp(function, "mf_recommend") == 0 ||
		strcmp(function, "mf_similar_users") == 0 ? "user_id" : "item_id";
	/* a uuid names only a key of a side trained from uuids */
	argument_form = argument[0] == 'u' ? model->user_key_form : model->item_key_form;
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("model %s identifies its %ss by text keys, not integers",
					mf_text_for_message(model->row.name), mf_side_name(side)),
			 strcmp(function, "mf_predict") == 0 ? 0
			 : errdetail("%s(model, %s bigint, ...) takes and answers with bigint ids, so it needs integer ids on both sides, and this model's %ss are text keys.",
						 function, argument, mf_side_name(side)),
			 strcmp(function, "mf_predict") == 0
			 ? errhint("Pass the %s id as it was in the training data (text or uuid), or as text, for example %s; an integer %s id needs a model trained on integer %s ids.",
					   mf_side_name(side),
					   side == MF_USERS ? "mf_predict(model, user_id::text, item_id)"
					   : "mf_predict(model, user_id, item_id::text)",
					   mf_side_name(side), mf_side_name(side))
			 : errhint("The forms of %s taking an integer id answer with integer ids too: pass the id as text%s, for example %s(model, %s::text, ...), to get text ids.",
					   function, argument_form == MF_KEY_UUID ? " (or a uuid)" : "", function,
					   argument)));
}

/*
 * The functions that take integer ids refuse a model whose ids are text
 * keys (trained on a text, uuid, ... column): its integer ids are only
 * positions, which the caller cannot know.
 */
static void
require_integer_model(const MfModel *model, const char *function)
{
	require_integer_ids(model, model->user_keys ? MF_USERS : MF_ITEMS, function);
}

/*
 * The dense index of a text id (mf_text_id_index); with lenient, text that
 * is not an integer on a model of integer ids is an id the model lacks (-1)
 * rather than an error.
 */
static int32
text_id_lookup(const MfModel *model, MfSide side, text *id, bool lenient)
{
	char	   *value = text_to_cstring(id);
	int32		index;

	if (mf_model_keys(model, side) != NULL)
	{
		MfKeyForm	form = side == MF_USERS ? model->user_key_form : model->item_key_form;
		char	   *key = form == MF_KEY_UUID ? mf_uuid_key(value, true)
			: form == MF_KEY_CHARACTER ? mf_key_without_blanks(value) : value;

		index = key ? mf_model_find_key(model, side, key) : -1;
	}
	else
	{
		int64		integer;
		MfIdParse	parsed = mf_parse_id(value, &integer);
		bool		is_integer = parsed == MF_ID_OK;

		if (!is_integer && lenient)
		{
			pfree(value);
			return -1;
		}
		if (parsed == MF_ID_OUT_OF_RANGE)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("%s id %s is out of range for bigint", mf_side_name(side),
							mf_text_for_message(value)),
					 errhint("Model %s was trained on integer %s ids, which are bigint values: pass one.",
							 mf_text_for_message(model->row.name), mf_side_name(side))));
		if (!is_integer)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("%s id %s is not an integer", mf_side_name(side), mf_text_for_message(value)),
					 errhint("Model %s was trained on integer %s ids: pass one.",
							 mf_text_for_message(model->row.name), mf_side_name(side))));
		index = mf_model_find_id(model, side, (int64) integer);
	}
	pfree(value);
	return index;
}

MfModel *
mf_model_argument_reported(FunctionCallInfo fcinfo, bool by_name, const char *function)
{
	MfModel    *model;

	mf_progress_begin(function, NULL, "loading");
	model = mf_model_argument(fcinfo, by_name);
	mf_progress_model(model->row.name);
	return model;
}

int32
mf_text_id_index(const MfModel *model, MfSide side, text *id)
{
	return text_id_lookup(model, side, id, false);
}

/* How an id argument is given: bigint, text or uuid. */
typedef enum MfIdKind
{
	MF_ID_INTEGER,
	MF_ID_TEXT,
	MF_ID_UUID
} MfIdKind;

/*
 * The kind of id argument arg: its type in the call (the declared one, the
 * parser having coerced integers of any width to bigint, varchar and the
 * like to text, a domain to its base type), or, when the call's
 * expression is not at hand, the type the function declares.  Before
 * ALTER EXTENSION mf_ext UPDATE to 0.5, 0.4's text forms of mf_similar_*
 * call the bigint forms' C functions: their type tells them apart.
 */
static MfIdKind
id_argument_type_kind(FunctionCallInfo fcinfo, int arg)
{
	Oid			type = get_fn_expr_argtype(fcinfo->flinfo, arg);

	if (type != INT8OID && type != TEXTOID && type != UUIDOID)
	{
		Oid		   *arg_types;
		int			n_args;

		(void) get_func_signature(fcinfo->flinfo->fn_oid, &arg_types, &n_args);
		type = arg < n_args ? arg_types[arg] : InvalidOid;
	}
	switch (type)
	{
		case INT8OID:
			return MF_ID_INTEGER;
		case TEXTOID:
			return MF_ID_TEXT;
		case UUIDOID:
			return MF_ID_UUID;
	}
	elog(ERROR, "argument %d of function %u is not an id (bigint, text or uuid)",
		 arg + 1, fcinfo->flinfo->fn_oid);
	return MF_ID_TEXT;			/* not reached */
}

/*
 * The kind of id argument arg, derived once per call site (mf_call_memo):
 * a predict join calls it twice a row.
 */
static inline MfIdKind
id_argument_kind(FunctionCallInfo fcinfo, int arg)
{
	uint8	   *memo = mf_call_memo(fcinfo);

	Assert(arg < MF_CALL_MEMO_SLOTS);
	if (memo[arg] == 0)
		memo[arg] = 1 + id_argument_type_kind(fcinfo, arg);
	return (MfIdKind) (memo[arg] - 1);
}

/*
 * The dense index of id argument arg (not NULL) of one side, -1 when the
 * model lacks it: an integer by its value on a side of integer ids (42804
 * on a side of keys: require_integer_ids, for function); text as
 * mf_text_id_index reads it; a uuid by its text form (uuid_out, the form
 * training stored) on a side of keys, 42804 on a side of integer ids.
 */
static pg_noinline int32
id_argument_any_index(FunctionCallInfo fcinfo, int arg, const MfModel *model, MfSide side,
					  const char *function)
{
	const char *name = mf_side_name(side);
	char	   *key;
	int32		index;

	switch (id_argument_kind(fcinfo, arg))
	{
		case MF_ID_INTEGER:
			require_integer_ids(model, side, function);
			return mf_model_find_id(model, side, PG_GETARG_INT64(arg));
		case MF_ID_TEXT:
			return mf_text_id_index(model, side, PG_GETARG_TEXT_PP(arg));
		case MF_ID_UUID:
			break;
	}
	if (mf_model_keys(model, side) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("model %s identifies its %ss by integers, not uuids",
						mf_text_for_message(model->row.name), name),
				 errhint("Pass the %s's integer id: a uuid names only %ss kept as text keys (a model trained on uuid or text %s ids).",
						 name, name, name)));
	key = DatumGetCString(DirectFunctionCall1(uuid_out, PG_GETARG_DATUM(arg)));
	index = mf_model_find_key(model, side, key);
	pfree(key);
	return index;
}

/*
 * Whether id argument arg is an integer of a side of integer ids: looked
 * up inline, and never an error.
 */
static inline bool
id_argument_plain(FunctionCallInfo fcinfo, int arg, const MfModel *model, MfSide side)
{
	return id_argument_kind(fcinfo, arg) == MF_ID_INTEGER && mf_model_keys(model, side) == NULL;
}

/*
 * id_argument_any_index, with its commonest case inline (a predict join
 * looks up two ids a row).
 */
static inline int32
id_argument_index(FunctionCallInfo fcinfo, int arg, const MfModel *model, MfSide side,
				  const char *function)
{
	if (likely(id_argument_plain(fcinfo, arg, model, side)))
		return mf_model_find_id(model, side, PG_GETARG_INT64(arg));
	return id_argument_any_index(fcinfo, arg, model, side, function);
}

/*
 * mf_predict: the prediction for the given ids, each an integer, text or a
 * uuid (id_argument_any_index), in any pair.  A user or item the model
 * lacks is NULL without biases; with biases it is scored from what is
 * known.
 */
static Datum
predict(FunctionCallInfo fcinfo, bool by_name)
{
	MfModel    *model = mf_model_argument(fcinfo, by_name);
	int32		user;
	int32		item;

	if (id_argument_plain(fcinfo, 2, model, MF_ITEMS))
	{
		/*
		 * The item's row is the one likely out of the cache (a join's rows
		 * come by user): asked for before the user's lookup, which it
		 * overlaps.  Its lookup cannot fail, so a bad user id is still the
		 * error, as it comes first.
		 */
		item = mf_model_find_id(model, MF_ITEMS, PG_GETARG_INT64(2));
		mf_prefetch_row(&model->factors, MF_ITEMS, item);
		user = id_argument_index(fcinfo, 1, model, MF_USERS, "mf_predict");
	}
	else
	{
		user = id_argument_index(fcinfo, 1, model, MF_USERS, "mf_predict");
		item = id_argument_index(fcinfo, 2, model, MF_ITEMS, "mf_predict");
	}

	if ((user < 0 || item < 0) && !model->factors.biases)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(mf_prediction(&model->factors, user, item));
}

/* Every form of mf_predict by model_id, and by name. */
Datum
mf_predict(PG_FUNCTION_ARGS)
{
	return predict(fcinfo, false);
}

Datum
mf_predict_by_name(PG_FUNCTION_ARGS)
{
	return predict(fcinfo, true);
}

/*
 * A context for what the cache builds from a model on first need (norms,
 * codes, raters): made under the call's context, so that an error while
 * it is built (a cancel) frees it with the call's memory; kept_with hands
 * it to the model once it is complete.
 */
#define MODEL_BUILD_CONTEXT(name) \
	AllocSetContextCreate(CurrentMemoryContext, (name), ALLOCSET_DEFAULT_SIZES)

static void
kept_with(MfModel *model, MemoryContext built)
{
	MemoryContextSetParent(built, model->cxt);
}

/* |x| of every row of one side, computed on first need and cached. */
static const double *
side_norms(MfModel *model, MfSide side)
{
	double	  **norms = side == MF_USERS ? &model->user_norms : &model->item_norms;

	if (*norms == NULL)
	{
		int32		n = side == MF_USERS ? model->factors.n_users : model->factors.n_items;
		MemoryContext cxt = MODEL_BUILD_CONTEXT("mf_ext norms");
		double	   *computed = mf_alloc_array(cxt, n, sizeof(double));

		for (int32 first = 0; first < n; first += MF_INTERRUPT_ROWS)
		{
			CHECK_FOR_INTERRUPTS();
			mf_row_norms(&model->factors, side, first, Min(MF_INTERRUPT_ROWS, n - first), computed);
		}
		kept_with(model, cxt);
		*norms = computed;
	}
	return *norms;
}

/*
 * The codes of one side of a float model (MfCodes), made on first need and
 * cached: k rounded up to 32 bytes and 20 bytes more a row (84 at k = 64,
 * a third of the floats').  NULL for a model of
 * double factors, scored exactly.
 */
static const MfCodes *
side_codes(MfModel *model, MfSide side)
{
	const MfFactors *f = &model->factors;

	if (model->codes[side] == NULL && f->single)
	{
		int32		n_rows = side == MF_USERS ? f->n_users : f->n_items;
		MemoryContext cxt = MODEL_BUILD_CONTEXT("mf_ext codes");
		MfCodes    *codes = MemoryContextAllocZero(cxt, sizeof(MfCodes));
		int32		n = Max(n_rows, 1);

		codes->stride = mf_codes_stride(f->k);
		codes->codes = mf_alloc_array(cxt, n, codes->stride);
		codes->scales = mf_alloc_array(cxt, n, sizeof(float));
		codes->error_bounds = mf_alloc_array(cxt, n, sizeof(double));
		codes->code_norms = mf_alloc_array(cxt, n, sizeof(double));
		for (int32 first = 0; first < n_rows; first += MF_INTERRUPT_ROWS)
		{
			CHECK_FOR_INTERRUPTS();
			mf_codes_fill(f, side, codes, first, Min(MF_INTERRUPT_ROWS, n_rows - first));
		}
		kept_with(model, cxt);
		model->codes[side] = codes;
	}
	return model->codes[side];
}

/* MfScoreScratch.interrupts: the backend's look for interrupts. */
static void
look_for_interrupts(void)
{
	CHECK_FOR_INTERRUPTS();
}

/*
 * Scratch for ranking n_rows rows of a side (MfScoreScratch), with codes
 * of that stride (NULL: scored exactly); freed by scratch_free.
 */
static MfScoreScratch
scratch_alloc(const MfFactors *f, int32 n_rows, const MfCodes *codes)
{
	MfScoreScratch scratch = {0};

	scratch.wide = palloc(sizeof(double) * Max(f->k, 1));
	scratch.interrupts = look_for_interrupts;
	if (codes)
	{
		scratch.lower = mf_alloc_array(CurrentMemoryContext, Max(n_rows, 1), sizeof(double));
		scratch.query_codes = palloc(sizeof(int16) * codes->stride);
		scratch.dots = mf_alloc_array(CurrentMemoryContext, Max(n_rows, 1), sizeof(int32));
		if (f->biases)
			scratch.shifts = mf_alloc_array(CurrentMemoryContext, Max(n_rows, 1), sizeof(double));
	}
	return scratch;
}

static void
scratch_free(MfScoreScratch *scratch)
{
	pfree(scratch->wide);
	if (scratch->lower)
		pfree(scratch->lower);
	if (scratch->query_codes)
		pfree(scratch->query_codes);
	if (scratch->dots)
		pfree(scratch->dots);
	if (scratch->shifts)
		pfree(scratch->shifts);
}

/* A mask of n rows, none left out. */
static bool *
empty_mask(int32 n)
{
	bool	   *mask = mf_alloc_array(CurrentMemoryContext, Max(n, 1), sizeof(bool));

	memset(mask, 0, sizeof(bool) * n);
	return mask;
}

/*
 * The dense indices of the ids in array, of element type element (an id
 * type mf_id_array accepts: smallint, integer or bigint ids; text, varchar,
 * char, name or uuid: keys by their text form, or integer ids as text) of
 * one side, -1 for an id the model lacks and for NULL elements; *count
 * gets their number.
 */
static int32 *
array_indices(const MfModel *model, MfSide side, ArrayType *array, Oid element, int *count)
{
	Datum	   *values;
	bool	   *nulls;
	int32	   *indices;
	int16		length;
	bool		by_value;
	char		align;

	Oid			base = getBaseType(element);
	Oid			output;
	bool		varlena;

	get_typlenbyvalalign(element, &length, &by_value, &align);
	getTypeOutputInfo(element, &output, &varlena);
	deconstruct_array(array, element, length, by_value, align, &values, &nulls, count);
	indices = mf_alloc_array(CurrentMemoryContext, Max(*count, 1), sizeof(int32));
	for (int e = 0; e < *count; e++)
	{
		CHECK_FOR_INTERRUPTS();
		if (nulls[e])
			indices[e] = -1;
		else if (base == TEXTOID || base == VARCHAROID)
			indices[e] = text_id_lookup(model, side, DatumGetTextPP(values[e]), true);
		else if (mf_is_integer_id_type(base))
			indices[e] = mf_model_find_id(model, side,
										  base == INT8OID ? DatumGetInt64(values[e])
										  : base == INT4OID ? DatumGetInt32(values[e])
										  : DatumGetInt16(values[e]));
		else
			indices[e] = text_id_lookup(model, side,
										cstring_to_text(mf_id_key_text(base, output, values[e])),
										true);
	}
	pfree(values);
	pfree(nulls);
	return indices;
}

/*
 * Marks in mask (allocated when NULL and needed; returned) the rows of one
 * side not among the ids of array (with candidates) or among them.
 */
static bool *
mark_filter(const MfModel *model, MfSide side, ArrayType *array, Oid element,
			bool candidates, bool *mask)
{
	int32		n_rows = side == MF_USERS ? model->factors.n_users : model->factors.n_items;
	int			count;
	int32	   *indices = array_indices(model, side, array, element, &count);

	if (candidates)
	{
		bool	   *candidate = empty_mask(n_rows);

		for (int e = 0; e < count; e++)
			if (indices[e] >= 0)
				candidate[indices[e]] = true;
		if (mask == NULL)
			mask = empty_mask(n_rows);
		for (int32 r = 0; r < n_rows; r++)
			mask[r] |= !candidate[r];
		pfree(candidate);
	}
	else
	{
		if (mask == NULL && count > 0)
			mask = empty_mask(n_rows);
		for (int e = 0; e < count; e++)
			if (indices[e] >= 0)
				mask[indices[e]] = true;
	}
	pfree(indices);
	return mask;
}

bool *
mf_filter_mask(FunctionCallInfo fcinfo, int arg, const MfModel *model, MfSide side,
			   bool as_text, bool *mask)
{
	Oid			element = as_text ? TEXTOID : INT8OID;

	if (arg + 1 >= PG_NARGS())
		return mask;			/* 0.4's definitions, before ALTER EXTENSION UPDATE */
	for (int a = arg; a <= arg + 1; a++)
		if (!PG_ARGISNULL(a))
			mask = mark_filter(model, side, PG_GETARG_ARRAYTYPE_P(a), element, a == arg, mask);
	return mask;
}

/*
 * Argument arg (named name), declared "any", as an array of ids of one
 * side (mf_id_array: the id types training accepts, or an untyped literal
 * read as text[]; NULL elements match nothing); integer arrays name the
 * rows of a side of integer ids only (42804).
 */
static ArrayType *
any_id_array(FunctionCallInfo fcinfo, int arg, const char *name, const MfModel *model,
			 MfSide side)
{
	ArrayType  *array = mf_id_array(get_fn_expr_argtype(fcinfo->flinfo, arg),
									PG_GETARG_DATUM(arg), side, name, true);
	Oid			elembase = getBaseType(ARR_ELEMTYPE(array));

	if (mf_is_integer_id_type(elembase) && mf_model_keys(model, side) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("model %s identifies its %ss by text keys, not integers",
						mf_text_for_message(model->row.name), mf_side_name(side)),
				 errhint("Pass %s as text[] keys, for example ARRAY['a', 'b'] or '{a,b}'.", name)));
	/* uuids name no integer id: they would match nothing, without a word */
	if (elembase == UUIDOID && mf_model_keys(model, side) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("model %s identifies its %ss by integers, not uuids",
						mf_text_for_message(model->row.name), mf_side_name(side)),
				 errhint("Pass %s as bigint[] ids, for example ARRAY[1, 2] or '{1,2}'.", name)));
	return array;
}

bool *
mf_filter_mask_any(FunctionCallInfo fcinfo, int arg, const MfModel *model, MfSide side,
				   bool *mask)
{
	if (arg + 1 >= PG_NARGS())
		return mask;			/* 0.4's definitions, before ALTER EXTENSION UPDATE */
	for (int a = arg; a <= arg + 1; a++)
	{
		ArrayType  *array;

		if (PG_ARGISNULL(a))
			continue;
		array = any_id_array(fcinfo, a, a == arg ? "candidates" : "exclude", model, side);
		mask = mark_filter(model, side, array, ARR_ELEMTYPE(array), a == arg, mask);
	}
	return mask;
}

/*
 * Marks in mask the items the user rated in the training data, from the
 * rated_items array stored with the user's factors.
 */
static void
mark_rated_items(const MfSchema *schema, const MfModel *model, int64 user_id, bool *mask)
{
	MemoryContext cxt = CurrentMemoryContext;
	int64	   *ids;
	int			n_rated;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ids = mf_catalog_rated_items(schema, model->row.model_id, user_id, &n_rated, cxt);
	SPI_finish();
	for (int r = 0; r < n_rated; r++)
	{
		int32		item = mf_model_find_id(model, MF_ITEMS, ids[r]);

		if (item >= 0)
			mask[item] = true;
	}
	if (ids)
		pfree(ids);
}

int32
mf_top_items(const MfSchema *schema, MfModel *model, int32 user, int64 user_id,
			 int32 n, bool exclude_rated, bool *excluded, int32 *best, double **scores)
{
	const MfFactors *f = &model->factors;
	bool		own_mask = false;
	const MfCodes *codes = user >= 0 ? side_codes(model, MF_ITEMS) : NULL;
	MfScoreScratch scratch = scratch_alloc(f, f->n_items, codes);
	double	   *best_scores = mf_alloc_array(CurrentMemoryContext, Min(n, f->n_items),
												 sizeof(double));
	int32		found;

	if (exclude_rated && user >= 0)
	{
		own_mask = excluded == NULL;
		if (own_mask)
			excluded = empty_mask(f->n_items);
		mark_rated_items(schema, model, user_id, excluded);
	}
	*scores = mf_alloc_array(CurrentMemoryContext, f->n_items, sizeof(double));
	found = mf_top_scored_items(f, user >= 0 ? mf_factor_row(f, MF_USERS, user) : NULL,
								f->biases ? mf_user_base(f, user) : 0.0, codes,
								mf_code_dots(), excluded, model->item_ids,
								Min(n, f->n_items), &scratch, *scores, best, best_scores);
	if (own_mask)
		pfree(excluded);
	scratch_free(&scratch);
	pfree(best_scores);
	return found;
}

int32
mf_recommend_count(FunctionCallInfo fcinfo, int n_arg, const char *hint)
{
	mf_check_not_null(fcinfo, n_arg, "n", "Omit it to use the default, or pass a value.");
	mf_check_not_null(fcinfo, n_arg + 1, "exclude_rated", "Omit it to use the default, or pass a value.");
	mf_check_count(PG_GETARG_INT32(n_arg), "n", hint);
	return PG_GETARG_INT32(n_arg);
}

/*
 * The id of a user or item (dense index) as a result column: its key or
 * the text of its integer id when as_text, else the integer id.
 */
static Datum
id_datum(const MfModel *model, MfSide side, int32 index, bool as_text)
{
	char	   *const *keys = mf_model_keys(model, side);
	int64		id = mf_model_ids(model, side)[index];

	if (!as_text)
		return Int64GetDatum(id);
	return CStringGetTextDatum(keys ? keys[index] : psprintf(INT64_FORMAT, id));
}

void
mf_put_ranked(FunctionCallInfo fcinfo, const MfModel *model, MfSide side, bool as_text,
			  const double *scores, const int32 *best, int32 n_best)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	for (int32 r = 0; r < n_best; r++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		mf_interrupts_every(r, MF_INTERRUPT_ROWS);
		values[0] = id_datum(model, side, best[r], as_text);
		values[1] = Float8GetDatum(scores[best[r]]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/*
 * mf_recommend(model, user_id, n, exclude_rated, candidates, exclude): the
 * n best items for a stored user (an integer id, or as_text a text or
 * uuid one, answered with item ids as text), or with biases
 * for an unknown one the items of highest mu + b_i, among the candidates
 * (NULL: all items) less those excluded; no rows for a NULL user.
 */
static Datum
recommend(FunctionCallInfo fcinfo, bool by_name, bool as_text)
{
	MfModel    *model = mf_model_argument(fcinfo, by_name);
	MfSchema	schema = mf_schema_of(fcinfo);
	int32		n = mf_recommend_count(fcinfo, 2, "n is how many items to recommend.");
	int64		user_id;
	int32		user;
	double	   *scores;
	int32	   *best;
	int32		n_best;

	if (!as_text)
		require_integer_model(model, "mf_recommend");
	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(1))
		return (Datum) 0;		/* no user: no rows, as for an unknown one */
	user = id_argument_index(fcinfo, 1, model, MF_USERS, "mf_recommend");
	user_id = user >= 0 ? model->user_ids[user] : 0;
	if (user < 0 && !model->factors.biases)
		return (Datum) 0;

	best = mf_alloc_array(CurrentMemoryContext, Min(n, model->factors.n_items),
						  sizeof(int32));
	n_best = mf_top_items(&schema, model, user, user_id, n, PG_GETARG_BOOL(3),
						  mf_filter_mask(fcinfo, 4, model, MF_ITEMS, as_text, NULL),
						  best, &scores);
	mf_put_ranked(fcinfo, model, MF_ITEMS, as_text, scores, best, n_best);
	return (Datum) 0;
}

Datum
mf_recommend(PG_FUNCTION_ARGS)
{
	return recommend(fcinfo, false, false);
}

Datum
mf_recommend_by_name(PG_FUNCTION_ARGS)
{
	return recommend(fcinfo, true, false);
}

Datum
mf_recommend_text(PG_FUNCTION_ARGS)
{
	return recommend(fcinfo, false, true);
}

Datum
mf_recommend_text_by_name(PG_FUNCTION_ARGS)
{
	return recommend(fcinfo, true, true);
}

/* mf_catalog_scan_rated_items callback: marks the user if it rated the item. */
typedef struct RaterMark
{
	const MfModel *model;
	int64		item_id;
	bool	   *mask;
	int64		users;			/* the model's users read */
} RaterMark;

static void
mark_if_rater(int64 user_id, const int64 *items, int count, void *arg)
{
	RaterMark  *mark = arg;
	int32		user = mf_model_find_id(mark->model, MF_USERS, user_id);

	if (user < 0)
		return;
	mark->users++;
	/* every element: refits of 0.4 and 0.5-dev stored some arrays unsorted */
	for (int e = 0; e < count; e++)
		if (items[e] == mark->item_id)
		{
			mark->mask[user] = true;
			return;
		}
}

/*
 * The users' rated items as read, for the transposition into raters: user
 * u's (dense index) are item[first[u] .. first[u] + count[u]).
 */
typedef struct RatedRows
{
	const MfModel *model;
	int64	   *first;
	int32	   *count;			/* 0 (and first 0) for a user not read */
	int64		n_items;
	int64		items_room;
	int32	   *item;
	int64		users;			/* the model's users read */
} RatedRows;

/* mf_catalog_scan_rated_items callback: keeps the user's items the model knows. */
static void
keep_rated_row(int64 user_id, const int64 *items, int count, void *arg)
{
	RatedRows  *rows = arg;
	int32		user = mf_model_find_id(rows->model, MF_USERS, user_id);

	if (user < 0)
		return;
	rows->users++;
	if (rows->n_items + count > rows->items_room)
	{
		rows->items_room = Max(rows->items_room * 2, rows->n_items + count);
		rows->item = repalloc_huge(rows->item, mul_size(rows->items_room, sizeof(int32)));
	}
	rows->first[user] = rows->n_items;
	for (int e = 0; e < count; e++)
	{
		int32		item = mf_model_find_id(rows->model, MF_ITEMS, items[e]);

		if (item >= 0)
			rows->item[rows->n_items++] = item;
	}
	rows->count[user] = (int32) (rows->n_items - rows->first[user]);
}

/* Bytes of gap as 7 bits a byte, low first (a set high bit: more follow). */
static inline int
gap_bytes(uint32 gap)
{
	int			n = 1;

	while (gap >= 0x80)
	{
		gap >>= 7;
		n++;
	}
	return n;
}

static inline uint8 *
put_gap(uint8 *out, uint32 gap)
{
	while (gap >= 0x80)
	{
		*out++ = (uint8) (gap | 0x80);
		gap >>= 7;
	}
	*out++ = (uint8) gap;
	return out;
}

/*
 * Each item's raters in ascending user order, as gaps (the first from
 * -1; an item a user lists twice counts once): without out, their bytes
 * are added to at[item + 1]; with it, they are written at out + at[item],
 * which moves past them.  last: room for n_items.
 */
static void
walk_rater_gaps(const RatedRows *rows, int32 n_users, int32 n_items, int32 *last,
				int64 *at, uint8 *out)
{
	for (int32 i = 0; i < n_items; i++)
		last[i] = -1;
	for (int32 u = 0; u < n_users; u++)
	{
		mf_interrupts_every(u, MF_INTERRUPT_ROWS);
		for (int64 e = rows->first[u]; e < rows->first[u] + rows->count[u]; e++)
		{
			int32		item = rows->item[e];
			uint32		gap = (uint32) (u - last[item]);

			if (gap == 0)
				continue;
			last[item] = u;
			if (out == NULL)
				at[item + 1] += gap_bytes(gap);
			else
				at[item] = put_gap(out + at[item], gap) - out;
		}
	}
}

/*
 * Reads every user's rated_items of the model once (as the caller, who
 * may read all of them) into model->raters, each item's raters: kept with
 * the model for the calls that follow, as its factors are (a new version
 * of the model is a new MfModel).  Kept in about a byte a rating (the gap
 * between an item's successive raters is under 128 when it has more than
 * 1/128 of the users); about 4 bytes a rating more while it is built.
 */
static void
read_raters(const MfSchema *schema, MfModel *model)
{
	MemoryContext cxt = MODEL_BUILD_CONTEXT("mf_ext raters");
	MemoryContext build = AllocSetContextCreate(cxt, "mf_ext raters build",
												ALLOCSET_DEFAULT_SIZES);
	int32		n_users = model->factors.n_users;
	int32		n_items = model->factors.n_items;
	RatedRows	rows = {model, NULL, NULL, 0, 65536, NULL, 0};
	int32	   *last = mf_alloc_array(build, Max(n_items, 1), sizeof(int32));
	int64	   *start = mf_alloc_array(cxt, (Size) n_items + 1, sizeof(int64));
	int64	   *next = mf_alloc_array(build, Max(n_items, 1), sizeof(int64));
	uint8	   *raters;

	rows.first = mf_alloc_array(build, Max(n_users, 1), sizeof(int64));
	rows.count = mf_alloc_array(build, Max(n_users, 1), sizeof(int32));
	memset(rows.first, 0, sizeof(int64) * n_users);
	memset(rows.count, 0, sizeof(int32) * n_users);
	rows.item = mf_alloc_array(build, rows.items_room, sizeof(int32));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	mf_catalog_scan_rated_items(schema, model->row.model_id, keep_rated_row, &rows);
	SPI_finish();
	/* a user without a row would not be among any item's raters */
	mf_catalog_check_users_read(model->row.model_id, rows.users, n_users);

	memset(start, 0, sizeof(int64) * ((Size) n_items + 1));
	walk_rater_gaps(&rows, n_users, n_items, last, start, NULL);
	for (int32 i = 0; i < n_items; i++)
		start[i + 1] += start[i];
	raters = mf_alloc_array(cxt, Max(start[n_items], 1), 1);
	memcpy(next, start, sizeof(int64) * n_items);
	walk_rater_gaps(&rows, n_users, n_items, last, next, raters);

	MemoryContextDelete(build);
	kept_with(model, cxt);
	model->rater_start = start;
	model->raters = raters;
	mf_cache_note_read(model);
}

/* Marks in mask the raters of item that model->raters holds. */
static void
mark_kept_raters(const MfModel *model, int32 item, bool *mask)
{
	const uint8 *byte = model->raters + model->rater_start[item];
	const uint8 *end = model->raters + model->rater_start[item + 1];
	int64		user = -1;

	while (byte < end)
	{
		uint32		gap = 0;
		int			shift = 0;

		do
		{
			gap |= (uint32) (*byte & 0x7F) << shift;
			shift += 7;
		} while (*byte++ & 0x80);
		user += gap;
		mask[user] = true;
	}
}

/*
 * Marks in mask the users who rated item (dense index) in the training
 * data, as the caller may read the model's rated_items: from the raters
 * the model keeps where the caller may read all of them (read once),
 * else in one pass over the rows the caller may read.
 */
static void
mark_item_raters(const MfSchema *schema, MfModel *model, int32 item, bool *mask)
{
	RaterMark	mark = {model, model->item_ids[item], mask, 0};

	if (mf_catalog_check_rated_items_read(schema, NULL, NULL))
	{
		if (model->raters == NULL)
			read_raters(schema, model);
		mark_kept_raters(model, item, mask);
		return;
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	mf_catalog_scan_rated_items(schema, model->row.model_id, mark_if_rater, &mark);
	SPI_finish();
	mf_catalog_check_users_read(model->row.model_id, mark.users, model->factors.n_users);
}

/*
 * mf_recommend_users(model, item_id, n, exclude_rated, candidates,
 * exclude): the n users with the highest predicted rating of a stored item
 * (an integer id, or as_text a text or uuid one, answered with user ids as
 * text), among the candidate users (NULL: all) less
 * those excluded and, with exclude_rated, those who rated it in the
 * training data; score descending, ties by ascending user id.  No rows
 * for a NULL or unknown item.
 */
static Datum
recommend_users(FunctionCallInfo fcinfo, bool by_name, bool as_text)
{
	MfModel    *model = mf_model_argument(fcinfo, by_name);
	MfSchema	schema = mf_schema_of(fcinfo);
	const MfFactors *f = &model->factors;
	int32		n_users = f->n_users;
	int32		n = mf_recommend_count(fcinfo, 2, "n is how many users to list.");
	int32		item;
	bool	   *excluded;
	double	   *scores;
	double	   *best_scores;
	int32	   *best;
	int32		n_best;
	const MfCodes *codes;
	MfScoreScratch scratch;

	if (!as_text)
		require_integer_model(model, "mf_recommend_users");
	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(1))
		return (Datum) 0;
	item = id_argument_index(fcinfo, 1, model, MF_ITEMS, "mf_recommend_users");
	if (item < 0)
		return (Datum) 0;

	excluded = mf_filter_mask(fcinfo, 4, model, MF_USERS, as_text, NULL);
	if (PG_GETARG_BOOL(3))
	{
		if (excluded == NULL)
			excluded = empty_mask(n_users);
		mark_item_raters(&schema, model, item, excluded);
	}
	scores = mf_alloc_array(CurrentMemoryContext, Max(n_users, 1), sizeof(double));
	best = mf_alloc_array(CurrentMemoryContext, Max(Min(n, n_users), 1), sizeof(int32));
	best_scores = mf_alloc_array(CurrentMemoryContext, Max(Min(n, n_users), 1), sizeof(double));
	codes = side_codes(model, MF_USERS);
	scratch = scratch_alloc(f, n_users, codes);
	if (codes)
		n_best = mf_top_scored_users(f, item, codes, mf_code_dots(), excluded, model->user_ids,
									 Min(n, n_users), &scratch, scores, best, best_scores);
	else
	{
		/* scored exactly: a model of double factors */
		for (int32 u = 0; u < n_users; u++)
		{
			mf_interrupts_every(u, MF_INTERRUPT_ROWS);
			scores[u] = excluded && excluded[u] ? -INFINITY : mf_score(f, u, item);
		}
		n_best = mf_select_top(scores, model->user_ids, excluded, n_users, Min(n, n_users),
							   best, best_scores);
	}
	scratch_free(&scratch);
	mf_put_ranked(fcinfo, model, MF_USERS, as_text, scores, best, n_best);
	return (Datum) 0;
}

Datum
mf_recommend_users(PG_FUNCTION_ARGS)
{
	return recommend_users(fcinfo, false, false);
}

Datum
mf_recommend_users_by_name(PG_FUNCTION_ARGS)
{
	return recommend_users(fcinfo, true, false);
}

Datum
mf_recommend_users_text(PG_FUNCTION_ARGS)
{
	return recommend_users(fcinfo, false, true);
}

Datum
mf_recommend_users_text_by_name(PG_FUNCTION_ARGS)
{
	return recommend_users(fcinfo, true, true);
}

/*
 * The arguments of mf_similar_*: n at least 1, min_support at least 0,
 * shrinkage finite and at least 0 (0.4's definitions, served until ALTER
 * EXTENSION UPDATE, have neither: 0 and 0), a model with factors.
 */
static int32
check_similar(FunctionCallInfo fcinfo, const MfModel *model, MfSide side, bool as_text,
			  int32 *min_support, double *shrinkage)
{
	const char *name = mf_side_name(side);

	mf_check_not_null(fcinfo, 2, "n", "Omit it to use the default, or pass a value.");
	mf_check_count(PG_GETARG_INT32(2), "n",
				   psprintf("n is how many similar %ss to return.", name));
	*min_support = 0;
	*shrinkage = 0.0;
	if (PG_NARGS() > 4)
	{
		mf_check_not_null(fcinfo, 3, "min_support", "Omit it (0: no minimum), or pass a count.");
		mf_check_not_null(fcinfo, 4, "shrinkage", "Omit it (0: none), or pass a number of ratings.");
		*min_support = PG_GETARG_INT32(3);
		*shrinkage = PG_GETARG_FLOAT8(4);
		if (*min_support < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("min_support must be at least 0, got %d", *min_support),
					 errhint("%s", side == MF_ITEMS
							 ? "min_support is how many distinct users must have rated an item for it to be listed."
							 : "min_support is how many distinct items a user must have rated to be listed.")));
		if (!(*shrinkage >= 0.0 && isfinite(*shrinkage)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("shrinkage must be a finite number of at least 0, got %s", float8out_internal(*shrinkage)),
					 errhint("Each similarity is multiplied by s / (s + shrinkage), s the number of %s; 0 leaves it as it is.",
							 side == MF_ITEMS ? "distinct users who rated the item" : "distinct items the user rated")));
	}
	if (!as_text && mf_model_keys(model, side) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("model %s identifies its %ss by text keys, not integers",
						mf_text_for_message(model->row.name), name),
				 errhint("Pass the %s id as text, for example mf_similar_%ss(model, %s_id::text, n).",
						 name, name, name)));
	if (model->factors.k == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("model %s has no factors (k = 0)", mf_text_for_message(model->row.name)),
				 errdetail("Similarity is the cosine of factor vectors; a biases-only model has none."),
				 errhint("Train a model with k of 1 or more.")));
	return PG_GETARG_INT32(2);
}

/* mf_catalog_scan_supports callback: one row's support, by dense index. */
typedef struct SupportRead
{
	const MfModel *model;
	MfSide		side;
	int32	   *support;
} SupportRead;

static void
read_support(int64 id, int32 support, void *arg)
{
	SupportRead *read = arg;
	int32		index = mf_model_find_id(read->model, read->side, id);

	if (index >= 0)
		read->support[index] = support;
}

/*
 * The support of every row of one side (0 for a row the table no longer
 * has), read from the factor table as the caller, for this call alone:
 * the cached model does not hold it, so that serving needs no privilege
 * on the column unless it is used.
 */
static const int32 *
read_supports(const MfSchema *schema, const MfModel *model, MfSide side)
{
	int32		n_rows = side == MF_USERS ? model->factors.n_users : model->factors.n_items;
	SupportRead read = {model, side,
	mf_alloc_array(CurrentMemoryContext, Max(n_rows, 1), sizeof(int32))};

	memset(read.support, 0, sizeof(int32) * n_rows);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	mf_catalog_scan_supports(schema, model->row.model_id, side, read_support, &read);
	SPI_finish();
	return read.support;
}

/*
 * mf_similar_items / mf_similar_users: the n rows of the side nearest to
 * the given id's (an integer, or as_text text or a uuid) by cosine of their factors (0
 * against a zero row), the row itself and rows of support below
 * min_support left out, each cosine times s / (s + shrinkage) for a row
 * of support s (the shrunk similarity of Koren, "Factor in the
 * neighbors", TKDD 4(1), 2010, with a row's own support for the pair's);
 * best first, ties by ascending id.
 */
static Datum
similar(FunctionCallInfo fcinfo, MfSide side, bool by_name, bool as_text)
{
	MfModel    *model = mf_model_argument(fcinfo, by_name);
	const MfFactors *f = &model->factors;
	int32		n_rows = side == MF_USERS ? f->n_users : f->n_items;
	int32		min_support;
	double		shrinkage;
	int32		n = check_similar(fcinfo, model, side, as_text, &min_support, &shrinkage);
	const int32 *support = NULL;
	const double *norms;
	const void *target_row;
	double	   *scores;
	double	   *best_scores;
	bool	   *excluded;
	int32	   *best;
	int32		target;
	int32		n_best;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(1))
		return (Datum) 0;
	target = id_argument_index(fcinfo, 1, model, side,
								  side == MF_ITEMS ? "mf_similar_items" : "mf_similar_users");
	if (target < 0)
		return (Datum) 0;

	if (min_support > 0 || shrinkage > 0.0)
	{
		MfSchema	schema = mf_schema_of(fcinfo);

		support = read_supports(&schema, model, side);
	}
	norms = side_norms(model, side);
	target_row = mf_factor_row(f, side, target);
	scores = mf_alloc_array(CurrentMemoryContext, n_rows, sizeof(double));
	excluded = mf_alloc_array(CurrentMemoryContext, n_rows, sizeof(bool));
	memset(excluded, 0, sizeof(bool) * n_rows);
	excluded[target] = true;
	for (int32 r = 0; r < n_rows; r++)
	{
		double		scale = norms[target] * norms[r];

		mf_interrupts_every(r, MF_INTERRUPT_ROWS);
		/* a cosine, kept within [-1, 1], which rounding could leave by an ulp */
		scores[r] = scale > 0 ? Max(-1.0, Min(1.0, mf_row_dot(f, target_row, mf_factor_row(f, side, r)) / scale))
			: 0.0;
		if (support == NULL)
			continue;
		if (support[r] < min_support)
			excluded[r] = true;
		else if (shrinkage > 0.0)
			scores[r] *= support[r] / (support[r] + shrinkage);
	}
	best = mf_alloc_array(CurrentMemoryContext, Min(n, n_rows), sizeof(int32));
	best_scores = mf_alloc_array(CurrentMemoryContext, Min(n, n_rows), sizeof(double));
	n_best = mf_select_top(scores, mf_model_ids(model, side), excluded, n_rows,
						   Min(n, n_rows), best, best_scores);
	mf_put_ranked(fcinfo, model, side, as_text, scores, best, n_best);
	return (Datum) 0;
}

/*
 * mf_similar_items(model, item_id, n DEFAULT 10) and mf_similar_users(model,
 * user_id, n): (id, similarity) rows, by model_id or name, ids bigint or
 * (_text) text.
 */
Datum
mf_similar_items(PG_FUNCTION_ARGS)
{
	return similar(fcinfo, MF_ITEMS, false, id_argument_kind(fcinfo, 1) != MF_ID_INTEGER);
}

Datum
mf_similar_items_by_name(PG_FUNCTION_ARGS)
{
	return similar(fcinfo, MF_ITEMS, true, id_argument_kind(fcinfo, 1) != MF_ID_INTEGER);
}

Datum
mf_similar_items_text(PG_FUNCTION_ARGS)
{
	return similar(fcinfo, MF_ITEMS, false, true);
}

Datum
mf_similar_items_text_by_name(PG_FUNCTION_ARGS)
{
	return similar(fcinfo, MF_ITEMS, true, true);
}

Datum
mf_similar_users(PG_FUNCTION_ARGS)
{
	return similar(fcinfo, MF_USERS, false, id_argument_kind(fcinfo, 1) != MF_ID_INTEGER);
}

Datum
mf_similar_users_by_name(PG_FUNCTION_ARGS)
{
	return similar(fcinfo, MF_USERS, true, id_argument_kind(fcinfo, 1) != MF_ID_INTEGER);
}

Datum
mf_similar_users_text(PG_FUNCTION_ARGS)
{
	return similar(fcinfo, MF_USERS, false, true);
}

Datum
mf_similar_users_text_by_name(PG_FUNCTION_ARGS)
{
	return similar(fcinfo, MF_USERS, true, true);
}
