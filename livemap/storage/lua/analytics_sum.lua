-- Sum a store's day hashes over a period (analytics), in the store's slot.
-- KEYS[1]..KEYS[n]: the period's day hashes, in day order (a day without any is simply absent).
-- ARGV: the fields also returned day by day (the charts' series).
-- Returns {sums, series}: sums = [field, total, field, total...] over every field of every day;
-- series = each day's values of ARGV's fields, day after day ('0' where a day has none).
local totals, names, series = {}, {}, {}
for _, key in ipairs(KEYS) do
  local flat, day = redis.call('HGETALL', key), {}
  for j = 1, #flat, 2 do
    local field, n = flat[j], tonumber(flat[j + 1])
    day[field] = n
    if totals[field] == nil then
      totals[field] = 0
      names[#names + 1] = field
    end
    totals[field] = totals[field] + n
  end
  for _, field in ipairs(ARGV) do
    series[#series + 1] = string.format('%d', day[field] or 0)
  end
end
local sums = {}
for _, field in ipairs(names) do
  sums[#sums + 1] = field
  sums[#sums + 1] = string.format('%d', totals[field])
end
return {sums, series}
