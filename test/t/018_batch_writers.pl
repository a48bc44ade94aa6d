# Two calls of mf_recommend_all writing the same target at once: the second
# waits for the first's transaction, then 'replace' leaves one list (the
# second's), whether or not the table existed before; into a new table,
# 'append' leaves both and 'create' is our "already exists" error.  (Into a table that did not exist, the
# second call's CREATE TABLE had failed with the catalog's bare duplicate-key
# error.)  With REPEATABLE READ, whose snapshot cannot see the first's rows, a
# 'replace' is a serialization failure rather than two lists.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use lib 'test';
use MfTap;
use Test::More;

my $node = mf_node('batch_writers');
$node->safe_psql('postgres', smooth_ratings(60, 40));
$node->safe_psql('postgres', q{SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 3, lambda := 0.5, iterations := 3)});
my $users = $node->safe_psql('postgres', 'SELECT count(DISTINCT user_id) FROM ratings');

# Session A runs $first in an open transaction; session B then runs $begin
# (default BEGIN) and $second, which must wait for A's locks; A commits.
# Returns B's (stdout, stderr) once B's transaction has ended (committed
# unless it failed).
sub second_call_waits
{
	my ($first, $second, $begin) = @_;
	# a REPEATABLE READ snapshot is taken at the SELECT 1
	return call_waiting($node, "SET client_min_messages = warning; BEGIN; $first",
		($begin // 'BEGIN') . '; SELECT 1', $second, 'END;');
}

# What table $t holds: rows, and the most ranks of one user.
sub lists
{
	my ($t) = @_;
	return $node->safe_psql('postgres', "SELECT count(*) || ' rows, ranks to ' || max(rank) FROM $t");
}

sub call
{
	my ($n, $target, $mode) = @_;
	return "SELECT mf_recommend_all('ratings', $n, target := '$target', mode := '$mode')";
}

foreach my $existed (0, 1)
{
	my $when = $existed ? 'an existing table' : 'a table that did not exist';
	my $created = sub {
		my ($t) = @_;
		$node->safe_psql('postgres',
			"CREATE TABLE $t (user_id bigint, rank int, item_id bigint, score float8)")
		  if $existed;
	};

	# 'replace', twice: the second's list alone
	$created->("r$existed");
	my ($out, $err) = second_call_waits(call(3, "r$existed", 'replace'), call(2, "r$existed", 'replace'));
	is($err, '', "replace after replace into $when: no error");
	is($out, 2 * $users, "replace after replace into $when: the second wrote its rows");
	is(lists("r$existed"), (2 * $users) . ' rows, ranks to 2',
		"replace after replace into $when: the second's list alone");

	# 'append', twice into a new table: both lists (appends into an
	# existing table do not wait for each other)
	if (!$existed)
	{
		($out, $err) = second_call_waits(call(3, 'a', 'append'), call(2, 'a', 'append'));
		is($err, '', "append after append into $when: no error");
		is(lists('a'), (5 * $users) . ' rows, ranks to 3', "append after append into $when: both lists");
	}

	# REPEATABLE READ: the first's rows are not in the second's snapshot
	$created->("s$existed");
	($out, $err) = second_call_waits(call(3, "s$existed", 'replace'), call(2, "s$existed", 'replace'),
		'BEGIN ISOLATION LEVEL REPEATABLE READ');
	like($err, qr/ERROR:  could not serialize access due to concurrent insert into s$existed/,
		"replace under REPEATABLE READ after a replace into $when: a serialization failure");
	like($err, qr/HINT:  Run the transaction again\./, '... which says to run it again');
	is(lists("s$existed"), (3 * $users) . ' rows, ranks to 3',
		"replace under REPEATABLE READ after a replace into $when: the first's list stays");
	$node->safe_psql('postgres',
		'BEGIN ISOLATION LEVEL REPEATABLE READ; ' . call(2, "s$existed", 'replace') . '; COMMIT');
	is(lists("s$existed"), (2 * $users) . ' rows, ranks to 2', '... and run again, it replaces the list');
}

# 'create', twice into a new name: our 42P07 with its hint, not the catalog's 23505
my ($out, $err) = second_call_waits(call(3, 'c', 'create'), call(2, 'c', 'create'));
like($err, qr/ERROR:  relation public\.c already exists/, 'create after create: already exists');
like($err, qr/HINT:  Pass mode := 'replace'/, '... with the hint to replace or append');
unlike($err, qr/duplicate key/, '... not the catalog\'s duplicate key');
is(lists('c'), (3 * $users) . ' rows, ranks to 3', "create after create: the first's list");

# REPEATABLE READ over rows the first replace deleted: DELETE's own failure
$node->safe_psql('postgres', call(1, 'd', 'create'));
($out, $err) = second_call_waits(call(3, 'd', 'replace'), call(2, 'd', 'replace'),
	'BEGIN ISOLATION LEVEL REPEATABLE READ');
like($err, qr/ERROR:  could not serialize access due to concurrent delete/,
	'replace under REPEATABLE READ of rows another replace deleted: a serialization failure');
is(lists('d'), (3 * $users) . ' rows, ranks to 3', "... and the first's list stays");

# A role that may insert and delete but not select: under REPEATABLE READ
# the check for rows its snapshot cannot see needs no more (a SELECT needed
# SELECT on the table)
$node->safe_psql('postgres', q{CREATE ROLE writer;
	GRANT SELECT ON mf_models, mf_user_factors, mf_item_factors TO writer;
	CREATE TABLE w (user_id bigint, rank int, item_id bigint, score float8);
	GRANT INSERT, DELETE ON w TO writer});
($out, $err) = second_call_waits(call(3, 'w', 'replace'), 'SET ROLE writer; ' . call(2, 'w', 'replace'),
	'BEGIN ISOLATION LEVEL REPEATABLE READ');
like($err, qr/ERROR:  could not serialize access due to concurrent insert into w/,
	'replace under REPEATABLE READ by a role without SELECT on the target: the serialization failure');
$node->safe_psql('postgres', 'SET ROLE writer; BEGIN ISOLATION LEVEL REPEATABLE READ; '
	  . call(2, 'w', 'replace') . '; COMMIT');
is(lists('w'), (2 * $users) . ' rows, ranks to 2', '... and run again, it replaces the list');

# Rows another session writes straight into a partition, or a table that
# inherits from the target: the replace waits for it too, then deletes them
$node->safe_psql('postgres', q{
	CREATE TABLE parted (user_id bigint, rank int, item_id bigint, score float8) PARTITION BY RANGE (user_id);
	CREATE TABLE parted_low PARTITION OF parted FOR VALUES FROM (MINVALUE) TO (15);
	CREATE TABLE parted_high PARTITION OF parted FOR VALUES FROM (15) TO (MAXVALUE);
	CREATE TABLE parent (user_id bigint, rank int, item_id bigint, score float8);
	CREATE TABLE child () INHERITS (parent)});
foreach my $t (['parted', 'parted_high'], ['parent', 'child'])
{
	my ($target, $part) = @$t;
	($out, $err) = call_waiting($node, "BEGIN; INSERT INTO $part VALUES (5000, 1, 1, 0)", '',
		call(2, $target, 'replace'));
	is($err, '', "replace into $target while another session writes into $part: no error");
	is(lists($target), (2 * $users) . ' rows, ranks to 2', "... and its list alone");
}

# Another session's temporary table that inherits from the target, with a
# row: the DELETE skips it, and so does the check for rows committed since
# (it failed, "cannot access temporary tables of other sessions")
$node->safe_psql('postgres', 'CREATE TABLE temp_parent (user_id bigint, rank int, item_id bigint, score float8)');
my $temp_owner = $node->background_psql('postgres');
$temp_owner->query_safe('CREATE TEMP TABLE temp_child () INHERITS (temp_parent); INSERT INTO temp_child VALUES (5, 1, 1, 1)');
$node->safe_psql('postgres',
	'BEGIN ISOLATION LEVEL REPEATABLE READ; ' . call(2, 'temp_parent', 'replace') . '; COMMIT');
is(lists('ONLY temp_parent'), (2 * $users) . ' rows, ranks to 2',
	"replace under REPEATABLE READ past another session's temporary child: its list");
# that session's temporary schema as a target, named: refused with a
# message saying so, for its table and a new one (they were the INSERT's and
# CREATE TABLE's own errors, showing the internal statement)
my $temp_schema = $temp_owner->query_safe(
	q{SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()});
chomp $temp_schema;
foreach my $t (['temp_child', 'append', qr/table "temp_child" is another session's temporary table/],
	['temp_new', 'create', qr/cannot create its target \S+ in schema \Q$temp_schema\E/])
{
	my ($name, $mode, $expected) = @$t;
	my ($rc, $out, $err) = $node->psql('postgres', call(2, "$temp_schema.$name", $mode));
	like($err, $expected, "into another session's temporary $name ($mode): refused");
	like($err, qr/HINT:  Pass a/, '... saying what to pass instead');
}
is($temp_owner->query_safe('SELECT count(*) FROM temp_child'), 1,
	"... and that session's temporary table keeps its row");
$temp_owner->quit;

# Rows no other transaction wrote are no serialization failure, whatever
# keeps them: a trigger that keeps a row, a row-level security policy that
# lets the role delete only some
$node->safe_psql('postgres', q{
	CREATE TABLE kept (user_id bigint, rank int, item_id bigint, score float8);
	INSERT INTO kept VALUES (999, 1, 999, 0);
	CREATE FUNCTION keep_999() RETURNS trigger LANGUAGE plpgsql AS
		$$BEGIN IF OLD.user_id = 999 THEN RETURN NULL; END IF; RETURN OLD; END$$;
	CREATE TRIGGER keep BEFORE DELETE ON kept FOR EACH ROW EXECUTE FUNCTION keep_999();
	CREATE TABLE guarded (user_id bigint, rank int, item_id bigint, score float8);
	INSERT INTO guarded VALUES (999, 1, 999, 0);
	GRANT SELECT, INSERT, DELETE ON guarded TO writer;
	ALTER TABLE guarded ENABLE ROW LEVEL SECURITY;
	CREATE POLICY s ON guarded FOR SELECT USING (true);
	CREATE POLICY i ON guarded FOR INSERT WITH CHECK (true);
	CREATE POLICY d ON guarded FOR DELETE USING (user_id < 999)});
foreach my $t (['kept', ''], ['guarded', 'SET ROLE writer; '])
{
	my ($target, $role) = @$t;
	$node->safe_psql('postgres',
		"${role}BEGIN ISOLATION LEVEL REPEATABLE READ; " . call(2, $target, 'replace') . '; COMMIT');
	is( $node->safe_psql('postgres', "SELECT count(*) || ' rows, ' || count(*) FILTER (WHERE user_id = 999) || ' kept' FROM $target"),
		(2 * $users + 1) . ' rows, 1 kept',
		"replace under REPEATABLE READ into $target, one of whose rows stays: no error, that row and the list");
}

# A row that a policy hides from the role's reads but lets it delete,
# committed by another session after the snapshot: a serialization failure
# (it stayed beside the list without an error)
$node->safe_psql('postgres', q{
	CREATE TABLE hidden (user_id bigint, rank int, item_id bigint, score float8);
	GRANT SELECT, INSERT, DELETE ON hidden TO writer;
	ALTER TABLE hidden ENABLE ROW LEVEL SECURITY;
	CREATE POLICY s ON hidden FOR SELECT USING (user_id < 1000);
	CREATE POLICY i ON hidden FOR INSERT WITH CHECK (true);
	CREATE POLICY d ON hidden FOR DELETE USING (true)});
my $b = $node->background_psql('postgres', on_error_stop => 0);
$b->query_safe('SET ROLE writer; BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1');
$node->safe_psql('postgres', 'INSERT INTO hidden VALUES (5000, 1, 1, 0)');
$b->query(call(2, 'hidden', 'replace'));
like($b->{stderr}, qr/ERROR:  could not serialize access due to concurrent insert into hidden/,
	'replace under REPEATABLE READ of a row committed since, hidden from its reads: a serialization failure');
$b->quit;

# The DELETE's policies read as the snapshot does: a row the policy lets
# the role delete only by a row of another table committed since is kept
# (with a fresh snapshot for the DELETE, it was deleted)
$node->safe_psql('postgres', q{
	CREATE TABLE allowed (u bigint);
	INSERT INTO allowed VALUES (1);
	CREATE TABLE by_policy (user_id bigint, rank int, item_id bigint, score float8);
	INSERT INTO by_policy VALUES (1, 1, 0, 0), (2, 1, 0, 0);
	GRANT SELECT ON allowed TO writer;
	GRANT SELECT, INSERT, DELETE ON by_policy TO writer;
	ALTER TABLE by_policy ENABLE ROW LEVEL SECURITY;
	CREATE POLICY s ON by_policy FOR SELECT USING (true);
	CREATE POLICY i ON by_policy FOR INSERT WITH CHECK (true);
	CREATE POLICY d ON by_policy FOR DELETE USING (user_id IN (SELECT u FROM allowed))});
$b = $node->background_psql('postgres', on_error_stop => 0);
$b->query_safe('SET ROLE writer; BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1');
$node->safe_psql('postgres', 'INSERT INTO allowed VALUES (2)');
$b->query_safe(call(2, 'by_policy', 'replace') . '; COMMIT');
$b->quit;
is($node->safe_psql('postgres', 'SELECT array_agg(user_id) FROM by_policy WHERE item_id = 0'), '{2}',
	"replace under REPEATABLE READ: the DELETE policy read as the snapshot, the row it kept stays");

# A name not created by the calls is not held: another name's call does not wait
my $a = $node->background_psql('postgres');
$a->query_safe('BEGIN; ' . call(3, 'held', 'replace'));
is($node->safe_psql('postgres', call(1, 'other', 'replace')), $users,
	'a call into another new table runs while one is held');
$a->query_safe('COMMIT');
$a->quit;

done_testing();
