-- A step of an order's return (storage/returns.py), order slot, with compare-and-set on the return the
-- caller read. `pickup` makes the order live again for the collecting driver: a new leg, exactly like
-- a delivery's, whose route and progress start again from that driver's fixes; `received` ends it.
--
-- KEYS[1] order hash, KEYS[2] order stream, KEYS[3] order history list, KEYS[4] order notices set.
-- ARGV: returns.ReturnStepArgs, the same names in the same order:
--   [1] expected (the return json as read; '' = none), [2] record (the new return json),
--   [3] history (entry json), [4] notice (token of the step's outbox entry),
--   [5] leg ('start' | 'end' | '' = unchanged), [6] driver_id (the collecting driver, with 'start'),
--   [7] stream_maxlen, [8] publish_command, [9] order_channel, [10] customer_event (json, no offset).
-- Returns the event's stream offset, or false when the order's return changed since it was read.
local okey, skey, hkey, nkey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if (redis.call('HGET', okey, 'return') or '') ~= ARGV[1] then
  return false
end
redis.call('HSET', okey, 'return', ARGV[2])
redis.call('RPUSH', hkey, ARGV[3])
redis.call('SADD', nkey, ARGV[4])
if ARGV[5] == 'start' then
  -- Another driver starts from its own fixes: the previous one's newest fix time must not hold them back.
  if (redis.call('HGET', okey, 'driver') or '') ~= ARGV[6] then redis.call('HDEL', okey, 'fts', 'lsec') end
  -- The delivery's route, progress and ETA led from the store: the pickup starts where the driver is.
  redis.call('HDEL', okey, 'route', 'cum', 'segs', 'leg', 'eta_at', 'remaining', 'active')
  redis.call('HSET', okey, 'driver', ARGV[6], 'live', '1', 'return_leg', '1', 'route_source', 'straight_line')
  redis.call('HINCRBY', okey, 'route_v', 1)
elseif ARGV[5] == 'end' then
  redis.call('HSET', okey, 'live', '0', 'return_leg', '0')
  redis.call('HDEL', okey, 'active')
end
local id = redis.call('XADD', skey, 'MAXLEN', '~', ARGV[7], '*', 'data', ARGV[10])
redis.call(ARGV[8], ARGV[9], '{"offset":"' .. id .. '",' .. string.sub(ARGV[10], 2))
return id
