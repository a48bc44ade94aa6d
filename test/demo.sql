-- mf_ext demo: generated movie ratings, a trained model, recommendations.
-- Run by test/demo.sh inside a throw-away cluster.
\set ON_ERROR_STOP on
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION mf_ext;

-- movies, tastes and 114,513 ratings (test/demo_ratings.sql fills the table).
CREATE TABLE ratings (user_id integer, item_id integer, rating numeric(2, 1));
\ir demo_ratings.sql

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
