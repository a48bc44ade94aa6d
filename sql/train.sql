-- Training on generated low-rank data: convergence, fit, stored model, inputs.
SET client_min_messages = warning;

-- 300 users x 200 items, rank 4 (a constant 3 plus three smooth factors),
-- small deterministic noise, about 20% of the pairs observed.
CREATE TABLE lowrank AS
WITH u AS (SELECT a, ARRAY[sin(a), cos(0.7 * a), sin(1.3 * a + 1)] AS f
           FROM generate_series(1, 300) a),
     i AS (SELECT b, ARRAY[cos(0.9 * b), sin(0.4 * b + 2), cos(1.7 * b)] AS g
           FROM generate_series(1, 200) b)
SELECT a AS user_id, b AS item_id,
       3 + f[1] * g[1] + f[2] * g[2] + f[3] * g[3] + 0.05 * sin(a * b) AS rating
FROM u, i
WHERE abs(hashint8(a * 1000 + b)) % 100 < 20;

SELECT count(*) AS ratings, count(DISTINCT user_id) AS users,
       count(DISTINCT item_id) AS items FROM lowrank;

SELECT mf_train('lowrank', k := 4, lambda := 0.01, iterations := 15) AS m \gset

-- The stored model describes the training.
SELECT name, source, user_col, item_col, rating_col, k, lambda, iterations, seed,
       warm_start, n_users, n_items, n_ratings, skipped_rows,
       array_length(loss, 1) AS losses, version > 0 AS has_version
FROM mf_models WHERE model_id = :m;
SELECT (SELECT count(*) FROM mf_user_factors WHERE model_id = :m) AS user_rows,
       (SELECT count(*) FROM mf_item_factors WHERE model_id = :m) AS item_rows,
       (SELECT bool_and(array_length(factors, 1) = 4) FROM mf_user_factors WHERE model_id = :m)
   AND (SELECT bool_and(array_length(factors, 1) = 4) FROM mf_item_factors WHERE model_id = :m)
       AS all_have_k_factors;

-- J never increases from one iteration to the next (ALS minimises it exactly
-- in each half-step; 1e-6 relative allows for single precision's rounding
-- once converged).
SELECT bool_and(loss[i] <= loss[i - 1] * (1 + 1e-6)) AS j_never_increases,
       loss[1] > loss[array_length(loss, 1)] * 10 AS j_dropped_tenfold
FROM mf_models, generate_subscripts(loss, 1) AS i
WHERE model_id = :m AND i > 1
GROUP BY loss;

-- The training RMSE is small for data of this rank, and is what the stored
-- factors give; the last J is the objective of the stored factors.
CREATE VIEW lowrank_fit AS
SELECT sqrt(avg((r.rating - p.dot) ^ 2)) AS rmse,
       sum((r.rating - p.dot) ^ 2) / 2 AS half_sse
FROM lowrank r
CROSS JOIN LATERAL (
    SELECT sum(x * y) AS dot
    FROM mf_user_factors u, mf_item_factors v, unnest(u.factors, v.factors) AS t(x, y)
    WHERE u.model_id = :m AND v.model_id = :m
      AND u.user_id = r.user_id AND v.item_id = r.item_id) p;
-- (Single precision: J and the RMSE are summed in double from float
-- predictions, so they match the factors to float's precision.)
SELECT m.train_rmse < 0.05 AS rmse_below_0_05,
       abs(m.train_rmse - f.rmse) < 1e-6 AS rmse_matches_factors,
       abs(m.loss[15] - f.half_sse - 0.01 / 2 *
           ((SELECT sum(x * x) FROM mf_user_factors, unnest(factors) x WHERE model_id = :m)
          + (SELECT sum(x * x) FROM mf_item_factors, unnest(factors) x WHERE model_id = :m)))
           < 1e-5 * m.loss[15] AS j_matches_factors
FROM mf_models m, lowrank_fit f WHERE m.model_id = :m;

-- Single precision fits as well as double: training RMSE within 1e-4.
SELECT mf_train('lowrank', k := 4, lambda := 0.01, iterations := 15,
                model_name := 'lowrank_double', double_precision := true) AS m64 \gset
SELECT abs(s.train_rmse - d.train_rmse) < 1e-4 AS rmse_within_1e_4_of_double,
       s.double_precision AS single_is_double, d.double_precision AS double_is_double
FROM mf_models s, mf_models d WHERE s.model_id = :m AND d.model_id = :m64;

-- The same seed and data give the same model; another seed another start.
SELECT mf_train('lowrank', k := 4, lambda := 0.01, iterations := 15,
                model_name := 'lowrank_again') AS again \gset
SELECT mf_train('lowrank', k := 4, lambda := 0.01, iterations := 15,
                model_name := 'lowrank_seed7', seed := 7) AS seed7 \gset
SELECT bool_and(a.factors = b.factors) AS same_seed_identical
FROM mf_item_factors a JOIN mf_item_factors b USING (item_id)
WHERE a.model_id = :m AND b.model_id = :again;
SELECT bool_and(a.factors = b.factors) AS other_seed_identical,
       (SELECT train_rmse < 0.05 FROM mf_models WHERE model_id = :seed7) AS other_seed_fits
FROM mf_item_factors a JOIN mf_item_factors b USING (item_id)
WHERE a.model_id = :m AND b.model_id = :seed7;

-- Row order does not matter: the same rows in another order, same model.
CREATE TABLE lowrank_shuffled AS SELECT * FROM lowrank ORDER BY md5(user_id || ',' || item_id);
SELECT mf_train('lowrank_shuffled', k := 4, lambda := 0.01, iterations := 15) AS shuffled \gset
SELECT bool_and(a.factors = b.factors) AS order_independent
FROM mf_user_factors a JOIN mf_user_factors b USING (user_id)
WHERE a.model_id = :m AND b.model_id = :shuffled;

-- ... even with duplicate pairs whose ratings differ.
CREATE TABLE with_dups AS
SELECT * FROM lowrank
UNION ALL SELECT user_id, item_id, rating + 0.7 FROM lowrank WHERE user_id % 3 = 0
UNION ALL SELECT user_id, item_id, rating - 0.3 FROM lowrank WHERE user_id % 3 = 0;
CREATE TABLE with_dups_shuffled AS SELECT * FROM with_dups ORDER BY md5(user_id || ',' || item_id || ',' || rating);
SELECT mf_train('with_dups', k := 4, lambda := 0.01, iterations := 5) AS dups \gset
SELECT mf_train('with_dups_shuffled', k := 4, lambda := 0.01, iterations := 5) AS dups_shuffled \gset
SELECT bool_and(a.factors = b.factors) AS order_independent_with_duplicates
FROM mf_item_factors a JOIN mf_item_factors b USING (item_id)
WHERE a.model_id = :dups AND b.model_id = :dups_shuffled;
-- ... read in (user, item) order, and in (item, user) order, a pair's rows
-- by falling rating: the two orders indexed by other paths.
CREATE TABLE with_dups_by_user AS SELECT * FROM with_dups ORDER BY user_id, item_id, rating DESC;
CREATE TABLE with_dups_by_item AS SELECT * FROM with_dups ORDER BY item_id, user_id, rating DESC;
SELECT mf_train('with_dups_by_user', k := 4, lambda := 0.01, iterations := 5) AS dups_by_user \gset
SELECT mf_train('with_dups_by_item', k := 4, lambda := 0.01, iterations := 5) AS dups_by_item \gset
SELECT bool_and(a.factors = b.factors AND a.factors = c.factors) AS order_independent_with_duplicates_sorted
FROM mf_user_factors a JOIN mf_user_factors b USING (user_id) JOIN mf_user_factors c USING (user_id)
WHERE a.model_id = :dups_shuffled AND b.model_id = :dups_by_user AND c.model_id = :dups_by_item;
SELECT mf_drop_model(:dups_by_user), mf_drop_model(:dups_by_item);

-- ... and when ratings single precision does not hold (x.1) come only after
-- 70,000 rows of ratings it holds: the rows read so far move to double
-- precision then, in user order as in random order.
CREATE TABLE late_wide AS
SELECT u AS user_id, i AS item_id, ((u * 7 + i) % 5 + 1 + CASE WHEN u > 700 THEN 0.1 ELSE 0 END)::float8 AS rating
FROM generate_series(1, 800) u, generate_series(1, 100) i ORDER BY u, i;
CREATE TABLE late_wide_shuffled AS SELECT * FROM late_wide ORDER BY md5(user_id || ',' || item_id);
SELECT mf_train('late_wide', k := 2, iterations := 2) AS late \gset
SELECT mf_train('late_wide_shuffled', k := 2, iterations := 2) AS late_shuffled \gset
SELECT bool_and(a.factors = b.factors) AS order_independent_late_wide,
       (SELECT loss FROM mf_models WHERE model_id = :late) =
       (SELECT loss FROM mf_models WHERE model_id = :late_shuffled) AS same_loss
FROM mf_user_factors a JOIN mf_user_factors b USING (user_id)
WHERE a.model_id = :late AND b.model_id = :late_shuffled;
SELECT mf_drop_model(:late), mf_drop_model(:late_shuffled);

-- Sources: a view, a materialized view and a partitioned table with other
-- column names and types (smallint/bigint ids, numeric/real ratings); the
-- model is named after the relation unless model_name says otherwise.
CREATE TABLE other_types (who smallint, what bigint, stars numeric(3, 1), weight real);
INSERT INTO other_types
SELECT user_id, item_id + 10000000000, round(rating::numeric, 1), rating
FROM lowrank WHERE user_id <= 100;
SELECT mf_train('other_types', k := 2, user_col := 'who', item_col := 'what',
                rating_col := 'stars') IS NOT NULL AS numeric_ratings;
SELECT mf_train('other_types', k := 2, user_col := 'who', item_col := 'what',
                rating_col := 'weight', model_name := 'real ratings') IS NOT NULL AS real_ratings;
CREATE VIEW lowrank_view AS SELECT * FROM lowrank WHERE item_id <= 100;
CREATE MATERIALIZED VIEW lowrank_matview AS SELECT * FROM lowrank WHERE item_id > 100;
CREATE TABLE lowrank_parts (user_id int, item_id int, rating float8) PARTITION BY RANGE (user_id);
CREATE TABLE lowrank_parts_1 PARTITION OF lowrank_parts FOR VALUES FROM (1) TO (151);
CREATE TABLE lowrank_parts_2 PARTITION OF lowrank_parts FOR VALUES FROM (151) TO (301);
INSERT INTO lowrank_parts SELECT * FROM lowrank;
SELECT mf_train('lowrank_view', k := 2) IS NOT NULL AS view_source,
       mf_train('lowrank_matview', k := 2) IS NOT NULL AS matview_source,
       mf_train('lowrank_parts', k := 2) IS NOT NULL AS partitioned_source;
SELECT name, source, user_col, item_col, rating_col, n_users, n_items, n_ratings
FROM mf_models WHERE name <> 'worked' ORDER BY model_id;
SELECT min(item_id), max(item_id) FROM mf_item_factors JOIN mf_models USING (model_id)
WHERE name = 'other_types';

-- Rows with a NULL user, item or rating are skipped and counted.  (Where
-- the per-iteration NOTICE shows, training is in double precision: the
-- NOTICE prints J and the RMSE to 6 digits, which single precision's
-- rounding, and so the BLAS kernels, could move.)
CREATE TABLE with_nulls AS SELECT * FROM lowrank;
INSERT INTO with_nulls VALUES (NULL, 1, 3), (1, NULL, 3), (1, 1, NULL), (NULL, NULL, NULL);
SET client_min_messages = notice;
\set VERBOSITY terse
SELECT mf_train('with_nulls', k := 2, iterations := 1, double_precision := true) IS NOT NULL AS trained;
\set VERBOSITY default
SET client_min_messages = warning;
SELECT skipped_rows, n_ratings = (SELECT count(*) FROM lowrank) AS counts_non_null
FROM mf_models WHERE name = 'with_nulls';

-- The model is bit-identical whatever the number of threads (each row's
-- solve is independent; J is summed in row order), in both precisions.
SET mf_ext.threads = 1;
SELECT mf_train('lowrank', k := 8, iterations := 3, model_name := 'one thread') AS t1 \gset
SELECT mf_train('lowrank', k := 8, iterations := 3, model_name := 'one thread, double',
                double_precision := true) AS d1 \gset
SET mf_ext.threads = 3;
SELECT mf_train('lowrank', k := 8, iterations := 3, model_name := 'three threads') AS t3 \gset
SELECT mf_train('lowrank', k := 8, iterations := 3, model_name := 'three threads, double',
                double_precision := true) AS d3 \gset
RESET mf_ext.threads;
SELECT (SELECT bool_and(a.factors = b.factors) FROM mf_user_factors a JOIN mf_user_factors b USING (user_id)
        WHERE a.model_id = :t1 AND b.model_id = :t3)
   AND (SELECT bool_and(a.factors = b.factors) FROM mf_item_factors a JOIN mf_item_factors b USING (item_id)
        WHERE a.model_id = :t1 AND b.model_id = :t3)
   AND (SELECT a.loss = b.loss FROM mf_models a, mf_models b WHERE a.model_id = :t1 AND b.model_id = :t3)
       AS single_identical,
       (SELECT bool_and(a.factors = b.factors) FROM mf_user_factors a JOIN mf_user_factors b USING (user_id)
        WHERE a.model_id = :d1 AND b.model_id = :d3)
   AND (SELECT a.loss = b.loss FROM mf_models a, mf_models b WHERE a.model_id = :d1 AND b.model_id = :d3)
       AS double_identical;
SHOW mf_ext.threads;
SET mf_ext.threads = -1;

-- With a second thread, reading has it fault in, ahead of the rows read,
-- the pages the planner's estimate says the rows will fill: the same model
-- as one thread's, in user order and in random order (single-precision
-- ratings), with an estimate too low (the rows past it faulted in by the
-- backend) and with ratings that move to double precision half-way (the
-- values' array replaced while it is faulted in).
CREATE FUNCTION model_fingerprint(m integer) RETURNS text LANGUAGE sql AS $$
  SELECT md5((SELECT string_agg(factors::text, ';' ORDER BY user_id) FROM mf_user_factors WHERE model_id = m)
             || (SELECT string_agg(factors::text, ';' ORDER BY item_id) FROM mf_item_factors WHERE model_id = m)
             || (SELECT loss::text || n_ratings FROM mf_models WHERE model_id = m)) $$;
CREATE FUNCTION same_on_one_and_two_threads(source text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  one integer;
  two integer;
  same boolean;
BEGIN
  PERFORM set_config('mf_ext.threads', '1', true);
  one := mf_train(source, k := 4, iterations := 3, model_name := source || ', one thread');
  PERFORM set_config('mf_ext.threads', '2', true);
  two := mf_train(source, k := 4, iterations := 3, model_name := source || ', two threads');
  same := model_fingerprint(one) = model_fingerprint(two);
  PERFORM mf_drop_model(one);
  PERFORM mf_drop_model(two);
  RETURN same;
END $$;
CREATE TABLE estimated AS
SELECT user_id, item_id, round(rating)::real AS rating FROM lowrank ORDER BY user_id, item_id;
CREATE TABLE estimated_shuffled AS SELECT * FROM estimated ORDER BY md5(user_id || ',' || item_id);
CREATE TABLE estimated_low AS SELECT * FROM estimated_shuffled WHERE user_id <= 30;
CREATE TABLE estimated_late_wide AS SELECT * FROM late_wide_shuffled;
ANALYZE estimated, estimated_shuffled, estimated_low, estimated_late_wide;
INSERT INTO estimated_low SELECT * FROM estimated_shuffled WHERE user_id > 30;
SELECT source, reltuples, same_on_one_and_two_threads(source)
FROM (VALUES ('estimated'), ('estimated_shuffled'), ('estimated_low'), ('estimated_late_wide')) v(source)
JOIN pg_class ON relname = source;

-- Reading: plain tables are scanned directly, but only when that returns
-- what the caller's SELECT would.  Inheritance children are included...
CREATE TABLE parent_ratings (user_id int, item_id int, rating float8);
CREATE TABLE child_ratings () INHERITS (parent_ratings);
INSERT INTO parent_ratings SELECT * FROM lowrank WHERE user_id <= 150;
INSERT INTO child_ratings SELECT * FROM lowrank WHERE user_id > 150;
SELECT mf_train('parent_ratings', k := 2, iterations := 1) IS NOT NULL AS trained;
SELECT n_users, n_ratings FROM mf_models WHERE name = 'parent_ratings';

-- Which path each source takes (DEBUG1 says).
SET client_min_messages = debug1;
\set VERBOSITY terse
SELECT count(*) AS trained FROM (VALUES ('lowrank'), ('parent_ratings'), ('lowrank_view'),
                                        ('lowrank_matview'), ('lowrank_parts')) AS s(source),
     LATERAL mf_train(source::regclass, k := 1, iterations := 1, model_name := 'path ' || source,
                      double_precision := true);
\set VERBOSITY default
SET client_min_messages = warning;

-- ... row-level security is honoured, and column privileges suffice.
CREATE ROLE regress_mf_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON mf_models, mf_user_factors, mf_item_factors, mf_model_history TO regress_mf_reader;
GRANT USAGE ON SEQUENCE mf_models_model_id_seq, mf_model_version_seq TO regress_mf_reader;
CREATE TABLE secured AS SELECT * FROM lowrank;
ALTER TABLE secured ENABLE ROW LEVEL SECURITY;
CREATE POLICY first_hundred ON secured FOR SELECT USING (user_id <= 100);
GRANT SELECT ON secured TO regress_mf_reader;
CREATE TABLE columns_only AS SELECT *, 'secret'::text AS note FROM lowrank;
GRANT SELECT (user_id, item_id, rating) ON columns_only TO regress_mf_reader;
CREATE TABLE two_columns AS SELECT * FROM lowrank;
GRANT SELECT (user_id, item_id) ON two_columns TO regress_mf_reader;
CREATE SCHEMA unused_schema;
CREATE TABLE unused_schema.ratings AS SELECT * FROM lowrank;
GRANT SELECT ON unused_schema.ratings TO regress_mf_reader;
SELECT 'unused_schema.ratings'::regclass::oid AS hidden_oid \gset
SET ROLE regress_mf_reader;
SELECT mf_train('secured', k := 2, iterations := 1) IS NOT NULL AS trained;
SELECT mf_train('columns_only', k := 2, iterations := 1) IS NOT NULL AS trained;
-- Without SELECT on the source, or on one of its three columns, the call
-- stops before reading, naming the relation, the column and the GRANT.
SELECT mf_train('lowrank', k := 2, iterations := 1, model_name := 'not allowed');
SELECT mf_train('two_columns', k := 2, iterations := 1, model_name := 'not allowed');
-- (a schema without USAGE hides its tables from names; an OID reaches one)
SELECT mf_train(:hidden_oid::regclass, k := 2, iterations := 1, model_name := 'not allowed');
RESET ROLE;
-- A role that may read the ratings but not write models is told so
-- before anything is read or fitted.
REVOKE UPDATE ON mf_models FROM regress_mf_reader;
SET ROLE regress_mf_reader;
SELECT mf_train('secured', k := 2, iterations := 1, model_name := 'no update');
SELECT mf_refit_users('secured');
RESET ROLE;
GRANT UPDATE ON mf_models TO regress_mf_reader;
REVOKE USAGE ON SEQUENCE mf_model_version_seq FROM regress_mf_reader;
SET ROLE regress_mf_reader;
SELECT mf_train('secured', k := 2, iterations := 1, model_name := 'no version');
RESET ROLE;
SELECT name, n_users, n_ratings FROM mf_models
WHERE name IN ('secured', 'columns_only') ORDER BY name;
-- The table owner is exempt from RLS unless forced, as for SELECT.
SELECT mf_train('secured', k := 2, iterations := 1, model_name := 'secured by owner') IS NOT NULL;
SELECT n_users FROM mf_models WHERE name = 'secured by owner';
DROP OWNED BY regress_mf_reader;
DROP ROLE regress_mf_reader;

-- Who may do what with a model (see the README's Privileges): an
-- application role with SELECT on the model tables predicts and recommends
-- but may neither retrain nor drop; a role without it may not even read.
CREATE ROLE regress_mf_app;
CREATE ROLE regress_mf_nobody;
GRANT SELECT ON mf_models, mf_user_factors, mf_item_factors TO regress_mf_app;
GRANT SELECT ON lowrank TO regress_mf_app, regress_mf_nobody;
SET ROLE regress_mf_app;
SELECT mf_predict('secured', 1, 1) IS NOT NULL AS predicts,
       (SELECT count(*) FROM mf_recommend('secured', 1, 3)) AS recommends;
SELECT mf_train('lowrank', k := 2, iterations := 1, model_name := 'secured');
SELECT mf_drop_model('secured');
SET ROLE regress_mf_nobody;
SELECT mf_predict('secured', 1, 1);
RESET ROLE;
SELECT count(*) AS still_there FROM mf_models WHERE name = 'secured';
DROP OWNED BY regress_mf_app;
DROP OWNED BY regress_mf_nobody;
DROP ROLE regress_mf_app;
DROP ROLE regress_mf_nobody;

-- Sparse rows with k far above their rating counts train fine at any
-- lambda > 0 (the systems are positive definite), in both precisions.
CREATE TABLE sparse AS
SELECT u AS user_id, (u * 7 + j * 13) % 400 AS item_id, 1 + (u * j) % 5 AS rating
FROM generate_series(1, 60) u, generate_series(1, 3) j;
SELECT mf_train('sparse', k := 64, lambda := 0.1, iterations := 3) IS NOT NULL AS single_trained,
       mf_train('sparse', k := 64, lambda := 0.1, iterations := 3, model_name := 'sparse double',
                double_precision := true) IS NOT NULL AS double_trained;
SELECT name, round(train_rmse::numeric, 3) AS train_rmse FROM mf_models
WHERE name IN ('sparse', 'sparse double') ORDER BY name;

-- Each ALS step minimises J exactly, so J can rise only by rounding: a
-- pair rated 1,000 times makes its rows' systems too badly conditioned for
-- single precision, and the training warns, once, where J rose (with the
-- portable kernel, whose rounding is the same on every CPU); in double
-- precision J falls every iteration and nothing is said.
CREATE TABLE rated_often (user_id int, item_id int, rating numeric);
INSERT INTO rated_often SELECT 1, 1, 5 FROM generate_series(1, 1000);
INSERT INTO rated_often VALUES (2, 1, 1), (1, 2, 3), (2, 2, 1);
SET mf_ext.kernel = portable;
SELECT mf_train('rated_often', k := 2, lambda := 0.1, iterations := 10) IS NOT NULL AS trained;
RESET mf_ext.kernel;
SELECT mf_train('rated_often', k := 2, lambda := 0.1, iterations := 10, double_precision := true,
                model_name := 'rated_often double') IS NOT NULL AS trained;
-- With biases the scale of J is taken about the mean: ratings offset by
-- 1,000 rise as the same ratings without the offset do, and warn too.
CREATE TABLE rated_often_offset (user_id int, item_id int, rating numeric);
INSERT INTO rated_often_offset SELECT 1, 1, 1005 FROM generate_series(1, 20000);
INSERT INTO rated_often_offset VALUES (2, 1, 1001), (1, 2, 1003), (2, 2, 1001), (3, 1, 1002),
    (3, 3, 1004), (2, 3, 1005);
SET mf_ext.kernel = portable;
SELECT mf_train('rated_often_offset', k := 2, lambda := 0.1, iterations := 8, biases := true)
       IS NOT NULL AS trained;
RESET mf_ext.kernel;
SELECT model, count(*) FILTER (WHERE loss > previous) AS rises
FROM (SELECT name AS model, h.loss, lag(h.loss) OVER (PARTITION BY name ORDER BY h.iteration) AS previous
      FROM mf_models m, mf_training_history(m.model_id) h
      WHERE m.name IN ('rated_often', 'rated_often double', 'rated_often_offset')) s
GROUP BY model ORDER BY model;
