DROP TABLE idempotency_keys;
DROP TABLE balance_history;
DROP TABLE balance_charges;
DROP TABLE balances;
DROP FUNCTION forbid_change();
