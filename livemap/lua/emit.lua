-- Append one event to an order's stream and publish it with its offset (the stream id).
-- KEYS[1] order stream. ARGV[1] stream maxlen, [2] order channel, [3] customer json (no offset),
-- [4] store channel, [5] dispatcher json ('' = none), [6] outbox key ('' = not notifiable),
-- [7] store id, [8] tracking id. Returns the offset.
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'data', ARGV[3])
local head = '{"offset":"' .. id .. '",'
redis.call('PUBLISH', ARGV[2], head .. string.sub(ARGV[3], 2))
if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[4], head .. string.sub(ARGV[5], 2)) end
if ARGV[6] ~= '' then
  redis.call('XADD', ARGV[6], 'MAXLEN', '~', 100000, '*', 'store', ARGV[7], 'tracking_id', ARGV[8], 'data', ARGV[5])
end
return id
