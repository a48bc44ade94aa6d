-- Model quality (0.3): biases, ALS-WR, early stopping, validation, splits,
-- evaluation measures, training history and cross-validation.
SET client_min_messages = warning;

-- Biases ------------------------------------------------------------------

-- 80 users x 60 items: 3 + b_u + b_i with planted biases and a little
-- noise, about half the pairs observed.
CREATE TABLE planted AS
SELECT a AS user_id, b AS item_id,
       3 + 0.5 * sin(a) + 0.8 * cos(b) + 0.02 * sin(a * b) AS rating
FROM generate_series(1, 80) a, generate_series(1, 60) b
WHERE abs(hashint8(a * 1000 + b)) % 100 < 50;

-- A biases-only model (k = 0) recovers them: learned biases move with the
-- planted ones one for one, and predictions of every pair, observed or
-- not, are within the noise of 3 + b_u + b_i.
SELECT mf_train('planted', k := 0, lambda := 0.01, iterations := 20, biases := true,
                double_precision := true) AS planted \gset
SELECT k, biases, abs(global_mean - (SELECT avg(rating) FROM planted)) < 1e-12 AS mean_is_mu,
       weighted_lambda, tolerance, iterations_run
FROM mf_models WHERE model_id = :planted;
SELECT round(corr(f.bias, 0.5 * sin(f.user_id))::numeric, 4) AS user_correlation,
       round(regr_slope(f.bias, 0.5 * sin(f.user_id))::numeric, 2) AS user_slope,
       bool_and(f.factors = '{}') AS no_factors
FROM mf_user_factors f WHERE model_id = :planted;
SELECT round(corr(f.bias, 0.8 * cos(f.item_id))::numeric, 4) AS item_correlation,
       round(regr_slope(f.bias, 0.8 * cos(f.item_id))::numeric, 2) AS item_slope
FROM mf_item_factors f WHERE model_id = :planted;
SELECT max(abs(mf_predict(:planted, a, b) - (3 + 0.5 * sin(a) + 0.8 * cos(b)))) < 0.05
       AS every_pair_predicted
FROM generate_series(1, 80) a, generate_series(1, 60) b;

-- Unknown users and items are predicted from what is known.
SELECT mf_predict(:planted, 9999, 7) = m.global_mean + i.bias AS unknown_user,
       mf_predict(:planted, 7, 9999) = m.global_mean + u.bias AS unknown_item,
       mf_predict(:planted, 9999, 9999) = m.global_mean AS both_unknown
FROM mf_models m
JOIN mf_user_factors u ON u.model_id = m.model_id AND u.user_id = 7
JOIN mf_item_factors i ON i.model_id = m.model_id AND i.item_id = 7
WHERE m.model_id = :planted;
-- ... and an unknown user is recommended the items of highest bias.
SELECT array_agg(item_id ORDER BY score DESC, item_id) =
       (SELECT array_agg(item_id ORDER BY bias DESC, item_id)
        FROM (SELECT item_id, bias FROM mf_item_factors WHERE model_id = :planted
              ORDER BY bias DESC, item_id LIMIT 5) top) AS cold_start_by_bias
FROM mf_recommend(:planted, 9999, 5);
-- A known user's recommendations score as mf_predict does.
SELECT count(*) AS recommended, bool_and(score = mf_predict(:planted, 3, item_id)) AS same_scores
FROM mf_recommend(:planted, 3, 10);

-- Biases with factors: 3 + b_u + b_i + a rank-2 term.
CREATE TABLE biased_lowrank AS
SELECT a AS user_id, b AS item_id,
       3 + 0.5 * sin(a) + 0.8 * cos(b) + sin(0.3 * a) * cos(0.2 * b)
         + cos(0.5 * a) * sin(0.7 * b) AS rating
FROM generate_series(1, 200) a, generate_series(1, 150) b
WHERE abs(hashint8(a * 1000 + b)) % 100 < 30;
CREATE TABLE biased_train AS
SELECT * FROM biased_lowrank WHERE NOT mf_is_test(user_id, item_id, 0.2);
CREATE TABLE biased_test AS
SELECT * FROM biased_lowrank WHERE mf_is_test(user_id, item_id, 0.2);
SELECT mf_train('biased_train', k := 2, lambda := 0.1, iterations := 15, biases := true,
                validation := 'biased_test') AS biased \gset
SELECT metric, round(value::numeric, 2) AS value
FROM mf_evaluate(:biased, 'biased_test') WHERE metric IN ('rows', 'scored', 'coverage');
SELECT value < 0.05 AS held_out_rmse_small
FROM mf_evaluate(:biased, 'biased_test') WHERE metric = 'rmse';
-- Without biases the same model predicts NULL for an unknown user.
SELECT mf_train('biased_train', k := 2, lambda := 0.1, model_name := 'no_biases') AS no_biases \gset
SELECT mf_predict(:no_biases, 9999, 1) IS NULL AS unknown_is_null,
       (SELECT count(*) FROM mf_recommend(:no_biases, 9999)) AS unknown_recommended,
       (SELECT bool_and(bias IS NULL) FROM mf_user_factors WHERE model_id = :no_biases)
   AND (SELECT bool_and(bias IS NULL) FROM mf_item_factors WHERE model_id = :no_biases)
   AND (SELECT global_mean IS NULL FROM mf_models WHERE model_id = :no_biases) AS no_bias_columns;

-- The joint solve of [u_a, b_a], by hand: Y = [[1, 8, ?], [2, ?, 5]], mu = 4,
-- V fixed at [4, 2, 1] with item biases 0, lambda = 1.  User 1's system is
--   [[21, 6], [6, 3]] [u, b] = [4*(1-4) + 2*(8-4), (1-4) + (8-4)] = [-4, 1]
-- so u_1 = -2/3, b_1 = 5/3; user 2's, [[18, 5], [5, 3]] [u, b] = [-7, -1],
-- gives u_2 = -16/29, b_2 = 17/29.
CREATE TABLE worked_biases (user_id integer, item_id integer, rating integer);
INSERT INTO worked_biases VALUES (1, 1, 1), (1, 2, 8), (2, 1, 2), (2, 3, 5);
SELECT mf_train('worked_biases', k := 1, iterations := 1) IS NOT NULL AS trained;
-- Sets V = [4, 2, 1] (biases 0), then runs one warm-started iteration.
CREATE FUNCTION worked_iteration(lambda double precision, biases boolean,
                                 weighted_lambda boolean) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE mf_item_factors f SET factors = ARRAY[(ARRAY[4, 2, 1])[f.item_id]]::float8[],
                                 bias = NULL
    FROM mf_models m WHERE m.model_id = f.model_id AND m.name = 'worked_biases';
    PERFORM mf_train('worked_biases', k := 1, lambda := lambda, iterations := 1,
                     warm_start := true, double_precision := true,
                     biases := biases, weighted_lambda := weighted_lambda);
END $$;
SELECT worked_iteration(1, true, false);
SELECT user_id, abs(factors[1] - CASE user_id WHEN 1 THEN -2 / 3.0 ELSE -16 / 29.0 END) < 1e-12 AS u_exact,
       abs(bias - CASE user_id WHEN 1 THEN 5 / 3.0 ELSE 17 / 29.0 END) < 1e-12 AS b_exact
FROM mf_user_factors f JOIN mf_models m USING (model_id)
WHERE m.name = 'worked_biases' ORDER BY user_id;

-- ALS-WR: lambda counts once per rating, so with two ratings each,
-- u_1 = 20 / (20 + 2 lambda) and u_2 = 13 / (17 + 2 lambda).
SELECT worked_iteration(0.5, false, true);
SELECT user_id, abs(factors[1] - CASE user_id WHEN 1 THEN 20 / 21.0 ELSE 13 / 18.0 END) < 1e-12 AS exact
FROM mf_user_factors f JOIN mf_models m USING (model_id)
WHERE m.name = 'worked_biases' ORDER BY user_id;

-- Early stopping and history ----------------------------------------------

SELECT mf_train('biased_train', k := 2, lambda := 0.1, iterations := 60, biases := true,
                tolerance := 0.01, model_name := 'early') AS early \gset
SELECT iterations, iterations_run < iterations AS stopped_early,
       array_length(loss, 1) = iterations_run AS one_loss_per_iteration_run,
       array_length(iteration_seconds, 1) = iterations_run AS one_time_per_iteration_run
FROM mf_models WHERE model_id = :early;
-- it stopped at the first iteration that lowered J by less than 1%
SELECT bool_and((p.loss - h.loss >= 0.01 * p.loss) = (h.iteration < m.iterations_run))
       AS stopped_at_first_small_drop
FROM mf_models m, mf_training_history(:early) h
JOIN mf_training_history(:early) p ON p.iteration = h.iteration - 1
WHERE m.model_id = :early;
SELECT mf_train('biased_train', k := 2, lambda := 0.1, iterations := 12, biases := true,
                model_name := 'no_tolerance') AS no_tolerance \gset
SELECT iterations_run FROM mf_models WHERE model_id = :no_tolerance;

-- The history holds one row per iteration; with a validation set, its RMSE
-- after the last iteration is what mf_evaluate reports, to the last bit.
SELECT count(*) = m.iterations_run AS one_row_per_iteration,
       bool_and(h.loss = m.loss[h.iteration]) AS losses,
       bool_and(h.seconds = m.iteration_seconds[h.iteration]) AS seconds,
       bool_and(h.validation_rmse IS NOT NULL) AS validated,
       (array_agg(h.train_rmse ORDER BY h.iteration DESC))[1] = m.train_rmse AS last_train_rmse,
       (array_agg(h.validation_rmse ORDER BY h.iteration DESC))[1] =
         (SELECT value FROM mf_evaluate(:biased, 'biased_test') WHERE metric = 'rmse')
         AS validation_is_evaluate
FROM mf_models m, mf_training_history('biased_train') h
WHERE m.model_id = :biased GROUP BY m.model_id;
SELECT validation, array_length(validation_rmse, 1) AS validation_rmses
FROM mf_models WHERE model_id = :biased;
SELECT bool_and(validation_rmse IS NULL) AS no_validation
FROM mf_training_history(:early);

-- Splits ------------------------------------------------------------------

CREATE TABLE pairs AS
SELECT a AS user_id, b AS item_id FROM generate_series(1, 100) a, generate_series(1, 100) b;
SELECT count(*) FILTER (WHERE mf_is_test(user_id, item_id, 0.2)) BETWEEN 1800 AND 2200 AS about_a_fifth,
       count(*) FILTER (WHERE mf_is_test(user_id, item_id, 0)) AS none,
       count(*) FILTER (WHERE mf_is_test(user_id, item_id, 1)) AS all_of_them,
       count(*) FILTER (WHERE mf_is_test(user_id, item_id, 0.2) <> mf_is_test(user_id, item_id, 0.2, 1))
         > 1000 AS seed_changes_split
FROM pairs;
SELECT fold, count(*) BETWEEN 1800 AND 2200 AS balanced
FROM (SELECT mf_fold(user_id, item_id, 5) AS fold FROM pairs) f GROUP BY fold ORDER BY fold;
-- Folds are independent of mf_is_test: what a split leaves for training
-- falls evenly into folds too, so it can be cross-validated.
SELECT fold, count(*) BETWEEN 1440 AND 1760 AS balanced
FROM (SELECT mf_fold(user_id, item_id, 5) AS fold FROM pairs
      WHERE NOT mf_is_test(user_id, item_id, 0.2)) f
GROUP BY fold ORDER BY fold;
-- The same pair always lands in the same place.
SELECT mf_is_test(42, 7, 0.5) = mf_is_test(42, 7, 0.5) AND
       mf_fold(42, 7, 10, 3) = mf_fold(42::int, 7::int, 10, 3) AS deterministic;

-- Evaluation measures, by hand ----------------------------------------------

-- A hand-made model: k = 1, u_1 = 1, u_2 = -1, v_i = i for items 1..5;
-- user 1 rated item 5 in training, user 2 item 1.  Scores are i and -i.
INSERT INTO mf_models (name, source, user_col, item_col, rating_col, k, lambda,
                       iterations, seed, warm_start, n_users, n_items, n_ratings,
                       skipped_rows, loss, train_rmse, train_seconds, trained_at, version,
                       double_precision, biases, weighted_lambda, tolerance, iterations_run,
                       feedback, solver, nonnegative)
VALUES ('hand', 'public.hand', 'user_id', 'item_id', 'rating', 1, 0, 1, 0, false,
        2, 5, 2, 0, '{0}', 0, 0, now(), nextval('mf_model_version_seq'),
        true, false, false, 0, 1, 'explicit', 'cholesky', false);
INSERT INTO mf_user_factors (model_id, user_id, factors, rated_items)
SELECT model_id, u, ARRAY[CASE u WHEN 1 THEN 1 ELSE -1 END]::float8[],
       ARRAY[CASE u WHEN 1 THEN 5 ELSE 1 END]::bigint[]
FROM mf_models, generate_series(1, 2) u WHERE name = 'hand';
INSERT INTO mf_item_factors (model_id, item_id, factors)
SELECT model_id, i, ARRAY[i]::float8[] FROM mf_models, generate_series(1, 5) i
WHERE name = 'hand';
-- Test ratings; user 3 is unknown to the model.
CREATE TABLE hand_test (user_id int, item_id int, rating float8);
INSERT INTO hand_test VALUES (1, 4, 5), (1, 1, 4), (1, 2, 1), (2, 2, 3), (2, 5, 5), (3, 1, 5);
-- Errors over the 5 scored rows: 5-4, 4-1, 1-2, 3-(-2), 5-(-5):
-- RMSE = sqrt(136 / 5), MAE = 20 / 5.  User 3 cannot be scored or ranked.
-- With threshold 4 and k = 2: user 1 (relevant 4, 1) gets [4, 3]: one hit
-- at rank 1, precision 1/2, recall 1/2, NDCG 1 / (1 + 1/log2(3)), AP 1/2;
-- user 2 (relevant 5) gets [2, 3]: nothing.  Means over the two users.
CREATE TABLE hand_expected (metric text, expected float8);
INSERT INTO hand_expected VALUES
    ('rmse', sqrt(136 / 5.0)), ('mae', 4), ('rows', 6), ('scored', 5), ('coverage', 5 / 6.0),
    ('users', 2), ('precision@2', 1 / 4.0), ('recall@2', 1 / 4.0),
    ('ndcg@2', 1 / (1 + 1 / log(2, 3))::float8 / 2), ('map@2', 1 / 4.0);
SELECT e.metric, round(e.value::numeric, 6) AS value,
       abs(e.value - x.expected) < 1e-12 AS as_by_hand
FROM mf_evaluate('hand', 'hand_test', k := 2, threshold := 4) e
LEFT JOIN hand_expected x USING (metric);
-- Without a threshold every test rating is relevant: user 1 (4, 1, 2) and
-- user 2 (2, 5) each hit at rank 1: precision 1/2 each, recall 1/3 and
-- 1/2, AP 1/2 each.
SELECT e.metric, abs(e.value - x.expected) < 1e-12 AS as_by_hand
FROM mf_evaluate('hand', 'hand_test', k := 2) e
JOIN (VALUES ('precision@2', 1 / 2.0), ('recall@2', 5 / 12.0),
             ('ndcg@2', 1 / (1 + 1 / log(2, 3))::float8), ('map@2', 1 / 2.0))
     AS x (metric, expected) USING (metric);
-- k beyond the number of items ranks them all.
SELECT value AS users FROM mf_evaluate('hand', 'hand_test', k := 1000000) WHERE metric = 'users';
-- Reading the test relation runs the caller's SQL: this view serves nine
-- other models, pushing the evaluated one out of the backend's cache.
DO $$
BEGIN
    FOR m IN 1..9 LOOP
        PERFORM mf_train('hand_test', k := 1, iterations := 1, model_name := 'crowd' || m);
    END LOOP;
END $$;
CREATE VIEW hand_test_crowded AS
SELECT * FROM hand_test h
WHERE (SELECT count(mf_predict('crowd' || m, h.user_id, h.item_id))
       FROM generate_series(1, 9) m) >= 0;
SELECT value = sqrt(136 / 5.0) AS same_rmse
FROM mf_evaluate('hand', 'hand_test_crowded') WHERE metric = 'rmse';
-- Columns other than the model's.
CREATE TABLE hand_test_renamed AS SELECT user_id AS u, item_id AS i, rating AS r FROM hand_test;
SELECT value = sqrt(136 / 5.0) AS same_rmse
FROM mf_evaluate('hand', 'hand_test_renamed', user_col := 'u', item_col := 'i', rating_col := 'r')
WHERE metric = 'rmse';
-- A model with biases scores every row.
SELECT value AS coverage FROM mf_evaluate(:planted, 'hand_test') WHERE metric = 'coverage';

-- Cross-validation ----------------------------------------------------------

-- Fold f of mf_cross_validate is mf_train on the pairs outside mf_fold = f,
-- judged by mf_evaluate on the pairs inside, to the last bit.
CREATE TABLE fold_rmse (fold int, rmse float8);
DO $$
BEGIN
    FOR f IN 0..1 LOOP
        EXECUTE format('CREATE TABLE fold_train AS SELECT * FROM biased_lowrank WHERE mf_fold(user_id, item_id, 2) <> %s', f);
        EXECUTE format('CREATE TABLE fold_test AS SELECT * FROM biased_lowrank WHERE mf_fold(user_id, item_id, 2) = %s', f);
        PERFORM mf_train('fold_train', k := 2, lambda := 0.1, iterations := 5, biases := true);
        INSERT INTO fold_rmse SELECT f, value FROM mf_evaluate('fold_train', 'fold_test') WHERE metric = 'rmse';
        DROP TABLE fold_train, fold_test;
    END LOOP;
END $$;
SELECT cv.k, cv.lambda, cv.folds,
       cv.rmse_mean = (SELECT sum(rmse) / 2 FROM fold_rmse) AS mean_of_folds,
       cv.rmse_min = (SELECT min(rmse) FROM fold_rmse) AS min_of_folds,
       cv.rmse_max = (SELECT max(rmse) FROM fold_rmse) AS max_of_folds,
       abs(cv.rmse_stddev - (SELECT stddev_samp(rmse) FROM fold_rmse)) < 1e-15 AS spread,
       cv.coverage, cv.seconds > 0 AS timed
FROM mf_cross_validate('biased_lowrank', ARRAY[2], ARRAY[0.1], folds := 2, iterations := 5,
                       biases := true) cv;
-- A grid: one row per (k, lambda), k outermost; writes no model.
SELECT count(*) AS models_before FROM mf_models \gset
SELECT k, lambda, folds, rmse_min <= rmse_mean AND rmse_mean <= rmse_max AS ordered,
       rmse_stddev >= 0 AS spread
FROM mf_cross_validate('biased_lowrank', ARRAY[0, 2], ARRAY[0.1, 1], folds := 3,
                       iterations := 3, biases := true);
SELECT count(*) = :models_before AS nothing_written FROM mf_models;
-- The rank-2 model beats the biases-only one on held-out ratings.
SELECT (array_agg(rmse_mean ORDER BY k))[2] < (array_agg(rmse_mean ORDER BY k))[1] AS factors_help
FROM mf_cross_validate('biased_lowrank', ARRAY[0, 2], ARRAY[0.1], folds := 3, biases := true);

-- Non-negative factors ------------------------------------------------------

-- By hand: V fixed at [4, 2, 1], lambda = 1.  User 1 rated items 1 and 2
-- with -1 and -8: unconstrained u_1 = -20/21, so the constrained optimum
-- is u_1 = 0; user 2 (2 and 5 for items 1 and 3) keeps u_2 = 13/18.
CREATE TABLE signed (user_id integer, item_id integer, rating integer);
INSERT INTO signed VALUES (1, 1, -1), (1, 2, -8), (2, 1, 2), (2, 3, 5);
SELECT mf_train('signed', k := 1, iterations := 1) IS NOT NULL AS trained;
UPDATE mf_item_factors f SET factors = ARRAY[(ARRAY[4, 2, 1])[f.item_id]]::float8[]
FROM mf_models m WHERE m.model_id = f.model_id AND m.name = 'signed';
SELECT mf_train('signed', k := 1, lambda := 1, iterations := 1, warm_start := true,
                double_precision := true, nonnegative := true) IS NOT NULL AS trained;
SELECT user_id, factors[1] = 0 AS clipped, abs(factors[1] - 13 / 18.0) < 1e-12 AS exact
FROM mf_user_factors f JOIN mf_models m USING (model_id)
WHERE m.name = 'signed' ORDER BY user_id;
SELECT solver, nonnegative FROM mf_models WHERE name = 'signed';
-- On data with a planted non-negative structure: every factor >= 0, J
-- never rises (1e-6 relative allows for single precision's rounding), and
-- biases stay free to be negative.
SELECT mf_train('biased_train', k := 2, lambda := 0.1, iterations := 10, biases := true,
                nonnegative := true, model_name := 'nonnegative') AS nonnegative \gset
SELECT (SELECT bool_and(x >= 0) FROM mf_user_factors, unnest(factors) x WHERE model_id = :nonnegative)
   AND (SELECT bool_and(x >= 0) FROM mf_item_factors, unnest(factors) x WHERE model_id = :nonnegative)
       AS all_factors_nonnegative,
       (SELECT bool_or(bias < 0) FROM mf_item_factors WHERE model_id = :nonnegative) AS some_bias_negative,
       (SELECT bool_and(loss[i] <= loss[i - 1] * (1 + 1e-6)) FROM mf_models, generate_series(2, 10) i
        WHERE model_id = :nonnegative) AS j_never_rises;
