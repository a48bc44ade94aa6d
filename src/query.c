/*-------------------------------------------------------------------------
 *
 * query.c
 *	  SPI helpers and the extension's schema (query.h).
 *
 *-------------------------------------------------------------------------
 */
#include "query.h"
#include "remote.h"

#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "nodes/params.h"

MfSchema
mf_schema_of(FunctionCallInfo fcinfo)
{
	MfSchema	schema;
	char	   *name;

	schema.oid = get_func_namespace(fcinfo->flinfo->fn_oid);
	name = OidIsValid(schema.oid) ? get_namespace_name(schema.oid) : NULL;
	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the mf_ext function being called was dropped while the call ran"),
				 errdetail("DROP EXTENSION mf_ext (or DROP SCHEMA) committed in another session while the call waited, or a function of a relation the call read ran it."),
				 errhint("Create the extension again if it is gone, then run the call again.")));
	schema.quoted = quote_identifier(name);
	schema.remote = mf_remote_serving();
	return schema;
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
					 errdetail("The relation changed after its columns were checked, or the column is not of the type the extension created."),
					 errhint("Run the call again; if it fails the same way, a column of %s was altered: alter it back to %s.",
							 what, format_type_be(types[c]))));
	}
}

/* The receiver of mf_spi_scan's rows. */
typedef struct ScanReceiver
{
	DestReceiver pub;
	const Oid  *types;
	int			n_columns;
	const char *what;
	MfRowFn		row_fn;
	void	   *arg;
	MemoryContext row_cxt;		/* reset after each row */
	ErrorContextCallback *caller_context;	/* the caller's error context */
} ScanReceiver;

static void
scan_startup(DestReceiver *self, int operation, TupleDesc desc)
{
	ScanReceiver *receiver = (ScanReceiver *) self;

	mf_check_column_types(desc, NULL, receiver->types, receiver->n_columns, receiver->what);
}

static bool
scan_receive(TupleTableSlot *slot, DestReceiver *self)
{
	ScanReceiver *receiver = (ScanReceiver *) self;
	MemoryContext old = MemoryContextSwitchTo(receiver->row_cxt);
	ErrorContextCallback *query_context = error_context_stack;

	/* row_fn's errors are about the row, not the query: no "SQL statement" context */
	error_context_stack = receiver->caller_context;
	slot_getallattrs(slot);
	receiver->row_fn(slot, receiver->arg);
	error_context_stack = query_context;
	MemoryContextSwitchTo(old);
	MemoryContextReset(receiver->row_cxt);
	/*
	 * The executor looks for interrupts as its scans read, not while a Sort
	 * returns its rows: a look a row, whatever row_fn does with it (copies
	 * a long key, say).
	 */
	CHECK_FOR_INTERRUPTS();
	return true;
}

static void
scan_shutdown(DestReceiver *self)
{
}

static void
scan_destroy(DestReceiver *self)
{
}

/*
 * The query's nargs parameters (argtypes, values args), or NULL without
 * any: no list at all, as Citus 12.1's executor copies a list it is given
 * with copyParamList, which returns NULL for an empty one, and then reads
 * through it.
 */
static ParamListInfo
query_params(int nargs, Oid *argtypes, Datum *args)
{
	ParamListInfo params;

	if (nargs == 0)
		return NULL;
	params = makeParamList(nargs);
	for (int p = 0; p < nargs; p++)
	{
		params->params[p].value = args[p];
		params->params[p].isnull = false;
		params->params[p].pflags = PARAM_FLAG_CONST;
		params->params[p].ptype = argtypes[p];
	}
	return params;
}

/*
 * mf_spi_scan, in SPI's read-only mode (the caller's snapshot) or not (a
 * new one); of plan, prepared from query, when it is not NULL.
 */
static void
spi_scan(const char *query, SPIPlanPtr plan, int nargs, Oid *argtypes, Datum *args,
		 const Oid *types, int n_columns, const char *what, MfRowFn row_fn, void *arg,
		 bool read_only)
{
	/* DestTuplestore, as PL/pgSQL's receivers: not DestNone, whose rows SPI discards */
	ScanReceiver receiver = {{scan_receive, scan_startup, scan_shutdown, scan_destroy,
	DestTuplestore}, types, n_columns, what, row_fn, arg, NULL, error_context_stack};
	SPIExecuteOptions options = {0};
	int			result;

	options.params = query_params(nargs, argtypes, args);
	receiver.row_cxt = AllocSetContextCreate(CurrentMemoryContext, "mf_ext row",
											 ALLOCSET_DEFAULT_SIZES);
	options.read_only = read_only;
	options.dest = &receiver.pub;
	result = plan ? SPI_execute_plan_extended(plan, &options)
		: SPI_execute_extended(query, &options);
	if (result != SPI_OK_SELECT)
		elog(ERROR, "could not read %s", what);
	MemoryContextDelete(receiver.row_cxt);
}

void
mf_spi_scan(const char *query, int nargs, Oid *argtypes, Datum *args,
			const Oid *types, int n_columns, const char *what,
			MfRowFn row_fn, void *arg)
{
	spi_scan(query, NULL, nargs, argtypes, args, types, n_columns, what, row_fn, arg, true);
}

void
mf_spi_scan_fresh(const char *query, int nargs, Oid *argtypes, Datum *args,
				  const Oid *types, int n_columns, const char *what,
				  MfRowFn row_fn, void *arg)
{
	spi_scan(query, NULL, nargs, argtypes, args, types, n_columns, what, row_fn, arg, false);
}

/*
 * Sets plan_cache_mode to force_custom_plan until restore_plan_cache_mode
 * with the level returned (or the transaction's end): a statement with
 * parameters is planned with their values, as a one-shot query is,
 * whatever the caller set.  (Functions the statement runs see it too:
 * only set for a statement with parameters.)
 */
static int
force_custom_plans(void)
{
	int			level = NewGUCNestLevel();

	(void) set_config_option("plan_cache_mode", "force_custom_plan", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return level;
}

static void
restore_plan_cache_mode(int level)
{
	if (level > 0)
		AtEOXact_GUC(true, level);
}

/* Error context for planning: the statement, as SPI gives it for a query it runs. */
static void
planning_error_callback(void *arg)
{
	errcontext("SQL statement \"%s\"", (const char *) arg);
}

SPIPlanPtr
mf_spi_prepare(const char *query, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare(query, nargs, argtypes);

	if (plan == NULL)
		elog(ERROR, "could not prepare %s: %s", query, SPI_result_code_string(SPI_result));
	if (list_length(SPI_plan_get_plan_sources(plan)) != 1)
		elog(ERROR, "%s is not one statement", query);
	return plan;
}

/*
 * Whether row-level security applies, for the role each is checked as, to
 * a relation the plan reads (a view's, or an inlined function's, included:
 * the planned statements' range tables hold them all).  Not the plan
 * source's dependsOnRLS, which also marks relations the role is exempt
 * from now (superuser, BYPASSRLS, an owner without FORCE).
 */
static bool
plan_row_security(const CachedPlan *cplan)
{
	ListCell   *statement;
	ListCell   *entry;

	foreach(statement, cplan->stmt_list)
	{
		PlannedStmt *planned = lfirst(statement);

		if (!IsA(planned, PlannedStmt))
			continue;
		foreach(entry, planned->rtable)
		{
			RangeTblEntry *rte = lfirst(entry);

			if (rte->rtekind == RTE_RELATION &&
				check_enable_rls(rte->relid, rte->checkAsUser, true) == RLS_ENABLED)
				return true;
		}
	}
	return false;
}

bool
mf_spi_plan_locked(SPIPlanPtr plan, int nargs, Oid *argtypes, Datum *args)
{
	CachedPlanSource *source = linitial(SPI_plan_get_plan_sources(plan));
	ErrorContextCallback context = {error_context_stack, planning_error_callback,
	unconstify(char *, source->query_string)};
	/* a statement without parameters has one plan, generic: the setting is moot */
	int			level = nargs > 0 ? force_custom_plans() : 0;

	/*
	 * the planner's working memory, freed with the plan: planning a
	 * custom plan over many partitions and ids takes hundreds of MB, which
	 * the read's own planning takes again (a generic plan, kept for the
	 * read, lives beside the plan source)
	 */
	MemoryContext planning = AllocSetContextCreate(CurrentMemoryContext, "mf_ext planning for locks",
												   ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(planning);

	CachedPlan *cplan;
	bool		row_security;

	error_context_stack = &context;
	cplan = GetCachedPlan(source, query_params(nargs, argtypes, args), NULL, NULL);
	row_security = plan_row_security(cplan);
	ReleaseCachedPlan(cplan, NULL);
	error_context_stack = context.previous;
	MemoryContextSwitchTo(old);
	MemoryContextDelete(planning);
	restore_plan_cache_mode(level);
	return row_security;
}

void
mf_spi_scan_prepared(SPIPlanPtr plan, int nargs, Oid *argtypes, Datum *args,
					 const Oid *types, int n_columns, const char *what,
					 MfRowFn row_fn, void *arg)
{
	int			level = nargs > 0 ? force_custom_plans() : 0;

	spi_scan(NULL, plan, nargs, argtypes, args, types, n_columns, what, row_fn, arg, true);
	restore_plan_cache_mode(level);
}

bool
mf_relation_has_rules(Relation rel)
{
	return rel->rd_rules != NULL && rel->rd_rules->numLocks > 0;
}
