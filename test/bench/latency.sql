-- Latency of the neighbour functions on MovieLens latest-small (610 users,
-- 9,724 items), k = 64: the mean of 1,000 calls from PL/pgSQL, each its own
-- statement, after one warm-up call that loads the model into the cache.
-- Run by test/bench/accuracy.sh with :data_dir set.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE TEMP TABLE ml (user_id int, item_id int, rating real, ts bigint);
\set ml_program 'xz -dc ' :data_dir '/ml-latest-small.tsv.xz'
COPY ml FROM PROGRAM :'ml_program';
SELECT mf_train('ml', k := 64, lambda := 10, biases := true, model_name := 'latency') IS NOT NULL AS trained \gset
CREATE TEMP TABLE latency (call text, position int, ms float8);
DO $$
DECLARE
    started timestamptz;
    x bigint;
    items bigint[] := ARRAY[1, 2, 3, 6, 47, 50, 110, 260, 296, 318];
    ratings float8[] := ARRAY[5, 4, 3, 5, 4, 3, 5, 4, 3, 5];
BEGIN
    PERFORM count(*) FROM mf_similar_items('latency', 1, 10);
    started := clock_timestamp();
    FOR i IN 1..1000 LOOP
        SELECT count(*) INTO x FROM mf_similar_items('latency', (ARRAY[1, 2, 3, 6, 47])[1 + i % 5], 10);
    END LOOP;
    INSERT INTO latency VALUES ('mf_similar_items(model, item, 10)', 1,
                                extract(epoch FROM clock_timestamp() - started));
    started := clock_timestamp();
    FOR i IN 1..1000 LOOP
        SELECT count(*) INTO x FROM mf_similar_users('latency', 1 + i % 610, 10);
    END LOOP;
    INSERT INTO latency VALUES ('mf_similar_users(model, user, 10)', 2,
                                extract(epoch FROM clock_timestamp() - started));
    started := clock_timestamp();
    FOR i IN 1..1000 LOOP
        SELECT count(*) INTO x FROM mf_recommend('latency', 1 + i % 610, 10);
    END LOOP;
    INSERT INTO latency VALUES ('mf_recommend(model, user, 10)', 3,
                                extract(epoch FROM clock_timestamp() - started));
    started := clock_timestamp();
    FOR i IN 1..1000 LOOP
        SELECT count(*) INTO x FROM mf_recommend('latency', items, ratings, 10);
    END LOOP;
    INSERT INTO latency VALUES ('mf_recommend(model, 10 item_ids, 10 ratings, 10)', 4,
                                extract(epoch FROM clock_timestamp() - started));
END $$;
SELECT call, round(ms::numeric, 3) AS ms_per_call FROM latency ORDER BY position;
