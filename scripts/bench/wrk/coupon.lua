-- POST /api/v1/coupons/$BENCH_COUPON/issues, {"user_id"}, as that user: every request
-- for a user not seen before (BENCH_USERS, "user_id token" lines; when the list runs
-- out it starts again and the repeats answer 409 COUPON_ALREADY_ISSUED, shown as
-- non-2xx: make the list longer).
dofile("scripts/bench/wrk/common.lua")

function init(args)
  users = load_users()
  path = "/api/v1/coupons/" .. os.getenv("BENCH_COUPON") .. "/issues"
  k = 0
end

function request()
  local i = tid + k * nthreads
  k = k + 1
  local u = users[(i % #users) + 1]
  return wrk.format("POST", path,
    { ["Content-Type"] = "application/json", ["Authorization"] = u.auth },
    '{"user_id": ' .. u.id .. '}')
end
