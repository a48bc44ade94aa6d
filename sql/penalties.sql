-- Regularisation beyond one lambda (issue 16): the biases' own lambda
-- (bias_lambda) and a factor lambda growing with a row's ratings
-- (lambda_per_rating), each checked against the closed form on the worked
-- example's data, with the item factors (and biases) fixed by hand and
-- one warm-started iteration in double precision.
--
-- Y = [[1, 8, ?], [2, ?, 5]], V = [4, 2, 1].
CREATE TABLE pen (user_id integer, item_id integer, rating integer);
INSERT INTO pen VALUES (1, 1, 1), (1, 2, 8), (2, 1, 2), (2, 3, 5);
SET client_min_messages = warning;

-- Sets V = [4, 2, 1] and the item biases c = [0.5, -0.5, 0], then runs
-- one warm-started iteration with the options given.
CREATE FUNCTION pen_iteration(lam double precision, with_biases boolean,
                              bias_lam double precision,
                              per_rating double precision) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mf_drop_model(name) FROM mf_models WHERE name = 'pen';
    PERFORM mf_train('pen', k := 1, lambda := lam, iterations := 1, biases := with_biases,
                     bias_lambda := bias_lam, lambda_per_rating := per_rating,
                     double_precision := true);
    UPDATE mf_item_factors f
    SET factors = ARRAY[(ARRAY[4, 2, 1])[f.item_id]]::float8[],
        bias = CASE WHEN with_biases THEN (ARRAY[0.5, -0.5, 0])[f.item_id] END
    FROM mf_models m WHERE m.model_id = f.model_id AND m.name = 'pen';
    PERFORM mf_train('pen', iterations := 1, warm_start := true);
END $$;

-- lambda_per_rating: a row of n ratings has lambda + lambda_per_rating * n.
-- Users (n = 2 each):   u_1 = 20 / (20 + l_2),  u_2 = 13 / (17 + l_2)
-- Items (n = 2, 1, 1):  v_1 = (u_1 + 2 u_2) / (u_1^2 + u_2^2 + l_2),
--                       v_2 = 8 u_1 / (u_1^2 + l_1),  v_3 = 5 u_2 / (u_2^2 + l_1)
-- with l_n = lambda + lambda_per_rating * n; J's penalty is
-- sum over rows of l_n / 2 * |x|^2.
CREATE VIEW per_rating_check AS
WITH m AS (SELECT model_id, lambda, lambda_per_rating AS lpr, loss[1] AS j FROM mf_models WHERE name = 'pen'),
     u AS (SELECT f.user_id, f.factors[1] AS got,
                  CASE f.user_id WHEN 1 THEN 20 / (20 + m.lambda + 2 * m.lpr)
                                 ELSE 13 / (17 + m.lambda + 2 * m.lpr) END AS expected
           FROM mf_user_factors f JOIN m USING (model_id)),
     u1 AS (SELECT got FROM u WHERE user_id = 1),
     u2 AS (SELECT got FROM u WHERE user_id = 2),
     v AS (SELECT f.item_id, f.factors[1] AS got,
                  CASE f.item_id
                    WHEN 1 THEN (u1.got + 2 * u2.got) / (u1.got ^ 2 + u2.got ^ 2 + m.lambda + 2 * m.lpr)
                    WHEN 2 THEN 8 * u1.got / (u1.got ^ 2 + m.lambda + m.lpr)
                    ELSE 5 * u2.got / (u2.got ^ 2 + m.lambda + m.lpr) END AS expected
           FROM mf_item_factors f JOIN m USING (model_id), u1, u2)
SELECT 'user' AS side, user_id AS id, round(expected::numeric, 12) AS expected,
       abs(got - expected) < 1e-12 AS exact
FROM u
UNION ALL
SELECT 'item', item_id, round(expected::numeric, 12), abs(got - expected) < 1e-12
FROM v
ORDER BY 1 DESC, 2;

SELECT pen_iteration(1, false, NULL, 0.5);
SELECT * FROM per_rating_check;    -- u = 20/22, 13/19
SELECT pen_iteration(0, false, NULL, 0.25);
SELECT * FROM per_rating_check;    -- lambda 0: the penalty is the per-rating part alone

-- J by hand: (r - u v)^2 / 2 summed, + (lambda + lambda_per_rating * n) / 2 * x^2 per row.
WITH m AS (SELECT model_id, lambda AS l, lambda_per_rating AS lpr, loss[1] AS j FROM mf_models WHERE name = 'pen'),
     uf AS (SELECT user_id, factors[1] AS x FROM mf_user_factors JOIN m USING (model_id)),
     vf AS (SELECT item_id, factors[1] AS x FROM mf_item_factors JOIN m USING (model_id)),
     n_u AS (SELECT user_id, count(*) AS n FROM pen GROUP BY user_id),
     n_i AS (SELECT item_id, count(*) AS n FROM pen GROUP BY item_id)
SELECT abs(m.j - ((SELECT sum((p.rating - uf.x * vf.x) ^ 2) FROM pen p JOIN uf USING (user_id) JOIN vf USING (item_id)) / 2
                  + (SELECT sum((m.l + m.lpr * n) / 2 * x ^ 2) FROM uf JOIN n_u USING (user_id))
                  + (SELECT sum((m.l + m.lpr * n) / 2 * x ^ 2) FROM vf JOIN n_i USING (item_id))))
       < 1e-12 AS j_by_hand
FROM m;

-- bias_lambda: with biases a user solves [a, b] (factor, bias) from
--   [[sum v^2 + lambda, sum v], [sum v, n + bias_lambda]] [a, b]
--     = [sum t v, sum t],   t = r - mu - c_i,
-- and an item [v, c] from the users' new [a, b] the same way
-- (t = r - mu - b_u); mu = 4, the mean of the ratings.  Solved by
-- Cramer's rule here.
CREATE VIEW bias_check AS
WITH m AS (SELECT model_id, lambda AS l, bias_lambda AS lb, global_mean AS mu FROM mf_models WHERE name = 'pen'),
     fixed_items AS (SELECT i AS item_id, (ARRAY[4, 2, 1])[i]::float8 AS v, (ARRAY[0.5, -0.5, 0])[i]::float8 AS c
                     FROM generate_series(1, 3) i),
     user_sums AS (SELECT p.user_id, sum(v ^ 2) AS vv, sum(v) AS sv, count(*) AS n,
                          sum((p.rating - m.mu - c) * v) AS tv, sum(p.rating - m.mu - c) AS t
                   FROM pen p JOIN fixed_items USING (item_id), m GROUP BY p.user_id),
     users AS (SELECT user_id, ((vv + m.l) * (n + m.lb) - sv * sv) AS det,
                      (tv * (n + m.lb) - sv * t) AS a_num, ((vv + m.l) * t - sv * tv) AS b_num
               FROM user_sums, m),
     user_expected AS (SELECT user_id, a_num / det AS a, b_num / det AS b FROM users),
     item_sums AS (SELECT p.item_id, sum(a ^ 2) AS aa, sum(a) AS sa, count(*) AS n,
                          sum((p.rating - m.mu - b) * a) AS ta, sum(p.rating - m.mu - b) AS t
                   FROM pen p JOIN user_expected USING (user_id), m GROUP BY p.item_id),
     items AS (SELECT item_id, ((aa + m.l) * (n + m.lb) - sa * sa) AS det,
                      (ta * (n + m.lb) - sa * t) AS v_num, ((aa + m.l) * t - sa * ta) AS c_num
               FROM item_sums, m),
     item_expected AS (SELECT item_id, v_num / det AS v, c_num / det AS c FROM items)
SELECT 'user' AS side, e.user_id AS id, round(e.a::numeric, 10) AS factor, round(e.b::numeric, 10) AS bias,
       abs(f.factors[1] - e.a) < 1e-12 AND abs(f.bias - e.b) < 1e-12 AS exact
FROM user_expected e JOIN mf_user_factors f USING (user_id) JOIN m USING (model_id)
UNION ALL
SELECT 'item', e.item_id, round(e.v::numeric, 10), round(e.c::numeric, 10),
       abs(f.factors[1] - e.v) < 1e-12 AND abs(f.bias - e.c) < 1e-12
FROM item_expected e JOIN mf_item_factors f USING (item_id) JOIN m USING (model_id)
ORDER BY 1 DESC, 2;

SELECT pen_iteration(1, true, 0.25, 0);
SELECT * FROM bias_check;          -- user 1: a = -17.25/11.25, b = 51/11.25
SELECT pen_iteration(2, true, 0, 0);
SELECT * FROM bias_check;          -- bias_lambda 0: the biases unregularised
SELECT pen_iteration(1, true, 100, 0);
SELECT * FROM bias_check;

-- J by hand: lambda / 2 on the factors, bias_lambda / 2 on the biases.
WITH m AS (SELECT model_id, lambda AS l, bias_lambda AS lb, global_mean AS mu, loss[1] AS j FROM mf_models WHERE name = 'pen'),
     uf AS (SELECT user_id, factors[1] AS x, bias AS b FROM mf_user_factors JOIN m USING (model_id)),
     vf AS (SELECT item_id, factors[1] AS x, bias AS b FROM mf_item_factors JOIN m USING (model_id))
SELECT abs(m.j - ((SELECT sum((p.rating - m.mu - uf.b - vf.b - uf.x * vf.x) ^ 2) FROM pen p JOIN uf USING (user_id) JOIN vf USING (item_id)) / 2
                  + m.l / 2 * ((SELECT sum(x ^ 2) FROM uf) + (SELECT sum(x ^ 2) FROM vf))
                  + m.lb / 2 * ((SELECT sum(b ^ 2) FROM uf) + (SELECT sum(b ^ 2) FROM vf))))
       < 1e-12 AS j_by_hand
FROM m;

-- Fold-in solves a new user as training's user half-step does, with the
-- model's penalties: a user who rated what user 1 rated, against the
-- stored items, equals the closed form (here from the stored V and c).
SELECT pen_iteration(1, true, 0.25, 0.5);
WITH m AS (SELECT model_id, lambda + 2 * lambda_per_rating AS l, bias_lambda AS lb, global_mean AS mu FROM mf_models WHERE name = 'pen'),
     items AS (SELECT item_id, factors[1] AS v, bias AS c FROM mf_item_factors JOIN m USING (model_id)),
     s AS (SELECT sum(v ^ 2) AS vv, sum(v) AS sv, count(*) AS n,
                  sum((p.rating - m.mu - c) * v) AS tv, sum(p.rating - m.mu - c) AS t
           FROM pen p JOIN items USING (item_id), m WHERE p.user_id = 1),
     e AS (SELECT (tv * (n + m.lb) - sv * t) / ((vv + m.l) * (n + m.lb) - sv * sv) AS a,
                  ((vv + m.l) * t - sv * tv) / ((vv + m.l) * (n + m.lb) - sv * sv) AS b FROM s, m),
     f AS (SELECT mf_fold_in('pen', ARRAY[1, 2], ARRAY[1, 8]) AS x)
SELECT abs(f.x[1] - e.a) < 1e-12 AS factor_exact, abs(f.x[2] - e.b) < 1e-12 AS bias_exact
FROM e, f;

-- Stored with the model, kept by a retraining that does not name them,
-- read back by the refit: refitting user 1 against the stored items gives
-- the fold-in's answer.
SELECT bias_lambda, lambda_per_rating FROM mf_models WHERE name = 'pen';
SELECT mf_refit_users('pen', users := ARRAY[1]);
SELECT abs(f.factors[1] - (mf_fold_in('pen', ARRAY[1, 2], ARRAY[1, 8]))[1]) < 1e-12 AS refit_as_fold_in
FROM mf_user_factors f JOIN mf_models m USING (model_id) WHERE m.name = 'pen' AND f.user_id = 1;
\set VERBOSITY terse
SET client_min_messages = notice;
SELECT mf_train('pen', iterations := 1) IS NOT NULL AS retrained;
SELECT bias_lambda, lambda_per_rating FROM mf_models WHERE name = 'pen';
SELECT mf_train('pen', iterations := 1, bias_lambda := -1, lambda_per_rating := 0) IS NOT NULL AS back_to_lambda;
SELECT bias_lambda, lambda_per_rating FROM mf_models WHERE name = 'pen';
SET client_min_messages = warning;

-- Off, they change nothing: -1 and 0 give the model of no option, bit for bit.
SELECT mf_train('pen', k := 2, lambda := 0.3, biases := true, iterations := 5, model_name := 'plain') IS NOT NULL,
       mf_train('pen', k := 2, lambda := 0.3, biases := true, iterations := 5, bias_lambda := -1,
                lambda_per_rating := 0, model_name := 'off') IS NOT NULL;
SELECT (SELECT string_agg(factors::text || bias, ';' ORDER BY user_id) FROM mf_user_factors f JOIN mf_models m USING (model_id) WHERE m.name = 'plain')
     = (SELECT string_agg(factors::text || bias, ';' ORDER BY user_id) FROM mf_user_factors f JOIN mf_models m USING (model_id) WHERE m.name = 'off')
       AS same_users,
       (SELECT loss FROM mf_models WHERE name = 'plain') = (SELECT loss FROM mf_models WHERE name = 'off') AS same_j;

-- Cross-validation searches bias_lambda beside k and lambda (k outermost,
-- bias_lambda innermost); each point's RMSE is that of mf_train with the
-- same options on the other folds.
CREATE TABLE pen_many AS
SELECT u AS user_id, i AS item_id, 1 + (u * 7 + i * 3) % 5 AS rating
FROM generate_series(1, 60) u, generate_series(1, 30) i WHERE (u + 2 * i) % 3 = 0;
SELECT k, lambda, bias_lambda, folds, rmse_mean > 0 AS scored
FROM mf_cross_validate('pen_many', ARRAY[1, 2], ARRAY[0.5], folds := 3, biases := true,
                       bias_lambdas := ARRAY[0, 10], lambda_per_rating := 0.01);
SELECT k, lambda, bias_lambda FROM mf_cross_validate('pen_many', ARRAY[1], ARRAY[1], folds := 3);
CREATE FUNCTION pen_fold_rmse(fold integer) RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE
    rmse double precision;
BEGIN
    DROP TABLE IF EXISTS pen_train, pen_test;
    CREATE TABLE pen_train AS SELECT * FROM pen_many WHERE mf_fold(user_id, item_id, 3) <> fold;
    CREATE TABLE pen_test AS SELECT * FROM pen_many WHERE mf_fold(user_id, item_id, 3) = fold;
    PERFORM mf_train('pen_train', k := 2, lambda := 0.5, biases := true, bias_lambda := 10,
                     lambda_per_rating := 0.01, model_name := 'fold');
    SELECT value INTO rmse FROM mf_evaluate('fold', 'pen_test') WHERE metric = 'rmse';
    PERFORM mf_drop_model('fold');
    DROP TABLE pen_train, pen_test;
    RETURN rmse;
END $$;
SELECT abs((SELECT avg(pen_fold_rmse(f)) FROM generate_series(0, 2) f)
           - (SELECT rmse_mean FROM mf_cross_validate('pen_many', ARRAY[2], ARRAY[0.5], folds := 3,
                                                      biases := true, bias_lambdas := ARRAY[10],
                                                      lambda_per_rating := 0.01))) < 1e-12
       AS each_point_is_train_and_evaluate;

-- clip: predictions within the training ratings' range.  Trained on
-- ratings 1 to 8 with a factor large enough to overshoot, mf_predict is
-- the model's score clipped to [1, 8], computed by hand from the stored
-- rows; mf_evaluate's RMSE is that of the clipped predictions; rankings
-- keep the unclipped scores.
SELECT mf_train('pen', k := 1, lambda := 0.01, biases := true, iterations := 5, clip := true,
                double_precision := true, model_name := 'clipped') IS NOT NULL AS trained;
SELECT clip, rating_min, rating_max FROM mf_models WHERE name = 'clipped';
CREATE TEMP TABLE pen_all AS SELECT u AS user_id, i AS item_id FROM generate_series(1, 2) u, generate_series(1, 3) i;
WITH m AS (SELECT model_id, global_mean AS mu FROM mf_models WHERE name = 'clipped'),
     score AS (SELECT p.user_id, p.item_id, m.mu + uf.bias + vf.bias + uf.factors[1] * vf.factors[1] AS s
               FROM pen_all p, m, mf_user_factors uf, mf_item_factors vf
               WHERE uf.model_id = m.model_id AND vf.model_id = m.model_id
                 AND uf.user_id = p.user_id AND vf.item_id = p.item_id)
SELECT bool_and(abs(mf_predict('clipped', user_id, item_id) - least(greatest(s, 1), 8)) < 1e-12) AS predict_clipped,
       bool_or(s > 8 OR s < 1) AS some_score_outside
FROM score;
SELECT abs((SELECT value FROM mf_evaluate('clipped', 'pen') WHERE metric = 'rmse')
           - (SELECT sqrt(avg((rating - mf_predict('clipped', user_id, item_id)) ^ 2)) FROM pen)) < 1e-12
       AS rmse_of_clipped_predictions;
SELECT bool_or(score > 8) AS a_ranking_score_beyond_8
FROM pen_all p, LATERAL mf_recommend('clipped', p.user_id, 3, false) r;
SELECT mf_train('pen', iterations := 2, model_name := 'clipped') IS NOT NULL AS retrained;
SELECT clip AS clip_kept, rating_min, rating_max FROM mf_models WHERE name = 'clipped';
SELECT k, lambda, round(rmse_mean::numeric, 4) > 0 AS scored
FROM mf_cross_validate('pen_many', ARRAY[1], ARRAY[1], folds := 3, clip := true);
SELECT mf_drop_model('clipped');
DROP TABLE pen_all;

-- Wrong values: an error that says what to pass.
\set VERBOSITY default
SELECT mf_train('pen', bias_lambda := -0.5);
SELECT mf_train('pen', bias_lambda := 'NaN');
SELECT mf_train('pen', bias_lambda := 1, biases := false);
SELECT mf_train('pen', lambda_per_rating := -1);
SELECT mf_train('pen', lambda_per_rating := 'Infinity');
SELECT mf_train('pen', lambda_per_rating := 1e30, double_precision := false);
SELECT * FROM mf_cross_validate('pen', ARRAY[1], ARRAY[1], bias_lambdas := ARRAY[1]);
SELECT * FROM mf_cross_validate('pen', ARRAY[1], ARRAY[1], biases := true, bias_lambdas := ARRAY[]::float8[]);
SELECT * FROM mf_cross_validate('pen', ARRAY[1], ARRAY[1], biases := true, bias_lambdas := ARRAY[1, NULL]);
SELECT mf_train('pen', clip := true, feedback := 'implicit', model_name := 'x');
-- a penalty too large for the precision whatever the data (the row of one
-- rating already has it) is refused before the data is read (reading this
-- view fails), in mf_cross_validate too; lambda is named where it alone is
-- too large, lambda_per_rating only where it makes the sum so (attack
-- helper 244: after the read, blaming lambda_per_rating)
CREATE TABLE pen_penalty (user_id int, item_id int, rating float8);
INSERT INTO pen_penalty VALUES (1, 1, 4), (1, 2, 3), (2, 1, 5);
CREATE VIEW pen_unreadable AS
    SELECT user_id, item_id, rating / (user_id - user_id) AS rating FROM pen_penalty;
SELECT mf_train('pen_unreadable', model_name := 'x', lambda := 1e31);
SELECT mf_train('pen_unreadable', model_name := 'x', lambda := 1e31, lambda_per_rating := 0.01);
SELECT mf_train('pen_unreadable', model_name := 'x', lambda := 6e29, lambda_per_rating := 6e29);
SELECT mf_train('pen_unreadable', model_name := 'x', lambda := 1e31, weighted_lambda := true);
SELECT mf_train('pen_unreadable', model_name := 'x', biases := true, bias_lambda := 1e31);
SELECT mf_train('pen_unreadable', model_name := 'x', lambda := 1e308, lambda_per_rating := 1e308, double_precision := true);
SELECT * FROM mf_cross_validate('pen_unreadable', ARRAY[1], ARRAY[1, 1e31]);
-- an option no grid value sets is refused as such, without a grid point's
-- CONTEXT, which had told to leave out the point's values (attack helper 244)
SELECT * FROM mf_cross_validate('pen_unreadable', ARRAY[1], ARRAY[1], iterations := 0);
DROP VIEW pen_unreadable;
DROP TABLE pen_penalty;

DROP FUNCTION pen_iteration(double precision, boolean, double precision, double precision);
DROP FUNCTION pen_fold_rmse(integer);
DROP VIEW per_rating_check, bias_check;
SELECT mf_drop_model(name) FROM mf_models WHERE name IN ('pen', 'plain', 'off');
DROP TABLE pen, pen_many;

-- CG fits ratings of any scale: ratings about 1e-8 (lambda scaled with
-- them) fit as the same ratings about 1 do, relative to their size, in
-- both precisions.  An absolute stop on r . r (1e-20) had taken no CG step
-- at that scale, leaving the factors as initialised (a training RMSE near
-- the ratings' own RMS) without a word.
CREATE TABLE scaled_down AS
SELECT u AS user_id, i AS item_id, (1 + (u * 7 + i * 3) % 5) * 1e-8 AS rating
FROM generate_series(1, 300) u, generate_series(1, 200) i WHERE (u + 2 * i) % 7 < 3;
CREATE TABLE scaled AS SELECT user_id, item_id, rating * 1e8 AS rating FROM scaled_down;
SELECT mf_train('scaled_down', k := 8, lambda := 1e-9, solver := 'cg') IS NOT NULL AS small_cg,
       mf_train('scaled_down', k := 8, lambda := 1e-9, solver := 'cg', double_precision := true,
                model_name := 'scaled_down double') IS NOT NULL AS small_cg_double,
       mf_train('scaled', k := 8, lambda := 0.1, solver := 'cg') IS NOT NULL AS cg;
SELECT m.name, m.train_rmse / s.rms < 0.05 AS fits_within_5_percent_of_rms
FROM mf_models m,
     LATERAL (SELECT sqrt(avg(rating::float8 ^ 2)) AS rms FROM scaled_down) s0,
     LATERAL (SELECT CASE WHEN m.name = 'scaled' THEN s0.rms * 1e8 ELSE s0.rms END AS rms) s
WHERE m.name IN ('scaled_down', 'scaled_down double', 'scaled') ORDER BY m.name;
