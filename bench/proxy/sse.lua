-- wrk script for the streaming benchmark: POST a JSON body with stream=true, count non-200s,
-- print one "RESULT {...}" line. Env: BODY_FILE, AUTH (header value), EXTRA_HEADER ("Name: value").
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
if (os.getenv("AUTH") or "") ~= "" then wrk.headers["Authorization"] = os.getenv("AUTH") end
local extra = os.getenv("EXTRA_HEADER") or ""
local name, value = extra:match("^([^:]+):%s*(.*)$")
if name then wrk.headers[name] = value end
local failed = 0
response = function(status, headers, body)
  if status ~= 200 or not body:find("[DONE]", 1, true) then failed = failed + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format('RESULT {"requests":%d,"seconds":%.3f,"failed":%d,"socket_errors":%d,"p50_ms":%.3f,"p99_ms":%.3f}\n',
    summary.requests, summary.duration / 1e6, failed,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
