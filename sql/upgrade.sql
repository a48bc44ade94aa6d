-- Upgrading from 0.1 (through 0.2, 0.3 and 0.4 to the current version) gives
-- the catalog that a fresh CREATE EXTENSION gives (its install script is
-- built from sql/mf_ext.sql); models stored by 0.1 predict the same before
-- and after ALTER EXTENSION mf_ext UPDATE, and training asks for the update
-- first.
SET client_min_messages = warning;

-- What the extension put in the catalog, by names and signatures (no OIDs):
-- one row per object or property, compared as sets below.
CREATE TEMP VIEW mf_ext_catalog (kind, object, description) AS
WITH member AS (        -- what the extension's scripts created
    SELECT d.classid, d.objid
    FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid
    WHERE d.refclassid = 'pg_extension'::regclass AND e.extname = 'mf_ext'
      AND d.deptype = 'e'
), rel AS (             -- its tables and sequences
    SELECT c.oid, c.relname
    FROM pg_class c JOIN member m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
), part AS (            -- what may carry a comment: the members, the tables'
                        -- columns, constraints and indexes
    SELECT classid, objid, 0 AS objsubid FROM member
    UNION ALL
    SELECT 'pg_class'::regclass, a.attrelid, a.attnum
    FROM pg_attribute a JOIN rel ON a.attrelid = rel.oid
    WHERE a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'pg_constraint'::regclass, con.oid, 0
    FROM pg_constraint con JOIN rel ON con.conrelid = rel.oid
    UNION ALL
    SELECT 'pg_class'::regclass, i.indexrelid, 0
    FROM pg_index i JOIN rel ON i.indrelid = rel.oid
)
-- Every member, whatever its kind.
SELECT 'member', pg_describe_object(classid, objid, 0), NULL
FROM member
UNION ALL
-- Functions: pg_get_functiondef gives the signature with argument names and
-- defaults, the result, language, volatility, strictness, parallel safety,
-- cost, rows, SET clauses and the body or the C symbol; an aggregate, its
-- functions and state.
SELECT 'function', p.oid::regprocedure::text,
       format(E'%s\nACL %s',
              CASE WHEN p.prokind = 'a'
                   THEN (SELECT format('aggregate: transition %s, state %s, final %s',
                                       a.aggtransfn::regprocedure, a.aggtranstype::regtype,
                                       a.aggfinalfn::regprocedure)
                         FROM pg_aggregate a WHERE a.aggfnoid = p.oid)
                   ELSE pg_get_functiondef(p.oid) END, p.proacl)
FROM pg_proc p JOIN member m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
UNION ALL
SELECT 'relation', c.relname,
       format('kind %s, persistence %s, replica identity %s, row security %s %s, '
              'toast table %s, options %s, ACL %s',
              c.relkind, c.relpersistence, c.relreplident, c.relrowsecurity,
              c.relforcerowsecurity, c.reltoastrelid <> 0, c.reloptions, c.relacl)
FROM pg_class c JOIN rel ON rel.oid = c.oid
UNION ALL
-- Columns in their order among the live ones. Left out: atthasmissing and
-- attmissingval (the value ADD COLUMN ... DEFAULT gives the rows stored
-- before it: shown below), and the option pg_attver that this server's build
-- stamps on every column, with a value that differs by the statement that
-- made or last altered the column.
SELECT 'column', rel.relname || '.' || a.attname,
       format('#%s %s%s, %s, default %s, storage %s, compression %s, identity %s, '
              'generated %s, collation %s, statistics %s, options %s, ACL %s',
              row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
              format_type(a.atttypid, a.atttypmod), repeat('[]', a.attndims - 1),
              CASE WHEN a.attnotnull THEN 'NOT NULL' ELSE 'NULL' END,
              pg_get_expr(ad.adbin, ad.adrelid), a.attstorage, a.attcompression,
              a.attidentity, a.attgenerated, coll.collname, a.attstattarget,
              ARRAY(SELECT o FROM unnest(a.attoptions) o WHERE o NOT LIKE 'pg\_attver=%'),
              a.attacl)
FROM pg_attribute a
JOIN rel ON a.attrelid = rel.oid
JOIN pg_class c ON c.oid = a.attrelid AND c.relkind <> 'S'
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT JOIN pg_collation coll ON coll.oid = a.attcollation
WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint', rel.relname || '.' || con.conname,
       format('%s, validated %s', pg_get_constraintdef(con.oid), con.convalidated)
FROM pg_constraint con JOIN rel ON con.conrelid = rel.oid
UNION ALL
SELECT 'index', ic.relname,
       format('%s, clustered %s, replica identity %s, options %s', pg_get_indexdef(i.indexrelid),
              i.indisclustered, i.indisreplident, ic.reloptions)
FROM pg_index i JOIN rel ON i.indrelid = rel.oid JOIN pg_class ic ON ic.oid = i.indexrelid
UNION ALL
SELECT 'trigger', rel.relname || '.' || t.tgname, pg_get_triggerdef(t.oid)
FROM pg_trigger t JOIN rel ON t.tgrelid = rel.oid
WHERE NOT t.tgisinternal
UNION ALL
SELECT 'sequence', rel.relname,
       format('%s, start %s, increment %s, min %s, max %s, cache %s, cycle %s, owned by %s',
              format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
              s.seqcache, s.seqcycle,
              (SELECT pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid)
               FROM pg_depend d
               WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
                 AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
FROM pg_sequence s JOIN rel ON rel.oid = s.seqrelid
UNION ALL
SELECT 'comment', pg_describe_object(part.classid, part.objid, part.objsubid), d.description
FROM part JOIN pg_description d
  ON d.classoid = part.classid AND d.objoid = part.objid AND d.objsubid = part.objsubid
UNION ALL
SELECT 'initial privileges', pg_describe_object(ip.classoid, ip.objoid, ip.objsubid),
       format('%s %s', ip.privtype, ip.initprivs)
FROM part JOIN pg_init_privs ip
  ON ip.classoid = part.classid AND ip.objoid = part.objid AND ip.objsubid = part.objsubid
UNION ALL
-- pg_extension_config_dump: the relations pg_dump dumps, with their filters.
SELECT 'config dump', cfg.relid::regclass::text, cfg.condition
FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS cfg (relid, condition)
WHERE e.extname = 'mf_ext';

-- A fresh install of the current version.
DROP EXTENSION mf_ext CASCADE;
CREATE EXTENSION mf_ext;
SELECT e.extversion = a.default_version AS current_version
FROM pg_extension e JOIN pg_available_extensions a ON a.name = e.extname
WHERE e.extname = 'mf_ext';
CREATE TEMP TABLE fresh_install AS SELECT * FROM mf_ext_catalog;
SELECT kind, count(*) FROM fresh_install GROUP BY kind ORDER BY kind;
-- One script made the tables whole: no column holds a value for rows stored
-- before it was added.
SELECT count(*) AS columns_added_later
FROM pg_attribute
WHERE attrelid IN ('mf_models'::regclass, 'mf_user_factors'::regclass,
                   'mf_item_factors'::regclass)
  AND atthasmissing;
DROP EXTENSION mf_ext;

-- 0.4, not yet updated, with the current module: its text forms and its
-- new-user form of mf_recommend call the C functions by the names 0.4 gave
-- them (src/compat.c; the text forms of mf_similar_* share the bigint
-- forms' functions), and answer as they do after the update (the function
-- served() names them at each call, so that after the update it calls
-- 0.5's forms).  A view over mf_predict survives the update; one over a
-- function that gained arguments (mf_similar_*) is in its way, as the
-- README says.
CREATE EXTENSION mf_ext VERSION '0.4';
CREATE TABLE keyed_data AS
SELECT 'u' || u AS user_id, 'i' || i AS item_id, ((u * 7 + i * 3) % 5 + 1)::real AS rating
FROM generate_series(1, 6) u, generate_series(1, 5) i WHERE (u + i) % 3 <> 0;
CREATE TABLE integer_data AS
SELECT u AS user_id, i AS item_id, ((u * 7 + i * 3) % 5 + 1)::real AS rating
FROM generate_series(1, 6) u, generate_series(1, 5) i WHERE (u + i) % 3 <> 0;
-- (a table of 0.5's history's name that is not the extension's is never
-- written: a trigger on it would run as whoever trains)
CREATE TABLE mf_model_history (model_id integer, run integer, iteration integer,
    warm_start boolean, loss float8, train_rmse float8, validation_rmse float8,
    seconds float8, trained_at timestamptz);
CREATE FUNCTION planted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'a trigger of the planted history table ran'; END $$;
CREATE TRIGGER planted BEFORE INSERT ON mf_model_history FOR EACH ROW EXECUTE FUNCTION planted();
SELECT mf_train('keyed_data', k := 2, iterations := 3) > 0 AS keyed,
       mf_train('integer_data', k := 2, iterations := 3) > 0 AS integer_ids;
SELECT count(*) AS planted_rows FROM mf_model_history;
DROP TABLE mf_model_history;
DROP FUNCTION planted();
CREATE FUNCTION pg_temp.served() RETURNS TABLE (form text, answer text) LANGUAGE sql AS $served$
SELECT 'mf_predict(text, text, text)', mf_predict('keyed_data', 'u1', 'i2')::text
UNION ALL
SELECT 'mf_predict(integer, text, text)',
       mf_predict((SELECT model_id FROM mf_models WHERE name = 'keyed_data'), 'u1', 'i2')::text
UNION ALL
SELECT 'mf_recommend(text, text, ...)',
       (SELECT string_agg(item_id || '=' || score, ' ' ORDER BY score DESC, item_id)
        FROM mf_recommend('keyed_data', 'u2', 3, false))
UNION ALL
SELECT 'mf_recommend(text, bigint[], float8[], ...)',
       (SELECT string_agg(item_id || '=' || score, ' ' ORDER BY score DESC, item_id)
        FROM mf_recommend('integer_data', ARRAY[1, 2]::bigint[], ARRAY[5, 1]::float8[], 3))
UNION ALL
SELECT 'mf_similar_items(text, text, integer)',
       (SELECT string_agg(item_id || '=' || similarity, ' ' ORDER BY similarity DESC, item_id)
        FROM mf_similar_items('keyed_data', 'i1', 3))
UNION ALL
SELECT 'mf_similar_users(text, text, integer)',
       (SELECT string_agg(user_id || '=' || similarity, ' ' ORDER BY similarity DESC, user_id)
        FROM mf_similar_users('keyed_data', 'u1', 3))
UNION ALL
SELECT 'mf_similar_items(text, bigint, integer)',
       (SELECT string_agg(item_id || '=' || similarity, ' ' ORDER BY similarity DESC, item_id)
        FROM mf_similar_items('integer_data', 1, 3));
$served$;
CREATE TEMP VIEW predicted_by_forms (form, answer) AS
SELECT 'mf_predict(text, text, text)', mf_predict('keyed_data', 'u1', 'i2')::text
UNION ALL
SELECT 'mf_predict(integer, text, text)',
       mf_predict((SELECT model_id FROM mf_models WHERE name = 'keyed_data'), 'u1', 'i2')::text;
CREATE TEMP VIEW similar_by_forms AS SELECT * FROM mf_similar_items('integer_data', 1, 3);
CREATE TABLE served_by_0_4 AS SELECT * FROM pg_temp.served();
-- 0.4's mf_recommend_all (4 arguments) creates its table as before.
SELECT mf_recommend_all('integer_data', 2, true, 'top_by_0_4') AS written_by_0_4;
-- Refits need the update: 0.4's tables record no one's columns, and its
-- refits cannot name them.
SELECT mf_refit_users('integer_data', 'integer_data');
SELECT count(*) AS forms, count(answer) AS answered FROM served_by_0_4;
SELECT p.oid::regprocedure AS text_form, p.prosrc AS c_function
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'mf_ext')
  AND p.proname IN ('mf_predict', 'mf_recommend', 'mf_similar_items')
  AND p.proargtypes[1] IN ('text'::regtype, 'bigint[]'::regtype)
  AND p.proargtypes[0] = 'text'::regtype
ORDER BY p.oid::regprocedure::text;
\set VERBOSITY terse
ALTER EXTENSION mf_ext UPDATE;
\set VERBOSITY default
DROP VIEW similar_by_forms;
-- so is a trigger of the name the update gives its own (a user's, made with
-- TRIGGER on 0.4's mf_models): renamed, it is a user's trigger like any
CREATE FUNCTION planted_stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER mf_models_provenance BEFORE UPDATE ON mf_models FOR EACH ROW EXECUTE FUNCTION planted_stamp();
ALTER EXTENSION mf_ext UPDATE;
ALTER TRIGGER mf_models_provenance ON mf_models RENAME TO planted_stamp;
ALTER EXTENSION mf_ext UPDATE;
DROP TRIGGER planted_stamp ON mf_models;
DROP FUNCTION planted_stamp();
SELECT p.oid::regprocedure AS text_form, p.prosrc AS c_function
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'mf_ext')
  AND p.proname IN ('mf_predict', 'mf_recommend', 'mf_similar_items')
  AND p.proargtypes[1] IN ('text'::regtype, 'bigint[]'::regtype)
  AND p.proargtypes[0] = 'text'::regtype
ORDER BY p.oid::regprocedure::text;
SELECT form FROM served_by_0_4 b JOIN pg_temp.served() a USING (form)
WHERE a.answer IS DISTINCT FROM b.answer;
SELECT form FROM served_by_0_4 b JOIN predicted_by_forms a USING (form)
WHERE a.answer IS DISTINCT FROM b.answer;
-- The update adds 0.5's forms by mixed pairs and by uuid.
SELECT mf_predict('integer_data', 1, '2') = mf_predict('integer_data', 1, 2) AS mixed_pair,
       (SELECT count(*) FROM mf_recommend('keyed_data', md5('u1')::uuid, 3, false)) AS unknown_uuid_user;
-- After the update mf_recommend_all replaces that table's rows (here with
-- the same ones) and mf_recommend_all_rows returns them.
SELECT mf_recommend_all('integer_data', 2, true, 'top_by_0_4', 'replace') AS replaced,
       (SELECT count(*) FROM ((SELECT * FROM top_by_0_4 EXCEPT ALL
                               SELECT user_id, rank, item_id, score
                               FROM mf_recommend_all_rows('integer_data', 2))
                              UNION ALL (SELECT user_id, rank, item_id, score
                                         FROM mf_recommend_all_rows('integer_data', 2)
                                         EXCEPT ALL SELECT * FROM top_by_0_4)) d) AS differing_rows;
SELECT mf_recommend_users_all('integer_data', 2, true, 'fans_after_update') AS users_written;
SELECT (SELECT count(*) FROM fans_after_update f
        WHERE (f.user_id, f.score) NOT IN (SELECT user_id, score
                                           FROM mf_recommend_users('integer_data', f.item_id, 2)))
         AS not_as_mf_recommend_users;
DROP TABLE top_by_0_4, fans_after_update;
-- the updated refits name the users (items) to refit, through the same
-- C functions 0.4's definitions called
SELECT mf_refit_users('integer_data', 'integer_data', 'user_id', 'item_id', 'rating',
                      users := ARRAY[1, 2, 2]) AS users_refitted,
       mf_refit_items('integer_data', 'integer_data', 'user_id', 'item_id', 'rating',
                      items := '{5}') AS items_refitted;
DROP TABLE keyed_data, integer_data, served_by_0_4;
DROP EXTENSION mf_ext CASCADE;

-- 0.1, updated to the current version further down.
CREATE EXTENSION mf_ext VERSION '0.1';
SELECT extversion FROM pg_extension WHERE extname = 'mf_ext';

-- A model as 0.1 stored it.
INSERT INTO mf_models (name, source, user_col, item_col, rating_col, k, lambda,
                       iterations, seed, warm_start, n_users, n_items, n_ratings,
                       skipped_rows, loss, train_rmse, train_seconds, trained_at, version)
VALUES ('old', 'public.first_data', 'user_id', 'item_id', 'rating', 2, 0.1, 2, 0, false,
        2, 3, 4, 0, '{2.5, 1.5}', 0.5, 0.01, now(), nextval('mf_model_version_seq'));
INSERT INTO mf_user_factors
SELECT model_id, u, ARRAY[u * 0.5, 1 - u * 0.25], ARRAY[1, 2]::bigint[]
FROM mf_models, generate_series(1, 2) u;
INSERT INTO mf_item_factors
SELECT model_id, i, ARRAY[i * 0.75, 2 - i * 0.5]
FROM mf_models, generate_series(1, 3) i;
CREATE TABLE before_update AS
SELECT u, i, mf_predict('old', u, i) AS prediction
FROM generate_series(1, 2) u, generate_series(1, 3) i;
SELECT array_agg(item_id ORDER BY score DESC) AS recommended FROM mf_recommend('old', 1, 3, false);

SELECT mf_train('first_data', k := 1);

ALTER EXTENSION mf_ext UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'mf_ext';

-- The updated catalog is the fresh one: as many rows, none on one side only.
CREATE TEMP TABLE updated_install AS SELECT * FROM mf_ext_catalog;
SELECT (SELECT count(*) FROM fresh_install) AS fresh,
       (SELECT count(*) FROM updated_install) AS updated;
SELECT 'fresh install only' AS side, * FROM fresh_install
EXCEPT SELECT 'fresh install only', * FROM updated_install;
SELECT 'upgrade only' AS side, * FROM updated_install
EXCEPT SELECT 'upgrade only', * FROM fresh_install;
-- What the description leaves out: the columns the upgrades added with a
-- DEFAULT (dropped again) keep it as the value of the rows stored before,
-- the 0.1 model's.
SELECT attrelid::regclass AS relation, attname, attmissingval
FROM pg_attribute
WHERE attrelid IN ('mf_models'::regclass, 'mf_user_factors'::regclass,
                   'mf_item_factors'::regclass)
  AND atthasmissing
ORDER BY attrelid::regclass::text, attnum;

-- The model stored by 0.1 is served as before.
SELECT bool_and(b.prediction = mf_predict('old', b.u, b.i)) AS same_predictions, count(*)
FROM before_update b;
SELECT array_agg(item_id ORDER BY score DESC) AS recommended FROM mf_recommend('old', 1, 3, false);
SELECT name, double_precision, load_seconds, iteration_seconds FROM mf_models;
-- 0.3's columns describe the old model as what it was: no biases, plain
-- lambda, every iteration run.
SELECT name, biases, global_mean, weighted_lambda, tolerance, iterations_run,
       train_rmse_history, validation, validation_rmse FROM mf_models;
-- ... and 0.4's as explicit feedback solved by Cholesky.
SELECT name, feedback, alpha, solver FROM mf_models;
-- 0.5's support is counted from what the model holds: each user's rated
-- items, each item's raters among them (item 3: none).
SELECT 'user' AS side, user_id AS id, support FROM mf_user_factors
UNION ALL SELECT 'item', item_id, support FROM mf_item_factors ORDER BY 1 DESC, 2;
SELECT item_id, similarity > 0 AS positive FROM mf_similar_items('old', 1, 5, min_support := 1);
SELECT * FROM mf_training_history('old');
-- A model restored from an older dump has no history rows: it shows its
-- last training as run 1, and its next training carries it over.
DELETE FROM mf_model_history WHERE model_id = (SELECT model_id FROM mf_models WHERE name = 'old');
SELECT * FROM mf_training_history('old');
SELECT count(*) FILTER (WHERE bias IS NULL) AS users_without_bias FROM mf_user_factors;

-- Training works after the update, and records its timings.
SELECT mf_train('first_data', k := 1, iterations := 3) IS NOT NULL AS trained;
SELECT mf_train('first_data', k := 2, iterations := 2, model_name := 'old') IS NOT NULL AS retrained;
SELECT run, iteration, loss IS NOT NULL AS loss FROM mf_training_history('old');
SELECT name, double_precision, load_seconds >= 0 AS has_load_seconds,
       array_length(iteration_seconds, 1) AS iteration_timings, iterations_run,
       array_length(train_rmse_history, 1) AS train_rmses
FROM mf_models WHERE name = 'first_data';
SELECT mf_train('first_data', k := 1, iterations := 3, biases := true,
                model_name := 'with_biases') IS NOT NULL AS trained_with_biases;
SELECT mf_train('first_data', k := 1, iterations := 3, feedback := 'implicit',
                model_name := 'implicit') IS NOT NULL AS trained_implicit;
