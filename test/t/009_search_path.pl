# Installing safely where other roles may CREATE in public (databases from
# before PostgreSQL 15): the README installs mf_ext into a schema only its
# owner can create in and calls the functions qualified with it.  A role
# that plants public.mf_predict(integer, integer, integer) and
# public.mf_train(text, ...) (the CVE-2018-1058 pattern) then never runs
# its code with a superuser's rights, and neither does an operator
# public.=(integer, integer) planted for the extension's own queries, even
# when the caller's search_path lists public before pg_catalog.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use lib 'test';
use MfTap;
use Test::More;

my $node = mf_cluster('search_path');
$node->start;

# A database as before PostgreSQL 15: everyone may create in public.
$node->safe_psql('postgres', q{
	CREATE ROLE mallory LOGIN;
	GRANT CREATE ON SCHEMA public TO PUBLIC;
});

# mallory's traps: each records who ran it and tries to make mallory a
# superuser with the caller's rights.
$node->safe_psql('postgres', q{
	SET ROLE mallory;
	CREATE TABLE public.sprung (trap text, by_role text);
	GRANT INSERT ON public.sprung TO PUBLIC;
	CREATE FUNCTION public.spring(trap text) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.sprung VALUES (trap, current_user);
		BEGIN
			EXECUTE 'ALTER ROLE mallory SUPERUSER';
		EXCEPTION WHEN insufficient_privilege THEN NULL;
		END;
	END $$;
	CREATE FUNCTION public.mf_predict(integer, integer, integer) RETURNS double precision
	LANGUAGE plpgsql AS $$ BEGIN PERFORM public.spring('mf_predict'); RETURN 42; END $$;
	CREATE FUNCTION public.mf_train(text, k integer DEFAULT 10, lambda numeric DEFAULT 0.1)
	RETURNS integer
	LANGUAGE plpgsql AS $$ BEGIN PERFORM public.spring('mf_train'); RETURN 0; END $$;
	CREATE FUNCTION public.int_equal(integer, integer) RETURNS boolean
	LANGUAGE plpgsql AS $$ BEGIN PERFORM public.spring('='); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
	CREATE OPERATOR public.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = public.int_equal);
});

# The README's installation: a schema only its owner (here the superuser)
# can create in.
$node->safe_psql('postgres', q{
	CREATE SCHEMA mf;
	CREATE EXTENSION mf_ext SCHEMA mf;
	CREATE TABLE ratings AS
	SELECT u AS user_id, i AS item_id, 1 + (u * 3 + i) % 5 AS rating
	FROM generate_series(1, 30) u, generate_series(1, 10) i;
});

# The README's calls, qualified, by the superuser; the caller's path even
# puts public before pg_catalog.
my $answers = $node->safe_psql('postgres', q{
	SET client_min_messages = warning;
	SET search_path = public, pg_catalog;
	SELECT mf.mf_train('ratings', k := 2, lambda := 0.1);
	SELECT count(*), count(*) FILTER (WHERE p = 42) FROM
	    (SELECT mf.mf_predict(1, r.user_id, r.item_id) AS p FROM ratings r) s;
	SELECT count(*) FROM mf.mf_recommend(1, 4, 3, exclude_rated := false);
	SELECT mf.mf_refit_users(1) > 0, mf.mf_fold_in(1, ARRAY[1, 2], ARRAY[4, 5]) IS NOT NULL;
	SELECT count(*) FROM mf.mf_evaluate(1, 'ratings');
	SELECT mf.mf_recommend_all(1, 2, false, 'top2');
	SELECT count(*) FROM mf.mf_training_history(1);
	SELECT mf.mf_drop_model(1);
});
is($answers, "1\n300|0\n3\nt|t\n10\n60\n10\n", 'the qualified calls run mf_ext\'s functions and answer');
is($node->safe_psql('postgres', 'SELECT count(*) FROM public.sprung'), '0',
	'no trap was sprung: not mf_predict, not mf_train, not the = operator in the extension\'s own queries');
is($node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'"), 'f',
	'mallory is no superuser');

# A refit naming its users or items filters the source with =, under the
# caller's search_path: for a varchar column, or a domain over integer
# compared with bigint ids, pg_catalog has no operator of exactly those
# types, and one planted in public matched better (mallory became a
# superuser through mf_refit_users(..., users := ...)).
$node->safe_psql('postgres', q{
	CREATE DOMAIN public.uid AS integer;
	CREATE TABLE named_ratings AS
	SELECT ('u' || u)::varchar AS user_id, i::public.uid AS item_id, 1 + (u * 3 + i) % 5 AS rating
	FROM generate_series(1, 30) u, generate_series(1, 10) i;
	SET ROLE mallory;
	CREATE FUNCTION public.varchar_equal(varchar, varchar) RETURNS boolean
	LANGUAGE plpgsql AS $$ BEGIN PERFORM public.spring('varchar ='); RETURN $1::text OPERATOR(pg_catalog.=) $2::text; END $$;
	CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.varchar_equal);
	CREATE FUNCTION public.uid_equal(public.uid, bigint) RETURNS boolean
	LANGUAGE plpgsql AS $$ BEGIN PERFORM public.spring('uid ='); RETURN $1::integer OPERATOR(pg_catalog.=) $2; END $$;
	CREATE OPERATOR public.= (LEFTARG = public.uid, RIGHTARG = bigint, FUNCTION = public.uid_equal);
});
my $refits = $node->safe_psql('postgres', q{
	SET client_min_messages = warning;
	SELECT mf.mf_train('named_ratings', k := 2, lambda := 0.1, model_name := 'named') > 0;
	SELECT mf.mf_refit_users('named', users := ARRAY['u1', 'u2']),
	       mf.mf_refit_items('named', items := ARRAY[1, 2]);
	SET search_path = public, pg_catalog;
	SELECT mf.mf_refit_users('named', users := ARRAY['u3']),
	       mf.mf_refit_items('named', items := ARRAY[3]);
});
is($refits, "t\n2|2\n1|1", 'the refits naming users (varchar) and items (a domain over integer) refit them');
is($node->safe_psql('postgres', 'SELECT count(*) FROM public.sprung'), '0',
	'no planted = ran in the refits\' filter of the source, under either search_path');
is($node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'"), 'f',
	'mallory is still no superuser');

# Why the README says to qualify: unqualified, with public on the path, the
# planted function matches integer ids exactly and wins over mf_ext's
# (bigint ids), whatever the order of the schemas.
$node->safe_psql('postgres', q{
	SET client_min_messages = warning;
	SELECT mf.mf_train('ratings', k := 2, lambda := 0.1);
	SET search_path = mf, public;
	SELECT mf_predict(2, r.user_id, r.item_id) FROM ratings r LIMIT 1;
});
is($node->safe_psql('postgres', 'SELECT trap FROM public.sprung'), 'mf_predict',
	'unqualified, the planted mf_predict ran (the hazard the README warns of)');

$node->stop;
done_testing();
