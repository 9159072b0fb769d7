-- Street speeds learned from the fleet (tracking/fleet.py): fold a batch of observed traversals into
-- each street segment's time-decayed pace, and forget segments nobody drove within the horizon.
-- Aggregates only: a field holds a segment's pace, never who drove it.
--
-- KEYS[1] hash: segment id -> "pace weight updated_ms" (pace in s/m; weight: traversals, decayed)
-- KEYS[2] sorted set: segment id by updated_ms (what the pruning walks); same hash slot as KEYS[1].
-- ARGV: [1] now_ms, [2] tau_s (the decay's time constant), [3] horizon_ms (forget older), then per
--   traversal: segment id, pace (s/m).
-- Returns the number of segments forgotten.
local now, tau, horizon = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 4, #ARGV, 2 do
  local seg, pace = ARGV[i], tonumber(ARGV[i + 1])
  local old = redis.call('HGET', KEYS[1], seg)
  local weight = 0
  if old then
    local p, w, t = string.match(old, '(%S+) (%S+) (%S+)')
    weight = tonumber(w) * math.exp(-math.max(now - tonumber(t), 0) / 1000 / tau)
    pace = (tonumber(p) * weight + pace) / (weight + 1)
  end
  redis.call('HSET', KEYS[1], seg, string.format('%.6f %.4f %d', pace, weight + 1, now))
  redis.call('ZADD', KEYS[2], now, seg)
end
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - horizon, 'LIMIT', 0, 500)
if #stale > 0 then
  redis.call('HDEL', KEYS[1], unpack(stale))
  redis.call('ZREM', KEYS[2], unpack(stale))
end
-- A graph nobody drives any more (its extract replaced) leaves nothing behind.
redis.call('PEXPIRE', KEYS[1], horizon)
redis.call('PEXPIRE', KEYS[2], horizon)
return #stale
