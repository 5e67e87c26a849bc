-- The seed's ads.ad_show(dt, hour, ad_action, cnt, u_cnt, device_cnt) in
-- Asia/Shanghai local time, with the device's OS from the events' JSON
-- properties:
--   floe aggregate -config examples/aggregate/floe.yaml \
--     -spec examples/aggregate/ad_show_local.sql -output ads.ad_show_local -follow
SELECT time_bucket(INTERVAL '1 hour', event_time, 'Asia/Shanghai') AS window_start,
       CAST(timezone('Asia/Shanghai', event_time) AS DATE) AS dt,
       hour(timezone('Asia/Shanghai', event_time)) AS hour,
       event_type AS ad_action,
       json_extract_string(properties, '$.os') AS os,
       count(*) AS cnt,
       count(DISTINCT user_id) AS u_cnt,
       count(DISTINCT device_id) AS device_cnt
FROM ods.events
WHERE event_type LIKE 'ad%' OR ad_id IS NOT NULL
GROUP BY 1, 2, 3, 4, 5
