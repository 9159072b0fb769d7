-- The watchdog's claim on announcing a silent driver, driver slot: raise the driver's quiet level
-- (0 live, 1 stale, 2 offline) only if no fix arrived after the one the sweep saw. The sweep read that
-- fix's arrival from the store's lastfix index, which another script than the driver hash's writes:
-- hence "after", not "equal".
--
-- KEYS[1] driver hash.
-- ARGV[1] level to raise to, [2] arrival (ms) of the fix the sweep saw.
-- Returns 1 when this caller raised the level (it announces it), else 0.
local level = redis.call('HGET', KEYS[1], 'quiet') or '0'
if tonumber(redis.call('HGET', KEYS[1], 'recv') or '0') > tonumber(ARGV[2]) or tonumber(level) >= tonumber(ARGV[1])
then return 0 end
redis.call('HSET', KEYS[1], 'quiet', ARGV[1])
return 1
