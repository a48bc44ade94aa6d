-- Implicit information in an explicit model (issue 16; Koren 2008's SVD++
-- in ALS form): with implicit_weight w, which items each user rated
-- enters the fit through implicit factors y (items) and z (users).  Checked
-- against the closed form on the worked example's data, k = 1, double
-- precision, one warm-started iteration from item factors set by hand.
--
-- Y = [[1, 8, ?], [2, ?, 5]], V = [4, 2, 1] at the start.  The iteration:
--   y_i = (sum_u a_u^2 + lambda / w)^-1 sum_{u rated i} a_u   (from the users' factors
--         before the iteration: 0 on a warm start, which keeps only the items')
--   a_u = (sum_{i rated by u} v_i r_ui + w sum_{i rated by u} y_i)
--         / (sum_{i rated by u} v_i^2 + w sum_all_i y_i^2 + lambda)
--   z_u = (sum_i v_i^2 + lambda / w)^-1 sum_{i rated by u} v_i
--   v_i = (sum_{u rated i} a_u r_ui + w sum_{u rated i} z_u)
--         / (sum_{u rated i} a_u^2 + w sum_all_u z_u^2 + lambda)
CREATE TABLE ii (user_id integer, item_id integer, rating integer);
INSERT INTO ii VALUES (1, 1, 1), (1, 2, 8), (2, 1, 2), (2, 3, 5);
SET client_min_messages = warning;

CREATE FUNCTION ii_iteration(lam double precision, weight double precision) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mf_drop_model(name) FROM mf_models WHERE name = 'ii';
    PERFORM mf_train('ii', k := 1, lambda := lam, iterations := 1, implicit_weight := weight,
                     double_precision := true);
    UPDATE mf_item_factors f SET factors = ARRAY[(ARRAY[4, 2, 1])[f.item_id]]::float8[]
    FROM mf_models m WHERE m.model_id = f.model_id AND m.name = 'ii';
    PERFORM mf_train('ii', iterations := 1, warm_start := true);
END $$;

CREATE VIEW ii_check AS
WITH m AS (SELECT model_id, lambda AS l, implicit_weight AS w FROM mf_models WHERE name = 'ii'),
     v0 AS (SELECT i AS item_id, (ARRAY[4, 2, 1])[i]::float8 AS v FROM generate_series(1, 3) i),
     a AS (SELECT p.user_id, sum(v0.v * p.rating) / (sum(v0.v ^ 2) + m.l) AS a
           FROM ii p JOIN v0 USING (item_id), m GROUP BY p.user_id, m.l),
     z AS (SELECT p.user_id, sum(v0.v) / ((SELECT sum(v ^ 2) FROM v0) + m.l / m.w) AS z
           FROM ii p JOIN v0 USING (item_id), m GROUP BY p.user_id, m.l, m.w),
     v AS (SELECT p.item_id, (sum(a.a * p.rating) + m.w * sum(z.z)) /
                  (sum(a.a ^ 2) + m.w * (SELECT sum(z ^ 2) FROM z) + m.l) AS v
           FROM ii p JOIN a USING (user_id) JOIN z USING (user_id), m GROUP BY p.item_id, m.l, m.w),
     expected AS (SELECT 'user' AS side, user_id AS id, a AS factor, 0::float8 AS implicit FROM a
                  JOIN z USING (user_id)
                  UNION ALL SELECT 'user z', user_id, z, NULL FROM z
                  UNION ALL SELECT 'item', item_id, v, 0 FROM v),
     got AS (SELECT 'user' AS side, user_id AS id, f.factors[1] AS factor, NULL::float8 AS implicit
             FROM mf_user_factors f JOIN m USING (model_id)
             UNION ALL SELECT 'user z', user_id, f.implicit_factors[1], NULL
             FROM mf_user_factors f JOIN m USING (model_id)
             UNION ALL SELECT 'item', item_id, f.factors[1], f.implicit_factors[1]
             FROM mf_item_factors f JOIN m USING (model_id))
SELECT e.side, e.id, round(e.factor::numeric, 10) AS expected,
       abs(g.factor - e.factor) < 1e-12 AS exact,
       g.implicit IS NULL OR g.implicit = 0 AS item_y_from_zero_users
FROM expected e JOIN got g USING (side, id)
ORDER BY 1 DESC, 2;

SELECT ii_iteration(1, 0.5);
SELECT * FROM ii_check;
SELECT ii_iteration(3, 2);
SELECT * FROM ii_check;

-- J by hand: (r - u v)^2 / 2 summed, lambda / 2 |x|^2 on factors and
-- implicit factors, and w / 2 sum over all pairs (e - u . y)^2 and
-- (e - v . z)^2 (e = 1 for a rated pair, 0 for the two others).
WITH m AS (SELECT model_id, lambda AS l, implicit_weight AS w, loss[1] AS j FROM mf_models WHERE name = 'ii'),
     uf AS (SELECT user_id, factors[1] AS a, implicit_factors[1] AS z FROM mf_user_factors JOIN m USING (model_id)),
     vf AS (SELECT item_id, factors[1] AS v, implicit_factors[1] AS y FROM mf_item_factors JOIN m USING (model_id)),
     pairs AS (SELECT uf.*, vf.*, (p.rating IS NOT NULL)::int AS e, p.rating
               FROM uf CROSS JOIN vf LEFT JOIN ii p USING (user_id, item_id))
SELECT abs(m.j - ((SELECT sum((rating - a * v) ^ 2) FROM pairs WHERE e = 1) / 2
                  + m.l / 2 * ((SELECT sum(a ^ 2 + z ^ 2) FROM uf) + (SELECT sum(v ^ 2 + y ^ 2) FROM vf))
                  + m.w / 2 * (SELECT sum((e - a * y) ^ 2 + (e - v * z) ^ 2) FROM pairs)))
       < 1e-10 AS j_by_hand
FROM m;

-- A pair rated twice has e = 2 in the implicit terms (and both its rows
-- in the data term): J counted e^2 as the rows' number, 2 for that pair
-- where it is 4, and could fall below 0 with many duplicates.
CREATE TABLE ii_dup AS SELECT * FROM ii UNION ALL SELECT 1, 1, 3;
SELECT mf_train('ii_dup', k := 1, lambda := 1, iterations := 3, implicit_weight := 0.5,
                double_precision := true) IS NOT NULL AS trained;
WITH m AS (SELECT model_id, lambda AS l, implicit_weight AS w, loss[3] AS j FROM mf_models WHERE name = 'ii_dup'),
     uf AS (SELECT user_id, factors[1] AS a, implicit_factors[1] AS z FROM mf_user_factors JOIN m USING (model_id)),
     vf AS (SELECT item_id, factors[1] AS v, implicit_factors[1] AS y FROM mf_item_factors JOIN m USING (model_id)),
     counts AS (SELECT user_id, item_id, count(*) AS c FROM ii_dup GROUP BY user_id, item_id),
     pairs AS (SELECT uf.*, vf.*, coalesce(counts.c, 0) AS e
               FROM uf CROSS JOIN vf LEFT JOIN counts USING (user_id, item_id))
SELECT abs(m.j - ((SELECT sum((r.rating - a * v) ^ 2) FROM ii_dup r JOIN uf USING (user_id) JOIN vf USING (item_id)) / 2
                  + m.l / 2 * ((SELECT sum(a ^ 2 + z ^ 2) FROM uf) + (SELECT sum(v ^ 2 + y ^ 2) FROM vf))
                  + m.w / 2 * (SELECT sum((e - a * y) ^ 2 + (e - v * z) ^ 2) FROM pairs)))
       < 1e-10 * m.j AS j_by_hand_with_a_repeated_pair
FROM m;

-- After more iterations y is not 0: fold-in solves a new user as the
-- users' half-step does, with w y'y in its system and w times the y of its
-- items on the right (here k = 1, no biases, against the stored V and y).
SELECT mf_train('ii', k := 1, lambda := 1, iterations := 4, implicit_weight := 0.5,
                double_precision := true) IS NOT NULL AS trained;
WITH m AS (SELECT model_id, lambda AS l, implicit_weight AS w FROM mf_models WHERE name = 'ii'),
     items AS (SELECT item_id, factors[1] AS v, implicit_factors[1] AS y FROM mf_item_factors JOIN m USING (model_id)),
     e AS (SELECT (sum(v * r) + m.w * sum(y)) / (sum(v ^ 2) + m.w * (SELECT sum(y ^ 2) FROM items) + m.l) AS a
           FROM (VALUES (1, 1.0), (2, 8.0)) AS given (item_id, r) JOIN items USING (item_id), m
           GROUP BY m.w, m.l)
SELECT abs((mf_fold_in('ii', ARRAY[1, 2], ARRAY[1, 8]))[1] - e.a) < 1e-12 AS fold_in_exact,
       (SELECT bool_and(implicit_factors[1] <> 0) FROM mf_item_factors JOIN m USING (model_id)) AS y_stored
FROM e, m;

-- J never rises, with biases and the other options, on more data; stored,
-- kept by a retraining, and 0 gives the model of no option bit for bit.
CREATE TABLE ii_many AS
SELECT u AS user_id, i AS item_id, 1 + (u * 7 + i * 3) % 5 AS rating
FROM generate_series(1, 80) u, generate_series(1, 40) i WHERE (u + 2 * i) % 3 = 0 OR u % 7 = i % 5;
SELECT mf_train('ii_many', k := 4, lambda := 2, biases := true, bias_lambda := 1,
                lambda_per_rating := 0.02, implicit_weight := 0.4, iterations := 8,
                model_name := 'ii many') IS NOT NULL AS trained;
SELECT bool_and(loss[i] <= loss[i - 1]) AS j_never_rises, implicit_weight
FROM mf_models, generate_series(2, 8) i WHERE name = 'ii many' GROUP BY implicit_weight;
SELECT mf_train('ii_many', iterations := 2, model_name := 'ii many') IS NOT NULL AS retrained,
       (SELECT implicit_weight FROM mf_models WHERE name = 'ii many') AS kept;
SELECT mf_train('ii_many', k := 3, lambda := 1, iterations := 4, model_name := 'plain') IS NOT NULL,
       mf_train('ii_many', k := 3, lambda := 1, iterations := 4, implicit_weight := 0,
                model_name := 'off') IS NOT NULL;
SELECT (SELECT string_agg(factors::text, ';' ORDER BY user_id) FROM mf_user_factors JOIN mf_models USING (model_id) WHERE name = 'plain')
     = (SELECT string_agg(factors::text, ';' ORDER BY user_id) FROM mf_user_factors JOIN mf_models USING (model_id) WHERE name = 'off')
       AS same_factors,
       (SELECT count(*) FROM mf_user_factors JOIN mf_models USING (model_id)
        WHERE name = 'off' AND implicit_factors IS NOT NULL) AS implicit_rows_without_it;

-- The same model for every thread count, and the CG solver too.
SET mf_ext.threads = 1;
SELECT mf_train('ii_many', k := 4, lambda := 2, implicit_weight := 0.4, iterations := 3,
                model_name := 'one thread') IS NOT NULL;
RESET mf_ext.threads;
SELECT mf_train('ii_many', k := 4, lambda := 2, implicit_weight := 0.4, iterations := 3,
                model_name := 'threads') IS NOT NULL;
SELECT (SELECT string_agg(factors::text || implicit_factors::text, ';' ORDER BY item_id) FROM mf_item_factors JOIN mf_models USING (model_id) WHERE name = 'one thread')
     = (SELECT string_agg(factors::text || implicit_factors::text, ';' ORDER BY item_id) FROM mf_item_factors JOIN mf_models USING (model_id) WHERE name = 'threads')
       AS same_for_any_thread_count;
SELECT mf_train('ii_many', k := 4, lambda := 2, implicit_weight := 0.4, iterations := 6,
                solver := 'cg', model_name := 'cg') IS NOT NULL AS cg_trained;
SELECT loss[6] < loss[1] AS cg_descends FROM mf_models WHERE name = 'cg';

-- A refit solves its rows as training's half-step does, and their own
-- implicit factors from the other side's: user 1 refitted from its
-- ratings equals its fold-in, and its z the closed form over V.
SELECT mf_refit_users('ii', users := ARRAY[1]) AS refitted;
WITH m AS (SELECT model_id, lambda AS l, implicit_weight AS w FROM mf_models WHERE name = 'ii'),
     items AS (SELECT item_id, factors[1] AS v FROM mf_item_factors JOIN m USING (model_id)),
     z AS (SELECT sum(v) / ((SELECT sum(v ^ 2) FROM items) + m.l / m.w) AS z
           FROM ii p JOIN items USING (item_id), m WHERE p.user_id = 1 GROUP BY m.l, m.w),
     u AS (SELECT factors[1] AS a, implicit_factors[1] AS z FROM mf_user_factors JOIN m USING (model_id)
           WHERE user_id = 1)
SELECT abs(u.a - (mf_fold_in('ii', ARRAY[1, 2], ARRAY[1, 8]))[1]) < 1e-12 AS refit_as_fold_in,
       abs(u.z - z.z) < 1e-12 AS z_exact
FROM u, z;
SELECT mf_refit_items('ii many') > 0 AS items_refitted,
       mf_refit_users('ii many') > 0 AS users_refitted;
SELECT count(*) FILTER (WHERE cardinality(implicit_factors) = 4) AS users_with_z
FROM mf_user_factors JOIN mf_models USING (model_id) WHERE name = 'ii many';

-- Cross-validation searches implicit_weight beside k, lambda and
-- bias_lambda (innermost); each point is mf_train and mf_evaluate on the
-- folds (the point of w = 0.4 against its folds trained by hand).
SELECT k, lambda, bias_lambda, implicit_weight, folds, rmse_mean > 0 AS scored
FROM mf_cross_validate('ii_many', ARRAY[2], ARRAY[1], folds := 3, biases := true,
                       bias_lambdas := ARRAY[0.5, 2], implicit_weights := ARRAY[0, 0.4]);
CREATE FUNCTION ii_fold_rmse(fold integer) RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE
    rmse double precision;
BEGIN
    CREATE TEMP TABLE ii_train AS SELECT * FROM ii_many WHERE mf_fold(user_id, item_id, 3) <> fold;
    CREATE TEMP TABLE ii_test AS SELECT * FROM ii_many WHERE mf_fold(user_id, item_id, 3) = fold;
    PERFORM mf_train('ii_train', k := 2, lambda := 1, implicit_weight := 0.4, model_name := 'fold');
    SELECT value INTO rmse FROM mf_evaluate('fold', 'ii_test') WHERE metric = 'rmse';
    PERFORM mf_drop_model('fold');
    DROP TABLE ii_train, ii_test;
    RETURN rmse;
END $$;
SELECT abs((SELECT avg(ii_fold_rmse(f)) FROM generate_series(0, 2) f)
           - (SELECT rmse_mean FROM mf_cross_validate('ii_many', ARRAY[2], ARRAY[1], folds := 3,
                                                      implicit_weights := ARRAY[0.4]))) < 1e-12
       AS each_point_is_train_and_evaluate;
DROP FUNCTION ii_fold_rmse(integer);
\set VERBOSITY default
SELECT mf_train('ii_many', implicit_weight := -1);
SELECT mf_train('ii_many', implicit_weight := 'Infinity');
SELECT mf_train('ii_many', implicit_weight := 0.5, feedback := 'implicit', model_name := 'x');
SELECT mf_train('ii_many', implicit_weight := 0.5, nonnegative := true, model_name := 'x');
SELECT mf_train('ii_many', implicit_weight := 0.5, lambda := 0, model_name := 'x');
SELECT mf_train('ii_many', implicit_weight := 0.5, k := 0, biases := true, model_name := 'x');
SELECT * FROM mf_cross_validate('ii_many', ARRAY[2], ARRAY[1], implicit_weights := ARRAY[0.5, -1]);
SELECT * FROM mf_cross_validate('ii_many', ARRAY[2], ARRAY[1], implicit_weights := ARRAY[]::float8[]);
-- The implicit factors' system, F'F + lambda / implicit_weight I, too badly
-- conditioned for single precision (1e-10 beside 40 items' factors at
-- k = 64, rank 40): an error naming lambda and implicit_weight (it had said
-- the factors overflowed); double precision trains it.
CREATE TABLE ii_few AS
SELECT u AS user_id, i AS item_id, 1 + (u * 7 + i * 3) % 5 AS rating
FROM generate_series(1, 20) u, generate_series(1, 40) i WHERE (u + 2 * i) % 3 = 0;
SELECT mf_train('ii_few', k := 64, lambda := 0.01, implicit_weight := 1e8, model_name := 'x');
-- lambda and implicit_weight are printed apart: their ratio underflows here
SELECT mf_train('ii_few', k := 64, lambda := 1e-300, implicit_weight := 1e300, model_name := 'x');
SET client_min_messages = warning;
SELECT mf_train('ii_few', k := 64, lambda := 0.01, implicit_weight := 1e8, model_name := 'x',
                double_precision := true) IS NOT NULL AS trained_in_double;
RESET client_min_messages;
SELECT mf_drop_model('x');
DROP TABLE ii_few;

-- Serving loads the implicit factors: a role needs SELECT on them too,
-- whether or not another role's call has the model cached already.
CREATE ROLE regress_ii_reader;
GRANT SELECT ON mf_models TO regress_ii_reader;
GRANT SELECT (model_id, user_id, user_key, factors, bias, rated_items, support) ON mf_user_factors TO regress_ii_reader;
GRANT SELECT (model_id, item_id, item_key, factors, bias, support) ON mf_item_factors TO regress_ii_reader;
SELECT mf_predict('ii many', 1, 1) IS NOT NULL AS cached_by_the_owner;
SET ROLE regress_ii_reader;
SELECT mf_predict('ii many', 1, 1);
SELECT mf_fold_in('ii many', ARRAY[1], ARRAY[4]);
RESET ROLE;
GRANT SELECT (implicit_factors) ON mf_user_factors, mf_item_factors TO regress_ii_reader;
SET ROLE regress_ii_reader;
SELECT mf_predict('ii many', 1, 1) IS NOT NULL AS granted;
RESET ROLE;
REVOKE ALL ON mf_models, mf_user_factors, mf_item_factors FROM regress_ii_reader;
DROP ROLE regress_ii_reader;

-- A stored implicit_weight, bias_lambda or lambda_per_rating no training
-- writes is refused when the model is loaded, as a corrupt k or lambda is.
CREATE FUNCTION ii_load() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    detail text;
BEGIN
    PERFORM mf_predict('ii many', 1, 1);
    RETURN 'served';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || detail;
END $$;
UPDATE mf_models SET implicit_weight = 'NaN' WHERE name = 'ii many';
SELECT ii_load();
UPDATE mf_models SET implicit_weight = 0.4, bias_lambda = -7 WHERE name = 'ii many';
SELECT ii_load();
UPDATE mf_models SET bias_lambda = 1, lambda_per_rating = '-Infinity' WHERE name = 'ii many';
SELECT ii_load();
UPDATE mf_models SET lambda_per_rating = 0.02 WHERE name = 'ii many';
SELECT ii_load();
DROP FUNCTION ii_load();

DROP FUNCTION ii_iteration(double precision, double precision);
DROP VIEW ii_check;
SELECT count(*) FROM (SELECT mf_drop_model(name) FROM mf_models
                      WHERE name IN ('ii', 'ii many', 'plain', 'off', 'one thread', 'threads', 'cg')) d;
DROP TABLE ii, ii_many;
