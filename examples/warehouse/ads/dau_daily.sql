-- ads.dau_daily: daily active users per local day in Asia/Shanghai (from
-- the ad events), split into users seen for the first time that day and
-- users seen on an earlier day. Floe runs ads/dau_daily.yaml (new_users and
-- returning_users count against its persistent first-seen state); Floe's
-- SQL form has no such measure, so this is the DuckDB
-- cross-check text, over the same ods.ad_events.
WITH days AS (
    SELECT user_id, time_bucket(INTERVAL '1 day', event_time, 'Asia/Shanghai') AS window_start
    FROM ods.ad_events
    WHERE user_id IS NOT NULL
    GROUP BY 1, 2
), first_day AS (
    SELECT user_id, min(window_start) AS first_start FROM days GROUP BY 1
)
SELECT d.window_start,
       CAST(timezone('Asia/Shanghai', d.window_start) AS DATE) AS dt,
       count(*) AS dau,
       count(*) FILTER (WHERE f.first_start = d.window_start) AS new_users,
       count(*) FILTER (WHERE f.first_start < d.window_start) AS returning_users
FROM days d JOIN first_day f USING (user_id)
GROUP BY 1, 2
ORDER BY 1
