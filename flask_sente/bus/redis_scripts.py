"""The Lua scripts of the Redis bus: each runs atomically in Redis.

- ``PUSH``: append packed events (``uid, packed`` pairs) to the mailbox of every client of
  each uid, trim each backlog, drop clients whose mailbox expired, and tell only the workers
  that hold a connection of the uid (``at:U``), one message per worker for the whole batch.
  Each entry carries its push id (``i``), so a push whose answer was lost can be looked up.
  Returns, per event, how many mailboxes took it.
- ``FOUND``: for ``uid, push id`` pairs, whether the push is in a mailbox of the uid.
- ``READ``: a mailbox's epoch and the events after a number; a mailbox whose numbering is
  behind that number (a replica promoted before it had the last pushes) is moved up to it,
  so later pushes get numbers its clients have not seen.
- ``ENSURE``: create a client's mailbox (epoch, seq, delivered) if it does not exist.
- ``DELIVERED``: raise a mailbox's delivered mark, never lower it.
- ``HOLD``: count one worker's connections of a uid up or down (``at:U``, ``held:W``);
  counts add in any order, so two concurrent changes cannot lose each other.
- ``OPEN`` / ``CLOSE``: count a uid open or closed on one worker for one transport; return 1
  when the uid enters or leaves the whole cluster, so exactly one worker fires the event.
"""

PUSH = """
local p, backlog, ttl, origin, base = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local reached, notify, workers, done = {}, {}, {}, {}
local k = 0
for a = 6, #ARGV, 2 do
  local u, packed = ARGV[a], ARGV[a + 1]
  k = k + 1
  local clients = p .. 'clients:' .. u
  local n = 0
  for _, cid in ipairs(redis.call('SMEMBERS', clients)) do
    local mb = p .. 'mb:' .. u .. ':' .. cid
    if redis.call('EXISTS', mb) == 1 then
      local seq = redis.call('HINCRBY', mb, 'seq', 1)
      local log = p .. 'log:' .. u .. ':' .. cid
      redis.call('XADD', log, 'MAXLEN', backlog, seq .. '-1', 'e', packed, 'i', base .. k)
      -- the log lives as long as its mailbox, not past it (pushes to the uid's other
      -- clients must not keep a departed client's log alive)
      local left = redis.call('PTTL', mb)
      redis.call('PEXPIRE', log, left > 0 and left or ttl)
      n = n + 1
    else
      redis.call('SREM', clients, cid)
    end
  end
  reached[k] = n
  if n > 0 and not done[u] then
    done[u] = true
    local at = redis.call('HGETALL', p .. 'at:' .. u)
    for b = 1, #at, 2 do
      local w = at[b]
      if w ~= origin and tonumber(at[b + 1]) > 0 then
        if not notify[w] then
          notify[w] = {'push'}
          workers[#workers + 1] = w
        end
        table.insert(notify[w], u)
      end
    end
  end
end
for _, w in ipairs(workers) do
  redis.call('PUBLISH', p .. 'w:' .. w, table.concat(notify[w], '\\n'))
end
return reached
"""

FOUND = """
local p, count = ARGV[1], ARGV[2]
local found = {}
for a = 3, #ARGV, 2 do
  local u, id = ARGV[a], ARGV[a + 1]
  local hit = 0
  for _, cid in ipairs(redis.call('SMEMBERS', p .. 'clients:' .. u)) do
    for _, entry in ipairs(redis.call('XREVRANGE', p .. 'log:' .. u .. ':' .. cid, '+', '-',
                                      'COUNT', count)) do
      local f = entry[2]
      for c = 1, #f, 2 do
        if f[c] == 'i' and f[c + 1] == id then hit = 1 end
      end
    end
    if hit == 1 then break end
  end
  found[#found + 1] = hit
end
return found
"""

READ = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then return {'', {}} end
if tonumber(redis.call('HGET', KEYS[1], 'seq')) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'seq', ARGV[1])
end
return {epoch, redis.call('XRANGE', KEYS[2], '(' .. ARGV[1] .. '-1', '+', 'COUNT', ARGV[2])}
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

HOLD = """
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[3])
if n == 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
if n > 0 then redis.call('SADD', KEYS[2], ARGV[2]) else redis.call('SREM', KEYS[2], ARGV[2]) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return n
"""

RELEASE_WORKER = """
for _, u in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  redis.call('HDEL', ARGV[1] .. 'at:' .. u, ARGV[2])
end
redis.call('DEL', KEYS[1])
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
