/*-------------------------------------------------------------------------
 *
 * mf_ext.c
 *	  Module entry point and settings, checked allocation, and the memory
 *	  guard every long job checks its estimate against.
 *
 *-------------------------------------------------------------------------
 */
#include "mf_ext.h"
#include "distributed.h"
#include "kernel.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/memutils.h"

PG_MODULE_MAGIC;

/* Setting values; see _PG_init for their meaning. */
int			mf_threads = 0;
int			mf_max_memory_mb = 4096;

static const struct config_enum_entry citus_training_options[] = {
	{"auto", MF_CITUS_TRAINING_AUTO, false},
	{"workers", MF_CITUS_TRAINING_WORKERS, false},
	{"coordinator", MF_CITUS_TRAINING_COORDINATOR, false},
	{NULL, 0, false}
};

void		_PG_init(void);

/*
 * Module load: defines the settings.  OpenBLAS is loaded later, on first
 * use (blas.c), so that the postmaster never loads it even when mf_ext is
 * in shared_preload_libraries.
 */
void
_PG_init(void)
{
	DefineCustomIntVariable("mf_ext.threads",
							"Threads mf_train uses to solve users and items (0: every online core).",
							"Each thread solves whole rows, so the model is the same for any value.",
							&mf_threads,
							0, 0, MF_MAX_THREADS,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("mf_ext.max_memory",
							"Largest amount of memory one mf_train may use.",
							"mf_train estimates its memory from the data's counts and refuses, before allocating, to go above this.",
							&mf_max_memory_mb,
							4096, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_MB,
							NULL, NULL, NULL);
	DefineCustomEnumVariable("mf_ext.citus_training",
							 "Where mf_train solves a hash-distributed Citus table: auto, workers or coordinator.",
							 "auto solves each half-step on the workers that hold the shards when the options allow it, else reads the ratings onto the coordinator; workers refuses what they cannot solve; coordinator always reads the ratings onto the coordinator.",
							 &mf_citus_training,
							 MF_CITUS_TRAINING_AUTO, citus_training_options,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	mf_kernel_define_setting();
	MarkGUCPrefixReserved("mf_ext");
}

/*
 * The whole pages an array of bytes bytes touches, [*first, *end): a large
 * palloc is a mapping of its own, so advice over them keeps it one mapping.
 */
static void
array_pages(void *array, Size bytes, uintptr_t *first, uintptr_t *end)
{
	Size		page = (Size) sysconf(_SC_PAGESIZE);

	*first = TYPEALIGN_DOWN(page, (uintptr_t) array);
	*end = TYPEALIGN(page, (uintptr_t) array + bytes);
}

void *
mf_advise_huge_pages(void *array, Size bytes)
{
	Assert(array != NULL);
#ifdef MADV_HUGEPAGE
	if (bytes >= MF_HUGE_PAGE_ARRAY)
	{
		uintptr_t	first,
					end;

		array_pages(array, bytes, &first, &end);
		(void) madvise((void *) first, end - first, MADV_HUGEPAGE);
	}
#endif
	return array;
}

/* Linux's value (asm-generic/mman-common.h), which glibc before 2.37 lacks. */
#if defined(__linux__) && !defined(MADV_COLLAPSE)
#define MADV_COLLAPSE	25
#endif

/* Bytes of an array collapsed into huge pages between two looks for interrupts. */
#define MF_COLLAPSE_STEP		((Size) 16 * 1024 * 1024)

/*
 * Whether transparent huge pages are on for memory that asks for them:
 * "always" or "madvise" in /sys/kernel/mm/transparent_hugepage/enabled,
 * read once per backend.  MADV_HUGEPAGE is ignored under "never", but
 * MADV_COLLAPSE is not (Linux applies it whatever the setting), so the
 * collapse asks this first: an administrator's "never", a common advice
 * for database servers, holds.
 */
static bool
transparent_huge_pages_on(void)
{
	static int	on = -1;

	if (on < 0)
	{
		FILE	   *file = AllocateFile("/sys/kernel/mm/transparent_hugepage/enabled", "r");
		char		line[128];

		on = file != NULL && fgets(line, sizeof(line), file) != NULL &&
			strstr(line, "[never]") == NULL;
		if (file != NULL)
			FreeFile(file);
	}
	return on;
}

void
mf_collapse_huge_pages(void *array, Size bytes)
{
	Assert(array != NULL);
#ifdef MADV_COLLAPSE
	if (bytes >= MF_HUGE_PAGE_ARRAY && transparent_huge_pages_on())
	{
		uintptr_t	first,
					end,
					next;

		array_pages(array, bytes, &first, &end);
		/* steps end on multiples of the step, so that none splits a huge page */
		for (uintptr_t from = first; from < end; from = next)
		{
			next = Min(end, TYPEALIGN_DOWN(MF_COLLAPSE_STEP, from + MF_COLLAPSE_STEP));
			CHECK_FOR_INTERRUPTS();
			/* a hint: refused (before Linux 6.1, or no huge page free), nothing changes */
			(void) madvise((void *) from, next - from, MADV_COLLAPSE);
		}
	}
#endif
}

void *
mf_alloc_array(MemoryContext cxt, Size count, Size size)
{
	Size		bytes = mul_size(Max(count, 1), size);

	return mf_advise_huge_pages(MemoryContextAllocHuge(cxt, bytes), bytes);
}

/*
 * Bytes copied or zeroed between looks for interrupts: at most 40 ms of
 * first touch at 10 us a 4 kB page.
 */
#define MF_CHECKED_CHUNK	((Size) 16 * 1024 * 1024)

void
mf_copy_checked(void *to, const void *from, Size bytes)
{
	for (Size done = 0; done < bytes; done += MF_CHECKED_CHUNK)
	{
		CHECK_FOR_INTERRUPTS();
		memcpy((char *) to + done, (const char *) from + done, Min(MF_CHECKED_CHUNK, bytes - done));
	}
}

void
mf_zero_checked(void *to, Size bytes)
{
	for (Size done = 0; done < bytes; done += MF_CHECKED_CHUNK)
	{
		CHECK_FOR_INTERRUPTS();
		memset((char *) to + done, 0, Min(MF_CHECKED_CHUNK, bytes - done));
	}
}

/* The first block of an MfStrings. */
#define MF_STRINGS_FIRST_BLOCK	((Size) 8 * 1024)

void
mf_strings_init(MfStrings *strings, MemoryContext cxt)
{
	strings->cxt = cxt;
	strings->free = NULL;
	strings->left = 0;
	strings->last_block = 0;
}

/* length bytes at bytes copied to to, a NUL after them; returns to. */
static char *
copy_terminated(char *to, const char *bytes, Size length)
{
	memcpy(to, bytes, length);
	to[length] = '\0';
	return to;
}

char *
mf_strings_copy(MfStrings *strings, const char *bytes, Size length)
{
	Size		size = add_size(length, 1);
	char	   *copy;

	if (size > strings->left)
	{
		Size		block = strings->last_block == 0 ? MF_STRINGS_FIRST_BLOCK
			: Min(strings->last_block * 2, MF_HUGE_PAGE_ARRAY);

		/* a look for interrupts at least every 8 MB copied (keys may be long) */
		CHECK_FOR_INTERRUPTS();

		/*
		 * Larger blocks for long strings: each string of 110 kB on its own
		 * had been a block of glibc's heap, and freeing thousands of them,
		 * at an error too, shrank the heap once each (0.5 s for 4,000).
		 */
		while (size > block / 8 && block < MF_HUGE_PAGE_ARRAY)
			block *= 2;
		if (size > block / 8)
			return copy_terminated(MemoryContextAllocHuge(strings->cxt, size), bytes, length);
		strings->free = mf_alloc_array(strings->cxt, block, 1);
		strings->left = block;
		strings->last_block = block;
	}
	copy = copy_terminated(strings->free, bytes, length);
	strings->free += size;
	strings->left -= size;
	return copy;
}

void *
mf_alloc_aligned(MemoryContext cxt, Size count, Size size)
{
	char	   *raw = mf_alloc_array(cxt, 1, add_size(mul_size(Max(count, 1), size),
												  MF_ALIGNMENT + sizeof(void *)));
	char	   *aligned = (char *) TYPEALIGN(MF_ALIGNMENT, raw + sizeof(void *));

	((void **) aligned)[-1] = raw;	/* for mf_free_aligned */
	return aligned;
}

void
mf_free_aligned(void *pointer)
{
	pfree(((void **) pointer)[-1]);
}

void
mf_memory_add(MfMemory *memory, Size count, Size size)
{
	memory->bytes = add_size(memory->bytes, mul_size(count, size));
}

void
mf_memory_check(const MfMemory *memory, const char *what, const char *detail,
				const char *hint)
{
	Size		limit = (Size) mf_max_memory_mb * 1024 * 1024;

	if (memory->bytes > limit)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s would need about %zu MB of memory, more than mf_ext.max_memory (%d MB)",
						what, memory->bytes / (1024 * 1024) + 1, mf_max_memory_mb),
				 errdetail("%s", detail),
				 errhint("%s", hint ? hint
						 : "Raise mf_ext.max_memory (a superuser setting), lower k or mf_ext.threads, or train on a sample of the ratings.")));
}

double
mf_seconds_since(instr_time start)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	return INSTR_TIME_GET_DOUBLE(now);
}

/* A role as a message names it: its name quoted, or its OID once dropped. */
static const char *
role_for_message(Oid role)
{
	char	   *name = GetUserNameFromId(role, true);

	return name ? psprintf("\"%s\"", name) : psprintf("a role dropped since (OID %u)", role);
}

void
mf_check_role_kept(Oid role, const char *what, const char *detail, const char *hint)
{
	if (GetUserId() == role)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s changed the current role from %s to %s",
					what, role_for_message(role), role_for_message(GetUserId())),
			 errdetail("%s", detail),
			 errhint("%s", hint)));
}

char *
mf_id_for_message(const char *bytes, size_t length)
{
	if (length <= 100)
		return pnstrdup(bytes, length);
	return psprintf("%.*s...", pg_mbcliplen(bytes, (int) length, 100), bytes);
}

char *
mf_text_for_message(const char *text)
{
	StringInfoData shown;

	initStringInfo(&shown);
	escape_json(&shown, mf_id_for_message(text, strlen(text)));
	return shown.data;
}

MfIdParse
mf_parse_id(const char *text, int64 *id)
{
	char	   *end;
	int64		value;

	errno = 0;
	value = strtoi64(text, &end, 10);
	if (end == text)
		return MF_ID_NOT_INTEGER;
	while (isspace((unsigned char) *end))
		end++;
	if (*end != '\0')
		return MF_ID_NOT_INTEGER;
	if (errno == ERANGE)
		return MF_ID_OUT_OF_RANGE;
	if (errno != 0)
		return MF_ID_NOT_INTEGER;
	*id = value;
	return MF_ID_OK;
}

/* Elements per run qsort sorts at once, and merged between interrupt checks. */
#define MF_SORT_RUN		16384

/* Merges the sorted runs from[lo, mid) and from[mid, hi) into to[lo, hi). */
static void
merge_runs(const char *from, char *to, Size lo, Size mid, Size hi, Size size,
		   int (*compare) (const void *, const void *))
{
	Size		a = lo;
	Size		b = mid;

	for (Size out = lo; out < hi; out++)
	{
		bool		take_a = b >= hi || (a < mid && compare(from + a * size, from + b * size) <= 0);

		memcpy(to + out * size, from + (take_a ? a++ : b++) * size, size);
		if ((out - lo) % MF_SORT_RUN == MF_SORT_RUN - 1)
			CHECK_FOR_INTERRUPTS();
	}
}

int
mf_compare_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

int
mf_compare_int32(const void *a, const void *b)
{
	int32		x = *(const int32 *) a;
	int32		y = *(const int32 *) b;

	return (x > y) - (x < y);
}

void
mf_sort(void *base, Size n, Size size, int (*compare) (const void *, const void *))
{
	char	   *from = base;
	char	   *to;

	for (Size lo = 0; lo < n; lo += MF_SORT_RUN)
	{
		qsort(from + lo * size, Min(MF_SORT_RUN, n - lo), size, compare);
		CHECK_FOR_INTERRUPTS();
	}
	if (n <= MF_SORT_RUN)
		return;
	to = mf_alloc_array(CurrentMemoryContext, n, size);
	for (Size width = MF_SORT_RUN; width < n; width *= 2)
	{
		char	   *swap;

		for (Size lo = 0; lo < n; lo += 2 * width)
			merge_runs(from, to, lo, Min(lo + width, n), Min(lo + 2 * width, n), size, compare);
		swap = from;
		from = to;
		to = swap;
	}
	if (from != base)
	{
		memcpy(base, from, n * size);
		pfree(from);
	}
	else
		pfree(to);
}
