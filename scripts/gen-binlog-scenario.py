#!/usr/bin/env python3
"""Writes the SQL of the large generated binlog scenario (deterministic: a fixed seed).

About 110,000 row events over the outbound schema (dataflows/schema.sql): orders, items and
shipments created in transactions of 2,000 rows, shipments shipped over ten days with their
deliveries, then bulk updates that move rows between groups, change quantities, prices, costs and
a courier's name, deletes, primary-key changes and a rolled-back transaction. Statement times
(SET timestamp) advance by seconds within the scenario.

    scripts/gen-binlog-scenario.py [ORDERS] > large.sql

ORDERS (default 12000, the committed fixture) scales the scenario: about 8.5 row events per order.
"""
import random
import sys

rng = random.Random(20240601)
ORDERS = int(sys.argv[1]) if len(sys.argv) > 1 else 12000
BATCH = 500
ITEM_TYPES = ["book", "toy", "food", "tool", "game"]
ts = 1717236000
out = []


def emit(s):
    out.append(s)


def tick(seconds=1):
    global ts
    ts += seconds
    emit(f"SET timestamp = {ts};")


def dt(day, sec):
    return f"'2024-06-{1 + day:02d} {sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}.{sec % 1000:03d}'"


emit("SET time_zone = '+00:00';")
tick()
emit("INSERT INTO logistics.couriers VALUES (1,'DHL'),(2,'UPS'),(3,'FedEx'),(4,'GLS'),(5,'DPD');")
item_id = 0
for b in range(ORDERS // BATCH):
    lo, hi = b * BATCH + 1, (b + 1) * BATCH
    tick(3)
    emit("BEGIN;")
    orders, items, ships = [], [], []
    for o in range(lo, hi + 1):
        orders.append(f"({o},{rng.randint(1, 3000)},'placed',{dt(b % 10, rng.randint(0, 86399))})")
        for _ in range(rng.choice([1, 2, 2, 3])):
            item_id += 1
            items.append(
                f"({item_id},{o},'{rng.choice(ITEM_TYPES)}',{rng.randint(1, 5)},"
                f"{rng.randint(100, 50000) / 100:.2f})"
            )
        ships.append(f"({o},{o},{rng.randint(1, 4)},'picking',NULL)")
    emit("INSERT INTO orders.orders VALUES " + ",".join(orders) + ";")
    tick()
    emit("INSERT INTO orders.order_items VALUES " + ",".join(items) + ";")
    tick()
    emit("INSERT INTO warehouse.shipments VALUES " + ",".join(ships) + ";")
    emit("COMMIT;")
for b in range(ORDERS // BATCH):
    lo, hi = b * BATCH + 1, (b + 1) * BATCH
    day = b % 10
    tick(5)
    emit("BEGIN;")
    emit(f"UPDATE orders.orders SET status = 'paid' WHERE id BETWEEN {lo} AND {hi};")
    tick(2)
    emit(
        f"UPDATE warehouse.shipments SET status = 'shipped', "
        f"shipped_at = {dt(day, 0)} + INTERVAL (id % 86400) SECOND "
        f"WHERE id BETWEEN {lo} AND {hi} AND id % 5 <> 0;"
    )
    dels = []
    for s in range(lo, hi + 1):
        if s % 5 != 0:
            dels.append(
                f"({s},{s},{rng.randint(1, 5)},{rng.randint(300, 4000) / 100:.2f},{dt(day, rng.randint(0, 86399))})"
            )
    emit("INSERT INTO logistics.deliveries VALUES " + ",".join(dels) + ";")
    emit("COMMIT;")
tick(60)
emit("UPDATE orders.order_items SET quantity = quantity + 1 WHERE id % 7 = 0;")
tick()
emit("DELETE FROM orders.order_items WHERE id % 11 = 0;")
tick()
emit("BEGIN;")
emit("UPDATE warehouse.shipments SET warehouse_id = 1 + warehouse_id % 4 WHERE id % 13 = 0;")
tick(4)
emit("UPDATE warehouse.shipments SET status = 'returned' WHERE id % 17 = 0 AND status = 'shipped';")
emit("COMMIT;")
tick()
emit("UPDATE logistics.couriers SET name = 'UPS-express' WHERE id = 2;")
tick()
emit("UPDATE warehouse.shipments SET id = id + 1000000 WHERE id % 101 = 0;")
tick()
emit("UPDATE logistics.deliveries SET shipping_cost = shipping_cost + 1.25 WHERE id % 3 = 0;")
tick()
emit("DELETE FROM orders.orders WHERE id % 19 = 0;")
tick()
emit("BEGIN;")
emit("UPDATE orders.order_items SET quantity = 0;")
emit("DELETE FROM logistics.deliveries;")
emit("ROLLBACK;")
tick(30)
emit("UPDATE orders.order_items SET unit_price = unit_price * 1.1 WHERE order_id % 2 = 0;")
tick()
emit("DELETE FROM warehouse.shipments WHERE id % 23 = 0;")
tick()
emit(
    "INSERT INTO warehouse.shipments SELECT id, order_id, warehouse_id, 'shipped', "
    "'2024-06-05 12:00:00.000' FROM (SELECT id, order_id, 1 + id % 4 AS warehouse_id "
    f"FROM orders.order_items WHERE id % 23 = 0 AND id <= {ORDERS}) AS recreated "
    "WHERE id NOT IN (SELECT id FROM warehouse.shipments);"
)
print("\n".join(out))
