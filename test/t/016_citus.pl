# mf_ext on Citus 12.1 (a coordinator and two workers on this machine):
# every reader returns what SELECT returns for distributed, reference,
# Citus-managed local and partitioned distributed tables, never the
# coordinator's own table behind them (an empty shell, or the rows it held
# before it was distributed).  The same rows local and distributed give the
# same model bit for bit; so do validation, mf_evaluate, cross-validation
# and the refits.  Models trained on the coordinator are served in the
# queries Citus runs on the workers, with the coordinator's answers.
# Never skipped: test/run-tests.sh builds Citus from ../shared/vendor
# (test/install-citus.sh) before the tests.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use lib 'test';
use MfTap;
use Test::More;
use Time::HiRes;

my ($coordinator, @workers) = mf_citus_cluster('worker1', 'worker2');
my @nodes = ($coordinator, @workers);
is($coordinator->safe_psql('postgres', 'SELECT count(*) FROM citus_get_active_worker_nodes()'),
	'2', 'two workers');

sub query { return $coordinator->safe_psql('postgres', "SET client_min_messages = warning; $_[0]") }

# Each user's and item's factors and bias, as text to the last digit.
sub factors
{
	my ($model) = @_;
	return query(qq{SET extra_float_digits = 3;
		SELECT string_agg(concat_ws(' ', user_id, factors, bias), ';' ORDER BY user_id)
		FROM mf_user_factors JOIN mf_models USING (model_id) WHERE name = '$model';
		SELECT string_agg(concat_ws(' ', item_id, factors, bias), ';' ORDER BY item_id)
		FROM mf_item_factors JOIN mf_models USING (model_id) WHERE name = '$model';});
}

# The issue's example: rows that Citus moves into shards, the same rows in
# a local table.
query(q{
	CREATE TABLE ratings (user_id int, item_id int, rating real);
	INSERT INTO ratings SELECT u, i, 1 + ((u * 7 + i * 3) % 5) FROM generate_series(1, 200) u,
	       generate_series(1, 50) i WHERE (u + i) % 3 = 0;
	CREATE TABLE ratings_local AS SELECT * FROM ratings;
	SELECT create_distributed_table('ratings', 'user_id');
});
my $options = 'k := 2, lambda := 1, biases := true, iterations := 10';
query("SELECT mf_train('ratings', $options, model_name := 'dist')");
query("SELECT mf_train('ratings_local', $options, model_name := 'local')");
is(query(q{SELECT n_ratings FROM mf_models WHERE name = 'dist'}), '3334',
	'trained on the 3,334 distributed rows');
is(factors('dist'), factors('local'),
	'distributed with the local copy still on disk: the same model as the local table, bit for bit');

# The shell emptied and rows added through Citus: before, training read the
# empty shell ("no ratings to train on").
query(q{
	SELECT truncate_local_data_after_distributing_table('ratings');
	INSERT INTO ratings SELECT u, i, 3 FROM generate_series(201, 300) u, generate_series(1, 50) i
	WHERE (u + i) % 2 = 0;
	INSERT INTO ratings_local SELECT u, i, 3 FROM generate_series(201, 300) u, generate_series(1, 50) i
	WHERE (u + i) % 2 = 0;
});
query("SELECT mf_train('ratings', $options, model_name := 'dist')");
query("SELECT mf_train('ratings_local', $options, model_name := 'local')");
is(query(q{SELECT n_ratings FROM mf_models WHERE name = 'dist'}), '5834',
	'retrained on the 5,834 rows in the shards');
is(factors('dist'), factors('local'), 'after the truncate and more rows: the same model, bit for bit');

# A reference table, a Citus-managed local table, a partitioned distributed table.
query(q{
	CREATE TABLE ratings_reference AS SELECT * FROM ratings_local;
	SELECT create_reference_table('ratings_reference');
	CREATE TABLE ratings_citus_local AS SELECT * FROM ratings_local;
	SELECT citus_add_local_table_to_metadata('ratings_citus_local');
	CREATE TABLE ratings_partitioned (user_id int, item_id int, rating real) PARTITION BY RANGE (user_id);
	CREATE TABLE ratings_low PARTITION OF ratings_partitioned FOR VALUES FROM (0) TO (150);
	CREATE TABLE ratings_high PARTITION OF ratings_partitioned FOR VALUES FROM (150) TO (1000);
	SELECT create_distributed_table('ratings_partitioned', 'user_id');
	INSERT INTO ratings_partitioned SELECT * FROM ratings_local;
});
foreach my $table ('ratings_reference', 'ratings_citus_local', 'ratings_partitioned')
{
	query("SELECT mf_train('$table', $options, model_name := '$table')");
	is(factors($table), factors('local'), "$table: the same model as the local table, bit for bit");
}
is(query(q{SELECT pg_relation_size('ratings')}), '0',
	"the coordinator's own table behind ratings is empty: the rows are in the shards");

# The other readers: validation (early stopping), mf_evaluate,
# cross-validation, the refits (from the model's recorded source).
query(q{
	CREATE TABLE held_out AS SELECT * FROM ratings_local WHERE user_id % 7 = 0;
	CREATE TABLE held_out_local AS SELECT * FROM held_out;
	SELECT create_distributed_table('held_out', 'item_id');
});
query("SELECT mf_train('ratings', $options, validation := 'held_out', patience := 2, model_name := 'dist_v')");
query("SELECT mf_train('ratings_local', $options, validation := 'held_out_local', patience := 2, model_name := 'local_v')");
is(factors('dist_v'), factors('local_v'), 'validation from a distributed table: the same model');
is(query(q{SELECT validation_rmse FROM mf_training_history('dist_v') ORDER BY iteration}),
	query(q{SELECT validation_rmse FROM mf_training_history('local_v') ORDER BY iteration}),
	'the same validation RMSE at every iteration');
is(query(q{SELECT string_agg(metric || ' ' || value, ';' ORDER BY metric)
		FROM mf_evaluate('local', 'held_out', k := 5)}),
	query(q{SELECT string_agg(metric || ' ' || value, ';' ORDER BY metric)
		FROM mf_evaluate('local', 'held_out_local', k := 5)}),
	'mf_evaluate of a distributed table: the figures of the local one');
is(query(q{SELECT string_agg(concat_ws(' ', k, lambda, rmse_mean, rmse_stddev), ';' ORDER BY k, lambda)
		FROM mf_cross_validate('ratings', ARRAY[1, 2], ARRAY[0.5], folds := 3, iterations := 3)}),
	query(q{SELECT string_agg(concat_ws(' ', k, lambda, rmse_mean, rmse_stddev), ';' ORDER BY k, lambda)
		FROM mf_cross_validate('ratings_local', ARRAY[1, 2], ARRAY[0.5], folds := 3, iterations := 3)}),
	'cross-validation over a distributed table: the same folds and errors');
query(q{
	INSERT INTO ratings VALUES (1, 2, 5), (1, 5, 1), (301, 1, 4);
	INSERT INTO ratings_local VALUES (1, 2, 5), (1, 5, 1), (301, 1, 4);
	SELECT mf_refit_users('dist');
	SELECT mf_refit_users('local');
	SELECT mf_refit_items('dist', items := ARRAY[2, 5]);
	SELECT mf_refit_items('local', items := ARRAY[2, 5]);
});
is(factors('dist'), factors('local'), 'refits from a distributed source: the same factors');

# Serving on every node: mf_predict and mf_recommend in queries Citus runs
# on the workers read the model on the coordinator (src/remote.c) and
# answer what the coordinator answers, digit for digit.
sub on_coordinator
{
	my ($select) = @_;
	return query(qq{WITH r AS MATERIALIZED (SELECT user_id, item_id FROM ratings) $select});
}
my $predictions = q{SELECT string_agg(concat_ws(' ', user_id, item_id, mf_predict('dist', user_id, item_id)), ';'
	ORDER BY user_id, item_id) FROM };
my ($ret, $stdout, $stderr);
my $pushed = query("$predictions ratings");
like($pushed, qr/^1 2 [0-9.]+;/, 'mf_predict in the select list of a distributed query answers');
is($pushed, on_coordinator("$predictions r"),
	'mf_predict on the workers: every prediction equals the coordinator\'s');
is(query(q{EXPLAIN (COSTS OFF) SELECT mf_predict('dist', user_id, item_id) FROM ratings} ) =~ /Task Count: 32/ ? 1 : 0,
	1, 'the predictions are computed in the 32 shard tasks');

query(q{
	CREATE TABLE users (user_id int PRIMARY KEY, region text);
	INSERT INTO users SELECT u, CASE WHEN u % 2 = 0 THEN 'even' ELSE 'odd' END FROM generate_series(1, 310) u;
	SELECT create_distributed_table('users', 'user_id');
});
my $lateral = q{SELECT string_agg(concat_ws(' ', u.user_id, r.item_id, r.score), ';' ORDER BY u.user_id, r.item_id)
	FROM %s u, LATERAL mf_recommend('dist', u.user_id, 3) r WHERE u.user_id %% 10 = 0};
is(query(sprintf($lateral, 'users')),
	query(sprintf($lateral, '(SELECT generate_series(1, 310) AS user_id) ')),
	'LATERAL mf_recommend over distributed users: the top-N of the coordinator, rated items excluded');
is(query(q{SELECT region || ' ' || round(avg(mf_predict('dist', r.user_id, r.item_id))::numeric, 9)
		FROM ratings r JOIN users u USING (user_id) GROUP BY region ORDER BY region}),
	query(q{SELECT region || ' ' || round(avg(mf_predict('local', r.user_id, r.item_id))::numeric, 9)
		FROM ratings_local r JOIN (SELECT u AS user_id, CASE WHEN u % 2 = 0 THEN 'even' ELSE 'odd' END AS region
		FROM generate_series(1, 310) u) AS g USING (user_id) GROUP BY region ORDER BY region}),
	'joined with another distributed table: the averages of the local model');

# A retrain is served everywhere from the next statement; a drop too.
my $sum = q{SELECT round(sum(mf_predict('dist', user_id, item_id))::numeric, 6) FROM };
my $before = query("$sum ratings");
query("SELECT mf_train('ratings', k := 3, lambda := 0.5, biases := true, iterations := 10, model_name := 'dist')");
my $after = query("$sum ratings");
isnt($after, $before, 'after a retrain the workers answer differently');
is($after, on_coordinator("$sum r"), '... with the retrained model');
query("SELECT mf_train('ratings', $options, model_name := 'doomed')");
is(query(q{SELECT count(mf_predict('doomed', user_id, item_id)) FROM ratings}), '5837', 'a second model served');
query(q{SELECT mf_drop_model('doomed')});
($ret, $stdout, $stderr) = $coordinator->psql('postgres',
	q{SELECT count(mf_predict('doomed', user_id, item_id)) FROM ratings});
like($stderr, qr/model "doomed" does not exist/, 'a dropped model is gone on the workers at the next statement');

# Written in this transaction on the coordinator: not committed, invisible
# to the workers: an error, never the previous model's numbers.
my $unwritten = qr/a model is served on a Citus worker in the transaction that wrote or locked the model tables/;
($ret, $stdout, $stderr) = $coordinator->psql('postgres', qq{BEGIN;
	SELECT mf_train('ratings', k := 2, lambda := 5, iterations := 2, model_name := 'dist');
	SELECT sum(mf_predict('dist', user_id, item_id)) FROM ratings;});
like($stderr, $unwritten, 'retrained and served in one transaction: an error on the workers');
($ret, $stdout, $stderr) = $coordinator->psql('postgres', qq{BEGIN;
	SELECT mf_drop_model('dist');
	SELECT sum(mf_predict('dist', user_id, item_id)) FROM ratings;});
like($stderr, $unwritten, 'dropped in the transaction: the same');
# in a function or DO block, without BEGIN, Citus runs no numbered
# distributed transaction: the coordinator backend is found by its gpid
query(q{CREATE FUNCTION retrain_and_score() RETURNS float8 LANGUAGE plpgsql AS $$
	DECLARE s float8;
	BEGIN
		PERFORM mf_train('ratings', k := 2, lambda := 5, iterations := 2, model_name := 'dist');
		SELECT sum(mf_predict('dist', user_id, item_id)) INTO s FROM ratings;
		RETURN s;
	END $$});
($ret, $stdout, $stderr) = $coordinator->psql('postgres', 'SELECT retrain_and_score()');
like($stderr, $unwritten, 'retrained and served in one function call: the error too');
($ret, $stdout, $stderr) = $coordinator->psql('postgres',
	q{DO $$ BEGIN PERFORM mf_drop_model('dist'); PERFORM sum(mf_predict('dist', user_id, item_id)) FROM ratings; END $$});
like($stderr, $unwritten, 'dropped and served in a DO block: the error too');
($ret, $stdout, $stderr) = $coordinator->psql('postgres', q{SET statement_timeout = '20s'; BEGIN;
	LOCK TABLE mf_models IN ACCESS EXCLUSIVE MODE;
	SELECT sum(mf_predict('dist', user_id, item_id)) FROM ratings;});
like($stderr, $unwritten, 'the model tables locked in the transaction: the error, not a wait for itself');
is(query("$sum ratings"), $after, 'all rolled back: the retrained model still served');

# Privileges are the coordinator's, for the role running the query.
query(q{CREATE ROLE analyst LOGIN; GRANT SELECT ON ratings, users TO analyst;});
($ret, $stdout, $stderr) = $coordinator->psql('postgres',
	qq{SET ROLE analyst; SELECT count(mf_predict('dist', user_id, item_id)) FROM ratings});
like($stderr, qr/permission denied for table mf_models/, 'a role that may not read the models: denied on the workers');
query(q{GRANT SELECT ON mf_models, mf_user_factors, mf_item_factors TO analyst});
is(query("SET ROLE analyst; $sum ratings"), $after, 'granted: the same predictions');

# A role switched to in a worker's session (a pooler's SET ROLE) is
# checked on the coordinator, not served from the cache another role
# filled; the digits do not depend on the role's extra_float_digits there.
query(q{CREATE ROLE models_only LOGIN; GRANT SELECT ON mf_models TO models_only;
	CREATE ROLE few_digits LOGIN; GRANT SELECT ON mf_models, mf_user_factors, mf_item_factors TO few_digits;
	ALTER ROLE few_digits SET extra_float_digits = 0;});
($ret, $stdout, $stderr) = $workers[0]->psql('postgres', q{SELECT mf_predict('dist', 1, 2);
	SET ROLE models_only; SELECT mf_predict('dist', 1, 2);});
like($stderr, qr/permission denied for table mf_user_factors/,
	'after SET ROLE on a worker: the new role may not read the factors, refused');
is($workers[0]->safe_psql('postgres', q{SET ROLE few_digits; SELECT mf_predict('dist', 1, 2)}),
	query(q{SELECT mf_predict('dist', 1, 2)}), 'every digit whatever extra_float_digits the role has');

# On a worker: serving answers as the coordinator; training is refused.
my $worker = $workers[0];
is($worker->safe_psql('postgres', q{SELECT mf_predict('dist', 1, 2) = mf_predict('dist', 1, 2)::float8}), 't',
	'a query on a worker serves');
is($worker->safe_psql('postgres', q{SELECT string_agg(user_id || ' ' || score, ';') FROM mf_recommend_users('dist', 5, 4)}),
	query(q{SELECT string_agg(user_id || ' ' || score, ';') FROM mf_recommend_users('dist', 5, 4)}),
	'mf_recommend_users on a worker: the coordinator\'s answer');
($ret, $stdout, $stderr) = $worker->psql('postgres', q{SELECT mf_train('ratings', model_name := 'here')});
like($stderr, qr/mf_train runs on the Citus coordinator, not on a worker/, 'mf_train on a worker: refused');

# A read waiting on the coordinator is cancelled with the statement, and
# the next statement reconnects.
my $locker = $coordinator->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE mf_models IN ACCESS EXCLUSIVE MODE;');
($ret, $stdout, $stderr) = $worker->psql('postgres',
	q{SET statement_timeout = '300ms'; SELECT mf_predict('dist', 1, 2)});
like($stderr, qr/canceling statement due to statement timeout/, 'a read blocked on the coordinator is cancelled');
$locker->query_safe('COMMIT');
$locker->quit;
is($worker->safe_psql('postgres', q{SELECT mf_predict('dist', 1, 2) IS NOT NULL}), 't', 'and the next call serves');

# A worker's row longer than the 256 ratings its buffers start with grows
# them; solved without the batched solve (double precision, the
# non-negative solve), growing freed the batch's buffers it never had, and
# the worker died of a segmentation fault.  Each model is the local table's.
query(q{
	CREATE TABLE long_user (user_id int, item_id int, rating real);
	INSERT INTO long_user SELECT 1, i, 1 + i % 5 FROM generate_series(1, 300) i;
	INSERT INTO long_user SELECT u, i, 1 + (u + i) % 5 FROM generate_series(2, 60) u,
	       generate_series(1, 300) i WHERE (u * i) % 7 = 0;
	CREATE TABLE long_user_local AS SELECT * FROM long_user;
	SELECT create_distributed_table('long_user', 'user_id');
});
foreach my $variant ('double_precision := true', 'nonnegative := true')
{
	my $train = "k := 3, lambda := 1, iterations := 3, $variant";
	query("SET mf_ext.citus_training = 'workers'; "
		  . "SELECT mf_train('long_user', $train, model_name := 'long_dist')");
	query("SELECT mf_train('long_user_local', $train, model_name := 'long_local')");
	is(factors('long_dist'), factors('long_local'),
		"a row of 300 ratings on the workers with $variant: the local table's model");
}

# A long row at a large k is stopped half-way on the workers too: a worker
# solves each row outside any parallel run, where the row's segments had no
# look for a cancel (a user of 65,000 ratings at k = 1024 in double precision
# held a statement_timeout off for seconds).  Timeouts at three points of the
# users' half-step come back within 1 s of each.
query(q{
	CREATE TABLE long_row (user_id bigint, item_id bigint, rating float8);
	SELECT create_distributed_table('long_row', 'user_id');
	INSERT INTO long_row SELECT 1, 1 + g % 64, 1 + g % 5 FROM generate_series(1, 65000) g;
	INSERT INTO long_row SELECT u, i, 3 FROM generate_series(2, 5) u, generate_series(1, 64) i;
});
my $long_row = "SELECT mf_train('long_row', k := 1024, lambda := 10, double_precision := true, "
  . "model_name := 'long_row', iterations := ";
my $sent = Time::HiRes::time();
query($long_row . '1)');
my $whole = Time::HiRes::time() - $sent;
diag(sprintf('a row of 65,000 ratings at k = 1024 on the workers: %.1fs', $whole));
foreach my $share (0.05, 0.15, 0.3)
{
	my $timeout_ms = int($whole * $share * 1000);
	$sent = Time::HiRes::time();
	($ret, $stdout, $stderr) = $coordinator->psql('postgres',
		"SET statement_timeout = '${timeout_ms}ms'; ${long_row}1000)");
	my $took = Time::HiRes::time() - $sent;
	like($stderr, qr/canceling statement due to statement timeout/,
		"statement_timeout of ${timeout_ms}ms stops a training with a long row on the workers");
	diag(sprintf('statement_timeout %dms, a row of 65,000 ratings at k = 1024 on the workers: back after %.3fs',
			$timeout_ms, $took));
	cmp_ok($took, '<', $timeout_ms / 1000 + 1, 'and is back within 1 s of it');
}

# A worker's kept connection to a coordinator that restarted is made again.
my $kept = $workers[0]->background_psql('postgres');
my $before_restart = $kept->query_safe(q{SELECT mf_predict('dist', 1, 2)});
$coordinator->restart;
is($kept->query_safe(q{SELECT mf_predict('dist', 1, 2)}), $before_restart,
	'after the coordinator restarted, the next call serves');
$kept->quit;

# The extension re-created on the coordinator starts model_id and version
# again: the workers' backends (one a worker for this session, kept
# between statements) must not serve the factors they cached under the
# same model_id and version.
my $recreate = q{DROP EXTENSION mf_ext CASCADE; CREATE EXTENSION mf_ext;
	SELECT mf_train('ratings', k := 5, lambda := %s, iterations := 3, model_name := 'dist') IS NULL;
	SELECT model_id || ' ' || version FROM mf_models;
	SELECT round(sum(mf_predict('dist', user_id, item_id))::numeric, 6) FROM ratings;
	WITH r AS MATERIALIZED (SELECT user_id, item_id FROM ratings)
	SELECT round(sum(mf_predict('dist', user_id, item_id))::numeric, 6) FROM r;};
my @recreated = split /\n/, query('SET citus.max_adaptive_executor_pool_size = 1; '
	  . sprintf($recreate, 0.5) . sprintf($recreate, 5));
is($recreated[1] . ';' . $recreated[5], '1 1;1 1', 're-created twice: each model has id 1 and version 1');
is($recreated[2], $recreated[3], 'the first served on the workers as on the coordinator');
is($recreated[6], $recreated[7], 'the second too, not from the first one\'s cache');
isnt($recreated[6], $recreated[2], '(the two models differ)');

# A node added later serves the models trained before it joined.
my $worker3 = mf_citus_node('worker3');
query("SELECT citus_add_node('127.0.0.1', " . $worker3->port . ')');
push @nodes, $worker3;
is($worker3->safe_psql('postgres', q{SELECT round(mf_predict('dist', 1, 2)::numeric, 9)}),
	query(q{SELECT round(mf_predict('dist', 1, 2)::numeric, 9)}), 'a worker added later serves the models');

$_->stop foreach @nodes;
done_testing();
