-- The worked example from the model's definition, reproduced exactly.
--
-- Y = [[1, 8, ?], [2, ?, 5]], k = 1.  With the item factors fixed at
-- V = [4, 2, 1], the user half-step has the closed form
--   u_1 = (1*4 + 8*2) / (4^2 + 2^2 + lambda) = 20 / (20 + lambda)
--   u_2 = (2*4 + 5*1) / (4^2 + 1^2 + lambda) = 13 / (17 + lambda)
-- and the item half-step that follows, with U fixed at those values,
--   v_1 = (1*u_1 + 2*u_2) / (u_1^2 + u_2^2 + lambda)
--   v_2 = 8*u_1 / (u_1^2 + lambda),   v_3 = 5*u_2 / (u_2^2 + lambda).
CREATE TABLE worked (user_id integer, item_id integer, rating integer);
INSERT INTO worked VALUES (1, 1, 1), (1, 2, 8), (2, 1, 2), (2, 3, 5);

-- The per-iteration NOTICE (message only; its DETAIL holds the elapsed time).
-- In double precision: the NOTICE prints J and the RMSE to 6 digits, which
-- single precision's rounding, and so the BLAS kernels, could move.
\set VERBOSITY terse
SELECT mf_train('worked', k := 1, lambda := 1, iterations := 2,
                double_precision := true) AS model_id \gset
\set VERBOSITY default
SET client_min_messages = warning;

-- Sets V = [4, 2, 1], then runs one warm-started iteration with lambda,
-- in double precision unless told otherwise.
CREATE FUNCTION worked_iteration(lambda double precision,
                                 double_precision boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE mf_item_factors f SET factors = ARRAY[(ARRAY[4, 2, 1])[f.item_id]]::float8[]
    FROM mf_models m WHERE m.model_id = f.model_id AND m.name = 'worked';
    PERFORM mf_train('worked', k := 1, lambda := lambda, iterations := 1,
                     warm_start := true, double_precision := double_precision);
END $$;

CREATE VIEW worked_check AS
WITH m AS (SELECT model_id, lambda FROM mf_models WHERE name = 'worked'),
     u AS (SELECT f.user_id, f.factors[1] AS got,
                  CASE f.user_id WHEN 1 THEN 20 / (20 + m.lambda)
                                 ELSE 13 / (17 + m.lambda) END AS expected
           FROM mf_user_factors f JOIN m USING (model_id)),
     u1 AS (SELECT got FROM u WHERE user_id = 1),
     u2 AS (SELECT got FROM u WHERE user_id = 2),
     v AS (SELECT f.item_id, f.factors[1] AS got,
                  CASE f.item_id
                    WHEN 1 THEN (u1.got + 2 * u2.got) / (u1.got ^ 2 + u2.got ^ 2 + m.lambda)
                    WHEN 2 THEN 8 * u1.got / (u1.got ^ 2 + m.lambda)
                    ELSE 5 * u2.got / (u2.got ^ 2 + m.lambda) END AS expected
           FROM mf_item_factors f JOIN m USING (model_id), u1, u2)
SELECT 'user' AS side, user_id AS id, round(got::numeric, 12) AS got,
       round(expected::numeric, 12) AS expected, abs(got - expected) < 1e-12 AS exact
FROM u
UNION ALL
SELECT 'item', item_id, round(got::numeric, 12), round(expected::numeric, 12),
       abs(got - expected) < 1e-12
FROM v
ORDER BY 1 DESC, 2;

SELECT worked_iteration(1);
SELECT * FROM worked_check;      -- u = 20/21, 13/18
SELECT worked_iteration(0.5);
SELECT * FROM worked_check;      -- u = 20/20.5, 13/17.5
SELECT worked_iteration(0);
SELECT * FROM worked_check;      -- u = 1, 13/17
SELECT worked_iteration(10);
SELECT * FROM worked_check;      -- u = 20/30, 13/27

-- The default single precision agrees to float's ~7 significant digits.
-- (Printed to 4 decimals: each value is farther from a rounding boundary
-- than the 1e-6 relative it is checked to; at 6 decimals, which float's last
-- bit and so the BLAS kernels decide, item 1 is 8e-9 from one.)
SELECT worked_iteration(1, double_precision := false);
SELECT side, id, round(got, 4) AS got, round(expected, 4) AS expected,
       abs(got - expected) < 1e-6 * greatest(1, abs(expected)) AS within_1e_6
FROM worked_check;
SELECT worked_iteration(10);

-- J after the iteration, by hand from the stored factors (lambda = 10).
SELECT round(m.loss[1]::numeric, 10) AS stored_j,
       round((sum((w.rating - u.factors[1] * v.factors[1]) ^ 2) / 2
              + 10.0 / 2 * ((SELECT sum(factors[1] ^ 2) FROM mf_user_factors WHERE model_id = m.model_id)
                           + (SELECT sum(factors[1] ^ 2) FROM mf_item_factors WHERE model_id = m.model_id)))::numeric, 10) AS hand_j
FROM mf_models m
JOIN mf_user_factors u USING (model_id)
JOIN worked w ON w.user_id = u.user_id
JOIN mf_item_factors v ON v.model_id = m.model_id AND v.item_id = w.item_id
WHERE m.name = 'worked'
GROUP BY m.model_id, m.loss;

-- Duplicate (user, item) rows are separate observations: they count twice.
INSERT INTO worked VALUES (1, 1, 1);
SELECT worked_iteration(1);
SELECT n_ratings FROM mf_models WHERE name = 'worked';
-- u_1 = (1*4 + 1*4 + 8*2) / (16 + 16 + 4 + 1) = 24/37
SELECT round(factors[1]::numeric, 12) AS u1, round(24 / 37.0, 12) AS expected,
       abs(factors[1] - 24 / 37.0) < 1e-12 AS exact
FROM mf_user_factors JOIN mf_models USING (model_id)
WHERE name = 'worked' AND user_id = 1;

-- A rating single precision does not hold (5.1) is read exactly in double
-- precision, rows read before it in the same chunk too:
-- u_2 = (2*4 + 5.1*1) / (16 + 1 + 1) = 13.1/18.
ALTER TABLE worked ALTER COLUMN rating TYPE double precision;
UPDATE worked SET rating = 5.1 WHERE user_id = 2 AND item_id = 3;
SELECT worked_iteration(1);
SELECT user_id, round(factors[1]::numeric, 12) AS u, round(expected::numeric, 12) AS expected,
       abs(factors[1] - expected) < 1e-12 AS exact
FROM mf_user_factors JOIN mf_models USING (model_id),
     LATERAL (SELECT CASE user_id WHEN 1 THEN 24 / 37.0 ELSE 13.1 / 18 END AS expected) e
WHERE name = 'worked' ORDER BY user_id;
