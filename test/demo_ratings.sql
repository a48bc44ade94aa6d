-- The demo's data, generated: 8 genres x 40 movies (table movies), 2,000
-- users who each love one genre, like another and dislike a third (table
-- tastes), and their 114,513 ratings, 0.5 to 5 in steps of 0.5, inserted into
-- a table ratings (user_id, item_id, rating) that must exist: test/demo.sql
-- creates one, and so does the README's *Getting started*, which loads it
-- with `\i test/demo_ratings.sql`.  Needs only PostgreSQL (hashint8).

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

INSERT INTO ratings (user_id, item_id, rating)
SELECT t.user_id, m.item_id,
       greatest(0.5, least(5.0, round(2 * (
           3.0 + m.quality
           + CASE m.genre WHEN t.loves THEN 1.5 WHEN t.likes THEN 0.7
                          WHEN t.dislikes THEN -1.5 ELSE 0 END
           + ((abs(hashint8(t.user_id * 1000 + m.item_id)) % 100) / 100.0 - 0.5))) / 2))::numeric(2, 1)
FROM tastes t CROSS JOIN movies m
WHERE abs(hashint8(t.user_id * 7919 + m.item_id)) % 100
      < CASE m.genre WHEN t.loves THEN 60 WHEN t.likes THEN 35 ELSE 8 END;
