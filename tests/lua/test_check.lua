-- test_check.lua — the Lua tests' own comparisons (check.lua): ulp and is_close at zero,
-- subnormals, binade edges, the largest doubles, infinities and NaN, as tests/unit/test_check.c
-- does for check.h; and close's failure message.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local check = require "check"
local eps, tiny, huge = check.eps, 2.0 ^ -1074, math.huge
local dbl_min, dbl_max = 2.0 ^ -1022, (2 - 2.0 ^ -52) * 2.0 ^ 1023
local is = check.is_close

-- ulp
check.eq(check.ulp(1), eps, "ulp(1)")
check.eq(check.ulp(-1), eps, "ulp(-1)")
check.eq(check.ulp(1 - eps / 2), eps / 2, "ulp below 1")
check.eq(check.ulp(2), 2 * eps, "ulp(2)")
check.eq(check.ulp(1.5), eps, "ulp(1.5)")
check.eq(check.ulp(0), tiny, "ulp(0)")
check.eq(check.ulp(tiny), tiny, "ulp(tiny)")
check.eq(check.ulp(dbl_min / 3), tiny, "ulp of a subnormal")
check.eq(check.ulp(dbl_min), tiny, "ulp(DBL_MIN)")
check.eq(check.ulp(2 * dbl_min), 2 * tiny, "ulp(2 DBL_MIN)")
check.eq(check.ulp(dbl_max), 2.0 ^ 971, "ulp(DBL_MAX)")
for k = -1020, 1020, 7 do -- every binade edge the logarithm could misjudge
    local x = 2.0 ^ k
    check.eq(check.ulp(x), 2.0 ^ (k - 52), "ulp(2^" .. k .. ")")
    check.eq(check.ulp(x * (1 - eps / 2)), 2.0 ^ (k - 53), "ulp just below 2^" .. k)
end

-- relative
check.truthy(is(1e10, 1e10 * (1 + 1e-13), 1e-12, 0), "1e-13 within 1e-12")
check.truthy(not is(1e10, 1e10 * (1 + 1e-13), 1e-14, 0), "1e-13 not within 1e-14")
check.truthy(is(-1e-200, -1e-200 * (1 + 1e-13), 1e-12, 0), "scale-free")
check.truthy(not is(1e-300, -1e-300, 0.5, 4), "opposite signs")
check.truthy(is(1, 2, 0.5, 0) and not is(1, 2, 0.49, 0), "relative to the larger value")
-- ulps
check.truthy(is(1, 1 + eps, 0, 1) and not is(1, 1 + eps, 0, 0.5), "one ulp")
check.truthy(not is(1, 1 + 2 * eps, 0, 1) and is(1, 1 + 2 * eps, 0, 2), "two ulps")
check.truthy(is(1 - eps / 2, 1, 0, 0.5), "across the binade edge")
check.truthy(not is(dbl_max, -dbl_max, 1, 4), "the difference overflows")
-- zero and subnormals
check.truthy(is(0.0, -0.0, 0, 0), "+0 and -0")
check.truthy(is(0, tiny, 0, 1) and not is(0, tiny, 0, 0), "0 against the smallest subnormal")
check.truthy(not is(0, 1e-300, 0.1, 1e6), "an expected zero is not near 1e-300")
check.truthy(not is(3 * tiny, 4 * tiny, 1e-3, 0) and is(3 * tiny, 4 * tiny, 1e-3, 1), "subnormal spacing")
-- scaled: 0.1 + 0.2 - 0.3 is 5.55e-17, not 0
local sum = 0.1 + 0.2 - 0.3
check.truthy(sum ~= 0, "the sum cancels")
check.truthy(not is(sum, 0, 4 * eps, 4), "relative to itself: far off")
check.truthy(is(sum, 0, 4 * eps, 0, 0.6) and is(sum, 0, 4 * eps, 0, -0.6), "relative to the terms")
check.truthy(not is(0.1, 0.2, 4 * eps, 4, 0.6), "a real error still fails")
-- non-finite and non-numbers
check.truthy(is(huge, huge, 0, 0) and is(-huge, -huge, 0, 0), "equal infinities")
check.truthy(not is(huge, -huge, 1e300, 1e300) and not is(huge, dbl_max, 1, 1e300), "infinities")
check.truthy(not is(0 / 0, 0 / 0, 1, 1) and not is(0 / 0, 1, 1e300, 1e300), "NaN")
check.truthy(not is("1", 1, 1, 1), "a string is not a number")
-- close raises at the caller's line with both values
local err = check.fails(function() check.close(1, 1 + 1e-12, 4 * eps, 4, nil, "sample") end,
    "sample: got 1, want 1.000000000001")
check.truthy(err:find("> rel 8.88178e-16 or 4 ulps", 1, true), err)
check.close(2 / 3, 0.6666666666666666, 0, 0, nil, "a passing close")
check.done("test_check")
