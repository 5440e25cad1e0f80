-- POST /api/v1/orders, {"user_id", "items": [{"product_id", "quantity": 1}], "pay_now": true}
-- as the user (their own token). Environment: BENCH_USERS (file of "user_id token"),
-- BENCH_FIRST_PRODUCT and BENCH_PRODUCTS (products first .. first+n-1; n = 1: one hot
-- product). Request number i is for user i and product i, modulo their counts (so
-- the pgbench script, which picks the same way, sees the same contention).
dofile("scripts/bench/wrk/common.lua")

function init(args)
  users = load_users()
  first = tonumber(os.getenv("BENCH_FIRST_PRODUCT"))
  products = tonumber(os.getenv("BENCH_PRODUCTS"))
  k = 0
end

function request()
  local i = tid + k * nthreads
  k = k + 1
  local u = users[(i % #users) + 1]
  local body = '{"user_id": ' .. u.id .. ', "items": [{"product_id": ' ..
    (first + i % products) .. ', "quantity": 1}], "pay_now": true}'
  return wrk.format("POST", "/api/v1/orders",
    { ["Content-Type"] = "application/json", ["Authorization"] = u.auth }, body)
end
