# Training next to the shards on Citus 12.1 (a coordinator and two
# workers): mf_train on a hash-distributed table solves each half-step on
# the workers (src/distributed.c) and gives the model a single node gives
# the same rows, bit for bit (J of the iterations before the last to
# rounding), for every option the workers solve, ids of
# any type, tables distributed by the user or the item column and
# partitioned ones.  What the workers do not solve trains on the
# coordinator with a NOTICE (or an error, with mf_ext.citus_training =
# 'workers').  A cancel stops it within a second, a worker's backend killed
# mid-training fails it, and neither leaves a model, a copy of the ratings
# or a lock behind; ratings written under it do not change the model (it
# reads the source once); a retrain while the workers serve the model is
# served from the next statement; ratings too large to sum get mf_ext's
# error, and copy names another role took are passed over.  Never skipped:
# test/run-tests.sh builds Citus first.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(time usleep);
use lib 'test';
use MfTap;
use Test::More;

my ($coordinator, @workers) = mf_citus_cluster('worker1', 'worker2');
my @nodes = ($coordinator, @workers);

sub query { return $coordinator->safe_psql('postgres', "SET client_min_messages = warning; $_[0]") }

# A model's rows (factors, biases, keys, supports, rated items; the model's
# counts, mean, range, training RMSE and the last iteration's J), as text
# to the last digit.  (J of the iterations before the last is summed in
# another order on a single node, where the own kernels' Cholesky sums it
# a half-step late: loss_gap compares it.)
sub model
{
	my ($name) = @_;
	return query(qq{SET extra_float_digits = 3;
		SELECT concat_ws(' ', n_users, n_items, n_ratings, skipped_rows, global_mean, rating_min,
		       rating_max, loss[array_length(loss, 1)], train_rmse) FROM mf_models WHERE name = '$name';
		SELECT string_agg(concat_ws(' ', user_id, user_key, factors, bias, support, rated_items), ';'
		       ORDER BY user_id) FROM mf_user_factors JOIN mf_models USING (model_id) WHERE name = '$name';
		SELECT string_agg(concat_ws(' ', item_id, item_key, factors, bias, support), ';'
		       ORDER BY item_id) FROM mf_item_factors JOIN mf_models USING (model_id) WHERE name = '$name';});
}

# Trains $model_name on $table with $options on the workers (an error if
# it could not be) and on $local with the coordinator's own solver.
# The largest relative difference between the J of each iteration of two
# models, and their iterations run ("gap iterations iterations").
sub loss_gap
{
	my ($a, $b) = @_;
	return query(qq{
		SELECT coalesce(max(abs(x.j - y.j) / y.j), 0) || ' ' || max(x.i) || ' ' || max(y.i)
		FROM (SELECT j, i FROM mf_models m, unnest(m.loss) WITH ORDINALITY AS u(j, i) WHERE m.name = '$a') x
		FULL JOIN (SELECT j, i FROM mf_models m, unnest(m.loss) WITH ORDINALITY AS u(j, i) WHERE m.name = '$b') y
		USING (i)});
}

sub train_both
{
	my ($table, $local, $options) = @_;
	query(qq{SELECT mf_drop_model(name) FROM mf_models WHERE name IN ('workers', 'single');
		SET mf_ext.citus_training = 'workers';
		SELECT mf_train('$table', $options, model_name := 'workers');
		SET mf_ext.citus_training = 'coordinator';
		SELECT mf_train('$local', $options, model_name := 'single');});
}

# Ratings with duplicates and rows with NULLs (but for the distribution
# column, which Citus keeps from being NULL), distributed by user; the
# same rows in a local table.
query(q{
	CREATE TABLE ratings (user_id bigint, item_id int, rating numeric);
	INSERT INTO ratings SELECT u, 1 + (u * 7 + j * 13) % 120, 1 + (u * 3 + j * 5) % 9 / 2.0
	FROM generate_series(1, 400) u, generate_series(1, 1 + u % 25) j;
	INSERT INTO ratings VALUES (1, 1, 4.5), (1, 1, 1), (2, 5, NULL), (3, NULL, 2);
	CREATE TABLE ratings_local AS SELECT * FROM ratings;
	SELECT create_distributed_table('ratings', 'user_id');
});
my @option_sets = (
	'k := 3, lambda := 0.5',
	'k := 4, lambda := 0.5, biases := true, bias_lambda := 2, lambda_per_rating := 0.05, clip := true',
	'k := 5, lambda := 0.02, weighted_lambda := true, double_precision := true',
	'k := 3, lambda := 0.5, nonnegative := true',
	'k := 0, lambda := 0.5, biases := true',
	'k := 3, lambda := 0.1, tolerance := 0.02, iterations := 40');
foreach my $options (@option_sets)
{
	train_both('ratings', 'ratings_local', $options);
	is(model('workers'), model('single'), "solved on the workers, $options: the single node's model, bit for bit");
	my ($gap, $workers_iterations, $single_iterations) = split / /, loss_gap('workers', 'single');
	ok($gap < 1e-12 && $workers_iterations == $single_iterations,
		"solved on the workers, $options: J of every iteration the single node's to rounding ($gap)");
}
like(model('workers'), qr/^\d+ \d+ \d+ 2 /, 'the two rows with a NULL skipped and counted');
is(query(q{SELECT count(*) FROM pg_class WHERE relname LIKE 'mf_train_by_%'}), '0',
	'the copy of the ratings distributed by item is dropped');
is(join(',', map { $_->safe_psql('postgres', q{SELECT count(*) FROM pg_class WHERE relname LIKE 'mf_train_by_%'}) } @workers),
	'0,0', '... on the workers too');

# Validation and early stopping, and a warm start, read on the coordinator.
query(q{CREATE TABLE held_out AS SELECT * FROM ratings_local WHERE user_id % 5 = 0 AND item_id % 3 = 0});
train_both('ratings', 'ratings_local',
	'k := 3, lambda := 0.3, iterations := 30, validation := \'held_out\', patience := 2');
is(model('workers'), model('single'), 'with validation and patience: the same model');
is(query(q{SELECT string_agg(validation_rmse::text, ',' ORDER BY iteration) FROM mf_training_history('workers')}),
	query(q{SELECT string_agg(validation_rmse::text, ',' ORDER BY iteration) FROM mf_training_history('single')}),
	'... and the same validation RMSE at each iteration');
query(q{SET mf_ext.citus_training = 'workers';
	SELECT mf_train('ratings', k := 3, lambda := 0.3, iterations := 2, patience := 0, model_name := 'workers', warm_start := true);
	SET mf_ext.citus_training = 'coordinator';
	SELECT mf_train('ratings_local', k := 3, lambda := 0.3, iterations := 2, patience := 0, model_name := 'single', warm_start := true);});
is(model('workers'), model('single'), 'a warm start: the same model');

# Text and uuid ids, distributed by the item column (the users' copy is made).
query(q{
	CREATE TABLE keyed (customer text, product uuid, stars real);
	INSERT INTO keyed SELECT 'c' || user_id, md5(item_id::text)::uuid, rating FROM ratings_local
	WHERE item_id IS NOT NULL;
	CREATE TABLE keyed_local AS SELECT * FROM keyed;
	SELECT create_distributed_table('keyed', 'product');
});
train_both('keyed', 'keyed_local',
	"k := 3, lambda := 0.5, biases := true, user_col := 'customer', item_col := 'product', rating_col := 'stars'");
is(model('workers'), model('single'), 'text users and uuid items, distributed by item: the same model');
like(model('workers'), qr/ c10 /, '(the keys are kept)');

# A partitioned table distributed by user.
query(q{
	CREATE TABLE parts (user_id int, item_id bigint, rating float8) PARTITION BY RANGE (user_id);
	CREATE TABLE parts_low PARTITION OF parts FOR VALUES FROM (0) TO (200);
	CREATE TABLE parts_high PARTITION OF parts FOR VALUES FROM (200) TO (100000);
	SELECT create_distributed_table('parts', 'user_id');
	INSERT INTO parts SELECT * FROM ratings_local WHERE user_id IS NOT NULL;
	CREATE TABLE parts_local AS SELECT * FROM parts;
});
train_both('parts', 'parts_local', 'k := 3, lambda := 0.5, biases := true');
is(model('workers'), model('single'), 'a partitioned distributed table: the same model');

my ($ret, $stdout, $stderr);

# An id column of a type with a modifier (char(6)) and a domain.
query(q{
	CREATE DOMAIN customer_id AS bigint CHECK (VALUE > 0);
	CREATE TABLE padded (customer customer_id, product char(6), stars real);
	INSERT INTO padded SELECT user_id, 'i' || item_id, rating FROM ratings_local
	WHERE item_id IS NOT NULL AND rating IS NOT NULL;
	CREATE TABLE padded_local AS SELECT * FROM padded;
	SELECT create_distributed_table('padded', 'customer');
});
train_both('padded', 'padded_local',
	"k := 3, lambda := 0.5, user_col := 'customer', item_col := 'product', rating_col := 'stars'");
is(model('workers'), model('single'), 'char(6) items and domain users: the same model');

# The coordinator holding shards too (Citus runs those in the training's
# own backend, which must see the copies it wrote).
query(q{SELECT citus_set_node_property('127.0.0.1', } . $coordinator->port . q{, 'shouldhaveshards', true);
	CREATE TABLE spread AS SELECT * FROM ratings_local WHERE user_id IS NOT NULL;
	CREATE TABLE spread_local AS SELECT * FROM spread;
	SELECT create_distributed_table('spread', 'user_id');});
train_both('spread', 'spread_local', 'k := 3, lambda := 0.5, biases := true');
is(model('workers'), model('single'), 'shards on the coordinator as well: the same model');
query(q{SELECT citus_set_node_property('127.0.0.1', } . $coordinator->port . q{, 'shouldhaveshards', false)});

# The workers' aggregate under grouping sets: each group holds its own
# fixed side (a grand total's group outlives the groups of the others).
my $fixed_side = q{decode('5346666d' || '01000000' || '08000000'
	|| regexp_replace(lpad(to_hex(n), 8, '0'), '(..)(..)(..)(..)', '\4\3\2\1')
	|| '00000000' || '00000000'
	|| regexp_replace(lpad(to_hex(token), 16, '0'), '(..)(..)(..)(..)(..)(..)(..)(..)', '\8\7\6\5\4\3\2\1')
	|| '9a9999999999b93f' || '000000000000f0bf' || repeat('00', 16), 'hex')
	|| (SELECT string_agg(decode(regexp_replace(lpad(to_hex(i), 16, '0'), '(..)(..)(..)(..)(..)(..)(..)(..)', '\8\7\6\5\4\3\2\1'), 'hex'), ''::bytea ORDER BY i) FROM generate_series(1, n) i)
	|| decode(repeat('00', n * 8 * 8), 'hex')};
query(qq{CREATE TABLE fixed_sides AS WITH p(id, n, token) AS (VALUES (1, 300000, 111), (2, 350000, 222))
	SELECT id, $fixed_side AS side FROM p});
($ret, $stdout, $stderr) = $coordinator->psql('postgres', q{SELECT g, length(mf_als_half_step(other, r,
		CASE WHEN g = 1 THEN (SELECT side FROM fixed_sides WHERE id = 1) ELSE (SELECT side FROM fixed_sides WHERE id = 2) END))
	FROM (VALUES (1, 5::bigint, 1.0::float8), (2, 300001, 2.0), (2, 349999, 3.0)) v(g, other, r)
	GROUP BY ROLLUP (g) ORDER BY g});
like($stderr, qr/mf_als_half_step's fixed side is not one mf_train sent: a second one in a group/,
	'two fixed sides in a grand total\'s group: refused, not a crash');
is($coordinator->safe_psql('postgres', 'SELECT 1'), '1', '... and the server is up');
($ret, $stdout, $stderr) = $coordinator->psql('postgres', q{CREATE AGGREGATE other_state(text, text)
	(SFUNC = string_agg_transfn, STYPE = internal, FINALFUNC = mf_als_half_step_solve);
	SELECT other_state('abc', ',')});
like($stderr, qr/mf_als_half_step_solve is mf_als_half_step's final function and takes only its state/,
	'its final function over another aggregate\'s state: refused, not a crash');

# What the workers do not solve trains on the coordinator, and says why.
($ret, $stdout, $stderr) = $coordinator->psql('postgres',
	q{SELECT mf_train('ratings', k := 2, feedback := 'implicit', iterations := 2, model_name := 'elsewhere')});
like($stderr, qr/NOTICE:  mf_train reads the ratings of public.ratings onto the coordinator instead of solving next to the shards\nDETAIL:  The workers solve explicit ratings; implicit feedback trains on the coordinator./,
	'implicit feedback: trained on the coordinator, with a NOTICE saying why');
is($ret, 0, '... and trained');
($ret, $stdout, $stderr) = $coordinator->psql('postgres',
	q{SET mf_ext.citus_training = 'workers'; SELECT mf_train('ratings', k := 2, solver := 'cg', model_name := 'cg')});
like($stderr, qr/ERROR:  mf_train cannot solve public.ratings on the Citus workers, and mf_ext.citus_training is 'workers'\nDETAIL:  The workers solve each row exactly; solver 'cg' trains on the coordinator./,
	"solver 'cg' with mf_ext.citus_training = 'workers': an error saying why");
($ret, $stdout, $stderr) = $coordinator->psql('postgres',
	q{SET mf_ext.citus_training = 'workers'; SELECT mf_train('ratings_local', k := 2, model_name := 'elsewhere')});
like($stderr, qr/public.ratings_local is not a hash-distributed Citus table, and mf_ext.citus_training is 'workers'/,
	'a local table with mf_ext.citus_training = \'workers\': an error');
($ret, $stdout, $stderr) = $coordinator->psql('postgres',
	q{SELECT mf_als_half_step(1::bigint, 2.0, '\x00'::bytea)});
like($stderr, qr/mf_als_half_step's fixed side is not one mf_train sent: too short/,
	'the workers\' aggregate called by hand with a made-up fixed side: refused');

# A role that may not create tables in the source's schema: the copy by
# item cannot be made, and the training reads onto the coordinator.
query(q{CREATE ROLE trainer LOGIN; GRANT SELECT ON ratings TO trainer;
	GRANT SELECT, INSERT, UPDATE, DELETE ON mf_models, mf_user_factors, mf_item_factors, mf_model_history TO trainer;
	GRANT USAGE ON SEQUENCE mf_models_model_id_seq, mf_model_version_seq TO trainer;});
($ret, $stdout, $stderr) = $coordinator->psql('postgres',
	q{SET ROLE trainer; SELECT mf_train('ratings', k := 2, lambda := 0.5, iterations := 2, model_name := 'trainer')});
like($stderr, qr/mf_train copies the ratings, distributed by user and by item, into schema public while it trains, and the current role may not create tables there.\nHINT:  To train on the workers, GRANT CREATE ON SCHEMA public TO trainer/,
	'a role without CREATE on the schema: trained on the coordinator, told why and what to grant');
is($ret, 0, '... and trained');
query(q{GRANT CREATE ON SCHEMA public TO trainer});
($ret, $stdout, $stderr) = $coordinator->psql('postgres', q{SET ROLE trainer; SET mf_ext.citus_training = 'workers';
	SELECT mf_train('ratings', k := 2, lambda := 0.5, iterations := 2, model_name := 'trainer')});
is($ret, 0, 'granted CREATE on the schema: the role trains on the workers');

# Bigger ratings for the interruptions: 300,000 of 3,000 users.
query(q{
	CREATE TABLE big (user_id int, item_id int, rating real);
	SELECT create_distributed_table('big', 'user_id');
	INSERT INTO big SELECT u, 1 + (u * 7919 + j * 104729) % 4000, 1 + (u + j) % 5
	FROM generate_series(1, 3000) u, generate_series(1, 100) j;
});
query(q{SELECT mf_train('big', k := 8, lambda := 0.5, iterations := 2, model_name := 'big')});
my $before = query(model_fingerprint());
my $long = q{SELECT mf_train('big', k := 48, lambda := 0.5, iterations := 200, model_name := 'big')};

# Leftovers of an interrupted training: copies, prepared transactions, locks.
sub leftovers
{
	return join(',',
		map {
			$_->safe_psql('postgres', q{SELECT (SELECT count(*) FROM pg_class WHERE relname LIKE 'mf_train_by_%')
				|| '/' || (SELECT count(*) FROM pg_prepared_xacts)
				|| '/' || (SELECT count(*) FROM pg_locks WHERE relation = 'mf_models'::regclass)})
		} @nodes);
}

# A cancel stops the training within a second, everywhere.
my $session = $coordinator->background_psql('postgres', on_error_stop => 0);
$session->query_until(qr/started/, "\\echo started\n$long;\n");
usleep(3_000_000);
my $pid = query(q{SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT mf_train(''big''%' AND state = 'active'});
ok($pid > 0, 'the training runs');
my $cancelled = time();
query("SELECT pg_cancel_backend($pid)");
my $waited = 0;
$waited += 0.01, usleep(10_000)
  while query("SELECT count(*) FROM pg_stat_activity WHERE pid = $pid AND state = 'active'") ne '0'
  && $waited < 30;
my $stopped = time() - $cancelled;
ok($stopped < 1.0, sprintf('cancelled: the coordinator\'s backend is idle %.2f s after the cancel', $stopped));
$session->quit;
$waited = 0;
$waited += 0.1, usleep(100_000)
  while join(',', map { $_->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%mf_als_half_step%' AND state = 'active' AND pid <> pg_backend_pid()}) } @workers) ne '0,0'
  && $waited < 10;
ok($waited < 1.0, sprintf('... and no worker still solves %.1f s later', $waited));
is(query(model_fingerprint()), $before, 'the previous model is intact');
is(leftovers(), '0/0/0,0/0/0,0/0/0', 'no copy, prepared transaction or lock is left on any node');

# A worker's backend killed with SIGKILL mid-training: the training fails
# (the worker restarts), the previous model stays, the next training works.
$workers[1]->safe_psql('postgres', 'ALTER SYSTEM SET restart_after_crash = on; SELECT pg_reload_conf()');
$session = $coordinator->background_psql('postgres', on_error_stop => 0);
$session->query_until(qr/started/, "\\echo started\n$long;\n");
my $victim = '';
$waited = 0;
while ($victim eq '' && $waited < 30)
{
	$victim = $workers[1]->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE query LIKE '%mf_als_half_step%' AND state = 'active' AND pid <> pg_backend_pid() LIMIT 1});
	$waited += 0.05;
	usleep(50_000);
}
ok($victim ne '', 'a worker backend solving a half-step');
kill_backend($workers[1], $victim);
my $result = $session->query(q{SELECT 'after the kill'});
$session->quit;
is(query(model_fingerprint()), $before, 'the worker backend killed: the previous model is intact');
query(q{SELECT citus_check_cluster_node_health()});
$waited = 0;
$waited += 0.5, usleep(500_000), query(q{SELECT recover_prepared_transactions()})
  while leftovers() ne '0/0/0,0/0/0,0/0/0' && $waited < 30;
is(leftovers(), '0/0/0,0/0/0,0/0/0', '... and nothing is left on any node');
query(q{SELECT mf_train('big', k := 8, lambda := 0.5, iterations := 2, model_name := 'big_again')});
is(query(q{SELECT n_ratings FROM mf_models WHERE name = 'big_again'}), '300000', 'the next training works');

# Ratings written while the workers solve: the training reads the source
# once (into its copies), so a write in the middle of it changes nothing,
# where the half-steps' own statements would have mixed two snapshots.
query(q{CREATE TABLE big_before AS SELECT * FROM big});
$session = $coordinator->background_psql('postgres', on_error_stop => 0);
$session->query_until(qr/started/, "\\echo started\nSET mf_ext.citus_training = 'workers';\n"
	  . "SELECT mf_train('big', k := 16, lambda := 0.5, iterations := 25, biases := true, model_name := 'mid');\n");
usleep(3_000_000);
query(q{UPDATE big SET rating = 6 - rating WHERE user_id % 2 = 0; INSERT INTO big VALUES (999999, 1, 5)});
$result = $session->query(q{SELECT 'trained'});
unlike($session->{stderr}, qr/ERROR/, 'ratings updated and inserted mid-training: the training ends without an error');
$session->quit;
query(q{SET mf_ext.citus_training = 'coordinator';
	SELECT mf_train('big_before', k := 16, lambda := 0.5, iterations := 25, biases := true, model_name := 'before')});
is(model('mid'), model('before'), '... with the model of the ratings as they were when it began, bit for bit');
query(q{UPDATE big SET rating = 6 - rating WHERE user_id % 2 = 0; DELETE FROM big WHERE user_id = 999999});

# A retrain while the workers serve the model: the serving query ends
# without an error, and the next statement serves the new model.
my $sum = q{SELECT round(sum(mf_predict('big', user_id, item_id))::numeric, 6) FROM big};
my $served_before = query($sum);
$session = $coordinator->background_psql('postgres', on_error_stop => 0);
$session->query_until(qr/serving/, "\\echo serving\nSELECT count(mf_predict('big', user_id, item_id)) FROM big WHERE item_id <> 1 OR pg_sleep(0.2) IS NOT NULL;\n");
query(q{SELECT mf_train('big', k := 6, lambda := 0.7, iterations := 2, model_name := 'big')});
$result = $session->query(q{SELECT 'done'});
unlike($session->{stderr}, qr/ERROR/, 'the distributed serving query during the retrain ended without an error');
$session->quit;
my $served_after = query($sum);
isnt($served_after, $served_before, 'the next statement serves the retrained model on the workers');
is($served_after, query(qq{WITH r AS MATERIALIZED (SELECT user_id, item_id FROM big)
	SELECT round(sum(mf_predict('big', user_id, item_id))::numeric, 6) FROM r}),
	'... the coordinator\'s answers');

# Ratings whose squares, summed, would overflow double precision: mf_ext's
# error with a hint (the workers' sums had failed with PostgreSQL's bare
# overflow error; attack helper 202), no model.  1e154 is refused for its
# square times the four ratings copied (sqrt(DBL_MAX / 4) is 6.7e153), as
# on one node, though its square alone is below DBL_MAX.
query(q{CREATE TABLE huge (user_id int, item_id int, rating float8);
	SELECT create_distributed_table('huge', 'user_id');
	INSERT INTO huge VALUES (1, 1, 1e154), (2, 1, 1), (3, 2, 1), (1, 2, 2)});
($ret, $stdout, $stderr) = $coordinator->psql('postgres',
	q{SET mf_ext.citus_training = 'workers'; SELECT mf_train('huge', k := 2, biases := true)});
like($stderr, qr/ERROR:  rating of user 1 for item 1 in public.huge is 1e\+154, too large to train on\nDETAIL:  Ratings that large, squared and summed over the ratings, pass the largest double-precision number.\nHINT:  Scale the ratings/,
	'ratings of 1e154 among four on the workers: mf_ext\'s error, with a hint');
is(query(q{SELECT count(*) FROM mf_models WHERE name = 'huge'}), '0', '... and no model');

# A rating beyond a float's range, in single precision (the default):
# refused after the totals, naming a pair, as one node refuses it
# (mf_ratings_check_scale), with a hint to train in double precision,
# which trains it.
query(q{TRUNCATE huge; INSERT INTO huge VALUES (1, 1, 1e40), (2, 1, 2e40), (3, 2, 1e40), (1, 2, 3e40)});
($ret, $stdout, $stderr) = $coordinator->psql('postgres',
	q{SET mf_ext.citus_training = 'workers'; SELECT mf_train('huge', k := 2)});
like($stderr, qr/ERROR:  rating of user \d for item \d in public.huge is [123]e\+40, too large to train on in single precision\nDETAIL:  It is beyond the largest single-precision number \(3.4028235e\+38\): the solve's targets, in single precision, cannot hold it.\nHINT:  .*; or pass double_precision := true\./,
	'a rating of 1e40 in single precision on the workers: refused, with a hint');
is(query(q{SELECT count(*) FROM mf_models WHERE name = 'huge'}), '0', '... and no model');
is(query(q{SET mf_ext.citus_training = 'workers';
	SELECT mf_train('huge', k := 2, double_precision := true) IS NOT NULL}), 't',
	'... trained in double precision');
is(query(q{SELECT mf_drop_model('huge')}), '', '... (dropped)');

# The working copies' names: a table that another role created in the
# source's schema under the name the next copy would take is passed over
# (attack helper 202: it had failed the training with "already exists");
# the users' copy passes two, the items' (numbered after it) one.
query(q{CREATE ROLE squatter LOGIN; GRANT CREATE ON SCHEMA public TO squatter});
$session = $coordinator->background_psql('postgres', on_error_stop => 0);
$pid = $session->query_safe(q{SELECT pg_backend_pid()});
$coordinator->safe_psql('postgres', qq{SET ROLE squatter;
	CREATE TABLE public.mf_train_by_user_${pid}_1 (x int); CREATE TABLE public.mf_train_by_user_${pid}_2 (x int);
	CREATE TABLE public.mf_train_by_item_${pid}_4 (x int)});
$result = $session->query(q{SET client_min_messages = warning; SET mf_ext.citus_training = 'workers';
	SELECT mf_train('ratings', k := 2, lambda := 0.5, iterations := 2, model_name := 'squatted') > 0});
unlike($session->{stderr}, qr/ERROR/, 'copy names taken by another role: passed over, trained');
is($result, 't', '... and the model stored');
$session->quit;
is(query(q{SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class WHERE relname LIKE 'mf_train_by_%'}),
	"mf_train_by_item_${pid}_4,mf_train_by_user_${pid}_1,mf_train_by_user_${pid}_2",
	'... the other role\'s tables left as they were, no copy left behind');

$_->stop foreach @nodes;
done_testing();
