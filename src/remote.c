/*-------------------------------------------------------------------------
 *
 * remote.c
 *	  Serving on a Citus worker: the models read on the coordinator
 *	  (remote.h).
 *
 *	  One connection per backend, made as the current role (a new one when
 *	  the role changes: SET ROLE, a pooled session), with Citus's own
 *	  connection settings (citus.node_conninfo) so that whatever lets Citus
 *	  reach the coordinator from this node lets mf_ext too.  Its queries
 *	  run with search_path = pg_catalog, pg_temp and extra_float_digits = 3
 *	  (numbers as text to the last bit), each in its own transaction on the
 *	  coordinator (what is committed there).  Everything, connecting
 *	  included, is waited for on the backend's latch: a cancel or
 *	  termination of this backend drops the connection (which ends the
 *	  coordinator's query when it next sends a row), and connecting gives
 *	  up after MF_REMOTE_CONNECT_TIMEOUT seconds.
 *
 *-------------------------------------------------------------------------
 */
#include "remote.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "commands/dbcommands.h"
#include "executor/tuptable.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

/* Seconds to wait for the coordinator to accept the connection. */
#define MF_REMOTE_CONNECT_TIMEOUT	10

/* Citus's global process id: node id * this + process id. */
#define MF_CITUS_GPID_NODE_FACTOR	INT64CONST(10000000000)

static PGconn *coordinator = NULL;
static Oid	coordinator_role = InvalidOid;	/* the role it is connected as */

/* The value of column name (NULL: none, or NULL) of a catalog tuple. */
static Datum
catalog_value(Relation rel, HeapTuple tuple, const char *name, bool *isnull)
{
	AttrNumber	attnum = get_attnum(RelationGetRelid(rel), name);

	*isnull = true;
	if (attnum == InvalidAttrNumber)
		return (Datum) 0;
	return heap_getattr(tuple, attnum, RelationGetDescr(rel), isnull);
}

/*
 * Whether this node is a Citus worker (pg_dist_local_group names a group
 * other than 0) whose pg_dist_node lists an active primary coordinator;
 * with host not NULL, the coordinator's host, port and node id.
 */
static bool
citus_coordinator(char **host, int *port, int32 *nodeid)
{
	Oid			local_group = get_relname_relid("pg_dist_local_group", PG_CATALOG_NAMESPACE);
	Oid			nodes = get_relname_relid("pg_dist_node", PG_CATALOG_NAMESPACE);
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tuple;
	bool		isnull;
	bool		worker = false;
	bool		found = false;

	if (!OidIsValid(local_group) || !OidIsValid(nodes))
		return false;
	rel = table_open(local_group, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	if (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Datum		group = catalog_value(rel, tuple, "groupid", &isnull);

		worker = !isnull && DatumGetInt32(group) > 0;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!worker)
		return false;

	rel = table_open(nodes, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (!found && HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		group_null,
					active_null,
					role_null;
		Datum		group = catalog_value(rel, tuple, "groupid", &group_null);
		Datum		active = catalog_value(rel, tuple, "isactive", &active_null);
		Datum		role = catalog_value(rel, tuple, "noderole", &role_null);
		Oid			role_type = TupleDescAttr(RelationGetDescr(rel),
											  get_attnum(nodes, "noderole") - 1)->atttypid;
		Oid			output;
		bool		varlena;

		if (group_null || DatumGetInt32(group) != 0 || active_null || !DatumGetBool(active) ||
			role_null)
			continue;
		getTypeOutputInfo(role_type, &output, &varlena);
		if (strcmp(OidOutputFunctionCall(output, role), "primary") != 0)
			continue;
		found = true;
		if (host != NULL)
		{
			Datum		name = catalog_value(rel, tuple, "nodename", &isnull);
			Datum		number = catalog_value(rel, tuple, "nodeport", &isnull);
			Datum		id = catalog_value(rel, tuple, "nodeid", &isnull);

			*host = TextDatumGetCString(name);
			*port = DatumGetInt32(number);
			*nodeid = isnull ? -1 : DatumGetInt32(id);
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

bool
mf_remote_serving(void)
{
	return citus_coordinator(NULL, NULL, NULL);
}

int32
mf_remote_initiator_pid(void)
{
	char	   *host;
	int			port;
	int32		nodeid;
	const char *prefix = "citus_internal gpid=";
	char	   *end;
	int64		gpid;

	if (application_name == NULL || strncmp(application_name, prefix, strlen(prefix)) != 0 ||
		!citus_coordinator(&host, &port, &nodeid))
		return 0;
	errno = 0;
	gpid = strtoi64(application_name + strlen(prefix), &end, 10);
	if (errno != 0 || *end != '\0' || gpid / MF_CITUS_GPID_NODE_FACTOR != nodeid)
		return 0;
	return (int32) (gpid % MF_CITUS_GPID_NODE_FACTOR);
}

/*
 * Drops the connection; the next use makes a new one.  A query it ran
 * ends on the coordinator when that next writes to the closed socket: a
 * cancel request would need a connection of its own, which could wait as
 * long as the one it cancels.
 */
static void
drop_connection(void)
{
	if (coordinator == NULL)
		return;
	PQfinish(coordinator);
	coordinator = NULL;
	coordinator_role = InvalidOid;
}

/*
 * Waits on the latch until the connection's socket is ready for events,
 * or (deadline not 0) until deadline; false when the deadline passed.
 */
static bool
wait_for_socket(PGconn *conn, int events, TimestampTz deadline)
{
	long		timeout = -1L;
	int			rc;

	if (deadline != 0)
	{
		timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (timeout <= 0)
			return false;
		events |= WL_TIMEOUT;
	}
	rc = WaitLatchOrSocket(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | events,
						   PQsocket(conn), timeout, PG_WAIT_EXTENSION);
	if (rc & WL_LATCH_SET)
	{
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	return !(rc & WL_TIMEOUT);
}

/* Raises the error of a failed connection (why: the detail, or libpq's message), dropping it. */
static void
connection_failed(const char *host, int port, const char *why)
{
	char	   *message = pstrdup(why ? why : coordinator ? PQerrorMessage(coordinator) : "out of memory");

	drop_connection();
	ereport(ERROR,
			(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
			 errmsg("could not connect to the Citus coordinator %s:%d to read the model", host, port),
			 errdetail_internal("%s", message),
			 errhint("On a Citus worker, mf_ext serves the models stored on the coordinator: this node must be able to connect to it as the current role, as Citus does (citus.node_conninfo, .pgpass).")));
}

/*
 * The next result of the query running on conn, waited for
 * interruptibly (and, deadline not 0, until then: NULL after it, as when
 * the connection is lost).
 */
static PGresult *
next_result(PGconn *conn, TimestampTz deadline)
{
	while (PQisBusy(conn))
	{
		if (!wait_for_socket(conn, WL_SOCKET_READABLE, deadline) || !PQconsumeInput(conn))
			return NULL;
	}
	return PQgetResult(conn);
}

/*
 * The connection to the coordinator as the current role, made if needed;
 * *reused: whether it was open already (it may have been closed by the
 * other end since).
 */
static PGconn *
connection(bool *reused)
{
	Oid			role = GetUserId();
	char	   *host;
	int			port;
	int32		nodeid;
	const char *keywords[8];
	const char *values[8];
	int			n = 0;
	const char *settings = GetConfigOption("citus.node_conninfo", true, false);
	PostgresPollingStatusType status = PGRES_POLLING_WRITING;
	TimestampTz deadline;
	PGresult   *result;

	*reused = coordinator != NULL && coordinator_role == role &&
		PQstatus(coordinator) == CONNECTION_OK && PQtransactionStatus(coordinator) == PQTRANS_IDLE;
	if (*reused)
		return coordinator;
	drop_connection();
	if (!citus_coordinator(&host, &port, &nodeid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this Citus worker lists no active coordinator to read models from"),
				 errhint("Check pg_dist_node: the coordinator is its group 0 (citus_set_coordinator_host).")));

	/* Citus's settings first (a connection string, expanded), then ours */
	if (settings != NULL && settings[0] != '\0')
	{
		keywords[n] = "dbname";
		values[n++] = settings;
	}
	keywords[n] = "host";
	values[n++] = host;
	keywords[n] = "port";
	values[n++] = psprintf("%d", port);
	keywords[n] = "dbname";
	values[n++] = get_database_name(MyDatabaseId);
	keywords[n] = "user";
	values[n++] = GetUserNameFromId(role, false);
	keywords[n] = "application_name";
	values[n++] = "mf_ext";
	keywords[n] = NULL;
	values[n] = NULL;

	coordinator = PQconnectStartParams(keywords, values, settings != NULL && settings[0] != '\0');
	if (coordinator == NULL || PQstatus(coordinator) == CONNECTION_BAD)
		connection_failed(host, port, NULL);
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), MF_REMOTE_CONNECT_TIMEOUT * 1000);
	PG_TRY();
	{
		while (status != PGRES_POLLING_OK)
		{
			if (status == PGRES_POLLING_FAILED)
				connection_failed(host, port, NULL);
			if (!wait_for_socket(coordinator, status == PGRES_POLLING_READING
								 ? WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE, deadline))
				connection_failed(host, port,
								  psprintf("No answer within %d seconds.", MF_REMOTE_CONNECT_TIMEOUT));
			status = PQconnectPoll(coordinator);
		}
		coordinator_role = role;

		/* no object on the role's search_path stands in for pg_catalog's; every digit */
		if (!PQsendQuery(coordinator, "SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false),"
						 " pg_catalog.set_config('extra_float_digits', '3', false)"))
			connection_failed(host, port, NULL);
		while ((result = next_result(coordinator, deadline)) != NULL)
		{
			ExecStatusType setting = PQresultStatus(result);

			PQclear(result);
			if (setting != PGRES_TUPLES_OK)
				connection_failed(host, port, NULL);
		}
		if (PQstatus(coordinator) != CONNECTION_OK)
			connection_failed(host, port, NULL);
	}
	PG_CATCH();
	{
		drop_connection();
		PG_RE_THROW();
	}
	PG_END_TRY();
	return coordinator;
}

/*
 * Whether result (an error, or NULL) says the connection is gone: libpq
 * lost it, or the coordinator's backend ended it (57P01 and the other
 * operator interventions, a shutdown or a restart).
 */
static bool
connection_lost(PGconn *conn, const PGresult *result)
{
	const char *state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : NULL;

	return PQstatus(conn) != CONNECTION_OK || (state != NULL && strncmp(state, "57P", 3) == 0);
}

/* Raises the error the coordinator returned (result, which it clears) for what. */
static void
coordinator_error(PGresult *result, const char *what)
{
	const char *state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = result ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = result ? PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL) : NULL;
	const char *hint = result ? PQresultErrorField(result, PG_DIAG_MESSAGE_HINT) : NULL;
	int			code = ERRCODE_CONNECTION_FAILURE;
	char	   *message;

	/* the coordinator's own error; a lost connection's (its backend's end too) is 08006 here */
	if (state != NULL && strlen(state) == 5 && !connection_lost(coordinator, result))
		code = MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4]);
	message = pstrdup(primary ? primary : PQerrorMessage(coordinator));
	detail = detail ? pstrdup(detail) : NULL;
	hint = hint ? pstrdup(hint) : NULL;
	PQclear(result);
	drop_connection();
	ereport(ERROR,
			(errcode(code),
			 errmsg_internal("%s", message),
			 detail ? errdetail_internal("%s", detail) : 0,
			 hint ? errhint("%s", hint) : 0,
			 errcontext("reading %s on the Citus coordinator", what)));
}

/* Hands one row of result to row_fn in slot, its values made by the types' input functions. */
static void
scan_row(PGresult *result, TupleTableSlot *slot, const Oid *types, int n_columns,
		 MfRowFn row_fn, void *arg)
{
	ExecClearTuple(slot);
	for (int c = 0; c < n_columns; c++)
	{
		Oid			input;
		Oid			ioparam;

		slot->tts_isnull[c] = PQgetisnull(result, 0, c);
		if (slot->tts_isnull[c])
		{
			slot->tts_values[c] = (Datum) 0;
			continue;
		}
		getTypeInputInfo(types[c], &input, &ioparam);
		slot->tts_values[c] = OidInputFunctionCall(input, PQgetvalue(result, 0, c), ioparam, -1);
	}
	ExecStoreVirtualTuple(slot);
	row_fn(slot, arg);
}

/*
 * Runs the query once on conn: rows to row_fn as they come.  Returns
 * false, having handed over no row, when the connection turned out lost
 * before the first result (a reused connection the coordinator closed);
 * raises any other failure.
 */
static bool
scan_once(PGconn *conn, const char *query, int nargs, const char **params,
		  const Oid *types, int n_columns, const char *what, TupleTableSlot *slot,
		  MemoryContext row_cxt, MfRowFn row_fn, void *arg)
{
	PGresult   *volatile result = NULL;
	volatile bool checked = false;
	volatile bool complete = false; /* the final result came */

	if (!PQsendQueryParams(conn, query, nargs, NULL, params, NULL, NULL, 0) ||
		!PQsetSingleRowMode(conn))
		return false;
	PG_TRY();
	{
		while ((result = next_result(conn, 0)) != NULL)
		{
			ExecStatusType status = PQresultStatus(result);

			if (status != PGRES_SINGLE_TUPLE && status != PGRES_TUPLES_OK)
			{
				PGresult   *failed = result;

				if (!checked && connection_lost(conn, result))
					break;		/* lost before anything was read: retried */
				result = NULL;	/* coordinator_error clears it */
				coordinator_error(failed, what);
			}
			if (!checked)
			{
				for (int c = 0; c < n_columns; c++)
					if (PQnfields(result) != n_columns || PQftype(result, c) != types[c])
						ereport(ERROR,
								(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
								 errmsg("column %d of %s read on the Citus coordinator is not of type %s",
										c + 1, what, format_type_be(types[c])),
								 errhint("Install the same version of mf_ext on every node: ALTER EXTENSION mf_ext UPDATE.")));
				checked = true;
			}
			complete = status == PGRES_TUPLES_OK;
			if (status == PGRES_SINGLE_TUPLE)
			{
				MemoryContext old = MemoryContextSwitchTo(row_cxt);

				scan_row(result, slot, types, n_columns, row_fn, arg);
				MemoryContextSwitchTo(old);
				MemoryContextReset(row_cxt);
			}
			PQclear(result);
			result = NULL;
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_CATCH();
	{
		/* mid-result (a cancel, a bad row): the connection is not reusable */
		if (result != NULL)
			PQclear(result);
		drop_connection();
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (result != NULL)
	{
		PQclear(result);
		return false;
	}
	if (!checked && PQstatus(conn) != CONNECTION_OK)
		return false;
	/* the connection lost before the end: never a partial answer */
	if (!complete || PQstatus(conn) != CONNECTION_OK)
		coordinator_error(NULL, what);
	return true;
}

void
mf_remote_scan(const char *query, int nargs, Oid *argtypes, Datum *args,
			   const Oid *types, int n_columns, const char *what,
			   MfRowFn row_fn, void *arg)
{
	const char **params = palloc0(sizeof(char *) * Max(nargs, 1));
	TupleDesc	desc = CreateTemplateTupleDesc(n_columns);
	TupleTableSlot *slot;
	MemoryContext row_cxt = AllocSetContextCreate(CurrentMemoryContext, "mf_ext row",
												  ALLOCSET_DEFAULT_SIZES);
	bool		reused;
	PGconn	   *conn;

	for (int p = 0; p < nargs; p++)
	{
		Oid			output;
		bool		varlena;

		getTypeOutputInfo(argtypes[p], &output, &varlena);
		params[p] = OidOutputFunctionCall(output, args[p]);
	}
	for (int c = 0; c < n_columns; c++)
		TupleDescInitEntry(desc, c + 1, NULL, types[c], -1, 0);
	slot = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);

	/* a connection kept open may have been closed since (a restart): once more on a new one */
	conn = connection(&reused);
	if (!scan_once(conn, query, nargs, params, types, n_columns, what, slot, row_cxt, row_fn, arg))
	{
		if (!reused)
			coordinator_error(NULL, what);
		drop_connection();
		conn = connection(&reused);
		if (!scan_once(conn, query, nargs, params, types, n_columns, what, slot, row_cxt,
					   row_fn, arg))
			coordinator_error(NULL, what);
	}
	ExecDropSingleTupleTableSlot(slot);
	MemoryContextDelete(row_cxt);
}
