-- wrk script: POST the benchmark body named by BENCH_BODY and print the summary as JSON.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = file:read("*a")
file:close()

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'JSON {"p50": %d, "p99": %d, "requests": %d, "duration_us": %d, "errors": %d}\n',
    latency:percentile(50), latency:percentile(99), summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout + e.status))
end
