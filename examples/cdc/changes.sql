-- Changes to try while `floe ingest -config examples/cdc/floe.yaml` runs:
-- each lands in the Iceberg tables within the commit interval, as row
-- deltas (updates and deletes as position deletes).
--   mariadb -h 127.0.0.1 -P 13306 -u root < examples/cdc/changes.sql

-- A transaction spanning tables: an order paid, its item changed, the
-- user's balance charged.
START TRANSACTION;
UPDATE shop.orders SET status = 'paid', updated = NOW(3) WHERE id = 101;
UPDATE shop.order_items SET qty = 4 WHERE order_id = 101 AND line = 1;
UPDATE shop.users SET balance = balance - 16.00 WHERE id = 2;
COMMIT;

-- A cancelled order, deleted with its items.
START TRANSACTION;
DELETE FROM shop.order_items WHERE order_id = 100;
DELETE FROM shop.orders WHERE id = 100;
COMMIT;

-- The report table counts on.
INSERT INTO dwshow.ad_show VALUES ('2026-01-01', 1, 'ad_click', 33, 30, 30)
ON DUPLICATE KEY UPDATE cnt = VALUES(cnt), u_cnt = VALUES(u_cnt), device_cnt = VALUES(device_cnt);

-- Schema changes Floe follows: a new nullable column (an Iceberg schema
-- change), a rename (by field id), a widening (int to long).
ALTER TABLE shop.users ADD COLUMN country CHAR(2) NULL;
UPDATE shop.users SET country = 'GB' WHERE id = 1;
ALTER TABLE shop.order_items RENAME COLUMN qty TO quantity, MODIFY line BIGINT NOT NULL;
