-- GET /cdr/v1/ekauser/{id}/ for an id drawn at random from every id in $BENCH_IDS on each
-- request (the harness's get.lua pre-builds 20,000 requests, which would keep a 1M-user
-- table's working set small). Counting and the BENCH_RESULT line: the harness's common.lua,
-- found in $BENCH_WRK (../shared/bench/wrk).
dofile((os.getenv("BENCH_WRK") or error("BENCH_WRK is not set")) .. "/common.lua")

local ids, n, head, tail

function init(args)
  bench.seed(bench_thread_id)
  ids = bench.load_ids()
  n = #ids
  local r = wrk.format("GET", "/cdr/v1/ekauser/@ID@/", { ["auth"] = os.getenv("BENCH_TOKEN") })
  local at = r:find("@ID@", 1, true)
  head, tail = r:sub(1, at - 1), r:sub(at + 4)
end

function request()
  return head .. ids[math.random(n)] .. tail
end
