# Cancelling a large, threaded training (pg_cancel_backend and
# statement_timeout) returns promptly, joins the worker threads, and leaves
# the previous model as it was.  The time it takes is printed; the bound
# asserted is the 1 s the hardening issue asks for (measured: under 0.1 s).
# A cancel while the cache builds the items' codes leaves no memory behind.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use lib 'test';
use MfTap;
use Test::More;
use Time::HiRes qw(time);

my $node = mf_node('cancel');

# 1M ratings: 5,000 users x 200 items at random.
$node->safe_psql('postgres', random_ratings(5000, 200));
$node->safe_psql('postgres', q{
	SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 8, iterations := 1);
});
my $fingerprint = q{SELECT md5(string_agg(factors::text, ';' ORDER BY user_id))
	FROM mf_user_factors WHERE model_id = (SELECT model_id FROM mf_models WHERE name = 'ratings')};
my $before = $node->safe_psql('postgres', $fingerprint);

my $trainer = $node->background_psql('postgres', on_error_stop => 0);
$trainer->query_safe('SET client_min_messages = warning');
$trainer->query_safe('SET mf_ext.threads = 2');
my $trainer_pid = $trainer->query_safe('SELECT pg_backend_pid()');

# pg_cancel_backend at several points: reading, indexing, iterating.
foreach my $delay (0.3, 1.0, 3.0)
{
	$trainer->query_until(qr/started/, qq{\\echo started
		SELECT mf_train('ratings', k := 64, iterations := 1000);
	});
	select(undef, undef, undef, $delay);
	my $sent = time();
	$node->safe_psql('postgres', "SELECT pg_cancel_backend($trainer_pid)");
	ok( $node->poll_query_until('postgres',
			"SELECT state <> 'active' FROM pg_stat_activity WHERE pid = $trainer_pid"),
		"cancel after ${delay}s ends the training");
	my $took = time() - $sent;
	diag(sprintf('cancel after %.1fs: back in %.3fs', $delay, $took));
	cmp_ok($took, '<', 1, "cancel after ${delay}s is back within 1 s");
	my ($out, $failed) = $trainer->query('SELECT 1');
	like($trainer->{stderr}, qr/canceling statement due to user request/,
		"cancel after ${delay}s reports the cancel");
	$trainer->{stderr} = '';
}

# statement_timeout the same way.
my $sent = time();
my ($out, $failed) = $trainer->query(
	"SET statement_timeout = '2s'; SELECT mf_train('ratings', k := 64, iterations := 1000)");
my $took = time() - $sent;
like($trainer->{stderr}, qr/canceling statement due to statement timeout/,
	'statement_timeout stops the training');
diag(sprintf('statement_timeout 2s: back after %.3fs', $took));
cmp_ok($took, '<', 3, 'statement_timeout of 2 s is back within 1 s of it');

# A cross-validation grid past 1 GB (9,000,000 lambdas, the last a repeat:
# about 2.4 GB of grid points and of the table its values are looked for
# repeats in) is built as a huge allocation, point by point, with looks for
# a cancel: it had failed with "invalid memory alloc request size", and a
# sort of its values, then its zeroing, had held a cancel off for seconds.
$node->safe_psql('postgres', q{CREATE TABLE grid_values AS
	SELECT ARRAY(SELECT g * 1e-6::float8 FROM generate_series(1, 9000000) g) || 1e-6::float8 AS lambdas});
my $huge_grid = "SELECT count(*) FROM mf_cross_validate('ratings', ARRAY[2],"
  . " (SELECT lambdas FROM grid_values), iterations := 1)";
$trainer->{stderr} = '';
$trainer->query("SET statement_timeout = 0; $huge_grid");
like($trainer->{stderr}, qr/ERROR:  lambdas lists 1e-06 more than once/,
	'a grid of 9,000,000 points is built, and its repeated lambda named');
$trainer->{stderr} = '';
$sent = time();
$trainer->query("SET statement_timeout = '1s'; $huge_grid");
$took = time() - $sent;
like($trainer->{stderr}, qr/canceling statement due to statement timeout/,
	'... statement_timeout stops the building');
diag(sprintf('cross-validation grid, statement_timeout 1s: back after %.3fs', $took));
cmp_ok($took, '<', 2, '... within 1 s of it');
$trainer->query('SET statement_timeout = 0');
$trainer->{stderr} = '';

# A pair repeated 300,000 times, its values falling in runs (ordering a
# pair's duplicates was quadratic, and deaf to interrupts):
# statement_timeout still stops the training within 1 s of it.
$node->safe_psql('postgres', q{
	CREATE TABLE logged AS SELECT * FROM ratings
	UNION ALL SELECT 1, 1, 5 - g % 5 FROM generate_series(1, 300000) g;
});
$sent = time();
($out, $failed) = $trainer->query(
	"SET statement_timeout = '2s'; SELECT mf_train('logged', k := 64, iterations := 1000, double_precision := true)");
$took = time() - $sent;
like($trainer->{stderr}, qr/canceling statement due to statement timeout/,
	'statement_timeout stops a training on a pair repeated 300,000 times');
diag(sprintf('statement_timeout 2s, 300,000 duplicates: back after %.3fs', $took));
cmp_ok($took, '<', 3, 'and is back within 1 s of it');

# mf_recommend_all stopped at several points (while it reads rated items,
# ranks on threads and writes rows): it either finishes or fails with the
# timeout, and then leaves no table behind.
# (psql's error output may come in after the next query's: both are read)
$trainer->query("SET statement_timeout = 0");
$trainer->{stderr} = '';
my $cancelled = 0;
foreach my $timeout_ms (1, 10, 100, 1000, 60000)
{
	my $target = "top_$timeout_ms";
	$trainer->query("SET statement_timeout = '${timeout_ms}ms'; "
		  . "SELECT mf_recommend_all((SELECT max(model_id) FROM mf_models), 50, true, '$target')");
	$trainer->query("SET statement_timeout = 0");
	my $stopped = $trainer->{stderr} =~ /canceling statement due to statement timeout/;
	$trainer->{stderr} = '';
	my $exists = $node->safe_psql('postgres', "SELECT to_regclass('$target') IS NOT NULL");
	if ($stopped)
	{
		$cancelled++;
		is($exists, 'f', "mf_recommend_all stopped after ${timeout_ms}ms leaves no table");
	}
	else
	{
		is($node->safe_psql('postgres', "SELECT count(*) FROM $target"), 5000 * 50,
			"mf_recommend_all given ${timeout_ms}ms wrote every row");
	}
}
cmp_ok($cancelled, '>', 0, 'some mf_recommend_all calls were stopped by the timeout');
diag("mf_recommend_all: $cancelled of 5 runs stopped by statement_timeout");
cmp_ok($cancelled, "<", 5, "mf_recommend_all given a minute finished");

# Sorting millions of text keys is stopped too (qsort could not be
# interrupted: a timeout came 10-15 s late): statement_timeout at three
# points of a training on 1,500,000 distinct text keys is back within 1 s
# of each.  (The stopped runs ask for 1,000 iterations where the timed
# one ran one, so that a run however much faster than the timed one, on a
# machine whose load fell meanwhile, still meets its timeout: 50
# iterations finished first once, when the timed run had taken 24.7 s and
# the stopped one 16.4 s.)
# Runs sql under a statement_timeout of timeout_ms: it must be stopped by
# it (test name) and be back within 1 s of it; what names it in the log.
sub stopped_within_a_second
{
	my ($sql, $timeout_ms, $name, $what) = @_;
	my $sent = time();
	$trainer->query("SET statement_timeout = '${timeout_ms}ms'; $sql");
	my $took = time() - $sent;
	$trainer->query("SET statement_timeout = 0");
	like($trainer->{stderr}, qr/canceling statement due to statement timeout/, $name);
	$trainer->{stderr} = '';
	diag(sprintf('statement_timeout %dms, %s: back after %.3fs', $timeout_ms, $what, $took));
	cmp_ok($took, '<', $timeout_ms / 1000 + 1, 'and is back within 1 s of it');
}

$node->safe_psql('postgres', q{
	CREATE TABLE keyed AS
	SELECT md5(g::text) AS user_id, g % 50 AS item_id, 1 + g % 5 AS rating
	FROM generate_series(1, 1500000) g;
});
$trainer->query("SET statement_timeout = 0");
$sent = time();
$trainer->query_safe("SELECT mf_train('keyed', k := 1, iterations := 1)");
my $whole = time() - $sent;
diag(sprintf('training on 1,500,000 text keys: %.1fs', $whole));
foreach my $share (0.3, 0.55, 0.8)
{
	my $timeout_ms = int($whole * $share * 1000);
	stopped_within_a_second("SELECT mf_train('keyed', k := 1, iterations := 1000)", $timeout_ms,
		"statement_timeout of ${timeout_ms}ms stops the training on text keys", 'text keys');
}

# One row of millions of ratings is stopped half-way too (a row was one
# task, and a cancel waited for it: 6-8 s late): statement_timeout at three
# points of a training where user 1 has 3,000,000 ratings (of 2,000 items,
# each many times), and during a fold-in of a new user's 6,000,000 ratings,
# is back within 1 s (the stopped trainings ask for 1,000 iterations where
# the timed one ran 2; the fold-in, twice the timed one's ratings, is stopped
# at 40% of the timed one's length; its arguments are bigint[] and
# float8[], as mf_fold_in takes them, so that no cast of millions of
# elements, deaf to interrupts, comes first).
$node->safe_psql('postgres', q{
	CREATE TABLE heavy AS
	SELECT 1 AS user_id, 1 + g % 2000 AS item_id, 1 + g % 5 AS rating FROM generate_series(1, 3000000) g
	UNION ALL SELECT u, 1 + (u * 7919) % 2000, 3 FROM generate_series(2, 3000) u;
	CREATE TABLE heavy_new_user AS
	SELECT array_agg(1 + g::bigint % 2000) AS items, array_agg((1 + g % 5)::float8) AS ratings
	FROM generate_series(1, 3000000) g;
	CREATE TABLE heavy_new_user_twice AS
	SELECT items || items AS items, ratings || ratings AS ratings FROM heavy_new_user;
});
$trainer->query("SET statement_timeout = 0");
$sent = time();
$trainer->query_safe("SELECT mf_train('heavy', k := 64, lambda := 1, iterations := 2)");
$whole = time() - $sent;
diag(sprintf('training with a row of 3,000,000 ratings: %.1fs', $whole));
foreach my $share (0.4, 0.6, 0.8)
{
	my $timeout_ms = int($whole * $share * 1000);
	stopped_within_a_second("SELECT mf_train('heavy', k := 64, lambda := 1, iterations := 1000)",
		$timeout_ms, "statement_timeout of ${timeout_ms}ms stops the training with a heavy row",
		'a row of 3,000,000 ratings');
}
# Interrupts that do not end the statement (here the client connection
# check, every millisecond) pause the run between tasks and never stop one
# half-way: the training with a row of 3,000,000 ratings still finishes,
# with the same model.  (Each such interrupt stopped the long row, which
# was solved again from the start: interrupts arriving faster than the row
# took kept it from ever finishing.)
my $heavy_model = q{SELECT md5(string_agg(factors::text, ';' ORDER BY user_id))
	FROM mf_user_factors WHERE model_id = (SELECT model_id FROM mf_models WHERE name = 'heavy')};
my $heavy_before = $node->safe_psql('postgres', $heavy_model);
$sent = time();
$trainer->query("SET client_connection_check_interval = '1ms'; SET statement_timeout = '"
	  . int($whole * 10 + 10) . "s'; SELECT mf_train('heavy', k := 64, lambda := 1, iterations := 2)");
$took = time() - $sent;
$trainer->query("SET client_connection_check_interval = 0; SET statement_timeout = 0");
is($trainer->{stderr}, '', 'a training with a heavy row finishes under an interrupt every millisecond');
$trainer->{stderr} = '';
diag(sprintf('a row of 3,000,000 ratings, client_connection_check_interval = 1ms: %.1fs (%.1fs without)',
		$took, $whole));
is($node->safe_psql('postgres', $heavy_model), $heavy_before, 'and trains the same model');

$sent = time();
$trainer->query_safe("SELECT mf_fold_in('heavy', items, ratings) IS NOT NULL FROM heavy_new_user");
$whole = time() - $sent;
diag(sprintf('fold-in of 3,000,000 ratings: %.2fs', $whole));
stopped_within_a_second(
	"SELECT mf_fold_in('heavy', items, ratings) IS NOT NULL FROM heavy_new_user_twice",
	int($whole * 400), 'statement_timeout stops a fold-in of 6,000,000 ratings',
	'fold-in of 6,000,000 ratings');

# Rows short enough for the Woodbury identity (implicit feedback; at
# k = 1024 rows of up to 512 ratings) are each followed by a look for a
# stop: users of 250 ratings take milliseconds each with the portable
# kernel, a chunk of 256 of them seconds, and a timeout in the users'
# half-step came back 0.6-9 s late (attack helper 155).  Two timeouts
# inside that half-step are each back within 1 s.
$node->safe_psql('postgres', q{
	CREATE TABLE long_short_rows AS
	SELECT u AS user_id, 1 + (u * 7 + 2 * j) % 600 AS item_id, 1 + (u * j) % 3 AS rating
	FROM generate_series(1, 1500) u, generate_series(1, 250) j
	UNION ALL SELECT u, 1 + u % 600, 1 FROM generate_series(100001, 130000) u;
});
foreach my $timeout_ms (2000, 4000)
{
	stopped_within_a_second("SET mf_ext.kernel = portable; "
		  . "SELECT mf_train('long_short_rows', k := 1024, lambda := 5, alpha := 0.05, "
		  . "feedback := 'implicit', solver := 'cholesky', iterations := 1000)",
		$timeout_ms, "statement_timeout of ${timeout_ms}ms stops rows solved by the Woodbury identity",
		'rows solved by the Woodbury identity');
}
$trainer->query("RESET mf_ext.kernel");

# The items' first factors are drawn before the first iteration, k a row:
# 200,000 items at k = 512 take seconds, and statement_timeout stops the
# drawing within 1 s of it too (it was deaf: back 1-2 s late).
$node->safe_psql('postgres', q{
	CREATE TABLE many_items AS
	SELECT 1 + g % 1000 AS user_id, g AS item_id, 1 + g % 5 AS rating FROM generate_series(1, 200000) g;
});
$trainer->query("SET statement_timeout = 0; SET mf_ext.max_memory = '4GB'");
stopped_within_a_second("SELECT mf_train('many_items', k := 512, iterations := 1)", 500,
	'statement_timeout stops the drawing of 200,000 items\' first factors at k = 512',
	'drawing first factors');
$trainer->query("RESET mf_ext.max_memory");

# Before the first iteration a training zeroes its users' first factors, k
# values a user on fresh pages: 1,000,000 users at k = 1024 are 4 GB,
# seconds of page faults, and that zeroing was deaf (a timeout 2-3 s late
# on 1,500,000 users).  Nothing else of the training touches a gigabyte
# before it: a cancel sent once the backend's resident memory has grown by
# one (read from /proc) is back within 1 s.
$node->safe_psql('postgres', q{
	CREATE TABLE many_users AS
	SELECT g AS user_id, g % 1000 AS item_id, 1 + g % 5 AS rating FROM generate_series(1, 1000000) g;
});
$trainer->query("SET statement_timeout = 0; SET mf_ext.max_memory = '8GB'");
# the backend's resident memory in bytes
sub resident_bytes
{
	my ($pid) = @_;
	open(my $statm, '<', "/proc/$pid/statm") or die "no /proc/$pid/statm: $!";
	my (undef, $resident) = split(' ', <$statm>);
	close($statm);
	return $resident * 4096;
}
my $resting = resident_bytes($trainer_pid);
$trainer->query_until(qr/started/, qq{\\echo started
	SELECT mf_train('many_users', k := 1024, iterations := 1);
});
my $waited = 0;
while (resident_bytes($trainer_pid) < $resting + 2**30)
{
	die 'the training of 1,000,000 users did not grow by a gigabyte in 60 s' if ($waited += 0.01) > 60;
	select(undef, undef, undef, 0.01);
}
$sent = time();
$node->safe_psql('postgres', "SELECT pg_cancel_backend($trainer_pid)");
$node->poll_query_until('postgres', "SELECT state <> 'active' FROM pg_stat_activity WHERE pid = $trainer_pid")
  or die 'the training of 1,000,000 users was not cancelled';
$took = time() - $sent;
diag(sprintf('cancel while 1,000,000 users\' first factors are zeroed at k = 1024: back in %.3fs', $took));
cmp_ok($took, '<', 1, 'a cancel while the first user factors are zeroed is back within 1 s');
$trainer->query('SELECT 1');
like($trainer->{stderr}, qr/canceling statement due to user request/, 'and reports the cancel');
$trainer->{stderr} = '';
$trainer->query("RESET mf_ext.max_memory");

# A long row at a large k is stopped half-way too: its Gram matrix was
# summed 65,536 ratings between two stop checks whatever k, and at k = 1024
# in double precision such a segment took seconds (back 1.4 s late; 0.5 s
# in single precision).  statement_timeout at three points of the users'
# half-step of a training where user 1 has 65,000 ratings (of 64 items,
# each about 1,000 times) is back within 1 s of each.
$node->safe_psql('postgres', q{
	CREATE TABLE long_row AS
	SELECT 1 AS user_id, 1 + g % 64 AS item_id, 1 + g % 5 AS rating FROM generate_series(1, 65000) g
	UNION ALL SELECT u, i, 3 FROM generate_series(2, 5) u, generate_series(1, 64) i;
});
$trainer->query("SET statement_timeout = 0; SET mf_ext.max_memory = '4GB'");
$sent = time();
$trainer->query_safe("SELECT mf_train('long_row', k := 1024, lambda := 10, iterations := 1, "
	  . "double_precision := true)");
$whole = time() - $sent;
diag(sprintf('training with a row of 65,000 ratings at k = 1024 in double precision: %.1fs', $whole));
foreach my $share (0.05, 0.15, 0.3)
{
	my $timeout_ms = int($whole * $share * 1000);
	stopped_within_a_second("SELECT mf_train('long_row', k := 1024, lambda := 10, iterations := 1000, "
		  . "double_precision := true)", $timeout_ms,
		"statement_timeout of ${timeout_ms}ms stops the training with a long row at k = 1024",
		'a row of 65,000 ratings at k = 1024');
}
$trainer->query("RESET mf_ext.max_memory");

# Implicit information sums and solves a whole side's rows in BLAS calls on
# the backend's thread, made in chunks with a look for interrupts between:
# at k = 1024, one call over 62,000 items had kept a statement_timeout
# waiting 4-6 s (8 s in double precision).  Timeouts at 3, 6 and 9 s into
# such a training (still in its first iteration here) are back within 1 s.
$node->safe_psql('postgres', q{
	CREATE TABLE wide_side AS
	SELECT 1::bigint AS user_id, i::bigint AS item_id, (1 + (i * 7) % 5)::float8 AS rating
	FROM generate_series(1, 60000) i
	UNION ALL SELECT u, 1 + (u * 31 + j * 17) % 2000, (1 + (u + j) % 5)::float8
	FROM generate_series(2, 3001) u, generate_series(1, 20) j;
});
$trainer->query("SET statement_timeout = 0; SET mf_ext.max_memory = '4GB'; SET mf_ext.threads = 1");
foreach my $timeout_ms (3000, 6000, 9000)
{
	stopped_within_a_second(
		"SELECT mf_train('wide_side', k := 1024, iterations := 1000, implicit_weight := 1)",
		$timeout_ms, "statement_timeout of ${timeout_ms}ms stops implicit information over 62,000 items",
		'implicit information over 62,000 items at k = 1024');
}
$trainer->query("RESET mf_ext.max_memory; RESET mf_ext.threads");

# SQL that mf_recommend_all runs for the caller (here a row-level security
# policy whose function catches an error) leaves the backend answering to
# cancels: holding interrupts around it once let that caught error wrap
# the hold count, and the session ignored cancel, statement_timeout and
# pg_terminate_backend until its next error.
$node->safe_psql('postgres', q{
	CREATE FUNCTION tenant_ok(m integer) RETURNS boolean LANGUAGE plpgsql AS $$
	BEGIN
		RETURN m = current_setting('app.tenant_model')::integer;
	EXCEPTION WHEN others THEN
		RETURN true;
	END $$;
	ALTER TABLE mf_user_factors ENABLE ROW LEVEL SECURITY;
	CREATE POLICY tenant ON mf_user_factors USING (tenant_ok(model_id));
	CREATE ROLE tenant;
	GRANT SELECT ON mf_models, mf_user_factors, mf_item_factors TO tenant;
	GRANT CREATE ON SCHEMA public TO tenant;
});
my $tenant = $node->background_psql('postgres', on_error_stop => 0);
$tenant->query_safe("SET ROLE tenant; SET app.tenant_model = 'not a number'");
$tenant->query_safe("SELECT mf_recommend_all((SELECT model_id FROM mf_models WHERE name = 'ratings'), 3, true, 'pg_temp.tenant_top')");
$sent = time();
$tenant->query("SET statement_timeout = '1s'; SELECT pg_sleep(5)");
$took = time() - $sent;
like($tenant->{stderr}, qr/canceling statement due to statement timeout/,
	'after mf_recommend_all ran a policy that caught an error, statement_timeout still stops a statement');
cmp_ok($took, '<', 2, 'within 1 s of the timeout');
$tenant->quit;
$node->safe_psql('postgres', q{
	DROP POLICY tenant ON mf_user_factors;
	ALTER TABLE mf_user_factors DISABLE ROW LEVEL SECURITY;
});

# While a training reads, a second thread faults in the pages the rows will
# fill (mf_prefault): statement_timeouts swept across the reading of the
# 1M ratings (and into the indexing after it) each stop the training, or
# let it finish, within 1 s; the thread count below shows that none of
# them left the faulting thread behind.
$trainer->query('SET mf_ext.threads = 2');
my ($read_stopped, $read_finished) = (0, 0);
foreach my $timeout_ms (5, 15, 30, 45, 60, 80, 100, 130, 160, 200)
{
	my $sent = time();
	$trainer->query("SET statement_timeout = '${timeout_ms}ms'; "
		  . "SELECT mf_train('ratings', k := 2, iterations := 1, model_name := 'read_stopped')");
	my $took = time() - $sent;
	$trainer->query('SET statement_timeout = 0');
	if ($trainer->{stderr} =~ /canceling statement due to statement timeout/)
	{
		$read_stopped++;
		cmp_ok($took, '<', $timeout_ms / 1000 + 1,
			"statement_timeout of ${timeout_ms}ms while reading is back within 1 s of it");
	}
	else
	{
		$read_finished++;
		is($trainer->{stderr}, '', "given ${timeout_ms}ms the training finished without an error");
	}
	$trainer->{stderr} = '';
}
diag("reading: $read_stopped of 10 trainings stopped by statement_timeout");
cmp_ok($read_stopped, '>', 0, 'some trainings were stopped while they read');
is($trainer->query_safe('SELECT 1'), '1', 'the backend goes on after the stopped readings');

# Nothing changed, and no thread was left behind.
is($node->safe_psql('postgres', $fingerprint), $before,
	'the cancelled trainings left the model as it was');
opendir(my $tasks, "/proc/$trainer_pid/task") or die "no /proc/$trainer_pid/task: $!";
my @threads = grep { !/^\./ } readdir($tasks);
closedir($tasks);
is(scalar(@threads), 1, 'no worker thread outlives a cancel');

$trainer->quit;

# mf_ext's own queries run without JIT: compiling the query that loads a
# model's factor rows took 0.2 s and held off a cancel meanwhile.  With JIT
# forced on every query, auto_explain's log of the nested load query shows
# no JIT, while the caller's own statement does.
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres', q{
	LOAD 'auto_explain';
	SET auto_explain.log_min_duration = 0;
	SET auto_explain.log_nested_statements = on;
	SET jit = on;
	SET jit_above_cost = 0;
	SELECT count(*) FROM mf_recommend('ratings', 7, 5);
});
my @plans = split(/LOG:  duration: /, slurp_file($node->logfile, $log_offset));
my @loads = grep { /FROM public\.mf_user_factors WHERE model_id = \$1 ORDER BY user_id/ } @plans;
my @callers = grep { /Query Text: \s*SELECT count\(\*\) FROM mf_recommend/ } @plans;
ok(@loads > 0, 'auto_explain logged the query that loads the factors');
ok(!grep({ /JIT:/ } @loads), 'the load query ran without JIT');
ok(grep({ /JIT:/ } @callers), "the caller's statement ran with JIT (JIT was forced)");

# What the cache builds from a model on first need (the items' 8-bit codes
# for mf_recommend, the norms for mf_similar_items, an item's raters) is
# built in the call's memory and handed to the model once complete: a
# statement_timeout while the codes of 300,000 items are built leaves
# nothing behind.  (Each cancelled build had kept its arrays in the cached
# model's memory, 25 MB a time here; attack helper 187.)
$node->safe_psql('postgres', q{
	CREATE TABLE coded_items AS
	SELECT 1 + i % 100 AS user_id, i AS item_id, 1 + i % 5 AS rating
	FROM generate_series(1, 300000) i;
	SET client_min_messages = warning;
	SELECT mf_train('coded_items', k := 64, iterations := 1)});
my $builder = $node->background_psql('postgres', on_error_stop => 0);
$builder->query_safe(q{SELECT mf_predict('coded_items', 1, 1)});	# loads the model
my $backend_bytes = q{SELECT sum(total_bytes) FROM pg_backend_memory_contexts};
my $loaded = $builder->query_safe($backend_bytes);
my $builds_stopped = 0;
foreach my $timeout_ms (10, 20, 30, 40, 50)
{
	$builder->query(qq{SET statement_timeout = '${timeout_ms}ms';
		SELECT count(*) FROM mf_recommend('coded_items', 1, 10)});
	$builder->query('SET statement_timeout = 0');
	$builds_stopped++ if $builder->{stderr} =~ /canceling statement due to statement timeout/;
	$builder->{stderr} = '';
}
diag("codes: $builds_stopped of 5 first mf_recommend calls stopped by statement_timeout");
cmp_ok($builds_stopped, '>', 0, 'some builds of the codes were stopped');
my $grown = $builder->query_safe($backend_bytes) - $loaded;
cmp_ok($grown, '<', 8 * 1024 * 1024,
	"the stopped builds left nothing with the cached model ($grown bytes more)");
is($builder->query_safe(q{SELECT count(*) FROM mf_recommend('coded_items', 1, 10)}), '10',
	'a later mf_recommend builds the codes and answers');
$builder->quit;

$node->stop;
done_testing();
