-- dws.gmv_city_5m: GMV, orders and buyers per province and city, every 5
-- minutes over the last hour, keeping the top 3 cities of each province by
-- GMV. HOP is Floe's sliding-window table function (Flink SQL's window
-- TVF); the DuckDB cross-check defines a table macro of the same name. The
-- QUALIFY line is DuckDB's (and Spark's, as a filter on row_number() in a
-- subquery); where Floe's dialect lacks it, gmv_city_5m.yaml says the same
-- with top: {n: 3, by: gmv, within: [province]}.
SELECT window_start,
       window_end,
       province,
       city,
       sum(amount) AS gmv,
       count(*) AS orders,
       count(DISTINCT user_id) AS buyers
FROM HOP(TABLE dwd.order_detail, DESCRIPTOR(created_at), INTERVAL '5' MINUTE, INTERVAL '1' HOUR)
GROUP BY window_start, window_end, province, city
QUALIFY row_number() OVER (PARTITION BY window_start, province ORDER BY sum(amount) DESC) <= 3
