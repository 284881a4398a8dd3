"""`param_str` of Python layers: JSON, validated, never eval'd (STYLE.md).

    spec = {"p": Param(float, 0.5, lambda v: 0 <= v < 1, "in [0, 1)"),
            "seed": Param(int, None)}
    opts = parse_param_str(self.param_str, spec, "PairwiseConsistentDropout")
"""
import json


class Param:
    """One accepted key: its type, default (REQUIRED if none), and a check."""
    REQUIRED = object()

    def __init__(self, kind, default=REQUIRED, check=None, rule=""):
        self.kind = kind
        self.default = default
        self.check = check
        self.rule = rule


def _coerce(key, value, param, where):
    kinds = param.kind if isinstance(param.kind, tuple) else (param.kind,)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) and bool not in kinds:
        raise ValueError("%s: param_str key '%s' must be %s, got %r"
                         % (where, key, "/".join(k.__name__ for k in kinds), value))
    if not isinstance(value, kinds):
        raise ValueError("%s: param_str key '%s' must be %s, got %r"
                         % (where, key, "/".join(k.__name__ for k in kinds), value))
    if param.check is not None and not param.check(value):
        raise ValueError("%s: param_str key '%s' must be %s, got %r"
                         % (where, key, param.rule or "valid", value))
    return value


def parse_param_str(param_str, spec, where):
    """Parse `param_str` as a JSON object against `spec` (name -> Param).

    Unknown keys, missing required keys, wrong types and failed checks raise
    ValueError naming the layer (`where`) and the key.
    """
    text = (param_str or "").strip()
    try:
        given = json.loads(text) if text else {}
    except json.JSONDecodeError as err:
        raise ValueError("%s: param_str is not JSON (%s): %r" % (where, err, param_str)) from None
    if not isinstance(given, dict):
        raise ValueError("%s: param_str must be a JSON object, got %r" % (where, param_str))
    unknown = sorted(set(given) - set(spec))
    if unknown:
        raise ValueError("%s: unknown param_str key(s) %s; accepted: %s"
                         % (where, ", ".join(unknown), ", ".join(sorted(spec))))
    out = {}
    for key, param in spec.items():
        if key in given:
            out[key] = _coerce(key, given[key], param, where)
        elif param.default is Param.REQUIRED:
            raise ValueError("%s: param_str key '%s' is required" % (where, key))
        else:
            out[key] = param.default
    return out
