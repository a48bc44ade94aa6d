-- mf_ext 0.1 -> 0.2: threaded single-precision training, timings, memory guard.
\echo Use "ALTER EXTENSION mf_ext UPDATE TO '0.2'" to load this file. \quit

-- Models trained by 0.1 were trained in double precision.
ALTER TABLE @extschema@.mf_models
    ADD COLUMN double_precision boolean NOT NULL DEFAULT true,
    ADD COLUMN load_seconds double precision,
    ADD COLUMN iteration_seconds double precision[];
ALTER TABLE @extschema@.mf_models ALTER COLUMN double_precision DROP DEFAULT;
COMMENT ON TABLE @extschema@.mf_models IS
  'mf_ext: one row per trained model: how it was trained (source, columns, k, lambda, iterations, seed, precision), its size, the objective J after each iteration (loss) and the time taken (load_seconds, iteration_seconds)';

-- Factor and rated-item arrays are stored uncompressed: pglz would spend
-- most of a training's time on them and gain little.
ALTER TABLE @extschema@.mf_user_factors
    ALTER COLUMN factors SET STORAGE EXTERNAL,
    ALTER COLUMN rated_items SET STORAGE EXTERNAL;
ALTER TABLE @extschema@.mf_item_factors
    ALTER COLUMN factors SET STORAGE EXTERNAL;

DROP FUNCTION @extschema@.mf_train(regclass, integer, double precision, integer, name, name, name, text, boolean, integer);
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
    double_precision boolean          DEFAULT false)
RETURNS integer
AS 'MODULE_PATHNAME', 'mf_train'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_train(regclass, integer, double precision, integer, name, name, name, text, boolean, integer, boolean) IS
  'mf_ext: trains (or retrains, keeping its id) the model model_name (default: the source relation''s name) by alternating least squares on source(user_col, item_col, rating_col), in single precision unless double_precision; returns the model_id';
