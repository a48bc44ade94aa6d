/*-------------------------------------------------------------------------
 *
 * serve.h
 *	  What the serving functions share (serve.c): the n best items for a
 *	  stored user, ids given as integers, text or uuids, and rows of (id, score) as a
 *	  function's result.  serve.c answers mf_predict, mf_recommend and
 *	  similarity; foldin.c a new user's ratings; evaluate.c ranks test
 *	  users with it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MF_SERVE_H
#define MF_SERVE_H

#include "mf_ext.h"
#include "cache.h"

/*
 * The model of a serving call: argument 0 is its model_id, or with by_name
 * its name (not NULL: 22004).
 */
extern MfModel *mf_model_argument(FunctionCallInfo fcinfo, bool by_name);

/*
 * mf_model_argument for a long call that function (an SQL name) reports
 * in mf_progress: begins its report, in phase "loading" with no model
 * until the model is read, then names it.  The caller ends the report.
 */
extern MfModel *mf_model_argument_reported(FunctionCallInfo fcinfo, bool by_name,
										   const char *function);

/*
 * The n best items for dense user index user (-1: unknown) of model, best
 * first, into best[] (room for n); returns how many.  Leaves out the items
 * excluded[] marks (n_items, or NULL) and, with exclude_rated, those
 * user_id rated in the training data (marked in excluded, when given).  *scores
 * (n_items, palloc'd) receives the scores, exact for the items returned
 * (score.h, mf_top_scored_items); computes the model's item norms on first
 * need.
 */
extern int32 mf_top_items(const MfSchema *schema, MfModel *model, int32 user,
						  int64 user_id, int32 n, bool exclude_rated, bool *excluded,
						  int32 *best, double **scores);

/*
 * The filters of a serving call, arguments arg (candidates) and arg + 1
 * (exclude), arrays of ids of one side (bigint[], or text[] when as_text:
 * keys, or integer ids as text), each NULL when not given: with
 * candidates, every row not among them is marked in mask (n rows of the
 * side, true = left out), and so is every row of exclude.  Ids the model
 * lacks and NULL elements match nothing; an empty candidates array leaves
 * every row out.  mask may be NULL: it is allocated when a filter needs
 * it; returns it (NULL when nothing was marked and none was given).  Calls
 * through 0.4's definitions, without the arguments, filter nothing.
 */
extern bool *mf_filter_mask(FunctionCallInfo fcinfo, int arg, const MfModel *model,
							MfSide side, bool as_text, bool *mask);

/*
 * As mf_filter_mask, for arguments declared "any": arrays of bigint,
 * integer or smallint ids (a side of integer ids only), of text or varchar
 * (keys, or integer ids as text), or untyped literals ('{1,2}', read as
 * text[]); anything else is 42804.
 */
extern bool *mf_filter_mask_any(FunctionCallInfo fcinfo, int arg, const MfModel *model,
								MfSide side, bool *mask);

/*
 * The dense index of a text id of one side: a stored key of a model with
 * keys, else the text of an integer id (22P02 when it is not one).  -1
 * when the model lacks it.
 */
extern int32 mf_text_id_index(const MfModel *model, MfSide side, text *id);

/*
 * The n argument (at n_arg, followed by exclude_rated) of the mf_recommend
 * forms and mf_recommend_users: neither may be NULL (22004), and n must be
 * at least 1 (22023, with hint saying what n counts).
 */
extern int32 mf_recommend_count(FunctionCallInfo fcinfo, int n_arg, const char *hint);

/*
 * Returns the rows (id, score) of best[0 .. n_best) of one side as the
 * function's result (materialized), ids as text when as_text; the scores
 * are scores[best[r]].
 */
extern void mf_put_ranked(FunctionCallInfo fcinfo, const MfModel *model, MfSide side,
						  bool as_text, const double *scores, const int32 *best,
						  int32 n_best);

#endif							/* MF_SERVE_H */
