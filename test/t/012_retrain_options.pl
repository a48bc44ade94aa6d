# What a retraining says: the options of the model's last training that the
# call does not name are kept, and a NOTICE lists those that differ from a
# first training's and what the call changes (named, or following a change
# of feedback kind; ids of another type too).  The regression suite checks
# the stored options and factors; here the messages, which the per-iteration
# NOTICEs (machine-dependent J) keep out of pg_regress's expected output.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use lib 'test';
use MfTap;
use Test::More;

my $node = mf_node('main');
$node->safe_psql('postgres', smooth_ratings(60, 40));
$node->safe_psql('postgres', q{
	CREATE VIEW text_ratings AS
	SELECT 'u' || user_id AS user_id, item_id, rating FROM ratings});

# The retraining NOTICE's lines of a call (message, DETAIL, HINT), or ''.
sub retrain_notice
{
	my ($call) = @_;
	my ($stdout, $stderr) = ('', '');
	$node->psql('postgres', "SELECT $call IS NOT NULL",
		stdout => \$stdout, stderr => \$stderr, on_error_die => 1);
	$stderr =~ s/^psql:<stdin>:\d+: //mg;
	my @lines = grep { !/NOTICE:  iteration|DETAIL:  [0-9.]+ s this iteration/ }
	  split /\n/, $stderr;
	return join("\n", @lines);
}

is(retrain_notice(q{mf_train('ratings', k := 4, lambda := 2, iterations := 3, biases := true, model_name := 'm')}),
	'', 'a first training says nothing of options');

is(retrain_notice(q{mf_train('ratings', model_name := 'm')}),
	qq{NOTICE:  model "m" keeps the options of its last training that this call does not name
DETAIL:  Kept: k = 4, lambda = 2, iterations = 3, biases = true.
HINT:  Name an option to change it, or drop the model with mf_drop_model to train it from the defaults.},
	'a retraining names what it keeps');

is(retrain_notice(q{mf_train('ratings', lambda := 1, k := NULL, model_name := 'm')}),
	qq{NOTICE:  model "m" keeps the options of its last training that this call does not name
DETAIL:  Kept: k = 4, iterations = 3, biases = true.  Changed: lambda 2 -> 1.
HINT:  Name an option to change it, or drop the model with mf_drop_model to train it from the defaults.},
	'and what it changes; NULL is not naming');

is(retrain_notice(q{mf_train('ratings', k := 4, lambda := 1, iterations := 3, biases := true, model_name := 'm')}),
	'', 'naming every option it had says nothing');

is(retrain_notice(q{mf_train('ratings', k := 4, lambda := 1, iterations := 3, biases := false, feedback := 'implicit', model_name := 'm')}),
	qq{NOTICE:  model "m" is retrained with other options
DETAIL:  Changed: biases true -> false, feedback explicit -> implicit, alpha none -> 40, solver cholesky -> cg.},
	'another feedback kind brings its solver and alpha');

is(retrain_notice(q{mf_train('text_ratings', model_name := 'm')}),
	qq{NOTICE:  model "m" keeps the options of its last training that this call does not name
DETAIL:  Kept: k = 4, lambda = 1, iterations = 3, feedback = implicit, alpha = 40, solver = cg.  Changed: user ids integer -> text.
HINT:  Name an option to change it, or drop the model with mf_drop_model to train it from the defaults.
NOTICE:  model "m" was trained on public.ratings and is now replaced by one trained on public.text_ratings
HINT:  Pass model_name to keep models of different relations apart.},
	'ids of another type are a change too');

is(retrain_notice(q{mf_train('text_ratings', iterations := 2, model_name := 'm')}),
	qq{NOTICE:  model "m" keeps the options of its last training that this call does not name
DETAIL:  Kept: k = 4, lambda = 1, feedback = implicit, alpha = 40, solver = cg.  Changed: iterations 3 -> 2.
HINT:  Name an option to change it, or drop the model with mf_drop_model to train it from the defaults.},
	'ids of the stored type are no change');

# A retraining reads the options it keeps with the model's row locked: one
# started while another retraining of the model is open waits for it and
# keeps what it committed, instead of storing what was there before.
$node->safe_psql('postgres', q{
	SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 3, iterations := 2, model_name := 'cc')});
my $first = $node->background_psql('postgres');
$first->query_safe('SET client_min_messages = warning');
$first->query_safe('BEGIN');
$first->query_safe(q{SELECT mf_train('ratings', k := 7, lambda := 2, model_name := 'cc')});
my $second = $node->background_psql('postgres');
$second->query_safe('SET client_min_messages = warning');
$second->query_until(qr/started/, q{
	\echo started
	SELECT mf_train('ratings', iterations := 3, model_name := 'cc');
	\echo done
});
$node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity
	WHERE wait_event_type = 'Lock' AND query LIKE '%mf_train%'})
  or die 'the second retraining does not wait';
$first->query_safe('COMMIT');
$first->quit;
$second->query_until(qr/done/, '');
$second->quit;
is($node->safe_psql('postgres', q{
	SELECT k || ' ' || lambda || ' ' || iterations FROM mf_models WHERE name = 'cc'}),
	'7 2 3', 'a concurrent retraining keeps what the first committed');

# A refit waiting for a retraining's lock counts the histories it warns of
# in the version it then refits (the retraining's), not in its statement's
# snapshot: here the older model held fewer items per user than the refit's
# source, the retrained one more.
$node->safe_psql('postgres', q{
	CREATE TABLE few_items AS SELECT * FROM ratings WHERE item_id <= 10;
	CREATE TABLE more_items AS SELECT * FROM ratings WHERE item_id <= 20;
	SET client_min_messages = warning;
	SELECT mf_train('few_items', k := 2, iterations := 1, model_name := 'snap')});
my $retrainer = $node->background_psql('postgres');
$retrainer->query_safe('SET client_min_messages = warning');
$retrainer->query_safe('BEGIN');
$retrainer->query_safe(q{SELECT mf_train('ratings', k := 2, iterations := 1, model_name := 'snap')});
my $refitter = $node->background_psql('postgres');
$refitter->query_until(qr/started/, q{
	\echo started
	SELECT mf_refit_users('snap', 'more_items');
	\echo done
});
$node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity
	WHERE wait_event_type = 'Lock' AND query LIKE '%mf_refit_users%'})
  or die 'the refit does not wait';
$retrainer->query_safe('COMMIT');
$retrainer->quit;
$refitter->query_until(qr/done/, '');
like($refitter->{stderr}, qr/refitting \d+ users of model "snap" from fewer items than the model holds for them/,
	'a refit counts what the model holds in the version it waited for');
$refitter->quit;

# A retraining that waits for another transaction which drops the model and
# trains that name anew with other options, or renames another model to
# it, keeps the options of the model holding the name once that commits,
# as run one after the other (the row it waited for was gone, and it
# trained from the defaults, replacing that model without a word).
my $options = q{SELECT concat_ws('|', k, lambda, biases) FROM mf_models WHERE name = '%s'};
$node->safe_psql('postgres', q{
	SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 3, iterations := 1, model_name := 'w');
	SELECT mf_train('ratings', k := 5, lambda := 0.5, biases := true, iterations := 1, model_name := 'other')});
my ($out, $err) = call_waiting($node,
	q{SET client_min_messages = warning; BEGIN; SELECT mf_drop_model('w');
	  SELECT mf_train('ratings', k := 4, lambda := 0.25, biases := true, iterations := 1, model_name := 'w')},
	'SET client_min_messages = notice', q{SELECT mf_train('ratings', iterations := 1, model_name := 'w') > 0});
is($node->safe_psql('postgres', sprintf($options, 'w')), '4|0.25|t',
	'a retraining that waited behind a drop and a training anew keeps the new model\'s options');
like($err, qr/model "w" keeps the options of its last training that this call does not name\nDETAIL:  Kept: k = 4, lambda = 0.25, biases = true/,
	'and says so');
my $other_id = $node->safe_psql('postgres', q{SELECT model_id FROM mf_models WHERE name = 'other'});
($out, $err) = call_waiting($node,
	q{SET client_min_messages = warning; BEGIN;
	  UPDATE mf_models SET name = 'tmp' WHERE name = 'w';
	  UPDATE mf_models SET name = 'w' WHERE name = 'other';
	  UPDATE mf_models SET name = 'other' WHERE name = 'tmp'},
	undef, q{SELECT mf_train('ratings', iterations := 1, model_name := 'w')});
is($out, $other_id, 'a retraining that waited behind a swap of names retrains the model renamed to its name');
is($node->safe_psql('postgres', sprintf($options, 'w')), '5|0.5|t', 'keeping that model\'s options');

# A refit naming a model that another transaction renames while the refit
# waits for its row: an error, as for a drop (it refitted the model under
# its new name, while the name it was given meant another).
($out, $err) = call_waiting($node,
	q{BEGIN; UPDATE mf_models SET name = 'tmp' WHERE name = 'w';
	  UPDATE mf_models SET name = 'w' WHERE name = 'other';
	  UPDATE mf_models SET name = 'other' WHERE name = 'tmp'},
	undef, q{SELECT mf_refit_users('w', 'ratings', 'user_id', 'item_id', 'rating')});
like($err, qr/ERROR:  model "w" was renamed while mf_refit_users read it\nDETAIL:  It was renamed to "other" after this call had found it\.\nHINT:  Run mf_refit_users again, naming the model you mean\./,
	'a refit of a model renamed while it waited: an error that says so');
my $by_id = $node->safe_psql('postgres', q{SELECT model_id FROM mf_models WHERE name = 'w'});
($out, $err) = call_waiting($node,
	q{BEGIN; UPDATE mf_models SET name = 'renamed' WHERE name = 'w'},
	undef, qq{SELECT mf_refit_users($by_id, 'ratings', 'user_id', 'item_id', 'rating') > 0});
is($out, 't', 'by model_id, a refit of a model renamed while it waited refits it') or diag($err);

# Two first trainings of one new name: the second waits for the first's
# transaction (which holds the name), then retrains its model keeping its
# options (both trained from their own arguments, and the later commit
# replaced the earlier).
($out, $err) = call_waiting($node,
	q{SET client_min_messages = warning; BEGIN;
	  SELECT mf_train('ratings', k := 4, lambda := 0.25, iterations := 1, model_name := 'fresh')},
	'SET client_min_messages = notice', q{SELECT mf_train('ratings', iterations := 1, model_name := 'fresh') > 0});
is($node->safe_psql('postgres', sprintf($options, 'fresh')), '4|0.25|f',
	'a second first training of a name waits for the first, then retrains its model keeping its options');
like($err, qr/model "fresh" keeps the options of its last training that this call does not name\nDETAIL:  Kept: k = 4, lambda = 0.25/,
	'and says so');
is($node->safe_psql('postgres', q{SELECT count(*) FROM mf_model_history h JOIN mf_models m USING (model_id)
	WHERE m.name = 'fresh'}), '2', 'two runs in the history of one model');

# A first training under REPEATABLE READ whose snapshot predates a model of
# its name: 40001 before it fits, whether the call waited for that model's
# first training or the model committed before the call (it fitted the
# whole model, then failed at the store's INSERT).
sub rr_error
{
	my ($name) = @_;
	return qr/ERROR:  could not serialize access to model "$name": it was created, or renamed to that name, by a transaction that committed after this transaction's snapshot\nDETAIL:  Under REPEATABLE READ or SERIALIZABLE this transaction cannot read that model's options, and training a new model of the name would conflict with it\.\nHINT:  Run the transaction again: mf_train then retrains that model/;
}
($out, $err) = call_waiting($node,
	q{SET client_min_messages = warning; BEGIN;
	  SELECT mf_train('ratings', k := 3, lambda := 0.75, iterations := 1, model_name := 'rr')},
	q{SET client_min_messages = notice; BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM mf_models},
	q{SELECT mf_train('ratings', iterations := 1, model_name := 'rr')}, 'ROLLBACK;');
like($err, rr_error('rr'), 'under REPEATABLE READ, a first training that waited for another of its name: 40001');
unlike($err, qr/iteration 1 of 1|CONTEXT/, 'before it fits, not from its store');
my $rr = $node->background_psql('postgres', on_error_stop => 0);
$rr->query_safe(q{SET client_min_messages = notice; BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT count(*) FROM mf_models});
$node->safe_psql('postgres', q{SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 3, lambda := 0.75, iterations := 1, model_name := 'rr2')});
$rr->{stderr} = '';
$rr->query(q{SELECT mf_train('ratings', iterations := 1, model_name := 'rr2')});
like($rr->{stderr}, rr_error('rr2'), 'under SERIALIZABLE, a first training of a name committed since its snapshot: 40001');
unlike($rr->{stderr}, qr/iteration 1 of 1/, 'before it fits');
$rr->{stderr} = '';
$rr->query_safe('ROLLBACK; BEGIN ISOLATION LEVEL REPEATABLE READ');
$rr->query_safe(q{SET client_min_messages = warning; SELECT mf_train('ratings', iterations := 1, model_name := 'rr2')});
$rr->query_safe('COMMIT');
$rr->quit;
is($node->safe_psql('postgres', sprintf($options, 'rr2')), '3|0.75|f', 'run again, it retrains that model keeping its options');

# So are a retraining and a refit of a model that another transaction
# retrained after the snapshot: the extension's error, not PostgreSQL's
# with the internal SELECT ... FOR UPDATE as its CONTEXT.
my $changed = qr/ERROR:  could not serialize access to model "rr2": it was changed by a transaction that committed after this transaction's snapshot\nDETAIL:  A retraining, refit, rename, drop or other write of the model's row committed after this REPEATABLE READ or SERIALIZABLE transaction took its snapshot, which cannot read what it wrote \(could not serialize access due to concurrent update\)\.\nHINT:  Run the transaction again\./;
($out, $err) = call_waiting($node,
	q{SET client_min_messages = warning; BEGIN; SELECT mf_train('ratings', iterations := 1, model_name := 'rr2')},
	q{BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM mf_models},
	q{SELECT mf_train('ratings', iterations := 1, model_name := 'rr2')}, 'ROLLBACK;');
like($err, $changed, 'under REPEATABLE READ, a retraining that waited for another: 40001 that names the model');
unlike($err, qr/CONTEXT/, 'without the internal query as its CONTEXT');
($out, $err) = call_waiting($node,
	q{SET client_min_messages = warning; BEGIN; SELECT mf_train('ratings', iterations := 1, model_name := 'rr2')},
	q{BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM mf_models},
	q{SELECT mf_refit_users('rr2', 'ratings', 'user_id', 'item_id', 'rating')}, 'ROLLBACK;');
like($err, $changed, 'and a refit');

# Under REPEATABLE READ, a model renamed to the name and committed while a
# first training reads its source (here a view that waits for the renaming
# transaction's advisory lock): the store's 40001, as under READ COMMITTED,
# not PostgreSQL's from the internal INSERT with that as its CONTEXT.
$node->safe_psql('postgres', q{SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 2, iterations := 1, model_name := 'rr_old');
	CREATE VIEW gated AS SELECT r.* FROM ratings r, (SELECT pg_advisory_xact_lock_shared(4242)) g});
($out, $err) = call_waiting($node,
	q{BEGIN; SELECT pg_advisory_xact_lock(4242); UPDATE mf_models SET name = 'rr_new' WHERE name = 'rr_old'},
	q{BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM mf_models},
	q{SELECT mf_train('gated', iterations := 1, model_name := 'rr_new')}, 'ROLLBACK;');
like($err, qr/ERROR:  model "rr_new" was renamed, dropped or created while mf_train trained it\nDETAIL:  This training read the options/,
	'under REPEATABLE READ, a model renamed to the name a first training stores: its 40001');
unlike($err, qr/CONTEXT/, 'without the internal INSERT as its CONTEXT');
is($node->safe_psql('postgres', q{SELECT k FROM mf_models WHERE name = 'rr_new'}), '2', 'and that model is as it was');

# Under REPEATABLE READ, a user's trigger on mf_models that fails with 40001
# keeps its own message: only the lock of the model's row is reported as a
# change since the snapshot.
$node->safe_psql('postgres', q{
	CREATE FUNCTION says_no() RETURNS trigger LANGUAGE plpgsql AS
	  $$BEGIN RAISE EXCEPTION 'the trigger says no' USING ERRCODE = 'serialization_failure'; END$$;
	CREATE TRIGGER says_no BEFORE INSERT OR UPDATE ON mf_models FOR EACH ROW EXECUTE FUNCTION says_no()});
my ($ret, $stdout, $stderr) = $node->psql('postgres', q{SET client_min_messages = warning;
	BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT mf_train('ratings', iterations := 1, model_name := 'rr_new')});
like($stderr, qr/ERROR:  the trigger says no/, "a user's trigger's 40001 keeps its message");
$node->safe_psql('postgres', 'DROP TRIGGER says_no ON mf_models; DROP FUNCTION says_no()');

# A first training during which another transaction renames a model to
# its name: a serialization failure (40001) rather than that model
# replaced by one trained from the defaults.
my $n2 = $node->safe_psql('postgres', q{SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 5, lambda := 0.5, iterations := 1, model_name := 'n2')});
($out, $err) = call_waiting($node,
	q{BEGIN; UPDATE mf_models SET name = 'm2' WHERE name = 'n2'},
	undef, q{SELECT mf_train('ratings', iterations := 1, model_name := 'm2')});
like($err, qr/ERROR:  model "m2" was renamed, dropped or created while mf_train trained it\nDETAIL:  This training read the options of the model of that name when it started \(or found none\) and trained with them; since then another transaction, or this call's own statement, has renamed, dropped or created a model of that name\.\nHINT:  Run mf_train again: it then trains the model that holds the name/,
	'a model renamed to the name a first training trains: 40001 at the store');
is($node->safe_psql('postgres', q{SELECT concat_ws('|', model_id, k, lambda) FROM mf_models WHERE name = 'm2'}),
	"$n2|5|0.5", 'the renamed model is as it was');
$node->safe_psql('postgres', q{SET client_min_messages = warning;
	SELECT mf_train('ratings', iterations := 1, model_name := 'm2')});
is($node->safe_psql('postgres', sprintf($options, 'm2')), '5|0.5|f', 'run again, it retrains that model');

# A retraining whose own statement drops the model it locked (a source
# view with side effects): 40001 at the store, rather than a new model
# carrying the dropped one's options.
$node->safe_psql('postgres', q{
	CREATE FUNCTION side_effect(q text) RETURNS int LANGUAGE plpgsql AS $$BEGIN EXECUTE q; RETURN 1; END$$;
	CREATE VIEW dropping AS SELECT r.* FROM ratings r, (SELECT side_effect('SELECT mf_drop_model(''m2'')')) s});
($ret, $stdout, $stderr) = $node->psql('postgres', q{SET client_min_messages = warning;
	SELECT mf_train('dropping', iterations := 1, model_name := 'm2')});
like($stderr, qr/ERROR:  model "m2" was renamed, dropped or created while mf_train trained it/,
	'a retraining whose own statement dropped its model: 40001');
is($node->safe_psql('postgres', q{SELECT concat_ws('|', model_id, k, lambda) FROM mf_models WHERE name = 'm2'}),
	"$n2|5|0.5", 'and the model is as it was');

# A first training whose own statement renames another model to its name
# (the store finds a row where the training locked none): 40001, that
# model unchanged.
$node->safe_psql('postgres', q{
	CREATE VIEW renaming AS SELECT r.* FROM ratings r, (SELECT side_effect('UPDATE mf_models SET name = ''m3'' WHERE name = ''m2''')) s});
($ret, $stdout, $stderr) = $node->psql('postgres', q{SET client_min_messages = warning;
	SELECT mf_train('renaming', iterations := 1, model_name := 'm3')});
like($stderr, qr/ERROR:  model "m3" was renamed, dropped or created while mf_train trained it/,
	'a first training whose own statement renamed another model to its name: 40001');
is($node->safe_psql('postgres', q{SELECT string_agg(concat_ws('|', name, model_id, k), ',') FROM mf_models WHERE name IN ('m2', 'm3')}),
	"m2|$n2|5", 'and that model is as it was');

done_testing();
