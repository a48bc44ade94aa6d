# Shared set-up of the TAP tests in test/t: a started cluster with mf_ext
# installed, and the generated ratings tables the tests train on.
package MfTap;
use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;

our @EXPORT = qw(mf_cluster mf_node mf_citus_node mf_citus_cluster smooth_ratings random_ratings model_fingerprint call_waiting kill_backend
  mf_own_kernels);

# The own kernels (mf_ext.kernel) this CPU runs, widest first: avx512 and
# avx2 by the instruction sets /proc/cpuinfo lists (as kernel.c asks the
# CPU), portable always.
sub mf_own_kernels
{
	my $flags = '';
	if (open(my $cpuinfo, '<', '/proc/cpuinfo'))
	{
		while (<$cpuinfo>)
		{
			if (/^flags\s*:\s*(.*)$/) { $flags = " $1 "; last; }
		}
		close($cpuinfo);
	}
	my $avx2 = $flags =~ / avx2 / && $flags =~ / fma /;
	my @kernels;
	push @kernels, 'avx512' if $avx2 && $flags =~ / avx512f /;
	push @kernels, 'avx2' if $avx2;
	return (@kernels, 'portable');
}

# An initialized cluster, not started.  With MF_EXT_DESTDIR set (a
# `make install DESTDIR=...` tree), its servers load mf_ext from there
# (Debian's extension_destdir) rather than from the system's installation:
# for testing a build without installing it.
sub mf_cluster
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', "extension_destdir = '$ENV{MF_EXT_DESTDIR}'")
	  if $ENV{MF_EXT_DESTDIR};
	return $node;
}

# A started cluster with mf_ext created; @settings are postgresql.conf lines.
sub mf_node
{
	my ($name, @settings) = @_;
	my $node = mf_cluster($name);
	$node->append_conf('postgresql.conf', $_) foreach @settings;
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION mf_ext');
	return $node;
}

# A started Citus 12.1 node (not yet in a cluster), with the citus
# extension created; the nodes reach each other over 127.0.0.1 without TLS.
sub mf_citus_node
{
	my ($name) = @_;
	my $node = mf_cluster($name);
	$node->append_conf('postgresql.conf', $_)
	  foreach ("shared_preload_libraries = 'citus'", "listen_addresses = '127.0.0.1'",
		"citus.node_conninfo = 'sslmode=disable'", 'max_worker_processes = 20');
	$node->append_conf('pg_hba.conf', 'host all all 127.0.0.1/32 trust');
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION citus');
	return $node;
}

# A Citus cluster of a coordinator and the workers named, with mf_ext
# created (Citus creates it on the workers): (coordinator, workers).
sub mf_citus_cluster
{
	my ($coordinator, @workers) = map { mf_citus_node($_) } ('coordinator', @_);
	$coordinator->safe_psql('postgres', q{SET client_min_messages = warning;
		SELECT citus_set_coordinator_host('127.0.0.1', } . $coordinator->port . ')');
	$coordinator->safe_psql('postgres', "SELECT citus_add_node('127.0.0.1', " . $_->port . ')')
	  foreach @workers;
	$coordinator->safe_psql('postgres', 'CREATE EXTENSION mf_ext');
	return ($coordinator, @workers);
}

# SQL that creates table ratings: $users x $items smooth, nearly low-rank
# ratings, of which about $percent % (default 25) are observed.
sub smooth_ratings
{
	my ($users, $items, $percent) = @_;
	$percent //= 25;
	return qq{CREATE TABLE ratings AS
	SELECT u AS user_id, i AS item_id,
	       3 + sin(u) * cos(i) + 0.5 * cos(0.3 * u) * sin(0.7 * i) AS rating
	FROM generate_series(1, $users) u, generate_series(1, $items) i
	WHERE abs(hashint8(u * 1000 + i)) % 100 < $percent;};
}

# SQL that creates table ratings: $users users x $per ratings 1-5 at random
# among 2,000 items.
sub random_ratings
{
	my ($users, $per) = @_;
	return qq{CREATE TABLE ratings AS
	SELECT u AS user_id, (abs(hashint8(u * 7919 + j)) % 2000) + 1 AS item_id,
	       1 + abs(hashint8(u * 31 + j)) % 5 AS rating
	FROM generate_series(1, $users) u, generate_series(1, $per) j;
	ANALYZE ratings;};
}

# Session A runs $hold, SQL that leaves a transaction open; session B runs
# $setup (if any), then $call, which must wait for one of A's locks (a
# test); A runs $meanwhile (if any) and commits, and B runs $after (if
# any: 'END;' for a transaction $setup began).  Returns B's (stdout of
# $call, stderr) and A's stderr of $meanwhile.
sub call_waiting
{
	my ($node, $hold, $setup, $call, $after, $meanwhile) = @_;
	my $a = $node->background_psql('postgres', on_error_stop => 0);
	my $meanwhile_err = '';
	$a->query_safe($hold);
	my $b = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $b->query_safe('SET client_min_messages = warning; SELECT pg_backend_pid()');
	$b->query_safe($setup) if $setup;
	$b->{stdout} = '';
	$b->query_until(qr/calling/, "\\echo calling\n$call;\n");
	Test::More::ok(
		$node->poll_query_until('postgres',
			"SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $pid"),
		"the call waits for the other session's transaction: $call");
	if (defined $meanwhile)
	{
		$a->query($meanwhile);
		$meanwhile_err = $a->{stderr};
	}
	$a->query_safe('COMMIT');
	my ($out) = $b->query(($after // '') . ' SELECT 1 AS done');
	my $err = $b->{stderr};
	$out =~ s/\n?1\s*$//;    # the SELECT 1 that waited behind the call
	$out =~ s/^calling\n//;
	$a->quit;
	$b->quit;
	return ($out, $err, $meanwhile_err);
}

# Kills backend $pid of $node with SIGKILL and waits until the postmaster,
# through crash recovery (restart_after_crash = on), accepts connections
# again, as its log says.  Polling with psql instead raced: a psql that
# could not connect exited before IPC::Run wrote its query to it, and the
# test died of a broken pipe (CI, 003_crash.pl, a loaded machine).
sub kill_backend
{
	my ($node, $pid) = @_;
	my $offset = -s $node->logfile;
	kill 'KILL', $pid;
	$node->wait_for_log(qr/database system is ready to accept connections/, $offset);
}

# SQL for an md5 of every model row, factor row and history row.
sub model_fingerprint
{
	return q{SELECT md5(concat_ws('|',
	(SELECT string_agg(row(m.*)::text, ';' ORDER BY model_id) FROM mf_models m),
	(SELECT string_agg(row(u.*)::text, ';' ORDER BY model_id, user_id) FROM mf_user_factors u),
	(SELECT string_agg(row(i.*)::text, ';' ORDER BY model_id, item_id) FROM mf_item_factors i),
	(SELECT string_agg(row(h.*)::text, ';' ORDER BY model_id, run, iteration) FROM mf_model_history h)))};
}

1;
