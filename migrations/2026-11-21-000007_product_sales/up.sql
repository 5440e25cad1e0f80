-- Units sold per paid order line, for popular products (ADR 0005). Written in the same
-- transaction as the payment, deleted in the same transaction as the refund, so it always
-- equals the lines of orders that are PAID. Ranking a window is an index-only range scan.
CREATE TABLE product_sales (
    order_id   BIGINT NOT NULL REFERENCES orders (id),
    product_id BIGINT NOT NULL REFERENCES products (id),
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    paid_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
CREATE INDEX product_sales_paid_at_idx ON product_sales (paid_at) INCLUDE (product_id, quantity);

INSERT INTO product_sales (order_id, product_id, quantity, paid_at)
SELECT l.order_id, l.product_id, l.quantity, o.paid_at
  FROM orders o JOIN order_lines l ON l.order_id = o.id
 WHERE o.status = 'PAID';

DROP INDEX orders_paid_at_idx;
