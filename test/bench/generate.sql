-- Generates a synthetic ratings table with a real data set's shape, from a
-- fixed seed: long-tailed user degrees (Pareto, minimum 20 as in MovieLens,
-- capped at 70% of the items), item popularity falling as 1/sqrt(rank), and
-- ratings = rank-3 signal + noise on the 0.5..5 scale.
--
-- psql variables: table, n_ratings, n_users, n_items, seed.
-- The rating count is exact; users and items come out close to their targets.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SET synchronous_commit = off;
SET work_mem = '1GB';

-- A uniform number in (0, 1) from (x, seed).
CREATE OR REPLACE FUNCTION pg_temp.u01(x bigint, seed bigint) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ((hashint8extended(x, seed) & 4503599627370495)::float8 + 0.5) / 4503599627370496.0 $$;

DROP TABLE IF EXISTS :"table";
CREATE TABLE :"table" (user_id integer NOT NULL, item_id integer NOT NULL, rating real NOT NULL);

-- Degrees are drawn 40% larger than needed, duplicate pairs dropped, and
-- exactly n_ratings of the distinct pairs kept (a seeded random choice).
INSERT INTO :"table"
WITH raw AS (
    SELECT u, least(0.7 * :n_items, 20 / power(pg_temp.u01(u, :seed), 1 / 1.16)) AS w
    FROM generate_series(1, :n_users) u
), degrees AS (
    SELECT u, greatest(1, round(1.4 * w * :n_ratings / sum(w) OVER ()))::integer AS d FROM raw
), pairs AS (
    SELECT DISTINCT u, 1 + floor(:n_items * power(pg_temp.u01(u::bigint * 1000003 + j, :seed + 1), 2))::integer AS i
    FROM degrees, generate_series(1, d) j
), kept AS (
    SELECT u, i FROM pairs
    ORDER BY pg_temp.u01(u::bigint * 1000003 + i, :seed + 3)
    LIMIT :n_ratings
)
SELECT u, i,
       greatest(0.5, least(5.0, round(2 * (3.5
           + 0.8 * (sin(0.37 * u) * cos(0.11 * i) + cos(0.91 * u) * sin(0.29 * i) + sin(1.73 * u + 1) * cos(0.53 * i + 2))
           + 0.6 * (pg_temp.u01(u::bigint * 1000003 + i, :seed + 2) - 0.5))) / 2))
FROM kept
ORDER BY u, i;    -- stored in user order, as the MovieLens files are
ANALYZE :"table";
