-- An e-commerce schema in MySQL: users, their orders and the orders'
-- items (a composite primary key). Floe captures the three tables into
-- shop.users, shop.orders and shop.order_items (see floe.yaml).
--   mariadb -h 127.0.0.1 -P 13306 -u root < examples/cdc/shop.sql
CREATE DATABASE IF NOT EXISTS shop;
USE shop;

CREATE TABLE IF NOT EXISTS users (
  id      BIGINT UNSIGNED PRIMARY KEY,            -- decimal(20,0) in Iceberg
  email   VARCHAR(120) NOT NULL,
  status  ENUM('active', 'blocked', 'deleted') NOT NULL DEFAULT 'active',  -- the label
  tags    SET('vip', 'new', 'b2b'),                -- "vip,b2b"
  balance DECIMAL(12,2),
  prefs   JSON,                                    -- a string
  created DATETIME(6) NOT NULL,                    -- timestamp (no zone)
  note    TEXT
);

CREATE TABLE IF NOT EXISTS orders (
  id      BIGINT PRIMARY KEY,
  user_id BIGINT UNSIGNED NOT NULL,
  status  ENUM('new', 'paid', 'shipped', 'cancelled') NOT NULL,
  amount  DECIMAL(12,2) NOT NULL,
  placed  DATETIME(6) NOT NULL,
  updated TIMESTAMP(3) NULL                         -- timestamptz
);

CREATE TABLE IF NOT EXISTS order_items (
  order_id BIGINT NOT NULL,
  line     INT NOT NULL,
  sku      VARCHAR(32) NOT NULL,
  qty      INT NOT NULL,
  price    DECIMAL(10,2) NOT NULL,
  PRIMARY KEY (order_id, line)
);

INSERT INTO users VALUES
  (1, 'ada@example.com', 'active', 'vip', 120.50, '{"lang": "en"}', '2026-01-01 09:00:00.000001', NULL),
  (2, 'bob@example.com', 'active', 'new,b2b', 0.00, '{"lang": "de"}', '2026-01-02 10:30:00', 'first order pending'),
  (18446744073709551615, 'max@example.com', 'blocked', NULL, NULL, NULL, '2026-01-03 11:00:00', NULL);
INSERT INTO orders VALUES
  (100, 1, 'paid', 59.90, '2026-01-05 12:00:00.250000', '2026-01-05 12:01:00.000'),
  (101, 2, 'new', 12.00, '2026-01-06 08:15:00', NULL);
INSERT INTO order_items VALUES
  (100, 1, 'SKU-1', 1, 49.90), (100, 2, 'SKU-7', 2, 5.00),
  (101, 1, 'SKU-3', 3, 4.00);
