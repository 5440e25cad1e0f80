-- Shared by the wrk scripts of make bench (wrk runs them from the repository root).
--
-- setup() numbers the threads: request k of thread t (of T = $BENCH_THREADS, wrk's -t)
-- is request number t + k*T, so the requests in flight at one moment have consecutive
-- numbers and the scripts give them different users (and, when spread, products).
-- done() prints one machine-readable line that scripts/bench/report.py reads.

local threads = 0
function setup(thread)
  thread:set("tid", threads)
  thread:set("nthreads", tonumber(os.getenv("BENCH_THREADS")))
  threads = threads + 1
end

-- "user_id token" lines of $BENCH_USERS
function load_users()
  local users = {}
  for line in io.lines(os.getenv("BENCH_USERS")) do
    local id, token = line:match("^(%d+) (%S+)$")
    users[#users + 1] = { id = id, auth = "Bearer " .. token }
  end
  return users
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "non2xx": %d, "socket_errors": %d, "duration_us": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
