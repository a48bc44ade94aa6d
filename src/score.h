/*-------------------------------------------------------------------------
 *
 * score.h
 *	  A model's numbers, the one way every path scores them (mf_predict,
 *	  mf_recommend, similarity, fold-in, evaluation, the batch's rescoring),
 *	  and the selection of the n best.  Plain C over the caller's arrays,
 *	  no PostgreSQL calls and no allocation: safe in worker threads.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MF_SCORE_H
#define MF_SCORE_H

#include "mf_ext.h"
#include "kernel.h"

/*
 * A model's numbers, as the solver holds them while training and as the
 * cache holds them for serving; users and items are dense indices.  The
 * prediction for user a and item i is
 *
 *	   mean + user_bias[a] + item_bias[i] + u_a . v_i
 *
 * with the three bias terms only when biases.
 */
typedef struct MfFactors
{
	int			k;
	bool		single;			/* factors are floats, else doubles */
	int32		n_users;
	int32		n_items;
	void	   *user_factors;	/* n_users x k, row-major */
	void	   *item_factors;	/* n_items x k, row-major */
	bool		implicit;		/* trained on implicit feedback: scores preferences */
	bool		biases;
	double		mean;			/* mu: the mean training rating (biases only) */
	double	   *user_bias;		/* n_users, or NULL without biases */
	double	   *item_bias;		/* n_items, or NULL without biases */
	bool		clip;			/* predictions clipped to the training ratings' range */
	double		rating_min;		/* with clip: the lowest and highest training rating */
	double		rating_max;
	/*
	 * With implicit information (implicit_weight > 0; Koren 2008's SVD++ in
	 * ALS form): each user's z and each item's y, k numbers each, of the
	 * factors' precision; NULL otherwise.  Predictions do not read them;
	 * fold-in and the refits do.
	 */
	void	   *user_implicit;	/* n_users x k */
	void	   *item_implicit;	/* n_items x k */
} MfFactors;

/* The factor row of dense index index of one side. */
static inline const void *
mf_factor_row(const MfFactors *f, MfSide side, int32 index)
{
	const char *base = side == MF_USERS ? f->user_factors : f->item_factors;

	return base + (Size) index * f->k * (f->single ? sizeof(float) : sizeof(double));
}

/*
 * Asks the cache for the factor row of dense index index of one side (none
 * for -1), to be read soon: a caller with other work before it reads the
 * row (mf_predict's user lookup) overlaps the row's fetch with that work.
 */
static inline void
mf_prefetch_row(const MfFactors *f, MfSide side, int32 index)
{
	Size		bytes = (Size) f->k * (f->single ? sizeof(float) : sizeof(double));
	const char *row;

	if (index < 0)
		return;
	row = mf_factor_row(f, side, index);
	for (Size offset = 0; offset < bytes; offset += 64)
		__builtin_prefetch(row + offset);
}

/* The dot product of two factor rows (of the model's precision), in double. */
extern double mf_row_dot(const MfFactors *factors, const void *a, const void *b);

/*
 * The prediction for dense indices user and item.  An index of -1 stands
 * for a user or item the model does not know: its bias and factors count
 * as 0, which only a model with biases can answer for.
 */
extern double mf_score(const MfFactors *factors, int32 user, int32 item);

/*
 * The predicted rating of dense indices user and item: mf_score, clipped
 * to [rating_min, rating_max] for a model trained with clip (mf_predict,
 * RMSE and MAE; rankings order by mf_score, which clipping would only tie).
 */
extern double mf_prediction(const MfFactors *f, int32 user, int32 item);

/* mean + the bias of user (-1: none), the part of its scores all items share. */
extern double mf_user_base(const MfFactors *factors, int32 user);

/*
 * The score of every item for the user whose factor row is u (float or
 * double as the model; NULL: a user with no factors) and whose bias terms
 * come to base, into scores[n_items] (-inf for excluded items; excluded
 * may be NULL).  wide, k doubles, is scratch.  Each score equals
 * mf_score() for a stored user exactly.
 */
extern void mf_score_items(const MfFactors *factors, const void *u, double base,
						   const bool *excluded, double *wide, double *scores);

/* |x| of one side's factor rows first .. first + count - 1, into norms[first ..]. */
extern void mf_row_norms(const MfFactors *factors, MfSide side, int32 first, int32 count,
						 double *norms);

/*
 * A selection of the n best (score, item) pairs offered: higher score
 * first, then lower id (ids[item]).  Offer a candidate with
 * mf_top_insert when mf_top_admits it; mf_top_finish sorts the ones kept
 * best first and returns how many there are.
 */
typedef struct MfTop
{
	int32		n;				/* how many to keep */
	int32		size;			/* how many are kept */
	double		bound;			/* -inf until n are kept, then the worst kept score */
	const int64 *ids;			/* item ids, to break ties */
	int32	   *items;			/* n: a heap, worst on top, until finished */
	double	   *scores;			/* n: the scores of items[] */
} MfTop;

/* Starts a selection of n into items[n] and scores[n]. */
extern void mf_top_init(MfTop *top, int32 n, const int64 *ids, int32 *items,
						double *scores);

/*
 * Offers a candidate that mf_top_admits: a bounded heap keeps the n best
 * with the worst on top, so n offers cost O(n log size) at most and, once
 * the heap is full, mostly one comparison each.
 */
extern void mf_top_insert(MfTop *top, double score, int32 item);

/* Sorts the pairs kept, best first; returns how many. */
extern int32 mf_top_finish(MfTop *top);

/* Whether a candidate of this score may enter the selection: the hot test. */
static inline bool
mf_top_admits(const MfTop *top, double score)
{
	return score >= top->bound;
}

/*
 * Offers row[i] (float or double: single) as the score of item i, for i
 * below n_items, unless excluded[i]; excluded may be NULL.
 */
extern void mf_top_offer_row(MfTop *top, const void *row, bool single,
							 const bool *excluded, int32 n_items);

/*
 * The n best of scores[n_items] (leaving out excluded ones; excluded may
 * be NULL) into best[n] and their scores into best_scores[n], best first;
 * returns how many there are.
 */
extern int32 mf_select_top(const double *scores, const int64 *ids, const bool *excluded,
						   int32 n_items, int32 n, int32 *best, double *best_scores);

/*
 * A float model's factors of one side quantised for pre-scoring: row r as
 * k 8-bit codes q_r (zero from k to stride) and a scale s_r (a float), the
 * row being about s_r q_r.  With s_r and the codes so small, s_r q_rj and
 * x_rj - s_r q_rj are exact in double; their norms over the row are kept
 * rounded up, for the bound of mf_top_scored_items.
 */
typedef struct MfCodes
{
	int			stride;			/* bytes a row: k rounded up to MF_CODE_ALIGN */
	int8	   *codes;			/* rows x stride */
	float	   *scales;			/* a row's s_r */
	double	   *error_bounds;	/* |x_r - s_r q_r| + gamma_k |x_r| (the exact
								 * path's rounding), rounded up */
	double	   *code_norms;		/* |s_r q_r|, rounded up */
} MfCodes;

/* MfCodes.stride for k factors. */
extern int	mf_codes_stride(int k);

/*
 * Fills rows first .. first + count - 1 of codes (arrays of the side's
 * rows, stride set) from a float model's factors of that side.
 */
extern void mf_codes_fill(const MfFactors *factors, MfSide side, MfCodes *codes, int32 first,
						  int32 count);

/*
 * The pre-scoring's scratch, for rows of the side ranked: wide, k doubles;
 * lower and shifts, a double a row; with codes, query_codes (stride
 * int16s) and dots (an int32 a row).  interrupts, when not NULL, is
 * called between blocks of rows: a backend's look for interrupts.
 */
typedef struct MfScoreScratch
{
	double	   *wide;
	double	   *lower;
	double	   *shifts;
	int16	   *query_codes;
	int32	   *dots;
	void		(*interrupts) (void);
} MfScoreScratch;

/*
 * The n best items (higher score first, then lower id: ids[item]) for the
 * user whose factor row is u (NULL: a user with no factors) and whose bias
 * terms come to base, leaving out excluded ones (excluded may be NULL):
 * best[n], best_scores[n], best first; returns how many.  Every item
 * returned has scores[item] (n_items doubles) set to its exact score, as
 * mf_score_items gives it; the answer is the one mf_select_top gives over
 * every item's exact score.  With item_codes (a float model's, NULL
 * otherwise) the items are first scored from the 8-bit codes (code_dots),
 * and only those whose score, within a proven bound of that pre-score's
 * error (score.c), can reach the n-th best are scored exactly.
 */
extern int32 mf_top_scored_items(const MfFactors *factors, const void *u, double base,
								 const MfCodes *item_codes, MfCodeDots code_dots,
								 const bool *excluded, const int64 *ids, int32 n,
								 const MfScoreScratch *scratch, double *scores, int32 *best,
								 double *best_scores);

/*
 * The n best users for item (a dense index) of a float model, pre-scored
 * from user_codes as mf_top_scored_items ranks items: each returned
 * user's scores[user] (n_users doubles) its exact mf_score, the answer
 * mf_select_top's over every user's mf_score; returns how many.
 */
extern int32 mf_top_scored_users(const MfFactors *factors, int32 item,
								 const MfCodes *user_codes, MfCodeDots code_dots,
								 const bool *excluded, const int64 *ids, int32 n,
								 const MfScoreScratch *scratch, double *scores, int32 *best,
								 double *best_scores);

#endif							/* MF_SCORE_H */
