# Serving under concurrent retraining: pgbench runs 8 clients calling
# mf_predict and mf_recommend for 30 seconds while another session retrains
# the same model three times.  No client gets an error, and every answer
# (20 predictions and a top-5 list of one user, in one statement) is the
# answer of one of the four trainings, never a mix of two.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Utils;
use lib 'test';
use MfTap;
use Test::More;

my $node = mf_node('concurrency', 'max_connections = 40');

# Four trainings of the same data that answer differently (lambda 0.1 to
# 100); each is also trained under its own name, to know its answers.
my @lambdas = (0.1, 1, 10, 100);
$node->safe_psql('postgres', smooth_ratings(400, 300));
$node->safe_psql('postgres', q{
	CREATE TABLE answers (user_id int, predictions float8[], top int8[]);
	SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 4, lambda := 0.1, iterations := 5, model_name := 'live');
});
foreach my $v (0 .. 3)
{
	$node->safe_psql('postgres', "SET client_min_messages = warning;
		SELECT mf_train('ratings', k := 4, lambda := $lambdas[$v], iterations := 5,
		                model_name := 'ref$v')");
}

# One answer: 20 predictions and the top 5 of a random user, one statement.
my $answer = q{
	%s, (SELECT array_agg(mf_predict(%s, %s, i) ORDER BY i) FROM generate_series(1, 20) i) AS predictions,
	    (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM mf_recommend(%s, %s, 5)) AS top};
my $script = $node->basedir . '/reader.sql';
open(my $fh, '>', $script) or die "cannot write $script: $!";
print $fh "\\set u random(1, 400)\n";
printf $fh "INSERT INTO answers SELECT %s;\n",
  sprintf($answer, (':u', "'live'", ':u', "'live'", ':u')) =~ s/\n/ /gr;
close($fh);

my ($out, $err) = ('', '');
my $readers = IPC::Run::start(
	[ 'pgbench', '--no-vacuum', '--client=8', '--jobs=2', '--time=30',
	  '--file=' . $script, '--host=' . $node->host, '--port=' . $node->port, 'postgres' ],
	'>', \$out, '2>', \$err);

# Three retrains of the same model while the readers run.
my $retrainer = $node->background_psql('postgres');
$retrainer->query_safe('SET client_min_messages = warning');
foreach my $v (1 .. 3)
{
	sleep(7);
	$retrainer->query_safe(
		"SELECT mf_train('ratings', k := 4, lambda := $lambdas[$v], iterations := 5, model_name := 'live')");
}
$retrainer->quit;

ok($readers->finish, 'pgbench finished without error');
like($out, qr/number of failed transactions: 0 /, 'no reader transaction failed');
unlike($err, qr/ERROR|FATAL/, 'no reader saw an error');
my ($transactions) = $out =~ /number of transactions actually processed: (\d+)/;
diag("8 clients for 30 s: $transactions answers during 3 retrains");

# Every answer is one training's, whole.
$node->safe_psql('postgres', sprintf(q{
	CREATE TABLE known AS
	SELECT m.name, %s
	FROM mf_models m, generate_series(1, 400) u WHERE m.name LIKE 'ref%%'},
	sprintf($answer, ('u AS user_id', 'm.model_id', 'u', 'm.model_id', 'u'))));
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM answers a
	WHERE NOT EXISTS (SELECT 1 FROM known k
	                  WHERE k.user_id = a.user_id AND k.predictions = a.predictions
	                    AND k.top = a.top)}),
	'0', 'every answer is the whole answer of one of the trainings');
is($node->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT k.name, ' ' ORDER BY k.name) FROM answers a JOIN known k
	  ON k.user_id = a.user_id AND k.predictions = a.predictions AND k.top = a.top}),
	'ref0 ref1 ref2 ref3', 'answers came from each of the four trainings in turn');

$node->stop;
done_testing();
