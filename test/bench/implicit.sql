-- Implicit-feedback benchmark: MovieLens latest-small with ratings >= 4 as
-- interactions (strength 1), 20% of the pairs (so of each user's items)
-- held out by mf_is_test; precision@10 and ndcg@10 of implicit ALS beside
-- a most-popular baseline scored by the same mf_evaluate.  k, lambda and
-- alpha were chosen on another split (mf_is_test seed 1).  Run by
-- test/bench/accuracy.sh with :data_dir set.
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE TEMP TABLE ml_all (user_id int, item_id int, rating real, ts bigint);
\set ml_program 'xz -dc ' :data_dir '/ml-latest-small.tsv.xz'
COPY ml_all FROM PROGRAM :'ml_program';
CREATE TEMP TABLE interactions AS
SELECT user_id, item_id, 1 AS rating FROM ml_all WHERE rating >= 4;
CREATE TEMP TABLE train_part AS
SELECT * FROM interactions WHERE NOT mf_is_test(user_id, item_id, 0.2);
CREATE TEMP TABLE test_part AS
SELECT * FROM interactions WHERE mf_is_test(user_id, item_id, 0.2);
ANALYZE train_part;
ANALYZE test_part;

-- Most popular: a model whose score for every user is the item's number
-- of training interactions (k = 1: user factor 1, item factor = count).
INSERT INTO mf_models (name, source, user_col, item_col, rating_col, k, lambda,
                       iterations, seed, warm_start, n_users, n_items, n_ratings,
                       skipped_rows, loss, train_rmse, train_seconds, trained_at, version,
                       double_precision, biases, weighted_lambda, tolerance, iterations_run,
                       feedback, solver, nonnegative)
SELECT 'most popular', 'train_part', 'user_id', 'item_id', 'rating', 1, 0, 1, 0, false,
       (SELECT count(DISTINCT user_id) FROM train_part),
       (SELECT count(DISTINCT item_id) FROM train_part),
       (SELECT count(*) FROM train_part), 0, '{0}', 0, 0, now(),
       nextval('mf_model_version_seq'), true, false, false, 0, 1, 'explicit', 'cholesky', false;
INSERT INTO mf_user_factors (model_id, user_id, factors, rated_items)
SELECT m.model_id, t.user_id, '{1}', array_agg(DISTINCT t.item_id::bigint ORDER BY t.item_id::bigint)
FROM mf_models m, train_part t WHERE m.name = 'most popular'
GROUP BY m.model_id, t.user_id;
INSERT INTO mf_item_factors (model_id, item_id, factors)
SELECT m.model_id, t.item_id, ARRAY[count(*)::float8]
FROM mf_models m, train_part t WHERE m.name = 'most popular'
GROUP BY m.model_id, t.item_id;

CREATE TEMP TABLE configuration (label text, position int, k int, lambda float8,
                                 alpha float8, solver text, iterations int);
INSERT INTO configuration VALUES
    ('implicit ALS, CG',       1, 128, 50, 10, 'cg',       15),
    ('implicit ALS, Cholesky', 2, 128, 50, 10, 'cholesky', 15);

CREATE TEMP TABLE result (label text, position int, k int, lambda float8, alpha float8,
                          solver text, iterations int, seconds float8, metric text,
                          value float8);
DO $$
DECLARE
    c record;
    started timestamptz;
    elapsed float8;
BEGIN
    FOR c IN SELECT * FROM configuration ORDER BY position LOOP
        started := clock_timestamp();
        PERFORM mf_train('train_part', k := c.k, lambda := c.lambda, alpha := c.alpha,
                         iterations := c.iterations, feedback := 'implicit',
                         solver := c.solver, model_name := c.label);
        elapsed := extract(epoch FROM clock_timestamp() - started);
        INSERT INTO result
        SELECT c.label, c.position, c.k, c.lambda, c.alpha, c.solver, c.iterations, elapsed,
               e.metric, e.value
        FROM mf_evaluate(c.label, 'test_part', k := 10) e;
    END LOOP;
    INSERT INTO result
    SELECT 'most popular', 0, NULL, NULL, NULL, NULL, NULL, NULL, e.metric, e.value
    FROM mf_evaluate('most popular', 'test_part', k := 10) e;
END $$;

SELECT label, k, lambda, alpha, solver, iterations,
       round(max(value) FILTER (WHERE metric = 'precision@10')::numeric, 4) AS precision_at_10,
       round(max(value) FILTER (WHERE metric = 'ndcg@10')::numeric, 4) AS ndcg_at_10,
       round(max(value) FILTER (WHERE metric = 'recall@10')::numeric, 4) AS recall_at_10,
       round(max(value) FILTER (WHERE metric = 'map@10')::numeric, 4) AS map_at_10,
       max(value) FILTER (WHERE metric = 'users')::int AS users,
       round(seconds::numeric, 1) AS train_seconds
FROM result GROUP BY label, position, k, lambda, alpha, solver, iterations, seconds
ORDER BY position;
