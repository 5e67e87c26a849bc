-- ads.ad_show(dt, hour, ad_action, cnt, u_cnt, device_cnt): ad events per
-- local hour in Asia/Shanghai and action, with distinct users and devices.
-- Floe's SQL form (floe aggregate -spec ads/ad_show.sql -output
-- ads.ad_show); DuckDB runs the same text over ods.ad_events.
SELECT time_bucket(INTERVAL '1 hour', event_time, 'Asia/Shanghai') AS window_start,
       CAST(timezone('Asia/Shanghai', event_time) AS DATE) AS dt,
       hour(timezone('Asia/Shanghai', event_time)) AS hour,
       ad_action,
       count(*) AS cnt,
       count(DISTINCT user_id) AS u_cnt,
       count(DISTINCT device_id) AS device_cnt
FROM ods.ad_events
GROUP BY 1, 2, 3, 4
