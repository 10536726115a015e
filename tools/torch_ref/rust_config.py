"""Values of the Rust config structs written as TOML (a config table's `key = value` lines), for
the scripts that hand configurations to the Rust side: tools/refdata/make_net_fixtures.py
(nets.toml) and tools/bench/gpu/grad_check.py (the probe's training config).
"""


def toml_value(v):
    """`v` (bool, number, string, list or dict) as a TOML value; a dict is an inline table."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)
