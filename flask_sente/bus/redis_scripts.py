"""The Lua scripts of the Redis bus: each runs atomically in Redis.

- ``PUSH``: append one packed event to the mailbox of every client of a uid, trim each
  backlog, drop clients whose mailbox expired, and tell the workers (``push <worker> U``).
- ``ENSURE``: create a client's mailbox (epoch, seq, delivered) if it does not exist.
- ``DELIVERED``: raise a mailbox's delivered mark, never lower it.
- ``OPEN`` / ``CLOSE``: count a uid open or closed on one worker for one transport; return 1
  when the uid enters or leaves the whole cluster, so exactly one worker fires the event.
"""

PUSH = """
local cids = redis.call('SMEMBERS', KEYS[1])
local n = 0
for _, cid in ipairs(cids) do
  local mb = ARGV[1] .. 'mb:' .. ARGV[2] .. ':' .. cid
  if redis.call('EXISTS', mb) == 1 then
    local seq = redis.call('HINCRBY', mb, 'seq', 1)
    local log = ARGV[1] .. 'log:' .. ARGV[2] .. ':' .. cid
    redis.call('XADD', log, 'MAXLEN', ARGV[4], seq .. '-1', 'e', ARGV[3])
    redis.call('PEXPIRE', log, ARGV[5])
    n = n + 1
  else
    redis.call('SREM', KEYS[1], cid)
  end
end
if n > 0 then redis.call('PUBLISH', ARGV[1] .. 'events', 'push ' .. ARGV[6] .. ' ' .. ARGV[2]) end
return n
"""

ENSURE = """
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
redis.call('HSETNX', KEYS[1], 'seq', 0)
redis.call('HSETNX', KEYS[1], 'delivered', 0)
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return 1
"""

DELIVERED = """
local d = tonumber(redis.call('HGET', KEYS[1], 'delivered') or '0')
if tonumber(ARGV[1]) > d then redis.call('HSET', KEYS[1], 'delivered', ARGV[1]) end
return 1
"""

OPEN = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
  local any = redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
  redis.call('PUBLISH', ARGV[2], 'presence ' .. ARGV[3] .. ' -')
  if any == 1 then return 1 end
end
return 0
"""

CLOSE = """
if redis.call('SREM', KEYS[1], ARGV[1]) == 1 then
  if redis.call('HINCRBY', KEYS[2], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[2], ARGV[1]) end
  local any = redis.call('HINCRBY', KEYS[3], ARGV[1], -1)
  redis.call('PUBLISH', ARGV[2], 'presence ' .. ARGV[3] .. ' -')
  if any <= 0 then
    redis.call('HDEL', KEYS[3], ARGV[1])
    return 1
  end
end
return 0
"""
