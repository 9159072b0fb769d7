-- Change an order's stage and/or driver atomically, with compare-and-set on what the caller read
-- (the legality check runs in Python against the store's stage machine).
--
-- KEYS[1] order hash, KEYS[2] order stream, KEYS[3] order history list, KEYS[4] store active set,
-- KEYS[5] old driver's orders set (or the order hash when none), KEYS[6] new driver's (same rule).
-- ARGV[1] expected stage, ARGV[2] expected driver ('' = none), ARGV[3] new stage, ARGV[4] new driver,
-- ARGV[5] live 0/1, ARGV[6] active 0/1, ARGV[7] final 0/1, ARGV[8] tracking id, ARGV[9] stream maxlen,
-- ARGV[10] history entry json ('' when the stage is unchanged), ARGV[11] customer event json,
-- ARGV[12] dispatcher event json, ARGV[13] order channel, ARGV[14] store channel,
-- ARGV[15] old driver channel (''), ARGV[16] new driver channel (''), ARGV[17] outbox stream key,
-- ARGV[18] store id, ARGV[19] now (ms, the new stop's place at the end of the driver's run).
-- Returns the event's stream offset, or false when the order changed since it was read.
local okey, skey, hkey, active, olddrv, newdrv = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
if redis.call('HGET', okey, 'stage') ~= ARGV[1] or (redis.call('HGET', okey, 'driver') or '') ~= ARGV[2] then
  return false
end
local tid = ARGV[8]
redis.call('HSET', okey, 'stage', ARGV[3], 'driver', ARGV[4], 'live', ARGV[5])
if ARGV[10] ~= '' then redis.call('RPUSH', hkey, ARGV[10]) end

if ARGV[6] == '1' then redis.call('SADD', active, tid) else redis.call('SREM', active, tid) end
if ARGV[2] ~= '' and (ARGV[2] ~= ARGV[4] or ARGV[7] == '1') then redis.call('ZREM', olddrv, tid) end
-- NX: a stop keeps its place in the driver's run; a new one joins at the end.
if ARGV[4] ~= '' and ARGV[7] == '0' then redis.call('ZADD', newdrv, 'NX', ARGV[19], tid) end

local id = redis.call('XADD', skey, 'MAXLEN', '~', ARGV[9], '*', 'data', ARGV[11])
local head = '{"offset":"' .. id .. '",'
redis.call('PUBLISH', ARGV[13], head .. string.sub(ARGV[11], 2))
redis.call('PUBLISH', ARGV[14], head .. string.sub(ARGV[12], 2))
if ARGV[10] ~= '' then
  redis.call('XADD', ARGV[17], 'MAXLEN', '~', 100000, '*', 'store', ARGV[18], 'tracking_id', tid, 'data', ARGV[12])
end
-- Tell the drivers' sessions to reload their stops (and whether to send locations to this order).
if ARGV[15] ~= '' then redis.call('PUBLISH', ARGV[15], '{"type":"orders"}') end
if ARGV[16] ~= '' and ARGV[16] ~= ARGV[15] then redis.call('PUBLISH', ARGV[16], '{"type":"orders"}') end
return id
