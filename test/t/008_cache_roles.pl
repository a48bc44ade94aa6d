# The backend's model cache answers each role only what that role could
# read itself, and sees committed retrains and drops at the next statement:
# SET ROLE after another role filled the cache, role switches inside one
# transaction, a SECURITY INVOKER PL/pgSQL helper whose call state outlives
# a SET LOCAL ROLE, a SECURITY DEFINER wrapper, a pooled connection serving
# two roles alternately under row-level security on the model tables, and
# a PL/pgSQL loop across another session's retrain.  Also that the
# cross-statement shortcut (no mf_models look-up while the snapshot sees
# exactly what the last look-up saw) fires.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use lib 'test';
use MfTap;
use Test::More;

my $node = mf_node('roles', 'max_prepared_transactions = 2');
$node->safe_psql('postgres', smooth_ratings(200, 100, 30));
$node->safe_psql('postgres', q{
	SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 3, lambda := 0.5, iterations := 3);
	CREATE ROLE reader;     -- SELECT on mf_models only
	CREATE ROLE outsider;   -- no privilege at all
	CREATE ROLE app;        -- SELECT on the three tables
	GRANT SELECT ON mf_models TO reader;
	GRANT SELECT ON mf_models, mf_user_factors, mf_item_factors TO app;
	CREATE FUNCTION helper(u integer, i integer) RETURNS double precision
	LANGUAGE plpgsql SECURITY INVOKER AS $$ BEGIN RETURN mf_predict('ratings', u, i); END $$;
	CREATE FUNCTION outsiders_wrapper(u integer, i integer) RETURNS double precision
	LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN RETURN helper(u, i); END $$;
	ALTER FUNCTION outsiders_wrapper(integer, integer) OWNER TO outsider;
});

# reader may read mf_models, not the factors; outsider may read nothing
my $denied = qr/permission denied for table mf_(user|item)_factors/;
my $denied_all = qr/permission denied for table mf_(models|user_factors|item_factors)/;

# psql -c of several statements in one session; returns (stdout, stderr).
sub session
{
	my ($sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $sql, on_error_stop => 0);
	return ($out, $err);
}

# 1. The superuser fills the cache; then SET ROLE reader.
for my $call ("SELECT mf_predict('ratings', 1, 1)",
	"SELECT * FROM mf_recommend('ratings', 1, 3)",
	"SELECT * FROM mf_similar_users('ratings', 1, 3)",
	"SELECT mf_fold_in('ratings', ARRAY[1, 2], ARRAY[4, 5])")
{
	my ($out, $err) = session("$call; SET ROLE reader; $call");
	like($err, $denied, "after the superuser's call, reader is refused: $call");
}

# 2. A SECURITY INVOKER helper whose PL/pgSQL call state lives for the
# transaction, across SET LOCAL ROLE.
my ($out, $err) = session(q{
	BEGIN;
	SELECT helper(1, 1) IS NOT NULL AS superuser_answered;
	SET LOCAL ROLE outsider;
	SELECT helper(8, 5);
	COMMIT;});
like($out, qr/^t$/m, 'the helper answers the superuser');
like($err, $denied_all, 'and refuses outsider after SET LOCAL ROLE in the same transaction');

# 3. A SECURITY DEFINER wrapper owned by outsider runs the helper as
# outsider, even when the superuser calls it with the model cached.
($out, $err) = session(q{
	BEGIN;
	SELECT helper(1, 1) IS NOT NULL;
	SELECT outsiders_wrapper(1, 1);
	COMMIT;});
like($err, $denied_all, 'a SECURITY DEFINER function of outsider is refused, cache or not');

# 4. Role switches inside one transaction, on one connection.
($out, $err) = session(q{
	BEGIN;
	SET LOCAL ROLE app;
	SELECT 'app ' || (mf_predict('ratings', 1, 1) IS NOT NULL);
	SET LOCAL ROLE reader;
	SELECT 'reader ' || (mf_predict('ratings', 1, 1) IS NOT NULL);
	COMMIT;});
like($out, qr/^app true$/m, 'app answers');
like($err, $denied, 'reader, next in the same transaction, is refused');
($out, $err) = session(q{
	SET ROLE app;
	SELECT 'app ' || (mf_predict('ratings', 1, 1) IS NOT NULL);
	RESET ROLE; SET ROLE outsider;
	SELECT mf_predict('ratings', 1, 1);
	RESET ROLE; SET ROLE app;
	SELECT 'app again ' || (mf_predict('ratings', 1, 1) IS NOT NULL);});
like($out, qr/^app true\napp again true$/m, 'app answers before and after');
like($err, $denied_all, 'outsider in between is refused');

# 5. A pooled connection serving two tenants alternately, with row-level
# security on the model tables: tenant_a sees model a and all of model
# shared; tenant_b sees model b and only users 1 to 100 of shared.
$node->safe_psql('postgres', q{
	SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 3, lambda := 0.5, iterations := 3, model_name := 'a');
	SELECT mf_train('ratings', k := 3, lambda := 0.5, iterations := 3, model_name := 'b');
	SELECT mf_train('ratings', k := 3, lambda := 0.5, iterations := 3, model_name := 'shared');
	CREATE ROLE tenant_a; CREATE ROLE tenant_b;
	GRANT SELECT ON mf_models, mf_user_factors, mf_item_factors TO tenant_a, tenant_b;
	ALTER TABLE mf_models ENABLE ROW LEVEL SECURITY;
	ALTER TABLE mf_user_factors ENABLE ROW LEVEL SECURITY;
	ALTER TABLE mf_item_factors ENABLE ROW LEVEL SECURITY;
	CREATE POLICY own ON mf_models USING (name IN ('shared', substr(current_user, 8)));
	CREATE POLICY own ON mf_item_factors USING (true);
	CREATE POLICY own ON mf_user_factors
	USING (current_user = 'tenant_a' OR user_id <= 100
	       OR model_id <> (SELECT model_id FROM mf_models WHERE name = 'shared'));
});
my $pooled = $node->background_psql('postgres', on_error_stop => 0);
my @answers;
for my $round (1 .. 3)
{
	for my $tenant ('tenant_a', 'tenant_b')
	{
		$pooled->{stderr} = '';
		my $answer = $pooled->query(qq{
			RESET ROLE; SET ROLE $tenant;
			SELECT coalesce(mf_predict('shared', 150, 1)::text, 'null') || ' '
			       || (SELECT count(*) FROM mf_recommend('shared', 150, 3)) || ' '
			       || (SELECT count(*) FROM mf_similar_users('shared', 1, 1000))});
		push @answers, "$tenant $answer";
		my ($own, $fail_own) = $pooled->query(qq{
			SELECT mf_predict('@{[substr($tenant, 7)]}', 1, 1) IS NOT NULL});
		is($own, 't', "round $round: $tenant reads its own model");
		$pooled->{stderr} = '';
		my $other = $tenant eq 'tenant_a' ? 'b' : 'a';
		$pooled->query("SELECT mf_predict('$other', 1, 1)");
		like($pooled->{stderr}, qr/model "$other" does not exist/,
			"round $round: $tenant cannot see model $other");
	}
}
my ($a_first) = grep { /^tenant_a/ } @answers;
like($a_first, qr/^tenant_a -?[0-9.e+-]+ 3 199$/, 'tenant_a sees user 150 of the shared model and all 200 users');
is(scalar(grep { $_ eq $a_first } @answers), 3, 'tenant_a gets the same answer in every round');
is(scalar(grep { $_ eq 'tenant_b null 0 99' } @answers), 3,
	'tenant_b never sees user 150, in every round: unknown to it, 100 users in all');
$pooled->quit;
$node->safe_psql('postgres', q{
	DROP POLICY own ON mf_models; DROP POLICY own ON mf_user_factors; DROP POLICY own ON mf_item_factors;
	ALTER TABLE mf_models DISABLE ROW LEVEL SECURITY;
	ALTER TABLE mf_user_factors DISABLE ROW LEVEL SECURITY;
	ALTER TABLE mf_item_factors DISABLE ROW LEVEL SECURITY;
});

# 6. A PL/pgSQL loop sees another session's committed retrain at its next
# statement.
my $loop = $node->background_psql('postgres', on_error_stop => 0);
$loop->query_until(qr/looping/, q{\echo looping
	DO $$
	DECLARE x double precision;
	BEGIN
		FOR n IN 1 .. 6 LOOP
			x := mf_predict('ratings', 1, 1);
			RAISE NOTICE 'prediction % %', n, x;
			PERFORM pg_sleep(1);
		END LOOP;
	END $$;
});
ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity
	WHERE query LIKE '%prediction%' AND state = 'active' AND pid <> pg_backend_pid()}),
	'the loop runs');
sleep(2);
$node->safe_psql('postgres', q{SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 4, lambda := 0.5, iterations := 3)});
my $retrained = $node->safe_psql('postgres', "SELECT mf_predict('ratings', 1, 1)");
$loop->query('SELECT 1');
my @seen = $loop->{stderr} =~ /prediction \d (\S+)/g;
is(scalar(@seen), 6, 'six predictions');
isnt($seen[0], $seen[5], 'the loop saw the prediction change');
is($seen[5] + 0, $retrained + 0, 'its last prediction is the retrained model\'s');
$loop->quit;

# 7. The shortcut fires: in a repeatable-read transaction (one snapshot)
# mf_models is looked up once for three statements; a role switch is
# still checked.  A look-up is two scans: the row by name (as the caller),
# and the write that made it (its xmin, by model_id: src/catalog.c's
# read_row_write).
my $scans = q{SELECT pg_stat_get_xact_numscans('mf_models'::regclass)
	+ pg_stat_get_xact_numscans('mf_models_pkey'::regclass)
	+ pg_stat_get_xact_numscans('mf_models_name_key'::regclass)};
($out, $err) = session(qq{
	BEGIN ISOLATION LEVEL REPEATABLE READ;
	SELECT 'before ' || ($scans);
	SELECT mf_predict('ratings', 1, 1) IS NOT NULL;
	SELECT 'after one ' || ($scans);
	SELECT mf_predict('ratings', 2, 2) IS NOT NULL;
	SELECT mf_predict('ratings', 3, 3) IS NOT NULL;
	SELECT 'after three ' || ($scans);
	SET LOCAL ROLE reader;
	SELECT mf_predict('ratings', 3, 3);
	COMMIT;});
my ($before) = $out =~ /^before (\d+)$/m;
my ($one) = $out =~ /^after one (\d+)$/m;
my ($three) = $out =~ /^after three (\d+)$/m;
is($one - $before, 2, 'the first statement looks the model up');
is($three, $one, 'the next two, under the same snapshot, do not');
like($err, $denied, 'a role switch is still checked');

# 8. A model renamed by another session: the next statement finds each
# model under the name it now has, and the old name no more.
$node->safe_psql('postgres', q{SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 3, lambda := 0.5, iterations := 3, model_name := 'champion');
	SELECT mf_train('ratings', k := 4, lambda := 0.5, iterations := 3, model_name := 'challenger');});
my $champion = $node->safe_psql('postgres', "SELECT mf_predict('champion', 1, 1)");
my $challenger = $node->safe_psql('postgres', "SELECT mf_predict('challenger', 1, 1)");
isnt($champion, $challenger, 'two models that predict differently');
my $server = $node->background_psql('postgres', on_error_stop => 0);
is($server->query_safe("SELECT mf_predict('champion', 1, 1)"), $champion, 'the champion is cached');
$node->safe_psql('postgres', q{BEGIN;
	UPDATE mf_models SET name = 'retired' WHERE name = 'champion';
	UPDATE mf_models SET name = 'champion' WHERE name = 'challenger';
	COMMIT;});
is($server->query_safe("SELECT mf_predict('retired', 1, 1) || ' ' || mf_predict('champion', 1, 1)"),
	"$champion $challenger", 'after the swap each name answers for the model it now names');
$node->safe_psql('postgres', "UPDATE mf_models SET name = 'emeritus' WHERE name = 'retired'");
$server->{stderr} = '';
$server->query("SELECT mf_predict('emeritus', 1, 1), mf_predict('retired', 1, 1)");
like($server->{stderr}, qr/model "retired" does not exist/, 'an old name no longer answers');

# 9. In a serializable transaction, a prediction is a read of the model:
# with a concurrent retrain it makes a serialization conflict, as reading
# mf_models would, even when the model is cached.
$node->safe_psql('postgres', 'CREATE TABLE decisions (id integer); GRANT INSERT ON decisions TO PUBLIC');
my $decider = $node->background_psql('postgres', on_error_stop => 0);
my $retrainer = $node->background_psql('postgres', on_error_stop => 0);
$decider->query_safe("SELECT mf_predict('champion', 1, 1)");    # cached
$decider->query_safe("BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT mf_predict('champion', 1, 1)");
$retrainer->query_safe("SET client_min_messages = warning; BEGIN ISOLATION LEVEL SERIALIZABLE;"
	  . " SELECT count(*) FROM decisions;"
	  . " SELECT mf_train('ratings', k := 4, lambda := 0.7, iterations := 2, model_name := 'champion')");
$decider->{stderr} = '';
$retrainer->{stderr} = '';
$decider->query('INSERT INTO decisions VALUES (1); COMMIT');
$retrainer->query('COMMIT');
like($decider->{stderr} . $retrainer->{stderr}, qr/could not serialize access/,
	'the write skew between a cached prediction and a retrain is caught');
$decider->quit;
$retrainer->quit;

# 10. Another session's REVOKE is seen by the next statement, also inside
# an open transaction: a prediction is allowed exactly when the role's own
# SELECT of the factors is; the next transaction is refused.
$node->safe_psql('postgres', q{CREATE ROLE bob LOGIN;
	GRANT SELECT ON mf_models, mf_user_factors, mf_item_factors TO bob;});
my $bob = $node->background_psql('postgres', on_error_stop => 0);
$bob->query_safe("SET ROLE bob; BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT mf_predict('champion', 1, 1)");
$node->safe_psql('postgres', 'REVOKE SELECT ON mf_models, mf_user_factors, mf_item_factors FROM bob');
$bob->{stderr} = '';
my ($predicted) = $bob->query("SELECT mf_predict('champion', 2, 2) IS NOT NULL");
my $predict_error = $bob->{stderr};
$bob->{stderr} = '';
my ($selected) = $bob->query('SELECT count(*) > 0 FROM mf_item_factors');
my $select_error = $bob->{stderr};
is($predict_error eq '', $select_error eq '',
	'in the open transaction, mf_predict is allowed exactly when SELECT is');
$bob->query('COMMIT');
$bob->{stderr} = '';
$bob->query("SELECT mf_predict('champion', 1, 1)");
like($bob->{stderr}, $denied_all, 'the next transaction is refused');
$bob->quit;
$server->quit;

# What a transaction read of a model after writing is forgotten when it is
# prepared (ROLLBACK PREPARED may undo the writes): here a hand edit that
# empties every user's rated_items, read by the session's first call
my ($edited, $edit_error) = session(q{
	SET client_min_messages = warning;
	BEGIN;
	UPDATE mf_user_factors SET rated_items = '{}'
	WHERE model_id = (SELECT model_id FROM mf_models WHERE name = 'ratings');
	SELECT count(*) FROM mf_recommend_users('ratings', 1, 1000);
	PREPARE TRANSACTION 'edit';
	ROLLBACK PREPARED 'edit';
	SELECT count(*) FROM mf_recommend_users('ratings', 1, 1000);
	SELECT count(*) FROM mf_user_factors f JOIN mf_models m USING (model_id)
	WHERE m.name = 'ratings' AND NOT 1 = ANY (f.rated_items);
});
my @counts = split /\n/, $edited;
is(scalar(@counts), 3, 'the prepared edit ran') or diag($edit_error);
ok($counts[0] > $counts[1], 'the edit listed every user, the rollback only those who did not rate the item');
is($counts[1], $counts[2], 'after ROLLBACK PREPARED, the raters are the committed ones');

# A batch target the role may not write is refused before it is locked,
# as LOCK TABLE refuses: a writer holding the table does not make the call
# wait, and no lock of the role's queues up the writers behind it.
$node->safe_psql('postgres',
	'CREATE TABLE guarded (user_id bigint, rank integer, item_id bigint, score double precision)');
my $writer = $node->background_psql('postgres', on_error_stop => 0);
$writer->query_safe('BEGIN; INSERT INTO guarded VALUES (1, 1, 1, 1)');
my (undef, $guarded_error) = session(q{
	SET lock_timeout = '3s';
	SET ROLE app;
	SELECT mf_recommend_all('ratings', 1, target := 'guarded', mode := 'replace');
});
like($guarded_error, qr/permission denied for table public\.guarded/,
	'a target the role may not write is refused without waiting for its lock');
$writer->query_safe('ROLLBACK');
$writer->quit;

$node->stop;
done_testing();
