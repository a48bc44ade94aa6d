-- Generates a Netflix-prize-shaped ratings table (psql variables: table,
-- n_ratings, n_users, n_items) quickly, its rows in random order: users
-- drawn uniformly, items with popularity falling as 1/sqrt(rank), ratings
-- 1 to 5 at random, from fixed seeds.  A pair may repeat (a duplicate is
-- a rating like any other).  For timing the read of a large table whose
-- rows are in no order; its ratings carry no signal.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SET synchronous_commit = off;
DROP TABLE IF EXISTS :"table";
CREATE TABLE :"table" (user_id integer NOT NULL, item_id integer NOT NULL, rating real NOT NULL);
INSERT INTO :"table"
SELECT 1 + (hashint8extended(g, 1) & 2147483647) % :n_users,
       1 + floor(:n_items * power(((hashint8extended(g, 2) & 4503599627370495)::float8 + 0.5)
                                  / 4503599627370496.0, 2))::integer,
       1 + (hashint8extended(g, 3) & 2147483647) % 5
FROM generate_series(1, :n_ratings) g;
