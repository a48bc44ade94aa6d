-- Every wrong call gets an error with its SQLSTATE, a message naming the
-- problem and a hint saying what to do.  try() runs a statement and returns
-- the error's fields (no row when the statement succeeds).
SET client_min_messages = warning;
CREATE FUNCTION try(statement text)
RETURNS TABLE (state text, message text, detail text, hint text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RETURN NEXT;
END $$;

CREATE TABLE tiny (user_id int, item_id int, rating float8, label text, at timestamptz);
INSERT INTO tiny VALUES (1, 1, 4, 'a', now()), (1, 2, 3, 'b', now()), (2, 1, 5, 'c', now());
CREATE INDEX tiny_user ON tiny (user_id);
CREATE TABLE empty_ratings (user_id int, item_id int, rating float8);
CREATE TABLE null_ratings (user_id int, item_id int, rating float8);
INSERT INTO null_ratings VALUES (NULL, 1, 1), (1, NULL, 1), (1, 1, NULL);
CREATE TABLE nan_ratings (user_id int, item_id int, rating numeric);
INSERT INTO nan_ratings VALUES (1, 1, 4), (7, 3, 'NaN');
CREATE TABLE inf_ratings (user_id int, item_id int, rating float8);
INSERT INTO inf_ratings VALUES (1, 1, 4), (2, 5, '-Infinity');
CREATE TABLE huge_ratings (user_id int, item_id int, rating numeric);
INSERT INTO huge_ratings VALUES (1, 1, 4), (3, 9, 1e400);
CREATE TABLE overflowing (user_id int, item_id int, rating float8);
INSERT INTO overflowing VALUES (1, 1, 1e300), (2, 1, -1e300), (1, 2, 1e300), (2, 2, 1e300);
-- ratings a float holds whose products overflow it (CG stopped at an infinite
-- product and kept the row's old factors: a model 7x off, saved)
CREATE TABLE large_ratings AS
SELECT u AS user_id, i AS item_id, ((u * 7 + i * 13) % 10 + 1) * 1e30::float8 AS rating
FROM generate_series(1, 40) u, generate_series(1, 30) i WHERE (u * 31 + i * 17) % 5 < 2;
-- ratings beyond a float's range, enough for every fold
CREATE TABLE beyond_float AS SELECT user_id, item_id, rating * 1e9 AS rating FROM large_ratings;
CREATE MATERIALIZED VIEW unpopulated AS SELECT * FROM tiny WITH NO DATA;
CREATE TABLE strangers (user_id int, item_id int, rating float8);
INSERT INTO strangers VALUES (8, 8, 1);
CREATE TABLE renamed (u int, i int, r float8);
CREATE TABLE too_few_columns (u int, i int);
CREATE VIEW labelled AS SELECT label AS user_id, item_id, rating FROM tiny;
CREATE VIEW item_labels AS SELECT user_id, label AS item_id, rating FROM tiny;
CREATE TABLE negative_strengths (user_id int, item_id int, rating float8);
INSERT INTO negative_strengths VALUES (1, 1, 2), (4, 6, -1);
CREATE TABLE reviews (user_id text, item_id text, review text);
CREATE TABLE all_null (user_id int, item_id int, rating float8);
INSERT INTO all_null VALUES (NULL, NULL, NULL), (NULL, NULL, NULL);
-- a table one of whose columns was dropped (helper 238: its dropped
-- column's type, 0, had made every call on it fail with XX000)
CREATE TABLE dropped_column AS SELECT user_id, item_id, 0 AS extra, rating FROM tiny;
ALTER TABLE dropped_column DROP COLUMN extra;
SELECT mf_train('dropped_column', k := 1) IS NOT NULL AS trained;
SELECT mf_train('tiny', k := 2) IS NOT NULL AS trained;
SELECT mf_train('tiny', k := 0, biases := true, model_name := 'biases only') IS NOT NULL AS trained;
SELECT mf_train('tiny', k := 2, feedback := 'implicit', model_name := 'tiny implicit') IS NOT NULL AS trained;

-- A fingerprint of every model, every factor row and the source tables,
-- to show the wrong calls below change nothing.
CREATE FUNCTION everything() RETURNS text LANGUAGE sql AS $$
    SELECT md5(concat_ws('|',
        (SELECT string_agg(row(m.*)::text, ';' ORDER BY model_id) FROM mf_models m),
        (SELECT string_agg(row(u.*)::text, ';' ORDER BY model_id, user_id) FROM mf_user_factors u),
        (SELECT string_agg(row(i.*)::text, ';' ORDER BY model_id, item_id) FROM mf_item_factors i),
        (SELECT string_agg(row(t.*)::text, ';' ORDER BY user_id, item_id) FROM tiny t)))
$$;
SELECT mf_train('tiny', user_col := 'label', model_name := 'by label') IS NOT NULL AS trained;
SELECT mf_train('tiny', k := 1, model_name := 'dropped') IS NOT NULL AS trained;
SELECT mf_drop_model('dropped');
SELECT everything() AS before \gset

\x on
SELECT s.n, s.statement, t.*
FROM (VALUES
    -- mf_train: numbers out of range
    (1, $$SELECT mf_train('tiny', k := 0)$$),
    (2, $$SELECT mf_train('tiny', k := 1025)$$),
    (3, $$SELECT mf_train('tiny', lambda := -0.1)$$),
    (4, $$SELECT mf_train('tiny', lambda := 'NaN')$$),
    (5, $$SELECT mf_train('tiny', lambda := 'Infinity')$$),
    (6, $$SELECT mf_train('tiny', iterations := 0)$$),
    -- NULLs and empty names (a NULL option of mf_train is one not given: retrain.sql)
    (7, $$SELECT mf_train(NULL)$$),
    (12, $$SELECT mf_train('tiny', warm_start := NULL)$$),
    (14, $$SELECT mf_train('tiny', model_name := '')$$),
    (44, $$SELECT mf_train('tiny', model_name := repeat('x', 1025))$$),
    (45, $$SELECT mf_train('tiny', item_col := 'user_id')$$),
    (46, $$SELECT mf_train('huge_ratings', k := 1)$$),
    (47, $$SELECT mf_train('overflowing', k := 1)$$),
    (151, $$SELECT mf_train('overflowing', k := 1, solver := 'cg')$$),
    (152, $$SELECT mf_train('large_ratings', k := 5, iterations := 2, solver := 'cg')$$),
    (49, $$SELECT mf_train('overflowing', k := 1, double_precision := true)$$),
    (48, $$SELECT mf_drop_model(123456)$$),
    -- relations and columns
    (15, $$SELECT mf_train('no_such_table')$$),
    (16, $$SELECT mf_train('tiny_user')$$),
    (17, $$SELECT mf_train('tiny', user_col := 'customer')$$),
    (18, $$SELECT mf_train('tiny', item_col := 'ctid')$$),
    (19, $$SELECT mf_train('tiny', rating_col := 'Rating')$$),
    (20, $$SELECT mf_train('tiny', user_col := 'at')$$),
    (21, $$SELECT mf_train('item_labels', model_name := 'tiny', k := 2, warm_start := true)$$),
    (22, $$SELECT mf_train('tiny', rating_col := 'label')$$),
    (23, $$SELECT mf_train('tiny', rating_col := 'at')$$),
    -- data
    (24, $$SELECT mf_train('empty_ratings')$$),
    (25, $$SELECT mf_train('null_ratings')$$),
    (26, $$SELECT mf_train('nan_ratings')$$),
    (27, $$SELECT mf_train('inf_ratings')$$),
    (28, $$SELECT mf_train('tiny', k := 2, lambda := 0)$$),
    (29, $$SELECT mf_train('unpopulated')$$),
    -- warm start
    (30, $$SELECT mf_train('tiny', warm_start := true, model_name := 'never trained')$$),
    (31, $$SELECT mf_train('tiny', k := 3, warm_start := true)$$),
    -- serving
    (32, $$SELECT mf_predict(123456, 1, 1)$$),
    (33, $$SELECT mf_predict('no such model', 1, 1)$$),
    (34, $$SELECT * FROM mf_recommend(123456, 1)$$),
    (35, $$SELECT * FROM mf_recommend('no such model', 1)$$),
    (36, $$SELECT * FROM mf_recommend(NULL::integer, 1)$$),
    (37, $$SELECT * FROM mf_recommend(NULL::text, 1)$$),
    (38, $$SELECT * FROM mf_recommend('tiny', 1, 0)$$),
    (39, $$SELECT * FROM mf_recommend('tiny', 1, -5)$$),
    (40, $$SELECT * FROM mf_recommend('tiny', 1, NULL)$$),
    (41, $$SELECT * FROM mf_recommend('tiny', 1, 10, NULL)$$),
    -- dropping
    (42, $$SELECT mf_drop_model('no such model')$$),
    (43, $$SELECT mf_drop_model(NULL)$$),
    -- 0.3's training options
    (51, $$SELECT mf_train('tiny', tolerance := -0.1)$$),
    (52, $$SELECT mf_train('tiny', tolerance := 1)$$),
    (53, $$SELECT mf_train('tiny', tolerance := 'NaN')$$),
    (57, $$SELECT mf_train('tiny', validation := 'no_such_table')$$),
    (58, $$SELECT mf_train('tiny', validation := 'empty_ratings')$$),
    (59, $$SELECT mf_train('tiny', validation := 'strangers')$$),
    (60, $$SELECT mf_train('tiny', validation := 'renamed')$$),
    (61, $$SELECT mf_train('tiny', validation := 'unpopulated')$$),
    -- splits
    (62, $$SELECT mf_is_test(1, 1, 1.5)$$),
    (63, $$SELECT mf_is_test(1, 1, -0.1)$$),
    (64, $$SELECT mf_is_test(1, 1, 'NaN')$$),
    (65, $$SELECT mf_fold(1, 1, 1)$$),
    (66, $$SELECT mf_fold(1, 1, 101)$$),
    -- evaluation and history
    (67, $$SELECT * FROM mf_evaluate(123456, 'tiny')$$),
    (68, $$SELECT * FROM mf_evaluate('no such model', 'tiny')$$),
    (69, $$SELECT * FROM mf_evaluate(NULL::text, 'tiny')$$),
    (70, $$SELECT * FROM mf_evaluate('tiny', NULL)$$),
    (71, $$SELECT * FROM mf_evaluate('tiny', 'tiny', k := 0)$$),
    (72, $$SELECT * FROM mf_evaluate('tiny', 'tiny', k := NULL)$$),
    (73, $$SELECT * FROM mf_evaluate('tiny', 'tiny', threshold := 'Infinity')$$),
    (74, $$SELECT * FROM mf_evaluate('tiny', 'empty_ratings')$$),
    (75, $$SELECT * FROM mf_evaluate('tiny', 'renamed')$$),
    (76, $$SELECT * FROM mf_evaluate('tiny', 'tiny', rating_col := 'label')$$),
    (77, $$SELECT * FROM mf_training_history('no such model')$$),
    (78, $$SELECT * FROM mf_training_history(123456)$$),
    (79, $$SELECT * FROM mf_training_history(NULL::integer)$$),
    -- cross-validation
    (80, $$SELECT * FROM mf_cross_validate('tiny', '{}', '{0.1}')$$),
    (81, $$SELECT * FROM mf_cross_validate('tiny', '{2}', '{}')$$),
    (82, $$SELECT * FROM mf_cross_validate('tiny', '{2, NULL}', '{0.1}')$$),
    (83, $$SELECT * FROM mf_cross_validate('tiny', '{2}', '{0.1, NULL}')$$),
    (84, $$SELECT * FROM mf_cross_validate('tiny', '{2000}', '{0.1}')$$),
    (85, $$SELECT * FROM mf_cross_validate('tiny', '{2}', '{-1}')$$),
    (86, $$SELECT * FROM mf_cross_validate('tiny', '{2}', '{0.1}', folds := 1)$$),
    (87, $$SELECT * FROM mf_cross_validate('tiny', '{2}', '{0.1}', folds := NULL)$$),
    (88, $$SELECT * FROM mf_cross_validate('tiny', NULL, '{0.1}')$$),
    (89, $$SELECT * FROM mf_cross_validate('empty_ratings', '{2}', '{0.1}')$$),
    (90, $$SELECT * FROM mf_cross_validate('tiny', '{0}', '{0.1}')$$),
    (91, $$SELECT * FROM mf_cross_validate('tiny', '{2}', '{0.1}', folds := 3)$$),
    (92, $$SELECT * FROM mf_cross_validate('tiny', '{2}', '{0.1}', rating_col := 'label')$$),
    -- implicit feedback (0.4)
    (93, $$SELECT mf_train('tiny', feedback := 'implict')$$),
    (95, $$SELECT mf_train('tiny', feedback := 'implicit', alpha := 0)$$),
    (96, $$SELECT mf_train('tiny', feedback := 'implicit', alpha := 'NaN')$$),
    (98, $$SELECT mf_train('tiny', feedback := 'implicit', biases := true)$$),
    (99, $$SELECT mf_train('tiny', solver := 'lu')$$),
    (100, $$SELECT mf_train('negative_strengths', feedback := 'implicit')$$),
    -- similarity and fold-in (0.4)
    (101, $$SELECT * FROM mf_similar_items('tiny', 1, 0)$$),
    (102, $$SELECT * FROM mf_similar_items('tiny', 1, NULL)$$),
    (103, $$SELECT * FROM mf_similar_users(NULL::text, 1)$$),
    (104, $$SELECT * FROM mf_similar_items('no such model', 1)$$),
    (105, $$SELECT * FROM mf_similar_items('biases only', 1)$$),
    (106, $$SELECT mf_fold_in('tiny', ARRAY[1, 2], ARRAY[4.0])$$),
    (107, $$SELECT mf_fold_in('tiny', NULL, ARRAY[4.0])$$),
    (108, $$SELECT mf_fold_in('tiny', ARRAY[1, NULL], ARRAY[4.0, 3])$$),
    (109, $$SELECT mf_fold_in('tiny', ARRAY[1], ARRAY['NaN'::float8])$$),
    (110, $$SELECT mf_fold_in('tiny', ARRAY[[1, 2]], ARRAY[[4.0, 3]])$$),
    (111, $$SELECT * FROM mf_recommend('tiny', ARRAY[1]::bigint[], ARRAY[4.0]::float8[], 0)$$),
    (112, $$SELECT * FROM mf_recommend('tiny', ARRAY[1]::bigint[], ARRAY[4.0]::float8[], 10, NULL)$$),
    (113, $$SELECT mf_fold_in('tiny implicit', ARRAY[1], ARRAY[-2.0])$$),
    (114, $$SELECT mf_train('tiny', nonnegative := true, solver := 'cg')$$),
    -- refit (0.4)
    (116, $$SELECT mf_refit_users('no such model')$$),
    (117, $$SELECT mf_refit_users(NULL::text)$$),
    (118, $$SELECT mf_refit_items('tiny', 'no_such_table')$$),
    (119, $$SELECT mf_refit_users('tiny', 'renamed')$$),
    (120, $$SELECT mf_refit_users('tiny implicit', 'negative_strengths')$$),
    -- batch top-N (0.4)
    (121, $$SELECT mf_recommend_all('tiny', 10, true, NULL)$$),
    (122, $$SELECT mf_recommend_all('tiny', 0, true, 'out')$$),
    (123, $$SELECT mf_recommend_all('tiny', 10, true, 'tiny')$$),
    (124, $$SELECT mf_recommend_all('tiny', 10, true, 'a b; DROP TABLE tiny')$$),
    (125, $$SELECT mf_recommend_all('tiny', -5, true, 'out')$$),
    (126, $$SELECT mf_recommend_all('tiny', 10, true, 'no_such_schema.out')$$),
    (127, $$SELECT mf_train('tiny', lambda := 0, solver := 'cg')$$),
    (128, $$SELECT mf_train('tiny', feedback := 'implicit', alpha := 1e300)$$),
    -- a model whose user ids are text keys ('by label')
    (129, $$SELECT mf_predict('by label', 1, 1)$$),
    (130, $$SELECT * FROM mf_recommend('by label', 1)$$),
    (131, $$SELECT * FROM mf_similar_users('by label', 1)$$),
    (132, $$SELECT * FROM mf_evaluate('by label', 'tiny', user_col := 'user_id')$$),
    (133, $$SELECT mf_refit_users('tiny', 'labelled')$$),
    (134, $$SELECT mf_refit_items('by label', 'empty_ratings')$$),
    (135, $$SELECT mf_train('tiny', model_name := 'v', validation := 'labelled')$$),
    (136, $$SELECT mf_predict('tiny', 'one', '1')$$),
    (137, $$SELECT mf_train('tiny', item_col := 'rating', model_name := 'float items')$$),
    (138, $$SELECT mf_train('item_labels', model_name := 'by label', warm_start := true)$$),
    -- injected and odd names, extreme values, a dropped model
    (139, $$SELECT mf_train('tiny; DROP TABLE tiny')$$),
    (140, $$SELECT mf_train('tiny"; DROP TABLE tiny; --')$$),
    (141, $$SELECT mf_train('tiny', user_col := 'user_id; DROP TABLE tiny')$$),
    (142, $$SELECT mf_train('tiny', rating_col := 'rating"); DROP TABLE tiny; --')$$),
    (143, $$SELECT mf_train('tiny', item_col := 'ïtem ✓')$$),
    (144, $$SELECT mf_train('all_null')$$),
    (145, $$SELECT mf_train('tiny', k := 2147483647)$$),
    (146, $$SELECT mf_train('tiny', iterations := -2147483648)$$),
    (147, $$SELECT mf_predict('dropped', 1, 1)$$),
    (148, $$SELECT * FROM mf_similar_items('tiny', 1, -2147483648)$$),
    (149, $$SELECT mf_recommend_all('tiny', 10, true, E'\u00e9t\u00e9"; DROP TABLE tiny; --')$$),
    (150, $$SELECT mf_predict('tiny', 'x''; DROP TABLE tiny; --', '1')$$),
    -- neighbours' support (0.5)
    (161, $$SELECT * FROM mf_similar_items('tiny', 1, 5, min_support := -1)$$),
    (162, $$SELECT * FROM mf_similar_users('tiny', 1, 5, min_support := NULL)$$),
    (163, $$SELECT * FROM mf_similar_items('tiny', '1', 5, shrinkage := -0.5)$$),
    (164, $$SELECT * FROM mf_similar_items('tiny', 1, 5, shrinkage := 'Infinity')$$),
    (165, $$SELECT * FROM mf_similar_users(1, 1, 5, 0, 'NaN')$$),
    (166, $$SELECT * FROM mf_similar_items('tiny', 1, 5, 0, NULL)$$),
    -- candidates, exclusions, users for an item (0.5)
    (167, $$SELECT * FROM mf_recommend('tiny', 1, 5, NULL, '{1}')$$),
    (168, $$SELECT * FROM mf_recommend_users('tiny', 1, 0)$$),
    (169, $$SELECT * FROM mf_recommend_users('tiny', 1, 5, NULL)$$),
    (170, $$SELECT * FROM mf_recommend_users(NULL::integer, 1)$$),
    (171, $$SELECT * FROM mf_recommend_users('no such model', 1)$$),
    (172, $$SELECT * FROM mf_recommend_users('tiny', 'x', 3)$$),
    (173, $$SELECT * FROM mf_recommend('tiny', 1, 5, candidates := '{x}')$$),
    (174, $$SELECT * FROM mf_recommend('tiny', 1, 5, candidates := '{"x"}'::text[])$$),
    (175, $$SELECT * FROM mf_recommend_users('by label', 1)$$),
    -- ids as their own types (0.5): uuids on integer sides, integers on key
    -- sides, mixed pairs, NULL models, uuid arrays
    (176, $$SELECT mf_predict('tiny', md5('x')::uuid, 1)$$),
    (177, $$SELECT mf_predict('by label', 'a', md5('x')::uuid)$$),
    (178, $$SELECT mf_predict('by label', 1, '1')$$),
    (179, $$SELECT mf_predict('tiny', 1, 'x')$$),
    (180, $$SELECT * FROM mf_recommend('tiny', '00000000-0000-0000-0000-000000000000'::uuid)$$),
    (181, $$SELECT * FROM mf_recommend_users('tiny', md5('x')::uuid)$$),
    (182, $$SELECT * FROM mf_similar_items('tiny', md5('x')::uuid)$$),
    (183, $$SELECT * FROM mf_similar_users('by label', md5('x')::uuid, 0)$$),
    (184, $$SELECT * FROM mf_recommend(NULL::text, md5('x')::uuid)$$),
    (185, $$SELECT mf_predict('no such model', md5('x')::uuid, 1)$$),
    (186, $$SELECT * FROM mf_recommend('by label', md5('x')::uuid, 3, candidates := ARRAY[md5('y')::uuid])$$),
    -- refits of named users (0.5)
    (187, $$SELECT mf_refit_users('tiny', users := '{"a": 1}'::jsonb)$$),
    (188, $$SELECT mf_refit_users('tiny', users := 42)$$),
    (189, $$SELECT mf_refit_users('tiny', users := ARRAY[[1, 2], [3, 4]])$$),
    (190, $$SELECT mf_refit_users('tiny', users := '{1,NULL}')$$),
    (191, $$SELECT mf_refit_items('tiny', items := ARRAY['1', 'x'])$$),
    (192, $$SELECT mf_refit_users('tiny', users := ARRAY[1.5])$$),
    (193, $$SELECT mf_refit_users('tiny', users := '42')$$),
    (194, $$SELECT mf_refit_users('tiny', users := ARRAY['9223372036854775808'])$$),
    -- early stopping (patience := NULL is patience not given: early_stop.sql)
    (153, $$SELECT mf_train('tiny', patience := -1, validation := 'tiny')$$),
    (154, $$SELECT mf_train('tiny', patience := 100001, validation := 'tiny')$$),
    (155, $$SELECT mf_train('tiny', patience := -2147483648)$$),
    (156, $$SELECT mf_train('tiny', patience := 3)$$),
    (157, $$SELECT mf_train('tiny', patience := 3, validation := 'tiny', feedback := 'implicit')$$),
    (158, $$SELECT mf_train('tiny', model_name := 'tiny implicit', patience := 1, validation := 'tiny')$$),
    -- mf_recommend_all into existing tables (mode), its filters; mf_recommend_all_rows
    (195, $$SELECT mf_recommend_all('tiny', 10, true, 'out', 'upsert')$$),
    (196, $$SELECT mf_recommend_all('tiny', 10, true, 'out', NULL)$$),
    (197, $$SELECT mf_recommend_all('tiny', 10, true, 'tiny', 'replace')$$),
    (198, $$SELECT mf_recommend_all('tiny', 10, true, 'tiny', 'append')$$),
    (199, $$SELECT mf_recommend_all('tiny', 10, true, 'mf_progress', 'replace')$$),
    (200, $$SELECT mf_recommend_all('tiny', 10, true, 'out', candidates := 1)$$),
    (201, $$SELECT mf_recommend_all('tiny', 10, true, 'out', exclude := ARRAY[now()])$$),
    (202, $$SELECT mf_recommend_all('tiny', 10, true, 'out', 'replace', '{1', NULL)$$),
    (203, $$SELECT * FROM mf_recommend_all_rows('tiny', 0)$$),
    (204, $$SELECT * FROM mf_recommend_all_rows('tiny', 10, NULL)$$),
    (205, $$SELECT * FROM mf_recommend_all_rows(NULL::integer)$$),
    (206, $$SELECT * FROM mf_recommend_all_rows('tiny', candidates := 'x'::text)$$),
    (207, $$SELECT * FROM mf_recommend_all_rows('no such model')$$),
    (208, $$SELECT * FROM mf_recommend_all_rows('tiny', exclude := ARRAY[true])$$),
    (209, $$SELECT mf_recommend_users_all('tiny', 10, true, NULL)$$),
    (210, $$SELECT mf_recommend_users_all('tiny', -1, true, 'out')$$),
    (211, $$SELECT mf_recommend_users_all('tiny', 10, true, 'tiny', 'replace')$$),
    (212, $$SELECT mf_recommend_users_all('tiny', 10, true, 'tiny')$$),
    (213, $$SELECT mf_recommend_users_all('no such model', 10, true, 'out')$$),
    (214, $$SELECT mf_recommend_all('tiny', 10, true, '', 'replace')$$),
    -- an integer beyond bigint named as text: out of range, not "not an integer"
    (215, $$SELECT mf_predict('tiny', '99999999999999999999', '1')$$),
    -- both ids wrong: the user's error, the first argument's
    (216, $$SELECT mf_predict('tiny', 'one', 'two')$$),
    (217, $$SELECT mf_predict('tiny', 'one'::text, md5('x')::uuid)$$),
    -- just above the limit: the product's digits, not the limit's rounded
    (218, $$SELECT mf_train('tiny', feedback := 'implicit', alpha := 200000000001)$$),
    -- empty and overlong target names (SQL would cut the latter into another's)
    (219, $$SELECT mf_recommend_all('tiny', 10, true, '""')$$),
    (220, $$SELECT mf_recommend_all('tiny', 10, true, 'public.""')$$),
    (221, $$SELECT mf_recommend_all('tiny', 10, true, repeat('t', 64))$$),
    (222, $$SELECT mf_recommend_all('tiny', 10, true, 'public."' || repeat('T', 63) || '"""')$$),
    -- a source no relation has: an OID given as a number (or a relation
    -- dropped while the call waited: test/t/007_changing_relations.pl)
    (223, $$SELECT mf_train(4294967295::oid::regclass)$$),
    (224, $$SELECT mf_refit_users('tiny', source := 4294967295::oid::regclass)$$),
    (225, $$SELECT mf_train('tiny', validation := 4294967295::oid::regclass)$$),
    (226, $$SELECT * FROM mf_evaluate('tiny', 4294967295::oid::regclass)$$),
    -- untyped literals array_in refuses for their bounds or dimensions, not
    -- their syntax: the argument named, array_in's SQLSTATE and words kept
    (227, $$SELECT * FROM mf_recommend_all_rows('tiny', 10, exclude := '[1:0]={}')$$),
    (228, $$SELECT mf_refit_users('tiny', users := '{{{{{{{1}}}}}}}')$$),
    (229, $$SELECT mf_refit_items('tiny', items := '[2147483647:2147483647]={1}')$$),
    -- a penalty so large that CG's products overflow: named as the cause
    -- (the hint had said to raise lambda, at its limit already)
    (230, $$SELECT mf_train('tiny', k := 7, solver := 'cg', lambda := 1e30)$$),
    (231, $$SELECT mf_train('tiny', k := 7, solver := 'cg', biases := true, bias_lambda := 1e30)$$),
    -- a target in another database: PostgreSQL's words, with a hint
    (232, $$SELECT mf_recommend_all('tiny', 10, true, 'otherdb.public.out')$$),
    -- two folds are the fewest: the hint does not offer fewer (README run-through helper 203)
    (233, $$SELECT * FROM mf_cross_validate('tiny', '{2}', '{0.1}', folds := 2, seed := 1)$$),
    (234, $$SELECT * FROM mf_cross_validate('tiny', '{2}', '{0.1}', folds := 2, seed := 2)$$),
    -- ratings too large: beyond a float, refused as read in single precision,
    -- naming the pair; in double precision the fit reports what overflowed
    (235, $$SELECT mf_train('overflowing', k := 1, biases := true, double_precision := true)$$),
    (236, $$SELECT mf_refit_users('tiny', 'overflowing')$$),
    (237, $$SELECT * FROM mf_cross_validate('beyond_float', '{2}', '{0.1}')$$),
    -- a grid value listed twice
    (238, $$SELECT * FROM mf_cross_validate('tiny', '{2, 3, 2}', '{0.1}')$$),
    (239, $$SELECT * FROM mf_cross_validate('tiny', '{2}', '{0.1, 1, 0.1}')$$),
    (240, $$SELECT * FROM mf_cross_validate('tiny', '{2}', '{0.1}', biases := true, bias_lambdas := '{0, -0.0}')$$),
    -- a value just out of range is printed exactly, not rounded into range
    (241, $$SELECT mf_train('tiny', biases := true, bias_lambda := -1.0000000000000002)$$),
    (242, $$SELECT mf_is_test(1, 1, 1.0000000000000002)$$),
    -- alpha with explicit feedback, which has none (README run-through helper 237):
    -- a first training, and an implicit model retrained as explicit
    (243, $$SELECT mf_train('tiny', alpha := -5)$$),
    (244, $$SELECT mf_train('tiny', model_name := 'tiny implicit', feedback := 'explicit', alpha := 5)$$),
    -- a column's hint lists the columns of the types it may have, and
    -- says so when none has (README run-through helper 237)
    (245, $$SELECT mf_train('reviews')$$),
    (246, $$SELECT mf_train('reviews', rating_col := 'review')$$),
    (247, $$SELECT mf_train('dropped_column', rating_col := 'extra')$$),
    -- the ratings in an id column (helper 238: trained, refit and scored the ids)
    (248, $$SELECT mf_train('tiny', rating_col := 'user_id')$$),
    (249, $$SELECT mf_refit_users('tiny', rating_col := 'item_id')$$),
    (250, $$SELECT * FROM mf_evaluate('tiny', 'tiny', rating_col := 'user_id')$$),
    -- lambda = 0 with implicit feedback: every item is in a user's system,
    -- so the detail is not about too few rated items (helper 238)
    (251, $$SELECT mf_train('tiny', k := 8, lambda := 0, feedback := 'implicit', solver := 'cholesky', model_name := 'implicit without lambda')$$),
    -- two or three columns missing are named in one error (helper 252:
    -- a table of other names took a call per column to learn them)
    (252, $$SELECT mf_train('renamed', user_col := 'u')$$),
    (253, $$SELECT * FROM mf_cross_validate('renamed', '{1}', '{1}')$$),
    (254, $$SELECT * FROM mf_evaluate('tiny', 'renamed')$$),
    -- a name two arguments give is named once, both arguments in the hint
    -- (helpers 254, 255: "columns "nope" and "nope"", then item_col left
    -- out); a relation of too few columns gets the column's own error,
    -- whose hint knows the types (helper 254: "it has ." and "()")
    (255, $$SELECT mf_train('tiny', user_col := 'nope', item_col := 'nope')$$),
    (256, $$SELECT mf_train('too_few_columns')$$)
) AS s(n, statement)
LEFT JOIN LATERAL try(s.statement) t ON true
ORDER BY s.n;
\x off

-- A pair repeated 10,000 times (a bot rating one item over and over) is
-- named as the cause when its row's system fails in single precision
-- (which of its two rows fails first depends on the kernel).
CREATE TABLE repeated_pair AS
SELECT u AS user_id, i AS item_id, ((u * 7 + i * 13) % 5 + 1)::float8 AS rating
FROM generate_series(1, 40) u, generate_series(1, 30) i WHERE (u * 31 + i * 17) % 5 < 2;
INSERT INTO repeated_pair SELECT 3, 7, 4 FROM generate_series(1, 10000);
SELECT state, detail ~ '^Its ratings list (item 7|user 3) 10000 times\.' AS names_the_pair, hint
FROM try($$SELECT mf_train('repeated_pair', k := 8, iterations := 2)$$);

-- None of that changed any model, or the source: byte for byte.
SELECT everything() = :'before' AS nothing_changed;
SELECT name, k, n_users, n_items FROM mf_models WHERE name = 'tiny';

-- A refit reading the repeated pair above names it too.
CREATE TABLE repeated_pair_once AS SELECT DISTINCT ON (user_id, item_id) * FROM repeated_pair;
SELECT mf_train('repeated_pair_once', k := 8, iterations := 2) IS NOT NULL AS trained;
SELECT state, detail ~ '^Its ratings list user 3 10000 times\.' AS names_the_pair, hint
FROM try($$SELECT mf_refit_items('repeated_pair_once', 'repeated_pair')$$);

-- Names are quoted, never pasted: a relation and columns with spaces,
-- quotes and non-ASCII letters train; extreme ids are ids like any other;
-- a huge n lists every item.
CREATE TABLE "Notes de l'été ""x""" ("user id" bigint, "ïtem ✓" bigint, "note;" float8);
INSERT INTO "Notes de l'été ""x""" VALUES (9223372036854775807, -9223372036854775808, 4),
    (-9223372036854775808, -9223372036854775808, 2), (9223372036854775807, 0, 5);
SELECT mf_train('"Notes de l''été ""x"""', user_col := 'user id', item_col := 'ïtem ✓',
                rating_col := 'note;', k := 1, model_name := 'modèle "été"; --') IS NOT NULL AS trained;
SELECT mf_predict('modèle "été"; --', 9223372036854775807, -9223372036854775808) IS NOT NULL AS extreme_ids,
       (SELECT count(*) FROM mf_recommend('modèle "été"; --', -9223372036854775808, 2147483647, false))
         AS every_item;

-- A hand-edited factor row of the wrong length is reported, not trusted,
-- by serving and by a warm start.
UPDATE mf_item_factors SET factors = '{1, 2, 3}'
WHERE model_id = (SELECT model_id FROM mf_models WHERE name = 'tiny') AND item_id = 1;
UPDATE mf_models SET version = nextval('mf_model_version_seq') WHERE name = 'tiny';
SELECT * FROM try($$SELECT mf_predict('tiny', 1, 1)$$);
SELECT * FROM try($$SELECT mf_train('tiny', k := 2, warm_start := true)$$);

-- Ratings too large for single precision train in double precision, as the
-- error's hint says.
SELECT mf_train('large_ratings', k := 5, iterations := 2, solver := 'cg',
                double_precision := true, model_name := 'large_double') IS NOT NULL AS trained;
SELECT loss[2] < loss[1] AS descends, train_rmse < 1e31 AS finite FROM mf_models WHERE name = 'large_double';
SELECT mf_drop_model('large_double');

-- With biases the limit is on a rating's distance from the mean: ratings
-- near 1e40, beyond a float, train a biases-only model in single precision
-- (factors need a far smaller spread), and are refused without biases; a
-- refit measures from the model's mean.  A biases-only model takes any
-- rating a float holds.
CREATE TABLE offset_ratings AS
SELECT user_id, item_id, 1e40::float8 + ((user_id * 7 + item_id * 13) % 10 + 1) * 1e26 AS rating
FROM large_ratings;
SELECT mf_train('offset_ratings', k := 0, biases := true) IS NOT NULL AS trained;
SELECT train_rmse < 0.9 * (SELECT stddev_pop(rating) FROM offset_ratings) AS fits
FROM mf_models WHERE name = 'offset_ratings';
SELECT message FROM try($$SELECT mf_train('offset_ratings', k := 2, model_name := 'no biases')$$);
SELECT message, detail, hint FROM try($$SELECT mf_refit_users('biases only', 'offset_ratings')$$);
SELECT mf_refit_users('offset_ratings', 'offset_ratings') AS refitted;
SELECT mf_drop_model('offset_ratings');
SELECT mf_train('large_ratings', k := 0, biases := true, model_name := 'large biases') IS NOT NULL AS trained;
SELECT mf_drop_model('large biases');

-- Ratings near the largest double, whose sum overflows: their mean is still
-- taken (it had been Infinity, which the errors then printed as the mean).
-- Equal ones train a biases-only fit in either precision, predicting them;
-- spread ones are refused in single precision, measured from their mean.
CREATE TABLE near_max AS
SELECT u AS user_id, i AS item_id, 1e308::float8 AS rating
FROM generate_series(1, 3) u, generate_series(1, 4) i;
SELECT mf_train('near_max', k := 2, biases := true) IS NOT NULL AS trained;
SELECT mf_train('near_max', k := 2, biases := true, double_precision := true,
                model_name := 'near_max double') IS NOT NULL AS trained;
SELECT name, global_mean, train_rmse FROM mf_models WHERE name LIKE 'near_max%' ORDER BY name;
SELECT mf_predict('near_max', 2, 3) AS single, mf_predict('near_max double', 3, 4) AS double;
UPDATE near_max SET rating = 1.7e308 WHERE item_id > 2;
SELECT message, detail FROM try($$SELECT mf_train('near_max', k := 2, biases := true)$$);
SELECT message, detail FROM try($$SELECT mf_train('near_max', k := 2, biases := true, double_precision := true, model_name := 'near_max double')$$);
SELECT mf_drop_model('near_max'), mf_drop_model('near_max double');
-- Equal ratings whatever their number: the mean is kept within the
-- ratings' range, where the sum's rounding had put it an ulp away, wider
-- than a float past about 1.5e54 (5 of 1.8e308 and 9 of 1e200 had been
-- refused; attack helper 234).
CREATE TABLE equal_huge AS
SELECT u AS user_id, u % 3 AS item_id, 1.7976931348623157e308::float8 AS rating
FROM generate_series(1, 5) u;
SELECT mf_train('equal_huge', k := 0, biases := true) IS NOT NULL AS trained;
SELECT mf_train('equal_huge', k := 0, biases := true, double_precision := true,
                model_name := 'equal_huge double') IS NOT NULL AS trained;
SELECT name, global_mean FROM mf_models WHERE name LIKE 'equal_huge%' ORDER BY name;
UPDATE equal_huge SET rating = 1e200;
INSERT INTO equal_huge SELECT u, u % 3, 1e200 FROM generate_series(6, 9) u;
SELECT mf_train('equal_huge', k := 1, biases := true) IS NOT NULL AS trained;
SELECT global_mean = 1e200 AS mean_is_the_rating FROM mf_models WHERE name = 'equal_huge';
SELECT mf_drop_model('equal_huge'), mf_drop_model('equal_huge double');
-- The mean of ratings far from 0 beside their spread is corrected for what
-- the running sum's rounding left out: 100,000 ratings of 1e13 + 0.5 .. 5
-- had a mean of 1e13 + 0.15, clamped to 1e13 + 0.5 (MovieLens plus 1e13
-- was 3 off; attack helper 236); the exact mean is 1e13 + 2.75.
CREATE TABLE offset_mean AS
SELECT u AS user_id, i AS item_id, 1e13::float8 + ((u * 7 + i * 3) % 10 + 1) / 2.0 AS rating
FROM generate_series(1, 1000) u, generate_series(1, 100) i;
SELECT mf_train('offset_mean', k := 0, biases := true, iterations := 2) IS NOT NULL AS trained;
SELECT global_mean - 1e13::float8 AS mean_less_1e13 FROM mf_models WHERE name = 'offset_mean';
-- The CG solve's hint for a penalty too large in double precision ends
-- with an "or" (attack helper 236).
SELECT message, hint FROM try($$SELECT mf_train('offset_mean', k := 4, lambda := 1.7e308, solver := 'cg', double_precision := true, model_name := 'huge_penalty')$$);
SELECT mf_drop_model('offset_mean');
DROP TABLE offset_mean;
-- Each residual's square fits in a double, but their sum does not: no
-- lambda helps, so the hint is only to scale (it had offered a larger
-- lambda; attack helper 234).
CREATE TABLE squares_huge AS
SELECT u AS user_id, i AS item_id, ((1 + u % 7) * (1 + i % 5))::float8 * 1e152 AS rating
FROM generate_series(1, 200) u, generate_series(1, 100) i;
SELECT message, detail, hint FROM try($$SELECT mf_train('squares_huge', k := 0, biases := true, double_precision := true, lambda := 1e300, iterations := 3)$$);
SELECT message, detail, hint FROM try($$SELECT mf_train('squares_huge', k := 2, double_precision := true, lambda := 1e200, iterations := 3)$$);
-- The same where the squares sum past the largest double but not past
-- twice it: the fit sums them before halving (attack helper 235).
CREATE TABLE squares_twice AS
SELECT u AS user_id, u AS item_id, (CASE WHEN u % 2 = 0 THEN 1 ELSE -1 END) * 1.2e154::float8 AS rating
FROM generate_series(1, 2) u;
SELECT message, detail, hint FROM try($$SELECT mf_train('squares_twice', k := 0, biases := true, double_precision := true, lambda := 1e300, iterations := 2)$$);
-- J's residuals take the mean off the rating first, as the solve's targets
-- do: rating - (mean + bias) rounded to an ulp of a large mean, and J rose
-- while the fit converged (attack helper 235).
CREATE TABLE large_mean (user_id int, item_id int, rating float8);
INSERT INTO large_mean VALUES (1, 1, 1e20), (2, 2, 1e20::float8 + 16384);
SELECT mf_train('large_mean', k := 0, biases := true, iterations := 3, double_precision := true) IS NOT NULL AS trained;
SELECT loss[1] > loss[2] AND loss[2] > loss[3] AS j_falls, round(train_rmse) AS train_rmse
FROM mf_models WHERE name = 'large_mean';
SELECT mf_drop_model('large_mean');
-- In single precision a row's targets are summed in floats: 100 ratings of
-- 1e37 can pass the largest float whatever lambda is (a larger lambda made
-- it worse, and the error had said lambda was too small; attack helper 235).
CREATE TABLE row_sum AS
SELECT u AS user_id, u % 2 AS item_id, CASE WHEN u % 2 = 0 THEN 1e37 ELSE -1e37 END::float8 AS rating
FROM generate_series(1, 200) u;
SELECT message, detail, hint FROM try($$SELECT mf_train('row_sum', k := 0, biases := true, iterations := 3, lambda := 1)$$);
SELECT mf_train('row_sum', k := 0, biases := true, iterations := 3, lambda := 1, double_precision := true) IS NOT NULL AS trained;
SELECT mf_drop_model('row_sum');
-- In single precision the factors a first half-step fits to ratings of
-- 1e19 are about as large, and an item's system sums their squares past the
-- largest float: no usual lambda helps, and the error had said to raise it,
-- again at every lambda it offered (attack helper 245).
CREATE TABLE gram_overflow AS
SELECT u AS user_id, i AS item_id, (1e19 * ((u * 7 + i * 3) % 5 + 1))::float8 AS rating
FROM generate_series(1, 300) u, generate_series(1, 40) i WHERE (u + i) % 3 = 0;
SELECT lambda, message, detail, hint
FROM unnest(ARRAY[0.1, 10]) lambda,
     try(format('SELECT mf_train(%L, k := 2, lambda := %s, iterations := 2)', 'gram_overflow', lambda));
-- so with lambda = 0 and lambda_per_rating > 0, which had been called
-- singular, "with lambda = 0" (attack helper 247); and in a
-- cross-validation, whose CONTEXT names the grid point and fold it fitted
SELECT message, detail FROM try($$SELECT mf_train('gram_overflow', k := 2, lambda := 0, lambda_per_rating := 0.1, iterations := 2)$$);
SELECT * FROM mf_cross_validate('gram_overflow', ARRAY[2], ARRAY[0.1], folds := 2, iterations := 2);
SELECT mf_train('gram_overflow', k := 2, lambda := 0.1, iterations := 2, double_precision := true) IS NOT NULL AS trained;
-- so, with a margin, for ratings of 1e18 in rows of 100 (their squares summed
-- 3.4 times below the largest float): they failed at every usual lambda,
-- and at 1e10 the error had blamed "so large a penalty" (attack helper 249)
CREATE VIEW gram_margin AS
SELECT user_id, item_id, 1e18::float8 + 1e13 * ((user_id * 7 + item_id * 3) % 5 + 1) AS rating
FROM gram_overflow;
SELECT lambda, message, hint
FROM unnest(ARRAY[0.1, 1e9, 1e10]) lambda,
     try(format('SELECT mf_train(%L, k := 2, lambda := %s, iterations := 2)', 'gram_margin', lambda));
CREATE VIEW gram_margin_scaled AS SELECT user_id, item_id, rating / 1e18 AS rating FROM gram_margin;
SELECT mf_train('gram_margin_scaled', k := 2, lambda := 0.1, iterations := 2) IS NOT NULL AS scaled_trains;
SELECT mf_drop_model('gram_margin_scaled');
DROP VIEW gram_margin_scaled, gram_margin;
SELECT mf_drop_model('gram_overflow');
-- A fold-in into a single-precision model refuses a rating whose distance
-- from the model's mean passes a float, as the refits do (attack helper 235).
CREATE TABLE fold_scale AS
SELECT u AS user_id, i AS item_id, ((u * 7 + i * 3) % 5 + 1)::float8 AS rating
FROM generate_series(1, 30) u, generate_series(1, 20) i WHERE (u + i) % 3 <> 0;
-- A row's penalty that overflows double precision is named (it had made
-- J NaN, reported as lambda too small; attack helper 235).
SELECT message, detail, hint FROM try($$SELECT mf_train('fold_scale', k := 2, biases := true, double_precision := true, lambda_per_rating := 1e307)$$);
SELECT message, detail, hint FROM try($$SELECT mf_train('fold_scale', k := 2, double_precision := true, lambda := 1e307, weighted_lambda := true)$$);
SELECT mf_train('fold_scale', k := 0, biases := true) IS NOT NULL AS trained;
SELECT message, detail, hint FROM try($$SELECT mf_fold_in('fold_scale', ARRAY[1, 2]::bigint[], ARRAY[1e39, 3]::float8[])$$);
SELECT message FROM try($$SELECT mf_fold_in('fold_scale', ARRAY[1, 2]::bigint[], ARRAY[3, 1e300]::float8[])$$);
SELECT mf_fold_in('fold_scale', ARRAY[1, 999]::bigint[], ARRAY[4, 1e300]::float8[]) IS NOT NULL AS unknown_item_skipped;
SELECT mf_drop_model('fold_scale');

-- mf_cross_validate measures each fold's training ratings from their own
-- mean: every rating here lies within a float's range of the whole table's
-- mean, but fold 0's training ratings have another (attack helper 229).
CREATE TABLE fold_means AS
SELECT u AS user_id, i AS item_id,
       CASE mf_fold(u, i, 3, 0) WHEN 0 THEN 3.3e38 WHEN 1 THEN -3.3e38
            ELSE CASE WHEN (u + i) % 2 = 0 THEN 3.3e38 ELSE -3.3e38 END END::float8 AS rating
FROM generate_series(1, 40) u, generate_series(1, 30) i;
SELECT * FROM mf_cross_validate('fold_means', ARRAY[0], ARRAY[1], biases := true, folds := 3);

-- A failed CG fit's hint leads with scaling the ratings and Cholesky, which
-- trains these (a larger lambda does not).
CREATE TABLE cg_scale AS
SELECT u AS user_id, i AS item_id, ((u * 7 + i * 3) % 5 + 1) * 1e12 AS rating
FROM generate_series(1, 30) u, generate_series(1, 20) i WHERE (u + i) % 3 <> 0;
SELECT message, hint FROM try($$SELECT mf_train('cg_scale', k := 2, solver := 'cg')$$);
SELECT state FROM try($$SELECT mf_train('cg_scale', k := 2, solver := 'cg', lambda := 1000)$$);
SELECT mf_train('cg_scale', k := 2) IS NOT NULL AS cholesky_trains;
-- with lambda_per_rating, the error names the penalty (it said "lambda is
-- too small" and offered lambda 0.01 beside a lambda_per_rating of 1e9;
-- attack helper 249)
SELECT detail, hint FROM try($$SELECT mf_train('cg_scale', k := 2, solver := 'cg', lambda := 0.001, lambda_per_rating := 0.1)$$);
SELECT mf_drop_model('cg_scale');
-- In double precision the CG hint's list ends with raising lambda, after an
-- "or" (it lacked one; attack helper 234).
CREATE TABLE cg_scale_double AS
SELECT u AS user_id, i AS item_id, ((u * 7 + i * 3) % 5 + 1) * 1e150::float8 AS rating
FROM generate_series(1, 30) u, generate_series(1, 20) i WHERE (u + i) % 3 <> 0;
SELECT message, hint FROM try($$SELECT mf_train('cg_scale_double', k := 8, lambda := 1e-3, double_precision := true, solver := 'cg', iterations := 2)$$);

-- The workers' aggregate refuses a made-up fixed side whose text key holds
-- a NUL (it was cut short there, 'a' instead of 'a\0b').  The two sides
-- differ only in their keys: a 64-byte header (magic, version 1, k = 1,
-- n = 2, items solved, floats with keys, lambda 0.1), two factors, the
-- key offsets, then the keys 'a', 'c' and 'a\0b', 'c' (little-endian, as the
-- workers write it).
SELECT length(mf_als_half_step('a'::text, 2.0, '\x5346666d010000000100000002000000010000000500000000000000000000009a9999999999b93f0000000000000000000000000000000000000000000000000000003f0000003f00000000020000000400000061006300'::bytea)) > 0 AS well_formed_solves;
SELECT message FROM try($$SELECT mf_als_half_step('a'::text, 2.0, '\x5346666d010000000100000002000000010000000500000000000000000000009a9999999999b93f0000000000000000000000000000000000000000000000000000003f0000003f000000000400000006000000610062006300'::bytea)$$);
