-- wrk script: POST pre-signed, distinct, realistic deliveries from a file of
-- "signature<TAB>body" lines (argument 1); argument 2, if not empty, is an Authorization
-- header; argument 3 is the number of wrk threads (-t). Each thread walks its own
-- disjoint slice of the file, so no two requests carry the same body until a thread has
-- used up its slice (the benchmark checks the store afterwards: duplicates must be 0).
local requests = {}
local index = 0
local first, last = 1, 0
local threads = 0

function setup(thread)
  thread:set("thread_number", threads)
  threads = threads + 1
end

function init(args)
  local headers = { ["Content-Type"] = "application/json" }
  if args[2] ~= nil and args[2] ~= "" then
    headers["Authorization"] = args[2]
  end
  local count = tonumber(args[3] or "1")
  for line in io.lines(args[1]) do
    local tab = string.find(line, "\t", 1, true)
    headers["ElevenLabs-Signature"] = string.sub(line, 1, tab - 1)
    requests[#requests + 1] = wrk.format("POST", nil, headers, string.sub(line, tab + 1))
  end
  local slice = math.floor(#requests / count)
  first = thread_number * slice + 1
  last = first + slice - 1
  index = first - 1
end

function request()
  index = index + 1
  if index > last then
    index = first
  end
  return requests[index]
end
