# Retraining is atomic across sessions: until the retraining transaction
# commits, other sessions (and their backend caches) answer from the old
# model; afterwards from the new one; a rolled-back or cancelled retrain
# leaves the old model in place.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use lib 'test';
use MfTap;
use Test::More;

my $node = mf_node('main');

$node->safe_psql('postgres', smooth_ratings(400, 300));
$node->safe_psql('postgres', q{
	SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 2, lambda := 0.1, iterations := 5);
});
my $model = $node->safe_psql('postgres',
	"SELECT model_id FROM mf_models WHERE name = 'ratings'");

# What a reader sees: one prediction, the model's k, and whether the
# prediction equals the dot product of the factors stored right now.
my $probe = qq{
	SELECT round(mf_predict($model, 7, 11)::numeric, 12) || ' k=' || k || ' '
	       || (abs(mf_predict($model, 7, 11) -
	               (SELECT sum(x * y) FROM mf_user_factors u, mf_item_factors v,
	                       unnest(u.factors, v.factors) t(x, y)
	                WHERE u.model_id = $model AND v.model_id = $model
	                  AND u.user_id = 7 AND v.item_id = 11)) < 1e-12)::text
	FROM mf_models WHERE model_id = $model};

my $reader = $node->background_psql('postgres');
my $writer = $node->background_psql('postgres', on_error_stop => 0);
$writer->query_safe('SET client_min_messages = warning');

my $old = $reader->query_safe($probe);
like($old, qr/ k=2 true$/, 'reader sees the trained model');

$writer->query_safe('BEGIN');
is($writer->query_safe(
		"SELECT mf_train('ratings', k := 3, lambda := 0.5, iterations := 5)"),
	$model, 'retrain inside a transaction keeps the model id');
is($reader->query_safe($probe), $old,
	'before COMMIT another session still answers from the old model');
$writer->query_safe('COMMIT');

# mf_ext loads OpenBLAS single-threaded, and joins its own workers: a
# backend that has trained runs no threads besides its own.
my $writer_pid = $writer->query_safe('SELECT pg_backend_pid()');
opendir(my $tasks, "/proc/$writer_pid/task") or die "no /proc/$writer_pid/task: $!";
my @threads = grep { !/^\./ } readdir($tasks);
closedir($tasks);
is(scalar(@threads), 1, 'the training backend runs a single thread');

my $new = $reader->query_safe($probe);
like($new, qr/ k=3 true$/, 'after COMMIT the reader answers from the new model');
isnt($new, $old, 'the prediction changed');

$writer->query_safe('BEGIN');
$writer->query_safe(
	"SELECT mf_train('ratings', k := 4, lambda := 0.5, iterations := 5)");
$writer->query_safe('ROLLBACK');
is($reader->query_safe($probe), $new, 'a rolled-back retrain changes nothing');

# Cancel a long retrain from another session.
my $fingerprint = qq{
	SELECT md5(string_agg(factors::text, ';' ORDER BY user_id))
	FROM mf_user_factors WHERE model_id = $model};
my $before = $reader->query_safe($fingerprint);
$writer->query_until(qr/started/, qq{\\echo started
	SELECT mf_train('ratings', k := 40, iterations := 100000);
});
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity
		WHERE query LIKE 'SELECT mf_train(%' AND state = 'active'}),
	'long training is running');
$reader->query_safe(q{
	SELECT pg_cancel_backend(pid) FROM pg_stat_activity
	WHERE query LIKE 'SELECT mf_train(%' AND state = 'active'});
my ($out, $failed) = $writer->query('SELECT 1');
ok($failed, 'the cancelled training reports an error');
like($writer->{stderr}, qr/canceling statement due to user request/,
	'the error is the cancel');
is($reader->query_safe($fingerprint), $before,
	'the cancelled training left the model as it was');
is($reader->query_safe($probe), $new, 'and the reader still gets the same answers');

# A refit that waits for a concurrent retrain (here to another k) refits
# against the retrained model, whose row it locked: never rows solved
# against the replaced one.
my $retrainer = $node->background_psql('postgres');
$retrainer->query_safe('SET client_min_messages = warning');
$retrainer->query_safe('BEGIN');
$retrainer->query_safe(
	"SELECT mf_train('ratings', k := 5, lambda := 0.5, iterations := 2)");
my $refitter = $node->background_psql('postgres', on_error_stop => 0);
$refitter->query_until(qr/refitting/, qq{\\echo refitting
	SELECT 'refitted ' || mf_refit_users($model);
});
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity
		WHERE query LIKE '%mf_refit_users%' AND wait_event_type = 'Lock'}),
	'the refit waits for the retrain');
$retrainer->query_safe('COMMIT');
($out, $failed) = $refitter->query('SELECT 1');
is($refitter->{stderr}, '', 'the refit that waited succeeds');
like($out, qr/refitted [1-9]/, 'and refits users');
like($reader->query_safe($probe), qr/ k=5 true$/,
	'the retrained model is whole and served');
is($reader->query_safe(qq{
	SELECT count(*) FROM mf_user_factors
	WHERE model_id = $model AND array_length(factors, 1) <> 5}), '0',
	'no user row of another k was written');
is($reader->query_safe(qq{
	SELECT u.factors = mf_fold_in($model, array_agg(r.item_id ORDER BY r.item_id),
	                              array_agg(r.rating ORDER BY r.item_id))
	FROM mf_user_factors u JOIN ratings r ON r.user_id = u.user_id
	WHERE u.model_id = $model AND u.user_id = 7 GROUP BY u.factors}), 't',
	'a refitted user is the fold-in against the retrained model, to the bit');
# mf_drop_model(model_id) drops that model, even when the name it had is
# renamed and given to a new model while the drop waits.
$node->safe_psql('postgres', q{SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 2, iterations := 1, model_name := 'doomed')});
my $doomed = $node->safe_psql('postgres', "SELECT model_id FROM mf_models WHERE name = 'doomed'");
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE mf_models IN SHARE MODE');
my $dropper = $node->background_psql('postgres', on_error_stop => 0);
$dropper->query_until(qr/dropping/, qq{\\echo dropping
	SELECT mf_drop_model($doomed);
});
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity
		WHERE query LIKE '%mf_drop_model%' AND wait_event_type = 'Lock'}),
	'the drop waits');
$locker->query_safe(q{SET client_min_messages = warning;
	UPDATE mf_models SET name = 'spared' WHERE name = 'doomed';
	SELECT mf_train('ratings', k := 2, iterations := 1, model_name := 'doomed');
	COMMIT});
$dropper->query('SELECT 1');
is($dropper->{stderr}, '', 'the drop succeeds');
is($reader->query_safe(q{SELECT string_agg(name, ',' ORDER BY name) FROM mf_models
	WHERE name IN ('doomed', 'spared')}), 'doomed',
	'it dropped the model of that id (renamed spared), not the new one named doomed');
$dropper->quit;
$locker->quit;

# A refit that waits for a concurrent mf_drop_model of its model fails
# once the drop commits, naming it and saying what to do (it said "model N
# does not exist", then named it by id).
$node->safe_psql('postgres', q{SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 2, iterations := 1, model_name := 'dropped')});
my $dropping = $node->background_psql('postgres');
$dropping->query_safe("BEGIN; SELECT mf_drop_model('dropped')");
$refitter->{stderr} = '';
$refitter->query_until(qr/refitting/, qq{\\echo refitting
	SELECT mf_refit_users('dropped');
});
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity
		WHERE query LIKE '%mf_refit_users%' AND wait_event_type = 'Lock'}),
	'the refit waits for the drop');
$dropping->query_safe('COMMIT');
$refitter->query('SELECT 1');
like($refitter->{stderr},
	qr/model "dropped" was dropped while mf_refit_users read it\nDETAIL:  Another session dropped it after this call had found it.\nHINT:  Run mf_refit_users again, naming the model, once one named "dropped" exists/,
	'the refit that waited for a drop says the model was dropped meanwhile');
$dropping->quit;

# A refit of items that waits for a refit of users adds its item to the
# raters' rated_items as that refit left them, without it (it had read them
# as of its statement's start, found the item there, and written nothing,
# so that exclude_rated recommended the item to the users who rated it)
$node->safe_psql('postgres', q{SET client_min_messages = warning;
	CREATE TABLE more_ratings AS SELECT * FROM ratings
		UNION ALL SELECT u, 1001, 4 FROM generate_series(1, 50) u;
	SELECT mf_train('ratings', k := 2, iterations := 1, model_name := 'raters');
	SELECT mf_refit_items('raters', 'more_ratings', 'user_id', 'item_id', 'rating', items := ARRAY[1001])});
my $holding_1001 = q{SELECT count(*) FILTER (WHERE 1001 = ANY (rated_items)) FROM mf_user_factors
	WHERE model_id = (SELECT model_id FROM mf_models WHERE name = 'raters') AND user_id <= 50};
is($node->safe_psql('postgres', $holding_1001), 50, 'the raters of a refitted item hold it');
my (undef, $refit_err) = call_waiting($node,
	q{SET client_min_messages = warning; BEGIN;
	  SELECT mf_refit_users('raters', 'ratings', 'user_id', 'item_id', 'rating',
	                        users := ARRAY(SELECT generate_series(1, 50)))},
	'SET client_min_messages = warning',
	q{SELECT mf_refit_items('raters', 'more_ratings', 'user_id', 'item_id', 'rating', items := ARRAY[1001])});
is($refit_err, '', 'the refit of the item that waited succeeds');
is($node->safe_psql('postgres', $holding_1001), 50,
	'and its raters hold it again, though the refit of users it waited for took it out');

$refitter->quit;
$retrainer->quit;
$reader->quit;
$writer->quit;
$node->stop;
done_testing();
