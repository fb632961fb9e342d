-- sandbox_helper.lua — a module of the model's own, found by require in the model's directory
-- under --sandbox and run in the model's environment (it sees no os.execute either).
return { twice = function(x) return 2 * x end, execute = os.execute }
