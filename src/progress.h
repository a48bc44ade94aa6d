/*-------------------------------------------------------------------------
 *
 * progress.h
 *	  A long call's progress, seen from every session without
 *	  shared_preload_libraries: the backend's activity text in
 *	  pg_stat_activity (which only roles with the privileges of its
 *	  session's role, and pg_read_all_stats, can read) ends with a comment
 *	  holding a JSON object, and the view mf_progress reads it.  The text
 *	  becomes
 *
 *		<the statement's text, cut to leave room> /+ mf_ext progress
 *		{"function": ..., "model": ..., "part": ..., "phase": ..., "step": i,
 *		 "steps": n, "unit": ..., "side": ..., "rows_done": r,
 *		 "rows_total": m, "loss": ..., "validation_rmse": ...,
 *		 "best_iteration": b, "started": t0, "updated": t,
 *		 "seconds_left": s} +/
 *
 *	  (with "*" for "+"; times in seconds since the epoch), and the
 *	  statement's text again when the call ends, fails or is cancelled.
 *	  Nothing is reported when track_activities is off, or where
 *	  track_activity_query_size leaves the report no room.  Backend thread
 *	  only.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MF_PROGRESS_H
#define MF_PROGRESS_H

#include "mf_ext.h"

/*
 * Starts reporting a call of function (an SQL name) on model (NULL: none
 * yet) in phase (e.g. "reading").  A call inside another reported call
 * of the same statement (a training inside a function of the view another
 * training reads) is not reported: the outer one goes on being.
 */
extern void mf_progress_begin(const char *function, const char *model, const char *phase);

/*
 * The model's name, once known: a call that loads its model first (a
 * refit, the batch) begins with none.
 */
extern void mf_progress_model(const char *model);

/*
 * The part of the call under way ("fold 2 of 5"), until the next part,
 * starting in phase (as mf_progress_phase: the last part's steps are over).
 */
extern void mf_progress_part(const char *part, const char *phase);

/* A new phase ("indexing", "iterating", "storing", ...); steps start over. */
extern void mf_progress_phase(const char *phase);

/*
 * step of steps units ("iteration", "fold", "user", "row") done, with J and the
 * validation RMSE so far (NaN: none): the seconds left are estimated from
 * the phase's pace so far.
 */
extern void mf_progress_step(int64 step, int64 steps, const char *unit, double loss,
							 double validation_rmse);

/*
 * Rows of one side being solved within the step under way (an
 * iteration's users, then its items; a refit's rows): side (MF_USERS,
 * MF_ITEMS) and total rows, the step's share already done before them and
 * their share of it, for the estimate of the seconds left.  Every
 * parallel run until mf_progress_rows_end counts its finished tasks as
 * these rows: begin right before the run that solves them, after any
 * other (implicit_side's pass over the other side's rows).  The next
 * mf_progress_step or mf_progress_phase forgets them.
 */
extern void mf_progress_rows_begin(MfSide side, int64 total, double step_done, double step_share);

/*
 * done of the rows begun have been solved: reported at most once every
 * MF_PROGRESS_INTERVAL seconds, so cheap enough for every chunk of a
 * parallel run (which calls it on the backend's thread).  Nothing without
 * rows begun.
 */
extern void mf_progress_rows(int64 done);

/* The rows begun are all solved; later calls of mf_progress_rows are ignored. */
extern void mf_progress_rows_end(void);

/*
 * step of steps units done (steps 0: not known), as mf_progress_step
 * without J, but reported at most once every MF_PROGRESS_INTERVAL
 * seconds: cheap enough for a phase that counts thousands of rows a
 * second (reading).
 */
extern void mf_progress_count(int64 step, int64 steps, const char *unit);

/*
 * The iteration of the lowest validation RMSE so far, from 1 (early
 * stopping), shown with the next step; a new phase forgets it.
 */
extern void mf_progress_best(int64 iteration);

/* Ends the report: the activity is the statement's text again. */
extern void mf_progress_end(void);

#endif							/* MF_PROGRESS_H */
