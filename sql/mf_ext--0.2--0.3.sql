-- mf_ext 0.2 -> 0.3: biases, ALS-WR, early stopping, validation, splits,
-- evaluation, cross-validation and training history.
\echo Use "ALTER EXTENSION mf_ext UPDATE TO '0.3'" to load this file. \quit

-- Models --------------------------------------------------------------------

-- Models trained before 0.3 had no biases, plain lambda, no early stop,
-- no validation, and ran every iteration they were asked for.
ALTER TABLE @extschema@.mf_models
    ADD COLUMN biases             boolean NOT NULL DEFAULT false,
    ADD COLUMN global_mean        double precision,
    ADD COLUMN weighted_lambda    boolean NOT NULL DEFAULT false,
    ADD COLUMN tolerance          double precision NOT NULL DEFAULT 0,
    ADD COLUMN iterations_run     integer,
    ADD COLUMN train_rmse_history double precision[],
    ADD COLUMN validation         text,
    ADD COLUMN validation_rmse    double precision[];
UPDATE @extschema@.mf_models SET iterations_run = iterations;
ALTER TABLE @extschema@.mf_models
    ALTER COLUMN biases DROP DEFAULT,
    ALTER COLUMN weighted_lambda DROP DEFAULT,
    ALTER COLUMN tolerance DROP DEFAULT,
    ALTER COLUMN iterations_run SET NOT NULL;
COMMENT ON TABLE @extschema@.mf_models IS
  'mf_ext: one row per trained model: how it was trained (source, columns, k, lambda, weighted_lambda, biases, iterations, tolerance, seed, precision), its size, mu (global_mean) with biases, and per iteration run the objective J (loss), the training RMSE, the validation RMSE and the time taken';
COMMENT ON COLUMN @extschema@.mf_models.global_mean IS
  'mf_ext: mu, the mean training rating, for a model with biases (else NULL)';
COMMENT ON COLUMN @extschema@.mf_models.iterations_run IS
  'mf_ext: iterations actually run: fewer than iterations when tolerance stopped the training early';

ALTER TABLE @extschema@.mf_user_factors ADD COLUMN bias double precision;
ALTER TABLE @extschema@.mf_item_factors ADD COLUMN bias double precision;
COMMENT ON COLUMN @extschema@.mf_user_factors.bias IS
  'mf_ext: the user''s bias b_u in a model with biases (else NULL)';
COMMENT ON COLUMN @extschema@.mf_item_factors.bias IS
  'mf_ext: the item''s bias b_i in a model with biases (else NULL)';

-- Training ------------------------------------------------------------------

DROP FUNCTION @extschema@.mf_train(regclass, integer, double precision, integer, name, name, name, text, boolean, integer, boolean);
CREATE FUNCTION @extschema@.mf_train(
    source           regclass,
    k                integer          DEFAULT 10,
    lambda           double precision DEFAULT 0.1,
    iterations       integer          DEFAULT 10,
    user_col         name             DEFAULT 'user_id',
    item_col         name             DEFAULT 'item_id',
    rating_col       name             DEFAULT 'rating',
    model_name       text             DEFAULT NULL,
    warm_start       boolean          DEFAULT false,
    seed             integer          DEFAULT 0,
    double_precision boolean          DEFAULT false,
    biases           boolean          DEFAULT false,
    weighted_lambda  boolean          DEFAULT false,
    tolerance        double precision DEFAULT 0,
    validation       regclass         DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'mf_train'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_train(regclass, integer, double precision, integer, name, name, name, text, boolean, integer, boolean, boolean, boolean, double precision, regclass) IS
  'mf_ext: trains (or retrains, keeping its id) the model model_name (default: the source relation''s name) by alternating least squares on source(user_col, item_col, rating_col), with biases (mu + b_u + b_i + u.v) and ALS-WR lambda if asked, stopping early when J falls by less than tolerance, scoring validation every iteration; returns the model_id';

CREATE FUNCTION @extschema@.mf_training_history(model integer)
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
        SELECT i, m.loss[i], m.train_rmse_history[i], m.validation_rmse[i],
               m.iteration_seconds[i]
        FROM @extschema@.mf_models m,
             generate_series(1, m.iterations_run) AS i
        WHERE m.model_id = model
        ORDER BY i;
END
$$;
COMMENT ON FUNCTION @extschema@.mf_training_history(integer) IS
  'mf_ext: per iteration run of the model (a model_id): J, the training RMSE, the validation RMSE (NULL without validation) and seconds; before 0.3 only J and seconds were kept';

CREATE FUNCTION @extschema@.mf_training_history(model text)
RETURNS TABLE (iteration integer, loss double precision, train_rmse double precision,
               validation_rmse double precision, seconds double precision)
LANGUAGE plpgsql STABLE CALLED ON NULL INPUT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id integer;
BEGIN
    IF model IS NULL THEN
        RAISE EXCEPTION 'model must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass a model_id or name from mf_models.';
    END IF;
    SELECT m.model_id INTO id FROM @extschema@.mf_models m WHERE m.name = model;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" does not exist', model
            USING ERRCODE = 'undefined_object',
                  HINT = 'See SELECT model_id, name FROM mf_models.';
    END IF;
    RETURN QUERY SELECT * FROM @extschema@.mf_training_history(id);
END
$$;
COMMENT ON FUNCTION @extschema@.mf_training_history(text) IS
  'mf_ext: per iteration run of the named model: J, the training RMSE, the validation RMSE (NULL without validation) and seconds';

-- Splits --------------------------------------------------------------------

CREATE FUNCTION @extschema@.mf_is_test(user_id bigint, item_id bigint,
                                       fraction double precision,
                                       seed integer DEFAULT 0)
RETURNS boolean
AS 'MODULE_PATHNAME', 'mf_is_test'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_is_test(bigint, bigint, double precision, integer) IS
  'mf_ext: true for about fraction of all (user_id, item_id) pairs, chosen by a hash of the pair and seed: a deterministic train/test split in plain SQL';

CREATE FUNCTION @extschema@.mf_fold(user_id bigint, item_id bigint,
                                    folds integer, seed integer DEFAULT 0)
RETURNS integer
AS 'MODULE_PATHNAME', 'mf_fold'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_fold(bigint, bigint, integer, integer) IS
  'mf_ext: the fold (0 to folds - 1) of the pair (user_id, item_id) in a k-fold split, by the same hash as mf_is_test: fold 0 is the pairs with mf_is_test(user_id, item_id, 1.0 / folds, seed)';

-- Evaluation ----------------------------------------------------------------

CREATE FUNCTION @extschema@.mf_evaluate(model integer, test regclass,
                                        k integer DEFAULT 10,
                                        threshold double precision DEFAULT NULL,
                                        user_col name DEFAULT NULL,
                                        item_col name DEFAULT NULL,
                                        rating_col name DEFAULT NULL)
RETURNS TABLE (metric text, value double precision)
AS 'MODULE_PATHNAME', 'mf_evaluate'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.mf_evaluate(integer, regclass, integer, double precision, name, name, name) IS
  'mf_ext: the model''s (a model_id) rmse, mae, rows, scored, coverage on the held-out ratings in test, and precision, recall, ndcg and map at k over each test user''s relevant items (rating >= threshold; all when NULL); columns default to the model''s';

CREATE FUNCTION @extschema@.mf_evaluate(model text, test regclass,
                                        k integer DEFAULT 10,
                                        threshold double precision DEFAULT NULL,
                                        user_col name DEFAULT NULL,
                                        item_col name DEFAULT NULL,
                                        rating_col name DEFAULT NULL)
RETURNS TABLE (metric text, value double precision)
AS 'MODULE_PATHNAME', 'mf_evaluate_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.mf_evaluate(text, regclass, integer, double precision, name, name, name) IS
  'mf_ext: the named model''s rmse, mae, rows, scored, coverage on the held-out ratings in test, and precision, recall, ndcg and map at k over each test user''s relevant items (rating >= threshold; all when NULL); columns default to the model''s';

CREATE FUNCTION @extschema@.mf_cross_validate(
    source           regclass,
    ks               integer[],
    lambdas          double precision[],
    folds            integer          DEFAULT 5,
    iterations       integer          DEFAULT 10,
    biases           boolean          DEFAULT false,
    weighted_lambda  boolean          DEFAULT false,
    user_col         name             DEFAULT 'user_id',
    item_col         name             DEFAULT 'item_id',
    rating_col       name             DEFAULT 'rating',
    seed             integer          DEFAULT 0,
    double_precision boolean          DEFAULT false,
    tolerance        double precision DEFAULT 0)
RETURNS TABLE (k integer, lambda double precision, folds integer,
               rmse_mean double precision, rmse_stddev double precision,
               rmse_min double precision, rmse_max double precision,
               mae_mean double precision, coverage double precision,
               seconds double precision)
AS 'MODULE_PATHNAME', 'mf_cross_validate'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_cross_validate(regclass, integer[], double precision[], integer, integer, boolean, boolean, name, name, name, integer, boolean, double precision) IS
  'mf_ext: k-fold cross-validation (folds by mf_fold) of every k in ks with every lambda in lambdas: per pair, the mean, spread, minimum and maximum test RMSE over the folds; writes nothing';

-- Serving with biases predicts for unknown users and items.
COMMENT ON FUNCTION @extschema@.mf_predict(integer, bigint, bigint) IS
  'mf_ext: predicted rating of user_id for item_id under model (a model_id): u.v, plus mu + b_u + b_i with biases; for an unknown user or item NULL, or with biases what the known biases give';
COMMENT ON FUNCTION @extschema@.mf_predict(text, bigint, bigint) IS
  'mf_ext: predicted rating of user_id for item_id under the model of that name: u.v, plus mu + b_u + b_i with biases; for an unknown user or item NULL, or with biases what the known biases give';
COMMENT ON FUNCTION @extschema@.mf_recommend(integer, bigint, integer, boolean) IS
  'mf_ext: the n items with the highest predicted rating for user_id under model (a model_id), score descending then item_id ascending; exclude_rated leaves out items the user rated in the training data; an unknown user gets no rows, or with biases the items of highest mu + b_i';
COMMENT ON FUNCTION @extschema@.mf_recommend(text, bigint, integer, boolean) IS
  'mf_ext: the n items with the highest predicted rating for user_id under the model of that name, score descending then item_id ascending; exclude_rated leaves out items the user rated in the training data; an unknown user gets no rows, or with biases the items of highest mu + b_i';
