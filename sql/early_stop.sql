-- Early stopping (mf_train's patience): a training with a validation
-- relation stops once the validation RMSE has not fallen below its lowest
-- for patience iterations in a row, and stores the factors and biases of
-- the iteration of the lowest, however it stopped (mf_models.best_iteration,
-- the history's kept).  Without patience nothing changes.  (Its wrong
-- calls: sql/errors.sql; its memory: sql/limits.sql.)
SET client_min_messages = warning;

-- Smooth ratings with noise, 20% held out: with k = 8 and lambda = 1 the
-- validation RMSE falls to its lowest at iteration 15 and then rises, by
-- far more than rounding moves it (1.5e-4 from 15 to 16).
CREATE TABLE es AS
SELECT u AS user_id, i AS item_id,
       round((3 + sin(u) * cos(i) + 0.8 * cos(0.3 * u) * sin(0.7 * i)
              + ((abs(hashint8(u * 7919 + i)) % 1000) / 1000.0 - 0.5) * 2)::numeric, 1)::real
           AS rating
FROM generate_series(1, 300) u, generate_series(1, 200) i
WHERE abs(hashint8(u * 1000 + i)) % 100 < 8;
CREATE VIEW es_train AS SELECT * FROM es WHERE NOT mf_is_test(user_id, item_id, 0.2);
CREATE VIEW es_test AS SELECT * FROM es WHERE mf_is_test(user_id, item_id, 0.2);

-- The factors of every user and item of a model, with their biases, as text.
CREATE FUNCTION factor_rows(model text) RETURNS text LANGUAGE sql AS $$
    SELECT (SELECT string_agg(row(u.user_id, u.factors, u.bias)::text, ';' ORDER BY u.user_id)
            FROM mf_user_factors u WHERE u.model_id = m.model_id)
           || '|' ||
           (SELECT string_agg(row(i.item_id, i.factors, i.bias)::text, ';' ORDER BY i.item_id)
            FROM mf_item_factors i WHERE i.model_id = m.model_id)
    FROM mf_models m WHERE m.name = model
$$;

-- Patience 3: the training stops 3 iterations after the lowest validation
-- RMSE, which no later iteration reaches, and the model is that
-- iteration's (its training RMSE too).
SELECT mf_train('es_train', k := 8, lambda := 1, biases := true, iterations := 30,
                validation := 'es_test', patience := 3, model_name := 'early') > 0 AS trained;
SELECT iterations, patience, iterations_run, best_iteration,
       iterations_run = best_iteration + patience AS stopped_after_patience,
       validation_rmse[best_iteration] = (SELECT min(v) FROM unnest(validation_rmse) v)
           AS best_is_lowest,
       (SELECT bool_and(v > validation_rmse[best_iteration])
        FROM unnest(validation_rmse[best_iteration + 1:]) v) AS later_all_higher,
       train_rmse = train_rmse_history[best_iteration] AS train_rmse_of_best
FROM mf_models WHERE name = 'early';
SELECT best_iteration AS best FROM mf_models WHERE name = 'early' \gset
-- the history keeps every iteration run, and marks the one kept
SELECT count(*) AS iterations, count(*) FILTER (WHERE kept) AS kept,
       min(iteration) FILTER (WHERE kept) AS kept_iteration
FROM mf_training_history('early');
-- the stored factors score the validation set as the best iteration did, to the bit
SELECT e.value = m.validation_rmse[m.best_iteration] AS evaluated_as_best,
       e.value < m.validation_rmse[m.iterations_run] AS better_than_last
FROM mf_evaluate('early', 'es_test') e, mf_models m
WHERE e.metric = 'rmse' AND m.name = 'early';
-- ... and they are, bit for bit, those of a training of that many
-- iterations without patience or validation (which leave the fit alone)
SELECT mf_train('es_train', k := 8, lambda := 1, biases := true, iterations := :best,
                model_name := 'plain') > 0 AS trained;
SELECT factor_rows('early') = factor_rows('plain') AS same_factors,
       (SELECT global_mean FROM mf_models WHERE name = 'early')
       = (SELECT global_mean FROM mf_models WHERE name = 'plain') AS same_mean,
       (SELECT best_iteration IS NULL AND patience = 0 FROM mf_models WHERE name = 'plain')
           AS plain_has_no_best;

-- Without patience nothing changes: patience NULL (not given) or 0, with a
-- validation relation, trains the factors a training without both does.
SELECT mf_train('es_train', k := 8, lambda := 1, biases := true, iterations := :best,
                validation := 'es_test', patience := NULL, model_name := 'not_given') > 0
           AS not_given,
       mf_train('es_train', k := 8, lambda := 1, biases := true, iterations := :best,
                validation := 'es_test', patience := 0, model_name := 'zero') > 0 AS zero;
SELECT name, patience, best_iteration, iterations_run,
       factor_rows(name) = factor_rows('plain') AS same_factors_as_plain
FROM mf_models WHERE name IN ('not_given', 'zero') ORDER BY name;
SELECT run, iteration, kept FROM mf_training_history('zero') WHERE kept;

-- Running out of iterations first keeps the best too: 16 iterations with
-- patience 5 keep iteration 15.
SELECT mf_train('es_train', k := 8, lambda := 1, biases := true, iterations := :best + 1,
                validation := 'es_test', patience := 5, model_name := 'ran_out') > 0 AS trained;
SELECT iterations_run, best_iteration, factor_rows('ran_out') = factor_rows('plain') AS same_factors
FROM mf_models WHERE name = 'ran_out';
-- and with tolerance, which stops on J, whichever comes first stops it
SELECT mf_train('es_train', k := 8, lambda := 1, biases := true, iterations := 30,
                tolerance := 0.02, validation := 'es_test', patience := 3,
                model_name := 'tolerant') > 0 AS trained;
SELECT iterations_run < :best + 3 AS tolerance_stopped_first,
       validation_rmse[best_iteration] = (SELECT min(v) FROM unnest(validation_rmse) v)
           AS best_is_lowest,
       (SELECT e.value FROM mf_evaluate('tolerant', 'es_test') e WHERE e.metric = 'rmse')
           = validation_rmse[best_iteration] AS evaluated_as_best
FROM mf_models WHERE name = 'tolerant';

-- What a training says (in double precision, whose 6 digits no kernel
-- moves): k = 8, lambda = 0.3 overfits from the second iteration on.
SET client_min_messages = notice;
\set VERBOSITY terse
SELECT mf_train('es_train', k := 8, lambda := 0.3, biases := true, iterations := 30,
                double_precision := true, validation := 'es_test', patience := 3,
                model_name := 'overfit') > 0 AS trained;
-- a retraining keeps patience like any option it does not name (and keeps
-- the best of 2 iterations, the first)
SELECT mf_train('es_train', lambda := 1, iterations := 2, validation := 'es_test',
                model_name := 'overfit') > 0 AS retrained;
\set VERBOSITY default
SET client_min_messages = warning;
SELECT patience, iterations_run, best_iteration FROM mf_models WHERE name = 'overfit';
-- kept without validation, it is an error that says where it came from
SELECT mf_train('es_train', model_name := 'overfit');
-- patience := 0 turns it off
SELECT mf_train('es_train', patience := 0, model_name := 'overfit') > 0 AS retrained;
SELECT patience, iterations_run, best_iteration FROM mf_models WHERE name = 'overfit';

-- A retraining with the same options and seed stores the same factors; a
-- warm start continues from the kept iteration's factors, and its
-- iterations are numbered after that one (run 1 ran 18 iterations and
-- kept the 15th).
SELECT mf_train('es_train', validation := 'es_test', model_name := 'early') > 0 AS retrained;
SELECT factor_rows('early') = factor_rows('plain') AS same_factors, best_iteration
FROM mf_models WHERE name = 'early';
SELECT mf_train('es_train', iterations := 2, validation := 'es_test', patience := 5,
                warm_start := true, model_name := 'early') > 0 AS warm;
SELECT run, count(*) AS iterations, min(iteration) AS first, max(iteration) AS last,
       min(iteration) FILTER (WHERE kept) AS kept, bool_or(h.warm_start) AS warm_start
FROM mf_model_history h JOIN mf_models m USING (model_id)
WHERE m.name = 'early' GROUP BY run ORDER BY run;

SELECT mf_drop_model(name) FROM mf_models
WHERE name IN ('early', 'plain', 'not_given', 'zero', 'ran_out', 'tolerant', 'overfit')
ORDER BY name;
DROP FUNCTION factor_rows(text);
DROP VIEW es_train, es_test;
DROP TABLE es;
