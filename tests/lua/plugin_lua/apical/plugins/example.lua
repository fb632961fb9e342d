-- The Lua half of the test plugin "example", found on package.path by test_kernels.lua: it
-- receives the plugin's table and adds a Lua function built on the plugin's kernel.
return function(example, info)
    assert(info.name == "example")
    assert(type(example.scale) == "function", "the kernels are there before the Lua half runs")
    -- example.double { x = X, y = Y }: y = 2 x, through the C kernel
    function example.double(args)
        return example.scale { a = 2, x = args.x, y = args.y }
    end
end
