-- GET /api/v1/orders/{id} for ids drawn at random from a file of ids, one a line;
-- at the end, one JSON line with the figures loadtest/run keeps.
--
-- Usage: wrk ... -s loadtest/wrk/ids.lua URL -- IDS_FILE

local ids = {}
local threads = 0

function setup(thread)
    thread:set("id", threads)
    threads = threads + 1
end

function init(args)
    for line in io.lines(args[1]) do
        ids[#ids + 1] = "/api/v1/orders/" .. line
    end
    -- Each thread draws its own sequence.
    math.randomseed(os.time() * 64 + id)
end

function request()
    return wrk.format("GET", ids[math.random(#ids)])
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        '{"requests": %d, "duration_us": %d, "bytes": %d, '
            .. '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, '
            .. '"non_2xx": %d, "latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
        summary.requests, summary.duration, summary.bytes,
        e.connect, e.read, e.write, e.timeout, e.status,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
