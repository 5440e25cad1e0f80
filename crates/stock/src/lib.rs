//! Products with a price and limited stock: reserving, releasing, restocking.
