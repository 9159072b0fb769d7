-- Move the retries that are due back into the outbox stream, atomically (each is added once and
-- removed from the schedule in the same step).
--
-- KEYS[1] delayed zset (retries by due time), [2] outbox stream.
-- ARGV[1] now (ms), [2] at most this many.
-- Returns how many entries were moved.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', unpack(cjson.decode(member)))
  redis.call('ZREM', KEYS[1], member)
end
return #due
