# The nightly job of the README, run by pg_cron (Debian postgresql-15-cron,
# 1.4: minute granularity): every minute, retrain the model, then replace the
# rows of the table top10 with everyone's new top 10, in one transaction.
# After a run succeeded, top10 holds exactly what mf_recommend gives every
# user; a run that fails after replacing the rows leaves the table as it was.
# Never skipped: pg_cron is one of the packages test/install-deps.sh installs.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use lib 'test';
use MfTap;
use Test::More;
use Time::HiRes qw(sleep time);

my $node = mf_node('nightly', "shared_preload_libraries = 'pg_cron'",
	"cron.database_name = 'postgres'", 'cron.use_background_workers = on',
	'max_worker_processes = 20', 'mf_ext.threads = 2');
$node->safe_psql('postgres', 'CREATE EXTENSION pg_cron');
$node->safe_psql('postgres', smooth_ratings(300, 80, 30));
$node->safe_psql('postgres', q{SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 4, lambda := 0.5, iterations := 5)});

# Waits (150 s at most, pg_cron starting jobs at the minute) until job $jobid
# has a run in status $status; returns that run's return_message.
sub wait_for_run
{
	my ($jobid, $status) = @_;
	my $deadline = time() + 150;
	while (time() < $deadline)
	{
		# one query (two could see the run in between), and a failed run
		# once its message is written too
		my ($found, $message) = split /\|/, $node->safe_psql('postgres', qq{
			SELECT count(*) || '|' || coalesce(min(return_message), '') FROM (
				SELECT return_message FROM cron.job_run_details
				WHERE jobid = $jobid AND status = '$status' ORDER BY runid LIMIT 1) r}), 2;
		$message //= '';
		return $message if $found > 0 && ($status ne 'failed' || $message ne '');
		sleep 1;
	}
	my $runs = $node->safe_psql('postgres', qq{
		SELECT string_agg(status || ': ' || coalesce(return_message, ''), '; ')
		FROM cron.job_run_details WHERE jobid = $jobid});
	BAIL_OUT("pg_cron job $jobid had no run in status $status within 150 s (runs: $runs)");
}

# Unschedules job $jobid and waits until none of its runs is under way.
sub unschedule
{
	my ($jobid) = @_;
	$node->safe_psql('postgres', "SELECT cron.unschedule($jobid)");
	$node->poll_query_until('postgres', qq{
		SELECT count(*) = 0 FROM cron.job_run_details
		WHERE jobid = $jobid AND status IN ('starting', 'running')})
	  or die "a run of job $jobid did not end";
}

my $version_before = $node->safe_psql('postgres',
	q{SELECT version FROM mf_models WHERE name = 'ratings'});

# The README's job (section "Nightly job with pg_cron"), every minute here.
my $job = $node->safe_psql('postgres', q{
SELECT cron.schedule('mf-nightly', '* * * * *', $$
    DO $job$
    BEGIN
        SET LOCAL client_min_messages = warning;
        PERFORM mf_train('ratings', warm_start := true);
        PERFORM mf_recommend_all('ratings', 10, target := 'top10', mode := 'replace');
    END $job$
$$)});
my $message = wait_for_run($job, 'succeeded');
unschedule($job);
pass("the nightly job ran: $message");

# Exactly what mf_recommend gives every user now: same ids, ranks, scores.
my $same = q{
WITH expected AS (
    SELECT f.user_id, row_number() OVER (PARTITION BY f.user_id
                                         ORDER BY r.score DESC, r.item_id)::integer AS rank,
           r.item_id, r.score
    FROM mf_user_factors f JOIN mf_models m USING (model_id),
         LATERAL mf_recommend('ratings', f.user_id, 10) r
    WHERE m.name = 'ratings')
SELECT (SELECT count(*) FROM expected) || ' ' ||
       (SELECT count(*) FROM ((SELECT * FROM expected EXCEPT ALL SELECT * FROM top10)
                              UNION ALL (SELECT * FROM top10 EXCEPT ALL SELECT * FROM expected)) d)};
my ($rows, $differ) = split / /, $node->safe_psql('postgres', $same);
cmp_ok($rows, '>', 300 * 5, 'the users have their top 10');
is($differ, 0, 'top10 holds what mf_recommend gives every user');
cmp_ok($node->safe_psql('postgres', q{SELECT version FROM mf_models WHERE name = 'ratings'}),
	'>', $version_before, 'the job retrained the model');

# A run that fails after replacing the rows (a top 3 this time) leaves the
# table as it was.
my $fingerprint = q{SELECT md5(string_agg(row(t.*)::text, ';' ORDER BY user_id, rank)) FROM top10 t};
my $before = $node->safe_psql('postgres', $fingerprint);
my $failing = $node->safe_psql('postgres', q{
SELECT cron.schedule('mf-failing', '* * * * *', $$
    DO $job$
    BEGIN
        PERFORM mf_recommend_all('ratings', 3, target := 'top10', mode := 'replace');
        RAISE EXCEPTION 'failing after the replace';
    END $job$
$$)});
$message = wait_for_run($failing, 'failed');
unschedule($failing);
like($message, qr/failing after the replace/, 'the failing run failed');
is($node->safe_psql('postgres', $fingerprint), $before, 'the failed run left top10 as it was');

$node->stop;
done_testing();
