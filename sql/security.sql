-- No role gains another's rights or exhausts the server through mf_ext:
-- a refit follows the source and columns a model records only when no
-- other role can write mf_models, and reads a recorded source only where
-- the caller owns it (any trainer can name that source, and its columns),
-- training and refitting refuse a role that row-level security would show
-- only part of the model tables, and a cross-validation grid is held to
-- mf_ext.max_memory before it is built.
SET client_min_messages = warning;
CREATE SCHEMA security;
SET search_path = security, public;
CREATE ROLE regress_mf_trainer LOGIN;
CREATE ROLE regress_mf_refitter LOGIN;
GRANT CREATE, USAGE ON SCHEMA security TO regress_mf_trainer, regress_mf_refitter;
GRANT SELECT, INSERT, UPDATE, DELETE ON mf_models, mf_user_factors, mf_item_factors
    TO regress_mf_trainer, regress_mf_refitter;
GRANT USAGE ON SEQUENCE mf_models_model_id_seq, mf_model_version_seq
    TO regress_mf_trainer, regress_mf_refitter;

-- 1. A trainer's source, named by the model, runs the trainer's code when
-- read (here a function that would record who read it): the refitter's
-- refit from what the model records is refused, as another role (the
-- trainer) can write mf_models; naming source and columns is the
-- refitter's own choice.
SET ROLE regress_mf_trainer;
CREATE TABLE readers (by_role name);
GRANT INSERT ON readers TO PUBLIC;
CREATE FUNCTION noted(r integer) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN INSERT INTO security.readers VALUES (current_user); RETURN r; END $$;
CREATE TABLE trainer_data AS
SELECT u AS user_id, i AS item_id, 1 + (u * 3 + i) % 5 AS rating
FROM generate_series(1, 20) u, generate_series(1, 8) i;
CREATE VIEW trainer_view AS SELECT user_id, item_id, noted(rating) AS rating FROM trainer_data;
GRANT SELECT ON trainer_view TO regress_mf_refitter;
SELECT mf_train('trainer_view', k := 2, lambda := 1, iterations := 2, model_name := 'shared') > 0 AS trained;
DELETE FROM readers;
RESET ROLE;
SET ROLE regress_mf_refitter;
SELECT mf_refit_users('shared');
SELECT mf_refit_items('shared', 'trainer_view');
RESET ROLE;
SELECT count(*) AS code_run_by_refitter FROM readers;
SET ROLE regress_mf_refitter;
SELECT mf_refit_users('shared', 'trainer_view', 'user_id', 'item_id', 'rating') AS refitted_explicitly;
RESET ROLE;
SELECT DISTINCT by_role FROM readers;

-- A trainer points its model at a table only the superuser may read (a
-- password hash as the user key, the salary as the rating, item factors
-- set to 1 and lambda 0, so a refit would copy them out exactly): the
-- superuser's routine refit is refused, and nothing is copied.
CREATE TABLE app_users (id integer, email text, password_hash text, salary numeric);
INSERT INTO app_users SELECT g, 'user' || g || '@example.com', md5('secret' || g), 50000 + g * 1000
FROM generate_series(1, 5) g;
SET ROLE regress_mf_trainer;
CREATE TABLE bait AS SELECT 'u' || u AS user_id, i AS item_id, 1.0 AS rating
FROM generate_series(1, 3) u, generate_series(1, 5) i;
SELECT mf_train('bait', k := 1, lambda := 1, iterations := 1) > 0 AS bait_trained;
UPDATE mf_item_factors SET factors = '{1}'
WHERE model_id = (SELECT model_id FROM mf_models WHERE name = 'bait');
UPDATE mf_models SET source = 'security.app_users', user_col = 'password_hash', item_col = 'id',
                     rating_col = 'salary', lambda = 0, version = nextval('mf_model_version_seq')
WHERE name = 'bait';
RESET ROLE;
SELECT mf_refit_users('bait');
SELECT mf_refit_users('bait', 'app_users');
SELECT count(*) AS secrets_copied FROM mf_user_factors f JOIN app_users a ON f.user_key = a.password_hash;

-- With no other role able to write mf_models, what a model records is its
-- trainer's own: the owner of the source may refit without naming it.
REVOKE INSERT, UPDATE ON mf_models FROM regress_mf_refitter;
SET ROLE regress_mf_trainer;
SELECT mf_refit_users('shared') AS refitted_by_owner;
RESET ROLE;
-- and a refitter that may not read the recorded source's code without
-- naming it (reading a view runs its owner's functions with the reader's
-- rights) is refused, however few roles can write mf_models
GRANT INSERT, UPDATE ON mf_models TO regress_mf_refitter;
REVOKE INSERT, UPDATE ON mf_models FROM regress_mf_trainer;
SET ROLE regress_mf_refitter;
SELECT mf_refit_users('shared');
RESET ROLE;
-- a recorded source that is not schema-qualified (edited by hand)
REVOKE INSERT, UPDATE ON mf_models FROM regress_mf_refitter;
UPDATE mf_models SET source = 'trainer_view' WHERE name = 'shared';
SELECT mf_refit_users('shared');
GRANT INSERT, UPDATE ON mf_models TO regress_mf_trainer, regress_mf_refitter;

-- 2. A writer that row-level security shows part of the model tables
-- would replace and count only its part: training and refitting refuse it.
ALTER TABLE mf_user_factors ENABLE ROW LEVEL SECURITY;
CREATE POLICY first_users ON mf_user_factors USING (user_id <= 10);
SET ROLE regress_mf_trainer;
SELECT mf_train('trainer_data', k := 2, lambda := 1, iterations := 2, model_name := 'shared');
SELECT mf_refit_items('shared', 'trainer_data');
RESET ROLE;
DROP POLICY first_users ON mf_user_factors;
ALTER TABLE mf_user_factors DISABLE ROW LEVEL SECURITY;
SELECT n_users = (SELECT count(*) FROM mf_user_factors f WHERE f.model_id = m.model_id)
       AS model_whole
FROM mf_models m WHERE name = 'shared';

-- 3. A cross-validation grid is counted against mf_ext.max_memory before it
-- is built (any role may call mf_cross_validate).
SET mf_ext.max_memory = '64MB';
SELECT * FROM mf_cross_validate('trainer_data', array_fill(1, ARRAY[2000]),
                                array_fill(1.0::float8, ARRAY[2000]), folds := 100);
RESET mf_ext.max_memory;

DROP SCHEMA security CASCADE;
SELECT mf_drop_model('shared'), mf_drop_model('bait');
DROP OWNED BY regress_mf_trainer, regress_mf_refitter;
DROP ROLE regress_mf_trainer, regress_mf_refitter;
RESET search_path;
