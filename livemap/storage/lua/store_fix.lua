-- A driver's fixes, store slot: the store's "seen" and "lastfix" indexes and the dispatchers' copy.
--
-- KEYS[1] store seen zset (driver -> newest fix time), KEYS[2] store lastfix zset (driver -> its arrival).
-- ARGV[1] driver id, [2] receive time (ms), [3] publish command, [4] store channel, then per fix (2):
--   ts, dispatcher location json.
-- A fix counts when it is newer than the driver's newest one here; dispatchers get at most one
-- location per driver per second of fix time (the first fix of each new second).
local seen, lastfix, did = KEYS[1], KEYS[2], ARGV[1]
local last = tonumber(redis.call('ZSCORE', seen, did) or '0')
local newest = nil
for i = 0, (#ARGV - 4) / 2 - 1 do
  local ts = tonumber(ARGV[5 + i * 2])
  if ts > last then
    if math.floor(ts / 1000) ~= math.floor(last / 1000) then redis.call(ARGV[3], ARGV[4], ARGV[6 + i * 2]) end
    last = ts
    newest = ts
  end
end
if newest == nil then return 0 end
redis.call('ZADD', seen, newest, did)
redis.call('ZADD', lastfix, ARGV[2], did)
return 1
