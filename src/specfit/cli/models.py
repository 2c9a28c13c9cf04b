"""``specfit models``: the registry: names, knobs, defaults, FreSh grids."""

from __future__ import annotations

import argparse
import json

from specfit.cli.parser import add_command, examples


def add_parser(sub: argparse._SubParsersAction) -> None:
    mod = add_command(sub, "models", "list models, knobs, defaults and FreSh grids", examples(
        "specfit models", "specfit models --json"))
    mod.add_argument("--json", action="store_true", help="print the registry as JSON on stdout")
    mod.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from specfit.models.params import specs
    from specfit.models.registry import models
    from specfit.util.formatting import shown

    registry = models()
    if args.json:
        rows = []
        for e in registry.values():
            knob = None if e.knob is None else {
                "name": e.knob.name, "default": e.knob.default, "grid": list(e.knob.grid)}
            rows.append({"name": e.name, "summary": e.summary, "lr": e.lr, "value_range": e.value_range,
                         "convention": e.convention, "defaults": e.defaults, "knob": knob,
                         "adam_betas": list(e.adam_betas), "adam_eps": e.adam_eps,
                         "selection_overrides": e.selection_overrides, "reference": e.reference,
                         "params": [{**asdict(spec), "kind": spec.kind.__name__}
                                    for spec in specs(e.params).values()]})
        print(json.dumps(rows, indent=2))
        return 0
    for e in registry.values():
        print(f"{e.name:<14} {e.summary}")
        if e.knob:
            g = e.knob.grid
            print(f"{'':<14} knob {e.knob.name} (default {shown(e.knob.default)}); FreSh grid "
                  f"{shown(g[0])}..{shown(g[-1])} "
                  f"({len(g)} values): {e.knob.description}")
            if e.knob.benchmark is not None:
                print(f"{'':<14} benchmark {shown(e.knob.benchmark)}: {e.knob.benchmark_source}")
            if e.second_knob is not None:
                second = ", ".join(shown(v) for v in e.second_knob.grid)
                print(f"{'':<14} second knob {e.second_knob.name} (--two-knobs): {second}")
        else:
            print(f"{'':<14} no frequency knob (FreSh does not apply)")
        shape = ", ".join(f"{k}={v}" for k, v in e.defaults.items() if not e.knob or k != e.knob.name)
        values = "[-1, 1]" if e.value_range == "signed" else "[0, 1]"
        adam = "" if e.adam_betas == (0.9, 0.999) else f" (Adam betas {e.adam_betas}, eps {e.adam_eps:g})"
        print(f"{'':<14} lr {e.lr:g}{adam}; values in {values}; {shape}")
        if e.selection_overrides:
            print(f"{'':<14} FreSh evaluates spectra with {e.selection_overrides}")
        print(f"{'':<14} convention: {e.convention}; {e.reference}")
    return 0
