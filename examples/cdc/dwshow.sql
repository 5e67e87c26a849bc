-- The seed's ad report table in MySQL: exposures and clicks per hour, kept
-- up to date by the application with INSERT ... ON DUPLICATE KEY UPDATE.
-- Floe captures it into the Iceberg table dwshow.ad_show (see floe.yaml).
--   mariadb -h 127.0.0.1 -P 13306 -u root < examples/cdc/dwshow.sql
CREATE DATABASE IF NOT EXISTS dwshow;
USE dwshow;

CREATE TABLE IF NOT EXISTS ad_show (
  dt         DATE            NOT NULL COMMENT 'day of the hour',
  hour       TINYINT UNSIGNED NOT NULL COMMENT '0-23',
  ad_action  ENUM('ad_show', 'ad_click') NOT NULL,
  cnt        BIGINT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'events',
  u_cnt      BIGINT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'distinct users',
  device_cnt BIGINT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'distinct devices',
  PRIMARY KEY (dt, hour, ad_action)
);

INSERT INTO ad_show VALUES
  ('2026-01-01', 0, 'ad_show', 1200, 310, 280),
  ('2026-01-01', 0, 'ad_click', 45, 40, 39),
  ('2026-01-01', 1, 'ad_show', 980, 260, 240),
  ('2026-01-01', 1, 'ad_click', 31, 29, 29)
ON DUPLICATE KEY UPDATE cnt = VALUES(cnt), u_cnt = VALUES(u_cnt), device_cnt = VALUES(device_cnt);
