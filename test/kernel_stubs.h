/*
 * kernel_stubs.h -- what the programs that include src/kernel.c outside
 * the server share (test/kernel_check.c and the benchmark's
 * test/bench/kernels.c): the PostgreSQL functions that kernel.c's setting
 * (mf_ext.kernel) reaches, as empty stand-ins (neither program defines the
 * setting, so none is called), and their seeded random numbers.
 */
#ifndef MF_KERNEL_STUBS_H
#define MF_KERNEL_STUBS_H

/* the C library's, not port.h's pg_printf (libpgport is not linked) */
#undef printf
#undef fprintf

char	   *GUC_check_errdetail_string;
char	   *GUC_check_errhint_string;
void
pre_format_elog_string(int errnumber, const char *domain)
{
}
char *
format_elog_string(const char *fmt,...)
{
	return NULL;
}
void
DefineCustomEnumVariable(const char *name, const char *short_desc,
						 const char *long_desc, int *valueAddr, int bootValue,
						 const struct config_enum_entry *options,
						 GucContext context, int flags,
						 GucEnumCheckHook check_hook,
						 GucEnumAssignHook assign_hook,
						 GucShowHook show_hook)
{
}

/* The random numbers' state: each program seeds it at the start of main. */
static uint64_t random_state;

/* A uniform number in [0, 1) (splitmix64). */
static double
uniform(void)
{
	uint64_t	x = (random_state += 0x9E3779B97F4A7C15ULL);

	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return (double) ((x ^ (x >> 31)) >> 11) / 9007199254740992.0;
}

#endif
