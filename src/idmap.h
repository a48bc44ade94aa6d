/*-------------------------------------------------------------------------
 *
 * idmap.h
 *	  Maps from a user's or item's id to its dense index: MfIdMap for
 *	  integer ids, a key map for text keys (ids of any other type, kept as
 *	  their text form).
 *
 *-------------------------------------------------------------------------
 */
#ifndef MF_IDMAP_H
#define MF_IDMAP_H

#include "mf_ext.h"

typedef struct MfIdEntry
{
	int64		id;
	int32		index;
	char		status;			/* simplehash bookkeeping */
} MfIdEntry;

#define SH_PREFIX		mf_idhash
#define SH_ELEMENT_TYPE MfIdEntry
#define SH_KEY_TYPE		int64
#define SH_SCOPE		extern
#define SH_DECLARE
#include "lib/simplehash.h"

/*
 * Integer id -> dense index.  Ids in [0, direct_max) go to a plain array
 * (index + 1, or 0 for an absent id), grown on demand up to direct_max;
 * every other id to a hash table.  Ids are usually small and dense, so the
 * array takes nearly all of them.
 */
typedef struct MfIdMap
{
	int32	   *direct;
	int64		direct_size;	/* ids below this have a slot in direct */
	int64		direct_max;
	mf_idhash_hash *hash;
	MemoryContext cxt;
} MfIdMap;

/* An empty map whose direct array may grow to direct_max ids. */
extern MfIdMap *mf_id_map_create(MemoryContext cxt, int64 direct_max);

/* Maps id, which the map must not hold yet, to index. */
extern void mf_id_map_add(MfIdMap *map, int64 id, int32 index);

/*
 * The map of n distinct ascending ids to their positions, with a direct
 * array when the largest id is small enough beside n.
 */
extern MfIdMap *mf_id_map_from_sorted(MemoryContext cxt, const int64 *ids, int32 n);

/*
 * Asks the cache for id's slot of the direct array, to be looked up soon
 * (nothing for an id the array has no slot for).
 */
static inline void
mf_id_map_prefetch(const MfIdMap *map, int64 id)
{
	if ((uint64) id < (uint64) map->direct_size)
		__builtin_prefetch(&map->direct[id]);
}

/* The dense index of id, or -1 when the map does not hold it. */
static inline int32
mf_id_map_find(const MfIdMap *map, int64 id)
{
	MfIdEntry  *entry;

	if ((uint64) id < (uint64) map->direct_max)
		return (uint64) id < (uint64) map->direct_size ? map->direct[id] - 1 : -1;
	entry = mf_idhash_lookup(map->hash, id);
	return entry ? entry->index : -1;
}

/* Text key -> dense index (simplehash over the keys' bytes). */
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

/* The map of keys[0 .. n) (in any order) to their positions. */
extern mf_keymap_hash *mf_key_map(MemoryContext cxt, char *const *keys, int32 n);

/* The position of key, or -1. */
extern int32 mf_key_find(mf_keymap_hash *map, const char *key);

/* qsort comparator of char * keys in byte order. */
extern int	mf_compare_keys(const void *a, const void *b);

#endif							/* MF_IDMAP_H */
