-- mf_ext_run.sql: one timed mf_ext training for `make bench-peers` (run by
-- test/bench/peers/rounds.sh in a fresh connection, so that the backend's
-- peak resident memory, VmHWM, is this training's).  psql variables: train,
-- test, k, lambda, iterations, biases, feedback, alpha, solver, threads,
-- clk_tck.  Prints one line:
--   wall s, CPU s (the backend and its threads), mean s per iteration,
--   load s (reading and indexing), held-out metric, VmHWM kB
-- The metric is the RMSE of mf_predict over the test rows (explicit) or
-- mf_evaluate's precision@10 (implicit).  The wall and CPU time span the
-- whole mf_train statement: reading the table, the iterations and storing
-- the model.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SET mf_ext.threads = :threads;
SET mf_ext.max_memory = '20GB';
-- Load the module (and OpenBLAS) before the clock starts.
SELECT mf_is_test(1, 1, 0.5) AS loaded \gset
SELECT extract(epoch FROM clock_timestamp()) AS t0, pg_read_file('/proc/self/stat') AS stat0 \gset
SELECT mf_train(:'train', k := :k, lambda := :lambda, iterations := :iterations,
                biases := :biases, feedback := :'feedback', alpha := :alpha,
                solver := :'solver', model_name := 'peers') AS model \gset
SELECT extract(epoch FROM clock_timestamp()) AS t1, pg_read_file('/proc/self/stat') AS stat1,
       pg_read_file('/proc/self/status') AS status \gset

SELECT :'feedback' = 'explicit' AS explicit \gset
\if :explicit
SELECT sqrt(avg((rating - mf_predict(:model, user_id, item_id)) ^ 2)) AS metric FROM :"test" \gset
\else
SELECT value AS metric FROM mf_evaluate(:model, :'test', k := 10) WHERE metric = 'precision@10' \gset
\endif

-- /proc/PID/stat fields 14 and 15: user and system time of the whole
-- process (every thread, also those that have ended), in clock ticks.
SELECT round((:t1 - :t0)::numeric, 4),
       round(((split_part(:'stat1', ' ', 14)::bigint + split_part(:'stat1', ' ', 15)::bigint
             - split_part(:'stat0', ' ', 14)::bigint - split_part(:'stat0', ' ', 15)::bigint)
             / :clk_tck::numeric), 4),
       round((SELECT avg(s) FROM unnest(iteration_seconds) s)::numeric, 4),
       round(load_seconds::numeric, 4),
       round(:metric::numeric, 6),
       (regexp_match(:'status', 'VmHWM:\s+(\d+) kB'))[1]
FROM mf_models WHERE model_id = :model;
SELECT mf_drop_model(:model) \gset
