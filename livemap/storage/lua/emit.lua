-- Append one event to an order's stream and publish it with its offset (the stream id), order slot,
-- only while the order is live for the driver it is about (checked atomically with the append).
-- KEYS[1] order hash, KEYS[2] order stream. ARGV[1] driver id, ARGV[2] stream maxlen,
-- ARGV[3] publish command, ARGV[4] order channel, ARGV[5] customer json (no offset).
-- Returns the offset, or false when the order is not live for that driver.
if redis.call('HGET', KEYS[1], 'live') ~= '1' or redis.call('HGET', KEYS[1], 'driver') ~= ARGV[1] then
  return false
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'data', ARGV[5])
redis.call(ARGV[3], ARGV[4], '{"offset":"' .. id .. '",' .. string.sub(ARGV[5], 2))
return id
