-- The MariaDB / MySQL table the example jobs read (database `test`; ./tests/run_all_smoke_tests.sh runs this
-- file, or: mysql -h 127.0.0.1 -u root test < data/sql/mariadb.sql). Idempotent: running it again changes nothing.

-- jobs/acme/mysql_customers_to_s3.yaml (engine native) -> asset assets/mysql/v1.0/customers.yaml
CREATE TABLE IF NOT EXISTS dativo_customers (
  customer_id int PRIMARY KEY,
  first_name varchar(50) NOT NULL,
  last_name varchar(50) NOT NULL,
  email varchar(120) NOT NULL,
  country char(2),
  created_at datetime(6) NOT NULL,
  updated_at datetime(6) NOT NULL
);
INSERT IGNORE INTO dativo_customers VALUES
  (1, 'Ada', 'Lovelace', 'ada@example.com', 'GB', '2024-01-01 09:00:00', '2024-01-01 09:00:00'),
  (2, 'Alan', 'Turing', 'alan@example.com', 'GB', '2024-01-02 09:30:00', '2024-01-05 10:00:00'),
  (3, 'Grace', 'Hopper', 'grace@example.com', 'US', '2024-01-03 11:00:00', '2024-01-03 11:00:00'),
  (4, 'Edsger', 'Dijkstra', 'edsger@example.com', 'NL', '2024-01-04 08:15:00', '2024-01-06 08:15:00'),
  (5, 'Barbara', 'Liskov', 'barbara@example.com', 'US', '2024-01-05 14:00:00', '2024-01-05 14:00:00'),
  (6, 'Donald', 'Knuth', 'donald@example.com', 'US', '2024-01-06 16:45:00', '2024-01-07 09:00:00'),
  (7, 'Margaret', 'Hamilton', 'margaret@example.com', 'US', '2024-01-07 07:00:00', '2024-01-07 07:00:00'),
  (8, 'Niklaus', 'Wirth', 'niklaus@example.com', 'CH', '2024-01-08 12:00:00', '2024-01-08 12:00:00'),
  (9, 'Frances', 'Allen', 'frances@example.com', NULL, '2024-01-09 10:10:00', '2024-01-09 10:10:00'),
  (10, 'Tony', 'Hoare', 'tony@example.com', 'GB', '2024-01-10 15:20:00', '2024-01-10 15:20:00');
