-- A new road route for an order's active leg, order slot: stored and announced only while the order
-- is live for the driver it was computed for and not a queued stop (checked atomically with the
-- writes): a route starts where the driver was, which only the active leg's customer may see.
--
-- KEYS[1] order hash, KEYS[2] order stream.
-- ARGV: [1] driver_id, [2] stream_maxlen, [3] publish_command, [4] order_channel,
--   [5] route (json points), [6] route_cum (their cumulative lengths), [7] route_source,
--   [8] customer json (the route event, no offset), [9] the street segment under each piece of the
--   route (json RoadPieces, fleet speeds) or '' when the router named none.
-- Returns {offset, route version}, or false when the order is not (or no longer) that driver's active leg.
local order = redis.call('HMGET', KEYS[1], 'live', 'driver', 'active')
if order[1] ~= '1' or order[2] ~= ARGV[1] or order[3] == '0' then
  return false
end
redis.call('HSET', KEYS[1], 'route', ARGV[5], 'cum', ARGV[6], 'route_source', ARGV[7])
if ARGV[9] == '' then
  redis.call('HDEL', KEYS[1], 'segs')
else
  redis.call('HSET', KEYS[1], 'segs', ARGV[9])
end
local version = redis.call('HINCRBY', KEYS[1], 'route_v', 1)
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'data', ARGV[8])
redis.call(ARGV[3], ARGV[4], '{"offset":"' .. id .. '",' .. string.sub(ARGV[8], 2))
return {id, version}
