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

-- Median milliseconds of one mf_recommend(model, user, 10) call, over
-- `calls` calls for users drawn from the model.
CREATE OR REPLACE FUNCTION bench_recommend_ms(model integer, calls integer DEFAULT 1000)
RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    users bigint[];
    started timestamptz;
    times double precision[] := '{}';
    n integer;
BEGIN
    SELECT array_agg(user_id ORDER BY md5(user_id::text)) INTO users
    FROM (SELECT user_id FROM mf_user_factors WHERE model_id = model
          ORDER BY md5(user_id::text) LIMIT calls) u;
    PERFORM count(*) FROM mf_recommend(model, users[1], 10);   -- loads the cache
    FOR c IN 1..calls LOOP
        started := clock_timestamp();
        SELECT count(*) INTO n FROM mf_recommend(model, users[1 + (c - 1) % array_length(users, 1)], 10);
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
