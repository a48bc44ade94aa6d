-- mf_ext 0.4 -> 0.5
\echo Use "ALTER EXTENSION mf_ext UPDATE TO '0.5'" to load this file. \quit

-- The trigger this update gives mf_models is named mf_models_provenance: a
-- trigger of that name already there (a user's, made on 0.4's table with
-- TRIGGER) stopped the update with PostgreSQL's bare "already exists".
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_trigger
               WHERE tgrelid = '@extschema@.mf_models'::pg_catalog.regclass
                 AND tgname = 'mf_models_provenance') THEN
        RAISE EXCEPTION 'mf_models has a trigger named mf_models_provenance, the name of the trigger this update adds'
            USING ERRCODE = 'duplicate_object',
                  DETAIL = 'The update to 0.5 records who trained each model with a trigger of its own by that name.',
                  HINT = 'Rename or drop that trigger (ALTER TRIGGER mf_models_provenance ON mf_models RENAME TO ...), then run ALTER EXTENSION mf_ext UPDATE again.';
    END IF;
END
$$;

-- mf_drop_model(integer) deletes by model_id in one statement: it looked the
-- name up first and deleted by name, so a model renamed or replaced in
-- between was the one dropped.  Both forms say what to grant when the role
-- may not delete models (mf_require_privilege, below).
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
    PERFORM @extschema@.mf_require_privilege('mf_models', 'DELETE', NULL,
        'mf_drop_model deletes the model''s row from mf_models (its factor rows go with it).');
    PERFORM @extschema@.mf_require_privilege('mf_models', 'SELECT', ARRAY['model_id'],
        'mf_drop_model finds the model by its model_id in mf_models.');
    IF pg_catalog.current_setting('session_replication_role') = 'replica' THEN
        RAISE EXCEPTION 'cannot run mf_drop_model with session_replication_role = replica'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Its factor and history rows go with the model''s row through the foreign keys'' ON DELETE CASCADE, whose triggers do not fire in that mode: they would be left behind.',
                  HINT = 'SET session_replication_role = origin (or DEFAULT) first.';
    END IF;
    DELETE FROM @extschema@.mf_models WHERE model_id = model;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model % does not exist', model
            USING ERRCODE = 'undefined_object',
                  HINT = 'See SELECT model_id, name FROM mf_models.';
    END IF;
END
$$;
CREATE OR REPLACE FUNCTION @extschema@.mf_drop_model(model text)
RETURNS void
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF model IS NULL THEN
        RAISE EXCEPTION 'model must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the name of a model in mf_models, or its model_id.';
    END IF;
    PERFORM @extschema@.mf_require_privilege('mf_models', 'DELETE', NULL,
        'mf_drop_model deletes the model''s row from mf_models (its factor rows go with it).');
    PERFORM @extschema@.mf_require_privilege('mf_models', 'SELECT', ARRAY['name'],
        'mf_drop_model finds the model by its name in mf_models.');
    IF pg_catalog.current_setting('session_replication_role') = 'replica' THEN
        RAISE EXCEPTION 'cannot run mf_drop_model with session_replication_role = replica'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Its factor and history rows go with the model''s row through the foreign keys'' ON DELETE CASCADE, whose triggers do not fire in that mode: they would be left behind.',
                  HINT = 'SET session_replication_role = origin (or DEFAULT) first.';
    END IF;
    DELETE FROM @extschema@.mf_models WHERE name = model;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model % does not exist',  -- as a JSON string, a long name cut within 100 bytes
                pg_catalog.to_json(CASE WHEN pg_catalog.octet_length(model) <= 100 THEN model
                     ELSE (SELECT pg_catalog.left(model, pg_catalog.max(n))
                           FROM pg_catalog.generate_series(1, 100) n
                           WHERE pg_catalog.octet_length(pg_catalog.left(model, n)) <= 100) || '...' END)
            USING ERRCODE = 'undefined_object',
                  HINT = 'See SELECT model_id, name FROM mf_models.';
    END IF;
END
$$;

-- Two comments that had fallen behind: mf_fold's hash is not mf_is_test's,
-- and mf_models has held the 0.4 options since 0.4 (and 0.5's below).
COMMENT ON FUNCTION @extschema@.mf_fold(bigint, bigint, integer, integer) IS
  'mf_ext: the fold (0 to folds - 1) of the pair (user_id, item_id) in a k-fold split: a splitmix64 hash of (seed, user_id, item_id), independent of mf_is_test''s, so the ratings mf_is_test leaves for training fall evenly into folds too; the fold mf_cross_validate puts the pair in';
COMMENT ON TABLE @extschema@.mf_models IS
  'mf_ext: one row per trained model: how it was trained (source, columns, k, lambda, weighted_lambda, biases, feedback, alpha, solver, nonnegative, iterations, tolerance, patience, seed, precision, validation), the types of ids kept as text keys, its size, mu (global_mean) with biases, per iteration run the objective J (loss), the training RMSE, the validation RMSE and the time taken, and with patience the iteration whose factors are stored (best_iteration)';

-- One naming scheme for the C functions: the SQL name, then _text for the
-- forms that take ids as text (every form of mf_predict calls mf_predict
-- or mf_predict_by_name), then _by_name.  The text forms of
-- mf_predict and mf_recommend were mf_predict_key and mf_recommend_key,
-- the new-user form of mf_recommend mf_recommend_folded, and the text
-- forms of mf_similar_* shared the bigint forms' functions; the module
-- keeps those names for databases not yet updated (src/compat.c).
CREATE OR REPLACE FUNCTION @extschema@.mf_predict(model integer, user_id text, item_id text)
RETURNS double precision
AS 'MODULE_PATHNAME', 'mf_predict'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION @extschema@.mf_predict(model text, user_id text, item_id text)
RETURNS double precision
AS 'MODULE_PATHNAME', 'mf_predict_by_name'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- mf_recommend and mf_recommend_keys take candidates and exclusions, and
-- mf_recommend_users lists the users for an item.  (Views over
-- mf_recommend or mf_recommend_keys must be dropped before the update:
-- README, Installation.)
DROP FUNCTION @extschema@.mf_recommend(integer, bigint, integer, boolean);
DROP FUNCTION @extschema@.mf_recommend(integer, text, integer, boolean);
DROP FUNCTION @extschema@.mf_recommend(integer, bigint[], double precision[], integer, boolean);
DROP FUNCTION @extschema@.mf_recommend_keys(integer, text[], double precision[], integer, boolean);
DROP FUNCTION @extschema@.mf_recommend(text, bigint, integer, boolean);
DROP FUNCTION @extschema@.mf_recommend(text, text, integer, boolean);
DROP FUNCTION @extschema@.mf_recommend(text, bigint[], double precision[], integer, boolean);
DROP FUNCTION @extschema@.mf_recommend_keys(text, text[], double precision[], integer, boolean);

CREATE FUNCTION @extschema@.mf_recommend(model integer, user_id bigint,
                                         n integer DEFAULT 10,
                                         exclude_rated boolean DEFAULT true,
                                         candidates bigint[] DEFAULT NULL,
                                         exclude bigint[] DEFAULT NULL)
RETURNS TABLE (item_id bigint, score double precision)
AS 'MODULE_PATHNAME', 'mf_recommend'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_recommend(integer, bigint, integer, boolean, bigint[], bigint[]) IS
  'mf_ext: the n items with the highest predicted rating for user_id under model (a model_id), score descending then item_id ascending; exclude_rated leaves out items the user rated in the training data; only items among candidates (when not NULL) and not in exclude are listed (ids the model lacks match nothing); an unknown user gets no rows, or with biases the items of highest mu + b_i';

CREATE FUNCTION @extschema@.mf_recommend(model text, user_id bigint,
                                         n integer DEFAULT 10,
                                         exclude_rated boolean DEFAULT true,
                                         candidates bigint[] DEFAULT NULL,
                                         exclude bigint[] DEFAULT NULL)
RETURNS TABLE (item_id bigint, score double precision)
AS 'MODULE_PATHNAME', 'mf_recommend_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_recommend(text, bigint, integer, boolean, bigint[], bigint[]) IS
  'mf_ext: the n items with the highest predicted rating for user_id under the model of that name, score descending then item_id ascending; exclude_rated leaves out items the user rated in the training data; only items among candidates (when not NULL) and not in exclude are listed (ids the model lacks match nothing); an unknown user gets no rows, or with biases the items of highest mu + b_i';

CREATE FUNCTION @extschema@.mf_recommend(model integer, user_id text,
                                         n integer DEFAULT 10,
                                         exclude_rated boolean DEFAULT true,
                                         candidates text[] DEFAULT NULL,
                                         exclude text[] DEFAULT NULL)
RETURNS TABLE (item_id text, score double precision)
AS 'MODULE_PATHNAME', 'mf_recommend_text'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_recommend(integer, text, integer, boolean, text[], text[]) IS
  'mf_ext: as mf_recommend(integer, bigint, ...), with the user and the items as text keys (ids of a model trained on text, uuid or other non-integer ids)';

CREATE FUNCTION @extschema@.mf_recommend(model text, user_id text,
                                         n integer DEFAULT 10,
                                         exclude_rated boolean DEFAULT true,
                                         candidates text[] DEFAULT NULL,
                                         exclude text[] DEFAULT NULL)
RETURNS TABLE (item_id text, score double precision)
AS 'MODULE_PATHNAME', 'mf_recommend_text_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_recommend(text, text, integer, boolean, text[], text[]) IS
  'mf_ext: as mf_recommend(text, bigint, ...), with the user and the items as text keys (ids of a model trained on text, uuid or other non-integer ids)';

CREATE FUNCTION @extschema@.mf_recommend(model integer, item_ids bigint[],
                                         ratings double precision[],
                                         n integer DEFAULT 10,
                                         exclude_rated boolean DEFAULT true,
                                         candidates bigint[] DEFAULT NULL,
                                         exclude bigint[] DEFAULT NULL)
RETURNS TABLE (item_id bigint, score double precision)
AS 'MODULE_PATHNAME', 'mf_recommend_new_user'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_recommend(integer, bigint[], double precision[], integer, boolean, bigint[], bigint[]) IS
  'mf_ext: the n best items under model (a model_id) for a new user who rated item_ids with ratings (folded in, no retraining); exclude_rated leaves out those items; only items among candidates (when not NULL) and not in exclude are listed';

CREATE FUNCTION @extschema@.mf_recommend(model text, item_ids bigint[],
                                         ratings double precision[],
                                         n integer DEFAULT 10,
                                         exclude_rated boolean DEFAULT true,
                                         candidates bigint[] DEFAULT NULL,
                                         exclude bigint[] DEFAULT NULL)
RETURNS TABLE (item_id bigint, score double precision)
AS 'MODULE_PATHNAME', 'mf_recommend_new_user_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_recommend(text, bigint[], double precision[], integer, boolean, bigint[], bigint[]) IS
  'mf_ext: the n best items under the named model for a new user who rated item_ids with ratings (folded in, no retraining); exclude_rated leaves out those items; only items among candidates (when not NULL) and not in exclude are listed';

CREATE FUNCTION @extschema@.mf_recommend_keys(model integer, item_keys text[],
                                         ratings double precision[],
                                         n integer DEFAULT 10,
                                         exclude_rated boolean DEFAULT true,
                                         candidates text[] DEFAULT NULL,
                                         exclude text[] DEFAULT NULL)
RETURNS TABLE (item_id text, score double precision)
AS 'MODULE_PATHNAME', 'mf_recommend_keys'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_recommend_keys(integer, text[], double precision[], integer, boolean, text[], text[]) IS
  'mf_ext: as mf_recommend(integer, bigint[], double precision[], ...), with the items as text keys';

CREATE FUNCTION @extschema@.mf_recommend_keys(model text, item_keys text[],
                                         ratings double precision[],
                                         n integer DEFAULT 10,
                                         exclude_rated boolean DEFAULT true,
                                         candidates text[] DEFAULT NULL,
                                         exclude text[] DEFAULT NULL)
RETURNS TABLE (item_id text, score double precision)
AS 'MODULE_PATHNAME', 'mf_recommend_keys_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_recommend_keys(text, text[], double precision[], integer, boolean, text[], text[]) IS
  'mf_ext: as mf_recommend(text, bigint[], double precision[], ...), with the items as text keys';

CREATE FUNCTION @extschema@.mf_recommend_users(model integer, item_id bigint,
                                               n integer DEFAULT 10,
                                               exclude_rated boolean DEFAULT true,
                                               candidates bigint[] DEFAULT NULL,
                                               exclude bigint[] DEFAULT NULL)
RETURNS TABLE (user_id bigint, score double precision)
AS 'MODULE_PATHNAME', 'mf_recommend_users'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_recommend_users(integer, bigint, integer, boolean, bigint[], bigint[]) IS
  'mf_ext: the n users with the highest predicted rating of item_id under model (a model_id), score descending then user_id ascending (users for an item: a marketing list, Spark''s recommendForAllItems for one item); exclude_rated leaves out the users who rated it in the training data; only users among candidates (when not NULL) and not in exclude are listed (ids the model lacks match nothing); no rows for an unknown item';

CREATE FUNCTION @extschema@.mf_recommend_users(model integer, item_id text,
                                               n integer DEFAULT 10,
                                               exclude_rated boolean DEFAULT true,
                                               candidates text[] DEFAULT NULL,
                                               exclude text[] DEFAULT NULL)
RETURNS TABLE (user_id text, score double precision)
AS 'MODULE_PATHNAME', 'mf_recommend_users_text'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_recommend_users(integer, text, integer, boolean, text[], text[]) IS
  'mf_ext: as mf_recommend_users(integer, bigint, ...), with the item and the users as text: the keys of a model trained on text, uuid or other non-integer ids, or integer ids written as text';

CREATE FUNCTION @extschema@.mf_recommend_users(model text, item_id bigint,
                                               n integer DEFAULT 10,
                                               exclude_rated boolean DEFAULT true,
                                               candidates bigint[] DEFAULT NULL,
                                               exclude bigint[] DEFAULT NULL)
RETURNS TABLE (user_id bigint, score double precision)
AS 'MODULE_PATHNAME', 'mf_recommend_users_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_recommend_users(text, bigint, integer, boolean, bigint[], bigint[]) IS
  'mf_ext: the n users with the highest predicted rating of item_id under the named model, score descending then user_id ascending (users for an item: a marketing list, Spark''s recommendForAllItems for one item); exclude_rated leaves out the users who rated it in the training data; only users among candidates (when not NULL) and not in exclude are listed (ids the model lacks match nothing); no rows for an unknown item';

CREATE FUNCTION @extschema@.mf_recommend_users(model text, item_id text,
                                               n integer DEFAULT 10,
                                               exclude_rated boolean DEFAULT true,
                                               candidates text[] DEFAULT NULL,
                                               exclude text[] DEFAULT NULL)
RETURNS TABLE (user_id text, score double precision)
AS 'MODULE_PATHNAME', 'mf_recommend_users_text_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_recommend_users(text, text, integer, boolean, text[], text[]) IS
  'mf_ext: as mf_recommend_users(text, bigint, ...), with the item and the users as text: the keys of a model trained on text, uuid or other non-integer ids, or integer ids written as text';

-- The neighbours take min_support and shrinkage, and the factor tables keep
-- each row's support (its distinct partners), counted here from what the
-- models hold: a user's rated items, an item's raters among them.  (Views
-- over mf_similar_* must be dropped before the update: README,
-- Installation.)
ALTER TABLE @extschema@.mf_user_factors ADD COLUMN support integer;
ALTER TABLE @extschema@.mf_item_factors ADD COLUMN support integer;
UPDATE @extschema@.mf_user_factors SET support = pg_catalog.cardinality(rated_items);
UPDATE @extschema@.mf_item_factors i SET support = c.raters
FROM (SELECT u.model_id, r.item_id, pg_catalog.count(*)::integer AS raters
      FROM @extschema@.mf_user_factors u, pg_catalog.unnest(u.rated_items) AS r (item_id)
      GROUP BY 1, 2) c
WHERE i.model_id = c.model_id AND i.item_id = c.item_id;
UPDATE @extschema@.mf_item_factors SET support = 0 WHERE support IS NULL;
-- the rows changed: every backend's cached copy of a model is reloaded
UPDATE @extschema@.mf_models
SET version = pg_catalog.nextval('@extschema@.mf_model_version_seq'::pg_catalog.regclass);
COMMENT ON COLUMN @extschema@.mf_user_factors.support IS
  'mf_ext: how many distinct items the user rated in the training data (or in the source of the user''s last refit); NULL reads as 0 (mf_similar_users'' min_support, shrinkage)';
COMMENT ON COLUMN @extschema@.mf_item_factors.support IS
  'mf_ext: how many distinct users rated the item in the training data (or in the source of the item''s last refit); NULL reads as 0 (mf_similar_items'' min_support, shrinkage)';

DROP FUNCTION @extschema@.mf_similar_items(integer, bigint, integer);
DROP FUNCTION @extschema@.mf_similar_items(integer, text, integer);
DROP FUNCTION @extschema@.mf_similar_items(text, bigint, integer);
DROP FUNCTION @extschema@.mf_similar_items(text, text, integer);
DROP FUNCTION @extschema@.mf_similar_users(integer, bigint, integer);
DROP FUNCTION @extschema@.mf_similar_users(integer, text, integer);
DROP FUNCTION @extschema@.mf_similar_users(text, bigint, integer);
DROP FUNCTION @extschema@.mf_similar_users(text, text, integer);

CREATE FUNCTION @extschema@.mf_similar_items(model integer, item_id bigint, n integer DEFAULT 10,
    min_support integer DEFAULT 0, shrinkage double precision DEFAULT 0)
RETURNS TABLE (item_id bigint, similarity double precision)
AS 'MODULE_PATHNAME', 'mf_similar_items'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_similar_items(integer, bigint, integer, integer, double precision) IS
  'mf_ext: the n items whose factors are nearest to item_id''s by cosine under model (a model_id), leaving out items with fewer than min_support distinct users who rated it (column support) and multiplying each cosine by s / (s + shrinkage) for a item of support s (Koren, TKDD 2010); most similar first; no rows for an unknown item';

CREATE FUNCTION @extschema@.mf_similar_items(model text, item_id bigint, n integer DEFAULT 10,
    min_support integer DEFAULT 0, shrinkage double precision DEFAULT 0)
RETURNS TABLE (item_id bigint, similarity double precision)
AS 'MODULE_PATHNAME', 'mf_similar_items_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_similar_items(text, bigint, integer, integer, double precision) IS
  'mf_ext: the n items whose factors are nearest to item_id''s by cosine under the named model, leaving out items with fewer than min_support distinct users who rated it (column support) and multiplying each cosine by s / (s + shrinkage) for a item of support s (Koren, TKDD 2010); most similar first; no rows for an unknown item';

CREATE FUNCTION @extschema@.mf_similar_items(model integer, item_id text, n integer DEFAULT 10,
    min_support integer DEFAULT 0, shrinkage double precision DEFAULT 0)
RETURNS TABLE (item_id text, similarity double precision)
AS 'MODULE_PATHNAME', 'mf_similar_items_text'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_similar_items(integer, text, integer, integer, double precision) IS
  'mf_ext: as mf_similar_items(integer, bigint, integer, integer, double precision), with the items as text: the keys of a model trained on text, uuid or other non-integer ids, or integer ids written as text';

CREATE FUNCTION @extschema@.mf_similar_items(model text, item_id text, n integer DEFAULT 10,
    min_support integer DEFAULT 0, shrinkage double precision DEFAULT 0)
RETURNS TABLE (item_id text, similarity double precision)
AS 'MODULE_PATHNAME', 'mf_similar_items_text_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_similar_items(text, text, integer, integer, double precision) IS
  'mf_ext: as mf_similar_items(text, bigint, integer, integer, double precision), with the items as text: the keys of a model trained on text, uuid or other non-integer ids, or integer ids written as text';

CREATE FUNCTION @extschema@.mf_similar_users(model integer, user_id bigint, n integer DEFAULT 10,
    min_support integer DEFAULT 0, shrinkage double precision DEFAULT 0)
RETURNS TABLE (user_id bigint, similarity double precision)
AS 'MODULE_PATHNAME', 'mf_similar_users'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_similar_users(integer, bigint, integer, integer, double precision) IS
  'mf_ext: the n users whose factors are nearest to user_id''s by cosine under model (a model_id), leaving out users with fewer than min_support distinct items the user rated (column support) and multiplying each cosine by s / (s + shrinkage) for a user of support s (Koren, TKDD 2010); most similar first; no rows for an unknown user';

CREATE FUNCTION @extschema@.mf_similar_users(model text, user_id bigint, n integer DEFAULT 10,
    min_support integer DEFAULT 0, shrinkage double precision DEFAULT 0)
RETURNS TABLE (user_id bigint, similarity double precision)
AS 'MODULE_PATHNAME', 'mf_similar_users_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_similar_users(text, bigint, integer, integer, double precision) IS
  'mf_ext: the n users whose factors are nearest to user_id''s by cosine under the named model, leaving out users with fewer than min_support distinct items the user rated (column support) and multiplying each cosine by s / (s + shrinkage) for a user of support s (Koren, TKDD 2010); most similar first; no rows for an unknown user';

CREATE FUNCTION @extschema@.mf_similar_users(model integer, user_id text, n integer DEFAULT 10,
    min_support integer DEFAULT 0, shrinkage double precision DEFAULT 0)
RETURNS TABLE (user_id text, similarity double precision)
AS 'MODULE_PATHNAME', 'mf_similar_users_text'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_similar_users(integer, text, integer, integer, double precision) IS
  'mf_ext: as mf_similar_users(integer, bigint, integer, integer, double precision), with the users as text: the keys of a model trained on text, uuid or other non-integer ids, or integer ids written as text';

CREATE FUNCTION @extschema@.mf_similar_users(model text, user_id text, n integer DEFAULT 10,
    min_support integer DEFAULT 0, shrinkage double precision DEFAULT 0)
RETURNS TABLE (user_id text, similarity double precision)
AS 'MODULE_PATHNAME', 'mf_similar_users_text_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_similar_users(text, text, integer, integer, double precision) IS
  'mf_ext: as mf_similar_users(text, bigint, integer, integer, double precision), with the users as text: the keys of a model trained on text, uuid or other non-integer ids, or integer ids written as text';

-- The refits take the columns to read as arguments: the source and the
-- columns a model records are used only when no other role can write
-- mf_models (any that can could point them at what the caller may read);
-- and the users (items) to refit, read with their whole history.
-- Dropped and created again: apply GRANT or REVOKE on them again.
DROP FUNCTION @extschema@.mf_refit_users(integer, regclass);
DROP FUNCTION @extschema@.mf_refit_users(text, regclass);
DROP FUNCTION @extschema@.mf_refit_items(integer, regclass);
DROP FUNCTION @extschema@.mf_refit_items(text, regclass);
CREATE FUNCTION @extschema@.mf_refit_users(model integer, source regclass DEFAULT NULL,
                                           user_col name DEFAULT NULL, item_col name DEFAULT NULL,
                                           rating_col name DEFAULT NULL, users "any" DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'mf_refit_users'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_refit_users(integer, regclass, name, name, name, "any") IS
  'mf_ext: recomputes (or adds) the factors of every user with ratings in source with the stored item factors held fixed, as training''s user half-step would; returns how many users were refitted. source and the columns default to the model''s recorded ones, used only when the caller owns that relation and no other role can write mf_models. With users, a one-dimensional array of user ids (integers, text or uuid, no NULLs; an untyped parameter needs a type: $1::bigint[]), only those users are read from source, all their rows, and refitted: the safe way to refit the users with new ratings from the model''s own source; ids without ratings of known items are left as they are, with a NOTICE';

CREATE FUNCTION @extschema@.mf_refit_users(model text, source regclass DEFAULT NULL,
                                           user_col name DEFAULT NULL, item_col name DEFAULT NULL,
                                           rating_col name DEFAULT NULL, users "any" DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'mf_refit_users_by_name'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_refit_users(text, regclass, name, name, name, "any") IS
  'mf_ext: recomputes (or adds) the factors of every user with ratings in source with the stored item factors held fixed, as training''s user half-step would; returns how many users were refitted. source and the columns default to the model''s recorded ones, used only when the caller owns that relation and no other role can write mf_models. With users, a one-dimensional array of user ids (integers, text or uuid, no NULLs; an untyped parameter needs a type: $1::bigint[]), only those users are read from source, all their rows, and refitted: the safe way to refit the users with new ratings from the model''s own source; ids without ratings of known items are left as they are, with a NOTICE';

CREATE FUNCTION @extschema@.mf_refit_items(model integer, source regclass DEFAULT NULL,
                                           user_col name DEFAULT NULL, item_col name DEFAULT NULL,
                                           rating_col name DEFAULT NULL, items "any" DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'mf_refit_items'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_refit_items(integer, regclass, name, name, name, "any") IS
  'mf_ext: recomputes (or adds) the factors of every item with ratings in source with the stored user factors held fixed, as training''s item half-step would; returns how many items were refitted. source and the columns default to the model''s recorded ones, used only when the caller owns that relation and no other role can write mf_models. With items, a one-dimensional array of item ids (integers, text or uuid, no NULLs; an untyped parameter needs a type: $1::bigint[]), only those items are read from source, all their rows, and refitted: the safe way to refit the items with new ratings from the model''s own source; ids without ratings of known users are left as they are, with a NOTICE';

CREATE FUNCTION @extschema@.mf_refit_items(model text, source regclass DEFAULT NULL,
                                           user_col name DEFAULT NULL, item_col name DEFAULT NULL,
                                           rating_col name DEFAULT NULL, items "any" DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'mf_refit_items_by_name'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_refit_items(text, regclass, name, name, name, "any") IS
  'mf_ext: recomputes (or adds) the factors of every item with ratings in source with the stored user factors held fixed, as training''s item half-step would; returns how many items were refitted. source and the columns default to the model''s recorded ones, used only when the caller owns that relation and no other role can write mf_models. With items, a one-dimensional array of item ids (integers, text or uuid, no NULLs; an untyped parameter needs a type: $1::bigint[]), only those items are read from source, all their rows, and refitted: the safe way to refit the items with new ratings from the model''s own source; ids without ratings of known users are left as they are, with a NOTICE';


-- Who recorded a model's source and columns, stamped by a trigger (see
-- sql/mf_ext.sql); rows stored before this version record no one.
ALTER TABLE @extschema@.mf_models ADD COLUMN source_recorded_by regrole;

-- The role whose training last set a model's source and columns: a trigger
-- stamps the training's own write of the model row with its role, and any
-- other write that sets them (an UPDATE, INSERT or COPY by whoever can
-- write mf_models, a restore from a dump) with NULL, so that no writer can
-- make them look like another role's.  Refits follow the recorded source
-- and columns only for the role that recorded them.
CREATE FUNCTION @extschema@.mf_models_provenance()
RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'mf_models_provenance';
COMMENT ON FUNCTION @extschema@.mf_models_provenance() IS
  'mf_ext: trigger of mf_models: a write that sets source, user_col, item_col, rating_col or trained_at gets source_recorded_by = the current role when it is a training''s own write of its model row, else NULL (an UPDATE, INSERT, COPY or restore records no one)';
CREATE TRIGGER mf_models_provenance BEFORE INSERT OR UPDATE ON @extschema@.mf_models
FOR EACH ROW EXECUTE FUNCTION @extschema@.mf_models_provenance();
COMMENT ON COLUMN @extschema@.mf_models.source_recorded_by IS
  'mf_ext: the role whose training last set source, user_col, item_col and rating_col, or NULL when another write set them, set by the trigger mf_models_provenance; refits without those arguments read them only for that role';

-- Early stopping on the validation RMSE (mf_train's patience), and the
-- iteration whose factors it stored; the models stored before had none,
-- and so has a model row made by hand (the default stays).
ALTER TABLE @extschema@.mf_models
    ADD COLUMN patience       integer NOT NULL DEFAULT 0,
    ADD COLUMN best_iteration integer;

-- The biases' own lambda and lambda per rating (issue 16): the models stored
-- before had neither (NULL: the factors' lambda; 0).
ALTER TABLE @extschema@.mf_models
    ADD COLUMN bias_lambda       double precision,
    ADD COLUMN lambda_per_rating double precision NOT NULL DEFAULT 0,
    ADD COLUMN implicit_weight   double precision NOT NULL DEFAULT 0,
    ADD COLUMN clip              boolean NOT NULL DEFAULT false,
    ADD COLUMN rating_min        double precision,
    ADD COLUMN rating_max        double precision;
ALTER TABLE @extschema@.mf_user_factors ADD COLUMN implicit_factors double precision[],
    ALTER COLUMN implicit_factors SET STORAGE EXTERNAL;
ALTER TABLE @extschema@.mf_item_factors ADD COLUMN implicit_factors double precision[],
    ALTER COLUMN implicit_factors SET STORAGE EXTERNAL;
COMMENT ON COLUMN @extschema@.mf_models.bias_lambda IS
  'mf_ext: with biases, the lambda every user''s and item''s bias was regularised with; NULL: its row''s factor lambda (as before 0.5)';
COMMENT ON COLUMN @extschema@.mf_models.lambda_per_rating IS
  'mf_ext: added to lambda per rating of a row: a row of n ratings regularised its factors with lambda + lambda_per_rating * n (lambda * n + lambda_per_rating * n with weighted_lambda); 0: lambda alone';
COMMENT ON COLUMN @extschema@.mf_models.implicit_weight IS
  'mf_ext: w of the implicit information (which items each user rated, Koren 2008''s SVD++ in ALS form) the model was trained with; 0: none. Its implicit factors are in mf_user_factors.implicit_factors and mf_item_factors.implicit_factors';
COMMENT ON COLUMN @extschema@.mf_models.clip IS
  'mf_ext: whether predictions (mf_predict, and the RMSE and MAE of validation and mf_evaluate) are clipped to [rating_min, rating_max], the lowest and highest training rating; rankings order by the unclipped score';
COMMENT ON COLUMN @extschema@.mf_user_factors.implicit_factors IS
  'mf_ext: with implicit_weight, the user''s implicit factors z (k numbers): solved from the items'' factors over the items the user rated; NULL without';
COMMENT ON COLUMN @extschema@.mf_item_factors.implicit_factors IS
  'mf_ext: with implicit_weight, the item''s implicit factors y (k numbers), which fold-in reads: solved from the users'' factors over the users who rated it; NULL without';
COMMENT ON COLUMN @extschema@.mf_models.patience IS
  'mf_ext: early stopping: the training stopped once the validation RMSE had not fallen below its lowest for this many iterations in a row, and stored the factors of the lowest (best_iteration); 0: no early stopping';
COMMENT ON COLUMN @extschema@.mf_models.best_iteration IS
  'mf_ext: with patience, the iteration (from 1, an index of loss and validation_rmse) of the lowest validation RMSE, whose factors and biases are stored; NULL without patience (the last iteration''s are)';

-- mf_train's options default to NULL, "not given": a retraining keeps the
-- options of the model's last training that the call does not name, a
-- first training takes the defaults it took before; and it takes patience
-- (early stopping).  A new argument: the function is dropped and created
-- again (apply GRANT or REVOKE on it again).
DROP FUNCTION @extschema@.mf_train(regclass, integer, double precision, integer, name, name, name, text, boolean, integer, boolean, boolean, boolean, double precision, regclass, text, double precision, text, boolean);
-- Every option defaults to NULL, "not given": a first training takes the
-- value in the comment beside it, a retraining of a model (the same
-- model_name) the value of the model's last training (src/train.c).
CREATE FUNCTION @extschema@.mf_train(
    source           regclass,
    k                integer          DEFAULT NULL,   -- 10
    lambda           double precision DEFAULT NULL,   -- 0.1
    iterations       integer          DEFAULT NULL,   -- 10
    user_col         name             DEFAULT NULL,   -- 'user_id'
    item_col         name             DEFAULT NULL,   -- 'item_id'
    rating_col       name             DEFAULT NULL,   -- 'rating'
    model_name       text             DEFAULT NULL,   -- the source relation's name
    warm_start       boolean          DEFAULT false,
    seed             integer          DEFAULT NULL,   -- 0
    double_precision boolean          DEFAULT NULL,   -- false
    biases           boolean          DEFAULT NULL,   -- false
    weighted_lambda  boolean          DEFAULT NULL,   -- false
    tolerance        double precision DEFAULT NULL,   -- 0
    validation       regclass         DEFAULT NULL,   -- none
    feedback         text             DEFAULT NULL,   -- 'explicit'
    alpha            double precision DEFAULT NULL,   -- 40
    solver           text             DEFAULT NULL,   -- 'cholesky' for explicit, 'cg' for implicit
    nonnegative      boolean          DEFAULT NULL,   -- false
    patience         integer          DEFAULT NULL,   -- 0: no early stopping
    bias_lambda      double precision DEFAULT NULL,   -- lambda's (-1 returns to it)
    lambda_per_rating double precision DEFAULT NULL,  -- 0
    implicit_weight  double precision DEFAULT NULL,   -- 0: none
    clip             boolean          DEFAULT NULL)   -- false
RETURNS integer
AS 'MODULE_PATHNAME', 'mf_train'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_train(regclass, integer, double precision, integer, name, name, name, text, boolean, integer, boolean, boolean, boolean, double precision, regclass, text, double precision, text, boolean, integer, double precision, double precision, double precision, boolean) IS
  'mf_ext: trains (or retrains, keeping its id) the model model_name (default: the source relation''s name) by alternating least squares on source(user_col, item_col, rating_col): explicit ratings (with biases and ALS-WR lambda if asked) or implicit feedback with confidence 1 + alpha * rating, each row solved by Cholesky, conjugate gradient or, for non-negative factors, coordinate descent; stops early when J falls by less than tolerance, scores validation every iteration, and with patience stops once the validation RMSE has not fallen below its lowest for that many iterations and stores the factors of the lowest; returns the model_id.  An option not given (NULL) is, for a model retrained, that of its last training (a NOTICE lists those that differ from a first training''s, and what changes), else a first training''s: k 10, lambda 0.1, iterations 10, columns user_id, item_id, rating, seed 0, single precision, no biases, plain lambda, tolerance 0, explicit feedback, alpha 40, solver by feedback, not non-negative, patience 0 (none), biases regularised as the factors (bias_lambda), lambda_per_rating 0, implicit_weight 0, not clipped.  With biases, bias_lambda >= 0 regularises every bias with that lambda instead of its row''s; lambda_per_rating >= 0 adds that much to a row''s factor lambda per rating of the row (lambda + lambda_per_rating * n); implicit_weight w > 0 adds which items each user rated as implicit information (Koren 2008''s SVD++ in ALS form: implicit factors y per item and z per user, stored in implicit_factors; predictions stay mu + b_u + c_i + u . v); clip := true clips mf_predict''s predictions, and the RMSE and MAE of validation, mf_evaluate and mf_cross_validate, to the training ratings'' range (stored in rating_min and rating_max; rankings are unchanged)';

-- Training history spans a model's trainings (mf_model_history); a model
-- trained before keeps its last training as run 1.  mf_training_history
-- returns the run too, so it is created anew.
-- Every training of a model, iteration by iteration, run after run; kept
-- while the model is (mf_training_history reads it).
CREATE TABLE @extschema@.mf_model_history (
    model_id        integer NOT NULL REFERENCES @extschema@.mf_models ON DELETE CASCADE,
    run             integer NOT NULL CHECK (run >= 1),
    iteration       integer NOT NULL CHECK (iteration >= 1),
    warm_start      boolean NOT NULL,
    loss            double precision NOT NULL,
    train_rmse      double precision,
    validation_rmse double precision,
    seconds         double precision,
    kept            boolean NOT NULL,
    trained_at      timestamptz NOT NULL,
    PRIMARY KEY (model_id, run, iteration)
);
COMMENT ON TABLE @extschema@.mf_model_history IS
  'mf_ext: one row per iteration of every training of a model (0.5): run 1 for its first training and one more for each retraining; iterations numbered from 1, a warm start''s after the one whose factors the run it started from kept; J (loss), the training RMSE, the validation RMSE (NULL without validation), seconds, and whether the run kept this iteration''s factors (kept: one per run, its last, or with patience its best)';

INSERT INTO @extschema@.mf_model_history
    (model_id, run, iteration, warm_start, loss, train_rmse, validation_rmse, seconds, kept,
     trained_at)
SELECT m.model_id, 1, h.n::integer, m.warm_start, h.j, h.train, h.held_out, h.s,
       h.n = m.iterations_run, m.trained_at
FROM @extschema@.mf_models m,
     unnest(m.loss, m.train_rmse_history, m.validation_rmse, m.iteration_seconds)
         WITH ORDINALITY AS h (j, train, held_out, s, n)
WHERE h.n <= m.iterations_run AND h.j IS NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.mf_model_history', '');

DROP FUNCTION @extschema@.mf_training_history(text);
DROP FUNCTION @extschema@.mf_training_history(integer);
-- Raises 42501 with detail and a hint saying what to grant, unless the
-- caller holds privilege on every one of columns of the extension's table
-- relation, or with columns NULL on the table: the checks of the PL/pgSQL
-- functions that read and write the tables.
CREATE FUNCTION @extschema@.mf_require_privilege(relation text, privilege text, columns text[],
                                                 detail text)
RETURNS void
LANGUAGE plpgsql STABLE CALLED ON NULL INPUT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    qualified text := '@extschema@.' || pg_catalog.quote_ident(relation);  -- (not a format: the schema's name may hold a %)
    missing text;  -- the first of columns the caller lacks the privilege on
BEGIN
    IF columns IS NULL THEN
        IF pg_catalog.has_table_privilege(qualified, privilege) THEN
            RETURN;
        END IF;
    ELSE
        SELECT c.name INTO missing FROM unnest(columns) WITH ORDINALITY AS c (name, n)
        WHERE NOT pg_catalog.has_column_privilege(qualified, c.name, privilege)
        ORDER BY c.n LIMIT 1;
        IF NOT FOUND THEN
            RETURN;
        END IF;
    END IF;
    RAISE EXCEPTION 'permission denied for table %', relation
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = CASE WHEN missing IS NULL THEN detail
                       ELSE pg_catalog.format('%s The role may not %s its column %s.', detail,
                                              CASE privilege WHEN 'SELECT' THEN 'read'
                                                   ELSE pg_catalog.lower(privilege) END,
                                              missing) END,
              HINT = pg_catalog.format('Ask the extension''s owner to grant %s on %s (see Privileges in the README).',
                                       privilege, qualified);
END
$$;
COMMENT ON FUNCTION @extschema@.mf_require_privilege(text, text, text[], text) IS
  'mf_ext (internal): raises 42501 with the detail given and a hint saying what to grant, unless the caller holds the privilege on the given columns of the extension''s table relation (on the table with columns NULL)';

CREATE FUNCTION @extschema@.mf_training_history(model integer)
RETURNS TABLE (run integer, iteration integer, loss double precision,
               train_rmse double precision, validation_rmse double precision,
               seconds double precision, kept boolean)
LANGUAGE plpgsql STABLE CALLED ON NULL INPUT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF model IS NULL THEN
        RAISE EXCEPTION 'model must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass a model_id or name from mf_models.';
    END IF;
    PERFORM @extschema@.mf_require_privilege('mf_models', 'SELECT',
        ARRAY['model_id', 'best_iteration', 'iterations_run', 'loss', 'train_rmse_history',
              'validation_rmse', 'iteration_seconds'],
        'mf_training_history reads the model''s last training from mf_models.');
    PERFORM FROM @extschema@.mf_models m WHERE m.model_id = model;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model % does not exist', model
            USING ERRCODE = 'undefined_object',
                  HINT = 'See SELECT model_id, name FROM mf_models.';
    END IF;
    PERFORM @extschema@.mf_require_privilege('mf_model_history', 'SELECT',
        ARRAY['model_id', 'run', 'iteration', 'loss', 'train_rmse', 'validation_rmse', 'seconds',
              'kept'], 'mf_training_history reads every training''s iterations from mf_model_history.');
    -- (a model restored from a dump of a version before 0.5 has no history
    -- rows until it is retrained: its last training, as the update would
    -- have copied it; not where row-level security may hide the rows, and
    -- a later run would be shown as run 1)
    RETURN QUERY
        SELECT h.run, h.iteration, h.loss, h.train_rmse, h.validation_rmse, h.seconds, h.kept
        FROM @extschema@.mf_model_history h
        WHERE h.model_id = model
        UNION ALL
        SELECT 1, a.n::integer, a.j, a.t, a.v, a.s,
               a.n = coalesce(m.best_iteration, m.iterations_run)
        FROM @extschema@.mf_models m,
             unnest(m.loss, m.train_rmse_history, m.validation_rmse, m.iteration_seconds)
                 WITH ORDINALITY AS a (j, t, v, s, n)
        WHERE m.model_id = model AND a.n <= m.iterations_run AND a.j IS NOT NULL
          AND NOT EXISTS (SELECT FROM @extschema@.mf_model_history x WHERE x.model_id = model)
          AND NOT pg_catalog.row_security_active('@extschema@.mf_model_history')
        ORDER BY 1, 2;
END
$$;
COMMENT ON FUNCTION @extschema@.mf_training_history(integer) IS
  'mf_ext: per iteration of every training of the model (a model_id), run after run (mf_model_history): the run (1 for its first training), the iteration (a warm start''s follow the one whose factors the run it started from kept), J, the training RMSE, the validation RMSE (NULL without validation), seconds, and whether the run kept this iteration''s factors (one per run: its last, or with patience its best); models trained before 0.5 have their last training as run 1, and before 0.3 only J and seconds';

CREATE FUNCTION @extschema@.mf_training_history(model text)
RETURNS TABLE (run integer, iteration integer, loss double precision,
               train_rmse double precision, validation_rmse double precision,
               seconds double precision, kept boolean)
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
    PERFORM @extschema@.mf_require_privilege('mf_models', 'SELECT', ARRAY['model_id', 'name'],
        'mf_training_history finds the model''s id by its name in mf_models.');
    SELECT m.model_id INTO id FROM @extschema@.mf_models m WHERE m.name = model;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model % does not exist',  -- as a JSON string, a long name cut within 100 bytes
                pg_catalog.to_json(CASE WHEN pg_catalog.octet_length(model) <= 100 THEN model
                     ELSE (SELECT pg_catalog.left(model, pg_catalog.max(n))
                           FROM pg_catalog.generate_series(1, 100) n
                           WHERE pg_catalog.octet_length(pg_catalog.left(model, n)) <= 100) || '...' END)
            USING ERRCODE = 'undefined_object',
                  HINT = 'See SELECT model_id, name FROM mf_models.';
    END IF;
    RETURN QUERY SELECT * FROM @extschema@.mf_training_history(id);
END
$$;
COMMENT ON FUNCTION @extschema@.mf_training_history(text) IS
  'mf_ext: per iteration of every training of the named model, run after run: the run, the iteration, J, the training RMSE, the validation RMSE (NULL without validation), seconds, and whether the run kept this iteration''s factors';

-- Progress of long calls, for every session (0.5).
-- A long call (mf_train, mf_cross_validate, the refits, mf_recommend_all)
-- writes its progress after the statement's text in its backend's activity,
-- as a JSON object in a comment (src/progress.h); this reads it back, or
-- returns no row for text that holds no such report (or one that does not
-- read: any activity text can be made to look like one).
CREATE FUNCTION @extschema@.mf_progress_report(activity text)
RETURNS TABLE (function text, model text, part text, phase text, step bigint, steps bigint,
               unit text, side text, rows_done bigint, rows_total bigint,
               loss double precision, validation_rmse double precision,
               best_iteration integer, elapsed_seconds double precision,
               seconds_left double precision)
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE  -- its EXCEPTION block is a subtransaction
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    report jsonb;
    now double precision := date_part('epoch', clock_timestamp());
BEGIN
    report := substring(activity, '^.*/\* mf_ext progress (\{.*\}) \*/$')::jsonb;
    IF report IS NULL OR jsonb_typeof(report) <> 'object' THEN
        RETURN;
    END IF;
    RETURN QUERY
        SELECT r.function, r.model, r.part, r.phase, r.step, r.steps, r.unit, r.side,
               r.rows_done, r.rows_total, r.loss,
               r.validation_rmse, r.best_iteration, now - r.started,
               CASE WHEN r.seconds_left IS NOT NULL
                    THEN GREATEST(0, r.seconds_left - (now - r.updated)) END
        FROM jsonb_to_record(report)
             AS r (function text, model text, part text, phase text, step bigint, steps bigint,
                   unit text, side text, rows_done bigint, rows_total bigint,
                   loss double precision, validation_rmse double precision,
                   best_iteration integer, started double precision,
                   updated double precision, seconds_left double precision);
EXCEPTION WHEN OTHERS THEN
    RETURN;                     -- a statement that only looks like a report
END
$$;
COMMENT ON FUNCTION @extschema@.mf_progress_report(text) IS
  'mf_ext: the progress report of a long mf_ext call at the end of a backend''s activity text (pg_stat_activity.query), or no row; read by the view mf_progress';

CREATE VIEW @extschema@.mf_progress WITH (security_invoker = true) AS
SELECT a.pid, a.usename AS role, p.*
FROM pg_catalog.pg_stat_activity a
CROSS JOIN LATERAL @extschema@.mf_progress_report(a.query) p
WHERE a.state = 'active' AND a.query LIKE '%/* mf_ext progress {%';
COMMENT ON VIEW @extschema@.mf_progress IS
  'mf_ext: one row per backend running mf_train, mf_cross_validate, mf_refit_users, mf_refit_items or mf_recommend_all that the caller may see in pg_stat_activity (its own role''s; every one with pg_read_all_stats): the model, the part (a cross-validation''s fold and fit), the phase (options, reading, indexing, iterating, solving, storing, scoring), step of steps units (iteration, user, row) done, within an iteration (or a refit''s solve) the side being solved (user, item) and its rows done of its rows (rows_done, rows_total), J and the validation RMSE of the last iteration, with patience the iteration of the lowest validation RMSE so far (best_iteration), seconds since the call started and an estimate of the seconds left in the phase';

-- Ids as their own types: mf_predict takes every pair of bigint, text and
-- uuid ids; mf_recommend, mf_recommend_users and mf_similar_* a uuid.
COMMENT ON FUNCTION @extschema@.mf_predict(integer, text, text) IS
  'mf_ext: as mf_predict(integer, bigint, bigint), for ids given as text (varchar, char and name too): the keys of a model trained on text or other non-integer ids, or integer ids written as text (22P02 when one is not); uuids and mixed pairs have forms of their own';
COMMENT ON FUNCTION @extschema@.mf_predict(text, text, text) IS
  'mf_ext: as mf_predict(text, bigint, bigint), for ids given as text (varchar, char and name too): the keys of a model trained on text or other non-integer ids, or integer ids written as text (22P02 when one is not); uuids and mixed pairs have forms of their own';

-- Every pair of id types, so that columns of any id type need no cast: one
-- C function per kind of model argument reads the ids' types (src/serve.c).

CREATE FUNCTION @extschema@.mf_predict(model integer, user_id bigint, item_id text)
RETURNS double precision
AS 'MODULE_PATHNAME', 'mf_predict'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_predict(integer, bigint, text) IS
  'mf_ext: as mf_predict(integer, bigint, bigint), the user id bigint and the item id text: any pair of bigint, text and uuid ids has a form, so that id columns of any type need no cast (smallint and integer widen to bigint; varchar, char and name become text); an integer id names a row of a side of integer ids, a uuid a row of a side of text keys by its text form (42804 otherwise), text a key, or on a side of integer ids an integer written as text (22P02 when it is not one)';

CREATE FUNCTION @extschema@.mf_predict(model integer, user_id bigint, item_id uuid)
RETURNS double precision
AS 'MODULE_PATHNAME', 'mf_predict'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_predict(integer, bigint, uuid) IS
  'mf_ext: as mf_predict(integer, bigint, bigint), the user id bigint and the item id uuid: any pair of bigint, text and uuid ids has a form, so that id columns of any type need no cast (smallint and integer widen to bigint; varchar, char and name become text); an integer id names a row of a side of integer ids, a uuid a row of a side of text keys by its text form (42804 otherwise), text a key, or on a side of integer ids an integer written as text (22P02 when it is not one)';

CREATE FUNCTION @extschema@.mf_predict(model integer, user_id text, item_id bigint)
RETURNS double precision
AS 'MODULE_PATHNAME', 'mf_predict'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_predict(integer, text, bigint) IS
  'mf_ext: as mf_predict(integer, bigint, bigint), the user id text and the item id bigint: any pair of bigint, text and uuid ids has a form, so that id columns of any type need no cast (smallint and integer widen to bigint; varchar, char and name become text); an integer id names a row of a side of integer ids, a uuid a row of a side of text keys by its text form (42804 otherwise), text a key, or on a side of integer ids an integer written as text (22P02 when it is not one)';

CREATE FUNCTION @extschema@.mf_predict(model integer, user_id text, item_id uuid)
RETURNS double precision
AS 'MODULE_PATHNAME', 'mf_predict'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_predict(integer, text, uuid) IS
  'mf_ext: as mf_predict(integer, bigint, bigint), the user id text and the item id uuid: any pair of bigint, text and uuid ids has a form, so that id columns of any type need no cast (smallint and integer widen to bigint; varchar, char and name become text); an integer id names a row of a side of integer ids, a uuid a row of a side of text keys by its text form (42804 otherwise), text a key, or on a side of integer ids an integer written as text (22P02 when it is not one)';

CREATE FUNCTION @extschema@.mf_predict(model integer, user_id uuid, item_id bigint)
RETURNS double precision
AS 'MODULE_PATHNAME', 'mf_predict'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_predict(integer, uuid, bigint) IS
  'mf_ext: as mf_predict(integer, bigint, bigint), the user id uuid and the item id bigint: any pair of bigint, text and uuid ids has a form, so that id columns of any type need no cast (smallint and integer widen to bigint; varchar, char and name become text); an integer id names a row of a side of integer ids, a uuid a row of a side of text keys by its text form (42804 otherwise), text a key, or on a side of integer ids an integer written as text (22P02 when it is not one)';

CREATE FUNCTION @extschema@.mf_predict(model integer, user_id uuid, item_id text)
RETURNS double precision
AS 'MODULE_PATHNAME', 'mf_predict'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_predict(integer, uuid, text) IS
  'mf_ext: as mf_predict(integer, bigint, bigint), the user id uuid and the item id text: any pair of bigint, text and uuid ids has a form, so that id columns of any type need no cast (smallint and integer widen to bigint; varchar, char and name become text); an integer id names a row of a side of integer ids, a uuid a row of a side of text keys by its text form (42804 otherwise), text a key, or on a side of integer ids an integer written as text (22P02 when it is not one)';

CREATE FUNCTION @extschema@.mf_predict(model integer, user_id uuid, item_id uuid)
RETURNS double precision
AS 'MODULE_PATHNAME', 'mf_predict'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_predict(integer, uuid, uuid) IS
  'mf_ext: as mf_predict(integer, bigint, bigint), the user id uuid and the item id uuid: any pair of bigint, text and uuid ids has a form, so that id columns of any type need no cast (smallint and integer widen to bigint; varchar, char and name become text); an integer id names a row of a side of integer ids, a uuid a row of a side of text keys by its text form (42804 otherwise), text a key, or on a side of integer ids an integer written as text (22P02 when it is not one)';

CREATE FUNCTION @extschema@.mf_predict(model text, user_id bigint, item_id text)
RETURNS double precision
AS 'MODULE_PATHNAME', 'mf_predict_by_name'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_predict(text, bigint, text) IS
  'mf_ext: as mf_predict(text, bigint, bigint), the user id bigint and the item id text: any pair of bigint, text and uuid ids has a form, so that id columns of any type need no cast (smallint and integer widen to bigint; varchar, char and name become text); an integer id names a row of a side of integer ids, a uuid a row of a side of text keys by its text form (42804 otherwise), text a key, or on a side of integer ids an integer written as text (22P02 when it is not one)';

CREATE FUNCTION @extschema@.mf_predict(model text, user_id bigint, item_id uuid)
RETURNS double precision
AS 'MODULE_PATHNAME', 'mf_predict_by_name'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_predict(text, bigint, uuid) IS
  'mf_ext: as mf_predict(text, bigint, bigint), the user id bigint and the item id uuid: any pair of bigint, text and uuid ids has a form, so that id columns of any type need no cast (smallint and integer widen to bigint; varchar, char and name become text); an integer id names a row of a side of integer ids, a uuid a row of a side of text keys by its text form (42804 otherwise), text a key, or on a side of integer ids an integer written as text (22P02 when it is not one)';

CREATE FUNCTION @extschema@.mf_predict(model text, user_id text, item_id bigint)
RETURNS double precision
AS 'MODULE_PATHNAME', 'mf_predict_by_name'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_predict(text, text, bigint) IS
  'mf_ext: as mf_predict(text, bigint, bigint), the user id text and the item id bigint: any pair of bigint, text and uuid ids has a form, so that id columns of any type need no cast (smallint and integer widen to bigint; varchar, char and name become text); an integer id names a row of a side of integer ids, a uuid a row of a side of text keys by its text form (42804 otherwise), text a key, or on a side of integer ids an integer written as text (22P02 when it is not one)';

CREATE FUNCTION @extschema@.mf_predict(model text, user_id text, item_id uuid)
RETURNS double precision
AS 'MODULE_PATHNAME', 'mf_predict_by_name'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_predict(text, text, uuid) IS
  'mf_ext: as mf_predict(text, bigint, bigint), the user id text and the item id uuid: any pair of bigint, text and uuid ids has a form, so that id columns of any type need no cast (smallint and integer widen to bigint; varchar, char and name become text); an integer id names a row of a side of integer ids, a uuid a row of a side of text keys by its text form (42804 otherwise), text a key, or on a side of integer ids an integer written as text (22P02 when it is not one)';

CREATE FUNCTION @extschema@.mf_predict(model text, user_id uuid, item_id bigint)
RETURNS double precision
AS 'MODULE_PATHNAME', 'mf_predict_by_name'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_predict(text, uuid, bigint) IS
  'mf_ext: as mf_predict(text, bigint, bigint), the user id uuid and the item id bigint: any pair of bigint, text and uuid ids has a form, so that id columns of any type need no cast (smallint and integer widen to bigint; varchar, char and name become text); an integer id names a row of a side of integer ids, a uuid a row of a side of text keys by its text form (42804 otherwise), text a key, or on a side of integer ids an integer written as text (22P02 when it is not one)';

CREATE FUNCTION @extschema@.mf_predict(model text, user_id uuid, item_id text)
RETURNS double precision
AS 'MODULE_PATHNAME', 'mf_predict_by_name'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_predict(text, uuid, text) IS
  'mf_ext: as mf_predict(text, bigint, bigint), the user id uuid and the item id text: any pair of bigint, text and uuid ids has a form, so that id columns of any type need no cast (smallint and integer widen to bigint; varchar, char and name become text); an integer id names a row of a side of integer ids, a uuid a row of a side of text keys by its text form (42804 otherwise), text a key, or on a side of integer ids an integer written as text (22P02 when it is not one)';

CREATE FUNCTION @extschema@.mf_predict(model text, user_id uuid, item_id uuid)
RETURNS double precision
AS 'MODULE_PATHNAME', 'mf_predict_by_name'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_predict(text, uuid, uuid) IS
  'mf_ext: as mf_predict(text, bigint, bigint), the user id uuid and the item id uuid: any pair of bigint, text and uuid ids has a form, so that id columns of any type need no cast (smallint and integer widen to bigint; varchar, char and name become text); an integer id names a row of a side of integer ids, a uuid a row of a side of text keys by its text form (42804 otherwise), text a key, or on a side of integer ids an integer written as text (22P02 when it is not one)';

CREATE FUNCTION @extschema@.mf_recommend(model integer, user_id uuid,
                                         n integer DEFAULT 10,
                                         exclude_rated boolean DEFAULT true,
                                         candidates text[] DEFAULT NULL,
                                         exclude text[] DEFAULT NULL)
RETURNS TABLE (item_id text, score double precision)
AS 'MODULE_PATHNAME', 'mf_recommend_text'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_recommend(integer, uuid, integer, boolean, text[], text[]) IS
  'mf_ext: as mf_recommend(integer, text, integer, boolean, text[], text[]), the user given as a uuid: a row of a side of text keys (a model trained on uuid ids), matched by its text form; 42804 on a side of integer ids; no rows for NULL or a uuid the model lacks. Answers with ids as text; candidates and exclude stay text[] (a uuid[] form beside them would make an untyped array literal ambiguous): pass uuid arrays as ::text[]';

CREATE FUNCTION @extschema@.mf_recommend(model text, user_id uuid,
                                         n integer DEFAULT 10,
                                         exclude_rated boolean DEFAULT true,
                                         candidates text[] DEFAULT NULL,
                                         exclude text[] DEFAULT NULL)
RETURNS TABLE (item_id text, score double precision)
AS 'MODULE_PATHNAME', 'mf_recommend_text_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_recommend(text, uuid, integer, boolean, text[], text[]) IS
  'mf_ext: as mf_recommend(text, text, integer, boolean, text[], text[]), the user given as a uuid: a row of a side of text keys (a model trained on uuid ids), matched by its text form; 42804 on a side of integer ids; no rows for NULL or a uuid the model lacks. Answers with ids as text; candidates and exclude stay text[] (a uuid[] form beside them would make an untyped array literal ambiguous): pass uuid arrays as ::text[]';

CREATE FUNCTION @extschema@.mf_recommend_users(model integer, item_id uuid,
                                               n integer DEFAULT 10,
                                               exclude_rated boolean DEFAULT true,
                                               candidates text[] DEFAULT NULL,
                                               exclude text[] DEFAULT NULL)
RETURNS TABLE (user_id text, score double precision)
AS 'MODULE_PATHNAME', 'mf_recommend_users_text'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_recommend_users(integer, uuid, integer, boolean, text[], text[]) IS
  'mf_ext: as mf_recommend_users(integer, text, integer, boolean, text[], text[]), the item given as a uuid: a row of a side of text keys (a model trained on uuid ids), matched by its text form; 42804 on a side of integer ids; no rows for NULL or a uuid the model lacks. Answers with ids as text; candidates and exclude stay text[] (a uuid[] form beside them would make an untyped array literal ambiguous): pass uuid arrays as ::text[]';

CREATE FUNCTION @extschema@.mf_recommend_users(model text, item_id uuid,
                                               n integer DEFAULT 10,
                                               exclude_rated boolean DEFAULT true,
                                               candidates text[] DEFAULT NULL,
                                               exclude text[] DEFAULT NULL)
RETURNS TABLE (user_id text, score double precision)
AS 'MODULE_PATHNAME', 'mf_recommend_users_text_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_recommend_users(text, uuid, integer, boolean, text[], text[]) IS
  'mf_ext: as mf_recommend_users(text, text, integer, boolean, text[], text[]), the item given as a uuid: a row of a side of text keys (a model trained on uuid ids), matched by its text form; 42804 on a side of integer ids; no rows for NULL or a uuid the model lacks. Answers with ids as text; candidates and exclude stay text[] (a uuid[] form beside them would make an untyped array literal ambiguous): pass uuid arrays as ::text[]';

CREATE FUNCTION @extschema@.mf_similar_items(model integer, item_id uuid, n integer DEFAULT 10,
    min_support integer DEFAULT 0, shrinkage double precision DEFAULT 0)
RETURNS TABLE (item_id text, similarity double precision)
AS 'MODULE_PATHNAME', 'mf_similar_items_text'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_similar_items(integer, uuid, integer, integer, double precision) IS
  'mf_ext: as mf_similar_items(integer, text, integer, integer, double precision), the item given as a uuid: a row of a side of text keys (a model trained on uuid ids), matched by its text form; 42804 on a side of integer ids; no rows for NULL or a uuid the model lacks. Answers with item ids as text';

CREATE FUNCTION @extschema@.mf_similar_items(model text, item_id uuid, n integer DEFAULT 10,
    min_support integer DEFAULT 0, shrinkage double precision DEFAULT 0)
RETURNS TABLE (item_id text, similarity double precision)
AS 'MODULE_PATHNAME', 'mf_similar_items_text_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_similar_items(text, uuid, integer, integer, double precision) IS
  'mf_ext: as mf_similar_items(text, text, integer, integer, double precision), the item given as a uuid: a row of a side of text keys (a model trained on uuid ids), matched by its text form; 42804 on a side of integer ids; no rows for NULL or a uuid the model lacks. Answers with item ids as text';

CREATE FUNCTION @extschema@.mf_similar_users(model integer, user_id uuid, n integer DEFAULT 10,
    min_support integer DEFAULT 0, shrinkage double precision DEFAULT 0)
RETURNS TABLE (user_id text, similarity double precision)
AS 'MODULE_PATHNAME', 'mf_similar_users_text'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_similar_users(integer, uuid, integer, integer, double precision) IS
  'mf_ext: as mf_similar_users(integer, text, integer, integer, double precision), the user given as a uuid: a row of a side of text keys (a model trained on uuid ids), matched by its text form; 42804 on a side of integer ids; no rows for NULL or a uuid the model lacks. Answers with user ids as text';

CREATE FUNCTION @extschema@.mf_similar_users(model text, user_id uuid, n integer DEFAULT 10,
    min_support integer DEFAULT 0, shrinkage double precision DEFAULT 0)
RETURNS TABLE (user_id text, similarity double precision)
AS 'MODULE_PATHNAME', 'mf_similar_users_text_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_similar_users(text, uuid, integer, integer, double precision) IS
  'mf_ext: as mf_similar_users(text, text, integer, integer, double precision), the user given as a uuid: a row of a side of text keys (a model trained on uuid ids), matched by its text form; 42804 on a side of integer ids; no rows for NULL or a uuid the model lacks. Answers with user ids as text';
-- mf_recommend_all writes into existing tables (mode), among candidates
-- less exclusions; mf_recommend_all_rows returns its rows;
-- mf_recommend_users_all writes every item's users.  (Views over
-- mf_recommend_all must be dropped before the update.)
DROP FUNCTION @extschema@.mf_recommend_all(integer, integer, boolean, text);
DROP FUNCTION @extschema@.mf_recommend_all(text, integer, boolean, text);

CREATE FUNCTION @extschema@.mf_recommend_all(model integer, n integer DEFAULT 10,
                                             exclude_rated boolean DEFAULT true,
                                             target text DEFAULT NULL,
                                             mode text DEFAULT 'create',
                                             candidates "any" DEFAULT NULL,
                                             exclude "any" DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mf_recommend_all'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_recommend_all(integer, integer, boolean, text, text, "any", "any") IS
  'mf_ext: writes the n best items of every user of model (a model_id), among candidates (an array of item ids or keys; NULL: all items) less exclude, into the table target (user_id, rank, item_id, score), scored by blocked matrix products on all threads and rescored as mf_predict scores; mode ''create'' makes a new table (error 42P07 when it exists), ''replace'' deletes an existing table''s rows (DELETE, in the caller''s transaction) and inserts the new ones through the executor (its indexes, constraints, triggers, row-level security and the caller''s privileges apply), ''append'' inserts them; both create the table when it does not exist. An existing table must be a table or partitioned table with columns user_id, rank, item_id and score to which the values can be assigned (42703, 42804, 42809 otherwise). Returns the rows written';

CREATE FUNCTION @extschema@.mf_recommend_all(model text, n integer DEFAULT 10,
                                             exclude_rated boolean DEFAULT true,
                                             target text DEFAULT NULL,
                                             mode text DEFAULT 'create',
                                             candidates "any" DEFAULT NULL,
                                             exclude "any" DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mf_recommend_all_by_name'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_recommend_all(text, integer, boolean, text, text, "any", "any") IS
  'mf_ext: as mf_recommend_all(integer, ...), for the named model: writes the n best items of every user, among candidates less exclude, into the table target (user_id, rank, item_id, score) with mode ''create'', ''replace'' or ''append''; returns the rows written';

CREATE FUNCTION @extschema@.mf_recommend_all_rows(model integer, n integer DEFAULT 10,
                                                  exclude_rated boolean DEFAULT true,
                                                  candidates "any" DEFAULT NULL,
                                                  exclude "any" DEFAULT NULL)
RETURNS TABLE (user_id bigint, rank integer, item_id bigint, score double precision,
               user_key text, item_key text)
AS 'MODULE_PATHNAME', 'mf_recommend_all_rows'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_recommend_all_rows(integer, integer, boolean, "any", "any") IS
  'mf_ext: the rows mf_recommend_all writes (the n best items of every user of model, a model_id, among candidates less exclude), returned instead (materialized: past work_mem they spill to disk); on a side of text keys, user_id / item_id are the keys'' positions as in mf_user_factors / mf_item_factors and user_key / item_key the keys (NULL for integer ids)';

CREATE FUNCTION @extschema@.mf_recommend_all_rows(model text, n integer DEFAULT 10,
                                                  exclude_rated boolean DEFAULT true,
                                                  candidates "any" DEFAULT NULL,
                                                  exclude "any" DEFAULT NULL)
RETURNS TABLE (user_id bigint, rank integer, item_id bigint, score double precision,
               user_key text, item_key text)
AS 'MODULE_PATHNAME', 'mf_recommend_all_rows_by_name'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_recommend_all_rows(text, integer, boolean, "any", "any") IS
  'mf_ext: as mf_recommend_all_rows(integer, ...), for the named model: the rows mf_recommend_all writes, returned (user_id, rank, item_id, score, user_key, item_key)';

CREATE FUNCTION @extschema@.mf_recommend_users_all(model integer, n integer DEFAULT 10,
                                                   exclude_rated boolean DEFAULT true,
                                                   target text DEFAULT NULL,
                                                   mode text DEFAULT 'create',
                                                   candidates "any" DEFAULT NULL,
                                                   exclude "any" DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mf_recommend_users_all'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_recommend_users_all(integer, integer, boolean, text, text, "any", "any") IS
  'mf_ext: writes the n users with the highest predicted rating of every item of model (a model_id), as mf_recommend_users lists them (exclude_rated leaves out each item''s raters), into the table target (item_id, rank, user_id, score), with mode ''create'', ''replace'' or ''append'' as mf_recommend_all, each item''s users among the candidate users less those excluded (arrays of user ids, as mf_recommend_all''s filters); returns the rows written';

CREATE FUNCTION @extschema@.mf_recommend_users_all(model text, n integer DEFAULT 10,
                                                   exclude_rated boolean DEFAULT true,
                                                   target text DEFAULT NULL,
                                                   mode text DEFAULT 'create',
                                                   candidates "any" DEFAULT NULL,
                                                   exclude "any" DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mf_recommend_users_all_by_name'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_recommend_users_all(text, integer, boolean, text, text, "any", "any") IS
  'mf_ext: as mf_recommend_users_all(integer, ...), for the named model: writes every item''s n best users (item_id, rank, user_id, score) into the table target; returns the rows written';

-- mf_cross_validate searches the biases' own lambda too (bias_lambdas, a
-- grid beside ks and lambdas, and a bias_lambda column in its rows) and
-- takes lambda_per_rating (issue 16): dropped and created again (apply
-- GRANT or REVOKE on it again).
DROP FUNCTION @extschema@.mf_cross_validate(regclass, integer[], double precision[], integer, integer, boolean, boolean, name, name, name, integer, boolean, double precision);
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
    tolerance        double precision DEFAULT 0,
    bias_lambdas     double precision[] DEFAULT NULL,
    lambda_per_rating double precision DEFAULT 0,
    implicit_weights double precision[] DEFAULT NULL,
    clip             boolean          DEFAULT false)
RETURNS TABLE (k integer, lambda double precision, folds integer,
               rmse_mean double precision, rmse_stddev double precision,
               rmse_min double precision, rmse_max double precision,
               mae_mean double precision, coverage double precision,
               seconds double precision, bias_lambda double precision,
               implicit_weight double precision)
AS 'MODULE_PATHNAME', 'mf_cross_validate'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_cross_validate(regclass, integer[], double precision[], integer, integer, boolean, boolean, name, name, name, integer, boolean, double precision, double precision[], double precision, double precision[], boolean) IS
  'mf_ext: k-fold cross-validation (folds by mf_fold) of every k in ks with every lambda in lambdas, with biases every bias_lambda in bias_lambdas (NULL: the biases regularised as the factors; bias_lambda NULL in the rows) and every implicit_weight in implicit_weights (NULL: 0): per point, the mean, spread, minimum and maximum test RMSE over the folds; lambda_per_rating and clip as mf_train''s; writes nothing';

-- Training next to the shards on Citus (src/distributed.c): the workers'
-- part of mf_train's half-steps.  Not for direct use: mf_train sends the
-- fixed side in the format only it writes, and the aggregate refuses any
-- other.  SSPACE: the group states live outside the aggregate's memory
-- (src/distributed.c), so that a shard's thousands of groups are not
-- spilled to disk.
CREATE FUNCTION @extschema@.mf_als_half_step_accumulate(internal, bigint, double precision, bytea)
RETURNS internal
AS 'MODULE_PATHNAME', 'mf_als_half_step_accumulate'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_als_half_step_accumulate(internal, bigint, double precision, bytea) IS
  'mf_ext: mf_als_half_step''s transition: adds a rating (double precision) of the group''s row against the fixed side''s row of integer id';
CREATE FUNCTION @extschema@.mf_als_half_step_accumulate(internal, text, double precision, bytea)
RETURNS internal
AS 'MODULE_PATHNAME', 'mf_als_half_step_accumulate'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_als_half_step_accumulate(internal, text, double precision, bytea) IS
  'mf_ext: mf_als_half_step''s transition: adds a rating (double precision) of the group''s row against the fixed side''s row of text key';
CREATE FUNCTION @extschema@.mf_als_half_step_solve(internal)
RETURNS bytea
AS 'MODULE_PATHNAME', 'mf_als_half_step_solve'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_als_half_step_solve(internal) IS
  'mf_ext: mf_als_half_step''s final function: solves the group''s row (Cholesky, or the non-negative solve) against the fixed side; its k factors, bias, share of J and squared errors as bytea';
CREATE AGGREGATE @extschema@.mf_als_half_step(bigint, double precision, bytea) (
    SFUNC = @extschema@.mf_als_half_step_accumulate,
    STYPE = internal,
    SSPACE = 64,
    FINALFUNC = @extschema@.mf_als_half_step_solve
);
COMMENT ON AGGREGATE @extschema@.mf_als_half_step(bigint, double precision, bytea) IS
  'mf_ext: one row of an ALS half-step on a Citus worker, from its ratings (the other side''s integer ids, ratings) and the fixed side mf_train sends (bytea); mf_train''s part, not for direct use';
CREATE AGGREGATE @extschema@.mf_als_half_step(text, double precision, bytea) (
    SFUNC = @extschema@.mf_als_half_step_accumulate,
    STYPE = internal,
    SSPACE = 64,
    FINALFUNC = @extschema@.mf_als_half_step_solve
);
COMMENT ON AGGREGATE @extschema@.mf_als_half_step(text, double precision, bytea) IS
  'mf_ext: one row of an ALS half-step on a Citus worker, from its ratings (the other side''s text keys, ratings) and the fixed side mf_train sends (bytea); mf_train''s part, not for direct use';
CREATE FUNCTION @extschema@.mf_als_half_step_cached(token bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'mf_als_half_step_cached'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_als_half_step_cached(bigint) IS
  'mf_ext: whether this backend holds the fixed side of mf_train''s half-step token (a Citus worker reads each once); mf_train''s part, not for direct use';
