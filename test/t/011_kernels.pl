# mf_ext's own single-precision kernels (src/kernel.c): each instruction
# set this CPU runs (read from /proc/cpuinfo: avx512f; avx2 and fma; the
# portable C always), forced with mf_ext.kernel, and OpenBLAS's path
# ('blas'), trains every kind of model to the double-precision solve's
# predictions within single-precision tolerance, gives the same model bit
# for bit with 1 and 2 threads, a training RMSE (J's data term) that is
# the stored factors', and folds in a new user like OpenBLAS's solve.  An
# instruction set the CPU lacks is refused when set, with a hint.  A row
# longer than the kernel's 65,536-rating segments is summed across
# segments correctly.  Rows solved in a batch and alone get the same
# factors.  A row a pair repeats 3,000 times in trains.  Implicit
# feedback's short rows are solved by the Woodbury identity on every path
# (large confidences the primal way), with J the stored model's.  J of
# each iteration, summed late where the own kernels can, is J taken at the
# iteration's end, with biases far larger than the residuals too.
# mf_recommend's and mf_recommend_users' pre-scoring from 8-bit codes
# gives the exact top-10 on every path.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use lib 'test';
use MfTap;
use Test::More;

my $node = mf_node('kernels');

my @kernels = (mf_own_kernels(), 'blas');
my %runs = map { $_ => 1 } @kernels;
diag('kernels this CPU runs: ' . join(', ', @kernels));

foreach my $kernel (grep { !$runs{$_} } qw(avx512 avx2))
{
	my ($rc, $out, $err) = $node->psql('postgres', "SET mf_ext.kernel = $kernel");
	like($err, qr/invalid value for parameter "mf_ext.kernel".*This CPU does not run/s,
		"mf_ext.kernel = $kernel is refused on a CPU without it");
}

# ratings: 300 users x 120 items, about 30 % observed, nearly low-rank; a
# second table of strengths for implicit feedback; a third where item 1 is
# rated by 70,000 users (two kernel segments and more); a fourth whose
# users rate 1 to 100 items each, so that with k = 100 the short rows are
# solved in the dual form (mf_kernel_dual_solve, up to 62 ratings) between
# rows solved in batches; a fifth of implicit strengths (0 to 5) whose
# items 16 to 500 have 1 to 5 listeners each and items 1 to 15 all 40, so
# that with k = 24 the items' half-step solves its short rows by the
# Woodbury identity (rows of up to 12 ratings) beside primal ones.
$node->safe_psql('postgres', q{
	CREATE TABLE ratings AS
	SELECT u AS user_id, i AS item_id,
	       round((3 + sin(u * 0.7) * cos(i * 0.3) + 0.5 * sin(u + i))::numeric, 2) AS rating
	FROM generate_series(1, 300) u, generate_series(1, 120) i
	WHERE (u * 31 + i * 17) % 10 < 3;
	CREATE TABLE plays AS
	SELECT user_id, item_id, 1 + (user_id * item_id) % 7 AS rating FROM ratings;
	CREATE TABLE mixed AS
	SELECT u AS user_id, i AS item_id, round((3 + sin(u * 0.3) * cos(i * 0.2))::numeric, 2) AS rating
	FROM generate_series(1, 300) u, generate_series(1, 150) i
	WHERE (u * 31 + i * 17) % 150 <= u % 100;
	CREATE TABLE long_row AS
	SELECT u AS user_id, 1 AS item_id, 1 + u % 5 AS rating FROM generate_series(1, 70000) u
	UNION ALL SELECT u, 2 + u % 50, 1 + (u * 7) % 5 FROM generate_series(1, 70000) u;
	CREATE TABLE repeats AS
	SELECT u AS user_id, i AS item_id, 1 + (abs(hashint4(u * 131 + i)) % 5)::float8 AS rating
	FROM generate_series(1, 100) u, generate_series(1, 100) i WHERE abs(hashint4(u * 17 + i)) % 3 = 0
	UNION ALL VALUES (1, 1000, 1), (1, 1000, 5), (2, 1000, 4);
	CREATE TABLE big_biases AS
	SELECT u AS user_id, i AS item_id, (1000.0 * u + 300.0 * (i % 7) + 0.01 * i)::float8 AS rating
	FROM generate_series(1, 200) u, generate_series(1, 100) i WHERE (u * 7 + i * 13) % 2 = 0;
	CREATE TABLE failing AS
	SELECT u AS user_id, i AS item_id, (1000.0 * u + 0.01 * i)::float8 AS rating
	FROM generate_series(1, 200) u, generate_series(1, 100) i WHERE (u * 7 + i * 13) % 2 = 0;
	CREATE TABLE tail AS
	SELECT u AS user_id, i AS item_id, (u * 7 + i * 3) % 6 AS rating
	FROM generate_series(1, 40) u, generate_series(1, 500) i
	WHERE i <= 15 OR (u * 13 + i * 7) % 40 < 1 + i % 5;
});

# name => [table, mf_train arguments, the own kernels' tolerance (default
# 1e-3; OpenBLAS's path is held to 1e-3)].  The own CG product sums a long
# row block by block: 1.4e-6 from double precision on the 70,000-rating
# row with implicit feedback (OpenBLAS's path 1.4e-4; one float sum over
# the row gave 2.8e-4)
my %kinds = (
	plain => ['ratings', 'k := 13, lambda := 0.1'],
	biases => ['ratings', 'k := 16, lambda := 0.5, biases := true'],
	wide => ['ratings', 'k := 70, lambda := 1'],
	wider => ['ratings', 'k := 200, lambda := 1'],	# portable C: the own Gram matrix, LAPACK's solve
	# the users' rows (36 ratings) in the dual form, the items' (90) in batches
	dual => ['ratings', 'k := 100, lambda := 0.5'],
	dual_weighted => ['ratings', 'k := 128, lambda := 0.05, weighted_lambda := true, lambda_per_rating := 0.01'],
	dual_mixed => ['mixed', 'k := 100, lambda := 0.5'],
	dual_biases => ['mixed', 'k := 100, lambda := 0.5, biases := true'],
	dual_bias_lambda => ['mixed', 'k := 64, lambda := 0.5, biases := true, bias_lambda := 2, lambda_per_rating := 0.01'],
	# bias_lambda far below lambda: lambda / bias_lambda as an element of
	# the dual system had swamped it (an error at 1e7, 2e-3 off at 1e4)
	dual_small_bias_lambda => ['mixed', 'k := 64, lambda := 1, biases := true, bias_lambda := 1e-4'],
	dual_tiny_bias_lambda => ['mixed', 'k := 64, lambda := 10, biases := true, bias_lambda := 1e-6'],
	# lambda / bias_lambda past the float range: the bias's weight as a
	# float had overflowed ("could not be solved"; attack helper 149)
	dual_vanishing_bias_lambda => ['mixed', 'k := 64, lambda := 1, biases := true, bias_lambda := 1e-300'],
	# user 1 rates item 1000 twice (1 and 5): in the dual form its two equal
	# rows made z about +-2 / lambda, which X'z cancelled in single precision
	# (2.84 for 3.00; attack helper 166); such a row is solved the primal way
	dual_repeats => ['repeats', 'k := 64, lambda := 0.001'],
	weighted_cg => ['ratings', "k := 20, lambda := 0.05, weighted_lambda := true, solver := 'cg'"],
	penalties => ['ratings', 'k := 16, lambda := 2, biases := true, bias_lambda := 0.5, lambda_per_rating := 0.05'],
	penalties_cg => ['ratings', "k := 16, lambda := 2, biases := true, bias_lambda := 0.5, lambda_per_rating := 0.05, solver := 'cg'"],
	implicit_information => ['ratings', 'k := 16, lambda := 2, biases := true, implicit_weight := 0.4'],
	implicit_information_cg => ['ratings', "k := 16, lambda := 2, implicit_weight := 0.4, solver := 'cg'"],
	implicit_cholesky => ['plays', "k := 24, lambda := 1, feedback := 'implicit', alpha := 2, solver := 'cholesky'"],
	implicit_cg => ['plays', "k := 24, lambda := 1, feedback := 'implicit', alpha := 2"],
	# G v by the own kernels' matrix_apply: an odd number of columns, and
	# rows past one chunk of four vectors (AVX2, portable C) and past whole
	# vectors; and G with the biases' zero row and column (d = 17)
	implicit_cg_odd => ['plays', "k := 37, lambda := 1, feedback := 'implicit', alpha := 2"],
	implicit_information_cg_biases => ['ratings', "k := 16, lambda := 2, biases := true, implicit_weight := 0.4, solver := 'cg'"],
	nonnegative => ['ratings', 'k := 8, lambda := 0.5, nonnegative := true'],
	long_row => ['long_row', 'k := 16, lambda := 1, biases := true'],
	long_row_cg => ['long_row', "k := 16, lambda := 1, biases := true, solver := 'cg'"],
	long_row_implicit_cg => ['long_row', "k := 16, lambda := 1, feedback := 'implicit', alpha := 2", 5e-5],
	# the items' short rows by the Woodbury identity (with CG, exactly;
	# with confidences up to 1,500 most of them the primal way instead)
	implicit_tail => ['tail', "k := 24, lambda := 1, feedback := 'implicit', alpha := 2"],
	implicit_tail_cholesky => ['tail', "k := 24, lambda := 1, feedback := 'implicit', alpha := 2, solver := 'cholesky'"],
	implicit_tail_confident => ['tail', "k := 24, lambda := 1, feedback := 'implicit', alpha := 300, solver := 'cholesky'"],
);

# largest |single - double| / (1 + largest |double|) over the training pairs
sub prediction_gap
{
	my ($single, $double, $table) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT max(abs(mf_predict('$single', user_id, item_id) - mf_predict('$double', user_id, item_id)))
		       / (1 + max(abs(mf_predict('$double', user_id, item_id))))
		FROM (SELECT DISTINCT user_id, item_id FROM $table) p});
}

sub factors_md5
{
	my ($model) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT md5(string_agg(factors::text || coalesce(bias::text, ''), ';' ORDER BY user_id))
		FROM mf_user_factors WHERE model_id = (SELECT model_id FROM mf_models WHERE name = '$model')});
}

foreach my $kind (sort keys %kinds)
{
	my ($table, $arguments, $own_tolerance) = @{ $kinds{$kind} };
	$node->safe_psql('postgres', qq{
		SET client_min_messages = warning;
		SELECT mf_train('$table', $arguments, iterations := 3, double_precision := true,
		                model_name := '${kind}_double')});
	foreach my $kernel (@kernels)
	{
		my $model = "${kind}_$kernel";
		$node->safe_psql('postgres', qq{
			SET client_min_messages = warning; SET mf_ext.kernel = $kernel; SET mf_ext.threads = 2;
			SELECT mf_train('$table', $arguments, iterations := 3, model_name := '$model')});
		my $gap = prediction_gap($model, "${kind}_double", $table);
		my $tolerance = $kernel eq 'blas' ? 1e-3 : $own_tolerance // 1e-3;
		cmp_ok($gap, '<', $tolerance,
			"$kind, $kernel kernel: predictions within $tolerance of double precision ($gap)");
		my $two = factors_md5($model);
		$node->safe_psql('postgres', qq{
			SET client_min_messages = warning; SET mf_ext.kernel = $kernel; SET mf_ext.threads = 1;
			SELECT mf_train('$table', $arguments, iterations := 3, model_name := '$model')});
		is(factors_md5($model), $two, "$kind, $kernel kernel: 1 and 2 threads give the same factors");
		next if $arguments =~ /feedback := 'implicit'/;
		# J's data term: with CG the own kernels follow each row's
		# predictions through the steps instead of computing them again
		# (on the long row, across its segments)
		my $rmse_gap = $node->safe_psql('postgres', qq{
			SELECT abs(m.train_rmse - sqrt(avg((r.rating - mf_predict(m.model_id, r.user_id, r.item_id)) ^ 2)))
			FROM mf_models m, $table r WHERE m.name = '$model' GROUP BY m.model_id, m.train_rmse});
		cmp_ok($rmse_gap, '<', 1e-6,
			"$kind, $kernel kernel: the training RMSE (J's data term) is the stored factors' ($rmse_gap)");
		# J of the iterations before the last, which the own kernels'
		# Cholesky sums from the users' rows while the next iteration solves
		# them (can_defer_loss, with the factors they had), against J taken
		# at each iteration's end (a tolerance too small to stop on); the
		# same factors either way
		$node->safe_psql('postgres', qq{
			SET client_min_messages = warning; SET mf_ext.kernel = $kernel; SET mf_ext.threads = 2;
			SELECT mf_train('$table', $arguments, iterations := 3, tolerance := 1e-300,
			                model_name := '${model}_each')});
		is(factors_md5("${model}_each"), $two, "$kind, $kernel kernel: the same factors with a tolerance");
		my $loss_gap = $node->safe_psql('postgres', qq{
			SELECT max(abs(a.j - b.j) / b.j) || ' ' || max(abs(a.rmse - b.rmse) / b.rmse) || ' ' || count(*)
			FROM (SELECT j, rmse, i FROM mf_models m,
			      unnest(m.loss, m.train_rmse_history) WITH ORDINALITY AS x(j, rmse, i)
			      WHERE m.name = '$model') a
			JOIN (SELECT j, rmse, i FROM mf_models m,
			      unnest(m.loss, m.train_rmse_history) WITH ORDINALITY AS x(j, rmse, i)
			      WHERE m.name = '${model}_each') b USING (i)});
		my ($j_gap, $rmse_history_gap, $iterations) = split / /, $loss_gap;
		ok($iterations == 3 && $j_gap < 1e-6 && $rmse_history_gap < 1e-6,
			"$kind, $kernel kernel: J and the training RMSE of every iteration as taken at its end ($loss_gap)");
	}
}

# Biases far larger than the residuals (users' up to 200,000, items' up
# to 1,800, residuals about 0.1): J's data term takes each row's own bias
# from the rating in double, as the other side's, on both of its paths
# (the users' half-step summing the iteration before's, and the items'
# half-step summing the last's); added to a float score, the users' had
# made the iterations' training RMSE 2.5e-5 to 2e-4 off (attack helper 168).
# The ratings are the biases' sum exactly, so the training RMSE is the
# factors' rounding and J can rise from one iteration to the next by it:
# the training with a tolerance then stops there, after 2 iterations
# (OpenBLAS's kernels on a Zen 4 CPU, the blas path), and the iterations
# it ran are compared.
foreach my $kernel (@kernels)
{
	my $history = $node->safe_psql('postgres', qq{
		SET client_min_messages = warning; SET mf_ext.kernel = $kernel; SET mf_ext.threads = 2;
		SELECT mf_train('big_biases', k := 2, lambda := 0.1, biases := true, bias_lambda := 1e-4,
		                iterations := 3, model_name := 'big_biases_late');
		SELECT mf_train('big_biases', k := 2, lambda := 0.1, biases := true, bias_lambda := 1e-4,
		                iterations := 3, tolerance := 1e-300, model_name := 'big_biases_each');
		SELECT max(abs(a.rmse - b.rmse) / b.rmse) || ' ' || count(*)
		FROM (SELECT rmse, i FROM mf_models m, unnest(m.train_rmse_history) WITH ORDINALITY AS x(rmse, i)
		      WHERE m.name = 'big_biases_late') a
		JOIN (SELECT rmse, i FROM mf_models m, unnest(m.train_rmse_history) WITH ORDINALITY AS x(rmse, i)
		      WHERE m.name = 'big_biases_each') b USING (i)});
	my ($gap, $iterations) = split / /, (split /\n/, $history)[-1];
	ok($iterations >= 2 && $gap < 1e-9,
		"large biases, $kernel kernel: each iteration's training RMSE the same summed late or at its end ($history)");
}

# A training whose users' half-step fails (at lambda = 1e-6, after one or
# two iterations, at its first user): the iterations before are reported
# (their NOTICEs, their J) before the error, the users' rows the failed
# half-step did not reach summed apart, as when J is taken at each
# iteration's end (attack helper 168: they were not reported at all).  (A
# tolerance, which takes J at each iteration's end, stops the portable
# kernel's training where J rises, before the failure.)
foreach my $kernel (@kernels)
{
	my @streams;
	foreach my $tolerance ('', ', tolerance := 1e-300')
	{
		# a first training each time (a retraining says which options it keeps)
		my ($rc, $out, $err) = $node->psql('postgres', qq{
			SELECT mf_drop_model(name) FROM mf_models WHERE name = 'failing';
			SET client_min_messages = notice; SET mf_ext.kernel = $kernel; SET mf_ext.threads = 2;
			SELECT mf_train('failing', k := 2, lambda := 1e-6, biases := true,
			                model_name := 'failing'$tolerance)});
		$err =~ s/^psql:<stdin>:\d+: //mg;
		$err =~ s/^DETAIL:  [0-9.]+ s this iteration.*\n//mg;
		push @streams, $err;
	}
	like($streams[0], qr/\A(NOTICE:  iteration \d+ of 10: J = [^\n]*\n)+ERROR:  the least-squares system of user 1 could not be solved/,
		"$kernel kernel: the iterations before a failed half-step reported before its error");
	my @late = $streams[0] =~ /^(NOTICE:  iteration \d+ of 10: .*)$/mg;
	my @each = $streams[1] =~ /^(NOTICE:  iteration \d+ of 10: .*)$/mg;
	is_deeply(\@late, [ @each[0 .. $#late] ],
		"$kernel kernel: ... with the J of each as when J is taken at each iteration's end");
}

# The Woodbury identity (als_kernel.h's woodbury_solve) solves the tail's
# short item rows on every path, double precision too, and declines rows
# of large confidences (alpha = 300) for the primal solve; J, whose
# unobserved pairs it takes from the n x n products instead of G x, is
# the stored model's J, recomputed here over all 20,000 pairs; and the
# short items it solved are J's minimisers (with CG too), which the
# double-precision reference, solved the same way, cannot show.
foreach my $path ((map { "kernel $_" } @kernels), 'double precision')
{
	# [alpha, solver, the fewest and most of the 485 short rows solved so]
	foreach my $case ([2, 'cg', 485, 485], [2, 'cholesky', 485, 485], [300, 'cholesky', 1, 484])
	{
		my ($alpha, $solver, $fewest, $most) = @$case;
		my $settings = $path eq 'double precision' ? 'SET mf_ext.threads = 2'
		  : "SET mf_ext.kernel = ${\ ($path =~ s/^kernel //r)}; SET mf_ext.threads = 2";
		my ($rc, $out, $err) = $node->psql('postgres', qq{
			$settings; SET client_min_messages = debug1;
			SELECT mf_train('tail', k := 24, lambda := 1, feedback := 'implicit', alpha := $alpha,
			                solver := '$solver', iterations := 3, model_name := 'tail_j',
			                double_precision := ${\ ($path eq 'double precision' ? 'true' : 'false')})});
		my @counts = $err =~ /mf_ext solved (\d+) of 500 rows by the Woodbury identity/g;
		is(scalar(@counts), 3, "alpha $alpha, $solver, $path: the items' half-steps transform the users")
		  or diag($err);
		my $first = $counts[0] // -1;
		ok($first >= $fewest && $first <= $most,
			"alpha $alpha, $solver, $path: $first of the 485 short rows solved by the Woodbury identity (expected $fewest to $most)");
		my $gap = $node->safe_psql('postgres', qq{
			WITH m AS (SELECT model_id, loss[array_length(loss, 1)] AS j FROM mf_models WHERE name = 'tail_j'),
			scores AS (
				SELECT u.user_id, i.item_id, mf_predict('tail_j', u.user_id, i.item_id) AS s
				FROM (SELECT DISTINCT user_id FROM tail) u, (SELECT DISTINCT item_id FROM tail) i)
			SELECT abs(m.j - (
				(SELECT sum(CASE WHEN t.user_id IS NULL THEN s ^ 2 ELSE (1 + $alpha * t.rating) * (1 - s) ^ 2 END) / 2
				 FROM scores LEFT JOIN tail t USING (user_id, item_id))
				+ ((SELECT sum(x ^ 2) FROM mf_user_factors f, unnest(f.factors) x WHERE f.model_id = m.model_id)
				   + (SELECT sum(x ^ 2) FROM mf_item_factors f, unnest(f.factors) x WHERE f.model_id = m.model_id)) / 2))
			       / m.j
			FROM m});
		cmp_ok($gap, '<', 1e-6, "alpha $alpha, $solver, $path: J is the stored model's ($gap)");
		next unless $solver eq 'cg';
		# each short item the exact minimiser of J given the users, whatever
		# the solver: J's gradient in its factors, G v + sum over its
		# listeners of ((c - 1) s - c) u + lambda v, is 0 (to the
		# precision's rounding, relative to the largest factor)
		my $gradient = $node->safe_psql('postgres', qq{
			WITH m AS (SELECT model_id FROM mf_models WHERE name = 'tail_j'),
			u AS (SELECT user_id, factors FROM mf_user_factors WHERE model_id = (SELECT model_id FROM m)),
			v AS (SELECT item_id, factors FROM mf_item_factors
			      WHERE model_id = (SELECT model_id FROM m)
			        AND item_id IN (SELECT item_id FROM tail GROUP BY item_id HAVING count(*) <= 12)),
			pairs AS (
				SELECT v.item_id, u.factors AS uf, coalesce(1 + $alpha * t.rating, 1) AS c,
				       (t.user_id IS NOT NULL)::int AS p,
				       (SELECT sum(a * b) FROM unnest(u.factors, v.factors) AS x(a, b)) AS s
				FROM u CROSS JOIN v LEFT JOIN tail t ON t.user_id = u.user_id AND t.item_id = v.item_id),
			g AS (SELECT item_id, j, sum(c * (s - p) * uf[j]) AS g
			      FROM pairs, generate_subscripts(uf, 1) j GROUP BY item_id, j)
			SELECT max(abs(g.g + v.factors[g.j])) / max(abs(v.factors[g.j])) FROM g JOIN v USING (item_id)});
		my $bound = $path eq 'double precision' ? 1e-9 : 1e-3;
		cmp_ok($gradient, '<', $bound,
			"alpha $alpha, $solver, $path: the short items minimise J given the users ($gradient)");
	}
}

# fold-in solves with the kernel too: a user's factors against the plain
# model's items (trained by OpenBLAS's path), each own kernel against
# OpenBLAS's (the reference, not compared with itself)
my $fold_in = q{
	WITH rated AS (SELECT array_agg(item_id ORDER BY item_id) AS items,
	                      array_agg(rating::float8 ORDER BY item_id) AS ratings
	               FROM ratings WHERE user_id = 7)
	SELECT mf_fold_in('plain_blas', items, ratings) FROM rated};
foreach my $kernel (grep { $_ ne 'blas' } @kernels)
{
	my $gap = $node->safe_psql('postgres', qq{
		SET mf_ext.kernel = blas;
		CREATE TEMP TABLE reference AS $fold_in;
		SET mf_ext.kernel = $kernel;
		CREATE TEMP TABLE folded AS $fold_in;
		SELECT max(abs(s - r)) / (1 + max(abs(r)))
		FROM folded, reference, unnest(folded.mf_fold_in, reference.mf_fold_in) AS x(s, r)});
	cmp_ok($gap, '<', 1e-4, "fold-in, $kernel kernel: within 1e-4 of OpenBLAS's solve ($gap)");
}

# Rows are solved 16 (AVX-512) or 8 (AVX2) at a time, one in each lane of
# the vectors, and a batch of one or two rows one by one: users 1, 20 and
# 33 rate the same items the same, and with one thread users 1 and 20 are
# solved in a full batch (lanes 0 and 3) and user 33 alone (the 33rd
# user), so they must get the same factors bit for bit, at sizes of one
# tile and of several (with biases: k + 1 unknowns).
$node->safe_psql('postgres', q{
	CREATE TABLE twins AS
	SELECT u AS user_id, i AS item_id, 1 + (u * 7 + i * 3) % 5 AS rating
	FROM generate_series(1, 32) u, generate_series(1, 40) i
	WHERE (u * 13 + i * 5) % 3 = 0 AND u <> 20;
	INSERT INTO twins SELECT t.u, item_id, rating
	FROM twins, (VALUES (20), (33)) AS t(u) WHERE user_id = 1;
});
foreach my $kernel (@kernels)
{
	foreach my $arguments ('k := 3, lambda := 0.1', 'k := 37, lambda := 0.1, biases := true')
	{
		my $distinct = $node->safe_psql('postgres', qq{
			SET client_min_messages = warning; SET mf_ext.kernel = $kernel; SET mf_ext.threads = 1;
			DO \$\$ BEGIN PERFORM mf_train('twins', $arguments, iterations := 2, model_name := 'twins'); END \$\$;
			SELECT count(DISTINCT factors::text || coalesce(bias::text, ''))
			FROM mf_user_factors
			WHERE model_id = (SELECT model_id FROM mf_models WHERE name = 'twins')
			  AND user_id IN (1, 20, 33)});
		is($distinct, 1, "$kernel kernel, $arguments: users with the same ratings get the same factors, in a batch or alone");
	}
}

# A system that fails inside a batch (item 7, lane 6 of the 12 items'
# batch: user 10's one rating of 1e30 overflows its Gram matrix) fails its
# row: the error names item 7, as the row-by-row kernels name it.
$node->safe_psql('postgres', q{
	CREATE TABLE lane_fail AS
	SELECT u AS user_id, i AS item_id, (1 + (u * 3 + i) % 5)::float8 AS rating
	FROM generate_series(1, 20) u, generate_series(1, 12) i WHERE u <> 10;
	INSERT INTO lane_fail VALUES (10, 7, 1e30);
});
foreach my $kernel (grep { $_ ne 'blas' } @kernels)
{
	my ($rc, $out, $err) = $node->psql('postgres', qq{
		SET mf_ext.kernel = $kernel; SET mf_ext.threads = 1;
		SELECT mf_train('lane_fail', k := 3, lambda := 0.1, iterations := 2, model_name := 'lane_fail')});
	like($err, qr/[Tt]he least-squares system of item 7 could not be solved/,
		"$kernel kernel: a system failing inside a batch names its row");
}

# The row a failed training names is the first that fails, whatever the
# threads: user 1's rating of 1e30 makes every item it rated (21, 24, ...,
# 399) unsolvable, so each thread's chunk of items holds failures; a
# failure used to stop the other threads half-way through their chunks,
# and the error named whichever failure was found first (item 24 and more
# as often as item 21).  Chunks are taken in order and those taken are
# finished, so it is item 21 every time.  (The BLAS path finds no failed
# row here: J becomes NaN instead.)
$node->safe_psql('postgres', q{
	CREATE TABLE first_failure AS
	SELECT u AS user_id, 1 + (u * 7 + j * 13) % 400 AS item_id, (1 + (u + j) % 5)::float8 AS rating
	FROM generate_series(2, 1000) u, generate_series(1, 100) j;
	INSERT INTO first_failure
	SELECT 1, i, CASE WHEN i = 399 THEN 1e30 ELSE 3 END FROM generate_series(21, 399, 3) i;
});
foreach my $kernel (grep { $_ ne 'blas' } @kernels)
{
	my %named;
	foreach (1 .. 12)
	{
		my ($rc, $out, $err) = $node->psql('postgres', qq{
			SET mf_ext.kernel = $kernel; SET mf_ext.threads = 2;
			SELECT mf_train('first_failure', k := 3, iterations := 2, model_name := 'first_failure')});
		$named{$err =~ /[Tt]he least-squares system of (\w+ \d+) could not be solved/ ? $1 : $err}++;
	}
	is(join(', ', sort keys %named), 'item 21',
		"$kernel kernel, 2 threads: twelve failed trainings all name the first failing row");
}

# The same with short rows solved in the dual form between batched ones
# (k = 64: rows of up to 32 ratings): odd items have 80 ratings (batched),
# even ones 10 (dual), and user 1's rating of 1e30 makes every item's
# system fail.  Item 2's failure, met while item 1 waits in its batch, had
# been named; the batch is solved first, so item 1 is.
$node->safe_psql('postgres', q{
	CREATE TABLE dual_failure AS
	SELECT u AS user_id, i AS item_id, (1 + (u + i) % 5)::float8 AS rating
	FROM generate_series(2, 81) u, generate_series(1, 40) i
	WHERE i % 2 = 1 OR u <= 11
	UNION ALL SELECT 1, i, CASE WHEN i = 40 THEN 1e30 ELSE 3 END FROM generate_series(1, 40) i;
});
foreach my $kernel (grep { $_ eq 'avx512' || $_ eq 'avx2' } @kernels)	# those that batch
{
	my %named;
	foreach (1 .. 4)
	{
		my ($rc, $out, $err) = $node->psql('postgres', qq{
			SET mf_ext.kernel = $kernel; SET mf_ext.threads = 2;
			SELECT mf_train('dual_failure', k := 64, lambda := 0.1, iterations := 2,
			                model_name := 'dual_failure')});
		$named{$err =~ /[Tt]he least-squares system of (\w+ \d+) could not be solved/ ? $1 : $err}++;
	}
	is(join(', ', sort keys %named), 'item 1',
		"$kernel kernel, rows in batches and in the dual form: the first failing row is named");
}

# A fold-in of a rating near the float range in the dual form: z is
# about y / |o|^2, and overflowed where the answer is finite (OpenBLAS's
# path gave it); the ratings are scaled by a power of two first.  Item
# 7's factors here have |o|^2 + lambda about 0.72.
$node->safe_psql('postgres', q{
	SET client_min_messages = warning;
	CREATE TABLE near_max AS
	SELECT u AS user_id, ((u * 37 + j * 113) % 500) + 1 AS item_id,
	       (1 + ((u * 31 + j * 17) % 9) / 2.0)::float8 AS rating
	FROM generate_series(1, 600) u, generate_series(0, 129) j WHERE j < 1 + (u * 7 % 130);
	SELECT mf_train('near_max', k := 128, lambda := 0.1, iterations := 3, model_name := 'near_max');
	SELECT mf_train('near_max', k := 128, lambda := 0.1, iterations := 3, biases := true,
	                model_name := 'near_max_biases');
});
foreach my $kernel (grep { $_ eq 'avx512' || $_ eq 'avx2' } @kernels)
{
	foreach my $model ('near_max', 'near_max_biases')
	{
		my ($rc, $gap, $err) = $node->psql('postgres', qq{
			SET mf_ext.kernel = blas;
			CREATE TEMP TABLE reference AS SELECT mf_fold_in('$model', '{7}', '{3e38}') AS f;
			SET mf_ext.kernel = $kernel;
			SELECT max(abs(s - r)) / max(abs(r))
			FROM (SELECT mf_fold_in('$model', '{7}', '{3e38}') AS f) folded, reference,
			     unnest(folded.f, reference.f) AS x(s, r);
			RESET mf_ext.kernel; DROP TABLE reference});
		is($rc, 0, "$model, $kernel kernel: a fold-in of a rating of 3e38 is solved") or diag($err);
		cmp_ok($gap eq '' ? 1 : $gap, '<', 1e-4, "... as OpenBLAS's path solves it ($gap)");
	}
}

# A fold-in in the dual form for a model whose lambda / bias_lambda
# passes the float range (dual_vanishing_bias_lambda, above, trained by
# OpenBLAS's path): "could not be solved" before (attack helper 149).
foreach my $kernel (grep { $_ ne 'blas' } @kernels)
{
	my ($rc, $gap, $err) = $node->psql('postgres', qq{
		SET mf_ext.kernel = blas;
		CREATE TEMP TABLE reference AS
		SELECT mf_fold_in('dual_vanishing_bias_lambda_blas', '{1,2,3}', '{4,1,3.5}') AS f;
		SET mf_ext.kernel = $kernel;
		SELECT max(abs(s - r)) / max(abs(r))
		FROM (SELECT mf_fold_in('dual_vanishing_bias_lambda_blas', '{1,2,3}', '{4,1,3.5}') AS f) folded,
		     reference, unnest(folded.f, reference.f) AS x(s, r);
		RESET mf_ext.kernel; DROP TABLE reference});
	is($rc, 0, "$kernel kernel: a fold-in with bias_lambda 1e300 times below lambda is solved")
	  or diag($err);
	cmp_ok($gap eq '' ? 1 : $gap, '<', 1e-4, "... as OpenBLAS's path solves it ($gap)");
}

# The batches' buffers count against mf_ext.max_memory in fold-in too:
# k = 128 with biases keeps about 1.65 MB of them a thread (AVX-512), so
# a fold-in of five ratings, which needs a few kB one row at a time, is
# refused under 1 MB by the kernels that batch and not by the others.
$node->safe_psql('postgres', q{
	SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 128, lambda := 1, biases := true, iterations := 1,
	                model_name := 'wide_biases')});
foreach my $kernel (@kernels)
{
	my ($rc, $out, $err) = $node->psql('postgres', qq{
		SET mf_ext.kernel = $kernel; SET mf_ext.threads = 2; SET mf_ext.max_memory = '1MB';
		SELECT mf_fold_in('wide_biases', ARRAY[1, 2, 3, 4, 5]::bigint[], ARRAY[1, 2, 3, 4, 5]::float8[])});
	if ($kernel eq 'avx512' || $kernel eq 'avx2')
	{
		like($err, qr/solving the new rows would need about \d+ MB of memory, more than mf_ext.max_memory.*\nDETAIL:  Solving 1 row of up to 5 ratings with k = 128\.\nHINT:  Raise mf_ext.max_memory \(a superuser setting\) or lower mf_ext.threads; or refit fewer users or items at a time .*, or fold in fewer ratings\./s,
			"fold-in, $kernel kernel: the batch's buffers count against mf_ext.max_memory (a hint for a fold-in, not a training)");
	}
	else
	{
		is($rc, 0, "fold-in, $kernel kernel: no batch, so 1 MB is enough") or diag($err);
	}
}

# A badly conditioned row: one user rated items 1 and 2 each 3,000 times
# (k = 8, lambda = 0.1).  Each Gram tile adds its sum to the matrix every
# 256 rows at most, as OpenBLAS's ssyrk sums in blocks: summed over 1,024
# rows at k = 8, the own kernels' rounding left the system indefinite and
# every own kernel refused the training where OpenBLAS's path trained.
$node->safe_psql('postgres', q{
	CREATE TABLE repeated AS
	SELECT * FROM ratings UNION ALL SELECT 1000, 1 + g % 2, 4 FROM generate_series(1, 6000) g;
	SET client_min_messages = warning;
	SELECT mf_train('repeated', k := 8, lambda := 0.1, iterations := 5, double_precision := true,
	                model_name := 'repeated_double')});
foreach my $kernel (@kernels)
{
	my ($rc, $out, $err) = $node->psql('postgres', qq{
		SET client_min_messages = warning; SET mf_ext.kernel = $kernel;
		SELECT mf_train('repeated', k := 8, lambda := 0.1, iterations := 5,
		                model_name := 'repeated_$kernel')});
	is($rc, 0, "a user rating two items 3,000 times each, $kernel kernel: trains") or diag($err);
	next if $rc != 0;
	my $gap = prediction_gap("repeated_$kernel", 'repeated_double', 'repeated');
	cmp_ok($gap, '<', 0.05, "... within 0.05 of double precision ($gap)");
}

# mf_recommend (and mf_recommend_users) pre-score float models from 8-bit
# codes of their factors (src/score.c), with the instruction set
# mf_ext.kernel selects ('blas' the widest): on every path each user's
# top-10 (each item's ten best users) is the exact ranking, the
# one SQL gives over mf_predict's scores (higher first, then the lower
# item id) without the items the user rated, at k = 37 (a row of codes
# over two 32-byte blocks) and k = 128 with biases.
$node->safe_psql('postgres', q{
	SET client_min_messages = warning;
	SELECT mf_train('ratings', k := 37, iterations := 2, model_name := 'codes_37')});

# Every $row's (user_id or item_id) ten best of the other side as text, by
# the exact ranking over mf_predict, or by $call (mf_recommend or
# mf_recommend_users) under mf_ext.kernel = $kernel.
sub top_lists
{
	my ($model, $row, $call, $kernel) = @_;
	my $other = $row eq 'user_id' ? 'item_id' : 'user_id';
	my $lists = defined $call
	  ? qq{SELECT $row, (SELECT string_agg(r.id::text, ',' ORDER BY rank)
		                 FROM $call('$model', t.$row, 10) WITH ORDINALITY AS r(id, score, rank)) AS list
		   FROM (SELECT DISTINCT $row FROM ratings) t}
	  : qq{SELECT $row, string_agg(${other}::text, ',' ORDER BY rank) AS list
		   FROM (SELECT u.user_id, i.item_id,
		                row_number() OVER (PARTITION BY $row
		                                   ORDER BY mf_predict('$model', u.user_id, i.item_id) DESC,
		                                            $other) AS rank
		         FROM (SELECT DISTINCT user_id FROM ratings) u,
		              (SELECT DISTINCT item_id FROM ratings) i
		         WHERE NOT EXISTS (SELECT FROM ratings r
		                           WHERE r.user_id = u.user_id AND r.item_id = i.item_id)) ranked
		   WHERE rank <= 10 GROUP BY $row};
	return $node->safe_psql('postgres', (defined $call ? "SET mf_ext.kernel = $kernel;" : '') . qq{
		SELECT string_agg($row || ':' || list, ' ' ORDER BY $row) FROM ($lists) lists});
}

foreach my $model ('codes_37', 'wide_biases')
{
	foreach my $case (['user_id', 'mf_recommend', "every user's top-10 items"],
		['item_id', 'mf_recommend_users', "every item's top-10 users"])
	{
		my ($row, $call, $what) = @$case;
		my $exact = top_lists($model, $row);
		is(top_lists($model, $row, $call, $_), $exact,
			"$call, $model, $_ kernel: $what as the exact ranking")
		  foreach @kernels;
	}
}

done_testing();
