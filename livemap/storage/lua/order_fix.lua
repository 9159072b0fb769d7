-- A driver's fixes, one order's slot: the order's events (locations, ETA events), checked here,
-- atomically with the order's own writes, to be live for this driver: only the active leg's
-- customer gets locations, and nothing lands after the stage change that ended the leg.
--
-- KEYS[1] order hash, KEYS[2] order stream, KEYS[3] order notices set.
-- ARGV: positions.OrderFixArgs, the same names in the same order:
--   [1] driver_id, [2] publish_command, [3] order_channel,
--   [4] store_channel ('' = return the dispatchers' copies instead of publishing them: sharded
--       pub/sub cannot reach the store's slot from here),
--   [5] stream_maxlen, [6] newest_ts (the newest fix's), [7] active (0/1), [8] leg_state (json),
--   [9] eta_at, [10] remaining_m,
--   [11] route (json) and [12] route_cum (its cumulative lengths): the straight line from the first
--       live fix, for an order without a route; '' = none,
--   then items, 5 per item: fix ts, kind ("L" location | "E" event), customer json (no offset),
--       dispatcher json (events), notice token ('' = not notifiable).
-- Returns the dispatchers' copies (each with its offset) when store_channel is ''; else an empty table.
local okey, skey, nkey = KEYS[1], KEYS[2], KEYS[3]
local did, pub, chan, schan, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local copies = {}
local order = redis.call('HMGET', okey, 'live', 'driver', 'fts', 'lsec')
if order[1] ~= '1' or order[2] ~= did then return copies end
if ARGV[11] ~= '' then
  redis.call('HSETNX', okey, 'route', ARGV[11])
  redis.call('HSETNX', okey, 'cum', ARGV[12])
end
-- Fixes count here when newer than the newest this order has seen (another process may lag behind).
local fts = tonumber(order[3] or '0')
if tonumber(ARGV[6]) <= fts then return copies end

local function emit(body, dispatch, token)
  local id = redis.call('XADD', skey, 'MAXLEN', '~', maxlen, '*', 'data', body)
  local head = '{"offset":"' .. id .. '",'
  redis.call(pub, chan, head .. string.sub(body, 2))
  if dispatch ~= '' then
    if schan ~= '' then
      redis.call(pub, schan, head .. string.sub(dispatch, 2))
    else
      copies[#copies + 1] = head .. string.sub(dispatch, 2)
    end
  end
  if token ~= '' then redis.call('SADD', nkey, token) end
end

local lsec = tonumber(order[4] or '-1')
for b = 12, #ARGV - 1, 5 do
  local ts = tonumber(ARGV[b + 1])
  if ts > fts then
    if ARGV[b + 2] == 'L' then
      -- Customers get at most one location per second of fix time (never coalesced by wall clock).
      local sec = math.floor(ts / 1000)
      if sec ~= lsec then
        lsec = sec
        emit(ARGV[b + 3], '', '')
      end
    else
      emit(ARGV[b + 3], ARGV[b + 4], ARGV[b + 5])
    end
  end
end
redis.call('HSET', okey, 'fts', ARGV[6], 'lsec', lsec, 'leg', ARGV[8], 'eta_at', ARGV[9], 'remaining', ARGV[10],
  'active', ARGV[7])
return copies
