-- A plain GET of the URL given to wrk; only the result line of common.lua.
dofile("scripts/bench/wrk/common.lua")
