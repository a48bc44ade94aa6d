-- Retraining replaces a model atomically and keeps its id; a failed or
-- cancelled retrain leaves the previous model exactly as it was.
SET client_min_messages = warning;

CREATE TABLE small AS
SELECT user_id, item_id, rating FROM lowrank WHERE user_id <= 60 AND item_id <= 80;
SELECT mf_train('small', k := 3) AS m \gset

-- A fingerprint of everything stored for a model.
CREATE FUNCTION model_fingerprint(model text) RETURNS text LANGUAGE sql AS $$
    SELECT md5(row(m.*)::text
               || (SELECT string_agg(row(u.*)::text, ';' ORDER BY user_id)
                   FROM mf_user_factors u WHERE u.model_id = m.model_id)
               || (SELECT string_agg(row(v.*)::text, ';' ORDER BY item_id)
                   FROM mf_item_factors v WHERE v.model_id = m.model_id))
    FROM mf_models m WHERE m.name = model
$$;
SELECT model_fingerprint('small') AS before \gset
SELECT version AS version_before FROM mf_models WHERE model_id = :m \gset

-- Failures at every stage leave the model untouched.
SELECT mf_train('small', k := 0);                                       -- arguments
SELECT mf_train('small', k := 3, rating_col := 'user_idd');              -- columns
SELECT mf_train('small', k := 5, warm_start := true);                   -- warm start
INSERT INTO small VALUES (1, 1, 'NaN');
SELECT mf_train('small', k := 3);                                       -- data
DELETE FROM small WHERE rating = 'NaN';
INSERT INTO small VALUES (1000, 1, 4);
SELECT mf_train('small', k := 2, lambda := 0);                          -- singular
DELETE FROM small WHERE user_id = 1000;
BEGIN;
SELECT mf_train('small', k := 7) = :m AS same_id_inside;                 -- rolled back
ROLLBACK;
SET statement_timeout = '300ms';
SELECT mf_train('lowrank', k := 50, iterations := 100000, model_name := 'small');  -- cancelled
RESET statement_timeout;
SELECT model_fingerprint('small') = :'before' AS untouched,
       version = :version_before AS same_version
FROM mf_models WHERE model_id = :m;

-- A successful retrain on changed data replaces everything, keeps the id.
DELETE FROM small WHERE user_id > 50;
INSERT INTO small VALUES (500, 1, 4.5), (500, 2, 1);
SELECT mf_train('small', k := 2, lambda := 0.2, iterations := 3) = :m AS same_id;
SELECT k, lambda, iterations, n_users, array_length(loss, 1) AS losses,
       version > :version_before AS new_version,
       model_fingerprint('small') <> :'before' AS replaced
FROM mf_models WHERE model_id = :m;
SELECT count(*) AS users, max(user_id) AS max_user,
       bool_and(array_length(factors, 1) = 2) AS new_k
FROM mf_user_factors WHERE model_id = :m;
SELECT rated_items FROM mf_user_factors WHERE model_id = :m AND user_id = 500;

-- A warm start continues from the stored item factors: it gets to a lower J
-- in one iteration than a cold start does (1e-6 relative allows for single
-- precision's rounding).
SELECT mf_train('small', k := 2, lambda := 0.2, iterations := 20) = :m AS trained;
SELECT loss[20] AS j20 FROM mf_models WHERE model_id = :m \gset
SELECT mf_train('small', k := 2, lambda := 0.2, iterations := 1, warm_start := true) = :m AS warm;
SELECT loss[1] <= :j20 * (1 + 1e-6) AS warm_continues, warm_start
FROM mf_models WHERE model_id = :m;
SELECT mf_train('small', k := 2, lambda := 0.2, iterations := 1) = :m AS cold;
SELECT loss[1] > :j20 AS cold_restarts FROM mf_models WHERE model_id = :m;

-- Items new to the data get seeded factors on a warm start.
INSERT INTO small VALUES (1, 9999, 3);
SELECT mf_train('small', k := 2, lambda := 0.2, iterations := 1, warm_start := true) = :m AS warm_new_item;
SELECT count(*) AS new_item_rows FROM mf_item_factors WHERE model_id = :m AND item_id = 9999;

-- Replacing a model with one trained on another relation says so.  (In
-- double precision: the per-iteration NOTICE prints J and the RMSE to 6
-- digits, which single precision's rounding could move.)
SET client_min_messages = notice;
\set VERBOSITY terse
SELECT mf_train('lowrank', k := 2, iterations := 1, model_name := 'small',
                double_precision := true) = :m AS same_id;
