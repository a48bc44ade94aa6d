-- mf_recommend_all into existing tables (0.5): mode 'create' (a new table,
-- written directly), 'replace' (DELETE, then INSERT through the executor,
-- in the caller's transaction) and 'append'; candidates and exclusions for
-- every user; mf_recommend_all_rows returns the same rows.  Every list is
-- checked against mf_recommend for each user, with the same arguments.
SET client_min_messages = warning;
CREATE SCHEMA batch;
SET search_path = batch, public;
CREATE TABLE batch.ratings AS
SELECT u AS user_id, i AS item_id, ((u * 7 + i * 3) % 5 + 1)::float8 AS rating
FROM generate_series(1, 40) u, generate_series(1, 15) i WHERE (u + i) % 3 <> 0;
SELECT mf_train('batch.ratings', k := 3, lambda := 0.5, double_precision := true,
                model_name := 'batch') > 0 AS trained;
-- The same ratings with text ids.
CREATE TABLE batch.named AS
SELECT 'u' || user_id AS who, 'film ' || item_id AS what, rating FROM batch.ratings;
SELECT mf_train('batch.named', user_col := 'who', item_col := 'what', k := 3, lambda := 0.5, double_precision := true,
                model_name := 'batch named') > 0 AS trained;

-- Whether table holds exactly, for every user of the model (default
-- 'batch'), what mf_recommend gives with these arguments (ids and scores;
-- ranks 1..).
CREATE FUNCTION batch.same_as_mf_recommend(target regclass, n integer, exclude_rated boolean,
                                           candidates bigint[] DEFAULT NULL,
                                           exclude bigint[] DEFAULT NULL,
                                           model text DEFAULT 'batch')
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    differ bigint;
BEGIN
    EXECUTE format($q$
        WITH expected AS (
            SELECT f.user_id, row_number() OVER (PARTITION BY f.user_id
                                                 ORDER BY r.score DESC, r.item_id)::integer AS rank,
                   r.item_id, r.score
            FROM mf_user_factors f JOIN mf_models m USING (model_id),
                 LATERAL mf_recommend($5, f.user_id, $1, $2, $3, $4) r
            WHERE m.name = $5),
        got AS (SELECT user_id, rank, item_id, score FROM %s)
        SELECT count(*) FROM ((SELECT * FROM expected EXCEPT ALL SELECT * FROM got)
                              UNION ALL (SELECT * FROM got EXCEPT ALL SELECT * FROM expected)) d$q$,
        target)
    INTO differ USING n, exclude_rated, candidates, exclude, model;
    RETURN differ = 0;
END $$;

-- 0.4's positional call creates the table as before.
SELECT mf_recommend_all('batch', 3, true, 'batch.top') AS written;
SELECT batch.same_as_mf_recommend('top', 3, true);
-- 'create' refuses an existing table.
SELECT mf_recommend_all('batch', 3, true, 'batch.top');

-- An existing table with an index, a default, a trigger and a partition:
-- rows go through the executor.
CREATE TABLE batch.nightly (id bigserial PRIMARY KEY, user_id bigint NOT NULL,
                            rank integer NOT NULL, item_id bigint NOT NULL,
                            score double precision NOT NULL,
                            written_at text DEFAULT 'default applied',
                            UNIQUE (user_id, rank));
CREATE TABLE batch.trigger_log (rows_seen bigint);
CREATE FUNCTION batch.log_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO batch.trigger_log VALUES (1);
    RETURN NEW;
END $$;
CREATE TRIGGER log_rows BEFORE INSERT ON batch.nightly FOR EACH ROW EXECUTE FUNCTION batch.log_rows();
INSERT INTO batch.nightly (user_id, rank, item_id, score) VALUES (999, 1, 1, 0);
SELECT mf_recommend_all('batch', 4, target := 'batch.nightly', mode := 'replace') AS written;
SELECT batch.same_as_mf_recommend('nightly', 4, true) AS replaced,
       (SELECT count(*) FROM batch.nightly WHERE user_id = 999) AS old_rows,
       (SELECT count(*) FROM batch.trigger_log) = 1 + (SELECT count(*) FROM batch.nightly) AS triggers_ran,
       bool_and(written_at = 'default applied') AS defaults
FROM batch.nightly;
-- 'append' adds to the rows: the unique index refuses a second copy, and
-- the failed call leaves the table as it was.
CREATE TABLE batch.before AS SELECT * FROM batch.nightly;
SELECT mf_recommend_all('batch', 4, target := 'batch.nightly', mode := 'append');
SELECT (SELECT count(*) FROM (SELECT * FROM batch.nightly EXCEPT SELECT * FROM batch.before) d) = 0
       AND (SELECT count(*) FROM batch.nightly) = (SELECT count(*) FROM batch.before) AS unchanged;
-- A 'replace' that fails after its DELETE (a constraint the new rows
-- break) leaves the old rows: it is one transaction.
ALTER TABLE batch.nightly ADD CONSTRAINT top_three CHECK (rank <= 3) NOT VALID;
\set VERBOSITY terse
-- (terse: the failing row's score ends in digits the CPU's kernels choose)
SELECT mf_recommend_all('batch', 4, target := 'batch.nightly', mode := 'replace');
\set VERBOSITY default
SELECT batch.same_as_mf_recommend('nightly', 4, true) AS old_rows_kept;
ALTER TABLE batch.nightly DROP CONSTRAINT top_three;
-- 'append' into a table without the unique index adds a second copy.
CREATE TABLE batch.log (user_id bigint, rank integer, item_id bigint, score double precision);
SELECT mf_recommend_all('batch', 2, false, 'batch.log', 'append') AS first,
       mf_recommend_all('batch', 2, false, 'batch.log', 'append') AS second;
SELECT count(*) AS rows, count(DISTINCT (user_id, rank, item_id, score)) AS distinct_rows FROM batch.log;
-- 'replace' and 'append' create a missing table, as 'create' would.
SELECT mf_recommend_all('batch', 2, target := 'batch.created', mode := 'replace') AS written;
SELECT batch.same_as_mf_recommend('batch.created', 2, true) AS created;
-- A partitioned table, with columns assignment converts (integer ids,
-- numeric scores).
CREATE TABLE batch.parts (rank integer, user_id integer, item_id integer, score numeric)
    PARTITION BY RANGE (rank);
CREATE TABLE batch.parts_top PARTITION OF batch.parts FOR VALUES FROM (1) TO (2);
CREATE TABLE batch.parts_rest PARTITION OF batch.parts FOR VALUES FROM (2) TO (100);
SELECT mf_recommend_all('batch', 3, target := 'batch.parts', mode := 'replace') AS written;
SELECT (SELECT count(*) FROM batch.parts_top) = (SELECT count(DISTINCT user_id) FROM batch.parts) AS routed,
       (SELECT count(*) FROM ((SELECT user_id, rank, item_id FROM batch.parts EXCEPT
                               SELECT user_id, rank, item_id FROM batch.top)
                              UNION ALL (SELECT user_id, rank, item_id FROM batch.top EXCEPT
                                         SELECT user_id, rank, item_id FROM batch.parts)) d) = 0 AS same_lists;

-- Candidates and exclusions for every user: arrays of bigint, integer,
-- smallint, text and untyped literals; each list is mf_recommend's with
-- the same arrays.
SELECT mf_recommend_all('batch', 3, target := 'batch.cand', mode := 'replace',
                        candidates := ARRAY[1, 2, 3, 5, 8, 13]) AS written;
SELECT batch.same_as_mf_recommend('cand', 3, true, ARRAY[1, 2, 3, 5, 8, 13]);
SELECT mf_recommend_all('batch', 3, false, 'batch.cand', 'replace', ARRAY[1, 2, 3, 5, 8, 13]::bigint[],
                        ARRAY[2, NULL, 99]::smallint[]) AS written;
SELECT batch.same_as_mf_recommend('cand', 3, false, ARRAY[1, 2, 3, 5, 8, 13], ARRAY[2, NULL, 99]);
SELECT mf_recommend_all('batch', 5, target := 'batch.cand', mode := 'replace',
                        exclude := '{1,2,3}') AS written;
SELECT batch.same_as_mf_recommend('cand', 5, true, NULL, ARRAY[1, 2, 3]);
SELECT mf_recommend_all('batch', 5, target := 'batch.cand', mode := 'replace',
                        candidates := ARRAY['4', '5', 'not an id'], exclude := ARRAY[]::text[]) AS written;
SELECT batch.same_as_mf_recommend('cand', 5, true, ARRAY[4, 5]);
-- Empty candidates leave every item out: no rows, as mf_recommend gives none.
SELECT mf_recommend_all('batch', 5, target := 'batch.cand', mode := 'replace',
                        candidates := ARRAY[]::bigint[]) AS written,
       (SELECT count(*) FROM mf_recommend('batch', 1::bigint, candidates := ARRAY[]::bigint[])) AS mf_recommend_rows;

-- mf_recommend_all_rows returns what mf_recommend_all writes.
SELECT count(*) = (SELECT count(*) FROM batch.top) AS same_count,
       (SELECT count(*) FROM ((SELECT user_id, rank, item_id, score FROM mf_recommend_all_rows('batch', 3)
                               EXCEPT ALL SELECT * FROM batch.top)
                              UNION ALL (SELECT * FROM batch.top EXCEPT ALL
                                         SELECT user_id, rank, item_id, score
                                         FROM mf_recommend_all_rows('batch', 3))) d) = 0 AS same_rows,
       bool_and(user_key IS NULL AND item_key IS NULL) AS no_keys
FROM mf_recommend_all_rows('batch', 3);
SELECT user_id, rank, item_id, score = mf_predict('batch', user_id, item_id) AS is_mf_predict,
       user_key, item_key
FROM mf_recommend_all_rows('batch', 2, candidates := ARRAY[4, 5, 6])
ORDER BY user_id, rank LIMIT 4;
-- On text keys: the table holds the keys, the rows their positions and keys.
SELECT mf_recommend_all('batch named', 3, target := 'batch.named_top', mode := 'replace',
                        candidates := ARRAY['film 1', 'film 2', 'film 4', 'film 7'],
                        exclude := '{film 2}') AS written;
WITH expected AS (
    SELECT f.user_key, row_number() OVER (PARTITION BY f.user_key
                                          ORDER BY r.score DESC, r.item_id)::integer AS rank,
           r.item_id, r.score
    FROM mf_user_factors f JOIN mf_models m USING (model_id),
         LATERAL mf_recommend('batch named', f.user_key, 3,
                              candidates := ARRAY['film 1', 'film 2', 'film 4', 'film 7'],
                              exclude := '{film 2}') r
    WHERE m.name = 'batch named')
SELECT (SELECT count(*) FROM ((SELECT user_key, rank, item_key, score
                               FROM mf_recommend_all_rows('batch named', 3,
                                        candidates := ARRAY['film 1', 'film 2', 'film 4', 'film 7'],
                                        exclude := '{film 2}')
                               EXCEPT ALL SELECT * FROM batch.named_top)
                              UNION ALL (SELECT * FROM batch.named_top EXCEPT ALL
                                         SELECT user_key, rank, item_key, score
                                         FROM mf_recommend_all_rows('batch named', 3,
                                                  candidates := ARRAY['film 1', 'film 2', 'film 4', 'film 7'],
                                                  exclude := '{film 2}'))) d) = 0 AS same_rows,
       (SELECT count(*) FROM
          ((SELECT * FROM batch.named_top EXCEPT ALL SELECT * FROM expected)
           UNION ALL (SELECT * FROM expected EXCEPT ALL SELECT * FROM batch.named_top)) d) = 0
         AS as_mf_recommend
FROM (SELECT 1) one;
SELECT r.user_id = f.user_id AS user_position, r.item_id = i.item_id AS item_position
FROM mf_recommend_all_rows('batch named', 1) r
JOIN mf_models m ON m.name = 'batch named'
JOIN mf_user_factors f ON f.model_id = m.model_id AND f.user_key = r.user_key
JOIN mf_item_factors i ON i.model_id = m.model_id AND i.item_key = r.item_key
WHERE r.user_key = 'u1';

-- Privileges: the caller's.  A role with INSERT but not DELETE may append,
-- not replace.
CREATE ROLE regress_mf_batch;
GRANT USAGE ON SCHEMA batch TO regress_mf_batch;
GRANT SELECT ON mf_models, mf_user_factors, mf_item_factors TO regress_mf_batch;
GRANT SELECT, INSERT ON batch.log TO regress_mf_batch;
SET ROLE regress_mf_batch;
SELECT mf_recommend_all('batch', 1, target := 'batch.log', mode := 'append') AS appended;
SELECT mf_recommend_all('batch', 1, target := 'batch.log', mode := 'replace');
RESET ROLE;
SET search_path = batch, public;
REVOKE INSERT ON batch.log FROM regress_mf_batch;
SET ROLE regress_mf_batch;
SELECT mf_recommend_all('batch', 1, target := 'batch.log', mode := 'append');
RESET ROLE;
SET search_path = batch, public;
-- INSERT on the columns written is enough; a column missing is named.
GRANT INSERT (user_id, rank, item_id) ON batch.log TO regress_mf_batch;
SET ROLE regress_mf_batch;
SELECT mf_recommend_all('batch', 1, target := 'batch.log', mode := 'append');
RESET ROLE;
SET search_path = batch, public;
GRANT INSERT (score) ON batch.log TO regress_mf_batch;
SET ROLE regress_mf_batch;
SELECT mf_recommend_all('batch', 1, target := 'batch.log', mode := 'append') AS appended_by_columns;
-- Creating the target needs CREATE on its schema.
SELECT mf_recommend_all('batch', 1, target := 'batch.not_created');
RESET ROLE;
-- ... and a schema: an unqualified name with no schema of search_path that
-- exists is refused naming the target (it was the bare "no schema has been
-- selected to create in")
SET search_path = '';
SELECT public.mf_recommend_all('batch', 1, target := 'not_created');
SET search_path = no_such_schema;
SELECT public.mf_recommend_all('batch', 1, target := 'not_created');
SET search_path = batch, public;
-- ... and never in the system's schemas, even for a superuser (it was
-- CREATE TABLE's bare "permission denied to create", or for a role
-- without CREATE there a hint to grant it on pg_catalog)
SELECT mf_recommend_all('batch', 1, target := 'pg_catalog.not_created');
SELECT mf_recommend_all('batch', 1, target := 'pg_toast.not_created');
SELECT mf_recommend_all('batch', 1, target := 'information_schema.not_created');
-- ... nor an existing table there, whatever its columns (a catalog was
-- told it lacked a column; information_schema's tables were written)
SELECT mf_recommend_all('batch', 1, target := 'pg_catalog.pg_class', mode := 'append');
CREATE TABLE information_schema.mf_top (user_id bigint, rank integer, item_id bigint, score float8);
SELECT mf_recommend_all('batch', 1, target := 'information_schema.mf_top', mode := 'replace');
SELECT count(*) AS untouched FROM information_schema.mf_top;
DROP TABLE information_schema.mf_top;
REVOKE ALL ON mf_models, mf_user_factors, mf_item_factors FROM regress_mf_batch;
REVOKE ALL ON SCHEMA batch FROM regress_mf_batch;
REVOKE ALL ON batch.log FROM regress_mf_batch;
DROP ROLE regress_mf_batch;

-- Wrong calls: each fails before any row is deleted.
SELECT count(*) AS before FROM batch.nightly;
CREATE TABLE batch.no_score (user_id bigint, rank integer, item_id bigint);
SELECT mf_recommend_all('batch', 2, target := 'batch.no_score', mode := 'replace');
CREATE TABLE batch.point_score (user_id bigint, rank integer, item_id bigint, score point);
SELECT mf_recommend_all('batch', 2, target := 'batch.point_score', mode := 'append');
SELECT mf_recommend_all('batch named', 2, target := 'batch.nightly', mode := 'replace');
CREATE VIEW batch.top_view AS SELECT * FROM batch.top;
SELECT mf_recommend_all('batch', 2, target := 'batch.top_view', mode := 'replace');
SELECT mf_recommend_all('batch', 2, target := 'batch.nightly', mode := 'truncate');
-- a long or many-lined argument is echoed cut within 100 bytes, as a JSON string
SELECT mf_recommend_all('batch', 2, target := 'batch.nightly', mode := E'append\n' || repeat('m', 300));
SELECT mf_recommend_all('batch', 2, target := repeat('t', 300) || ' x');
SELECT mf_train('batch.ratings', feedback := repeat('f', 300));
SELECT count(*) FROM mf_recommend_all_rows('batch', 2, candidates := E'{1,\nERROR:  fake xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx');
-- array_in's other errors (dimensions, bounds) name the argument too, with its SQLSTATE
SELECT count(*) FROM mf_recommend_all_rows('batch', 2, candidates := '{{{{{{{1}}}}}}}');
SELECT mf_recommend_all('batch', 2, target := 'batch.nightly', mode := NULL);
SELECT mf_recommend_all('batch', NULL, target := 'batch.nightly', mode := 'replace');
SELECT mf_recommend_all('batch', 2, NULL, 'nightly', 'replace');
SELECT mf_recommend_all('batch', 2, target := NULL, mode := 'replace');
SELECT mf_recommend_all('batch', 0, target := 'batch.nightly', mode := 'replace');
SELECT mf_recommend_all('batch', 2, target := 'batch.nightly', mode := 'replace', candidates := 5);
SELECT mf_recommend_all('batch', 2, target := 'batch.nightly', mode := 'replace',
                        exclude := ARRAY[1.5]);
SELECT mf_recommend_all('batch named', 2, target := 'batch.named_top', mode := 'replace',
                        candidates := ARRAY[1, 2]);
-- uuids on a side of integer ids name no one: refused (they had matched
-- nothing, and the lists came back empty without a word)
SELECT mf_recommend_all('batch', 2, target := 'batch.nightly', mode := 'replace',
                        candidates := ARRAY[md5('x')::uuid]);
SELECT count(*) FROM mf_recommend_all_rows('batch', 2, exclude := ARRAY[md5('x')::uuid]);
SELECT count(*) AS after FROM batch.nightly;
-- NULL filters filter nothing.
SELECT mf_recommend_all('batch', 3, true, 'batch.cand', 'replace', NULL, NULL) AS written;
SELECT batch.same_as_mf_recommend('cand', 3, true);
SELECT count(*) FROM mf_recommend_all_rows('batch', NULL);
SELECT count(*) FROM mf_recommend_all_rows(NULL::text);
SELECT count(*) FROM mf_recommend_all_rows('no such model');
SELECT count(*) FROM mf_recommend_all_rows('batch', 2, candidates := '{x}');
SELECT count(*) FROM mf_recommend_all_rows('batch', 2, candidates := 'not an array');

-- mf_recommend_users_all: every item's users, as mf_recommend_users lists
-- them for each item (ids, scores, and ranks in its order: users 5, 20 and
-- 35 rated alike, and tie), leaving out the raters or not, with n beyond
-- the users, on a model with biases and on text keys.
CREATE FUNCTION batch.same_as_mf_recommend_users(model text, target regclass, n integer,
                                                 exclude_rated boolean, candidates text[] DEFAULT NULL,
                                                 exclude text[] DEFAULT NULL)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    differ bigint;
BEGIN
    EXECUTE format($q$
        WITH expected AS (
            SELECT f.item_key, f.item_id, r.rank::integer, r.user_id, r.score
            FROM mf_item_factors f JOIN mf_models m USING (model_id),
                 LATERAL mf_recommend_users($1, coalesce(f.item_key, f.item_id::text), $2, $3, $4, $5)
                     WITH ORDINALITY r(user_id, score, rank)
            WHERE m.name = $1),
        got AS (SELECT item_id::text, rank, user_id::text, score FROM %s)
        SELECT count(*) FROM ((SELECT coalesce(item_key, item_id::text), rank, user_id, score
                               FROM expected EXCEPT ALL SELECT * FROM got)
                              UNION ALL (SELECT * FROM got EXCEPT ALL
                                         SELECT coalesce(item_key, item_id::text), rank, user_id, score
                                         FROM expected)) d$q$, target)
    INTO differ USING model, n, exclude_rated, candidates, exclude;
    RETURN differ = 0;
END $$;
SELECT mf_recommend_users_all('batch', 5, target := 'batch.fans') AS written;
SELECT batch.same_as_mf_recommend_users('batch', 'batch.fans', 5, true) AS fans,
       (SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
        FROM pg_attribute WHERE attrelid = 'batch.fans'::regclass AND attnum > 0) AS columns;
SELECT mf_recommend_users_all('batch', 100, false, 'batch.fans', 'replace') AS written;
SELECT batch.same_as_mf_recommend_users('batch', 'batch.fans', 100, false) AS every_user;
SELECT mf_train('batch.ratings', k := 2, lambda := 0.5, biases := true, double_precision := true,
                model_name := 'batch biases') > 0 AS trained;
SELECT mf_recommend_users_all('batch biases', 4, target := 'batch.fans', mode := 'replace') AS written;
SELECT batch.same_as_mf_recommend_users('batch biases', 'batch.fans', 4, true) AS with_biases;
SELECT mf_recommend_users_all('batch named', 3, target := 'batch.named_fans') AS written;
SELECT batch.same_as_mf_recommend_users('batch named', 'batch.named_fans', 3, true) AS on_keys;
-- Into an existing table, through the executor; its shape is
-- (item_id, rank, user_id, score).
CREATE TABLE batch.item_fans (item_id bigint, rank integer, user_id bigint, score float8,
                              PRIMARY KEY (item_id, rank));
SELECT mf_recommend_users_all('batch', 2, target := 'batch.item_fans', mode := 'append') AS written;
SELECT batch.same_as_mf_recommend_users('batch', 'batch.item_fans', 2, true) AS appended;
-- Among candidate users less excluded ones (arrays of user ids, as the
-- filters of mf_recommend_all): each item's list is mf_recommend_users'
-- with the same arrays; on text keys too.
SELECT mf_recommend_users_all('batch', 3, target := 'batch.item_fans', mode := 'replace',
                              candidates := ARRAY[5, 20, 35, 40, 41, 42, 1000000], exclude := '{41}') AS written;
SELECT batch.same_as_mf_recommend_users('batch', 'batch.item_fans', 3, true,
                                        '{5,20,35,40,41,42,1000000}', '{41}') AS among_candidates;
SELECT mf_recommend_users_all('batch named', 2, true, 'batch.named_fans', 'replace',
                              exclude := (SELECT array_agg(user_key) FROM mf_user_factors u
                                          JOIN mf_models m USING (model_id)
                                          WHERE m.name = 'batch named' AND u.user_id % 2 = 0)) AS written;
SELECT batch.same_as_mf_recommend_users('batch named', 'batch.named_fans', 2, true, NULL,
                                        (SELECT array_agg(user_key) FROM mf_user_factors u
                                         JOIN mf_models m USING (model_id)
                                         WHERE m.name = 'batch named' AND u.user_id % 2 = 0)) AS keys_excluded;
SELECT mf_recommend_users_all('batch', 2, target := 'batch.item_fans', mode := 'append');
SELECT mf_recommend_users_all('batch', 2, target := 'batch.no_score', mode := 'replace');
SELECT mf_recommend_users_all('batch named', 2, target := 'batch.item_fans', mode := 'replace');
SELECT mf_recommend_users_all('batch', 0, target := 'batch.item_fans', mode := 'replace');
SELECT mf_recommend_users_all('batch', 2, target := 'batch.item_fans', mode := 'merge');
SELECT mf_recommend_users_all('batch', 2, target := NULL);
SELECT mf_recommend_users_all('batch', 2, NULL, 'batch.item_fans', 'replace');
SELECT count(*) AS kept FROM batch.item_fans;

-- A batch call inside another (a trigger of the target calling
-- mf_recommend_all, which would nest again at each row until the stack
-- ran out, threads waiting at every level) is refused; the rows stay.
CREATE TABLE batch.recursive (user_id bigint, rank integer, item_id bigint, score float8);
CREATE FUNCTION batch.again() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mf_recommend_all('batch', 1, target := 'batch.recursive', mode := 'append');
    RETURN NEW;
END $$;
INSERT INTO batch.recursive VALUES (0, 0, 0, 0);
CREATE TRIGGER again BEFORE INSERT ON batch.recursive FOR EACH ROW EXECUTE FUNCTION batch.again();
\set VERBOSITY terse
SELECT mf_recommend_all('batch', 1, target := 'batch.recursive', mode := 'replace');
\set VERBOSITY default
SELECT count(*) AS kept, min(user_id) AS row_kept FROM batch.recursive;

-- 'replace' holds the target against other writers (not readers) until
-- the transaction ends, so that two replaces at once wait for each other;
-- a generated column of the shape is refused before anything is deleted.
CREATE TABLE batch.locked (user_id bigint, rank integer, item_id bigint, score float8);
BEGIN;
SELECT mf_recommend_all('batch', 1, target := 'batch.locked', mode := 'replace') > 0 AS replaced,
       (SELECT string_agg(mode, ', ' ORDER BY mode) FROM pg_locks
        WHERE relation = 'batch.locked'::regclass AND pid = pg_backend_pid()) AS locks;
ROLLBACK;
CREATE TABLE batch.generated (user_id bigint, rank integer, item_id bigint,
                              score float8 GENERATED ALWAYS AS (1.0) STORED);
SELECT mf_recommend_all('batch', 1, target := 'batch.generated', mode := 'replace');
-- so is an identity column GENERATED ALWAYS, which the INSERT cannot write
-- (it was the INSERT's bare 428C9); BY DEFAULT, it is written.
CREATE TABLE batch.identity (user_id bigint, rank integer GENERATED ALWAYS AS IDENTITY,
                             item_id bigint, score float8);
SELECT mf_recommend_all('batch', 1, target := 'batch.identity', mode := 'append');
ALTER TABLE batch.identity ALTER COLUMN rank SET GENERATED BY DEFAULT;
SELECT mf_recommend_all('batch', 1, target := 'batch.identity', mode := 'append') AS written_by_default,
       batch.same_as_mf_recommend('batch.identity', 1, true) AS same;

-- A rank column must hold the ranks 1 to n (varchar(1) holds 1 to 9; it
-- was the INSERT's bare 22001 at rank 10), and a score column the scores
-- (smallint and numeric(2, 1) had rounded them without a word, or failed
-- with a bare 22003): refused before anything is deleted.
CREATE TABLE batch.short_rank (user_id bigint, rank varchar(1), item_id bigint, score float8);
INSERT INTO batch.short_rank VALUES (0, '0', 0, 0);
SELECT mf_recommend_all('batch', 10, target := 'batch.short_rank', mode := 'replace');
SELECT mf_recommend_all('batch', 9, target := 'batch.short_rank', mode := 'replace') AS nine_ranks;
CREATE TABLE batch.rounded (user_id bigint, rank integer, item_id bigint, score smallint);
INSERT INTO batch.rounded VALUES (0, 0, 0, 0);
SELECT mf_recommend_all('batch', 1, target := 'batch.rounded', mode := 'replace');
ALTER TABLE batch.rounded ALTER COLUMN score TYPE numeric(2, 1);
SELECT mf_recommend_all('batch', 1, target := 'batch.rounded', mode := 'replace');
SELECT count(*) AS kept FROM batch.rounded;
-- numeric without a precision takes them as a cast does, to 15 digits
ALTER TABLE batch.rounded ALTER COLUMN score TYPE numeric;
SELECT mf_recommend_all('batch', 1, target := 'batch.rounded', mode := 'replace') AS into_numeric;
SELECT count(*) AS as_cast FROM batch.rounded r JOIN mf_recommend_all_rows('batch', 1) e
    USING (user_id, rank, item_id) WHERE r.score = e.score::numeric;
-- text and varchar take each score's shortest exact decimal, whatever the
-- session's extra_float_digits (-15 had stored one digit: '4')
ALTER TABLE batch.rounded ALTER COLUMN score TYPE text;
SET extra_float_digits = -15;
SELECT mf_recommend_all('batch', 1, target := 'batch.rounded', mode := 'replace') AS into_text;
RESET extra_float_digits;
SELECT count(*) AS exact FROM batch.rounded r JOIN mf_recommend_all_rows('batch', 1) e
    USING (user_id, rank, item_id) WHERE r.score::float8 = e.score AND r.score = e.score::text;
-- a varchar of 24 characters holds the longest of them; 23 could cut one
ALTER TABLE batch.rounded ALTER COLUMN score TYPE varchar(23);
SELECT mf_recommend_all('batch', 1, target := 'batch.rounded', mode := 'replace');
ALTER TABLE batch.rounded ALTER COLUMN score TYPE varchar(24);
SELECT mf_recommend_all('batch', 1, target := 'batch.rounded', mode := 'replace') AS into_varchar_24;
ALTER TABLE batch.rounded ALTER COLUMN score TYPE varchar;
SET extra_float_digits = 0;
SELECT mf_recommend_all('batch', 1, target := 'batch.rounded', mode := 'replace') AS into_varchar;
RESET extra_float_digits;
SELECT count(*) AS exact FROM batch.rounded r JOIN mf_recommend_all_rows('batch', 1) e
    USING (user_id, rank, item_id) WHERE r.score::float8 = e.score AND r.score = e.score::text;

-- In a read-only transaction a target that is not temporary is refused
-- before anything is read (it was the INSERT's bare 25006, in a statement
-- of its own), and so is a new one; an existing temporary one is written,
-- as SQL allows.  Training and refits are refused alike.
BEGIN READ ONLY;
SELECT mf_recommend_all('batch', 1, target := 'batch.locked', mode := 'append');
ROLLBACK;
BEGIN READ ONLY;
SELECT mf_recommend_all('batch', 1, target := 'batch.not_created');
ROLLBACK;
CREATE TEMPORARY TABLE read_only_top (user_id bigint, rank integer, item_id bigint, score float8);
BEGIN READ ONLY;
SELECT mf_recommend_all('batch', 1, target := 'pg_temp.read_only_top', mode := 'append')
       AS written_to_temporary;
SELECT batch.same_as_mf_recommend('pg_temp.read_only_top', 1, true) AS same;
ROLLBACK;
BEGIN READ ONLY;
SELECT mf_refit_users('batch');
ROLLBACK;
BEGIN READ ONLY;
SELECT mf_train('batch.ratings', k := 3, model_name := 'batch');
ROLLBACK;
-- A name of 63 bytes with a doubled quote is a name (the longest one):
-- only longer ones are refused, since SQL would cut them (sql/errors.sql).
SELECT mf_recommend_all('batch', 1, target := 'batch."' || repeat('q', 61) || '""x"') AS written_to_longest_name;
SELECT octet_length(relname) AS name_bytes FROM pg_class WHERE relname LIKE 'qqq%';

-- A target with rules is refused: they would rewrite the INSERT and DELETE.
CREATE TABLE batch.ruled (user_id bigint, rank integer, item_id bigint, score float8);
CREATE RULE nothing AS ON INSERT TO batch.ruled DO INSTEAD NOTHING;
SELECT mf_recommend_all('batch', 1, target := 'batch.ruled', mode := 'append');
-- once the rule is dropped, the table is written (pg_class.relhasrules stays
-- true until a VACUUM: it had been refused until then)
DROP RULE nothing ON batch.ruled;
SELECT relhasrules FROM pg_class WHERE oid = 'batch.ruled'::regclass;
SELECT mf_recommend_all('batch', 1, target := 'batch.ruled', mode := 'append') > 0 AS written_after_rule;

-- An integer id column takes the ids that fit it; the first that does not
-- is an error naming it and the column (it was the cast's bare "integer
-- out of range"), and 'replace' keeps the old rows.
CREATE TABLE batch.wide_ids (user_id bigint, item_id bigint, rating float8);
INSERT INTO batch.wide_ids VALUES (1, 1, 4), (1, 2, 3), (3000000000, 1, 5), (2, 40000, 2),
                                  (16777217, 2, 1);
SELECT mf_train('batch.wide_ids', k := 1, lambda := 0.1, model_name := 'wide ids') > 0 AS trained;
CREATE TABLE batch.narrow_users (user_id integer, rank integer, item_id bigint, score float8);
INSERT INTO batch.narrow_users VALUES (0, 0, 0, 0);
SELECT mf_recommend_all('wide ids', 2, false, target := 'batch.narrow_users', mode := 'replace');
SELECT count(*) AS kept, min(user_id) AS row_kept FROM batch.narrow_users;
CREATE TABLE batch.narrow_items (user_id bigint, rank integer, item_id smallint, score float8);
SELECT mf_recommend_all('wide ids', 2, false, target := 'batch.narrow_items', mode := 'append');
-- oid and numeric(p, s) columns too; numeric(p, s < 0), real and double
-- precision ones would round an id into another (16777217 is 16777216 as
-- a real, 1 is 0 as a numeric(12, -1))
CREATE TABLE batch.numeric_users (user_id numeric(5, 0), rank integer, item_id oid, score float8);
SELECT mf_recommend_all('wide ids', 2, false, target := 'batch.numeric_users', mode := 'append');
CREATE TABLE batch.rounded_users (user_id numeric(12, -1), rank integer, item_id bigint, score float8);
SELECT mf_recommend_all('wide ids', 2, false, target := 'batch.rounded_users', mode := 'append');
CREATE TABLE batch.rounded_wide (user_id numeric(20, -3), rank integer, item_id bigint, score float8);
SELECT mf_recommend_all('wide ids', 2, false, target := 'batch.rounded_wide', mode := 'append');
CREATE TABLE batch.real_users (user_id real, rank integer, item_id double precision, score float8);
SELECT mf_recommend_all('wide ids', 2, false, target := 'batch.real_users', mode := 'append');
-- varchar(n) and character(n) columns hold the ids of at most n characters
-- (it was INSERT's bare "value too long")
CREATE TABLE batch.varchar_users (user_id varchar(5), rank integer, item_id char(5), score float8);
SELECT mf_recommend_all('wide ids', 2, false, target := 'batch.varchar_users', mode := 'append');
CREATE TABLE batch.char_items (user_id varchar(10), rank integer, item_id char(5), score float8);
SELECT mf_recommend_all('wide ids', 2, false, target := 'batch.char_items', mode := 'append') AS written;
SELECT string_agg(DISTINCT item_id, ',' ORDER BY item_id) AS items_stored FROM batch.char_items;
-- a double precision column and ids past 2^53, an oid column and a negative id
CREATE TABLE batch.huge_ids (user_id bigint, item_id bigint, rating float8);
INSERT INTO batch.huge_ids VALUES (9007199254740993, -1, 4), (9007199254740993, 2, 3), (1, 2, 5), (1, -1, 1),
                                  (100000000000000001, 2, 4);
SELECT mf_train('batch.huge_ids', k := 1, lambda := 0.1, model_name := 'huge ids') > 0 AS trained;
CREATE TABLE batch.double_users (user_id double precision, rank integer, item_id bigint, score float8);
SELECT mf_recommend_all('huge ids', 2, false, target := 'batch.double_users', mode := 'append');
CREATE TABLE batch.oid_items (user_id bigint, rank integer, item_id oid, score float8);
SELECT mf_recommend_all('huge ids', 2, false, target := 'batch.oid_items', mode := 'append');
-- and a regclass column, an alias of oid (it was INSERT's bare "OID out of range")
CREATE TABLE batch.regclass_users (user_id regclass, rank integer, item_id bigint, score float8);
SELECT mf_recommend_all('huge ids', 2, false, target := 'batch.regclass_users', mode := 'append');
-- a money column holds an id in cents (with lc_monetary C): up to 2^63 / 100
SET lc_monetary = 'C';
CREATE TABLE batch.money_users (user_id money, rank integer, item_id bigint, score float8);
SELECT mf_recommend_all('huge ids', 2, false, target := 'batch.money_users', mode := 'append');
SELECT count(*) AS kept FROM batch.money_users;
SELECT mf_recommend_all('wide ids', 2, false, target := 'batch.money_users', mode := 'append') AS written;
SELECT array_agg(DISTINCT user_id::numeric::bigint) AS users_stored FROM batch.money_users;
RESET lc_monetary;
SELECT mf_drop_model('huge ids');
-- items that fit: written
SELECT mf_recommend_all('wide ids', 2, false, target := 'batch.narrow_items', mode := 'append',
                        candidates := ARRAY[1, 2]) AS written;
SELECT mf_drop_model('wide ids');
-- Text keys are not written into a column that would change them, so that
-- two are stored as one: name cuts them at 63 bytes (three keys of 71 bytes
-- became one), character(n) pads them with spaces, "char" keeps their first
-- byte; varchar holds them.
CREATE TABLE batch.long_keys (u text, i text, r float8);
INSERT INTO batch.long_keys
SELECT 'u' || g, repeat('k', 70) || (g % 3), 1 + g % 5 FROM generate_series(1, 60) g;
SELECT mf_train('batch.long_keys', user_col := 'u', item_col := 'i', rating_col := 'r', k := 2,
                lambda := 1, model_name := 'long keys') > 0 AS trained;
CREATE TABLE batch.name_items (user_id text, rank integer, item_id name, score float8);
SELECT mf_recommend_all('long keys', 3, false, target := 'batch.name_items', mode := 'append');
CREATE TABLE batch.char_users (user_id char(5), rank integer, item_id text, score float8);
SELECT mf_recommend_all('long keys', 3, false, target := 'batch.char_users', mode := 'append');
-- "char" keeps a key's first byte (sixty users were stored as one)
CREATE TABLE batch.byte_users (user_id "char", rank integer, item_id text, score float8);
SELECT mf_recommend_all('long keys', 3, false, target := 'batch.byte_users', mode := 'append');
-- regclass reads keys as table names: a key naming a table was stored as its OID
CREATE TABLE batch.regclass_keys (user_id text, rank integer, item_id regclass, score float8);
SELECT mf_recommend_all('long keys', 3, false, target := 'batch.regclass_keys', mode := 'append');
CREATE TABLE batch.varchar_keys (user_id varchar(10), rank integer, item_id varchar(80), score float8);
SELECT mf_recommend_all('long keys', 3, false, target := 'batch.varchar_keys', mode := 'append') AS written;
SELECT count(DISTINCT item_id) AS items FROM batch.varchar_keys;
-- varchar(n) holds keys of at most n characters: a longer one is an error
-- naming it and the column (it was INSERT's bare "value too long", and
-- INSERT cut a key's trailing spaces past n without an error, so that
-- 'x ' and 'x' were stored as one)
CREATE TABLE batch.short_keys (user_id varchar(10), rank integer, item_id varchar(70), score float8);
SELECT mf_recommend_all('long keys', 3, false, target := 'batch.short_keys', mode := 'append');
SELECT mf_drop_model('long keys');
CREATE TABLE batch.spaced_keys (u text, i text, r float8);
INSERT INTO batch.spaced_keys VALUES ('a', 'x', 5), ('a', 'x ', 1), ('b', 'x', 4), ('b', 'x ', 2);
SELECT mf_train('batch.spaced_keys', user_col := 'u', item_col := 'i', rating_col := 'r', k := 1,
                lambda := 1, model_name := 'spaced keys') > 0 AS trained;
CREATE TABLE batch.short_items (user_id text, rank integer, item_id varchar(1), score float8);
SELECT mf_recommend_all('spaced keys', 2, false, target := 'batch.short_items', mode := 'append');
SELECT count(*) AS written FROM batch.short_items;
-- keys of n characters fit
CREATE TABLE batch.two_chars (user_id text, rank integer, item_id varchar(2), score float8);
SELECT mf_recommend_all('spaced keys', 2, false, target := 'batch.two_chars', mode := 'append') AS written;
SELECT count(DISTINCT item_id) AS items FROM batch.two_chars;
SELECT mf_drop_model('spaced keys');

-- A retrain or refit before the call's ranking, by an earlier call of the
-- same statement or by a trigger on the target's DELETE, is the model it
-- ranks, with its rated items: its lists are those mf_recommend gives once
-- the statement is over (they were the model's as the statement began,
-- then its factors with the old rated items).
CREATE TABLE batch.fresh_ratings AS SELECT * FROM batch.ratings;
SELECT mf_train('batch.fresh_ratings', k := 3, lambda := 0.5, double_precision := true,
                model_name := 'fresh') > 0 AS trained;
-- new ratings, other rated items: exclude_rated must leave out the new ones
UPDATE batch.fresh_ratings SET rating = 6 - rating WHERE user_id <= 20;
DELETE FROM batch.fresh_ratings WHERE user_id <= 20 AND item_id <= 5;
INSERT INTO batch.fresh_ratings
SELECT u, i, 5 FROM generate_series(21, 40) u, generate_series(1, 15) i WHERE (u + i) % 3 = 0;
SELECT mf_refit_users('fresh', 'batch.fresh_ratings') AS refitted,
       mf_recommend_all('fresh', 3, target := 'batch.fresh_top') AS written;
SELECT batch.same_as_mf_recommend('batch.fresh_top', 3, true, model := 'fresh') AS same;
CREATE FUNCTION batch.retrain_fresh() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM batch.fresh_ratings WHERE item_id IN (6, 7, 8) AND user_id <= 20;
    PERFORM mf_train('batch.fresh_ratings', k := 2, lambda := 1, double_precision := true,
                     model_name := 'fresh');
    RETURN NULL;
END $$;
CREATE TRIGGER retrain_fresh AFTER DELETE ON batch.fresh_top
FOR EACH STATEMENT EXECUTE FUNCTION batch.retrain_fresh();
SELECT mf_recommend_all('fresh', 3, target := 'batch.fresh_top', mode := 'replace') AS written;
SELECT k AS retrained_k FROM mf_models WHERE name = 'fresh';
SELECT batch.same_as_mf_recommend('batch.fresh_top', 3, true, model := 'fresh') AS same;
-- retrained on text ids in the same statement: the table was prepared for integers
\set VERBOSITY default
SELECT mf_train('batch.named', user_col := 'who', item_col := 'what', k := 2, model_name := 'fresh') > 0,
       mf_recommend_all('fresh', 3, target := 'batch.fresh_text');
-- retrained from uuid keys to text keys by the target's trigger: a uuid
-- column cannot take text keys
CREATE TABLE batch.uuid_ratings AS
SELECT md5('u' || user_id)::uuid AS user_id, md5('i' || item_id)::uuid AS item_id, rating
FROM batch.ratings;
CREATE TABLE batch.text_ratings AS
SELECT user_id::text, item_id::text, rating FROM batch.uuid_ratings;
SELECT mf_train('batch.uuid_ratings', k := 2, model_name := 'uuid keys') > 0 AS trained;
CREATE TABLE batch.uuid_top (user_id uuid, rank integer, item_id uuid, score float8);
INSERT INTO batch.uuid_top VALUES (md5('x')::uuid, 1, md5('y')::uuid, 0);
CREATE FUNCTION batch.to_text_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mf_train('batch.text_ratings', k := 2, model_name := 'uuid keys');
    RETURN NULL;
END $$;
CREATE TRIGGER to_text_keys AFTER DELETE ON batch.uuid_top
FOR EACH STATEMENT EXECUTE FUNCTION batch.to_text_keys();
SELECT mf_recommend_all('uuid keys', 3, target := 'batch.uuid_top', mode := 'replace');
SELECT count(*) AS kept FROM batch.uuid_top;
SELECT mf_drop_model('uuid keys');
-- dropped in the same statement: named, not numbered
SELECT mf_drop_model('fresh'), mf_recommend_all('fresh', 3, target := 'batch.fresh_gone');
SELECT mf_drop_model('fresh');

-- The target's triggers may drop or retrain the model while the call
-- still ranks with it (an attack crashed the server so): the call goes
-- on with the factors it started with, and writes what they rank.
CREATE TABLE batch.victim_ratings AS
SELECT u AS user_id, i AS item_id, 1 + (u * 7 + i * 3) % 5 AS rating
FROM generate_series(1, 400) u, generate_series(1, 30) i WHERE (u + i) % 3 = 0;
SELECT mf_train('batch.victim_ratings', k := 3, lambda := 1, model_name := 'victim') > 0 AS trained;
CREATE TABLE batch.victim_expected AS SELECT * FROM mf_recommend_all_rows('victim', 5);
CREATE TABLE batch.victim_top (user_id bigint, rank integer, item_id bigint, score float8);
CREATE FUNCTION batch.drop_victim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM mf_models WHERE name = 'victim') THEN
        PERFORM mf_drop_model('victim');
        -- and fill the cache with other models' factors
        PERFORM mf_predict(m.name, 1, 1) FROM mf_models m
        WHERE user_key_type IS NULL AND item_key_type IS NULL;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER drop_victim AFTER INSERT ON batch.victim_top
FOR EACH STATEMENT EXECUTE FUNCTION batch.drop_victim();
SELECT mf_recommend_all('victim', 5, target := 'batch.victim_top', mode := 'append') AS written;
SELECT NOT EXISTS (SELECT FROM mf_models WHERE name = 'victim') AS dropped_meanwhile;
SELECT count(*) AS differing_rows
FROM ((SELECT user_id, rank, item_id, score FROM batch.victim_top
       EXCEPT ALL SELECT user_id, rank, item_id, score FROM batch.victim_expected)
      UNION ALL (SELECT user_id, rank, item_id, score FROM batch.victim_expected
                 EXCEPT ALL SELECT user_id, rank, item_id, score FROM batch.victim_top)) d;

RESET search_path;
DROP SCHEMA batch CASCADE;
SELECT mf_drop_model('batch'), mf_drop_model('batch named'), mf_drop_model('batch biases');
