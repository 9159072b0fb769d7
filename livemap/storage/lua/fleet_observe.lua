-- Street speeds learned from the fleet (tracking/fleet.py): fold a batch of observed traversals into
-- each street segment's time-decayed pace, and forget segments nobody drove within the horizon.
-- Aggregates only: a field holds a segment's pace, never who drove it.
--
-- Time is fix time (when the traversal ended), capped by the server's clock: a replayed or simulated
-- drive decays by its own clock, and a phone whose clock runs ahead cannot make the rest look stale.
--
-- KEYS[1] hash: segment id -> "pace weight updated_ms" (pace in s/m; weight: traversals, decayed)
-- KEYS[2] sorted set: segment id by updated_ms (what the pruning walks); same hash slot as KEYS[1].
-- ARGV: [1] now_ms (server clock), [2] tau_s (the decay's time constant), [3] horizon_ms (forget
--   segments this much older than the newest observation), then per traversal: segment id,
--   pace (s/m), fix time it ended (ms).
-- Returns the number of segments forgotten.
local now, tau, horizon = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 4, #ARGV, 3 do
  local seg, pace, ts = ARGV[i], tonumber(ARGV[i + 1]), math.min(tonumber(ARGV[i + 2]), now)
  local old = redis.call('HGET', KEYS[1], seg)
  local w_old, w_new, updated = 0, 1, ts
  if old then
    local p, w, t = string.match(old, '(%S+) (%S+) (%S+)')
    t = tonumber(t)
    if ts >= t then
      w_old = tonumber(w) * math.exp(-(ts - t) / 1000 / tau)
    else -- an older traversal arriving late (another process's batch): it weighs as old as it is
      w_old, w_new, updated = tonumber(w), math.exp(-(t - ts) / 1000 / tau), t
    end
    pace = (tonumber(p) * w_old + pace * w_new) / (w_old + w_new)
  end
  redis.call('HSET', KEYS[1], seg, string.format('%.6f %.4f %d', pace, w_old + w_new, updated))
  redis.call('ZADD', KEYS[2], updated, seg)
end
local newest = redis.call('ZREVRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if newest[2] then
  local clock = math.min(tonumber(newest[2]), now)
  local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', clock - horizon, 'LIMIT', 0, 500)
  if #stale > 0 then
    redis.call('HDEL', KEYS[1], unpack(stale))
    redis.call('ZREM', KEYS[2], unpack(stale))
  end
  -- A graph nobody drives any more (its extract replaced) leaves nothing behind.
  redis.call('PEXPIRE', KEYS[1], horizon)
  redis.call('PEXPIRE', KEYS[2], horizon)
  return #stale
end
return 0
