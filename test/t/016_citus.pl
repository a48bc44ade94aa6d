# mf_ext on Citus 12.1 (a coordinator and two workers on this machine):
# every reader returns what SELECT returns for distributed, reference,
# Citus-managed local and partitioned distributed tables, never the
# coordinator's own table behind them (an empty shell, or the rows it held
# before it was distributed).  The same rows local and distributed give the
# same model bit for bit; so do validation, mf_evaluate, cross-validation
# and the refits.  Never skipped: test/run-tests.sh builds Citus from
# ../shared/vendor (test/install-citus.sh) before the tests.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use lib 'test';
use MfTap;
use Test::More;

# Citus reaches the other nodes over 127.0.0.1, without TLS.
my @settings = ("shared_preload_libraries = 'citus'", "listen_addresses = '127.0.0.1'",
	"citus.node_conninfo = 'sslmode=disable'", 'max_worker_processes = 20');
my @nodes;
foreach my $name ('coordinator', 'worker1', 'worker2')
{
	my $node = mf_cluster($name);
	$node->append_conf('postgresql.conf', $_) foreach @settings;
	$node->append_conf('pg_hba.conf', 'host all all 127.0.0.1/32 trust');
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION citus');
	push @nodes, $node;
}
my ($coordinator, @workers) = @nodes;
$coordinator->safe_psql('postgres', q{SET client_min_messages = warning;
	SELECT citus_set_coordinator_host('127.0.0.1', } . $coordinator->port . ')');
$coordinator->safe_psql('postgres', "SELECT citus_add_node('127.0.0.1', " . $_->port . ')')
  foreach @workers;
is($coordinator->safe_psql('postgres', 'SELECT count(*) FROM citus_get_active_worker_nodes()'),
	'2', 'two workers');
$coordinator->safe_psql('postgres', 'CREATE EXTENSION mf_ext');

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

# Serving stays on the coordinator, where the models are: mf_predict in a
# query Citus runs on the workers finds no model there (an error, never a
# wrong number); over a materialized CTE it runs on the coordinator.
my ($ret, $stdout, $stderr) = $coordinator->psql('postgres',
	q{SELECT sum(mf_predict('dist', user_id, item_id)) FROM ratings});
like($stderr, qr/model "dist" does not exist/,
	'mf_predict pushed down to the workers: an error, not a number');
is(query(q{WITH r AS MATERIALIZED (SELECT user_id, item_id FROM ratings)
		SELECT round(sum(mf_predict('dist', user_id, item_id))::numeric, 6) FROM r}),
	query(q{SELECT round(sum(mf_predict('local', user_id, item_id))::numeric, 6) FROM ratings_local}),
	'over a materialized CTE, on the coordinator: the local predictions');

$_->stop foreach @nodes;
done_testing();
