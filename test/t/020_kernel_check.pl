# The Gram kernel (MfKernel.gram) of each of mf_ext's own kernels this CPU
# runs (AVX-512, AVX2, portable C), against sums in double precision:
# test/kernel_check.c, built here with the server's headers and warnings as
# errors, checks every element of the lower triangle and of the right-hand
# side for k = 1 to 300 and rows of 1 to 600 ratings, with and without
# weights, targets and the bias row, that nothing past the system is
# written, and that AVX-512 and AVX2 give the same bits onto an explicit
# solve's start (the penalty on the diagonal); and the scores (MfKernel.scores,
# J's and the fold-in's predictions) against double precision, each row's the
# same bits as that row scored alone.  No server is needed.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test';
use MfTap;

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

my @kernels = mf_own_kernels();
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
# a row's score never depends on the other rows of its call
foreach my $kernel (@kernels)
{
	like(
		$stdout,
		qr/^$kernel scores: 640 calls, each within rounding and the bits of its row alone$/m,
		"$kernel: every score within rounding and the same bits as its row's alone");
}
# the conjugate gradient's product: its sums and each row's dot product
foreach my $kernel (@kernels)
{
	like(
		$stdout,
		qr/^$kernel apply: 2560 calls, every element and dot product within rounding, the dots the scores' bits$/m,
		"$kernel: the CG product within rounding in all 2,560 shapes, its dots the scores' bits");
}
# the vector widths sum the same products in the same order: AVX-512 and
# AVX2 give the same bits (a weighted row's diagonal blocks in rotated form
# had not: the weight fell on either index by where the rotation wrapped)
if (grep { $_ eq 'avx512' } @kernels)
{
	like($stdout, qr/^avx512 and avx2: 2560 calls, the same bits$/m,
		'AVX-512 and AVX2: the same bits in all 2,560 shapes');
}
is($stderr, '', 'nothing on stderr');

done_testing();
