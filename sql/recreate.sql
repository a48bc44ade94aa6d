-- A backend's cached factors never outlive the extension: after DROP and
-- CREATE EXTENSION the new model reuses model_id 1 and version 1, and must
-- still be served from its own factors.
SET client_min_messages = warning;
DROP EXTENSION mf_ext CASCADE;
-- First, in a schema whose name holds a %: the privilege checks of
-- mf_drop_model and mf_training_history had read it as a format string
-- ("too few arguments for format()").
CREATE SCHEMA "odd %s schema";
CREATE EXTENSION mf_ext SCHEMA "odd %s schema";
CREATE TABLE odd_data (user_id int, item_id int, rating float8);
INSERT INTO odd_data VALUES (1, 1, 5), (1, 2, 1), (2, 1, 4), (2, 2, 2);
SELECT "odd %s schema".mf_train('odd_data', k := 1, iterations := 2, model_name := 'odd') > 0 AS trained;
SELECT count(*) AS history_rows FROM "odd %s schema".mf_training_history('odd');
SELECT "odd %s schema".mf_drop_model('odd');
DROP EXTENSION mf_ext CASCADE;
DROP SCHEMA "odd %s schema";
DROP TABLE odd_data;
CREATE EXTENSION mf_ext;
CREATE TABLE first_data (user_id int, item_id int, rating float8);
INSERT INTO first_data VALUES (1, 1, 5), (1, 2, 1), (2, 1, 4), (2, 2, 2);
SELECT mf_train('first_data', k := 1, model_name := 'm') AS model_id;
SELECT version FROM mf_models WHERE name = 'm';
-- (Predictions are printed to 2 decimals: their last float digits depend
-- on the BLAS kernels; these are each at least 0.0009 from a rounding
-- boundary.)
SELECT round(mf_predict(1, 1, 1)::numeric, 2) AS cached_first;

DROP EXTENSION mf_ext CASCADE;
CREATE EXTENSION mf_ext;
CREATE TABLE second_data (user_id int, item_id int, rating float8);
INSERT INTO second_data VALUES (1, 1, 1), (1, 2, 5), (2, 1, 2), (2, 2, 4);
SELECT mf_train('second_data', k := 1, model_name := 'm') AS model_id;
SELECT version FROM mf_models WHERE name = 'm';
SELECT round(mf_predict(1, 1, 1)::numeric, 2) AS served,
       abs(mf_predict(1, 1, 1) - (SELECT u.factors[1] * v.factors[1]
                                  FROM mf_user_factors u, mf_item_factors v
                                  WHERE u.user_id = 1 AND v.item_id = 1)) < 1e-12 AS from_stored_factors;

-- Models can be dropped by id as well as by name.
\set SHOW_CONTEXT never
SELECT mf_drop_model(1);
SELECT count(*) AS models FROM mf_models;
SELECT mf_drop_model(1);
SELECT mf_drop_model(NULL::integer);

-- A source whose function drops the extension mid-call: an error, and the
-- extension and its models are kept.
SELECT mf_train('second_data', k := 1, model_name := 'kept') AS kept_id \gset
CREATE FUNCTION drop_mf_ext(r float8) RETURNS float8 LANGUAGE plpgsql AS
$$ BEGIN DROP EXTENSION IF EXISTS mf_ext CASCADE; RETURN r; END $$;
CREATE VIEW dropping_data AS SELECT user_id, item_id, drop_mf_ext(rating) AS rating FROM second_data;
SELECT mf_train('dropping_data', k := 1, model_name := 'kept');
SELECT mf_refit_users('kept', source := 'dropping_data', user_col := 'user_id',
                      item_col := 'item_id', rating_col := 'rating');
SELECT model_id = :kept_id AS kept FROM mf_models WHERE name = 'kept';
DROP VIEW dropping_data;
DROP FUNCTION drop_mf_ext(float8);
