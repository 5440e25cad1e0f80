//! Paying orders from the balance and refunding them.
