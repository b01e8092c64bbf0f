-- wrk script of the publish benchmark (bench/publish.py): every connection is one writer
-- posting one entry at a time, to the blogs in turn. The same script loads Bulletin and the
-- bare insert; only the path prefix and the token differ.
--
--   wrk -t1 -c16 -d5s -s bench/publish.lua URL -- PREFIX BLOGS LIMIT [TOKEN]
--
-- PREFIX "/api/v1/blogs/" (Bulletin) or "/blogs/" (the peer); BLOGS how many blogs
-- (desk-0 … desk-N-1); LIMIT the most entries a thread posts before it stops, so a run is
-- bounded in count as well as in time (-d). `done` prints one line, "BENCH {json}".

local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  prefix = args[1]
  blogs = tonumber(args[2])
  limit = tonumber(args[3])
  headers = { ["Content-Type"] = "application/json" }
  if args[4] and args[4] ~= "" then
    headers["Authorization"] = "Bearer " .. args[4]
  end
  sent = 0
  created = 0
  failed = 0
  first_failure = ""
end

-- About 700 bytes of JSON: a headline, a byline and two paragraphs with markup to sanitise.
local body_format = '{"headline":"Ward %d of %d: the count is in",' ..
  '"authors":[{"name":"Results desk","role":"at the count"}],' ..
  '"body":"<p>Entry %d.%d from the count centre. Turnout in the ward was ' ..
  '<strong>61 per cent</strong>, up four on the last election; the returning officer ' ..
  'expects the last boxes before midnight.</p><p>Figures are provisional until declared. ' ..
  'See <a href=\\"https://results.example/wards/%d\\">the full ward results</a> and ' ..
  '<em>our map of every seat</em>, updated as each declaration comes in.</p>"}'

function request()
  sent = sent + 1
  local blog = (thread_id * 7 + sent) % blogs
  local body = string.format(body_format, blog, blogs, thread_id, sent, blog)
  return wrk.format("POST", prefix .. "desk-" .. blog .. "/entries", headers, body)
end

function response(status, _headers, body)
  if status == 201 then
    created = created + 1
  else
    failed = failed + 1
    if first_failure == "" then
      first_failure = status .. " " .. string.sub(body or "", 1, 160)
    end
  end
  if created + failed >= limit then
    wrk.thread:stop()
  end
end

function done(summary, latency, _requests)
  local total_created, total_failed, failure = 0, 0, ""
  for _, thread in ipairs(threads) do
    total_created = total_created + thread:get("created")
    total_failed = total_failed + thread:get("failed")
    if failure == "" then
      failure = thread:get("first_failure")
    end
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH {"created":%d,"failed":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"max_us":%d,"socket_errors":%d,"first_failure":"%s"}\n',
    total_created, total_failed, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    errors.connect + errors.read + errors.write + errors.timeout,
    string.gsub(failure, '[%c"\\]', "?")))
end
