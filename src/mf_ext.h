/*-------------------------------------------------------------------------
 *
 * mf_ext.h
 *	  What every mf_ext source needs: limits, settings, the two sides of
 *	  the ratings matrix, hashing, and checked allocation with the memory
 *	  guard.  Each subsystem has a header of its own (see the README's Code
 *	  layout); data flows one way:
 *
 *	  source.h (a relation's rows) -> ratings.h (both sides' sparse rows)
 *	  -> als.h (the solver) -> catalog.h (the model tables) -> cache.h (a
 *	  backend's models) -> score.h (scores, top-n) -> the SQL functions.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MF_EXT_H
#define MF_EXT_H

#include "postgres.h"

#include <float.h>
#include <math.h>

#include "portability/instr_time.h"

/* Settings (mf_ext.c). */
extern int	mf_threads;			/* mf_ext.threads: 0 means every core */
extern int	mf_max_memory_mb;	/* mf_ext.max_memory */

#define MF_MAX_THREADS	1024

/* Limits on the training options (checked in checks.c). */
#define MF_MIN_K		0		/* 0: biases only (needs biases := true) */
#define MF_MAX_K		1024
#define MF_MAX_ITERATIONS	100000
#define MF_MAX_MODEL_NAME	1024	/* bytes; the unique index allows ~2700 */
#define MF_MAX_CONFIDENCE	1e12	/* alpha * strength at most (implicit feedback) */
#define MF_MAX_SINGLE_LAMBDA	1e30	/* a row's lambda at most, in single precision */
#define MF_MAX_FOLDS	100

/*
 * A side of the ratings matrix: the rows of one side are its users (their
 * ratings' columns the items), or its items.
 */
typedef enum MfSide
{
	MF_USERS,
	MF_ITEMS
} MfSide;

static inline MfSide
mf_other_side(MfSide side)
{
	return side == MF_USERS ? MF_ITEMS : MF_USERS;
}

/* "user" or "item", for messages. */
static inline const char *
mf_side_name(MfSide side)
{
	return side == MF_USERS ? "user" : "item";
}

/*
 * splitmix64's finaliser: a fast, well-mixed 64-bit hash, for id maps and
 * for seeded random numbers.
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
 * Asks the kernel (Linux's transparent huge pages, in their "madvise" mode)
 * to back an array of bytes bytes, from 8 MB on, with huge pages: its first
 * touch then takes one page fault per 2 MB rather than per 4 kB, which is
 * most of the time of filling a fresh array on some virtual machines.  The
 * advice covers the whole pages the array touches, so that a block mapped
 * on its own (a large palloc) stays one mapping, which realloc() can remap
 * rather than copy.  A hint only: nothing changes where the kernel
 * declines.  Returns array.
 */
extern void *mf_advise_huge_pages(void *array, Size bytes);

/* Arrays from this size on are backed by huge pages where the kernel can. */
#define MF_HUGE_PAGE_ARRAY		((Size) 8 * 1024 * 1024)

/*
 * Has the kernel back the pages of an array of bytes bytes, from 8 MB on,
 * already faulted in, by huge pages (MADV_COLLAPSE, Linux 6.1 on; a hint,
 * nothing elsewhere), 16 MB at a time with a look for interrupts between.
 * An array realloc() moved to an address not a multiple of 2 MB away from
 * its old one has had its huge pages split into small ones: using it
 * then takes a TLB entry per 4 kB rather than per 2 MB.
 */
extern void mf_collapse_huge_pages(void *array, Size bytes);

/*
 * count * size bytes in cxt (at least one element), overflow-checked, huge
 * allowed; from 8 MB on, backed by transparent huge pages where the kernel
 * allows (mf_advise_huge_pages).
 */
extern void *mf_alloc_array(MemoryContext cxt, Size count, Size size);

/*
 * Strings copied one after another into blocks of cxt, 8 kB at first and
 * twice the last up to MF_HUGE_PAGE_ARRAY (backed by huge pages), for the
 * millions of keys a side may have: no chunk header and no rounding up to
 * a power of two, which palloc adds (an md5 key took 80 bytes, 33 here),
 * and fewer page faults as they are first written.  A block is made
 * larger for a string of over an eighth of it, and a string of over an
 * eighth of the largest block is copied on its own.  The copies are freed
 * with the context only.
 */
typedef struct MfStrings
{
	MemoryContext cxt;
	char	   *free;			/* the last block's first free byte */
	Size		left;			/* bytes free there */
	Size		last_block;		/* the last block's size */
} MfStrings;

extern void mf_strings_init(MfStrings *strings, MemoryContext cxt);

/*
 * A copy of the length bytes at bytes (no NUL among them) with a NUL
 * after, in strings->cxt; looks for interrupts before each new block or
 * string copied on its own (at least every 8 MB copied), so backend thread
 * only.
 */
extern char *mf_strings_copy(MfStrings *strings, const char *bytes, Size length);

/*
 * memcpy and memset of bytes bytes, 16 MB at a time with a look for
 * interrupts before each: the first touch of fresh memory takes a page
 * fault per 4 kB, about 10 us each on some virtual machines (a memset of
 * 4 GB of first factors had a cancel wait 9-11 s).
 */
extern void mf_copy_checked(void *to, const void *from, Size bytes);
extern void mf_zero_checked(void *to, Size bytes);

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
 * A memory estimate, made of parts count * size before anything is
 * allocated, and checked against mf_ext.max_memory.
 */
typedef struct MfMemory
{
	Size		bytes;
} MfMemory;

/* Adds count * size bytes (overflow-checked). */
extern void mf_memory_add(MfMemory *memory, Size count, Size size);

/*
 * Raises an error (54000) when the estimate of what (for the message:
 * "training", "mf_recommend_all", ...) exceeds mf_ext.max_memory; detail
 * says what it is made of, hint (NULL: the usual, for training) what to
 * do instead.
 */
extern void mf_memory_check(const MfMemory *memory, const char *what, const char *detail,
							const char *hint);

/*
 * Sorts n elements of size bytes at base by compare, as qsort does, with
 * interrupts checked as it goes (a qsort of millions cannot be cancelled):
 * runs sorted by qsort, then merged through a buffer of n * size bytes
 * (count it in the memory estimate).
 */
extern void mf_sort(void *base, Size n, Size size,
					int (*compare) (const void *, const void *));

/* mf_sort's (qsort's) comparators of int64 and int32. */
extern int	mf_compare_int64(const void *a, const void *b);
extern int	mf_compare_int32(const void *a, const void *b);

/*
 * Passes of a backend loop between two looks for interrupts (powers of
 * two): rows (of factors, up to k = 1024 values each; of ratings) and
 * passes that cost a lookup or more (a hash lookup, a string), or single
 * values (ratings, numbers) summed, compared or converted.
 */
#define MF_INTERRUPT_ROWS	1024
#define MF_INTERRUPT_VALUES	((int64) 1 << 20)

/*
 * CHECK_FOR_INTERRUPTS() on every step-th pass of a loop (pass 0, step,
 * 2 step, ...; step a power of two); the backend's thread only.
 */
#define mf_interrupts_every(pass, step) \
	do { \
		if (((pass) & ((step) - 1)) == 0) \
			CHECK_FOR_INTERRUPTS(); \
	} while (0)

/* Seconds from start to now. */
extern double mf_seconds_since(instr_time start);

/*
 * Raises 42501 when the current role is no longer role, the one that
 * called mf_ext: a function that what ran ("reading public.v", "writing
 * public.t", "a trigger, rule or policy of the model tables"), a view's,
 * a trigger's or a policy's, set the session's role (set_config('role',
 * ..., false) or SET ROLE), and the call would go on checking privileges,
 * or recording who trained, as another role.  detail says what may have
 * run the function and what the role is for, hint what to do.  The error
 * undoes the role's change with the rest of the call.
 */
extern void mf_check_role_kept(Oid role, const char *what, const char *detail,
							   const char *hint);

/* What mf_parse_id made of a text. */
typedef enum MfIdParse
{
	MF_ID_OK,
	MF_ID_OUT_OF_RANGE,			/* an integer beyond bigint */
	MF_ID_NOT_INTEGER
} MfIdParse;

/*
 * An integer id (bigint) from its text form, read as bigint's input reads
 * it: a decimal integer with an optional sign and whitespace before and
 * after.  Sets *id when MF_ID_OK.
 */
extern MfIdParse mf_parse_id(const char *text, int64 *id);

/*
 * An id or key of length bytes (not NUL-terminated) as an error message
 * shows it: a palloc'd copy, cut at a character boundary within its first
 * 100 bytes and followed by "..." when longer.
 */
extern char *mf_id_for_message(const char *bytes, size_t length);

/*
 * A text (NUL-terminated: a key, a model name, an argument) as a message
 * shows it: cut as mf_id_for_message cuts it, then quoted and escaped as
 * a JSON string (no control character, no quote that would end it early).
 */
extern char *mf_text_for_message(const char *text);

/*
 * A sum of n numbers whose absolute values add up to magnitude, with a
 * result within the rounding of so many additions of 0 taken as exactly 0
 * (0.3 - 0.1 - 0.2 is -5.6e-17 in double): the strength of a pair whose
 * events cancel out.  A sum that overflowed (magnitude infinite) is kept
 * as it came out, for the callers' range checks to refuse: taken as 0, a
 * pair of rows of 1.7e308 trained as no interaction.
 */
static inline double
mf_exact_sum(double sum, double magnitude, int64 n)
{
	return isfinite(magnitude) && fabs(sum) <= (double) n * DBL_EPSILON * magnitude ? 0.0 : sum;
}

#endif							/* MF_EXT_H */
