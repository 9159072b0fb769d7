-- A driver's fixes (one fix or a batch), driver slot: the out-of-order check and the driver hash.
-- Atomic because two server processes may serve one driver (a reconnect lands on another process).
-- The other slots a fix reaches (store indexes, geo cell, orders) apply the same rule, "newer than
-- what this key already has", on their own (see store_fix, geo_fix, order_fix).
--
-- KEYS[1] driver hash.
-- ARGV[1] n_fixes, [2] receive time (ms), [3] driver speed json, then per fix (8):
--   ts, cell, lon, lat, speed, heading, accuracy, battery.
-- Returns {accepted, ignored}: a fix is accepted when it is newer than every fix accepted before it.
local dkey = KEYS[1]
local nf, F, FS = tonumber(ARGV[1]), 3, 8

local last = tonumber(redis.call('HGET', dkey, 'ts') or '0')
local newest, count = nil, 0
for i = 0, nf - 1 do
  local ts = tonumber(ARGV[F + 1 + i * FS])
  if ts > last then
    last = ts
    newest = i
    count = count + 1
  end
end
local ignored = nf - count
if ignored > 0 then redis.call('HINCRBY', dkey, 'ignored', ignored) end
if count == 0 then return {0, ignored} end

-- The driver's current position is its newest accepted fix; a fix resets the watchdog's quiet level.
local j = F + newest * FS
redis.call('HSET', dkey, 'ts', ARGV[j + 1], 'cell', ARGV[j + 2], 'lon', ARGV[j + 3], 'lat', ARGV[j + 4],
  'speed', ARGV[j + 5], 'heading', ARGV[j + 6], 'accuracy', ARGV[j + 7], 'battery', ARGV[j + 8],
  'recv', ARGV[2], 'speedmodel', ARGV[3], 'quiet', '0')
redis.call('HINCRBY', dkey, 'accepted', count)
return {count, ignored}
