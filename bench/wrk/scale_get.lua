-- GET /cdr/v1/ekauser/{id}/ for an id drawn at random from every id in $BENCH_IDS on each
-- request (the harness's get.lua pre-builds 20,000 requests, which would keep a 1M-user
-- table's working set small). Counting and the BENCH_RESULT line: the harness's common.lua,
-- found in $BENCH_WRK (../shared/bench/wrk).
--
-- The ids stay one string (Eka User ids are all 15 digits, one per line), not a table of
-- 1,000,000 strings: each request leaves garbage, and Lua's collector walks everything the
-- script holds. With a table of a million strings wrk stalled for up to 0.2 s at a time and
-- counted its stalls as the server's latency: a p99 of 77-240 ms at 1M users, 7-8 ms with
-- one string, against the same server; wrk's CPU fell from 0.9 to 0.6 of the 2 cores
-- (docs/performance.md, "A million users' GET, as wrk measures it").
dofile((os.getenv("BENCH_WRK") or error("BENCH_WRK is not set")) .. "/common.lua")

local ids, width, n, head, tail

function init(args)
  bench.seed(bench_thread_id)
  local path = os.getenv("BENCH_IDS") or error("BENCH_IDS is not set")
  local f = assert(io.open(path, "rb"))
  ids = f:read("*a")
  f:close()
  width = ids:find("\n", 1, true) or error("no ids in " .. path)
  if #ids % width ~= 0 or ids:sub(-1) ~= "\n" then
    error(path .. ": every id must have the first one's length")
  end
  n = #ids / width
  local r = wrk.format("GET", "/cdr/v1/ekauser/@ID@/", { ["auth"] = os.getenv("BENCH_TOKEN") })
  local at = r:find("@ID@", 1, true)
  head, tail = r:sub(1, at - 1), r:sub(at + 4)
end

function request()
  local at = (math.random(n) - 1) * width
  return head .. ids:sub(at + 1, at + width - 1) .. tail
end
