# Progress for everyone, without shared_preload_libraries: while mf_train
# or mf_cross_validate runs, another session of the same role (or one with
# pg_read_all_stats) sees in mf_progress the model, the phase, the rows
# read, iteration i of n (within one, the users or items solved so far), J
# so far (with patience, the best iteration so far), while it stores the
# model the rows written of its rows, and the time elapsed and left (a
# refit or the batch first loading its model, with no model yet); a role
# that may not read the backend's activity sees nothing; a call that ends,
# fails, is cancelled or whose error a PL/pgSQL block catches leaves no row
# behind, and the backend's activity is its statement again.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use lib 'test';
use MfTap;
use Test::More;

my $node = mf_node('main', 'mf_ext.threads = 1');
$node->safe_psql('postgres', random_ratings(20000, 40));
$node->safe_psql('postgres', q{
	CREATE ROLE watcher LOGIN;
	CREATE ROLE monitor LOGIN IN ROLE pg_read_all_stats;
	GRANT SELECT ON mf_progress TO watcher, monitor;
});

# The first row of mf_progress for $function, as "phase step steps unit", polled.
sub wait_for_progress
{
	my ($function, $condition) = @_;
	$node->poll_query_until('postgres', qq{
		SELECT count(*) > 0 FROM mf_progress WHERE function = '$function' AND $condition})
	  or die "no progress of $function where $condition";
}

# Once the trainer's DO block sleeps: "<rows in mf_progress> <its activity
# is the block's text, without a report>".
my $trainer_pid;
sub sleeping_block_state
{
	$node->poll_query_until('postgres', qq{
		SELECT wait_event = 'PgSleep' FROM pg_stat_activity WHERE pid = $trainer_pid})
	  or die 'the block did not reach its sleep';
	return $node->safe_psql('postgres', qq{
		SELECT (SELECT count(*) FROM mf_progress) || ' '
		       || (query LIKE '%DO \$\$%' AND query NOT LIKE '%mf_ext progress%')
		FROM pg_stat_activity WHERE pid = $trainer_pid});
}

# Cancels the trainer's call ($what names it) and waits until it has ended.
sub cancel_trainer
{
	my ($what) = @_;
	$node->safe_psql('postgres', "SELECT pg_cancel_backend($trainer_pid)");
	$node->poll_query_until('postgres', qq{
		SELECT state <> 'active' FROM pg_stat_activity WHERE pid = $trainer_pid})
	  or die "$what was not cancelled";
}

my $trainer = $node->background_psql('postgres', on_error_stop => 0);
$trainer->query_safe('SET client_min_messages = warning');
$trainer->query_safe('SET compute_query_id = on');
$trainer_pid = $trainer->query_safe('SELECT pg_backend_pid()');
$trainer->query_until(qr/started/, q{
	\echo started
	SELECT mf_train('ratings', k := 32, iterations := 100000, model_name := 'long');
});
wait_for_progress('mf_train', q{phase = 'iterating' AND step >= 2});
my $row = $node->safe_psql('postgres', qq{
	SELECT pid = $trainer_pid, model, phase, steps, unit, loss > 0, validation_rmse IS NULL,
	       best_iteration IS NULL, elapsed_seconds > 0, seconds_left > 0, step >= 2
	FROM mf_progress WHERE function = 'mf_train'});
is($row, "t|long|iterating|100000|iteration|t|t|t|t|t|t",
	'another session of the role sees the training iterate');
# reports leave the statement's query_id and state_change (the state's start) alone
my $statement = $node->safe_psql('postgres', qq{
	SELECT query_id, state_change FROM pg_stat_activity WHERE pid = $trainer_pid});
my ($step) = $node->safe_psql('postgres', q{SELECT step FROM mf_progress WHERE function = 'mf_train'});
wait_for_progress('mf_train', "step >= $step + 2");
is($node->safe_psql('postgres', qq{
		SELECT query_id IS NOT NULL, query_id || '|' || state_change = '$statement'
		FROM pg_stat_activity WHERE pid = $trainer_pid}),
	't|t', 'the reports keep the query_id and state_change of the statement');
is($node->safe_psql('postgres', 'SELECT count(*) FROM mf_progress', connstr => $node->connstr('postgres') . ' user=watcher'),
	'0', 'a role that may not read the backend activity sees nothing');
is($node->safe_psql('postgres', q{SELECT model FROM mf_progress WHERE function = 'mf_train'},
		connstr => $node->connstr('postgres') . ' user=monitor'),
	'long', 'pg_read_all_stats sees it');
is($node->safe_psql('postgres', q{
		SET force_parallel_mode = on;
		SELECT model FROM mf_progress WHERE function = 'mf_train'}),
	'long', 'the view is read whatever the plan (it is not run in parallel)');

# a statement made to look like a report, with numbers that overflow, is
# no report, and breaks the view for no one
my $faker = $node->background_psql('postgres');
$faker->query_until(qr/started/, q{
	\echo started
	SELECT pg_sleep(30) /* mf_ext progress {"seconds_left": 1.7e308, "updated": -1.7e308, "started": -1.7e308, "steps": 1e30} */;
});
$node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep'})
  or die 'the fake report is not running';
is($node->safe_psql('postgres', q{SELECT string_agg(function, ',') FROM mf_progress}),
	'mf_train', 'a fake report breaks nothing and shows nothing');
$faker->quit;

cancel_trainer('the training');
is($node->safe_psql('postgres', qq{
	SELECT (SELECT count(*) FROM mf_progress) || ' ' || (query NOT LIKE '%mf_ext progress%')
	FROM pg_stat_activity WHERE pid = $trainer_pid}),
	'0 true', 'a cancelled training leaves no row, and its activity is the statement again');

# inside an iteration: the side being solved and its rows done of its rows,
# and from them an estimate of the time left, before the first iteration
# ends (20,000 users' exact solves at k = 256: seconds on one thread)
$trainer->query_until(qr/started/, q{
	\echo started
	SELECT mf_train('ratings', k := 256, iterations := 3, model_name := 'wide');
});
wait_for_progress('mf_train', q{model = 'wide' AND side = 'user' AND rows_done > 0});
is($node->safe_psql('postgres', q{
		SELECT phase, step, steps, unit, side, rows_done < rows_total, rows_total,
		       seconds_left > 0
		FROM mf_progress WHERE model = 'wide'}),
	'iterating|0|3|iteration|user|t|20000|t',
	'within the first iteration: the users solved of the users, and the time left');
cancel_trainer('the wide training');

# a refit's solve: its users solved of its users, and the time left
$node->safe_psql('postgres', q{
	SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 256, iterations := 1, model_name := 'wide_once');
});
$trainer->query_until(qr/started/, q{
	\echo started
	SELECT mf_refit_users('wide_once');
});
wait_for_progress('mf_refit_users', q{side = 'user' AND rows_done > 0});
is($node->safe_psql('postgres', q{
		SELECT phase, side, rows_done < rows_total, rows_total, seconds_left > 0
		FROM mf_progress WHERE function = 'mf_refit_users'}),
	'solving|user|t|20000|t', 'a refit: the users solved of the users, and the time left');
cancel_trainer('the refit');

# reading: the rows read so far, of the planner's estimate where it has one
# (a view has none), from a view whose rows come slowly (seconds in all)
$node->safe_psql('postgres', q{
	CREATE FUNCTION slow_row(u integer) RETURNS boolean LANGUAGE plpgsql AS $$
	BEGIN
		IF u % 500 = 0 THEN
			PERFORM pg_sleep(0.005);
		END IF;
		RETURN true;
	END $$;
	CREATE VIEW slow_ratings AS SELECT * FROM ratings WHERE slow_row(user_id);
});
$trainer->query_until(qr/started/, q{
	\echo started
	SELECT mf_train('slow_ratings', k := 2, iterations := 1, model_name := 'slow');
});
wait_for_progress('mf_train', q{model = 'slow' AND phase = 'reading' AND step > 0});
is($node->safe_psql('postgres', q{
		SELECT step BETWEEN 1 AND 799999, steps, unit, seconds_left IS NULL
		FROM mf_progress WHERE model = 'slow'}),
	't|0|row|t', 'reading: the rows read so far (a view: no estimate of them)');
cancel_trainer('the slow reading');

# a refit and the batch load their model first: while another session
# holds a factor table, the phase is loading and the model not yet known;
# once loaded, the model's name (the refit then reads the slow view)
$node->safe_psql('postgres', q{
	SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 2, iterations := 1, model_name := 'loaded');
});
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN');
$locker->query_safe('LOCK TABLE mf_user_factors IN ACCESS EXCLUSIVE MODE');
$trainer->query_until(qr/started/, q{
	\echo started
	SELECT mf_refit_users('loaded', 'slow_ratings');
});
wait_for_progress('mf_refit_users', q{phase = 'loading'});
is($node->safe_psql('postgres', q{
		SELECT model IS NULL, step, steps FROM mf_progress WHERE function = 'mf_refit_users'}),
	't|0|0', 'a refit waiting for its model: loading, the model not yet known');
$locker->query_safe('COMMIT');
wait_for_progress('mf_refit_users', q{phase = 'reading' AND step > 0});
is($node->safe_psql('postgres', q{SELECT model FROM mf_progress WHERE function = 'mf_refit_users'}),
	'loaded', 'the refit, its model loaded: its name');
cancel_trainer('the refit reading slowly');

# a refit waiting for its model's row, which another session holds: locking
$locker->query_safe('BEGIN');
$locker->query_safe(q{SELECT FROM mf_models WHERE name = 'loaded' FOR UPDATE});
$trainer->query_until(qr/started/, q{
	\echo started
	SELECT mf_refit_users('loaded', 'slow_ratings');
});
wait_for_progress('mf_refit_users', q{phase = 'locking'});
is($node->safe_psql('postgres', q{
		SELECT model, step, steps FROM mf_progress WHERE function = 'mf_refit_users'}),
	'loaded|0|0', 'a refit waiting for its model row: locking');
$locker->query_safe('COMMIT');
wait_for_progress('mf_refit_users', q{phase = 'reading'});
cancel_trainer('the refit reading slowly, once locked');
$locker->query_safe('BEGIN');
$locker->query_safe('LOCK TABLE mf_user_factors IN ACCESS EXCLUSIVE MODE');
$trainer->query_until(qr/started/, q{
	\echo started
	SELECT count(*) FROM mf_recommend_all_rows('loaded', 3);
});
wait_for_progress('mf_recommend_all_rows', q{phase = 'loading' AND model IS NULL});
pass('the batch waiting for its model: loading, the model not yet known');
$locker->query_safe('COMMIT');
$locker->quit;
$node->poll_query_until('postgres', qq{
	SELECT state <> 'active' FROM pg_stat_activity WHERE pid = $trainer_pid})
  or die 'the batch did not end';

# early stopping: the iteration of the lowest validation RMSE so far
$trainer->query_until(qr/started/, q{
	\echo started
	SELECT mf_train('ratings', k := 4, iterations := 100000, validation := 'ratings',
	                patience := 100000, model_name := 'patient');
});
wait_for_progress('mf_train', q{model = 'patient' AND step >= 2 AND best_iteration >= 1});
is($node->safe_psql('postgres', q{
	SELECT best_iteration BETWEEN 1 AND step, validation_rmse > 0
	FROM mf_progress WHERE model = 'patient'}),
	't|t', 'with patience, the best iteration so far');
cancel_trainer('the training');

# a training nested in another's source (the view's function trains once):
# the outer one is reported, and a model name of control characters too
$node->safe_psql('postgres', q{
	CREATE TABLE trained_once (done boolean);
	CREATE FUNCTION inner_once() RETURNS boolean LANGUAGE plpgsql AS $$
	BEGIN
		IF NOT EXISTS (SELECT FROM trained_once) THEN
			INSERT INTO trained_once VALUES (true);
			PERFORM mf_train('ratings', k := 2, iterations := 2, model_name := 'inner');
		END IF;
		RETURN true;
	END $$;
	CREATE VIEW nested_source AS SELECT * FROM ratings WHERE inner_once();
});
$trainer->query_until(qr/started/, q{
	\echo started
	SELECT mf_train('nested_source', k := 16, iterations := 100000, model_name := repeat(chr(1), 200));
});
wait_for_progress('mf_train', q{phase = 'iterating' AND step >= 1});
is($node->safe_psql('postgres', q{SELECT model = repeat('?', 200) FROM mf_progress}),
	't', 'the outer training is reported, its model name printable');
cancel_trainer('the nested training');

# a training whose error a PL/pgSQL block catches: the statement goes on as itself
$trainer->query_until(qr/started/, q{
	\echo started
	DO $$
	BEGIN
		BEGIN
			PERFORM mf_train('ratings', k := 0, model_name := 'refused');
		EXCEPTION WHEN invalid_parameter_value THEN NULL;
		END;
		PERFORM pg_sleep(30);
	END $$;
});
is(sleeping_block_state(), '0 true', 'a caught error ends the report and restores the statement text');
$node->safe_psql('postgres', "SELECT pg_cancel_backend($trainer_pid)");

# cross-validation: its fold and fit
$trainer->query_until(qr/started/, q{
	\echo started
	SELECT * FROM mf_cross_validate('ratings', ARRAY[8, 16], ARRAY[0.1, 1], folds := 3,
	                                iterations := 100000);
});
wait_for_progress('mf_cross_validate', q{phase = 'iterating' AND part = 'fold 1 of 3, fit 1 of 4' AND step >= 1});
pass('another session sees the cross-validation\'s fold and fit');
cancel_trainer('the cross-validation');

# calls that end within a statement that goes on: no row, and the backend's
# activity is the statement again
$trainer->query_until(qr/started/, q{
	\echo started
	DO $$
	BEGIN
		PERFORM mf_train('ratings', k := 4, iterations := 2, model_name := 'short');
		PERFORM mf_refit_users('short');
		PERFORM mf_refit_users('short', users := ARRAY[1, 2]);
		PERFORM mf_recommend_all('short', 5, target := 'short_lists');
		PERFORM pg_sleep(30);
	END $$;
});
is(sleeping_block_state(), '0 true', 'training, refits (of named users too) and mf_recommend_all restore the statement text when they end');
$node->safe_psql('postgres', "SELECT pg_cancel_backend($trainer_pid)");

# a call that turns track_activities off takes its report back: none is
# left behind, stale, while the statement goes on
$node->safe_psql('postgres', q{
	CREATE FUNCTION quiet() RETURNS boolean LANGUAGE sql
		AS $$ SELECT set_config('track_activities', 'off', true) IS NOT NULL $$;
	CREATE VIEW quiet_ratings AS SELECT * FROM ratings WHERE quiet();
});
$trainer->query_until(qr/started/, q{
	\echo started
	DO $$
	BEGIN
		PERFORM mf_train('quiet_ratings', k := 4, iterations := 2, model_name := 'quiet');
		PERFORM pg_sleep(30);
	END $$;
});
is(sleeping_block_state(), '0 true', 'a call that turned tracking off leaves no report behind');
$node->safe_psql('postgres', "SELECT pg_cancel_backend($trainer_pid)");

# a model name longer than the report's room is cut, not the report
$trainer->query_until(qr/started/, q{
	\echo started
	SELECT mf_train('ratings', k := 32, iterations := 100000, model_name := repeat('*', 200));
});
wait_for_progress('mf_train', q{phase = 'iterating' AND step >= 1});
is($node->safe_psql('postgres', q{
		SELECT model ~ '^\*+$' AND length(model) < 200 FROM mf_progress WHERE function = 'mf_train'}),
	't', 'a name of 200 stars is cut to fit the report');
cancel_trainer('the training');

# storing: rows written of the model's rows, users then items, no estimate
# of the time left before the first batch; a trigger that sleeps after each
# INSERT of the factor rows (which then go through INSERTs of 10,000 rows)
# holds the training between batches.  The model's name holds what starts
# a report and ends a comment.
$node->safe_psql('postgres', q{
	CREATE TABLE many_users AS
		SELECT u AS user_id, u % 50 AS item_id, (u % 5 + 1)::real AS rating
		FROM generate_series(1, 25000) u;
	CREATE FUNCTION slow_store() RETURNS trigger LANGUAGE plpgsql
		AS $$ BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$;
	CREATE TRIGGER slow_store AFTER INSERT ON mf_user_factors
		FOR EACH STATEMENT EXECUTE FUNCTION slow_store();
});
$trainer->query_until(qr/started/, q{
	\echo started
	SELECT mf_train('many_users', k := 2, iterations := 1,
	                model_name := 'stored */ /* mf_ext progress {"function": "x"} */') IS NOT NULL AS trained;
});
wait_for_progress('mf_train', q{phase = 'storing'});
is($node->safe_psql('postgres', q{
		SELECT step, steps, unit, seconds_left IS NULL
		FROM mf_progress WHERE function = 'mf_train'}),
	"0|0||t", 'storing: no estimate before the first batch');
wait_for_progress('mf_train', q{phase = 'storing' AND step >= 10000});
is($node->safe_psql('postgres', q{
		SELECT model, step IN (10000, 20000), steps, unit, seconds_left >= 0
		FROM mf_progress WHERE function = 'mf_train'}),
	'stored */ /* mf_ext progress {"function": "x"} */|t|25050|row|t',
	'storing: rows written of the rows of both sides, under a name with comment marks');
$node->poll_query_until('postgres', qq{
	SELECT state <> 'active' FROM pg_stat_activity WHERE pid = $trainer_pid})
  or die 'the training did not end';
is($node->safe_psql('postgres', q{
		SELECT n_users + n_items FROM mf_models WHERE name LIKE 'stored%'}),
	'25050', 'the training stored its model');
$node->safe_psql('postgres', 'DROP TRIGGER slow_store ON mf_user_factors');

$trainer->quit;
done_testing();
