-- mf_ext 0.3 -> 0.4: implicit feedback, conjugate-gradient solver, non-negative
-- factors, similar items and users, fold-in, refit, batch top-N, ids of any
-- type.
\echo Use "ALTER EXTENSION mf_ext UPDATE TO '0.4'" to load this file. \quit

-- Models trained before 0.4 were explicit-feedback models solved by Cholesky.
ALTER TABLE @extschema@.mf_models
    ADD COLUMN feedback text NOT NULL DEFAULT 'explicit'
        CHECK (feedback IN ('explicit', 'implicit')),
    ADD COLUMN alpha    double precision,
    ADD COLUMN solver   text NOT NULL DEFAULT 'cholesky'
        CHECK (solver IN ('cholesky', 'cg', 'nnls')),
    ADD COLUMN nonnegative boolean NOT NULL DEFAULT false;
-- Ids of other types than integers are kept as text keys.
ALTER TABLE @extschema@.mf_models
    ADD COLUMN user_key_type regtype,
    ADD COLUMN item_key_type regtype;
COMMENT ON COLUMN @extschema@.mf_models.user_key_type IS
  'mf_ext: the type of the user ids when they are not integers (then kept as text in mf_user_factors.user_key), else NULL';
COMMENT ON COLUMN @extschema@.mf_models.item_key_type IS
  'mf_ext: the type of the item ids when they are not integers (then kept as text in mf_item_factors.item_key), else NULL';
ALTER TABLE @extschema@.mf_user_factors ADD COLUMN user_key text;
ALTER TABLE @extschema@.mf_item_factors ADD COLUMN item_key text;
COMMENT ON COLUMN @extschema@.mf_user_factors.user_key IS
  'mf_ext: the user''s id as text when the ids are not integers (user_id is then its position in byte order), else NULL';
COMMENT ON COLUMN @extschema@.mf_item_factors.item_key IS
  'mf_ext: the item''s id as text when the ids are not integers (item_id is then its position in byte order), else NULL';
ALTER TABLE @extschema@.mf_models
    ALTER COLUMN feedback DROP DEFAULT,
    ALTER COLUMN solver DROP DEFAULT,
    ALTER COLUMN nonnegative DROP DEFAULT;
COMMENT ON COLUMN @extschema@.mf_models.feedback IS
  'mf_ext: explicit (ratings are predicted) or implicit (ratings are interaction strengths; preferences are predicted)';
COMMENT ON COLUMN @extschema@.mf_models.alpha IS
  'mf_ext: with implicit feedback, the confidence of an observed pair is 1 + alpha * rating (else NULL)';
COMMENT ON COLUMN @extschema@.mf_models.solver IS
  'mf_ext: how each row''s system was solved: cholesky (exactly), cg (a few conjugate-gradient steps from the previous factors) or nnls (coordinate descent keeping the factors >= 0)';
COMMENT ON COLUMN @extschema@.mf_models.nonnegative IS
  'mf_ext: whether the factors were kept >= 0 (biases are not constrained)';

DROP FUNCTION @extschema@.mf_train(regclass, integer, double precision, integer, name, name, name, text, boolean, integer, boolean, boolean, boolean, double precision, regclass);
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
    validation       regclass         DEFAULT NULL,
    feedback         text             DEFAULT 'explicit',
    alpha            double precision DEFAULT 40,
    solver           text             DEFAULT NULL,
    nonnegative      boolean          DEFAULT false)
RETURNS integer
AS 'MODULE_PATHNAME', 'mf_train'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_train(regclass, integer, double precision, integer, name, name, name, text, boolean, integer, boolean, boolean, boolean, double precision, regclass, text, double precision, text, boolean) IS
  'mf_ext: trains (or retrains, keeping its id) the model model_name (default: the source relation''s name) by alternating least squares on source(user_col, item_col, rating_col): explicit ratings (with biases and ALS-WR lambda if asked) or implicit feedback with confidence 1 + alpha * rating, each row solved by Cholesky, conjugate gradient or, for non-negative factors, coordinate descent; stops early when J falls by less than tolerance, scores validation every iteration; returns the model_id';

-- Similarity ----------------------------------------------------------------

CREATE FUNCTION @extschema@.mf_similar_items(model integer, item_id bigint, n integer DEFAULT 10)
RETURNS TABLE (item_id bigint, similarity double precision)
AS 'MODULE_PATHNAME', 'mf_similar_items'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_similar_items(integer, bigint, integer) IS
  'mf_ext: the n items whose factors are nearest to item_id''s by cosine under model (a model_id), most similar first; no rows for an unknown item';
CREATE FUNCTION @extschema@.mf_similar_items(model text, item_id bigint, n integer DEFAULT 10)
RETURNS TABLE (item_id bigint, similarity double precision)
AS 'MODULE_PATHNAME', 'mf_similar_items_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_similar_items(text, bigint, integer) IS
  'mf_ext: the n items whose factors are nearest to item_id''s by cosine under the named model, most similar first; no rows for an unknown item';

CREATE FUNCTION @extschema@.mf_similar_users(model integer, user_id bigint, n integer DEFAULT 10)
RETURNS TABLE (user_id bigint, similarity double precision)
AS 'MODULE_PATHNAME', 'mf_similar_users'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_similar_users(integer, bigint, integer) IS
  'mf_ext: the n users whose factors are nearest to user_id''s by cosine under model (a model_id), most similar first; no rows for an unknown user';
CREATE FUNCTION @extschema@.mf_similar_users(model text, user_id bigint, n integer DEFAULT 10)
RETURNS TABLE (user_id bigint, similarity double precision)
AS 'MODULE_PATHNAME', 'mf_similar_users_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_similar_users(text, bigint, integer) IS
  'mf_ext: the n users whose factors are nearest to user_id''s by cosine under the named model, most similar first; no rows for an unknown user';

CREATE FUNCTION @extschema@.mf_similar_items(model integer, item_id text, n integer DEFAULT 10)
RETURNS TABLE (item_id text, similarity double precision)
AS 'MODULE_PATHNAME', 'mf_similar_items'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_similar_items(integer, text, integer) IS
  'mf_ext: as mf_similar_items(integer, bigint, integer), with the items as text: the keys of a model trained on text, uuid or other non-integer ids, or integer ids written as text';
CREATE FUNCTION @extschema@.mf_similar_items(model text, item_id text, n integer DEFAULT 10)
RETURNS TABLE (item_id text, similarity double precision)
AS 'MODULE_PATHNAME', 'mf_similar_items_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_similar_items(text, text, integer) IS
  'mf_ext: as mf_similar_items(text, bigint, integer), with the items as text: the keys of a model trained on text, uuid or other non-integer ids, or integer ids written as text';
CREATE FUNCTION @extschema@.mf_similar_users(model integer, user_id text, n integer DEFAULT 10)
RETURNS TABLE (user_id text, similarity double precision)
AS 'MODULE_PATHNAME', 'mf_similar_users'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_similar_users(integer, text, integer) IS
  'mf_ext: as mf_similar_users(integer, bigint, integer), with the users as text: the keys of a model trained on text, uuid or other non-integer ids, or integer ids written as text';
CREATE FUNCTION @extschema@.mf_similar_users(model text, user_id text, n integer DEFAULT 10)
RETURNS TABLE (user_id text, similarity double precision)
AS 'MODULE_PATHNAME', 'mf_similar_users_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_similar_users(text, text, integer) IS
  'mf_ext: as mf_similar_users(text, bigint, integer), with the users as text: the keys of a model trained on text, uuid or other non-integer ids, or integer ids written as text';

-- Fold-in -------------------------------------------------------------------

CREATE FUNCTION @extschema@.mf_fold_in(model integer, item_ids bigint[], ratings double precision[])
RETURNS double precision[]
AS 'MODULE_PATHNAME', 'mf_fold_in'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_fold_in(integer, bigint[], double precision[]) IS
  'mf_ext: the factors (then the bias, with biases) that training''s user half-step would give a new user who rated item_ids with ratings, under model (a model_id); NULL when the model knows none of the items';
CREATE FUNCTION @extschema@.mf_fold_in(model text, item_ids bigint[], ratings double precision[])
RETURNS double precision[]
AS 'MODULE_PATHNAME', 'mf_fold_in_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_fold_in(text, bigint[], double precision[]) IS
  'mf_ext: the factors (then the bias, with biases) that training''s user half-step would give a new user who rated item_ids with ratings, under the named model; NULL when the model knows none of the items';

CREATE FUNCTION @extschema@.mf_recommend(model integer, item_ids bigint[],
                                         ratings double precision[],
                                         n integer DEFAULT 10,
                                         exclude_rated boolean DEFAULT true)
RETURNS TABLE (item_id bigint, score double precision)
AS 'MODULE_PATHNAME', 'mf_recommend_folded'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_recommend(integer, bigint[], double precision[], integer, boolean) IS
  'mf_ext: the n best items under model (a model_id) for a new user who rated item_ids with ratings (folded in, no retraining); exclude_rated leaves out those items';
CREATE FUNCTION @extschema@.mf_recommend(model text, item_ids bigint[],
                                         ratings double precision[],
                                         n integer DEFAULT 10,
                                         exclude_rated boolean DEFAULT true)
RETURNS TABLE (item_id bigint, score double precision)
AS 'MODULE_PATHNAME', 'mf_recommend_folded_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_recommend(text, bigint[], double precision[], integer, boolean) IS
  'mf_ext: the n best items under the named model for a new user who rated item_ids with ratings (folded in, no retraining); exclude_rated leaves out those items';

CREATE FUNCTION @extschema@.mf_fold_in_keys(model integer, item_keys text[], ratings double precision[])
RETURNS double precision[]
AS 'MODULE_PATHNAME', 'mf_fold_in_keys'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_fold_in_keys(integer, text[], double precision[]) IS
  'mf_ext: as mf_fold_in(integer, bigint[], double precision[]), with the items as text: the keys of a model trained on text, uuid or other non-integer ids, or integer ids written as text (a name of its own, so that an untyped array literal still means mf_fold_in)';
CREATE FUNCTION @extschema@.mf_recommend_keys(model integer, item_keys text[],
                                         ratings double precision[],
                                         n integer DEFAULT 10,
                                         exclude_rated boolean DEFAULT true)
RETURNS TABLE (item_id text, score double precision)
AS 'MODULE_PATHNAME', 'mf_recommend_keys'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_recommend_keys(integer, text[], double precision[], integer, boolean) IS
  'mf_ext: as mf_recommend(integer, bigint[], double precision[], ...), with the items as text keys';
CREATE FUNCTION @extschema@.mf_fold_in_keys(model text, item_keys text[], ratings double precision[])
RETURNS double precision[]
AS 'MODULE_PATHNAME', 'mf_fold_in_keys_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_fold_in_keys(text, text[], double precision[]) IS
  'mf_ext: as mf_fold_in(text, bigint[], double precision[]), with the items as text: the keys of a model trained on text, uuid or other non-integer ids, or integer ids written as text (a name of its own, so that an untyped array literal still means mf_fold_in)';
CREATE FUNCTION @extschema@.mf_recommend_keys(model text, item_keys text[],
                                         ratings double precision[],
                                         n integer DEFAULT 10,
                                         exclude_rated boolean DEFAULT true)
RETURNS TABLE (item_id text, score double precision)
AS 'MODULE_PATHNAME', 'mf_recommend_keys_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_recommend_keys(text, text[], double precision[], integer, boolean) IS
  'mf_ext: as mf_recommend(text, bigint[], double precision[], ...), with the items as text keys';

-- Refit -----------------------------------------------------------------------

CREATE FUNCTION @extschema@.mf_refit_users(model integer, source regclass DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'mf_refit_users'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_refit_users(integer, regclass) IS
  'mf_ext: recomputes (or adds) the factors of every user with ratings in source (default: the model''s source) with the stored item factors held fixed, as training''s user half-step would; returns how many users were refitted';
CREATE FUNCTION @extschema@.mf_refit_users(model text, source regclass DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'mf_refit_users_by_name'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_refit_users(text, regclass) IS
  'mf_ext: recomputes (or adds) the factors of every user with ratings in source (default: the model''s source) with the stored item factors held fixed, as training''s user half-step would; returns how many users were refitted';

CREATE FUNCTION @extschema@.mf_refit_items(model integer, source regclass DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'mf_refit_items'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_refit_items(integer, regclass) IS
  'mf_ext: recomputes (or adds) the factors of every item with ratings in source (default: the model''s source) with the stored user factors held fixed, as training''s item half-step would; returns how many items were refitted';
CREATE FUNCTION @extschema@.mf_refit_items(model text, source regclass DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'mf_refit_items_by_name'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_refit_items(text, regclass) IS
  'mf_ext: recomputes (or adds) the factors of every item with ratings in source (default: the model''s source) with the stored user factors held fixed, as training''s item half-step would; returns how many items were refitted';

-- Batch top-N -------------------------------------------------------------------

CREATE FUNCTION @extschema@.mf_recommend_all(model integer, n integer DEFAULT 10,
                                             exclude_rated boolean DEFAULT true,
                                             target text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mf_recommend_all'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_recommend_all(integer, integer, boolean, text) IS
  'mf_ext: writes the n best items of every user of model (a model_id) into the new table target (user_id, rank, item_id, score), scored by blocked matrix products on all threads and rescored as mf_predict scores; returns the rows written';
CREATE FUNCTION @extschema@.mf_recommend_all(model text, n integer DEFAULT 10,
                                             exclude_rated boolean DEFAULT true,
                                             target text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mf_recommend_all_by_name'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.mf_recommend_all(text, integer, boolean, text) IS
  'mf_ext: writes the n best items of every user of the named model into the new table target (user_id, rank, item_id, score), scored by blocked matrix products on all threads and rescored as mf_predict scores; returns the rows written';

-- Ids of any type ---------------------------------------------------------------

CREATE FUNCTION @extschema@.mf_predict(model integer, user_id text, item_id text)
RETURNS double precision
AS 'MODULE_PATHNAME', 'mf_predict_key'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_predict(integer, text, text) IS
  'mf_ext: as mf_predict(integer, bigint, bigint), for ids given as text: the keys of a model trained on text, uuid or other non-integer ids (cast them to text), or integer ids written as text';
CREATE FUNCTION @extschema@.mf_predict(model text, user_id text, item_id text)
RETURNS double precision
AS 'MODULE_PATHNAME', 'mf_predict_key_by_name'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_predict(text, text, text) IS
  'mf_ext: as mf_predict(text, bigint, bigint), for ids given as text: the keys of a model trained on text, uuid or other non-integer ids (cast them to text), or integer ids written as text';

CREATE FUNCTION @extschema@.mf_recommend(model integer, user_id text,
                                         n integer DEFAULT 10,
                                         exclude_rated boolean DEFAULT true)
RETURNS TABLE (item_id text, score double precision)
AS 'MODULE_PATHNAME', 'mf_recommend_key'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_recommend(integer, text, integer, boolean) IS
  'mf_ext: as mf_recommend(integer, bigint, ...), with the user and the items as text keys (ids of a model trained on text, uuid or other non-integer ids)';
CREATE FUNCTION @extschema@.mf_recommend(model text, user_id text,
                                         n integer DEFAULT 10,
                                         exclude_rated boolean DEFAULT true)
RETURNS TABLE (item_id text, score double precision)
AS 'MODULE_PATHNAME', 'mf_recommend_key_by_name'
LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.mf_recommend(text, text, integer, boolean) IS
  'mf_ext: as mf_recommend(text, bigint, ...), with the user and the items as text keys (ids of a model trained on text, uuid or other non-integer ids)';

CREATE FUNCTION @extschema@.mf_is_test(user_id text, item_id text,
                                       fraction double precision,
                                       seed integer DEFAULT 0)
RETURNS boolean
AS 'MODULE_PATHNAME', 'mf_is_test_text'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_is_test(text, text, double precision, integer) IS
  'mf_ext: mf_is_test for text ids (cast uuid ids to text): true for about fraction of all pairs, by a hash of their text';

CREATE FUNCTION @extschema@.mf_fold(user_id text, item_id text,
                                    folds integer, seed integer DEFAULT 0)
RETURNS integer
AS 'MODULE_PATHNAME', 'mf_fold_text'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mf_fold(text, text, integer, integer) IS
  'mf_ext: mf_fold for text ids (cast uuid ids to text): the fold mf_cross_validate puts the pair in';
