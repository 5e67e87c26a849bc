-- ads.ad_show(dt, hour, ad_action, cnt, u_cnt, device_cnt): ad events per
-- local hour (Asia/Shanghai) and action, with distinct users and devices.
-- DuckDB runs this text unchanged over ods.ad_events.
SELECT CAST(timezone('Asia/Shanghai', time_bucket(INTERVAL '1 hour', event_time, 'Asia/Shanghai')) AS DATE) AS dt,
       hour(timezone('Asia/Shanghai', time_bucket(INTERVAL '1 hour', event_time, 'Asia/Shanghai'))) AS hour,
       ad_action,
       count(*) AS cnt,
       count(DISTINCT user_id) AS u_cnt,
       count(DISTINCT device_id) AS device_cnt
FROM ods.ad_events
GROUP BY time_bucket(INTERVAL '1 hour', event_time, 'Asia/Shanghai'), ad_action
