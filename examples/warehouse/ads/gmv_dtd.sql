-- ads.gmv_dtd: GMV and buyers of the local day (Asia/Shanghai) so far,
-- every minute. Floe runs ads/gmv_dtd.yaml (window {size: 1d, step: 1m,
-- time-zone: Asia/Shanghai}: a cumulative window, Flink SQL's CUMULATE);
-- Floe's SQL form has tumbling windows only, so this is the DuckDB
-- cross-check text over dwd.order_detail: each order counts in every step
-- of its local day from its own minute on. The last step of a day equals
-- the day's tumbling value.
WITH o AS (
    SELECT amount, user_id,
           time_bucket(INTERVAL '1 day', created_at, 'Asia/Shanghai') AS day_start,
           time_bucket(INTERVAL '1 minute', created_at) + INTERVAL '1 minute' AS first_end
    FROM dwd.order_detail
), steps AS (
    SELECT DISTINCT day_start, unnest(generate_series(day_start + INTERVAL '1 minute', day_start + INTERVAL '1 day', INTERVAL '1 minute')) AS window_end
    FROM o
)
SELECT s.day_start AS window_start,
       s.window_end,
       sum(o.amount) AS gmv,
       count(DISTINCT o.user_id) AS buyers
FROM steps s JOIN o ON o.day_start = s.day_start AND o.first_end <= s.window_end
GROUP BY 1, 2
ORDER BY 1, 2
