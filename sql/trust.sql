-- Numbers that stay honest: implicit feedback read as an event log (a
-- pair's strength is the sum of its rows, in the solve and in J alike), J
-- against a brute-force sum over every pair, near-perfect fits that never
-- make J negative or the RMSE NaN, error measures of enormous test ratings,
-- a training history of 20,000 iterations read in linear time, corrupt
-- model rows, fold-in in the model's precision, batch lists of scores
-- beyond float's range, lambda beyond it, and two refits in one statement.
SET client_min_messages = warning;
SET extra_float_digits = 0;
CREATE SCHEMA trust;                    -- this suite's tables, apart from the others'
SET search_path = trust, public;
-- The error a statement raises, with model ids (which depend on the suites
-- run before) left out.
CREATE FUNCTION trust.error_of(statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    detail text;
BEGIN
    EXECUTE statement;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, 'model [0-9]+', 'model N')
           || coalesce(' (' || nullif(detail, '') || ')', '');
END $$;

-- 1. An event log: every (user, item) pair 1 to 4 times, strengths 1 to 3.
CREATE TABLE events AS
SELECT u AS user_id, i AS item_id, (1 + (u * i + d) % 3)::real AS strength
FROM generate_series(1, 30) u, generate_series(1, 12) i, generate_series(1, 1 + (u + i) % 4) d
WHERE (u * 7 + i * 3) % 4 <> 0;
CREATE VIEW summed AS
SELECT user_id, item_id, sum(strength) AS strength FROM events GROUP BY user_id, item_id;
SELECT count(*) AS rows, (SELECT count(*) FROM summed) AS pairs FROM events;

SELECT mf_train('events', rating_col := 'strength', feedback := 'implicit', k := 3,
                lambda := 2, alpha := 2, iterations := 4, double_precision := true,
                solver := 'cholesky') AS logged \gset
SELECT mf_train('summed', rating_col := 'strength', feedback := 'implicit', k := 3,
                lambda := 2, alpha := 2, iterations := 4, double_precision := true,
                solver := 'cholesky') AS presummed \gset

-- The log trains the model its summed view trains, bit for bit, and J and
-- n_ratings count pairs.
SELECT (SELECT string_agg(factors::text, ';' ORDER BY user_id) FROM mf_user_factors WHERE model_id = :logged)
     = (SELECT string_agg(factors::text, ';' ORDER BY user_id) FROM mf_user_factors WHERE model_id = :presummed)
       AS same_users,
       (SELECT string_agg(factors::text, ';' ORDER BY item_id) FROM mf_item_factors WHERE model_id = :logged)
     = (SELECT string_agg(factors::text, ';' ORDER BY item_id) FROM mf_item_factors WHERE model_id = :presummed)
       AS same_items,
       a.loss = b.loss AS same_j, a.n_ratings AS pairs
FROM mf_models a, mf_models b WHERE a.model_id = :logged AND b.model_id = :presummed;

-- J (after the last iteration, so of the stored factors) against the sum
-- over all 30 x 12 pairs: c (p - u.v)^2 / 2, with p = 1 and c = 1 + alpha *
-- strength for an observed pair, p = 0 and c = 1 for every other, plus
-- lambda / 2 (sum |u|^2 + sum |v|^2).
CREATE FUNCTION brute_force_j(model integer, lambda double precision, alpha double precision)
RETURNS double precision LANGUAGE sql AS $$
    WITH u AS (SELECT user_id, factors FROM mf_user_factors WHERE model_id = model),
         v AS (SELECT item_id, factors FROM mf_item_factors WHERE model_id = model),
         scored AS (
             SELECT (SELECT sum(x * y) FROM unnest(u.factors, v.factors) t(x, y)) AS score,
                    s.strength
             FROM u CROSS JOIN v
             LEFT JOIN summed s ON s.user_id = u.user_id AND s.item_id = v.item_id)
    SELECT sum(CASE WHEN strength IS NULL THEN score * score
                    ELSE (1 + alpha * strength) * (1 - score) ^ 2 END) / 2
           + lambda / 2 * ((SELECT sum(x * x) FROM u, unnest(u.factors) x)
                           + (SELECT sum(x * x) FROM v, unnest(v.factors) x))
    FROM scored
$$;
SELECT abs(loss[iterations_run] - brute_force_j(:logged, 2, 2)) < 1e-9 * loss[iterations_run]
       AS j_is_the_brute_force_sum
FROM mf_models WHERE model_id = :logged;
-- In single precision with conjugate-gradient steps, to float's precision.
SELECT mf_train('events', rating_col := 'strength', feedback := 'implicit', k := 3,
                lambda := 2, alpha := 2, iterations := 4, model_name := 'events float') AS float_model \gset
SELECT abs(loss[iterations_run] - brute_force_j(:float_model, 2, 2)) < 1e-4 * loss[iterations_run]
       AS float_j_is_the_brute_force_sum
FROM mf_models WHERE model_id = :float_model;

-- Ten rows of strength 0 per pair are one observed pair of confidence 1:
-- scores stay near the preference 1, not near 10.
CREATE TABLE zero_events AS
SELECT u AS user_id, i AS item_id, 0 AS strength
FROM generate_series(1, 20) u, generate_series(1, 10) i, generate_series(1, 10) d
WHERE (u + i) % 3 = 0;
SELECT mf_train('zero_events', rating_col := 'strength', feedback := 'implicit', k := 2,
                lambda := 0.1, alpha := 1, iterations := 5) AS zeros \gset
SELECT max(mf_predict(:zeros, user_id, item_id)) BETWEEN 0.5 AND 1.1 AS observed_near_one
FROM zero_events;

-- A new user folds in the same way: duplicate items are summed.
SELECT mf_fold_in(:logged, ARRAY[1, 2, 1, 5], ARRAY[1, 2, 3, 1])
     = mf_fold_in(:logged, ARRAY[1, 2, 5], ARRAY[4, 2, 1]) AS fold_in_sums_duplicates;
-- Negative rows are allowed where the pair's sum is not negative (a
-- retracted event); a negative sum is an error naming the pair.
CREATE TABLE retracted AS
SELECT * FROM events UNION ALL SELECT 1, 1, -1;
SELECT mf_train('retracted', rating_col := 'strength', feedback := 'implicit', k := 2,
                iterations := 1) > 0 AS retraction_trains;
INSERT INTO retracted VALUES (2, 13, -5);
SELECT mf_train('retracted', rating_col := 'strength', feedback := 'implicit', k := 2,
                iterations := 1);
SELECT mf_fold_in(:logged, ARRAY[1, 1], ARRAY[2, -3]);
-- Held-out events are read the same way: a negative sum is an error in
-- validation and mf_evaluate too (they scored it as an interaction).
CREATE TABLE retracted_test (user_id integer, item_id integer, strength double precision);
INSERT INTO retracted_test VALUES (1, 1, 1), (1, 1, -5), (2, 2, 1);
SELECT error_of(format('SELECT * FROM mf_evaluate(%s, %L)', :logged, 'retracted_test'));
SELECT error_of($$SELECT mf_train('events', rating_col := 'strength', feedback := 'implicit', k := 2,
                                  iterations := 1, validation := 'retracted_test',
                                  model_name := 'validated on retractions')$$);

-- Events that cancel out exactly (0.3 - 0.1 - 0.2 is -5.6e-17 in double)
-- are a pair of strength 0, in training and in fold-in.
CREATE TABLE cancelled (user_id integer, item_id integer, strength double precision);
INSERT INTO cancelled SELECT * FROM events;
INSERT INTO cancelled VALUES (1, 13, 0.3), (1, 13, -0.1), (1, 13, -0.2);
SELECT mf_train('cancelled', rating_col := 'strength', feedback := 'implicit', k := 2,
                iterations := 1) > 0 AS cancelled_events_train;
SELECT mf_fold_in(:logged, ARRAY[1, 1, 1], ARRAY[0.3, -0.1, -0.2])
     = mf_fold_in(:logged, ARRAY[1], ARRAY[0]) AS fold_in_cancels_too;

-- 2. Near-perfect fits: J never below 0, the training RMSE never NaN.
CREATE TABLE diagonal AS SELECT i AS user_id, i AS item_id, 1 AS rating FROM generate_series(1, 10) i;
SELECT mf_train('diagonal', feedback := 'implicit', k := 15, lambda := 1e-9, iterations := 5,
                model_name := 'implicit diagonal') AS implicit_diagonal \gset
SELECT mf_train('diagonal', feedback := 'implicit', k := 15, lambda := 0, iterations := 5,
                nonnegative := true, model_name := 'nonnegative diagonal') AS nonnegative_diagonal \gset
SELECT mf_train('diagonal', k := 15, lambda := 0, iterations := 5, nonnegative := true,
                model_name := 'explicit nonnegative diagonal') AS explicit_diagonal \gset
SELECT name, bool_and(j >= 0) AS j_never_negative,
       bool_and(rmse >= 0 AND rmse <> 'NaN') AS rmse_a_number
FROM mf_models, unnest(loss, train_rmse_history) AS h(j, rmse)
WHERE model_id IN (:implicit_diagonal, :nonnegative_diagonal, :explicit_diagonal)
GROUP BY name ORDER BY name;

-- 3. Test ratings of +-1e200: finite error measures (about 1e200), in
-- mf_evaluate and in a validation set alike.
CREATE TABLE small AS
SELECT u AS user_id, i AS item_id, 1 + (u * 3 + i) % 5 AS rating
FROM generate_series(1, 20) u, generate_series(1, 8) i;
SELECT mf_train('small', k := 2, lambda := 1, iterations := 3, biases := true) AS small \gset
CREATE TABLE enormous (user_id integer, item_id integer, rating double precision);
INSERT INTO enormous VALUES (1, 1, 1e200), (2, 2, -1e200), (3, 3, 3);
SELECT metric, value BETWEEN 0.8e200 AND 0.82e200 AS about_0_816e200
FROM mf_evaluate(:small, 'enormous') WHERE metric = 'rmse';
SELECT metric, value BETWEEN 0.66e200 AND 0.67e200 AS about_0_667e200
FROM mf_evaluate(:small, 'enormous') WHERE metric = 'mae';
SELECT mf_train('small', k := 2, lambda := 1, iterations := 3, biases := true,
                validation := 'enormous', model_name := 'validated') AS validated \gset
SELECT bool_and(r BETWEEN 0.8e200 AND 0.82e200) AS validation_rmse_finite
FROM mf_models, unnest(validation_rmse) r WHERE model_id = :validated;
-- A score that itself overflows (factors edited to 1e300, in double
-- precision: a single-precision model refuses factors beyond a float) has
-- no finite error: an error says so.
SELECT mf_train('small', k := 2, lambda := 1, iterations := 3, biases := true,
                double_precision := true, model_name := 'overflowing') AS overflowing \gset
UPDATE mf_user_factors SET factors = ARRAY[1e300, 1e300] WHERE model_id = :overflowing AND user_id = 3;
UPDATE mf_item_factors SET factors = ARRAY[1e300, 1e300] WHERE model_id = :overflowing AND item_id = 3;
UPDATE mf_models SET version = nextval('mf_model_version_seq') WHERE model_id = :overflowing;
SELECT * FROM mf_evaluate(:overflowing, 'enormous');
SELECT mf_drop_model(:overflowing);

-- 4. 20,000 iterations of history are read in linear time: each array is
-- read once, not once per iteration (counted in buffer fetches of
-- mf_models' TOAST table, whose arrays of timings do not compress).
SET mf_ext.threads = 1;
SELECT mf_train('small', k := 1, lambda := 1, iterations := 20000,
                validation := 'small', model_name := 'long') AS long \gset
SELECT reltoastrelid AS toast FROM pg_class WHERE oid = 'mf_models'::regclass \gset
BEGIN;
SELECT pg_stat_get_xact_blocks_fetched(:toast) AS fetched_before \gset
SELECT count(*) AS iterations, min(iteration) AS first, max(iteration) AS last,
       count(validation_rmse) AS validated, bool_and(seconds >= 0) AS timed
FROM mf_training_history(:long);
SELECT pg_stat_get_xact_blocks_fetched(:toast) - :fetched_before < 1000 AS read_once;
COMMIT;
RESET mf_ext.threads;
SELECT (SELECT array_agg(loss ORDER BY iteration) FROM mf_training_history(:long)) = loss
       AND (SELECT array_agg(seconds ORDER BY iteration) FROM mf_training_history(:long)) = iteration_seconds
       AS history_is_the_arrays
FROM mf_models WHERE model_id = :long;

-- 5. A model row no training writes is reported as corrupt, not served.
SELECT mf_train('small', k := 2, lambda := 1, iterations := 2, model_name := 'edited') AS edited \gset
UPDATE mf_models SET k = 0, version = nextval('mf_model_version_seq') WHERE model_id = :edited;
SELECT error_of(format('SELECT mf_fold_in(%s, ARRAY[1, 2], ARRAY[4, 5])', :edited));
SELECT error_of(format('SELECT mf_refit_users(%s)', :edited));
UPDATE mf_models SET k = 2, lambda = 'NaN', version = nextval('mf_model_version_seq') WHERE model_id = :edited;
SELECT error_of(format('SELECT mf_predict(%s, 1, 1)', :edited));
UPDATE mf_models SET lambda = 1, version = nextval('mf_model_version_seq') WHERE model_id = :edited;
UPDATE mf_item_factors SET factors = ARRAY[1, 'NaN'::float8] WHERE model_id = :edited AND item_id = 2;
UPDATE mf_models SET version = nextval('mf_model_version_seq') WHERE model_id = :edited;
SELECT mf_predict(:edited, 1, 1);
-- A bias that is not finite is refused by a warm start as by serving (a
-- warm start had trained from it, and blamed lambda; attack helper 245).
SELECT mf_train('small', k := 2, lambda := 1, iterations := 2, biases := true,
                model_name := 'edited bias') AS edited_bias \gset
UPDATE mf_item_factors SET bias = 'NaN' WHERE model_id = :edited_bias AND item_id = 2;
UPDATE mf_models SET version = nextval('mf_model_version_seq') WHERE model_id = :edited_bias;
SELECT error_of($$SELECT mf_train('small', model_name := 'edited bias', warm_start := true)$$);
SELECT error_of(format('SELECT mf_predict(%s, 1, 1)', :edited_bias));
-- ... but not by a warm start that does not use it, without biases (it
-- was, and its hint to retrain repeated the call; attack helper 247) ...
SELECT mf_train('small', model_name := 'edited bias', warm_start := true, biases := false) = :edited_bias AS warm_without_biases;
-- ... and a NULL one is refused by both, as serving refused it (a warm
-- start read it as 0; attack helper 247)
SELECT mf_train('small', k := 2, lambda := 1, iterations := 2, biases := true,
                model_name := 'edited bias') = :edited_bias AS retrained;
UPDATE mf_item_factors SET bias = NULL WHERE model_id = :edited_bias AND item_id = 2;
UPDATE mf_models SET version = nextval('mf_model_version_seq') WHERE model_id = :edited_bias;
SELECT error_of($$SELECT mf_train('small', model_name := 'edited bias', warm_start := true)$$);
SELECT error_of(format('SELECT mf_predict(%s, 1, 1)', :edited_bias));
-- A factor or bias beyond a float in a single-precision model (finite as a
-- double) is refused as one no training writes: serving scored it (9.8e299),
-- a warm start failed blaming lambda (attack helper 249).
UPDATE mf_item_factors SET bias = 1, factors = ARRAY[1e300, 1] WHERE model_id = :edited_bias AND item_id = 2;
UPDATE mf_models SET version = nextval('mf_model_version_seq') WHERE model_id = :edited_bias;
SELECT error_of($$SELECT mf_train('small', model_name := 'edited bias', warm_start := true)$$);
SELECT error_of(format('SELECT mf_predict(%s, 1, 1)', :edited_bias));
UPDATE mf_item_factors SET bias = 1e39, factors = ARRAY[1, 1] WHERE model_id = :edited_bias AND item_id = 2;
UPDATE mf_models SET version = nextval('mf_model_version_seq') WHERE model_id = :edited_bias;
SELECT error_of(format('SELECT mf_predict(%s, 1, 1)', :edited_bias));
SELECT mf_drop_model(:edited_bias);
-- NULL where training always writes a value (the owner dropped NOT NULL):
-- an error naming the column, for serving, evaluation and refits alike
-- (a NULL user_col crashed mf_evaluate and refits).
UPDATE mf_item_factors SET factors = ARRAY[1, 2] WHERE model_id = :edited AND item_id = 2;
ALTER TABLE mf_models ALTER user_col DROP NOT NULL, ALTER source DROP NOT NULL,
                      ALTER lambda DROP NOT NULL;
UPDATE mf_models SET user_col = NULL, version = nextval('mf_model_version_seq') WHERE model_id = :edited;
SELECT error_of(format('SELECT * FROM mf_evaluate(%s, %L)', :edited, 'small'));
SELECT error_of(format('SELECT mf_refit_users(%s, %L)', :edited, 'small'));
UPDATE mf_models SET user_col = 'user_id', source = NULL WHERE model_id = :edited;
SELECT error_of(format('SELECT mf_refit_items(%s)', :edited));
UPDATE mf_models SET source = 'trust.small', lambda = NULL,
                     version = nextval('mf_model_version_seq') WHERE model_id = :edited;
SELECT error_of(format('SELECT mf_predict(%s, 1, 1)', :edited));
UPDATE mf_models SET lambda = 1, version = nextval('mf_model_version_seq') WHERE model_id = :edited;
ALTER TABLE mf_models ALTER user_col SET NOT NULL, ALTER source SET NOT NULL,
                      ALTER lambda SET NOT NULL;
SELECT mf_predict(:edited, 1, 1) IS NOT NULL AS served_again;

-- 6. A double-precision model folds in and refits in double precision,
-- also with k = 0 (whose no factors are all floats): a new user's bias is
-- the closed form sum(r - mu - c_i) / (n + lambda) to double's precision.
SELECT mf_train('small', k := 0, lambda := 1, iterations := 2, biases := true,
                double_precision := true, model_name := 'biases in double') AS biases_double \gset
SELECT abs((mf_fold_in(:biases_double, ARRAY[1, 2, 3], ARRAY[5, 1, 4]))[1]
           - (SELECT sum(r - m.global_mean - i.bias) / (3 + 1)
              FROM unnest(ARRAY[1, 2, 3], ARRAY[5, 1, 4]) t(item, r)
              JOIN mf_item_factors i ON i.model_id = :biases_double AND i.item_id = t.item,
                   mf_models m WHERE m.model_id = :biases_double))
       < 1e-12 AS bias_in_double
FROM (SELECT) one;

-- 7. A double-precision model whose scores are beyond float's range
-- (ratings of 1e45), or below it (1e-45), gets from mf_recommend_all
-- exactly mf_recommend's lists: the float products are of factors scaled
-- by powers of two (1e-45 gave 73 of 100 lists wrong).
CREATE TABLE huge AS SELECT user_id, item_id, rating * 1e45 AS rating FROM small;
SELECT mf_train('huge', k := 2, lambda := 1, iterations := 3, double_precision := true) AS huge \gset
SELECT mf_recommend_all(:huge, 3, false, 'trust.huge_top') AS rows_written;
SELECT bool_and(b.items = s.items) AS batch_is_mf_recommend
FROM (SELECT user_id, array_agg(item_id ORDER BY rank) AS items FROM huge_top GROUP BY user_id) b,
     LATERAL (SELECT array_agg(item_id ORDER BY n) AS items
              FROM mf_recommend(:huge, b.user_id, 3, false) WITH ORDINALITY AS r(item_id, score, n)) s;
CREATE TABLE tiny_scale AS SELECT user_id, item_id, rating * 1e-45 AS rating FROM small;
SELECT mf_train('tiny_scale', k := 2, lambda := 1e-110, iterations := 3, double_precision := true) AS tiny_scale \gset
SELECT mf_recommend_all(:tiny_scale, 3, false, 'trust.tiny_top') AS rows_written;
SELECT bool_and(b.items = s.items) AS batch_is_mf_recommend
FROM (SELECT user_id, array_agg(item_id ORDER BY rank) AS items FROM tiny_top GROUP BY user_id) b,
     LATERAL (SELECT array_agg(item_id ORDER BY n) AS items
              FROM mf_recommend(:tiny_scale, b.user_id, 3, false) WITH ORDINALITY AS r(item_id, score, n)) s;

-- Factors of very different magnitudes within one model (edited, or items
-- refitted from ratings of 1e60): where the float products cannot tell a
-- user's candidates from the rest, that user is ranked from exact scores
-- of every item (before, all lists of such models differed).
-- With users, the lists of every item's users (mf_recommend_users_all
-- against mf_recommend_users): the same run with the sides swapped.
CREATE FUNCTION trust.lists_differ(m integer, n integer, users boolean DEFAULT false)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    differing bigint;
BEGIN
    DROP TABLE IF EXISTS trust.batch_lists;
    IF users THEN
        PERFORM mf_recommend_users_all(m, n, false, 'trust.batch_lists');
        SELECT count(*) INTO differing
        FROM (SELECT item_id, array_agg(user_id ORDER BY rank) AS users
              FROM trust.batch_lists GROUP BY item_id) b
        WHERE b.users IS DISTINCT FROM
              (SELECT array_agg(r.user_id ORDER BY o)
               FROM mf_recommend_users(m, b.item_id, n, false) WITH ORDINALITY AS r(user_id, score, o));
        RETURN differing;
    END IF;
    PERFORM mf_recommend_all(m, n, false, 'trust.batch_lists');
    SELECT count(*) INTO differing
    FROM (SELECT user_id, array_agg(item_id ORDER BY rank) AS items
          FROM trust.batch_lists GROUP BY user_id) b
    WHERE b.items IS DISTINCT FROM
          (SELECT array_agg(r.item_id ORDER BY o)
           FROM mf_recommend(m, b.user_id, n, false) WITH ORDINALITY AS r(item_id, score, o));
    RETURN differing;
END $$;
CREATE TABLE spread AS SELECT u AS user_id, i AS item_id, (1 + (u * i) % 5)::float8 AS rating
FROM generate_series(1, 50) u, generate_series(1, 200) i WHERE (u + i) % 3 = 0;
SELECT mf_train('spread', k := 2, lambda := 1, double_precision := true, model_name := 'one huge item') AS one_huge \gset
UPDATE mf_item_factors SET factors = ARRAY[1e50, 1e50] WHERE model_id = :one_huge AND item_id = 200;
UPDATE mf_models SET version = nextval('mf_model_version_seq') WHERE model_id = :one_huge;
SELECT mf_train('spread', k := 2, lambda := 1, double_precision := true, biases := true,
                model_name := 'tiny users') AS tiny_users \gset
UPDATE mf_models SET global_mean = 0, version = nextval('mf_model_version_seq') WHERE model_id = :tiny_users;
UPDATE mf_item_factors SET bias = 0 WHERE model_id = :tiny_users;
UPDATE mf_user_factors SET bias = 0, factors = ARRAY[factors[1] * 1e-50, factors[2] * 1e-50]
WHERE model_id = :tiny_users;
SELECT mf_train('spread', k := 4, lambda := 1, double_precision := true,
                model_name := 'refitted huge items') AS huge_items \gset
CREATE TABLE huge_new_items AS SELECT u AS user_id, i AS item_id, 1e60 * ((u * i) % 5 - 2) AS rating
FROM generate_series(1, 50) u, generate_series(1001, 1010) i;
SELECT mf_refit_items(:huge_items, 'huge_new_items', 'user_id', 'item_id', 'rating') AS refitted;
-- Exact scores that round to one double though the products differ (mu of
-- 1e17, where a double's step is 16, and item biases 89 to 94): the tie
-- goes to the lowest id, as in mf_recommend, even though item 1's product
-- is below every candidate's (before, mf_recommend_all kept item 2).
SELECT mf_train('spread', k := 1, lambda := 1, double_precision := true, biases := true,
                model_name := 'rounded ties') AS rounded_ties \gset
UPDATE mf_models SET global_mean = 1e17, version = nextval('mf_model_version_seq') WHERE model_id = :rounded_ties;
UPDATE mf_user_factors SET factors = '{0}', bias = 0 WHERE model_id = :rounded_ties;
UPDATE mf_item_factors SET factors = '{0}',
       bias = CASE WHEN item_id = 1 THEN 89 ELSE least(94, 90 + (item_id - 2) * 0.5) END
WHERE model_id = :rounded_ties;
SELECT trust.lists_differ(:one_huge, 5) AS one_huge_item, trust.lists_differ(:tiny_users, 5) AS tiny_users,
       trust.lists_differ(:huge_items, 20) AS refitted_huge_items,
       trust.lists_differ(:rounded_ties, 1) AS rounded_ties;
-- The same models' lists of users for every item (the items' biases of
-- 89 to 94 shift an item's scores alike: the users tie, lowest id first),
-- and the scales beyond float's range.
SELECT trust.lists_differ(:one_huge, 5, true) AS one_huge_item, trust.lists_differ(:tiny_users, 5, true) AS tiny_users,
       trust.lists_differ(:huge_items, 20, true) AS refitted_huge_items,
       trust.lists_differ(:rounded_ties, 3, true) AS rounded_ties,
       trust.lists_differ(:huge, 3, true) AS huge, trust.lists_differ(:tiny_scale, 3, true) AS tiny_scale;

-- 8. lambda beyond what single precision holds is refused.
SELECT error_of($$SELECT mf_train('small', lambda := 1e31, model_name := 'lambda too large')$$);
SELECT error_of($$SELECT mf_train('small', lambda := 1e29, weighted_lambda := true,
                                  model_name := 'lambda too large')$$);
SELECT mf_train('small', lambda := 1e31, iterations := 1, double_precision := true,
                model_name := 'lambda large in double') > 0 AS double_takes_it;

-- 9. Two refits of one model in one statement both apply.
SELECT mf_train('small', k := 2, lambda := 1, iterations := 2, model_name := 'refitted') AS refitted \gset
SELECT mf_refit_users(:refitted) AS users, mf_refit_items(:refitted) AS items;
RESET search_path;
