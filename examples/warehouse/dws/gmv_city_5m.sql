-- dws.gmv_city_5m: GMV, orders and buyers per province and city, every 5
-- minutes over the last hour, the top 3 cities of each province by GMV.
--
-- This text is both Floe's spec and DuckDB's query:
--   floe aggregate -spec examples/warehouse/dws/gmv_city_5m.sql -output dws.gmv_city_5m -follow
-- translates it into window {size: 1h, slide: 5m}, top {n: 3, by: gmv,
-- within: [province]} (dws/gmv_city_5m.yaml, its YAML twin), and DuckDB
-- runs it unchanged over dwd.order_detail as the batch cross-check.
--
-- The unnest is the sliding window (Flink SQL: HOP(TABLE
-- dwd.order_detail, DESCRIPTOR(created_at), INTERVAL '5' MINUTE,
-- INTERVAL '1' HOUR)): each order falls into the 12 windows
-- [start, start + 1h) that hold it, starting on 5-minute boundaries.
-- QUALIFY keeps each province's top 3 cities by GMV; ties go to the city
-- first in ascending order, NULLs first (as Floe, Spark and Flink order
-- them; DuckDB needs the NULLS FIRST written out).
--
-- Floe's table keeps every city of every window with its rank (a late
-- order can lift a city into the top 3), so the rows DuckDB returns are
--   SELECT window_start, window_end, province, city, gmv, orders, buyers
--   FROM dws.gmv_city_5m WHERE rank <= 3
SELECT w.window_start,
       w.window_start + INTERVAL '1 hour' AS window_end,
       province,
       city,
       sum(amount) AS gmv,
       count(*) AS orders,
       count(DISTINCT user_id) AS buyers
FROM dwd.order_detail o,
     unnest(generate_series(time_bucket(INTERVAL '5 minutes', o.created_at) - INTERVAL '55 minutes',
                            time_bucket(INTERVAL '5 minutes', o.created_at),
                            INTERVAL '5 minutes')) AS w(window_start)
GROUP BY 1, 2, 3, 4
QUALIFY row_number() OVER (PARTITION BY w.window_start, province ORDER BY sum(amount) DESC, city NULLS FIRST) <= 3
