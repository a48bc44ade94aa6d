-- mf_ext 0.1: matrix-factorization recommender trained and served inside PostgreSQL.
\echo Use "CREATE EXTENSION mf_ext" to load this file. \quit

-- Models ------------------------------------------------------------------

CREATE SEQUENCE @extschema@.mf_model_version_seq;
COMMENT ON SEQUENCE @extschema@.mf_model_version_seq IS
  'mf_ext: source of mf_models.version; never reused, so a cached model is never mistaken for another';

CREATE TABLE @extschema@.mf_models (
    model_id      serial PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    source        text NOT NULL,
    user_col      name NOT NULL,
    item_col      name NOT NULL,
    rating_col    name NOT NULL,
    k             integer NOT NULL,
    lambda        double precision NOT NULL,
    iterations    integer NOT NULL,
    seed          integer NOT NULL,
    warm_start    boolean NOT NULL,
    n_users       bigint NOT NULL,
    n_items       bigint NOT NULL,
    n_ratings     bigint NOT NULL,
    skipped_rows  bigint NOT NULL,
    loss          double precision[] NOT NULL,
    train_rmse    double precision NOT NULL,
    train_seconds double precision NOT NULL,
    trained_at    timestamptz NOT NULL,
    version       bigint NOT NULL
);
COMMENT ON TABLE @extschema@.mf_models IS
  'mf_ext: one row per trained model: how it was trained (source, columns, k, lambda, iterations, seed), its size, and the objective J after each iteration (loss)';

CREATE TABLE @extschema@.mf_user_factors (
    model_id    integer NOT NULL REFERENCES @extschema@.mf_models ON DELETE CASCADE,
    user_id     bigint NOT NULL,
    factors     double precision[] NOT NULL,
    rated_items bigint[] NOT NULL,
    PRIMARY KEY (model_id, user_id)
);
COMMENT ON TABLE @extschema@.mf_user_factors IS
  'mf_ext: each user''s k factors per model, and the distinct items the user rated in the training data (left out by mf_recommend(..., exclude_rated := true))';

CREATE TABLE @extschema@.mf_item_factors (
    model_id integer NOT NULL REFERENCES @extschema@.mf_models ON DELETE CASCADE,
    item_id  bigint NOT NULL,
    factors  double precision[] NOT NULL,
    PRIMARY KEY (model_id, item_id)
);
COMMENT ON TABLE @extschema@.mf_item_factors IS
  'mf_ext: each item''s k factors per model';

-- pg_dump keeps the models (the tables belong to the extension).
SELECT pg_catalog.pg_extension_config_dump('@extschema@.mf_models', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.mf_models_model_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.mf_model_version_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.mf_user_factors', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.mf_item_factors', '');

-- Training ----------------------------------------------------------------

CREATE FUNCTION @extschema@.mf_train(
    source     regclass,
    k          integer          DEFAULT 10,
    lambda     double precision DEFAULT 0.1,
    iterations integer          DEFAULT 10,
    user_col   name             DEFAULT 'user_id',
    item_col   name             DEFAULT 'item_id',
    rating_col name             DEFAULT 'rating',
    model_name text             DEFAULT NULL,
    warm_start boolean          DEFAULT false,
    seed       integer          DEFAULT 0)
RETURNS integer
AS 'MODULE_PATHNAME', 'mf_train'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_train(regclass, integer, double precision, integer, name, name, name, text, boolean, integer) IS
  'mf_ext: trains (or retrains, keeping its id) the model model_name (default: the source relation''s name) by alternating least squares on source(user_col, item_col, rating_col); returns the model_id';

CREATE FUNCTION @extschema@.mf_drop_model(model text)
RETURNS void
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF model IS NULL THEN
        RAISE EXCEPTION 'model must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the name of a model in mf_models.';
    END IF;
    DELETE FROM @extschema@.mf_models WHERE name = model;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" does not exist', model
            USING ERRCODE = 'undefined_object',
                  HINT = 'See SELECT model_id, name FROM mf_models.';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.mf_drop_model(text) IS
  'mf_ext: deletes the named model and its factors';

CREATE FUNCTION @extschema@.mf_drop_model(model integer)
RETURNS void
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    model_name text;
BEGIN
    IF model IS NULL THEN
        RAISE EXCEPTION 'model must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the model_id of a model in mf_models.';
    END IF;
    SELECT name INTO model_name FROM @extschema@.mf_models WHERE model_id = model;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model % does not exist', model
            USING ERRCODE = 'undefined_object',
                  HINT = 'See SELECT model_id, name FROM mf_models.';
    END IF;
    PERFORM @extschema@.mf_drop_model(model_name);
END
$$;
COMMENT ON FUNCTION @extschema@.mf_drop_model(integer) IS
  'mf_ext: deletes the model with that model_id and its factors';

-- Serving -----------------------------------------------------------------

CREATE FUNCTION @extschema@.mf_predict(model integer, user_id bigint, item_id bigint)
RETURNS double precision
AS 'MODULE_PATHNAME', 'mf_predict'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_predict(integer, bigint, bigint) IS
  'mf_ext: predicted rating u.v of user_id for item_id under model (a model_id); NULL when the model has no such user or item';

CREATE FUNCTION @extschema@.mf_predict(model text, user_id bigint, item_id bigint)
RETURNS double precision
AS 'MODULE_PATHNAME', 'mf_predict_by_name'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_predict(text, bigint, bigint) IS
  'mf_ext: predicted rating u.v of user_id for item_id under the model of that name; NULL when the model has no such user or item';

CREATE FUNCTION @extschema@.mf_recommend(model integer, user_id bigint,
                                         n integer DEFAULT 10,
                                         exclude_rated boolean DEFAULT true)
RETURNS TABLE (item_id bigint, score double precision)
AS 'MODULE_PATHNAME', 'mf_recommend'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_recommend(integer, bigint, integer, boolean) IS
  'mf_ext: the n items with the highest predicted rating for user_id under model (a model_id), score descending then item_id ascending; exclude_rated leaves out items the user rated in the training data; no rows for an unknown user';

CREATE FUNCTION @extschema@.mf_recommend(model text, user_id bigint,
                                         n integer DEFAULT 10,
                                         exclude_rated boolean DEFAULT true)
RETURNS TABLE (item_id bigint, score double precision)
AS 'MODULE_PATHNAME', 'mf_recommend_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_recommend(text, bigint, integer, boolean) IS
  'mf_ext: the n items with the highest predicted rating for user_id under the model of that name, score descending then item_id ascending; exclude_rated leaves out items the user rated in the training data; no rows for an unknown user';
