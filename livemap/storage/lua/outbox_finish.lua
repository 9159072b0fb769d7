-- A notification worker is done with an outbox entry: ack it and schedule what is left, atomically,
-- so nothing is lost between the two and nothing is scheduled twice. Only the first worker to ack an
-- entry schedules (a slow worker whose entry was claimed by another must not add a second set of
-- retries). All keys share the outbox's slot.
--
-- KEYS[1] outbox stream, [2] delayed zset (retries by due time), [3] dead stream.
-- ARGV[1] consumer group, [2] entry id, [3] dead stream maxlen, [4] n retries, then per retry (2):
--   due (ms), entry json (flat field list); then one entry json per dead letter.
-- Returns 1 when this call acked the entry, 0 when it was acked already (nothing scheduled).
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
local n = tonumber(ARGV[4])
for i = 0, n - 1 do redis.call('ZADD', KEYS[2], ARGV[5 + i * 2], ARGV[6 + i * 2]) end
for i = 5 + n * 2, #ARGV do
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', unpack(cjson.decode(ARGV[i])))
end
return 1
