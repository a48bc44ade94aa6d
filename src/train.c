/*-------------------------------------------------------------------------
 *
 * train.c
 *	  mf_train(): checks the arguments, takes the options the call does not
 *	  give from the model's last training (or a first training's), reads
 *	  the ratings, runs the alternating least squares iterations, and
 *	  stores the model, as the steps of a TrainState (init, options, read,
 *	  fit, store, free).
 *
 *	  All working memory lives in one context per call.  Nothing is written
 *	  until the fit has finished, and the write happens in the caller's
 *	  transaction, so a failed or cancelled training leaves the previous
 *	  model as it was.
 *
 *-------------------------------------------------------------------------
 */
#include "mf_ext.h"
#include "als.h"
#include "arguments.h"
#include "catalog.h"
#include "checks.h"
#include "distributed.h"
#include "evaluate.h"
#include "idmap.h"
#include "progress.h"
#include "query.h"
#include "source.h"

#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(mf_train);

/*
 * mf_train's arguments in this version (sql/mf_ext.sql), and in 0.4's,
 * which lacks patience: a database not yet updated trains through it.
 */
#define TRAIN_ARGUMENTS	24
#define TRAIN_ARGUMENTS_0_4	19

/* One call of mf_train. */
typedef struct TrainState
{
	MfArguments args;
	MfSchema	schema;
	MfSource	source;
	Oid			validation_relid;	/* InvalidOid without validation */
	MfSource	validation_source;	/* the validation relation, with source's columns */
	MfModelRow	row;			/* what is stored */
	instr_time	start;
	MemoryContext cxt;			/* everything below lives here */
	MfRatings  *ratings;
	MfRatingsSummary summary;	/* of ratings, read on this node */
	MfTestSet  *validation;		/* or NULL */
	MfAls	   *als;
	MfDistributed *distributed; /* half-steps on the Citus workers, or NULL */
} TrainState;

/*
 * A first training's options and columns, for every argument the call
 * does not give (NULL): those of mf_cross_validate and of mf_train before
 * 0.5, whose SQL spelled them out.
 */
static const MfFitOptions first_training = {
	.k = 10,
	.lambda = 0.1,
	.iterations = 10,
	.seed = 0,
	.single = true,
	.biases = false,
	.weighted_lambda = false,
	.tolerance = 0.0,
	.implicit = false,
	.alpha = 40.0,
	.conjugate_gradient = false,
	.nonnegative = false,
	.patience = 0,
	.bias_lambda = -1,
	.lambda_per_rating = 0,
	.implicit_weight = 0,
	.clip = false,
};
static const char *const first_training_columns[] = {"user_id", "item_id", "rating"};

/* The hint for an argument of mf_train that must not be NULL. */
static const char *
train_null_hint(const char *name)
{
	if (strcmp(name, "source") == 0)
		return "Pass the relation that holds the ratings.";
	return "Pass true or false, or omit the argument (false).";
}

/*
 * Reads the arguments the rest depends on and checks the caller's right
 * to write models, before any work.
 */
static void
train_init(TrainState *state, FunctionCallInfo fcinfo)
{
	static const char *const nullable[] = {
		"model_name", "validation", "solver", "k", "lambda", "iterations", "user_col",
		"item_col", "rating_col", "seed", "double_precision", "biases", "weighted_lambda",
		"tolerance", "feedback", "alpha", "nonnegative", "patience", "bias_lambda",
		"lambda_per_rating", "implicit_weight", "clip", NULL
	};
	MfModelRow *row = &state->row;
	MfSource   *source = &state->source;

	INSTR_TIME_SET_CURRENT(state->start);
	state->args = mf_arguments(fcinfo, "mf_train",
							   fcinfo->nargs == TRAIN_ARGUMENTS_0_4 ? TRAIN_ARGUMENTS_0_4
							   : TRAIN_ARGUMENTS,
							   nullable, train_null_hint);
	source->argname = "source";
	source->fixed_columns = false;
	source->relid = DatumGetObjectId(mf_argument(&state->args, "source"));
	row->warm_start = DatumGetBool(mf_argument(&state->args, "warm_start"));
	row->name = mf_text_argument(&state->args, "model_name");
	if (row->name == NULL && (row->name = get_rel_name(source->relid)) == NULL)
		mf_report_missing_relation(source->relid, source->argname);
	state->validation_relid = mf_argument_isnull(&state->args, "validation") ? InvalidOid
		: DatumGetObjectId(mf_argument(&state->args, "validation"));
	mf_check_model_name(row->name);
	state->schema = mf_schema_of(fcinfo);
	mf_check_write_privileges(&state->schema, "mf_train", true);

	state->cxt = AllocSetContextCreate(CurrentMemoryContext, "mf_train",
									   ALLOCSET_DEFAULT_SIZES);
}

/* A column argument of the call, or NULL when it does not give it. */
static const char *
column_argument(const MfArguments *args, const char *name)
{
	return mf_argument_given(args, name)
		? pstrdup(NameStr(*DatumGetName(mf_argument(args, name)))) : NULL;
}

/* The kind of ids of a key type (InvalidOid: integers), for messages. */
static const char *
id_kind(Oid key_type)
{
	return OidIsValid(key_type) ? format_type_be(key_type) : "integer";
}

/* What a retraining keeps and changes, for its NOTICE and its errors' context. */
typedef struct Retraining
{
	const char *name;			/* the model's */
	StringInfoData kept;		/* "k = 4, lambda = 2" */
	StringInfoData changed;		/* "lambda 2 -> 1" */
	bool		foreign_columns;	/* columns another role recorded were not kept */
} Retraining;

/*
 * Fills what of stored (the model's last training) the training in state
 * keeps without naming it, where that differs from a first training's, and
 * what it changes, named or following a change it names (a solver after a
 * new feedback kind).
 */
static void
describe_retraining(const TrainState *state, const MfModelRow *stored, bool own_columns,
					Retraining *retraining)
{
	const MfModelRow *row = &state->row;
	MfModelRow	first = {0};
	const char *names[MF_KEPT_OPTIONS];
	char	   *before[MF_KEPT_OPTIONS];
	char	   *after[MF_KEPT_OPTIONS];
	char	   *usual[MF_KEPT_OPTIONS];
	int			n;

	first.options = first_training;
	first.user_col = first_training_columns[0];
	first.item_col = first_training_columns[1];
	first.rating_col = first_training_columns[2];
	n = mf_catalog_kept_options(stored, names, before);
	(void) mf_catalog_kept_options(row, names, after);
	(void) mf_catalog_kept_options(&first, names, usual);
	retraining->name = row->name;
	initStringInfo(&retraining->kept);
	initStringInfo(&retraining->changed);
	retraining->foreign_columns = false;
	for (int o = 0; o < n; o++)
	{
		const char *was = before[o] ? before[o] : "none";
		const char *is = after[o] ? after[o] : "none";
		bool		given = mf_argument_given(&state->args, names[o]);

		if (strcmp(was, is) != 0)
		{
			appendStringInfo(&retraining->changed, "%s%s %s -> %s",
							 retraining->changed.len > 0 ? ", " : "", names[o], was, is);
			if (!given && !own_columns &&
				(strcmp(names[o], "user_col") == 0 || strcmp(names[o], "item_col") == 0 ||
				 strcmp(names[o], "rating_col") == 0))
				retraining->foreign_columns = true;
		}
		else if (!given && before[o] != NULL &&
				 (usual[o] == NULL || strcmp(before[o], usual[o]) != 0))
			appendStringInfo(&retraining->kept, "%s%s = %s",
							 retraining->kept.len > 0 ? ", " : "", names[o], was);
	}
}

/* Whether the call names alpha: 0.4's SQL passes its default 40 whatever the feedback. */
static bool
alpha_named(const TrainState *state)
{
	return state->args.fcinfo->nargs != TRAIN_ARGUMENTS_0_4 &&
		mf_argument_given(&state->args, "alpha");
}

/* The options a retraining's whole fix may change (refuse_kept_conflicts). */
typedef enum KeptOption
{
	KEPT_K,
	KEPT_BIASES,
	KEPT_BIAS_LAMBDA,
	KEPT_CLIP,
	KEPT_IMPLICIT_WEIGHT,
	KEPT_PATIENCE,
	KEPT_FEEDBACK,
	KEPT_NONNEGATIVE,
	KEPT_LAMBDA,
	KEPT_SOLVER,
	KEPT_ALPHA,
	N_KEPT_OPTIONS
} KeptOption;

static const char *const kept_option_names[N_KEPT_OPTIONS] = {
	"k", "biases", "bias_lambda", "clip", "implicit_weight", "patience", "feedback",
	"nonnegative", "lambda", "solver", "alpha"
};

/* A retraining's options being settled: which are fixed, and what changed. */
typedef struct KeptConflicts
{
	const TrainState *state;
	MfFitOptions options;		/* the call's, then with each change */
	const MfFitOptions *first;	/* a first training's */
	bool		fixed[N_KEPT_OPTIONS];	/* named by the call, or changed */
	bool		named_clash;	/* a rule the call's own options break */
	bool		beyond_default; /* a change of an option kept at other than its default */
	int			changes;		/* options changed, and a warm start given up */
	StringInfoData kept;		/* "biases = true, clip = true" */
	StringInfoData change;		/* "biases := false, clip := false" */
	StringInfoData why;			/* "biases are for explicit feedback; ..." */
} KeptConflicts;

/*
 * The text of option o's value in options, as the retraining NOTICE shows
 * it (mf_catalog_kept_options', "none" for NULL).
 */
static char *
kept_value(const KeptConflicts *c, const MfFitOptions *options, KeptOption o)
{
	MfModelRow	row = c->state->row;
	const char *names[MF_KEPT_OPTIONS];
	char	   *values[MF_KEPT_OPTIONS];
	int			n;

	row.options = *options;
	n = mf_catalog_kept_options(&row, names, values);
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], kept_option_names[o]) == 0)
			return values[i] ? values[i] : "none";
	elog(ERROR, "option %s is not kept by a retraining", kept_option_names[o]);
	return NULL;				/* not reached */
}

/*
 * Changes option o, not named, to the value a broken rule needs (the one
 * the assignment in change says), recording what it was kept at and why.
 */
static void
change_kept(KeptConflicts *c, KeptOption o, const char *change, const char *why)
{
	MfFitOptions *options = &c->options;
	/* the call's value, before any change the fix made: what the model keeps */
	char	   *was = kept_value(c, &c->state->row.options, o);

	/*
	 * but a solver not named follows a named feedback (parse_feedback): the
	 * call chose it, and the model keeps nothing of it (the error had
	 * called a Cholesky model's solver "kept" as cg; helper 254)
	 */
	if (o != KEPT_SOLVER || !mf_argument_given(&c->state->args, "feedback"))
	{
		if (strcmp(was, kept_value(c, c->first, o)) != 0)
			c->beyond_default = true;
		appendStringInfo(&c->kept, "%s%s = %s", c->kept.len > 0 ? ", " : "", kept_option_names[o], was);
	}
	appendStringInfo(&c->change, "%s%s", c->change.len > 0 ? ", " : "", change);
	appendStringInfo(&c->why, "%s%s", c->why.len > 0 ? "; " : "", why);
	c->fixed[o] = true;
	c->changes++;
	switch (o)
	{
		case KEPT_K:
			options->k = c->first->k;
			break;
		case KEPT_BIASES:
			options->biases = !options->biases;
			break;
		case KEPT_BIAS_LAMBDA:
			options->bias_lambda = -1;
			break;
		case KEPT_CLIP:
			options->clip = false;
			break;
		case KEPT_IMPLICIT_WEIGHT:
			options->implicit_weight = 0;
			break;
		case KEPT_PATIENCE:
			options->patience = 0;
			break;
		case KEPT_FEEDBACK:
			options->implicit = !options->implicit;
			/* a solver not named follows the kind, as parse_feedback has it */
			if (!c->fixed[KEPT_SOLVER])
				options->conjugate_gradient = options->implicit && !options->nonnegative;
			break;
		case KEPT_NONNEGATIVE:
			options->nonnegative = false;
			break;
		case KEPT_LAMBDA:
			options->lambda = c->first->lambda;
			break;
		case KEPT_SOLVER:
			options->conjugate_gradient = false;
			break;
		case KEPT_ALPHA:
		case N_KEPT_OPTIONS:
			elog(ERROR, "option %d is not changed by a retraining's fix", (int) o);
	}
}

/*
 * A rule broken: changes a (to change_a) unless the call named it, else b
 * (to change_b); when the call named both, its own options clash, which
 * mf_check_fit_options reports.  Returns whether anything changed.
 */
static bool
settle(KeptConflicts *c, const char *why, KeptOption a, const char *change_a,
	   KeptOption b, const char *change_b)
{
	if (!c->fixed[a])
		change_kept(c, a, change_a, why);
	else if (change_b != NULL && !c->fixed[b])
		change_kept(c, b, change_b, why);
	else
	{
		c->named_clash = true;
		return false;
	}
	return true;
}

/*
 * Refuses, in one error with the whole fix, a retraining whose named
 * options break a rule of mf_check_fit_options together with options it
 * keeps without naming them (a switch to implicit feedback keeps biases,
 * clip, implicit_weight, patience; a named bias_lambda or k = 0 needs biases
 * a kept implicit feedback refuses).  Each broken rule changes the option
 * the call did not name, and so on until none is broken: checked one at a
 * time, each error's hint would be blind to the next, and could undo the
 * last.  Left to those checks, whose hints give both ways out: a clash
 * among the named options alone, a fix of one change, and a fix that
 * changes only options kept at a first training's values (the call then
 * breaks a rule as a first training would).
 */
static void
refuse_kept_conflicts(const TrainState *state)
{
	KeptConflicts c = {.state = state, .options = state->row.options, .first = &first_training};
	MfFitOptions *o = &c.options;
	bool		changed = true;

	for (int k = 0; k < N_KEPT_OPTIONS; k++)
		c.fixed[k] = mf_argument_given(&state->args, kept_option_names[k]);
	initStringInfo(&c.kept);
	initStringInfo(&c.change);
	initStringInfo(&c.why);
	for (int pass = 0; changed && !c.named_clash && pass <= N_KEPT_OPTIONS; pass++)
	{
		changed = false;
		if (alpha_named(state) && !o->implicit)
			changed |= settle(&c, "alpha is for implicit feedback",
							  KEPT_FEEDBACK, "feedback := 'implicit'", KEPT_ALPHA, NULL);
		if (o->implicit && o->biases)
			changed |= settle(&c, "biases are for explicit feedback",
							  KEPT_BIASES, "biases := false", KEPT_FEEDBACK, "feedback := 'explicit'");
		if (o->implicit && o->clip)
			changed |= settle(&c, "clip is for explicit feedback",
							  KEPT_CLIP, "clip := false", KEPT_FEEDBACK, "feedback := 'explicit'");
		if (o->implicit && o->patience > 0)
			changed |= settle(&c, "patience is for explicit feedback",
							  KEPT_PATIENCE, "patience := 0", KEPT_FEEDBACK, "feedback := 'explicit'");
		if (o->implicit_weight > 0 && o->implicit)
			changed |= settle(&c, "implicit_weight is for explicit feedback",
							  KEPT_IMPLICIT_WEIGHT, "implicit_weight := 0", KEPT_FEEDBACK, "feedback := 'explicit'");
		if (o->implicit_weight > 0 && o->nonnegative)
			changed |= settle(&c, "implicit_weight does not work with non-negative factors",
							  KEPT_IMPLICIT_WEIGHT, "implicit_weight := 0", KEPT_NONNEGATIVE, "nonnegative := false");
		if (o->implicit_weight > 0 && o->k == 0)
			changed |= settle(&c, "implicit_weight needs k >= 1",
							  KEPT_IMPLICIT_WEIGHT, "implicit_weight := 0", KEPT_K, "k := 10");
		if (o->implicit_weight > 0 && o->lambda == 0)
			changed |= settle(&c, "implicit_weight needs lambda > 0",
							  KEPT_IMPLICIT_WEIGHT, "implicit_weight := 0", KEPT_LAMBDA, "lambda := 0.1");
		if (o->k == 0 && !o->biases)
			changed |= settle(&c, "k = 0 needs biases",
							  KEPT_K, "k := 10", KEPT_BIASES, "biases := true");
		if (o->bias_lambda >= 0 && !o->biases)
			changed |= settle(&c, "bias_lambda needs biases",
							  KEPT_BIAS_LAMBDA, "bias_lambda := -1", KEPT_BIASES, "biases := true");
		/* a kept lambda = 0 changes, or else the solver (CG after a switch to implicit feedback) */
		if (o->conjugate_gradient && o->lambda == 0)
			changed |= settle(&c, "solver 'cg' needs lambda > 0",
							  KEPT_LAMBDA, "lambda := 0.1", KEPT_SOLVER, "solver := 'cholesky'");
		if (o->patience > 0 && !OidIsValid(state->validation_relid))
			changed |= settle(&c, "patience needs a validation relation, which this call does not pass",
							  KEPT_PATIENCE, "patience := 0", KEPT_PATIENCE, NULL);
	}
	/* a warm start keeps the stored k: a changed one is a change more */
	if (!c.named_clash && o->k != state->row.options.k && state->row.warm_start)
	{
		appendStringInfoString(&c.change, ", warm_start := false");
		appendStringInfoString(&c.why, "; a warm start keeps the stored k");
		c.changes++;
	}
	/*
	 * Named options that clash among themselves (feedback := 'implicit' with
	 * k := 0): refused on the options as settled, each kept option a rule
	 * ruled out already changed, so that the first rule broken is the
	 * clash's (checked with every option as kept, the first may be a kept
	 * option's, whose hint leads to the next, and only then to the clash).
	 */
	if (c.named_clash)
		mf_check_fit_options(o);
	if (c.named_clash || !c.beyond_default || c.changes < 2)
		return;
	/* a named value out of range is refused as such first: the fix would meet it next */
	mf_check_fit_options(o);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("model %s keeps options of its last training that this call rules out: %s",
					mf_text_for_message(state->row.name), c.kept.data),
			 errdetail("A retraining keeps each option the call does not name, and %s.", c.why.data),
			 errhint("Name them in the call: %s (or drop the model with mf_drop_model to train it from the defaults).",
					 c.change.data)));
}

/* Error context while a retraining checks what it kept (and did not). */
static void
retraining_context(void *arg)
{
	const Retraining *retraining = arg;

	if (retraining->kept.len > 0)
		errcontext("model %s keeps from its last training: %s",
				   mf_text_for_message(retraining->name), retraining->kept.data);
	if (retraining->foreign_columns)
		errcontext("model %s does not keep the columns of its last training, which another role recorded: name user_col, item_col and rating_col",
				   mf_text_for_message(retraining->name));
}

/*
 * The retraining's NOTICE: what it keeps and what it changes, ids of
 * another type included.
 */
static void
report_retraining(const TrainState *state, const MfModelRow *stored, Retraining *retraining)
{
	const MfModelRow *row = &state->row;
	StringInfo	changed = &retraining->changed;
	StringInfo	kept = &retraining->kept;

	if (stored->user_key_type != row->user_key_type)
		appendStringInfo(changed, "%suser ids %s -> %s", changed->len > 0 ? ", " : "",
						 id_kind(stored->user_key_type), id_kind(row->user_key_type));
	if (stored->item_key_type != row->item_key_type)
		appendStringInfo(changed, "%sitem ids %s -> %s", changed->len > 0 ? ", " : "",
						 id_kind(stored->item_key_type), id_kind(row->item_key_type));
	if (retraining->foreign_columns)
		appendStringInfoString(changed, " (columns are kept only from a training of your own)");
	if (kept->len > 0)
		ereport(NOTICE,
				(errmsg("model %s keeps the options of its last training that this call does not name",
						mf_text_for_message(row->name)),
				 changed->len > 0 ? errdetail("Kept: %s.  Changed: %s.", kept->data, changed->data)
				 : errdetail("Kept: %s.", kept->data),
				 errhint("Name an option to change it, or drop the model with mf_drop_model to train it from the defaults.")));
	else if (changed->len > 0)
		ereport(NOTICE,
				(errmsg("model %s is retrained with other options", mf_text_for_message(row->name)),
				 errdetail("Changed: %s.", changed->data)));
}

/*
 * 42804 unless the source's items are text keys (source_keys) where the
 * stored model model_name's are (model_keys), and integers where its are.
 */
static void
check_warm_start_items(const char *model_name, bool model_keys, bool source_keys)
{
	if (model_keys != source_keys)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("warm start needs item ids of the kind stored model %s has", mf_text_for_message(model_name)),
				 errdetail("Its items are identified by %s, those of the source by %s.",
						   source_keys ? "integers" : "text keys",
						   source_keys ? "text keys" : "integers"),
				 errhint("Train without warm_start, or from a relation whose item column has the stored model's type.")));
}

/*
 * 22023 unless k, the k a warm start of stored model model_name trains
 * with, is stored_k, the model's.
 */
static void
check_warm_start_k(const char *model_name, int stored_k, int k)
{
	if (stored_k != k)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("warm start needs k = %d, the k of stored model %s, but k = %d was given",
						stored_k, mf_text_for_message(model_name), k),
				 errhint("Pass k := %d, or train without warm_start.", stored_k)));
}

/* 42704: a warm start from model_name, which no model has. */
static void
refuse_missing_warm_start(const char *model_name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("cannot warm-start: model %s does not exist", mf_text_for_message(model_name)),
			 errhint("Train it once without warm_start, or pass the model_name of an existing model.")));
}

/*
 * The training's options and columns: those the call gives, and for the
 * rest those of the model's last training when it is retrained, else a
 * first training's.  Then checks them and the source.  Needs SPI.
 */
static void
train_options(TrainState *state)
{
	MfModelRow *row = &state->row;
	MfSource   *source = &state->source;
	MfModelRow	stored = {0};
	bool		retraining = mf_catalog_trained_options(&state->schema, row->name, &stored);
	bool		own_columns = retraining && stored.source_recorded_by == GetUserId();
	const char *given[3];
	Retraining	retraining_notes;
	ErrorContextCallback context = {error_context_stack, retraining_context, &retraining_notes};

	row->options = retraining ? stored.options : first_training;
	row->model_id = retraining ? stored.model_id : 0;	/* the row locked, checked at the store */
	if (retraining && !stored.options.implicit)
		row->options.alpha = first_training.alpha;	/* stored as NULL */
	mf_read_fit_options(&state->args, &row->options);
	/* columns recorded by another role, or by no training, name another's data: not kept */
	given[0] = column_argument(&state->args, "user_col");
	given[1] = column_argument(&state->args, "item_col");
	given[2] = column_argument(&state->args, "rating_col");
	row->user_col = given[0] ? given[0] : own_columns ? stored.user_col : first_training_columns[0];
	row->item_col = given[1] ? given[1] : own_columns ? stored.item_col : first_training_columns[1];
	row->rating_col = given[2] ? given[2] : own_columns ? stored.rating_col : first_training_columns[2];
	source->user_col = row->user_col;
	source->item_col = row->item_col;
	source->rating_col = row->rating_col;

	/* an error about an option the call does not name says where it came from */
	if (retraining)
		describe_retraining(state, &stored, own_columns, &retraining_notes);
	if (retraining && (retraining_notes.kept.len > 0 || retraining_notes.foreign_columns))
		error_context_stack = &context;
	/*
	 * a warm start from no model, or named with a k not the stored one (a
	 * clash of named options with the stored model), refused before the
	 * data is read; a k out of range is refused as such, by
	 * mf_check_fit_options.  (Those checks hold again once the training
	 * holds the model's row: a retraining may commit meanwhile.)
	 */
	if (!retraining && row->warm_start)
		refuse_missing_warm_start(row->name);
	if (retraining && row->warm_start && row->options.k >= MF_MIN_K && row->options.k <= MF_MAX_K)
		check_warm_start_k(row->name, stored.options.k, row->options.k);
	if (retraining)
		refuse_kept_conflicts(state);
	/*
	 * an explicit model has no alpha, and would drop one unsaid; feedback :=
	 * 'implicit' is no way out beside options for explicit feedback only
	 * (biases, and what needs them: k = 0, bias_lambda)
	 */
	if (!row->options.implicit && alpha_named(state))
	{
		const MfFitOptions *o = &row->options;
		const char *explicit_only = o->k == 0 ? "k = 0 (biases only)"
			: o->bias_lambda >= 0 ? "bias_lambda" : o->biases ? "biases" : o->clip ? "clip"
			: o->patience > 0 ? "patience" : o->implicit_weight > 0 ? "implicit_weight" : NULL;

		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alpha is for implicit feedback"),
				 errdetail("alpha turns a count into the confidence 1 + alpha * count of an implicit-feedback model; explicit ratings are fitted as they are."),
				 explicit_only
				 ? errhint("Leave out alpha: this training's %s is for explicit feedback only.", explicit_only)
				 : errhint("Leave out alpha, or pass feedback := 'implicit' (a retrained model keeps its last training's feedback).")));
	}
	mf_check_fit_options(&row->options);
	mf_check_patience_validation(&row->options, OidIsValid(state->validation_relid));
	mf_source_validate(source);
	/* the kind of item ids, known from the columns' types before the data is read */
	if (retraining && row->warm_start)
		check_warm_start_items(row->name, OidIsValid(stored.item_key_type), source->item_keys);
	error_context_stack = context.previous;
	row->source = mf_source_display_name(source->relid);
	row->user_key_type = source->user_keys ? source->user_type : InvalidOid;
	row->item_key_type = source->item_keys ? source->item_type : InvalidOid;
	if (retraining)
		report_retraining(state, &stored, &retraining_notes);
}

/*
 * Validates the validation relation as a source of the training's
 * columns, into state->validation_source.
 */
static void
train_validation_source(TrainState *state)
{
	MfSource   *source = &state->validation_source;

	*source = state->source;
	source->argname = "validation";
	source->fixed_columns = true;
	source->relid = state->validation_relid;
	/* keys trained from uuids, character(n), name: the validation's text read as such */
	source->user_key_form = mf_key_form(state->source.user_type);
	source->item_key_form = mf_key_form(state->source.item_type);
	mf_source_validate(source);
	mf_check_same_id_kind(source->user_keys, source->item_keys, state->source.user_keys,
						  state->source.item_keys,
						  mf_argument_display_name(source->relid, "validation"), true);
}

/*
 * Reads the validation relation (the training's columns) and maps it onto
 * the training's users and items, counting the training's ratings against
 * mf_ext.max_memory while it reads; only the mapped ratings (16 bytes
 * each) are kept.  A model without biases cannot score a rating of a user
 * or item it has not seen: when that leaves nothing to score, the
 * validation is useless, and an error says so.
 */
static MfTestSet *
read_validation(TrainState *state)
{
	const MfRatings *ratings = state->ratings;
	const MfFitOptions *options = &state->row.options;
	MemoryContext read_cxt = AllocSetContextCreate(state->cxt, "mf_ext validation",
												   ALLOCSET_DEFAULT_SIZES);
	MfRatings  *held_out;
	MfTestSet  *test;
	int64		known = 0;
	char	   *name = mf_argument_display_name(state->validation_relid, "validation");

	state->validation_source.held_bytes = mf_ratings_bytes(ratings);
	held_out = mf_source_read(&state->validation_source, read_cxt);
	if (options->implicit)
		mf_ratings_event_log(held_out);	/* each held-out pair once */
	if (held_out->n_skipped > 0)
		ereport(NOTICE,
				(errmsg("validation: skipped " INT64_FORMAT " rows of %s with a NULL user, item or rating",
						held_out->n_skipped, name)));
	if (held_out->n_ratings == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("validation relation %s has no ratings", name),
				 errhint("%s", mf_no_ratings_hint(held_out, "Pass a relation of held-out ratings, for example rows where mf_is_test(user, item, 0.2) holds, or omit validation."))));
	test = mf_test_set(held_out,
					   mf_id_map_from_sorted(read_cxt, ratings->user_ids, ratings->n_users),
					   mf_id_map_from_sorted(read_cxt, ratings->item_ids, ratings->n_items),
					   ratings->user_keys ? mf_key_map(read_cxt, ratings->user_keys, ratings->n_users) : NULL,
					   ratings->item_keys ? mf_key_map(read_cxt, ratings->item_keys, ratings->n_items) : NULL,
					   state->cxt);
	MemoryContextDelete(read_cxt);	/* the ratings read, and the maps */
	for (int64 r = 0; r < test->n; r++)
		known += test->user[r] >= 0 && test->item[r] >= 0;
	if (known == 0 && !options->biases)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no rating in validation relation %s is of a user and an item in the training data", name),
				 errhint("Hold out ratings of users and items that also have training ratings, or pass biases := true to score unknown ones from their biases.")));
	if (known < test->n)
		ereport(NOTICE,
				(errmsg("validation: " INT64_FORMAT " of " INT64_FORMAT " ratings in %s are of a user or item not in the training data",
						test->n - known, test->n, name),
				 errdetail(options->biases ? "They are scored from the biases that are known."
						   : "They are left out of the validation RMSE.")));
	return test;
}

/* Reads the ratings (an event log's pairs summed) and the validation set. */
static void
train_read(TrainState *state)
{
	MfModelRow *row = &state->row;

	state->distributed = mf_distributed_begin(&state->schema, &state->source, &row->options,
											  state->cxt);
	state->ratings = state->distributed ? mf_distributed_read(state->distributed)
		: mf_source_read(&state->source, state->cxt);
	if (state->ratings->n_skipped > 0)
		ereport(NOTICE,
				(errmsg("skipped " INT64_FORMAT " rows with a NULL user, item or rating",
						state->ratings->n_skipped)));
	if (state->ratings->n_ratings == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s has no ratings to train on", row->source),
				 errdetail("Rows with a NULL user, item or rating are skipped; " INT64_FORMAT " were.",
						   state->ratings->n_skipped),
				 errhint("%s", mf_no_ratings_hint(state->ratings, "Load ratings into the relation, or pass the one that holds them."))));
	if (row->options.implicit)
		mf_ratings_implicit_strengths(state->ratings, row->options.alpha);
	if (!state->distributed)
	{
		state->summary = mf_ratings_summarize(state->ratings, row->options.biases);
		if (!row->options.implicit)
			mf_ratings_check_scale(state->ratings, &state->summary, row->options.single,
								   row->options.biases, NULL);
	}
	if (OidIsValid(state->validation_relid))
	{
		state->validation = read_validation(state);
		row->validation = mf_source_display_name(state->validation_relid);
	}
	row->load_seconds = mf_seconds_since(state->start);
}

/*
 * Checks the memory the fit needs, seeds the item factors (or starts from
 * the stored model's), and runs the iterations.
 */
static void
train_fit(TrainState *state)
{
	MfModelRow *row = &state->row;
	const MfFitOptions *options = &row->options;
	const MfRatings *ratings = state->ratings;
	MfMemory	memory = {0};
	/* the held-out ratings mapped for validation, kept through the fit */
	int64		held_out = state->validation ? state->validation->n : 0;
	const char *validation = held_out > 0
		? psprintf(", and " INT64_FORMAT " held-out ratings for validation", held_out) : "";

	mf_memory_add(&memory, held_out, MF_TEST_SET_BYTES_PER_RATING);
	if (state->distributed)
	{
		/* the workers hold the ratings; this node the factors, then the rated items */
		Size		rows = add_size(ratings->n_users, ratings->n_items);

		mf_memory_add(&memory, mul_size(rows, options->k),
					  options->single ? sizeof(float) : sizeof(double));
		mf_memory_add(&memory, rows, 4 * sizeof(double));
		mf_memory_add(&memory, ratings->n_ratings, sizeof(int32));
		mf_memory_check(&memory, "training",
						psprintf("Training on the Citus workers, this node holds the factors of %d users and %d items with k = %d in %s precision and, to store the model, " INT64_FORMAT " rated items%s.",
								 ratings->n_users, ratings->n_items, options->k,
								 options->single ? "single" : "double", ratings->n_ratings,
								 validation),
						NULL);
	}
	else
	{
		int			threads = mf_als_memory_estimate(ratings, options, &memory);

		mf_memory_check(&memory, "training",
						psprintf("Training on " INT64_FORMAT " ratings of %d users and %d items with k = %d in %s precision on %d thread%s%s%s.",
								 ratings->n_ratings, ratings->n_users, ratings->n_items,
								 options->k, options->single ? "single" : "double", threads,
								 threads == 1 ? "" : "s",
								 options->patience > 0 ? ", with a copy of the factors for patience" : "",
								 validation),
						NULL);
	}
	state->als = state->distributed ? mf_distributed_als(state->distributed, options)
		: mf_als_create(ratings, options, &state->summary, NULL, NULL, state->cxt);
	mf_als_init_items(state->als, options->seed);
	/* the model was there when train_options checked: dropped since */
	if (row->warm_start &&
		!mf_catalog_warm_start(&state->schema, row->name, options, ratings, state->als))
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("model %s was dropped after this training checked its warm start",
						mf_text_for_message(row->name)),
				 errhint("Run the training again once the other transaction has committed, or train without warm_start (a source that drops the model as it is read, through a function in a view, does so every time).")));
	mf_fit(state->als, options, state->validation, true, &row->history);
	/* of the factors stored: the last iteration's, or with patience the best's */
	row->train_rmse = row->history.train_rmse[row->history.kept_iteration - 1];
	row->train_seconds = mf_seconds_since(state->start);
}

/* Stores the model, replacing the one of the same name; returns its model_id. */
static int32
train_store(TrainState *state)
{
	MfModelRow *row = &state->row;
	int32		model_id;

	row->n_users = state->ratings->n_users;
	row->n_items = state->ratings->n_items;
	row->n_ratings = state->ratings->n_ratings;
	row->skipped_rows = state->ratings->n_skipped;
	row->global_mean = mf_als_factors(state->als)->mean;
	row->rating_min = mf_als_factors(state->als)->rating_min;
	row->rating_max = mf_als_factors(state->als)->rating_max;
	/* storing needs only the users' rows (for rated_items): free the rest */
	mf_ratings_free_by_item(state->ratings);
	if (state->distributed)
		mf_distributed_rated_items(state->distributed);
	model_id = mf_catalog_store_model(&state->schema, row, state->ratings, state->als);
	if (state->distributed)
		mf_distributed_end(state->distributed);
	return model_id;
}

/*
 * mf_train(source regclass, k, lambda, ...): trains a model on source's
 * ratings and stores it under model_name (by default the relation's
 * name), replacing the model of that name.  Returns its model_id.  The
 * arguments and errors are documented in sql/mf_ext.sql and the README.
 */
Datum
mf_train(PG_FUNCTION_ARGS)
{
	TrainState	state = {0};
	MemoryContext old;
	int32		model_id;

	train_init(&state, fcinfo);
	old = MemoryContextSwitchTo(state.cxt);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	mf_progress_begin("mf_train", state.row.name, "options");
	train_options(&state);
	mf_progress_phase("reading");

	/*
	 * The source and validation as committed once train_options holds the
	 * model's row and everything read is locked, as a refit reads its
	 * source (refit_read): a retraining that waited for another's trained
	 * on the ratings of its statement's start, and replaced the newer model
	 * by a fit to the older ones; a validation relation rewritten while the
	 * call waited for its lock was read as empty.
	 */
	mf_source_lock_read(&state.source);
	if (OidIsValid(state.validation_relid))
	{
		train_validation_source(&state);
		mf_source_lock_read(&state.validation_source);
	}
	mf_source_push_read_snapshot((MfSource *[]) {&state.source, &state.validation_source},
								 OidIsValid(state.validation_relid) ? 2 : 1);
	train_read(&state);
	PopActiveSnapshot();
	train_fit(&state);
	mf_progress_phase("storing");
	model_id = train_store(&state);
	mf_progress_end();
	SPI_finish();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(state.cxt);
	PG_RETURN_INT32(model_id);
}
