-- Helpers for test/bench/bench.sh (loaded into the benchmark database).
SET client_min_messages = warning;

-- Median wall-clock seconds of `repeat` runs of a statement.
CREATE OR REPLACE FUNCTION bench_seconds(statement text, repeat integer DEFAULT 3)
RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz;
    times double precision[] := '{}';
BEGIN
    FOR run IN 1..repeat LOOP
        started := clock_timestamp();
        EXECUTE statement;
        times := times || extract(epoch FROM clock_timestamp() - started)::float8;
    END LOOP;
    RETURN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY t) FROM unnest(times) t);
END $$;

-- Median milliseconds of one serving call under model, over `calls` calls:
-- 'recommend' is mf_recommend(model, user, 10) for users drawn from the
-- model; 'candidates' the same among 1,000 candidate items less 10
-- excluded ones (an application's filter); 'users' is
-- mf_recommend_users(model, item, 10) for items drawn from the model,
-- leaving out each item's raters.
CREATE OR REPLACE FUNCTION bench_serving_ms(model integer, call text DEFAULT 'recommend',
                                            calls integer DEFAULT 1000)
RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    candidates bigint[];
    excluded bigint[];
    started timestamptz;
    times double precision[] := '{}';
    n integer;
BEGIN
    IF call = 'users' THEN
        SELECT array_agg(item_id ORDER BY md5(item_id::text)) INTO ids
        FROM (SELECT item_id FROM mf_item_factors WHERE model_id = model
              ORDER BY md5(item_id::text) LIMIT calls) i;
    ELSE
        SELECT array_agg(user_id ORDER BY md5(user_id::text)) INTO ids
        FROM (SELECT user_id FROM mf_user_factors WHERE model_id = model
              ORDER BY md5(user_id::text) LIMIT calls) u;
    END IF;
    SELECT array_agg(item_id) INTO candidates
    FROM (SELECT item_id FROM mf_item_factors WHERE model_id = model
          ORDER BY md5('candidate' || item_id) LIMIT 1000) i;
    excluded := candidates[1:10];
    PERFORM count(*) FROM mf_recommend(model, ids[1], 10);   -- loads the cache
    FOR c IN 1..calls LOOP
        started := clock_timestamp();
        IF call = 'recommend' THEN
            SELECT count(*) INTO n FROM mf_recommend(model, ids[1 + (c - 1) % array_length(ids, 1)], 10);
        ELSIF call = 'candidates' THEN
            SELECT count(*) INTO n FROM mf_recommend(model, ids[1 + (c - 1) % array_length(ids, 1)], 10,
                                                     candidates := candidates, exclude := excluded);
        ELSIF call = 'users' THEN
            SELECT count(*) INTO n FROM mf_recommend_users(model, ids[1 + (c - 1) % array_length(ids, 1)], 10);
        ELSE
            RAISE EXCEPTION 'unknown call %', call;
        END IF;
        times := times || extract(epoch FROM clock_timestamp() - started)::float8 * 1000;
    END LOOP;
    RETURN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY t) FROM unnest(times) t);
END $$;

-- Cancels the running mf_train of another session and returns the seconds
-- until that backend is idle again (NULL when none is running).
CREATE OR REPLACE FUNCTION bench_cancel_seconds() RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE
    target integer;
    started timestamptz;
BEGIN
    SELECT pid INTO target FROM pg_stat_activity
    WHERE query LIKE '%mf_train(%cancel%' AND state = 'active' AND pid <> pg_backend_pid();
    IF target IS NULL THEN
        RETURN NULL;
    END IF;
    started := clock_timestamp();
    PERFORM pg_cancel_backend(target);
    LOOP
        PERFORM pg_stat_clear_snapshot();   -- else the view is frozen for the transaction
        EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = target AND state = 'active');
        PERFORM pg_sleep(0.001);
    END LOOP;
    RETURN extract(epoch FROM clock_timestamp() - started);
END $$;
