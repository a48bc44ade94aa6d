# A relation whose columns another session renames, swaps or retypes
# while a call is about to read it: every reading entry point either reads
# the relation as it is after the change, consistently, or fails with an
# error; no backend dies of a signal (issue: a view whose rating column was
# swapped for an integer one crashed mf_cross_validate, a text/integer
# user-column swap on a partitioned table crashed mf_train).
#
# Each case: session A renames columns inside an open transaction; session
# B starts the call, which must wait for A's lock (it checks the columns
# with the relation locked); A commits; B's answer is compared with the
# same call made afresh afterwards.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use lib 'test';
use MfTap;
use Test::More;

my $node = mf_node('changing');
# the checkpointer is restarted with every other process after a crash
my $checkpointer = q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'};
my $started = $node->safe_psql('postgres', $checkpointer);

$node->safe_psql('postgres', q{
	CREATE ROLE alice LOGIN;
	GRANT CREATE ON SCHEMA public TO alice;
	GRANT SELECT, INSERT, UPDATE, DELETE ON mf_models, mf_user_factors, mf_item_factors, mf_model_history TO alice;
	GRANT USAGE ON SEQUENCE mf_models_model_id_seq, mf_model_version_seq TO alice;
});
$node->safe_psql('postgres', q{
	SET ROLE alice;
	CREATE TABLE base AS
	SELECT u AS user_id, i AS item_id, ((u + i) % 5 + 1)::numeric AS rating, 3 AS alt,
	       'u' || u AS uname
	FROM generate_series(1, 50) u, generate_series(1, 20) i;
	CREATE TABLE p (user_id integer, item_id integer, rating real, uname text)
	PARTITION BY RANGE (item_id);
	CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (1) TO (11);
	CREATE TABLE p2 PARTITION OF p FOR VALUES FROM (11) TO (21);
	INSERT INTO p SELECT user_id, item_id, rating, uname FROM base;
	SET client_min_messages = warning;
	SELECT mf_train('base', k := 2, lambda := 1, iterations := 2, model_name := 'm');
});

# A view per case, so that each starts from the same columns.
sub make_view
{
	my ($name) = @_;
	$node->safe_psql('postgres',
		"SET ROLE alice; CREATE VIEW $name AS SELECT user_id, item_id, rating, alt, uname FROM base");
}

# The numeric rating column swapped for the integer one.
sub swap_rating
{
	my ($view) = @_;
	return "ALTER VIEW $view RENAME COLUMN rating TO old_rating;"
	  . " ALTER VIEW $view RENAME COLUMN alt TO rating;";
}

# Runs $call in session B (as $caller, by default $role) while session A
# (as $role) holds $swap uncommitted; returns B's (stdout, stderr).
sub call_during
{
	my ($role, $swap, $call, $caller) = @_;
	$caller //= $role;
	return call_waiting($node, "SET ROLE $role; BEGIN; $swap", "SET ROLE $caller", $call);
}

# The same call, run afresh as $role.
sub call_now
{
	my ($role, $call) = @_;
	return $node->safe_psql('postgres',
		"SET ROLE $role; SET client_min_messages = warning; $call");
}

# 1. The issue's case: cross-validation of a view whose rating column is
# swapped for an integer one; alice owns the view and has no right on the
# extension's tables that cross-validation would need.
make_view('v1');
my $cv = "SELECT k, lambda, round(rmse_mean::numeric, 6) FROM mf_cross_validate('v1', ARRAY[2], ARRAY[1.0], folds := 2, iterations := 1)";
my ($out, $err) = call_during('alice', swap_rating('v1'), $cv);
is($err, '', 'mf_cross_validate: no error');
is($out, call_now('alice', $cv), 'mf_cross_validate read the view as it is after the swap');
$node->safe_psql('postgres', 'SET ROLE alice; CREATE VIEW alt_ratings AS SELECT user_id, item_id, alt AS rating FROM base');
(my $alt = $cv) =~ s/'v1'/'alt_ratings'/;
is($out, call_now('alice', $alt), 'that is, the integer column alt as ratings');

# 2. Training on a view.
make_view('v2');
my $factors = q{SELECT md5(string_agg(u.factors::text, ';' ORDER BY u.user_id))
	FROM mf_user_factors u JOIN mf_models m USING (model_id) WHERE m.name = '%s'};
($out, $err) = call_during('alice', swap_rating('v2'),
	"SELECT mf_train('v2', k := 2, lambda := 1, iterations := 2, model_name := 'during') > 0");
is($err, '', 'mf_train of a view: no error');
call_now('alice', "SELECT mf_train('v2', k := 2, lambda := 1, iterations := 2, model_name := 'after')");
is(call_now('alice', sprintf($factors, 'during')), call_now('alice', sprintf($factors, 'after')),
	'mf_train read the view as it is after the swap');

# 3. A text/integer user-column swap on a partitioned table.
($out, $err) = call_during('alice',
	'ALTER TABLE p RENAME COLUMN user_id TO tmp; ALTER TABLE p RENAME COLUMN uname TO user_id;'
	  . ' ALTER TABLE p RENAME COLUMN tmp TO uname;',
	"SELECT mf_train('p', k := 2, lambda := 1, iterations := 2, model_name := 'keyed') > 0");
is($err, '', 'mf_train of a partitioned table: no error');
is(call_now('alice', "SELECT user_key_type::text FROM mf_models WHERE name = 'keyed'"), 'text',
	'it trained on the text column that is user_id after the swap');
is(call_now('alice', "SELECT count(*) FROM mf_user_factors u JOIN mf_models m USING (model_id) WHERE m.name = 'keyed' AND user_key ~ '^u[0-9]+\$'"),
	'50', 'every user is keyed by its text');

# 4. The validation relation.
make_view('v4');
($out, $err) = call_during('alice', swap_rating('v4'),
	"SELECT mf_train('base', k := 2, lambda := 1, iterations := 2, model_name := 'validated', validation := 'v4') > 0");
is($err, '', 'mf_train with validation: no error');
call_now('alice', "SELECT mf_train('base', k := 2, lambda := 1, iterations := 2, model_name := 'validated_after', validation := 'v4')");
my $vrmse = "SELECT validation_rmse::text FROM mf_models WHERE name = '%s'";
is(call_now('alice', sprintf($vrmse, 'validated')), call_now('alice', sprintf($vrmse, 'validated_after')),
	'the validation set was read as it is after the swap');

# 5. mf_evaluate's test relation.
make_view('v5');
my $evaluate = "SELECT metric, value FROM mf_evaluate('m', 'v5', k := 5)";
($out, $err) = call_during('alice', swap_rating('v5'), $evaluate);
is($err, '', 'mf_evaluate: no error');
is($out, call_now('alice', $evaluate), 'mf_evaluate read the test relation as it is after the swap');

# 6. A refit's source.
make_view('v6');
($out, $err) = call_during('alice', swap_rating('v6'), "SELECT mf_refit_users('m', 'v6')");
is($err, '', 'mf_refit_users: no error');
my $refitted = call_now('alice', sprintf($factors, 'm'));
call_now('alice', "SELECT mf_refit_users('m', 'v6')");
is(call_now('alice', sprintf($factors, 'm')), $refitted,
	'the refit read the source as it is after the swap (a second refit changes nothing)');

# 6b. The refit's source dropped while the refit waited for it: an error
# that says so (it was a bare "relation with OID n does not exist").
make_view('v6b');
($out, $err) = call_during('alice', 'DROP VIEW v6b;', "SELECT mf_refit_users('m', 'v6b')");
like($err, qr/ERROR:  relation with OID \d+ does not exist\nDETAIL:  The relation passed as source was dropped after the call named it/,
	'a source dropped while mf_refit_users waited: the error says it was dropped');
is(call_now('alice', sprintf($factors, 'm')), $refitted, 'and model m is as it was');

# 6c. A refit that waits for another's lock on the model reads the source
# as committed once it has the lock: the rows the other's transaction
# added count (it refitted from the older history, over the newer factors).
($out, $err) = call_during('alice',
	'INSERT INTO base (user_id, item_id, rating) VALUES (1, 3, 1), (1, 4, 1);'
	  . " SELECT mf_refit_users('m', users := ARRAY[1]);",
	"SELECT mf_refit_users('m', users := ARRAY[1])");
is($out, '1', 'the waiting refit refitted user 1') or diag($err);
my $after_wait = call_now('alice', sprintf($factors, 'm'));
call_now('alice', "SELECT mf_refit_users('m', users := ARRAY[1])");
is(call_now('alice', sprintf($factors, 'm')), $after_wait,
	'from the rows the other transaction committed (a refit afresh changes nothing)');
$node->safe_psql('postgres', 'DELETE FROM base WHERE rating = 1 AND user_id = 1 AND item_id IN (3, 4) AND alt IS NULL');

# 6d. A named refit of a column whose collation is in a schema the caller
# may not use: the filter compares byte for byte as that deterministic
# collation does (naming it was 42501 for the schema, which reading the
# column does not need).
$node->safe_psql('postgres', q{
	CREATE SCHEMA priv;
	CREATE COLLATION priv.posix_copy FROM "POSIX";
	CREATE TABLE tp AS SELECT ('u' || user_id) COLLATE priv.posix_copy AS user_id, item_id, rating FROM base;
	GRANT SELECT ON tp TO alice;
});
call_now('alice', "SELECT mf_train('tp', k := 2, lambda := 1, iterations := 2, model_name := 'priv')");
is(call_now('alice', "SELECT mf_refit_users('priv', source := 'tp', user_col := 'user_id',"
	  . " item_col := 'item_id', rating_col := 'rating', users := ARRAY['u1', 'u2'])"),
	'2', 'a named refit of a column whose collation is in a schema the caller may not use');

# 6e. A retraining that waits for another's lock on the model (the other
# retrains it in a transaction that also adds ratings) reads the source
# and the validation relation as committed once it has the lock, as a
# refit does (6c): it trained on the source as of its statement's start,
# and replaced the newer model by one of the older ratings.
my $retrain = "SELECT mf_train('base', k := 2, lambda := 1, iterations := 2, model_name := 'rt',"
  . " validation := 'held_out')";
$node->safe_psql('postgres', q{
	SET ROLE alice;
	CREATE TABLE held_out AS SELECT user_id, item_id, rating FROM base WHERE user_id <= 5 AND item_id <= 2;
});
call_now('alice', $retrain);
($out, $err) = call_during('alice',
	'SET client_min_messages = warning;'
	  . ' INSERT INTO base (user_id, item_id, rating) VALUES (1, 3, 1), (51, 4, 1);'
	  . ' INSERT INTO held_out VALUES (2, 3, 5);'
	  . " $retrain;",
	"$retrain > 0");
is($out, 't', 'the waiting retraining trained model rt') or diag($err);
is(call_now('alice', "SELECT n_users FROM mf_models WHERE name = 'rt'"), '51',
	'on the ratings the other transaction committed (user 51 is among its users)');
my $rt_waited = call_now('alice', sprintf($factors, 'rt'))
  . call_now('alice', "SELECT validation_rmse FROM mf_models WHERE name = 'rt'");
call_now('alice', $retrain);
is(call_now('alice', sprintf($factors, 'rt'))
	  . call_now('alice', "SELECT validation_rmse FROM mf_models WHERE name = 'rt'"),
	$rt_waited, 'factors and validation RMSE as a retraining afresh gives');
$node->safe_psql('postgres', 'DELETE FROM base WHERE alt IS NULL');

# 6f. Of its own transaction, a training or refit reads its source as its
# statement's snapshot does: not the half of a data-modifying CTE's rows
# done when the model's row was locked (after 6e's change a training read
# 1 of the 20 deletes, a state no statement or commit ever had).
$node->safe_psql('postgres', q{
	SET ROLE alice;
	CREATE TABLE cte AS SELECT user_id, item_id, rating FROM base;
	SET client_min_messages = warning;
	SELECT mf_train('cte', k := 2, lambda := 1, iterations := 1, model_name := 'cte')});
is(call_now('alice', q{WITH d AS (DELETE FROM cte WHERE item_id = 20 RETURNING user_id)
	SELECT mf_train('cte', iterations := 1, model_name := 'cte') > 0 FROM d LIMIT 1;
	SELECT n_ratings FROM mf_models WHERE name = 'cte'}), "t\n1000",
	'a training in a statement whose CTE deletes rows reads none of them deleted');
is(call_now('alice', q{WITH d AS (DELETE FROM cte WHERE user_id = 2 RETURNING user_id)
	SELECT mf_refit_users('cte', users := ARRAY[2]) FROM d LIMIT 1;
	SELECT support FROM mf_user_factors u JOIN mf_models m USING (model_id) WHERE m.name = 'cte' AND user_id = 2}),
	"1\n19", 'a refit in such a statement reads none of them deleted either');

# 6g. A REVOKE committed while a retraining waits for the model's row, in
# a transaction of the caller's that had already read the source: the
# check before the read sees it (it passed on the privileges cached at the
# first read, and the read failed with PostgreSQL's bare error).
$node->safe_psql('postgres', q{
	CREATE TABLE osrc AS SELECT user_id, item_id, rating FROM base;
	GRANT SELECT ON osrc TO alice});
my $osrc = "SELECT mf_train('osrc', k := 2, lambda := 1, iterations := 1, model_name := 'osrc')";
call_now('alice', $osrc);
($out, $err) = call_waiting($node,
	"SET client_min_messages = warning; BEGIN; REVOKE SELECT ON osrc FROM alice; $osrc",
	'SET ROLE alice; BEGIN; SELECT count(*) FROM osrc', $osrc, 'END;');
like($err, qr/ERROR:  permission denied for table public\.osrc\nDETAIL:  The ratings are read from public\.osrc, the source argument, as role "alice"\.\nHINT:  Ask for SELECT on it/,
	'a REVOKE committed while a retraining waited: the extension\'s error with its hint');

# 6h. A relation rewritten (a volatile DEFAULT, ALTER COLUMN TYPE) by a
# transaction that commits while the call waits for its lock is read as
# that transaction left it: the call's snapshot is taken once what it
# reads is locked, as a statement's is.  It had been taken before, and saw
# none of the rewritten rows: a validation or test relation "has no
# ratings", cross-validation had none, a refit refitted nothing, and a
# view over two tables of which one was rewritten trained on, or stored a
# validation RMSE of, the other's rows only, without an error.
my $rewrites = 0;
sub rewrite
{
	my ($table) = @_;
	$rewrites++;
	return "ALTER TABLE $table ADD COLUMN z$rewrites float8 DEFAULT random();";
}
$node->safe_psql('postgres', q{
	SET ROLE alice;
	CREATE TABLE rw_src AS SELECT user_id, item_id, rating FROM base;
	CREATE TABLE rw_val AS SELECT user_id, item_id, rating FROM base WHERE item_id <= 3;
	CREATE TABLE rw_a AS SELECT user_id, item_id, rating FROM base WHERE rating >= 3;
	CREATE TABLE rw_b AS SELECT user_id, item_id, rating FROM base WHERE rating < 3;
	CREATE VIEW rw_ab AS SELECT * FROM rw_a UNION ALL SELECT * FROM rw_b;
	CREATE TABLE rw_p (user_id integer, item_id integer, rating real) PARTITION BY RANGE (item_id);
	CREATE TABLE rw_p1 PARTITION OF rw_p FOR VALUES FROM (1) TO (11);
	CREATE TABLE rw_p2 PARTITION OF rw_p FOR VALUES FROM (11) TO (21);
	INSERT INTO rw_p SELECT user_id, item_id, rating FROM base;
});
my $n_ratings = "SELECT n_ratings FROM mf_models WHERE name = '%s'";
my $train_rw = "SELECT mf_train('%s', k := 2, lambda := 1, iterations := 2, model_name := '%s') > 0";

($out, $err) = call_during('alice', rewrite('rw_src'), sprintf($train_rw, 'rw_src', 'rw_src'));
is($out, 't', 'a first training of a table rewritten while it waited') or diag($err);
is(call_now('alice', sprintf($n_ratings, 'rw_src')), '1000', 'read every rating');

($out, $err) = call_during('alice', rewrite('rw_b'), sprintf($train_rw, 'rw_ab', 'rw_ab'));
is($out, 't', 'a training of a view over two tables, one rewritten while it waited') or diag($err);
is(call_now('alice', sprintf($n_ratings, 'rw_ab')), '1000', 'read the ratings of both tables');

# a partition takes no column of its own: SET UNLOGGED rewrites it
($out, $err) = call_during('alice', 'ALTER TABLE rw_p2 SET UNLOGGED;', sprintf($train_rw, 'rw_p', 'rw_p'));
is($out, 't', 'a training of a partitioned table, a partition rewritten while it waited') or diag($err);
is(call_now('alice', sprintf($n_ratings, 'rw_p')), '1000', 'read the ratings of both partitions');

for my $validation ('rw_val', 'rw_ab')
{
	my $validated = "SELECT mf_train('base', k := 2, lambda := 1, iterations := 2,"
	  . " model_name := 'rw_validated', validation := '$validation') > 0";
	($out, $err) = call_during('alice', rewrite($validation eq 'rw_ab' ? 'rw_a' : $validation),
		$validated);
	is($out, 't', "a training whose validation relation $validation was rewritten while it waited")
	  or diag($err);
	my $rmse = call_now('alice', sprintf($vrmse, 'rw_validated'));
	call_now('alice', $validated);
	is($rmse, call_now('alice', sprintf($vrmse, 'rw_validated')),
		'its validation RMSE is that of every held-out rating');
}

my $cv_rw = "SELECT k, lambda, round(rmse_mean::numeric, 6) FROM mf_cross_validate('rw_src', ARRAY[2], ARRAY[1.0], folds := 2, iterations := 1)";
($out, $err) = call_during('alice', rewrite('rw_src'), $cv_rw);
is($err, '', 'mf_cross_validate of a table rewritten while it waited: no error');
is($out, call_now('alice', $cv_rw), 'it read every rating');

my $evaluate_rw = "SELECT metric, value FROM mf_evaluate('m', 'rw_val', k := 5)";
($out, $err) = call_during('alice', rewrite('rw_val'), $evaluate_rw);
is($err, '', 'mf_evaluate of a test relation rewritten while it waited: no error');
is($out, call_now('alice', $evaluate_rw), 'it read every held-out rating');

call_now('alice', "SELECT mf_refit_users('m', 'base')");
my $refit_rw = "SELECT mf_refit_users('m', 'rw_src')";
($out, $err) = call_during('alice', rewrite('rw_src') . ' UPDATE rw_src SET rating = 6 - rating;',
	$refit_rw);
is($out, '50', 'a refit from a table rewritten while it waited refitted every user') or diag($err);
$refitted = call_now('alice', sprintf($factors, 'm'));
call_now('alice', $refit_rw);
is(call_now('alice', sprintf($factors, 'm')), $refitted,
	'from the rows as rewritten (a second refit changes nothing)');

# 6i. What a read goes through is locked as its own plan locks it: a
# refit of named items of a partitioned table does not wait for a
# partition none of them is in (with a generic plan it locked, and waited
# for, every partition).
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN; LOCK TABLE rw_p2 IN ACCESS EXCLUSIVE MODE');
is(call_now('alice', "SET lock_timeout = '5s'; SELECT mf_refit_items('rw_p', 'rw_p', items := ARRAY[1, 2])"),
	'2', 'a refit of items of one partition does not wait for another partition\'s lock');
is(call_now('alice', "SET lock_timeout = '5s'; SET plan_cache_mode = force_generic_plan;"
	  . " SELECT mf_refit_items('rw_p', 'rw_p', items := ARRAY[1, 2])"),
	'2', '... whatever plan_cache_mode says (its read is planned with the ids, as a one-shot query is)');
$holder->query_safe('COMMIT');
$holder->quit;

# 6j. A training locks its source, all of it, before its validation
# relation: a transaction that holds a table of the source view and then
# rewrites the validation relation is waited for, not deadlocked with
# (the validation relation had been locked first).
my $ordered = "SELECT mf_train('rw_ab', k := 2, lambda := 1, iterations := 1, model_name := 'ordered',"
  . " validation := 'rw_val') > 0";
my $meanwhile_err;
($out, $err, $meanwhile_err) = call_waiting($node, 'SET ROLE alice; BEGIN; LOCK TABLE rw_b IN ACCESS EXCLUSIVE MODE;',
	'SET ROLE alice', $ordered, undef, rewrite('rw_val'));
is($meanwhile_err, '', 'the rewrite of its validation relation meanwhile: no deadlock');
is($out, 't', 'and the training trained') or diag($err);
is(call_now('alice', sprintf($vrmse, 'ordered')),
	do { call_now('alice', $ordered); call_now('alice', sprintf($vrmse, 'ordered')) },
	'on the validation relation as rewritten');

# 6k. A plan made before a later wait is made again: a partition
# attached to the source while the training waits for its validation
# relation is read (the source's plan, made first and kept, had missed
# it: a state of the source that never existed once rows moved too).
$node->safe_psql('postgres', q{
	SET ROLE alice;
	CREATE TABLE rw_p3 (user_id integer, item_id integer, rating real);
	INSERT INTO rw_p3 SELECT user_id, item_id + 20, rating FROM base WHERE item_id <= 5;
});
my $attached = "SELECT mf_train('rw_p', k := 2, lambda := 1, iterations := 1, model_name := 'attached',"
  . " validation := 'rw_val') > 0";
($out, $err, $meanwhile_err) = call_waiting($node, 'SET ROLE alice; BEGIN; LOCK TABLE rw_val IN ACCESS EXCLUSIVE MODE;',
	'SET ROLE alice', $attached, undef, 'ALTER TABLE rw_p ATTACH PARTITION rw_p3 FOR VALUES FROM (21) TO (31);');
is($out, 't', 'the training trained') or diag($err . $meanwhile_err);
is(call_now('alice', sprintf($n_ratings, 'attached')), '1250',
	'on the partition attached while it waited too');

# 6l. What a training reads is planned before its snapshot, the
# validation relation's too: a partition attached to it, with the rows
# it takes over deleted from another, by a transaction that commits while
# the training reads its source, is not read under the older snapshot
# (planned after the source's read, the validation read counted the moved
# ratings twice: a validation RMSE of a state that never existed).
$node->safe_psql('postgres', q{
	SET ROLE alice;
	CREATE TABLE rw_vp (user_id integer, item_id integer, rating real, b integer) PARTITION BY LIST (b);
	CREATE TABLE rw_vp1 PARTITION OF rw_vp FOR VALUES IN (1);
	CREATE TABLE rw_vp2 PARTITION OF rw_vp FOR VALUES IN (2);
	INSERT INTO rw_vp SELECT user_id, item_id, rating, 1 + user_id % 2 FROM base WHERE item_id <= 3;
	CREATE TABLE rw_vp3 AS SELECT user_id, item_id, rating, 3 AS b FROM rw_vp2 WHERE user_id > 25;
	CREATE VIEW rw_slow AS
	WITH pause AS MATERIALIZED (SELECT pg_sleep(2)) SELECT user_id, item_id, rating FROM base, pause;
});
my $slow = "SELECT mf_train('rw_slow', k := 2, lambda := 1, iterations := 1, model_name := 'slow',"
  . " validation := 'rw_vp') > 0";
my $reader = $node->background_psql('postgres', on_error_stop => 0);
my $reader_pid = $reader->query_safe('SET client_min_messages = warning; SET ROLE alice; SELECT pg_backend_pid()');
$reader->{stdout} = '';
$reader->query_until(qr/calling/, "\\echo calling\n$slow;\n");
ok($node->poll_query_until('postgres',
		"SELECT wait_event = 'PgSleep' FROM pg_stat_activity WHERE pid = $reader_pid"),
	'the training reads its source');
call_now('alice', 'BEGIN; DELETE FROM rw_vp2 WHERE user_id > 25;'
	  . ' ALTER TABLE rw_vp ATTACH PARTITION rw_vp3 FOR VALUES IN (3); COMMIT;');
($out) = $reader->query('SELECT 1 AS done');
like($out, qr/^(calling\n)?t\n/, 'the training trained') or diag($reader->{stderr});
$reader->quit;
is(call_now('alice', sprintf($vrmse, 'slow')),
	do { call_now('alice', $slow); call_now('alice', sprintf($vrmse, 'slow')) },
	'its validation RMSE is of the ratings as they were, which are those as they are');

# 6m. An error planning the read names the statement, as an error
# running it does (planning the read before locking had lost the CONTEXT).
$node->safe_psql('postgres', 'SET ROLE alice; CREATE VIEW rw_zero AS SELECT user_id, item_id, rating FROM base WHERE user_id > 1 / 0');
my ($rc, $zero_out, $zero_err) = $node->psql('postgres',
	"SET ROLE alice; SELECT mf_train('base', k := 2, iterations := 1, model_name := 'zero', validation := 'rw_zero')");
like($zero_err, qr/ERROR:  division by zero\nCONTEXT:  SQL statement "SELECT user_id, item_id, rating FROM public\.rw_zero"/,
	'division by zero planning the validation relation\'s read: the statement as CONTEXT');

# 6n. A REVOKE committed while a training waits for a lock of its
# validation relation's reading: mf_ext's error and hint, from the
# privileges checked again once everything is locked (the read failed
# with PostgreSQL's bare error, its CONTEXT the internal SELECT).
$node->safe_psql('postgres', 'GRANT SELECT ON osrc TO alice');
($out, $err) = call_during('postgres',
	'LOCK TABLE rw_b IN ACCESS EXCLUSIVE MODE; REVOKE SELECT ON osrc FROM alice;',
	"SELECT mf_train('osrc', k := 2, lambda := 1, iterations := 1, model_name := 'osrc', validation := 'rw_ab')",
	'alice');
like($err, qr/ERROR:  permission denied for table public\.osrc\nDETAIL:  The ratings are read from public\.osrc, the source argument, as role "alice"\.\nHINT:  Ask for SELECT on it/,
	'a REVOKE committed while a training waited for its validation: the extension\'s error with its hint');

# 6o. Relations that keep changing while a training locks what it reads:
# each pass planning the validation view takes in another session's
# invalidations (its function, folded while planning, locks a table not
# locked before), so its plan is stale again each time; after ten plans
# made again, 40001 with the hint to run it again (never a stale plan
# read), and the same call trains once the other session stops.
$node->safe_psql('postgres', q{
	SET ROLE alice;
	CREATE TABLE rw_churn (a integer);
	CREATE SEQUENCE rw_plans;
	DO $$ BEGIN FOR i IN 0..79 LOOP EXECUTE format('CREATE TABLE rw_lk%s (a integer)', i); END LOOP; END $$;
	CREATE FUNCTION rw_new_lock() RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
	BEGIN
		PERFORM pg_sleep(0.2);
		EXECUTE format('SELECT 1 FROM rw_lk%s', nextval('rw_plans') % 80);
		RETURN true;
	END $$;
	CREATE VIEW rw_replanned AS SELECT user_id, item_id, rating FROM base WHERE rw_new_lock();
	CREATE PROCEDURE rw_churning() LANGUAGE plpgsql AS $$
	BEGIN
		FOR i IN 1..20000 LOOP
			EXECUTE format('ALTER TABLE rw_churn SET (fillfactor = %s)', 50 + i % 50);
			COMMIT;
			PERFORM pg_sleep(0.005);
		END LOOP;
	END $$;
});
my $churner = $node->background_psql('postgres', on_error_stop => 0);
my $churner_pid = $churner->query_safe('SET ROLE alice; SELECT pg_backend_pid()');
$churner->query_until(qr/churning/, "\\echo churning\nCALL rw_churning();\n");
my $replanned = "SELECT mf_train('base', k := 2, lambda := 1, iterations := 1, model_name := 'replanned',"
  . " validation := 'rw_replanned') > 0";
($rc, $out, $err) = $node->psql('postgres', "SET ROLE alice; SET client_min_messages = warning; $replanned",
	extra_params => ['-v', 'VERBOSITY=verbose']);
like($err, qr/ERROR:  40001: what reading public\.rw_replanned touches kept changing while the call locked it\n.*HINT:  Run the call again\./s,
	'invalidations at every plan of the validation: 40001 after ten plans made again');
is(call_now('alice', q{SELECT count(*) FROM mf_models WHERE name = 'replanned'}), '0', 'and no model stored');
note('validation plans made: ' . call_now('alice', 'SELECT last_value FROM rw_plans'));
$node->safe_psql('postgres', "SELECT pg_cancel_backend($churner_pid)");
$churner->quit;
is(call_now('alice', $replanned), 't', 'the same call trains once the other session stops');

# 7. The batch's rated items, and 8. the cache's factor rows: the model
# tables' own columns swapped (only their owner can) make the call fail
# with an error, never read a bigint[] as factors or text as an array.
my $swap_users = 'ALTER TABLE mf_user_factors RENAME COLUMN rated_items TO tmp;'
  . ' ALTER TABLE mf_user_factors RENAME COLUMN factors TO rated_items;'
  . ' ALTER TABLE mf_user_factors RENAME COLUMN tmp TO factors;';
($out, $err) = call_during('postgres', $swap_users,
	"SELECT mf_recommend_all('m', 3, target := 'top3')");
like($err, qr/ERROR:  (column \d+ read from mf_user_factors is of type|stored factors of user)/,
	'mf_recommend_all with swapped columns of mf_user_factors: an error');
$node->safe_psql('postgres', $swap_users);    # swap back
my $swap_items = 'ALTER TABLE mf_item_factors RENAME COLUMN item_key TO tmp;'
  . ' ALTER TABLE mf_item_factors RENAME COLUMN factors TO item_key;'
  . ' ALTER TABLE mf_item_factors RENAME COLUMN tmp TO factors;';
($out, $err) = call_during('postgres', $swap_items, "SELECT mf_predict('m', 1, 1)");
like($err, qr/ERROR:  column \d+ read from mf_item_factors is of type text, not double precision\[\]/,
	'mf_predict loading a model with swapped columns of mf_item_factors: an error');
$node->safe_psql('postgres', $swap_items);    # swap back
like(call_now('alice', "SELECT mf_predict('m', 1, 1)"), qr/^-?[0-9.e+-]+$/,
	'the model serves again once the columns are back');

# 9. Row-level security put on a model table while a training waits for
# its source: the writer's check before the work is minutes old by the
# time it writes, so the write checks again, with the tables locked.
my $model_m = call_now('alice', sprintf($factors, 'm'));
($out, $err) = call_during('postgres',
	'LOCK TABLE base IN ACCESS EXCLUSIVE MODE; ALTER TABLE mf_user_factors ENABLE ROW LEVEL SECURITY;'
	  . ' CREATE POLICY only_model_m ON mf_user_factors USING (model_id = 1);',
	"SELECT mf_train('base', k := 2, lambda := 1, iterations := 2, model_name := 'm') > 0", 'alice');
like($err, qr/ERROR:  row-level security on table mf_user_factors applies to you, and mf_train writes whole models/,
	'a policy created while mf_train waited: refused at the write');
$node->safe_psql('postgres', 'DROP POLICY only_model_m ON mf_user_factors;'
	  . ' ALTER TABLE mf_user_factors DISABLE ROW LEVEL SECURITY');
is(call_now('alice', sprintf($factors, 'm')), $model_m, 'and model m is as it was');

# 10. The extension dropped while a training waits for its source: an
# error, not a crash (its schema was looked up from a function that no
# longer existed).
($out, $err) = call_during('postgres',
	'LOCK TABLE base IN ACCESS EXCLUSIVE MODE; DROP EXTENSION mf_ext;',
	"SELECT mf_train('base', k := 2, lambda := 1, iterations := 2, model_name := 'orphan') > 0", 'alice');
like($err, qr/ERROR:  (table mf_models of mf_ext is missing|the mf_ext function being called was dropped|relation "[a-z.]*mf_\w+" does not exist)/,
	'DROP EXTENSION while mf_train waited: an error');

# No backend died of a signal, and the server did not restart.
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|reinitializing|server process .* exited with exit code [^01]/,
	'no backend died of a signal');
is($node->safe_psql('postgres', $checkpointer), $started, 'the server never restarted');

$node->stop;
done_testing();
