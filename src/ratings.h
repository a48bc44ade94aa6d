/*-------------------------------------------------------------------------
 *
 * ratings.h
 *	  Ratings as compressed sparse rows of both sides, built from the rows
 *	  a source gives (source.h) by counting sorts, so that nothing depends
 *	  on the order the rows came in; subsets of them (cross-validation
 *	  folds); the event-log reading of implicit feedback (a pair's rows
 *	  summed).
 *
 *-------------------------------------------------------------------------
 */
#ifndef MF_RATINGS_H
#define MF_RATINGS_H

#include "mf_ext.h"

/*
 * Rows of one side: each row's entries sorted by the other side's index.
 * The ratings are in val, or in val_single (half the memory) when every
 * one of them is a float exactly; read them through mf_csr_value.
 */
typedef struct MfCsr
{
	int32		n_rows;
	int64	   *row_start;		/* n_rows + 1 offsets into col/val */
	int32	   *col;			/* dense index on the other side */
	double	   *val;			/* the ratings, or NULL */
	float	   *val_single;		/* or the ratings, each a float exactly */
} MfCsr;

/* Entry e's rating. */
static inline double
mf_csr_value(const MfCsr *csr, int64 e)
{
	return csr->val ? csr->val[e] : (double) csr->val_single[e];
}

/*
 * Ratings with users and items numbered densely in ascending id order (for
 * text keys, the keys' byte order: ids are then the keys' positions).
 */
typedef struct MfRatings
{
	int64		n_ratings;		/* entries: rows read (duplicates count), or
								 * pairs once mf_ratings_event_log ran */
	int64		n_skipped;		/* rows skipped for a NULL user/item/rating */
	int32		n_users;
	int32		n_items;
	int64	   *user_ids;		/* dense user index -> id */
	int64	   *item_ids;		/* dense item index -> id */
	char	  **user_keys;		/* dense index -> text key, or NULL for */
	char	  **item_keys;		/* integer ids */
	MfCsr		by_user;		/* row = user, col = item */
	MfCsr		by_item;		/* row = item, col = user */
	char	   *relation;		/* the relation read, for messages, or NULL */
	bool		row_security;	/* row-level security applied to the read, for
								 * the role each relation was read as
								 * (mf_source_read) */
} MfRatings;

/* The rows of one side. */
static inline const MfCsr *
mf_ratings_side(const MfRatings *ratings, MfSide side)
{
	return side == MF_USERS ? &ratings->by_user : &ratings->by_item;
}

/* The ids (or key positions) of one side. */
static inline const int64 *
mf_ratings_ids(const MfRatings *ratings, MfSide side)
{
	return side == MF_USERS ? ratings->user_ids : ratings->item_ids;
}

/* The text keys of one side, or NULL for integer ids. */
static inline char *const *
mf_ratings_keys(const MfRatings *ratings, MfSide side)
{
	return side == MF_USERS ? ratings->user_keys : ratings->item_keys;
}

/*
 * Rows as read, before indexing: ids in order of first appearance, kept in
 * arrays in the parent context that double as they fill (their pages are
 * remapped, not copied) and become the sparse rows' arrays, 12 bytes a
 * rating (16 once a rating single precision does not hold exactly is read:
 * then every rating is kept in double precision).
 */
typedef struct MfRows MfRows;

/*
 * Rows read in parent, their id maps and keys (for text-keyed sides) in a
 * context of their own below it; room for about expected rows (0: unknown)
 * is set aside at the first, so that the arrays need not grow.  held: bytes
 * the caller already holds beside them (MfSource.held_bytes), counted with
 * theirs at every check of mf_ext.max_memory; relation: NULL for the
 * ratings a model is trained or refitted on, else the argument that named
 * the rows' relation ("validation", "test"), which the memory errors name.
 */
extern MfRows *mf_rows_create(MemoryContext parent, bool user_keys, bool item_keys,
							  double expected, Size held, const char *relation);

/* The number of text key key of one side (copied; numbered if new), to add rows by. */
extern int64 mf_rows_key(MfRows *rows, MfSide side, const char *key);

/*
 * Appends a rating of user for item (integer ids, or key numbers for
 * text-keyed sides), checking mf_ext.max_memory every 65,536 rows.
 */
extern void mf_rows_add(MfRows *rows, int64 user, int64 item, double rating);

/*
 * Fails early when the planner's estimate of rows, beside held bytes
 * already held, exceeds the limit (relation as for mf_rows_create).
 */
extern void mf_rows_check_estimate(double rows, Size held, const char *relation);

/*
 * Bytes that ratings hold in both orders (an order freed counts none),
 * with the ids' arrays (not their text keys): what a training holds while
 * it reads its validation, and a cross-validation beside each fit.
 */
extern Size mf_ratings_bytes(const MfRatings *ratings);

/*
 * Builds the ratings from rows (which it frees, or hands on) in cxt, the
 * parent rows were created in: both sides sorted by the other side's
 * index, duplicate pairs' values in ascending order.  n_skipped is
 * recorded as is.
 */
extern MfRatings *mf_ratings_from_rows(MfRows *rows, int64 n_skipped, MemoryContext cxt);

/*
 * The ratings of all whose entry e in all->by_user has keep[e], as new
 * ratings in cxt: users and items without a kept rating are left out, the
 * rest renumbered densely in the same order (text keys: their positions
 * among the kept keys, as reading just these ratings would number them).
 * user_remap[] and item_remap[] (all's sizes) receive each old index's new
 * one, or -1.
 */
extern MfRatings *mf_ratings_subset(const MfRatings *all, const bool *keep,
									int32 *user_remap, int32 *item_remap,
									MemoryContext cxt);

/*
 * Reads ratings as implicit feedback's event log: each (user, item) pair
 * becomes one entry whose value, its strength, is the sum of its rows
 * (events that cancel out to within rounding sum to 0); n_ratings becomes
 * the number of pairs.  A negative strength is an error (22023).
 * Training, refits, validation and mf_evaluate read implicit ratings so.
 */
extern void mf_ratings_event_log(MfRatings *ratings);

/*
 * mf_ratings_event_log, and an error (22023) for a strength whose
 * confidence 1 + alpha * strength would come near overflow: what a solve
 * needs.
 */
extern void mf_ratings_implicit_strengths(MfRatings *ratings, double alpha);

/* What MfRatingsSummary.scaled_sum scales the values by: a power of two, exactly. */
#define MF_SUM_SCALE 0x1p-512

/*
 * What a fit needs of the ratings' values: their sum (the mean, with
 * biases), the sum of their squares (twice J of all-zero factors, the
 * scale of mf_train's warning that J rose), range (clip) and the most
 * ratings a row has.
 */
typedef struct MfRatingsSummary
{
	double		sum;
	/*
	 * the sum of the values times MF_SUM_SCALE: the mean where sum
	 * overflowed (ratings near the largest double; the mean of finite
	 * values is finite), 0 where sum cannot overflow (Citus's totals)
	 */
	double		scaled_sum;
	/*
	 * what the sum's rounding left out of the mean, from a second pass over
	 * the values' distances from the first mean, where it is more than that
	 * pass's own rounding could be (mf_ratings_summarize); else 0, and 0
	 * where not taken (a fit without biases, Citus's totals)
	 */
	double		mean_correction;
	double		sum_squares;
	double		min;
	double		max;
	int64		longest;
} MfRatingsSummary;

/*
 * The longest row of ratings (either side's; a side not held counts 0) and
 * the sum, sum of squares and range of its values, summed in the users'
 * rows' order: the same for any thread count and scan.  With mean, also
 * the mean's correction (a fit with biases).
 */
extern MfRatingsSummary mf_ratings_summarize(const MfRatings *ratings, bool mean);

/*
 * Whether the sum of the squares of the ratings' distances from center
 * (twice J's data term where every prediction is center, and what the fit
 * sums before halving it) passes the largest double: no lambda can bring
 * J below it.  False where the users' rows are not held here (on Citus the
 * workers read them).
 */
extern bool mf_ratings_squares_overflow(const MfRatings *ratings, double center);

/* The most ratings a row of either side has (a side not held counts 0). */
extern int64 mf_ratings_longest_row(const MfRatings *ratings);

/*
 * The n ratings' mean from one pass: their sum over n, or where the sum
 * overflowed (ratings near the largest double) the scaled sum's.
 */
static inline double
mf_ratings_first_mean(const MfRatingsSummary *summary, int64 n)
{
	return isfinite(summary->sum) ? summary->sum / (double) n
		: summary->scaled_sum / (double) n / MF_SUM_SCALE;
}

/*
 * What a fit centres the n ratings of summary on: their mean with biases,
 * else 0.  The first mean, corrected where the sum's rounding left a part
 * out (ratings far from 0 beside their spread: MovieLens plus 1e13 had a
 * mean 3 off; attack helper 236), and kept within the ratings' range: the
 * quotient can fall an ulp past ratings that are all equal, and an ulp of
 * a rating beyond about 1.5e54 is wider than the largest float (attack
 * helper 234).
 */
static inline double
mf_ratings_center(const MfRatingsSummary *summary, int64 n, bool biases)
{
	double		mean;

	if (!biases || n <= 0)
		return 0.0;
	mean = mf_ratings_first_mean(summary, n) + summary->mean_correction;
	return Min(Max(mean, summary->min), summary->max);
}

/*
 * Whether a rating lies within the largest float of center: what a
 * single-precision solve's target can hold.
 */
static inline bool
mf_rating_within_float(double value, double center)
{
	return fabs(value - center) <= FLT_MAX;
}

/*
 * Whether every rating of summary lies within the largest float of center
 * (mf_rating_within_float of its least and greatest).
 */
static inline bool
mf_ratings_within_float(const MfRatingsSummary *summary, double center)
{
	return mf_rating_within_float(summary->max, center) &&
		mf_rating_within_float(summary->min, center);
}

/*
 * In single precision, an error (22003) naming the first pair of explicit
 * ratings (in the users' rows' order, summary theirs) whose rating's
 * distance from the center (the mean with biases, else 0) passes the
 * largest float, about 3.4e38: the solve's targets are floats, so a fit
 * certainly cannot take it.  The center is the ratings' mean in training
 * (model_mean NULL), the model's mean *model_mean in a refit, whose hint
 * names a retraining.
 * Nothing in double precision, where what a fit can take depends on the
 * data and lambda (its solve and J report what it could not).
 */
extern void mf_ratings_check_scale(const MfRatings *ratings, const MfRatingsSummary *summary,
								   bool single, bool biases, const double *model_mean);

/* What a rating mf_report_rating_scale refuses was given for. */
typedef enum MfScaleUse
{
	MF_SCALE_TRAINING,			/* measured from the ratings' own mean */
	MF_SCALE_REFIT,				/* from the model's */
	MF_SCALE_FOLD_IN			/* from the model's */
} MfScaleUse;

/*
 * mf_ratings_check_scale's error for the rating value of pair ("user U
 * for item I in R") and center, given for use; also the Citus workers'
 * training's and mf_fold_in's.
 */
extern void mf_report_rating_scale(const char *pair, double value, bool biases, double center,
								   MfScaleUse use) pg_attribute_noreturn();

/* The most entries any row of rows has. */
extern int64 mf_csr_longest_row(const MfCsr *rows);

/*
 * Puts one row's n entries (columns cols, values vals) in the order of a
 * row of ratings: by column, a repeated column's values ascending.  The
 * solve adds them up in that order, so a row built elsewhere (fold-in's
 * arrays, a refit's rows in the model's indices) solves to training's
 * bits only in it.
 */
extern void mf_sort_row_entries(int32 *cols, double *vals, int64 n);

/*
 * The column row r of rows lists most often (the first such), with *times
 * its count; -1 (and 0) for an empty row or rows not held (no row starts).
 * A row lists a column's repeats together, as both sides' rows of ratings
 * (sorted by column) and a refit's rows do.
 */
extern int32 mf_csr_most_repeated(const MfCsr *rows, int32 r, int64 *times);

/* Frees the item side's rows (storing needs only the users'). */
extern void mf_ratings_free_by_item(MfRatings *ratings);

/*
 * The id of dense index index of one side as a message shows it: its key
 * quoted and cut (mf_text_for_message), or the integer.
 */
extern char *mf_ratings_id_for_message(const MfRatings *ratings, MfSide side, int32 index);

#endif							/* MF_RATINGS_H */
