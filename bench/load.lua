-- wrk script: POST pre-signed, distinct, realistic deliveries, cycling through a file of
-- "signature<TAB>body" lines (argument 1); argument 2, if given, is an Authorization header.
local requests = {}
local index = 0

function init(args)
  local headers = { ["Content-Type"] = "application/json" }
  if args[2] ~= nil and args[2] ~= "" then
    headers["Authorization"] = args[2]
  end
  for line in io.lines(args[1]) do
    local tab = string.find(line, "\t", 1, true)
    headers["ElevenLabs-Signature"] = string.sub(line, 1, tab - 1)
    requests[#requests + 1] = wrk.format("POST", nil, headers, string.sub(line, tab + 1))
  end
  -- each wrk thread starts at its own place in the file
  index = math.random(#requests)
end

function request()
  index = index % #requests + 1
  return requests[index]
end
