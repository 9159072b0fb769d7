-- A new road route for an order's active leg, order slot: stored and announced only while the order
-- is live for the driver it was computed for (checked atomically with the writes).
--
-- KEYS[1] order hash, KEYS[2] order stream.
-- ARGV: [1] driver_id, [2] stream_maxlen, [3] publish_command, [4] order_channel,
--   [5] route (json points), [6] route_cum (their cumulative lengths), [7] route_source,
--   [8] customer json (the route event, no offset).
-- Returns {offset, route version}, or false when the order is not live for that driver.
if redis.call('HGET', KEYS[1], 'live') ~= '1' or redis.call('HGET', KEYS[1], 'driver') ~= ARGV[1] then
  return false
end
redis.call('HSET', KEYS[1], 'route', ARGV[5], 'cum', ARGV[6], 'route_source', ARGV[7])
local version = redis.call('HINCRBY', KEYS[1], 'route_v', 1)
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'data', ARGV[8])
redis.call(ARGV[3], ARGV[4], '{"offset":"' .. id .. '",' .. string.sub(ARGV[8], 2))
return {id, version}
