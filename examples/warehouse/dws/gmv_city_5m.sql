-- dws.gmv_city_5m: GMV, orders and buyers per province and city, every 5
-- minutes over the last hour, the top 3 cities of each province by GMV.
-- Floe runs dws/gmv_city_5m.yaml (window {size: 1h, slide: 5m}, top: {n: 3,
-- by: gmv, within: [province]}); Floe's SQL form has tumbling windows only,
-- so this is the DuckDB cross-check text over dwd.order_detail: each order
-- falls into the 12 windows [start, start + 1h) that hold it, starts on
-- 5-minute boundaries (Flink SQL writes this as HOP(TABLE dwd.order_detail,
-- DESCRIPTOR(created_at), INTERVAL '5' MINUTE, INTERVAL '1' HOUR)).
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
QUALIFY row_number() OVER (PARTITION BY w.window_start, province ORDER BY sum(amount) DESC, city) <= 3
ORDER BY 1, 3, 5 DESC
