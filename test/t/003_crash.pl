# pg_terminate_backend of a threaded mf_recommend_all exits cleanly; kill -9
# of a backend in the middle of a threaded training (and of a
# mf_recommend_all): the postmaster restarts, crash recovery runs, and the
# models are as they were before: the one being retrained is intact, no
# partial model or factor row exists, and the extension serves at once.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use lib 'test';
use MfTap;
use Test::More;
use Time::HiRes qw(time);

# Every allocation of 64 kB or more its own mapping, unmapped when freed
# (glibc's threshold, fixed): a worker that reads a freed buffer dies of
# SIGSEGV at once instead of reading stale memory unnoticed.
$ENV{MALLOC_MMAP_THRESHOLD_} = 65536;

# restart_after_crash: the test framework turns it off; a production server has it on
my $node = mf_node('crash', 'restart_after_crash = on');

# 1M ratings: 5,000 users x 200 items at random.
$node->safe_psql('postgres', random_ratings(5000, 200));
$node->safe_psql('postgres', q{
	SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 8, iterations := 1);
});
my $fingerprint = model_fingerprint();
my $before = $node->safe_psql('postgres', $fingerprint);
my $prediction = $node->safe_psql('postgres', "SELECT mf_predict('ratings', 7, 11)");

# Kills the backend running $statement once it has run for $delay seconds.
sub kill_during
{
	my ($statement, $delay, $what) = @_;
	my $session = $node->background_psql('postgres', on_error_stop => 0);
	$session->query_safe('SET client_min_messages = warning');
	my $pid = $session->query_safe('SELECT pg_backend_pid()');
	$session->query_until(qr/started/, "\\echo started\n$statement;\n");
	select(undef, undef, undef, $delay);
	ok($node->safe_psql('postgres',
			"SELECT state = 'active' FROM pg_stat_activity WHERE pid = $pid") eq 't',
		"$what is running when killed");
	kill_backend($node, $pid);
	# its psql has lost the connection and may have exited: a \q written to it could fail
	$session->{run}->kill_kill;
	ok($node->poll_query_until('postgres', 'SELECT 1', '1'),
		"the server accepts connections again after killing $what");
}

# Runs $prepare (SQL, or '') then $statement in a new session, terminates
# the backend once $statement has reached $point (see wait_for_point) and
# checks that it exits.
sub terminate_during
{
	my ($prepare, $statement, $point, $what) = @_;
	my $session = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $session->query_safe('SELECT pg_backend_pid()');
	$session->query_safe($prepare) if $prepare ne '';
	$session->query_until(qr/started/, "\\echo started\n$statement;\n");
	my $when = wait_for_point($pid, $point, $what);
	ok($node->safe_psql('postgres',
			"SELECT state = 'active' FROM pg_stat_activity WHERE pid = $pid") eq 't',
		"$what is running when terminated $when");
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
	ok($node->poll_query_until('postgres',
			"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid"),
		"terminated $what $when, the backend exits");
	$session->{run}->kill_kill;
}

# Waits until backend $pid's call has reached $point, steps joined by '+':
# 'report' (its first report in mf_progress), a share of its steps done by
# that report (e.g. 0.4 of the users written), or a delay ('1.5s'). The
# first two are moments of the call's own work, however fast or busy the
# machine. Returns $point in words for the tests' names.
sub wait_for_point
{
	my ($pid, $point, $what) = @_;
	my @words;
	foreach my $step (split /\+/, $point)
	{
		if ($step =~ /^([0-9.]+)s$/)
		{
			select(undef, undef, undef, $1);
			push @words, $step;
			next;
		}
		push @words, $step eq 'report' ? 'its first report' : "$step of its steps";
		ok(wait_for_progress($pid, $step), "$what reached $words[-1]");
	}
	return $point =~ /^[0-9.]+s$/ ? "after $point" : 'at ' . join(' + ', @words);
}

# Polls mf_progress every 5 ms until backend $pid's call has reported
# $share of its steps done ('report': any report); false if the call ended
# first, or after 3 minutes.
sub wait_for_progress
{
	my ($pid, $share) = @_;
	my $reached = $share eq 'report' ? 'true' : "steps > 0 AND step >= steps * $share";
	my $watch = $node->background_psql('postgres');
	my ($seen, $result) = (0, 0);
	my $deadline = time() + 180;
	while (time() < $deadline)
	{
		my $state = $watch->query_safe(
			"SELECT coalesce(bool_or($reached)::int, -1) FROM mf_progress WHERE pid = $pid");
		if ($state eq '1') { $result = 1; last; }
		last if $state eq '-1' && $seen;
		$seen = 1 if $state eq '0';
		select(undef, undef, undef, 0.005);
	}
	$watch->quit;
	return $result;
}

# pg_terminate_backend while mf_recommend_all reads rated items and writes
# rows on the backend's thread beside its workers: a clean exit each time
# (the FATAL is held off until the workers are joined), no server restart.
# Each termination waits for a share of the users written, by the call's
# report in mf_progress, so that it finds the call running however fast
# or busy the machine (shares of a duration timed first missed the call on
# a busy machine, whose second call was faster).
terminate_during('', "SELECT mf_recommend_all('ratings', 2000, true, 'all_items')",
	$_, 'mf_recommend_all')
  foreach ('report', 0.2, 0.4, 0.6, 0.8);

# The same while the backend's thread runs the caller's SQL in the feeder
# (a row-level security policy made slow), in a session that created a
# temporary table after its first threaded call: the FATAL is processed
# inside the feeder, and the exit's first step, dropping the temporary
# table, aborts the transaction, which frees the call's memory before its
# callback joins the workers: what they read must be in the transaction's
# memory, or they read freed memory (a worker died of SIGSEGV in sgemm
# while the run's buffers were the call's, and the server restarted).
$node->safe_psql('postgres', q{
	CREATE FUNCTION slow_ok(m integer) RETURNS boolean LANGUAGE sql
	AS $$ SELECT current_setting('app.slow', true) IS DISTINCT FROM 'on' OR pg_sleep(0.0002) IS NOT NULL $$;
	CREATE ROLE slow_reader;
	GRANT SELECT ON mf_models, mf_user_factors, mf_item_factors TO slow_reader;
	ALTER TABLE mf_user_factors ENABLE ROW LEVEL SECURITY;
	CREATE POLICY slow ON mf_user_factors USING (slow_ok(model_id));
});
my $prepare = "SET ROLE slow_reader; SET mf_ext.threads = 2;"
  . " SELECT mf_fold_in('ratings', ARRAY[1, 2], ARRAY[4, 5]) IS NOT NULL;"
  . " CREATE TEMP TABLE scratch (x integer); SET app.slow = 'on'";
# The call's report shows once the model is loaded (slowed); the feeder
# then reads, slowed, until the call ends: timed once from the report to
# the end, and terminated at shares of that time after the report (the
# time is pg_sleep's, barely shortened by a faster or idler machine).
my $timer = $node->background_psql('postgres');
$timer->query_safe($prepare);
my $timer_pid = $timer->query_safe('SELECT pg_backend_pid()');
$timer->query_until(qr/started/,
	"\\echo started\nSELECT mf_recommend_all('ratings', 20, true, 'pg_temp.timed_top');\n");
ok(wait_for_progress($timer_pid, 'report'), 'the timed call reports');
my $started = time();
$timer->query_safe('SELECT 1');
my $feeding = time() - $started;
$timer->quit;
diag(sprintf('slowed by the policy: from the report to the end %.2fs', $feeding));
terminate_during($prepare, "SELECT mf_recommend_all('ratings', 20, true, 'pg_temp.slow_top')",
	sprintf('report+%.2fs', $feeding * $_),
	'in the feeder, with a temporary table,')
  foreach (0.1, 0.3, 0.5, 0.7);

# The same with the workers busy throughout: 60,000 items to rank for each
# of 30,000 users, and the backend's thread in the feeder nearly all the
# time, writing the finished blocks' rows into a table whose row trigger
# sleeps.  With the run's buffers in the call's memory, each of these
# terminations killed a worker in sgemm; as slow_reader, under the
# row-level security policy (not slowed), the model is loaded for the call
# alone, in the call's memory, and a worker died reading its factors.
$node->safe_psql('postgres', q{
	SET client_min_messages = warning;
	CREATE TABLE wide_ratings AS
	SELECT u AS user_id, (abs(hashint8(u * 7919 + j)) % 60000) + 1 AS item_id,
	       1 + abs(hashint8(u * 31 + j)) % 5 AS rating
	FROM generate_series(1, 30000) u, generate_series(1, 10) j;
	SELECT mf_train('wide_ratings', k := 64, iterations := 1) IS NOT NULL;
	CREATE TABLE slow_rows (user_id bigint, rank integer, item_id bigint, score double precision);
	CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql
	AS $$ BEGIN PERFORM pg_sleep(0.001); RETURN NEW; END $$;
	CREATE TRIGGER slow BEFORE INSERT ON slow_rows FOR EACH ROW EXECUTE FUNCTION slow_row();
	GRANT INSERT ON slow_rows TO slow_reader;
});
foreach my $role ('NONE', 'slow_reader')
{
	terminate_during("SET ROLE $role; SET mf_ext.threads = 2;"
		  . " SELECT mf_predict('wide_ratings', 1, 1);"
		  . " SELECT mf_fold_in('wide_ratings', ARRAY[1, 2], ARRAY[4, 5]) IS NOT NULL;"
		  . " CREATE TEMP TABLE scratch (x integer)",
		"SELECT mf_recommend_all('wide_ratings', 5, false, 'slow_rows', 'append')", $_,
		'as ' . ($role eq 'NONE' ? 'the superuser' : $role) . ' while writing through a trigger')
	  foreach ('0.3s', '0.6s', '1.0s');
}
is($node->safe_psql('postgres', 'SELECT count(*) FROM slow_rows'), '0',
	'the terminated appends added no row');
$node->safe_psql('postgres', q{
	SELECT mf_drop_model('wide_ratings');
	DROP POLICY slow ON mf_user_factors;
	ALTER TABLE mf_user_factors DISABLE ROW LEVEL SECURITY;
});
unlike(slurp_file($node->logfile), qr/terminated by signal/,
	'no backend died of a signal while terminated');
is($node->safe_psql('postgres', "SELECT to_regclass('all_items') IS NULL"), 't',
	'the terminated calls left no table');

kill_during("SELECT mf_train('ratings', k := 64, iterations := 1000)", 1.5,
	'a retraining');
kill_during("SELECT mf_train('ratings', k := 64, iterations := 1000, model_name := 'new')", 1.5,
	'a first training');
kill_during("SELECT mf_recommend_all('ratings', 2000, false, 'top100')", 0.5,
	'mf_recommend_all');

like(slurp_file($node->logfile), qr/terminated by signal 9: Killed/,
	'the server log shows the kills');
like(slurp_file($node->logfile), qr/all server processes terminated; reinitializing/,
	'the postmaster went through crash recovery');
is($node->safe_psql('postgres', $fingerprint), $before,
	'every model is as it was before the kills, byte for byte');
is($node->safe_psql('postgres', "SELECT count(*) FROM mf_models WHERE name = 'new'"), '0',
	'the killed first training left no model');
is($node->safe_psql('postgres', "SELECT to_regclass('top100') IS NULL"), 't',
	'the killed mf_recommend_all left no table');
is($node->safe_psql('postgres', "SELECT mf_predict('ratings', 7, 11)"), $prediction,
	'the model predicts as before');

$node->stop;
done_testing();
