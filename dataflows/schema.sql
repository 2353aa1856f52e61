CREATE DATABASE orders;
CREATE TABLE orders.orders (
  id BIGINT NOT NULL PRIMARY KEY,
  customer_id BIGINT NOT NULL,
  status ENUM('placed','paid','cancelled') NOT NULL,
  placed_at DATETIME(3) NOT NULL
);
CREATE TABLE orders.order_items (
  id BIGINT NOT NULL PRIMARY KEY,
  order_id BIGINT NOT NULL,
  item_type VARCHAR(64) NOT NULL,
  quantity INT NOT NULL,
  unit_price DECIMAL(12,2) NOT NULL
);
CREATE DATABASE warehouse;
CREATE TABLE warehouse.shipments (
  id BIGINT NOT NULL PRIMARY KEY,
  order_id BIGINT NOT NULL,
  warehouse_id INT NOT NULL,
  status ENUM('picking','packed','shipped','returned') NOT NULL,
  shipped_at DATETIME(3) NULL
);
CREATE DATABASE logistics;
CREATE TABLE logistics.couriers (
  id INT NOT NULL PRIMARY KEY,
  name VARCHAR(64) NOT NULL
);
CREATE TABLE logistics.deliveries (
  id BIGINT NOT NULL PRIMARY KEY,
  shipment_id BIGINT NOT NULL,
  courier_id INT NOT NULL,
  shipping_cost DECIMAL(10,2) NOT NULL,
  dispatched_at DATETIME(3) NOT NULL
);
