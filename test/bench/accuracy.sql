-- Accuracy benchmark: 5-fold cross-validated test RMSE (folds by mf_fold,
-- the hash behind mf_is_test) of the recommended explicit configuration
-- (README), the one 0.4 recommended,
-- a biases-only baseline, an ALS-WR configuration like the usual numpy
-- reference, and mf_train's defaults, on MovieLens latest-small and
-- FilmTrust.  Run by test/bench/accuracy.sh with :data_dir set.
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE TEMP TABLE ml_latest_small (user_id int, item_id int, rating real, ts bigint);
CREATE TEMP TABLE filmtrust (user_id int, item_id int, rating real, ts bigint);
\set ml_program 'xz -dc ' :data_dir '/ml-latest-small.tsv.xz'
\set ft_program 'xz -dc ' :data_dir '/filmtrust.tsv.xz'
COPY ml_latest_small FROM PROGRAM :'ml_program';
COPY filmtrust FROM PROGRAM :'ft_program';
ANALYZE ml_latest_small;
ANALYZE filmtrust;

-- 'recommended' is README's "Recommended for explicit ratings" call:
-- mf_train('ratings', k := 100, lambda := 6, bias_lambda := 3,
-- lambda_per_rating := 0.03, implicit_weight := 0.4, clip := true,
-- iterations := 10, biases := true, ...).
CREATE TEMP TABLE configuration (label text, position int, k int, lambda float8,
                                 biases boolean, weighted_lambda boolean,
                                 iterations int, bias_lambda float8,
                                 lambda_per_rating float8, implicit_weight float8,
                                 clip boolean);
INSERT INTO configuration VALUES
    ('recommended',     1, 100, 6,   true,  false, 10, 3,    0.03, 0.4, true),
    ('without implicit', 2, 100, 3,  true,  false, 10, 3,    0.07, 0,   false),
    ('0.4 recommended', 3, 100, 10,  true,  false, 10, NULL, 0,    0,   false),
    ('biases only',     4,   0, 3,   true,  false, 10, NULL, 0,    0,   false),
    ('ALS-WR k=50',     5,  50, 0.1, true,  true,  10, NULL, 0,    0,   false),
    ('defaults',        6,  10, 0.1, false, false, 10, NULL, 0,    0,   false);

SELECT d.dataset, c.label, c.k, c.lambda, c.bias_lambda, c.lambda_per_rating, c.implicit_weight,
       c.clip, c.biases, c.weighted_lambda, c.iterations,
       cv.folds, round(cv.rmse_mean::numeric, 4) AS rmse_mean,
       round(cv.rmse_stddev::numeric, 4) AS rmse_stddev,
       round(cv.rmse_min::numeric, 4) AS rmse_min, round(cv.rmse_max::numeric, 4) AS rmse_max,
       round(cv.mae_mean::numeric, 4) AS mae_mean, round(cv.coverage::numeric, 4) AS coverage,
       round(cv.seconds::numeric, 1) AS seconds
FROM (VALUES ('ml-latest-small', 'ml_latest_small'::regclass, 1),
             ('filmtrust', 'filmtrust'::regclass, 2)) AS d (dataset, relation, position)
CROSS JOIN configuration c
CROSS JOIN LATERAL mf_cross_validate(d.relation, ARRAY[c.k], ARRAY[c.lambda],
                                     folds := 5, iterations := c.iterations,
                                     biases := c.biases,
                                     weighted_lambda := c.weighted_lambda,
                                     bias_lambdas := CASE WHEN c.bias_lambda IS NOT NULL
                                                          THEN ARRAY[c.bias_lambda] END,
                                     lambda_per_rating := c.lambda_per_rating,
                                     implicit_weights := ARRAY[c.implicit_weight],
                                     clip := c.clip,
                                     seed := 0) AS cv
ORDER BY d.position, c.position;
