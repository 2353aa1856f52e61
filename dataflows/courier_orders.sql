SELECT DATE(d.dispatched_at) AS day, c.name AS courier,
       COUNT(DISTINCT s.order_id) AS orders, SUM(d.shipping_cost) AS shipping_cost
FROM logistics.deliveries d
JOIN logistics.couriers c ON c.id = d.courier_id
JOIN warehouse.shipments s ON s.id = d.shipment_id
WHERE s.status = 'shipped'
GROUP BY DATE(d.dispatched_at), c.name
