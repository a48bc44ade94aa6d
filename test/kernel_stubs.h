/*
 * kernel_stubs.h -- the PostgreSQL functions that src/kernel.c's setting
 * (mf_ext.kernel) reaches, as empty stand-ins, for programs that include
 * kernel.c outside the server: test/kernel_check.c and the benchmark's
 * test/bench/kernels.c.  Neither defines the setting, so none is called.
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

#endif
