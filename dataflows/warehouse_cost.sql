SELECT DATE(s.shipped_at) AS day, s.warehouse_id, SUM(i.quantity * i.unit_price) AS items_cost
FROM warehouse.shipments s
JOIN orders.order_items i ON i.order_id = s.order_id
JOIN orders.orders o ON o.id = s.order_id
WHERE s.status = 'shipped' AND o.status <> 'cancelled'
GROUP BY DATE(s.shipped_at), s.warehouse_id
