-- Ids of any type (0.4): text, uuid, ... are kept as text keys, numbered in
-- byte order; mf_predict and mf_recommend take them as text.
SET client_min_messages = warning;

-- 120 users and 40 items named by text; the same ratings as genre-like
-- integers, so that a text-keyed model can be checked by hand.
CREATE TABLE named AS
SELECT 'user ' || u AS who, 'film ' || i AS what,
       CASE WHEN (i - 1) / 10 = u % 4 THEN 4.5 ELSE 2 END
         + ((abs(hashint8(u * 1000 + i)) % 100) / 100.0 - 0.5) AS stars
FROM generate_series(1, 120) u, generate_series(1, 40) i
WHERE abs(hashint8(u * 7919 + i)) % 100 < 40;
SELECT mf_train('named', k := 4, lambda := 1, biases := true, user_col := 'who',
                item_col := 'what', rating_col := 'stars') AS named \gset

-- The factor tables show the keys; ids are their positions in byte order.
SELECT user_key_type, item_key_type FROM mf_models WHERE model_id = :named;
SELECT user_id, user_key FROM mf_user_factors WHERE model_id = :named ORDER BY user_id LIMIT 3;
SELECT bool_and(user_key = ordered) AS ids_in_key_order
FROM (SELECT user_key, (array_agg(user_key) OVER (ORDER BY user_key COLLATE "C"
                        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING))[user_id + 1] AS ordered
      FROM mf_user_factors WHERE model_id = :named) t;
SELECT count(*) AS items, count(DISTINCT item_key) AS distinct_keys
FROM mf_item_factors WHERE model_id = :named;

-- mf_predict by key is mu + b_u + b_i + u.v of the stored rows.
SELECT abs(mf_predict(:named, 'user 7', 'film 3') -
           (m.global_mean + u.bias + i.bias +
            (SELECT sum(x * y) FROM unnest(u.factors, i.factors) AS t(x, y)))) < 1e-12 AS by_hand
FROM mf_models m
JOIN mf_user_factors u ON u.model_id = m.model_id AND u.user_key = 'user 7'
JOIN mf_item_factors i ON i.model_id = m.model_id AND i.item_key = 'film 3'
WHERE m.model_id = :named;
SELECT mf_predict('named', 'nobody', 'film 3') = m.global_mean + i.bias AS unknown_user_from_biases
FROM mf_models m JOIN mf_item_factors i ON i.model_id = m.model_id AND i.item_key = 'film 3'
WHERE m.model_id = :named;

-- mf_recommend by key lists item keys, best first, as scored by mf_predict,
-- leaving out the films the user rated.
SELECT count(*) AS recommended,
       bool_and(score = mf_predict(:named, 'user 7', item_id)) AS scores_are_predictions,
       bool_and(item_id NOT IN (SELECT what FROM named WHERE who = 'user 7')) AS rated_left_out,
       bool_and((substr(item_id, 6)::int - 1) / 10 = 7 % 4) AS liked_genre
FROM mf_recommend('named', 'user 7', 5);
-- ... among candidate keys less excluded ones (0.5); users for a film by
-- key, scored by mf_predict, without its raters; the same filters by key.
SELECT (SELECT array_agg(item_id ORDER BY score DESC, item_id)
        FROM mf_recommend('named', 'user 7', 3, candidates := '{film 1, film 2, film 35, film 36, no film}',
                          exclude := '{film 36}')) =
       (SELECT array_agg(item_id) FROM (SELECT item_id FROM mf_recommend('named', 'user 7', 1000)
                                        WHERE item_id IN ('film 1', 'film 2', 'film 35') LIMIT 3) t)
         AS filtered_by_key;
SELECT count(*) AS users, bool_and(score = mf_predict(:named, user_id, 'film 3')) AS scores_are_predictions,
       bool_and(user_id NOT IN (SELECT who FROM named WHERE what = 'film 3')) AS raters_left_out,
       bool_and(user_id <> 'user 8') AS excluded_left_out
FROM mf_recommend_users('named', 'film 3', 5, exclude := '{user 8}');
SELECT (SELECT array_agg(user_id ORDER BY score DESC, user_id)
        FROM mf_recommend_users(:named, 'film 3', 2, false, candidates := '{user 8, user 12, user 9}')) =
       (SELECT array_agg(user_id) FROM (SELECT user_id FROM mf_recommend_users(:named, 'film 3', 1000, false)
                                        WHERE user_id IN ('user 8', 'user 12', 'user 9') LIMIT 2) t)
         AS users_among_candidates;

-- The model depends on the keys, not on the order the rows come in.
CREATE TABLE named_shuffled AS SELECT * FROM named ORDER BY md5(who || what);
SELECT mf_train('named_shuffled', k := 4, lambda := 1, biases := true, user_col := 'who',
                item_col := 'what', rating_col := 'stars') AS shuffled \gset
SELECT bool_and(a.factors = b.factors AND a.bias = b.bias) AS same_model
FROM mf_user_factors a JOIN mf_user_factors b USING (user_key)
WHERE a.model_id = :named AND b.model_id = :shuffled;

-- uuid ids: cast them to text to ask.
CREATE TABLE uuids AS
SELECT md5(who)::uuid AS user_id, md5(what)::uuid AS item_id, stars AS rating FROM named;
SELECT mf_train('uuids', k := 4, lambda := 1, biases := true) AS uuids \gset
SELECT user_key_type, item_key_type FROM mf_models WHERE model_id = :uuids;
SELECT count(*) AS recommended,
       bool_and(score = mf_predict('uuids', md5('user 7')::uuid::text, item_id)) AS same_scores
FROM mf_recommend('uuids', md5('user 7')::uuid::text, 5);

-- mf_recommend_all on keys writes text ids: every user's list is the text
-- form of mf_recommend's, scores too.
SELECT mf_recommend_all(:named, 4, true, 'named_top') AS written;
SELECT format_type(atttypid, atttypmod) AS id_type FROM pg_attribute
WHERE attrelid = 'named_top'::regclass AND attname IN ('user_id', 'item_id') ORDER BY attnum;
SELECT bool_and(a.items = r.items AND a.scores = r.scores) AND count(*) = 120 AS same_as_mf_recommend
FROM (SELECT user_id, array_agg(item_id ORDER BY rank) AS items, array_agg(score ORDER BY rank) AS scores
      FROM named_top GROUP BY user_id) a,
LATERAL (SELECT array_agg(item_id ORDER BY score DESC, item_id COLLATE "C") AS items,
                array_agg(score ORDER BY score DESC, item_id COLLATE "C") AS scores
         FROM mf_recommend(:named, a.user_id, 4)) r;

-- Integer ids can be asked as text too.
CREATE TABLE int_ids AS
SELECT substr(who, 6)::int AS user_id, substr(what, 6)::int AS item_id, stars AS rating FROM named;
SELECT mf_train('int_ids', k := 4, lambda := 1) AS ints \gset
SELECT mf_predict(:ints, '7', '3') = mf_predict(:ints, 7, 3) AS text_equals_integer,
       (SELECT array_agg(item_id::bigint ORDER BY score DESC, item_id) FROM mf_recommend(:ints, '7', 5)) =
       (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM mf_recommend(:ints, 7, 5)) AS same_list;

-- Similarity by key: the nearest films by cosine of the stored factors,
-- computed by hand.
WITH f AS (SELECT item_key, factors::float8[] AS v FROM mf_item_factors WHERE model_id = :named),
     t AS (SELECT v FROM f WHERE item_key = 'film 3'),
     c AS (SELECT f.item_key,
                  (SELECT sum(a * b) FROM unnest(f.v, t.v) AS p(a, b))
                  / sqrt((SELECT sum(a * a) FROM unnest(f.v) AS a) * (SELECT sum(b * b) FROM unnest(t.v) AS b)) AS cosine
           FROM f, t WHERE f.item_key <> 'film 3')
SELECT (SELECT array_agg(item_id ORDER BY similarity DESC) FROM mf_similar_items(:named, 'film 3', 5)) =
       (SELECT array_agg(item_key ORDER BY cosine DESC) FROM (SELECT * FROM c ORDER BY cosine DESC LIMIT 5) x)
       AS same_neighbours,
       (SELECT count(*) FROM mf_similar_users('named', 'user 7', 4)) AS similar_users;

-- Fold-in by key (mf_fold_in_keys, mf_recommend_keys): the scores are
-- mu + the folded-in bias + b_i + u . v of the stored item rows; on integer
-- ids the keys form equals the integer one.
WITH u AS (SELECT mf_fold_in_keys(:named, ARRAY['film 1', 'film 2', 'film 11'], ARRAY[5, 1, 2]::float8[]) AS r)
SELECT count(*) AS recommended,
       bool_and(abs(rec.score - (m.global_mean + u.r[5] + i.bias +
                (SELECT sum(a * b) FROM unnest(u.r[1:4], i.factors::float8[]) AS p(a, b)))) < 1e-9) AS scores_by_hand,
       bool_and(rec.item_id NOT IN ('film 1', 'film 2', 'film 11')) AS rated_left_out
FROM u, mf_models m,
     mf_recommend_keys(:named, ARRAY['film 1', 'film 2', 'film 11'], ARRAY[5, 1, 2]::float8[], 5) rec
JOIN mf_item_factors i ON i.item_key = rec.item_id
WHERE m.model_id = :named AND i.model_id = :named;
SELECT mf_fold_in_keys(:ints, ARRAY['1', '2'], ARRAY[5, 1]::float8[]) =
       mf_fold_in(:ints, ARRAY[1, 2], ARRAY[5, 1]::float8[]) AS text_equals_integer;
-- A bad rating is named by its subscript, whatever the arrays' lower
-- bounds, and its item by key; the messages name the keys form's own
-- argument, item_keys (they had said "rating 2" and item_ids).
SELECT mf_fold_in_keys(:named, ARRAY['film 1', 'film 2'], ARRAY[5, 'NaN']::float8[]);
SELECT mf_fold_in_keys(:named, '[0:1]={film 1, film 2}'::text[], '[3:4]={Infinity, 1}'::float8[]);
SELECT * FROM mf_recommend_keys(:named, ARRAY['film 1', NULL], ARRAY[5, 1]::float8[]);
SELECT mf_fold_in_keys(:named, ARRAY['film 1'], ARRAY[5, 1]::float8[]);
SELECT mf_fold_in(:ints, '[0:1]={1, 2}'::bigint[], '[0:1]={5, -Infinity}'::float8[]);

-- Refit by key: a known user's row is replaced and a new user is added,
-- numbered after the last; each equals the fold-in of its ratings (in the
-- keys' byte order, as the refit reads them).  Ids of the other kind are
-- refused.
CREATE TABLE named_more AS
SELECT who, what, stars FROM named WHERE who = 'user 7'
UNION ALL SELECT 'user new', what, stars FROM named WHERE who = 'user 8';
SELECT mf_refit_users(:named, 'named_more') AS refitted;
SELECT user_id, user_key FROM mf_user_factors
WHERE model_id = :named AND user_key IN ('user 7', 'user new') ORDER BY user_id;
SELECT bool_and(u.factors || u.bias = mf_fold_in_keys(:named,
           (SELECT array_agg(what ORDER BY what COLLATE "C") FROM named_more m WHERE m.who = u.user_key),
           (SELECT array_agg(stars::float8 ORDER BY what COLLATE "C") FROM named_more m WHERE m.who = u.user_key)))
       AS same_as_fold_in
FROM mf_user_factors u WHERE model_id = :named AND user_key IN ('user 7', 'user new');
SELECT count(*) AS recommended FROM mf_recommend(:named, 'user new', 3);
CREATE VIEW int_named AS SELECT user_id AS who, item_id AS what, rating AS stars FROM int_ids;
SELECT mf_refit_users(:named, 'int_named');
-- ids of the other kind are refused before the relation is read, as its
-- columns' types tell them (reading this view fails): a refit's source,
-- mf_evaluate's test relation, a training's validation (after the whole
-- read of the training's ratings before; attack helper 244)
CREATE VIEW int_named_unreadable AS
    SELECT who, what, stars / (who - who) AS stars FROM int_named;
SELECT mf_refit_users(:named, 'int_named_unreadable');
SELECT * FROM mf_evaluate(:named, 'int_named_unreadable');
SELECT mf_train('named', model_name := 'validated', k := 4, user_col := 'who', item_col := 'what',
                rating_col := 'stars', validation := 'int_named_unreadable');
DROP VIEW int_named_unreadable;

-- Refitting named users by key (0.5): only their rows, all of them, from
-- the model's recorded source, bit for bit as a refit from a view of
-- exactly those rows.  Keys match by their text form, converted to the
-- column's type (a uuid without hyphens, in capitals); duplicates count
-- once; a key the source lacks is left as it is, with a NOTICE (quoted and
-- escaped as in JSON); a text that is no uuid is refused.
CREATE FUNCTION key_rows(model int, keys text[]) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(row(user_key, factors, bias, rated_items, support)::text, ';' ORDER BY user_key)
    FROM mf_user_factors WHERE model_id = model AND user_key = ANY (keys) $$;
CREATE VIEW named_two AS SELECT * FROM named WHERE who IN ('user 9', 'user 12');
BEGIN;
SELECT mf_refit_users(:named, 'named_two', 'who', 'what', 'stars') AS from_view;
SELECT key_rows(:named, '{user 9, user 12}') AS from_view \gset
ROLLBACK;
SET client_min_messages = notice;
SELECT mf_refit_users(:named, users := ARRAY['user 12', 'user 9', 'user 9', E'nobody "\n"']) AS refitted;
SET client_min_messages = warning;
SELECT key_rows(:named, '{user 9, user 12}') = :'from_view' AS as_from_view,
       mf_refit_users(:named, users := ARRAY['user 9']::varchar[]) AS as_varchar,
       mf_refit_users(:named, users := '{}') AS none;
CREATE VIEW uuid_two AS SELECT * FROM uuids WHERE user_id IN (md5('user 9')::uuid, md5('user 12')::uuid);
BEGIN;
SELECT mf_refit_users(:uuids, 'uuid_two') AS from_view;
SELECT key_rows(:uuids, ARRAY[md5('user 9')::uuid::text, md5('user 12')::uuid::text]) AS from_view \gset
ROLLBACK;
SELECT mf_refit_users(:uuids, users := ARRAY[md5('user 9'), upper(md5('user 12'))]) AS refitted;
SELECT key_rows(:uuids, ARRAY[md5('user 9')::uuid::text, md5('user 12')::uuid::text]) = :'from_view'
       AS as_from_view,
       mf_refit_users(:uuids, users := ARRAY[md5('user 9')::uuid]) AS as_uuid;
SELECT mf_refit_users(:uuids, users := ARRAY['user 9']);
DROP VIEW named_two, uuid_two;
DROP FUNCTION key_rows;

-- Warm start by key: one iteration from the stored item factors ends far
-- lower in J than one iteration from random ones.
SELECT mf_train('named', k := 4, lambda := 1, biases := true, user_col := 'who', item_col := 'what',
                rating_col := 'stars', iterations := 1, model_name := 'named cold') IS NOT NULL AS cold;
SELECT mf_train('named', k := 4, lambda := 1, biases := true, user_col := 'who', item_col := 'what',
                rating_col := 'stars', iterations := 1, model_name := 'named_shuffled',
                warm_start := true) IS NOT NULL AS warm;
SELECT w.loss[1] < 0.9 * c.loss[1] AS warm_start_helps, w.user_key_type
FROM mf_models w, mf_models c WHERE w.name = 'named_shuffled' AND c.name = 'named cold';

-- Validation and mf_evaluate work on text ids too: the held-out RMSE
-- recorded by training is mf_evaluate's, to the bit.  precision@5 is near
-- 0.211 (79 hits in the 75 users' top 5s); two nearly equal scores can swap
-- places with float rounding (so with the BLAS kernels), moving it by 1/375
-- a hit: it is asserted within 0.01.
CREATE TABLE named_train AS SELECT * FROM named WHERE NOT mf_is_test(who, what, 0.2);
CREATE TABLE named_test AS SELECT * FROM named WHERE mf_is_test(who, what, 0.2);
SELECT mf_train('named_train', k := 4, lambda := 1, biases := true, user_col := 'who',
                item_col := 'what', rating_col := 'stars', validation := 'named_test') AS held \gset
SELECT (SELECT validation_rmse[iterations_run] FROM mf_models WHERE model_id = :held) =
       (SELECT value FROM mf_evaluate(:held, 'named_test') WHERE metric = 'rmse') AS validation_is_evaluate,
       (SELECT abs(value - 0.211) < 0.01 FROM mf_evaluate(:held, 'named_test', k := 5, threshold := 4)
        WHERE metric = 'precision@5') AS precision_at_5_near_0_211,
       (SELECT value FROM mf_evaluate(:held, 'named_test', k := 5, threshold := 4)
        WHERE metric = 'users') AS users;

-- Cross-validation works on text ids as on integers, with the folds of
-- mf_fold(text, text): each fold of 2 is mf_train on the other judged on
-- it, to the bit (the fold's keys numbered as mf_train numbers them).
SELECT count(*) FILTER (WHERE mf_is_test(who, what, 0.2))::float8 / count(*)
       BETWEEN 0.16 AND 0.24 AS about_a_fifth
FROM named;
CREATE TABLE named_fold1 AS SELECT * FROM named WHERE mf_fold(who, what, 2) = 1;
CREATE TABLE named_fold0 AS SELECT * FROM named WHERE mf_fold(who, what, 2) = 0;
SELECT mf_train('named_fold1', k := 4, lambda := 1, iterations := 5, biases := true,
                user_col := 'who', item_col := 'what', rating_col := 'stars') AS fold1 \gset
SELECT mf_train('named_fold0', k := 4, lambda := 1, iterations := 5, biases := true,
                user_col := 'who', item_col := 'what', rating_col := 'stars') AS fold0 \gset
SELECT cv.rmse_min = least(e0.value, e1.value) AND cv.rmse_max = greatest(e0.value, e1.value)
       AS each_fold_is_train_and_evaluate
FROM mf_cross_validate('named', ARRAY[4], ARRAY[1], folds := 2, iterations := 5, biases := true,
                       user_col := 'who', item_col := 'what', rating_col := 'stars') cv,
     mf_evaluate(:fold1, 'named_fold0') e0, mf_evaluate(:fold0, 'named_fold1') e1
WHERE e0.metric = 'rmse' AND e1.metric = 'rmse';
-- Integer users with text items: every id folds by its text, as
-- mf_fold(user_id::text, item_id, ...) folds it (the integer side folded by
-- its number matched no form of mf_fold).
CREATE TABLE half_named AS
SELECT substr(who, 6)::integer AS who, what, stars FROM named;
CREATE TABLE half_fold1 AS SELECT * FROM half_named WHERE mf_fold(who::text, what, 2) = 1;
CREATE TABLE half_fold0 AS SELECT * FROM half_named WHERE mf_fold(who::text, what, 2) = 0;
SELECT mf_train('half_fold1', k := 4, lambda := 1, iterations := 5, biases := true,
                user_col := 'who', item_col := 'what', rating_col := 'stars') AS half1 \gset
SELECT mf_train('half_fold0', k := 4, lambda := 1, iterations := 5, biases := true,
                user_col := 'who', item_col := 'what', rating_col := 'stars') AS half0 \gset
SELECT cv.rmse_min = least(e0.value, e1.value) AND cv.rmse_max = greatest(e0.value, e1.value)
       AS mixed_ids_fold_as_text
FROM mf_cross_validate('half_named', ARRAY[4], ARRAY[1], folds := 2, iterations := 5, biases := true,
                       user_col := 'who', item_col := 'what', rating_col := 'stars') cv,
     mf_evaluate(:half1, 'half_fold0') e0, mf_evaluate(:half0, 'half_fold1') e1
WHERE e0.metric = 'rmse' AND e1.metric = 'rmse';

-- character(n) ids are keys as a cast to text gives them, without the
-- padding: user_id::text, and the implicit cast, find them.
CREATE TABLE padded (user_id character(6), item_id character(6), rating real);
INSERT INTO padded
SELECT 'u' || u, 'i' || i, 1 + (u * 3 + i) % 5 FROM generate_series(1, 12) u, generate_series(1, 6) i;
SELECT mf_train('padded', k := 2, lambda := 1, iterations := 3) AS padded \gset
SELECT count(*) AS rows, count(mf_predict(:padded, user_id, item_id)) AS predicted,
       count(mf_predict(:padded, user_id::text, item_id::text)) AS predicted_by_text
FROM padded;
SELECT count(*) AS recommended FROM mf_recommend(:padded, 'u1'::character(6)::text, 3, false);
SELECT min(user_key) = 'u1' AND min(length(user_key)) = 2 AS keys_unpadded
FROM mf_user_factors WHERE model_id = :padded;
-- Text ids read into that model (a refit, mf_evaluate) are read as
-- character(n) compares them, trailing blanks left out: 'u1  ' is user u1
-- (it was a new user beside it, and two keys a character(n) target merged);
-- so is an id argument.
CREATE TABLE padded_text AS
SELECT rtrim(user_id) || '  ' AS user_id, rtrim(item_id) || ' ' AS item_id, rating FROM padded WHERE user_id = 'u1';
SELECT mf_refit_users(:padded, 'padded_text') AS refitted;
SELECT (SELECT n_users FROM mf_models WHERE model_id = :padded) AS users,
       (SELECT count(*) FROM mf_user_factors WHERE model_id = :padded AND rtrim(user_key) = 'u1') AS u1_rows;
SELECT value IS NOT NULL AS evaluated FROM mf_evaluate(:padded, 'padded_text') WHERE metric = 'rmse';
-- and a refit naming that user, with or without the blanks (the text
-- column had been filtered by the named text itself: 'u1' found no rows)
SELECT mf_refit_users(:padded, 'padded_text', users := ARRAY['u1']) AS named,
       mf_refit_users(:padded, 'padded_text', users := ARRAY['u1    ']) AS named_with_blanks;
SELECT count(*) AS recommended_to_u1 FROM mf_recommend(:padded, 'u1   ', 3, false);
-- A model trained from name ids refuses text ids longer than a name (a cast
-- would cut them into another's id; the keys stored would not fit a name
-- column of mf_recommend_all); one of 63 bytes is added.
CREATE TABLE name_ids (user_id name, item_id name, rating real);
INSERT INTO name_ids SELECT 'u' || u, 'i' || i, 1 + (u + i) % 5 FROM generate_series(1, 6) u, generate_series(1, 4) i;
SELECT mf_train('name_ids', k := 2, lambda := 1, iterations := 3, model_name := 'name ids') > 0 AS trained;
CREATE TABLE long_ids (user_id text, item_id text, rating real);
INSERT INTO long_ids VALUES (repeat('x', 64), 'i1', 4);
SELECT mf_refit_users('name ids', 'long_ids');
UPDATE long_ids SET user_id = repeat('x', 63);
SELECT mf_refit_users('name ids', 'long_ids') AS added;
SELECT octet_length(user_key) AS key_bytes FROM mf_user_factors f JOIN mf_models m USING (model_id)
WHERE m.name = 'name ids' AND user_key LIKE 'xxx%';
-- so are such ids named in users := from a name column (name's input had
-- cut them, refitting the user they were cut into)
SELECT mf_refit_users('name ids', users := ARRAY['u1' || repeat('x', 62)]);
-- and so are they from a text column (22001 naming the argument)
SELECT mf_refit_users('name ids', 'long_ids', users := ARRAY[repeat('y', 64)]);
-- a text column of a nondeterministic collation, where a decomposed é
-- (66 bytes) equals 22 composed ones (44 bytes), is filtered byte for
-- byte: the other id is not read, and so cannot stop the refit by its
-- length (it did)
CREATE COLLATION keys_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE keys_ci_long (user_id text COLLATE keys_ci, item_id text, rating real);
INSERT INTO keys_ci_long SELECT repeat(U&'\00E9', 22), 'i' || i, 4 FROM generate_series(1, 4) i;
INSERT INTO keys_ci_long SELECT repeat(U&'e\0301', 22), 'i' || i, 2 FROM generate_series(1, 4) i;
SELECT mf_refit_users('name ids', 'keys_ci_long', users := ARRAY[repeat(U&'\00E9', 22)]) AS composed_alone;
DROP TABLE keys_ci_long;
-- a name column of another collation than name's own ("C") is filtered in
-- its collation (the filter's comparison had no collation: 42P22)
CREATE TABLE name_ids_posix (user_id name COLLATE "POSIX", item_id name, rating real);
INSERT INTO name_ids_posix SELECT * FROM name_ids;
SELECT mf_refit_users('name ids', 'name_ids_posix', users := ARRAY['u1', 'u2']) AS posix_names;
DROP TABLE name_ids_posix;
SELECT mf_drop_model('name ids');
-- An id column of a nondeterministic collation matches more than the keys
-- do ('u2' = 'U2'), which training keeps apart: a refit naming 'u2'
-- refits u2 alone (it refitted U2 too), naming 'u4' refits no one (it
-- refitted U4), and naming 'newuser' adds no user 'NEWUSER' (it did).
CREATE TABLE keys_ci_ratings (user_id text COLLATE keys_ci, item_id text, rating real);
INSERT INTO keys_ci_ratings
SELECT CASE WHEN u % 2 = 0 THEN 'U' ELSE 'u' END || u, 'i' || i, 1 + (u * 3 + i) % 5
FROM generate_series(1, 20) u, generate_series(1, 8) i;
SELECT mf_train('keys_ci_ratings', k := 2, lambda := 1, iterations := 3, model_name := 'keys ci') > 0 AS trained;
INSERT INTO keys_ci_ratings SELECT name, 'i' || i, 3 FROM unnest(ARRAY['u2', 'NEWUSER']) name, generate_series(1, 4) i;
SELECT mf_refit_users('keys ci', users := ARRAY['u2']) AS u2_alone;
SELECT mf_refit_users('keys ci', users := ARRAY['u4']) AS not_u4;
SELECT mf_refit_users('keys ci', users := ARRAY['newuser']) AS not_newuser;
SELECT string_agg(user_key, ', ' ORDER BY user_key COLLATE "C") AS keys_of_u2_u4_newuser
FROM mf_user_factors f JOIN mf_models m USING (model_id)
WHERE m.name = 'keys ci' AND lower(user_key) IN ('u2', 'u4', 'newuser');
SELECT mf_drop_model('keys ci');
DROP TABLE keys_ci_ratings;
DROP COLLATION keys_ci;

-- A refit that adds a key sorting before the others gives it the next id,
-- yet each user's rated_items stays sorted, and mf_recommend_users leaves
-- out the new item's raters (an attack found them listed).
CREATE TABLE early_key AS
SELECT who, 'a film' AS what, 5.0 AS stars FROM named WHERE who IN ('user 1', 'user 2', 'user 3');
SELECT mf_refit_items(:named, 'early_key', 'who', 'what', 'stars') AS items_added;
-- The new item is in its raters' rated_items at once: exclude_rated leaves
-- it out of their lists (it was in no one's until the users were refitted).
SELECT count(*) AS raters_holding_it
FROM mf_user_factors f JOIN mf_item_factors i ON i.model_id = f.model_id AND i.item_key = 'a film'
WHERE f.model_id = :named AND i.item_id = ANY (f.rated_items);
SELECT count(*) FILTER (WHERE item_id = 'a film') AS rated_recommended, count(*) > 0 AS listed
FROM mf_recommend(:named, 'user 1', 1000);
SELECT bool_and(rated_items = (SELECT array_agg(x ORDER BY x) FROM unnest(rated_items) x)) AS sorted
FROM mf_user_factors WHERE model_id = :named;
-- An item the model has, refitted from its history plus a new rater's
-- rating: that rater's list gains it, and only that list is written (the
-- others hold it already).
CREATE TABLE new_rater AS
SELECT * FROM named WHERE what = 'film 7'
UNION ALL
SELECT min(who), 'film 7', 5 FROM named WHERE who NOT IN (SELECT who FROM named WHERE what = 'film 7');
SELECT who AS new_rater FROM new_rater EXCEPT SELECT who FROM named WHERE what = 'film 7' \gset
BEGIN;
SELECT mf_refit_items(:named, 'new_rater', 'who', 'what', 'stars') AS refitted;
SELECT count(*) AS user_rows_written, min(user_key) = :'new_rater' AS the_new_raters
FROM mf_user_factors WHERE model_id = :named AND xmin::text::bigint = txid_current() % 4294967296;
COMMIT;
SELECT count(*) FILTER (WHERE item_id = 'film 7') AS rated_recommended, count(*) > 0 AS listed
FROM mf_recommend(:named, :'new_rater', 1000);
CREATE TABLE early_key_users AS SELECT * FROM named WHERE who IN ('user 1', 'user 2', 'user 3')
UNION ALL SELECT * FROM early_key;
SELECT mf_refit_users(:named, 'early_key_users', 'who', 'what', 'stars') AS users_refitted;
SELECT bool_and(rated_items = (SELECT array_agg(x ORDER BY x) FROM unnest(rated_items) x)) AS sorted
FROM mf_user_factors WHERE model_id = :named;
SELECT count(*) FILTER (WHERE user_id IN ('user 1', 'user 2', 'user 3')) AS raters_listed, count(*) AS listed
FROM mf_recommend_users(:named, 'a film', 200);
-- Text ids that are not integers, in the filters of an integer-id model,
-- match nothing (as unknown ids do), where a text id argument is an error.
SELECT (SELECT array_agg(item_id) FROM mf_recommend(:ints, '7', 3, candidates := '{x, 3, 5, 99999999999999999999}')) =
       (SELECT array_agg(item_id) FROM (SELECT item_id FROM mf_recommend(:ints, '7', 100)
                                        WHERE item_id IN ('3', '5') LIMIT 3) t) AS lenient_filters;

-- Errors name the ids as they are in the data.
CREATE TABLE named_nan (who text, what text, stars float8);
INSERT INTO named_nan VALUES ('alice', 'bob', 4), ('carol', 'dave', 'NaN');
SELECT mf_train('named_nan', user_col := 'who', item_col := 'what', rating_col := 'stars');
-- quoted and escaped as JSON strings are, and a long one cut within its
-- first 100 bytes at a character boundary, as a long model name is
DELETE FROM named_nan WHERE who = 'carol';
INSERT INTO named_nan VALUES (repeat('é', 60), 'dave', 'Infinity');
SELECT mf_train('named_nan', user_col := 'who', item_col := 'what', rating_col := 'stars');
UPDATE named_nan SET who = E'say "hi"\nERROR:  not one' WHERE stars = 'Infinity';
SELECT mf_train('named_nan', user_col := 'who', item_col := 'what', rating_col := 'stars');
DELETE FROM named_nan WHERE stars = 'Infinity';
SELECT mf_train('named_nan', user_col := 'who', item_col := 'what', rating_col := 'stars',
                k := 2, lambda := 0);
SELECT mf_train('named_nan', user_col := 'who', item_col := 'what', rating_col := 'stars',
                k := 2, lambda := 1, iterations := 2) > 0 AS trained;
SET client_min_messages = notice;
SELECT mf_refit_users('named_nan', users := ARRAY[repeat('q', 150)]);
SELECT mf_refit_users('named_nan', users := ARRAY['nobody', 'no one']);
SET client_min_messages = warning;
SELECT mf_train('named_nan', user_col := 'who', item_col := 'what', rating_col := 'stars',
                warm_start := true, model_name := repeat('w', 150));
SELECT mf_drop_model(repeat('n', 150));
SELECT mf_drop_model(repeat('é', 60));
SELECT mf_predict(repeat('n', 150), 1, 1);
-- a model's name in any message is a JSON string cut within 100 bytes (a
-- name's quote and newline had made one message look like two)
SELECT mf_train('named_nan', user_col := 'who', item_col := 'what', rating_col := 'stars',
                k := 2, lambda := 1, iterations := 1,
                model_name := E'say "hi"\nERROR:  not one' || repeat('z', 120)) > 0 AS trained;
SELECT mf_predict(E'say "hi"\nERROR:  not one' || repeat('z', 120), 1, 1);
SELECT mf_drop_model(E'say "hi"\nERROR:  not one' || repeat('z', 120));
SELECT mf_drop_model('named_nan');

-- Ids are the keys' positions in byte order also where keys share their
-- first 8 bytes (which the sort compares as one integer first), are shorter
-- than 8 bytes, are empty, or hold bytes above 0x7F (after 'z' in byte
-- order), whatever the order they come in
CREATE TABLE key_order AS
SELECT key AS user_id, 'item ' || (n % 3) AS item_id, 1 + n % 5 AS rating
FROM unnest(ARRAY['abcdefgh1', 'é', 'abcdefgh', 'z', '', 'abcdefgg~', 'abcdefghi', 'ab',
                  'abcdefgh0', 'Z', 'ü', 'abc', 'abcdefgh'] || ARRAY['a b']
             -- three long keys, last in byte order: one of 2 kB copied into
             -- MfStrings' first 8 kB block, one of 9 kB for which its next block
             -- is made larger, one of 1.2 MB (over an eighth of its largest
             -- block) copied on its own
             || ARRAY['ÿ' || repeat('m', 9000), 'ÿ' || repeat('m', 1200000),
                      'ÿ' || repeat('m', 2000)]) WITH ORDINALITY AS k(key, n);
SELECT mf_train('key_order', k := 1, iterations := 1, model_name := 'key_order') AS key_order \gset
SELECT user_id, user_key,
       user_id = row_number() OVER (ORDER BY convert_to(user_key, 'UTF8')) - 1 AS byte_order
FROM mf_user_factors WHERE model_id = :key_order AND length(user_key) < 100 ORDER BY user_id;
SELECT user_id, length(user_key) AS length, user_key = 'ÿ' || repeat('m', length(user_key) - 1) AS whole
FROM mf_user_factors WHERE model_id = :key_order AND length(user_key) >= 100 ORDER BY user_id;
-- and served by them (the model's keys copied again as it is loaded)
SELECT length(k) AS length, (SELECT count(*) FROM mf_recommend('key_order', k, 3)) AS recommended
FROM unnest(ARRAY['ÿ' || repeat('m', 2000), 'ÿ' || repeat('m', 9000),
                  'ÿ' || repeat('m', 1200000)]) AS k ORDER BY 1;
SELECT mf_drop_model('key_order');
