//! Coupons: FIXED and PERCENT discounts, first-come-first-served issuing, use on orders.
