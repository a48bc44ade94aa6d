-- Ids as their own types (0.5): mf_predict takes every pair of bigint, text
-- and uuid ids, and mf_recommend, mf_recommend_users and mf_similar_* a
-- uuid, so that id columns of any type training accepts need no cast; the
-- calls that resolved before resolve to the same functions.
SET client_min_messages = warning;

-- Ratings with integer users and text items, with uuid users and items,
-- with uuid users and integer items; one table of the same ids in columns
-- of every type training takes, a domain over uuid among them.
CREATE TABLE base AS
SELECT u, i, CASE WHEN (i - 1) / 5 = u % 3 THEN 4.5 ELSE 2 END
             + ((abs(hashint8(u * 1000 + i)) % 100) / 100.0 - 0.5) AS stars
FROM generate_series(1, 60) u, generate_series(1, 15) i
WHERE abs(hashint8(u * 7919 + i)) % 100 < 50;
CREATE DOMAIN listener AS uuid;
CREATE TABLE ids_mixed AS SELECT u AS user_id, 'film ' || i AS item_id, stars AS rating FROM base;
CREATE TABLE ids_uuids AS SELECT md5('u' || u)::uuid AS user_id, md5('i' || i)::uuid AS item_id, stars AS rating FROM base;
CREATE TABLE ids_uuid_int AS SELECT md5('u' || u)::listener AS user_id, i::smallint AS item_id, stars AS rating FROM base;
SELECT mf_train('ids_mixed', k := 3, lambda := 1, biases := true) AS mixed \gset
SELECT mf_train('ids_uuids', k := 3, lambda := 1, biases := true) AS uuids \gset
SELECT mf_train('ids_uuid_int', k := 3, lambda := 1) AS uuid_int \gset
SELECT name, user_key_type, item_key_type FROM mf_models WHERE name LIKE 'ids\_%' ORDER BY model_id;
CREATE TABLE ids AS
SELECT u::smallint AS i2, u::integer AS i4, u::bigint AS i8, 'film ' || i AS t,
       ('film ' || i)::varchar AS v, ('film ' || i)::character(8) AS c, ('film ' || i)::name AS n,
       md5('u' || u)::uuid AS uu, md5('i' || i)::uuid AS iu, md5('u' || u)::listener AS du, i
FROM base;

-- Which function each call resolves to: the one a view over it depends on.
CREATE FUNCTION resolved(call text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    answer text;
BEGIN
    EXECUTE 'CREATE TEMP VIEW resolving AS SELECT ' || call;
    SELECT string_agg(DISTINCT d.refobjid::regprocedure::text, ', ') INTO answer
    FROM pg_depend d JOIN pg_rewrite r ON d.objid = r.oid AND d.classid = 'pg_rewrite'::regclass
    WHERE r.ev_class = 'resolving'::regclass AND d.refclassid = 'pg_proc'::regclass
      AND d.refobjid::regprocedure::text ~ '^mf_';
    DROP VIEW resolving;
    RETURN answer;
EXCEPTION WHEN OTHERS THEN
    RETURN 'ERROR: ' || SQLERRM;
END $$;
CREATE TABLE calls (n serial, call text);
INSERT INTO calls (call) VALUES
    ('mf_predict(1, 42, 7)'),
    ($$mf_predict('m', '42', '7')$$),
    ($$mf_predict('m', 42, '7')$$),
    ('mf_predict(1, i2, i4) FROM ids'),
    ('mf_predict(1, i4, t) FROM ids'),
    ('mf_predict(1, t, i8) FROM ids'),
    ('mf_predict(1, v, c) FROM ids'),
    ('mf_predict(1, n, t) FROM ids'),
    ('mf_predict(1, uu, iu) FROM ids'),
    ('mf_predict(1, du, i) FROM ids'),
    ('mf_predict(1, i8, iu) FROM ids'),
    ('mf_predict(1, uu, t) FROM ids'),
    ($$mf_predict('m', v, du) FROM ids$$),
    ($$mf_predict(1, '42', iu) FROM ids$$),
    ('* FROM mf_recommend(1, 42)'),
    ($$* FROM mf_recommend('m', '42', 3)$$),
    ('* FROM ids, mf_recommend(1, uu, 3)'),
    ('* FROM ids, mf_recommend(1, du, 3)'),
    ('* FROM ids, mf_recommend(1, v, 3)'),
    ($$* FROM mf_recommend(1, '42', 3, candidates := '{a, b}')$$),
    ($$* FROM ids, mf_recommend('m', uu, 3, candidates := '{a, b}')$$),
    ($$* FROM mf_recommend('m', '{1,2}', '{5,4}')$$),
    ($$* FROM mf_recommend('m', '{1,2}', '{5,4}'::float8[])$$),
    ($$* FROM mf_recommend('m', '{1,2}', ARRAY[5, 4])$$),
    ($$* FROM mf_recommend_keys('m', '{a,b}', '{5,4}')$$),
    ($$mf_fold_in('m', '{1,2}', '{5,4}')$$),
    ($$mf_fold_in_keys('m', '{a,b}', '{5,4}')$$),
    ('* FROM ids, mf_recommend_users(1, iu, 3)'),
    ('* FROM mf_recommend_users(1, 3)'),
    ('* FROM ids, mf_similar_items(1, iu)'),
    ('* FROM ids, mf_similar_users(1, du, 3)'),
    ($$* FROM mf_similar_users('m', '42')$$),
    ('* FROM ids, mf_recommend(1, uu, candidates := ARRAY[iu])');
-- The resolution before these forms: the same calls with the new ones
-- dropped, in a transaction rolled back.
BEGIN;
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
             WHERE p.proname IN ('mf_predict', 'mf_recommend', 'mf_recommend_users',
                                 'mf_similar_items', 'mf_similar_users')
               AND ('uuid'::regtype = ANY (p.proargtypes::oid[])
                    OR p.proname = 'mf_predict' AND p.proargtypes[1] <> p.proargtypes[2])
    LOOP
        EXECUTE format('ALTER EXTENSION mf_ext DROP FUNCTION %s', f);
        EXECUTE format('DROP FUNCTION %s', f);
    END LOOP;
END $$;
SELECT json_object_agg(n, resolved(call)) AS before FROM calls \gset
ROLLBACK;
-- Now: every call that resolved before resolves to the same function but
-- one, and the new forms answer the ones that did not (uuid, mixed pairs).
-- The one: an untyped literal beside a typed integer id (3) is now text, as
-- an untyped pair always was (2), where it was bigint; on a side of integer
-- ids the text is read as the integer it writes, the same id.  The untyped
-- arrays mean what they meant: integer ids for mf_recommend's new user
-- given typed ratings; with untyped ratings too the call was ambiguous
-- before, as now (22).  uuid arrays take ::text[] (33): a uuid[] form
-- beside text[] would make every untyped array literal ambiguous.
SELECT n, call, CASE WHEN resolved(call) = (:'before'::json ->> n::text) THEN 'same'
                     ELSE resolved(call) END AS now,
       :'before'::json ->> n::text AS before
FROM calls ORDER BY n;

-- Untyped parameters ($1 of a driver that sends them untyped) are text, as
-- they were.
PREPARE untyped AS SELECT mf_predict($1, $2, $3) = mf_predict(:mixed, 7, 'film 3') AS same_as_typed;
PREPARE untyped_recommend AS SELECT * FROM mf_recommend($1, $2, 2);
SELECT name, parameter_types FROM pg_prepared_statements ORDER BY name;
EXECUTE untyped('ids_mixed', '7', 'film 3');
SELECT mf_predict('ids_mixed', '7', 'film 3') = mf_predict(:mixed, 7, 'film 3') AS same,
       mf_predict('ids_uuid_int', md5('u3')::uuid, '4') = mf_predict('ids_uuid_int', md5('u3')::uuid, 4)
         AS text_beside_uuid_reads_integer;

-- Answers: integer users with text items, each prediction mu + b_u + b_i +
-- u.v of the stored rows, with the user id of any integer width and the
-- item id as text, varchar, char or name.
SELECT count(*) AS pairs,
       bool_and(abs(mf_predict(:mixed, i2, t) - by_hand) < 1e-12) AS smallint_text,
       bool_and(abs(mf_predict('ids_mixed', i4, v) - by_hand) < 1e-12) AS integer_varchar,
       bool_and(abs(mf_predict(:mixed, i8, c) - by_hand) < 1e-12) AS bigint_char,
       bool_and(abs(mf_predict('ids_mixed', i4, n) - by_hand) < 1e-12) AS integer_name,
       bool_and(mf_predict(:mixed, i4, t) = mf_predict(:mixed, i4::text, t)) AS same_as_text
FROM (SELECT ids.*, m.global_mean + uf.bias + itf.bias
                    + (SELECT sum(x * y) FROM unnest(uf.factors, itf.factors) AS p(x, y)) AS by_hand
      FROM ids, mf_models m
      JOIN mf_user_factors uf ON uf.model_id = m.model_id
      JOIN mf_item_factors itf ON itf.model_id = m.model_id
      WHERE m.model_id = :mixed AND uf.user_id = ids.i8 AND itf.item_key = ids.t) t;

-- uuid users and items, and uuid users (a domain) with integer items:
-- uuids without a cast, matched by their text form.
SELECT count(*) AS pairs,
       bool_and(abs(mf_predict(:uuids, uu, iu) - by_hand) < 1e-12) AS uuid_uuid,
       bool_and(mf_predict('ids_uuids', du, iu) = mf_predict('ids_uuids', uu::text, iu::text)) AS domain_same_as_text,
       bool_and(mf_predict(:uuids, uu::text, iu) = mf_predict(:uuids, uu, iu::text)) AS mixed_same
FROM (SELECT ids.*, m.global_mean + uf.bias + itf.bias
                    + (SELECT sum(x * y) FROM unnest(uf.factors, itf.factors) AS p(x, y)) AS by_hand
      FROM ids, mf_models m
      JOIN mf_user_factors uf ON uf.model_id = m.model_id
      JOIN mf_item_factors itf ON itf.model_id = m.model_id
      WHERE m.model_id = :uuids AND uf.user_key = ids.uu::text AND itf.item_key = ids.iu::text) t;
SELECT count(*) AS pairs,
       bool_and(abs(mf_predict(:uuid_int, du, i) - by_hand) < 1e-6) AS domain_integer,
       bool_and(mf_predict('ids_uuid_int', uu, i::bigint) = mf_predict('ids_uuid_int', uu::text, i::text)) AS same_as_text
FROM (SELECT ids.*, (SELECT sum(x::float8 * y) FROM unnest(uf.factors, itf.factors) AS p(x, y)) AS by_hand
      FROM ids JOIN mf_user_factors uf ON uf.model_id = :uuid_int AND uf.user_key = ids.uu::text
      JOIN mf_item_factors itf ON itf.model_id = :uuid_int AND itf.item_id = ids.i) t;

-- mf_recommend, mf_recommend_users and mf_similar_* by uuid answer as by
-- the uuid's text, filters (text[]) included; the nil uuid and a uuid the
-- model lacks are unknown (from the biases, or no rows), NULL gives no rows.
SELECT count(*) AS users, bool_and(a.same) AS recommend_same_as_text
FROM (SELECT u, (SELECT array_agg(r ORDER BY r.score DESC, r.item_id) FROM mf_recommend(:uuids, u, 4) r) =
                (SELECT array_agg(r ORDER BY r.score DESC, r.item_id) FROM mf_recommend(:uuids, u::text, 4) r)
                AS same
      FROM (SELECT DISTINCT uu AS u FROM ids) d) a;
SELECT (SELECT count(*) FROM mf_recommend('ids_uuids', md5('u7')::listener, 3, false,
                          candidates := ARRAY[md5('i1')::uuid, md5('i2')::uuid, md5('no')::uuid]::text[])) AS among_2,
       (SELECT array_agg(r ORDER BY r.score DESC, r.item_id)
        FROM mf_recommend('ids_uuids', md5('u7')::listener, 3, false,
                          candidates := ARRAY[md5('i1')::uuid, md5('i2')::uuid, md5('i9')::uuid]::text[]) r) =
       (SELECT array_agg(r ORDER BY r.score DESC, r.item_id)
        FROM mf_recommend('ids_uuids', md5('u7')::uuid::text, 3, false,
                          candidates := ARRAY[md5('i1')::uuid, md5('i2')::uuid, md5('i9')::uuid]::text[]) r)
         AS filtered_same_as_text;
SELECT (SELECT count(*) FROM mf_recommend_users(:uuids, md5('i3')::uuid, 5)) AS users,
       (SELECT array_agg(r ORDER BY r.score DESC, r.user_id) FROM mf_recommend_users(:uuids, md5('i3')::uuid, 5) r) =
       (SELECT array_agg(r ORDER BY r.score DESC, r.user_id) FROM mf_recommend_users(:uuids, md5('i3')::uuid::text, 5) r)
         AS users_same_as_text,
       (SELECT array_agg(r ORDER BY r.similarity DESC, r.item_id) FROM mf_similar_items('ids_uuids', md5('i3')::uuid, 4) r) =
       (SELECT array_agg(r ORDER BY r.similarity DESC, r.item_id) FROM mf_similar_items('ids_uuids', md5('i3')::uuid::text, 4) r)
         AS similar_items_same,
       (SELECT array_agg(r ORDER BY r.similarity DESC, r.user_id) FROM mf_similar_users(:uuid_int, md5('u3')::listener, 4) r) =
       (SELECT array_agg(r ORDER BY r.similarity DESC, r.user_id) FROM mf_similar_users(:uuid_int, md5('u3')::uuid::text, 4) r)
         AS similar_users_same;
CREATE FUNCTION uuid_nil() RETURNS uuid LANGUAGE sql AS $$SELECT '00000000-0000-0000-0000-000000000000'::uuid$$;
SELECT (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM mf_recommend(:uuids, uuid_nil(), 3)) =
       (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM mf_recommend(:uuids, 'nobody', 3))
         AS nil_is_unknown,
       mf_predict(:uuids, md5('nobody')::uuid, md5('i1')::uuid) = m.global_mean + i.bias AS unknown_from_biases,
       mf_predict(:uuid_int, md5('nobody')::uuid, 1) IS NULL AS unknown_without_biases,
       mf_predict(:uuids, NULL::uuid, md5('i1')::uuid) IS NULL AS null_user,
       (SELECT count(*) FROM mf_recommend(:uuids, NULL::uuid)) AS null_recommend,
       (SELECT count(*) FROM mf_recommend_users(:uuids, NULL::uuid)) AS null_users,
       (SELECT count(*) FROM mf_similar_items(:uuids, NULL::uuid)) AS null_similar,
       (SELECT count(*) FROM mf_similar_users(:uuids, md5('nobody')::uuid)) AS unknown_similar
FROM mf_models m JOIN mf_item_factors i ON i.model_id = m.model_id AND i.item_key = md5('i1')::uuid::text
WHERE m.model_id = :uuids;
-- The batch's "any" filters take uuid arrays (and domains over uuid) as
-- they are: the same lists as with the uuids cast to text.
SELECT (SELECT array_agg(r ORDER BY r.user_key, r.rank)
        FROM mf_recommend_all_rows(:uuids, 2, candidates := ARRAY[md5('i1'), md5('i2'), md5('i3')]::uuid[],
                                   exclude := ARRAY[md5('i2')::listener]) r) =
       (SELECT array_agg(r ORDER BY r.user_key, r.rank)
        FROM mf_recommend_all_rows(:uuids, 2, candidates := ARRAY[md5('i1'), md5('i2'), md5('i3')]::uuid[]::text[],
                                   exclude := ARRAY[md5('i2')::uuid::text]) r) AS uuid_filters_as_text,
       (SELECT count(DISTINCT item_key) FROM mf_recommend_all_rows(:uuids, 2,
            candidates := ARRAY[md5('i1'), md5('i2'), md5('i3')]::uuid[], exclude := ARRAY[md5('i2')::listener]))
         AS items_listed;
-- On a side of uuid keys, text names a uuid in any form uuid_in reads
-- (capitals, no hyphens, braces), as the refits read it; text that is no
-- uuid names no one.
SELECT mf_predict(:uuids, upper(md5('u3')), '{' || md5('i4')::uuid || '}') = mf_predict(:uuids, md5('u3')::uuid, md5('i4')::uuid)
         AS any_uuid_form,
       (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM mf_recommend(:uuids, md5('u3'), 3)) =
       (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM mf_recommend(:uuids, md5('u3')::uuid, 3))
         AS recommend_without_hyphens,
       mf_predict(:uuids, md5('u3') || '-', md5('i4')) = m.global_mean + i.bias AS trailing_hyphen_is_no_one,
       mf_predict(:uuids, '{' || md5('u3'), md5('i4')) = m.global_mean + i.bias AS open_brace_is_no_one
FROM mf_models m JOIN mf_item_factors i ON i.model_id = m.model_id AND i.item_key = md5('i4')::uuid::text
WHERE m.model_id = :uuids;
-- mf_recommend_all writes a uuid-trained side into a uuid column of an
-- existing table (a cast from the keys' text form), and refuses other types.
CREATE TABLE ids_uuid_top (user_id listener PRIMARY KEY, rank integer, item_id smallint, score float8);
SELECT mf_recommend_all(:uuid_int, 1, target := 'ids_uuid_top', mode := 'append') AS written;
SELECT count(*) AS users_matched FROM ids_uuid_top t
JOIN mf_user_factors u ON u.user_key = t.user_id::text AND u.model_id = :uuid_int;
CREATE TABLE ids_bad_top (user_id date, rank integer, item_id bigint, score float8);
SELECT mf_recommend_all(:uuid_int, 1, target := 'ids_bad_top', mode := 'append');
DROP TABLE ids_uuid_top, ids_bad_top;
-- A refit reads a text column on a side trained from uuids as uuids, in
-- any form: the same users, not new keys (they were added as new users,
-- unreachable by any lookup); text that is no uuid is an error.
CREATE TABLE ids_upper AS SELECT upper(user_id::text) AS user_id, item_id, rating FROM ids_uuids
WHERE user_id IN (md5('u1')::uuid, md5('u2')::uuid);
SELECT n_users AS users_before FROM mf_models WHERE model_id = :uuids \gset
SELECT mf_refit_users(:uuids, 'ids_upper') AS refitted;
SELECT n_users = :users_before AS no_new_users FROM mf_models WHERE model_id = :uuids;
SELECT count(*) AS lower_case_keys FROM mf_user_factors
WHERE model_id = :uuids AND user_key = lower(user_key);
-- So does a refit naming its users, in any form: it refits the users
-- whose rows the text names, as refitting everyone does (it had filtered
-- the text column by the uuid's canonical text: no rows, and "not
-- refitted"; named in capitals, refitted yet said not to be).
SELECT mf_refit_users(:uuids, 'ids_upper', users := ARRAY[md5('u1')::uuid]) AS named_uuid,
       mf_refit_users(:uuids, 'ids_upper', users := ARRAY[upper(md5('u2'))]) AS named_in_capitals;
SELECT mf_refit_users(:uuids, 'ids_upper', users := ARRAY['not-a-uuid']);
-- from the uuid column itself: mf_ext's error, the text cut within 100
-- bytes and escaped (uuid's input had quoted all of it, newline and all)
SELECT mf_refit_users(:uuids, users := ARRAY[repeat('z', 150) || E'\n']);
-- the text is filtered by its key form in the read, so another row that
-- is no uuid is not read (a read of every row had stopped at it)
CREATE TABLE ids_upper_junk AS SELECT * FROM ids_upper UNION ALL (SELECT 'junk', item_id, rating FROM ids_upper LIMIT 1);
SELECT mf_refit_users(:uuids, 'ids_upper_junk', users := ARRAY[md5('u1')::uuid]) AS despite_junk;
DROP TABLE ids_upper_junk;
-- A text id that is not a uuid is named, with its relation and column.
CREATE TABLE ids_not_uuid AS SELECT 'not-a-uuid'::text AS user_id, item_id, rating FROM ids_uuids LIMIT 1;
SELECT mf_refit_users(:uuids, 'ids_not_uuid');
-- a column of a domain is named by the domain
CREATE DOMAIN ids_label AS text;
CREATE TABLE ids_not_uuid_domain AS SELECT 'nope'::ids_label AS user_id, item_id, rating FROM ids_uuids LIMIT 1;
SELECT mf_refit_users(:uuids, 'ids_not_uuid_domain');
DROP TABLE ids_not_uuid_domain;
DROP DOMAIN ids_label;
-- mf_evaluate reads such a test relation the same way: the same measures
-- as from the uuid column itself.
CREATE TABLE ids_upper_test AS SELECT upper(user_id::text) AS user_id, item_id, rating FROM ids_uuids;
SELECT (SELECT array_agg(value ORDER BY metric) FROM mf_evaluate(:uuids, 'ids_upper_test')) =
       (SELECT array_agg(value ORDER BY metric) FROM mf_evaluate(:uuids, 'ids_uuids')) AS evaluate_reads_uuids;
DROP TABLE ids_upper, ids_not_uuid, ids_upper_test;

-- A refit of users equals their fold-in (see neighbours.sql) with text
-- keys too once a refit has added items: the new keys are numbered after
-- the model's last, out of key order, and a refit's rows are put in the
-- model's order as fold-in's are.
CREATE TABLE ids_added_keys AS
SELECT 'u' || u AS user_id, 'i' || i AS item_id, ((u * 7 + i * 3) % 5 + 1)::float8 AS rating
FROM generate_series(1, 240) u, generate_series(1, 60) i WHERE (u * 31 + i * 17) % 3 = 0;
CREATE TABLE ids_added_keys_part AS SELECT * FROM ids_added_keys WHERE item_id NOT LIKE '%3';
SELECT mf_train('ids_added_keys_part', k := 4, lambda := 0.5, model_name := 'added_keys') AS added_keys \gset
SELECT mf_refit_items(:added_keys, 'ids_added_keys') AS items_refitted;
CREATE TABLE ids_folded_keys AS
SELECT user_id, mf_fold_in_keys(:added_keys, array_agg(item_id), array_agg(rating)) AS factors
FROM ids_added_keys GROUP BY user_id;
SELECT mf_refit_users(:added_keys, 'ids_added_keys') AS users_refitted;
SELECT bool_and(f.factors = u.factors) AND count(*) = 240 AS refit_is_fold_in_with_added_keys
FROM ids_folded_keys f JOIN mf_user_factors u ON u.model_id = :added_keys AND u.user_key = f.user_id;
SELECT mf_drop_model(:added_keys);
DROP TABLE ids_added_keys, ids_added_keys_part, ids_folded_keys;

-- A model that lost factor rows after it was stored (a user's DELETE, a
-- trigger of theirs) is refused when a session reads it, not served as if
-- the lost users and items were unknown (NULL, empty lists); so is one
-- whose n_items was raised.  A row-level security policy that hides rows
-- from a role is not a loss (sql/security.sql).
CREATE TABLE ids_lost AS
SELECT u AS user_id, i AS item_id, ((u * 7 + i * 3) % 5 + 1)::float8 AS rating
FROM generate_series(1, 30) u, generate_series(1, 12) i WHERE (u + i) % 3 = 0;
SELECT mf_train('ids_lost', k := 2, model_name := 'lost_rows') AS lost_rows \gset
DELETE FROM mf_user_factors WHERE model_id = :lost_rows AND user_id = 3;
\c
SET client_min_messages = warning;
SELECT mf_predict('lost_rows', 3, 3);
SELECT mf_train('ids_lost', model_name := 'lost_rows') = :lost_rows AS retrained;
SELECT mf_predict('lost_rows', 3, 3) IS NOT NULL AS serves_again;
UPDATE mf_models SET n_items = n_items + 1 WHERE model_id = :lost_rows;
\c
SET client_min_messages = warning;
SELECT * FROM mf_recommend('lost_rows', 3, 2);
SELECT mf_drop_model(:lost_rows);
DROP TABLE ids_lost;

-- Integer ids named as text are read as bigint's input reads them, with
-- whitespace before and after (trailing whitespace had been "not an
-- integer" in a refit's list, and no candidate at all in the rankings).
CREATE TABLE ids_spaced AS
SELECT u AS user_id, i AS item_id, ((u * 7 + i * 3) % 5 + 1)::float8 AS rating
FROM generate_series(1, 30) u, generate_series(1, 12) i WHERE (u + i) % 3 <> 0;
SELECT mf_train('ids_spaced', k := 2, model_name := 'spaced') AS spaced \gset
SELECT mf_predict('spaced', ' 4 '::text, E'5\t'::text) = mf_predict('spaced', 4, 5) AS predicts,
       (SELECT array_agg(item_id ORDER BY item_id) FROM mf_recommend('spaced', '4'::text, 5, false,
                                                                  candidates := ARRAY['5 ', ' 7', ' 11 '])) AS ranked,
       (SELECT count(*) FROM mf_recommend_users('spaced', '5'::text, 3, candidates := ARRAY['4 ', '6  '])) AS users_ranked,
       (SELECT count(*) FROM mf_recommend_all_rows('spaced', 2, candidates := ARRAY['5 '])) AS batch_rows;
SELECT mf_refit_users('spaced', users := ARRAY['1 ', ' 2']) AS refitted;
SELECT mf_refit_users('spaced', users := ARRAY['1 x']);
SELECT mf_refit_users('spaced', users := ARRAY[E'1\n' || repeat('x', 150)]);
SELECT mf_drop_model(:spaced);
DROP TABLE ids_spaced;
-- A bigint id on a model of uuid keys: the hint offers a uuid, which
-- names a key there (on text keys it offers text only, sql/errors.sql:
-- it had offered a uuid too, which such a model refuses).
SELECT * FROM mf_recommend('ids_uuid_int', 1, 3);
SELECT * FROM mf_recommend_users('ids_uuids', 1, 3);
