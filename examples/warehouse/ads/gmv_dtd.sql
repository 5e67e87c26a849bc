-- ads.gmv_dtd: GMV and buyers of the local day (Asia/Shanghai) so far,
-- every minute: a cumulative window (Flink SQL's CUMULATE window TVF, a
-- DuckDB table macro of the same name for the cross-check). The last step
-- of each day equals the day's tumbling value.
SELECT window_start,
       window_end,
       sum(amount) AS gmv,
       count(DISTINCT user_id) AS buyers
FROM CUMULATE(TABLE dwd.order_detail, DESCRIPTOR(created_at), INTERVAL '1' MINUTE, INTERVAL '1' DAY, 'Asia/Shanghai')
GROUP BY window_start, window_end
