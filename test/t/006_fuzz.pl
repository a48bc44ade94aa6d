# Fuzzing: (1) every function of the extension called thousands of times
# with arguments drawn at random from pools of NULLs, extremes, injected
# and odd names, malformed arrays and non-finite numbers, and mf_train's
# early stopping with the options it meets, by name, and (2) sqlsmith
# (random SQL over the whole catalog, mf_ext's functions and tables among
# it) for a fixed time as an unprivileged role.  No backend may die of a
# signal: the server log is checked, and the server must still answer.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Utils;
use lib 'test';
use MfTap;
use Test::More;

my $calls_per_function = $ENV{MF_FUZZ_CALLS} // 250;
my $sqlsmith_seconds = $ENV{MF_FUZZ_SECONDS} // 60;

my $node = mf_node('fuzz', "statement_timeout = '5s'");

$node->safe_psql('postgres', q{
	CREATE TABLE ratings AS
	SELECT u AS user_id, i AS item_id, 1 + (u * i) % 5 AS rating
	FROM generate_series(1, 60) u, generate_series(1, 40) i
	WHERE abs(hashint8(u * 1000 + i)) % 100 < 40;
	CREATE TABLE named AS SELECT 'u' || user_id AS who, 'i' || item_id AS what, rating FROM ratings;
	CREATE TABLE empty (user_id int, item_id int, rating float8);
	SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 4, lambda := 1, biases := true);
	SELECT mf_train('ratings', k := 2, feedback := 'implicit', model_name := 'implicit');
	SELECT mf_train('named', user_col := 'who', item_col := 'what', k := 3);
	CREATE TABLE uuids AS SELECT md5(who)::uuid AS user_id, md5(what)::uuid AS item_id, rating FROM named;
	SELECT mf_train('uuids', k := 2, biases := true);
	SELECT mf_train('ratings', k := 0, biases := true, model_name := 'biases only');
});

# Values to draw from, by argument type.
my %pool = (
	'integer' => [ 'NULL', '0', '1', '2', '3', '4', '-1', '2147483647', '-2147483648' ],
	'bigint' => [ 'NULL', '0', '1', '7', '-1', '9223372036854775807', '-9223372036854775808' ],
	'double precision' => [ 'NULL', '0', '-1', '0.1', '10', '1e308', '-1e308', "'NaN'",
		"'Infinity'", "'-Infinity'", '5e-324' ],
	'integer[]' => [ 'NULL', "'{}'", "'{1,2,4}'", "'{0}'", "'{-1}'", "'{NULL}'", "'{1025}'",
		"'{{1},{2}}'" ],
	'boolean' => [ 'NULL', 'true', 'false' ],
	'text' => [ 'NULL', "''", "'ratings'", "'implicit'", "'named'", "'uuids'", "'biases only'", "'u1'", "'i3'",
		"'1'", "' 1'", "'no such'", q{'ratings; DROP TABLE ratings; --'}, q{'x"y'}, q{'it''s'},
		q{'été ✓'}, "repeat('x', 3000)", "'user_id'", "'rating'", "'replace'", "'append'",
		"'create'" ],
	# a user and an item of model uuids, a uuid no model knows, the nil uuid
	'uuid' => [ 'NULL', "md5('u1')", "md5('i3')", "md5('no such')",
		"'00000000-0000-0000-0000-000000000000'" ],
	'name' => [ 'NULL', "''", "'user_id'", "'item_id'", "'rating'", "'who'", "'no such'",
		q{'a"b'} ],
	'regclass' => [ 'NULL', "'ratings'", "'named'", "'empty'", "'mf_models'", "'pg_class'",
		"'mf_user_factors'" ],
	'bigint[]' => [ 'NULL', "'{}'", "'{1,2,3}'", "'{1,NULL}'", "'{{1,2},{3,4}}'",
		"'{9223372036854775807}'", 'array_fill(1::bigint, ARRAY[5000])' ],
	'text[]' => [ 'NULL', "'{}'", q{'{i1,i2}'}, q{'{1,2}'}, q{'{NULL}'}, q{'{"x y","é"}'} ],
	# "any" (mf_recommend_all's filters, the refits' users and items):
	# arrays of each type, untyped
	# literals, scalars, nested arrays; passed without a cast
	'"any"' => [ 'NULL', 'ARRAY[1, 2]', 'ARRAY[1, 2]::bigint[]', 'ARRAY[3]::smallint[]', "'{1,2}'",
		"'{}'", 'ARRAY[]::integer[]', "ARRAY['i1', 'i2']", "ARRAY['u1', NULL]", 'ARRAY[NULL]::bigint[]',
		'1', "'x'", 'ARRAY[1.5]', 'now()', 'ARRAY[ARRAY[1, 2], ARRAY[3, 4]]', "'{{1,2},{3,4}}'",
		'array_fill(7::bigint, ARRAY[5000])', "'{9223372036854775807}'" ],
	# the fixed side of mf_als_half_step (src/distributed.c): empty, short,
	# a header with the wrong version, zeros
	'bytea' => [ 'NULL', "'\\x'", "'\\x00'", "'\\x5346666d02000000'", "decode(repeat('00', 200), 'hex')",
		"decode('5346666d0100000004000000' || repeat('ff', 60), 'hex')" ],
	'double precision[]' => [ 'NULL', "'{}'", "'{4,5,1}'", "'{1,2}'", "'{NaN}'", "'{1e308,1e308,1e308}'",
		"'{NULL,1}'", "'{-1,-2,-3}'", "'{{1},{2}}'" ],
);

# Every function of the extension but the one that drops models and those
# SQL cannot call (an argument of type internal: the aggregate's support),
# with its kind (an aggregate is called in the select list) and argument
# types.
my @functions = split /\n/, $node->safe_psql('postgres', q{
	SELECT p.proname || '|' || p.prokind::text || '|'
	       || array_to_string(ARRAY(SELECT format_type(t, NULL)
	                                FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY a(t, n) ORDER BY n), ', ')
	FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
	JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'mf_ext'
	WHERE p.proname <> 'mf_drop_model' AND NOT 'internal'::regtype = ANY (p.proargtypes::oid[])
	ORDER BY 1});
ok(@functions >= 20, scalar(@functions) . ' functions to call');

srand(20261128);
my $script = '';
my $calls = 0;
foreach my $function (@functions)
{
	my ($name, $kind, $arguments) = split /\|/, $function, 3;
	my @types = grep { $_ ne '' } split /, /, $arguments;
	foreach (1 .. $calls_per_function)
	{
		my @values;
		foreach my $type (@types)
		{
			my $values = $pool{$type} // die "no pool for type $type of $name";
			my $value = $values->[ int(rand(@$values)) ];
			$value = "'t" . int(rand(1000000)) . "'" if $type eq 'text' && rand() < 0.05;
			push @values, $type eq '"any"' ? $value : "${value}::$type";
		}
		$script .= sprintf($kind eq 'a' ? "SELECT %s(%s);\n" : "SELECT * FROM %s(%s);\n",
			$name, join(', ', @values));
		$calls++;
	}
}

# mf_train's early stopping, by name: patience among the options it meets
# (validation, iterations, tolerance, warm_start, a kept patience of the
# model's last training).  Half the calls draw only values that train (so
# that many stop early, or run out of iterations, and keep their best), the
# other half wrong ones too.
my %early = (
	patience => [ 'NULL', '0', '1', '2', '3', '3', '5', '100000' ],
	validation => [ "'held_out'", "'held_out'", "'ratings'" ],
	iterations => [ 'NULL', '1', '2', '5', '12', '12' ],
	k => [ 'NULL', '1', '3', '3' ],
	lambda => [ 'NULL', '0.1', '1', '1' ],
	tolerance => [ 'NULL', '0', '0', '0.01', '0.5' ],
	biases => [ 'NULL', 'true', 'false' ],
	warm_start => [ 'false', 'false', 'true' ],
	feedback => [ 'NULL', "'explicit'" ],
	model_name => [ "'early'", "'early'", "'late'", 'NULL' ],
);
my %early_wrong = (
	patience => [ '-1', '100001', '2147483647', '-2147483648' ],
	validation => [ 'NULL', "'empty'", "'named'", "'mf_models'" ],
	iterations => [ '0', '-1' ],
	k => [ '0', '1025' ],
	lambda => [ "'NaN'", '-1' ],
	tolerance => [ '1', "'NaN'" ],
	feedback => [ "'implicit'", "'none'" ],
	model_name => [ "'implicit'", "''" ],
);
$node->safe_psql('postgres', q{
	CREATE TABLE held_out AS
	SELECT user_id, item_id, rating + 1 AS rating FROM ratings WHERE (user_id + item_id) % 4 = 0;
});
my $early_calls = 0;
foreach (1 .. $calls_per_function)
{
	my $wrong = rand() < 0.5;
	my @arguments;
	foreach my $name (sort keys %early)
	{
		next if rand() < 0.3 && ($wrong || ($name ne 'validation' && $name ne 'patience'));
		my @values = (@{ $early{$name} }, $wrong ? @{ $early_wrong{$name} // [] } : ());
		push @arguments, "$name := " . $values[ int(rand(@values)) ];
	}
	$script .= sprintf("SELECT mf_train('ratings'%s);\n", join('', map { ", $_" } @arguments));
	$early_calls++;
}
$calls += $early_calls;

my $file = $node->basedir . '/fuzz.sql';
open(my $fh, '>', $file) or die "cannot write $file: $!";
print $fh "SET client_min_messages = error;\n", $script;
close($fh);
my ($out, $err) = ('', '');
IPC::Run::run([ 'psql', '-X', '-q', '-f', $file, '-d', $node->connstr('postgres') ],
	'>', \$out, '2>', \$err);
my $errors = () = $err =~ /ERROR:/g;
diag("targeted fuzzing: $calls calls of " . scalar(@functions) . " functions ($early_calls of"
	  . " mf_train's early stopping), $errors refused with an error");
my ($runs, $kept_earlier) = split /\|/, $node->safe_psql('postgres', q{
	SELECT count(*), count(*) FILTER (WHERE kept < last) FROM (
		SELECT max(iteration) FILTER (WHERE kept) AS kept, max(iteration) AS last
		FROM mf_model_history GROUP BY model_id, run) r});
diag("$runs trainings recorded, $kept_earlier of them kept an iteration before their last");
ok($kept_earlier > 0, 'early stopping ran: trainings kept an iteration before their last');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM mf_models
	WHERE patience > 0 AND (best_iteration IS NULL OR best_iteration > iterations_run
	                        OR validation_rmse[best_iteration]
	                           > (SELECT min(v) FROM unnest(validation_rmse) v))}),
	'0', 'every model trained with patience kept its lowest validation RMSE\'s iteration');
unlike($err, qr/server closed the connection|connection to server was lost/,
	'no targeted call lost the connection');

# sqlsmith as a role that may read the models but not write them.
$node->safe_psql('postgres', q{
	CREATE ROLE fuzzer LOGIN;
	ALTER ROLE fuzzer SET statement_timeout = '1s';
	GRANT SELECT ON ALL TABLES IN SCHEMA public TO fuzzer;
});
my ($smith_out, $smith_err) = ('', '');
my $smith = IPC::Run::start(
	[ 'sqlsmith', '--seed=1', '--verbose',
	  '--target=' . $node->connstr('postgres') . ' user=fuzzer' ],
	'>', \$smith_out, '2>', \$smith_err,
	IPC::Run::timeout($sqlsmith_seconds + 60));
sleep($sqlsmith_seconds);
$smith->signal('INT');
eval { $smith->finish };
$smith->kill_kill;
my ($bad, $good) = $smith_err =~ /.*query_spec: (\d+)\/(\d+)/s;
ok(defined $good && $bad + $good > 0, 'sqlsmith ran queries');
diag(sprintf('sqlsmith: %d s as an unprivileged role, %d query specifications (%d ran without error)',
		$sqlsmith_seconds, ($bad // 0) + ($good // 0), $good // 0));

my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal/, 'no backend died of a signal');
unlike($log, qr/PANIC/, 'no PANIC');
is($node->safe_psql('postgres', q{SELECT mf_predict('ratings', 1, 1) IS NOT NULL}), 't',
	'the server still serves the models');

$node->stop;
done_testing();
