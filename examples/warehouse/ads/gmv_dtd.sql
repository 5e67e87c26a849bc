-- ads.gmv_dtd: GMV and buyers of the local day (Asia/Shanghai) so far,
-- every minute.
--
-- This text is both Floe's spec and DuckDB's query:
--   floe aggregate -spec examples/warehouse/ads/gmv_dtd.sql -output ads.gmv_dtd -follow
-- translates it into window {size: 1d, step: 1m, time-zone:
-- Asia/Shanghai, local-columns: [dt]} (ads/gmv_dtd.yaml, its YAML twin),
-- and DuckDB runs it unchanged over dwd.order_detail as the batch
-- cross-check.
--
-- The unnest is the cumulative window (Flink SQL: CUMULATE(TABLE
-- dwd.order_detail, DESCRIPTOR(created_at), INTERVAL '1' MINUTE,
-- INTERVAL '1' DAY)): each order counts in every step of its local day
-- ending after it, from the end of its own minute to the end of the day.
-- So the day has a row for every minute from its first order's on, up to
-- 24:00 (as Floe emits, the steps still to come included), and the last
-- step equals the day's tumbling value.
SELECT time_bucket(INTERVAL '1 day', created_at, 'Asia/Shanghai') AS window_start,
       w.window_end,
       CAST(timezone('Asia/Shanghai', created_at) AS DATE) AS dt,
       sum(amount) AS gmv,
       count(DISTINCT user_id) AS buyers
FROM dwd.order_detail,
     unnest(generate_series(time_bucket(INTERVAL '1 minute', created_at) + INTERVAL '1 minute',
                            time_bucket(INTERVAL '1 day', created_at, 'Asia/Shanghai') + INTERVAL '1 day',
                            INTERVAL '1 minute')) AS w(window_end)
GROUP BY 1, 2, 3
