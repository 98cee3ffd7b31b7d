-- wrk script: POST pre-signed Twilio webhooks read from a file, each at most once.
--
--   wrk -t T -c C -d 30s -s bench/post.lua URL -- REQUESTS STATS T WRAP
--
-- REQUESTS has one request per line, "signature<TAB>form body", in the order they must go.
-- Thread t (0-based) takes lines t, t+T, t+2T, ... in order; the generator puts a contact's
-- messages T*k lines apart, so one contact always stays on one thread and its messages leave in
-- order, each long after its previous one was answered.
-- WRAP=1 starts the file again when it runs out (ceiling A only: it keeps nothing). Otherwise a
-- thread that runs out marks itself exhausted and its connections fall silent, which the
-- benchmark reports as an invalid run.
-- STATS receives a JSON summary written by done().
--
-- wrk 4.1 calls request() once on thread 0 before the run, only to check the request it returns
-- (script_verify_request), and never sends that one: thread 0 answers that call without
-- counting it. (A wrk that skipped the check would send line 0 twice: the benchmark would see
-- a duplicate MessageSid and fail loudly, not silently.)

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local path, nthreads = args[1], tonumber(args[3])
  stats_path = args[2]
  wrap = args[4] == "1"
  handed = 0
  exhausted = false
  verifying = id == 0
  requests_ = {}
  local line_number = 0
  for line in io.lines(path) do
    if line_number % nthreads == id then
      local tab = line:find("\t", 1, true)
      local headers = {
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["X-Twilio-Signature"] = line:sub(1, tab - 1),
        ["User-Agent"] = "TwilioProxy/1.1",
        ["Accept"] = "*/*",
      }
      requests_[#requests_ + 1] = wrk.format("POST", nil, headers, line:sub(tab + 1))
    end
    line_number = line_number + 1
  end
end

function request()
  if verifying then
    verifying = false
    return requests_[1]
  end
  if handed >= #requests_ and not wrap then
    exhausted = true
    return ""
  end
  handed = handed + 1
  return requests_[(handed - 1) % #requests_ + 1]
end

function done(summary, latency, requests)
  local per_thread = {}
  local any_exhausted = false
  for i, thread in ipairs(threads) do
    per_thread[i] = tostring(thread:get("handed"))
    any_exhausted = any_exhausted or thread:get("exhausted")
  end
  local e = summary.errors
  local file = io.open(threads[1]:get("stats_path"), "w")
  file:write(string.format(
    '{"completed": %d, "duration_us": %d, "handed_per_thread": [%s], "exhausted": %s, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}',
    summary.requests, summary.duration, table.concat(per_thread, ", "), tostring(any_exhausted),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
  file:close()
end
