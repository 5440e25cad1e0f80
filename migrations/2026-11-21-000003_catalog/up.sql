-- The catalogue: products with a price and the stock available to order now, and the
-- users' carts. Stock never goes below zero: the CHECK holds it whatever the code does,
-- and every decrement is also a conditional UPDATE (... WHERE stock >= n).

CREATE TABLE products (
    id         BIGSERIAL PRIMARY KEY,
    -- 1..=200 characters, not blank (the API refuses control characters and any
    -- Unicode blank as well)
    name       TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200 AND btrim(name) <> ''),
    price      BIGINT NOT NULL CHECK (price BETWEEN 1 AND 100000000),
    -- available to order now: reservations take from it, releases give back. The admin
    -- endpoints keep it at most 1,000,000,000; no upper CHECK here, so that returning
    -- the stock of a cancelled order can never fail.
    stock      BIGINT NOT NULL CHECK (stock >= 0),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- A cart holds product ids and quantities only; names and prices are read from
-- products, so a cart always shows current prices.
CREATE TABLE cart_items (
    user_id    BIGINT NOT NULL CHECK (user_id > 0),
    product_id BIGINT NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    quantity   INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, product_id)
);
CREATE INDEX cart_items_product_idx ON cart_items (product_id);
