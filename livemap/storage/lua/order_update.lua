-- Change an order's stage and/or driver, order slot, with compare-and-set on what the caller read
-- (the legality check runs in Python against the store's stage machine). The store's and the
-- drivers' indexes live in other slots: the caller adds the order to the ones it joins before this
-- script and removes it from the ones it leaves after (see OrderRecords._update in orders.py).
--
-- KEYS[1] order hash, KEYS[2] order stream, KEYS[3] order history list, KEYS[4] order notices set.
-- ARGV: orders.OrderUpdateArgs, the same names in the same order:
--   [1] expected_stage, [2] expected_driver ('' = none), [3] stage (new), [4] driver (new),
--   [5] live (0/1), [6] stream_maxlen, [7] history (entry json; '' when the stage is unchanged),
--   [8] customer_event (json), [9] publish_command, [10] order_channel,
--   [11] notice (token of the outbox entry announcing the change; '' = none).
-- Returns the event's stream offset, or false when the order changed since it was read.
local okey, skey, hkey, nkey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if redis.call('HGET', okey, 'stage') ~= ARGV[1] or (redis.call('HGET', okey, 'driver') or '') ~= ARGV[2] then
  return false
end
redis.call('HSET', okey, 'stage', ARGV[3], 'driver', ARGV[4], 'live', ARGV[5])
-- Another driver starts from its own fixes: the previous one's newest fix time must not hold them back.
if ARGV[2] ~= ARGV[4] then redis.call('HDEL', okey, 'fts', 'lsec') end
if ARGV[7] ~= '' then redis.call('RPUSH', hkey, ARGV[7]) end
local id = redis.call('XADD', skey, 'MAXLEN', '~', ARGV[6], '*', 'data', ARGV[8])
redis.call(ARGV[9], ARGV[10], '{"offset":"' .. id .. '",' .. string.sub(ARGV[8], 2))
if ARGV[11] ~= '' then redis.call('SADD', nkey, ARGV[11]) end
return id
