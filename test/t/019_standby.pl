# On a hot standby, where every transaction is read-only: serving answers
# as on the primary, and mf_train, the refits and mf_recommend_all into a
# table are refused at once with 25006 and a hint to call them on the
# primary (they failed at their first write, with PostgreSQL's bare error
# naming an internal statement).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use lib 'test';
use MfTap;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "extension_destdir = '$ENV{MF_EXT_DESTDIR}'")
  if $ENV{MF_EXT_DESTDIR};
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION mf_ext');
$primary->safe_psql('postgres', smooth_ratings(40, 30));
$primary->safe_psql('postgres', q{SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 2, iterations := 3)});
$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

my $prediction = q{SELECT round(mf_predict('ratings', 1, 2)::numeric, 9)};
is($standby->safe_psql('postgres', $prediction), $primary->safe_psql('postgres', $prediction),
	'the standby serves the model as the primary does');

foreach my $call (
	q{SELECT mf_train('ratings', k := 2)},
	q{SELECT mf_refit_users('ratings')},
	q{SELECT mf_recommend_all('ratings', 3, target := 'top3')})
{
	my ($rc, $out, $err) = $standby->psql('postgres', $call);
	my ($function) = $call =~ /SELECT (\w+)/;
	like($err, qr/ERROR:  cannot run $function in a read-only transaction/,
		"$function on the standby: 25006 naming it");
	like($err, qr/HINT:  Call it on the primary server: this one is a standby\./,
		'... with the hint to call it on the primary');
}
is($standby->safe_psql('postgres', 'SELECT count(*) FROM mf_recommend_all_rows(\'ratings\', 3)'),
	$primary->safe_psql('postgres', 'SELECT count(*) FROM mf_recommend_all_rows(\'ratings\', 3)'),
	'mf_recommend_all_rows, which writes nothing, runs on the standby');

$standby->stop;
$primary->stop;
done_testing();
