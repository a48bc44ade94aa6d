-- The memory guard: mf_train estimates its memory from the data's counts
-- and refuses, before allocating, to go above mf_ext.max_memory; the
-- previous model is untouched.
SET client_min_messages = warning;
CREATE TABLE many AS
SELECT u AS user_id, i AS item_id, (u * i) % 5 + 1 AS rating
FROM generate_series(1, 1000) u, generate_series(1, 100) i;
ANALYZE many;
CREATE VIEW many_view AS SELECT * FROM many;
SELECT mf_train('many', k := 2, iterations := 1) IS NOT NULL AS trained;
SELECT md5(string_agg(factors::text, ';' ORDER BY user_id)) AS before
FROM mf_user_factors JOIN mf_models USING (model_id) WHERE name = 'many' \gset

SHOW mf_ext.max_memory;
SET mf_ext.threads = 2;   -- the estimate counts a buffer per thread
SET mf_ext.max_memory = '1MB';
-- a table: the planner's row estimate is enough to refuse before reading
SELECT mf_train('many', k := 2, iterations := 1);
-- a view: refused while reading, before the next 65,536 rows
SELECT mf_train('many_view', k := 2, iterations := 1, model_name := 'many');
-- a validation relation: read beside the training's ratings, counted with them
SET mf_ext.max_memory = '3MB';
SELECT mf_train('many', k := 2, iterations := 1, validation := 'many');
SELECT mf_train('many', k := 2, iterations := 1, validation := 'many_view');
-- mf_evaluate's test relation, named as such
SET mf_ext.max_memory = '1MB';
SELECT * FROM mf_evaluate('many', 'many');
SET mf_ext.max_memory = '3MB';
-- a cross-validation's fit: counted beside all the ratings, the fold's split
-- and held-out ones (about 2 MB here; the fit alone fits; the portable
-- kernel, whose estimate is every machine's)
SET mf_ext.kernel = 'portable';
SELECT k FROM mf_cross_validate('many', ARRAY[96], ARRAY[0.1], folds := 2, iterations := 1);
RESET mf_ext.kernel;
-- and each fold's split before it is made: 26 bytes a rating with all the
-- ratings, where reading them took 24
CREATE TABLE million AS
SELECT u AS user_id, i AS item_id, (u * i) % 5 + 1 AS rating
FROM generate_series(1, 10000) u, generate_series(1, 100) i;
ANALYZE million;
SET mf_ext.max_memory = '24MB';
SELECT k FROM mf_cross_validate('million', ARRAY[1], ARRAY[0.1], folds := 2, iterations := 1);
-- a refit's rows to solve, collected beside the ratings read (which 28 MB
-- holds): 20 bytes a rating more for users
RESET mf_ext.max_memory;
SELECT mf_train('million', k := 1, iterations := 1) IS NOT NULL AS trained;
SET mf_ext.max_memory = '28MB';
SELECT mf_refit_users('million', 'million');
RESET mf_ext.max_memory;
SELECT mf_drop_model('million');
DROP TABLE million;
-- and the solve, beside what the refit holds: the ratings read, the
-- collected rows (about 3 MB here, which 4 MB holds) and their solutions
-- (2,000 users at k = 200 in double precision, 3.2 MB); one thread and the
-- portable kernel, whose estimate is every machine's
CREATE TABLE solve_beside AS
SELECT u AS user_id, i AS item_id, (u * i) % 5 + 1 AS rating
FROM generate_series(1, 2000) u, generate_series(1, 50) i;
SELECT mf_train('solve_beside', k := 200, iterations := 1) IS NOT NULL AS trained;
SET mf_ext.threads = 1;
SET mf_ext.kernel = 'portable';
SET mf_ext.max_memory = '4MB';
SELECT mf_refit_users('solve_beside', 'solve_beside');
RESET mf_ext.max_memory;
RESET mf_ext.kernel;
RESET mf_ext.threads;
SELECT mf_drop_model('solve_beside');
DROP TABLE solve_beside;
-- the solver's share: large k
SET mf_ext.max_memory = '6MB';
SELECT mf_train('many', k := 1000, iterations := 1);
-- early stopping keeps a copy of the factors (4.4 MB more here), beside the
-- 1.6 MB of held-out ratings the validation keeps
SELECT mf_train('many', k := 1000, iterations := 1, validation := 'many', patience := 1);
RESET mf_ext.max_memory;

SELECT md5(string_agg(factors::text, ';' ORDER BY user_id)) = :'before' AS untouched
FROM mf_user_factors JOIN mf_models USING (model_id) WHERE name = 'many';

-- A text id longer than a factor row can hold (1 GB less 1 MB) is refused
-- as it is read, not after the training when the model is stored
CREATE VIEW longest_key AS
SELECT repeat('x', 1024 * 1024 * 1023) AS user_id, 1 AS item_id, 1.0 AS rating;
SELECT mf_train('longest_key', k := 1);
DROP VIEW longest_key;

-- Only superusers may change the limit.
CREATE ROLE regress_mf_limited;
SET ROLE regress_mf_limited;
SET mf_ext.max_memory = '100GB';
SET mf_ext.threads = 1;
RESET ROLE;
DROP ROLE regress_mf_limited;
