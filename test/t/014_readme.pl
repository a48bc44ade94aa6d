# The README runs as written: every ```sql block of README.md, top to bottom,
# through one psql run (psql -X, its default output, ON_ERROR_STOP) on a new
# cluster where nothing has been created (setup steps \c to new databases),
# and every output the README shows equals what psql printed.  The runner is
# test/ReadmeRun.pm; by hand, as the postgres user with the extension
# installed: `pg_virtualenv perl test/ReadmeRun.pm --print`.
#
# The convention, for README authors:
#
# - Every ```sql block runs, in README order, in that one run (after the
#   blocks and setup steps above it: tables, models and roles they created
#   are there).  It must end its last statement with ';'.  A block that must
#   not run (it needs a second session, say) is marked on the line just
#   before its fence, with the reason:
#       <!-- readme-run skip: WHY -->
#   Blocks in other languages (```sh) and plain ``` blocks never run.
# - A plain ``` block that starts on the line right after a ```sql block's
#   closing fence is that block's output: everything psql prints for the
#   whole block (each result table with its "(N rows)" footer, blank lines
#   between tables; messages such as NOTICEs go to stderr and are not
#   compared), so a block whose output is shown holds only the queries it
#   shows.  A plain block after prose or a blank line (signatures, output
#   from elsewhere) is not compared.
# - Steps a reader does not see (a new database, data the README says to
#   load) are an HTML comment, run at that point like a block, output not
#   compared, errors fatal:
#       <!-- readme-run setup: WHY
#       psql input (SQL, \c, \i test/...)
#       -->
#   Keep them few, and say in the README what they stand for.
# - Comparison: line by line, each line split at '|' and its cells trimmed
#   (so column widths may differ), trailing whitespace and leading/trailing
#   blank lines ignored; in each cell the text around numbers exactly,
#   integers exactly, other numbers within a relative 1e-4 or one unit in the
#   last digit the README shows (the last digits of scores depend on the
#   CPU's kernels; a rounded value may fall on the other side).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(time);
use lib 'test';
use MfTap;
use ReadmeRun;
use Test::More;

# Every ```sql fence of the README, counted apart from the runner's parser.
open my $fh, '<', 'README.md' or die "README.md: $!";
my $sql_blocks = grep { /^\s*```\s*sql/i } <$fh>;
close $fh;
cmp_ok($sql_blocks, '>', 0, 'README.md has ```sql blocks');

my $node = mf_cluster('readme');
$node->start;

my $started = time;
my @results = ReadmeRun::check_readme(
	[ $node->installed_command('psql'), '-d', $node->connstr('postgres') ], 'README.md');
note(sprintf('the README ran in %.1f s', time - $started));

my ($run, $skipped, $compared) = (0, 0, 0);
for my $r (@results)
{
	if ($r->{skipped})
	{
		$skipped++;
		note($r->{what});
		next;
	}
	$run++ if $r->{step} && $r->{step}{kind} eq 'sql';
	$compared++ if $r->{compared};
	ok($r->{ok}, $r->{what});
	if ($r->{compared})
	{
		note("psql printed:\n$r->{out}");
	}
	next if $r->{ok};
	diag($r->{problem});
	for my $part ([ 'output', $r->{out} ], [ 'messages', $r->{err} ])
	{
		my @lines = split /\n/, $part->[1] // '';
		next unless @lines;
		splice(@lines, 100, @lines - 100, '...') if @lines > 100;
		diag("its $part->[0]:\n" . join("\n", @lines));
	}
}
is($run + $skipped, $sql_blocks, 'every ```sql block ran (or is marked skip, with its reason)');
cmp_ok($compared, '>', 0, 'outputs were compared');

$node->stop;
done_testing();
