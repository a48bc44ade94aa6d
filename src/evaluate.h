/*-------------------------------------------------------------------------
 *
 * evaluate.h
 *	  Judging a model on ratings it has not seen: deterministic splits of
 *	  (user, item) pairs, held-out ratings mapped onto a model, and the
 *	  error measures (RMSE, MAE, coverage) that training's validation,
 *	  cross-validation and mf_evaluate compute alike, to the bit.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MF_EVALUATE_H
#define MF_EVALUATE_H

#include "mf_ext.h"
#include "idmap.h"
#include "ratings.h"
#include "score.h"

/*
 * Held-out ratings, with users and items as dense indices of the model
 * being judged (-1: unknown to it), in the test relation's (user id, item
 * id) order.
 */
typedef struct MfTestSet
{
	int64		n;
	int32	   *user;
	int32	   *item;
	double	   *rating;
} MfTestSet;

/* Bytes a held-out rating takes in an MfTestSet (user, item, rating). */
#define MF_TEST_SET_BYTES_PER_RATING (2 * sizeof(int32) + sizeof(double))

/* Error measures over a test set. */
typedef struct MfErrorMeasures
{
	int64		rows;
	int64		scored;			/* rows the model could predict */
	double		rmse;			/* over the scored rows; NaN when none */
	double		mae;
} MfErrorMeasures;

/*
 * The model's dense index of index of one side of ratings: through the
 * model's id map, or its key map (ids: text keys) when keys is not NULL.
 */
extern int32 mf_model_index(const MfIdMap *ids, mf_keymap_hash *keys,
							const MfRatings *ratings, MfSide side, int32 index);

/* Held-out ratings test mapped onto a model's maps (keys: NULL for integer ids). */
extern MfTestSet *mf_test_set(const MfRatings *test, const MfIdMap *users,
							  const MfIdMap *items, mf_keymap_hash *user_keys,
							  mf_keymap_hash *item_keys, MemoryContext cxt);

/*
 * Refuses (42804) a relation whose ids are of the other kind (integers or
 * text keys: relation_user_keys, relation_item_keys) than the model's
 * (user_keys, item_keys), or with training, than the training data's (a
 * validation relation, checked before any model exists).  Known from the
 * columns' types, so called before the relation is read
 * (MfSource.user_keys, item_keys).
 */
extern void mf_check_same_id_kind(bool relation_user_keys, bool relation_item_keys,
								  bool user_keys, bool item_keys, const char *relation,
								  bool training);

/*
 * RMSE and MAE of factors over the rows of test it can predict: all of
 * them with biases, else those of a known user and a known item.  A model
 * of implicit feedback predicts preferences: its target is 1 for every
 * held-out pair.  Finite whatever the ratings' size; an error (22003)
 * only when a score itself overflowed.
 */
extern void mf_test_error_measures(const MfFactors *factors, const MfTestSet *test,
								   MfErrorMeasures *measures);

/*
 * The fold (0 .. folds - 1) of a pair: a splitmix64 hash of (seed,
 * user_id, item_id) cut into folds equal parts, independent of
 * mf_is_test's, so the ratings left for training by mf_is_test fall
 * evenly into folds too.
 */
extern int	mf_fold_of(int64 user_id, int64 item_id, int folds, int32 seed);

/* A text id as the 64-bit number the splits hash it by. */
extern int64 mf_key_hash(const char *key);

#endif							/* MF_EVALUATE_H */
