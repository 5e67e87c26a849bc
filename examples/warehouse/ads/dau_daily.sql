-- ads.dau_daily: daily active users per local day (Asia/Shanghai) from the
-- ad events, split into users seen for the first time that day and users
-- seen on an earlier day. new_users and returning_users are Floe's
-- measures against its persistent first-seen state (branch wip/windows);
-- the DuckDB cross-check computes them from each user's first event:
--   WITH f AS (SELECT user_id, min(time_bucket(INTERVAL '1 day', event_time, 'Asia/Shanghai')) AS first_day
--              FROM ods.ad_events GROUP BY user_id)
--   SELECT d, count(DISTINCT user_id) AS dau,
--          count(DISTINCT user_id) FILTER (WHERE first_day = d) AS new_users,
--          count(DISTINCT user_id) FILTER (WHERE first_day < d) AS returning_users
--   FROM (SELECT e.user_id, time_bucket(INTERVAL '1 day', e.event_time, 'Asia/Shanghai') AS d, f.first_day
--         FROM ods.ad_events e JOIN f USING (user_id)) GROUP BY d
SELECT CAST(timezone('Asia/Shanghai', time_bucket(INTERVAL '1 day', event_time, 'Asia/Shanghai')) AS DATE) AS dt,
       count(DISTINCT user_id) AS dau,
       new_users(user_id) AS new_users,
       returning_users(user_id) AS returning_users
FROM ods.ad_events
GROUP BY time_bucket(INTERVAL '1 day', event_time, 'Asia/Shanghai')
