# pg_dump and restore into a new database carry the models over: the
# configuration tables are dumped with their rows, and the restored models
# predict, recommend and rank exactly as before (1,000 pairs), but record
# no one as the recorder of their sources (a refit names them).  DROP
# EXTENSION drops the models with it; CREATE EXTENSION starts empty.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use lib 'test';
use MfTap;
use Test::More;

my $node = mf_node('dump');

$node->safe_psql('postgres', smooth_ratings(300, 200));
$node->safe_psql('postgres', q{
	CREATE TABLE named AS SELECT 'user ' || user_id AS who, 'item ' || item_id AS what, rating
	FROM ratings;
	SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 8, lambda := 1, biases := true);
	SELECT mf_train('ratings', k := 4, lambda := 0.5, double_precision := true, model_name := 'double');
	SELECT mf_train('named', user_col := 'who', item_col := 'what', k := 4, lambda := 1);
	SELECT mf_train('ratings', k := 4, feedback := 'implicit', model_name := 'implicit');
});

# 1,000 pairs (user, item) at random, asked of each model.
my $answers = q{
	SELECT string_agg(a, ';' ORDER BY a) FROM (
	  SELECT format('%s %s %s %s', m.name, p.u, p.i,
	                CASE WHEN m.user_key_type IS NULL
	                     THEN mf_predict(m.model_id, p.u, p.i)
	                     ELSE mf_predict(m.model_id, 'user ' || p.u, 'item ' || p.i) END) AS a
	  FROM mf_models m,
	       (SELECT 1 + abs(hashint8(n)) % 300 AS u, 1 + abs(hashint8(-n)) % 200 AS i
	        FROM generate_series(1, 1000) n) p
	  UNION ALL
	  SELECT format('top %s %s', m.name, (SELECT array_agg(item_id ORDER BY score DESC, item_id)
	                                     FROM mf_recommend(m.model_id, 7, 10)))
	  FROM mf_models m WHERE m.user_key_type IS NULL
	  UNION ALL
	  SELECT format('similar %s', (SELECT array_agg(item_id) FROM mf_similar_items('ratings', 3, 10)))
	) t};
my $before = $node->safe_psql('postgres', $answers);
my $models = $node->safe_psql('postgres', 'SELECT count(*) FROM mf_models');
is($models, '4', 'four models trained');

my $dump = $node->basedir . '/db.dump';
$node->command_ok([ 'pg_dump', '--format=custom', '--file=' . $dump,
		'--dbname=' . $node->connstr('postgres') ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '--exit-on-error', '--dbname=' . $node->connstr('restored'),
		$dump ], 'pg_restore into a new database');

is($node->safe_psql('restored', $answers), $before,
	'the restored models give the same 1,000 predictions per model, lists and neighbours');
is($node->safe_psql('restored', q{
	SELECT count(*) FROM mf_models m JOIN mf_user_factors u USING (model_id)}),
	$node->safe_psql('postgres', q{
	SELECT count(*) FROM mf_models m JOIN mf_user_factors u USING (model_id)}),
	'every factor row is restored');
my $history = q{SELECT string_agg(row(h.*)::text, ';' ORDER BY model_id, run, iteration)
	FROM mf_model_history h};
is($node->safe_psql('restored', $history), $node->safe_psql('postgres', $history),
	'the training history is restored');

# The restore's writes record no one as the source's recorder (they were
# stamped with the restoring role, so that a source another role had
# planted looked like the restorer's own): a refit names its source and
# columns, or the model is retrained.
is($node->safe_psql('postgres', 'SELECT count(source_recorded_by) FROM mf_models'), '4',
	'the trainings recorded their role');
is($node->safe_psql('restored', 'SELECT count(source_recorded_by) FROM mf_models'), '0',
	'the restored models record no one');
my ($refit_rc, $refit_out, $refit_err) = $node->psql('restored', "SELECT mf_refit_users('ratings')");
like($refit_err, qr/follows the source and columns a model records only for the role that recorded them, and model \d+ records none/,
	'a refit after the restore does not follow the recorded source');
is($node->safe_psql('restored',
		"SELECT mf_refit_users('ratings', 'ratings', 'user_id', 'item_id', 'rating') > 0"),
	't', 'and refits from the source it names');

# The next model trained after the restore gets a new id and a new version.
$node->safe_psql('restored', q{SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 2, model_name := 'after restore')});
is($node->safe_psql('restored', q{
	SELECT count(DISTINCT model_id) = 5 AND count(DISTINCT version) = 5 FROM mf_models}),
	't', 'training after the restore takes fresh model ids and versions');

# DROP EXTENSION takes the models (its tables) with it; CREATE starts empty.
$node->safe_psql('restored', 'DROP EXTENSION mf_ext');
is($node->safe_psql('restored', q{SELECT to_regclass('mf_models') IS NULL}), 't',
	'DROP EXTENSION drops the model tables');
$node->safe_psql('restored', 'CREATE EXTENSION mf_ext');
is($node->safe_psql('restored', 'SELECT count(*) FROM mf_models'), '0',
	'CREATE EXTENSION starts with no models');
my ($ret, $stdout, $stderr) = $node->psql('restored', "SELECT mf_predict('ratings', 1, 1)");
like($stderr, qr/model "ratings" does not exist/, 'and the old models are gone');

$node->stop;
done_testing();
