/*-------------------------------------------------------------------------
 *
 * compat.c
 *	  The C function names older versions' install scripts gave the text
 *	  forms of mf_predict and mf_recommend and the new-user form of
 *	  mf_recommend.  Their CREATE FUNCTION statements still run when an
 *	  installation of 0.1 to 0.4 is updated, and a database not yet updated
 *	  calls them until ALTER EXTENSION mf_ext UPDATE; each answers as the
 *	  current name does.  (0.4's text forms of mf_similar_* call the bigint
 *	  forms' functions, and every form of mf_predict calls mf_predict or
 *	  mf_predict_by_name, which tell them apart by their arguments' types:
 *	  serve.c.)
 *
 *-------------------------------------------------------------------------
 */
#include "mf_ext.h"

#include "fmgr.h"

/* The current names (serve.c, foldin.c). */
extern PGDLLEXPORT Datum mf_predict(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum mf_predict_by_name(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum mf_recommend_text(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum mf_recommend_text_by_name(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum mf_recommend_new_user(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum mf_recommend_new_user_by_name(PG_FUNCTION_ARGS);

#define COMPAT_ENTRY(old_name, current_name) \
PG_FUNCTION_INFO_V1(old_name); \
Datum \
old_name(PG_FUNCTION_ARGS) \
{ \
	return current_name(fcinfo); \
}

/* 0.4: mf_predict(model, text, text), mf_recommend(model, text, ...) */
COMPAT_ENTRY(mf_predict_key, mf_predict)
COMPAT_ENTRY(mf_predict_key_by_name, mf_predict_by_name)
COMPAT_ENTRY(mf_recommend_key, mf_recommend_text)
COMPAT_ENTRY(mf_recommend_key_by_name, mf_recommend_text_by_name)
/* 0.4: mf_recommend(model, bigint[], double precision[], ...) */
COMPAT_ENTRY(mf_recommend_folded, mf_recommend_new_user)
COMPAT_ENTRY(mf_recommend_folded_by_name, mf_recommend_new_user_by_name)
