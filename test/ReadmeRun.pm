# Runs the SQL examples of README.md top to bottom through psql and compares
# the outputs the README shows with what psql printed.  Used by
# test/t/014_readme.pl; the convention for README authors is written there
# and in the README (Try it).  By hand, from the top of the tree, against
# the server of the libpq environment (PGHOST, PGPORT, PGUSER, PGDATABASE)
# with the extension installed, which must be a throw-away cluster (the
# examples create databases and roles), e.g. as the postgres user:
#
#   pg_virtualenv perl test/ReadmeRun.pm           # run and compare; exit status 1 on a failure
#   pg_virtualenv perl test/ReadmeRun.pm --print   # also print every block's output and messages
package ReadmeRun;
use strict;
use warnings;
use Exporter 'import';
use File::Temp ();
use IPC::Run ();

our @EXPORT_OK = qw(parse_readme run_steps compare_output same_cell);

# A number as psql prints it (integer, decimal, exponent).
my $number = qr/-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?/;

# Relative tolerance of the numbers that are not integers.
our $relative_tolerance = 1e-4;

# README.md as a list of steps, in order:
#   { kind => 'sql',   line => N, sql => TEXT, expected => TEXT or undef, expected_line => N }
#   { kind => 'skip',  line => N, sql => TEXT, reason => TEXT }
#   { kind => 'setup', line => N, sql => TEXT, reason => TEXT }
# Dies on a malformed marker or block.
sub parse_readme
{
	my ($path) = @_;
	open my $fh, '<', $path or die "$path: $!";
	my @lines = <$fh>;
	close $fh;
	chomp @lines;

	my @steps;
	my $skip;    # reason of a skip marker waiting for its block
	my $i = 0;
	while ($i < @lines)
	{
		my $line = $lines[$i];
		my $at = $i + 1;
		if ($line =~ /^\s*<!--.*readme-run/)
		{
			die "$path:$at: a readme-run marker after a skip marker, not a ```sql block\n"
			  if defined $skip;
			if ($line =~ /^<!-- readme-run skip: (\S.*?)\s*-->\s*$/)
			{
				$skip = $1;
				die "$path:$at: a skip marker must stand on the line just before a ```sql block\n"
				  unless ($lines[ $i + 1 ] // '') =~ /^```sql\s*$/;
				$i++;
				next;
			}
			if ($line =~ /^<!-- readme-run setup: (\S.*?)\s*$/ && $line !~ /-->/)
			{
				my $reason = $1;
				my @sql;
				$i++;
				while ($i < @lines && $lines[$i] !~ /^\s*-->\s*$/)
				{
					die "$path:" . ($i + 1) . ": '-->' must stand alone on the line that ends a setup marker\n"
					  if $lines[$i] =~ /-->/;
					push @sql, $lines[ $i++ ];
				}
				die "$path:$at: setup marker not closed by a line '-->'\n" if $i >= @lines;
				die "$path:$at: setup marker without SQL\n" unless grep { /\S/ } @sql;
				push @steps, { kind => 'setup', line => $at, reason => $reason,
							   sql => join("\n", @sql) };
				$i++;
				next;
			}
			die "$path:$at: not a readme-run marker: '<!-- readme-run skip: WHY -->' before a ```sql block,"
			  . " or '<!-- readme-run setup: WHY', SQL lines, '-->'\n";
		}
		if ($line =~ /^(\s*)```\s*(\S*)/)
		{
			my ($indent, $lang) = ($1, $2);
			die "$path:$at: an indented ```sql block: the runner runs only blocks whose fence starts the line\n"
			  if $indent ne '' && $lang eq 'sql';
			my @body;
			$i++;
			push @body, $lines[ $i++ ] while $i < @lines && $lines[$i] !~ /^\s*```\s*$/;
			die "$path:$at: code block not closed\n" if $i >= @lines;
			$i++;    # past the closing fence
			next unless $lang eq 'sql';
			my $sql = join("\n", @body);
			check_block_ends($path, $at, @body);
			my $step = { line => $at, sql => $sql };
			if (defined $skip)
			{
				@$step{qw(kind reason)} = ('skip', $skip);
				undef $skip;
			}
			else
			{
				$step->{kind} = 'sql';
			}
			# a plain block on the very next line is this block's output
			if ($i < @lines && $lines[$i] =~ /^```\s*$/)
			{
				my @out;
				my $out_at = $i + 1;
				$i++;
				push @out, $lines[ $i++ ] while $i < @lines && $lines[$i] !~ /^```\s*$/;
				die "$path:$out_at: output block not closed\n" if $i >= @lines;
				$i++;
				$step->{expected} = join("\n", @out);
				$step->{expected_line} = $out_at;
			}
			push @steps, $step;
			next;
		}
		$i++;
	}
	die "$path: a skip marker at the end, without its block\n" if defined $skip;
	return @steps;
}

# A block must end its last statement (';' or a psql meta-command), so
# that no statement runs on into the next block.
sub check_block_ends
{
	my ($path, $at, @body) = @_;
	my @code = grep { /\S/ } map { s/\s*--.*$//r } @body;
	die "$path:$at: empty ```sql block\n" unless @code;
	die "$path:$at: the block's last statement does not end with ';' (or a psql \\ command)\n"
	  unless $code[-1] =~ /;\s*$/ || $code[-1] =~ /^\s*\\/ || $code[-1] =~ /\\g\w*(\s.*)?$/;
}

# Runs @steps (skipped ones left out) through one psql: @$psql is the
# command, connection included.  Returns { status => psql's exit status,
# ended => whether psql ran every step and exited with 0, failed => index
# of the step that was running when psql stopped (undef: none, or none had
# started), out => [stdout per step], err => [stderr per step], stray =>
# stderr outside every step }.
sub run_steps
{
	my ($psql, @steps) = @_;
	my $script = File::Temp->new(TEMPLATE => 'readme-run-XXXXXX', SUFFIX => '.sql', TMPDIR => 1);
	my $at = 1;     # the script's next line
	my @starts;     # the script's line of each step's first line
	for my $n (0 .. $#steps)
	{
		next if $steps[$n]{kind} eq 'skip';
		print $script "\\echo '<<readme-run step $n>>'\n\\warn '<<readme-run step $n>>'\n";
		print $script $steps[$n]{sql}, "\n";
		$starts[$n] = $at + 2;
		$at += 2 + ($steps[$n]{sql} =~ tr/\n//) + 1;
	}
	print $script "\\echo '<<readme-run end>>'\n";
	close $script;

	my ($stdout, $stderr) = ('', '');
	IPC::Run::run([ @$psql, '-X', '-v', 'ON_ERROR_STOP=1', '-f', $script->filename ],
		'<', \undef, '>', \$stdout, '2>', \$stderr);
	my $status = $? >> 8;

	my (@out, @err);
	my $last;
	for my $pair ([ \$stdout, \@out ], [ \$stderr, \@err ])
	{
		my ($text, $into) = @$pair;
		my $n;
		for my $line (split /\n/, $$text, -1)
		{
			if ($line =~ /^<<readme-run step (\d+)>>$/)
			{
				$n = $1;
				$into->[$n] = '';
				$last = $n if $into == \@err;
				next;
			}
			if ($line eq '<<readme-run end>>')
			{
				undef $n;
				next;
			}
			$into->[ $n // scalar(@steps) ] .= "$line\n";
		}
	}
	my $ended = $status == 0 && $stdout =~ /^<<readme-run end>>$/m;
	return { status => $status, ended => $ended, failed => $ended ? undef : $last,
			 out => \@out, err => \@err, script => $script->filename, starts => \@starts,
			 stray => $err[ scalar(@steps) ] // '' };
}

# Output lines, trailing spaces and surrounding blank lines dropped.
sub output_lines
{
	my @lines = map { s/\s+$//r } split /\n/, $_[0] // '';
	shift @lines while @lines && $lines[0] eq '';
	pop @lines while @lines && $lines[-1] eq '';
	return @lines;
}

# A line as its cells: split at '|' and trimmed, so that a column as wide
# as other digits make it compares equal; a rule (---+---) keeps its shape.
sub cells
{
	my ($line) = @_;
	return ($line =~ s/-+/-/gr) if $line =~ /^[-+]+$/;
	return map { s/^\s+|\s+$//gr } split /\|/, $line, -1;
}

# One unit in the last digit a number shows (integers: none).
sub last_digit
{
	my ($n) = @_;
	my ($decimals, $exponent) = $n =~ /^-?\d+(?:\.(\d+))?(?:[eE]([-+]?\d+))?$/;
	return 10**(($exponent // 0) - length($decimals // ''));
}

# Whether a cell of the README ($want) matches what psql printed ($got): the
# same text around the numbers; integers equal; other numbers within
# $relative_tolerance of each other, or one unit in the last digit the
# README shows (a rounded value on the other side of a rounding boundary).
sub same_cell
{
	my ($want, $got) = @_;
	return 1 if $want eq $got;
	my @w = split /($number)/, $want, -1;
	my @g = split /($number)/, $got, -1;
	return 0 unless @w == @g;
	for my $n (0 .. $#w)
	{
		if ($n % 2 == 0)
		{
			return 0 unless $w[$n] eq $g[$n];
			next;
		}
		my ($a, $b) = ($w[$n], $g[$n]);
		next if $a eq $b;
		return 0 if $a =~ /^-?\d+$/ && $b =~ /^-?\d+$/;    # integers: exactly
		my $diff = abs($a - $b);
		my $scale = abs($a) > abs($b) ? abs($a) : abs($b);
		return 0 unless $diff <= $relative_tolerance * $scale || $diff <= last_digit($a) * (1 + 1e-9);
	}
	return 1;
}

# '' when $got matches $want, else a description of the first difference.
sub compare_output
{
	my ($want, $got) = @_;
	my @w = output_lines($want);
	my @g = output_lines($got);
	for my $n (0 .. ($#w > $#g ? $#w : $#g))
	{
		my $wl = $w[$n];
		my $gl = $g[$n];
		return "line " . ($n + 1) . ": the README shows\n  $wl\nbut psql printed no more lines"
		  unless defined $gl;
		return "line " . ($n + 1) . ": psql printed\n  $gl\nwhere the README's output has ended"
		  unless defined $wl;
		my @wc = cells($wl);
		my @gc = cells($gl);
		my $same = @wc == @gc;
		for my $c (0 .. $#wc)
		{
			last unless $same;
			$same = same_cell($wc[$c], $gc[$c]);
		}
		return "line " . ($n + 1) . ": the README shows\n  $wl\nbut psql printed\n  $gl" unless $same;
	}
	return '';
}

# Runs README.md (or $path) with $psql and checks every step.  Returns the
# list of results, one per step: { step => ..., ok => 0/1, what => TEXT,
# problem => TEXT, out => TEXT, err => TEXT }, and stops at the first step
# that failed to run (later steps are not run).
sub check_readme
{
	my ($psql, $path) = @_;
	$path //= 'README.md';
	my @steps = parse_readme($path);
	my $run = run_steps($psql, @steps);
	my @results;
	for my $n (0 .. $#steps)
	{
		my $step = $steps[$n];
		my $what = "$path:$step->{line}: "
		  . ($step->{kind} eq 'setup' ? "setup ($step->{reason})" : "```sql block");
		if ($step->{kind} eq 'skip')
		{
			push @results, { step => $step, ok => 1, skipped => 1,
							 what => "$what not run"
							   . (defined $step->{expected} ? ", its output not compared" : '')
							   . ": $step->{reason}" };
			next;
		}
		my ($out, $err) = ($run->{out}[$n] // '', $run->{err}[$n] // '');
		# psql's "psql:SCRIPT:LINE:" as the README's line
		$err =~ s{^psql:\Q$run->{script}\E:(\d+):}
			{"$path:" . ($1 - $run->{starts}[$n] + $step->{line} + 1) . ":"}mge;
		if (defined $run->{failed} && $run->{failed} == $n)
		{
			push @results, { step => $step, ok => 0, what => $what, out => $out, err => $err,
							 problem => "psql stopped in it (exit status $run->{status}); see its messages" };
			last;
		}
		my $problem = defined $step->{expected} ? compare_output($step->{expected}, $out) : '';
		$what .= " and its output ($path:$step->{expected_line})" if defined $step->{expected};
		push @results, { step => $step, ok => $problem eq '', what => $what, out => $out,
						 err => $err, problem => $problem,
						 compared => defined $step->{expected} };
	}
	push @results, { ok => 0, what => 'psql',
					 problem => "psql did not run the steps (exit status $run->{status}):\n$run->{stray}" }
	  unless $run->{ended} || defined $run->{failed};
	return @results;
}

# By hand: perl test/ReadmeRun.pm [--print] [README.md]
sub main
{
	my @args = @_;
	my $print = @args && $args[0] eq '--print' ? shift @args : 0;
	my @results = check_readme(['psql'], $args[0]);
	my $failed = 0;
	for my $r (@results)
	{
		print(($r->{ok} ? 'ok' : 'FAILED'), ": $r->{what}\n");
		print "---- output\n$r->{out}---- messages\n$r->{err}" if $print && !$r->{skipped};
		next if $r->{ok};
		$failed++;
		print "$r->{problem}\n";
		print "its messages:\n$r->{err}" if !$print && $r->{err};
	}
	return $failed ? 1 : 0;
}

exit(main(@ARGV)) unless caller;

1;
