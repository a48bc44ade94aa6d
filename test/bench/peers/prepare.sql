-- prepare.sql: one data set's split for `make bench-peers` (run by
-- test/bench/peers/rounds.sh).  Holds out :fraction of the rows of :src
-- (columns user_id, item_id, rating) by mf_is_test(user, item, :fraction,
-- :seed), renumbers the training rows' users and items densely from 0, and
-- keeps the held-out rows of users and items that have training rows:
-- tables :name_train and :name_test (user_id, item_id, rating), stored in
-- (user, item) order.  Every system, mf_ext and its peers, gets these rows.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SET work_mem = '1GB';
\set train_t :name '_train'
\set test_t :name '_test'

CREATE TEMP TABLE split AS
SELECT user_id, item_id, rating, mf_is_test(user_id, item_id, :fraction, :seed) AS is_test
FROM :"src";
CREATE TEMP TABLE users AS
SELECT user_id, (row_number() OVER (ORDER BY user_id) - 1)::integer AS dense
FROM (SELECT DISTINCT user_id FROM split WHERE NOT is_test) s;
CREATE TEMP TABLE items AS
SELECT item_id, (row_number() OVER (ORDER BY item_id) - 1)::integer AS dense
FROM (SELECT DISTINCT item_id FROM split WHERE NOT is_test) s;

DROP TABLE IF EXISTS :"train_t", :"test_t";
CREATE TABLE :"train_t" AS
SELECT u.dense AS user_id, i.dense AS item_id, s.rating::real AS rating
FROM split s JOIN users u USING (user_id) JOIN items i USING (item_id)
WHERE NOT s.is_test
ORDER BY 1, 2;
CREATE TABLE :"test_t" AS
SELECT u.dense AS user_id, i.dense AS item_id, s.rating::real AS rating
FROM split s JOIN users u USING (user_id) JOIN items i USING (item_id)
WHERE s.is_test
ORDER BY 1, 2;
VACUUM ANALYZE :"train_t";
VACUUM ANALYZE :"test_t";
