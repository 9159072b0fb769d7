-- A driver's position in one geo cell of its store: enter the cell, or leave it.
--
-- KEYS[1] the cell's geo set, KEYS[2] the cell's fix times (hash driver -> ts of its entry).
-- ARGV[1] driver id, [2] fix ts, [3] lon, [4] lat; lon '' means leave (the driver's newer fix is elsewhere).
-- Only a fix newer than the driver's entry here moves it, so a late, older fix from another
-- process never removes the driver from the cell of its newest position.
local geo, times, did, ts = KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2])
if ts <= tonumber(redis.call('HGET', times, did) or '0') then return 0 end
if ARGV[3] == '' then
  redis.call('ZREM', geo, did)
  redis.call('HDEL', times, did)
else
  redis.call('GEOADD', geo, ARGV[3], ARGV[4], did)
  redis.call('HSET', times, did, ts)
end
return 1
