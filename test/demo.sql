-- mf_ext demo: generated movie ratings, a trained model, recommendations.
-- Run by test/demo.sh inside a throw-away cluster.
\set ON_ERROR_STOP on
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION mf_ext;

-- 8 genres x 40 movies; each movie has a quality of its own.
CREATE TABLE movies AS
SELECT (g - 1) * 40 + n AS item_id,
       genre || ' #' || n AS title,
       genre,
       (abs(hashint8(g * 100 + n)) % 100) / 100.0 - 0.5 AS quality
FROM unnest(ARRAY['Sci-Fi', 'Romance', 'Horror', 'Comedy', 'Documentary',
                  'Animation', 'Western', 'Thriller']) WITH ORDINALITY AS t(genre, g),
     generate_series(1, 40) AS n;

-- 2,000 users, each loving one genre, liking another and disliking a third;
-- each rates about 60 movies, mostly from the genres they care about.
CREATE TABLE tastes AS
SELECT user_id,
       (ARRAY['Sci-Fi', 'Romance', 'Horror', 'Comedy', 'Documentary',
              'Animation', 'Western', 'Thriller'])[1 + abs(hashint8(user_id)) % 8] AS loves,
       (ARRAY['Sci-Fi', 'Romance', 'Horror', 'Comedy', 'Documentary',
              'Animation', 'Western', 'Thriller'])[1 + (abs(hashint8(user_id)) % 8 + 1 + abs(hashint8(user_id + 7)) % 6) % 8] AS likes,
       (ARRAY['Sci-Fi', 'Romance', 'Horror', 'Comedy', 'Documentary',
              'Animation', 'Western', 'Thriller'])[1 + (abs(hashint8(user_id)) % 8 + 7) % 8] AS dislikes
FROM generate_series(1, 2000) AS user_id;

CREATE TABLE ratings AS
SELECT t.user_id, m.item_id,
       greatest(0.5, least(5.0, round(2 * (
           3.0 + m.quality
           + CASE m.genre WHEN t.loves THEN 1.5 WHEN t.likes THEN 0.7
                          WHEN t.dislikes THEN -1.5 ELSE 0 END
           + ((abs(hashint8(t.user_id * 1000 + m.item_id)) % 100) / 100.0 - 0.5))) / 2))::numeric(2, 1) AS rating
FROM tastes t CROSS JOIN movies m
WHERE abs(hashint8(t.user_id * 7919 + m.item_id)) % 100
      < CASE m.genre WHEN t.loves THEN 60 WHEN t.likes THEN 35 ELSE 8 END;

SELECT count(*) AS ratings, count(DISTINCT user_id) AS users,
       count(DISTINCT item_id) AS movies, round(avg(rating), 2) AS mean_rating
FROM ratings;

\echo
\echo '== Training: SELECT mf_train(''ratings'', k := 8, lambda := 1, iterations := 10)'
SET client_min_messages = notice;
\set VERBOSITY terse
SELECT mf_train('ratings', k := 8, lambda := 1, iterations := 10) AS model_id \gset
\set VERBOSITY default
SET client_min_messages = warning;
SELECT model_id, name, k, lambda, n_users, n_items, n_ratings,
       round(train_rmse::numeric, 3) AS train_rmse
FROM mf_models;

\echo
\echo '== User 42''s tastes, and what they rated'
SELECT loves, likes, dislikes FROM tastes WHERE user_id = 42;
SELECT m.genre, count(*) AS rated, round(avg(r.rating), 2) AS avg_rating
FROM ratings r JOIN movies m USING (item_id)
WHERE r.user_id = 42
GROUP BY m.genre ORDER BY avg_rating DESC;

\echo
\echo '== SELECT * FROM mf_recommend(model, 42, 10): top 10 unseen movies for user 42'
SELECT r.item_id, m.title, round(r.score::numeric, 2) AS predicted
FROM mf_recommend(:model_id, 42, 10) r JOIN movies m USING (item_id)
ORDER BY r.score DESC, r.item_id;

\echo
\echo '== mf_predict inside a query: predicted vs. actual for a few of user 42''s ratings'
SELECT r.item_id, m.title, r.rating, round(mf_predict(:model_id, r.user_id, r.item_id)::numeric, 2) AS predicted
FROM ratings r JOIN movies m USING (item_id)
WHERE r.user_id = 42 ORDER BY r.item_id LIMIT 5;

\echo
\echo '== How often the top-10 picks fall in each user''s loved or liked genre (all 2,000 users)'
SELECT round(100.0 * avg((m.genre IN (t.loves, t.likes))::int), 1) AS pct_in_loved_or_liked_genre,
       round(100.0 * avg((m.genre = t.dislikes)::int), 1) AS pct_in_disliked_genre
FROM tastes t, LATERAL mf_recommend(:model_id, t.user_id, 10) r JOIN movies m USING (item_id);

\echo
\echo '== Judging on ratings the model has not seen: hold out 20% with mf_is_test, train with biases'
CREATE VIEW train_part AS SELECT * FROM ratings WHERE NOT mf_is_test(user_id, item_id, 0.2);
CREATE VIEW test_part AS SELECT * FROM ratings WHERE mf_is_test(user_id, item_id, 0.2);
SELECT mf_train('train_part', k := 8, lambda := 1, biases := true,
                validation := 'test_part') AS held_out \gset
SELECT iteration, round(train_rmse::numeric, 3) AS train_rmse,
       round(validation_rmse::numeric, 3) AS validation_rmse
FROM mf_training_history(:held_out) WHERE iteration IN (1, 2, 5, 10);
\echo '== SELECT * FROM mf_evaluate(model, ''test_part'', k := 10, threshold := 4)'
SELECT metric, round(value::numeric, 3) AS value
FROM mf_evaluate(:held_out, 'test_part', k := 10, threshold := 4);

\echo
\echo '== Tuning in one call: 5-fold cross-validation of k and lambda'
SELECT k, lambda, round(rmse_mean::numeric, 3) AS rmse_mean,
       round(rmse_stddev::numeric, 3) AS rmse_stddev
FROM mf_cross_validate('ratings', ks := ARRAY[0, 4, 8], lambdas := ARRAY[1, 10],
                       biases := true)
ORDER BY rmse_mean;
