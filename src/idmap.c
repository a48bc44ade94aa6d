/*-------------------------------------------------------------------------
 *
 * idmap.c
 *	  The id and key maps of idmap.h.
 *
 *-------------------------------------------------------------------------
 */
#include "idmap.h"

#include "miscadmin.h"

#include "common/hashfn.h"
#include "utils/memutils.h"

/*
 * The maps' tables' memory: simplehash's own allocator zeroes a new table
 * in one step with no look for interrupts, and as a map of text keys read
 * grew to 8M entries that zeroing (its page faults) made a cancel up to
 * 0.43 s late.  This one zeroes it with looks for interrupts
 * (mf_zero_checked) and asks for huge pages (mf_alloc_array).  An
 * interrupt inside a growth leaves the table half-grown, which is fine:
 * the error abandons the map with the call.
 */
#define MF_ID_TABLE_ALLOCATOR(prefix) \
static inline void * \
prefix##_allocate(prefix##_hash *table, Size size) \
{ \
	void	   *data = mf_alloc_array(table->ctx, size, 1); \
\
	mf_zero_checked(data, size); \
	return data; \
} \
static inline void \
prefix##_free(prefix##_hash *table, void *pointer) \
{ \
	pfree(pointer); \
}

#define SH_PREFIX		mf_idhash
#define SH_ELEMENT_TYPE MfIdEntry
#define SH_KEY_TYPE		int64
#define SH_KEY			id
#define SH_HASH_KEY(tb, key) ((uint32) mf_mix64((uint64) (key)))
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE		extern
#define SH_USE_NONDEFAULT_ALLOCATOR
#define SH_DEFINE
#include "lib/simplehash.h"
MF_ID_TABLE_ALLOCATOR(mf_idhash)

#define SH_PREFIX		mf_keymap
#define SH_ELEMENT_TYPE MfKeyEntry
#define SH_KEY_TYPE		const char *
#define SH_KEY			key
#define SH_HASH_KEY(tb, key) hash_bytes((const unsigned char *) (key), strlen(key))
#define SH_EQUAL(tb, a, b) (strcmp((a), (b)) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE		extern
#define SH_USE_NONDEFAULT_ALLOCATOR
#define SH_DEFINE
#include "lib/simplehash.h"
MF_ID_TABLE_ALLOCATOR(mf_keymap)

/* Slots a growing direct array starts with. */
#define MF_DIRECT_INITIAL	1024
/* A sorted map's direct array takes at most this many slots per id. */
#define MF_DIRECT_SLOTS_PER_ID	8

/* The direct array resized to size slots, the new ones empty. */
static void
resize_direct(MfIdMap *map, int64 size)
{
	int32	   *direct = mf_alloc_array(map->cxt, size, sizeof(int32));

	if (map->direct_size > 0)
	{
		memcpy(direct, map->direct, sizeof(int32) * map->direct_size);
		pfree(map->direct);
	}
	/* the map whole before the zeroing may stop for an interrupt */
	map->direct = direct;
	mf_zero_checked(direct + map->direct_size, sizeof(int32) * (size - map->direct_size));
	map->direct_size = size;
}

MfIdMap *
mf_id_map_create(MemoryContext cxt, int64 direct_max)
{
	MfIdMap    *map = MemoryContextAllocZero(cxt, sizeof(MfIdMap));

	map->cxt = cxt;
	map->direct_max = Max(direct_max, 0);
	map->hash = mf_idhash_create(cxt, 1024, NULL);
	if (map->direct_max > 0)
		resize_direct(map, Min(map->direct_max, MF_DIRECT_INITIAL));
	return map;
}

void
mf_id_map_add(MfIdMap *map, int64 id, int32 index)
{
	if ((uint64) id < (uint64) map->direct_max)
	{
		if (id >= map->direct_size)
		{
			int64		size = map->direct_size;

			while (size <= id)
				size *= 2;		/* ids are usually dense: double */
			resize_direct(map, Min(size, map->direct_max));
		}
		map->direct[id] = index + 1;
	}
	else
	{
		bool		found;

		mf_idhash_insert(map->hash, id, &found)->index = index;
	}
}

MfIdMap *
mf_id_map_from_sorted(MemoryContext cxt, const int64 *ids, int32 n)
{
	int64		direct = 0;
	MfIdMap    *map;

	/* the direct array covers [0, largest id + 1) if that is small enough */
	if (n > 0 && ids[n - 1] >= 0 &&
		ids[n - 1] < (int64) n * MF_DIRECT_SLOTS_PER_ID + MF_DIRECT_INITIAL)
		direct = ids[n - 1] + 1;
	map = mf_id_map_create(cxt, direct);
	if (direct > map->direct_size)
		resize_direct(map, direct);
	for (int32 i = 0; i < n; i++)
	{
		mf_id_map_add(map, ids[i], i);
		mf_interrupts_every(i, MF_INTERRUPT_ROWS);
	}
	return map;
}

mf_keymap_hash *
mf_key_map(MemoryContext cxt, char *const *keys, int32 n)
{
	mf_keymap_hash *map = mf_keymap_create(cxt, Max(16, n), NULL);

	for (int32 i = 0; i < n; i++)
	{
		bool		found;

		mf_keymap_insert(map, keys[i], &found)->index = i;
		CHECK_FOR_INTERRUPTS(); /* a key's hash may take long */
	}
	return map;
}

int32
mf_key_find(mf_keymap_hash *map, const char *key)
{
	MfKeyEntry *entry = mf_keymap_lookup(map, key);

	return entry ? entry->index : -1;
}

int
mf_compare_keys(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}
