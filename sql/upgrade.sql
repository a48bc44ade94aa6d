-- Upgrading from 0.1 (through 0.2 and 0.3 to 0.4): models stored by 0.1 predict
-- the same before and after ALTER EXTENSION mf_ext UPDATE, and training
-- asks for the update first.
SET client_min_messages = warning;
DROP EXTENSION mf_ext CASCADE;
CREATE EXTENSION mf_ext VERSION '0.1';
SELECT extversion FROM pg_extension WHERE extname = 'mf_ext';

-- A model as 0.1 stored it.
INSERT INTO mf_models (name, source, user_col, item_col, rating_col, k, lambda,
                       iterations, seed, warm_start, n_users, n_items, n_ratings,
                       skipped_rows, loss, train_rmse, train_seconds, trained_at, version)
VALUES ('old', 'public.first_data', 'user_id', 'item_id', 'rating', 2, 0.1, 2, 0, false,
        2, 3, 4, 0, '{2.5, 1.5}', 0.5, 0.01, now(), nextval('mf_model_version_seq'));
INSERT INTO mf_user_factors
SELECT model_id, u, ARRAY[u * 0.5, 1 - u * 0.25], ARRAY[1, 2]::bigint[]
FROM mf_models, generate_series(1, 2) u;
INSERT INTO mf_item_factors
SELECT model_id, i, ARRAY[i * 0.75, 2 - i * 0.5]
FROM mf_models, generate_series(1, 3) i;
CREATE TABLE before_update AS
SELECT u, i, mf_predict('old', u, i) AS prediction
FROM generate_series(1, 2) u, generate_series(1, 3) i;
SELECT array_agg(item_id ORDER BY score DESC) AS recommended FROM mf_recommend('old', 1, 3, false);

SELECT mf_train('first_data', k := 1);

ALTER EXTENSION mf_ext UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'mf_ext';
SELECT bool_and(b.prediction = mf_predict('old', b.u, b.i)) AS same_predictions, count(*)
FROM before_update b;
SELECT array_agg(item_id ORDER BY score DESC) AS recommended FROM mf_recommend('old', 1, 3, false);
SELECT name, double_precision, load_seconds, iteration_seconds FROM mf_models;
-- 0.3's columns describe the old model as what it was: no biases, plain
-- lambda, every iteration run.
SELECT name, biases, global_mean, weighted_lambda, tolerance, iterations_run,
       train_rmse_history, validation, validation_rmse FROM mf_models;
-- ... and 0.4's as explicit feedback solved by Cholesky.
SELECT name, feedback, alpha, solver FROM mf_models;
SELECT * FROM mf_training_history('old');
SELECT count(*) FILTER (WHERE bias IS NULL) AS users_without_bias FROM mf_user_factors;

-- Training works after the update, and records its timings.
SELECT mf_train('first_data', k := 1, iterations := 3) IS NOT NULL AS trained;
SELECT name, double_precision, load_seconds >= 0 AS has_load_seconds,
       array_length(iteration_seconds, 1) AS iteration_timings, iterations_run,
       array_length(train_rmse_history, 1) AS train_rmses
FROM mf_models WHERE name = 'first_data';
SELECT mf_train('first_data', k := 1, iterations := 3, biases := true,
                model_name := 'with_biases') IS NOT NULL AS trained_with_biases;
SELECT mf_train('first_data', k := 1, iterations := 3, feedback := 'implicit',
                model_name := 'implicit') IS NOT NULL AS trained_implicit;
