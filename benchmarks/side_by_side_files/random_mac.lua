-- wrk script for side_by_side.py and servers.py. Environment:
--   BENCH_MACS  file with one MAC a line: each request asks for a random one's BENCH_PATH;
--   BENCH_PATH  the path, with MAC standing for the MAC (without BENCH_MACS: the path as is);
--   BENCH_HEADERS  extra headers, "Name: value" separated by "|".
-- done() prints one line "RESULT {json}" for the runner: latency percentiles in microseconds.
local macs = {}
local path = os.getenv("BENCH_PATH") or "/"
local list = os.getenv("BENCH_MACS")
if list and list ~= "" then
  for line in io.lines(list) do
    if line ~= "" then macs[#macs + 1] = line end
  end
end
for header in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^|]+") do
  local name, value = string.match(header, "^%s*([^:]+):%s*(.*)$")
  if name then wrk.headers[name] = value end
end

function setup(thread)
  thread:set("seed", math.random(1, 2147483647))
end

function init(args)
  math.randomseed(seed or os.time())
end

function request()
  if #macs == 0 then return wrk.format("GET", path) end
  local mac = macs[math.random(#macs)]
  return wrk.format("GET", (string.gsub(path, "MAC", mac)))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
