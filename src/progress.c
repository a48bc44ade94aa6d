/*-------------------------------------------------------------------------
 *
 * progress.c
 *	  A long call's progress in its backend's activity text (progress.h).
 *
 *-------------------------------------------------------------------------
 */
#include "progress.h"

#include "access/xact.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* The call being reported; function NULL when none. */
typedef struct Progress
{
	char		function[NAMEDATALEN];
	char	   *model;			/* in TopMemoryContext, or NULL */
	char		part[64];		/* "fold 2 of 5", or empty */
	char		phase[32];
	char		unit[32];
	int64		step;
	int64		steps;
	double		loss;
	double		validation_rmse;
	double		started;		/* seconds since the epoch */
	double		phase_started;
	double		updated;
	TimestampTz statement;		/* the start of the statement reporting */
	int			nest_level;		/* the transaction nesting level it began at */
	bool		active;
} Progress;

static Progress progress;
static bool on_abort_registered = false;

/* The longest model name reported, in bytes (the activity text is short). */
#define MF_PROGRESS_NAME	200

/* Seconds since the Unix epoch, now. */
static double
epoch_seconds(void)
{
	return (double) GetCurrentTimestamp() / 1e6 +
		(double) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
}

/* json appended with every "/" after a "*" escaped ("\/", the same string): no comment end. */
static void
append_without_comment_end(StringInfo text, const char *json)
{
	for (const char *c = json; *c; c++)
	{
		if (*c == '/' && c > json && c[-1] == '*')
			appendStringInfoChar(text, '\\');
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

/* Writes the report into the backend's activity. */
static void
publish(void)
{
	StringInfoData text;
	StringInfoData json;
	double		now = epoch_seconds();
	double		left = NAN;

	/* (an error left the report active: not for another statement) */
	if (!pgstat_track_activities || !progress.active ||
		progress.statement != GetCurrentStatementStartTimestamp())
		return;
	progress.updated = now;
	if (progress.steps > 0 && progress.step > 0)
		left = (now - progress.phase_started) / progress.step *
			(progress.steps - progress.step);

	initStringInfo(&json);
	appendStringInfoString(&json, "{\"function\": ");
	escape_json(&json, progress.function);
	appendStringInfoString(&json, ", \"model\": ");
	if (progress.model)
		escape_json(&json, progress.model);
	else
		appendStringInfoString(&json, "null");
	appendStringInfoString(&json, ", \"part\": ");
	if (progress.part[0] != '\0')
		escape_json(&json, progress.part);
	else
		appendStringInfoString(&json, "null");
	appendStringInfoString(&json, ", \"phase\": ");
	escape_json(&json, progress.phase);
	appendStringInfo(&json, ", \"step\": " INT64_FORMAT ", \"steps\": " INT64_FORMAT ", \"unit\": ",
					 progress.step, progress.steps);
	escape_json(&json, progress.unit);
	append_number(&json, "loss", progress.loss);
	append_number(&json, "validation_rmse", progress.validation_rmse);
	append_number(&json, "started", progress.started);
	append_number(&json, "updated", progress.updated);
	append_number(&json, "seconds_left", left);
	appendStringInfoChar(&json, '}');

	initStringInfo(&text);
	appendStringInfoString(&text, "/* mf_ext progress ");
	append_without_comment_end(&text, json.data);
	appendStringInfo(&text, " */ %s", debug_query_string ? debug_query_string : "");
	pgstat_report_activity(STATE_RUNNING, text.data);
	pfree(text.data);
	pfree(json.data);
}

/* A transaction's abort ends the report; postgres.c resets the activity. */
static void
end_on_abort(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		progress.active = false;
}

/*
 * A subtransaction's abort (an error a PL/pgSQL block catches) ends it too,
 * with the statement's text back, as the statement goes on.
 */
static void
end_on_subabort(SubXactEvent event, SubTransactionId subid, SubTransactionId parent,
				void *arg)
{
	/* (a deeper one, inside the call, may be caught there) */
	if (event == SUBXACT_EVENT_ABORT_SUB && GetCurrentTransactionNestLevel() <= progress.nest_level)
		mf_progress_end();
}

void
mf_progress_begin(const char *function, const char *model, const char *phase)
{
	if (!on_abort_registered)
	{
		RegisterXactCallback(end_on_abort, NULL);
		RegisterSubXactCallback(end_on_subabort, NULL);
		on_abort_registered = true;
	}
	if (progress.model)
		pfree(progress.model);
	memset(&progress, 0, sizeof(progress));
	strlcpy(progress.function, function, sizeof(progress.function));
	if (model)
	{
		int			length = pg_mbcliplen(model, strlen(model), MF_PROGRESS_NAME);

		progress.model = MemoryContextAlloc(TopMemoryContext, length + 1);
		memcpy(progress.model, model, length);
		progress.model[length] = '\0';
	}
	progress.started = epoch_seconds();
	progress.statement = GetCurrentStatementStartTimestamp();
	progress.nest_level = GetCurrentTransactionNestLevel();
	progress.active = true;
	mf_progress_phase(phase);
}

void
mf_progress_phase(const char *phase)
{
	strlcpy(progress.phase, phase, sizeof(progress.phase));
	progress.unit[0] = '\0';
	progress.step = progress.steps = 0;
	progress.loss = progress.validation_rmse = NAN;
	progress.phase_started = epoch_seconds();
	publish();
}

void
mf_progress_part(const char *part)
{
	strlcpy(progress.part, part, sizeof(progress.part));
	publish();
}

void
mf_progress_step(int64 step, int64 steps, const char *unit, double loss,
				 double validation_rmse)
{
	progress.step = step;
	progress.steps = steps;
	strlcpy(progress.unit, unit, sizeof(progress.unit));
	progress.loss = loss;
	progress.validation_rmse = validation_rmse;
	publish();
}

void
mf_progress_end(void)
{
	if (!progress.active)
		return;
	progress.active = false;
	if (pgstat_track_activities && debug_query_string)
		pgstat_report_activity(STATE_RUNNING, debug_query_string);
}
