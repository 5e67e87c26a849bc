-- GMV, orders and buyers every 15 minutes per province and city tier
-- (the provincial capitals and Shenzhen apart, the rest together), for
-- orders that were paid:
--   floe aggregate -config examples/aggregate/floe.yaml \
--     -spec examples/aggregate/orders_city_15m.sql -output ads.orders_city_15m -follow
-- The same text runs on DuckDB over the same table (with SET TimeZone = 'UTC').
SELECT time_bucket(INTERVAL '15 minutes', created_at) AS window_start,
       province,
       CASE WHEN city IN ('广州', '深圳', '杭州', '南京', '济南', '成都', '郑州', '武汉', '福州', '长沙', '西安') THEN city
            ELSE 'other' END AS city_tier,
       sum(amount) AS gmv,
       count(*) AS orders,
       count(DISTINCT user_id) AS buyers
FROM ods.orders
WHERE status IN ('paid', 'shipped', 'completed') AND amount BETWEEN 0 AND 100000
GROUP BY time_bucket(INTERVAL '15 minutes', created_at), province, city_tier
