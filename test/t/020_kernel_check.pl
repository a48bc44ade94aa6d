# The Gram kernel (MfKernel.gram) of each of mf_ext's own kernels this CPU
# runs (AVX-512, AVX2, portable C), against sums in double precision:
# test/kernel_check.c, built here with the server's headers and warnings as
# errors, checks every element of the lower triangle and of the right-hand
# side for k = 1 to 300 and rows of 1 to 600 ratings, with and without
# weights, targets and the bias row, and that nothing past the system is
# written.  No server is needed.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;

my $pg_config = $ENV{PG_CONFIG} || 'pg_config';
my $include = `$pg_config --includedir-server`;
chomp $include;
my $program = "$PostgreSQL::Test::Utils::tmp_check/kernel_check";

command_ok(
	[
		'gcc', '-O2', '-std=gnu11', '-Wall', '-Wextra', '-Werror',
		'-Wno-unused-parameter', '-Wno-sign-compare', '-Isrc', "-I$include",
		'-o', $program, 'test/kernel_check.c', '-lm'
	],
	'test/kernel_check.c builds');

my $flags = '';
if (open(my $cpuinfo, '<', '/proc/cpuinfo'))
{
	while (<$cpuinfo>)
	{
		if (/^flags\s*:\s*(.*)$/) { $flags = " $1 "; last; }
	}
	close($cpuinfo);
}
my @kernels = ('portable');
push @kernels, 'avx2' if $flags =~ / avx2 / && $flags =~ / fma /;
push @kernels, 'avx512'
  if $flags =~ / avx512f / && $flags =~ / avx2 / && $flags =~ / fma /;
diag('kernels this CPU runs: ' . join(', ', @kernels));

my ($stdout, $stderr);
my $ok = IPC::Run::run([$program], '>', \$stdout, '2>', \$stderr);
diag($stdout) unless $ok;
ok($ok, 'every Gram matrix and right-hand side is the double-precision sum within rounding');
foreach my $kernel (@kernels)
{
	like($stdout, qr/^$kernel: 2560 calls, every element within rounding$/m,
		"$kernel: all 2,560 shapes checked");
}
is($stderr, '', 'nothing on stderr');

done_testing();
