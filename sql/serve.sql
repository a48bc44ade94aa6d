-- Serving: mf_predict and mf_recommend against the stored factors.
SET client_min_messages = warning;
SELECT model_id AS m FROM mf_models WHERE name = 'lowrank' \gset

-- mf_predict is the dot product of the stored factors, for every pair.
CREATE VIEW lowrank_dots AS
SELECT u.user_id, v.item_id,
       (SELECT sum(x * y) FROM unnest(u.factors, v.factors) AS t(x, y)) AS dot
FROM mf_user_factors u JOIN mf_item_factors v USING (model_id)
WHERE model_id = :m;
SELECT count(*) AS pairs,
       max(abs(mf_predict(:m, user_id, item_id) - dot)) < 1e-12 AS by_id_matches,
       max(abs(mf_predict('lowrank', user_id, item_id) - dot)) < 1e-12 AS by_name_matches
FROM lowrank_dots;

-- Inside a join over the ratings, with integer columns.
SELECT count(*) AS scored, sqrt(avg((rating - mf_predict(:m, user_id, item_id)) ^ 2)) < 0.05 AS close
FROM lowrank;

-- Unknown users or items predict NULL; NULL arguments give NULL.
SELECT mf_predict(:m, 0, 1) IS NULL AS unknown_user,
       mf_predict(:m, 1, 201) IS NULL AS unknown_item,
       mf_predict(:m, NULL, 1) IS NULL AS null_user,
       mf_predict(NULL::integer, 1, 1) IS NULL AS null_model;

-- mf_recommend equals a brute-force ranking over the stored factors:
-- score descending, then item_id ascending, with and without the items the
-- user rated in the training data.
CREATE FUNCTION brute_force_top(model integer, who bigint, n integer, exclude boolean)
RETURNS TABLE (item_id bigint, score double precision) LANGUAGE sql AS $$
    SELECT d.item_id, d.dot
    FROM lowrank_dots d
    WHERE d.user_id = who
      AND NOT (exclude AND EXISTS (SELECT 1 FROM lowrank r
                                   WHERE r.user_id = who AND r.item_id = d.item_id))
    ORDER BY d.dot DESC, d.item_id
    LIMIT n
$$;
SELECT exclude, count(*) AS users,
       bool_and(got_items = want_items) AS same_items,
       bool_and(max_score_diff < 1e-12) AS same_scores
FROM (VALUES (false), (true)) AS e(exclude),
     generate_series(1, 300, 7) AS who,
     LATERAL (SELECT array_agg(item_id ORDER BY ord) AS got_items
              FROM mf_recommend(:m, who, 10, exclude) WITH ORDINALITY AS r(item_id, score, ord)) g,
     LATERAL (SELECT array_agg(item_id ORDER BY ord) AS want_items
              FROM brute_force_top(:m, who, 10, exclude) WITH ORDINALITY AS b(item_id, score, ord)) w,
     LATERAL (SELECT max(abs(r.score - b.score)) AS max_score_diff
              FROM mf_recommend(:m, who, 10, exclude) r
              JOIN brute_force_top(:m, who, 10, exclude) b USING (item_id)) s
GROUP BY exclude ORDER BY exclude;

-- By name, the same; the default is n = 10 with the rated items left out.
SELECT (SELECT array_agg(item_id) FROM mf_recommend('lowrank', 42))
     = (SELECT array_agg(item_id) FROM mf_recommend(:m, 42, 10, true)) AS by_name_same;

-- Rated items are really left out, and only they.
SELECT count(*) AS all_items,
       count(*) FILTER (WHERE item_id IN (SELECT item_id FROM lowrank WHERE user_id = 42)) AS rated
FROM mf_recommend(:m, 42, 1000, false);
SELECT count(*) AS unrated_items,
       count(*) FILTER (WHERE item_id IN (SELECT item_id FROM lowrank WHERE user_id = 42)) AS rated
FROM mf_recommend(:m, 42, 1000);

-- Unknown or NULL user: no rows.
SELECT count(*) AS unknown_user_rows FROM mf_recommend(:m, 100000, 5);
SELECT count(*) AS null_user_rows FROM mf_recommend(:m, NULL, 5);

-- Ties are broken by item_id: items 1 and 2 have identical ratings here,
-- so they get identical factors and scores, to the bit.  (The scores'
-- last float digits depend on the BLAS kernels: they are printed to 2
-- decimals, each at least 0.0019 from a rounding boundary.)
CREATE TABLE ties (user_id int, item_id int, rating float8);
INSERT INTO ties VALUES (1, 1, 5), (1, 2, 5), (2, 1, 4), (2, 2, 4), (2, 3, 1),
                        (3, 3, 2), (3, 4, 5), (1, 4, 2);
SELECT mf_train('ties', k := 2, lambda := 0.1) AS t \gset
SELECT item_id, round(score::numeric, 2) AS score,
       score = lag(score) OVER (ORDER BY ord) AS tied_with_previous
FROM mf_recommend(:t, 3, 4, false) WITH ORDINALITY AS r(item_id, score, ord) ORDER BY ord;
SELECT item_id FROM mf_recommend(:t, 3, 2);

-- Recommendations for every user in one query.
SELECT count(*) AS rows, count(DISTINCT user_id) AS users
FROM (SELECT DISTINCT user_id FROM lowrank) u, LATERAL mf_recommend(:m, u.user_id, 3) r;

-- The cache notices a retrain in this session: predictions follow the new
-- factors, and the id stays.
SELECT mf_predict(:m, 1, 1) AS before \gset
SELECT mf_train('lowrank', k := 3, lambda := 0.5, iterations := 5) = :m AS same_id;
SELECT mf_predict(:m, 1, 1) <> :before AS changed,
       abs(mf_predict(:m, 1, 1) - (SELECT dot FROM lowrank_dots WHERE user_id = 1 AND item_id = 1)) < 1e-12
         AS matches_new_factors;

-- ... and a dropped model.
SELECT mf_train('lowrank', k := 4, lambda := 0.01, iterations := 15, model_name := 'short lived') AS s \gset
SELECT mf_predict(:s, 1, 1) IS NOT NULL AS cached;
SELECT mf_drop_model('short lived');
\set VERBOSITY sqlstate
SELECT mf_predict(:s, 1, 1);
SELECT mf_predict('short lived', 1, 1);
SELECT * FROM mf_recommend(:s, 1);
\set VERBOSITY default

-- A restored dump sets mf_model_version_seq back, and a later training
-- may get a version number this session holds other factors of: the cache
-- tells them apart by the row's xmin too (it had served the factors it
-- held, of the training before).
SELECT mf_train('lowrank', k := 2, lambda := 0.1, iterations := 3, model_name := 'restored') AS r \gset
SELECT mf_predict(:r, 1, 1) IS NOT NULL AS cached;
SELECT setval('mf_model_version_seq', version - 1) > 0 AS set_back FROM mf_models WHERE model_id = :r;
SELECT version AS first_version FROM mf_models WHERE model_id = :r \gset
CREATE TEMP VIEW restored_served AS
SELECT version,
       abs(mf_predict(:r, 1, 1) - (SELECT sum(x * y) FROM mf_user_factors u, mf_item_factors v,
                                        unnest(u.factors, v.factors) AS t(x, y)
                                   WHERE u.model_id = :r AND v.model_id = :r
                                     AND u.user_id = 1 AND v.item_id = 1)) < 1e-12 AS new_factors_served
FROM mf_models WHERE model_id = :r;
SELECT mf_train('lowrank', k := 3, lambda := 0.5, iterations := 4, model_name := 'restored') = :r AS retrained;
SELECT version = :first_version AS same_version, new_factors_served FROM restored_served;
-- ... also when one transaction writes the row twice at one version (a
-- script that restores a dump and retrains, in one transaction) and
-- commits: the command that wrote it tells them apart, after the commit
-- too (attack helpers 161 and 162).
BEGIN;
SELECT setval('mf_model_version_seq', version - 1) > 0 AS set_back FROM mf_models WHERE model_id = :r;
SELECT mf_train('lowrank', k := 2, lambda := 0.2, iterations := 3, model_name := 'restored') = :r AS retrained;
SELECT mf_predict(:r, 1, 1) IS NOT NULL AS cached;
SELECT setval('mf_model_version_seq', version - 1) > 0 AS set_back FROM mf_models WHERE model_id = :r;
SELECT mf_train('lowrank', k := 3, lambda := 0.7, iterations := 2, model_name := 'restored') = :r AS retrained;
COMMIT;
SELECT version = :first_version AS same_version, new_factors_served FROM restored_served;

-- Rows of mf_user_factors deleted by hand while this session holds the
-- model's factors: what reads the users' rated items (exclude_rated) is an
-- error (XX001), not a list with the rated items in it.
SELECT count(*) AS listed FROM mf_recommend(:r, 2, 3);
DELETE FROM mf_user_factors WHERE model_id = :r AND user_id = 2;
SELECT * FROM mf_recommend(:r, 2, 3);
SELECT count(*) FROM mf_recommend_all_rows(:r, 3);
SELECT count(*) FROM mf_recommend_users(:r, 1::bigint, 3);
-- (a row of a user the model lacks does not stand in for it)
INSERT INTO mf_user_factors (model_id, user_id, factors, rated_items)
SELECT model_id, 1000000, factors, rated_items FROM mf_user_factors WHERE model_id = :r AND user_id = 1;
SELECT count(*) FROM mf_recommend_all_rows(:r, 3);
SELECT count(*) AS listed_with_rated FROM mf_recommend(:r, 2, 3, false);
DROP VIEW restored_served;
SELECT mf_drop_model('restored');

-- A retrain rolled back to a savepoint is not served afterwards, not even by
-- a PL/pgSQL expression, which keeps its call state for the whole
-- transaction (here under REPEATABLE READ, whose snapshot never changes).
SELECT set_config('test.committed', mf_predict('lowrank', 42, 7)::text, false) IS NOT NULL AS saved;
SET client_min_messages = notice;
\set VERBOSITY terse
BEGIN ISOLATION LEVEL REPEATABLE READ;
DO $$
DECLARE
    p double precision;
BEGIN
    FOR pass IN 1..2 LOOP
        BEGIN
            IF pass = 1 THEN
                -- (double precision: the per-iteration NOTICEs print J and
                -- the RMSE to 6 digits, which float rounding could move)
                PERFORM mf_train('lowrank', k := 2, lambda := 0.1, iterations := 2, double_precision := true);
            END IF;
            p := mf_predict('lowrank', 42, 7);
            IF pass = 1 THEN
                RAISE NOTICE 'inside the retrain: new model served: %',
                    p <> current_setting('test.committed')::float8;
                RAISE EXCEPTION 'roll the retrain back';
            END IF;
        EXCEPTION WHEN raise_exception THEN NULL;
        END;
    END LOOP;
    RAISE NOTICE 'after the rollback: committed model served: %',
        p = current_setting('test.committed')::float8;
END $$;
COMMIT;
\set VERBOSITY default

-- A wider model (2,500 items): mf_recommend is still exactly the
-- brute-force ranking for n = 1, 10, 100.
SET client_min_messages = warning;
CREATE TABLE wide AS
SELECT u AS user_id, i AS item_id,
       3 + sin(u) * cos(0.3 * i) + cos(0.7 * u) * sin(0.11 * i) + 0.1 * sin(u * i) AS rating
FROM generate_series(1, 200) u, generate_series(1, 2500) i
WHERE abs(hashint8(u * 10007 + i)) % 100 < 8;
SELECT mf_train('wide', k := 8, lambda := 0.1, iterations := 5) AS w \gset
SELECT count(DISTINCT item_id) >= 2000 AS wide FROM wide;
CREATE VIEW wide_dots AS
SELECT u.user_id, v.item_id,
       (SELECT sum(x * y) FROM unnest(u.factors, v.factors) AS t(x, y)) AS dot
FROM mf_user_factors u JOIN mf_item_factors v USING (model_id)
WHERE model_id = :w;
SELECT exclude, n, count(*) AS users,
       bool_and(got = want) AS same_items
FROM (VALUES (false), (true)) AS e(exclude), (VALUES (1), (10), (100)) AS c(n),
     generate_series(1, 200, 9) AS who,
     LATERAL (SELECT array_agg(item_id ORDER BY ord) AS got
              FROM mf_recommend(:w, who, n, exclude) WITH ORDINALITY AS r(item_id, score, ord)) g,
     LATERAL (SELECT array_agg(item_id ORDER BY dot DESC, item_id) AS want
              FROM (SELECT d.item_id, d.dot FROM wide_dots d
                    WHERE d.user_id = who
                      AND NOT (exclude AND EXISTS (SELECT 1 FROM wide r
                                                   WHERE r.user_id = who AND r.item_id = d.item_id))
                    ORDER BY d.dot DESC, d.item_id LIMIT n) b) w
GROUP BY exclude, n ORDER BY exclude, n;
-- and its scores are mf_predict's, to the bit
SELECT bool_and(r.score = mf_predict(:w, 17, r.item_id)) AS same_scores
FROM mf_recommend(:w, 17, 50) r;

-- Candidates and exclusions (0.5): the brute-force ranking over the
-- candidates (items divisible by 3, with ids the model lacks and a NULL)
-- less the excluded (divisible by 5), with and without the rated items.
SELECT exclude, count(*) AS users, bool_and(got = want) AS same_items
FROM (VALUES (false), (true)) AS e(exclude), generate_series(1, 200, 13) AS who,
     LATERAL (SELECT array_agg(item_id ORDER BY ord) AS got
              FROM mf_recommend(:w, who, 20, exclude,
                                candidates := ARRAY(SELECT i FROM generate_series(3, 3000, 3) i) || NULL::bigint,
                                exclude := ARRAY(SELECT i FROM generate_series(5, 2500, 5) i))
                   WITH ORDINALITY AS r(item_id, score, ord)) g,
     LATERAL (SELECT array_agg(item_id ORDER BY dot DESC, item_id) AS want
              FROM (SELECT d.item_id, d.dot FROM wide_dots d
                    WHERE d.user_id = who AND d.item_id % 3 = 0 AND d.item_id % 5 <> 0
                      AND NOT (exclude AND EXISTS (SELECT 1 FROM wide r
                                                   WHERE r.user_id = who AND r.item_id = d.item_id))
                    ORDER BY d.dot DESC, d.item_id LIMIT 20) b) w
GROUP BY exclude ORDER BY exclude;
-- Candidates in any order, with duplicates; exclusions alone; an empty or
-- unknown set of candidates lists nothing; NULL arrays filter nothing.
SELECT (SELECT array_agg(item_id ORDER BY score DESC, item_id)
        FROM mf_recommend(:w, 17, 3, candidates := '{2400, 7, 7, 300, 1}')) =
       (SELECT array_agg(item_id) FROM (SELECT item_id FROM mf_recommend(:w, 17, 2500)
                                        WHERE item_id IN (2400, 7, 300, 1) LIMIT 3) t) AS candidates_only,
       (SELECT array_agg(item_id) FROM mf_recommend(:w, 17, 5, exclude := ARRAY(
            SELECT item_id FROM mf_recommend(:w, 17, 2)))) =
       (SELECT array_agg(item_id) FROM (SELECT item_id FROM mf_recommend(:w, 17, 7) OFFSET 2) t)
         AS exclude_only,
       (SELECT count(*) FROM mf_recommend(:w, 17, 5, candidates := '{}')) AS empty_candidates,
       (SELECT count(*) FROM mf_recommend(:w, 17, 5, candidates := '{-1, 999999, NULL}'))
         AS unknown_candidates,
       (SELECT array_agg(item_id) FROM mf_recommend(:w, 17, 5, true, NULL, NULL)) =
       (SELECT array_agg(item_id) FROM mf_recommend(:w, 17, 5)) AS null_filters;
-- A new user's list (fold-in) takes the same filters: the unfiltered
-- list's order among the candidates.
SELECT (SELECT array_agg(item_id) FROM mf_recommend(:w, ARRAY[1, 2, 16], ARRAY[5, 4.5, 1.5], 4,
            candidates := ARRAY(SELECT i FROM generate_series(2, 2500, 2) i),
            exclude := '{10, 20, 30}')) =
       (SELECT array_agg(item_id) FROM (
            SELECT item_id FROM mf_recommend(:w, ARRAY[1, 2, 16], ARRAY[5, 4.5, 1.5], 2500)
            WHERE item_id % 2 = 0 AND item_id NOT IN (10, 20, 30) LIMIT 4) t) AS new_user_filtered;

-- Users for an item (0.5): the brute-force ranking of the users by their
-- predicted rating of the item, with and without those who rated it,
-- among candidate users less excluded ones; the scores are mf_predict's.
SELECT exclude, count(*) AS items, bool_and(got = want) AS same_users
FROM (VALUES (false), (true)) AS e(exclude), generate_series(1, 2500, 97) AS what,
     LATERAL (SELECT array_agg(user_id ORDER BY ord) AS got
              FROM mf_recommend_users(:w, what, 15, exclude) WITH ORDINALITY AS r(user_id, score, ord)) g,
     LATERAL (SELECT array_agg(user_id ORDER BY dot DESC, user_id) AS want
              FROM (SELECT d.user_id, d.dot FROM wide_dots d
                    WHERE d.item_id = what
                      AND NOT (exclude AND EXISTS (SELECT 1 FROM wide r
                                                   WHERE r.item_id = what AND r.user_id = d.user_id))
                    ORDER BY d.dot DESC, d.user_id LIMIT 15) b) w
WHERE EXISTS (SELECT 1 FROM wide_dots WHERE item_id = what)
GROUP BY exclude ORDER BY exclude;
SELECT bool_and(r.score = mf_predict(:w, r.user_id, 300)) AS same_scores,
       bool_and(r.user_id % 2 = 1 AND r.user_id <> 3) AS filtered,
       count(*) AS listed
FROM mf_recommend_users(:w, 300, 10, candidates := ARRAY(SELECT u FROM generate_series(1, 200, 2) u),
                        exclude := '{3}') r;
SELECT (SELECT count(*) FROM mf_recommend_users(:w, 999999)) AS unknown_item,
       (SELECT count(*) FROM mf_recommend_users(:w, NULL)) AS null_item,
       (SELECT count(*) FROM mf_recommend_users('wide', 300, 1000, false)) AS every_user;
-- The raters mf_recommend_users keeps with a model once a call has read
-- every user's rated_items are its version's: after a refit (a new version)
-- that gives a user a rating of item 300, that user is left out.
SELECT min(u) AS fresh FROM generate_series(1, 200) u
WHERE NOT EXISTS (SELECT 1 FROM wide WHERE user_id = u AND item_id = 300) \gset
SELECT bool_or(user_id = :fresh) AS listed_before_refit FROM mf_recommend_users(:w, 300, 200);
INSERT INTO wide VALUES (:fresh, 300, 4);
SELECT mf_refit_users(:w, users := ARRAY[:fresh]) AS refitted;
-- Named integer ids are matched in the id column's own type (an integer
-- column's = ANY of a bigint[] compared every row with every id named:
-- 29 s for 1,000 users of ML-10M): ids beyond that type's range are ids
-- without ratings, never the ids they would wrap to (1, here).
SELECT mf_refit_users(:w, users := ARRAY[:fresh, 4294967297, -9223372036854775808]) AS int_in_range;
CREATE VIEW wide_smallint AS SELECT user_id::smallint, item_id::smallint, rating FROM wide;
SELECT mf_refit_items(:w, 'wide_smallint', items := ARRAY[300, 65537, -32769]) AS smallint_in_range;
SELECT bool_or(user_id = :fresh) AS listed_after_refit,
       count(*) = (SELECT 200 - count(*) FROM wide WHERE item_id = 300) AS all_but_raters
FROM mf_recommend_users(:w, 300, 200);
-- What a transaction that had written read of a model (the factors, the
-- raters) is forgotten when it rolls back: here hand edits that list item
-- 300 as every user's and zero user 1's factors, read by a new session's
-- first calls, undone.
SELECT mf_predict(:w, 1, 300) AS before_edit \gset
\c
SET client_min_messages = warning;
BEGIN;
UPDATE mf_user_factors SET rated_items = rated_items || 300::bigint WHERE model_id = :w;
UPDATE mf_user_factors SET factors = array_fill(0::float8, ARRAY[8]) WHERE model_id = :w AND user_id = 1;
SELECT count(*) AS listed_in_edit, mf_predict(:w, 1, 300) AS zeroed_in_edit
FROM mf_recommend_users(:w, 300, 200);
ROLLBACK;
SELECT count(*) = (SELECT 200 - count(*) FROM wide WHERE item_id = 300) AS raters_after_rollback,
       mf_predict(:w, 1, 300) = :before_edit AS factors_after_rollback
FROM mf_recommend_users(:w, 300, 200);
-- and from a subtransaction's
\c
SET client_min_messages = warning;
BEGIN;
SAVEPOINT edit;
UPDATE mf_user_factors SET rated_items = rated_items || 300::bigint WHERE model_id = :w;
SELECT count(*) AS listed_in_edit FROM mf_recommend_users(:w, 300, 200);
ROLLBACK TO edit;
SELECT count(*) = (SELECT 200 - count(*) FROM wide WHERE item_id = 300) AS raters_after_rollback_to
FROM mf_recommend_users(:w, 300, 200);
COMMIT;

-- mf_recommend pre-scores float models from 8-bit codes of their factors
-- and scores exactly only the items its error bound cannot rule out.  Two
-- items whose scores single precision cannot tell apart (nor the codes): for u = (1, 2^-10), item 1
-- scores 1 and item 2 scores (1 - 2^-24) + 1.5 * 2^-24 = 1 + 2^-25, which
-- float arithmetic rounds to 1, a tie that the lower id (item 1) would win;
-- exact scoring ranks item 2 first.  The rest score 1/2.
CREATE TABLE near_tie AS
SELECT u AS user_id, i AS item_id, 1.0::float8 AS rating
FROM generate_series(1, 3) u, generate_series(1, 40) i;
SELECT mf_train('near_tie', k := 2, iterations := 1) AS t \gset
UPDATE mf_user_factors SET factors = ARRAY[1, 2 ^ -10] WHERE model_id = :t;
UPDATE mf_item_factors
SET factors = CASE item_id WHEN 1 THEN ARRAY[1, 0]
                           WHEN 2 THEN ARRAY[1 - 2 ^ -24, 1.5 * 2 ^ -14]
                           ELSE ARRAY[0.5, 0] END
WHERE model_id = :t;
\c
SET client_min_messages = warning;
SELECT item_id, score = 1 + 2 ^ -25 AS exact_score FROM mf_recommend(:t, 1, 1, false);
SELECT array_agg(item_id ORDER BY ord) AS top3
FROM mf_recommend(:t, 2, 3, false) WITH ORDINALITY AS r(item_id, score, ord);
-- The bound at work: for u = (1, 1, 1), item 1 = (2^24, 1, -2^24) scores 1,
-- but its codes, (127, 0, -127), lose the 1 and pre-score it 0, below
-- item 2's 0.75: the bound keeps item 1 a candidate.
SELECT mf_train('near_tie', k := 3, iterations := 1, model_name := 'cancelling') AS c \gset
UPDATE mf_user_factors SET factors = ARRAY[1, 1, 1] WHERE model_id = :c;
UPDATE mf_item_factors
SET factors = CASE item_id WHEN 1 THEN ARRAY[2 ^ 24, 1, -(2 ^ 24)]
                           WHEN 2 THEN ARRAY[0.75, 0, 0]
                           ELSE ARRAY[0.5, 0, 0] END
WHERE model_id = :c;
\c
SET client_min_messages = warning;
SELECT item_id, score FROM mf_recommend(:c, 1, 2, false);
-- The codes' rounding reorders items: for u = (1, 1), item 1 = (1, 2^-8)
-- scores 1 + 2^-8 and item 2 = (1 + 2^-9, 0) 1 + 2^-9, but item 1's second
-- code rounds to 0 (2^-8 is 0.496 of its step, 1/127), so it pre-scores 1,
-- below item 2's 1 + 2^-9; its error (2^-8, about 0.0055 in the bound)
-- keeps it a candidate, and exact scoring ranks it first (a bound without
-- that error would have left item 2 the best).  Factors that are floats
-- exactly, as a trained model's are: the cache holds others in double
-- precision, scored exactly without codes.
SELECT mf_train('near_tie', k := 2, iterations := 1, model_name := 'reordered') AS o \gset
UPDATE mf_user_factors SET factors = ARRAY[1, 1] WHERE model_id = :o;
UPDATE mf_item_factors
SET factors = CASE item_id WHEN 1 THEN ARRAY[1, 2 ^ -8]
                           WHEN 2 THEN ARRAY[1 + 2 ^ -9, 0]
                           ELSE ARRAY[0.5, 0] END
WHERE model_id = :o;
\c
SET client_min_messages = warning;
SELECT item_id, score = 1 + 2 ^ -8 AS exact_score FROM mf_recommend(:o, 1, 1, false);
-- mf_recommend_users pre-scores users the same way: the same rows as
-- users' factors, the item (1, 1), user 1 first.
CREATE TABLE near_tie_users AS SELECT item_id AS user_id, user_id AS item_id, rating FROM near_tie;
SELECT mf_train('near_tie_users', k := 2, iterations := 1) AS ou \gset
UPDATE mf_item_factors SET factors = ARRAY[1, 1] WHERE model_id = :ou;
UPDATE mf_user_factors
SET factors = CASE user_id WHEN 1 THEN ARRAY[1, 2 ^ -8]
                           WHEN 2 THEN ARRAY[1 + 2 ^ -9, 0]
                           ELSE ARRAY[0.5, 0] END
WHERE model_id = :ou;
\c
SET client_min_messages = warning;
SELECT user_id, score = 1 + 2 ^ -8 AS exact_score FROM mf_recommend_users(:ou, 1, 1, false);
-- A refit naming ids none of which the source's column can hold (none
-- named, or all beyond an integer column's range) reads WHERE false: no
-- row, and no partition locked (a filter = ANY('{}') cannot prune: every
-- partition was locked, and a table without an index scanned whole); an
-- id in range locks the partition it can be in.
CREATE TABLE wide_parts (user_id integer, item_id integer, rating float8) PARTITION BY RANGE (user_id);
CREATE TABLE wide_parts_low PARTITION OF wide_parts FOR VALUES FROM (MINVALUE) TO (100);
CREATE TABLE wide_parts_high PARTITION OF wide_parts FOR VALUES FROM (100) TO (MAXVALUE);
INSERT INTO wide_parts SELECT user_id, item_id, rating FROM wide;
BEGIN;
SELECT mf_refit_users(:w, 'wide_parts', users := ARRAY[4294967297]) AS beyond_integer,
       mf_refit_users(:w, 'wide_parts', users := '{}') AS none_named;
SELECT count(*) AS partitions_locked FROM pg_locks
WHERE pid = pg_backend_pid() AND relation IN ('wide_parts_low'::regclass, 'wide_parts_high'::regclass);
COMMIT;
BEGIN;
SELECT mf_refit_users(:w, 'wide_parts', users := ARRAY[150, 4294967297]) AS in_range;
SELECT relation::regclass AS partition_locked FROM pg_locks
WHERE pid = pg_backend_pid() AND relation IN ('wide_parts_low'::regclass, 'wide_parts_high'::regclass);
COMMIT;
