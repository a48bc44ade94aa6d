/*-------------------------------------------------------------------------
 *
 * query.c
 *	  SPI helpers and the extension's schema (query.h).
 *
 *-------------------------------------------------------------------------
 */
#include "query.h"

#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

/* Rows fetched per cursor batch by mf_spi_scan. */
#define MF_SPI_BATCH_ROWS	10000

MfSchema
mf_schema_of(FunctionCallInfo fcinfo)
{
	MfSchema	schema;
	char	   *name;

	schema.oid = get_func_namespace(fcinfo->flinfo->fn_oid);
	name = get_namespace_name(schema.oid);
	if (name == NULL)
		elog(ERROR, "schema with OID %u does not exist", schema.oid);
	schema.quoted = quote_identifier(name);
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
					 errdetail("The relation changed after its columns were checked."),
					 errhint("Run the call again.")));
	}
}

void
mf_spi_scan(const char *query, int nargs, Oid *argtypes, Datum *args,
			const Oid *types, int n_columns, const char *what,
			MfRowFn row_fn, void *arg)
{
	Portal		portal = SPI_cursor_open_with_args(NULL, query, nargs, argtypes,
												   args, NULL, true,
												   CURSOR_OPT_NO_SCROLL);

	mf_check_column_types(portal->tupDesc, NULL, types, n_columns, what);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, MF_SPI_BATCH_ROWS);
		if (SPI_processed == 0)
			break;
		for (uint64 row = 0; row < SPI_processed; row++)
			row_fn(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, arg);
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
}
