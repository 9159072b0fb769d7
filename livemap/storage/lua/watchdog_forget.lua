-- Forget an offline driver, store slot: drop it from the store's lastfix index, unless a fix arrived
-- after the one the sweep saw.
--
-- KEYS[1] store lastfix zset (driver -> arrival of its newest fix).
-- ARGV[1] driver id, [2] arrival (ms) of the fix the sweep saw.
-- Returns 1 when the driver was removed, else 0.
local recv = redis.call('ZSCORE', KEYS[1], ARGV[1])
if recv and tonumber(recv) <= tonumber(ARGV[2]) then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
