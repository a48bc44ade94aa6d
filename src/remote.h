/*-------------------------------------------------------------------------
 *
 * remote.h
 *	  Serving on a Citus worker: the models are read on the coordinator.
 *
 *	  A model lives in the model tables of the node that trained it, the
 *	  Citus coordinator.  When Citus runs a query on a worker (mf_predict in
 *	  the select list of a query over a distributed table, LATERAL
 *	  mf_recommend over distributed users), the worker's serving functions
 *	  read the model's row, factors and rated items on the coordinator, over
 *	  a connection made as the current role, with the coordinator's
 *	  privileges and row-level security; each worker backend caches the
 *	  factors as a single node does and asks the coordinator for the
 *	  model's version once per statement.  The worker's own model tables
 *	  are not read, and not written: training happens on the coordinator.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MF_REMOTE_H
#define MF_REMOTE_H

#include "mf_ext.h"

#include "query.h"

/*
 * Whether this node is a Citus worker that serves the coordinator's
 * models: Citus's metadata on this node (pg_dist_local_group,
 * pg_dist_node) names a group other than the coordinator's (group 0) as
 * its own and lists an active primary coordinator.  False, after one
 * catalog look-up, where Citus is not installed.
 */
extern bool mf_remote_serving(void);

/*
 * The process id, on the coordinator, of the backend whose distributed
 * query this worker backend runs a part of (Citus names it in the
 * connection's application_name, citus_internal gpid=...), or 0: not on a
 * worker, not Citus's connection, or a query started on another node.
 */
extern int32 mf_remote_initiator_pid(void);

/*
 * mf_spi_scan's counterpart on the coordinator: runs a read-only query
 * (nargs parameters, sent as text) there as the current role and calls
 * row_fn on each row as it arrives, in a virtual slot of n_columns values
 * of types types[] (the result's column types must be those).  Waits
 * interruptibly: a cancel drops the connection.  An error on the
 * coordinator is raised here with its SQLSTATE, message, detail and hint;
 * a connection that fails raises 08001 with what to check, one lost
 * mid-query 08006.  A kept connection found closed (the coordinator
 * restarted) is made again once.
 */
extern void mf_remote_scan(const char *query, int nargs, Oid *argtypes, Datum *args,
						   const Oid *types, int n_columns, const char *what,
						   MfRowFn row_fn, void *arg);

#endif							/* MF_REMOTE_H */
