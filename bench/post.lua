-- wrk script: POST pre-signed Twilio webhooks read from a file, each at most once.
--
--   wrk -t T -c C -d 10s -s bench/post.lua URL -- REQUESTS STATS T WRAP OFFSETS
--
-- REQUESTS has one request per line, "signature<TAB>form body", in the order they must go.
-- Thread t (0-based) takes lines t, t+T, t+2T, ... in order; the generator puts a contact's
-- messages T*k lines apart, so one contact always stays on one thread and its messages leave in
-- order, each long after its previous one was answered.
-- OFFSETS ("n0,n1,...") says how many of its lines each thread already sent in earlier runs, so
-- a measurement in several slices goes on where the last one stopped.
-- WRAP=1 starts the file again when it runs out (ceiling A only: it keeps nothing). Otherwise a
-- thread that runs out marks itself exhausted and its connections fall silent, which the
-- benchmark reports as an invalid run.
-- STATS receives a JSON summary written by done(), with latency at every 0.1 percentile.
--
-- wrk 4.1 calls request() once on thread 0 before the run, only to check the request it returns
-- (script_verify_request), and never sends that one: thread 0 answers that call without
-- counting it. (A wrk that skipped the check would send a line twice: the benchmark would see a
-- duplicate MessageSid and fail loudly, not silently.)

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
  local offsets = {}
  for n in string.gmatch(args[5], "%d+") do
    offsets[#offsets + 1] = tonumber(n)
  end
  start = offsets[id + 1]
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

local function line_at(n)
  return requests_[n % #requests_ + 1]
end

function request()
  if verifying then
    verifying = false
    return line_at(start)
  end
  if start + handed >= #requests_ and not wrap then
    exhausted = true
    return ""
  end
  handed = handed + 1
  return line_at(start + handed - 1)
end

function done(summary, latency, requests)
  local per_thread, quantiles = {}, {}
  local any_exhausted = false
  for i, thread in ipairs(threads) do
    per_thread[i] = tostring(thread:get("handed"))
    any_exhausted = any_exhausted or thread:get("exhausted")
  end
  for i = 1, 1000 do
    quantiles[i] = tostring(latency:percentile(i / 10))
  end
  local e = summary.errors
  local file = io.open(threads[1]:get("stats_path"), "w")
  file:write(string.format(
    '{"completed": %d, "duration_us": %d, "handed_per_thread": [%s], "exhausted": %s, ' ..
    '"quantiles_us": [%s], ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}',
    summary.requests, summary.duration, table.concat(per_thread, ", "), tostring(any_exhausted),
    table.concat(quantiles, ", "), e.connect, e.read, e.write, e.status, e.timeout))
  file:close()
end
