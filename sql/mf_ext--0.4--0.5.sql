-- mf_ext 0.4 -> 0.5
\echo Use "ALTER EXTENSION mf_ext UPDATE TO '0.5'" to load this file. \quit

-- mf_training_history reads each history array once (unnest), instead of
-- subscripting it per iteration, which detoasted the whole array every
-- time: linear in the iterations, where it was quadratic.
CREATE OR REPLACE FUNCTION @extschema@.mf_training_history(model integer)
RETURNS TABLE (iteration integer, loss double precision, train_rmse double precision,
               validation_rmse double precision, seconds double precision)
LANGUAGE plpgsql STABLE CALLED ON NULL INPUT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF model IS NULL THEN
        RAISE EXCEPTION 'model must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass a model_id or name from mf_models.';
    END IF;
    PERFORM FROM @extschema@.mf_models m WHERE m.model_id = model;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model % does not exist', model
            USING ERRCODE = 'undefined_object',
                  HINT = 'See SELECT model_id, name FROM mf_models.';
    END IF;
    RETURN QUERY
        SELECT h.n::integer, h.j, h.train, h.held_out, h.s
        FROM @extschema@.mf_models m,
             unnest(m.loss, m.train_rmse_history, m.validation_rmse, m.iteration_seconds)
                 WITH ORDINALITY AS h (j, train, held_out, s, n)
        WHERE m.model_id = model AND h.n <= m.iterations_run
        ORDER BY h.n;
END
$$;

-- mf_drop_model(integer) deletes by model_id in one statement: it looked the
-- name up first and deleted by name, so a model renamed or replaced in
-- between was the one dropped.
CREATE OR REPLACE FUNCTION @extschema@.mf_drop_model(model integer)
RETURNS void
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF model IS NULL THEN
        RAISE EXCEPTION 'model must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the model_id of a model in mf_models.';
    END IF;
    DELETE FROM @extschema@.mf_models WHERE model_id = model;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model % does not exist', model
            USING ERRCODE = 'undefined_object',
                  HINT = 'See SELECT model_id, name FROM mf_models.';
    END IF;
END
$$;

-- Two comments that had fallen behind: mf_fold's hash is not mf_is_test's,
-- and mf_models has held the 0.4 options since 0.4.
COMMENT ON FUNCTION @extschema@.mf_fold(bigint, bigint, integer, integer) IS
  'mf_ext: the fold (0 to folds - 1) of the pair (user_id, item_id) in a k-fold split: a splitmix64 hash of (seed, user_id, item_id), independent of mf_is_test''s, so the ratings mf_is_test leaves for training fall evenly into folds too; the fold mf_cross_validate puts the pair in';
COMMENT ON TABLE @extschema@.mf_models IS
  'mf_ext: one row per trained model: how it was trained (source, columns, k, lambda, weighted_lambda, biases, feedback, alpha, solver, nonnegative, iterations, tolerance, seed, precision, validation), the types of ids kept as text keys, its size, mu (global_mean) with biases, and per iteration run the objective J (loss), the training RMSE, the validation RMSE and the time taken';
