-- wrk script: POST /api/v1/inquiries with a distinct (source, id) per request and a realistic
-- body (a person, an address, a job description of a few hundred characters).
-- Arguments (after --): run label, source slug. The API key comes from BENCH_API_KEY.
-- At the end it writes one JSON line of figures (read by benchmarks/ingest_api.py).

local thread_number = 0
local threads = {}

function setup(thread)
  thread_number = thread_number + 1
  thread:set("thread_id", thread_number)
  table.insert(threads, thread)
end

function init(args)
  run_label = args[1] or "run"
  source = args[2] or "bench"
  counter = 0
  wrk.method = "POST"
  wrk.path = "/api/v1/inquiries"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_API_KEY")
  wrk.headers["Content-Type"] = "application/json"
end

local description = "Kitchen tap has been leaking since Monday; water under the sink cabinet " ..
  "and the cold handle is stiff. Would like someone to look at it this week, ideally in the " ..
  "morning. Also asking for a quote to replace the bathroom faucet while you are here. " ..
  "Side door is easiest, the dog is friendly."

function request()
  counter = counter + 1
  local n = thread_id * 10000000 + counter
  local body = string.format(
    '{"id": "%s-%d", "source": "%s", "first_name": "Ann", "last_name": "Lee %d", ' ..
    '"company": "Lee Bakery %d", "email": "ann.lee%d@example.com", ' ..
    '"phone": "(415) 555-%04d", "street": "%d Market Street", "city": "San Francisco", ' ..
    '"state": "CA", "postal_code": "94103", "job_description": "%s"}',
    run_label, n, source, n, n, n, n % 10000, n % 9000 + 1, description)
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK-RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"errors": %d, "non_2xx": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
