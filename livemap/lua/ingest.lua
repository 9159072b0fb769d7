-- Store a driver's fixes (one fix or a batch) atomically; the out-of-order check must be atomic
-- because two server processes may serve one driver (a reconnect lands on another process).
--
-- KEYS[1] driver hash, KEYS[2] store "seen" zset, then per order: order hash, order stream.
-- ARGV[1] n_fixes, ARGV[2] n_orders, ARGV[3] stream maxlen, ARGV[4] driver id,
-- ARGV[5] store channel, ARGV[6] geo key prefix, ARGV[7] receive time (ms), then
-- per fix (9): ts, cell, lon, lat, speed, heading, accuracy, battery, dispatcher event json;
-- per order (1 + 5 per fix): order channel, then per fix: location event json (no offset),
--   along_m, speed_mps, eta_at, remaining_m.
-- Returns {accepted, ignored}.
local dkey, seen = KEYS[1], KEYS[2]
local nf, no, maxlen, did = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local schan, geoprefix, recv = ARGV[5], ARGV[6], ARGV[7]
local F, FS = 7, 9

-- A fix is accepted when it is newer than every fix accepted before it.
local last = tonumber(redis.call('HGET', dkey, 'ts') or '0')
local accepted = {}
for i = 0, nf - 1 do
  local ts = tonumber(ARGV[F + 1 + i * FS])
  if ts > last then
    last = ts
    accepted[#accepted + 1] = i
  end
end
local ignored = nf - #accepted
if ignored > 0 then redis.call('HINCRBY', dkey, 'ignored', ignored) end
if #accepted == 0 then return {0, ignored} end

-- The driver's current position is its newest accepted fix.
local j = F + accepted[#accepted] * FS
local cell = ARGV[j + 2]
local oldcell = redis.call('HGET', dkey, 'cell')
if oldcell and oldcell ~= cell then redis.call('ZREM', geoprefix .. oldcell, did) end
redis.call('GEOADD', geoprefix .. cell, ARGV[j + 3], ARGV[j + 4], did)
redis.call('HSET', dkey, 'ts', ARGV[j + 1], 'cell', cell, 'lon', ARGV[j + 3], 'lat', ARGV[j + 4],
  'speed', ARGV[j + 5], 'heading', ARGV[j + 6], 'accuracy', ARGV[j + 7], 'battery', ARGV[j + 8], 'recv', recv)
redis.call('HINCRBY', dkey, 'accepted', #accepted)
redis.call('ZADD', seen, ARGV[j + 1], did)

-- Dispatchers get at most one location per driver per second of fix time.
local dsec = tonumber(redis.call('HGET', dkey, 'dsec') or '-1')
for _, i in ipairs(accepted) do
  local sec = math.floor(tonumber(ARGV[F + 1 + i * FS]) / 1000)
  if sec ~= dsec then
    dsec = sec
    redis.call('PUBLISH', schan, ARGV[F + 9 + i * FS])
  end
end
redis.call('HSET', dkey, 'dsec', dsec)

-- Each order this driver carries gets the fix only while it is live for this driver: checked
-- here, atomically, so a location never lands after the stage change that ended the leg.
local O, OS = F + nf * FS, 1 + nf * 5
for o = 0, no - 1 do
  local okey, skey = KEYS[3 + o * 2], KEYS[4 + o * 2]
  local base = O + o * OS
  if redis.call('HGET', okey, 'live') == '1' and redis.call('HGET', okey, 'driver') == did then
    local chan = ARGV[base + 1]
    local lsec = tonumber(redis.call('HGET', okey, 'lsec') or '-1')
    local k
    for _, i in ipairs(accepted) do
      k = base + 1 + i * 5
      -- Customers get at most one location per second of fix time (never coalesced by wall clock).
      local sec = math.floor(tonumber(ARGV[F + 1 + i * FS]) / 1000)
      if sec ~= lsec then
        lsec = sec
        local body = ARGV[k + 1]
        local id = redis.call('XADD', skey, 'MAXLEN', '~', maxlen, '*', 'type', 'location', 'data', body)
        redis.call('PUBLISH', chan, '{"offset":"' .. id .. '",' .. string.sub(body, 2))
      end
    end
    redis.call('HSET', okey, 'lsec', lsec, 'along', ARGV[k + 2], 'speed', ARGV[k + 3], 'eta_at', ARGV[k + 4],
      'remaining', ARGV[k + 5], 'eta_ts', ARGV[j + 1])
  end
end
return {#accepted, ignored}
