-- No role gains another's rights or exhausts the server through mf_ext:
-- a refit reads the source a model records only where the caller owns it
-- (any trainer can name that source), training and refitting refuse a role
-- that row-level security would show only part of the model tables, and a
-- cross-validation grid is held to mf_ext.max_memory before it is built.
SET client_min_messages = warning;
CREATE SCHEMA security;
SET search_path = security, public;
CREATE ROLE regress_mf_trainer;
CREATE ROLE regress_mf_refitter;
GRANT CREATE, USAGE ON SCHEMA security TO regress_mf_trainer, regress_mf_refitter;
GRANT SELECT, INSERT, UPDATE, DELETE ON mf_models, mf_user_factors, mf_item_factors
    TO regress_mf_trainer, regress_mf_refitter;
GRANT USAGE ON SEQUENCE mf_models_model_id_seq, mf_model_version_seq
    TO regress_mf_trainer, regress_mf_refitter;

-- 1. A trainer's source, named by the model, runs the trainer's code when
-- read (here a function that would record who read it): the refitter's
-- refit from the recorded source is refused; passing it explicitly is the
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
SELECT mf_refit_items('shared');
RESET ROLE;
SELECT count(*) AS code_run_by_refitter FROM readers;
SET ROLE regress_mf_refitter;
SELECT mf_refit_users('shared', 'trainer_view') AS refitted_explicitly;
RESET ROLE;
SELECT DISTINCT by_role FROM readers;
-- its owner may refit from it without naming it
SET ROLE regress_mf_trainer;
SELECT mf_refit_users('shared') AS refitted_by_owner;
RESET ROLE;
-- a recorded source that is not schema-qualified (edited by hand)
UPDATE mf_models SET source = 'trainer_view' WHERE name = 'shared';
SELECT mf_refit_users('shared');

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
SELECT mf_drop_model('shared');
DROP OWNED BY regress_mf_trainer, regress_mf_refitter;
DROP ROLE regress_mf_trainer, regress_mf_refitter;
RESET search_path;
