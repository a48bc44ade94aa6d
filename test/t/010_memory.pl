# mf_ext.max_memory bounds what a call holds, whatever the rows are like:
# rows of huge text ids (20 MB each, 60 of them) are refused once their
# keys exceed the limit, before they are all held (they were counted only
# per 65,536 rows, and the rows of a view were fetched 10,000 at a time:
# a 32 MB limit let a backend reach 2.4 GB).  The backend's peak resident
# memory (VmHWM) is read from /proc.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use lib 'test';
use MfTap;
use Test::More;

my $node = mf_node('memory', "mf_ext.max_memory = '32MB'");
$node->safe_psql('postgres', 'CREATE ROLE nobody1 LOGIN');

# The peak resident memory of a session's backend after running sql, in MB,
# and the error sql gave.
sub peak_after
{
	my ($sql) = @_;
	my $session = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $session->query_safe('SELECT pg_backend_pid()');
	$session->query($sql);
	my $error = $session->{stderr};
	open(my $status, '<', "/proc/$pid/status") or die "no /proc/$pid/status: $!";
	my ($peak) = map { /^VmHWM:\s+(\d+) kB/ ? $1 : () } <$status>;
	close($status);
	$session->quit;
	return ($peak / 1024, $error);
}

my $huge_keys = q{
	SELECT CASE WHEN g = 1 THEN 'a' ELSE repeat('x', 20000000) || g END AS user_id,
	       g % 3 AS item_id, 1.0::float8 AS rating
	FROM generate_series(1, 60) g};

foreach my $case (
	[ 'a view, read through SPI', "SET ROLE nobody1; CREATE TEMP VIEW bigkeys AS $huge_keys; "
		  . "SELECT * FROM mf_cross_validate('bigkeys', ARRAY[1], ARRAY[1.0], folds := 2, biases := true)" ],
	[ 'a table, read by a heap scan', "SET ROLE nobody1; CREATE TEMP TABLE bigkeys AS $huge_keys; "
		  . "SELECT * FROM mf_cross_validate('bigkeys', ARRAY[1], ARRAY[1.0], folds := 2, biases := true)" ],
	[ 'mf_train on a view', "CREATE TEMP VIEW bigkeys AS $huge_keys; "
		  . "SELECT mf_train('bigkeys', k := 1)" ])
{
	my ($what, $sql) = @$case;
	my ($peak, $error) = peak_after($sql);
	like($error, qr/more than mf_ext.max_memory \(32 MB\)/, "$what: refused for max_memory");
	diag(sprintf('%s: peak resident memory %.0f MB', $what, $peak));
	cmp_ok($peak, '<', 400, "$what: the backend stayed far below the 1.2 GB of keys");
}

# mf_recommend_all's rows of 1 MB text keys go to the table a few
# megabytes at a time (1,000 rows of them at a time reached 4 GB under a
# 32 MB limit), and their longest keys are counted against max_memory.
$node->safe_psql('postgres', q{
	SET mf_ext.max_memory = '1GB';
	SET client_min_messages = warning;
	CREATE TABLE long_keys AS
	SELECT 'u' || u || repeat('x', 1048576) AS user_id, 'i' || i || repeat('y', 1048576) AS item_id,
	       ((u * i) % 5)::float8 AS rating
	FROM generate_series(1, 20) u, generate_series(1, 50) i WHERE (u + i) % 3 <> 0;
	SELECT mf_train('long_keys', k := 2, lambda := 1);
});
my ($peak, $error) = peak_after(
	"SELECT mf_recommend_all('long_keys', 50, false, 'long_keys_top')");
is($error, '', 'mf_recommend_all of 1 MB keys under a 32 MB limit runs');
is($node->safe_psql('postgres', 'SELECT count(*) FROM long_keys_top'), '1000',
	'and writes every row');
diag(sprintf('mf_recommend_all, 1,000 rows of 1 MB keys: peak resident memory %.0f MB', $peak));
cmp_ok($peak, '<', 400, 'mf_recommend_all of 1 MB keys: the backend stayed far below the 2 GB of rows');
($peak, $error) = peak_after(
	"SET mf_ext.max_memory = '10MB'; SELECT mf_recommend_all('long_keys', 50, false, 'long_keys_refused')");
like($error, qr/mf_recommend_all would need about \d+ MB of memory, more than mf_ext.max_memory \(10 MB\)/,
	'and is refused below what its rows of keys need');


# Training holds 20 bytes a rating at its peak (the rows read and the first
# side's sparse rows, then both sides' rows, ratings that are floats kept as
# floats), plus the factors and small per-id arrays: 4,000,000 ratings in
# random order (two counting sorts, the items' rows sorted between them)
# stay within 20 B a rating and 16 MB,
# on one thread and on two (where a second thread faults the rows' arrays
# in while they are read, backed by huge pages); 0.4 held 40 B a rating,
# 0.5 before single-precision rows 24.6.  The backend's private memory
# (RssAnon: not the shared buffers it touches) is sampled from /proc every
# 10 ms by a child process.
$node->safe_psql('postgres', q{
	CREATE TABLE four_million (user_id integer, item_id integer, rating real);
	INSERT INTO four_million
	SELECT g % 40000, abs(hashint4(g) % 2000), 1 + g % 5
	FROM generate_series(1, 4000000) g ORDER BY hashint4(g);
	VACUUM ANALYZE four_million;
});

# How much a training on threads threads grows the backend's RssAnon at its peak.
sub training_grows_by
{
	my ($source, $threads) = @_;
	my $session = $node->background_psql('postgres');
	my $pid = $session->query_safe('SELECT pg_backend_pid()');
	my $rss_anon = sub {
		open(my $status, '<', "/proc/$pid/status") or return 0;
		my ($kb) = map { /^RssAnon:\s+(\d+) kB/ ? $1 : () } <$status>;
		close($status);
		return ($kb // 0) * 1024;
	};
	$session->query_safe(qq{SET mf_ext.max_memory = '1GB'; SET mf_ext.threads = $threads;
		SET client_min_messages = warning});
	my $before = $rss_anon->();
	my $peak_file = "$PostgreSQL::Test::Utils::tmp_check/rss_peak";
	unlink($peak_file);
	my $sampler = fork();
	if ($sampler == 0)
	{
		my $peak = 0;
		while (1)
		{
			my $rss = $rss_anon->();
			if ($rss > $peak)
			{
				$peak = $rss;
				open(my $out, '>', $peak_file) or die;
				print $out $peak;
				close($out);
			}
			select(undef, undef, undef, 0.01);
		}
	}
	my $model = $session->query_safe(qq{SELECT mf_train('$source', k := 4, iterations := 1)});
	kill 'KILL', $sampler;
	waitpid($sampler, 0);
	my $factors = $session->query_safe(qq{
		SELECT (SELECT md5(string_agg(factors::text, ';' ORDER BY user_id))
				FROM mf_user_factors WHERE model_id = $model) ||
			   (SELECT md5(string_agg(factors::text, ';' ORDER BY item_id))
				FROM mf_item_factors WHERE model_id = $model)});
	$session->quit;
	open(my $in, '<', $peak_file) or die "no $peak_file: $!";
	my $grown = <$in> - $before;
	close($in);
	return ($grown, $factors);
}

# On two threads the arrays read are faulted in by the second thread and
# backed by huge pages again once read (16 MB each here); the model is the
# one thread's, bit for bit.
my %factors_on;
foreach my $threads (1, 2)
{
	my $grown;
	($grown, $factors_on{$threads}) = training_grows_by('four_million', $threads);
	diag(sprintf('mf_train of 4,000,000 ratings on %d thread(s): the backend grew by %.1f bytes a rating',
		$threads, $grown / 4e6));
	cmp_ok($grown, '<', 20 * 4e6 + 16 * 1048576,
		"mf_train of 4,000,000 ratings in random order on $threads thread(s): at most 20 bytes a rating and 16 MB");
}
is($factors_on{2}, $factors_on{1}, 'the 4,000,000 ratings give the same factors on one thread and on two');

# On two threads the first counting sort writes its buckets into spares
# the second thread faulted in while the rows were read.  The same
# ratings in user order use only the spare ratings (the spare columns are
# never touched: 16 bytes a rating at the peak, as without spares); rows
# that leave user order halfway have the spare columns faulted in from
# then on; ratings that are not floats widen the spare ratings to double
# precision.  Each gives the one thread's factors, bit for bit.
$node->safe_psql('postgres', q{
	CREATE TABLE in_user_order AS SELECT * FROM four_million ORDER BY user_id, item_id;
	CREATE TABLE order_left_halfway AS
		SELECT * FROM (SELECT * FROM four_million WHERE user_id < 20000 ORDER BY user_id, item_id) a
		UNION ALL SELECT * FROM (SELECT * FROM four_million WHERE user_id >= 20000) b;
	CREATE TABLE not_floats AS SELECT user_id, item_id, rating + 0.1::float8 AS rating FROM four_million;
	VACUUM ANALYZE in_user_order;
	VACUUM ANALYZE order_left_halfway;
	VACUUM ANALYZE not_floats;
});
foreach my $source ('in_user_order', 'order_left_halfway', 'not_floats')
{
	my ($grown, $two) = training_grows_by($source, 2);
	my (undef, $one) = training_grows_by($source, 1);
	is($two, $one, "$source: the same factors on one thread and on two (the spares)");
	next unless $source eq 'in_user_order';
	diag(sprintf('mf_train of 4,000,000 ratings in user order on 2 threads: the backend grew by %.1f bytes a rating',
		$grown / 4e6));
	cmp_ok($grown, '<', 16 * 4e6 + 16 * 1048576,
		'mf_train of 4,000,000 ratings in user order on 2 threads: at most 16 bytes a rating and 16 MB (the spare columns untouched)');
}

# Rows not in user order: each item's row is sorted by user in the cache,
# a pair's ratings by value there (up to 16 of them; a pair rated more
# often is sorted on the backend's thread), and the users' rows are their
# transpose, placed in blocks of users.  Rows in user order are indexed
# the other way round (the users' rows as read, their transpose the
# items'), and the training must not depend on the order: pairs rated 17
# and 1,000 times, in random order on one thread and on two and in user
# order (a pair's ratings in descending order there), give the same
# factors, bit for bit.
$node->safe_psql('postgres', q{
	CREATE TABLE repeated_pairs AS SELECT * FROM (
		SELECT * FROM four_million
		UNION ALL SELECT 7, 3, 1 + g % 5 FROM generate_series(1, 1000) g
		UNION ALL SELECT 11, 5, 5 - g % 4 FROM generate_series(1, 17) g) r
	ORDER BY hashint8(user_id * 7919 + item_id * 31 + rating::integer);
	CREATE TABLE repeated_pairs_in_user_order AS
		SELECT * FROM repeated_pairs ORDER BY user_id, item_id, rating DESC;
	VACUUM ANALYZE repeated_pairs;
	VACUUM ANALYZE repeated_pairs_in_user_order;
});
my (undef, $random_one) = training_grows_by('repeated_pairs', 1);
my (undef, $random_two) = training_grows_by('repeated_pairs', 2);
my (undef, $ordered_two) = training_grows_by('repeated_pairs_in_user_order', 2);
is($random_two, $random_one,
	'pairs rated 17 and 1,000 times in random order: the same factors on one thread and on two');
is($ordered_two, $random_one, 'and the same factors as the same rows in user order give');

# The second thread faults the arrays in no more than 16 MB ahead of the
# rows read: a planner's estimate of 4,000,000 rows for a table that has
# kept 4,000 of them (no autovacuum since) makes at most that resident, not
# the 80 MB the estimate's rows would take (48 MB of rows read, 32 MB of
# spares).
$node->safe_psql('postgres', q{
	CREATE TABLE stale_estimate WITH (autovacuum_enabled = false) AS SELECT * FROM four_million;
	ANALYZE stale_estimate;
	DELETE FROM stale_estimate WHERE user_id >= 40;
});
is($node->safe_psql('postgres',
		q{SELECT reltuples > 3e6 FROM pg_class WHERE relname = 'stale_estimate'}),
	't', 'the estimate of the table left with 4,000 rows is still 4,000,000');
my ($stale_grown) = training_grows_by('stale_estimate', 2);
diag(sprintf('mf_train of 4,000 ratings estimated at 4,000,000, two threads: the backend grew by %.1f MB',
	$stale_grown / 1048576));
# The bound: the 16 MB window (of the three arrays read and the two spares
# the first sort writes into, together), the 2 MB huge page each of the five
# may end in, and 6 MB for the rest of the training (17.4-21.9 MB measured
# in five runs on 2026-12-05 with three arrays; 24 MB had been the bound,
# too close).
cmp_ok($stale_grown, '<', (16 + 5 * 2 + 6) * 1048576,
	'a stale estimate makes at most the 16 MB window resident (and the huge pages it ends in), not 80 MB');

$node->stop;
done_testing();
