-- The one load script ops/bench drives every system with through `wrk`
-- (one connection per wrk thread, so each client is one person writing its
-- own aggregate). Chosen by environment variables:
--   WRK_MODE  portal-write | portal-panel | portal-me | stock-write | stock-read
--             | forum-topics | forum-topic | forum-post
--   WRK_IDS   a file with one line per client: a bearer token (portal-*), an
--             account id (stock-*), or a token and topic uuids (forum-*, from
--             `portal bench forum-seed`: each request takes the next topic)
-- A response counts as failed when its status is not 2xx or its body carries
-- GraphQL `errors`; `done` prints one JSON line with the run's figures.

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("index", counter)
  thread:set("failed", 0)
  table.insert(threads, thread)
end

local function graphql(token, query)
  wrk.method = "POST"
  wrk.path = "/graphql"
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = '{"query":"' .. query .. '"}'
end

local topics = {}
local next_topic = 0
local forum_mode = nil

function init(args)
  local lines = {}
  for line in io.lines(os.getenv("WRK_IDS")) do
    lines[#lines + 1] = line
  end
  local mine = lines[index]
  local mode = os.getenv("WRK_MODE")
  if string.sub(mode, 1, 6) == "forum-" then
    local words = {}
    for word in string.gmatch(mine, "%S+") do
      words[#words + 1] = word
    end
    mine = words[1]
    for i = 2, #words do
      topics[#topics + 1] = words[i]
    end
    forum_mode = mode
  end
  if mode == "forum-topics" then
    graphql(mine, '{ forum { topics(first: 30) { nodes { id title postCount unread lastPostAt author { name kind } } } } }')
  elseif forum_mode then
    -- Built per request (the topic changes); the headers are set here.
    graphql(mine, '')
  elseif mode == "portal-write" then
    graphql(mine, 'mutation { rateStatus(domain: \\"housing\\", score: 5) { version } }')
  elseif mode == "portal-panel" then
    graphql(mine, '{ controlPanel { version domains { key latestStatus { score } activeGoals { title progress { done } activities { title } } } } }')
  elseif mode == "portal-me" then
    graphql(mine, '{ me { personId } }')
  elseif mode == "stock-write" then
    wrk.method = "POST"
    wrk.path = "/account/" .. mine
    wrk.headers["Content-Type"] = "application/json"
    wrk.body = '{"DepositMoney":{"amount":1.0}}'
  elseif mode == "stock-read" then
    wrk.method = "GET"
    wrk.path = "/account/" .. mine
  else
    error("unknown WRK_MODE " .. tostring(mode))
  end
  req = wrk.format()
end

function request()
  if forum_mode == "forum-topic" or forum_mode == "forum-post" then
    next_topic = next_topic % #topics + 1
    local topic = topics[next_topic]
    local query
    if forum_mode == "forum-topic" then
      query = '{ forum { topic(id: \\"' .. topic .. '\\") { title postCount unread posts(first: 30) { nodes { number body edited supportCount supportedByYou author { name kind } } } } } }'
    else
      query = 'mutation { replyToTopic(topicId: \\"' .. topic .. '\\", body: \\"Thank you for this.\\") { post { number } } }'
    end
    return wrk.format(nil, nil, nil, '{"query":"' .. query .. '"}')
  end
  return req
end

function response(status, headers, body)
  if status < 200 or status > 299 or (body and string.find(body, '"errors"', 1, true)) then
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  local failures = 0
  for _, thread in ipairs(threads) do
    failures = failures + thread:get("failed")
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"requests":%d,"failed":%d,"socket_errors":%d,"seconds":%.3f,"ok_per_s":%.1f,"p50_ms":%.3f,"p99_ms":%.3f}\n',
    summary.requests, failures, e.connect + e.read + e.write + e.timeout, seconds,
    (summary.requests - failures) / seconds, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
