-- Store a driver's fixes (one fix or a batch) atomically; the out-of-order check must be atomic
-- because two server processes may serve one driver (a reconnect lands on another process).
--
-- KEYS[1] driver hash, KEYS[2] store "seen" zset, KEYS[3] global last-fix zset,
--   then per stop: order hash, order stream.
-- ARGV[1] n_fixes, [2] n_stops, [3] stream maxlen, [4] driver id, [5] store channel, [6] geo key prefix,
--   [7] receive time (ms), [8] driver speed json, [9] outbox stream key, [10] store id, then
-- per fix (9): ts, cell, lon, lat, speed, heading, accuracy, battery, dispatcher location json;
-- per stop: order channel, tracking id, active 0/1, leg state json, eta_at, remaining_m, n_items, then
--   per item (5): fix index (0-based), kind ("L" location | "E" event), customer json (no offset),
--   dispatcher json (events), notify 0/1.
-- Returns {accepted, ignored}.
local dkey, seen, lastfix = KEYS[1], KEYS[2], KEYS[3]
local nf, ns, maxlen, did = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local schan, geoprefix, recv, speed, outbox, sid = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local F, FS = 10, 9

-- A fix is accepted when it is newer than every fix accepted before it.
local last = tonumber(redis.call('HGET', dkey, 'ts') or '0')
local accepted, newest, count = {}, nil, 0
for i = 0, nf - 1 do
  local ts = tonumber(ARGV[F + 1 + i * FS])
  if ts > last then
    last = ts
    accepted[i] = true
    newest = i
    count = count + 1
  end
end
local ignored = nf - count
if ignored > 0 then redis.call('HINCRBY', dkey, 'ignored', ignored) end
if count == 0 then return {0, ignored} end

-- The driver's current position is its newest accepted fix.
local j = F + newest * FS
local cell = ARGV[j + 2]
local oldcell = redis.call('HGET', dkey, 'cell')
if oldcell and oldcell ~= cell then redis.call('ZREM', geoprefix .. oldcell, did) end
redis.call('GEOADD', geoprefix .. cell, ARGV[j + 3], ARGV[j + 4], did)
redis.call('HSET', dkey, 'ts', ARGV[j + 1], 'cell', cell, 'lon', ARGV[j + 3], 'lat', ARGV[j + 4],
  'speed', ARGV[j + 5], 'heading', ARGV[j + 6], 'accuracy', ARGV[j + 7], 'battery', ARGV[j + 8], 'recv', recv,
  'speedmodel', speed, 'quiet', '0')
redis.call('HINCRBY', dkey, 'accepted', count)
redis.call('ZADD', seen, ARGV[j + 1], did)
redis.call('ZADD', lastfix, recv, sid .. '\31' .. did)

-- Dispatchers get at most one location per driver per second of fix time.
local dsec = tonumber(redis.call('HGET', dkey, 'dsec') or '-1')
for i = 0, nf - 1 do
  if accepted[i] then
    local sec = math.floor(tonumber(ARGV[F + 1 + i * FS]) / 1000)
    if sec ~= dsec then
      dsec = sec
      redis.call('PUBLISH', schan, ARGV[F + 9 + i * FS])
    end
  end
end
redis.call('HSET', dkey, 'dsec', dsec)

local function emit(skey, chan, tid, body, dispatch, notify)
  local id = redis.call('XADD', skey, 'MAXLEN', '~', maxlen, '*', 'data', body)
  local head = '{"offset":"' .. id .. '",'
  redis.call('PUBLISH', chan, head .. string.sub(body, 2))
  if dispatch ~= '' then redis.call('PUBLISH', schan, head .. string.sub(dispatch, 2)) end
  if notify == '1' then
    redis.call('XADD', outbox, 'MAXLEN', '~', 100000, '*', 'store', sid, 'tracking_id', tid, 'data', dispatch)
  end
end

-- Each stop gets its items only while it is live for this driver: checked here, atomically, so
-- nothing lands after the stage change that ended the leg.
local a = F + nf * FS
for s = 0, ns - 1 do
  local okey, skey = KEYS[4 + s * 2], KEYS[5 + s * 2]
  local chan, tid, active, state = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local eta_at, remaining, n = ARGV[a + 5], ARGV[a + 6], tonumber(ARGV[a + 7])
  local items = a + 7
  a = items + n * 5
  if redis.call('HGET', okey, 'live') == '1' and redis.call('HGET', okey, 'driver') == did then
    local lsec = tonumber(redis.call('HGET', okey, 'lsec') or '-1')
    for it = 0, n - 1 do
      local b = items + it * 5
      local index = tonumber(ARGV[b + 1])
      if accepted[index] then
        if ARGV[b + 2] == 'L' then
          -- Customers get at most one location per second of fix time (never coalesced by wall clock).
          local sec = math.floor(tonumber(ARGV[F + 1 + index * FS]) / 1000)
          if sec ~= lsec then
            lsec = sec
            emit(skey, chan, tid, ARGV[b + 3], '', '0')
          end
        else
          emit(skey, chan, tid, ARGV[b + 3], ARGV[b + 4], ARGV[b + 5])
        end
      end
    end
    redis.call('HSET', okey, 'lsec', lsec, 'leg', state, 'eta_at', eta_at, 'remaining', remaining, 'active', active)
  end
end
return {count, ignored}
