CREATE INDEX orders_paid_at_idx ON orders (paid_at) INCLUDE (id) WHERE status = 'PAID';
DROP TABLE product_sales;
