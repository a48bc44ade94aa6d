-- Similar items and users (cosine over factors), and fold-in of new users
-- without retraining (0.4).
SET client_min_messages = warning;

-- 240 users, 60 items in 4 genres of 15; a user likes one genre.
CREATE TABLE genre_ratings AS
SELECT u AS user_id, i AS item_id,
       CASE WHEN (i - 1) / 15 = u % 4 THEN 4.5 ELSE 2 END
         + ((abs(hashint8(u * 1000 + i)) % 100) / 100.0 - 0.5) AS rating
FROM generate_series(1, 240) u, generate_series(1, 60) i
WHERE abs(hashint8(u * 7919 + i)) % 100 < 40;
SELECT mf_train('genre_ratings', k := 4, lambda := 0.5, iterations := 10) AS m \gset

-- Cosine by brute force, for comparison.
CREATE VIEW item_cosine AS
SELECT a.model_id, a.item_id AS of_item, b.item_id,
       (SELECT sum(x * y) FROM unnest(a.factors, b.factors) AS t(x, y))
       / sqrt((SELECT sum(x * x) FROM unnest(a.factors) x) * (SELECT sum(y * y) FROM unnest(b.factors) y))
         AS similarity
FROM mf_item_factors a JOIN mf_item_factors b USING (model_id)
WHERE a.item_id <> b.item_id;
CREATE VIEW user_cosine AS
SELECT a.model_id, a.user_id AS of_user, b.user_id,
       (SELECT sum(x * y) FROM unnest(a.factors, b.factors) AS t(x, y))
       / sqrt((SELECT sum(x * x) FROM unnest(a.factors) x) * (SELECT sum(y * y) FROM unnest(b.factors) y))
         AS similarity
FROM mf_user_factors a JOIN mf_user_factors b USING (model_id)
WHERE a.user_id <> b.user_id;

-- The nearest items to an item are those of its genre, and the list is
-- the brute-force one: same items in the same order, same cosines.
SELECT count(*) AS n, bool_and((item_id - 1) / 15 = (7 - 1) / 15) AS same_genre
FROM mf_similar_items(:m, 7, 10);
SELECT (SELECT array_agg(item_id ORDER BY similarity DESC, item_id) FROM mf_similar_items(:m, 7, 10)) =
       (SELECT array_agg(item_id) FROM (SELECT item_id FROM item_cosine WHERE model_id = :m AND of_item = 7
                                        ORDER BY similarity DESC, item_id LIMIT 10) t) AS brute_force_items,
       (SELECT bool_and(abs(s.similarity - c.similarity) < 1e-12)
        FROM mf_similar_items(:m, 7, 59) s
        JOIN item_cosine c ON c.model_id = :m AND c.of_item = 7 AND c.item_id = s.item_id) AS same_cosines;
SELECT count(*) AS n, bool_and(user_id % 4 = 5 % 4) AS same_taste
FROM mf_similar_users('genre_ratings', 5, 10);
SELECT (SELECT array_agg(user_id ORDER BY similarity DESC, user_id) FROM mf_similar_users(:m, 5, 20)) =
       (SELECT array_agg(user_id) FROM (SELECT user_id FROM user_cosine WHERE model_id = :m AND of_user = 5
                                        ORDER BY similarity DESC, user_id LIMIT 20) t) AS brute_force_users;
-- n beyond the catalogue lists every other item once; unknown ids and a
-- NULL id give no rows.
SELECT count(*) AS all_others, count(DISTINCT item_id) AS distinct_items,
       bool_and(item_id <> 7) AS without_itself
FROM mf_similar_items(:m, 7, 1000);
SELECT (SELECT count(*) FROM mf_similar_items(:m, 9999)) AS unknown_item,
       (SELECT count(*) FROM mf_similar_users(:m, 9999)) AS unknown_user,
       (SELECT count(*) FROM mf_similar_items(:m, NULL)) AS null_item;

-- Support (0.5): each factor row counts its distinct partners in the
-- training data, the same as counted from the ratings (a duplicate pair
-- counts once); min_support leaves out the items rated by fewer users, and
-- shrinkage multiplies each cosine by s / (s + shrinkage): the brute-force
-- list under both.  Dropping every item leaves no rows.
CREATE TABLE support_ratings AS
SELECT * FROM genre_ratings WHERE item_id <= 40 OR user_id % (item_id - 39) = 0;
INSERT INTO support_ratings SELECT * FROM support_ratings WHERE user_id = 1;   -- duplicates
SELECT mf_train('support_ratings', k := 4, lambda := 0.5, iterations := 10) AS s \gset
SELECT (SELECT count(*) FROM mf_item_factors f
        WHERE f.model_id = :s AND f.support IS DISTINCT FROM
              (SELECT count(DISTINCT user_id) FROM support_ratings r WHERE r.item_id = f.item_id))
         AS items_miscounted,
       (SELECT count(*) FROM mf_user_factors f
        WHERE f.model_id = :s AND f.support IS DISTINCT FROM
              (SELECT count(DISTINCT item_id) FROM support_ratings r WHERE r.user_id = f.user_id))
         AS users_miscounted,
       (SELECT min(support) || ' to ' || max(support) FROM mf_item_factors WHERE model_id = :s)
         AS item_supports;
CREATE VIEW item_cosine_support AS
SELECT c.*, f.support FROM item_cosine c
JOIN mf_item_factors f ON f.model_id = c.model_id AND f.item_id = c.item_id;
CREATE VIEW user_cosine_support AS
SELECT c.*, f.support FROM user_cosine c
JOIN mf_user_factors f ON f.model_id = c.model_id AND f.user_id = c.user_id;
SELECT (SELECT array_agg(item_id ORDER BY similarity DESC, item_id)
        FROM mf_similar_items(:s, 50, 10, min_support := 10)) =
       (SELECT array_agg(item_id) FROM (
            SELECT item_id FROM item_cosine_support
            WHERE model_id = :s AND of_item = 50 AND support >= 10
            ORDER BY similarity DESC, item_id LIMIT 10) t) AS min_support_brute_force,
       (SELECT count(*) FROM mf_similar_items(:s, 50, 100, min_support := 10) s
        JOIN mf_item_factors f ON f.model_id = :s AND f.item_id = s.item_id
        WHERE f.support < 10) AS below_min_support,
       (SELECT count(*) FROM mf_similar_items(:s, 50, 100, min_support := 1000)) AS none_qualify;
SELECT (SELECT array_agg(item_id ORDER BY similarity DESC, item_id)
        FROM mf_similar_items(:s, 50, 15, shrinkage := 25)) =
       (SELECT array_agg(item_id) FROM (
            SELECT item_id FROM item_cosine_support
            WHERE model_id = :s AND of_item = 50
            ORDER BY similarity * support / (support + 25) DESC, item_id LIMIT 15) t)
         AS shrunk_brute_force,
       (SELECT bool_and(abs(s.similarity - c.similarity * c.support / (c.support + 25)) < 1e-12)
        FROM mf_similar_items(:s, 50, 59, shrinkage := 25) s
        JOIN item_cosine_support c ON c.model_id = :s AND c.of_item = 50 AND c.item_id = s.item_id)
         AS shrunk_cosines,
       (SELECT array_agg(user_id ORDER BY similarity DESC, user_id)
        FROM mf_similar_users(:s, 5, 10, min_support := 18)) =
       (SELECT array_agg(user_id) FROM (
            SELECT user_id FROM user_cosine_support
            WHERE model_id = :s AND of_user = 5 AND support >= 18
            ORDER BY similarity DESC, user_id LIMIT 10) t) AS users_min_support,
       (SELECT count(*) FROM mf_user_factors WHERE model_id = :s AND support < 18) AS users_below;
-- A refit counts the refitted rows' support from its source: item 50 again
-- from only 3 of its users.
CREATE TABLE refit_ratings AS
SELECT * FROM support_ratings WHERE item_id = 50 ORDER BY user_id LIMIT 3;
SELECT (SELECT support FROM mf_item_factors WHERE model_id = :s AND item_id = 50) AS support_before,
       mf_refit_items(:s, 'refit_ratings') AS refitted;
SELECT support AS support_after FROM mf_item_factors WHERE model_id = :s AND item_id = 50;

-- Fold-in -------------------------------------------------------------------

-- A new user's factors are what training's user half-step gives: train,
-- fold every user in from their ratings (the arrays in no particular
-- order) against the stored items, then retrain one warm-started
-- iteration (whose user half-step uses those same item factors) and
-- compare, bit for bit.  Fold-in solves exactly, so a model trained with
-- solver 'cg' is compared with a Cholesky half-step.
CREATE FUNCTION fold_in_matches_training(model text, options text, exact text)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    same boolean;
BEGIN
    EXECUTE format('SELECT mf_train(%L, model_name := %L, iterations := 5, %s)',
                   'genre_ratings', model, options);
    CREATE TEMP TABLE folded AS
    SELECT user_id, mf_fold_in(model, array_agg(item_id::bigint ORDER BY md5(item_id::text)),
                               array_agg(rating::float8 ORDER BY md5(item_id::text))) AS factors
    FROM genre_ratings GROUP BY user_id;
    EXECUTE format('SELECT mf_train(%L, model_name := %L, iterations := 1, warm_start := true, %s)',
                   'genre_ratings', model, coalesce(exact, options));
    SELECT bool_and(f.factors = CASE WHEN m.biases THEN u.factors || u.bias ELSE u.factors END)
           AND count(*) = 240
    INTO same
    FROM folded f
    JOIN mf_user_factors u USING (user_id)
    JOIN mf_models m ON m.model_id = u.model_id AND m.name = model;
    DROP TABLE folded;
    RETURN same;
END $$;
SELECT kind, fold_in_matches_training(kind, options, exact) AS matches_training
FROM (VALUES
    ('plain', 'k := 4, lambda := 0.5', NULL),
    ('double', 'k := 4, lambda := 0.5, double_precision := true', NULL),
    ('biases, ALS-WR', 'k := 4, lambda := 0.05, biases := true, weighted_lambda := true', NULL),
    ('biases only', 'k := 0, lambda := 1, biases := true', NULL),
    ('conjugate gradient', 'k := 4, lambda := 0.5, solver := ''cg''',
     'k := 4, lambda := 0.5, solver := ''cholesky'''),
    ('nonnegative', 'k := 4, lambda := 0.5, biases := true, nonnegative := true', NULL),
    ('implicit', 'k := 4, lambda := 1, feedback := ''implicit'', alpha := 2',
     'k := 4, lambda := 1, feedback := ''implicit'', alpha := 2, solver := ''cholesky'''),
    ('implicit, Cholesky', 'k := 4, lambda := 1, feedback := ''implicit'', alpha := 2, solver := ''cholesky''', NULL)
) AS t(kind, options, exact);

-- Recommending for a folded-in user scores items as mf_predict would for
-- a stored user with those factors, and leaves out the rated items.
SELECT mf_train('genre_ratings', k := 4, lambda := 0.5, biases := true,
                model_name := 'folded') AS folded \gset
CREATE TABLE new_user AS
SELECT ARRAY[1, 2, 3, 16, 31]::bigint[] AS items, ARRAY[5, 4.5, 5, 1.5, 2]::float8[] AS ratings;
SELECT mf_fold_in('folded', items, ratings) AS factors FROM new_user \gset
SELECT count(*) AS recommended,
       bool_and(r.item_id <> ALL (n.items)) AS rated_left_out,
       bool_and(abs(r.score - (m.global_mean + (:'factors'::float8[])[5] + i.bias
                               + (SELECT sum(x * y) FROM unnest((:'factors'::float8[])[1:4], i.factors) AS t(x, y))))
                < 1e-12) AS scores_by_hand,
       bool_and((r.item_id - 1) / 15 = 0) AS liked_genre
FROM new_user n, mf_recommend('folded', n.items, n.ratings, 5) r
JOIN mf_item_factors i ON i.model_id = :folded AND i.item_id = r.item_id
JOIN mf_models m ON m.model_id = :folded;
SELECT count(*) AS with_rated FROM new_user n, mf_recommend(:folded, n.items, n.ratings, 100, false) r;
-- The arrays' order does not matter, a repeated item's ratings' neither.
SELECT mf_fold_in('folded', ARRAY[16, 1, 1, 3], ARRAY[1.5, 0.2, 4.9, 5]) =
       mf_fold_in('folded', ARRAY[1, 3, 1, 16], ARRAY[4.9, 5, 0.2, 1.5]) AS any_order;
-- Items the model does not know are ignored; none known: NULL, no rows.
SELECT mf_fold_in('folded', ARRAY[1, 2, 3, 16, 31, 9999], ARRAY[5, 4.5, 5, 1.5, 2, 1]) =
       mf_fold_in('folded', ARRAY[1, 2, 3, 16, 31], ARRAY[5, 4.5, 5, 1.5, 2]) AS unknown_ignored,
       mf_fold_in('folded', ARRAY[9999]::bigint[], ARRAY[3]::float8[]) IS NULL AS nothing_known,
       (SELECT count(*) FROM mf_recommend('folded', ARRAY[9999]::bigint[], ARRAY[3]::float8[])) AS no_rows,
       array_length(mf_fold_in('folded', ARRAY[1], ARRAY[5]), 1) AS k_plus_bias;

-- Refit -------------------------------------------------------------------------

-- Refitting users from the model's own source gives each user what
-- folding them in gives (the same solve), and a new version.
SELECT mf_train('genre_ratings', k := 4, lambda := 0.5, biases := true,
                model_name := 'refit') AS refit \gset
CREATE TABLE folded_users AS
SELECT user_id, mf_fold_in('refit', array_agg(item_id::bigint ORDER BY item_id),
                           array_agg(rating::float8 ORDER BY item_id)) AS factors
FROM genre_ratings GROUP BY user_id;
SELECT version AS version_before FROM mf_models WHERE model_id = :refit \gset
SELECT mf_refit_users('refit') AS refitted;
SELECT bool_and(f.factors = u.factors || u.bias) AND count(*) = 240 AS refit_is_fold_in
FROM folded_users f JOIN mf_user_factors u ON u.model_id = :refit AND u.user_id = f.user_id;
SELECT version > :version_before AS new_version, n_users FROM mf_models WHERE model_id = :refit;

-- New ratings arrive: a new user (1001) and more ratings of user 1, one
-- of an item the model does not know (skipped).  Only they change.
CREATE TABLE new_ratings (user_id int, item_id int, rating float8);
INSERT INTO new_ratings VALUES (1001, 1, 5), (1001, 2, 4.5), (1001, 20, 1),
                               (1, 3, 2), (1, 4, 2.5), (1, 9999, 5);
CREATE TABLE factors_before AS SELECT user_id, factors FROM mf_user_factors WHERE model_id = :refit;
SELECT mf_refit_users(:refit, 'new_ratings') AS refitted;
SELECT n_users FROM mf_models WHERE model_id = :refit;
SELECT user_id, rated_items,
       factors || bias = mf_fold_in(:refit, ARRAY[1, 2, 20], ARRAY[5, 4.5, 1]) AS as_folded_in
FROM mf_user_factors WHERE model_id = :refit AND user_id = 1001;
SELECT count(*) FILTER (WHERE b.factors IS DISTINCT FROM u.factors) AS changed_users
FROM mf_user_factors u LEFT JOIN factors_before b USING (user_id) WHERE u.model_id = :refit;
SELECT count(*) AS recommended_for_new_user FROM mf_recommend(:refit, 1001, 5);

-- Refitting items solves each item against the stored users: with k = 1
-- and no biases, v_i = sum_u r_ui u / (sum_u u^2 + lambda).
SELECT mf_train('genre_ratings', k := 1, lambda := 2, double_precision := true,
                model_name := 'refit items') AS refit_items \gset
SELECT mf_refit_items(:refit_items) AS refitted;
SELECT bool_and(abs(i.factors[1] - e.expected) < 1e-9 * abs(e.expected)) AS closed_form
FROM mf_item_factors i
JOIN (SELECT r.item_id, sum(r.rating * u.factors[1]) / (sum(u.factors[1] ^ 2) + 2) AS expected
      FROM genre_ratings r JOIN mf_user_factors u ON u.model_id = :refit_items AND u.user_id = r.user_id
      GROUP BY r.item_id) e USING (item_id)
WHERE i.model_id = :refit_items;

-- Refitting named users (0.5) reads all their rows, and only theirs, from
-- the model's own source, through an index on the user column (no
-- sequential scan with enable_seqscan off, and exactly their rows
-- fetched), and refits exactly them: bit for bit as a refit from a view
-- of exactly their rows, and as refitting everyone (user 3 has new
-- ratings, 5000 is new); the others are unchanged.  A named user without
-- ratings is left as it is, with a NOTICE; duplicates count once; no
-- NOTICE of shorter histories (their whole history is read).
CREATE TABLE refit_source AS SELECT * FROM genre_ratings;
CREATE INDEX refit_source_user ON refit_source (user_id);
CREATE INDEX refit_source_item ON refit_source (item_id);
SELECT mf_train('refit_source', k := 4, lambda := 0.5, biases := true,
                model_name := 'named refit') AS named_refit \gset
INSERT INTO refit_source
SELECT 3, i, 5 FROM generate_series(1, 60) i
WHERE NOT EXISTS (SELECT FROM refit_source r WHERE r.user_id = 3 AND r.item_id = i) LIMIT 4;
INSERT INTO refit_source VALUES (5000, 1, 5), (5000, 17, 1), (5000, 40, 2);
ANALYZE refit_source;
CREATE TABLE user_rows_before AS SELECT * FROM mf_user_factors WHERE model_id = :named_refit;
CREATE FUNCTION named_rows(model int, side text, ids bigint[]) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(r, ';' ORDER BY id) FROM (
        SELECT user_id AS id, row(user_id, factors, bias, rated_items, support)::text AS r
        FROM mf_user_factors WHERE model_id = model AND side = 'users' AND user_id = ANY (ids)
        UNION ALL
        SELECT item_id, row(item_id, factors, bias, support)::text
        FROM mf_item_factors WHERE model_id = model AND side = 'items' AND item_id = ANY (ids)) t $$;
CREATE VIEW their_rows AS SELECT * FROM refit_source WHERE user_id IN (3, 5, 5000);
BEGIN;
SELECT mf_refit_users(:named_refit, 'their_rows') AS from_view;
SELECT named_rows(:named_refit, 'users', '{3, 5, 5000}') AS from_view \gset
ROLLBACK;
BEGIN;
SELECT mf_refit_users(:named_refit) AS everyone;
SELECT named_rows(:named_refit, 'users', '{3, 5, 5000}') AS everyone \gset
ROLLBACK;
SELECT count(*) AS their_count FROM their_rows \gset
BEGIN;
SET LOCAL enable_seqscan = off;
SELECT seq_scan AS seq_before, idx_scan AS idx_before, idx_tup_fetch AS fetched_before
FROM pg_stat_xact_user_tables WHERE relid = 'refit_source'::regclass \gset
SET LOCAL client_min_messages = notice;
SELECT mf_refit_users('named refit', users := ARRAY[5000, 3, 5, 3, 4242]) AS refitted;
SELECT seq_scan - :seq_before AS seq_scans, idx_scan > :idx_before AS by_index,
       idx_tup_fetch - :fetched_before AS rows_fetched, :their_count AS their_rows
FROM pg_stat_xact_user_tables WHERE relid = 'refit_source'::regclass;
COMMIT;
SELECT named_rows(:named_refit, 'users', '{3, 5, 5000}') = :'from_view' AS as_from_view,
       named_rows(:named_refit, 'users', '{3, 5, 5000}') = :'everyone' AS as_everyone,
       (SELECT n_users FROM mf_models WHERE model_id = :named_refit) AS n_users;
SELECT (SELECT count(*) FROM (SELECT * FROM mf_user_factors WHERE model_id = :named_refit
                              EXCEPT ALL SELECT * FROM user_rows_before) changed) AS rows_changed,
       (SELECT array_agg(user_id ORDER BY user_id) FROM (SELECT * FROM mf_user_factors WHERE model_id = :named_refit
                              EXCEPT ALL SELECT * FROM user_rows_before) changed) AS which,
       (SELECT count(*) FROM (SELECT * FROM user_rows_before
                              EXCEPT ALL SELECT * FROM mf_user_factors WHERE model_id = :named_refit) gone) AS rows_replaced;
-- items alike, named in any array type (text forms of integers too); an
-- empty list refits nothing; NULL is the argument not given: every item
CREATE VIEW their_items AS SELECT * FROM refit_source WHERE item_id IN (2, 31);
BEGIN;
SELECT mf_refit_items(:named_refit, 'their_items') AS from_view;
SELECT named_rows(:named_refit, 'items', '{2, 31}') AS from_view \gset
ROLLBACK;
SELECT mf_refit_items(:named_refit, items := '{31, 2}') AS untyped,
       mf_refit_items(:named_refit, items := ARRAY['2']) AS as_text,
       mf_refit_items(:named_refit, items := ARRAY[31]::smallint[]) AS smallints,
       mf_refit_items(:named_refit, items := '{}') AS none,
       mf_refit_items(:named_refit, items := NULL) AS every_item;
SELECT named_rows(:named_refit, 'items', '{2, 31}') = :'from_view' AS as_from_view;
DROP VIEW their_rows, their_items;
DROP TABLE user_rows_before, refit_source;
DROP FUNCTION named_rows;
SELECT mf_drop_model(:named_refit);

-- Batch top-N ---------------------------------------------------------------

-- Whether every user's list in target equals mf_recommend's, scores too.
CREATE FUNCTION same_as_mf_recommend(model int, target regclass, n int, exclude_rated boolean)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    same boolean;
BEGIN
    EXECUTE format($q$
        SELECT bool_and(a.items = r.items AND a.scores = r.scores)
               AND count(*) = (SELECT count(*) FROM mf_user_factors WHERE model_id = $1)
        FROM (SELECT user_id, array_agg(item_id ORDER BY rank) AS items,
                     array_agg(score ORDER BY rank) AS scores
              FROM %s GROUP BY user_id) a,
        LATERAL (SELECT array_agg(item_id ORDER BY score DESC, item_id) AS items,
                        array_agg(score ORDER BY score DESC, item_id) AS scores
                 FROM mf_recommend($1, a.user_id, $2, $3)) r$q$, target)
        INTO same USING model, n, exclude_rated;
    RETURN same;
END $$;

-- Every user's list equals mf_recommend's, with the same scores: models of
-- single and double precision, with biases and without, and biases only
-- (k = 0), leaving out rated items and not.
SELECT mf_recommend_all('folded', 5, target := 'all_single') AS written;
SELECT count(*) = 240 * 5 AS every_user, count(DISTINCT user_id) AS users,
       bool_and(rank BETWEEN 1 AND 5) AS ranks
FROM all_single;
SELECT same_as_mf_recommend(model_id, 'all_single', 5, true) FROM mf_models WHERE name = 'folded';
SELECT mf_train('genre_ratings', k := 4, lambda := 0.5, double_precision := true,
                model_name := 'batch double') AS batch_double \gset
SELECT mf_recommend_all(:batch_double, 3, false, 'all_double') AS written;
SELECT same_as_mf_recommend(:batch_double, 'all_double', 3, false);
SELECT mf_train('genre_ratings', k := 3, lambda := 0.5, biases := true, double_precision := true,
                model_name := 'batch double biases') AS batch_double_biases \gset
SELECT mf_recommend_all(:batch_double_biases, 4, true, 'all_double_biases') AS written;
SELECT same_as_mf_recommend(:batch_double_biases, 'all_double_biases', 4, true);
SELECT mf_train('genre_ratings', k := 0, lambda := 0.5, biases := true,
                model_name := 'batch biases only') AS batch_biases_only \gset
SELECT mf_recommend_all(:batch_biases_only, 4, true, 'all_biases_only') AS written;
SELECT same_as_mf_recommend(:batch_biases_only, 'all_biases_only', 4, true);
-- n beyond the catalogue lists each user's unrated items, once each.
SELECT mf_recommend_all('folded', 1000, target := 'all_items') =
       (SELECT count(*) FROM (SELECT DISTINCT user_id, item_id FROM genre_ratings) r)
         * -1 + 240 * 60 AS every_unrated_item;

-- The rows are written without the executor, so a table that an event
-- trigger changed on creation is refused, and nothing is left behind.
CREATE FUNCTION index_new_tables() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE
    created record;
BEGIN
    FOR created IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
        EXECUTE format('CREATE INDEX ON %s (item_id)', created.object_identity);
    END LOOP;
END $$;
CREATE EVENT TRIGGER index_new_tables ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
    EXECUTE FUNCTION index_new_tables();
SELECT mf_recommend_all('folded', 5, target := 'indexed_top');
DROP EVENT TRIGGER index_new_tables;
SELECT to_regclass('indexed_top') IS NULL AS nothing_left;
-- A stored rated_items array with a NULL fails the call while the threads
-- rank (the error stops and joins them first); nothing is left behind.
UPDATE mf_user_factors SET rated_items = rated_items || NULL::bigint
WHERE model_id = (SELECT model_id FROM mf_models WHERE name = 'folded') AND user_id = 7;
SELECT mf_recommend_all('folded', 5, target := 'corrupt_top');
SELECT to_regclass('corrupt_top') IS NULL AS nothing_left;
UPDATE mf_user_factors SET rated_items = array_remove(rated_items, NULL)
WHERE model_id = (SELECT model_id FROM mf_models WHERE name = 'folded') AND user_id = 7;
