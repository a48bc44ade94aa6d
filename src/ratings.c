/*-------------------------------------------------------------------------
 *
 * ratings.c
 *	  Ratings as compressed sparse rows of both sides (ratings.h): the rows
 *	  a source gives are kept in arrays that grow by doubling, with ids
 *	  numbered on the fly (12 bytes a rating while reading: 16 once a
 *	  rating single precision does not hold exactly is among them), then,
 *	  on the training's threads, a counting sort builds the items' rows
 *	  from the arrays through buckets of items, each of those rows is
 *	  sorted by user in the cache, and the users' rows are their
 *	  transpose, placed in blocks of users (rows read in user order are the
 *	  users' rows already, and the items' rows their transpose): each row
 *	  sorted by the other side's index, so that the model does not depend
 *	  on the order the rows came in.  The arrays read become sparse rows'
 *	  arrays, so that their pages, faulted in while reading, are not given
 *	  back and faulted in again; with a second thread, so do spares faulted
 *	  in while reading for the first sort's buckets (8 bytes a rating more
 *	  while reading, 4 for rows in user order).  The sparse rows keep the
 *	  ratings in single precision when every one is a float exactly (8
 *	  bytes a rating a side: 20 at the most while building, 16 after), in
 *	  double otherwise (12 a side: 28 while building, 24 after).
 *
 *-------------------------------------------------------------------------
 */
#include "ratings.h"
#include "idmap.h"
#include "parallel.h"
#include "progress.h"

#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "utils/float.h"
#include "utils/memutils.h"

/*
 * Rows read between two memory checks (and looks for a cancel), and the
 * arrays' first capacity.
 */
#define MF_CHECK_ROWS	65536

/*
 * The most rows the arrays are first allocated for, from the planner's
 * estimate: 4 bytes a row each makes them larger than the C library's
 * largest threshold for mapping an allocation on its own (32 MB), so that
 * they grow by remapping, never by copying.
 */
#define MF_FIRST_ROWS_MOST	((double) (9 << 20))

/*
 * Bytes of the arrays a second thread faults in ahead of the rows read
 * (prefault_rows; the spares' too): far more than the rows between two
 * moves of its limit (MF_CHECK_ROWS, about 1 MB of the arrays), so that it
 * keeps ahead, and what a stale estimate of many more rows makes resident
 * for nothing.
 */
#define MF_PREFAULT_WINDOW	((Size) 16 * 1024 * 1024)

/* Rows between a row's arrival and its numbering (MfRows.ahead). */
#define MF_ROWS_AHEAD	16

/*
 * Bytes per rating while reading and at the peak of building the sparse
 * rows (the rows read and the first side's rows, or both sides' rows);
 * once a rating single precision does not hold exactly is read, every
 * rating is kept in double precision, MF_WIDE_BYTES_PER_RATING more.
 */
#define MF_READ_BYTES_PER_RATING	12
#define MF_BUILD_BYTES_PER_RATING	24
#define MF_BUILD_SINGLE_BYTES_PER_RATING	20
#define MF_WIDE_BYTES_PER_RATING	4
/* Per distinct user or item: ids, map entries, remaps, row starts. */
#define MF_BYTES_PER_ID				80
/* Bytes of new text keys between two memory checks at the most. */
#define MF_KEY_BYTES_PER_CHECK		(1024 * 1024)

/*
 * The longest text id kept: a factor row holds its key in one value, in a
 * tuple or an INSERT's text[] that PostgreSQL limits to 1 GB, with 1 MB
 * left for the row's other columns.  (A key of 1 GB less 6 bytes was
 * refused when the model was stored, after the whole training; attack
 * helper 184.)
 */
#define MF_KEY_MOST_BYTES	((Size) MaxAllocSize - 1024 * 1024)
/* Ids below this are numbered through a direct array while reading. */
#define MF_DIRECT_READ_IDS	(1 << 20)

/* Distinct ids of one side in order of first appearance, with a map back. */
typedef struct Numbering
{
	MfIdMap    *map;			/* id -> index */
	int64	   *ids;			/* index -> id */
	int32		n;
	int32		capacity;
	const char *kind;			/* "users" or "items", for errors */
} Numbering;

/* Distinct text keys of one side in order of first appearance. */
typedef struct KeySide
{
	mf_keymap_hash *map;		/* key -> its number */
	char	  **keys;			/* number -> key */
	MfStrings	copies;			/* the keys kept */
	int32		n;
	int32		capacity;
} KeySide;

struct MfRows
{
	MemoryContext cxt;			/* everything below, freed once built */
	Numbering	users;
	Numbering	items;

	/*
	 * The rows read, capacity each (in parent, to become sparse rows'
	 * arrays): dense indices in order of first appearance, and the ratings
	 * in single precision, or in double (wide, and rating NULL) once one of
	 * them is not a single-precision number (is_wide).
	 */
	MemoryContext parent;
	int32	   *user;
	int32	   *item;
	float	   *rating;
	double	   *wide;
	bool		is_wide;
	int64		first_capacity; /* allocated for the first row */
	int64		expected;		/* rows the planner expects, a little over */
	int64		capacity;
	int64		n_rows;
	int64		prefault_window;	/* rows faulted in ahead of the last read, or 0 */
	bool		huge_pages;		/* the arrays ask for huge pages (resize_array) */
	bool		spares;			/* with spare_col and spare_val */

	/*
	 * With huge_pages and a second thread (spares), room for the first
	 * counting sort's buckets, capacity each (in parent): faulted in
	 * behind the rows' arrays by the second thread while the backend
	 * reads (prefault_rows), so that the sort
	 * writes into pages the process has.  Fresh pages had been about half
	 * of that sort's time (10M ratings in random order, a virtual machine).
	 * spare_col becomes the buckets' columns, then the row sorts' scratch
	 * and the users' rows' columns, for rows not in user order only (in
	 * user order it is never touched, and freed); spare_val their ratings,
	 * single or double precision as the rows' are.
	 */
	int32	   *spare_col;
	void	   *spare_val;
	KeySide    *user_keys;		/* for text-keyed sides, else NULL */
	KeySide    *item_keys;

	/*
	 * Rows given but not yet numbered, ahead_n of them (a ring: row g, in
	 * order given, at g % MF_ROWS_AHEAD; the oldest is row n_rows): each
	 * is numbered MF_ROWS_AHEAD rows after it came, its ids' slots asked
	 * of the cache when it came, since in a table not in id order each
	 * lookup is a cache miss (a third of reading 100M ratings in random
	 * order).
	 */
	struct
	{
		int64		user;
		int64		item;
		double		rating;
	}			ahead[MF_ROWS_AHEAD];
	int			ahead_n;
	Size		key_bytes;		/* bytes of the distinct keys kept */
	Size		key_bytes_checked;	/* key_bytes at the last memory check */
	Size		held;			/* bytes the caller holds beside the rows */
	const char *relation;		/* the argument naming their relation, or NULL */
	bool		sorted;			/* rows so far in (user id, item id) order */
	bool		repeated;		/* a row so far repeated the pair before it */
	int64		last_user;
	int64		last_item;
};

/*
 * A side's numbering; keyed, its ids are the key side's numbers, dense
 * from 0 in the same order of first appearance, so that the direct array
 * takes them all (through a hash, numbers from 2^20 on had been a seventh
 * of reading 5M distinct text keys).
 */
static void
numbering_init(Numbering *numbering, MemoryContext cxt, const char *kind, bool keyed)
{
	numbering->map = mf_id_map_create(cxt, keyed ? PG_INT32_MAX : MF_DIRECT_READ_IDS);
	numbering->capacity = 1024;
	numbering->ids = MemoryContextAlloc(cxt, sizeof(int64) * numbering->capacity);
	numbering->n = 0;
	numbering->kind = kind;
}

/* Gives id the next index. */
static int32
append_id(Numbering *numbering, int64 id)
{
	if (numbering->n == PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many distinct %s", numbering->kind),
				 errdetail("mf_ext supports at most %d distinct %s.",
						   PG_INT32_MAX - 1, numbering->kind)));
	if (numbering->n == numbering->capacity)
	{
		numbering->capacity = (int32) Min((int64) numbering->capacity * 2, PG_INT32_MAX);
		numbering->ids = repalloc_huge(numbering->ids,
									   mul_size(numbering->capacity, sizeof(int64)));
	}
	numbering->ids[numbering->n] = id;
	mf_id_map_add(numbering->map, id, numbering->n);
	return numbering->n++;
}

/*
 * The dense index of id, numbering it if it is new.  (Rows are counted per
 * index later, from the rows read: an increment here, in a table of rows in
 * random order, would be a second cache miss a row while the scan streams
 * through the cache.)
 */
static int32
number_id(Numbering *numbering, int64 id)
{
	int32		index = mf_id_map_find(numbering->map, id);

	return index >= 0 ? index : append_id(numbering, id);
}

static KeySide *
key_side_create(MemoryContext cxt)
{
	KeySide    *side = MemoryContextAllocZero(cxt, sizeof(KeySide));

	side->map = mf_keymap_create(cxt, 1024, NULL);
	side->capacity = 1024;
	side->keys = MemoryContextAlloc(cxt, sizeof(char *) * side->capacity);
	mf_strings_init(&side->copies, cxt);
	return side;
}

/*
 * The rows' context's reset callback: a failed call's memory is freed
 * before the transaction's abort stops the faulting in, and this context,
 * a child of the one holding the arrays, goes first.
 */
static void
stop_prefault(void *arg)
{
	mf_prefault_stop();
}

MfRows *
mf_rows_create(MemoryContext parent, bool user_keys, bool item_keys, double expected,
			   Size held, const char *relation)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "mf_ext rows",
											  ALLOCSET_DEFAULT_SIZES);
	MfRows	   *rows = MemoryContextAllocZero(cxt, sizeof(MfRows));
	MemoryContextCallback *stop = MemoryContextAllocZero(cxt, sizeof(MemoryContextCallback));

	stop->func = stop_prefault;
	MemoryContextRegisterResetCallback(cxt, stop);

	rows->cxt = cxt;
	numbering_init(&rows->users, cxt, "users", user_keys);
	numbering_init(&rows->items, cxt, "items", item_keys);
	rows->parent = parent;
	rows->held = held;
	rows->relation = relation;
	/*
	 * A little over the estimate (which mf_rows_check_estimate has
	 * checked), but no more than MF_FIRST_ROWS_MOST: a stale estimate of
	 * many more rows than the table has would reserve memory never used.
	 */
	rows->expected = expected > 0
		? (int64) Min(expected * 1.0625, (double) PG_INT32_MAX * PG_INT32_MAX) : 0;
	rows->first_capacity = Max(MF_CHECK_ROWS, Min(rows->expected, (int64) MF_FIRST_ROWS_MOST));
	rows->user_keys = user_keys ? key_side_create(cxt) : NULL;
	rows->item_keys = item_keys ? key_side_create(cxt) : NULL;
	/* key numbers are not in the keys' order: only integer ids can be sorted */
	rows->sorted = !user_keys && !item_keys;
	return rows;
}

/*
 * Bytes a rating the rows hold while reading: the arrays read, and the
 * spares' pages faulted in (the columns only for rows not in user order).
 */
static Size
read_bytes_per_rating(const MfRows *rows)
{
	Size		bytes = MF_READ_BYTES_PER_RATING;

	if (rows->spare_val)
		bytes += (rows->sorted ? 0 : sizeof(int32)) + (rows->is_wide ? sizeof(double) : sizeof(float));
	return bytes;
}

/*
 * Memory that rows of n ratings hold, beside per_rating bytes a rating,
 * with what the caller holds beside them.
 */
static MfMemory
rows_memory(const MfRows *rows, int64 n, Size per_rating)
{
	MfMemory	memory = {0};

	mf_memory_add(&memory, 1, rows->held);
	mf_memory_add(&memory, n, per_rating);
	if (rows->is_wide)
		mf_memory_add(&memory, n, MF_WIDE_BYTES_PER_RATING);
	mf_memory_add(&memory, (Size) rows->users.capacity + rows->items.capacity, MF_BYTES_PER_ID);
	mf_memory_add(&memory, 1, rows->key_bytes);
	return memory;
}

/* A memory error's words for held bytes held beside the rows read ("" for none). */
static const char *
held_beside(Size held)
{
	return held > 0 ? psprintf(", beside about %zu MB of ratings read before them", held / (1024 * 1024) + 1) : "";
}

/* The rows of relation (mf_rows_create) as memory errors name them, in a sentence or starting one. */
static const char *
ratings_named(const char *relation, bool starting)
{
	if (relation == NULL)
		return starting ? "The ratings" : "the ratings";
	return psprintf("%s %s relation's ratings", starting ? "The" : "the", relation);
}

/*
 * The hint of a memory error while reading the rows of relation: neither k
 * nor mf_ext.threads changes what they keep.
 */
static const char *
read_memory_hint(const char *relation)
{
	if (relation != NULL)
		return psprintf("Raise mf_ext.max_memory (a superuser setting), or pass a smaller %s relation (a sample of its ratings).",
						relation);
	return "Raise mf_ext.max_memory (a superuser setting), or pass a view that keeps fewer of the rows (a sample of the ratings; for a refit, of fewer users or items).";
}

/*
 * Raises the error for rows, with room for room rows more, and their ids
 * and keys, beyond mf_ext.max_memory.
 */
static void
check_rows_memory(MfRows *rows, int64 room)
{
	MfMemory	memory = rows_memory(rows, add_size(rows->n_rows, room), read_bytes_per_rating(rows));

	rows->key_bytes_checked = rows->key_bytes;
	mf_memory_check(&memory, psprintf("reading %s", ratings_named(rows->relation, false)),
					psprintf("Reading %s: " INT64_FORMAT " rows of %d users and %d items so far%s%s%s.",
							 ratings_named(rows->relation, false), rows->n_rows, rows->users.n, rows->items.n,
							 rows->key_bytes > 0 ? psprintf(", %zu bytes of text ids", rows->key_bytes / 2) : "",
							 room > 0 ? psprintf(", and room for " INT64_FORMAT " more", room) : "",
							 held_beside(rows->held)),
					read_memory_hint(rows->relation));
}

int64
mf_rows_key(MfRows *rows, MfSide side, const char *key)
{
	KeySide    *keys = side == MF_USERS ? rows->user_keys : rows->item_keys;
	MfKeyEntry *entry;
	bool		found;

	entry = mf_keymap_insert(keys->map, key, &found);
	if (!found)
	{
		Size		length = strlen(key);

		if (length > MF_KEY_MOST_BYTES)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("a %s id of %zu bytes is too long to be stored with the model",
							mf_side_name(side), length),
					 errdetail("mf_ext keeps text ids of up to %zu bytes: a factor row holds its id in one value, which PostgreSQL limits to 1 GB.",
							   MF_KEY_MOST_BYTES),
					 errhint("Train on a shorter form of the ids, for example md5(id).")));
		if (keys->n == keys->capacity)
		{
			keys->capacity *= 2;
			keys->keys = repalloc_huge(keys->keys, mul_size(keys->capacity, sizeof(char *)));
		}
		/* kept here, and once more, sorted, in the result: counted before it is copied */
		rows->key_bytes = add_size(rows->key_bytes, mul_size(length + 1, 2));
		if (rows->key_bytes - rows->key_bytes_checked > MF_KEY_BYTES_PER_CHECK)
			check_rows_memory(rows, 0);
		keys->keys[keys->n] = mf_strings_copy(&keys->copies, key, length);
		entry->key = keys->keys[keys->n];
		entry->index = keys->n++;
	}
	return entry->index;
}

/*
 * Where a second thread may work (mf_prefault), has it fault in the rows'
 * arrays from the last row read to the part the planner expects to be
 * filled, backed by huge pages: their page faults had been about a
 * quarter of loading 10M ratings on a virtual machine.  Then, as far as it
 * gets, the spares up to the same row, from their start (pages it faulted
 * in before are passed over quickly).  The limit (append_row moves it) is
 * MF_PREFAULT_WINDOW bytes of all these arrays ahead of the rows read.  Past the
 * expected part (an estimate too low) the backend's thread faults the
 * pages in itself, as it does with one thread.
 */
static void
prefault_rows(MfRows *rows)
{
	int64		expected_end = Min(rows->capacity, rows->expected);
	void	   *values = rows->wide ? (void *) rows->wide : (void *) rows->rating;
	Size		value_size = rows->wide ? sizeof(double) : sizeof(float);
	MfPrefaultArray arrays[MF_PREFAULT_ARRAYS];
	int			n = 0;
	Size		row_bytes = 0;

	rows->prefault_window = 0;
	if (expected_end <= rows->n_rows || mf_thread_count() < 2)
		return;
	arrays[n++] = (MfPrefaultArray) {rows->user, sizeof(int32), rows->n_rows, expected_end};
	arrays[n++] = (MfPrefaultArray) {rows->item, sizeof(int32), rows->n_rows, expected_end};
	arrays[n++] = (MfPrefaultArray) {values, value_size, rows->n_rows, expected_end};
	if (rows->spare_val)
	{
		if (!rows->sorted)
			arrays[n++] = (MfPrefaultArray) {rows->spare_col, sizeof(int32), 0, expected_end};
		arrays[n++] = (MfPrefaultArray) {rows->spare_val, value_size, 0, expected_end};
	}
	for (int a = 0; a < n; a++)
		row_bytes += arrays[a].element;
	rows->prefault_window = (int64) (MF_PREFAULT_WINDOW / row_bytes);
	mf_prefault(arrays, n, rows->n_rows + rows->prefault_window);
}

/*
 * array (NULL at first) resized to capacity elements of element bytes, in
 * the rows' parent, backed by huge pages where the rows ask for them.
 */
static void *
resize_array(MfRows *rows, void *array, int64 capacity, Size element)
{
	Size		bytes = mul_size(capacity, element);
	void	   *resized = array ? repalloc_huge(array, bytes) : MemoryContextAllocHuge(rows->parent, bytes);

	return rows->huge_pages ? mf_advise_huge_pages(resized, bytes) : resized;
}

/*
 * The arrays of the rows read resized to capacity rows (allocated at
 * first).  Large chunks are blocks of their own, which realloc() remaps.
 */
static void
resize_rows(MfRows *rows, int64 capacity)
{
	Size		value_size = rows->wide ? sizeof(double) : sizeof(float);

	mf_prefault_stop();			/* before the arrays move */
	if (rows->user == NULL)
	{
		/*
		 * Huge pages from the first row on, where the planner expects
		 * arrays of 8 MB or more: else the rows before have small pages,
		 * which a collapse copies.  With a second thread, faulted in ahead
		 * (prefault_rows), and spares.
		 */
		rows->huge_pages = rows->expected > 0 && capacity * sizeof(int32) >= MF_HUGE_PAGE_ARRAY;
		rows->spares = rows->huge_pages && mf_thread_count() >= 2;
	}
	rows->user = resize_array(rows, rows->user, capacity, sizeof(int32));
	rows->item = resize_array(rows, rows->item, capacity, sizeof(int32));
	if (rows->wide)
		rows->wide = resize_array(rows, rows->wide, capacity, sizeof(double));
	else
		rows->rating = resize_array(rows, rows->rating, capacity, sizeof(float));
	if (rows->spares)
	{
		rows->spare_col = resize_array(rows, rows->spare_col, capacity, sizeof(int32));
		rows->spare_val = resize_array(rows, rows->spare_val, capacity, value_size);
	}
	rows->capacity = capacity;
	prefault_rows(rows);
}

/*
 * The arrays read, once at their size, backed by huge pages again where
 * they asked for them (resize_array): a move of an array by realloc()
 * while it grew, to an address not a multiple of 2 MB away, split the
 * huge pages of the part filled into small ones (seen in /proc/PID/smaps
 * on Linux 6.18).  Measured on 10M ratings in random order, two
 * threads, a virtual machine: 7-11 ms, after which the three counting
 * sorts took 0.27-0.34 s rather than 0.41-0.46 s; on one thread, 100M
 * ratings, 0.17-0.19 s, after which the first sort's count took
 * 0.18-0.21 s rather than 0.62-0.78 s (and a cancel's freeing of the
 * arrays a few milliseconds rather than about 0.1 s).  Where the arrays
 * have small pages (an estimate too low to advise them before the first
 * row) it would copy them, which costs more than it saves (attack helper
 * 176: 0.19 s for 10M ratings estimated at 100,000).
 */
static void
collapse_rows(MfRows *rows)
{
	int64		n = rows->n_rows;

	if (!rows->huge_pages)
		return;
	mf_collapse_huge_pages(rows->user, n * sizeof(int32));
	mf_collapse_huge_pages(rows->item, n * sizeof(int32));
	if (rows->wide)
		mf_collapse_huge_pages(rows->wide, n * sizeof(double));
	else
		mf_collapse_huge_pages(rows->rating, n * sizeof(float));
	/* one thread has no spares (attack helper 199: it had asked the kernel to collapse from address 0) */
	if (rows->spares)
	{
		if (!rows->sorted)
			mf_collapse_huge_pages(rows->spare_col, n * sizeof(int32));
		mf_collapse_huge_pages(rows->spare_val, n * (rows->wide ? sizeof(double) : sizeof(float)));
	}
}

/* Moves the ratings read so far, and from now on, to double precision. */
static void
widen_rows(MfRows *rows)
{
	mf_prefault_stop();			/* before the single-precision values go */
	/* huge pages before the copy faults its pages in, so that a collapse has none to copy */
	rows->wide = resize_array(rows, NULL, rows->capacity, sizeof(double));
	for (int64 e = 0; e < rows->n_rows; e++)
	{
		mf_interrupts_every(e, MF_INTERRUPT_VALUES);
		rows->wide[e] = rows->rating[e];
	}
	pfree(rows->rating);
	rows->rating = NULL;
	if (rows->spare_val)
	{
		pfree(rows->spare_val);
		rows->spare_val = resize_array(rows, NULL, rows->capacity, sizeof(double));
	}
	prefault_rows(rows);
}

/* Appends a row: numbers its ids, stores it. */
static void
append_row(MfRows *rows, int64 user, int64 item, double rating)
{
	int64		e = rows->n_rows;

	if (e > 0 && user == rows->last_user && item == rows->last_item)
		rows->repeated = true;
	else if (rows->sorted && e > 0 &&
			 (user < rows->last_user || (user == rows->last_user && item < rows->last_item)))
	{
		rows->sorted = false;
		/* the spare columns will be sorted into: faulted in from now on too */
		if (rows->spare_val)
		{
			check_rows_memory(rows, MF_CHECK_ROWS - e % MF_CHECK_ROWS);
			prefault_rows(rows);
		}
	}
	rows->last_user = user;
	rows->last_item = item;
	if (e % MF_CHECK_ROWS == 0)
	{
		/* within the memory limit with room for the next rows */
		check_rows_memory(rows, MF_CHECK_ROWS);
		CHECK_FOR_INTERRUPTS();
		if (rows->prefault_window > 0)
			mf_prefault_limit(e + rows->prefault_window);
	}
	if (e == rows->capacity)
		resize_rows(rows, e == 0 ? rows->first_capacity : rows->capacity * 2);
	rows->user[e] = number_id(&rows->users, user);
	rows->item[e] = number_id(&rows->items, item);
	if (rows->wide == NULL && (double) (float) rating != rating)
	{
		/* the first rating single precision does not hold: counted, then kept */
		rows->is_wide = true;
		check_rows_memory(rows, MF_CHECK_ROWS - e % MF_CHECK_ROWS);
		widen_rows(rows);
	}
	if (rows->wide)
		rows->wide[e] = rating;
	else
		rows->rating[e] = (float) rating;
	rows->n_rows++;
}

/* Appends the oldest row given and not yet numbered. */
static void
append_oldest(MfRows *rows)
{
	int			slot = (int) (rows->n_rows % MF_ROWS_AHEAD);

	rows->ahead_n--;
	append_row(rows, rows->ahead[slot].user, rows->ahead[slot].item, rows->ahead[slot].rating);
}

void
mf_rows_add(MfRows *rows, int64 user, int64 item, double rating)
{
	int			slot;

	mf_id_map_prefetch(rows->users.map, user);
	mf_id_map_prefetch(rows->items.map, item);
	if (rows->ahead_n == MF_ROWS_AHEAD)
		append_oldest(rows);
	slot = (int) ((rows->n_rows + rows->ahead_n) % MF_ROWS_AHEAD);
	rows->ahead[slot].user = user;
	rows->ahead[slot].item = item;
	rows->ahead[slot].rating = rating;
	rows->ahead_n++;
}

void
mf_rows_check_estimate(double n, Size held, const char *relation)
{
	MfMemory	memory = {0};

	if (!(n > 0))
		return;
	mf_memory_add(&memory, 1, held);
	mf_memory_add(&memory, (Size) n, MF_BUILD_BYTES_PER_RATING);
	mf_memory_check(&memory, psprintf("reading %s", ratings_named(relation, false)),
					psprintf("%s: about %.0f rows by the planner's estimate (ANALYZE the table if that is out of date), %d bytes each while they are indexed%s.",
							 ratings_named(relation, true), n, MF_BUILD_BYTES_PER_RATING,
							 held_beside(held)),
					read_memory_hint(relation));
}

/*
 * A key with its number (in order of first appearance) and its first 8
 * bytes as a big-endian integer, which orders two keys as strcmp() does
 * unless they are equal: the sort then rarely reads the keys themselves,
 * scattered in memory (an abbreviated key, as PostgreSQL's sorts use).
 */
typedef struct NumberedKey
{
	uint64		prefix;
	char	   *key;
	int32		number;
} NumberedKey;

static uint64
key_prefix(const char *key)
{
	uint64		prefix = 0;

	for (int i = 0; i < 8 && key[i] != '\0'; i++)
		prefix |= (uint64) (unsigned char) key[i] << (56 - 8 * i);
	return prefix;
}

static int
compare_numbered_keys(const void *a, const void *b)
{
	const NumberedKey *x = a;
	const NumberedKey *y = b;

	if (x->prefix != y->prefix)
		return x->prefix < y->prefix ? -1 : 1;
	return strcmp(x->key, y->key);
}

/*
 * Sorts a side's keys (byte order) and renumbers its ids from key numbers
 * to positions in that order, so that the model is numbered by key
 * whatever the order the rows came in.  Returns the sorted keys, in cxt.
 * The keys are sorted with their numbers: looking each sorted key up in
 * the side's map instead had been a fifth of reading 1.5M distinct keys.
 * The map, no longer needed, is freed first.
 */
static char **
sort_keys(KeySide *side, Numbering *numbering, MemoryContext cxt)
{
	NumberedKey *order;
	int32	   *rank;
	char	  **sorted;
	MfStrings	copies;

	mf_keymap_destroy(side->map);
	side->map = NULL;
	order = mf_alloc_array(cxt, side->n, sizeof(NumberedKey));
	for (int32 number = 0; number < side->n; number++)
	{
		order[number].prefix = key_prefix(side->keys[number]);
		order[number].key = side->keys[number];
		order[number].number = number;
		mf_interrupts_every(number, MF_INTERRUPT_ROWS);
	}
	mf_sort(order, side->n, sizeof(NumberedKey), compare_numbered_keys);
	rank = mf_alloc_array(cxt, side->n, sizeof(int32));
	sorted = mf_alloc_array(cxt, side->n, sizeof(char *));
	mf_strings_init(&copies, cxt);
	for (int32 r = 0; r < side->n; r++)
	{
		sorted[r] = mf_strings_copy(&copies, order[r].key, strlen(order[r].key));
		rank[order[r].number] = r;
		mf_interrupts_every(r, MF_INTERRUPT_ROWS);
	}
	pfree(order);
	for (int32 a = 0; a < numbering->n; a++)
	{
		numbering->ids[a] = rank[numbering->ids[a]];
		mf_interrupts_every(a, MF_INTERRUPT_ROWS);
	}
	pfree(rank);
	return sorted;
}

/*
 * An array of count elements of size bytes (in cxt) that a sort writes out
 * of order, faulted in first, 16 MB at a time with a look for a cancel
 * before each (mf_zero_checked): scattered first writes could each fault
 * in a page of its own between two looks (a cancel as the ids' radix sort
 * began waited 45-119 ms at 4.5M distinct ids, attack helper 195).  With
 * huge pages, the first writes into a few hundred buckets fault in all of
 * them: a cancel as the first sort of 100M ratings began placing, on one
 * thread, waited 0.88-1.16 s (0-34 ms faulted in first).
 */
static void *
alloc_scattered(MemoryContext cxt, Size count, Size size)
{
	void	   *array = mf_alloc_array(cxt, count, size);

	mf_zero_checked(array, mul_size(Max(count, 1), size));
	return array;
}

/* An id with its index in order of first appearance. */
typedef struct NumberedId
{
	int64		id;
	int32		index;
} NumberedId;

/*
 * Byte byte (0: the lowest) of id with its sign bit flipped, which orders
 * ids among int64 as unsigned numbers are ordered.
 */
static inline int
id_digit(int64 id, int byte)
{
	return (int) ((((uint64) id ^ ((uint64) 1 << 63)) >> (8 * byte)) & 255);
}

/*
 * pairs (n of them) sorted by id, through scratch (as long), by an LSD
 * radix sort of the ids' bytes that skips the bytes all ids share (ids
 * below 2^24 take three passes): the sorted array, pairs or scratch.  At
 * 100M ratings, 480,189 users' ids had taken 0.12-0.15 s through mf_sort
 * (qsort and merges with a comparator).
 */
static NumberedId *
radix_sort_ids(NumberedId *pairs, NumberedId *scratch, int32 n)
{
	int64		counts[sizeof(int64)][256] = {{0}};

	if (n == 0)
		return pairs;
	for (int32 a = 0; a < n; a++)
	{
		for (int byte = 0; byte < (int) sizeof(int64); byte++)
			counts[byte][id_digit(pairs[a].id, byte)]++;
		mf_interrupts_every(a, MF_INTERRUPT_ROWS);
	}
	for (int byte = 0; byte < (int) sizeof(int64); byte++)
	{
		int64	   *slots = counts[byte];
		int64		slot = 0;
		NumberedId *swap;

		if (slots[id_digit(pairs[0].id, byte)] == n)
			continue;			/* every id has this byte */
		for (int digit = 0; digit < 256; digit++)
		{
			int64		count = slots[digit];

			slots[digit] = slot;
			slot += count;
		}
		for (int32 a = 0; a < n; a++)
		{
			scratch[slots[id_digit(pairs[a].id, byte)]++] = pairs[a];
			mf_interrupts_every(a, MF_INTERRUPT_ROWS);
		}
		swap = pairs;
		pairs = scratch;
		scratch = swap;
	}
	return pairs;
}

/*
 * The ids in ascending order, into *sorted_ids, and the map from each
 * index in order of first appearance to the position in that order.
 */
static int32 *
sorted_numbering(Numbering *numbering, MemoryContext cxt, int64 **sorted_ids)
{
	int32		n = numbering->n;
	NumberedId *pairs = mf_alloc_array(cxt, n, sizeof(NumberedId));
	NumberedId *scratch = alloc_scattered(cxt, n, sizeof(NumberedId));
	const NumberedId *sorted;
	int64	   *ids = mf_alloc_array(cxt, n, sizeof(int64));
	int32	   *remap = alloc_scattered(cxt, n, sizeof(int32));

	for (int32 a = 0; a < n; a++)
	{
		pairs[a].id = numbering->ids[a];
		pairs[a].index = a;
		mf_interrupts_every(a, MF_INTERRUPT_ROWS);
	}
	sorted = radix_sort_ids(pairs, scratch, n);
	for (int32 i = 0; i < n; i++)
	{
		ids[i] = sorted[i].id;
		remap[sorted[i].index] = i;
		mf_interrupts_every(i, MF_INTERRUPT_ROWS);
	}
	pfree(pairs);
	pfree(scratch);
	*sorted_ids = ids;
	return remap;
}

/*
 * Gives csr (n_rows rows) the arrays col, and val_single or val (the other
 * NULL), allocated already in cxt, and zeroed row starts in cxt: arrays of
 * the rows read handed on, whose pages the process has already faulted in.
 */
static void
csr_adopt(MfCsr *csr, MemoryContext cxt, int32 n_rows, int32 *col, float *val_single,
		  double *val)
{
	Assert((val_single == NULL) != (val == NULL));
	csr->n_rows = n_rows;
	csr->row_start = mf_alloc_array(cxt, (Size) n_rows + 1, sizeof(int64));
	mf_zero_checked(csr->row_start, sizeof(int64) * ((Size) n_rows + 1));
	csr->col = col;
	csr->val_single = val_single;
	csr->val = val;
}

/*
 * Rows for n ratings, in val_single (single) or val; scattered, for a sort
 * that writes them out of order (alloc_scattered).
 */
static void
csr_alloc(MfCsr *csr, MemoryContext cxt, int32 n_rows, int64 n, bool single, bool scattered)
{
	void	   *(*alloc) (MemoryContext, Size, Size) = scattered ? alloc_scattered : mf_alloc_array;

	csr_adopt(csr, cxt, n_rows, alloc(cxt, n, sizeof(int32)),
			  single ? alloc(cxt, n, sizeof(float)) : NULL,
			  single ? NULL : alloc(cxt, n, sizeof(double)));
}

/* Sets entry e's rating (a float exactly, for rows in val_single). */
static inline void
csr_set_value(MfCsr *csr, int64 e, double value)
{
	if (csr->val)
		csr->val[e] = value;
	else
		csr->val_single[e] = (float) value;
}

static void
csr_free(MfCsr *csr)
{
	if (csr->row_start)
		pfree(csr->row_start);
	if (csr->col)
		pfree(csr->col);
	if (csr->val)
		pfree(csr->val);
	if (csr->val_single)
		pfree(csr->val_single);
}

/* Moves rows held in val_single to val (in their context), for sums that may not be floats. */
static void
csr_widen(MfCsr *csr)
{
	int64		n = csr->row_start[csr->n_rows];

	if (csr->val)
		return;
	csr->val = mf_alloc_array(GetMemoryChunkContext(csr->row_start), Max(n, 1), sizeof(double));
	for (int64 e = 0; e < n; e++)
	{
		mf_interrupts_every(e, MF_INTERRUPT_VALUES);
		csr->val[e] = csr->val_single[e];
	}
	pfree(csr->val_single);
	csr->val_single = NULL;
}

/*
 * A counting sort of entries into out's rows, on mf_parallel_for's threads.
 * The input is the rows read (rows set: each an entry, in reading order)
 * or the rows of in (each entry of in's row r becomes column r of
 * out's row in->col[e]: the transpose).  It is cut into parts, one per
 * thread (in's at whole rows); each part counts its entries per output row,
 * the counts become the row starts and each part's first slot in each row,
 * after the slots of the parts before it (first), and each part places its
 * entries from there (cursor).  So every output row lists its entries in input
 * order, as one pass would, whatever the number of threads.
 */
typedef struct CountingSort
{
	/* the rows read, whose items' rows are built (row_remap: items, col_remap: users) */
	const MfRows *rows;
	const int32 *row_remap;
	const int32 *col_remap;

	/*
	 * The rows read are placed in two passes: into buckets of
	 * 2^bucket_bits output rows each, in the bucket's slots (buckets, as
	 * long as out, whose row starts are out's, a bucket's those of its
	 * first row), each entry's column below col_bits and its row in the
	 * bucket above them; then each bucket into its rows (bucket_rows).
	 * Writes to a few hundred buckets stay in the cache, where one pass
	 * writes to every row at once (at 100M ratings in random order, 17,770
	 * items' rows, 35,540 arrays' ends, more than the cache's lines).
	 */
	MfCsr		buckets;
	int			bucket_bits;
	int64		n_buckets;
	int			col_bits;
	/* or the rows to transpose */
	const MfCsr *in;
	MfCsr	   *out;
	int			parts;
	int64	   *part_start;		/* parts + 1 entry offsets */
	int32	   *part_row;		/* in's row part p starts at */
	int64	  **first;			/* per part: its entries per output row, then
								 * its first slot in each */
	int64	  **cursor;			/* per part: next slot per output row while placing */
	bool		placing;		/* counting (false) or placing (true) */

	/*
	 * A transpose of few rows of in (sorted by column, as csr_transpose's
	 * are) is placed instead in blocks of output rows (place_blocks), each
	 * block's entries gathered from every row of in: part p's output rows
	 * from block_row[p] on, in's entries it has reached (block_cursor[p],
	 * one per row of in), and the next slot of each output row (first[0],
	 * after the counting).
	 */
	int64		block_entries;	/* entries a block holds at the most (one row may hold more) */
	int32	   *block_row;		/* parts + 1 */
	int64	  **block_cursor;
} CountingSort;

/* Entries a part handles between two looks at mf_parallel_stopping(). */
#define MF_SORT_STEP	65536

/*
 * Parts a counting sort of n entries into n_rows rows is cut into: one per
 * thread, but only as many as keep the parts' first slots and cursors (16 bytes
 * a row each) within 4 bytes an entry, and at least MF_SORT_STEP entries
 * each; one for many rows with few entries each.
 */
static int
sort_parts_for(int32 n_rows, int64 n)
{
	int64		by_rows = n / Max((int64) 4 * Max(n_rows, 1), MF_SORT_STEP);

	return (int) Max(1, Min((int64) mf_thread_count(), by_rows));
}

/*
 * Copies value e of from to value at of to: floats if single (a constant
 * in each call), else doubles.
 */
static inline void
copy_value(void *to, int64 at, const void *from, int64 e, const bool single)
{
	if (single)
		((float *) to)[at] = ((const float *) from)[e];
	else
		((double *) to)[at] = ((const double *) from)[e];
}

/* Places an entry (col, value) of output row row at part p's next slot there. */
static inline void
place_entry(CountingSort *sort, int p, int32 row, int32 col, double value)
{
	int64		at = sort->cursor[p][row]++;

	sort->out->col[at] = col;
	csr_set_value(sort->out, at, value);
}

/*
 * Part p of the rows read placed into the buckets, from its cursors; false
 * if it stopped.  single as for place_block (below), and the arrays in
 * locals for the same reason.
 */
static inline bool
place_read_part(CountingSort *sort, int p, const bool single)
{
	const int32 *item = sort->rows->item;
	const int32 *user = sort->rows->user;
	const void *rating = single ? (const void *) sort->rows->rating : (const void *) sort->rows->wide;
	const int32 *item_remap = sort->row_remap;
	const int32 *user_remap = sort->col_remap;
	int32	   *bucket_col = sort->buckets.col;
	void	   *bucket_val = single ? (void *) sort->buckets.val_single : (void *) sort->buckets.val;
	int64	   *cursor = sort->cursor[p];
	int			bucket_bits = sort->bucket_bits;
	int			col_bits = sort->col_bits;
	int32		in_bucket = (int32) ((1u << bucket_bits) - 1);

	for (int64 e = sort->part_start[p]; e < sort->part_start[p + 1]; e++)
	{
		int32		row = item_remap[item[e]];
		int64		at = cursor[row >> bucket_bits]++;

		if ((e & (MF_SORT_STEP - 1)) == 0 && mf_parallel_stopping())
			return false;
		bucket_col[at] = user_remap[user[e]] | ((row & in_bucket) << col_bits);
		copy_value(bucket_val, at, rating, e, single);
	}
	return true;
}

/* Part p of the rows read: counted by item, or placed into the buckets. */
static int64
sort_read_part(CountingSort *sort, int p)
{
	const MfRows *rows = sort->rows;
	bool		placed;

	if (sort->placing)
	{
		placed = rows->wide == NULL ? place_read_part(sort, p, true) : place_read_part(sort, p, false);
		return placed ? MF_TASK_DONE : mf_task_stopped(p);
	}
	for (int64 e = sort->part_start[p]; e < sort->part_start[p + 1]; e++)
	{
		if ((e & (MF_SORT_STEP - 1)) == 0 && mf_parallel_stopping())
			return mf_task_stopped(p);
		sort->first[p][sort->row_remap[rows->item[e]]]++;
	}
	return MF_TASK_DONE;
}

/* Part p of in's rows: counted, or placed as the transpose. */
static int64
sort_rows_part(CountingSort *sort, int p)
{
	const MfCsr *in = sort->in;

	for (int32 r = sort->part_row[p]; r < in->n_rows && in->row_start[r] < sort->part_start[p + 1]; r++)
	{
		for (int64 e = in->row_start[r]; e < in->row_start[r + 1]; e++)
		{
			int32		c = in->col[e];

			if ((e & (MF_SORT_STEP - 1)) == 0 && mf_parallel_stopping())
				return mf_task_stopped(p);
			if (!sort->placing)
				sort->first[p][c]++;
			else
				place_entry(sort, p, c, r, mf_csr_value(in, e));
		}
	}
	return MF_TASK_DONE;
}

/* mf_parallel_for task: parts [first, last), counted or placed from the start. */
static int64
sort_parts(void *arg, int thread, int64 first, int64 last)
{
	CountingSort *sort = arg;
	const MfCsr *out = sort->out;

	for (int64 p = first; p < last; p++)
	{
		int64		outcome;

		if (!sort->placing)
			memset(sort->first[p], 0, sizeof(int64) * out->n_rows);
		else
			memcpy(sort->cursor[p], sort->first[p], sizeof(int64) * out->n_rows);
		outcome = sort->in ? sort_rows_part(sort, (int) p) : sort_read_part(sort, (int) p);
		if (outcome != MF_TASK_DONE)
			return outcome;
	}
	return MF_TASK_DONE;
}

/*
 * Adds work (entries, rows) to *unchecked, a task's work since it last
 * looked for a stop; every MF_SORT_STEP of it, looks (true: stop now).
 */
static inline bool
stop_after(int64 *unchecked, int64 work)
{
	*unchecked += work;
	if (*unchecked < MF_SORT_STEP)
		return false;
	*unchecked = 0;
	return mf_parallel_stopping();
}

/*
 * The most rows of in a transpose is placed in blocks for (place_blocks):
 * each block visits every one of them, and holds about 8 entries for each
 * (at 17,770 items, 142,160 entries, 1.1 MB of single-precision rows), at
 * least MF_SORT_STEP; more rows of in would make a block too large for the
 * cache.
 */
#define MF_BLOCKED_IN_ROWS	32768

/* The first entry of in's row r at column col or after it (its columns sorted). */
static int64
first_entry_from(const MfCsr *in, int32 r, int32 col)
{
	int64		low = in->row_start[r];
	int64		high = in->row_start[r + 1];

	while (low < high)
	{
		int64		middle = low + (high - low) / 2;

		if (in->col[middle] < col)
			low = middle + 1;
		else
			high = middle;
	}
	return low;
}

/*
 * One block, output rows below block_end, from every row of in (cursor:
 * where each row's next entry is); false if it stopped.  single (a
 * constant in each call) says the values are floats.  The arrays are read
 * into locals once: PostgreSQL builds with -fno-strict-aliasing, so each
 * store into out's arrays would have them loaded again from in and out
 * (at ML-10M in random order, four alternated rounds: 43-54 ms against
 * 48-66 ms).
 */
static inline bool
place_block(const MfCsr *in, MfCsr *out, int64 *cursor, int64 *next, int32 block_end,
			int64 *unchecked, const bool single)
{
	const int64 *in_start = in->row_start;
	const int32 *in_col = in->col;
	const void *in_val = single ? (const void *) in->val_single : (const void *) in->val;
	int32	   *out_col = out->col;
	void	   *out_val = single ? (void *) out->val_single : (void *) out->val;
	Size		value_size = single ? sizeof(float) : sizeof(double);
	int32		n_rows = in->n_rows;

	for (int32 r = 0; r < n_rows; r++)
	{
		int64		e = cursor[r];
		int64		end = in_start[r + 1];

		if (r + 8 < n_rows)
		{
			/* the rows ahead's next entries: each is a cache miss */
			__builtin_prefetch(&in_col[cursor[r + 8]]);
			__builtin_prefetch((const char *) in_val + cursor[r + 8] * value_size);
		}
		for (; e < end && in_col[e] < block_end; e++)
		{
			int64		at = next[in_col[e]]++;

			/* a block of one user may be long, one pair rated millions of times */
			if (stop_after(unchecked, 1))
				return false;
			out_col[at] = r;
			copy_value(out_val, at, in_val, e, single);
		}
		cursor[r] = e;
		if (stop_after(unchecked, 1))
			return false;
	}
	return true;
}

/*
 * mf_parallel_for task: parts [first, last) of a transpose placed in blocks
 * of output rows.  Each block visits every row of in from where the block
 * before stopped and copies the entries of its output rows, which, in's
 * rows being sorted, are together there: the block's writes stay in the
 * cache, where one pass over in writes to every output row at once (a
 * cache miss an entry, most of the counting sort's time, at 480,189 users).
 * Entries land in the slots the counting sort would give them: an output
 * row lists them in the order of in's rows.  A part stopped half-way is
 * run again from its start (its cursors found again, its slots rewritten).
 */
static int64
place_blocks(void *arg, int thread, int64 first, int64 last)
{
	CountingSort *sort = arg;
	const MfCsr *in = sort->in;
	MfCsr	   *out = sort->out;
	int64	   *next = sort->first[0];
	int64		unchecked = 0;	/* rows visited and entries copied (stop_after) */

	for (int64 p = first; p < last; p++)
	{
		int32		row_end = sort->block_row[p + 1];
		int64	   *cursor = sort->block_cursor[p];
		int32		block_end;

		for (int32 r = 0; r < in->n_rows; r++)
			cursor[r] = first_entry_from(in, r, sort->block_row[p]);
		memcpy(next + sort->block_row[p], out->row_start + sort->block_row[p],
			   sizeof(int64) * (row_end - sort->block_row[p]));
		for (int32 block = sort->block_row[p]; block < row_end; block = block_end)
		{
			bool		placed;

			block_end = block + 1;
			while (block_end < row_end &&
				   out->row_start[block_end + 1] - out->row_start[block] <= sort->block_entries)
				block_end++;
			placed = in->val == NULL ? place_block(in, out, cursor, next, block_end, &unchecked, true)
				: place_block(in, out, cursor, next, block_end, &unchecked, false);
			if (!placed)
				return mf_task_stopped(p);
		}
	}
	return MF_TASK_DONE;
}

/*
 * The placing in blocks (place_blocks) of sort, counted already (row
 * starts set, first[0] free for the next slots): the output rows cut into
 * one part a thread of about as many entries each, n of them in all.
 */
static void
counting_sort_place_blocks(CountingSort *sort, int32 n_rows, int64 n, MemoryContext cxt)
{
	int			parts = mf_thread_count();
	const int64 *row_start = sort->out->row_start;
	int32		r = 0;

	sort->block_entries = Max(MF_SORT_STEP, (int64) 8 * sort->in->n_rows);
	sort->block_row = palloc((parts + 1) * sizeof(int32));
	sort->block_cursor = palloc(parts * sizeof(int64 *));
	sort->block_row[0] = 0;
	for (int p = 0; p < parts; p++)
	{
		int64		end = p == parts - 1 ? n : n / parts * (p + 1);

		while (r < n_rows && row_start[r + 1] <= end)
			r++;
		sort->block_row[p + 1] = p == parts - 1 ? n_rows : Max(r, sort->block_row[p]);
		sort->block_cursor[p] = mf_alloc_array(cxt, Max(sort->in->n_rows, 1), sizeof(int64));
	}
	mf_parallel_for(parts, parts, 1, place_blocks, NULL, sort);
	for (int p = 0; p < parts; p++)
		pfree(sort->block_cursor[p]);
	pfree(sort->block_cursor);
	pfree(sort->block_row);
}

/*
 * Buckets of the rows read (CountingSort.buckets) hold at the most
 * 2^MF_BUCKET_BITS_MOST output rows each (2,048 cursors, 16 KB of a
 * thread's stack), and make up about
 * 2^MF_BUCKET_COUNT_BITS buckets: at 100M ratings, 278 buckets of 64
 * items' rows, where the first pass took 0.30-0.35 s and the second
 * 0.14-0.17 s of 50M ratings against 0.6-0.7 s for one pass (one thread
 * of a virtual machine; 17,770 items).
 */
#define MF_BUCKET_BITS_MOST		11
#define MF_BUCKET_COUNT_BITS	9

/* Bits of the largest of n indices, 0 to n - 1: 0 for n of 1 or less. */
static int
index_bits(int32 n)
{
	return n > 1 ? pg_leftmost_one_pos32((uint32) (n - 1)) + 1 : 0;
}

/*
 * The rows read, counted (out's row starts set, first[p] part p's first
 * slot in each row): first[p][b] becomes part p's first slot in bucket b,
 * the bucket's first slot and the entries of the parts before p in it.
 * (first[p][b] is written after reading first[p] from b << bucket_bits,
 * at or after b, and later buckets read past it.)
 */
static void
bucket_first_slots(CountingSort *sort, int32 n_rows)
{
	const int64 *row_start = sort->out->row_start;

	for (int p = 0; p < sort->parts; p++)
	{
		int64	   *first = sort->first[p];

		for (int64 b = 0; b < sort->n_buckets; b++)
		{
			int64		row = b << sort->bucket_bits;
			int64		end = Min(n_rows, row + ((int64) 1 << sort->bucket_bits));
			int64		slot = row_start[row];

			mf_interrupts_every(b, MF_INTERRUPT_ROWS);
			for (int64 r = row; r < end; r++)
				slot += first[r] - row_start[r];
			first[b] = slot;
		}
	}
}

/*
 * Bucket b of the rows read placed into its rows of out, from cursor (the
 * rows' starts), in the bucket's order, columns unpacked; false if it
 * stopped.  single as for place_block, and the arrays in locals for the
 * same reason.
 */
static inline bool
place_bucket(const CountingSort *sort, int64 b, int64 *cursor, int64 *unchecked,
			 const bool single)
{
	const int32 *bucket_col = sort->buckets.col;
	const void *bucket_val = single ? (const void *) sort->buckets.val_single : (const void *) sort->buckets.val;
	int32	   *out_col = sort->out->col;
	void	   *out_val = single ? (void *) sort->out->val_single : (void *) sort->out->val;
	int			col_bits = sort->col_bits;
	int32		col_mask = (int32) ((1u << col_bits) - 1);
	int64		row = b << sort->bucket_bits;
	int64		rows = Min(sort->out->n_rows - row, (int64) 1 << sort->bucket_bits);
	int64		end = sort->out->row_start[row + rows];

	memcpy(cursor, sort->out->row_start + row, sizeof(int64) * rows);
	for (int64 e = sort->out->row_start[row]; e < end; e++)
	{
		int32		col = bucket_col[e];
		int64		at = cursor[(uint32) col >> col_bits]++;

		if (stop_after(unchecked, 1))
			return false;
		out_col[at] = col & col_mask;
		copy_value(out_val, at, bucket_val, e, single);
	}
	return true;
}

/*
 * mf_parallel_for task: buckets [first, last) of the rows read placed each
 * into its rows of out (place_bucket).  A bucket stopped half-way is placed
 * again from its start.
 */
static int64
bucket_rows(void *arg, int thread, int64 first, int64 last)
{
	CountingSort *sort = arg;
	int64		cursor[1 << MF_BUCKET_BITS_MOST];
	int64		unchecked = 0;	/* entries placed (stop_after) */

	for (int64 b = first; b < last; b++)
	{
		bool		placed = sort->out->val == NULL ? place_bucket(sort, b, cursor, &unchecked, true)
			: place_bucket(sort, b, cursor, &unchecked, false);

		if (!placed)
			return mf_task_stopped(b);
	}
	return MF_TASK_DONE;
}

/*
 * Runs sort into sort->out (n_rows rows, n entries; allocated in cxt, or
 * with arrays of those sizes already, which it reuses): cuts the input
 * into parts, counts, turns the counts into row starts, places (the rows
 * read into their buckets).
 */
static void
counting_sort(CountingSort *sort, int32 n_rows, int64 n, bool single, MemoryContext cxt)
{
	int			parts = sort_parts_for(n_rows, n);
	bool		in_blocks = sort->in != NULL && sort->in->n_rows <= MF_BLOCKED_IN_ROWS;

	if (sort->out->col == NULL)
		csr_alloc(sort->out, cxt, n_rows, n, single, true);
	else
	{
		Assert(sort->out->n_rows == n_rows && (sort->out->val == NULL) == single);
		mf_zero_checked(sort->out->row_start, sizeof(int64) * ((Size) n_rows + 1));
	}
	sort->parts = parts;
	sort->part_start = palloc((parts + 1) * sizeof(int64));
	sort->part_row = palloc0((parts + 1) * sizeof(int32));
	sort->first = palloc(parts * sizeof(int64 *));
	sort->cursor = palloc(parts * sizeof(int64 *));
	sort->part_start[0] = 0;
	for (int p = 0; p < parts; p++)
	{
		/* about n / parts entries each; in's parts end where a row ends */
		int64		end = p == parts - 1 ? n : n / parts * (p + 1);

		if (sort->in && p < parts - 1)
		{
			int32		r = sort->part_row[p];

			while (r < sort->in->n_rows && sort->in->row_start[r + 1] <= end)
				r++;
			sort->part_row[p + 1] = r;
			end = Max(sort->part_start[p], sort->in->row_start[r]);
		}
		sort->part_start[p + 1] = end;
		sort->first[p] = mf_alloc_array(cxt, Max(n_rows, 1), sizeof(int64));
		sort->cursor[p] = in_blocks ? NULL : mf_alloc_array(cxt, Max(n_rows, 1), sizeof(int64));
	}

	sort->placing = false;
	mf_parallel_for(parts, parts, 1, sort_parts, NULL, sort);
	for (int32 r = 0; r < n_rows; r++)
	{
		int64		slot = sort->out->row_start[r];

		for (int p = 0; p < parts; p++)
		{
			int64		count = sort->first[p][r];

			sort->first[p][r] = slot;
			slot += count;
		}
		sort->out->row_start[r + 1] = slot;
	}
	if (in_blocks)
		counting_sort_place_blocks(sort, n_rows, n, cxt);
	else
	{
		if (sort->rows)
			bucket_first_slots(sort, n_rows);
		sort->placing = true;
		mf_parallel_for(parts, parts, 1, sort_parts, NULL, sort);
	}

	for (int p = 0; p < parts; p++)
	{
		pfree(sort->first[p]);
		if (sort->cursor[p])
			pfree(sort->cursor[p]);
	}
	pfree(sort->part_start);
	pfree(sort->part_row);
	pfree(sort->first);
	pfree(sort->cursor);
}

/*
 * Builds the items' rows (out: its arrays, as long as the rows read,
 * adopted already) from the rows read by counting sort, entries in reading
 * order, through bucket_col and bucket_val (as long; float or double as
 * out's).  item_remap and user_remap map indices in order of first
 * appearance to the final dense indices.
 */
static void
csr_from_read_rows(const MfRows *rows, const int32 *item_remap, const int32 *user_remap,
				   int32 *bucket_col, void *bucket_val, MfCsr *out, MemoryContext cxt)
{
	CountingSort sort = {.rows = rows, .row_remap = item_remap, .col_remap = user_remap,
	.out = out, .col_bits = index_bits(rows->users.n)};
	int			threads = mf_thread_count();

	sort.buckets.col = bucket_col;
	if (rows->is_wide)
		sort.buckets.val = bucket_val;
	else
		sort.buckets.val_single = bucket_val;
	/* a bucket's row and an entry's column in one int32 */
	sort.bucket_bits = Min(Max(0, index_bits(rows->items.n) - MF_BUCKET_COUNT_BITS),
						   Min(MF_BUCKET_BITS_MOST, 31 - sort.col_bits));
	sort.n_buckets = (((int64) rows->items.n - 1) >> sort.bucket_bits) + 1;
	counting_sort(&sort, rows->items.n, rows->n_rows, !rows->is_wide, cxt);
	mf_parallel_for(threads, sort.n_buckets, Max(1, sort.n_buckets / (16 * threads)),
					bucket_rows, NULL, &sort);
}

/*
 * The users' rows (out, in cxt) straight from rows read in (user id, item
 * id) order: they list each user's entries together, in item order, which
 * is what a counting sort would give.  The item array becomes the rows'
 * columns (remapped in place) and the ratings their values; the user array
 * stays the caller's (rows->user).
 */
static void
csr_from_sorted_rows(const MfRows *rows, const int32 *user_remap, const int32 *item_remap,
					 MfCsr *out, MemoryContext cxt)
{
	int64		n = rows->n_rows;

	csr_adopt(out, cxt, rows->users.n, rows->item, rows->rating, rows->wide);
	for (int64 e = 0; e < n; e++)
	{
		mf_interrupts_every(e, MF_SORT_STEP);
		out->row_start[user_remap[rows->user[e]] + 1]++;
		out->col[e] = item_remap[out->col[e]];
	}
	for (int32 r = 0; r < out->n_rows; r++)
		out->row_start[r + 1] += out->row_start[r];
}

/*
 * out = the transpose of in (n_cols columns; each row of in sorted by
 * column), by counting sort: each row of out lists its entries in the
 * order of in's rows, i.e. sorted by column.
 * out is allocated in cxt, unless it has arrays of its size already (rows
 * freed for it: their pages are the process's already, where new ones
 * would be faulted in and zeroed a page at a time).
 */
static void
csr_transpose(const MfCsr *in, int32 n_cols, MfCsr *out, MemoryContext cxt)
{
	CountingSort sort = {.in = in, .out = out};

	counting_sort(&sort, n_cols, in->row_start[in->n_rows], in->val == NULL, cxt);
}

static int
compare_doubles(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

static int
compare_floats(const void *a, const void *b)
{
	float		x = *(const float *) a;
	float		y = *(const float *) b;

	return (x > y) - (x < y);
}

/* Runs of duplicates up to this long are sorted in place by insertion. */
#define MF_SHORT_RUN	16

/*
 * Sorts the values of entries [begin, end) ascending: a short run (most
 * are pairs) by insertion, where a call of qsort would cost more than the
 * sort, in plain C (the row sorts' threads call it for those); a long one
 * by mf_sort.
 */
static void
csr_sort_values(MfCsr *csr, int64 begin, int64 end)
{
	if (end - begin > MF_SHORT_RUN)
	{
		if (csr->val)
			mf_sort(csr->val + begin, end - begin, sizeof(double), compare_doubles);
		else
			mf_sort(csr->val_single + begin, end - begin, sizeof(float), compare_floats);
		return;
	}
	for (int64 e = begin + 1; e < end; e++)
	{
		double		value = mf_csr_value(csr, e);
		int64		at = e;

		for (; at > begin && mf_csr_value(csr, at - 1) > value; at--)
			csr_set_value(csr, at, mf_csr_value(csr, at - 1));
		csr_set_value(csr, at, value);
	}
}

/*
 * Orders the values of each run of one column (a pair rated more than
 * once) among entries [begin, end) of a row sorted by column, ascending
 * (csr_sort_values); returns whether there were any.  With long_runs (a
 * worker thread, which may not call mf_sort), a run longer than
 * MF_SHORT_RUN is left as it is and sets *long_runs instead.
 */
static bool
csr_sort_row_runs(MfCsr *csr, int64 begin, int64 end, bool *long_runs)
{
	bool		runs = false;

	for (int64 e = begin; e < end;)
	{
		int64		run = e + 1;

		while (run < end && csr->col[run] == csr->col[e])
			run++;
		if (run - e > 1)
		{
			runs = true;
			if (long_runs && run - e > MF_SHORT_RUN)
				*long_runs = true;
			else
				csr_sort_values(csr, e, run);
		}
		e = run;
	}
	return runs;
}

/*
 * Within each row (already sorted by column), orders the values of
 * duplicate entries (same column: the same pair rated twice) ascending, so
 * that not even their order depends on the scan.  A pair may be repeated
 * millions of times (csr_sort_values).  Returns whether there were any.
 */
static bool
csr_sort_duplicates(MfCsr *csr)
{
	bool		duplicates = false;

	for (int32 r = 0; r < csr->n_rows; r++)
	{
		duplicates |= csr_sort_row_runs(csr, csr->row_start[r], csr->row_start[r + 1], NULL);
		mf_interrupts_every(r, MF_INTERRUPT_ROWS);
	}
	return duplicates;
}

/*
 * Each row of rows sorted by column, stably, and a pair's entries (a run
 * of one column) by value, on mf_parallel_for's threads: rows in reading
 * order after a counting sort are sorted each in the cache (a row of 5,650
 * ratings, the mean item's at 100M ratings, is 45 KB), where a second
 * counting sort writes to every row at once (at 100M ratings in random
 * order, 0.3-0.4 s against 1.3-1.5 s, and the other side's pass over its
 * duplicates gone).  Rows of up to MF_INSERTION_ROW entries by insertion,
 * longer ones by an LSD radix sort of the column's bits in passes of up to
 * MF_RADIX_BITS, through scratch arrays as long as rows' (each row through
 * its own entries' places, so the threads share nothing).  A pair's run of
 * up to MF_SHORT_RUN entries is sorted there as csr_sort_values sorts it;
 * longer runs are left to csr_sort_duplicates, on the backend's thread
 * (mf_sort, which looks for interrupts).
 */
typedef struct RowSort
{
	MfCsr	   *rows;
	int32	   *scratch_col;
	void	   *scratch_val;	/* float or double, as rows' values */
	int			bits;			/* bits of the largest column */
	bool	   *long_runs;		/* per thread: a pair of more than MF_SHORT_RUN entries */
} RowSort;

/* Rows this short are sorted by insertion. */
#define MF_INSERTION_ROW	32
/* Bits of a radix pass at the most: 2,048 counts, 16 KB of a thread's stack. */
#define MF_RADIX_BITS		11

/*
 * One stable pass of entries [0, n) from (col, val) to (to_col, to_val) by
 * the digit (col >> shift) & mask, counts (mask + 1 of them) a thread's
 * own; false if it stopped (mf_parallel_stopping, asked every MF_SORT_STEP
 * entries of a long row), (col, val) untouched.  single (a constant in
 * each call) says the values are floats.
 */
static inline bool
radix_pass(const int32 *col, const void *val, int32 *to_col, void *to_val, int64 n,
		   int shift, int32 mask, int64 *counts, const bool single)
{
	bool		checks = n >= MF_SORT_STEP;
	int64		slot = 0;

	memset(counts, 0, sizeof(int64) * ((Size) mask + 1));
	for (int64 e = 0; e < n; e++)
	{
		if (checks && (e & (MF_SORT_STEP - 1)) == 0 && mf_parallel_stopping())
			return false;
		counts[(col[e] >> shift) & mask]++;
	}
	for (int32 d = 0; d <= mask; d++)
	{
		int64		count = counts[d];

		counts[d] = slot;
		slot += count;
	}
	for (int64 e = 0; e < n; e++)
	{
		int64		at = counts[(col[e] >> shift) & mask]++;

		if (checks && (e & (MF_SORT_STEP - 1)) == 0 && mf_parallel_stopping())
			return false;
		to_col[at] = col[e];
		copy_value(to_val, at, val, e, single);
	}
	return true;
}

/* Entries [begin, end) of csr sorted by column by insertion, stably. */
static void
csr_insertion_sort(MfCsr *csr, int64 begin, int64 end)
{
	for (int64 e = begin + 1; e < end; e++)
	{
		int32		col = csr->col[e];
		double		value = mf_csr_value(csr, e);
		int64		at = e;

		for (; at > begin && csr->col[at - 1] > col; at--)
		{
			csr->col[at] = csr->col[at - 1];
			csr_set_value(csr, at, mf_csr_value(csr, at - 1));
		}
		csr->col[at] = col;
		csr_set_value(csr, at, value);
	}
}

/*
 * Row r sorted (RowSort); false if it stopped (mf_parallel_stopping), its
 * entries then still the row's, in some order (a radix pass stopped
 * half-way into the row's own arrays puts back the whole row it had read
 * from the scratch arrays).  A pair's run too long to sort here sets
 * *long_runs.
 */
static bool
sort_one_row(RowSort *sort, int32 r, bool *long_runs, const bool single)
{
	MfCsr	   *rows = sort->rows;
	int64		begin = rows->row_start[r];
	int64		n = rows->row_start[r + 1] - begin;
	Size		value_size = single ? sizeof(float) : sizeof(double);
	int32	   *col = rows->col + begin;
	void	   *val = single ? (void *) (rows->val_single + begin) : (void *) (rows->val + begin);
	int64		e = 1;

	/* a row in order already (rows read in item order) is kept as it is */
	while (e < n && col[e - 1] <= col[e])
		e++;
	if (e < n && n <= MF_INSERTION_ROW)
		csr_insertion_sort(rows, begin, begin + n);
	else if (e < n)
	{
		int64		counts[1 << MF_RADIX_BITS];
		int			digit = Min(MF_RADIX_BITS, Max(4, pg_leftmost_one_pos64(n)));
		int			passes = (sort->bits + digit - 1) / digit;
		int32	   *from_col = col;
		void	   *from_val = val;
		int32	   *to_col = sort->scratch_col + begin;
		void	   *to_val = (char *) sort->scratch_val + begin * value_size;

		digit = (sort->bits + passes - 1) / passes; /* the passes evened out */
		for (int pass = 0; pass < passes; pass++)
		{
			int32	   *c = from_col;
			void	   *v = from_val;

			if (!radix_pass(from_col, from_val, to_col, to_val, n, pass * digit,
							(int32) ((1u << digit) - 1), counts, single))
			{
				if (to_col == col)
				{
					/* the row's own arrays half-written: the scratch holds it whole */
					memcpy(col, from_col, sizeof(int32) * n);
					memcpy(val, from_val, value_size * n);
				}
				return false;
			}
			from_col = to_col;
			from_val = to_val;
			to_col = c;
			to_val = v;
		}
		if (from_col != col)
		{
			memcpy(col, from_col, sizeof(int32) * n);
			memcpy(val, from_val, value_size * n);
		}
	}
	(void) csr_sort_row_runs(rows, begin, begin + n, long_runs);
	return true;
}

/* mf_parallel_for task: rows [first, last) sorted (RowSort). */
static int64
sort_rows_task(void *arg, int thread, int64 first, int64 last)
{
	RowSort    *sort = arg;
	const MfCsr *rows = sort->rows;
	bool		single = rows->val == NULL;
	int64		unchecked = 0;	/* entries since the last look for a stop (stop_after) */

	for (int64 r = first; r < last; r++)
	{
		bool		sorted = single ? sort_one_row(sort, (int32) r, &sort->long_runs[thread], true)
			: sort_one_row(sort, (int32) r, &sort->long_runs[thread], false);

		if (!sorted)
			return mf_task_stopped(r);
		if (stop_after(&unchecked, rows->row_start[r + 1] - rows->row_start[r] + 1))
			return mf_task_stopped(r + 1);
	}
	return MF_TASK_DONE;
}

/*
 * Sorts each row of rows (columns below n_cols) by column, and each pair's
 * entries by value (RowSort), through scratch_col and scratch_val (as many
 * entries as rows has; float or double as rows' values), on the training's
 * threads.
 */
static void
csr_sort_rows(MfCsr *rows, int32 n_cols, int32 *scratch_col, void *scratch_val)
{
	int			threads = mf_thread_count();
	RowSort		sort = {.rows = rows, .scratch_col = scratch_col, .scratch_val = scratch_val,
	.bits = Max(1, index_bits(n_cols))};
	bool		long_runs = false;

	sort.long_runs = palloc0(sizeof(bool) * threads);
	/* chunks of rows small enough that the threads finish together */
	mf_parallel_for(threads, rows->n_rows, Max(1, rows->n_rows / (16 * threads)),
					sort_rows_task, NULL, &sort);
	for (int t = 0; t < threads; t++)
		long_runs |= sort.long_runs[t];
	pfree(sort.long_runs);
	if (long_runs)
		(void) csr_sort_duplicates(rows);
}

/*
 * Sums the values of each row's duplicate entries (sorted by column, their
 * values ascending: the same order on both sides, so both sums are the
 * same double) into one entry; returns how many entries are left.
 */
static int64
csr_sum_duplicates(MfCsr *csr)
{
	int64		kept = 0;
	int64		begin = 0;

	for (int32 r = 0; r < csr->n_rows; r++)
	{
		int64		end = csr->row_start[r + 1];

		for (int64 e = begin; e < end;)
		{
			int64		run = e;
			double		sum = 0.0;
			double		magnitude = 0.0;

			for (; run < end && csr->col[run] == csr->col[e]; run++)
			{
				sum += csr->val[run];
				magnitude += fabs(csr->val[run]);
			}
			csr->col[kept] = csr->col[e];
			csr->val[kept] = mf_exact_sum(sum, magnitude, run - e);
			kept++;
			e = run;
		}
		begin = end;
		csr->row_start[r + 1] = kept;
		mf_interrupts_every(r, MF_INTERRUPT_ROWS);
	}
	return kept;
}

/*
 * Makes each pair one entry, its value the sum of its rows' (both sides),
 * in double precision: a sum of floats need not be one.
 */
static void
sum_duplicates(MfRatings *ratings)
{
	/* no rows read at all (a refit's source without the named ids): nothing to sum */
	if (ratings->by_user.row_start == NULL)
		return;
	csr_widen(&ratings->by_user);
	ratings->n_ratings = csr_sum_duplicates(&ratings->by_user);
	if (ratings->by_item.row_start != NULL)
	{
		csr_widen(&ratings->by_item);
		csr_sum_duplicates(&ratings->by_item);
	}
}

/* Bytes of one order's arrays (none once freed). */
static Size
csr_bytes(const MfCsr *csr, int64 n)
{
	MfMemory	memory = {0};

	if (csr->row_start)
		mf_memory_add(&memory, (Size) csr->n_rows + 1, sizeof(int64));
	if (csr->col)
		mf_memory_add(&memory, n, sizeof(int32));
	if (csr->val || csr->val_single)
		mf_memory_add(&memory, n, csr->val ? sizeof(double) : sizeof(float));
	return memory.bytes;
}

Size
mf_ratings_bytes(const MfRatings *ratings)
{
	MfMemory	memory = {0};

	mf_memory_add(&memory, 1, csr_bytes(&ratings->by_user, ratings->n_ratings));
	mf_memory_add(&memory, 1, csr_bytes(&ratings->by_item, ratings->n_ratings));
	mf_memory_add(&memory, (Size) ratings->n_users + ratings->n_items, sizeof(int64));
	return memory.bytes;
}

void
mf_ratings_free_by_item(MfRatings *ratings)
{
	csr_free(&ratings->by_item);
	memset(&ratings->by_item, 0, sizeof(MfCsr));
}

/*
 * What the first mean of the n values of rows (summary's) left out: the
 * mean of their distances from it, summed scaled by MF_SUM_SCALE (so that
 * a distance between far values cannot overflow).  Only where it passes
 * what that sum's own rounding could make of a mean already right (an ulp
 * of the mean and n epsilons of the farthest distance), else 0: a mean to
 * the last bit from the plain sum, as every ordinary table's is, stays
 * that mean, the same as Citus's (summed by SQL).
 */
static double
mean_correction(const MfCsr *rows, int64 n, const MfRatingsSummary *summary)
{
	double		first = mf_ratings_first_mean(summary, n);
	double		farthest = Max(summary->max - first, first - summary->min);
	double		noise = (nextafter(fabs(first), INFINITY) - fabs(first)) +
		2 * (double) n * DBL_EPSILON * farthest;
	double		scaled_distances = 0.0;
	double		correction;

	for (int64 e = 0; e < n; e++)
	{
		mf_interrupts_every(e, MF_INTERRUPT_VALUES);
		scaled_distances += mf_csr_value(rows, e) * MF_SUM_SCALE - first * MF_SUM_SCALE;
	}
	correction = scaled_distances / (double) n / MF_SUM_SCALE;
	return fabs(correction) > noise ? correction : 0.0;
}

MfRatingsSummary
mf_ratings_summarize(const MfRatings *ratings, bool mean)
{
	const MfCsr *by_user = &ratings->by_user;
	MfRatingsSummary summary = {.min = INFINITY, .max = -INFINITY,
	.longest = mf_ratings_longest_row(ratings)};

	for (int64 e = 0; e < ratings->n_ratings; e++)
	{
		double		value = mf_csr_value(by_user, e);

		mf_interrupts_every(e, MF_INTERRUPT_VALUES);
		summary.sum += value;
		summary.scaled_sum += value * MF_SUM_SCALE;
		summary.sum_squares += value * value;
		summary.min = Min(summary.min, value);
		summary.max = Max(summary.max, value);
	}
	if (mean && ratings->n_ratings > 0)
		summary.mean_correction = mean_correction(by_user, ratings->n_ratings, &summary);
	return summary;
}

bool
mf_ratings_squares_overflow(const MfRatings *ratings, double center)
{
	const MfCsr *by_user = &ratings->by_user;
	int64		n = by_user->n_rows > 0 ? by_user->row_start[by_user->n_rows] : 0;
	double		scaled_squares = 0.0;

	/* each distance scaled by MF_SUM_SCALE: only a sum that passes overflows */
	for (int64 e = 0; e < n; e++)
	{
		double		distance = mf_csr_value(by_user, e) * MF_SUM_SCALE - center * MF_SUM_SCALE;

		mf_interrupts_every(e, MF_INTERRUPT_VALUES);
		scaled_squares += distance * distance;
	}
	/* the fit sums the squares before it halves them */
	return !(scaled_squares <= DBL_MAX * MF_SUM_SCALE * MF_SUM_SCALE);
}

int64
mf_ratings_longest_row(const MfRatings *ratings)
{
	return Max(mf_csr_longest_row(&ratings->by_user), mf_csr_longest_row(&ratings->by_item));
}

int64
mf_csr_longest_row(const MfCsr *rows)
{
	int64		longest = 0;

	for (int32 r = 0; r < rows->n_rows; r++)
		longest = Max(longest, rows->row_start[r + 1] - rows->row_start[r]);
	return longest;
}

/* A column and one of its values, for sorting a row's entries. */
typedef struct RowEntry
{
	int32		col;
	double		value;
} RowEntry;

static int
compare_row_entries(const void *a, const void *b)
{
	const RowEntry *x = a;
	const RowEntry *y = b;

	if (x->col != y->col)
		return (x->col > y->col) - (x->col < y->col);
	return (x->value > y->value) - (x->value < y->value);
}

void
mf_sort_row_entries(int32 *cols, double *vals, int64 n)
{
	RowEntry   *entries = mf_alloc_array(CurrentMemoryContext, n, sizeof(RowEntry));

	for (int64 e = 0; e < n; e++)
	{
		entries[e].col = cols[e];
		entries[e].value = vals[e];
	}
	mf_sort(entries, n, sizeof(RowEntry), compare_row_entries);
	for (int64 e = 0; e < n; e++)
	{
		cols[e] = entries[e].col;
		vals[e] = entries[e].value;
	}
	pfree(entries);
}

int32
mf_csr_most_repeated(const MfCsr *rows, int32 r, int64 *times)
{
	int32		most = -1;

	*times = 0;
	if (rows->row_start == NULL || r < 0 || r >= rows->n_rows)
		return -1;				/* rows not held here (a Citus training's) */
	for (int64 e = rows->row_start[r], run = 0; e < rows->row_start[r + 1]; e++)
	{
		run = e > rows->row_start[r] && rows->col[e] == rows->col[e - 1] ? run + 1 : 1;
		if (run > *times)
		{
			*times = run;
			most = rows->col[e];
		}
	}
	return most;
}

MfRatings *
mf_ratings_from_rows(MfRows *rows, int64 n_skipped, MemoryContext cxt)
{
	MfRatings  *ratings = MemoryContextAllocZero(cxt, sizeof(MfRatings));
	int64		n;
	int32	   *user_remap;
	int32	   *item_remap;
	MfMemory	memory;
	int			per_rating;
	int			passes;

	Assert(cxt == rows->parent);
	while (rows->ahead_n > 0)
		append_oldest(rows);
	/* read: stop the faulting in (the last rows may have grown the arrays and restarted it) */
	mf_prefault_stop();
	n = rows->n_rows;
	ratings->n_ratings = n;
	ratings->n_skipped = n_skipped;
	if (n == 0)
	{
		/* none, but of the source's kind: key arrays, empty, for text-keyed sides */
		if (rows->user_keys)
			ratings->user_keys = MemoryContextAllocZero(cxt, sizeof(char *));
		if (rows->item_keys)
			ratings->item_keys = MemoryContextAllocZero(cxt, sizeof(char *));
		MemoryContextDelete(rows->cxt);
		return ratings;
	}
	per_rating = rows->is_wide ? MF_BUILD_BYTES_PER_RATING : MF_BUILD_SINGLE_BYTES_PER_RATING;
	memory = rows_memory(rows, n, per_rating);
	/* the counting sorts' first slots and cursors: two per output row and part */
	mf_memory_add(&memory, mul_size(Max(rows->users.n, rows->items.n),
									Max(sort_parts_for(rows->users.n, n),
										sort_parts_for(rows->items.n, n))),
				  2 * sizeof(int64));
	mf_memory_check(&memory, psprintf("indexing %s", ratings_named(rows->relation, false)),
					psprintf("Indexing " INT64_FORMAT " ratings of %d users and %d items takes %d bytes a rating%s.",
							 n, rows->users.n, rows->items.n,
							 per_rating + (rows->is_wide ? MF_WIDE_BYTES_PER_RATING : 0),
							 held_beside(rows->held)),
					read_memory_hint(rows->relation));

	ratings->n_users = rows->users.n;
	ratings->n_items = rows->items.n;
	if (rows->user_keys)
		ratings->user_keys = sort_keys(rows->user_keys, &rows->users, cxt);
	if (rows->item_keys)
		ratings->item_keys = sort_keys(rows->item_keys, &rows->items, cxt);
	user_remap = sorted_numbering(&rows->users, cxt, &ratings->user_ids);
	item_remap = sorted_numbering(&rows->items, cxt, &ratings->item_ids);
	/* mf_progress: the passes over the ratings done, of two (rows in user order) or three */
	passes = rows->sorted ? 2 : 3;
	mf_progress_step(0, passes, "pass", NAN, NAN);

	/* the arrays read at their size, handed on to sparse rows below */
	resize_rows(rows, n);
	collapse_rows(rows);
	if (rows->sorted)
	{
		/*
		 * Rows read in (user, item) order, as tables often are: they are
		 * the users' rows, sorted by item, and their transpose (into the
		 * user array's pages and the spare ratings') is sorted by user.
		 */
		int32	   *user = rows->user;
		bool		repeated = rows->repeated;
		void	   *values = rows->spare_val;	/* the transpose's ratings, or NULL */

		/* the spare columns are for rows not in user order: never touched */
		if (rows->spare_col)
			pfree(rows->spare_col);
		csr_from_sorted_rows(rows, user_remap, item_remap, &ratings->by_user, cxt);
		MemoryContextDelete(rows->cxt); /* the id maps, and rows */
		/*
		 * A pair's rows are neighbours here (repeated): their values sorted,
		 * which the transpose keeps.
		 */
		if (repeated)
			(void) csr_sort_duplicates(&ratings->by_user);
		mf_progress_step(1, passes, "pass", NAN, NAN);
		if (values == NULL)
			values = alloc_scattered(cxt, n, ratings->by_user.val ? sizeof(double) : sizeof(float));
		csr_adopt(&ratings->by_item, cxt, ratings->n_items, user,
				  ratings->by_user.val ? NULL : values, ratings->by_user.val ? values : NULL);
		csr_transpose(&ratings->by_user, ratings->n_items, &ratings->by_item, cxt);
	}
	else
	{
		/*
		 * Otherwise a counting sort by item in reading order, through
		 * buckets of items (the spares, where the rows have them), into
		 * the user and rating arrays, whose entries it has read; each
		 * item's row then sorted by user and each pair's ratings by value
		 * (through the buckets' arrays, whose pages the users' rows take
		 * next), and their transpose (placed in blocks of users), the
		 * users' rows: sorted by item, a pair's ratings in the same order.
		 */
		Size		value_size = rows->is_wide ? sizeof(double) : sizeof(float);
		int32	   *bucket_col = rows->spare_col ? rows->spare_col : alloc_scattered(cxt, n, sizeof(int32));
		void	   *bucket_val = rows->spare_val ? rows->spare_val : alloc_scattered(cxt, n, value_size);

		csr_adopt(&ratings->by_item, cxt, ratings->n_items, rows->user, rows->rating, rows->wide);
		csr_from_read_rows(rows, item_remap, user_remap, bucket_col, bucket_val, &ratings->by_item, cxt);
		pfree(rows->item);
		mf_progress_step(1, passes, "pass", NAN, NAN);
		csr_sort_rows(&ratings->by_item, ratings->n_users, bucket_col, bucket_val);
		mf_progress_step(2, passes, "pass", NAN, NAN);
		csr_adopt(&ratings->by_user, cxt, ratings->n_users, bucket_col,
				  rows->is_wide ? NULL : bucket_val, rows->is_wide ? bucket_val : NULL);
		MemoryContextDelete(rows->cxt); /* the id maps, and rows */
		csr_transpose(&ratings->by_item, ratings->n_users, &ratings->by_user, cxt);
	}
	pfree(user_remap);
	pfree(item_remap);
	return ratings;
}

/* "user U for item I in R": entry e of user u's row, for a message. */
static char *
rated_pair_for_message(const MfRatings *ratings, int32 u, int64 e)
{
	return psprintf("user %s for item %s%s",
					mf_ratings_id_for_message(ratings, MF_USERS, u),
					mf_ratings_id_for_message(ratings, MF_ITEMS, ratings->by_user.col[e]),
					ratings->relation ? psprintf(" in %s", ratings->relation) : "");
}

void
mf_ratings_event_log(MfRatings *ratings)
{
	const MfCsr *rows = &ratings->by_user;

	sum_duplicates(ratings);
	for (int32 u = 0; u < rows->n_rows; u++)
	{
		mf_interrupts_every(u, MF_INTERRUPT_ROWS);
		for (int64 e = rows->row_start[u]; e < rows->row_start[u + 1]; e++)
			if (mf_csr_value(rows, e) < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("rating of %s is %g, but implicit feedback needs ratings >= 0",
								rated_pair_for_message(ratings, u, e), mf_csr_value(rows, e)),
						 errdetail("With implicit feedback a rating is the strength of an interaction (a count, a duration), the sum of the pair's rows: confidence 1 + alpha * strength."),
						 errhint("Leave out or rescale negative ratings in a view; explicit feedback takes negative ratings.")));
	}
}

void
mf_ratings_implicit_strengths(MfRatings *ratings, double alpha)
{
	const MfCsr *rows = &ratings->by_user;
	double		largest = 0.0;

	mf_ratings_event_log(ratings);
	for (int64 e = 0; e < ratings->n_ratings; e++)
	{
		mf_interrupts_every(e, MF_INTERRUPT_VALUES);
		largest = Max(largest, mf_csr_value(rows, e));
	}
	if (!(alpha * largest <= MF_MAX_CONFIDENCE))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alpha * the largest rating is %.15g, above %g", alpha * largest,
						MF_MAX_CONFIDENCE),
				 errdetail("Confidences 1 + alpha * rating are limited to %g in either precision (in single precision the solve overflows beyond it).",
						   MF_MAX_CONFIDENCE),
				 errhint("Lower alpha, or scale the ratings down (for example log(1 + count)).")));
}

void
mf_report_rating_scale(const char *pair, double value, bool biases, double center, MfScaleUse use)
{
	double		distance = fabs(value - center);
	bool		model = use != MF_SCALE_TRAINING;
	const char *purpose = use == MF_SCALE_TRAINING ? "to train on"
		: use == MF_SCALE_REFIT ? "to refit from" : "for a fold-in";
	/* where double precision may hold what single precision cannot */
	const char *or_double = distance <= sqrt(DBL_MAX)
		? (model ? ", or retrain it with double_precision := true" : "; or pass double_precision := true")
		: "";

	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 biases
			 ? errmsg("rating of %s is %s, too far from the %s mean %s in single precision",
					  pair, float8out_internal(value), model ? "model's" : "ratings'", purpose)
			 : errmsg("rating of %s is %s, too large %s in single precision", pair,
					  float8out_internal(value), purpose),
			 biases
			 ? errdetail("Its distance from the %s mean (%s) is %s, beyond the largest single-precision number (%.8g): the solve's targets, in single precision, cannot hold it.",
						 model ? "model's" : "ratings'", float8out_internal(center),
						 float8out_internal(distance), FLT_MAX)
			 : errdetail("It is beyond the largest single-precision number (%.8g): the solve's targets, in single precision, cannot hold it.",
						 FLT_MAX),
			 model
			 ? errhint("Scale the ratings into the range the model was trained on%s.", or_double)
			 : errhint("Scale the ratings into a moderate range (for example 0 to 10), or pass a view that does%s.",
					   or_double)));
}

void
mf_ratings_check_scale(const MfRatings *ratings, const MfRatingsSummary *summary, bool single,
					   bool biases, const double *model_mean)
{
	const MfCsr *rows = &ratings->by_user;
	double		center = biases && model_mean ? *model_mean
		: mf_ratings_center(summary, ratings->n_ratings, biases);

	if (!single || ratings->n_ratings == 0 || mf_ratings_within_float(summary, center))
		return;
	for (int32 u = 0; u < rows->n_rows; u++)
	{
		mf_interrupts_every(u, MF_INTERRUPT_ROWS);
		for (int64 e = rows->row_start[u]; e < rows->row_start[u + 1]; e++)
		{
			double		value = mf_csr_value(rows, e);

			if (!mf_rating_within_float(value, center))
				mf_report_rating_scale(rated_pair_for_message(ratings, u, e), value, biases,
									   center, model_mean ? MF_SCALE_REFIT : MF_SCALE_TRAINING);
		}
	}
}

/*
 * One side's ids (and text keys) of the subset: the kept ids, or for text
 * keys their positions among the kept keys, in byte order, as reading a
 * relation of just the subset's ratings numbers them.
 */
static void
subset_side(const MfRatings *all, MfSide side, const int32 *remap, MfRatings *subset,
			MemoryContext cxt)
{
	int32		n_all = side == MF_USERS ? all->n_users : all->n_items;
	int32		n = side == MF_USERS ? subset->n_users : subset->n_items;
	const int64 *all_ids = mf_ratings_ids(all, side);
	char	   *const *all_keys = mf_ratings_keys(all, side);
	int64	   *ids = mf_alloc_array(cxt, n, sizeof(int64));
	char	  **keys = all_keys ? mf_alloc_array(cxt, n, sizeof(char *)) : NULL;

	for (int32 r = 0; r < n_all; r++)
	{
		if (remap[r] < 0)
			continue;
		ids[remap[r]] = all_keys ? remap[r] : all_ids[r];
		if (keys)
			keys[remap[r]] = all_keys[r];
	}
	if (side == MF_USERS)
	{
		subset->user_ids = ids;
		subset->user_keys = keys;
	}
	else
	{
		subset->item_ids = ids;
		subset->item_keys = keys;
	}
}

/*
 * The ratings of all whose entry e in all->by_user has keep[e], as a new
 * MfRatings in cxt: users and items without a kept rating are left out and
 * the rest renumbered densely in the same (ascending id) order.
 * user_remap[] and item_remap[] (all's sizes) receive each old index's new
 * one, or -1.  Used to split ratings into training and test folds.
 */
MfRatings *
mf_ratings_subset(const MfRatings *all, const bool *keep, int32 *user_remap,
				  int32 *item_remap, MemoryContext cxt)
{
	MfRatings  *subset = MemoryContextAllocZero(cxt, sizeof(MfRatings));
	const MfCsr *in = &all->by_user;
	MfCsr	   *out = &subset->by_user;
	int64		n = 0;
	int64		next = 0;

	subset->relation = all->relation;
	for (int32 i = 0; i < all->n_items; i++)
		item_remap[i] = -1;
	for (int32 u = 0; u < all->n_users; u++)
	{
		int64		kept = 0;

		for (int64 e = in->row_start[u]; e < in->row_start[u + 1]; e++)
			if (keep[e])
			{
				kept++;
				item_remap[in->col[e]] = 0;
			}
		user_remap[u] = kept > 0 ? subset->n_users++ : -1;
		n += kept;
		mf_interrupts_every(u, MF_INTERRUPT_ROWS);
	}
	for (int32 i = 0; i < all->n_items; i++)
		if (item_remap[i] == 0)
			item_remap[i] = subset->n_items++;
	subset->n_ratings = n;

	subset_side(all, MF_USERS, user_remap, subset, cxt);
	subset_side(all, MF_ITEMS, item_remap, subset, cxt);

	csr_alloc(out, cxt, subset->n_users, n, in->val == NULL, false);
	for (int32 u = 0; u < all->n_users; u++)
	{
		if (user_remap[u] < 0)
			continue;
		for (int64 e = in->row_start[u]; e < in->row_start[u + 1]; e++)
			if (keep[e])
			{
				out->col[next] = item_remap[in->col[e]];
				csr_set_value(out, next, mf_csr_value(in, e));
				next++;
			}
		out->row_start[user_remap[u] + 1] = next;
		mf_interrupts_every(u, MF_INTERRUPT_ROWS);
	}
	csr_transpose(out, subset->n_items, &subset->by_item, cxt);
	return subset;
}

char *
mf_ratings_id_for_message(const MfRatings *ratings, MfSide side, int32 index)
{
	char	   *const *keys = mf_ratings_keys(ratings, side);

	if (keys)
		return mf_text_for_message(keys[index]);
	return psprintf(INT64_FORMAT, mf_ratings_ids(ratings, side)[index]);
}
