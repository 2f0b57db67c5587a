-- The PostgreSQL tables the example jobs read (database `test`; ./tests/run_all_smoke_tests.sh runs this file,
-- or: psql -h 127.0.0.1 -U postgres -d test -f data/sql/postgres.sql). Idempotent: running it again changes nothing.

-- jobs/acme/postgres_orders_to_iceberg.yaml (engine native) -> asset assets/postgres/v1.0/db_orders.yaml
CREATE SCHEMA IF NOT EXISTS dativo_demo;
CREATE TABLE IF NOT EXISTS dativo_demo.orders (
  order_id bigint PRIMARY KEY,
  customer_id bigint NOT NULL,
  customer_email text NOT NULL,
  order_date date NOT NULL,
  status text NOT NULL,
  currency char(3) NOT NULL,
  total numeric(12,2) NOT NULL,
  updated_at timestamptz NOT NULL
);
INSERT INTO dativo_demo.orders
SELECT g, 1 + g % 7, 'customer' || (1 + g % 7) || '@example.com', DATE '2024-01-01' + g,
       (ARRAY['new', 'paid', 'shipped', 'cancelled'])[1 + g % 4], 'EUR', round((g * 13.37) % 500, 2),
       TIMESTAMPTZ '2024-01-01 00:00:00+00' + g * INTERVAL '1 hour'
FROM generate_series(1, 50) AS g
ON CONFLICT (order_id) DO NOTHING;

-- jobs/acme/postgres_orders_singer.yaml (the Singer tap meltanolabs-tap-postgres) -> assets/postgres/v1.0/orders.yaml
CREATE SCHEMA IF NOT EXISTS dativo_singer;
CREATE TABLE IF NOT EXISTS dativo_singer.orders (
  id int PRIMARY KEY,
  customer text,
  amount numeric(12,2),
  status text,
  details jsonb,
  updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO dativo_singer.orders VALUES
  (1, 'ann', 10.50, 'new', '{"channel": "web"}', '2024-01-01 00:00:00+00'),
  (2, 'bob', 20.00, 'new', NULL, '2024-01-02 00:00:00+00'),
  (3, 'cy', NULL, 'paid', '[1, 2]', '2024-01-03 00:00:00+00'),
  (4, 'dee', 7.25, 'shipped', '{"channel": "shop"}', '2024-01-04 00:00:00+00'),
  (5, 'eve', 99.99, 'paid', NULL, '2024-01-05 00:00:00+00')
ON CONFLICT (id) DO NOTHING;
