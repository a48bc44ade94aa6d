/*-------------------------------------------------------------------------
 *
 * progress.c
 *	  A long call's progress in its backend's activity text (progress.h).
 *
 *	  The report follows the statement's text (cut to leave it room within
 *	  track_activity_query_size), so that the activity still starts as the
 *	  statement does.  Only the outermost reported call of a statement
 *	  reports; calls nested in it (a training inside the function of a
 *	  view another training reads) keep quiet.  A (sub)transaction abort
 *	  ends the calls it aborts, and the last one's end puts the statement's
 *	  text back.
 *
 *-------------------------------------------------------------------------
 */
#include "progress.h"

#include "access/xact.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* The longest model name reported, in bytes (the activity text is short). */
#define MF_PROGRESS_NAME	200

/* Seconds at least between two reports of counts (rows solved, rows read). */
#define MF_PROGRESS_INTERVAL	1.0

/* Reported calls nested deeper than this are not followed (they keep quiet anyway). */
#define MF_PROGRESS_DEPTH	16

/* The outermost call being reported, and the calls nested in it. */
typedef struct Progress
{
	char		function[NAMEDATALEN];
	char		model[MF_PROGRESS_NAME + 1];	/* empty: none */
	char		part[64];		/* "fold 2 of 5", or empty */
	char		phase[32];
	char		unit[32];
	int64		step;
	int64		steps;
	char		side[8];		/* "user", "item": rows being solved, or empty */
	int64		rows_done;
	int64		rows_total;
	double		rows_step_done; /* the step's share done before these rows */
	double		rows_step_share;	/* their share of the step */
	bool		rows_counting;	/* mf_progress_rows updates rows_done */
	double		loss;
	double		validation_rmse;
	int64		best_iteration; /* 0: none */
	double		started;		/* seconds since the epoch */
	double		phase_started;
	double		published_at;	/* when the last report was written */
	char	   *statement_text; /* the statement's text as the activity keeps
								 * it, in TopMemoryContext */
	TimestampTz statement;		/* the start of the statement reporting */
	bool		published;		/* the activity holds a report */
	int			depth;			/* calls begun and not ended; 0: none */
	int			nest_level[MF_PROGRESS_DEPTH];	/* each one's transaction
												 * nesting level */
} Progress;

static Progress progress;
static bool on_abort_registered = false;

/* Seconds since the Unix epoch, now. */
static double
epoch_seconds(void)
{
	return (double) GetCurrentTimestamp() / 1e6 +
		(double) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
}

/*
 * json appended with every "*" written as "\u002a" (the same string): no
 * comment's end, and no start of a report's marker (a comment's start,
 * then "mf_ext progress {": the view reads after the last one) can be
 * inside it.  Every "*" of the json is inside a string, none inside an
 * escape.
 */
static void
append_without_comment_marks(StringInfo text, const char *json)
{
	for (const char *c = json; *c; c++)
	{
		if (*c == '*')
			appendStringInfoString(text, "\\u002a");
		else
			appendStringInfoChar(text, *c);
	}
}

/* A number in JSON: finite, else null. */
static void
append_number(StringInfo text, const char *key, double value)
{
	if (isfinite(value))
		appendStringInfo(text, ", \"%s\": %.17g", key, value);
	else
		appendStringInfo(text, ", \"%s\": null", key);
}

/* A text in JSON: NULL or empty is null. */
static void
append_text(StringInfo text, const char *key, const char *value)
{
	appendStringInfo(text, ", \"%s\": ", key);
	if (value && value[0] != '\0')
		escape_json(text, value);
	else
		appendStringInfoString(text, "null");
}

/*
 * The activity's text becomes text (at most track_activity_query_size - 1
 * bytes): written in place, as pgstat_report_activity writes it, but
 * leaving the state, its start (pg_stat_activity.state_change) and the
 * statement's query_id as they are.
 */
static void
set_activity(const char *text)
{
	volatile PgBackendStatus *entry = MyBEEntry;
	int			length;

	if (entry == NULL)
		return;
	length = pg_mbcliplen(text, strlen(text), pgstat_track_activity_query_size - 1);
	PGSTAT_BEGIN_WRITE_ACTIVITY(entry);
	memcpy((char *) entry->st_activity_raw, text, length);
	entry->st_activity_raw[length] = '\0';
	PGSTAT_END_WRITE_ACTIVITY(entry);
}

/*
 * The report (a comment, "mf_ext progress", the JSON) into suffix, with
 * the model's name cut to at most name_bytes bytes.
 */
static void
build_report(StringInfo suffix, double now, double left, int name_bytes)
{
	StringInfoData json;
	char		model[MF_PROGRESS_NAME + 1];
	int			length = pg_mbcliplen(progress.model, strlen(progress.model), name_bytes);

	memcpy(model, progress.model, length);
	model[length] = '\0';
	initStringInfo(&json);
	appendStringInfoString(&json, "{\"function\": ");
	escape_json(&json, progress.function);
	append_text(&json, "model", model);
	append_text(&json, "part", progress.part);
	append_text(&json, "phase", progress.phase);
	appendStringInfo(&json, ", \"step\": " INT64_FORMAT ", \"steps\": " INT64_FORMAT,
					 progress.step, progress.steps);
	append_text(&json, "unit", progress.unit);
	append_text(&json, "side", progress.side);
	if (progress.side[0] != '\0')
		appendStringInfo(&json, ", \"rows_done\": " INT64_FORMAT ", \"rows_total\": " INT64_FORMAT,
						 progress.rows_done, progress.rows_total);
	else
		appendStringInfoString(&json, ", \"rows_done\": null, \"rows_total\": null");
	append_number(&json, "loss", progress.loss);
	append_number(&json, "validation_rmse", progress.validation_rmse);
	if (progress.best_iteration > 0)
		appendStringInfo(&json, ", \"best_iteration\": " INT64_FORMAT, progress.best_iteration);
	else
		appendStringInfoString(&json, ", \"best_iteration\": null");
	append_number(&json, "started", progress.started);
	append_number(&json, "updated", now);
	append_number(&json, "seconds_left", left);
	appendStringInfoChar(&json, '}');
	resetStringInfo(suffix);
	appendStringInfoString(suffix, " /* mf_ext progress ");
	append_without_comment_marks(suffix, json.data);
	appendStringInfoString(suffix, " */");
	pfree(json.data);
}

/* The statement's text is the activity again, if a report was written. */
static void
take_back_report(void)
{
	if (!progress.published)
		return;
	progress.published = false;
	if (progress.statement_text)
		set_activity(progress.statement_text);
}

/*
 * Writes the report into the backend's activity, after the statement's
 * text cut to leave it room; the model's name is cut too (by halves) while
 * the report alone would not fit.  Where no report fits, or activities are
 * no longer tracked, an earlier report is taken back: none is left to go
 * stale.
 */
static void
publish(void)
{
	StringInfoData suffix;
	StringInfoData text;
	double		now = epoch_seconds();
	double		left = NAN;
	double		done;
	double		steps;
	int			name_bytes = strlen(progress.model);
	int			room;

	/* (an error left a call begun: not for another statement) */
	if (progress.depth != 1 || progress.statement != GetCurrentStatementStartTimestamp())
		return;
	if (!pgstat_track_activities)
	{
		take_back_report();
		return;
	}
	/* from the phase's pace: steps done, and the share of this one its rows make */
	done = (double) progress.step;
	steps = (double) progress.steps;
	if (progress.side[0] != '\0' && progress.rows_total > 0)
	{
		done += progress.rows_step_done +
			progress.rows_step_share * progress.rows_done / progress.rows_total;
		steps = Max(steps, 1.0);	/* a phase of rows only is one step */
	}
	if (steps > 0 && done > 0)
		left = Max(0.0, (now - progress.phase_started) / done * (steps - done));

	initStringInfo(&suffix);
	for (;;)
	{
		build_report(&suffix, now, left, name_bytes);
		room = pgstat_track_activity_query_size - 1 - suffix.len;
		if (room >= 0 || name_bytes == 0)
			break;
		name_bytes /= 2;
	}
	progress.published_at = now;
	if (room < 0)
		take_back_report();
	else
	{
		initStringInfo(&text);
		appendBinaryStringInfo(&text, progress.statement_text,
							   pg_mbcliplen(progress.statement_text,
											strlen(progress.statement_text), room));
		appendBinaryStringInfo(&text, suffix.data, suffix.len);
		set_activity(text.data);
		progress.published = true;
		pfree(text.data);
	}
	pfree(suffix.data);
}

/* Once every call has ended, the statement's text is the activity again. */
static void
restore_when_over(void)
{
	if (progress.depth == 0)
		take_back_report();
}

/* Ends the calls begun at transaction nesting level level or deeper. */
static void
end_from_level(int level)
{
	while (progress.depth > 0 &&
		   progress.nest_level[Min(progress.depth, MF_PROGRESS_DEPTH) - 1] >= level)
		progress.depth--;
	restore_when_over();
}

/* A transaction's abort ends every call; a subtransaction's those inside it. */
static void
end_on_abort(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		end_from_level(0);
}

static void
end_on_subabort(SubXactEvent event, SubTransactionId subid, SubTransactionId parent,
				void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		end_from_level(GetCurrentTransactionNestLevel());
}

/* The model's name, cut, with control characters shown as "?": each would take 6 bytes in JSON. */
static void
set_model(const char *model)
{
	int			length = pg_mbcliplen(model, strlen(model), MF_PROGRESS_NAME);

	memcpy(progress.model, model, length);
	progress.model[length] = '\0';
	for (char *c = progress.model; *c; c++)
		if ((unsigned char) *c < 0x20 || *c == 0x7f)
			*c = '?';
}

void
mf_progress_begin(const char *function, const char *model, const char *phase)
{
	const char *statement = debug_query_string ? debug_query_string : "";
	int			length;

	if (!on_abort_registered)
	{
		RegisterXactCallback(end_on_abort, NULL);
		RegisterSubXactCallback(end_on_subabort, NULL);
		on_abort_registered = true;
	}
	/* a call left begun by an earlier statement's error is over */
	if (progress.depth > 0 && progress.statement != GetCurrentStatementStartTimestamp())
		progress.depth = 0;
	if (progress.depth > 0)
	{
		/* nested: followed, not reported */
		if (progress.depth < MF_PROGRESS_DEPTH)
			progress.nest_level[progress.depth] = GetCurrentTransactionNestLevel();
		progress.depth++;
		return;
	}

	if (progress.statement_text)
		pfree(progress.statement_text);
	memset(&progress, 0, sizeof(progress));
	progress.depth = 1;
	progress.nest_level[0] = GetCurrentTransactionNestLevel();
	progress.statement = GetCurrentStatementStartTimestamp();
	progress.started = epoch_seconds();
	strlcpy(progress.function, function, sizeof(progress.function));
	if (model)
		set_model(model);
	/* the statement's text as the activity keeps it, at most its size */
	length = pg_mbcliplen(statement, strlen(statement), pgstat_track_activity_query_size - 1);
	progress.statement_text = MemoryContextAlloc(TopMemoryContext, length + 1);
	memcpy(progress.statement_text, statement, length);
	progress.statement_text[length] = '\0';
	mf_progress_phase(phase);
}

/* No rows being solved within the step. */
static void
forget_rows(void)
{
	progress.side[0] = '\0';
	progress.rows_done = progress.rows_total = 0;
	progress.rows_step_done = progress.rows_step_share = 0.0;
	progress.rows_counting = false;
}

void
mf_progress_phase(const char *phase)
{
	if (progress.depth != 1)
		return;
	strlcpy(progress.phase, phase, sizeof(progress.phase));
	progress.unit[0] = '\0';
	forget_rows();
	progress.step = progress.steps = 0;
	progress.loss = progress.validation_rmse = NAN;
	progress.best_iteration = 0;
	progress.phase_started = epoch_seconds();
	publish();
}

void
mf_progress_model(const char *model)
{
	if (progress.depth != 1)
		return;
	set_model(model);
	publish();
}

void
mf_progress_part(const char *part, const char *phase)
{
	if (progress.depth != 1)
		return;
	strlcpy(progress.part, part, sizeof(progress.part));
	mf_progress_phase(phase);
}

void
mf_progress_step(int64 step, int64 steps, const char *unit, double loss,
				 double validation_rmse)
{
	if (progress.depth != 1)
		return;
	progress.step = step;
	progress.steps = steps;
	strlcpy(progress.unit, unit, sizeof(progress.unit));
	forget_rows();
	progress.loss = loss;
	progress.validation_rmse = validation_rmse;
	publish();
}

/* Publishes unless the last report is less than MF_PROGRESS_INTERVAL old. */
static void
publish_when_due(void)
{
	if (epoch_seconds() - progress.published_at >= MF_PROGRESS_INTERVAL)
		publish();
}

void
mf_progress_rows_begin(MfSide side, int64 total, double step_done, double step_share)
{
	if (progress.depth != 1)
		return;
	strlcpy(progress.side, mf_side_name(side), sizeof(progress.side));
	progress.rows_done = 0;
	progress.rows_total = total;
	progress.rows_step_done = step_done;
	progress.rows_step_share = step_share;
	progress.rows_counting = true;
}

void
mf_progress_rows(int64 done)
{
	if (progress.depth != 1 || !progress.rows_counting)
		return;
	progress.rows_done = Min(done, progress.rows_total);
	publish_when_due();
}

void
mf_progress_rows_end(void)
{
	if (progress.depth != 1 || !progress.rows_counting)
		return;
	progress.rows_done = progress.rows_total;
	progress.rows_counting = false;
}

void
mf_progress_count(int64 step, int64 steps, const char *unit)
{
	if (progress.depth != 1)
		return;
	progress.step = step;
	progress.steps = steps;
	strlcpy(progress.unit, unit, sizeof(progress.unit));
	publish_when_due();
}

void
mf_progress_best(int64 iteration)
{
	if (progress.depth != 1)
		return;
	progress.best_iteration = iteration;
}

void
mf_progress_end(void)
{
	if (progress.depth > 0)
		progress.depth--;
	restore_when_over();
}
