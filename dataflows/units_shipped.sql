SELECT DATE(s.shipped_at) AS day, s.warehouse_id, i.item_type, SUM(i.quantity) AS units
FROM warehouse.shipments s
JOIN orders.order_items i ON i.order_id = s.order_id
WHERE s.status = 'shipped'
GROUP BY DATE(s.shipped_at), s.warehouse_id, i.item_type
