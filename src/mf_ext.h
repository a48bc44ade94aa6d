/*-------------------------------------------------------------------------
 *
 * mf_ext.h
 *	  Types, limits and cross-file entry points shared by the mf_ext sources.
 *
 * Data flows one way: relation -> ratings (ratings.c) -> ALS (als.c) ->
 * factor tables (store.c) -> backend cache (cache.c) -> answers (serve.c).
 * train.c drives the first half; serve.c the second.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MF_EXT_H
#define MF_EXT_H

#include "postgres.h"

#include <float.h>
#include <math.h>

#include "access/htup.h"
#include "access/tupdesc.h"
#include "executor/spi.h"
#include "fmgr.h"

/* GUCs (mf_ext.c). */
extern int	mf_threads;
extern int	mf_max_memory_mb;

#define MF_MAX_THREADS	1024

/* Limits on mf_train's arguments. */
#define MF_MIN_K		0		/* 0: biases only (needs biases := true) */
#define MF_MAX_K		1024
#define MF_MAX_ITERATIONS	100000
#define MF_MAX_MODEL_NAME	1024	/* bytes; the unique index allows ~2700 */
#define MF_MAX_CONFIDENCE	1e12	/* alpha * rating at most (implicit feedback) */
#define MF_MAX_SINGLE_LAMBDA	1e30	/* a row's lambda at most, in single precision */

/*
 * splitmix64's finaliser: a fast, well-mixed 64-bit hash.  Used both as the
 * id map's hash function and as the source of seeded random numbers.
 */
static inline uint64
mf_mix64(uint64 x)
{
	x += UINT64CONST(0x9E3779B97F4A7C15);
	x = (x ^ (x >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	x = (x ^ (x >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return x ^ (x >> 31);
}

/*
 * Id <-> dense index map (simplehash, declared here, defined in mf_ext.c).
 * Every model keeps users and items in dense order 0..n-1 sorted by id.
 */
typedef struct MfIdEntry
{
	int64		id;				/* the user's or item's id in the source */
	int32		index;			/* dense index */
	char		status;			/* simplehash bookkeeping */
} MfIdEntry;

#define SH_PREFIX		mf_idmap
#define SH_ELEMENT_TYPE MfIdEntry
#define SH_KEY_TYPE		int64
#define SH_SCOPE		extern
#define SH_DECLARE
#include "lib/simplehash.h"

/*
 * Id -> dense index lookup for a fixed set of ids.  Ids that are small and
 * dense enough (the usual case) are found in a plain array, the rest in a
 * hash table.
 */
typedef struct MfIdIndex
{
	int64		direct_limit;	/* ids in [0, direct_limit) use direct[] */
	int32	   *direct;			/* index + 1, or 0 for an absent id */
	mf_idmap_hash *hash;		/* every other id */
} MfIdIndex;

/* Indexes a sorted array of distinct ids by their positions. */
extern MfIdIndex *mf_id_index_from_sorted(MemoryContext cxt, const int64 *ids,
										  int32 n);

/* Dense index of id, or -1 when the index does not hold it. */
static inline int32
mf_id_index(const MfIdIndex *index, int64 id)
{
	MfIdEntry  *entry;

	if ((uint64) id < (uint64) index->direct_limit)
		return index->direct[id] - 1;
	entry = mf_idmap_lookup(index->hash, id);
	return entry ? entry->index : -1;
}

/*
 * Text key -> dense index, for user and item ids of other types than
 * integers (text, uuid, ...), which a model keeps as their text form.
 * Keys are numbered in byte order (simplehash, defined in mf_ext.c).
 */
typedef struct MfKeyEntry
{
	const char *key;
	int32		index;
	uint32		hash;
	char		status;
} MfKeyEntry;

#define SH_PREFIX		mf_keymap
#define SH_ELEMENT_TYPE MfKeyEntry
#define SH_KEY_TYPE		const char *
#define SH_SCOPE		extern
#define SH_DECLARE
#include "lib/simplehash.h"

/* Indexes n keys (in any order) by their positions. */
extern mf_keymap_hash *mf_key_index(MemoryContext cxt, char *const *keys, int32 n);
/* Position of key, or -1. */
extern int32 mf_key_lookup(mf_keymap_hash *map, const char *key);
/* qsort comparator of char * keys in byte order. */
extern int	mf_compare_keys(const void *a, const void *b);

/*
 * Raises the error for a training that would need more than
 * mf_ext.max_memory; detail says what the estimate is made of.
 */
extern void mf_check_memory(Size bytes, const char *detail);
/* The same, with hint saying what to do instead of the usual. */
extern void mf_check_memory_hint(Size bytes, const char *detail, const char *hint);

/* Allocates count * size bytes in cxt, with overflow checks (huge allowed). */
extern void *mf_alloc_array(MemoryContext cxt, Size count, Size size);

/*
 * mf_alloc_array aligned to MF_ALIGNMENT bytes, for the arrays BLAS reads:
 * some kernels take another path, and round differently, for another
 * alignment, so equal inputs give equal results only at equal alignment.
 * Free with mf_free_aligned (or with the context).
 */
#define MF_ALIGNMENT	64
extern void *mf_alloc_aligned(MemoryContext cxt, Size count, Size size);
extern void mf_free_aligned(void *pointer);

/*
 * Raises an error unless columns attnums[0 .. n) of desc (1 .. n when
 * attnums is NULL) exist and have the types types[0 .. n) (or domains over
 * them): a datum is only ever converted by the type of the descriptor it
 * came with, never by one decided before the relation was read (it may have
 * changed since).  what names the relation or table read, for the error.
 */
extern void mf_check_column_types(TupleDesc desc, const AttrNumber *attnums,
								  const Oid *types, int n, const char *what);

/*
 * Runs a read-only query through an SPI cursor and calls row_fn on each row,
 * fetching in batches and checking for interrupts between them.  The
 * query's n_columns columns must have the types types[] (checked once, on
 * the cursor's descriptor; what names the relation read).  The caller must
 * be connected to SPI.
 */
typedef void (*MfRowFn) (HeapTuple tuple, TupleDesc desc, void *arg);
extern void mf_spi_scan(const char *query, int nargs, Oid *argtypes,
						Datum *args, const Oid *types, int n_columns,
						const char *what, MfRowFn row_fn, void *arg);

/*
 * A query prepared once per backend and kept (SPI_keepplan), for queries
 * that run on every call.  The query text names the extension's schema,
 * so the plan is prepared again when that schema changes.
 */
typedef struct MfSavedPlan
{
	SPIPlanPtr	plan;
	Oid			schema;
	char		schema_name[NAMEDATALEN];
} MfSavedPlan;

/* saved's plan for query (a format with one %s: the quoted schema). */
extern SPIPlanPtr mf_saved_plan(MfSavedPlan *saved, Oid schema,
								const char *query, int nargs, Oid *argtypes);

/*
 * The extension's own queries (on its tables, never the caller's
 * relations) run between these two, with search_path = pg_catalog,
 * pg_temp: no function or operator another role created in a schema on
 * the caller's path (public, where others may CREATE) can stand in for
 * pg_catalog's in them, whatever the caller's search_path.  begin returns
 * the GUC nest level that end restores; an error restores it too.
 */
extern int	mf_internal_sql_begin(void);
extern void mf_internal_sql_end(int nest_level);

/* Name of the schema the extension lives in, quoted for SQL text. */
extern const char *mf_schema_quoted(FunctionCallInfo fcinfo);

/*
 * A model's numbers, as the solver holds them while training and as the
 * cache holds them for serving.  Users and items are dense indices.  The
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
} MfFactors;

/*
 * The prediction for dense indices user and item (serve.c).  An index of
 * -1 stands for a user or item the model does not know: its bias and
 * factors count as 0, which only a model with biases can answer for.
 */
extern double mf_score(const MfFactors *factors, int32 user, int32 item);

/*
 * Ratings read from the source, as compressed sparse rows in both
 * directions.  Users and items are numbered densely in ascending id order.
 */
typedef struct MfCsr
{
	int32		n_rows;
	int64	   *row_start;		/* n_rows + 1 offsets into col/val */
	int32	   *col;			/* dense index on the other side */
	double	   *val;			/* the rating */
} MfCsr;

typedef struct MfRatings
{
	int64		n_ratings;		/* entries: rows read (duplicates count), or
								 * pairs once mf_ratings_sum_duplicates ran */
	int64		n_skipped;		/* rows skipped for a NULL user/item/rating */
	int32		n_users;
	int32		n_items;
	int64	   *user_ids;		/* dense user index -> id */
	int64	   *item_ids;		/* dense item index -> id */
	char	  **user_keys;		/* dense index -> text key (ids are then the */
	char	  **item_keys;		/* indices), or NULL for integer ids */
	MfCsr		by_user;		/* row = user, col = item */
	MfCsr		by_item;		/* row = item, col = user */
} MfRatings;

/* Where and how to read the ratings (ratings.c). */
typedef struct MfSource
{
	const char *argname;		/* "source", "validation" or "test", for errors */
	bool		fixed_columns;	/* the columns are the model's, not arguments */
	Oid			relid;
	const char *user_col;
	const char *item_col;
	const char *rating_col;
	/* set by mf_source_validate: */
	AttrNumber	user_attnum;
	AttrNumber	item_attnum;
	AttrNumber	rating_attnum;
	Oid			user_type;		/* base types of the columns */
	Oid			item_type;
	Oid			rating_type;
	bool		user_keys;		/* ids not integers: read by their text form */
	bool		item_keys;
	Oid			user_output;	/* their output functions */
	Oid			item_output;
} MfSource;

extern void mf_source_validate(MfSource *source);
extern char *mf_source_display_name(Oid relid);
extern MfRatings *mf_ratings_read(const MfSource *source, MemoryContext cxt);
extern MfRatings *mf_ratings_subset(const MfRatings *all, const bool *keep,
									int32 *user_remap, int32 *item_remap,
									MemoryContext cxt);
extern int64 mf_csr_longest_row(const MfCsr *rows);

/*
 * Makes each (user, item) pair one entry whose value is the sum of its
 * rows' (implicit feedback reads an event log so: a pair's strength is the
 * sum of its rows).  n_ratings becomes the number of pairs.
 */
extern void mf_ratings_sum_duplicates(MfRatings *ratings);

/*
 * A sum of n numbers whose absolute values add up to magnitude, with a
 * result within the rounding of so many additions of 0 taken as exactly 0
 * (0.3 - 0.1 - 0.2 is -5.6e-17 in double): the strength of a pair whose
 * events cancel out.
 */
static inline double
mf_exact_sum(double sum, double magnitude, int64 n)
{
	return fabs(sum) <= (double) n * DBL_EPSILON * magnitude ? 0.0 : sum;
}
extern void mf_ratings_free_by_item(MfRatings *ratings);
extern char *mf_ratings_id_text(const MfRatings *ratings, bool users, int32 index);

/*
 * Parallel loops (parallel.c).  fn runs tasks [first, last) on thread
 * thread (0 .. threads - 1; 0 is the backend's) and returns -1, or the
 * index of a task that failed, which stops the run.  It runs in worker
 * threads: plain C only, no PostgreSQL calls.  feed, if not NULL, runs on
 * the backend's thread between its chunks, may use PostgreSQL, and returns
 * how many tasks are ready (never fewer than before); tasks are taken in
 * order and none past that.  It must make progress: the run waits on it.
 * mf_parallel_for returns -1 or the smallest failed task; an interrupt is
 * processed, and an error of feed goes on up, only after every worker has
 * been joined.
 */
typedef int64 (*MfTaskFn) (void *arg, int thread, int64 first, int64 last);
typedef int64 (*MfFeedFn) (void *arg);
extern int	mf_thread_count(void);
extern int64 mf_parallel_for(int threads, int64 n, int64 chunk, MfTaskFn fn,
							 MfFeedFn feed, void *arg);

/* The solver (als.c). */
typedef struct MfAls MfAls;

/* How to fit: mf_train's arguments that shape the solve. */
typedef struct MfFitOptions
{
	int			k;
	double		lambda;
	bool		weighted_lambda;	/* ALS-WR: lambda * n for a row of n ratings */
	bool		implicit;		/* implicit feedback (Hu, Koren, Volinsky) */
	double		alpha;			/* confidence 1 + alpha * rating (implicit) */
	bool		conjugate_gradient; /* solver 'cg', else Cholesky */
	bool		nonnegative;	/* factors >= 0, by coordinate descent */
	bool		biases;
	bool		single;			/* float factors, else double */
	int			iterations;
	double		tolerance;		/* stop when J falls by less than this fraction */
	int32		seed;
} MfFitOptions;

/* Which row a singular system was found in (index -1: none). */
typedef struct MfAlsFailure
{
	bool		users;
	int32		index;
} MfAlsFailure;

extern double mf_seeded_normal(int32 seed, int64 id, int j);
extern Size mf_als_memory_estimate(const MfRatings *ratings,
								   const MfFitOptions *options, int *threads);
extern MfAls *mf_als_create(const MfRatings *ratings,
							const MfFitOptions *options, MemoryContext cxt);
extern int	mf_als_threads(const MfAls *als);
extern const MfFactors *mf_als_factors(const MfAls *als);
extern void mf_als_init_items(MfAls *als, int32 seed);
extern void mf_als_set_item(MfAls *als, int32 index, const double *values,
							double bias);
extern void mf_als_get_rows(const MfAls *als, bool users, int32 first,
							int32 count, double *out);
extern MfAlsFailure mf_als_iterate(MfAls *als, double *objective, double *sse);
extern int32 mf_als_solve_against(const MfFactors *factors, bool users,
								  const MfFitOptions *options, const MfCsr *rows,
								  void *out, double *bias, MemoryContext cxt);

/* Model storage (store.c). */
/*
 * What an iteration-by-iteration fit recorded (train.c): per iteration run,
 * J, the training RMSE, the validation RMSE (NULL array without a
 * validation set) and seconds.
 */
typedef struct MfFitHistory
{
	int			iterations_run;	/* fewer than asked when tolerance stopped it */
	double	   *loss;
	double	   *train_rmse;
	double	   *validation_rmse;
	double	   *seconds;
} MfFitHistory;

/*
 * Held-out ratings, with users and items as dense indices of the model
 * being judged (-1: unknown to it).  Rows are in the test relation's
 * (user id, item id) order.
 */
typedef struct MfTestSet
{
	int64		n;
	int32	   *user;
	int32	   *item;
	double	   *rating;
} MfTestSet;

/* Error measures over a test set (evaluate.c). */
typedef struct MfErrors
{
	int64		rows;
	int64		scored;			/* rows the model could predict */
	double		rmse;			/* over the scored rows; NaN when none */
	double		mae;
} MfErrors;

extern MfTestSet *mf_test_set_from_ratings(const MfRatings *test,
										   const MfIdIndex *users,
										   const MfIdIndex *items,
										   mf_keymap_hash *user_keys,
										   mf_keymap_hash *item_keys,
										   MemoryContext cxt);
extern int32 mf_model_index(const MfIdIndex *ids, mf_keymap_hash *keys,
							const MfRatings *test, bool users, int32 index);
extern void mf_check_same_id_kind(const MfRatings *test, bool user_keys,
								  bool item_keys, const char *relation);
extern void mf_test_errors(const MfFactors *factors, const MfTestSet *test,
						   MfErrors *errors);
/* Deterministic splits of (user, item) pairs (evaluate.c). */
extern int	mf_fold_of(int64 user_id, int64 item_id, int folds, int32 seed);
extern int64 mf_key_hash(const char *key);
extern void mf_check_folds(int folds);

/* Raises an error for an option out of its range (train.c). */
extern void mf_check_fit_options(const MfFitOptions *options);
/* Raises an error unless the caller may write models (train.c). */
extern void mf_check_write_privileges(Oid schema, const char *function);
/*
 * Implicit feedback: sums each pair's rows into its strength
 * (mf_ratings_sum_duplicates) and raises an error for a negative strength
 * or one whose confidence would overflow (train.c).
 */
extern void mf_implicit_strengths(MfRatings *ratings, double alpha);

/* Fits als on ratings for options->iterations (train.c). */
extern void mf_fit(MfAls *als, const MfRatings *ratings,
				   const MfFitOptions *options, const MfTestSet *validation,
				   bool report, MfFitHistory *history);

/* A trained model as written to mf_models (store.c). */
typedef struct MfModelRecord
{
	const char *name;
	const char *source;
	const char *user_col;
	const char *item_col;
	const char *rating_col;
	MfFitOptions options;
	bool		warm_start;
	const char *validation;		/* display name of the validation relation, or NULL */
	MfFitHistory history;
	Oid			user_key_type;	/* type of ids read by their text form, or */
	Oid			item_key_type;	/* InvalidOid for integer ids */
	double		train_rmse;		/* after the last iteration run */
	double		train_seconds;
	double		load_seconds;	/* reading and indexing the ratings */
} MfModelRecord;

/* A one-dimensional array of n fixed-width, no-NULL elements (store.c). */
extern struct ArrayType *mf_flat_array(Oid elemtype, const void *values, int n);
extern void mf_factors_from_datum(Datum datum, bool isnull, int k,
								  double *out, const char *side, int64 id);
extern bool mf_store_load_items(const char *schema, const char *model_name,
								const MfFitOptions *options,
								const MfRatings *ratings, MfAls *als);
extern int32 mf_store_model(const char *schema, const MfModelRecord *record,
							const MfRatings *ratings, const MfAls *als);
extern void mf_store_replace_rows(const char *schema, int32 model_id, bool users,
								  int k, const int64 *ids, char *const *keys, int32 n,
								  const double *factors, const double *bias,
								  const int32 *rated_start, const int64 *rated);

/* A model's factors as cached in this backend (cache.c). */
typedef struct MfModel
{
	Oid			models_relid;	/* OID of the mf_models it was read from */
	char	   *name;
	uint64		last_used;		/* cache.c's lookup clock at the last use */
	int32		model_id;
	int64		version;
	int64	   *user_ids;		/* dense user index -> id */
	int64	   *item_ids;		/* dense item index -> id */
	MfIdIndex  *user_map;
	MfIdIndex  *item_map;
	char	  **user_keys;		/* dense index -> text key, or NULL (integer ids) */
	char	  **item_keys;
	mf_keymap_hash *user_keymap;	/* text key -> dense index, with keys */
	mf_keymap_hash *item_keymap;
	MfFactors	factors;
	MfFitOptions fit;			/* how it was trained (solver options), for fold-in */
	double	   *user_norms;		/* |u| per user, computed on first need */
	double	   *item_norms;		/* |v| per item, computed on first need */
	MemoryContext cxt;
} MfModel;

extern MfModel *mf_cache_model_by_id(FunctionCallInfo fcinfo, int32 model_id);
extern MfModel *mf_cache_model_by_name(FunctionCallInfo fcinfo, text *name);

/*
 * The n best items for dense user index user (-1: unknown) of model, best
 * first, into best[] (room for n); returns how many.  With exclude_rated,
 * leaves out the items user_id rated in the training data (serve.c).
 * scores[] (n_items) receives the scores.
 */
extern int32 mf_top_items(FunctionCallInfo fcinfo, const MfModel *model,
						  int32 user, int64 user_id, int32 n,
						  bool exclude_rated, int32 *best, double **scores);

/*
 * A selection of the n best (score, item) pairs offered: higher score
 * first, then lower id (ids[item]).  Offer a candidate with
 * mf_top_insert when mf_top_admits it; mf_top_finish sorts the ones kept
 * best first and returns how many there are.  Plain C over the caller's
 * arrays: safe in worker threads (serve.c).
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

extern void mf_top_init(MfTop *top, int32 n, const int64 *ids, int32 *items,
						double *scores);
extern void mf_top_insert(MfTop *top, double score, int32 item);
extern int32 mf_top_finish(MfTop *top);

/*
 * Offers row[i] (float or double: single) as the score of item i, for i
 * below n_items, unless excluded[i]; excluded may be NULL.
 */
extern void mf_top_offer_row(MfTop *top, const void *row, bool single,
							 const bool *excluded, int32 n_items);

/* Whether a candidate of this score may enter the selection: the hot test. */
static inline bool
mf_top_admits(const MfTop *top, double score)
{
	return score >= top->bound;
}

/*
 * The item ids of a stored rated_items array (value) of user_id, checked
 * to be a bigint[] without NULLs; *count gets their number (serve.c).
 */
extern const int64 *mf_rated_item_ids(const MfModel *model, int64 user_id,
									  Datum value, int *count);

/* Raises the error for a NULL model argument (argument 0) (serve.c). */
extern void mf_require_model_argument(FunctionCallInfo fcinfo);

#endif							/* MF_EXT_H */
